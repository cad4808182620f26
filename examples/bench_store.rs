//! Fills a store for the big-store benchmark (`bench/big-store.sh`): `sources` sources with
//! `per_source` entries each (about 1 KB of content apiece), written through the store's
//! own poll path, and a matching feeds.toml.
//!
//! ```text
//! cargo run --release --example bench_store -- DIR 10000 100
//! ```

use std::io::Write;
use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use tributary::model::{Entry, SourceState};
use tributary::store::Store;

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(
        args.get(1)
            .ok_or("usage: bench_store DIR SOURCES PER_SOURCE")?,
    );
    let sources: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let per_source: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(100);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let port = args.get(4).map(String::as_str).unwrap_or("18600");
    let mut config = std::fs::File::create(dir.join("feeds.toml")).map_err(|e| e.to_string())?;
    writeln!(
        config,
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = \"store\"\n[retention]\nkeep_total = 100000000\nkeep_per_source = 100000000\nkeep_for = \"forever\"\nevery = \"24h\"\n"
    )
    .map_err(|e| e.to_string())?;
    for s in 0..sources {
        // Never polled during the benchmark: the origin does not exist, intervals are long.
        writeln!(
            config,
            "[[source]]\nname = \"s{s}\"\nurl = \"http://127.0.0.1:9/feed/{s}.xml\"\ninterval = \"24h\"\ntags = [\"t{}\"]\n",
            s % 10
        )
        .map_err(|e| e.to_string())?;
    }
    let store = Store::open(&dir.join("store"), 32 << 20).map_err(|e| e.to_string())?;
    let base = Utc
        .with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
        .single()
        .ok_or("date")?;
    // Content that compresses like prose, not like one sentence repeated (the store
    // compresses entries): words drawn from a 2,000-word vocabulary of made-up words,
    // common ones far more often (roughly Zipf), about 1 KB per entry.
    let syllables = [
        "ka", "lo", "mi", "ten", "ra", "sol", "ve", "dun", "pri", "ast", "el", "or", "qui", "ba",
        "ner", "tu", "gal", "em", "ost", "ri",
    ];
    let vocabulary: Vec<String> = (0..2000usize)
        .map(|w| {
            let n = 1 + w % 3;
            (0..n)
                .map(|j| syllables[(w / 3 + j * 7 + w * j) % syllables.len()])
                .collect()
        })
        .collect();
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut text = move || {
        let mut out = String::with_capacity(1100);
        while out.len() < 1000 {
            let r = next();
            let word = ((r % 2000) * ((r >> 20) % 2000) / 2000) as usize;
            if !out.is_empty() {
                out.push(if r >> 60 == 0 { '.' } else { ' ' });
                out.push(' ');
            }
            out.push_str(&vocabulary[word]);
        }
        out
    };
    let mut content_bytes = 0usize;
    let started = Instant::now();
    for s in 0..sources {
        let name = format!("s{s}");
        let entries: Vec<Entry> = (0..per_source)
            .map(|i| {
                let when = base + Duration::minutes((i * sources + s) as i64);
                let link = format!("https://source{s}.example/post/{i}");
                let mut e = Entry {
                    key: tributary::feed::identity::entry_key(&name, "guid", &link),
                    source: name.clone(),
                    guid: Some(link.clone()),
                    title: format!("Post {i} of source {s}"),
                    link: Some(link.clone()),
                    summary: None,
                    content: Some(format!("<p>{}</p>", text())),
                    authors: vec![],
                    categories: vec![format!("topic{}", i % 10)],
                    enclosures: vec![],
                    comments: None,
                    thumbnail: None,
                    published: Some(when),
                    updated: when,
                    first_seen: when,
                    fingerprint: [0; 16],
                    article: Some(
                        *blake3::hash(link.as_bytes())
                            .as_bytes()
                            .first_chunk()
                            .ok_or("hash")?,
                    ),
                    duplicate_of: None,
                    also_in: vec![],
                    full_text: None,
                    full_content: None,
                };
                e.fingerprint = tributary::feed::identity::fingerprint(&e);
                content_bytes += e.content.as_ref().map_or(0, String::len);
                Ok(e)
            })
            .collect::<Result<_, String>>()?;
        let now = Utc::now();
        store
            .apply_poll(
                &name,
                entries,
                // Polled a moment ago: the daemon does not poll it again during the
                // benchmark, so the measurements see only the serving side.
                SourceState {
                    last_attempt: Some(now),
                    last_success: Some(now),
                    next_poll: Some(now + Duration::days(1)),
                    ..SourceState::default()
                },
                false,
                None,
                now,
                |old, new| tributary::feed::normalise::merge(old, new, now),
            )
            .map_err(|e| e.to_string())?;
    }
    store.flush().map_err(|e| e.to_string())?;
    let filled = started.elapsed();
    // Ends as the daemon's clean stop after such an ingest does: with a checkpoint.
    let checkpoint = std::time::Instant::now();
    store.checkpoint().map_err(|e| e.to_string())?;
    println!(
        "filled {} entries across {sources} sources in {:.1} s ({} bytes of content per entry); checkpointed in {:.2} s",
        sources * per_source,
        filled.as_secs_f64(),
        content_bytes / (sources * per_source).max(1),
        checkpoint.elapsed().as_secs_f64()
    );
    Ok(())
}
