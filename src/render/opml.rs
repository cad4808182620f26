//! The configured sources as an OPML 2.0 subscription list, written with quick-xml's writer.

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::config::Config;

/// The configured sources as OPML 2.0, tags as outline categories, each source's URL as
/// configured (for `tributary export-opml`: the owner's own list). Written with quick-xml's
/// writer, so every value is escaped; characters XML cannot carry are left out.
pub fn export(config: &Config, titles: &dyn Fn(&str) -> Option<String>) -> String {
    export_with(config, titles, false)
}

/// [`export`] as served at `/opml`: a `file:` source (a path on this machine) is listed by
/// its feed on this instance, and no URL carries a user name or password
/// ([`super::public_source_url`]).
pub fn export_public(config: &Config, titles: &dyn Fn(&str) -> Option<String>) -> String {
    export_with(config, titles, true)
}

fn export_with(config: &Config, titles: &dyn Fn(&str) -> Option<String>, public: bool) -> String {
    use crate::feed::text::xml_text;
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let write = |w: &mut quick_xml::Writer<Vec<u8>>, e: Event<'_>| {
        // Writing to a Vec cannot fail.
        let _ = w.write_event(e);
    };
    write(
        &mut w,
        Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)),
    );
    let mut opml = BytesStart::new("opml");
    opml.push_attribute(("version", "2.0"));
    write(&mut w, Event::Start(opml));
    write(&mut w, Event::Start(BytesStart::new("head")));
    write(&mut w, Event::Start(BytesStart::new("title")));
    write(
        &mut w,
        Event::Text(BytesText::new(&xml_text(&config.publish.title))),
    );
    write(&mut w, Event::End(BytesEnd::new("title")));
    write(&mut w, Event::End(BytesEnd::new("head")));
    write(&mut w, Event::Start(BytesStart::new("body")));
    for s in &config.sources {
        let title = s
            .title
            .clone()
            .or_else(|| titles(&s.name))
            .unwrap_or_else(|| s.name.clone());
        let title = xml_text(&title);
        // A page source's URL is no feed another reader could read: its feed here is.
        let url = if public || s.kind != crate::config::SourceKind::Feed {
            super::meta::source_feed_url(&config.server.base_url, s)
        } else {
            s.url.to_string()
        };
        let mut o = BytesStart::new("outline");
        o.push_attribute(("type", "rss"));
        o.push_attribute(("text", &*title));
        o.push_attribute(("title", &*title));
        o.push_attribute(("xmlUrl", &*xml_text(&url)));
        if !s.tags.is_empty() {
            o.push_attribute(("category", &*xml_text(&s.tags.join(","))));
        }
        write(&mut w, Event::Empty(o));
    }
    write(&mut w, Event::End(BytesEnd::new("body")));
    write(&mut w, Event::End(BytesEnd::new("opml")));
    String::from_utf8(w.into_inner()).unwrap_or_default()
}
