//! Feed and config builders: RSS documents made item by item, and `[[source]]` tables.

/// One `<item>` of an [`Rss`] feed; every field but the guid is optional.
#[derive(Clone, Debug, Default)]
pub struct Item {
    pub guid: String,
    /// `Some(false)` writes `isPermaLink="false"`.
    pub permalink: Option<bool>,
    pub title: Option<String>,
    pub link: Option<String>,
    pub description: Option<String>,
    /// As written in `<pubDate>` (RFC 822).
    pub pub_date: Option<String>,
    pub category: Option<String>,
}

impl Item {
    pub fn new(guid: impl Into<String>) -> Item {
        Item {
            guid: guid.into(),
            ..Item::default()
        }
    }
    pub fn not_permalink(mut self) -> Item {
        self.permalink = Some(false);
        self
    }
    pub fn title(mut self, t: impl Into<String>) -> Item {
        self.title = Some(t.into());
        self
    }
    pub fn link(mut self, l: impl Into<String>) -> Item {
        self.link = Some(l.into());
        self
    }
    pub fn description(mut self, d: impl Into<String>) -> Item {
        self.description = Some(d.into());
        self
    }
    pub fn pub_date(mut self, d: impl Into<String>) -> Item {
        self.pub_date = Some(d.into());
        self
    }
    /// `<pubDate>` of `secs` since the Unix epoch.
    pub fn published_at(self, secs: u64) -> Item {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
        self.pub_date(httpdate::fmt_http_date(at))
    }
    pub fn category(mut self, c: impl Into<String>) -> Item {
        self.category = Some(c.into());
        self
    }
}

/// An RSS 2.0 document. The texts are written as given (a test may put markup or entities
/// in them on purpose), so escape what must be escaped.
#[derive(Clone, Debug)]
pub struct Rss {
    pub title: String,
    pub link: String,
    /// Writes `encoding="utf-8"` in the XML declaration.
    pub utf8_declared: bool,
    pub items: Vec<Item>,
}

impl Rss {
    pub fn new(title: impl Into<String>, link: impl Into<String>) -> Rss {
        Rss {
            title: title.into(),
            link: link.into(),
            utf8_declared: false,
            items: Vec::new(),
        }
    }
    pub fn utf8_declared(mut self) -> Rss {
        self.utf8_declared = true;
        self
    }
    pub fn item(mut self, item: Item) -> Rss {
        self.items.push(item);
        self
    }
    pub fn items(mut self, items: impl IntoIterator<Item = Item>) -> Rss {
        self.items.extend(items);
        self
    }
    pub fn xml(&self) -> String {
        let decl = if self.utf8_declared {
            r#"<?xml version="1.0" encoding="utf-8"?>"#
        } else {
            r#"<?xml version="1.0"?>"#
        };
        let mut s = format!(
            "{decl}<rss version=\"2.0\"><channel><title>{}</title><link>{}</link><description>d</description>",
            self.title, self.link
        );
        for i in &self.items {
            match i.permalink {
                Some(p) => s.push_str(&format!(
                    "<item><guid isPermaLink=\"{p}\">{}</guid>",
                    i.guid
                )),
                None => s.push_str(&format!("<item><guid>{}</guid>", i.guid)),
            }
            let fields = [
                ("title", &i.title),
                ("link", &i.link),
                ("description", &i.description),
                ("pubDate", &i.pub_date),
                ("category", &i.category),
            ];
            for (tag, value) in fields {
                if let Some(v) = value {
                    s.push_str(&format!("<{tag}>{v}</{tag}>"));
                }
            }
            s.push_str("</item>");
        }
        s.push_str("</channel></rss>");
        s
    }
}

/// An RSS feed `tag` of `n` items with permalink guids, one a minute.
pub fn small_rss(tag: &str, n: usize) -> String {
    Rss::new(tag, format!("http://{tag}.example/"))
        .items((0..n).map(|i| {
            Item::new(format!("http://{tag}.example/{i}"))
                .title(format!("{tag} {i}"))
                .pub_date(format!("Mon, 01 Sep 2025 10:{:02}:00 GMT", i % 60))
        }))
        .xml()
}

/// A `[[source]]` table polled every `interval`, with `extra` lines (keys) appended.
pub fn source_toml(name: &str, url: &str, interval: &str, extra: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\n{extra}\n\n"
    )
}
