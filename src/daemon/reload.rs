//! What a reload of `feeds.toml` changes: a pure comparison of the running config with
//! the new one, and why a reload changes nothing ([`ReloadError`]).
//! [`crate::daemon::supervise`] applies it.

use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{Config, ConfigError, SourceChange};
use crate::fetch::FetchError;

/// Why a reload changed nothing (the running config stays in force).
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReloadError {
    /// `feeds.toml` cannot be read or is not valid: the same text as `tributary check`.
    #[error(transparent)]
    Config(Arc<ConfigError>),
    #[error("{}: not UTF-8 text", path.display())]
    NotUtf8 {
        path: PathBuf,
        #[source]
        error: std::string::FromUtf8Error,
    },
    /// Applying the file would hide most of what is served (see [`plan`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The theme's templates compile but fail as they render a sample page.
    #[error("{}: templates: {}/{error}", config.display(), dir.display())]
    Templates {
        config: PathBuf,
        dir: PathBuf,
        error: Arc<crate::render::river::TemplateError>,
    },
    #[error("the new [fetch] settings cannot be used: {0}")]
    Fetch(#[source] Arc<FetchError>),
    /// The supervisor is gone: the daemon is stopping.
    #[error("the daemon is stopping")]
    Stopping,
    /// Reading the file stopped unfinished (its thread panicked).
    #[error("internal error: {0}")]
    Task(String),
}

impl From<ConfigError> for ReloadError {
    fn from(error: ConfigError) -> Self {
        ReloadError::Config(Arc::new(error))
    }
}

impl From<FetchError> for ReloadError {
    fn from(error: FetchError) -> Self {
        ReloadError::Fetch(Arc::new(error))
    }
}

/// Why a valid config is refused as a reload (see [`plan`]); a restart applies it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No sources left while sources are running: an empty or truncated save.
    #[error(
        "{} has no [[source]] left (an empty or half-written save?); the {running} running sources stay; restart the daemon to run without sources",
        path.display()
    )]
    NoSources { path: PathBuf, running: usize },
    /// Most of the running sources removed at once ([`MASS_REMOVAL`] or more, and more
    /// than half).
    #[error(
        "{} would remove {removed} of the {running} running sources at once (a truncated save?); nothing was changed; restart the daemon to apply it deliberately",
        path.display()
    )]
    MassRemoval {
        path: PathBuf,
        removed: usize,
        running: usize,
    },
}

/// The difference between two configs, as a reload applies it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReloadReport {
    /// Sources to start polling.
    pub added: Vec<String>,
    /// Sources to stop polling (their entries leave the outputs at once).
    pub removed: Vec<String>,
    /// Sources whose URL, User-Agent, headers or interval changed: polled again soon.
    pub repolled: Vec<String>,
    /// Sources whose title, tags, retention, filters, full text, title template or cap
    /// changed: applied from their next poll on, without an extra one.
    pub updated: Vec<String>,
    /// `[fetch]` changed: every source's task restarts with the new fetcher (each resumes
    /// its own schedule).
    pub fetch_changed: bool,
    /// Settings that changed but only take effect after a restart, as `[table] key`.
    pub restart_needed: Vec<String>,
    /// Whether anything at all changed.
    pub changed: bool,
}

/// Whether a reload from `old` to `new` changes what a retention pass does: sources added
/// or removed, a source's `keep` or `keep_for`, or the `[retention]` table.
pub fn retention_changed(old: &Config, new: &Config) -> bool {
    let limits = |c: &Config| {
        let mut v: Vec<_> = c
            .sources
            .iter()
            .map(|s| (s.name.clone(), s.keep, s.keep_for))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    };
    old.retention != new.retention || limits(old) != limits(new)
}

/// Compares the running config with a newly loaded one.
pub fn diff(old: &Config, new: &Config) -> ReloadReport {
    let mut report = ReloadReport::default();
    for s in &new.sources {
        match old.sources.iter().find(|o| o.name == s.name) {
            None => report.added.push(s.name.clone()),
            Some(o) => match s.change_from(o) {
                SourceChange::None => {}
                SourceChange::Presentation => report.updated.push(s.name.clone()),
                SourceChange::Interval | SourceChange::Request => {
                    report.repolled.push(s.name.clone())
                }
            },
        }
    }
    for o in &old.sources {
        if !new.sources.iter().any(|s| s.name == o.name) {
            report.removed.push(o.name.clone());
        }
    }
    report.fetch_changed = fetch_differs(old, new);
    let mut restart = |changed: bool, what: &str| {
        if changed {
            report.restart_needed.push(what.to_string());
        }
    };
    restart(old.server.listen != new.server.listen, "[server] listen");
    restart(
        old.server.max_connections != new.server.max_connections,
        "[server] max_connections",
    );
    let (a, b) = (&old.server, &new.server);
    restart(
        a.max_connections_per_ip != b.max_connections_per_ip,
        "[server] max_connections_per_ip",
    );
    restart(
        a.trusted_proxies != b.trusted_proxies,
        "[server] trusted_proxies",
    );
    restart(
        a.header_timeout != b.header_timeout,
        "[server] header_timeout",
    );
    restart(a.idle_timeout != b.idle_timeout, "[server] idle_timeout");
    restart(old.store.path != new.store.path, "[store] path");
    restart(old.hub.deliveries != new.hub.deliveries, "[hub] deliveries");
    restart(
        old.store.cache_bytes != new.store.cache_bytes,
        "[store] cache_mb",
    );
    report.changed = !report.added.is_empty()
        || !report.removed.is_empty()
        || !report.repolled.is_empty()
        || !report.updated.is_empty()
        || report.fetch_changed
        || !report.restart_needed.is_empty()
        || old.server.base_url != new.server.base_url
        || old.server.render_cache_bytes != new.server.render_cache_bytes
        || old.store.min_free_bytes != new.store.min_free_bytes
        || publish_differs(old, new)
        || feeds_differ(old, new)
        || old.retention != new.retention;
    report
}

/// A reload removing at least this many running sources, and more than half of them, is
/// refused (see [`plan`]).
pub const MASS_REMOVAL: usize = 5;

/// What a reload from `old` to `new` changes ([`diff`]), or why it is refused: a config
/// with no sources while sources are running (an empty or truncated save), or one that
/// removes most of the running sources at once ([`MASS_REMOVAL`] or more, and more than
/// half). Either would hide most of what is served in one careless save; a restart applies
/// such a config deliberately.
pub fn plan(old: &Config, new: &Config) -> Result<ReloadReport, Refusal> {
    let report = diff(old, new);
    let running = old.sources.len();
    let path = || new.path.clone();
    if running > 0 && new.sources.is_empty() {
        return Err(Refusal::NoSources {
            path: path(),
            running,
        });
    }
    let removed = report.removed.len();
    if removed >= MASS_REMOVAL && removed.saturating_mul(2) > running {
        return Err(Refusal::MassRemoval {
            path: path(),
            removed,
            running,
        });
    }
    Ok(report)
}

fn fetch_differs(old: &Config, new: &Config) -> bool {
    let (a, b) = (&old.fetch, &new.fetch);
    a.concurrency != b.concurrency
        || a.timeout != b.timeout
        || a.connect_timeout != b.connect_timeout
        || a.max_body_bytes != b.max_body_bytes
        || a.max_entries != b.max_entries
        || a.user_agent != b.user_agent
        || a.per_host != b.per_host
        || a.min_interval != b.min_interval
        || a.max_interval != b.max_interval
        || a.allow_networks != b.allow_networks
}

fn publish_differs(old: &Config, new: &Config) -> bool {
    let (a, b) = (&old.publish, &new.publish);
    a.title != b.title
        || a.description != b.description
        || a.author != b.author
        || a.max_items != b.max_items
        || a.templates != b.templates
}

fn feeds_differ(old: &Config, new: &Config) -> bool {
    old.feeds.len() != new.feeds.len()
        || old.feeds.iter().zip(&new.feeds).any(|(a, b)| {
            a.name != b.name
                || a.title != b.title
                || a.description != b.description
                || a.sources != b.sources
                || a.rules != b.rules
        })
}

impl std::fmt::Display for ReloadReport {
    /// One line for the log: what changed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if !self.changed {
            return write!(f, "no changes");
        }
        let mut parts = Vec::new();
        let list = |what: &str, names: &[String]| {
            (!names.is_empty()).then(|| format!("{what} {}", names.join(", ")))
        };
        parts.extend(list("added", &self.added));
        parts.extend(list("removed", &self.removed));
        parts.extend(list("repolled", &self.repolled));
        parts.extend(list("updated", &self.updated));
        if self.fetch_changed {
            parts.push("[fetch] changed".into());
        }
        if parts.is_empty() {
            parts.push("publishing or retention settings changed".into());
        }
        write!(f, "{}", parts.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn config(text: &str) -> Config {
        crate::config::parse(text, Path::new("/etc/tributary/feeds.toml")).expect("valid")
    }

    #[test]
    fn sources_added_removed_and_changed_are_told_apart() {
        let old = config(
            r#"
            [[source]]
            name = "a"
            url = "https://a.example/feed"
            [[source]]
            name = "b"
            url = "https://b.example/feed"
            [[source]]
            name = "c"
            url = "https://c.example/feed"
            [[source]]
            name = "d"
            url = "https://d.example/feed"
            "#,
        );
        let new = config(
            r#"
            [store]
            cache_mb = 64
            [[source]]
            name = "a"
            url = "https://a.example/feed"
            [[source]]
            name = "b"
            url = "https://b.example/feed2"
            [[source]]
            name = "c"
            url = "https://c.example/feed"
            tags = ["x"]
            [[source]]
            name = "e"
            url = "https://e.example/feed"
            "#,
        );
        let r = diff(&old, &new);
        assert_eq!(r.added, ["e"]);
        assert_eq!(r.removed, ["d"]);
        assert_eq!(r.repolled, ["b"]);
        assert_eq!(r.updated, ["c"]);
        assert!(!r.fetch_changed);
        assert_eq!(r.restart_needed, ["[store] cache_mb"]);
        assert!(r.changed);
        assert_eq!(diff(&new, &new), ReloadReport::default());
    }

    #[test]
    fn saves_that_would_hide_most_sources_are_refused() {
        let sources = |names: std::ops::Range<u32>| {
            names
                .map(|i| {
                    format!("[[source]]\nname = \"s{i}\"\nurl = \"https://s{i}.example/feed\"\n")
                })
                .collect::<String>()
        };
        let refusal = |old: &Config, new: &Config| plan(old, new).err();
        let running = config(&sources(0..10));
        let why = refusal(&running, &config("[retention]\nkeep_total = 2\n")).expect("refused");
        assert!(matches!(why, Refusal::NoSources { running: 10, .. }));
        let why = why.to_string();
        assert!(why.contains("no [[source]] left"), "{why}");
        assert!(refusal(&running, &config("")).is_some());
        let why = refusal(&running, &config(&sources(0..4))).expect("refused");
        assert!(matches!(why, Refusal::MassRemoval { removed: 6, .. }));
        let why = why.to_string();
        assert!(why.contains("remove 6 of the 10"), "{why}");
        // Half, or fewer than five: a deliberate edit.
        assert_eq!(refusal(&running, &config(&sources(0..5))), None);
        assert_eq!(
            refusal(&config(&sources(0..4)), &config(&sources(0..1))),
            None
        );
        assert_eq!(refusal(&running, &config(&sources(3..20))), None);
        // Nothing running: anything goes.
        assert_eq!(refusal(&config(""), &config("")), None);
    }

    #[test]
    fn fetch_and_publishing_changes_are_changes() {
        let old = config("");
        let r = diff(&old, &config("[fetch]\nconcurrency = 3\n"));
        assert!(r.fetch_changed && r.changed);
        // The address guard's allow-list lives in the fetcher: it must be rebuilt.
        let r = diff(
            &old,
            &config("[fetch]\nallow_networks = [\"10.0.0.0/8\"]\n"),
        );
        assert!(r.fetch_changed && r.changed);
        let r = diff(&old, &config("[publish]\ntitle = \"News\"\n"));
        assert!(r.changed && !r.fetch_changed);
        let r = diff(&old, &config("[retention]\nkeep_per_source = 5\n"));
        assert!(r.changed);
        assert_eq!(r.to_string(), "publishing or retention settings changed");
    }

    #[test]
    fn retention_changes_are_told_from_the_rest() {
        let base = "[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n";
        let old = config(base);
        assert!(!retention_changed(&old, &config(base)));
        // A title or interval is not retention.
        assert!(!retention_changed(
            &old,
            &config(&format!("{base}title = \"A\"\ninterval = \"2h\"\n"))
        ));
        for changed in [
            format!("{base}keep = 5\n"),
            format!("{base}keep_for = \"3d\"\n"),
            format!("[retention]\nkeep_total = 10\n{base}"),
            format!("{base}[[source]]\nname = \"b\"\nurl = \"https://b.example/feed\"\n"),
        ] {
            assert!(retention_changed(&old, &config(&changed)), "{changed}");
        }
    }
}
