//! The river of news: `/` and each source's, tag's and named feed's HTML view, through the
//! real daemon, parsed with dom_query: titles and links, `<time datetime>`, sources by their
//! titles, the older link paging through every entry with the feeds' cursors, `.html`
//! variants, 404s, the Content-Security-Policy, nothing from a feed that can run, the
//! status page at `/status`, and a theme (`[publish] templates`) replacing a template, a
//! broken one refused at `check` and at reload with its file and line.

mod support;

use std::collections::HashSet;

use dom_query::Document;
use support::{Origin, Route, config_raw, get};
use tokio::net::TcpListener;
use tributary::app;

const BASE: &str = "http://feeds.test";

/// An RSS item published `hours` hours after 2025-01-01 00:00 UTC.
fn item(site: &str, n: usize, hours: i64, extra: &str) -> String {
    let at = chrono::DateTime::parse_from_rfc3339("2025-01-01T00:00:00Z")
        .expect("date")
        .to_utc()
        + chrono::Duration::hours(hours);
    format!(
        "<item><guid isPermaLink=\"false\">{site}-{n}</guid><title>{site} post {n}</title>\
         <link>https://{site}.example/{n}</link><pubDate>{}</pubDate>{extra}</item>",
        at.to_rfc2822()
    )
}

fn rss(title: &str, site: &str, items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><rss version=\"2.0\" xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel>\
         <title>{title}</title><link>https://{site}.example/</link><description>d</description>{}\
         </channel></rss>",
        items.concat()
    )
}

/// `alpha` (its feed titled "Alpha Weblog", 5 entries, one hostile, one with audio and one
/// with video) and `beta` (titled "Beta Notes" in the config, tagged, 4 entries), a named
/// feed of beta; 3 entries a page. Polled once, then served.
async fn river_daemon(extra_publish: &str) -> (app::Daemon, Origin, tempfile::TempDir) {
    let origin = Origin::start().await;
    let mut alpha: Vec<String> = (0..5)
        .map(|n| {
            let extra = match n {
                1 => "<description>Hello</description>\
                      <content:encoded>&lt;p&gt;Hello &lt;script&gt;alert(1)&lt;/script&gt;\
                      &lt;img src=\"https://alpha.example/x.png\" onerror=\"alert(2)\"&gt;\
                      &lt;a href=\"javascript:alert(3)\"&gt;click&lt;/a&gt;&lt;/p&gt;</content:encoded>\
                      <author>ann@alpha.example (Ann Author)</author>"
                    .to_string(),
                2 => "<description>Listen to this</description>\
                      <enclosure url=\"https://alpha.example/ep2.mp3\" type=\"audio/mpeg\" length=\"12345678\"/>"
                    .to_string(),
                3 => "<description>Watch this</description>\
                      <enclosure url=\"https://alpha.example/clip.mp4\" type=\"video/mp4\" length=\"1000\"/>"
                    .to_string(),
                _ => format!("<description>Alpha body {n}</description>"),
            };
            item("alpha", n, 2 * n as i64, &extra)
        })
        .collect();
    alpha.reverse();
    let beta: Vec<String> = (0..4)
        .map(|n| {
            item(
                "beta",
                n,
                2 * n as i64 + 1,
                "<description>Beta body</description>",
            )
        })
        .collect();
    origin.set(
        "/alpha.xml",
        Route::feed(rss("Alpha Weblog", "alpha", &alpha), "application/rss+xml"),
    );
    origin.set(
        "/beta.xml",
        Route::feed(rss("beta feed", "beta", &beta), "application/rss+xml"),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"{BASE}\"\n\n\
         [publish]\ntitle = \"Test river\"\ndescription = \"Everything, combined\"\nmax_items = 3\n{extra_publish}\n\n\
         [[source]]\nname = \"alpha\"\nurl = \"{}\"\n\n\
         [[source]]\nname = \"beta\"\ntitle = \"Beta Notes\"\nurl = \"{}\"\ntags = [\"notes\"]\n\n\
         [[feed]]\nname = \"picks\"\ntitle = \"Our picks\"\nsources = [\"beta\"]\n",
        origin.url("/alpha.xml"),
        origin.url("/beta.xml"),
    );
    let cfg = config_raw(dir.path(), &text);
    app::once(cfg.clone()).await.expect("once");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let daemon = app::start(cfg, listener).await.expect("starts");
    (daemon, origin, dir)
}

/// GET with the response's headers.
async fn fetch(url: &str) -> (u16, reqwest::header::HeaderMap, String) {
    let r = reqwest::get(url).await.expect("request");
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    (status, headers, r.text().await.expect("body"))
}

/// The page's entries: (title, link, source title, source link, datetime).
fn entries(doc: &Document) -> Vec<(String, String, String, String, String)> {
    doc.select("article")
        .iter()
        .map(|a| {
            let title = a.select("h2 a");
            let source = a.select(".source");
            (
                title.text().to_string(),
                title
                    .attr("href")
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                source.text().to_string(),
                source
                    .attr("href")
                    .map(|h| h.to_string())
                    .unwrap_or_default(),
                a.select("time")
                    .attr("datetime")
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// A published link, on this daemon.
fn local(base: &str, href: &str) -> String {
    format!(
        "{base}{}",
        href.strip_prefix(BASE)
            .expect("an absolute link on base_url")
    )
}

#[tokio::test]
async fn the_river_pages_through_every_entry_newest_first() {
    let (daemon, _origin, _dir) = river_daemon("").await;
    let base = format!("http://{}", daemon.local_addr());

    let (status, headers, page) = fetch(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    assert_eq!(
        headers["content-security-policy"],
        tributary::serve::CONTENT_SECURITY_POLICY
    );
    let doc = Document::from(page.as_str());
    assert_eq!(doc.select("title").text().to_string(), "Test river");
    assert_eq!(doc.select("h1").text().to_string(), "Test river");

    // Autodiscovery of the combined feeds.
    let alternates: Vec<(String, String)> = doc
        .select("head link[rel=alternate]")
        .iter()
        .map(|l| {
            (
                l.attr("type").map(|t| t.to_string()).unwrap_or_default(),
                l.attr("href").map(|t| t.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        alternates,
        [
            ("application/atom+xml", "http://feeds.test/feed.atom"),
            ("application/rss+xml", "http://feeds.test/feed.rss"),
            ("application/feed+json", "http://feeds.test/feed.json"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );

    // Paging: 3 a page, the older link with the feeds' cursor, to the end.
    let (_, _, atom) = get(&format!("{base}/feed.atom")).await;
    let feed: atom_syndication::Feed = atom.parse().expect("atom");
    let atom_next = feed
        .links()
        .iter()
        .find(|l| l.rel() == "next")
        .map(|l| l.href().to_string())
        .expect("the feed has a next page");
    let mut all = Vec::new();
    let mut url = format!("{base}/");
    let mut pages = 0;
    loop {
        let (status, headers, page) = fetch(&url).await;
        assert_eq!(status, 200, "{url}");
        assert!(headers.contains_key("content-security-policy"));
        let doc = Document::from(page.as_str());
        let on_page = entries(&doc);
        assert!(on_page.len() <= 3, "{url}");
        all.extend(on_page);
        let older = doc
            .select("a[rel=next]")
            .attr("href")
            .map(|h| h.to_string());
        if pages == 0 {
            let older = older.as_deref().expect("the first page has an older link");
            let cursor = |u: &str| u.split_once('?').map(|(_, q)| q.to_string());
            assert_eq!(cursor(older), cursor(&atom_next), "the feeds' cursor");
            assert!(older.starts_with("http://feeds.test/?before="), "{older}");
        }
        pages += 1;
        match older {
            Some(next) => url = local(&base, &next),
            None => break,
        }
        assert!(pages < 10, "the older links end");
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 9, "{all:?}");
    let titles: HashSet<&str> = all.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(titles.len(), 9, "each entry once");
    // Newest first, every date an RFC 3339 `datetime`.
    let dates: Vec<chrono::DateTime<chrono::FixedOffset>> = all
        .iter()
        .map(|e| chrono::DateTime::parse_from_rfc3339(&e.4).expect("RFC 3339 datetime"))
        .collect();
    assert!(dates.windows(2).all(|w| w[0] > w[1]), "{dates:?}");
    assert_eq!(all[0].0, "alpha post 4");
    assert_eq!(all[0].1, "https://alpha.example/4");
    assert_eq!(all[1].0, "beta post 3");
    // Sources by their titles (the feed's own, or the config's), linked to their sites.
    assert_eq!(all[0].2, "Alpha Weblog");
    assert_eq!(all[0].3, "https://alpha.example/");
    assert_eq!(all[1].2, "Beta Notes");
    assert_eq!(all[1].3, "https://beta.example/");
    for e in &all {
        assert!(e.2 == "Alpha Weblog" || e.2 == "Beta Notes", "{e:?}");
    }
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn entries_expand_play_their_media_and_nothing_runs() {
    let (daemon, _origin, _dir) = river_daemon("").await;
    let base = format!("http://{}", daemon.local_addr());
    // Alpha's own view holds its five entries over two pages.
    let (status, _, page) = fetch(&format!("{base}/sources/alpha?limit=10")).await;
    assert_eq!(status, 200);
    let doc = Document::from(page.as_str());
    assert_eq!(doc.select("article").length(), 5);
    // Nothing from a feed can run: no script, no event handler, no javascript: URL.
    assert_eq!(doc.select("script").length(), 0, "{page}");
    for node in doc.select("*").iter() {
        for attr in node.attrs() {
            let name = attr.name.local.to_string();
            assert!(!name.starts_with("on"), "{name} in {page}");
            assert!(!attr.value.to_lowercase().contains("javascript:"), "{page}");
        }
    }
    assert!(!page.contains("alert("), "{page}");
    // The hostile entry still shows its text and image, in a <details>.
    let hostile = doc
        .select("article")
        .iter()
        .find(|a| a.select("h2").text().contains("alpha post 1"))
        .expect("the entry is there");
    assert_eq!(
        hostile.select("details summary").text().to_string(),
        "Hello"
    );
    assert_eq!(
        hostile.select("details .content a").text().to_string(),
        "click"
    );
    assert_eq!(
        hostile
            .select("details .content img")
            .attr("src")
            .map(|s| s.to_string()),
        Some("https://alpha.example/x.png".into())
    );
    assert_eq!(hostile.select(".author").text().to_string(), "Ann Author");
    // Audio and video play in the native elements, and are linked.
    let audio = doc.select("article audio[controls]");
    assert_eq!(
        audio.attr("src").map(|s| s.to_string()),
        Some("https://alpha.example/ep2.mp3".into())
    );
    let link = doc.select("ul.media a[href='https://alpha.example/ep2.mp3']");
    assert_eq!(link.text().to_string(), "ep2.mp3");
    assert!(page.contains("12.3 MB"), "{page}");
    // An entry whose excerpt is all there is shows its text as it is, not behind it.
    let short = doc
        .select("article")
        .iter()
        .find(|a| a.select("h2").text().contains("alpha post 0"))
        .expect("the entry is there");
    assert_eq!(short.select("details").length(), 0);
    assert_eq!(short.select(".content").text().to_string(), "Alpha body 0");
    assert_eq!(
        doc.select("article video[controls]")
            .attr("src")
            .map(|s| s.to_string()),
        Some("https://alpha.example/clip.mp4".into())
    );
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn every_source_tag_and_feed_has_its_view() {
    let (daemon, _origin, _dir) = river_daemon("").await;
    let base = format!("http://{}", daemon.local_addr());
    for (path, title, count, feed) in [
        ("/sources/alpha", "Alpha Weblog", 5, "/sources/alpha"),
        ("/sources/beta", "Beta Notes", 4, "/sources/beta"),
        ("/tags/notes", "#notes", 4, "/tags/notes"),
        ("/feeds/picks", "Our picks", 4, "/feeds/picks"),
    ] {
        let (status, headers, page) = fetch(&format!("{base}{path}?limit=20")).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        assert!(headers.contains_key("content-security-policy"), "{path}");
        let (status, _, with_ext) = fetch(&format!("{base}{path}.html?limit=20")).await;
        assert_eq!(status, 200, "{path}.html");
        assert_eq!(page, with_ext, "{path} and {path}.html are the same page");
        let doc = Document::from(page.as_str());
        assert_eq!(doc.select("h1").text().to_string(), title, "{path}");
        assert_eq!(doc.select("article").length(), count, "{path}");
        let atom = doc
            .select("head link[type='application/atom+xml']")
            .attr("href")
            .map(|h| h.to_string());
        assert_eq!(atom, Some(format!("{BASE}{feed}.atom")), "{path}");
        // Each source by its title, never its slug.
        for e in entries(&doc) {
            assert!(
                e.2 == "Alpha Weblog" || e.2 == "Beta Notes",
                "{path}: {e:?}"
            );
        }
    }
    // The home page's navigation names the feeds and tags by their titles.
    let (_, _, page) = fetch(&format!("{base}/")).await;
    let doc = Document::from(page.as_str());
    let nav: Vec<String> = doc
        .select("header nav a")
        .iter()
        .map(|a| a.text().to_string())
        .collect();
    assert_eq!(nav, ["Test river", "Our picks", "#notes", "Status"]);
    for missing in [
        "/sources/nope",
        "/sources/nope.html",
        "/tags/nope",
        "/feeds/nope.html",
        "/sources/alpha.txt",
    ] {
        let (status, _, _) = fetch(&format!("{base}{missing}")).await;
        assert_eq!(status, 404, "{missing}");
    }
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn the_status_table_moved_to_status_and_pages_revalidate() {
    let (daemon, _origin, _dir) = river_daemon("").await;
    let base = format!("http://{}", daemon.local_addr());
    let (status, headers, page) = fetch(&format!("{base}/status")).await;
    assert_eq!(status, 200);
    assert!(headers.contains_key("content-security-policy"));
    let doc = Document::from(page.as_str());
    let rows: Vec<String> = doc
        .select("table tbody tr td:first-child")
        .iter()
        .map(|td| td.text().to_string())
        .collect();
    assert_eq!(rows, ["Alpha Weblog (alpha)", "Beta Notes (beta)"]);
    assert_eq!(doc.select("table thead th").length(), 7);

    // The river is cached like the feeds: an ETag, and 304 for a reader who has it.
    let (_, headers, _) = fetch(&format!("{base}/")).await;
    let etag = headers["etag"].to_str().expect("etag").to_string();
    let again = reqwest::Client::new()
        .get(format!("{base}/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .expect("request");
    assert_eq!(again.status().as_u16(), 304);
    daemon.shutdown().await.expect("shutdown");
}

#[tokio::test]
async fn a_theme_replaces_a_template_and_a_broken_one_is_refused() {
    let themes = tempfile::tempdir().expect("tempdir");
    let theme = themes.path().join("theme");
    std::fs::create_dir(&theme).expect("mkdir");
    std::fs::write(
        theme.join("entry.html"),
        "<article class=\"mine\"><h2><a href=\"{{ entry.link }}\">{{ entry.title }}</a></h2>\
         <p>{{ \"<b>escaped</b>\" }}</p></article>\n",
    )
    .expect("write");
    let (daemon, _origin, dir) =
        river_daemon(&format!("templates = \"{}\"", theme.display())).await;
    let base = format!("http://{}", daemon.local_addr());
    let (_, _, page) = fetch(&format!("{base}/")).await;
    let doc = Document::from(page.as_str());
    assert_eq!(doc.select("article.mine").length(), 3, "{page}");
    // The other templates stay built in; autoescaping is on.
    assert_eq!(doc.select("a[rel=next]").length(), 1);
    assert!(page.contains("&lt;b&gt;escaped&lt;/b&gt;"), "{page}");

    // A broken template: `check` and a reload say which file and line; the theme that
    // works keeps serving.
    std::fs::write(
        theme.join("entry.html"),
        "<article>\n{{ entry.title }}\n{% if entry.link %}\n</article>\n",
    )
    .expect("write");
    let config = dir.path().join("feeds.toml");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
        .arg("check")
        .arg("--config")
        .arg(&config)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let at = format!("{}:", theme.join("entry.html").display());
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("syntax error"), "{stderr}");
    let err = daemon.reload().await.expect_err("the reload is refused");
    let text = tributary::with_causes(&err, ": ");
    assert!(text.contains(&at), "{text}");
    let (status, _, page) = fetch(&format!("{base}/")).await;
    assert_eq!(status, 200);
    assert_eq!(
        Document::from(page.as_str())
            .select("article.mine")
            .length(),
        3
    );
    // Fixed, the reload applies it and the page changes with it.
    std::fs::write(
        theme.join("entry.html"),
        "<article class=\"fixed\">{{ entry.title }}</article>\n",
    )
    .expect("write");
    daemon.reload().await.expect("the reload applies the theme");
    let (_, _, page) = fetch(&format!("{base}/")).await;
    assert_eq!(
        Document::from(page.as_str())
            .select("article.fixed")
            .length(),
        3
    );
    daemon.shutdown().await.expect("shutdown");
}

#[test]
fn templates_dump_writes_the_built_in_templates_and_keeps_edits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let theme = dir.path().join("theme");
    let dump = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tributary"))
            .arg("templates")
            .arg("--dump")
            .arg(&theme)
            .output()
            .expect("runs")
    };
    let out = dump();
    assert!(out.status.success(), "{out:?}");
    for (name, text) in tributary::render::river::BUILT_IN {
        let written = std::fs::read_to_string(theme.join(name)).expect("written");
        assert_eq!(&written, text, "{name}");
    }
    // An edited file is kept.
    std::fs::write(theme.join("entry.html"), "mine").expect("write");
    let out = dump();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
    assert_eq!(
        std::fs::read_to_string(theme.join("entry.html")).expect("read"),
        "mine"
    );
}

#[test]
fn a_theme_folder_is_read_within_bounds() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("feeds.toml");
    let load = |templates: &str| {
        std::fs::write(
            &config,
            format!(
                "[publish]\ntemplates = \"{templates}\"\n\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n"
            ),
        )
        .expect("write");
        tributary::config::load(&config)
            .map(|c| c.publish.templates)
            .map_err(|e| e.to_string())
    };
    // Missing: said at the key's position.
    let err = load("nope").expect_err("no such folder");
    assert!(
        err.contains("feeds.toml:2:13: templates: cannot read"),
        "{err}"
    );
    // Relative to the config's folder; only `.html` files are templates.
    let theme = dir.path().join("theme");
    std::fs::create_dir(&theme).expect("mkdir");
    std::fs::write(theme.join("entry.html"), "<p>{{ entry.title }}</p>").expect("write");
    std::fs::write(theme.join("notes.txt"), "{% broken").expect("write");
    let t = load("theme").expect("valid").expect("a theme");
    assert_eq!(t.files.len(), 1);
    assert_eq!(t.files[0].0, "entry.html");
    assert!(t.dir.is_absolute());
    // A template past the size bound is refused, not read whole.
    let big = "x".repeat(tributary::config::MAX_TEMPLATE_BYTES as usize + 1);
    std::fs::write(theme.join("base.html"), big).expect("write");
    let err = load("theme").expect_err("too big");
    assert!(err.contains("base.html is larger than 256 KiB"), "{err}");
    // So is a folder of more templates than the bound.
    std::fs::remove_file(theme.join("base.html")).expect("remove");
    for i in 0..tributary::config::MAX_TEMPLATES {
        std::fs::write(theme.join(format!("part{i}.html")), "x").expect("write");
    }
    let err = load("theme").expect_err("too many");
    assert!(err.contains("holds more than 64 templates"), "{err}");
}

#[tokio::test]
async fn a_template_failing_as_it_renders_answers_500() {
    let dir = tempfile::tempdir().expect("tempdir");
    let theme = dir.path().join("theme");
    std::fs::create_dir(&theme).expect("mkdir");
    std::fs::write(
        theme.join("river.html"),
        "<p>\n{% include \"missing.html\" %}\n",
    )
    .expect("write");
    let (daemon, _origin, _dir) =
        river_daemon(&format!("templates = \"{}\"", theme.display())).await;
    let base = format!("http://{}", daemon.local_addr());
    let (status, _, body) = fetch(&format!("{base}/")).await;
    assert_eq!(status, 500);
    assert_eq!(body, "internal error: the page's template failed\n");
    // The feeds do not depend on the templates.
    let (status, _, _) = fetch(&format!("{base}/feed.atom")).await;
    assert_eq!(status, 200);
    daemon.shutdown().await.expect("shutdown");
}

/// A theme that compiles but fails as it renders (an include of a missing file, a filter
/// that does not exist) is refused by `check`, by `run` at start and by a reload, naming
/// its file and line, after a trial render of sample pages; the running theme keeps
/// serving. (A failure only real data brings out still answers 500: see above.)
#[tokio::test]
async fn a_theme_failing_as_it_renders_is_refused_before_serving() {
    let (daemon, _origin, dir) = river_daemon("").await;
    let base = format!("http://{}", daemon.local_addr());
    let theme = dir.path().join("theme");
    std::fs::create_dir(&theme).expect("mkdir");
    std::fs::write(
        theme.join("entry.html"),
        "<article>\n{{ entry.title | no_such_filter }}\n</article>\n",
    )
    .expect("write");
    let config = dir.path().join("feeds.toml");
    let text = std::fs::read_to_string(&config).expect("config");
    let text = text.replacen(
        "[publish]\n",
        &format!("[publish]\ntemplates = \"{}\"\n", theme.display()),
        1,
    );
    assert!(
        text.contains("templates = "),
        "the config has a [publish] table"
    );
    std::fs::write(&config, &text).expect("write");

    for command in ["check", "run"] {
        let out = support::tributary_command("warn")
            .arg(command)
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains(&format!("templates: {}/entry.html:2", theme.display())),
            "{command}: {stderr}"
        );
        assert!(stderr.contains("no_such_filter"), "{command}: {stderr}");
    }

    let err = daemon.reload().await.expect_err("the reload is refused");
    assert!(
        matches!(
            err,
            tributary::daemon::reload::ReloadError::Templates { .. }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("entry.html:2"), "{err}");
    let (status, _, page) = fetch(&format!("{base}/")).await;
    assert_eq!(status, 200, "the built-in templates keep serving");
    assert!(page.contains("<article"), "{page}");

    std::fs::write(theme.join("entry.html"), "{% include \"missing.html\" %}\n").expect("write");
    let err = daemon.reload().await.expect_err("refused");
    assert!(err.to_string().contains("missing.html"), "{err}");
    daemon.shutdown().await.expect("shutdown");
}

/// A theme is bounded: a render that runs too long (loops of loops) is refused by `check`
/// within seconds, and a link in the theme folder (which could publish any file the daemon
/// can read) is refused.
#[test]
fn a_theme_is_bounded_and_may_not_link_outside() {
    let dir = tempfile::tempdir().expect("tempdir");
    let theme = dir.path().join("theme");
    std::fs::create_dir(&theme).expect("mkdir");
    let config = dir.path().join("feeds.toml");
    std::fs::write(
        &config,
        format!(
            "[publish]\ntemplates = \"{}\"\n\n[[source]]\nname = \"a\"\nurl = \"https://a.example/feed\"\n",
            theme.display()
        ),
    )
    .expect("write");
    let check = || {
        let out = support::tributary_command("warn")
            .arg("check")
            .arg("--config")
            .arg(&config)
            .output()
            .expect("runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    std::fs::write(
        theme.join("entry.html"),
        "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
    )
    .expect("write");
    let began = std::time::Instant::now();
    let (code, stderr) = check();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("entry.html:1: engine ran out of fuel"),
        "{stderr}"
    );
    assert!(began.elapsed() < std::time::Duration::from_secs(30));

    std::fs::remove_file(theme.join("entry.html")).expect("rm");
    std::os::unix::fs::symlink(&config, theme.join("entry.html")).expect("symlink");
    let (code, stderr) = check();
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is a symbolic link"), "{stderr}");
}
