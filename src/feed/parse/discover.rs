//! HTML pages sent where a feed was expected: telling them apart, and the feeds they
//! advertise (`<link rel="alternate">`), for an error message that names the right URL.

use url::Url;

/// The most advertised feeds read from one page (in the page's order): a page cannot make
/// a poll's error, or `tributary add`'s list, as long as itself.
pub const MAX_ADVERTISED: usize = 50;

/// The feeds an HTML page advertises with `<link rel="alternate" type="application/rss+xml"
/// href="...">` (or Atom, JSON Feed), as absolute URLs, read with html5ever's tokenizer.
pub fn advertised_feeds(html: &[u8], base: &Url) -> Vec<String> {
    use html5ever::tokenizer::{
        BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
    };
    use std::cell::RefCell;

    struct Links(RefCell<Vec<Tag>>);
    impl TokenSink for Links {
        type Handle = ();
        fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
            if let Token::TagToken(tag) = token
                && tag.kind == TagKind::StartTag
                && (&*tag.name == "link" || &*tag.name == "a")
            {
                self.0.borrow_mut().push(tag);
            }
            TokenSinkResult::Continue
        }
    }

    let text = String::from_utf8_lossy(html);
    let tokenizer = Tokenizer::new(Links(RefCell::new(Vec::new())), TokenizerOpts::default());
    let queue = BufferQueue::default();
    queue.push_back(text.as_ref().into());
    let _ = tokenizer.feed(&queue);
    tokenizer.end();
    let mut found = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for tag in tokenizer.sink.0.borrow().iter() {
        let attr = |name: &str| {
            tag.attrs
                .iter()
                .find(|a| &*a.name.local == name)
                .map(|a| a.value.to_string())
        };
        let rel = attr("rel").unwrap_or_default().to_ascii_lowercase();
        let kind = attr("type").unwrap_or_default().to_ascii_lowercase();
        let is_feed_type = [
            "application/rss+xml",
            "application/atom+xml",
            "application/feed+json",
            "application/rdf+xml",
        ]
        .iter()
        .any(|t| kind.starts_with(t));
        if !rel.split_whitespace().any(|r| r == "alternate") || !is_feed_type {
            continue;
        }
        if let Some(url) = attr("href").and_then(|h| base.join(h.trim()).ok())
            && matches!(url.scheme(), "http" | "https")
            && seen.insert(url.to_string())
        {
            found.push(url.to_string());
            if found.len() == MAX_ADVERTISED {
                break;
            }
        }
    }
    found
}

pub(super) fn looks_like_html(bytes: &[u8], content_type: Option<&str>) -> bool {
    if content_type.is_some_and(|ct| ct.to_ascii_lowercase().starts_with("text/html")) {
        return true;
    }
    let head: Vec<u8> = bytes.iter().take(512).map(u8::to_ascii_lowercase).collect();
    let head = String::from_utf8_lossy(&head);
    let head = head.trim_start_matches('\u{feff}').trim_start();
    head.starts_with("<!doctype html") || head.starts_with("<html")
}
