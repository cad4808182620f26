//! Test support: a real origin HTTP server on 127.0.0.1:0 serving fixture feeds, config
//! building, HTTP GETs against the daemon, and checks of output feeds modelled on what the W3C
//! Feed Validator flags (see ../shared/OUTPUT-CHECKS.md).

#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use tokio::net::TcpListener;
use tributary::config::{self, Config};

/// What the origin answers on one path.
#[derive(Clone, Debug)]
pub struct Route {
    pub status: u16,
    pub body: Vec<u8>,
    pub content_type: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Wait this long before answering (a slow or hung server).
    pub delay: Option<Duration>,
}

impl Route {
    pub fn feed(body: impl Into<Vec<u8>>, content_type: &str) -> Route {
        Route {
            status: 200,
            body: body.into(),
            content_type: content_type.to_string(),
            etag: None,
            last_modified: None,
            delay: None,
        }
    }

    pub fn fixture(name: &str) -> Route {
        let content_type = if name.ends_with(".json") {
            "application/feed+json"
        } else {
            "application/xml"
        };
        Route::feed(fixture(name), content_type)
    }

    pub fn status(status: u16, body: &str) -> Route {
        Route {
            status,
            ..Route::feed(body, "text/plain")
        }
    }

    pub fn with_etag(mut self, etag: &str) -> Route {
        self.etag = Some(etag.to_string());
        self
    }

    pub fn with_last_modified(mut self, lm: &str) -> Route {
        self.last_modified = Some(lm.to_string());
        self
    }

    pub fn with_delay(mut self, d: Duration) -> Route {
        self.delay = Some(d);
        self
    }
}

/// One request the origin received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

#[derive(Default)]
struct OriginState {
    routes: Mutex<HashMap<String, Route>>,
    seen: Mutex<Vec<Seen>>,
}

/// A feed origin on 127.0.0.1:0.
pub struct Origin {
    pub addr: SocketAddr,
    state: Arc<OriginState>,
}

impl Origin {
    pub async fn start() -> Origin {
        let state = Arc::new(OriginState::default());
        let app = Router::new().fallback(serve).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind origin");
        let addr = listener.local_addr().expect("origin addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("origin serves");
        });
        Origin { addr, state }
    }

    pub fn set(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .expect("lock")
            .insert(path.to_string(), route);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received on `path`, oldest first.
    pub fn requests(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .expect("lock")
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }
}

async fn serve(State(state): State<Arc<OriginState>>, req: Request) -> Response {
    let path = req.uri().path().to_string();
    state.seen.lock().expect("lock").push(Seen {
        path: path.clone(),
        headers: req.headers().clone(),
    });
    let route = state.routes.lock().expect("lock").get(&path).cloned();
    let Some(route) = route else {
        return Response::builder()
            .status(404)
            .body(Body::from("no such fixture"))
            .expect("response");
    };
    if let Some(d) = route.delay {
        tokio::time::sleep(d).await;
    }
    let inm = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok());
    if route.etag.is_some() && inm == route.etag.as_deref() {
        return Response::builder()
            .status(StatusCode::NOT_MODIFIED)
            .body(Body::empty())
            .expect("response");
    }
    let mut b = Response::builder()
        .status(route.status)
        .header(header::CONTENT_TYPE, route.content_type.clone());
    if let Some(e) = &route.etag {
        b = b.header(header::ETAG, e);
    }
    if let Some(lm) = &route.last_modified {
        b = b.header(header::LAST_MODIFIED, lm);
    }
    b.body(Body::from(route.body)).expect("response")
}

pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture_path(name)).expect("fixture exists")
}

/// Writes a feeds.toml into `dir` (with `store` inside it) and loads it.
/// `sources` are (name, url, interval).
pub fn config(dir: &Path, sources: &[(&str, &str, &str)], extra: &str) -> Config {
    let mut text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\nbase_url = \"http://feeds.test\"\n\n\
         [publish]\ntitle = \"Test river\"\ndescription = \"Everything, combined\"\nmax_items = 500\n\n\
         [fetch]\n{extra}\n"
    );
    for (name, url, interval) in sources {
        text.push_str(&format!(
            "[[source]]\nname = \"{name}\"\nurl = \"{url}\"\ninterval = \"{interval}\"\n\n"
        ));
    }
    let path = dir.join("feeds.toml");
    std::fs::write(&path, text).expect("write config");
    config::load(&path).expect("valid test config")
}

/// GET `url`; returns status, Content-Type and body.
pub async fn get(url: &str) -> (u16, String, String) {
    let response = reqwest::get(url).await.expect("request succeeds");
    let status = response.status().as_u16();
    let ct = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, ct, response.text().await.expect("body"))
}

/// Checks what the W3C Feed Validator checks most often for Atom, and returns the feed.
/// atom_syndication's reader is strict: any non-RFC 3339 date fails the parse.
pub fn assert_valid_atom(xml: &str, self_url: &str) -> atom_syndication::Feed {
    let feed: atom_syndication::Feed = xml.parse().expect("well-formed, strictly valid Atom");
    assert!(!feed.title.value.is_empty(), "feed title");
    assert!(!feed.id.is_empty(), "feed id");
    assert!(
        !feed.authors.is_empty(),
        "a feed-level author covers entries without one"
    );
    let selfs: Vec<_> = feed.links.iter().filter(|l| l.rel == "self").collect();
    assert_eq!(selfs.len(), 1, "one self link");
    assert_eq!(
        selfs[0].href, self_url,
        "self link equals the requested URL"
    );
    let mut ids = HashSet::new();
    for e in &feed.entries {
        assert!(ids.insert(e.id.clone()), "duplicate Atom id {}", e.id);
        assert!(e.id.starts_with("urn:uuid:"), "{}", e.id);
        assert!(!e.title.value.is_empty(), "entry title");
        assert_eq!(e.title.r#type, atom_syndication::TextType::Text);
        assert!(
            e.content.is_some() || e.links.iter().any(|l| l.rel == "alternate"),
            "an entry needs content or an alternate link"
        );
        for l in &e.links {
            let u = url::Url::parse(&l.href).expect("absolute link");
            assert!(matches!(u.scheme(), "http" | "https"), "{}", l.href);
        }
        if let Some(s) = &e.source {
            assert!(
                !s.id.is_empty() && !s.title.value.is_empty(),
                "source id and title"
            );
        }
    }
    feed
}

/// Checks what the W3C Feed Validator checks most often for RSS 2.0, and returns the channel.
pub fn assert_valid_rss(xml: &str, self_url: &str) -> rss::Channel {
    let channel = rss::Channel::read_from(xml.as_bytes()).expect("well-formed RSS");
    assert!(
        !channel.title.is_empty() && !channel.link.is_empty() && !channel.description.is_empty()
    );
    let atom = channel.atom_ext.as_ref().expect("atom:link rel=self");
    assert!(
        atom.links
            .iter()
            .any(|l| l.rel == "self" && l.href == self_url)
    );
    let mut guids = HashSet::new();
    for item in &channel.items {
        let guid = item.guid.as_ref().expect("every item has a guid");
        assert!(
            guids.insert(guid.value.clone()),
            "duplicate guid {}",
            guid.value
        );
        assert!(item.title.is_some() || item.description.is_some());
        let date = item.pub_date.as_deref().expect("pubDate");
        chrono::DateTime::parse_from_rfc2822(date).expect("pubDate is RFC 822");
        if let Some(link) = &item.link {
            url::Url::parse(link).expect("absolute link");
        }
        if let Some(enc) = &item.enclosure {
            url::Url::parse(&enc.url).expect("absolute enclosure");
            enc.length.parse::<u64>().expect("numeric enclosure length");
        }
    }
    if let Some(d) = &channel.last_build_date {
        chrono::DateTime::parse_from_rfc2822(d).expect("lastBuildDate is RFC 822");
    }
    channel
}
