//! Ingest benchmark (BENCHMARKS.md, "Ingest"): parse + normalise + dedup + store, in
//! entries/s and MB/s, and the same input through the bare parser alone, so the pipeline's
//! overhead is a ratio.
//!
//! ```text
//! cargo run --release --example bench_ingest -- ../shared/corpus
//! cargo run --release --example bench_ingest -- --file FEED [--runs N]
//! ```
//!
//! Two inputs: every file of the corpus (each its own source), and one synthetic feed of
//! 5,000 entries (~5 MB). Each measurement is the median of 5 runs; the store runs write
//! into a fresh temporary store each time (every entry new: the full write path).
//!
//! With `--file`, only that one feed (one source), median of `--runs` runs (default 9):
//! `bench/peer-ingest.sh` compares it with Python feedparser on the same bytes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tributary::model::SourceState;
use tributary::store::Store;
use url::Url;

const RUNS: usize = 5;
const FILE_RUNS: usize = 9;

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if !matches!(
            p.file_name().and_then(|n| n.to_str()),
            Some("MANIFEST.tsv" | "README.md")
        ) {
            out.push(p);
        }
    }
}

/// Parse only: returns the entries found.
fn parse_all(inputs: &[(Url, Vec<u8>)]) -> usize {
    let mut n = 0;
    for (url, bytes) in inputs {
        if let Ok(p) = tributary::feed::parse::parse_document_limited(bytes, None, url, 5000) {
            n += p.feed.entries.len();
        }
    }
    n
}

/// Parse, normalise, and store (dedup included) into `store`: returns entries stored.
fn ingest_all(inputs: &[(Url, Vec<u8>)], store: &Store) -> usize {
    let now = Utc::now();
    let mut n = 0;
    for (i, (url, bytes)) in inputs.iter().enumerate() {
        let Ok(p) = tributary::feed::parse::parse_document_limited(bytes, None, url, 5000) else {
            continue;
        };
        let name = format!("s{i}");
        let normalised = tributary::feed::normalise::normalise(p.feed, &name, url, now);
        if let Ok((c, _)) = store.apply_poll(
            &name,
            normalised.entries,
            SourceState::default(),
            false,
            None,
            now,
            |old, new| tributary::feed::normalise::merge(old, new, now),
        ) {
            n += c.new;
        }
    }
    n
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(label: &str, inputs: &[(Url, Vec<u8>)], runs: usize) {
    let bytes: usize = inputs.iter().map(|(_, b)| b.len()).sum();
    let mb = bytes as f64 / 1e6;
    let mut parse_times = Vec::new();
    let mut parsed = 0;
    for _ in 0..runs {
        let t = Instant::now();
        parsed = parse_all(inputs);
        parse_times.push(t.elapsed());
    }
    let mut ingest_times = Vec::new();
    let mut stored = 0;
    for _ in 0..runs {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), 32 << 20).expect("store");
        let t = Instant::now();
        stored = ingest_all(inputs, &store);
        store.flush().expect("flush");
        ingest_times.push(t.elapsed());
    }
    let (p, i) = (median(parse_times), median(ingest_times));
    let row = |what: &str, d: Duration, entries: usize| {
        println!(
            "| {label} | {what} | {} files, {mb:.1} MB, {entries} entries | {:.3} s | {:.0} entries/s | {:.1} MB/s |",
            inputs.len(),
            d.as_secs_f64(),
            entries as f64 / d.as_secs_f64(),
            mb / d.as_secs_f64()
        );
    };
    row("parser alone", p, parsed);
    row("parse + normalise + dedup + store", i, stored);
    println!(
        "| {label} | pipeline / parser | | {:.2}x the time | | |",
        i.as_secs_f64() / p.as_secs_f64()
    );
}

fn synthetic(n: usize) -> String {
    let mut s = String::from(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Big</title><link>https://big.example/</link><description>d</description>"#,
    );
    for i in 0..n {
        s.push_str(&format!(
            "<item><guid>https://big.example/{i}</guid><title>Entry {i}</title><link>https://big.example/{i}</link>\
             <pubDate>Mon, 03 Mar 2025 10:{:02}:00 GMT</pubDate><category>cat{}</category>\
             <description>&lt;p&gt;Paragraph {i}: {}&lt;/p&gt;</description></item>",
            i % 60,
            i % 7,
            "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(14)
        ));
    }
    s.push_str("</channel></rss>");
    s
}

/// `--file PATH [--runs N]`: that one feed only.
fn one_file(args: &[String]) -> Result<(), String> {
    let mut path = None;
    let mut runs = FILE_RUNS;
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        match args[i].as_str() {
            "--file" => path = Some(PathBuf::from(value)),
            "--runs" => {
                runs = value
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("--runs: not a positive number: {value}"))?
            }
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    let path = path.ok_or("--file needs a path")?;
    let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let url = Url::parse(&format!("http://bench.test/{name}")).map_err(|e| e.to_string())?;
    println!("| input | stage | size | time (median of {runs}) | entries/s | MB/s |");
    println!("|---|---|---|---|---|---|");
    measure(&name, &[(url, bytes)], runs);
    Ok(())
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().is_some_and(|a| a.starts_with("--")) {
        return one_file(&args);
    }
    let dir = args
        .first()
        .cloned()
        .unwrap_or_else(|| "../shared/corpus".into());
    let mut paths = Vec::new();
    files(Path::new(&dir), &mut paths);
    paths.sort();
    let corpus: Vec<(Url, Vec<u8>)> = paths
        .iter()
        .filter_map(|p| {
            let bytes = std::fs::read(p).ok()?;
            let rel = p
                .strip_prefix(&dir)
                .unwrap_or(p)
                .to_string_lossy()
                .to_string();
            let url = Url::parse(&format!("http://corpus.test/{rel}")).ok()?;
            Some((url, bytes))
        })
        .collect();
    println!("| input | stage | size | time (median of {RUNS}) | entries/s | MB/s |");
    println!("|---|---|---|---|---|---|");
    if corpus.is_empty() {
        eprintln!("no corpus at {dir}; only the synthetic feed");
    } else {
        measure("corpus", &corpus, RUNS);
    }
    let big = synthetic(5000);
    let url = Url::parse("https://big.example/feed.xml").map_err(|e| e.to_string())?;
    measure("synthetic", &[(url, big.into_bytes())], RUNS);
    Ok(())
}
