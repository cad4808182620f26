//! HTTP cache semantics as a poller needs them: the validators of a response, sent back as
//! a conditional GET; how long a response stays fresh (`Cache-Control`, `Expires`, judged
//! by `http-cache-semantics` as a private cache); and how long a server asks us to wait
//! (`Retry-After`). The scheduler honours the last two.

use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap, HeaderValue};
use url::Url;

/// The validators of the previous successful response, sent back as a conditional GET.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    /// The validators a response gives: its ETag, and its Last-Modified when that is a date
    /// (one that is not is useless as a validator).
    pub(super) fn of_response(headers: &HeaderMap) -> Validators {
        let header_str = |name: header::HeaderName| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Validators {
            etag: header_str(header::ETAG),
            last_modified: header_str(header::LAST_MODIFIED)
                .filter(|lm| httpdate::parse_http_date(lm).is_ok()),
        }
    }

    /// Adds `If-None-Match` and `If-Modified-Since` for these validators to `headers`.
    pub(super) fn add_conditions(&self, headers: &mut HeaderMap) {
        if let Some(v) = self
            .etag
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            headers.insert(header::IF_NONE_MATCH, v);
        }
        if let Some(v) = self
            .last_modified
            .as_deref()
            .and_then(|e| HeaderValue::from_str(e).ok())
        {
            headers.insert(header::IF_MODIFIED_SINCE, v);
        }
    }
}

/// How long the server says this response stays fresh, judged as a private cache would
/// (RFC 9111 via `http-cache-semantics`). No heuristics from Last-Modified: only what the
/// server said. `Expires: 0`, `no-store`, `max-age=0` and the like give nothing.
pub(super) fn freshness(
    url: &Url,
    request_headers: &HeaderMap,
    status: StatusCode,
    response_headers: &HeaderMap,
) -> Option<Duration> {
    let mut request = http::Request::get(url.as_str()).body(()).ok()?;
    *request.headers_mut() = request_headers.clone();
    let mut response = http::Response::builder().status(status).body(()).ok()?;
    *response.headers_mut() = response_headers.clone();
    let options = http_cache_semantics::CacheOptions {
        shared: false,
        cache_heuristic: 0.0,
        ..Default::default()
    };
    let policy = http_cache_semantics::CachePolicy::new_options(
        &request,
        &response,
        SystemTime::now(),
        options,
    );
    if !policy.is_storable() {
        return None;
    }
    // Whole seconds: the policy's own clock reading makes the rest noise.
    let ttl = policy.time_to_live(SystemTime::now()).as_secs_f64().round();
    Some(Duration::from_secs(ttl as u64)).filter(|d| !d.is_zero())
}

/// For a 429 or 503: how long the server asks us to wait (`Retry-After`); `None` for other
/// statuses or without a readable header.
pub(super) fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if !matches!(
        status,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        return None;
    }
    headers
        .get(header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// `Retry-After`: delay-seconds or an HTTP date (RFC 9110 §10.2.3).
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderName;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 2015-10-21 07:28:00
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:38:00 GMT", now),
            Some(Duration::from_secs(600))
        );
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_str(v).expect("value"),
            );
        }
        h
    }

    fn fresh(pairs: &[(&str, &str)]) -> Option<Duration> {
        let url = Url::parse("http://example.org/feed").expect("url");
        freshness(&url, &HeaderMap::new(), StatusCode::OK, &headers(pairs))
    }

    #[test]
    fn freshness_from_max_age_and_expires_but_not_from_useless_hints() {
        assert_eq!(
            fresh(&[("cache-control", "max-age=3600")]),
            Some(Duration::from_secs(3600))
        );
        assert_eq!(
            fresh(&[("cache-control", "max-age=3600"), ("age", "600")]),
            Some(Duration::from_secs(3000))
        );
        let date = httpdate::fmt_http_date(SystemTime::now());
        let later = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(7200));
        let got = fresh(&[("date", &date), ("expires", &later)]).expect("fresh");
        assert!(
            got > Duration::from_secs(7100) && got <= Duration::from_secs(7200),
            "{got:?}"
        );
        assert_eq!(fresh(&[("expires", "0")]), None);
        assert_eq!(fresh(&[("cache-control", "no-store, max-age=3600")]), None);
        assert_eq!(fresh(&[("cache-control", "max-age=0")]), None);
        // Last-Modified alone is no promise.
        assert_eq!(
            fresh(&[("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT")]),
            None
        );
    }

    #[test]
    fn validators_round_trip_as_conditions() {
        let v = Validators::of_response(&headers(&[
            ("etag", "\"abc\""),
            ("last-modified", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ]));
        assert_eq!(v.etag.as_deref(), Some("\"abc\""));
        let mut h = HeaderMap::new();
        v.add_conditions(&mut h);
        assert_eq!(h[header::IF_NONE_MATCH], "\"abc\"");
        assert_eq!(
            h[header::IF_MODIFIED_SINCE],
            "Wed, 21 Oct 2015 07:28:00 GMT"
        );
        // A Last-Modified that is no date is not kept.
        let v = Validators::of_response(&headers(&[("last-modified", "yesterday")]));
        assert_eq!(v, Validators::default());
    }
}
