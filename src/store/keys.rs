//! The key layout: every key the store writes is built and taken apart here, and nowhere
//! else. One sled tree holds everything, under these prefixes:
//!
//! | key                                   | value                                   | what for |
//! |---------------------------------------|-----------------------------------------|----------|
//! | `meta/schema`                         | schema version (ASCII decimal)          | [`super::schema`] |
//! | `meta/converting`                     | empty                                   | a conversion under way |
//! | `meta/prune_held`                     | a [`super::HeldPass`] as JSON           | a retention pass held for confirmation |
//! | `meta/prune_limits`                   | the limits of the last pass, as JSON    | tell tightened limits from steady pruning |
//! | `d/{source}\0{time:8}{key:16}`        | an [`Entry`], packed ([`super::codec`])  | a source's entries, oldest first |
//! | `t/{time:8}{key:16}`                  | the entry's source                      | every entry by [`Entry::sort_time`] |
//! | `m/{source}`                          | a manifest, packed ([`super::codec`])   | a source's entries by key: time and article |
//! | `st/{source}`                         | a [`SourceState`] as JSON               | a source's state |
//! | `c/{article:2}`                       | credits, packed ([`super::codec`])      | who brought an article first (cross-source dedup) |
//! | `x/{source}\0{key:16}`                | `{last seen:8}{article:16}?`            | a tombstone: an entry retention pruned or capped |
//! | `l/{source}\0{article:16}`            | a tombstone's entry key                 | a pruned entry by normalised link (guid changes) |
//! | `fm/{feed:8}`                         | `{instance:8}{ready:1}`                 | a named feed's index (see [`super::feeds`]) |
//! | `f/{instance:8}{time:8}{key:16}`      | the entry's source                      | the entries a named feed takes |
//! | `fg/{instance:8}`                     | empty                                   | an index instance to delete |
//! | `hs/{topic}\0{callback}`              | a [`HubSubscription`] as JSON           | the WebSub hub's subscribers (see [`super::hub`]) |
//! | `wsub/{token}`                        | a [`Subscription`] as JSON              | a WebSub subscription of ours ([`super::websub`]) |
//! | `j/{seq:8}`                           | the entries one write changed           | the search index's journal ([`super::search`]) |
//!
//! `{time:8}` is milliseconds since the epoch, big-endian with the sign bit flipped
//! ([`time_bytes`]), so keys sort in time order and the newest N are read from the end. A
//! source name holds no NUL (it ends at `\0`). An entry's key and every index key end in
//! `{time:8}{key:16}` ([`index_tail`]), which is what a [`super::Cursor`] holds: a source's
//! feed is read straight from its entries, newest last.
//!
//! Two keys per stored entry (`d/`, `t/`), and the rest per source or per bucket: sled's
//! memory and disk grow with keys (a leaf page holds at most 16), so schema 5 packed what
//! schema 4 kept in five keys per entry (`e/`, `t/`, `s/`, `l/`, `a/`). The schema-4
//! prefixes below are read only to convert an older store ([`super::schema`]).
//!
//! [`Credit`]: crate::model::Credit
//! [`SourceState`]: crate::model::SourceState
//! [`HubSubscription`]: super::HubSubscription
//! [`Subscription`]: crate::model::Subscription

use chrono::{DateTime, Utc};

use super::StoreError;
use crate::model::{Entry, EntryKey};

/// `meta/schema`: the layout version ([`super::SCHEMA_VERSION`]).
pub(super) const SCHEMA: &[u8] = b"meta/schema";
/// Present while an older store is being converted to [`super::SCHEMA_VERSION`].
pub(super) const CONVERTING: &[u8] = b"meta/converting";
/// Where a held retention pass is recorded.
pub(super) const PRUNE_HELD: &[u8] = b"meta/prune_held";
/// Where the limits of the last retention pass that ran are recorded.
pub(super) const PRUNE_LIMITS: &[u8] = b"meta/prune_limits";

/// Entries: `d/{source}\0{time:8}{key:16}`.
pub(super) const DATED: &[u8] = b"d/";
/// The time index: `t/{time:8}{key:16}` → source.
pub(super) const TIME: &[u8] = b"t/";
/// Manifests: `m/{source}`.
pub(super) const MANIFEST: &[u8] = b"m/";
/// Source states: `st/{source}`.
pub(super) const STATE: &[u8] = b"st/";
/// Buried links: `l/{source}\0{article:16}` → a tombstoned entry's key.
pub(super) const LINK: &[u8] = b"l/";
/// Credit buckets: `c/{article:2}`.
pub(super) const CREDITS: &[u8] = b"c/";

/// Schema 4's entries, `e/{source}\0{key:16}` → JSON (read only to convert).
pub(super) const OLD_ENTRY: &[u8] = b"e/";
/// Schema 4's per-source time index, `s/{source}\0{time:8}{key:16}` (likewise).
pub(super) const OLD_SOURCE_TIME: &[u8] = b"s/";
/// Schema 4's credits, `a/{article:16}` → JSON (likewise).
pub(super) const OLD_ARTICLE: &[u8] = b"a/";
/// Tombstones: `x/{source}\0{key:16}`.
pub(super) const TOMB: &[u8] = b"x/";
/// The search index's journal: `j/{seq:8}` → the entries one write changed.
pub(super) const JOURNAL: &[u8] = b"j/";
/// Named-feed index keys: `f/{instance:8}{time:8}{key:16}` → source.
pub(super) const FEED_INDEX: &[u8] = b"f/";
/// Named-feed index markers: `fm/{feed:8}` → `{instance:8}{ready:1}`.
pub(super) const FEED_MARKER: &[u8] = b"fm/";
/// Named-feed index instances to delete: `fg/{instance:8}`.
pub(super) const FEED_GARBAGE: &[u8] = b"fg/";

/// WebSub hub subscriptions: `hs/{topic}\0{callback}`.
pub(super) const HUB: &[u8] = b"hs/";

/// `hs/{topic}\0{callback}` (a URL holds no NUL).
pub(super) fn hub(topic: &str, callback: &str) -> Vec<u8> {
    sourced(HUB, topic, &[callback.as_bytes()])
}

/// WebSub subscriptions: `wsub/{token}`.
pub(super) const WEBSUB: &[u8] = b"wsub/";

/// `wsub/{token}`.
pub(super) fn websub_key(token: &str) -> Vec<u8> {
    [WEBSUB, token.as_bytes()].concat()
}

/// Length of an index key's tail, `{time:8}{key:16}`.
pub(super) const TAIL: usize = 8 + 16;

/// `{prefix}{source}\0{tail}`: the shape of every per-source key.
fn sourced(prefix: &[u8], source: &str, tail: &[&[u8]]) -> Vec<u8> {
    let len = tail.iter().map(|t| t.len()).sum::<usize>();
    let mut k = Vec::with_capacity(prefix.len() + source.len() + 1 + len);
    k.extend_from_slice(prefix);
    k.extend_from_slice(source.as_bytes());
    k.push(0);
    for t in tail {
        k.extend_from_slice(t);
    }
    k
}

/// `{prefix}{source}\0`: where a source's keys under `prefix` begin.
pub(super) fn source_prefix(prefix: &[u8], source: &str) -> Vec<u8> {
    sourced(prefix, source, &[])
}

/// Schema 4's `e/{source}\0{key:16}` (to convert an older store).
pub(super) fn old_entry_key(source: &str, key: &EntryKey) -> Vec<u8> {
    sourced(OLD_ENTRY, source, &[&key.0])
}

/// `d/{source}\0{time:8}{key:16}`: an entry, among its source's in time order.
pub(super) fn dated_key(source: &str, time: &[u8; 8], key: &EntryKey) -> Vec<u8> {
    sourced(DATED, source, &[time, &key.0])
}

/// [`dated_key`] of an entry, at its sort time.
pub(super) fn entry_key(e: &Entry) -> Vec<u8> {
    dated_key(&e.source, &time_bytes(e.sort_time()), &e.key)
}

/// `d/{source}\0{tail}`: the entry an index key's tail points at.
pub(super) fn tail_entry_key(source: &str, tail: &[u8; TAIL]) -> Vec<u8> {
    sourced(DATED, source, &[tail])
}

/// `m/{source}`: a source's manifest.
pub(super) fn manifest_key(source: &str) -> Vec<u8> {
    [MANIFEST, source.as_bytes()].concat()
}

/// The source name of a manifest key (`m/{source}`).
pub(super) fn manifest_source(k: &[u8]) -> &[u8] {
    k.get(MANIFEST.len()..).unwrap_or_default()
}

/// `c/{article:2}`: the credit bucket an article belongs to.
pub(super) fn credits_key(article: &[u8; 16]) -> [u8; 4] {
    [CREDITS[0], CREDITS[1], article[0], article[1]]
}

/// `l/{source}\0{article:16}` → a tombstoned entry's key: pruned entries by link.
pub(super) fn link_key(source: &str, article: &[u8; 16]) -> Vec<u8> {
    sourced(LINK, source, &[article])
}

/// `x/{source}\0{key:16}`: a pruned entry's tombstone.
pub(super) fn tomb_key(source: &str, key: &EntryKey) -> Vec<u8> {
    sourced(TOMB, source, &[&key.0])
}

/// `j/{seq:8}`: a record of the search index's journal (big-endian: in order).
pub(super) fn journal_key(seq: u64) -> Vec<u8> {
    [JOURNAL, &seq.to_be_bytes()[..]].concat()
}

/// The number of a journal record's key.
pub(super) fn journal_seq(k: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(k.get(JOURNAL.len()..)?.try_into().ok()?))
}

/// `st/{source}`: a source's state.
pub(super) fn state_key(source: &str) -> Vec<u8> {
    [STATE, source.as_bytes()].concat()
}

/// The source name of a state key (`st/{source}`).
pub(super) fn state_source(k: &[u8]) -> &[u8] {
    k.get(STATE.len()..).unwrap_or_default()
}

/// Milliseconds since the epoch, as big-endian bytes that sort in time order (sign bit
/// flipped so dates before 1970 sort first).
pub(super) fn time_bytes(t: DateTime<Utc>) -> [u8; 8] {
    ((t.timestamp_millis() as u64) ^ (1 << 63)).to_be_bytes()
}

/// `t/{time:8}{key:16}` → source.
pub(super) fn time_key(e: &Entry) -> Vec<u8> {
    [TIME, &time_bytes(e.sort_time()), &e.key.0].concat()
}

/// Schema 4's `s/{source}\0{time:8}{key:16}` (to convert an older store).
pub(super) fn old_source_time_key(e: &Entry) -> Vec<u8> {
    sourced(
        OLD_SOURCE_TIME,
        &e.source,
        &[&time_bytes(e.sort_time()), &e.key.0],
    )
}

/// `fm/{feed:8}`: the marker of a named feed's index.
pub(super) fn feed_marker_key(feed: &[u8; 8]) -> Vec<u8> {
    [FEED_MARKER, feed].concat()
}

/// The feed id of a marker key (`fm/{feed:8}`).
pub(super) fn feed_marker_id(k: &[u8]) -> Option<[u8; 8]> {
    k.get(FEED_MARKER.len()..)
        .and_then(|id| <[u8; 8]>::try_from(id).ok())
}

/// `{instance:8}{ready:1}`: a marker's value.
pub(super) fn feed_marker_value(instance: &[u8; 8], ready: bool) -> Vec<u8> {
    [&instance[..], &[u8::from(ready)]].concat()
}

/// The instance a marker value names (its first 8 bytes).
pub(super) fn feed_marker_instance(v: &[u8]) -> Option<[u8; 8]> {
    v.get(..8).and_then(|i| <[u8; 8]>::try_from(i).ok())
}

/// `fg/{instance:8}`: an index instance queued for deletion.
pub(super) fn feed_garbage_key(instance: &[u8; 8]) -> Vec<u8> {
    [FEED_GARBAGE, instance].concat()
}

/// The instance of a garbage key (`fg/{instance:8}`).
pub(super) fn feed_garbage_instance(k: &[u8]) -> Option<[u8; 8]> {
    k.get(FEED_GARBAGE.len()..)
        .and_then(|i| <[u8; 8]>::try_from(i).ok())
}

/// `f/{instance:8}`: where an index instance's keys begin.
pub(super) fn feed_index_prefix(instance: &[u8; 8]) -> Vec<u8> {
    [FEED_INDEX, instance].concat()
}

/// `f/{instance:8}{time:8}{key:16}` → source.
pub(super) fn feed_index_key(instance: &[u8; 8], e: &Entry) -> Vec<u8> {
    [FEED_INDEX, instance, &time_bytes(e.sort_time()), &e.key.0].concat()
}

/// The tail of an index key (`…{time:8}{key:16}`).
pub(super) fn index_tail(k: &[u8]) -> Option<[u8; TAIL]> {
    let at = k.len().checked_sub(TAIL)?;
    <[u8; TAIL]>::try_from(&k[at..]).ok()
}

/// The entry key in an index key's tail.
pub(super) fn tail_key(tail: &[u8; TAIL]) -> EntryKey {
    let mut key = [0u8; 16];
    key.copy_from_slice(&tail[8..]);
    EntryKey(key)
}

/// The `{time:8}` in an index key's tail.
pub(super) fn tail_time(tail: &[u8; TAIL]) -> [u8; 8] {
    let mut time = [0u8; 8];
    time.copy_from_slice(&tail[..8]);
    time
}

/// A `d/` key and its value as a manifest records them: the entry's key, its time and its
/// article. An unreadable entry is still placed (so it is found, and replaced by the next
/// poll that has it), without an article.
pub(super) fn dated_record(
    source: &str,
    k: &[u8],
    v: &[u8],
) -> Option<(EntryKey, super::codec::Placed)> {
    let tail = index_tail(k)?;
    let article = unpack(source, k, v).ok().and_then(|e| e.article);
    let time = tail_time(&tail);
    Some((tail_key(&tail), super::codec::Placed { time, article }))
}

/// The entry key at the end of a key (`…{key:16}`: index keys, entry keys, tombstones).
pub(super) fn key_at_end(k: &[u8]) -> Option<EntryKey> {
    let at = k.len().checked_sub(16)?;
    <[u8; 16]>::try_from(&k[at..]).ok().map(EntryKey)
}

/// The time in an index key.
pub(super) fn index_time(k: &[u8]) -> Option<DateTime<Utc>> {
    let tail = index_tail(k)?;
    time_from_bytes(<&[u8; 8]>::try_from(&tail[..8]).ok()?)
}

/// The time [`time_bytes`] made these bytes from.
pub(super) fn time_from_bytes(bytes: &[u8; 8]) -> Option<DateTime<Utc>> {
    let millis = (u64::from_be_bytes(*bytes) ^ (1 << 63)) as i64;
    DateTime::from_timestamp_millis(millis)
}

/// The source of a key `{prefix}{source}\0{rest}` whose `rest` is `rest` bytes long (an
/// entry key or tombstone: 16; a per-source index key: 24).
pub(super) fn key_source<'k>(k: &'k [u8], prefix: &[u8], rest: usize) -> Option<&'k [u8]> {
    let end = k.len().checked_sub(rest + 1)?;
    k.get(prefix.len()..end)
}

/// A tombstone's value: when its entry was last seen in the feed, and its article.
pub(super) fn tomb_value(seen: DateTime<Utc>, article: Option<[u8; 16]>) -> Vec<u8> {
    let mut v = seen.timestamp_millis().to_be_bytes().to_vec();
    if let Some(a) = article {
        v.extend_from_slice(&a);
    }
    v
}

/// When a tombstone's entry was last seen in its feed.
pub(super) fn tomb_seen(v: &[u8]) -> Option<DateTime<Utc>> {
    let bytes = <[u8; 8]>::try_from(v.get(..8)?).ok()?;
    DateTime::from_timestamp_millis(i64::from_be_bytes(bytes))
}

/// The article a tombstone's entry had.
pub(super) fn tomb_article(v: &[u8]) -> Option<[u8; 16]> {
    <[u8; 16]>::try_from(v.get(8..24)?).ok()
}

/// A value as stored: JSON.
pub(super) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    // Our model types serialise infallibly (no maps with non-string keys, no custom impls).
    serde_json::to_vec(value).unwrap_or_default()
}

/// A stored value read back; [`StoreError::Corrupt`] names the key.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    key: &[u8],
    value: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(value).map_err(|e| StoreError::Corrupt {
        key: String::from_utf8_lossy(key).to_string(),
        error: e,
    })
}

/// An entry's value read back (see [`super::codec`]); [`StoreError::Damaged`] names the
/// key.
///
/// The entry must be the one its key names (its key and its time end the key): a damaged
/// value that still decodes is not taken for another entry, so nothing is written back
/// under a key computed from damaged bytes.
pub(super) fn unpack(source: &str, key: &[u8], value: &[u8]) -> Result<Entry, StoreError> {
    let damaged = |error| StoreError::Damaged {
        key: String::from_utf8_lossy(key).to_string(),
        error,
    };
    let e = super::codec::unpack_entry(source, value).map_err(damaged)?;
    match index_tail(key) {
        Some(tail) if tail[..8] == time_bytes(e.sort_time()) && tail[8..] == e.key.0 => Ok(e),
        _ => Err(damaged(super::codec::PackError::Elsewhere)),
    }
}

/// Bytes as lowercase hex (keys in logs and reports, cursors in URLs).
pub(super) use crate::model::hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_source_keys_take_apart_as_they_are_built() {
        let key = EntryKey([7; 16]);
        let k = dated_key("src", &[1; 8], &key);
        assert_eq!(&k[..6], b"d/src\0");
        assert_eq!(key_source(&k, DATED, TAIL), Some(&b"src"[..]));
        assert_eq!(key_at_end(&k), Some(key));
        let mut tail = [1u8; TAIL];
        tail[8..].copy_from_slice(&key.0);
        assert_eq!(index_tail(&k), Some(tail));
        assert_eq!(tail_entry_key("src", &tail), k);
        let t = tomb_key("src", &key);
        assert_eq!(key_source(&t, TOMB, 16), Some(&b"src"[..]));
        assert_eq!(state_source(&state_key("src")), b"src");
        assert!(k.starts_with(&source_prefix(DATED, "src")));
        assert_eq!(manifest_source(&manifest_key("src")), b"src");
        assert_eq!(&credits_key(&[5; 16]), b"c/\x05\x05");
    }

    #[test]
    fn time_bytes_sort_in_time_order_across_the_epoch() {
        let at = |ms: i64| DateTime::from_timestamp_millis(ms).expect("in range");
        assert!(time_bytes(at(-1)) < time_bytes(at(0)));
        assert!(time_bytes(at(0)) < time_bytes(at(1)));
        let mut k = b"s/x\0".to_vec();
        k.extend_from_slice(&time_bytes(at(1_700_000_000_123)));
        k.extend_from_slice(&[1; 16]);
        assert_eq!(index_time(&k), Some(at(1_700_000_000_123)));
    }

    #[test]
    fn tombstone_values_round_trip() {
        let seen = DateTime::from_timestamp_millis(1_700_000_000_000).expect("in range");
        let v = tomb_value(seen, Some([3; 16]));
        assert_eq!(
            (tomb_seen(&v), tomb_article(&v)),
            (Some(seen), Some([3; 16]))
        );
        let v = tomb_value(seen, None);
        assert_eq!((tomb_seen(&v), tomb_article(&v)), (Some(seen), None));
    }
}
