//! An entry's identity and fingerprint: the keys that say "this is the same entry" (within
//! a source) and "this is the same article" (across sources), and the hash that says
//! whether what a reader sees of an entry changed. No I/O.
//!
//! # Identity
//! Each entry's [`EntryKey`] is a keyed BLAKE3 hash, scoped to the source name so two
//! sources' guids cannot collide, over the first of:
//! 1. the feed's guid / id, when it gives one;
//! 2. else the entry's link;
//! 3. else its title and content.

use std::sync::LazyLock;

use url::Url;

use crate::feed::text::without_credentials;
use crate::model::{Entry, EntryKey};

/// Keeps key derivations of different versions or purposes apart.
const KEY_CONTEXT: &str = "tributary 2026-11 entry key v1";
const FINGERPRINT_CONTEXT: &str = "tributary 2026-11 entry fingerprint v1";
const ARTICLE_CONTEXT: &str = "tributary 2026-11 article key v1";

/// The hashers for each context, made once: making one hashes its context string, and a
/// clone gives the same state without that work.
static KEY_HASHER: LazyLock<blake3::Hasher> =
    LazyLock::new(|| blake3::Hasher::new_derive_key(KEY_CONTEXT));
static FINGERPRINT_HASHER: LazyLock<blake3::Hasher> =
    LazyLock::new(|| blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT));
static ARTICLE_HASHER: LazyLock<blake3::Hasher> =
    LazyLock::new(|| blake3::Hasher::new_derive_key(ARTICLE_CONTEXT));

/// Computes an entry's stable identity. See the module docs.
pub fn entry_key(source: &str, kind: &str, value: &str) -> EntryKey {
    let mut h = KEY_HASHER.clone();
    for part in [source, kind, value] {
        h.update(&(part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    let mut key = [0u8; 16];
    key.copy_from_slice(&h.finalize().as_bytes()[..16]);
    EntryKey(key)
}

/// An entry's key: its guid, else its link, else its title and content (module docs).
pub(crate) fn identity(
    source: &str,
    guid: Option<&str>,
    link: Option<&str>,
    title: &str,
    summary: &Option<String>,
    content: &Option<String>,
) -> EntryKey {
    match (guid, link) {
        (Some(g), _) => entry_key(source, "guid", g),
        (None, Some(l)) => entry_key(source, "link", l),
        (None, None) => entry_key(
            source,
            "content",
            &format!(
                "{title}\u{0}{}\u{0}{}",
                summary.as_deref().unwrap_or(""),
                content.as_deref().unwrap_or("")
            ),
        ),
    }
}

/// Query parameters that only track readers; dropped from links.
fn is_tracking_param(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.starts_with("utm_")
        || matches!(
            n.as_str(),
            "fbclid"
                | "gclid"
                | "dclid"
                | "gbraid"
                | "wbraid"
                | "msclkid"
                | "yclid"
                | "igshid"
                | "mc_cid"
                | "mc_eid"
                | "_ga"
                | "_gl"
                | "mkt_tok"
                | "oly_anon_id"
                | "oly_enc_id"
                | "vero_id"
                | "wt_mc"
                | "__s"
                | "_hsenc"
                | "_hsmi"
                | "hsctatracking"
        )
}

/// A link in canonical form: scheme and host lowercased, default port dropped (the url
/// crate does that), tracking parameters removed, everything else (the fragment too) kept in
/// order.
pub fn normalise_link(url: &Url) -> Url {
    normalised_link(url.clone())
}

/// [`normalise_link`], taking the link.
pub(crate) fn normalised_link(url: Url) -> Url {
    let mut u = without_credentials(url);
    if u.query().is_some() {
        let kept: Vec<(String, String)> = u
            .query_pairs()
            .filter(|(k, _)| !is_tracking_param(k))
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if kept.is_empty() {
            u.set_query(None);
        } else if kept.len() != u.query_pairs().count() {
            u.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    u
}

/// The cross-source identity of an article: a hash of its normalised link, with the scheme
/// and a leading `www.` set aside (the same article is often linked both ways). The caller
/// decides whether the fragment is part of it (see [`crate::feed::normalise::normalise`]).
pub fn article_key(link: &Url) -> [u8; 16] {
    let host = link.host_str().unwrap_or_default();
    let host = host.strip_prefix("www.").unwrap_or(host);
    let rest = &link[url::Position::BeforePort..];
    let mut h = ARTICLE_HASHER.clone();
    h.update(host.as_bytes());
    h.update(rest.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

/// A hash of everything a reader sees of an entry, dates excepted: a publisher re-stamping an
/// unchanged entry does not make it "updated".
pub fn fingerprint(e: &Entry) -> [u8; 16] {
    let visible = (
        &e.title,
        &e.link,
        &e.summary,
        &e.content,
        &e.authors,
        &e.categories,
        &e.enclosures,
        (&e.comments, &e.thumbnail),
    );
    let mut h = FINGERPRINT_HASHER.clone();
    // Serialising our own plain structs cannot fail; an empty hash input would only make
    // every entry look unchanged, never lose data.
    h.update(&serde_json::to_vec(&visible).unwrap_or_default());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashers_made_once_hash_as_new_ones() {
        for (made, context) in [
            (&KEY_HASHER, KEY_CONTEXT),
            (&FINGERPRINT_HASHER, FINGERPRINT_CONTEXT),
            (&ARTICLE_HASHER, ARTICLE_CONTEXT),
        ] {
            let mut fresh = blake3::Hasher::new_derive_key(context);
            fresh.update(b"some input");
            let mut clone = blake3::Hasher::clone(made);
            assert_eq!(clone.update(b"some input").finalize(), fresh.finalize());
        }
        // The key of a known guid, as stored keys were made.
        assert_eq!(
            entry_key("src", "guid", "g1").0,
            [
                109, 177, 115, 224, 162, 145, 206, 192, 79, 240, 213, 222, 205, 32, 147, 29
            ]
        );
    }

    #[test]
    fn links_are_normalised() {
        let n = |s: &str| normalise_link(&Url::parse(s).expect("url")).to_string();
        assert_eq!(
            n("HTTP://Example.ORG:80/a/b?utm_source=x&id=3&fbclid=y&UTM_medium=z#frag"),
            "http://example.org/a/b?id=3#frag"
        );
        assert_eq!(
            n("https://example.org:443/?gclid=1&mc_cid=2&mc_eid=3"),
            "https://example.org/"
        );
        assert_eq!(
            n("https://example.org:8443/p?b=2&a=1"),
            "https://example.org:8443/p?b=2&a=1"
        );
        let a = |s: &str| article_key(&normalise_link(&Url::parse(s).expect("url")));
        assert_eq!(
            a("http://www.example.org/p?utm_source=rss"),
            a("https://example.org/p")
        );
        assert_ne!(a("https://example.org/p"), a("https://example.org/q"));
    }
}
