//! The status page at `/status`: the feeds with autodiscovery links for readers, and a table
//! of the sources' health. Pure: it takes the config and the sources' status and returns the page
//! (no I/O); every text is escaped, without the characters XML cannot carry.

use chrono::{DateTime, Utc};

use crate::config::Config;
use crate::feed::text::xml_text;

/// One row of the sources' table, as the public may see it (the caller has already hidden
/// local paths and credentials).
#[derive(Clone, Debug, Default)]
pub struct PageSource {
    pub name: String,
    /// Its title: the `title` key of its `[[source]]`, else its feed's own.
    pub title: Option<String>,
    /// The URL polled (may not parse: then the configured source's public URL is linked).
    pub current_url: String,
    /// "new", "ok", "failing" or "gone".
    pub state: String,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub consecutive_failures: u32,
    pub next_poll: Option<DateTime<Utc>>,
    pub entries: u64,
}

/// One WebSub subscription of ours, as `/status` shows it (no token, no secret).
#[derive(Clone, Debug, Default)]
pub struct PageSubscription {
    pub source: String,
    /// `pending`, `active`, `denied`, `lapsed` or `off`.
    pub state: String,
    pub reason: Option<String>,
    pub hub: String,
    pub lease_end: Option<DateTime<Utc>>,
    pub last_delivery: Option<DateTime<Utc>>,
    pub deliveries: u64,
    pub rejected: u64,
}

/// The page at `/status`.
pub fn status_page(c: &Config, sources: &[PageSource]) -> String {
    status_page_with(c, sources, &[])
}

/// The page at `/status`, with a table of WebSub subscriptions when there are any.
pub fn status_page_with(c: &Config, sources: &[PageSource], subs: &[PageSubscription]) -> String {
    // Characters XML cannot carry are no use in HTML either (and may come from the config).
    let e = |s: &str| html_escape::encode_text(&xml_text(s)).into_owned();
    let a = |s: &str| html_escape::encode_double_quoted_attribute(&xml_text(s)).into_owned();
    let base = &c.server.base_url;
    let title = e(&c.publish.title);
    let mut page = String::new();
    page.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    page.push_str(&format!("<title>{title}</title>"));
    page.push_str(
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
         body{font:16px/1.5 system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;color:#222}\
         table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;\
         border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4}\
         td:last-child,th:last-child{text-align:right}a{color:#0645ad}.wide{overflow-x:auto}</style>",
    );
    page.push_str(&format!(
        "<link rel=\"alternate\" type=\"application/atom+xml\" title=\"{} (Atom)\" href=\"{}\">",
        a(&c.publish.title),
        a(&format!("{base}/feed.atom"))
    ));
    page.push_str(&format!(
        "<link rel=\"alternate\" type=\"application/rss+xml\" title=\"{} (RSS)\" href=\"{}\">",
        a(&c.publish.title),
        a(&format!("{base}/feed.rss"))
    ));
    page.push_str(&format!(
        "<link rel=\"alternate\" type=\"application/feed+json\" title=\"{} (JSON Feed)\" href=\"{}\">",
        a(&c.publish.title),
        a(&format!("{base}/feed.json"))
    ));
    page.push_str("</head><body><main>");
    page.push_str(&format!(
        "<h1>{title}</h1><p>{}</p><p><a href=\"{}\">Read the entries</a></p>",
        e(&c.publish.description),
        a(&format!("{base}/"))
    ));
    page.push_str("<h2>Feeds</h2><ul>");
    let formats = |path: &str| {
        format!(
            "<a href=\"{0}.atom\">Atom</a> · <a href=\"{0}.rss\">RSS</a> · <a href=\"{0}.json\">JSON</a>",
            a(path)
        )
    };
    page.push_str(&format!("<li>Everything: {}</li>", formats("feed")));
    for f in &c.feeds {
        page.push_str(&format!(
            "<li>{}: {}</li>",
            e(f.title.as_deref().unwrap_or(&f.name)),
            formats(&format!("feeds/{}", f.name))
        ));
    }
    for t in c.tags() {
        page.push_str(&format!(
            "<li>#{}: {}</li>",
            e(t),
            formats(&format!("tags/{t}"))
        ));
    }
    page.push_str("</ul><h2>Sources</h2>");
    let when = |t: Option<DateTime<Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "never".into())
    };
    page.push_str(
        "<div class=\"wide\"><table><thead><tr><th>Source</th><th>Feeds</th><th>State</th><th>Last success</th>\
         <th>Last error</th><th>Next poll</th><th>Entries</th></tr></thead><tbody>",
    );
    for s in sources {
        let error = match (&s.last_error, s.consecutive_failures) {
            (Some(err), n) if n > 0 => format!("{} ({n} in a row)", e(err)),
            (Some(err), _) => format!("{} (then recovered)", e(err)),
            (None, _) => String::new(),
        };
        // The source's own feed, or for a `file:` source (a path on this machine) its feed
        // here.
        let href = match (url::Url::parse(&s.current_url), c.source(&s.name)) {
            (Ok(u), _) => super::meta::public_source_url(base, &s.name, &u),
            (Err(_), Some(src)) => super::meta::public_source_url(base, &s.name, &src.url),
            (Err(_), None) => format!("{base}/sources/{}.atom", s.name),
        };
        page.push_str(&format!(
            "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a(&href),
            match &s.title {
                Some(t) if t != &s.name => format!("{} ({})", e(t), e(&s.name)),
                _ => e(&s.name),
            },
            formats(&format!("sources/{}", s.name)),
            e(&s.state),
            when(s.last_success),
            error,
            if s.state == "gone" { "never".into() } else { when(s.next_poll) },
            s.entries
        ));
    }
    page.push_str("</tbody></table></div>");
    if !subs.is_empty() {
        page.push_str(
            "<h2>WebSub subscriptions</h2><div class=\"wide\"><table><thead><tr><th>Source</th>\
             <th>State</th><th>Hub</th><th>Lease ends</th><th>Last delivery</th><th>Deliveries</th>\
             <th>Rejected</th></tr></thead><tbody>",
        );
        for s in subs {
            let state = match &s.reason {
                Some(r) => format!("{} ({})", e(&s.state), e(r)),
                None => e(&s.state),
            };
            page.push_str(&format!(
                "<tr><td>{}</td><td>{state}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                e(&s.source),
                e(&s.hub),
                when(s.lease_end),
                when(s.last_delivery),
                s.deliveries,
                s.rejected
            ));
        }
        page.push_str("</tbody></table></div>");
    }
    page.push_str("</main></body></html>\n");
    page
}
