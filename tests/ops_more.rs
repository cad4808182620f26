//! More of the operator's side of the real binary: where a feed's credentials go on a
//! redirect, redirects through a proxy, retention under frequent reloads, the hold for
//! `prune --confirm`, and a symlinked `feeds.toml`.

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{KillOnDrop, Origin, Route, free_port, small_rss, wait_for_line};

fn tributary() -> Command {
    support::tributary_command("info,tributary::ingest::poll=debug")
}

fn hup(pid: u32) {
    support::signal(pid, "-HUP");
}

/// `tributary once` with `config`, `env` set on the child only; its output.
fn once(config: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = tributary();
    cmd.args(["once", "--config"]).arg(config);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("once runs")
}

fn write(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("config");
    path
}

fn prelude(dir: &Path, port: u16) -> String {
    format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[store]\npath = \"{}\"\nmin_free_mb = 0\n[fetch]\ntimeout = \"10s\"\n",
        dir.join("store").display()
    )
}

/// A source's custom `headers` (credentials) go only to its configured origin: a redirect
/// to another origin (127.0.0.2, another host) is followed without them, a redirect on the
/// same origin keeps them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_headers_do_not_follow_a_redirect_off_the_origin() {
    let origin = Origin::start().await;
    let other = Origin::start_on("127.0.0.2".parse().expect("ip")).await;
    other.set(
        "/feed",
        Route::feed(small_rss("away", 2), "application/rss+xml"),
    );
    origin.set("/away", Route::redirect(302, &other.url("/feed")));
    origin.set("/moved", Route::redirect(301, &origin.url("/feed")));
    origin.set(
        "/feed",
        Route::feed(small_rss("home", 3), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let mut text = prelude(dir.path(), free_port());
    for (name, path) in [("away", "/away"), ("home", "/moved")] {
        text.push_str(&format!(
            "\n[[source]]\nname = \"{name}\"\nurl = \"{}\"\ninterval = \"1h\"\nheaders = {{ Authorization = \"Bearer X-{name}\", X-Api-Key = \"k-{name}\" }}\n",
            origin.url(path)
        ));
    }
    let config = write(dir.path(), &text);
    let out = once(&config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let first = origin.requests("/away");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].headers["authorization"], "Bearer X-away");
    let off = other.requests("/feed");
    assert_eq!(off.len(), 1, "the redirect was followed");
    assert!(
        off[0].headers.get("authorization").is_none() && off[0].headers.get("x-api-key").is_none(),
        "credentials went to another origin: {:?}",
        off[0].headers
    );
    assert!(off[0].headers.get("user-agent").is_some());

    let same = origin.requests("/feed");
    assert_eq!(same.len(), 1);
    assert_eq!(same[0].headers["authorization"], "Bearer X-home");
    assert_eq!(same[0].headers["x-api-key"], "k-home");
}

/// With a proxy configured, the first hop's peer address is the proxy's: a feed on a public
/// name must still not be led into loopback by a redirect. The "proxy" here is a local
/// origin answering every request with a redirect to 127.0.0.2; the proxy variable is set
/// on the child process only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_through_a_proxy_stays_out_of_loopback() {
    let proxy = Origin::start().await;
    let internal = Origin::start_on("127.0.0.2".parse().expect("ip")).await;
    internal.set(
        "/feed",
        Route::feed(small_rss("internal", 2), "application/rss+xml"),
    );
    proxy.set("/redir", Route::redirect(302, &internal.url("/feed")));
    let by_name = format!("http://localhost:{}/feed", internal.addr.port());
    proxy.set("/redir-name", Route::redirect(302, &by_name));
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut text = prelude(dir.path(), port);
    for (name, url) in [
        ("public", "http://feeds.example.com/redir"),
        ("literal", "http://93.184.216.34/redir-name"),
    ] {
        text.push_str(&format!(
            "\n[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"1h\"\n"
        ));
    }
    let config = write(dir.path(), &text);
    let proxy_url = format!("http://{}", proxy.addr);
    let out = once(
        &config,
        &[
            ("HTTP_PROXY", proxy_url.as_str()),
            ("http_proxy", proxy_url.as_str()),
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Both requests went to the "proxy" ...
    assert_eq!(proxy.requests("/redir").len(), 1, "{stdout}{stderr}");
    assert_eq!(proxy.requests("/redir-name").len(), 1, "{stdout}{stderr}");
    // ... and neither redirect reached loopback.
    assert!(
        internal.requests("/feed").is_empty(),
        "a public feed led into loopback through the proxy: {stdout}{stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert!(all.contains("is a loopback address"), "{all}");
    assert!(all.contains("localhost is a loopback name"), "{all}");
}

/// Reloads that change nothing retention depends on do not stop retention: with
/// `[retention] every = "1s"`, a storm of no-change SIGHUPs (each waited for in the log) still
/// sees retention passes run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_no_change_reloads_does_not_stop_retention() {
    let origin = Origin::start().await;
    origin.set(
        "/feed",
        Route::feed(small_rss("storm", 3), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "{}[retention]\nevery = \"1s\"\n\n[[source]]\nname = \"storm\"\nurl = \"{}\"\ninterval = \"1h\"\n",
        prelude(dir.path(), free_port()),
        origin.url("/feed")
    );
    let config = write(dir.path(), &text);
    let mut child = KillOnDrop::spawn(
        tributary()
            .env("RUST_LOG", "info,tributary::daemon::supervise=debug")
            .args(["run", "--config"])
            .arg(&config),
    );
    let lines = child.stderr_lines();
    // The first pass runs at start.
    wait_for_line(&lines, &["retention pass"], Duration::from_secs(30));
    let mut passes = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while passes < 3 {
        assert!(
            Instant::now() < deadline,
            "retention stopped under reloads ({passes} passes)"
        );
        hup(child.id());
        loop {
            let line = wait_for_line(&lines, &[""], Duration::from_secs(20));
            if line.contains("retention pass") {
                passes += 1;
            }
            if line.contains("config reloaded") {
                assert!(
                    line.contains("no changes") || line.contains("changes="),
                    "{line}"
                );
                break;
            }
        }
    }
}

/// A symlinked `feeds.toml` is watched through its link, in the Kubernetes ConfigMap layout
/// (`feeds.toml -> ..data/feeds.toml`, `..data -> ..<version>`): an edit of the file the link
/// leads to is applied; so is a swap of `..data` to a new version; and then an edit of the
/// new version's file (the link is followed again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_symlinked_config_is_watched_through_its_link() {
    use std::os::unix::fs::symlink;
    let origin = Origin::start().await;
    for name in ["a", "b", "c", "d"] {
        origin.set(
            &format!("/{name}"),
            Route::feed(small_rss(name, 2), "application/rss+xml"),
        );
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let head = prelude(dir.path(), free_port());
    let text = |names: &[&str]| {
        let mut t = head.clone();
        for name in names {
            t.push_str(&format!(
                "\n[[source]]\nname = \"{name}\"\nurl = \"{}\"\ninterval = \"1h\"\n",
                origin.url(&format!("/{name}"))
            ));
        }
        t
    };
    let cm = dir.path().join("cm");
    let v1 = cm.join("..v1");
    std::fs::create_dir_all(&v1).expect("mkdir");
    std::fs::write(v1.join("feeds.toml"), text(&["a"])).expect("v1");
    symlink("..v1", cm.join("..data")).expect("..data");
    symlink("..data/feeds.toml", cm.join("feeds.toml")).expect("feeds.toml");
    let mut child = KillOnDrop::spawn(
        tributary()
            .args(["run", "--config"])
            .arg(cm.join("feeds.toml")),
    );
    let lines = child.stderr_lines();
    let within = Duration::from_secs(60);
    wait_for_line(&lines, &["source=a", "polled"], within);

    // The target edited in place.
    std::fs::write(v1.join("feeds.toml"), text(&["a", "b"])).expect("edit v1");
    wait_for_line(&lines, &["config reloaded", "added b"], within);

    // A new version swapped in as Kubernetes does: a new folder, `..data` renamed over.
    let v2 = cm.join("..v2");
    std::fs::create_dir_all(&v2).expect("mkdir");
    std::fs::write(v2.join("feeds.toml"), text(&["a", "b", "c"])).expect("v2");
    symlink("..v2", cm.join("..data_tmp")).expect("..data_tmp");
    std::fs::rename(cm.join("..data_tmp"), cm.join("..data")).expect("swap");
    std::fs::remove_dir_all(&v1).expect("old version gone");
    wait_for_line(&lines, &["config reloaded", "added c"], within);

    // The new target, edited: the link was followed to it.
    std::fs::write(v2.join("feeds.toml"), text(&["a", "b", "c", "d"])).expect("edit v2");
    wait_for_line(&lines, &["config reloaded", "added d"], within);
}

/// The hold for `prune --confirm` cannot be bypassed by removing a big source for one pass
/// and putting it back with `keep = 1`: the pass in between records it (its entries still
/// kept) as unlimited, so its return is tightened and held; nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_removed_for_one_pass_returns_under_the_hold() {
    let origin = Origin::start().await;
    origin.set(
        "/big",
        Route::feed(small_rss("big", 300), "application/rss+xml"),
    );
    origin.set(
        "/small",
        Route::feed(small_rss("small", 5), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let head = prelude(dir.path(), free_port());
    let source = |name: &str, extra: &str| {
        format!(
            "\n[[source]]\nname = \"{name}\"\nurl = \"{}\"\ninterval = \"1h\"\n{extra}",
            origin.url(&format!("/{name}"))
        )
    };
    let prune = |config: &Path| {
        tributary()
            .args(["prune", "--json", "--config"])
            .arg(config)
            .output()
            .expect("prune runs")
    };
    let config = write(
        dir.path(),
        &format!("{head}{}{}", source("big", ""), source("small", "")),
    );
    let out = once(&config, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = prune(&config);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A pass with "big" gone from the config: its entries are kept (removed_after).
    let config = write(dir.path(), &format!("{head}{}", source("small", "")));
    let out = prune(&config);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Back with keep = 1: 299 of its 300 entries would go; held.
    let config = write(
        dir.path(),
        &format!(
            "{head}{}{}",
            source("big", "keep = 1\n"),
            source("small", "")
        ),
    );
    let out = prune(&config);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "the pass is held: {stdout}");
    assert!(stdout.contains("299"), "{stdout}");
    let status = tributary()
        .args(["status", "--json", "--config"])
        .arg(&config)
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).expect("status json");
    assert_eq!(status["entries"], 305, "nothing deleted: {status}");
}
