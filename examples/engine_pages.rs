//! Studies the storage engine, not tributary: what sled 0.34 costs in memory for a
//! number of keys, and how far reading pushes its resident set past `cache_capacity`.
//! BENCHMARKS.md ("The gaps, from profiles") quotes it. It talks to sled directly, which
//! nothing in `src/` but the store does.
//!
//! ```text
//! cargo run --release --example engine_pages -- fill DIR KEYS VALUE_BYTES INDEXES
//! cargo run --release --example engine_pages -- read DIR KEYS CACHE_MB
//! ```
//!
//! `fill` writes KEYS entries of VALUE_BYTES under hashed keys, plus INDEXES extra keys
//! with empty values per entry (as the store's indexes are), in batches of 100 with a
//! flush every 1,000. `read` opens the directory, prints the resident memory, then reads
//! 15,000 entries at random (300 rounds of 50, as a feed render does) and prints it again.

use std::error::Error;
use std::time::Instant;

fn resident_mb() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .filter(|l| l.starts_with("VmHWM") || l.starts_with("VmRSS"))
        .map(|l| {
            let kb: u64 = l
                .split_whitespace()
                .nth(1)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            format!("{} {} MB", l.split(':').next().unwrap_or(""), kb / 1024)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn entry_key(i: u64) -> Vec<u8> {
    let mut k = b"e/".to_vec();
    k.extend_from_slice(&i.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
    k
}

fn number(args: &[String], at: usize, what: &str) -> Result<u64, Box<dyn Error>> {
    args.get(at)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("expected {what} as argument {at}").into())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("");
    let dir = args.get(2).ok_or("usage: engine_pages fill|read DIR …")?;
    let keys = number(&args, 3, "KEYS")?;
    match mode {
        "fill" => {
            let value = vec![b'x'; usize::try_from(number(&args, 4, "VALUE_BYTES")?)?];
            let indexes = number(&args, 5, "INDEXES")?;
            let db = sled::Config::new()
                .path(dir)
                .cache_capacity(32 << 20)
                .open()?;
            let mut batch = sled::Batch::default();
            for i in 0..keys {
                batch.insert(entry_key(i), value.clone());
                for j in 0..indexes {
                    let mut k = format!("i{j}/").into_bytes();
                    k.extend_from_slice(&i.to_be_bytes());
                    batch.insert(k, &[][..]);
                }
                if i % 100 == 99 {
                    db.apply_batch(std::mem::take(&mut batch))?;
                    if i % 1000 == 999 {
                        db.flush()?;
                    }
                }
            }
            db.apply_batch(batch)?;
            db.flush()?;
            println!("filled: {}", resident_mb());
        }
        "read" => {
            let cache_mb = number(&args, 4, "CACHE_MB")?;
            let db = sled::Config::new()
                .path(dir)
                .cache_capacity(cache_mb << 20)
                .open()?;
            println!("opened: {}", resident_mb());
            let mut rounds = Vec::new();
            for r in 0..300u64 {
                let t = Instant::now();
                for j in 0..50u64 {
                    let i = (r * 7919 + j * 104_729) % keys;
                    db.get(entry_key(i))?
                        .ok_or("a key that was written is missing")?;
                }
                rounds.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            rounds.sort_by(f64::total_cmp);
            println!(
                "after 15,000 random reads: {} (50 reads: p50 {:.2} ms, p99 {:.2} ms)",
                resident_mb(),
                rounds[150],
                rounds[297]
            );
        }
        _ => return Err("usage: engine_pages fill|read DIR …".into()),
    }
    Ok(())
}
