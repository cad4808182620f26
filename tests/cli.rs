//! The real `tributary` binary as a user runs it: check, once, run, signals.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::{Origin, Route, get};

/// A daemon child process that is killed if the test fails before it stops it.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn tributary() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tributary"));
    c.env_remove("TRIBUTARY_CONFIG").env("RUST_LOG", "info");
    c
}

async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .expect("joined")
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("feeds.toml");
    std::fs::write(&path, body).expect("write config");
    path
}

/// A port on 127.0.0.1 that was just free (nothing listens there).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test]
async fn check_reports_problems_with_positions_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        "[server]\nlisten = \"127.0.0.1:8080\"\n\n[[source]]\nname = \"a\"\nurl = \"https://example.org/feed\"\ninterval = \"often\"\nfrequency = 3\n",
    );
    let mut cmd = tributary();
    cmd.arg("check").arg("--config").arg(&path);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:8:1: unknown field `frequency`",
            path.display()
        )),
        "{err}"
    );

    // Fixed: valid, and found through TRIBUTARY_CONFIG.
    write_config(
        dir.path(),
        "[[source]]\nname = \"a\"\nurl = \"https://example.org/feed\"\ninterval = \"2h\"\n",
    );
    let mut cmd = tributary();
    cmd.arg("check").env("TRIBUTARY_CONFIG", &path);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ok (1 sources"));
}

#[tokio::test]
async fn shipped_config_is_valid() {
    let mut cmd = tributary();
    cmd.arg("check")
        .arg("--config")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds.toml"));
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_prints_a_line_per_source_and_exits_0_despite_failures() {
    let origin = Origin::start().await;
    origin.set(
        "/good.xml",
        Route::fixture("small_atom.xml").with_etag("\"e1\""),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(
        dir.path(),
        &format!(
            "[[source]]\nname = \"good\"\nurl = \"{}\"\n\n[[source]]\nname = \"gone\"\nurl = \"{}\"\n",
            origin.url("/good.xml"),
            origin.url("/gone.xml")
        ),
    );
    let mut cmd = tributary();
    cmd.arg("once").arg("--config").arg(&path);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    // Lines come in the order the polls finish.
    let line = |name: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(name))
            .copied()
            .unwrap_or_default()
    };
    assert!(line("good").contains("ok      200  new   20"), "{stdout}");
    assert!(
        line("gone").contains("FAILED  HTTP 404 Not Found"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 3, "{stdout}");
    assert_eq!(lines[2], "2 sources polled, 1 failed");
    // The store went where the config said: next to the config file.
    assert!(dir.path().join("store").is_dir());

    // Again: a conditional GET, nothing new.
    let mut cmd = tributary();
    cmd.arg("once").arg("--config").arg(&path);
    let out = run(cmd).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("good ") && l.contains("304  not modified")),
        "{stdout}"
    );

    // An unusable store is an error.
    std::fs::write(dir.path().join("file-not-dir"), "x").expect("write");
    let bad = write_config(
        dir.path(),
        "[store]\npath = \"file-not-dir\"\n\n[[source]]\nname = \"a\"\nurl = \"https://example.org/feed\"\n",
    );
    let mut cmd = tributary();
    cmd.arg("once").arg("--config").arg(&bad);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot open the store"),
        "{}",
        text(&out.stderr)
    );
}

/// `run` serves, refuses a second process on its store, and exits 0 on SIGTERM.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_and_stops_cleanly_on_sigterm() {
    let origin = Origin::start().await;
    origin.set("/f.xml", Route::fixture("large_rss.xml"));
    let dir = tempfile::tempdir().expect("tempdir");
    // A fixed port, as in real use, so `status` can find the daemon: one that was just free.
    let port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[source]]\nname = \"big\"\nurl = \"{}\"\ninterval = \"1s\"\n",
            origin.url("/f.xml")
        ),
    );
    let mut child = KillOnDrop(Some(
        tributary()
            .arg("run")
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawns"),
    ));
    let child_ref = child.0.as_mut().expect("child");
    // Read the log as it comes: the start line gives the address, poll lines follow.
    let stderr = child_ref.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_line = |pred: &dyn Fn(&str) -> bool| -> String {
        loop {
            let line = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the daemon logs the expected line");
            assert!(
                !line.contains('\u{1b}'),
                "no colour codes when not on a terminal: {line}"
            );
            if pred(&line) {
                return line;
            }
        }
    };
    let started = wait_line(&|l| l.contains("tributary started"));
    let addr = started
        .split_whitespace()
        .find_map(|w| w.strip_prefix("addr="))
        .expect("address logged")
        .to_string();
    let polled = wait_line(&|l| l.contains("polled"));
    assert!(
        polled.contains("source=big") && polled.contains("new=25"),
        "{polled}"
    );

    let (status, _, body) = get(&format!("http://{addr}/feed.rss")).await;
    assert_eq!(status, 200);
    assert_eq!(
        rss::Channel::read_from(body.as_bytes())
            .expect("rss")
            .items
            .len(),
        25
    );

    // A second process on the same store gets a clear message, not a sled lock error.
    let mut cmd = tributary();
    cmd.arg("once").arg("--config").arg(&path);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("is in use by another process"),
        "{}",
        text(&out.stderr)
    );

    // `status` asks the running daemon.
    let mut cmd = tributary();
    cmd.arg("status").arg("--config").arg(&path);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("big [ok] 25 entries"), "{stdout}");
    assert!(stdout.contains("next poll:      20"), "{stdout}");
    let mut cmd = tributary();
    cmd.arg("status").arg("--json").arg("--config").arg(&path);
    let out = run(cmd).await;
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(json["sources"][0]["entries"], 25);

    let pid = child_ref.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let (done_tx, done_rx) = mpsc::channel();
    let mut waited = child.0.take().expect("child");
    std::thread::spawn(move || {
        let _ = done_tx.send(waited.wait());
    });
    let status = done_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("exits within 10 s of SIGTERM")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    wait_line(&|l| l.contains("store flushed"));

    // With the daemon stopped, `status` reads the store.
    let mut cmd = tributary();
    cmd.arg("status").arg("--config").arg(&path);
    let out = run(cmd).await;
    assert!(
        text(&out.stdout).starts_with("big [ok] 25 entries"),
        "{}",
        text(&out.stdout)
    );

    // Nothing lost: a fresh `once` finds everything already stored.
    let mut cmd = tributary();
    cmd.arg("once").arg("--config").arg(&path);
    let out = run(cmd).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("new    0  updated    0  unchanged   25"),
        "{stdout}"
    );
}

/// OPML round trip: export, import into an empty config, the same sources.
#[tokio::test]
async fn opml_round_trips() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = write_config(
        dir.path(),
        "# mine\n[[source]]\nname = \"rust\"\nurl = \"https://blog.rust-lang.org/feed.xml\"\ntitle = \"Rust Blog\"\ntags = [\"rust\", \"lang\"]\n\n[[source]]\nname = \"lwn\"\nurl = \"https://lwn.net/headlines/rss\"\ntitle = \"LWN & friends\"\n",
    );
    let mut cmd = tributary();
    cmd.arg("export-opml").arg("--config").arg(&original);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let opml_path = dir.path().join("subs.opml");
    std::fs::write(&opml_path, &out.stdout).expect("write opml");
    assert!(text(&out.stdout).contains("xmlUrl=\"https://lwn.net/headlines/rss\""));

    let other = tempfile::tempdir().expect("tempdir");
    let fresh = other.path().join("feeds.toml");
    let mut cmd = tributary();
    cmd.arg("import-opml")
        .arg(&opml_path)
        .arg("--config")
        .arg(&fresh);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("2 added, 0 skipped"),
        "{}",
        text(&out.stdout)
    );

    let a = tributary::config::load(&original).expect("original");
    let b = tributary::config::load(&fresh).expect("imported");
    let key = |c: &tributary::config::Config| {
        let mut v: Vec<_> = c
            .sources
            .iter()
            .map(|s| {
                let mut tags = s.tags.clone();
                tags.sort();
                (s.url.to_string(), s.title.clone(), tags)
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(key(&a), key(&b));

    // Importing again adds nothing; comments survive in the original.
    let mut cmd = tributary();
    cmd.arg("import-opml")
        .arg(&opml_path)
        .arg("--config")
        .arg(&original);
    let out = run(cmd).await;
    assert!(
        text(&out.stdout).contains("0 added, 2 skipped"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        std::fs::read_to_string(&original)
            .expect("read")
            .starts_with("# mine\n")
    );
}

/// A failing command prints its error with the chain of causes, one `caused by:` line each,
/// and no cause its message already holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_print_their_causes_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens on a port that was just free.
    let port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[source]]\nname = \"a\"\nurl = \"https://example.org/feed\"\n"
        ),
    );
    // Another process holds the store, but no daemon answers at `listen`: `status` says
    // why /healthz did not answer, down to the refused connection.
    let store = tributary::store::Store::open(&dir.path().join("store"), 1 << 20).expect("store");
    let mut cmd = tributary();
    cmd.arg("status").arg("--config").arg(&path);
    let out = run(cmd).await;
    drop(store);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert!(
        lines[0].starts_with(&format!(
            "tributary: the store is in use by a running tributary, but its /healthz at http://127.0.0.1:{port}/healthz did not answer: "
        )),
        "{err}"
    );
    let causes: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.strip_prefix("  caused by: ").expect("one cause a line"))
        .collect();
    assert!(!causes.is_empty(), "{err}");
    assert!(
        causes
            .iter()
            .any(|c| c.to_lowercase().contains("connection refused")),
        "{err}"
    );
    for (i, cause) in causes.iter().enumerate() {
        let before = lines[..=i].join("\n");
        assert!(!before.contains(cause), "repeated: {cause}\n{err}");
    }

    // A cause the message already holds is not repeated.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let path = write_config(
        dir.path(),
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
    );
    let mut cmd = tributary();
    cmd.arg("run").arg("--config").arg(&path);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with(&format!("tributary: cannot listen on 127.0.0.1:{port}: ")),
        "{err}"
    );
    assert!(!err.contains("caused by"), "{err}");
}

/// `check` warns (and exits 0) when base_url and listen disagree; the shipped config is
/// quiet and leaves base_url to follow listen.
#[tokio::test]
async fn check_warns_when_base_url_and_listen_disagree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = "[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n";
    let check = |server: &str| {
        let path = write_config(dir.path(), &format!("[server]\n{server}\n{source}"));
        let mut cmd = tributary();
        cmd.arg("check").arg("--config").arg(path);
        cmd
    };
    let out = run(check(
        "listen = \"0.0.0.0:8080\"\nbase_url = \"http://127.0.0.1:8080\"",
    ))
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr
            .starts_with("warning: base_url \"http://127.0.0.1:8080\" points at this machine only"),
        "{stderr}"
    );
    assert!(text(&out.stdout).contains(": ok ("));

    let out = run(check("listen = \"[::]:8080\"")).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("warning: listen = \"[::]:8080\" accepts connections on every interface, but base_url is not set"),
        "{}",
        text(&out.stderr)
    );

    // The trap of the old shipped config: listen changed, base_url not.
    let out = run(check(
        "listen = \"127.0.0.1:9090\"\nbase_url = \"http://127.0.0.1:8080\"",
    ))
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("names this machine on port 8080"),
        "{}",
        text(&out.stderr)
    );

    let out = run(check(
        "listen = \"0.0.0.0:8080\"\nbase_url = \"https://news.example.org\"",
    ))
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");

    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("feeds.toml");
    let mut cmd = tributary();
    cmd.arg("check").arg("--config").arg(&shipped);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stderr),
        "",
        "the shipped config warns about nothing"
    );
    let shipped = std::fs::read_to_string(&shipped).expect("read shipped");
    assert!(
        shipped.lines().any(|l| l.starts_with("# base_url = "))
            && !shipped.lines().any(|l| l.starts_with("base_url")),
        "base_url is left commented out"
    );
}

/// `import-opml` names sources by transliterated slugs of their titles.
#[tokio::test]
async fn import_opml_names_are_readable_slugs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opml = dir.path().join("subs.opml");
    std::fs::write(
        &opml,
        r#"<opml version="2.0"><body><outline text="Café Résumé — Blog!" xmlUrl="https://cafe.example/feed"/><outline text="Ελληνικά" xmlUrl="https://gr.example/feed"/></body></opml>"#,
    )
    .expect("write opml");
    let config = dir.path().join("feeds.toml");
    let mut cmd = tributary();
    cmd.arg("import-opml")
        .arg(&opml)
        .arg("--config")
        .arg(&config);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let names: Vec<String> = tributary::config::load(&config)
        .expect("loads")
        .sources
        .into_iter()
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, ["cafe-resume-blog", "ellenika"]);
}

/// `export-opml` titles each outline by its feed's own title, from the store, and from the
/// running daemon while it holds the store: never by the slug when a title is known.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_opml_uses_feed_titles_with_and_without_a_daemon() {
    let origin = Origin::start().await;
    origin.set(
        "/t.xml",
        Route::feed(
            support::Rss::new("The Feed Own Title", "http://t.example/")
                .item(support::Item::new("http://t.example/1").title("one"))
                .xml(),
            "application/rss+xml",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let path = write_config(
        dir.path(),
        &format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\n\n[[source]]\nname = \"t\"\nurl = \"{}\"\n\n[[source]]\nname = \"u\"\nurl = \"https://u.example/feed\"\ntitle = \"Configured U\"\n",
            origin.url("/t.xml")
        ),
    );
    let export = || {
        let mut cmd = tributary();
        cmd.arg("export-opml").arg("--config").arg(&path);
        cmd
    };
    let mut daemon = support::KillOnDrop::spawn(
        support::tributary_command("info")
            .arg("--config")
            .arg(&path)
            .arg("run"),
    );
    let log = daemon.stderr_lines();
    support::wait_for_line(&log, &["source=t", "polled"], Duration::from_secs(20));
    let out = run(export()).await;
    let opml = text(&out.stdout);
    assert!(opml.contains(r#"title="The Feed Own Title""#), "{opml}");
    assert!(opml.contains(r#"title="Configured U""#), "{opml}");
    assert!(!opml.contains(r#"title="t""#), "{opml}");
    drop(daemon);

    // With no daemon, from the store.
    let out = run(export()).await;
    let opml = text(&out.stdout);
    assert!(opml.contains(r#"title="The Feed Own Title""#), "{opml}");
}

/// A config edited by `import-opml` (and `add`, which writes the same way) keeps its mode,
/// so source credentials stay private, and a config reached through a symbolic link is
/// edited where the link points, the link kept.
#[tokio::test]
async fn an_edited_config_keeps_its_mode_and_its_link() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let real_dir = dir.path().join("real");
    std::fs::create_dir(&real_dir).expect("mkdir");
    let real = real_dir.join("feeds.toml");
    std::fs::write(
        &real,
        "# private\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\nheaders = { Authorization = \"Bearer SECRET\" }\n",
    )
    .expect("write");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let link = dir.path().join("feeds.toml");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let opml = dir.path().join("subs.opml");
    std::fs::write(
        &opml,
        r#"<opml version="2.0"><body><outline text="B" xmlUrl="https://b.example/feed"/></body></opml>"#,
    )
    .expect("write opml");
    let mut cmd = tributary();
    cmd.arg("import-opml").arg(&opml).arg("--config").arg(&link);
    let out = run(cmd).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        std::fs::symlink_metadata(&link)
            .expect("link")
            .file_type()
            .is_symlink(),
        "the link is kept"
    );
    let edited = std::fs::read_to_string(&real).expect("read");
    assert!(edited.contains("https://b.example/feed"), "{edited}");
    assert!(edited.starts_with("# private\n"), "{edited}");
    let mode = std::fs::metadata(&real).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the config stays private");
}

/// `check` refuses a `base_url` links cannot be appended to and `[publish] hubs` that leak
/// credentials or repeat, and warns about a hub the address guard would refuse.
#[tokio::test]
async fn check_judges_base_url_and_publish_hubs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = "[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n";
    let check = |text: &str| {
        let path = write_config(dir.path(), &format!("{text}\n{source}"));
        let mut cmd = tributary();
        cmd.arg("check").arg("--config").arg(path);
        cmd
    };
    let out = run(check("[server]\nbase_url = \"http://news.test/a?x=1\"")).await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("feeds.toml:2:12:") && stderr.contains("query or fragment"),
        "{stderr}"
    );
    let out = run(check(
        "[server]\nbase_url = \"http://news.test\"\n[publish]\nhubs = [\"https://u:p@hub.example/\", \"http://news.test/hub\"]",
    ))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("user name or password"), "{stderr}");
    assert!(stderr.contains("own hub"), "{stderr}");
    let out = run(check("[publish]\nhubs = [\"http://127.0.0.1:7000/\"]")).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with("warning: [publish] hubs: \"http://127.0.0.1:7000/\" is at 127.0.0.1")
            && stderr.contains("allow_networks"),
        "{stderr}"
    );
    let out = run(check(
        "[publish]\nhubs = [\"http://127.0.0.1:7000/\"]\n[fetch]\nallow_networks = [\"127.0.0.0/8\"]",
    ))
    .await;
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stderr), "");
}

/// `once` over 600 sources, every poll beginning at once with a store read: the binary's
/// blocking pool is bounded (`app::blocking_threads`), so the process keeps
/// a few dozen threads, not one per poll (tokio's default allows 512).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_over_many_sources_keeps_its_threads_bounded() {
    const SOURCES: usize = 600;
    let origin = Origin::start().await;
    let mut config = String::from("[fetch]\nconcurrency = 16\nper_host = 16\n");
    for i in 0..SOURCES {
        let path = format!("/f{i}.xml");
        origin.set(
            &path,
            Route::feed(
                support::small_rss(&format!("s{i}"), 1),
                "application/rss+xml",
            )
            .with_etag(&format!("\"e{i}\"")),
        );
        config.push_str(&format!(
            "[[source]]\nname = \"s{i}\"\nurl = \"{}\"\n",
            origin.url(&path)
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), &config);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // The blocking pool, the runtime's workers, and sled's own threads (it keeps a
    // handful waiting, and its flusher): generous, and far below one per poll.
    let bound = tributary::app::blocking_threads() + cores + 40;
    for cycle in ["200s", "304s"] {
        // Into a file: 600 lines could fill a pipe nobody reads until the end.
        let printed = dir.path().join(format!("once-{cycle}.txt"));
        let mut child = tributary()
            .arg("once")
            .arg("--config")
            .arg(&path)
            .stdout(std::fs::File::create(&printed).expect("creates"))
            .stderr(Stdio::null())
            .spawn()
            .expect("starts");
        let tasks = format!("/proc/{}/task", child.id());
        let most = tokio::task::spawn_blocking(move || {
            let mut most = 0;
            while child.try_wait().expect("waits").is_none() {
                if let Ok(threads) = std::fs::read_dir(&tasks) {
                    most = most.max(threads.count());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            (most, std::fs::read_to_string(&printed).expect("reads"))
        });
        let (most, out) = most.await.expect("joined");
        assert!(
            out.contains(&format!("{SOURCES} sources polled, 0 failed")),
            "{cycle}: {}",
            out.lines().last().unwrap_or_default()
        );
        assert!(most > 0, "{cycle}: the process was never seen");
        assert!(
            most <= bound,
            "{cycle}: {most} threads at once (at most {bound} expected)"
        );
    }
}
