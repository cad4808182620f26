//! Regression guard over the shared feed corpus (`../shared/corpus`): every file through
//! parse + normalise, compared with what Python feedparser found. The code is the corpus
//! example's (`cargo run --release --example corpus` writes the full report, `CORPUS.md`).
//!
//! Asserts that nothing panics and that the share of cleanly parsed files (feedparser: a
//! version, bozo 0) where tributary's entry count equals feedparser's does not fall below
//! [`MIN_AGREEMENT_PCT`]. Raise that figure when the parser gets better; the goal is 99%.
//!
//! Without the corpus the test is listed as ignored ("skipped: ...", see `build.rs`), except
//! under CI (`CI` set), which has the corpus: there it runs and fails.

#[path = "../examples/corpus.rs"]
#[allow(dead_code)]
mod corpus;

use std::path::Path;

/// The agreement measured when this guard was set (81.65%), minus half a point.
const MIN_AGREEMENT_PCT: f64 = 99.0;

#[test]
#[cfg_attr(
    corpus_missing,
    ignore = "skipped: the corpus ../shared/corpus is not here (test data; CI has it)"
)]
fn corpus_never_panics_and_agrees_with_feedparser() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(corpus::DEFAULT_CORPUS);
    if !dir.join("MANIFEST.tsv").is_file() {
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty());
        assert!(
            !ci,
            "CI is set but the corpus is missing: {} has no MANIFEST.tsv",
            dir.display()
        );
        panic!(
            "the corpus is missing: {} has no MANIFEST.tsv (it was there when the crate was built: `touch build.rs`)",
            dir.display()
        );
    }
    let run = corpus::run(&dir).expect("the corpus can be read");
    let (agree, total) = run.agreement();
    let pct = run.agreement_pct();
    eprintln!(
        "corpus: {} files in {:.1?}, agreement {agree}/{total} = {pct:.2}%, {} panics",
        run.results.len(),
        run.elapsed,
        run.panics().len()
    );

    let panics: Vec<String> = run
        .panics()
        .iter()
        .map(|r| format!("{}: {:?}", r.row.path, r.outcome))
        .collect();
    assert!(
        panics.is_empty(),
        "parse/normalise panicked on {} files:\n{}",
        panics.len(),
        panics.join("\n")
    );
    let probe_panics: Vec<&str> = corpus::probes()
        .iter()
        .filter(|p| corpus::run_probe(p).1.starts_with("PANIC"))
        .map(|p| p.name)
        .collect();
    assert!(probe_panics.is_empty(), "probes panicked: {probe_panics:?}");

    let causes: Vec<String> = run
        .causes()
        .iter()
        .filter(|(_, rs)| rs.iter().any(|r| r.bucket == corpus::Bucket::Reference))
        .take(8)
        .map(|(c, rs)| {
            let paths: Vec<&str> = rs.iter().take(2).map(|r| r.row.path.as_str()).collect();
            format!(
                "  {} files: {} (e.g. {})",
                rs.len(),
                c.label(),
                paths.join(", ")
            )
        })
        .collect();
    assert!(
        pct >= MIN_AGREEMENT_PCT,
        "agreement with feedparser fell to {agree}/{total} = {pct:.2}% (guard: {MIN_AGREEMENT_PCT}%). \
         Biggest causes:\n{}\nRun `cargo run --release --example corpus -- ../shared/corpus` for the full report.",
        causes.join("\n")
    );
}
