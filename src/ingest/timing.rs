//! The timing policy: when a source is polled next, and first after a start. Pure
//! functions of the last poll's signals, the source's interval and the configured bounds.
//!
//! [`next_delay`] is the whole policy:
//! - after a success, the source's interval as written in `feeds.toml`; a longer freshness
//!   promised by the server (`Cache-Control: max-age`, `Expires`, RSS `<ttl>`) is honoured,
//!   clamped to `[fetch] min_interval` and `max_interval`;
//! - after the first failure since the daemon started (or a reload restarted the source) or
//!   since a success, a quick retry: after [`FIRST_RETRY`] (or the interval, if shorter), as
//!   most failures are passing (a network blip, a server restarting, no network yet at boot);
//! - after further failures, exponential backoff from the interval: the interval, then
//!   doubling with each consecutive failure, capped at `max_interval` (never below the
//!   interval), reset by a success;
//! - a 429/503 `Retry-After` is a floor (up to [`MAX_RETRY_AFTER`]);
//! - then ±10% jitter (at most 5 minutes) so sources do not poll in lockstep.
//!
//! Each poll stores its next due time; at start, a source resumes from it, and those that
//! fell due while the daemon was stopped are spread over the first few seconds.

use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::{FetchConfig, SourceConfig};
use crate::model::SourceState;

/// How widely overdue sources are spread after a start.
const STARTUP_SPREAD: Duration = Duration::from_secs(10);
/// How soon a first failure is retried (see [`next_delay`]).
pub const FIRST_RETRY: Duration = Duration::from_secs(60);
/// The longest Retry-After honoured: a server cannot switch a source off for good.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);

/// What the last poll tells the policy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Signals {
    /// Consecutive failures, this poll included (0 after a success).
    pub failures: u32,
    /// This failure is the first since the daemon started (or the source's task was
    /// restarted) or since a success: it is retried after [`FIRST_RETRY`].
    pub first_failure: bool,
    /// How long the server said the feed stays fresh (the longer of Cache-Control/Expires
    /// and `<ttl>`).
    pub fresh_for: Option<Duration>,
    /// Retry-After of a 429 or 503.
    pub retry_after: Option<Duration>,
}

/// The bounds that apply to derived intervals.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    pub min: Duration,
    pub max: Duration,
}

impl From<&FetchConfig> for Bounds {
    fn from(c: &FetchConfig) -> Bounds {
        Bounds {
            min: c.min_interval,
            max: c.max_interval,
        }
    }
}

/// The delay before the next poll, before jitter. See the module docs.
pub fn next_delay(interval: Duration, signals: Signals, bounds: Bounds) -> Duration {
    let mut delay = interval;
    if signals.failures > 0 && signals.first_failure {
        delay = interval.min(FIRST_RETRY);
    } else if signals.failures > 0 {
        // The quick retry took the first step: the second failure waits the interval, the
        // third twice that, and so on.
        let factor = 2u32.saturating_pow(signals.failures.saturating_sub(2).min(30));
        let backoff = interval.saturating_mul(factor);
        delay = backoff.min(bounds.max.max(interval));
    } else if let Some(fresh) = signals.fresh_for.filter(|f| *f > interval) {
        delay = delay.max(fresh.clamp(bounds.min, bounds.max.max(bounds.min)));
    }
    if let Some(retry) = signals.retry_after {
        delay = delay.max(retry.min(MAX_RETRY_AFTER));
    }
    delay
}

/// The delay plus or minus up to 10% (at most 5 minutes), so sources drift apart.
pub fn jittered(delay: Duration) -> Duration {
    let span = (delay / 10).min(Duration::from_secs(300));
    delay - span + random_fraction(span * 2)
}

fn random_fraction(d: Duration) -> Duration {
    d.mul_f64(fastrand::f64())
}

/// When the next poll is due, jitter included.
pub fn due(
    now: DateTime<Utc>,
    interval: Duration,
    signals: Signals,
    bounds: Bounds,
) -> DateTime<Utc> {
    let delay = jittered(next_delay(interval, signals, bounds));
    chrono::Duration::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// How soon a source's task polls first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// At the daemon's start: resume from the stored due time; overdue sources are spread
    /// over the first seconds.
    Resume,
    /// Added or changed by a reload: within a second or so (still never earlier than a
    /// stored backoff or Retry-After asks, unless the URL changed).
    Prompt,
    /// Its URL or request changed: within a second, whatever was stored.
    Now,
}

/// How widely sources added or changed by a reload are spread.
const PROMPT_SPREAD: Duration = Duration::from_secs(1);

/// When a source's task first polls (see [`Start`]): from the stored due time, with
/// overdue (or never polled) sources spread over the first seconds.
pub fn first_delay(source: &SourceConfig, state: Option<&SourceState>, start: Start) -> Duration {
    let spread = match start {
        Start::Resume => STARTUP_SPREAD,
        Start::Prompt | Start::Now => PROMPT_SPREAD,
    };
    let spread = random_fraction(source.interval.min(spread));
    if start == Start::Now {
        return spread;
    }
    let wait = state
        .and_then(|s| s.next_poll)
        .and_then(|at| (at - Utc::now()).to_std().ok());
    let backing_off = state.is_some_and(|s| s.consecutive_failures > 0);
    match wait {
        // A new, shorter interval takes effect now, unless the source is backing off.
        Some(wait) if start == Start::Prompt && !backing_off => {
            wait.min(source.interval).max(spread)
        }
        // A stored due time (backoff, hints, Retry-After) still stands.
        Some(wait) if wait > spread => wait,
        _ => spread,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);
    const HOUR: Duration = Duration::from_secs(3600);

    fn bounds() -> Bounds {
        Bounds {
            min: Duration::from_secs(300),
            max: 24 * HOUR,
        }
    }

    #[test]
    fn success_uses_the_interval_as_written() {
        let d = next_delay(Duration::from_secs(2), Signals::default(), bounds());
        assert_eq!(d, Duration::from_secs(2));
    }

    #[test]
    fn longer_server_freshness_is_a_floor_clamped_to_bounds() {
        let s = |fresh| Signals {
            fresh_for: Some(fresh),
            ..Default::default()
        };
        assert_eq!(next_delay(30 * MIN, s(2 * HOUR), bounds()), 2 * HOUR);
        // Shorter than the interval: the interval wins.
        assert_eq!(next_delay(30 * MIN, s(10 * MIN), bounds()), 30 * MIN);
        // Absurdly long: clamped to max_interval.
        assert_eq!(next_delay(30 * MIN, s(1000 * HOUR), bounds()), 24 * HOUR);
        // A hint longer than a tiny interval counts for at least min_interval.
        assert_eq!(
            next_delay(Duration::from_secs(2), s(Duration::from_secs(10)), bounds()),
            Duration::from_secs(300)
        );
        // A hint shorter than the interval changes nothing.
        assert_eq!(
            next_delay(Duration::from_secs(2), s(Duration::from_secs(1)), bounds()),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn failures_back_off_exponentially_and_cap() {
        let f = |n| Signals {
            failures: n,
            ..Default::default()
        };
        assert_eq!(next_delay(30 * MIN, f(2), bounds()), 30 * MIN);
        assert_eq!(next_delay(30 * MIN, f(3), bounds()), HOUR);
        assert_eq!(next_delay(30 * MIN, f(4), bounds()), 2 * HOUR);
        assert_eq!(next_delay(30 * MIN, f(10), bounds()), 24 * HOUR);
        assert_eq!(next_delay(30 * MIN, f(u32::MAX), bounds()), 24 * HOUR);
        // An interval longer than the cap is still honoured.
        assert_eq!(next_delay(48 * HOUR, f(5), bounds()), 48 * HOUR);
    }

    #[test]
    fn a_first_failure_is_retried_within_a_minute_then_backs_off() {
        let first = |n| Signals {
            failures: n,
            first_failure: true,
            ..Default::default()
        };
        let then = |n| Signals {
            failures: n,
            ..Default::default()
        };
        // After start-up or a success: a minute, whatever the interval.
        assert_eq!(next_delay(2 * HOUR, first(1), bounds()), FIRST_RETRY);
        // The first since start-up of a source that was already failing (its count kept in
        // the store): a minute too.
        assert_eq!(next_delay(2 * HOUR, first(9), bounds()), FIRST_RETRY);
        // An interval shorter than a minute is not lengthened.
        let short = Duration::from_secs(20);
        assert_eq!(next_delay(short, first(1), bounds()), short);
        // Then the backoff as before: the interval, twice, four times...
        assert_eq!(next_delay(2 * HOUR, then(2), bounds()), 2 * HOUR);
        assert_eq!(next_delay(2 * HOUR, then(3), bounds()), 4 * HOUR);
        assert_eq!(next_delay(2 * HOUR, then(4), bounds()), 8 * HOUR);
        // A Retry-After still wins over the quick retry.
        let limited = Signals {
            retry_after: Some(HOUR),
            ..first(1)
        };
        assert_eq!(next_delay(2 * HOUR, limited, bounds()), HOUR);
        // A success ignores the flag.
        let ok = Signals {
            first_failure: true,
            ..Default::default()
        };
        assert_eq!(next_delay(2 * HOUR, ok, bounds()), 2 * HOUR);
    }

    #[test]
    fn retry_after_is_a_floor_with_a_limit() {
        let r = |d| Signals {
            failures: 2,
            retry_after: Some(d),
            ..Default::default()
        };
        assert_eq!(next_delay(MIN, r(2 * HOUR), bounds()), 2 * HOUR);
        assert_eq!(next_delay(MIN, r(Duration::from_secs(10)), bounds()), MIN);
        assert_eq!(next_delay(MIN, r(10_000 * HOUR), bounds()), MAX_RETRY_AFTER);
    }

    #[test]
    fn jitter_stays_within_ten_percent() {
        for _ in 0..1000 {
            let d = jittered(Duration::from_secs(100));
            assert!(
                d >= Duration::from_secs(90) && d <= Duration::from_secs(110),
                "{d:?}"
            );
        }
        let long = jittered(24 * HOUR);
        assert!(long >= 24 * HOUR - Duration::from_secs(300));
    }
}
