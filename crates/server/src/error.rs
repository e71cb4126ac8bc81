//! The one error type of the HTTP side of `any serve`: every failure a handler can
//! return, answered in the API's single error shape (`api::CallFailure`) with the
//! status of its code.

use any_protocol::api::CallFailure;
use any_protocol::{CallId, ErrorBody, ErrorCode, VERSION};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A failed request or call.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or invalid (400 `bad_request`).
    #[error("{0}")]
    BadRequest(String),
    /// The body exceeds [`crate::BODY_LIMIT`] (413 `too_large`).
    #[error("{0}")]
    TooLarge(String),
    /// The request came from a place the server does not serve: a web page's Origin, a
    /// foreign Host (403 `forbidden`). See `access.rs`.
    #[error("{0}")]
    Forbidden(String),
    /// The token is missing or wrong (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(String),
    /// An ad-hoc script without `--allow-scripts` (403 `scripts_disabled`).
    #[error("{0}")]
    ScriptsDisabled(String),
    /// `--max-calls` calls are already in flight (429 `too_many_calls`).
    #[error("{0}")]
    TooManyCalls(String),
    /// No route has this path, or not with this method (404/405, code `bad_request`).
    #[error("{message}")]
    NoRoute { status: StatusCode, message: String },
    /// The call ran and failed; `body` says how.
    #[error("{}", .body.message)]
    Call { id: CallId, body: ErrorBody },
}

impl Error {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            Error::NoRoute { status, .. } => *status,
            other => StatusCode::from_u16(other.code().http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        }
    }

    /// The protocol error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::BadRequest(_) | Error::NoRoute { .. } => ErrorCode::BadRequest,
            Error::Forbidden(_) => ErrorCode::Forbidden,
            Error::Unauthorized(_) => ErrorCode::Unauthorized,
            Error::TooManyCalls(_) => ErrorCode::TooManyCalls,
            Error::ScriptsDisabled(_) => ErrorCode::ScriptsDisabled,
            Error::TooLarge(_) => ErrorCode::TooLarge,
            Error::Call { body, .. } => body.code,
        }
    }

    /// The body of the answer.
    pub fn into_failure(self) -> CallFailure {
        let code = self.code();
        match self {
            Error::Call { id, body } => CallFailure {
                v: VERSION,
                id: Some(id),
                error: body,
            },
            other => CallFailure {
                v: VERSION,
                id: None,
                error: ErrorBody::new(code, other.to_string()),
            },
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        let challenge = matches!(self, Error::Unauthorized(_));
        let mut response = (status, Json(self.into_failure())).into_response();
        if challenge {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"any\""),
            );
        }
        response
    }
}
