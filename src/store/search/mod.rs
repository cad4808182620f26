//! The full-text index beside the store: a tantivy index in `{store}/search/`, one document
//! per stored entry, kept by the store's own writes through a journal (see `journal`) and
//! taken in by the indexer (`indexer`), which also rebuilds it from the store when it is
//! missing, damaged or of another version. Only this folder touches tantivy.
//!
//! A document holds:
//!
//! | field      | what                                             | how |
//! |------------|--------------------------------------------------|-----|
//! | `id`       | the entry's key, hex                             | a raw term: updates and removals find it |
//! | `source`   | the source's name                                | a raw term, stored: `source:`, `tag:`, the scope |
//! | `tail`     | `{time:8}{key:16}`, where the entry is stored    | stored: a hit is read from the store by it |
//! | `title`    | the title                                        | words, with positions (boosted ×3) |
//! | `body`     | summary, content and article, as plain text      | words, with positions, up to [`MAX_BODY_BYTES`] |
//! | `pairs`    | the body again                                   | each two neighbouring words as one term: phrases |
//! | `author`   | the authors' names                               | words, with positions |
//! | `category` | each category                                    | words, with positions |
//! | `host`     | the link's host and each parent domain           | raw terms: `host:example.org` finds `www.example.org` |
//! | `order`    | sort time in seconds << 29, with 29 bits of key  | fast: newest first, date ranges, paging |
//!
//! Words are made by `analyzer` (CJK as character pairs, accents folded).

mod analyzer;
mod bounded;
mod indexer;
mod journal;

use std::collections::HashSet;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tantivy::collector::TopDocs;
use tantivy::query::{
    AllQuery, BooleanQuery, BoostQuery, EmptyQuery, Occur, PhraseQuery, Query as TantivyQuery,
    RangeQuery, TermQuery, TermSetQuery,
};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::{DocAddress, Index, IndexReader, Order, ReloadPolicy, TantivyDocument, Term};

use crate::model::{Entry, EntryKey};
use crate::query;
pub use crate::query::{Query, QueryError};
pub use bounded::Clock;
use bounded::bounded;
pub use indexer::{Progress, REINDEX_FILE, Round, SearchReport, SearchStatus, Searching};
pub(super) use journal::Notes;

/// A clause of a boolean query.
type Clause = (Occur, Box<dyn TantivyQuery>);

/// A document found, with its `order` when sorted by it.
type Ranked = (Option<i64>, DocAddress);

/// The layout of the index's documents: an index of another version is rebuilt.
pub const INDEX_VERSION: u32 = 1;

/// The most plain text of one entry's summary, content and article that is indexed.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The most results a relevance-sorted search may skip (paging deeper is refused: each page
/// costs the results before it).
pub const MAX_SKIP: usize = 10_000;

/// The writer's memory budget: the least tantivy accepts (15 MB).
const WRITER_MEMORY: usize = 15_000_000;

/// How long a newest-first search over a big index ([`BUDGET_FROM_DOCS`] documents or
/// more) may take before it ends its page early (with a next link from where it stopped)
/// instead of looking further back. A smaller index is searched whole in less.
const SEARCH_BUDGET: Duration = Duration::from_millis(40);
const BUDGET_FROM_DOCS: u64 = 100_000;

/// The most time a search may take, however costly its terms: past it, every part of its
/// query ends (see `bounded`). A newest-first page that searched at least one window of
/// time whole ends there (with a next link); else the search fails
/// ([`SearchError::TooSlow`]).
pub const TIME_LIMIT: Duration = Duration::from_millis(250);

/// The first window of time a newest-first search looks in: at least a day (in `order`
/// units), at least 1/64 of the time the index spans; each next one is
/// [`WINDOW_GROWTH`] times wider (so a whole search takes at most four).
const FIRST_WINDOW: i64 = 86_400 << 29;
const WINDOW_GROWTH: i64 = 8;

/// How a title's words weigh against the rest in relevance.
const TITLE_BOOST: f32 = 3.0;

/// The order of results.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    /// Newest first (by the entry's sort time).
    Newest,
    /// Best match first (BM25, titles weighing more).
    Relevance,
}

/// Where a page of results starts: below an `order` (newest first), or after skipping
/// some (by relevance).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Below(i64),
    Skip(usize),
}

/// One result: where its entry is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    pub source: String,
    pub tail: [u8; 24],
}

/// A page of results, and where the next one starts (`None`: this was the last).
#[derive(Clone, Debug, Default)]
pub struct Found {
    pub hits: Vec<Hit>,
    pub next: Option<Start>,
}

/// Which sources a search may see: those of the view (a saved search's, a tag's), and
/// never one that is not published.
pub struct Scope<'a> {
    /// Whether the view publishes this source.
    pub publishes: &'a dyn Fn(&str) -> bool,
    /// The sources with this tag (for `tag:`).
    pub tagged: &'a dyn Fn(&str) -> Vec<String>,
}

/// Why a search could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("{0}")]
    Query(#[from] QueryError),
    #[error("a search cannot skip more than {MAX_SKIP} results")]
    TooDeep,
    #[error(
        "the search took longer than {} ms: narrow it (more words, source:, tag:, after: or before:)",
        TIME_LIMIT.as_millis()
    )]
    TooSlow,
    #[error("the search index failed: {0}")]
    Index(#[from] tantivy::TantivyError),
    #[error("{0}")]
    Store(Box<crate::store::StoreError>),
}

/// What the terms of one search are made with.
struct Terms<'a, 's> {
    scope: &'a Scope<'s>,
    analyzer: &'a mut tantivy::tokenizer::TextAnalyzer,
    clock: &'a Arc<Clock>,
}

/// The index's fields.
#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    source: Field,
    tail: Field,
    title: Field,
    body: Field,
    pairs: Field,
    author: Field,
    category: Field,
    host: Field,
    order: Field,
}

/// The sources the index has documents of (see [`SearchIndex::indexed_sources`]).
#[derive(Default)]
struct KnownSources {
    /// The index's terms were read.
    loaded: bool,
    names: HashSet<String>,
    /// `names`, sorted, until one is added.
    list: Option<std::sync::Arc<Vec<String>>>,
}

/// An open index and its reader.
pub struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The sources with documents: the scope is checked against them.
    sources: Mutex<KnownSources>,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let words = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(analyzer::NAME)
            .set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING),
        source: b.add_text_field("source", STRING | STORED),
        tail: b.add_bytes_field("tail", STORED),
        title: b.add_text_field("title", words.clone()),
        body: b.add_text_field("body", words.clone()),
        pairs: b.add_text_field(
            "pairs",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(analyzer::PAIRS)
                    .set_index_option(IndexRecordOption::Basic),
            ),
        ),
        author: b.add_text_field("author", words.clone()),
        category: b.add_text_field("category", words),
        host: b.add_text_field("host", STRING),
        order: b.add_i64_field("order", FAST | INDEXED),
    };
    (b.build(), fields)
}

/// The sort key of an entry: its sort time in seconds, then 29 bits of its key (so that
/// entries of the same second still have an order to page by).
pub fn order_of(time: chrono::DateTime<chrono::Utc>, key: &EntryKey) -> i64 {
    let seconds = time.timestamp().clamp(-(1 << 33), (1 << 33) - 1);
    let low = u32::from_be_bytes([key.0[0], key.0[1], key.0[2], key.0[3]]) >> 3;
    (seconds << 29) | i64::from(low)
}

/// The first `order` of a time (a date range's bound).
fn order_at(time: chrono::DateTime<chrono::Utc>) -> i64 {
    time.timestamp().clamp(-(1 << 33), (1 << 33) - 1) << 29
}

impl SearchIndex {
    /// Opens the index in `dir`, or makes an empty one there when there is none.
    pub fn open_or_create(dir: &Path) -> tantivy::Result<SearchIndex> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir)?;
        let directory = tantivy::directory::MmapDirectory::open(dir)?;
        let index = Index::open_or_create(directory, schema)?;
        index
            .tokenizers()
            .register(analyzer::NAME, analyzer::analyzer());
        index
            .tokenizers()
            .register(analyzer::PAIRS, analyzer::pairs());
        // No cache of decompressed document blocks: a page reads 50 documents of two
        // short fields, and 100 blocks per segment would be megabytes kept for nothing.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .doc_store_cache_num_blocks(0)
            .try_into()?;
        Ok(SearchIndex {
            index,
            reader,
            fields,
            sources: Mutex::default(),
        })
    }

    /// What the last commit recorded (`None`: nothing was ever committed).
    pub fn payload(&self) -> tantivy::Result<Option<String>> {
        Ok(self.index.load_metas()?.payload)
    }

    /// The index's writer: one indexing thread, the least memory tantivy allows, one
    /// merging thread (the daemon's memory is bounded; indexing is not in a hurry).
    pub fn writer(&self) -> tantivy::Result<tantivy::IndexWriter> {
        let options = tantivy::indexer::IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_MEMORY)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        let writer = self.index.writer_with_options(options)?;
        // Merges of up to a few segments at a time, and never of the biggest ones: a
        // merge's memory grows with the segments it merges.
        let mut policy = tantivy::indexer::LogMergePolicy::default();
        policy.set_max_docs_before_merge(2_000_000);
        writer.set_merge_policy(Box::new(policy));
        Ok(writer)
    }

    /// Makes the last commit visible to searches.
    pub fn reload(&self) -> tantivy::Result<()> {
        self.reader.reload()
    }

    /// Documents searches see.
    pub fn num_docs(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The term that finds an entry's document.
    fn id_term(&self, key: &EntryKey) -> Term {
        Term::from_field_text(self.fields.id, &key.hex())
    }

    /// The document of a stored entry (its source noted as indexed).
    fn document(&self, e: &Entry, tail: &[u8; 24]) -> TantivyDocument {
        let f = self.fields;
        {
            let mut known = self
                .sources
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if !known.names.contains(&e.source) {
                known.names.insert(e.source.clone());
                known.list = None;
            }
        }
        let mut doc = TantivyDocument::default();
        doc.add_text(f.id, e.key.hex());
        doc.add_text(f.source, &e.source);
        doc.add_bytes(f.tail, &tail[..]);
        doc.add_text(f.title, &e.title);
        let mut body = String::new();
        for (text, html) in [
            (e.summary.as_deref(), true),
            (e.content.as_deref(), true),
            (e.full_content.as_deref(), true),
        ] {
            if let Some(text) = text {
                crate::feed::text::search_text(text, html, &mut body, MAX_BODY_BYTES);
            }
        }
        doc.add_text(f.pairs, &body);
        doc.add_text(f.body, body);
        for a in &e.authors {
            doc.add_text(f.author, &a.name);
        }
        for c in e.categories.iter().take(64) {
            doc.add_text(f.category, c);
        }
        if let Some(host) = e
            .link
            .as_deref()
            .and_then(|l| url::Url::parse(l).ok())
            .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        {
            for host in host_and_parents(&host) {
                doc.add_text(f.host, host);
            }
        }
        doc.add_i64(f.order, order_of(e.sort_time(), &e.key));
        doc
    }

    /// The clock of a search (of one or more calls of [`SearchIndex::search`]): its
    /// budget when the index is big, and the [`TIME_LIMIT`].
    pub fn clock(&self) -> Arc<Clock> {
        Clock::start(
            (self.num_docs() >= BUDGET_FROM_DOCS).then_some(SEARCH_BUDGET),
            TIME_LIMIT,
        )
    }

    /// Finds a page of entries for `query` among the sources `scope` allows, in the time
    /// `clock` leaves.
    pub fn search(
        &self,
        query: &Query,
        scope: &Scope<'_>,
        sort: Sort,
        start: Option<Start>,
        limit: usize,
        clock: &Arc<Clock>,
    ) -> Result<Found, SearchError> {
        let searcher = self.reader.searcher();
        let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
        let mut analyzer = analyzer::analyzer();
        let mut terms = Terms {
            scope,
            analyzer: &mut analyzer,
            clock,
        };
        for group in &query.groups {
            let mut alternatives = Vec::with_capacity(group.len());
            for term in group {
                alternatives.push((Occur::Should, self.term_query(term, &mut terms)?));
            }
            clauses.push((Occur::Must, one_of(alternatives)));
        }
        for term in &query.exclude {
            clauses.push((Occur::MustNot, self.term_query(term, &mut terms)?));
        }
        let floor = query.after.map(order_at);
        let mut ceiling = query.before.map(order_at);
        let mut skip = 0;
        match start {
            Some(Start::Below(order)) => ceiling = Some(ceiling.map_or(order, |c| c.min(order))),
            Some(Start::Skip(n)) if n > MAX_SKIP => return Err(SearchError::TooDeep),
            Some(Start::Skip(n)) => skip = n,
            None => {}
        }
        if query.groups.is_empty() {
            clauses.push((Occur::Must, bounded(Box::new(AllQuery), clock)));
        }
        if let Some((occur, filter)) = self.scope_filter(&searcher, scope, clock)? {
            clauses.push((occur, filter));
        }
        let fetch = limit.saturating_add(1);
        let mut cut_short = None;
        let addresses: Vec<(Option<i64>, DocAddress)> = match sort {
            Sort::Newest => {
                let (found, stopped) =
                    self.newest(&searcher, &clauses, floor, ceiling, fetch, clock)?;
                cut_short = stopped;
                found
            }
            Sort::Relevance => {
                let mut clauses = clauses;
                if floor.is_some() || ceiling.is_some() {
                    clauses.push((Occur::Must, self.order_range(floor, ceiling, clock)));
                }
                clock.limit(clock.hard());
                let found = searcher.search(
                    &BooleanQuery::new(clauses),
                    &TopDocs::with_limit(fetch).and_offset(skip).order_by_score(),
                )?;
                if clock.ran_out() {
                    return Err(SearchError::TooSlow);
                }
                found.into_iter().map(|(_, a)| (None, a)).collect()
            }
        };
        let more = addresses.len() > limit;
        let mut found = Found::default();
        let mut last_order = None;
        for (order, address) in addresses.into_iter().take(limit) {
            let doc: TantivyDocument = searcher.doc(address)?;
            found.hits.extend(self.hit(&doc));
            last_order = order.or(last_order);
        }
        if let Some(below) = cut_short.filter(|_| !more) {
            // The time ran out before the page was full: it holds every match newer than
            // `below`, and the next page carries on from there.
            found.next = Some(Start::Below(below));
        }
        if more {
            found.next = match sort {
                Sort::Newest => last_order.map(Start::Below),
                Sort::Relevance => Some(skip + limit)
                    .filter(|&n| n <= MAX_SKIP)
                    .map(Start::Skip),
            };
        }
        Ok(found)
    }

    /// The newest `fetch` matches of `clauses` in `[floor, ceiling)`, by windows of time
    /// from the newest back, each [`WINDOW_GROWTH`] times the one before, until enough were
    /// found or the range is done: a query that matches often is answered from the newest
    /// entries alone, without reading (or checking the phrases of) all its matches.
    ///
    /// The page ends early, the second value saying where the unsearched part begins (the
    /// next page starts below it), when the clock's budget is spent after a window, or
    /// when a window runs out of time (its part of the page is left for the next). The
    /// search's first window has the whole hard limit ([`TIME_LIMIT`]): when even it runs
    /// out, the search fails.
    fn newest(
        &self,
        searcher: &tantivy::Searcher,
        clauses: &[(Occur, Box<dyn TantivyQuery>)],
        floor: Option<i64>,
        ceiling: Option<i64>,
        fetch: usize,
        clock: &Arc<Clock>,
    ) -> Result<(Vec<Ranked>, Option<i64>), SearchError> {
        let Some((oldest, newest)) = self.order_bounds(searcher)? else {
            return Ok((Vec::new(), None));
        };
        let floor = floor.map_or(oldest, |f| f.max(oldest));
        let mut high = ceiling.map_or(newest.saturating_add(1), |c| {
            c.min(newest.saturating_add(1))
        });
        let mut width = FIRST_WINDOW.max(high.saturating_sub(floor) / 64);
        let mut found = Vec::new();
        while high > floor {
            let low = high.saturating_sub(width).max(floor);
            let mut window: Vec<(Occur, Box<dyn TantivyQuery>)> =
                clauses.iter().map(|(o, q)| (*o, q.box_clone())).collect();
            window.push((Occur::Must, self.order_range(Some(low), Some(high), clock)));
            let collector = TopDocs::with_limit(fetch - found.len())
                .order_by_fast_field::<i64>("order", Order::Desc);
            let first = !clock.any_window_done();
            clock.limit(match clock.budget() {
                Some(budget) if !first => budget.min(clock.hard()),
                _ => clock.hard(),
            });
            let matches = searcher.search(&BooleanQuery::new(window), &collector)?;
            if clock.ran_out() {
                return if first {
                    Err(SearchError::TooSlow)
                } else {
                    Ok((found, Some(high)))
                };
            }
            clock.window_done();
            found.extend(matches);
            high = low;
            if found.len() >= fetch || high <= floor {
                return Ok((found, None));
            }
            if clock.over_budget() {
                return Ok((found, Some(high)));
            }
            width = width.saturating_mul(WINDOW_GROWTH);
        }
        Ok((found, None))
    }

    /// `order` in `[low, high)` (either side open when `None`).
    fn order_range(
        &self,
        low: Option<i64>,
        high: Option<i64>,
        clock: &Arc<Clock>,
    ) -> Box<dyn TantivyQuery> {
        let term = |o: i64| Term::from_field_i64(self.fields.order, o);
        bounded(
            Box::new(RangeQuery::new(
                low.map_or(Bound::Unbounded, |o| Bound::Included(term(o))),
                high.map_or(Bound::Unbounded, |o| Bound::Excluded(term(o))),
            )),
            clock,
        )
    }

    /// The smallest and largest `order` in the index (`None`: it is empty).
    fn order_bounds(
        &self,
        searcher: &tantivy::Searcher,
    ) -> Result<Option<(i64, i64)>, SearchError> {
        let mut bounds: Option<(i64, i64)> = None;
        for segment in searcher.segment_readers() {
            if segment.num_docs() == 0 {
                continue;
            }
            let column = segment.fast_fields().i64("order")?;
            let (lo, hi) = (column.min_value(), column.max_value());
            bounds = Some(bounds.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
        Ok(bounds)
    }

    /// One term of a query as a tantivy query, bounded by the clock.
    fn term_query(
        &self,
        term: &query::Term,
        with: &mut Terms<'_, '_>,
    ) -> Result<Box<dyn TantivyQuery>, SearchError> {
        use query::Field as F;
        let f = self.fields;
        let clock = with.clock;
        let fields: &[(Field, f32)] = match term.field {
            F::Source => {
                return Ok(bounded(
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.source, &term.text),
                        IndexRecordOption::Basic,
                    )),
                    clock,
                ));
            }
            F::Tag => {
                let terms = (with.scope.tagged)(&term.text)
                    .into_iter()
                    .map(|s| Term::from_field_text(f.source, &s))
                    .collect::<Vec<_>>();
                return Ok(if terms.is_empty() {
                    Box::new(EmptyQuery)
                } else {
                    bounded(Box::new(TermSetQuery::new(terms)), clock)
                });
            }
            F::Host => {
                let host = term.text.trim().trim_end_matches('.').to_ascii_lowercase();
                return Ok(bounded(
                    Box::new(TermQuery::new(
                        Term::from_field_text(f.host, &host),
                        IndexRecordOption::Basic,
                    )),
                    clock,
                ));
            }
            F::Any => &[
                (f.title, TITLE_BOOST),
                (f.body, 1.0),
                (f.author, 1.0),
                (f.category, 1.0),
            ],
            F::Title => &[(f.title, 1.0)],
            F::Author => &[(f.author, 1.0)],
            F::Category => &[(f.category, 1.0)],
        };
        let words = analyzer::terms(with.analyzer, &term.text);
        if words.is_empty() {
            // Only words too long to be indexed (the parser made sure it has letters or
            // digits): nothing has them.
            return Ok(Box::new(EmptyQuery));
        }
        let per_field = fields
            .iter()
            .map(|&(field, boost)| {
                let terms: Vec<Term> = words
                    .iter()
                    .map(|w| Term::from_field_text(field, w))
                    .collect();
                let q: Box<dyn TantivyQuery> = match <[Term; 1]>::try_from(terms) {
                    Ok([one]) => Box::new(TermQuery::new(one, IndexRecordOption::WithFreqs)),
                    // In the body, a phrase's pairs first: their intersection (few entries)
                    // leads, and positions are read only in the entries it gives.
                    Err(terms) if field == f.body => {
                        let pairs = analyzer::pair_terms(&words)
                            .iter()
                            .map(|p| -> (Occur, Box<dyn TantivyQuery>) {
                                let t = Term::from_field_text(f.pairs, p);
                                (
                                    Occur::Must,
                                    Box::new(TermQuery::new(t, IndexRecordOption::Basic)),
                                )
                            })
                            .chain(std::iter::once((
                                Occur::Must,
                                Box::new(PhraseQuery::new(terms)) as Box<dyn TantivyQuery>,
                            )))
                            .collect();
                        Box::new(BooleanQuery::new(pairs))
                    }
                    Err(terms) => Box::new(PhraseQuery::new(terms)),
                };
                let q: Box<dyn TantivyQuery> = if boost == 1.0 {
                    q
                } else {
                    Box::new(BoostQuery::new(q, boost))
                };
                (Occur::Should, q)
            })
            .collect();
        // Bounded as a whole: inside, tantivy's own unions of terms stay as fast as they
        // are (a bound on each term made unions twice as slow).
        Ok(bounded(one_of(per_field), clock))
    }

    /// What keeps a search within its scope: nothing when every indexed source is in it,
    /// else the sources it may see (or those it may not, when fewer).
    fn scope_filter(
        &self,
        searcher: &tantivy::Searcher,
        scope: &Scope<'_>,
        clock: &Arc<Clock>,
    ) -> Result<Option<Clause>, SearchError> {
        let indexed = self.indexed_sources(searcher)?;
        let (inside, outside): (Vec<&String>, Vec<&String>) =
            indexed.iter().partition(|s| (scope.publishes)(s));
        let terms = |names: Vec<&String>| -> Box<dyn TantivyQuery> {
            bounded(
                Box::new(TermSetQuery::new(
                    names
                        .into_iter()
                        .map(|s| Term::from_field_text(self.fields.source, s)),
                )),
                clock,
            )
        };
        Ok(if outside.is_empty() {
            None
        } else if inside.is_empty() {
            Some((Occur::Must, Box::new(EmptyQuery)))
        } else if inside.len() < outside.len() {
            Some((Occur::Must, terms(inside)))
        } else {
            Some((Occur::MustNot, terms(outside)))
        })
    }

    /// Every source with a document in the index, or that had one since the index was
    /// opened (a superset does no harm: the scope's filters name sources, and a name with
    /// no documents costs nothing). Read from the index's `source` terms once; after that,
    /// each document added notes its source ([`SearchIndex::document`]), so a search never
    /// scans the terms again (10,000 sources in 20 segments took tens of milliseconds,
    /// after every commit).
    fn indexed_sources(
        &self,
        searcher: &tantivy::Searcher,
    ) -> Result<std::sync::Arc<Vec<String>>, SearchError> {
        let mut known = self
            .sources
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !known.loaded {
            for segment in searcher.segment_readers() {
                let inverted = segment.inverted_index(self.fields.source)?;
                let mut terms = inverted
                    .terms()
                    .stream()
                    .map_err(tantivy::TantivyError::from)?;
                while terms.advance() {
                    if let Ok(name) = std::str::from_utf8(terms.key())
                        && !known.names.contains(name)
                    {
                        known.names.insert(name.to_string());
                        known.list = None;
                    }
                }
            }
            known.loaded = true;
        }
        if known.list.is_none() {
            let mut names: Vec<String> = known.names.iter().cloned().collect();
            names.sort_unstable();
            known.list = Some(std::sync::Arc::new(names));
        }
        Ok(known.list.clone().unwrap_or_default())
    }

    /// Where a document's entry is stored (`None`: a document without, never written).
    fn hit(&self, doc: &TantivyDocument) -> Option<Hit> {
        let source = doc.get_first(self.fields.source)?.as_str()?;
        let tail = doc.get_first(self.fields.tail)?.as_bytes()?;
        Some(Hit {
            source: source.to_string(),
            tail: <[u8; 24]>::try_from(tail).ok()?,
        })
    }

    /// Every document's source and place in the store, for `verify` (a whole read of the
    /// index).
    pub fn all_documents(&self) -> Result<Vec<(String, [u8; 24])>, SearchError> {
        let searcher = self.reader.searcher();
        let mut out = Vec::with_capacity(searcher.num_docs() as usize);
        for segment in searcher.segment_readers() {
            let store = segment
                .get_store_reader(64)
                .map_err(tantivy::TantivyError::from)?;
            let alive = segment.alive_bitset();
            for doc in 0..segment.max_doc() {
                if alive.is_some_and(|a| a.is_deleted(doc)) {
                    continue;
                }
                let d: TantivyDocument = store.get(doc)?;
                out.extend(self.hit(&d).map(|h| (h.source, h.tail)));
            }
        }
        Ok(out)
    }
}

/// Alternatives as one query (one alone as itself).
fn one_of(mut alternatives: Vec<(Occur, Box<dyn TantivyQuery>)>) -> Box<dyn TantivyQuery> {
    if alternatives.len() == 1
        && let Some((_, q)) = alternatives.pop()
    {
        return q;
    }
    Box::new(BooleanQuery::new(alternatives))
}

/// `a.b.example.org`, `b.example.org`, `example.org`: a host and each parent with a dot.
fn host_and_parents(host: &str) -> impl Iterator<Item = &str> {
    let host = host.trim_end_matches('.');
    std::iter::successors(Some(host), |h| h.split_once('.').map(|(_, rest)| rest))
        .filter(|h| h.contains('.') || !host.contains('.'))
        .take(8)
}

#[cfg(test)]
mod tests {
    use super::{host_and_parents, order_of};
    use crate::model::EntryKey;

    #[test]
    fn hosts_are_found_by_their_parent_domains() {
        let all: Vec<&str> = host_and_parents("www.blog.example.org").collect();
        assert_eq!(
            all,
            ["www.blog.example.org", "blog.example.org", "example.org"]
        );
        assert_eq!(
            host_and_parents("localhost").collect::<Vec<_>>(),
            ["localhost"]
        );
    }

    #[test]
    fn order_follows_time_then_key() {
        let t = |s: &str| {
            chrono::DateTime::parse_from_rfc3339(s)
                .expect("static")
                .with_timezone(&chrono::Utc)
        };
        let (a, b) = (EntryKey([0; 16]), EntryKey([0xff; 16]));
        assert!(order_of(t("2026-01-01T00:00:00Z"), &b) < order_of(t("2026-01-01T00:00:01Z"), &a));
        assert!(order_of(t("2026-01-01T00:00:00Z"), &a) < order_of(t("2026-01-01T00:00:00Z"), &b));
        assert!(order_of(t("1900-01-01T00:00:00Z"), &b) < order_of(t("1970-01-01T00:00:00Z"), &a));
    }
}
