//! The `tributary` command: parses flags, sets up logging, and hands over to the library.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use tributary::{app, config};

/// Standard output that a reader may close early (`tributary status | head -3`): once it
/// is gone the rest is dropped quietly and the command goes on to its end (a poll's store
/// writes finish), rather than panicking on the broken pipe. SIGPIPE itself stays ignored,
/// as Rust sets it: a network peer closing a socket must not end the process.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::say(format_args!($($arg)*))
    };
}

mod add;
mod preview;

/// tributary gathers RSS, Atom and JSON feeds into one place and publishes them again as
/// combined feeds you can subscribe to.
///
/// Sources are listed in feeds.toml (see README.md for every key). Start with
/// `tributary check` to validate it, `tributary once` to poll every source once, then
/// `tributary run` to keep polling and serve the combined feeds over HTTP.
#[derive(Parser)]
#[command(name = "tributary", version, about, long_about)]
struct Cli {
    /// The config file [default: ./feeds.toml]
    #[arg(
        long,
        short,
        global = true,
        env = "TRIBUTARY_CONFIG",
        value_name = "PATH"
    )]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: poll every source on its interval and serve the feeds over HTTP.
    ///
    /// Stops cleanly on SIGTERM or Ctrl-C. Log verbosity follows RUST_LOG: the default is
    /// info; RUST_LOG=debug is tributary's debug log (requests, cache decisions, skipped
    /// entries), with other crates at warn unless named (RUST_LOG=debug,hyper=debug).
    Run,
    /// Poll every source once, store what is new, print one line per source, and exit.
    ///
    /// Each line is printed as its poll finishes, with the poll's own time (not time
    /// queued behind [fetch] concurrency); on a terminal a progress line is drawn on stderr.
    ///
    /// Exits 0 even when some sources fail (their lines say why); exits 1 only when the
    /// config or the store cannot be used.
    Once,
    /// Poll the named sources now (every source when none is named), print one line per
    /// source as each finishes, and a total.
    ///
    /// The running daemon polls them (asked over its control socket, `control.sock` in the
    /// store's folder); with no daemon running, this polls them itself, as `once` does.
    /// Exits 0 even when some sources fail; 1 if a name is unknown (nothing is polled), or
    /// the config, the store or the daemon cannot be used.
    Poll {
        /// Source names, as in feeds.toml.
        names: Vec<String>,
    },
    /// Show each source's status: last success, last error, failures in a row, next poll,
    /// current URL and entry count.
    ///
    /// Asks the running daemon when there is one (over HTTP, at [server] listen), else reads
    /// the store and says that no daemon is running. `--json` prints the same JSON as
    /// /healthz.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Apply retention now: prune entries past the [retention] limits, delete sources
    /// removed from the config longer than `removed_after` ago, drop expired tombstones.
    ///
    /// A pass that would remove more than half of the store (or of one source) is held,
    /// here and in the daemon, until run with --confirm. A running daemon prunes every
    /// `[retention] every` by itself; while it runs, only --confirm works here (the daemon
    /// runs the confirmed pass, and this prints its report).
    Prune {
        /// Show what would be pruned; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Prune even when the pass would remove most of the store.
        #[arg(long, conflicts_with = "dry_run")]
        confirm: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check the store's consistency (every index key has its entry and the reverse, the
    /// counts agree) and that the search index has every stored entry once and nothing
    /// else; exits 1 if anything is wrong. Changes nothing.
    Verify,
    /// Search the stored entries: print the matching entries' date, source, title and
    /// link, newest first.
    ///
    /// QUERY is in the search syntax (README, "Search"): words, "phrases", -exclusions,
    /// OR, title: author: category: source: tag: host:, after:DATE before:DATE. Asks the
    /// running daemon when there is one (its /search.json), else reads the store.
    Search {
        /// What to search for (quote it for the shell).
        query: String,
        /// At most this many entries.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=1000))]
        limit: u16,
        /// Best match first instead of newest first.
        #[arg(long)]
        relevance: bool,
        /// Print JSON (an array of {title, source, date, link}).
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the search index from the store. A running daemon rebuilds it in the
    /// background (searches meanwhile find what is indexed so far; /healthz shows how far);
    /// with none running, this rebuilds it and exits when done.
    Reindex,
    /// Print the sources as an OPML subscription list (tags as categories).
    ExportOpml,
    /// Add the subscriptions of an OPML file to the config as [[source]] tables, keeping
    /// the file's comments and layout; sources whose URL is already there are skipped.
    ///
    /// Sources are named by readable slugs of their titles ("Café Résumé — Blog!" becomes
    /// cafe-resume-blog). The result is checked before it is written; a running daemon
    /// reloads the file by itself and starts polling the new sources.
    ImportOpml {
        /// The OPML file (from another reader's export).
        file: PathBuf,
    },
    /// Add a site by its address (or a feed by its own): finds its feeds, shows each one's
    /// title and newest entries, and appends the one chosen to the config as a [[source]].
    ///
    /// A web page's feeds are those it advertises (<link rel="alternate">), else the first
    /// of the common paths (/feed, /rss, /atom.xml, /feed.xml, ...) that holds one. A page
    /// with no feed gets selectors proposed for its repeated entries (shown with the
    /// entries they give) and is added as a kind = "html" source; refine it with
    /// `tributary preview NAME`. With several feeds or proposals, you choose on a terminal;
    /// without one, pass --pick N. The config keeps its
    /// comments and layout and is checked before it is written; a URL already there is
    /// refused. A running daemon reloads the file by itself and starts polling the source.
    Add {
        /// The site's address, e.g. https://example.org (https:// may be left out), or a
        /// feed's.
        url: String,
        /// The source's name [default: a slug of the feed's (or page's) title].
        #[arg(long, value_name = "NAME")]
        name: Option<String>,
        /// A tag for the source (repeat for several).
        #[arg(long = "tag", value_name = "TAG")]
        tags: Vec<String>,
        /// Which of several feeds found (or selector proposals) to add (1 is the first
        /// listed).
        #[arg(long, value_name = "N")]
        pick: Option<usize>,
    },
    /// Show the entries a source would give now (date, title and link, one line each),
    /// without storing anything or opening the store: for tuning a page source's
    /// selectors while the daemon runs.
    ///
    /// The document is fetched whole (no conditional request) and read exactly as a poll
    /// reads it, rules and title template included. Field selectors that matched nothing
    /// are listed as warnings. Exits 1 when the fetch or the reading fails (e.g. `items`
    /// matched nothing).
    Preview {
        /// The source's name, as in feeds.toml.
        name: String,
        /// Print every field of every entry as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the config file and report every problem as file:line:col: message.
    ///
    /// Exits 0 when the config is valid, 1 otherwise. What is valid but probably not meant
    /// (a base_url readers cannot reach given listen) is printed as a `warning:` line.
    Check,
    /// Write the built-in templates of the HTML pages into a folder: the starting point of
    /// a theme (`[publish] templates`). Existing files are left alone.
    Templates {
        /// The folder to write them into (created if missing).
        #[arg(long, value_name = "DIR")]
        dump: PathBuf,
    },
}

/// How long the runtime waits at exit for blocking threads still running (an abandoned
/// parse) before the process ends without them.
const ABANDON_AFTER: std::time::Duration = std::time::Duration::from_millis(200);

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = Cli::parse();
    init_logging();
    let path = config::resolve_path(cli.config);
    if let Command::ImportOpml { file } = &cli.command {
        return import_opml(&path, file);
    }
    if let Command::Templates { dump } = &cli.command {
        return dump_templates(dump);
    }
    if let Command::Add {
        url,
        name,
        tags,
        pick,
    } = &cli.command
    {
        return add::add(&path, url, name.as_deref(), tags, *pick);
    }
    let config = match config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", with_causes(&e));
            return ExitCode::FAILURE;
        }
    };
    // A theme that compiles may still fail as it renders: tried on sample pages, so `check`
    // reports it and `run` does not start with it.
    if matches!(cli.command, Command::Check | Command::Run)
        && let Some(t) = &config.publish.templates
        && let Err(e) = tributary::render::river::trial(&t.files)
    {
        eprintln!("{}: templates: {}/{e}", path.display(), t.dir.display());
        return ExitCode::FAILURE;
    }
    if let Command::Check = cli.command {
        out!(
            "{}: ok ({} sources, store at {}, listening on {})",
            path.display(),
            config.sources.len(),
            config.store.path.display(),
            config.server.listen
        );
        for w in config::warn::warnings(&config) {
            eprintln!("warning: {w}");
        }
        return ExitCode::SUCCESS;
    }
    if let Command::Run = cli.command {
        for w in config::warn::warnings(&config) {
            tracing::warn!("{w}");
        }
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(tributary::app::blocking_threads())
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tributary: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Command::Preview { name, json } = &cli.command {
        let code = runtime.block_on(preview::run(&config, name, *json));
        runtime.shutdown_timeout(ABANDON_AFTER);
        return code;
    }
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run => app::run(config).await,
            Command::Once => once(config).await,
            Command::Poll { names } => poll(config, names).await,
            Command::Status { json } => {
                let (health, answered) = app::status(config).await?;
                if json {
                    out!("{}", serde_json::to_string_pretty(&health)?);
                } else {
                    let now = chrono::Utc::now();
                    let text = tributary::daemon::status::render_text(&health, now, &answered);
                    out!("{text}");
                }
                Ok(())
            }
            Command::ExportOpml => {
                say_raw(&app::export_opml(config).await);
                Ok(())
            }
            Command::Prune {
                dry_run,
                confirm,
                json,
            } => {
                let report = app::prune(config, dry_run, confirm).await?;
                if json {
                    out!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    say_raw(&tributary::daemon::status::render_prune(&report));
                }
                match report.held {
                    Some(held) if !dry_run => Err(app::Error::PruneHeld(held.reason)),
                    _ => Ok(()),
                }
            }
            Command::Search {
                query,
                limit,
                relevance,
                json,
            } => {
                let (lines, by) = app::search(config, query, limit.into(), relevance).await?;
                if json {
                    out!("{}", serde_json::to_string_pretty(&lines)?);
                } else {
                    for l in &lines {
                        let date = l
                            .date
                            .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
                            .unwrap_or_else(|| "-".repeat(16));
                        out!("{date}  {}  {}", l.source, l.title);
                        if let Some(link) = &l.link {
                            out!("                  {link}");
                        }
                    }
                    let from = match by {
                        app::SearchedBy::Daemon => "from the running daemon",
                        app::SearchedBy::Store => "from the store (no daemon is running)",
                    };
                    let n = lines.len();
                    out!("{n} {} {from}", if n == 1 { "entry" } else { "entries" });
                }
                Ok(())
            }
            Command::Reindex => {
                if app::reindex(config).await? {
                    out!(
                        "the running daemon is rebuilding the search index; /healthz shows how far (search.complete)"
                    );
                } else {
                    out!("search index rebuilt");
                }
                Ok(())
            }
            Command::Verify => {
                let report = app::verify(config).await?;
                for p in &report.problems {
                    out!("problem: {p}");
                }
                if let Some(search) = report.search.as_ref().filter(|s| !s.complete && s.documents == 0) {
                    let _ = search;
                    out!("search index: not built yet (the daemon builds it; `tributary reindex` builds it now)");
                } else if let Some(search) = &report.search {
                    out!(
                        "search index: {} documents for {} entries{}",
                        search.documents,
                        search.entries,
                        if !search.complete {
                            " (not built yet, or rebuilding: the daemon builds it)".to_string()
                        } else if search.backlog > 0 {
                            format!(" ({} changes not yet taken in)", search.backlog)
                        } else {
                            String::new()
                        }
                    );
                }
                out!(
                    "{} entries, {} sources, {} tombstones: {}",
                    report.entries,
                    report.sources,
                    report.tombstones,
                    if report.problems.is_empty() {
                        "consistent".to_string()
                    } else {
                        format!("{} problems", report.problems.len())
                    }
                );
                if report.problems.is_empty() {
                    Ok(())
                } else {
                    Err(app::Error::Inconsistent(report.problems.len()))
                }
            }
            Command::Check
            | Command::Preview { .. }
            | Command::ImportOpml { .. }
            | Command::Templates { .. }
            | Command::Add { .. } => Ok(()),
        }
    });
    // Parsing and normalising run on blocking threads, which cannot be interrupted: a stop
    // abandons a poll still reading a slow document (nothing of it was stored), and the
    // runtime must not wait for that thread either. Everything worth finishing (store
    // writes, the final flush) has finished inside `block_on`.
    runtime.shutdown_timeout(ABANDON_AFTER);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tributary: {}", with_causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// `tributary poll [NAME...]`: each source's line as its poll finishes, then a total.
async fn poll(config: config::Config, names: Vec<String>) -> Result<(), app::Error> {
    use std::io::Write;
    let summary = app::poll(config, names, |line| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
    .await?;
    for name in &summary.missing {
        out!(
            "{name:<24} no result yet: still waiting for a place to poll (see `tributary status`)"
        );
    }
    out!(
        "{} sources polled, {} failed{}",
        summary.polled,
        summary.failed,
        if summary.by_daemon {
            " (by the running daemon)"
        } else {
            ""
        }
    );
    Ok(())
}

/// `templates --dump DIR`: writes each built-in template into `dir`, skipping (and saying
/// so) a file that is already there.
fn dump_templates(dir: &std::path::Path) -> ExitCode {
    if let Err(e) = std::fs::create_dir_all(dir) {
        eprintln!("tributary: cannot create {}: {e}", dir.display());
        return ExitCode::FAILURE;
    }
    for (name, text) in tributary::render::river::BUILT_IN {
        let file = dir.join(name);
        let file = std::path::absolute(&file).unwrap_or(file);
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, text.as_bytes()));
        match written {
            Ok(()) => out!("wrote {}", file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                out!("kept {} (already there)", file.display());
            }
            Err(e) => {
                eprintln!("tributary: cannot write {}: {e}", file.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// `tributary once`: each source's line on stdout as its poll finishes, then the totals.
/// On a terminal, a progress line on stderr ("12/200 sources, 1 failed"), cleared at the
/// end; log lines and stdout lines are written around it.
async fn once(config: config::Config) -> Result<(), app::Error> {
    let total = config.sources.len() as u64;
    let progress = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::with_draw_target(
            Some(total),
            indicatif::ProgressDrawTarget::stderr(),
        );
        if let Ok(style) = indicatif::ProgressStyle::with_template("{pos}/{len} sources, {msg}") {
            bar.set_style(style);
        }
        bar.set_message("0 failed");
        let _ = PROGRESS.set(bar.clone());
        bar
    });
    let mut failed = 0usize;
    let reports = app::once_each(config, |report| {
        failed += usize::from(report.is_failure());
        match &progress {
            Some(bar) => {
                bar.suspend(|| out!("{report}"));
                bar.set_message(format!("{failed} failed"));
                bar.inc(1);
            }
            None => out!("{report}"),
        }
    })
    .await;
    if let Some(bar) = &progress {
        bar.finish_and_clear();
    }
    let reports = reports?;
    out!("{} sources polled, {} failed", reports.len(), failed);
    Ok(())
}

/// The progress line `once` draws on a terminal: log lines are written around it.
static PROGRESS: std::sync::OnceLock<indicatif::ProgressBar> = std::sync::OnceLock::new();

/// stderr for the log: a progress line being drawn is cleared for each log line and
/// drawn again after it.
struct LogWriter;

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match PROGRESS.get() {
            Some(bar) if !bar.is_finished() => bar.suspend(|| std::io::stderr().write(buf)),
            _ => std::io::stderr().write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// An error with the chain of its causes, one `caused by:` line each.
fn with_causes(error: &(dyn std::error::Error + 'static)) -> String {
    tributary::with_causes(error, "\n  caused by: ")
}

/// Logs to stderr, filtered by RUST_LOG (default info); colours only on a terminal. When
/// stderr is the journal (`$JOURNAL_STREAM`, set by systemd), each line starts with its
/// syslog priority (`<3>` error ... `<7>` debug), which journald reads as the entry's
/// priority (so `journalctl -p warning` works), and carries no timestamp or level text of
/// its own (journald adds the time; the priority is the level).
fn init_logging() {
    let rust_log = std::env::var("RUST_LOG").ok();
    let filter = EnvFilter::try_new(log_directives(rust_log.as_deref()))
        .unwrap_or_else(|_| EnvFilter::new(log_directives(None)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| LogWriter)
        .with_ansi(std::io::stderr().is_terminal());
    if std::env::var_os("JOURNAL_STREAM").is_some() {
        let format = tracing_subscriber::fmt::format()
            .without_time()
            .with_level(false)
            .with_ansi(false);
        builder.event_format(JournalPriority(format)).init();
    } else {
        builder.init();
    }
}

/// RUST_LOG as tributary reads it: a bare level is tributary's own ("debug" means
/// `warn,tributary=debug`), other crates stay at warn unless named
/// ("debug,html5ever=debug"), and tributary logs at info unless told otherwise. A bare
/// level of warn or less ("error", "off") is everyone's.
fn log_directives(rust_log: Option<&str>) -> String {
    use tracing_subscriber::filter::LevelFilter;
    let value = rust_log.map(str::trim).filter(|v| !v.is_empty());
    let mut named = Vec::new();
    let mut bare = None;
    for directive in value.unwrap_or("info").split(',').map(str::trim) {
        match directive.parse::<LevelFilter>() {
            Ok(level) if !directive.is_empty() => bare = Some((directive, level)),
            _ if directive.is_empty() => {}
            _ => named.push(directive),
        }
    }
    let ours_named = named
        .iter()
        .any(|d| d.split(['=', '[']).next() == Some("tributary"));
    let mut directives = match bare {
        // Quieter than warn: everyone's.
        Some((text, level)) if level <= LevelFilter::WARN => vec![text.to_string()],
        Some((text, _)) if !ours_named => vec!["warn".into(), format!("tributary={text}")],
        None if !ours_named => vec!["warn".into(), "tributary=info".into()],
        _ => vec!["warn".to_string()],
    };
    directives.extend(named.into_iter().map(str::to_string));
    directives.join(",")
}

/// Prefixes each log line with its syslog priority, for journald.
struct JournalPriority<F>(F);

impl<S, N, F> tracing_subscriber::fmt::FormatEvent<S, N> for JournalPriority<F>
where
    F: tracing_subscriber::fmt::FormatEvent<S, N>,
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            tracing::Level::ERROR => 3,
            tracing::Level::WARN => 4,
            tracing::Level::INFO => 6,
            tracing::Level::DEBUG | tracing::Level::TRACE => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

/// glibc gives each thread that allocates under contention an arena of its own, up to eight
/// per core, and keeps what was freed in each. A large feed parsed on one blocking thread,
/// then on another, then another, leaves its peak behind in every arena. Two arenas keep the
/// daemon's resident memory close to what it actually uses.
///
/// And blocks of 128 KiB or more are always mapped on their own, so they go back to the
/// system as soon as they are freed. (glibc's default starts there but raises the bar to
/// the largest block freed, up to 32 MiB: after the search index's writer freed its
/// megabyte pages once, the next ones came from the arenas and stayed there, fragmented.
/// A rebuild of a million entries peaked at 221 and 255 MB with glibc's default, at 196
/// and 208 MB with the threshold pinned; BENCHMARKS.md, "Search".)
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    // SAFETY: mallopt only sets allocator parameters; called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas() {}

/// Why `import-opml` wrote nothing.
#[derive(Debug, thiserror::Error)]
enum ImportError {
    #[error("{}: cannot read: {error}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
    /// The OPML file cannot be read as OPML, or the config file cannot take its sources.
    #[error("{}: {error}", path.display())]
    Opml {
        path: PathBuf,
        error: tributary::config::opml::OpmlError,
    },
    /// The config with the new sources would not load: it is not written.
    #[error(transparent)]
    Invalid(#[from] config::ConfigError),
    #[error("{}: cannot write: {error}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        error: std::io::Error,
    },
}

/// `tributary import-opml FILE`: appends the new subscriptions to the config file.
fn import_opml(config_path: &std::path::Path, opml_path: &std::path::Path) -> ExitCode {
    let read = |path: &std::path::Path, error| ImportError::Read {
        path: path.to_path_buf(),
        error,
    };
    let opml = |path: &std::path::Path, error| ImportError::Opml {
        path: path.to_path_buf(),
        error,
    };
    let result = (|| -> Result<tributary::config::opml::Imported, ImportError> {
        let text = std::fs::read_to_string(opml_path).map_err(|e| read(opml_path, e))?;
        let outlines = tributary::config::opml::read(&text).map_err(|e| opml(opml_path, e))?;
        let text = match std::fs::read_to_string(config_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(read(config_path, e)),
        };
        let (new_text, report) =
            tributary::config::opml::import(&text, &outlines).map_err(|e| opml(config_path, e))?;
        // Never write a config that would not load.
        config::parse(&new_text, config_path)?;
        write_config(config_path, &new_text).map_err(|error| ImportError::Write {
            path: config_path.to_path_buf(),
            error,
        })?;
        Ok(report)
    })();
    match result {
        Ok(report) => {
            for name in &report.added {
                out!("added   {name}");
            }
            for url in &report.skipped {
                out!("skipped {url} (already there, or not an http(s) URL)");
            }
            out!(
                "{} added, {} skipped: {}",
                report.added.len(),
                report.skipped.len(),
                config_path.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{}", with_causes(&e));
            ExitCode::FAILURE
        }
    }
}

/// Replaces the config file with `text` at once: written beside it, then renamed over it,
/// so a daemon watching it never reads half a file.
///
/// A config reached through a symbolic link is written where the link points (the link
/// stays), and the new file keeps the old one's mode and owner: a config holding source
/// credentials stays as private as it was.
fn write_config(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let path = match std::fs::canonicalize(path) {
        Ok(real) => real,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path.to_path_buf(),
        Err(e) => return Err(e),
    };
    let old = std::fs::metadata(&path).ok();
    let tmp = path.with_extension("toml.new");
    let _ = std::fs::remove_file(&tmp);
    let mode = old.as_ref().map_or(0o644, |m| m.mode() & 0o7777);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)?;
    let written = std::io::Write::write_all(&mut file, text.as_bytes())
        .and_then(|()| file.sync_all())
        .and_then(|()| {
            // The mode asked for at creation is masked by the umask: set it as it was.
            std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))
        })
        .and_then(|()| match &old {
            // The old owner and group (only root may give a file away: anyone else keeps
            // their own, which is then already right).
            Some(m) => std::os::unix::fs::chown(&tmp, Some(m.uid()), Some(m.gid())).or(Ok(())),
            None => Ok(()),
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Set once standard output is gone (its reader closed it).
static STDOUT_GONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// One line on standard output (see [`out!`]).
fn say(args: std::fmt::Arguments<'_>) {
    say_raw(&format!("{args}\n"));
}

/// Text on standard output as it is (see [`out!`]).
fn say_raw(text: &str) {
    use std::io::Write;
    use std::sync::atomic::Ordering;
    if STDOUT_GONE.load(Ordering::Relaxed) {
        return;
    }
    let mut stdout = std::io::stdout().lock();
    if stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        STDOUT_GONE.store(true, Ordering::Relaxed);
    }
}
