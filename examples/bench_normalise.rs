//! Normalise benchmark (BENCHMARKS.md, "Normalise alone"): the time `feed::normalise` takes
//! over one parsed feed (titles, sanitised HTML, links, keys, fingerprints), apart from
//! parsing and storing.
//!
//! ```text
//! cargo run --release --example bench_normalise -- FEED [RUNS]
//! ```
//!
//! The feed is parsed once; each run normalises a fresh copy of the parse. Printed: the
//! median and the fastest of `RUNS` (default 30), as wall time and as the thread's CPU
//! time (which a machine busy with other work disturbs less).

use std::time::Instant;

use chrono::Utc;
use url::Url;

/// CPU time of this thread, in milliseconds.
fn thread_cpu_ms() -> f64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid, writable timespec; the clock id is a constant Linux knows.
    if unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut t) } != 0 {
        return f64::NAN;
    }
    t.tv_sec as f64 * 1e3 + t.tv_nsec as f64 / 1e6
}

fn median_and_min(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0])
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: bench_normalise FEED [RUNS]")?;
    let runs: usize = match args.next() {
        Some(n) => n
            .parse()
            .ok()
            .filter(|&n| n > 0)
            .ok_or(format!("RUNS: not a positive number: {n}"))?,
        None => 30,
    };
    let bytes = std::fs::read(&path).map_err(|e| format!("{path}: {e}"))?;
    let url = Url::parse("http://bench.test/feed.xml").map_err(|e| e.to_string())?;
    let parsed = tributary::feed::parse::parse_document_limited(&bytes, None, &url, 5000)
        .map_err(|e| format!("{path}: {e}"))?;
    let now = Utc::now();
    let (mut wall, mut cpu) = (Vec::new(), Vec::new());
    let mut entries = 0;
    for _ in 0..runs {
        let feed = parsed.feed.clone();
        let (w, c) = (Instant::now(), thread_cpu_ms());
        let normalised = tributary::feed::normalise::normalise(feed, "s", &url, now);
        cpu.push(thread_cpu_ms() - c);
        wall.push(w.elapsed().as_secs_f64() * 1e3);
        entries = normalised.entries.len();
    }
    let ((wall_median, wall_min), (cpu_median, cpu_min)) =
        (median_and_min(wall), median_and_min(cpu));
    println!(
        "normalise {entries} entries, {runs} runs: wall median {wall_median:.2} ms (fastest \
         {wall_min:.2}), thread CPU median {cpu_median:.2} ms (fastest {cpu_min:.2})"
    );
    Ok(())
}
