//! Why a request could not be answered, and the 500 the reader gets for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

/// Why a request could not be answered (the reader sees a 500 without the details; the log
/// has them).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("compressing a document failed")]
    Compress(#[source] std::io::Error),
    #[error("a render or compression stopped unfinished")]
    Task(#[from] tokio::task::JoinError),
    #[error("the render permits are closed")]
    Closed(#[from] tokio::sync::AcquireError),
    #[error("rendering the page failed")]
    Template(#[from] crate::render::river::TemplateError),
    #[error("writing the status as JSON failed")]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Search(#[from] crate::store::search::SearchError),
}

/// A 500 for the reader; the error with its causes for the log.
pub(super) fn internal_error(e: &ServeError) -> Response {
    let chain = crate::with_causes(e, ": ");
    tracing::error!(error = %chain, "request failed");
    let text = match e {
        ServeError::Template(_) => "internal error: the page's template failed\n",
        ServeError::Search(_) => "internal error: the search index could not be read\n",
        _ => "internal error: the store could not be read\n",
    };
    (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
}
