//! The catalogue of pathological feed documents: each is well under the default body cap
//! (`[fetch] max_body_mb = 16`) and built to make some stage of a poll (XML parsing, JSON
//! parsing, normalising, HTML sanitising, the store) do far more work than its size
//! suggests. Generated in code so nothing large is kept in the repository.
//!
//! Used by `tests/pathological.rs` (every document through the real daemon's poll) and
//! `examples/pathological.rs` (the same documents timed stage by stage in a release build).

#![allow(dead_code)]

/// Under the default body cap of 16 MiB, with room for the document's frame.
pub const BUDGET: usize = 16 * 1024 * 1024 - 64 * 1024;

/// One pathological document.
pub struct Case {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

const RSS_TYPE: &str = "application/rss+xml";
const ATOM_TYPE: &str = "application/atom+xml";
const JSON_TYPE: &str = "application/feed+json";

fn rss_doc(items: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\" \
         xmlns:media=\"http://search.yahoo.com/mrss/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\
         <channel><title>Pathological</title><link>https://patho.example/</link>\
         <description>d</description>{items}</channel></rss>"
    )
    .into_bytes()
}

/// One RSS item with `inner` inside, next to a normal item so the feed has a sane entry too.
fn rss_one(inner: &str) -> Vec<u8> {
    rss_doc(&format!(
        "<item><guid>sane</guid><title>Sane</title><link>https://patho.example/sane</link></item>\
         <item><guid>x</guid><link>https://patho.example/x</link>{inner}</item>"
    ))
}

fn atom_one(inner: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\
         <title>Pathological</title><id>urn:patho</id><updated>2024-01-01T00:00:00Z</updated>\
         <entry><id>urn:sane</id><title>Sane</title><link href=\"https://patho.example/sane\"/>\
         <updated>2024-01-01T00:00:00Z</updated></entry>\
         <entry><id>urn:x</id><link href=\"https://patho.example/x\"/>\
         <updated>2024-01-01T00:00:00Z</updated>{inner}</entry></feed>"
    )
    .into_bytes()
}

/// `unit(i)` repeated while it fits in `budget` bytes.
fn repeat(budget: usize, unit: impl Fn(usize) -> String) -> (String, usize) {
    let mut s = String::with_capacity(budget);
    let mut i = 0;
    loop {
        let u = unit(i);
        if s.len() + u.len() > budget {
            return (s, i);
        }
        s.push_str(&u);
        i += 1;
    }
}

/// `open` nested `n` times, then `close` as often: about `budget` bytes in all.
fn nest(budget: usize, open: &str, close: &str) -> String {
    let n = budget / (open.len() + close.len());
    let mut s = String::with_capacity(budget);
    for _ in 0..n {
        s.push_str(open);
    }
    s.push('x');
    for _ in 0..n {
        s.push_str(close);
    }
    s
}

fn escape(html: &str) -> String {
    html.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Every case of the catalogue. `scale` (0 < scale <= 1) shrinks the documents (1.0: each
/// about as big as the body cap allows).
pub fn catalogue(scale: f64) -> Vec<Case> {
    let b = ((BUDGET as f64) * scale) as usize;
    let mut cases = Vec::new();
    let mut add = |name: &'static str, content_type: &'static str, body: Vec<u8>| {
        assert!(body.len() <= BUDGET + 4096, "{name} is over the body cap");
        cases.push(Case {
            name,
            content_type,
            body,
        });
    };

    // A feed with no items that mentions RSS 0.90's namespace over and over: parsing it as
    // RSS 0.90 once replaced one mention per retry, recursing once per mention (a stack
    // overflow that killed the process at 1,000, 13 GB at 300 with padding).
    let (mentions, _) = repeat(b, |_| "http://my.netscape.com/rdf/simple/0.9/ ".to_string());
    add(
        "rss090-namespace-repeated",
        RSS_TYPE,
        rss_doc(&format!("<!-- {mentions} -->")),
    );

    // Lists in one entry.
    let (cats, _) = repeat(b, |i| format!("<category>c{i}</category>"));
    add(
        "rss-distinct-categories",
        RSS_TYPE,
        rss_one(&format!("<title>cats</title>{cats}")),
    );
    let (cats, _) = repeat(b, |i| format!("<category term=\"c{i}\"/>"));
    add(
        "atom-distinct-categories",
        ATOM_TYPE,
        atom_one(&format!("<title>cats</title>{cats}")),
    );
    let (authors, _) = repeat(b, |i| format!("<author>a{i}@x.example (A{i})</author>"));
    add(
        "rss-many-authors",
        RSS_TYPE,
        rss_one(&format!("<title>authors</title>{authors}")),
    );
    let (authors, _) = repeat(b, |i| format!("<dc:creator>A{i}</dc:creator>"));
    add(
        "rss-many-dc-creators",
        RSS_TYPE,
        rss_one(&format!("<title>creators</title>{authors}")),
    );
    let (authors, _) = repeat(b, |i| format!("<author><name>A{i}</name></author>"));
    add(
        "atom-many-authors",
        ATOM_TYPE,
        atom_one(&format!("<title>authors</title>{authors}")),
    );
    let (contributors, _) = repeat(b, |i| {
        format!("<contributor><name>C{i}</name></contributor>")
    });
    add(
        "atom-many-contributors",
        ATOM_TYPE,
        atom_one(&format!("<title>contributors</title>{contributors}")),
    );
    let (links, _) = repeat(b, |i| {
        format!("<link rel=\"enclosure\" href=\"https://patho.example/{i}.mp3\" length=\"1\"/>")
    });
    add(
        "atom-many-enclosure-links",
        ATOM_TYPE,
        atom_one(&format!("<title>links</title>{links}")),
    );
    let (links, _) = repeat(b, |i| {
        format!("<link rel=\"related\" href=\"https://patho.example/{i}\"/>")
    });
    add(
        "atom-many-links",
        ATOM_TYPE,
        atom_one(&format!("<title>links</title>{links}")),
    );
    let (encs, _) = repeat(b, |i| {
        format!(
            "<enclosure url=\"https://patho.example/{i}.mp3\" length=\"1\" type=\"audio/mpeg\"/>"
        )
    });
    add(
        "rss-many-enclosures",
        RSS_TYPE,
        rss_one(&format!("<title>enclosures</title>{encs}")),
    );
    let (media, _) = repeat(b, |i| {
        format!("<media:content url=\"https://patho.example/{i}.jpg\" medium=\"image\"/>")
    });
    add(
        "rss-many-media-contents",
        RSS_TYPE,
        rss_one(&format!("<title>media</title>{media}")),
    );
    let (thumbs, _) = repeat(b, |i| {
        format!("<media:thumbnail url=\"https://patho.example/{i}.jpg\"/>")
    });
    add(
        "rss-many-media-thumbnails",
        RSS_TYPE,
        rss_one(&format!("<title>thumbnails</title>{thumbs}")),
    );

    // HTML nesting in each text field.
    let deep = nest(b / 2 - 64, "<div>", "</div>");
    add(
        "rss-deep-divs-description",
        RSS_TYPE,
        rss_one(&format!(
            "<title>deep</title><description><![CDATA[{deep}]]></description>"
        )),
    );
    let deep_escaped = escape(&nest(b / 5, "<div>", "</div>"));
    add(
        "rss-deep-divs-escaped",
        RSS_TYPE,
        rss_one(&format!(
            "<title>deep</title><description>{deep_escaped}</description>"
        )),
    );
    add(
        "atom-deep-divs-content",
        ATOM_TYPE,
        atom_one(&format!(
            "<title>deep</title><content type=\"html\"><![CDATA[{deep}]]></content>"
        )),
    );
    add(
        "atom-deep-divs-summary",
        ATOM_TYPE,
        atom_one(&format!(
            "<title>deep</title><summary type=\"html\"><![CDATA[{deep}]]></summary>"
        )),
    );
    add(
        "atom-deep-divs-title",
        ATOM_TYPE,
        atom_one(&format!("<title type=\"html\"><![CDATA[{deep}]]></title>")),
    );
    let unclosed: String = (0..b / 4)
        .map(|i| ["<b>", "<i>", "<u>", "<s>"][i % 4])
        .collect();
    add(
        "rss-unclosed-formatting",
        RSS_TYPE,
        rss_one(&format!(
            "<title>unclosed</title><description><![CDATA[{unclosed}x]]></description>"
        )),
    );
    let (misnested, _) = repeat(b / 2, |i| format!("<a href=\"/{i}\"><b>x</a>y</b>"));
    add(
        "rss-misnested-formatting",
        RSS_TYPE,
        rss_one(&format!(
            "<title>misnested</title><description><![CDATA[{misnested}]]></description>"
        )),
    );
    let tables = nest(b / 2 - 64, "<table><tr><td>", "</td></tr></table>");
    add(
        "rss-deep-tables",
        RSS_TYPE,
        rss_one(&format!(
            "<title>tables</title><description><![CDATA[{tables}]]></description>"
        )),
    );
    let (lists, _) = repeat(b / 2, |_| "<li>x".to_string());
    add(
        "rss-unclosed-list-items",
        RSS_TYPE,
        rss_one(&format!(
            "<title>li</title><description><![CDATA[<ul>{lists}</ul>]]></description>"
        )),
    );

    // Attributes.
    let (attrs, _) = repeat(b - 64, |i| format!(" a{i}=\"x\""));
    add(
        "rss-html-many-attributes",
        RSS_TYPE,
        rss_one(&format!(
            "<title>attrs</title><description><![CDATA[<p{attrs}>x</p>]]></description>"
        )),
    );
    let (attrs, _) = repeat(b - 64, |i| format!(" a{i}=\"x\""));
    add(
        "rss-xml-many-attributes",
        RSS_TYPE,
        rss_one(&format!("<title{attrs}>attrs</title>")),
    );
    let (attrs, _) = repeat(b - 64, |i| format!(" xmlns:n{i}=\"urn:n{i}\""));
    add(
        "rss-xml-many-namespaces",
        RSS_TYPE,
        rss_one(&format!("<title{attrs}>namespaces</title>")),
    );

    // Deep XML.
    let xml_deep = nest(b - 64, "<x>", "</x>");
    add(
        "rss-deep-xml-elements",
        RSS_TYPE,
        rss_one(&format!("<title>xml deep</title>{xml_deep}")),
    );
    let xhtml_deep = nest(b - 256, "<div>", "</div>");
    add(
        "atom-deep-xhtml-content",
        ATOM_TYPE,
        atom_one(&format!(
            "<title>xhtml</title><content type=\"xhtml\"><div xmlns=\"http://www.w3.org/1999/xhtml\">{xhtml_deep}</div></content>"
        )),
    );

    // Big text.
    let giant: String = "abcdefghij ".repeat(b / 11);
    add(
        "rss-giant-description",
        RSS_TYPE,
        rss_one(&format!(
            "<title>giant</title><description>{giant}</description>"
        )),
    );
    let long_word: String = "a".repeat(b - 64);
    add(
        "rss-giant-title-no-spaces",
        RSS_TYPE,
        rss_one(&format!("<title>{long_word}</title>")),
    );
    add(
        "atom-giant-html-title",
        ATOM_TYPE,
        atom_one(&format!(
            "<title type=\"html\">{}</title>",
            "&lt;b&gt;x&lt;/b&gt; ".repeat(b / 22)
        )),
    );
    let entities = "&amp;lt;&amp;#233;&amp;nbsp;".repeat(b / 31);
    add(
        "rss-many-entities",
        RSS_TYPE,
        rss_one(&format!(
            "<title>entities</title><description>{entities}</description>"
        )),
    );
    add(
        "rss-many-html-entities",
        RSS_TYPE,
        rss_one(&format!(
            "<title>nbsp</title><description>{}</description>",
            "&nbsp;&eacute;".repeat(b / 14)
        )),
    );
    add(
        "rss-bare-ampersands",
        RSS_TYPE,
        rss_one(&format!(
            "<title>amp</title><description>{}</description>",
            "a & b ".repeat(b / 6)
        )),
    );
    add(
        "rss-many-comments",
        RSS_TYPE,
        rss_one(&format!(
            "<title>comments</title><description><![CDATA[{}]]></description>",
            "<!--x-->".repeat(b / 8 - 8)
        )),
    );
    add(
        "rss-giant-url",
        RSS_TYPE,
        rss_doc(&format!(
            "<item><title>url</title><link>https://patho.example/{}</link></item>",
            "a".repeat(b - 256)
        )),
    );

    // Many entries.
    let (items, _) = repeat(b, |i| {
        format!("<item><guid>g{i}</guid><title>T{i}</title></item>")
    });
    add("rss-many-items", RSS_TYPE, rss_doc(&items));
    let (items, _) = repeat(b, |i| {
        format!(
            "<item><guid>g{i}</guid><title>T{i}</title><link>https://patho.example/p#{i}</link>\
             <description>&lt;p&gt;{i}&lt;/p&gt;</description><category>c{i}</category></item>"
        )
    });
    add("rss-many-items-one-page", RSS_TYPE, rss_doc(&items));
    let (items, _) = repeat(b, |i| {
        format!(
            "<item xml:base=\"https://patho.example/{i}/\"><guid>g{i}</guid><title>T{i}</title>\
             <description>&lt;a href=\"x\"&gt;x&lt;/a&gt;</description></item>"
        )
    });
    add("rss-many-items-xml-base", RSS_TYPE, rss_doc(&items));
    let html = "<p>Some <b>text</b> with <a href=\"/link\">a link</a> and an \
                <img src=\"/i.png\" alt=\"image\">.</p>"
        .repeat(30);
    let (items, _) = repeat(b, |i| {
        format!(
            "<item><guid>g{i}</guid><title>T{i}</title><link>https://patho.example/{i}</link>\
             <description><![CDATA[{html}]]></description></item>"
        )
    });
    add("rss-many-items-with-html", RSS_TYPE, rss_doc(&items));

    // JSON Feed.
    let depth = (b - 256) / 2;
    let json_deep = format!(
        "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"deep\",\"items\":[{{\"id\":\"1\",\"x\":{}{}}}]}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    add("json-deep-nesting", JSON_TYPE, json_deep.into_bytes());
    let (tags, _) = repeat(b, |i| format!("\"t{i}\","));
    add(
        "json-many-tags",
        JSON_TYPE,
        format!(
            "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"tags\",\"items\":[{{\"id\":\"1\",\"url\":\"https://patho.example/1\",\"content_text\":\"x\",\"tags\":[{}\"last\"]}}]}}",
            tags
        )
        .into_bytes(),
    );
    let (authors, _) = repeat(b / 2, |i| format!("{{\"name\":\"A{i}\"}},"));
    add(
        "json-many-feed-authors",
        JSON_TYPE,
        format!(
            "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"authors\",\"authors\":[{authors}{{\"name\":\"last\"}}],\"items\":[{}{{\"id\":\"last\",\"content_text\":\"x\"}}]}}",
            (0..2000)
                .map(|i| format!("{{\"id\":\"{i}\",\"content_text\":\"x\"}},"))
                .collect::<String>()
        )
        .into_bytes(),
    );
    let (atts, _) = repeat(b, |i| {
        format!("{{\"url\":\"https://patho.example/{i}.mp3\",\"mime_type\":\"audio/mpeg\"}},")
    });
    add(
        "json-many-attachments",
        JSON_TYPE,
        format!(
            "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"att\",\"items\":[{{\"id\":\"1\",\"content_text\":\"x\",\"attachments\":[{atts}{{\"url\":\"https://patho.example/last\",\"mime_type\":\"audio/mpeg\"}}]}}]}}"
        )
        .into_bytes(),
    );
    let (items, _) = repeat(b, |i| format!("{{\"id\":\"{i}\",\"content_text\":\"x\"}},"));
    add(
        "json-many-items",
        JSON_TYPE,
        format!(
            "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"items\",\"items\":[{items}{{\"id\":\"last\",\"content_text\":\"x\"}}]}}"
        )
        .into_bytes(),
    );
    let json_html = format!(
        "{{\"version\":\"https://jsonfeed.org/version/1.1\",\"title\":\"html\",\"items\":[{{\"id\":\"1\",\"content_html\":\"{}\"}}]}}",
        nest(b / 2 - 64, "<div>", "</div>")
    );
    add("json-deep-html", JSON_TYPE, json_html.into_bytes());
    cases
}
