//! WebSub discovery (W3C WebSub §4), pure: the hubs and the topic (`self` URL) a source
//! announces, from its response's `Link` headers first and only then from the document
//! (`atom:link rel="hub"`/`rel="self"` at feed level in Atom and RSS, `hubs`/`feed_url` in
//! JSON Feed). Lists are bounded: at most [`MAX_HUBS`] hubs, and the document is scanned
//! only up to its first entry.

use url::Url;

/// Hubs kept from one discovery, at most (the first ones announced).
pub const MAX_HUBS: usize = 4;

/// What a source announces: its hubs and its topic URL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Discovery {
    pub hubs: Vec<Url>,
    pub topic: Option<Url>,
    /// The `self` the document itself names (set by [`Discovery::choose`]): a pushed
    /// document may name it rather than the topic.
    pub document_self: Option<Url>,
}

impl Discovery {
    /// Headers first: when they name a hub, they are the answer (with their `self`, else
    /// the document's); else the document's hubs and self.
    pub fn choose(headers: Discovery, document: Discovery) -> Discovery {
        let document_self = document.topic.clone();
        if headers.hubs.is_empty() {
            Discovery {
                document_self,
                ..document
            }
        } else {
            Discovery {
                hubs: headers.hubs,
                topic: headers.topic.or(document.topic),
                document_self,
            }
        }
    }

    fn add(&mut self, rels: &str, href: &str, base: &Url) {
        let Ok(url) = base.join(href.trim()) else {
            return;
        };
        if !matches!(url.scheme(), "http" | "https") {
            return;
        }
        for rel in rels.split_ascii_whitespace() {
            if rel.eq_ignore_ascii_case("hub") {
                if self.hubs.len() < MAX_HUBS && !self.hubs.contains(&url) {
                    self.hubs.push(url.clone());
                }
            } else if rel.eq_ignore_ascii_case("self") && self.topic.is_none() {
                self.topic = Some(url.clone());
            }
        }
    }
}

/// The hubs and self named by `Link` header values (RFC 8288), relative to `base`.
pub fn from_link_headers<'a>(values: impl IntoIterator<Item = &'a str>, base: &Url) -> Discovery {
    let mut found = Discovery::default();
    for value in values {
        for (target, params) in split_links(value) {
            if let Some(rel) = params
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("rel"))
                .map(|(_, v)| v.as_str())
            {
                found.add(rel, &target, base);
            }
        }
    }
    found
}

/// `<target>; k=v; k="v", <target>...` into (target, params); malformed parts are skipped.
fn split_links(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find('<') {
        let Some(close) = rest[open..].find('>') else {
            break;
        };
        let target = rest[open + 1..open + close].to_string();
        rest = &rest[open + close + 1..];
        let mut params = Vec::new();
        // Parameters run to the next ',' outside quotes.
        loop {
            rest = rest.trim_start();
            let Some(after) = rest.strip_prefix(';') else {
                break;
            };
            rest = after.trim_start();
            let key_end = rest.find(['=', ';', ',']).unwrap_or(rest.len());
            let key = rest[..key_end].trim().to_string();
            rest = &rest[key_end..];
            let mut val = String::new();
            if let Some(after) = rest.strip_prefix('=') {
                rest = after.trim_start();
                if let Some(q) = rest.strip_prefix('"') {
                    let end = q.find('"').unwrap_or(q.len());
                    val = q[..end].to_string();
                    rest = q.get(end + 1..).unwrap_or("");
                } else {
                    let end = rest.find([';', ',']).unwrap_or(rest.len());
                    val = rest[..end].trim().to_string();
                    rest = &rest[end..];
                }
            }
            params.push((key, val));
        }
        out.push((target, params));
        rest = rest.trim_start().strip_prefix(',').unwrap_or(rest);
    }
    out
}

/// The hubs and self a feed document names at feed level, relative to `base`: XML
/// (`<link rel="hub" href>` elements before the first entry or item, whatever their
/// prefix) or JSON Feed (`hubs[].url`, `feed_url`). Nothing for anything else.
pub fn from_document(bytes: &[u8], base: &Url) -> Discovery {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF);
    match start.map(|i| bytes[i]) {
        Some(b'{') => from_json(bytes, base),
        Some(b'<') => from_xml(bytes, base),
        _ => Discovery::default(),
    }
}

fn from_json(bytes: &[u8], base: &Url) -> Discovery {
    #[derive(serde::Deserialize)]
    struct Hub {
        url: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Feed {
        #[serde(default)]
        hubs: Vec<Hub>,
        feed_url: Option<String>,
    }
    let mut found = Discovery::default();
    let Ok(feed) = serde_json::from_slice::<Feed>(bytes) else {
        return found;
    };
    for hub in feed.hubs.iter().filter_map(|h| h.url.as_deref()) {
        found.add("hub", hub, base);
    }
    if let Some(own) = &feed.feed_url {
        found.add("self", own, base);
    }
    found
}

fn from_xml(bytes: &[u8], base: &Url) -> Discovery {
    use quick_xml::events::Event;
    let mut found = Discovery::default();
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut buf = Vec::new();
    while let Ok(event) = reader.read_event_into(&mut buf) {
        let e = match event {
            Event::Start(e) | Event::Empty(e) => e,
            Event::Eof => break,
            _ => {
                buf.clear();
                continue;
            }
        };
        let local = e.local_name();
        let name = local.as_ref();
        if name.eq_ignore_ascii_case("entry") || name.eq_ignore_ascii_case("item") {
            break;
        }
        if name == "link" {
            let attr = |want: &str| {
                e.attributes()
                    .with_checks(false)
                    .flatten()
                    .find(|a| a.key.local_name().as_ref() == want)
                    .map(|a| html_escape::decode_html_entities(&a.value).into_owned())
            };
            if let (Some(rel), Some(href)) = (attr("rel"), attr("href")) {
                found.add(&rel, &href, base);
            }
        }
        buf.clear();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://example.org/blog/feed.xml").unwrap()
    }

    #[test]
    fn link_headers_give_hubs_and_self() {
        let d = from_link_headers(
            [
                r#"<https://hub.example/>; rel="hub", </feed.xml>; rel="self""#,
                "<https://hub2.example/websub>; rel=hub",
            ],
            &base(),
        );
        assert_eq!(
            d.hubs,
            vec![
                Url::parse("https://hub.example/").unwrap(),
                Url::parse("https://hub2.example/websub").unwrap()
            ]
        );
        assert_eq!(d.topic.unwrap().as_str(), "https://example.org/feed.xml");
    }

    #[test]
    fn link_header_rels_can_be_several_and_params_quoted() {
        let d = from_link_headers(
            [r#"<https://h.example/a,b>; title="x, y"; rel="self hub""#],
            &base(),
        );
        assert_eq!(d.hubs.len(), 1);
        assert_eq!(d.hubs[0].as_str(), "https://h.example/a,b");
        assert_eq!(d.topic.unwrap().as_str(), "https://h.example/a,b");
    }

    #[test]
    fn malformed_link_headers_give_nothing() {
        for bad in ["", "rel=hub", "<", "<>; rel", "<javascript:x>; rel=hub"] {
            assert_eq!(
                from_link_headers([bad], &base()),
                Discovery::default(),
                "{bad}"
            );
        }
    }

    #[test]
    fn hubs_are_bounded_and_deduplicated() {
        let many: String = (0..50)
            .map(|i| format!("<https://h{}.example/>; rel=hub, ", i % 10))
            .collect();
        let d = from_link_headers([many.as_str()], &base());
        assert_eq!(d.hubs.len(), MAX_HUBS);
    }

    #[test]
    fn atom_and_rss_links_before_the_first_entry() {
        let atom = br#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom">
            <link rel="hub" href="https://hub.example/"/><link rel="self" href="https://example.org/a.xml"/>
            <entry><link rel="hub" href="https://late.example/"/></entry></feed>"#;
        let d = from_document(atom, &base());
        assert_eq!(d.hubs, vec![Url::parse("https://hub.example/").unwrap()]);
        assert_eq!(d.topic.unwrap().as_str(), "https://example.org/a.xml");
        let rss = br#"<rss xmlns:atom="http://www.w3.org/2005/Atom"><channel><link>https://example.org/</link>
            <atom:link rel="hub" href="/hub?a=1&amp;b=2"/><atom:link href="https://example.org/r.xml" rel="self" type="application/rss+xml"/>
            <item><title>x</title></item></channel></rss>"#;
        let d = from_document(rss, &base());
        assert_eq!(d.hubs[0].as_str(), "https://example.org/hub?a=1&b=2");
        assert_eq!(d.topic.unwrap().as_str(), "https://example.org/r.xml");
    }

    #[test]
    fn json_feed_hubs() {
        let json = br#"{"version":"https://jsonfeed.org/version/1.1","feed_url":"https://example.org/f.json",
            "hubs":[{"type":"WebSub","url":"https://hub.example/"}],"items":[]}"#;
        let d = from_document(json, &base());
        assert_eq!(d.hubs[0].as_str(), "https://hub.example/");
        assert_eq!(d.topic.unwrap().as_str(), "https://example.org/f.json");
        assert_eq!(from_document(b"not a feed", &base()), Discovery::default());
    }

    #[test]
    fn headers_win_over_the_document() {
        let h = Discovery {
            hubs: vec![Url::parse("https://a.example/").unwrap()],
            topic: None,
            document_self: None,
        };
        let d = Discovery {
            hubs: vec![Url::parse("https://b.example/").unwrap()],
            topic: Some(Url::parse("https://example.org/self").unwrap()),
            document_self: None,
        };
        let chosen = Discovery::choose(h.clone(), d.clone());
        assert_eq!(chosen.hubs, h.hubs);
        assert_eq!(chosen.topic, d.topic);
        assert_eq!(chosen.document_self, d.topic);
        let alone = Discovery::choose(Discovery::default(), d.clone());
        assert_eq!((&alone.hubs, &alone.topic), (&d.hubs, &d.topic));
    }
}
