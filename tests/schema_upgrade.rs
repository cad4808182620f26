//! A store written by the previous build (schema 4) converts itself when this build opens
//! it. The store in `tests/fixtures/store-v4/` was written by the real binary of commit
//! 5473747 (see its README.txt), not by test code: three `file://` sources (RSS with guids,
//! Atom sharing four article links with it, JSON Feed), a named feed with a pattern, and
//! retention that pruned six of one source's entries (tombstones, pruned links, credits
//! of a pruned source). `served/` holds what that build served from it.
//!
//! The new binary must convert it once (`verify` opens it first), report every entry and
//! no problem, serve byte for byte what the old build served, store nothing again as new
//! (pruned entries stay pruned, guid changes are still found by link), and not convert a
//! second time.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use support::{KillOnDrop, free_port};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/store-v4");

/// Entries, sources and tombstones in the fixture's store (the old build's `verify`).
const VERIFIED: &str = "28 entries, 3 sources, 6 tombstones: consistent";

/// The documents the old build served, by path: the files in `served/` are named by their
/// path with `/` as `_`.
const SERVED: &[&str] = &[
    "/feed.atom",
    "/feed.json",
    "/feed.rss",
    "/sources/news.atom",
    "/sources/digest.rss",
    "/sources/lake.json",
    "/tags/water.atom",
    "/feeds/notes.atom",
];

/// What the log says while a store is converted to schema 5.
const CONVERTING: [&str; 2] = ["entries packed (schema 5)", "store schema upgraded"];

fn tributary() -> Command {
    support::tributary_command("info")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for item in std::fs::read_dir(from).expect("read fixture folder") {
        let item = item.expect("fixture folder entry");
        let target = to.join(item.file_name());
        if item.file_type().expect("file type").is_dir() {
            copy_dir(&item.path(), &target);
        } else {
            std::fs::copy(item.path(), &target).expect("copy fixture file");
        }
    }
}

/// The fixture copied into `dir`, its config written with `dir`'s paths and `port`.
fn install(dir: &Path, port: u16) -> PathBuf {
    copy_dir(Path::new(FIXTURE), dir);
    // sled's (empty) blobs folder: git keeps no empty folder.
    std::fs::create_dir_all(dir.join("store/blobs")).expect("blobs folder");
    let template = std::fs::read_to_string(dir.join("feeds.toml.in")).expect("config template");
    let folder = dir.to_str().expect("a UTF-8 temporary path");
    let config = template
        .replace("@DIR@", folder)
        .replace("@PORT@", &port.to_string());
    let path = dir.join("feeds.toml");
    std::fs::write(&path, config).expect("write config");
    path
}

fn run(args: &[&str], config: &Path) -> Output {
    tributary()
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .expect("tributary runs")
}

/// Keys per prefix, read straight from sled (no process holds the store), and the schema.
struct Layout {
    schema: String,
    converting: bool,
    counts: BTreeMap<&'static str, usize>,
    /// `l/` keys whose entry has no tombstone (`x/`) of the same source.
    links_without_tombstone: Vec<String>,
}

fn layout(store: &Path) -> Layout {
    let db = sled::open(store).expect("sled opens the store");
    let schema = db
        .get(b"meta/schema")
        .expect("read meta/schema")
        .map(|v| text(&v))
        .unwrap_or_default();
    let converting = db
        .contains_key(b"meta/converting")
        .expect("read meta/converting");
    let mut counts = BTreeMap::new();
    // Schema 4's per-entry keys (`e/`, `s/`, `a/`), schema 5's (`d/`, `m/`, `c/`) and what
    // both have.
    for prefix in [
        "e/", "s/", "a/", "d/", "m/", "c/", "t/", "st/", "x/", "l/", "f/", "fm/",
    ] {
        counts.insert(prefix, db.scan_prefix(prefix.as_bytes()).count());
    }
    let mut links_without_tombstone = Vec::new();
    for item in db.scan_prefix(b"l/") {
        let (k, v) = item.expect("read an l/ key");
        let rest = &k[2..];
        let source = rest.split(|b| *b == 0).next().expect("a source name");
        let tomb = [b"x/".as_slice(), source, b"\0", &v].concat();
        if !db.contains_key(&tomb).expect("read an x/ key") {
            links_without_tombstone.push(text(&k));
        }
    }
    Layout {
        schema,
        converting,
        counts,
        links_without_tombstone,
    }
}

/// Starts the daemon, checks its log says no conversion before it serves, and that it
/// serves what the old build served: same bytes, ETag and Last-Modified. Stops it with
/// SIGTERM.
async fn serves_as_the_old_build_did(config: &Path, port: u16) {
    let mut child = KillOnDrop::spawn(tributary().args(["run", "--config"]).arg(config));
    let lines = child.stderr_lines();
    // The store is opened (and would be converted) before the server starts.
    let mut before = Vec::new();
    loop {
        let line = lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no \"tributary started\" within 60 s: {before:#?}"));
        if line.contains("tributary started") {
            break;
        }
        before.push(line);
    }
    for line in &before {
        assert!(
            !CONVERTING.iter().any(|c| line.contains(c)),
            "a converted store was converted again: {line}"
        );
    }

    let headers = std::fs::read_to_string(Path::new(FIXTURE).join("served/headers.tsv"))
        .expect("served/headers.tsv");
    let expected_headers: BTreeMap<&str, (&str, &str)> = headers
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut f = l.split('\t');
            let path = f.next().expect("path");
            let etag = f.next().expect("etag");
            let last_modified = f.next().expect("last-modified");
            (path, (etag, last_modified))
        })
        .collect();
    // No Accept-Encoding, as the old build's documents were fetched (curl): identity bytes
    // and their ETag.
    let client = reqwest::Client::builder()
        .no_gzip()
        .no_brotli()
        .no_deflate()
        .build()
        .expect("client");
    for path in SERVED {
        let response = client
            .get(format!("http://127.0.0.1:{port}{path}"))
            .send()
            .await
            .expect("request succeeds");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string()
        };
        let (etag, last_modified) = (header("etag"), header("last-modified"));
        let body = response.bytes().await.expect("body");
        let file = path.trim_start_matches('/').replace('/', "_");
        let expected =
            std::fs::read(Path::new(FIXTURE).join("served").join(&file)).expect("saved document");
        // Nothing is normalised: the generator's version is the crate's (unchanged), and
        // every date is the entries' own, none of them "now".
        if body.as_ref() != expected.as_slice() {
            let (got, want) = (body.as_ref(), expected.as_slice());
            let at = got
                .iter()
                .zip(want)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(want.len()));
            let around = |b: &[u8]| text(&b[at.saturating_sub(200)..(at + 200).min(b.len())]);
            panic!(
                "{path} differs from the old build's at byte {at} ({} vs {} bytes):\n\
                 new: …{}…\nold: …{}…",
                got.len(),
                want.len(),
                around(got),
                around(want),
            );
        }
        let (want_etag, want_last_modified) = expected_headers[path];
        assert_eq!(etag, want_etag, "{path}: ETag");
        assert_eq!(last_modified, want_last_modified, "{path}: Last-Modified");
    }

    support::signal(child.id(), "-TERM");
    let status = support::exits_within(&mut child, Duration::from_secs(10));
    assert_eq!(status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_4_store_from_the_previous_build_converts_itself() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let config = install(dir.path(), port);

    // The store as the old build left it, read from a copy of its own (sled writes at open).
    let old = {
        let copy = tempfile::tempdir().expect("tempdir");
        copy_dir(&Path::new(FIXTURE).join("store"), copy.path());
        layout(copy.path())
    };
    assert_eq!(old.schema, "4", "the fixture is a schema-4 store");
    assert_eq!(old.counts["e/"], 28, "{:?}", old.counts);
    assert_eq!(old.counts["d/"], 0, "{:?}", old.counts);

    // First open: `verify` converts it, finds every entry and no problem.
    let out = run(&["verify"], &config);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "verify failed:\n{stdout}\n{stderr}");
    // A store from before search has no index yet: said, and not a problem.
    assert_eq!(
        stdout.trim().lines().collect::<Vec<_>>(),
        [
            "search index: not built yet (the daemon builds it; `tributary reindex` builds it now)",
            VERIFIED
        ],
        "{stderr}"
    );
    let packed = stderr
        .lines()
        .find(|l| l.contains("entries packed (schema 5)"))
        .unwrap_or_else(|| panic!("the conversion is logged:\n{stderr}"));
    assert!(packed.contains("moved=28"), "{packed}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("store schema upgraded") && l.contains("from=4")),
        "{stderr}"
    );
    assert!(!stderr.contains("WARN"), "{stderr}");

    // The new layout, with nothing of the old one's per-entry keys left.
    let new = layout(&dir.path().join("store"));
    assert_eq!(new.schema, "5");
    assert!(!new.converting, "the conversion finished");
    let c = &new.counts;
    assert_eq!(
        (c["e/"], c["s/"], c["a/"]),
        (0, 0, 0),
        "old keys left: {c:?}"
    );
    assert_eq!((c["d/"], c["t/"]), (28, 28), "two keys per entry: {c:?}");
    assert_eq!(c["m/"], 3, "a manifest per source: {c:?}");
    assert!(c["c/"] > 0, "credit buckets: {c:?}");
    for prefix in ["st/", "x/", "f/", "fm/"] {
        assert_eq!(
            c[prefix], old.counts[prefix],
            "{prefix} kept as it was: {c:?}"
        );
    }
    assert!(c["l/"] <= old.counts["l/"], "{c:?}");
    assert!(
        new.links_without_tombstone.is_empty(),
        "l/ keeps only pruned entries' links: {:?}",
        new.links_without_tombstone
    );

    // Second open: the daemon serves what the old build served, converting nothing.
    serves_as_the_old_build_did(&config, port).await;

    // Poll again, with every document changed so it is read again (an unchanged document
    // is recognised by its digest and not read at all), and two guids changed in place
    // (one of a kept entry, one of a pruned one): the entries are found by their links.
    // The old build made of exactly these documents: new 0, unchanged 8, 12 and 8.
    let news = dir.path().join("news.rss.xml");
    let rss = std::fs::read_to_string(&news).expect("news feed");
    let rss = rss
        .replace(
            "urn:uuid:0000a010-5e1f-4c0a-9d3e-000000000010",
            "urn:uuid:changed-10",
        )
        .replace(
            "urn:uuid:0000a003-5e1f-4c0a-9d3e-000000000003",
            "urn:uuid:changed-3",
        );
    assert!(rss.contains("changed-10") && rss.contains("changed-3"));
    std::fs::write(&news, rss + "<!-- read again -->\n").expect("write feed");
    for name in ["digest.atom.xml", "lake.json"] {
        let path = dir.path().join(name);
        let mut doc = std::fs::read(&path).expect("feed");
        doc.extend_from_slice(b"\n");
        std::fs::write(&path, doc).expect("write feed");
    }
    let out = run(&["once"], &config);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "once failed:\n{stdout}\n{stderr}");
    for (source, unchanged) in [("news", 8), ("digest", 12), ("lake", 8)] {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(source))
            .unwrap_or_else(|| panic!("no line for {source}:\n{stdout}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        let count = |label: &str| {
            words
                .iter()
                .position(|w| *w == label)
                .and_then(|i| words.get(i + 1))
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or_else(|| panic!("no {label} count in {line:?}"))
        };
        assert_eq!(words.get(1), Some(&"ok"), "{line}");
        assert_eq!(
            (count("new"), count("updated"), count("unchanged")),
            (0, 0, unchanged),
            "{source} was read as the old build read it: {line}"
        );
    }
    for line in stderr.lines() {
        assert!(
            !CONVERTING.iter().any(|c| line.contains(c)),
            "converted again: {line}"
        );
    }

    // Still every entry and tombstone, consistent; the documents served are unchanged.
    let out = run(&["verify"], &config);
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The daemon built the search index from the converted store.
    assert_eq!(
        text(&out.stdout).trim().lines().collect::<Vec<_>>(),
        ["search index: 28 documents for 28 entries", VERIFIED]
    );
    serves_as_the_old_build_did(&config, port).await;
    let last = layout(&dir.path().join("store"));
    assert_eq!(last.schema, "5");
    assert_eq!((last.counts["d/"], last.counts["x/"]), (28, 6));
}
