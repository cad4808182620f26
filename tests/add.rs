//! `tributary add URL` through the real binary, against local origins: a page that
//! advertises its feed, a page that does not (a common path holds it), a feed's own URL,
//! several feeds (`--pick`), a URL already configured, an unreachable site, a page
//! advertising URLs that must never be fetched, and a page with no feed at all (selectors
//! proposed, the source written as `kind = "html"`, then checked and previewed).

mod support;

use std::path::Path;
use std::process::Output;

use support::{Item, Origin, Route, Rss, config_prelude, tributary_command};

const CONFIG_HEAD: &str = "# my river: keep this comment\n";

/// A config with a comment and `sources` (TOML), in `dir`.
fn write_config(dir: &Path, sources: &str) -> std::path::PathBuf {
    let path = dir.join("feeds.toml");
    let text = format!("{CONFIG_HEAD}{}{sources}", config_prelude(""));
    std::fs::write(&path, text).expect("write config");
    path
}

/// Runs `tributary --config PATH add ARGS...` without a terminal.
async fn add(config: &Path, args: &[&str]) -> Output {
    let mut c = tributary_command("warn");
    c.arg("--config").arg(config).arg("add").args(args);
    c.stdin(std::process::Stdio::null());
    tokio::task::spawn_blocking(move || c.output().expect("run tributary"))
        .await
        .expect("join")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn feed(title: &str, entries: &[&str]) -> Route {
    let rss =
        Rss::new(title, "http://site.example/").items(entries.iter().enumerate().map(|(i, t)| {
            Item::new(format!("http://site.example/{i}"))
                .title(*t)
                .published_at(1_750_000_000 + i as u64 * 60)
        }));
    Route::feed(rss.xml(), "application/rss+xml")
}

fn page(head: &str) -> Route {
    Route::feed(
        format!(
            "<!doctype html><html><head><title>Site</title>{head}</head><body>hi</body></html>"
        ),
        "text/html; charset=utf-8",
    )
}

/// The sources in the config file at `path`, which must load.
fn sources(path: &Path) -> Vec<std::sync::Arc<tributary::config::SourceConfig>> {
    tributary::config::load(path)
        .expect("the config still loads")
        .sources
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_with_an_alternate_link_adds_its_feed_with_a_transliterated_name() {
    let origin = Origin::start().await;
    origin.set(
        "/",
        page(r#"<link rel="alternate" type="application/rss+xml" title="RSS" href="/blog.rss">"#),
    );
    origin.set(
        "/blog.rss",
        feed("Café Résumé — Blog!", &["Old post", "Newest post"]),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let out = add(&path, &[&origin.url("/"), "--tag", "tech", "--tag", "food"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("Café Résumé — Blog!"), "{stdout}");
    // The newest entry is listed first.
    let newest = stdout.find("Newest post").expect("newest shown");
    let old = stdout.find("Old post").expect("old shown");
    assert!(newest < old, "{stdout}");
    assert!(stdout.contains("added cafe-resume-blog"), "{stdout}");
    assert!(stdout.contains("reloads"), "{stdout}");
    let written = std::fs::read_to_string(&path).expect("read config");
    assert!(written.starts_with(CONFIG_HEAD), "{written}");
    let s = sources(&path);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "cafe-resume-blog");
    assert_eq!(s[0].url.as_str(), origin.url("/blog.rss"));
    assert_eq!(s[0].tags, ["food", "tech"]);
    // The feed was fetched once; no common path was tried.
    assert_eq!(origin.requests("/blog.rss").len(), 1);
    assert!(origin.requests("/feed").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_without_links_is_looked_for_at_the_common_paths() {
    let origin = Origin::start().await;
    origin.set("/", page(""));
    origin.set("/feed.xml", feed("Quiet Site", &["A post"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let out = add(&path, &[&origin.url("/"), "--name", "quiet"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("Quiet Site") && stdout.contains("A post"),
        "{stdout}"
    );
    let s = sources(&path);
    assert_eq!(s[0].name, "quiet");
    assert_eq!(s[0].url.as_str(), origin.url("/feed.xml"));
    assert_eq!(origin.requests("/feed.xml").len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_feed_url_is_added_as_it_is() {
    let origin = Origin::start().await;
    origin.set("/x.rss", feed("Direct", &["One"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let out = add(&path, &[&origin.url("/x.rss")]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("is a feed"), "{stdout}");
    let s = sources(&path);
    assert_eq!(
        (s[0].name.as_str(), s[0].url.as_str()),
        ("direct", origin.url("/x.rss").as_str())
    );
    assert_eq!(origin.requests("/x.rss").len(), 1);
    assert!(origin.requests("/").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn several_feeds_are_listed_and_one_is_picked() {
    let origin = Origin::start().await;
    origin.set(
        "/",
        page(concat!(
            r#"<link rel="alternate" type="application/rss+xml" href="/posts.rss">"#,
            r#"<link rel="alternate" type="application/atom+xml" href="/comments.rss">"#
        )),
    );
    origin.set("/posts.rss", feed("Posts", &["P1"]));
    origin.set("/comments.rss", feed("Comments", &["C1"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let before = std::fs::read_to_string(&path).expect("read");

    // No terminal, no --pick: listed, nothing written, told what to do.
    let out = add(&path, &[&origin.url("/")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("1. Posts") && stdout.contains("2. Comments"),
        "{stdout}"
    );
    assert!(stderr.contains("--pick N"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);

    let out = add(&path, &[&origin.url("/"), "--pick", "3"]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("--pick 3: there are 2 feeds"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);

    let out = add(&path, &[&origin.url("/"), "--pick", "2"]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    let s = sources(&path);
    assert_eq!(s.len(), 1);
    assert_eq!(
        (s[0].name.as_str(), s[0].url.as_str()),
        ("comments", origin.url("/comments.rss").as_str())
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_url_already_configured_is_refused_with_its_source_name() {
    let origin = Origin::start().await;
    origin.set(
        "/",
        page(r#"<link rel="alternate" type="application/rss+xml" href="/blog.rss">"#),
    );
    origin.set("/blog.rss", feed("Blog", &["One"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let known = format!(
        "[[source]]\nname = \"mine\"\nurl = \"{}\"\n",
        origin.url("/blog.rss")
    );
    let path = write_config(dir.path(), &known);
    let before = std::fs::read_to_string(&path).expect("read");

    // The feed's own URL: refused before anything is fetched.
    let out = add(&path, &[&origin.url("/blog.rss")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("already in") && stderr.contains("\"mine\""),
        "{stderr}"
    );
    assert!(origin.requests("/blog.rss").is_empty());

    // The site's address: found, then refused.
    let out = add(&path, &[&origin.url("/")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(stderr.contains("\"mine\""), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);

    // A name already taken is refused too.
    origin.set("/other.rss", feed("Other", &["O"]));
    let out = add(&path, &[&origin.url("/other.rss"), "--name", "mine"]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--name \"mine\""), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_site_is_reported_and_nothing_is_written() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let before = std::fs::read_to_string(&path).expect("read");
    let out = add(&path, &[&format!("http://127.0.0.1:{port}/")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("cannot fetch http://127.0.0.1:{port}/")),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_advertising_hostile_urls_gets_none_of_them_fetched() {
    let origin = Origin::start().await;
    origin.set(
        "/",
        page(concat!(
            r#"<link rel="alternate" type="application/rss+xml" href="file:///etc/passwd">"#,
            r#"<link rel="alternate" type="application/rss+xml" href="http://10.255.255.1/feed.xml">"#,
            r#"<link rel="alternate" type="application/rss+xml" href="http://169.254.169.254/latest/meta-data/">"#
        )),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let before = std::fs::read_to_string(&path).expect("read");
    let out = add(&path, &[&origin.url("/")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        !stdout.contains("root:") && !stderr.contains("root:"),
        "{stdout}{stderr}"
    );
    assert!(
        !stdout.contains("/etc/passwd"),
        "never even listed: {stdout}"
    );
    assert!(
        stdout.contains(
            "not taken: http://10.255.255.1/feed.xml (refused: 10.255.255.1 is a private address"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("not taken: http://169.254.169.254/latest/meta-data/ (refused"),
        "{stdout}"
    );
    assert!(stderr.contains("no feed found"), "{stderr}");
    assert!(stderr.contains("no repeated entries"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
}

/// A news section with no feed: a menu, six articles, a list of releases with dates.
fn listing_page() -> Route {
    let articles: String = (1..=6)
        .map(|i| {
            format!(
                r#"<article class="story"><h2><a href="/news/story-{i}">Council votes on bridge plan number {i}</a></h2>
                <time datetime="2026-11-2{i}T08:00:00Z">November 2{i}</time><p>Summary {i}.</p></article>"#
            )
        })
        .collect();
    let releases: String = (1..=4)
        .map(|i| {
            format!(
                r#"<li><a href="/releases/v{i}">Release notes for version {i}.0</a> <span class="when">2026-0{i}-15</span></li>"#
            )
        })
        .collect();
    Route::feed(
        format!(
            r#"<!doctype html><html><head><title>Town News — Latest</title></head><body>
            <nav><ul><li><a href="/">Home</a></li><li><a href="/news/">News</a></li><li><a href="/sport/">Sport</a></li><li><a href="/about/">About</a></li></ul></nav>
            <main><h1>Latest news</h1>{articles}</main>
            <section class="downloads"><h2>Downloads</h2><ul class="releases">{releases}</ul></section>
            </body></html>"#
        ),
        "text/html; charset=utf-8",
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_page_without_a_feed_gets_selectors_proposed_then_checked_and_previewed() {
    let origin = Origin::start().await;
    origin.set("/news/", listing_page());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let before = std::fs::read_to_string(&path).expect("read");

    // Two ways to read the page: listed with their entries, nothing written without a pick.
    let out = add(&path, &[&origin.url("/news/")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains("can be read by selectors instead"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  1. items = \"article.story\"\n"),
        "{stdout}"
    );
    assert!(stdout.contains("     6 entries"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "       2026-11-21  Council votes on bridge plan number 1  {}",
            origin.url("/news/story-1")
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("  2. items = \"ul.releases > li\", date = \"span.when\""),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "       2026-02-15  Release notes for version 2.0  {}",
            origin.url("/releases/v2")
        )),
        "{stdout}"
    );
    assert!(
        !stdout.contains("Home"),
        "the menu is not offered: {stdout}"
    );
    assert!(
        stderr.contains("2 proposals found: run again with --pick N (1 to 2)"),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);

    let out = add(&path, &[&origin.url("/news/"), "--pick", "3"]).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--pick 3: there are 2 proposals"),
        "{stderr}"
    );

    let out = add(
        &path,
        &[&origin.url("/news/"), "--pick", "1", "--tag", "local"],
    )
    .await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        stdout.contains(&format!("added town-news-latest: {}", origin.url("/news/"))),
        "{stdout}"
    );
    assert!(
        stdout.contains("`tributary preview town-news-latest`"),
        "{stdout}"
    );
    let written = std::fs::read_to_string(&path).expect("read config");
    assert!(written.starts_with(CONFIG_HEAD), "{written}");
    assert!(
        written.trim_end().ends_with(&format!(
            "[[source]]\nname = \"town-news-latest\"\nurl = \"{}\"\nkind = \"html\"\n\
             tags = [\"local\"]\n\n[source.select]\nitems = \"article.story\"",
            origin.url("/news/")
        )),
        "{written}"
    );
    let s = sources(&path);
    assert_eq!(s[0].kind.name(), "html");

    let mut check = tributary_command("warn");
    check.arg("check").arg("--config").arg(&path);
    let out = tokio::task::spawn_blocking(move || check.output().expect("run"))
        .await
        .expect("join");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");

    let mut preview = tributary_command("warn");
    preview
        .arg("--config")
        .arg(&path)
        .arg("preview")
        .arg("town-news-latest");
    let out = tokio::task::spawn_blocking(move || preview.output().expect("run"))
        .await
        .expect("join");
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(stdout.contains("town-news-latest: 6 entries"), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "2026-11-26 08:00 UTC  Council votes on bridge plan number 6  {}",
            origin.url("/news/story-6")
        )),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_http_url_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let out = add(&path, &["file:///etc/passwd"]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("is not an http(s) URL"), "{stderr}");
    assert!(!stdout.contains("root:") && !stderr.contains("root:"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_running_daemon_polls_the_added_source_after_its_reload() {
    let origin = Origin::start().await;
    origin.set("/a.rss", feed("A", &["a1"]));
    origin.set(
        "/",
        page(r#"<link rel="alternate" type="application/rss+xml" href="/new.rss">"#),
    );
    origin.set("/new.rss", feed("New Site", &["n1", "n2"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let a = format!(
        "[[source]]\nname = \"a\"\nurl = \"{}\"\n",
        origin.url("/a.rss")
    );
    let path = write_config(dir.path(), &a);
    let mut daemon = support::KillOnDrop::spawn(
        tributary_command("info")
            .arg("--config")
            .arg(&path)
            .arg("run"),
    );
    let log = daemon.stderr_lines();
    let within = std::time::Duration::from_secs(20);
    support::wait_for_line(&log, &["source=a", "polled"], within);
    let out = add(&path, &[&origin.url("/")]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    support::wait_for_line(&log, &["config reloaded", "added new-site"], within);
    support::wait_for_line(&log, &["source=new-site", "polled", "new=2"], within);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_config_is_created_with_the_source_and_terminal_escapes_are_not_printed() {
    let origin = Origin::start().await;
    origin.set(
        "/f.rss",
        feed("Evil\u{1b}[2J Title", &["Post\u{1b}]0;owned\u{7}"]),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("feeds.toml");
    let out = add(&path, &[&origin.url("/f.rss")]).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}{stderr}");
    assert!(
        !stdout.contains('\u{1b}') && !stdout.contains('\u{7}'),
        "{stdout:?}"
    );
    assert!(stdout.contains("Evil[2J Title"), "{stdout}");
    let s = sources(&path);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].url.as_str(), origin.url("/f.rss"));
}

/// Runs `tributary --config PATH add URL` on a terminal (a pty) where `typed` is typed;
/// what the terminal showed, and the exit.
#[cfg(target_os = "linux")]
async fn add_on_a_terminal(path: &Path, url: String, typed: &'static [u8]) -> (String, Output) {
    use std::io::{Read, Write};
    use std::os::fd::{FromRawFd, OwnedFd};

    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty writes two new descriptors, owned from here on.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty");
        // SAFETY: both are open descriptors nothing else owns.
        unsafe { (std::fs::File::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    };
    let mut c = tributary_command("warn");
    c.arg("--config")
        .arg(path)
        .arg("add")
        .arg(url)
        .stdin(slave.try_clone().expect("dup"))
        .stdout(slave)
        .stderr(std::process::Stdio::piped());
    master.write_all(typed).expect("type");
    let out = tokio::task::spawn_blocking(move || {
        let out = c.output().expect("run");
        drop(c);
        out
    })
    .await
    .expect("join");
    let mut screen = Vec::new();
    // Every slave descriptor is closed now: reading ends (EIO) once the output is read.
    let _ = master.read_to_end(&mut screen);
    (String::from_utf8_lossy(&screen).into_owned(), out)
}

/// On a terminal, several feeds are offered with a prompt; the answer picks one.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_user_is_asked_which_feed() {
    let origin = Origin::start().await;
    origin.set(
        "/",
        page(concat!(
            r#"<link rel="alternate" type="application/rss+xml" href="/posts.rss">"#,
            r#"<link rel="alternate" type="application/rss+xml" href="/links.rss">"#
        )),
    );
    origin.set("/posts.rss", feed("Posts", &["P1"]));
    origin.set("/links.rss", feed("Links", &["L1"]));
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    // A first answer out of range is asked again; the second picks "Links".
    let (screen, out) = add_on_a_terminal(&path, origin.url("/"), b"7\n2\n").await;
    assert!(
        out.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        screen.contains("Add which feed? [1-2, Enter for none]"),
        "{screen}"
    );
    assert!(screen.contains("Type a number from 1 to 2."), "{screen}");
    let s = sources(&path);
    assert_eq!(s[0].url.as_str(), origin.url("/links.rss"));
}

/// On a terminal, the selectors proposed for a page are offered the same way; an empty
/// answer adds nothing, the second run's answer adds the page.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn on_a_terminal_the_user_is_asked_which_selectors() {
    let origin = Origin::start().await;
    origin.set("/news/", listing_page());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let before = std::fs::read_to_string(&path).expect("read");

    let (screen, out) = add_on_a_terminal(&path, origin.url("/news/"), b"\n").await;
    assert!(!out.status.success(), "{screen}");
    assert!(
        screen.contains("Add the page with which selectors? [1-2, Enter for none]"),
        "{screen}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing chosen, nothing added"),
        "{screen}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);

    let (screen, out) = add_on_a_terminal(&path, origin.url("/news/"), b"2\n").await;
    assert!(
        out.status.success(),
        "{screen}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = sources(&path);
    assert_eq!(s[0].url.as_str(), origin.url("/news/"));
    let tributary::config::SourceKind::Html(select) = &s[0].kind else {
        panic!("not an html source: {:?}", s[0].kind);
    };
    assert_eq!(select.items, "ul.releases > li");
    assert_eq!(
        select.date.as_ref().map(ToString::to_string).as_deref(),
        Some("span.when")
    );
}

/// A JSON API is no feed: `add` says how to read it (`kind = "json"`) and suggests `items`
/// for its largest array of objects, and writes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_json_api_gets_kind_json_suggested() {
    let origin = Origin::start().await;
    origin.set(
        "/api/search",
        Route::feed(
            support::fixture("pages/json/api-hn-algolia.json"),
            "application/json; charset=utf-8",
        ),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = write_config(dir.path(), "");
    let before = std::fs::read_to_string(&path).expect("read");
    let out = add(&path, &[&origin.url("/api/search")]).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}{stderr}");
    assert!(
        stderr.contains("is a JSON document but no JSON Feed: read it as a JSON API, with kind = \"json\" and a [source.select] table such as items = \"$.hits[*]\""),
        "{stderr}"
    );
    assert_eq!(std::fs::read_to_string(&path).expect("read"), before);
}
