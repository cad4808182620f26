//! One fetched page read: parsed (a feed by [`parse`], a page source by [`scrape`]),
//! normalised and run through the source's rules. Pure CPU work (a poll runs it on a
//! blocking thread).

use chrono::{DateTime, Utc};

use crate::config::{SourceConfig, SourceKind};
use crate::feed::{normalise, parse, scrape};
use crate::fetch::{Body, Validators};
use crate::ingest::error::PollError;

/// One fetched page, read: what [`read_page`] gives.
pub struct ReadPage {
    pub normalised: normalise::Normalised,
    /// The validators to keep for the next poll.
    pub validators: Validators,
    /// What the parser had to repair.
    pub warnings: Vec<String>,
    /// Entries the source's rules kept out.
    pub filtered: usize,
    /// A digest of the entries as parsed, with what shapes normalising them ([`entries_digest`]).
    pub entries_digest: String,
    /// The entries are the very ones whose digest the caller knew: they were not
    /// normalised, and `normalised.entries` is empty (its feed-level fields are read).
    pub entries_known: bool,
}

/// A fetched body parsed (at most `max_entries` entries), normalised and run through the
/// source's rules. `known` is the [`entries_digest`] of the entries last read: when this
/// page's entries have the same, they are not normalised again (see
/// [`ReadPage::entries_known`]).
pub fn read_page(
    source: &SourceConfig,
    body: Body,
    max_entries: usize,
    now: DateTime<Utc>,
    known: Option<&str>,
) -> Result<ReadPage, PollError> {
    let Body {
        bytes,
        content_type,
        final_url,
        validators,
    } = body;
    let parsed = match &source.kind {
        SourceKind::Feed => {
            parse::parse_document_limited(&bytes, content_type.as_deref(), &final_url, max_entries)?
        }
        kind => scrape::read(
            kind,
            &bytes,
            content_type.as_deref(),
            &final_url,
            max_entries,
            now,
        )?,
    };
    // The raw body can be large (up to max_body_mb): gone before the next copy is made.
    drop(bytes);
    let mut feed = parsed.feed;
    let entries_digest = entries_digest(source, max_entries, &final_url, &feed);
    if known == Some(entries_digest.as_str()) {
        // The feed-level fields only (title, link, ttl, next page).
        feed.entries.clear();
        return Ok(ReadPage {
            normalised: normalise::normalise(feed, &source.name, &final_url, now),
            validators,
            warnings: parsed.warnings,
            filtered: 0,
            entries_digest,
            entries_known: true,
        });
    }
    let mut normalised = normalise::normalise(feed, &source.name, &final_url, now);
    let title = source
        .title
        .clone()
        .or_else(|| normalised.feed_title.clone())
        .unwrap_or_else(|| source.name.clone());
    // What the rules keep out, named in the debug log (read on a blocking thread: the
    // poll's span is not here, so each line names its source).
    let before: Vec<(crate::model::EntryKey, String)> = if tracing::enabled!(tracing::Level::DEBUG)
    {
        normalised
            .entries
            .iter()
            .map(|e| (e.key, e.label().to_string()))
            .collect()
    } else {
        Vec::new()
    };
    let (kept, filtered) = source.transform().apply(&title, normalised.entries);
    if filtered > 0 && !before.is_empty() {
        let kept_keys: std::collections::HashSet<_> = kept.iter().map(|e| e.key).collect();
        for (_, label) in before.iter().filter(|(k, _)| !kept_keys.contains(k)) {
            tracing::debug!(
                source = %source.name,
                entry = %label,
                "entry skipped: kept out by the source's include/exclude rules"
            );
        }
    }
    normalised.entries = kept;
    Ok(ReadPage {
        normalised,
        validators,
        warnings: parsed.warnings,
        filtered,
        entries_digest,
        entries_known: false,
    })
}

/// The version of how a document is read. A store keeps, per source, the digest of the
/// last document read ([`digest`]), and a 200 with the same digest is not read again: so
/// when parsing, normalising or a source's rules change what a document gives, this (with
/// the crate's version, also part of the digest) makes every document be read once more.
const READING: &str = "tributary document reading 2026-11-29";

/// A digest of a fetched document and of everything that shapes what reading it gives:
/// the bytes, their content type and URL, the source's name, title, rules, title template,
/// kind (selectors), new-entry cap and full-text flag, the entry limit, and the version of
/// the reading code. Two equal digests read to the same entries.
pub fn digest(source: &SourceConfig, body: &Body, max_entries: usize) -> String {
    let how = how_read(
        source,
        max_entries,
        body.content_type.as_deref(),
        &body.final_url,
    );
    let mut h = blake3::Hasher::new_derive_key("tributary 2026-11 document digest v1");
    h.update(&(how.len() as u64).to_le_bytes());
    h.update(how.as_bytes());
    h.update(&body.bytes);
    h.finalize().to_hex()[..32].to_string()
}

/// A digest of a document's entries as parsed, in order, with everything else that shapes
/// what normalising them gives an entry already stored: the source's config as in
/// [`digest`], the document's URL, the feed's title (a title template's `{source}` when
/// the config names none) and the feed's own authors (who stand for an entry's).
/// The feed's date and the poll's time change only the dates of entries not yet stored
/// (and an entry is "updated" only by what it shows, not by its dates), so a document whose
/// envelope alone changed (a new `lastBuildDate`) has the same entries digest.
pub fn entries_digest(
    source: &SourceConfig,
    max_entries: usize,
    final_url: &url::Url,
    feed: &parse::ParsedFeed,
) -> String {
    use std::fmt::Write;
    /// `Debug` output straight into the hasher, with no string in between.
    struct Hashing(blake3::Hasher);
    impl Write for Hashing {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.update(s.as_bytes());
            Ok(())
        }
    }
    let how = how_read(source, max_entries, None, final_url);
    let mut h = Hashing(blake3::Hasher::new_derive_key(
        "tributary 2026-11 entries digest v1",
    ));
    h.0.update(&(how.len() as u64).to_le_bytes());
    h.0.update(how.as_bytes());
    // feed-rs's model is plain data (no maps): its Debug text is the same for the same
    // entries, in every process. Writing to the hasher cannot fail.
    let _ = write!(
        h,
        "{:?}\u{0}{:?}\u{0}{:?}",
        feed.title, feed.authors, feed.contributors
    );
    for e in &feed.entries {
        let _ = write!(h, "\u{0}{e:?}");
    }
    h.0.finalize().to_hex()[..32].to_string()
}

/// The part of a digest that says how a document is read: [`READING`], the version, and
/// the source's config that shapes it.
fn how_read(
    source: &SourceConfig,
    max_entries: usize,
    content_type: Option<&str>,
    final_url: &url::Url,
) -> String {
    format!(
        "{READING}\0{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{}\0{max_entries}\0{:?}\0{}",
        crate::VERSION,
        source.name,
        source.title,
        source.rules,
        source.title_template,
        source.kind,
        source.max_new_per_poll,
        source.full_text,
        content_type,
        final_url,
    )
}

/// [`read_page`] on a blocking thread (parsing is CPU work), for async callers: a poll and
/// `tributary preview`.
pub async fn read_page_blocking(
    source: &SourceConfig,
    body: Body,
    max_entries: usize,
    now: DateTime<Utc>,
    known: Option<String>,
) -> Result<ReadPage, PollError> {
    let source = source.clone();
    let read = move || read_page(&source, body, max_entries, now, known.as_deref());
    match tokio::task::spawn_blocking(read).await {
        Ok(read) => read,
        Err(join) => Err(PollError::Task(std::sync::Arc::new(join))),
    }
}
