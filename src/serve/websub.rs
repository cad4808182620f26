//! The WebSub subscriber's callback, `/websub/callback/{token}`: the hub's verification of
//! intent (GET, answered by echoing `hub.challenge` only for a request we made) and its
//! deliveries (POST, read up to `[fetch] max_body_mb` within `[fetch] timeout`, then handed
//! to `daemon/websub.rs`, which checks the signature and stores the document off the
//! request). A delivery is answered at once: 202, or 410 for a subscription we do not have
//! (before its body is read), or 413 when its `Content-Length` is over the cap.
//!
//! A denial's `hub.reason` is the hub's text: it is cut to [`MAX_REASON`] characters and
//! its control characters are replaced before anything keeps or prints it.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::state::AppState;
use crate::daemon::websub::Delivered;

/// A denial's `hub.reason` kept, in characters at most.
pub const MAX_REASON: usize = 300;

/// GET: the hub verifies a subscribe or unsubscribe (or says it denied one).
pub(super) async fn verify(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(mut query): Query<HashMap<String, String>>,
) -> Response {
    let Some(websub) = state.websub.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if let Some(reason) = query.get_mut("hub.reason") {
        *reason = printable(reason);
    }
    match websub.verify(&token, &query).await {
        Some(challenge) => (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            challenge,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// POST: a delivery.
pub(super) async fn deliver(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let Some(websub) = state.websub.as_ref() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    // A token that takes no delivery costs no read of the body.
    if !websub.takes(&token) {
        return StatusCode::GONE.into_response();
    }
    let headers = request.headers();
    let signature = headers
        .get("x-hub-signature")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (max, timeout) = websub.body_bounds();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return match websub.too_big(&token).await {
            Delivered::Unknown => StatusCode::GONE.into_response(),
            _ => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
        };
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(request.into_body(), limit));
    let body = match read.await {
        Ok(Ok(body)) => Vec::from(body),
        Ok(Err(_)) => {
            // Over the cap (or broken off): not read further.
            return match websub.too_big(&token).await {
                Delivered::Unknown => StatusCode::GONE.into_response(),
                _ => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
            };
        }
        Err(_) => return StatusCode::REQUEST_TIMEOUT.into_response(),
    };
    match websub
        .deliver(&token, signature.as_deref(), content_type, body)
        .await
    {
        Delivered::Unknown => StatusCode::GONE.into_response(),
        Delivered::Accepted | Delivered::Rejected => StatusCode::ACCEPTED.into_response(),
        Delivered::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(
                header::RETRY_AFTER,
                crate::daemon::websub::BUSY_RETRY_AFTER.to_string(),
            )],
        )
            .into_response(),
    }
}

/// `text` cut to [`MAX_REASON`] characters, with control characters (terminal escapes,
/// line breaks, NUL) and invisible format characters (bidirectional overrides, zero-width
/// characters, line and paragraph separators) replaced by spaces: what a hub writes must
/// not forge lines, colours or reading order in logs and `tributary status`.
fn printable(text: &str) -> String {
    text.chars()
        .take(MAX_REASON)
        .map(|c| {
            if c.is_control() || invisible(c) {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// Unicode format characters that change how text around them shows.
fn invisible(c: char) -> bool {
    matches!(c,
        '\u{00AD}' | '\u{061C}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}'
        | '\u{2060}'..='\u{2069}' | '\u{FEFF}' | '\u{FFF9}'..='\u{FFFB}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reason_loses_its_control_characters_and_its_excess() {
        let hostile = "\u{1b}[31mRED\u{1b}[0m\u{1b}]0;PWNED\u{7}\r\n  reason: FAKE\u{0}nul";
        let clean = printable(hostile);
        assert!(!clean.chars().any(char::is_control), "{clean:?}");
        assert!(clean.contains("RED") && clean.contains("FAKE"));
        let bidi = printable("ok\u{202E}txt.exe\u{200B}\u{2028}next");
        assert_eq!(bidi, "ok txt.exe  next");
        assert_eq!(printable(&"é".repeat(1000)).chars().count(), MAX_REASON);
    }
}
