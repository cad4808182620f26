//! A feed origin for the poll-cycle benchmark (`bench/poll-cycle.sh`): many sources'
//! feeds, spread over many loopback addresses so that per-host limits behave as with real
//! hosts.
//!
//! ```text
//! cargo run --release --example bench_origin -- --hosts 50 --port 18500 --mode etag
//! ```
//!
//! `GET /feed/{i}.xml` answers an RSS feed of 20 entries (about 20 KB) for source `i`. In
//! `etag` mode it carries an ETag and answers 304 to a matching If-None-Match; in `always`
//! mode it always answers 200 with the same bytes (a server without validators).
//! It listens on 127.0.0.2 ... 127.0.0.(1 + hosts), all on `port`, and prints `ready`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Opts {
    hosts: u8,
    port: u16,
    always_200: bool,
}

fn opts() -> Result<Opts, String> {
    let mut o = Opts {
        hosts: 50,
        port: 18500,
        always_200: false,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args
            .get(i + 1)
            .ok_or(format!("{} needs a value", args[i]))?;
        match args[i].as_str() {
            "--hosts" => o.hosts = value.parse().map_err(|e| format!("--hosts: {e}"))?,
            "--port" => o.port = value.parse().map_err(|e| format!("--port: {e}"))?,
            "--mode" => o.always_200 = value == "always",
            other => return Err(format!("unknown option {other}")),
        }
        i += 2;
    }
    Ok(o)
}

/// Source `i`'s feed: 20 entries, each with a paragraph of text.
fn feed(i: u64) -> String {
    let mut s = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Source {i}</title><link>https://source{i}.example/</link><description>Benchmark source {i}</description>"#
    );
    for n in 0..20 {
        s.push_str(&format!(
            "<item><guid>https://source{i}.example/post/{n}</guid><title>Post {n} of source {i}</title>\
             <link>https://source{i}.example/post/{n}</link><pubDate>Mon, 03 Mar 2025 {:02}:{:02}:00 GMT</pubDate>\
             <description>&lt;p&gt;{}&lt;/p&gt;</description></item>",
            n % 24,
            (i % 60),
            "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur. Excepteur sint occaecat cupidatat non proident. Sunt in culpa qui officia deserunt mollit anim id est laborum. Curabitur pretium tincidunt lacus, nulla gravida orci a odio, nullam varius turpis et commodo pharetra, est eros bibendum elit."
        ));
    }
    s.push_str("</channel></rss>");
    s
}

async fn serve(
    State(always_200): State<Arc<bool>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(i) = file
        .strip_suffix(".xml")
        .and_then(|n| n.parse::<u64>().ok())
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let etag = format!("\"v1-{i}\"");
    if !*always_200
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            == Some(etag.as_str())
    {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    let body = feed(i);
    if *always_200 {
        ([(header::CONTENT_TYPE, "application/rss+xml")], body).into_response()
    } else {
        (
            [
                (header::CONTENT_TYPE, "application/rss+xml".to_string()),
                (header::ETAG, etag),
            ],
            body,
        )
            .into_response()
    }
}

#[tokio::main]
async fn main() -> Result<(), String> {
    let o = opts()?;
    let app = axum::Router::new()
        .route("/feed/{file}", axum::routing::get(serve))
        .with_state(Arc::new(o.always_200));
    let mut tasks = Vec::new();
    for h in 0..o.hosts {
        let ip = std::net::Ipv4Addr::new(127, 0, 0, 2 + h);
        let listener = tokio::net::TcpListener::bind((ip, o.port))
            .await
            .map_err(|e| format!("bind {ip}:{}: {e}", o.port))?;
        let app = app.clone();
        tasks.push(tokio::spawn(
            async move { axum::serve(listener, app).await },
        ));
    }
    println!("ready");
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
