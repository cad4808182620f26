//! Every text of a document without the characters XML 1.0 cannot carry, before any
//! format writes it.

use std::borrow::Cow;
use std::collections::HashMap;

use super::meta::{FeedMeta, SourceInfo};
use crate::feed::text::{clean_xml_text, is_xml_char};
use crate::model::Entry;

/// Every text of a document without the characters XML 1.0 cannot carry (see
/// [`crate::feed::text::xml_text`]): `normalise` removes them from what it stores, but entries
/// stored by older versions, feed titles kept in a source's state and the config may still
/// hold some, and one of them makes the whole document unreadable. Borrows what is clean.
pub(super) struct Clean<'a> {
    pub(super) meta: Cow<'a, FeedMeta>,
    pub(super) entries: Cow<'a, [Entry]>,
    pub(super) sources: Cow<'a, HashMap<String, SourceInfo>>,
}

pub(super) fn clean<'a>(
    meta: &'a FeedMeta,
    entries: &'a [Entry],
    sources: &'a HashMap<String, SourceInfo>,
) -> Clean<'a> {
    let dirty = |s: &str| !s.chars().all(is_xml_char);
    let meta_dirty = [
        &meta.title,
        &meta.description,
        &meta.author,
        &meta.self_url,
        &meta.id,
        &meta.home_url,
    ]
    .iter()
    .any(|s| dirty(s))
        || meta.next_url.as_deref().is_some_and(dirty);
    let meta = if meta_dirty {
        let mut m = meta.clone();
        for s in [
            &mut m.title,
            &mut m.description,
            &mut m.author,
            &mut m.self_url,
            &mut m.id,
            &mut m.home_url,
        ] {
            clean_xml_text(s);
        }
        if let Some(n) = &mut m.next_url {
            clean_xml_text(n);
        }
        Cow::Owned(m)
    } else {
        Cow::Borrowed(meta)
    };
    let sources = if sources
        .values()
        .any(|s| dirty(&s.title) || dirty(&s.url) || s.link.as_deref().is_some_and(dirty))
    {
        Cow::Owned(
            sources
                .iter()
                .map(|(k, s)| {
                    let mut s = s.clone();
                    clean_xml_text(&mut s.title);
                    clean_xml_text(&mut s.url);
                    if let Some(l) = &mut s.link {
                        clean_xml_text(l);
                    }
                    (k.clone(), s)
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(sources)
    };
    let entries = if entries.iter().any(|e| entry_texts(e).any(dirty)) {
        Cow::Owned(
            entries
                .iter()
                .map(|e| {
                    let mut e = e.clone();
                    visit_texts(&mut e, &mut |s| clean_xml_text(s));
                    e
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(entries)
    };
    Clean {
        meta,
        entries,
        sources,
    }
}

/// Every published text of an entry (what [`visit_texts`] visits).
fn entry_texts(e: &Entry) -> impl Iterator<Item = &str> {
    std::iter::once(e.title.as_str())
        .chain(
            [
                &e.link,
                &e.summary,
                &e.content,
                &e.comments,
                &e.thumbnail,
                &e.full_content,
            ]
            .into_iter()
            .flatten()
            .map(String::as_str),
        )
        .chain(e.authors.iter().flat_map(|p| {
            std::iter::once(p.name.as_str())
                .chain([&p.email, &p.uri].into_iter().flatten().map(String::as_str))
        }))
        .chain(e.categories.iter().map(String::as_str))
        .chain(
            e.enclosures
                .iter()
                .flat_map(|x| std::iter::once(x.url.as_str()).chain(x.mime_type.as_deref())),
        )
}

/// Calls `f` on every published text of an entry.
fn visit_texts(e: &mut Entry, f: &mut dyn FnMut(&mut String)) {
    f(&mut e.title);
    for s in [
        &mut e.link,
        &mut e.summary,
        &mut e.content,
        &mut e.comments,
        &mut e.thumbnail,
        &mut e.full_content,
    ]
    .into_iter()
    .flatten()
    {
        f(s);
    }
    for p in &mut e.authors {
        f(&mut p.name);
        for s in [&mut p.email, &mut p.uri].into_iter().flatten() {
            f(s);
        }
    }
    for c in &mut e.categories {
        f(c);
    }
    for x in &mut e.enclosures {
        f(&mut x.url);
        if let Some(m) = &mut x.mime_type {
            f(m);
        }
    }
}
