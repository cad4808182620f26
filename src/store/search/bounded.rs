//! A search's time bound inside tantivy: each part of a search's query (a term of the
//! query with its fields, a phrase, the scope's set of sources, a range of time) is wrapped
//! so that once the search's [`Clock`] has run out, it ends (reports no more documents) at
//! its next step (a step is one document it matches or skips to). Every intersection and
//! exclusion above them then ends too, within a few steps: a search stops shortly after its
//! limit, however many documents its terms match. (Wrapping each field's term instead made
//! tantivy's unions of terms twice as slow.)
//!
//! What a search found once its clock ran out is incomplete (a part stopped early, an
//! exclusion stopped excluding): the caller asks [`Clock::ran_out`] and throws it away.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tantivy::query::{EnableScoring, Explanation, Query, Scorer, Weight};
use tantivy::{DocId, DocSet, Score, SeekDangerResult, SegmentReader, TERMINATED, Term};

/// How many steps of a part go between two looks at the time (the first step looks too): a
/// step of a term's postings takes nanoseconds, a look at the time tens of them.
const STEPS_PER_LOOK: u32 = 64;

/// A search's time, shared by the parts of its query: a hard limit (the parts end), and a
/// budget after which a newest-first search ends its page at the next window of time.
#[derive(Debug)]
pub struct Clock {
    started: Instant,
    /// Past it, a page ends early (when it has something to show for its time).
    budget: Option<Duration>,
    /// The most a search may take.
    hard: Duration,
    /// Nanoseconds after `started` when the parts end (the hard limit, or the budget).
    limit: AtomicU64,
    ran_out: AtomicBool,
    /// Windows of time searched whole (see `SearchIndex::newest`).
    windows: AtomicU32,
}

impl Clock {
    /// A clock started now, with a budget (or none) and a hard limit; the parts of a query
    /// end at the hard limit until [`Clock::limit`] says otherwise.
    pub fn start(budget: Option<Duration>, hard: Duration) -> Arc<Clock> {
        Arc::new(Clock {
            started: Instant::now(),
            budget,
            hard,
            limit: AtomicU64::new(u64::try_from(hard.as_nanos()).unwrap_or(u64::MAX)),
            ran_out: AtomicBool::new(false),
            windows: AtomicU32::new(0),
        })
    }

    /// Whether the budget is spent.
    pub fn over_budget(&self) -> bool {
        self.budget.is_some_and(|b| self.started.elapsed() >= b)
    }

    /// The budget, if any.
    pub fn budget(&self) -> Option<Duration> {
        self.budget
    }

    /// The hard limit.
    pub fn hard(&self) -> Duration {
        self.hard
    }

    /// Notes a window searched whole.
    pub fn window_done(&self) {
        self.windows.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether a window was searched whole.
    pub fn any_window_done(&self) -> bool {
        self.windows.load(Ordering::Relaxed) > 0
    }

    /// The parts end `after` the clock's start.
    pub fn limit(&self, after: Duration) {
        let nanos = u64::try_from(after.as_nanos()).unwrap_or(u64::MAX);
        self.limit.store(nanos, Ordering::Relaxed);
    }

    /// Whether a part stopped because the time ran out.
    pub fn ran_out(&self) -> bool {
        self.ran_out.load(Ordering::Relaxed)
    }

    /// Looks at the time: true (from then on) once it ran out.
    fn look(&self) -> bool {
        if self.ran_out() {
            return true;
        }
        let elapsed = u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        if elapsed >= self.limit.load(Ordering::Relaxed) {
            self.ran_out.store(true, Ordering::Relaxed);
            return true;
        }
        false
    }
}

/// `inner`, ending when `clock` runs out.
pub fn bounded(inner: Box<dyn Query>, clock: &Arc<Clock>) -> Box<dyn Query> {
    Box::new(Bounded {
        inner,
        clock: Arc::clone(clock),
    })
}

#[derive(Debug)]
struct Bounded {
    inner: Box<dyn Query>,
    clock: Arc<Clock>,
}

impl Clone for Bounded {
    fn clone(&self) -> Bounded {
        Bounded {
            inner: self.inner.box_clone(),
            clock: Arc::clone(&self.clock),
        }
    }
}

impl Query for Bounded {
    fn weight(&self, scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        Ok(Box::new(BoundedWeight {
            inner: self.inner.weight(scoring)?,
            clock: Arc::clone(&self.clock),
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        self.inner.query_terms(visitor);
    }
}

struct BoundedWeight {
    inner: Box<dyn Weight>,
    clock: Arc<Clock>,
}

impl Weight for BoundedWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(BoundedScorer {
            inner: self.inner.scorer(reader, boost)?,
            clock: Arc::clone(&self.clock),
            steps: 0,
            stopped: false,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        self.inner.explain(reader, doc)
    }
}

struct BoundedScorer {
    inner: Box<dyn Scorer>,
    clock: Arc<Clock>,
    steps: u32,
    /// The time ran out: the part is at its end.
    stopped: bool,
}

impl BoundedScorer {
    /// Counts a step: true when the part has stopped.
    #[inline]
    fn step(&mut self) -> bool {
        self.steps = self.steps.wrapping_add(1);
        if self.steps % STEPS_PER_LOOK == 1 && self.clock.look() {
            self.stopped = true;
        }
        self.stopped
    }
}

impl DocSet for BoundedScorer {
    fn advance(&mut self) -> DocId {
        if self.step() {
            return TERMINATED;
        }
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        if self.step() {
            return TERMINATED;
        }
        self.inner.seek(target)
    }

    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        if self.step() {
            return SeekDangerResult::SeekLowerBound(TERMINATED);
        }
        self.inner.seek_danger(target)
    }

    fn doc(&self) -> DocId {
        if self.stopped {
            TERMINATED
        } else {
            self.inner.doc()
        }
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for BoundedScorer {
    fn score(&mut self) -> Score {
        self.inner.score()
    }
}
