//! Which sources a WebSub hub pushes to (their subscription verified, its lease running):
//! those are polled only every `[websub] safety_poll`, as a safety net, instead of their
//! interval. The subscriber (`daemon/websub.rs`) marks them; a poll asks [`Push::interval`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::config::SourceConfig;

/// Shared by the pollers and the subscriber; cheap to clone.
#[derive(Clone, Default)]
pub struct Push {
    /// Source name → when its lease ends.
    active: Arc<RwLock<HashMap<String, DateTime<Utc>>>>,
    safety_poll: Arc<RwLock<Duration>>,
}

impl Push {
    /// Marks `source` pushed until `lease_end` (`None`: not pushed).
    pub fn set(&self, source: &str, lease_end: Option<DateTime<Utc>>) {
        let mut active = self.active.write().unwrap_or_else(|e| e.into_inner());
        match lease_end {
            Some(end) => active.insert(source.to_string(), end),
            None => active.remove(source),
        };
    }

    /// `[websub] safety_poll`, the interval of pushed sources.
    pub fn set_safety_poll(&self, every: Duration) {
        *self.safety_poll.write().unwrap_or_else(|e| e.into_inner()) = every;
    }

    /// Whether `source` is pushed at `now`.
    fn is_pushed(&self, source: &str, now: DateTime<Utc>) -> bool {
        self.active
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(source)
            .is_some_and(|end| *end > now)
    }

    /// The interval `source` is polled at now: the safety net's while a hub pushes it (or
    /// its own, if longer), else its own.
    pub fn interval(&self, source: &SourceConfig, now: DateTime<Utc>) -> Duration {
        if self.is_pushed(&source.name, now) {
            let safety = *self.safety_poll.read().unwrap_or_else(|e| e.into_inner());
            source.interval.max(safety)
        } else {
            source.interval
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_sources_use_the_safety_net_while_the_lease_runs() {
        let config = crate::config::parse(
            "[[source]]\nname = \"a\"\nurl = \"https://a.example/f\"\ninterval = \"10m\"\n",
            std::path::Path::new("/tmp/feeds.toml"),
        )
        .expect("valid");
        let source = &config.sources[0];
        let push = Push::default();
        push.set_safety_poll(Duration::from_secs(6 * 3600));
        let now = Utc::now();
        assert_eq!(push.interval(source, now), Duration::from_secs(600));
        push.set("a", Some(now + chrono::Duration::hours(1)));
        assert_eq!(push.interval(source, now), Duration::from_secs(6 * 3600));
        // Lapsed: its own interval again.
        assert_eq!(
            push.interval(source, now + chrono::Duration::hours(2)),
            Duration::from_secs(600)
        );
        // A safety net shorter than the source's own interval does not poll it more.
        push.set_safety_poll(Duration::from_secs(60));
        assert_eq!(push.interval(source, now), Duration::from_secs(600));
        push.set("a", None);
        assert!(!push.is_pushed("a", now));
    }
}
