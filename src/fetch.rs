//! Retrieves a source's bytes: HTTP(S) with conditional GET, or a local `file://`.
//!
//! Every limit is enforced here so later stages can trust their input's size: a connect and a
//! total timeout, at most five redirects, and a cap on the (decompressed) body, checked while
//! streaming so an endless or bomb-like body is cut off without being held in memory.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

use crate::config::FetchConfig;

/// The validators of the previous successful response, sent back as a conditional GET.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// A successful fetch.
#[derive(Debug)]
pub enum Fetched {
    /// 304 Not Modified (or an unchanged local file).
    NotModified { status: u16 },
    /// A full body to parse.
    Body(Body),
}

#[derive(Debug)]
pub struct Body {
    pub status: u16,
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// The URL after redirects: the base for relative links.
    pub final_url: Url,
    /// Validators to keep for the next poll.
    pub validators: Validators,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("HTTP {status}{}", reason.map(|r| format!(" {r}")).unwrap_or_default())]
    Status {
        status: u16,
        reason: Option<&'static str>,
    },
    #[error("too many redirects (more than 5) or a redirect loop")]
    Redirects,
    #[error("response too large: more than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("empty response")]
    Empty,
    #[error("cannot read {path}: {error}")]
    File { path: String, error: std::io::Error },
    #[error("{0}")]
    Other(String),
}

/// The HTTP client and limits shared by every poll.
#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    timeout: Duration,
    max_body: u64,
}

impl Fetcher {
    pub fn new(config: &FetchConfig) -> Result<Fetcher, FetchError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static(
                "application/atom+xml, application/rss+xml, application/rdf+xml, application/feed+json, application/json;q=0.9, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5",
            ),
        );
        let client = reqwest::Client::builder()
            .user_agent(config.user_agent.clone())
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::limited(5))
            .gzip(true)
            .brotli(true)
            .deflate(true)
            .build()
            .map_err(|e| FetchError::Other(format!("cannot build the HTTP client: {e}")))?;
        Ok(Fetcher {
            client,
            timeout: config.timeout,
            max_body: config.max_body_bytes,
        })
    }

    /// Fetches `url`, sending `validators` as If-None-Match / If-Modified-Since.
    pub async fn fetch(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        if url.scheme() == "file" {
            return self.fetch_file(url, validators).await;
        }
        let mut request = self.client.get(url.clone());
        if let Some(etag) = &validators.etag {
            request = request.header(header::IF_NONE_MATCH, etag);
        }
        if let Some(lm) = &validators.last_modified {
            request = request.header(header::IF_MODIFIED_SINCE, lm);
        }
        let mut response = request.send().await.map_err(|e| self.classify(e))?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Fetched::NotModified {
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
                reason: status.canonical_reason(),
            });
        }
        let header_str = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header_str(header::CONTENT_TYPE);
        let new_validators = Validators {
            etag: header_str(header::ETAG),
            last_modified: header_str(header::LAST_MODIFIED),
        };
        let final_url = response.url().clone();
        if let Some(len) = response.content_length()
            && len > self.max_body
        {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.classify(e))? {
            if bytes.len() as u64 + chunk.len() as u64 > self.max_body {
                return Err(FetchError::TooLarge {
                    limit: self.max_body,
                });
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FetchError::Empty);
        }
        Ok(Fetched::Body(Body {
            status: status.as_u16(),
            bytes,
            content_type,
            final_url,
            validators: new_validators,
        }))
    }

    /// A local file: its size and modification time stand in for an ETag, so an unchanged
    /// file is "not modified" like a 304.
    async fn fetch_file(&self, url: &Url, validators: &Validators) -> Result<Fetched, FetchError> {
        let path = url
            .to_file_path()
            .map_err(|()| FetchError::Other(format!("{url} is not a local file path")))?;
        let file_err = |error| FetchError::File {
            path: path.display().to_string(),
            error,
        };
        let meta = tokio::fs::metadata(&path).await.map_err(file_err)?;
        if meta.len() > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        let modified = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let etag = format!("\"file-{}-{}\"", meta.len(), modified);
        if validators.etag.as_deref() == Some(etag.as_str()) {
            return Ok(Fetched::NotModified { status: 304 });
        }
        let bytes = tokio::fs::read(&path).await.map_err(file_err)?;
        if bytes.len() as u64 > self.max_body {
            return Err(FetchError::TooLarge {
                limit: self.max_body,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FetchError::Empty);
        }
        Ok(Fetched::Body(Body {
            status: 200,
            bytes,
            content_type: None,
            final_url: url.clone(),
            validators: Validators {
                etag: Some(etag),
                last_modified: None,
            },
        }))
    }

    fn classify(&self, e: reqwest::Error) -> FetchError {
        if e.is_timeout() {
            FetchError::Timeout(self.timeout)
        } else if e.is_redirect() {
            FetchError::Redirects
        } else if e.is_connect() {
            FetchError::Connect(error_chain(&e))
        } else {
            FetchError::Other(error_chain(&e))
        }
    }
}

/// reqwest's top-level message is vague ("error sending request"); the cause says what failed.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
