//! Page sources on hostile pages, through the real binary (`tributary preview NAME --json`)
//! against a real origin: huge pages, deep nesting, selectors that match everything. Each
//! must end, in bounded time and memory, with a bounded answer or a clear error. The time
//! limits are hang guards (a debug build takes a few seconds), not benchmarks.

mod support;

use std::time::{Duration, Instant};

use support::{Origin, Route, config_prelude, source_toml, tributary_command};

/// A run longer than this is a hang.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// What `preview` printed and how it ended.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("preview --json prints JSON ({e}): {self:?}"))
    }

    fn entries(&self) -> usize {
        self.json()["entries"].as_array().map_or(0, Vec::len)
    }

    fn warnings(&self) -> Vec<String> {
        self.json()["warnings"]
            .as_array()
            .map(|w| {
                w.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cut = |s: &str| s.chars().take(2000).collect::<String>();
        write!(
            f,
            "ok {} in {:?}\nstdout: {}\nstderr: {}",
            self.ok,
            self.took,
            cut(&self.stdout),
            cut(&self.stderr)
        )
    }
}

/// Serves `body` at `/page` and runs `tributary preview page --json` on a source of `kind`
/// with `select` (the `[source.select]` lines), under `fetch` (`[fetch]` lines).
async fn preview(body: Vec<u8>, content_type: &str, fetch: &str, kind: &str, select: &str) -> Run {
    let origin = Origin::start().await;
    origin.set("/page", Route::feed(body, content_type));
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude(fetch)
        + &source_toml(
            "page",
            &origin.url("/page"),
            "1h",
            &format!("kind = \"{kind}\"\n[source.select]\n{select}\n"),
        );
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    let child = tributary_command("warn")
        .arg("--config")
        .arg(&path)
        .args(["preview", "page", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let pid = child.id();
    let started = Instant::now();
    let waited = tokio::time::timeout(
        HANG_GUARD,
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let out = match waited {
        Ok(done) => done.expect("join").expect("output"),
        Err(_) => {
            support::signal(pid, "-KILL");
            panic!("preview still running after {HANG_GUARD:?}");
        }
    };
    // The store is not touched: preview writes nothing next to the config.
    assert!(!dir.path().join("store").exists(), "preview made a store");
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// 200,000 entries of a list, padded to about 20 MB.
fn huge_list() -> Vec<u8> {
    let mut page = String::from(
        "<!DOCTYPE html><html><head><meta charset=utf-8><title>Everything</title></head><body>\n",
    );
    for n in 0..200_000 {
        page.push_str(&format!(
            "<div class=item><a href=/x/{n}>{n}</a><span hidden>{:>60}</span></div>\n",
            ""
        ));
    }
    page.push_str("</body></html>\n");
    page.into_bytes()
}

/// A list of 200,000 items (20 MB, within `max_body_mb`): at most `max_entries` entries,
/// and a warning that says where it was cut.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_list_gives_at_most_max_entries() {
    let body = huge_list();
    assert!(body.len() > 19 * 1024 * 1024, "{}", body.len());
    let run = preview(
        body,
        "text/html; charset=utf-8",
        "max_body_mb = 32\nmax_entries = 100",
        "html",
        "items = \"div.item\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(run.entries(), 100, "{run:?}");
    let doc = run.json();
    assert_eq!(doc["entries"][0]["title"], "0");
    assert!(
        doc["entries"][0]["link"]
            .as_str()
            .is_some_and(|l| l.ends_with("/x/0")),
        "{run:?}"
    );
    let warnings = run.warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w == "the page has 200000 items: only the first 100 were read"),
        "{warnings:?}"
    );
    assert!(
        run.stderr.contains("only the first 100 were read"),
        "{run:?}"
    );
}

/// `items = "*"` on the same page matches every element (600,005: the html, head, body and
/// each div, link and span). The first item is `<html>`, the whole page: its default
/// fields (heading, `<time>`, paragraph, author: none there) each walk all of it, so the
/// visit budget runs out inside it. The run ends in bounded time with both cuts named and
/// no entry made of a half-read item.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_star_on_a_huge_page_is_bounded() {
    let run = preview(
        huge_list(),
        "text/html; charset=utf-8",
        "max_body_mb = 32\nmax_entries = 100",
        "html",
        "items = \"*\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    let n = run.entries();
    assert!(n <= 100, "{n}: {run:?}");
    let warnings = run.warnings();
    assert_eq!(
        warnings,
        [
            format!(
                "the page is too large to read whole: only its first {n} of 600005 items were read"
            ),
            "the page has 600005 items: only the first 100 were read".to_string(),
        ],
        "{run:?}"
    );
}

/// 100,000 nested `<div>`s with `items = "div"`: the nesting is bounded before parsing
/// (`MAX_HTML_DEPTH`), the field walks by their visit budget; the run ends with a bounded
/// count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deeply_nested_divs_end_with_a_bounded_count() {
    let depth = 100_000;
    let mut page = String::from("<!DOCTYPE html><html><head><title>Deep</title></head><body>");
    for n in 0..depth {
        page.push_str(&format!("<div><a href=/d/{n}>d{n}</a>"));
    }
    page.push_str(&"</div>".repeat(depth));
    page.push_str("</body></html>");
    let run = preview(
        page.into_bytes(),
        "text/html; charset=utf-8",
        "max_entries = 5000",
        "html",
        "items = \"div\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    let n = run.entries();
    // Elements deeper than the bound are dropped (their text kept) before parsing: the
    // divs left are the outer ones, fewer than the bound.
    assert!(
        n > 100 && n <= tributary::feed::text::MAX_HTML_DEPTH,
        "{n}: {run:?}"
    );
    // Each kept div is an entry by its first link, outermost first.
    let doc = run.json();
    assert_eq!(doc["entries"][0]["title"], "d0", "{run:?}");
    assert_eq!(doc["entries"][1]["title"], "d1", "{run:?}");
    assert!(run.took < HANG_GUARD, "{:?}", run.took);
}

/// A JSON document nested 10,000 deep: serde_json's recursion limit refuses it, a clear
/// "not JSON" error and a failed exit, no stack overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_nested_ten_thousand_deep_is_not_json() {
    let depth = 10_000;
    let doc = format!("{{\"items\":{}{}}}", "[".repeat(depth), "]".repeat(depth));
    let run = preview(
        doc.into_bytes(),
        "application/json",
        "",
        "json",
        "items = \"$.items[*]\"",
    )
    .await;
    assert!(!run.ok, "{run:?}");
    assert!(run.stdout.is_empty(), "{run:?}");
    assert!(
        run.stderr
            .contains("page: not JSON: recursion limit exceeded"),
        "{run:?}"
    );
}

/// `$..*` on a large document (50,000 objects, each with a nested object and an array)
/// selects every value at every depth (150,001 objects): still at most `max_entries`
/// entries, the cut named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_descendant_wildcard_on_a_big_document_is_bounded() {
    let posts: Vec<serde_json::Value> = (0..50_000)
        .map(|n| {
            serde_json::json!({
                "title": format!("post {n}"),
                "url": format!("https://example.com/p/{n}"),
                "author": {"name": format!("author {n}")},
                "tags": ["a", "b", {"name": "c"}],
            })
        })
        .collect();
    let doc = serde_json::json!({"data": {"posts": posts}});
    let body = serde_json::to_vec(&doc).expect("serialise");
    let run = preview(
        body,
        "application/json",
        "max_entries = 100",
        "json",
        "items = \"$..*\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    // Of the first 100 objects, those with neither title nor link (`data`) are no entry.
    let n = run.entries();
    assert!(n > 90 && n <= 100, "{n}: {run:?}");
    let warnings = run.warnings();
    assert!(
        warnings.iter().any(|w| w.starts_with("the document has ")
            && w.ends_with("items: only the first 100 were read")),
        "{warnings:?}"
    );
}

/// A page whose items are each 700 empty elements, with a `date` selector that matches
/// nothing: every field's search walks the whole item, so the field walks reach their
/// visit budget (`MAX_VISITS`) before the last item. The items read whole are entries (the
/// one the budget ran out in is not: its fields would be partial), the rest are not read,
/// and the warnings count only the items read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_visit_budget_stops_a_page_too_costly_to_read_whole() {
    let items = 1000;
    let filler = "<b></b>".repeat(700);
    let mut page = String::from("<!DOCTYPE html><html><head><title>Costly</title></head><body>");
    for n in 0..items {
        page.push_str(&format!(
            "<div class=i><a href=/i/{n}>item {n}</a>{filler}</div>\n"
        ));
    }
    page.push_str("</body></html>");
    let run = preview(
        page.into_bytes(),
        "text/html; charset=utf-8",
        "",
        "html",
        "items = \"div.i\"\ndate = \"time\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    let n = run.entries();
    assert!(n > 100 && n < items, "{n}: {run:?}");
    // Every entry read whole: the item the budget ran out in is not one.
    let doc = run.json();
    for (k, e) in doc["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .enumerate()
    {
        assert_eq!(e["title"], format!("item {k}"), "{e:#}");
        assert!(
            e["link"]
                .as_str()
                .is_some_and(|l| l.ends_with(&format!("/i/{k}"))),
            "{e:#}"
        );
    }
    let warnings = run.warnings();
    assert!(
        warnings.contains(&format!(
            "the page is too large to read whole: only its first {n} of {items} items were read"
        )),
        "{n}: {warnings:?}"
    );
    assert!(
        warnings.contains(&format!(
            "selector `date` (time) matched nothing in {n} of {n} items"
        )),
        "{warnings:?}"
    );
}

/// `:has()` in field selectors of nested items: each element's `:has()` is worked out once
/// per page (one cache for the whole read), not once per item that looks at it. Without
/// the cache this page took two minutes (every one of 200 nested items re-scanned 40,000
/// leaves for each field).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_in_field_selectors_of_nested_items_is_bounded() {
    let page = format!(
        "<html><body>{}<b>x</b>{}{}</body></html>",
        "<div>".repeat(200),
        "<i></i>".repeat(40_000),
        "</div>".repeat(200)
    );
    let run = preview(
        page.into_bytes(),
        "text/html; charset=utf-8",
        "",
        "html",
        "items = \"div\"\ntitle = \"b, div:has(u)\"\nlink = \"b\"\nsummary = \"b\"\nauthor = \"b\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    assert!(run.entries() > 0, "{run:?}");
}

/// A relative date far in the past ("9999999 days ago": year -25353) is no date: stored, it
/// broke every RSS document holding the entry (RFC 2822 cannot write it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_date_out_of_any_calendar_is_no_date() {
    let run = preview(
        b"<html><body><ul><li><a href=\"/n1\">a</a><time>9999999 days ago</time></li></ul></body></html>".to_vec(),
        "text/html; charset=utf-8",
        "",
        "html",
        "items = \"li\"\ndate = \"time\"",
    )
    .await;
    assert!(run.ok, "{run:?}");
    assert_eq!(
        run.json()["entries"][0]["date"],
        serde_json::Value::Null,
        "{run:?}"
    );
    assert_eq!(
        run.warnings(),
        ["selector `date` (time) matched nothing in 1 of 1 items"]
    );
}

/// A page of bare `<`s (15 MB, within the body cap): html5ever kept each as a token of
/// about 75 bytes (1.2 GB at peak); written as `&lt;` past the first 10,000 they cost what
/// text costs. The preview's own peak memory (its `ru_maxrss`) stays far below that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_of_bare_less_thans_costs_what_text_costs() {
    let mut page = String::from("<html><body><ul><li><a href=\"/x\">x</a></li></ul>");
    page.push_str(&"<".repeat(15 * 1024 * 1024));
    let origin = Origin::start().await;
    origin.set(
        "/page",
        Route::feed(page.into_bytes(), "text/html; charset=utf-8"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = config_prelude("")
        + &source_toml(
            "page",
            &origin.url("/page"),
            "1h",
            "kind = \"html\"\n[source.select]\nitems = \"li\"\n",
        );
    let path = dir.path().join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    let child = tributary_command("warn")
        .arg("--config")
        .arg(&path)
        .args(["preview", "page"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the binary starts");
    let pid = child.id() as libc::pid_t;
    // wait4 gives this child's own peak memory (other tests' children are not counted).
    let waited = tokio::time::timeout(
        HANG_GUARD,
        tokio::task::spawn_blocking(move || {
            let mut status = 0;
            // SAFETY: a zeroed rusage is a valid value for wait4 to fill in.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: pid is our own child, not yet waited for; both pointers are valid.
            let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
            drop(child);
            (got, status, usage.ru_maxrss)
        }),
    )
    .await;
    let (got, status, max_rss_kb) = match waited {
        Ok(done) => done.expect("join"),
        Err(_) => {
            support::signal(pid as u32, "-KILL");
            panic!("preview still running after {HANG_GUARD:?}");
        }
    };
    assert_eq!(got, pid, "wait4 waited for the preview");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "status {status}"
    );
    assert!(
        max_rss_kb < 300 * 1024,
        "preview peaked at {} MB for a 15 MB page",
        max_rss_kb / 1024
    );
}
