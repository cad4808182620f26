//! Full text: the article in a web page, without the site around it. No I/O.
//!
//! [`article`] decodes the page as a browser does ([`crate::feed::charset::decode_html`]),
//! hands it to dom_smoothie (a port of Mozilla's Readability, which Firefox's reader view
//! uses) to find the main content, drops the site chrome Readability can leave inside an
//! article (back-to-top and home-page links, share buttons, skip links), and sanitises the
//! result with the same allow-list as feed content, relative URLs resolved against the page.

use url::Url;

/// Articles shorter than this (in characters of text) are not articles: a login wall, a
/// cookie notice, an index page.
pub const MIN_ARTICLE_CHARS: usize = 200;

/// The largest page handed to the extractor (elements); bigger pages are not articles.
const MAX_ELEMENTS: usize = 20_000;

/// Link texts that are site navigation, not article content (compared case-insensitively,
/// trimmed, with arrows and punctuation around them ignored).
const CHROME_LINKS: &[&str] = &[
    "back to top",
    "to top",
    "top",
    "go to top",
    "scroll to top",
    "return to top",
    "go to home page",
    "go to homepage",
    "back to home",
    "back to homepage",
    "back to home page",
    "home",
    "home page",
    "homepage",
    "skip to content",
    "skip to main content",
    "share",
    "share this",
    "share on twitter",
    "share on facebook",
    "share on linkedin",
    "share on mastodon",
    "tweet",
    "tweet this",
    "email this",
    "print",
    "print this page",
    "subscribe",
    "leave a comment",
    "comments",
];

/// Why a page gave no article.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The extractor could not take the page at all.
    #[error("cannot read the page: {0}")]
    Unreadable(dom_smoothie::ReadabilityError),
    /// The extractor found nothing that looks like an article.
    #[error("no article found in the page ({0})")]
    NotFound(dom_smoothie::ReadabilityError),
    /// What was found is too short to be an article.
    #[error("no article found in the page (only {chars} characters of text)")]
    TooShort { chars: usize },
}

/// The article in `bytes` (a page fetched from `url`, with its Content-Type), as sanitised
/// HTML; or why there is none.
pub fn article(
    bytes: &[u8],
    content_type: Option<&str>,
    url: &Url,
) -> Result<String, ExtractError> {
    let html = crate::feed::charset::decode_html(bytes, content_type).text;
    // html5ever (under dom_smoothie) costs time in the nesting depth for each element: a
    // page is bounded like feed content first (`text::bound_html`).
    let html = crate::feed::text::bound_html(&html);
    let cfg = dom_smoothie::Config {
        max_elements_to_parse: MAX_ELEMENTS,
        ..Default::default()
    };
    let mut readability = dom_smoothie::Readability::new(&*html, Some(url.as_str()), Some(cfg))
        .map_err(ExtractError::Unreadable)?;
    let found = readability.parse().map_err(ExtractError::NotFound)?;
    let cleaned = strip_chrome(&found.content);
    let html = crate::feed::text::sanitise(&cleaned, url);
    let text = crate::feed::text::plain_text(&html, true);
    let chars = text.chars().count();
    if chars < MIN_ARTICLE_CHARS {
        return Err(ExtractError::TooShort { chars });
    }
    Ok(html)
}

/// Removes navigation links and share widgets Readability left in the article.
fn strip_chrome(html: &str) -> String {
    let doc = dom_query::Document::from(html);
    for a in doc.select("a, button").iter() {
        let text = a.text().to_lowercase();
        let text = text.trim_matches(|c: char| !c.is_alphanumeric());
        if CHROME_LINKS.contains(&text) {
            a.remove();
        }
    }
    for sel in [
        "nav",
        "[class*=share]",
        "[class*=social]",
        "[id*=share]",
        "[class*=back-to-top]",
        "[class*=skip-link]",
        "script",
        "noscript",
        "form",
    ] {
        doc.select(sel).remove();
    }
    doc.select("body").inner_html().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r##"<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Rivers of the north | The Daily Example</title>
<script>window.tracker = {};</script></head>
<body>
<header class="site-header"><a href="/">The Daily Example</a>
<nav><ul><li><a href="/">Home</a></li><li><a href="/news">News</a></li><li><a href="/sport">Sport</a></li></ul></nav></header>
<a class="skip-link" href="#main">Skip to content</a>
<main id="main"><article>
<h1>Rivers of the north</h1>
<p class="byline">By A. Writer</p>
<div class="share-buttons"><a href="https://twitter.example/share">Share on Twitter</a><a href="https://facebook.example/share">Share on Facebook</a></div>
<p>The rivers of the north run cold and clear through the spring, fed by snow that melted
weeks before on the high plateaus. Fishermen along the banks say the salmon came early this
year, and the villages downstream are already preparing for the summer markets.</p>
<h2>A long winter</h2>
<p>Winter lasted well into April. <a href="/archive/2025/ice">Last year's ice</a> broke late
as well, and the old bridge at Kemi had to be closed for a week while engineers checked its
pillars. This year the thaw was gentle, and the water rose slowly enough that no road was
flooded.</p>
<p><img src="/img/river.jpg" alt="The river at dawn"></p>
<p>Scientists at the university have measured the flow every day since 1911. Their records
show that spring floods now arrive almost two weeks earlier than a century ago.</p>
<p><a href="#top">Back to top</a></p>
</article>
<section class="comments"><h3>Comments</h3><p>Great article! -- a reader</p></section>
</main>
<aside class="sidebar"><h3>Most read</h3><ul><li><a href="/a">Something else</a></li></ul></aside>
<footer><a href="/">Go to home page</a> · <a href="/about">About us</a> · © The Daily Example</footer>
<script src="/ads.js"></script>
</body></html>"##;

    fn url() -> Url {
        Url::parse("https://news.example/2026/rivers").expect("url")
    }

    #[test]
    fn the_article_without_the_site_around_it() {
        let html = article(PAGE.as_bytes(), Some("text/html"), &url()).expect("an article");
        for wanted in [
            "rivers of the north run cold",
            "A long winter",
            "measured the flow every day since 1911",
            "href=\"https://news.example/archive/2025/ice\"",
            "src=\"https://news.example/img/river.jpg\"",
        ] {
            assert!(html.contains(wanted), "{wanted} missing from {html}");
        }
        for unwanted in [
            "Back to top",
            "Go to home page",
            "Skip to content",
            "Share on",
            "Most read",
            "Great article",
            "About us",
            "<script",
            "tracker",
            ">Sport<",
        ] {
            assert!(!html.contains(unwanted), "{unwanted} left in {html}");
        }
    }

    #[test]
    fn a_page_without_an_article_is_refused() {
        let page = "<html><body><nav><a href='/'>Home</a></nav><p>Please log in.</p></body></html>";
        let err = article(page.as_bytes(), None, &url())
            .expect_err("no article")
            .to_string();
        assert!(err.contains("no article found"), "{err}");
    }

    #[test]
    fn charsets_from_the_header_or_the_page() {
        let latin1 = PAGE
            .replace("utf-8", "iso-8859-1")
            .replace("north", "nörth");
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&latin1);
        let html = article(&bytes, None, &url()).expect("article");
        assert!(html.contains("nörth"), "{html}");
        let html =
            article(&bytes, Some("text/html; charset=windows-1252"), &url()).expect("article");
        assert!(html.contains("nörth"));
    }

    /// The HTTP charset beats the page's `<meta>`, however the parameter is written
    /// (parameter names are case-insensitive, RFC 9110 §5.6.6).
    #[test]
    fn the_http_charset_is_read_in_any_case() {
        let page = PAGE.replace("north", "nörth");
        let (bytes, _, _) = encoding_rs::WINDOWS_1252.encode(&page);
        for content_type in [
            "text/html; Charset=windows-1252",
            "text/html;charset = \"windows-1252\"",
        ] {
            let html = article(&bytes, Some(content_type), &url()).expect("article");
            assert!(html.contains("nörth"), "{content_type}: {html}");
        }
    }
}
