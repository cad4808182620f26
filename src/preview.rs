//! `tributary preview NAME [--json]`: part of the command line (a module of `main.rs`, not
//! of the library). Prints what [`tributary::ingest::preview`] found: one line per entry
//! (date, title, link), or every field as JSON; warnings on stderr.

use std::process::ExitCode;

use tributary::config::Config;
use tributary::fetch::Fetcher;
use tributary::ingest::preview::{Preview, preview};
use tributary::model::Entry;

/// Runs the preview of source `name` of `config`.
pub async fn run(config: &Config, name: &str, json: bool) -> ExitCode {
    let Some(source) = config.source(name) else {
        let known: Vec<&str> = config.sources.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "tributary: no source named \"{name}\" in the config{}",
            if known.is_empty() {
                String::new()
            } else {
                format!(" (sources: {})", known.join(", "))
            }
        );
        return ExitCode::FAILURE;
    };
    let fetcher = match Fetcher::new(&config.fetch) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("tributary: {}", tributary::with_causes(&e, ": "));
            return ExitCode::FAILURE;
        }
    };
    let found = match preview(&fetcher, source, chrono::Utc::now()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{name}: {}", tributary::ingest::error::one_line(&e));
            return ExitCode::FAILURE;
        }
    };
    if json {
        crate::say_raw(&format!("{}\n", as_json(name, &found)));
    } else {
        crate::say_raw(&as_lines(name, &found));
    }
    for w in &found.warnings {
        eprintln!("warning: {w}");
    }
    ExitCode::SUCCESS
}

/// One line per entry: date (UTC; "first seen" for an entry without one), title, link.
fn as_lines(name: &str, p: &Preview) -> String {
    let mut out = format!(
        "{name}: {} entries from {} (HTTP {}, {:.2}s){}\n",
        p.entries.len(),
        p.url,
        p.status,
        p.took.as_secs_f64(),
        match p.filtered {
            0 => String::new(),
            n => format!("; {n} kept out by the source's rules"),
        }
    );
    for e in &p.entries {
        let date = e.published.map_or_else(
            || format!("{:<20}", "(dated when seen)"),
            |d| d.format("%Y-%m-%d %H:%M UTC").to_string(),
        );
        let link = e.link.as_deref().unwrap_or("(no link)");
        out.push_str(&format!("{date}  {}  {link}\n", e.title));
    }
    out
}

/// The whole entries, as a JSON object.
fn as_json(name: &str, p: &Preview) -> String {
    let entries: Vec<serde_json::Value> = p.entries.iter().map(entry_json).collect();
    let doc = serde_json::json!({
        "source": name,
        "url": p.url.as_str(),
        "status": p.status,
        "entries": entries,
        "filtered": p.filtered,
        "warnings": p.warnings,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn entry_json(e: &Entry) -> serde_json::Value {
    serde_json::json!({
        "title": e.title,
        "link": e.link,
        "date": e.published.map(|d| d.to_rfc3339()),
        "summary": e.summary,
        "content": e.content,
        "authors": e.authors.iter().map(|a| &a.name).collect::<Vec<_>>(),
        "categories": e.categories,
        "image": e.thumbnail,
        "enclosures": e.enclosures.iter().map(|x| &x.url).collect::<Vec<_>>(),
    })
}
