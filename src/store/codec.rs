//! How the store packs its per-entry values (schema 5): an entry, a source's manifest, a
//! bucket of credits. JSON stays for the few, small, often-changed values (source states,
//! subscriptions); what there is one of per entry is binary, because a million entries'
//! field names, hex-free byte arrays and sled's per-key costs were most of the store.
//!
//! - **An entry** (`d/…`): a version byte, then the entry as postcard (serde's compact
//!   binary format, field order instead of names) compressed with LZ4 (size prepended).
//!   The source is not stored: it is in the key. Only this file's [`Stored`] mirror is
//!   encoded, never `model::Entry` itself, so a field added to `Entry` fails to compile
//!   here until it is given a place; a new place needs a new [`ENTRY_V1`] (readers of the
//!   old one stay).
//! - **A manifest** (`m/{source}`): every entry a source has, sorted by key, in records of
//!   [`RECORD`] bytes: `{key:16}{time:8}{has article:1}{article:16}`. It answers "is this
//!   key stored, at which time" and "which entry has this link" in one read per batch of a
//!   poll (100 entries); a lookup of one key binary-searches the packed value instead.
//! - **Credits** (`c/{article:2}`): who brought each article first, bucketed by the
//!   article's first two bytes (at most 65,536 keys, about 15 credits each at a million
//!   articles), as postcard. The bucket count trades memory for disk: each new entry
//!   rewrites its bucket whole (about 580 bytes at a million articles), while each key
//!   costs sled page-table memory. At a million entries, 262,144 buckets took 11% less
//!   disk and about 14 MB more memory; 65,536 keep the memory.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::model::{Credit, Enclosure, Entry, EntryKey, FullText, Person};

/// The first byte of an entry value: postcard of [`Stored`], LZ4-compressed.
const ENTRY_V1: u8 = 1;
/// The first byte of a manifest value.
const MANIFEST_V1: u8 = 1;
/// The first byte of a credit bucket.
const CREDITS_V1: u8 = 1;
/// Bytes per manifest record.
pub(super) const RECORD: usize = 16 + 8 + 1 + 16;

/// Why a packed value could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("unknown value version {0}")]
    Version(u8),
    #[error("empty value")]
    Empty,
    #[error("compressed value does not decompress: {0}")]
    Lz4(#[from] lz4_flex::block::DecompressError),
    #[error("packed value does not decode: {0}")]
    Postcard(#[from] postcard::Error),
    #[error("a compressed value claims {0} bytes")]
    Size(usize),
    #[error("the entry is not the one its key names")]
    Elsewhere,
    #[error("a manifest of {0} bytes is not whole records")]
    Records(usize),
}

/// A date as stored: seconds and nanoseconds (any date chrono holds, before 1970 too).
type Date = (i64, u32);

fn date(t: &DateTime<Utc>) -> Date {
    (t.timestamp(), t.timestamp_subsec_nanos())
}

fn undate((secs, nanos): Date) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, nanos).unwrap_or_default()
}

#[derive(Serialize, Deserialize)]
enum StoredFullText {
    Fetched,
    Failed(String),
    Refused(String),
}

/// An entry as packed: `model::Entry` in field order, without its source. Read back
/// owned; written through [`StoredRef`], which borrows the entry's strings instead.
#[derive(Deserialize)]
#[cfg_attr(test, derive(Serialize))]
struct Stored {
    key: [u8; 16],
    guid: Option<String>,
    title: String,
    link: Option<String>,
    summary: Option<String>,
    content: Option<String>,
    authors: Vec<(String, Option<String>, Option<String>)>,
    categories: Vec<String>,
    enclosures: Vec<(String, Option<String>, Option<u64>)>,
    comments: Option<String>,
    thumbnail: Option<String>,
    published: Option<Date>,
    updated: Date,
    first_seen: Date,
    fingerprint: [u8; 16],
    article: Option<[u8; 16]>,
    duplicate_of: Option<([u8; 16], String)>,
    also_in: Vec<String>,
    full_text: Option<StoredFullText>,
    full_content: Option<String>,
}

/// [`StoredFullText`], borrowed: the same variants in the same order.
#[derive(Serialize)]
enum StoredFullTextRef<'a> {
    Fetched,
    Failed(&'a str),
    Refused(&'a str),
}

/// [`Stored`] as written: the same fields in the same order and the same postcard bytes
/// (a `&str` encodes as a `String` does), borrowing from the entry instead of copying
/// its texts (`tests::borrowed_and_owned_forms_pack_alike`).
#[derive(Serialize)]
struct StoredRef<'a> {
    key: &'a [u8; 16],
    guid: Option<&'a str>,
    title: &'a str,
    link: Option<&'a str>,
    summary: Option<&'a str>,
    content: Option<&'a str>,
    authors: Vec<(&'a str, Option<&'a str>, Option<&'a str>)>,
    categories: &'a [String],
    enclosures: Vec<(&'a str, Option<&'a str>, Option<u64>)>,
    comments: Option<&'a str>,
    thumbnail: Option<&'a str>,
    published: Option<Date>,
    updated: Date,
    first_seen: Date,
    fingerprint: &'a [u8; 16],
    article: Option<&'a [u8; 16]>,
    duplicate_of: Option<(&'a [u8; 16], &'a str)>,
    also_in: &'a [String],
    full_text: Option<StoredFullTextRef<'a>>,
    full_content: Option<&'a str>,
}

/// An entry's value (see the module docs).
pub(super) fn pack_entry(e: &Entry) -> Vec<u8> {
    // Every field is listed, so a new one on `Entry` is a compile error here.
    let Entry {
        key,
        source: _,
        guid,
        title,
        link,
        summary,
        content,
        authors,
        categories,
        enclosures,
        comments,
        thumbnail,
        published,
        updated,
        first_seen,
        fingerprint,
        article,
        duplicate_of,
        also_in,
        full_text,
        full_content,
    } = e;
    let stored = StoredRef {
        key: &key.0,
        guid: guid.as_deref(),
        title,
        link: link.as_deref(),
        summary: summary.as_deref(),
        content: content.as_deref(),
        authors: authors
            .iter()
            .map(|p| (p.name.as_str(), p.email.as_deref(), p.uri.as_deref()))
            .collect(),
        categories,
        enclosures: enclosures
            .iter()
            .map(|x| (x.url.as_str(), x.mime_type.as_deref(), x.length))
            .collect(),
        comments: comments.as_deref(),
        thumbnail: thumbnail.as_deref(),
        published: published.as_ref().map(date),
        updated: date(updated),
        first_seen: date(first_seen),
        fingerprint,
        article: article.as_ref(),
        duplicate_of: duplicate_of.as_ref().map(|c| (&c.key.0, c.source.as_str())),
        also_in,
        full_text: full_text.as_ref().map(|f| match f {
            FullText::Fetched => StoredFullTextRef::Fetched,
            FullText::Failed { reason } => StoredFullTextRef::Failed(reason),
            FullText::Refused { reason } => StoredFullTextRef::Refused(reason),
        }),
        full_content: full_content.as_deref(),
    };
    // Sized once for the texts that make up nearly all of it (no doubling as it grows).
    let texts = [summary, content, full_content]
        .iter()
        .map(|t| t.as_ref().map_or(0, String::len))
        .sum::<usize>()
        + title.len()
        + 256;
    // Our types serialise infallibly into a Vec (no maps, no custom impls).
    let plain = postcard::to_extend(&stored, Vec::with_capacity(texts)).unwrap_or_default();
    compress(&plain)
}

/// `{ENTRY_V1}{size:4, little-endian}{LZ4 block}`, compressed straight into the value.
fn compress(plain: &[u8]) -> Vec<u8> {
    let mut out = vec![0; 1 + 4 + lz4_flex::block::get_maximum_output_size(plain.len())];
    out[0] = ENTRY_V1;
    out[1..5].copy_from_slice(&(plain.len() as u32).to_le_bytes());
    match lz4_flex::block::compress_into(plain, &mut out[5..]) {
        Ok(n) => out.truncate(5 + n),
        // Cannot happen (the output has the room LZ4 can need); as lz4_flex's own
        // allocating form, if it did.
        Err(_) => {
            out.truncate(1);
            out.extend_from_slice(&lz4_flex::block::compress_prepend_size(plain));
        }
    }
    out
}

/// An entry's value read back, for `source` (from its key).
pub(super) fn unpack_entry(source: &str, v: &[u8]) -> Result<Entry, PackError> {
    let (&version, body) = v.split_first().ok_or(PackError::Empty)?;
    if version != ENTRY_V1 {
        return Err(PackError::Version(version));
    }
    // The size is read here, not by lz4_flex, to bound it by what LZ4 can expand to
    // (under 255 times), so a damaged value cannot ask for gigabytes.
    let (size, packed) = body.split_at_checked(4).ok_or(PackError::Empty)?;
    let size = u32::from_le_bytes([size[0], size[1], size[2], size[3]]) as usize;
    if size > packed.len().saturating_mul(255).saturating_add(16) {
        return Err(PackError::Size(size));
    }
    let plain = lz4_flex::block::decompress(packed, size)?;
    let s: Stored = postcard::from_bytes(&plain)?;
    Ok(Entry {
        key: EntryKey(s.key),
        source: source.to_string(),
        guid: s.guid,
        title: s.title,
        link: s.link,
        summary: s.summary,
        content: s.content,
        authors: s
            .authors
            .into_iter()
            .map(|(name, email, uri)| Person { name, email, uri })
            .collect(),
        categories: s.categories,
        enclosures: s
            .enclosures
            .into_iter()
            .map(|(url, mime_type, length)| Enclosure {
                url,
                mime_type,
                length,
            })
            .collect(),
        comments: s.comments,
        thumbnail: s.thumbnail,
        published: s.published.map(undate),
        updated: undate(s.updated),
        first_seen: undate(s.first_seen),
        fingerprint: s.fingerprint,
        article: s.article,
        duplicate_of: s.duplicate_of.map(|(key, source)| Credit {
            key: EntryKey(key),
            source,
        }),
        also_in: s.also_in,
        full_text: s.full_text.map(|f| match f {
            StoredFullText::Fetched => FullText::Fetched,
            StoredFullText::Failed(reason) => FullText::Failed { reason },
            StoredFullText::Refused(reason) => FullText::Refused { reason },
        }),
        full_content: s.full_content,
    })
}

/// One manifest record: where an entry sits in its source's keys, and its article.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Placed {
    /// `{time:8}` of its keys ([`super::keys::time_bytes`] of its sort time).
    pub time: [u8; 8],
    pub article: Option<[u8; 16]>,
}

/// A source's manifest: every entry it has, by key (see the module docs).
#[derive(Clone, Debug, Default)]
pub(super) struct Manifest {
    entries: HashMap<EntryKey, Placed, foldhash::fast::RandomState>,
    /// Built when first asked, then kept up to date by [`Manifest::place`].
    by_article: Option<HashMap<[u8; 16], EntryKey, foldhash::fast::RandomState>>,
}

impl Manifest {
    pub fn unpack(v: &[u8]) -> Result<Manifest, PackError> {
        let body = records(v)?;
        let mut entries = HashMap::with_capacity_and_hasher(
            body.len() / RECORD,
            foldhash::fast::RandomState::default(),
        );
        for r in body.chunks_exact(RECORD) {
            let (key, placed) = record(r);
            entries.insert(key, placed);
        }
        Ok(Manifest {
            entries,
            by_article: None,
        })
    }

    /// The value, records sorted by key (so equal manifests pack alike).
    pub fn pack(&self) -> Vec<u8> {
        let mut sorted: Vec<(&EntryKey, &Placed)> = self.entries.iter().collect();
        sorted.sort_unstable_by_key(|(k, _)| k.0);
        let mut out = Vec::with_capacity(1 + sorted.len() * RECORD);
        out.push(MANIFEST_V1);
        for (key, placed) in sorted {
            out.extend_from_slice(&key.0);
            out.extend_from_slice(&placed.time);
            out.push(u8::from(placed.article.is_some()));
            out.extend_from_slice(&placed.article.unwrap_or_default());
        }
        out
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn get(&self, key: &EntryKey) -> Option<Placed> {
        self.entries.get(key).copied()
    }

    /// The stored entry with this article: when several have it, the newest (then the
    /// greatest key), so the answer never depends on the order of a hash map.
    pub fn with_article(&mut self, article: &[u8; 16]) -> Option<EntryKey> {
        let entries = &self.entries;
        let index = self.by_article.get_or_insert_with(|| {
            let mut index: HashMap<[u8; 16], EntryKey, foldhash::fast::RandomState> =
                HashMap::default();
            for (k, p) in entries {
                let Some(a) = p.article else {
                    continue;
                };
                let newer = index
                    .get(&a)
                    .and_then(|other| entries.get(other).map(|o| (o.time, other.0)))
                    .is_none_or(|held| (p.time, k.0) > held);
                if newer {
                    index.insert(a, *k);
                }
            }
            index
        });
        index.get(article).copied()
    }

    /// Places an entry; the article index, once built, follows (a poll storing n entries
    /// would otherwise rebuild it n times).
    pub fn place(&mut self, key: EntryKey, placed: Placed) {
        let old = self.entries.insert(key, placed);
        if let Some(index) = &mut self.by_article {
            if let Some(a) = old.and_then(|o| o.article)
                && index.get(&a) == Some(&key)
            {
                index.remove(&a);
            }
            if let Some(a) = placed.article {
                index.insert(a, key);
            }
        }
    }

    pub fn remove(&mut self, key: &EntryKey) -> Option<Placed> {
        let old = self.entries.remove(key);
        // Another entry may share the article: the index is built again when next asked.
        if let Some(index) = &self.by_article
            && let Some(a) = old.and_then(|o| o.article)
            && index.get(&a) == Some(key)
        {
            self.by_article = None;
        }
        old
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&EntryKey, &Placed)> {
        self.entries.iter()
    }
}

/// Where a packed manifest places `key`, found by binary search in the value itself (its
/// records are sorted by key): a lookup decodes nothing.
pub(super) fn find_in_packed(v: &[u8], key: &EntryKey) -> Result<Option<Placed>, PackError> {
    let body = records(v)?;
    let (mut lo, mut hi) = (0, body.len() / RECORD);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let r = &body[mid * RECORD..(mid + 1) * RECORD];
        match r[..16].cmp(&key.0[..]) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Ok(Some(record(r).1)),
        }
    }
    Ok(None)
}

/// A packed manifest's records (checked: its version, whole records).
fn records(v: &[u8]) -> Result<&[u8], PackError> {
    let (&version, body) = v.split_first().ok_or(PackError::Empty)?;
    if version != MANIFEST_V1 {
        return Err(PackError::Version(version));
    }
    if body.len() % RECORD != 0 {
        return Err(PackError::Records(body.len()));
    }
    Ok(body)
}

/// One record of [`RECORD`] bytes: `{key:16}{time:8}{has article:1}{article:16}`.
fn record(r: &[u8]) -> (EntryKey, Placed) {
    let mut key = [0u8; 16];
    key.copy_from_slice(&r[..16]);
    let mut time = [0u8; 8];
    time.copy_from_slice(&r[16..24]);
    let article = (r[24] == 1).then(|| {
        let mut a = [0u8; 16];
        a.copy_from_slice(&r[25..41]);
        a
    });
    (EntryKey(key), Placed { time, article })
}

/// A bucket of credits: articles whose first two bytes agree, each with who had it first.
#[derive(Clone, Debug, Default)]
pub(super) struct Credits(Vec<([u8; 16], Credit)>);

impl Credits {
    pub fn unpack(v: &[u8]) -> Result<Credits, PackError> {
        let (&version, body) = v.split_first().ok_or(PackError::Empty)?;
        if version != CREDITS_V1 {
            return Err(PackError::Version(version));
        }
        let raw: Vec<([u8; 16], [u8; 16], String)> = postcard::from_bytes(body)?;
        Ok(Credits(
            raw.into_iter()
                .map(|(a, key, source)| {
                    (
                        a,
                        Credit {
                            key: EntryKey(key),
                            source,
                        },
                    )
                })
                .collect(),
        ))
    }

    pub fn pack(&self) -> Vec<u8> {
        let raw: Vec<(&[u8; 16], &[u8; 16], &str)> = self
            .0
            .iter()
            .map(|(a, c)| (a, &c.key.0, c.source.as_str()))
            .collect();
        let mut out = vec![CREDITS_V1];
        out.extend_from_slice(&postcard::to_allocvec(&raw).unwrap_or_default());
        out
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    #[cfg(test)]
    pub fn iter(&self) -> impl Iterator<Item = &([u8; 16], Credit)> {
        self.0.iter()
    }

    fn find(&self, article: &[u8; 16]) -> Result<usize, usize> {
        self.0.binary_search_by(|(a, _)| a.cmp(article))
    }

    pub fn get(&self, article: &[u8; 16]) -> Option<&Credit> {
        self.find(article).ok().map(|i| &self.0[i].1)
    }

    pub fn set(&mut self, article: [u8; 16], credit: Credit) {
        match self.find(&article) {
            Ok(i) => self.0[i].1 = credit,
            Err(i) => self.0.insert(i, (article, credit)),
        }
    }

    pub fn remove(&mut self, article: &[u8; 16]) {
        if let Ok(i) = self.find(article) {
            self.0.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_entry() -> Entry {
        let mut e = crate::store::tests::entry("g", 3, "Title – ünïcode");
        e.source = "src".into();
        e.link = Some("https://example.com/a".into());
        e.summary = Some("<p>sum</p>".into());
        e.content = Some("<p>content</p>".repeat(40));
        e.authors = vec![Person {
            name: "A".into(),
            email: Some("a@example.com".into()),
            uri: None,
        }];
        e.categories = vec!["x".into(), "y".into()];
        e.enclosures = vec![Enclosure {
            url: "https://example.com/a.mp3".into(),
            mime_type: Some("audio/mpeg".into()),
            length: Some(12345),
        }];
        e.comments = Some("https://example.com/c".into());
        e.thumbnail = Some("https://example.com/t.png".into());
        e.published = DateTime::from_timestamp(-86_400 * 400, 123_456_789);
        e.article = Some([9; 16]);
        e.duplicate_of = Some(Credit {
            key: EntryKey([4; 16]),
            source: "other".into(),
        });
        e.also_in = vec!["third".into()];
        e.full_text = Some(FullText::Failed {
            reason: "gone".into(),
        });
        e.full_content = Some("<p>full</p>".into());
        e
    }

    #[test]
    fn an_entry_packs_and_unpacks_to_itself() {
        let e = full_entry();
        let v = pack_entry(&e);
        assert_eq!(v[0], ENTRY_V1);
        assert_eq!(unpack_entry("src", &v).expect("unpacks"), e);
        let bare = crate::store::tests::entry("h", 1, "");
        assert_eq!(
            unpack_entry("s", &pack_entry(&bare)).expect("unpacks"),
            bare
        );
        for f in [FullText::Fetched, FullText::Refused { reason: "r".into() }] {
            let mut e = full_entry();
            e.full_text = Some(f);
            assert_eq!(unpack_entry("src", &pack_entry(&e)).expect("unpacks"), e);
        }
    }

    /// The borrowed form writes exactly what the owned form reads (and what schema 5
    /// wrote, when it serialised the owned form through lz4_flex's own framing).
    #[test]
    fn borrowed_and_owned_forms_pack_alike() {
        let owned = |e: &Entry| Stored {
            key: e.key.0,
            guid: e.guid.clone(),
            title: e.title.clone(),
            link: e.link.clone(),
            summary: e.summary.clone(),
            content: e.content.clone(),
            authors: e
                .authors
                .iter()
                .map(|p| (p.name.clone(), p.email.clone(), p.uri.clone()))
                .collect(),
            categories: e.categories.clone(),
            enclosures: e
                .enclosures
                .iter()
                .map(|x| (x.url.clone(), x.mime_type.clone(), x.length))
                .collect(),
            comments: e.comments.clone(),
            thumbnail: e.thumbnail.clone(),
            published: e.published.as_ref().map(date),
            updated: date(&e.updated),
            first_seen: date(&e.first_seen),
            fingerprint: e.fingerprint,
            article: e.article,
            duplicate_of: e.duplicate_of.as_ref().map(|c| (c.key.0, c.source.clone())),
            also_in: e.also_in.clone(),
            full_text: e.full_text.as_ref().map(|f| match f {
                FullText::Fetched => StoredFullText::Fetched,
                FullText::Failed { reason } => StoredFullText::Failed(reason.clone()),
                FullText::Refused { reason } => StoredFullText::Refused(reason.clone()),
            }),
            full_content: e.full_content.clone(),
        };
        let mut entries = vec![full_entry(), crate::store::tests::entry("h", 1, "")];
        for f in [FullText::Fetched, FullText::Refused { reason: "r".into() }] {
            let mut e = full_entry();
            e.full_text = Some(f);
            entries.push(e);
        }
        for e in &entries {
            let plain = postcard::to_allocvec(&owned(e)).expect("serialises");
            let mut schema5 = vec![ENTRY_V1];
            schema5.extend_from_slice(&lz4_flex::block::compress_prepend_size(&plain));
            assert_eq!(pack_entry(e), schema5, "{}", e.title);
        }
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let v = pack_entry(&full_entry());
        assert!(matches!(unpack_entry("s", &[]), Err(PackError::Empty)));
        assert!(matches!(
            unpack_entry("s", &[7, 1, 2]),
            Err(PackError::Version(7))
        ));
        for cut in [1, 2, 5, v.len() / 2, v.len() - 1] {
            assert!(unpack_entry("s", &v[..cut]).is_err(), "cut at {cut}");
        }
        let mut flipped = v.clone();
        let at = flipped.len() - 3;
        flipped[at] ^= 0xff;
        let _ = unpack_entry("s", &flipped);
        assert!(Manifest::unpack(&[MANIFEST_V1, 1, 2]).is_err());
        assert!(Credits::unpack(&[CREDITS_V1, 200]).is_err());
    }

    #[test]
    fn manifests_and_credits_round_trip() {
        let mut m = Manifest::default();
        let a = EntryKey([1; 16]);
        let b = EntryKey([2; 16]);
        m.place(
            a,
            Placed {
                time: [3; 8],
                article: Some([5; 16]),
            },
        );
        m.place(
            b,
            Placed {
                time: [4; 8],
                article: None,
            },
        );
        assert_eq!(m.with_article(&[5; 16]), Some(a));
        // The index follows placing once built: a moved article, a new one.
        m.place(
            b,
            Placed {
                time: [4; 8],
                article: Some([6; 16]),
            },
        );
        assert_eq!(m.with_article(&[6; 16]), Some(b));
        m.place(
            b,
            Placed {
                time: [4; 8],
                article: None,
            },
        );
        assert_eq!(m.with_article(&[6; 16]), None);
        assert_eq!(m.with_article(&[5; 16]), Some(a));
        let packed = m.pack();
        for k in [a, b, EntryKey([0; 16]), EntryKey([9; 16])] {
            assert_eq!(find_in_packed(&packed, &k).expect("finds"), m.get(&k));
        }
        assert!(find_in_packed(&packed[..packed.len() - 1], &a).is_err());
        let back = Manifest::unpack(&m.pack()).expect("unpacks");
        assert_eq!(back.get(&a), m.get(&a));
        assert_eq!(back.get(&b), m.get(&b));
        assert_eq!(back.pack(), m.pack());
        m.remove(&a);
        assert_eq!(m.with_article(&[5; 16]), None);
        // Two entries with one article: the newer answers, however the map iterates.
        for _ in 0..8 {
            let mut m = Manifest::default();
            for (k, t) in [([1; 16], 5u8), ([2; 16], 9), ([3; 16], 7)] {
                let time = [t; 8];
                m.place(
                    EntryKey(k),
                    Placed {
                        time,
                        article: Some([8; 16]),
                    },
                );
            }
            let m = Manifest::unpack(&m.pack()).expect("unpacks");
            assert_eq!(m.clone().with_article(&[8; 16]), Some(EntryKey([2; 16])));
        }

        let mut c = Credits::default();
        let credit = |s: &str| Credit {
            key: EntryKey([7; 16]),
            source: s.into(),
        };
        c.set([2; 16], credit("two"));
        c.set([1; 16], credit("one"));
        c.set([2; 16], credit("again"));
        let back = Credits::unpack(&c.pack()).expect("unpacks");
        assert_eq!(back.get(&[2; 16]), Some(&credit("again")));
        assert_eq!(back.get(&[1; 16]), Some(&credit("one")));
        assert_eq!(back.len(), 2);
        c.remove(&[1; 16]);
        assert_eq!(c.get(&[1; 16]), None);
    }
}
