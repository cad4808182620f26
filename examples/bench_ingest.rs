//! Ingest benchmark (BENCHMARKS.md, "Ingest"): parse + normalise + dedup + store, in
//! entries/s and MB/s, and the same input through the bare parser alone, so the pipeline's
//! overhead is a ratio.
//!
//! ```text
//! cargo run --release --example bench_ingest -- ../shared/corpus
//! ```
//!
//! Two inputs: every file of the corpus (each its own source), and one synthetic feed of
//! 5,000 entries (~5 MB). Each measurement is the median of 5 runs; the store runs write
//! into a fresh temporary store each time (every entry new: the full write path).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use tributary::model::SourceState;
use tributary::store::Store;
use url::Url;

const RUNS: usize = 5;

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

fn measure(label: &str, inputs: &[(Url, Vec<u8>)]) {
    let bytes: usize = inputs.iter().map(|(_, b)| b.len()).sum();
    let mb = bytes as f64 / 1e6;
    let mut parse_times = Vec::new();
    let mut parsed = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        parsed = parse_all(inputs);
        parse_times.push(t.elapsed());
    }
    let mut ingest_times = Vec::new();
    let mut stored = 0;
    for _ in 0..RUNS {
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

fn main() {
    let dir = std::env::args()
        .nth(1)
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
        measure("corpus", &corpus);
    }
    let big = synthetic(5000);
    let url = Url::parse("https://big.example/feed.xml").expect("url");
    measure("synthetic", &[(url, big.into_bytes())]);
}
