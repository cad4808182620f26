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
}

/// A fetched body parsed (at most `max_entries` entries), normalised and run through the
/// source's rules.
pub fn read_page(
    source: &SourceConfig,
    body: Body,
    max_entries: usize,
    now: DateTime<Utc>,
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
    let mut normalised = normalise::normalise(parsed.feed, &source.name, &final_url, now);
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
    let how = format!(
        "{READING}\0{}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{:?}\0{}\0{max_entries}\0{:?}\0{}",
        crate::VERSION,
        source.name,
        source.title,
        source.rules,
        source.title_template,
        source.kind,
        source.max_new_per_poll,
        source.full_text,
        body.content_type,
        body.final_url,
    );
    let mut h = blake3::Hasher::new_derive_key("tributary 2026-11 document digest v1");
    h.update(&(how.len() as u64).to_le_bytes());
    h.update(how.as_bytes());
    h.update(&body.bytes);
    h.finalize().to_hex()[..32].to_string()
}

/// [`read_page`] on a blocking thread (parsing is CPU work), for async callers: a poll and
/// `tributary preview`.
pub async fn read_page_blocking(
    source: &SourceConfig,
    body: Body,
    max_entries: usize,
    now: DateTime<Utc>,
) -> Result<ReadPage, PollError> {
    let source = source.clone();
    match tokio::task::spawn_blocking(move || read_page(&source, body, max_entries, now)).await {
        Ok(read) => read,
        Err(join) => Err(PollError::Task(std::sync::Arc::new(join))),
    }
}
