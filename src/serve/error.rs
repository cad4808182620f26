//! Why a request could not be answered, and what the reader gets for it.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;
use crate::store::search::SearchError;

/// Why a request could not be answered (the reader sees a 500 without the details, the log
/// has them; or a 503 for a search that took too long).
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

/// The reader's answer to a failed request: a 503 for a search that ran out of time (it
/// says how to narrow the search; the daemon is fine), else a 500 without the details (the
/// error, with its causes, goes to the log).
pub(super) fn error_response(e: &ServeError) -> Response {
    if let ServeError::Search(slow @ SearchError::TooSlow) = e {
        tracing::info!(error = %slow, "search refused");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(axum::http::header::RETRY_AFTER, "60")],
            format!("{slow}\n"),
        )
            .into_response();
    }
    let chain = crate::with_causes(e, ": ");
    tracing::error!(error = %chain, "request failed");
    let text = match e {
        ServeError::Template(_) => "internal error: the page's template failed\n",
        ServeError::Search(_) => "internal error: the search index could not be read\n",
        _ => "internal error: the store could not be read\n",
    };
    (StatusCode::INTERNAL_SERVER_ERROR, text).into_response()
}

#[cfg(test)]
mod tests {
    use super::{ServeError, error_response};
    use crate::store::search::SearchError;
    use axum::http::StatusCode;

    #[tokio::test]
    async fn a_search_out_of_time_is_a_503_that_says_how_to_narrow_it() {
        let r = error_response(&ServeError::Search(SearchError::TooSlow));
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[axum::http::header::RETRY_AFTER], "60");
        let body = axum::body::to_bytes(r.into_body(), 1 << 16)
            .await
            .expect("reads");
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("longer than 250 ms") && text.contains("after:"),
            "{text}"
        );
    }
}
