//! The WebSub subscriber's callback, `/websub/callback/{token}`: the hub's verification of
//! intent (GET, answered by echoing `hub.challenge` only for a request we made) and its
//! deliveries (POST, read up to `[fetch] max_body_mb` within `[fetch] timeout`, then handed
//! to `daemon/websub.rs`, which checks the signature and stores the document off the
//! request). A delivery is answered at once: 202, or 410 for a subscription we do not have
//! (before its body is read), or 413 when its `Content-Length` is over the cap.
//!
//! A denial's `hub.reason` is made printable by `daemon/websub.rs` before anything keeps
//! or prints it.

use std::collections::HashMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::state::AppState;
use crate::daemon::websub::Delivered;

/// GET: the hub verifies a subscribe or unsubscribe (or says it denied one).
pub(super) async fn verify(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let websub = &state.websub;
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
    let websub = &state.websub;
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
        return too_big(websub, &token).await;
    }
    let limit = usize::try_from(max).unwrap_or(usize::MAX);
    let read = tokio::time::timeout(timeout, axum::body::to_bytes(request.into_body(), limit));
    let body = match read.await {
        Ok(Ok(body)) => Vec::from(body),
        Ok(Err(_)) => {
            // Over the cap (or broken off): not read further.
            return too_big(websub, &token).await;
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

/// A delivery over the body cap: counted, and answered 413 (410 if the subscription went
/// meanwhile).
async fn too_big(websub: &crate::daemon::websub::Websub, token: &str) -> Response {
    match websub.too_big(token).await {
        Delivered::Unknown => StatusCode::GONE.into_response(),
        _ => StatusCode::PAYLOAD_TOO_LARGE.into_response(),
    }
}
