//! The HTTP handlers of the client API (`/v1/...`) and [`ApiJson`], the JSON extractor
//! that turns every malformed body into the API's error shape. Runs inside `any serve`.
//!
//! Bodies are the types of `any_protocol::api`; this file only validates and converts
//! them at the edge (wire request → [`NewCall`]).

use std::time::Duration;

use any_protocol::VERSION;
use any_protocol::api::{CallRequest, CallSuccess, DEFAULT_TIMEOUT_MS, Health, Status};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::calls::NewCall;
use crate::{AppState, BODY_LIMIT, Error};

/// The longest deadline a call may ask for: one day. Longer is surely a unit mistake.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// A JSON request body. Anything wrong with it (content type, size, syntax, types,
/// unknown fields) becomes an [`Error`], answered in the API's error shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let is_json = content_type.is_some_and(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        });
        if !is_json {
            return Err(Error::BadRequest(format!(
                "the request body must be JSON sent with `Content-Type: application/json` (got {})",
                content_type.map_or_else(|| "no content type".to_owned(), |ct| format!("{ct:?}"))
            )));
        }
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                Error::TooLarge(too_large_message(declared))
            } else {
                Error::BadRequest(format!(
                    "could not read the request body: {}",
                    rejection.body_text()
                ))
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(ApiJson)
            .map_err(|e| Error::BadRequest(format!("invalid request body: {e}")))
    }
}

fn too_large_message(declared: Option<u64>) -> String {
    match declared {
        Some(n) => {
            format!("the request body is {n} bytes; the limit is {BODY_LIMIT} bytes (64 MiB)")
        }
        None => format!("the request body exceeds the limit of {BODY_LIMIT} bytes (64 MiB)"),
    }
}

/// `GET /v1/health`.
pub async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        ok: true,
        version: crate::VERSION.to_owned(),
        extensions: state.hub.extension_count(),
    })
}

/// `GET /v1/status`.
pub async fn status(State(state): State<AppState>) -> Json<Status> {
    Json(state.hub.status())
}

/// `POST /v1/call`: runs one call and answers with its single outcome.
pub async fn call(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<CallRequest>,
) -> Result<Json<CallSuccess>, Error> {
    start(state, validate(request)?).await
}

/// Runs a validated call (a method, or an ad-hoc script) to its answer, within the
/// `--max-calls` limit.
pub(crate) async fn start(state: AppState, new: NewCall) -> Result<Json<CallSuccess>, Error> {
    // Held until the call ends (or the caller goes away and this future is dropped).
    let Ok(_slot) = state.call_slots.clone().try_acquire_owned() else {
        let max = state.config.max_calls;
        tracing::warn!(
            "refused a call of {} on {}: {max} calls are in flight",
            new.method,
            new.page
        );
        return Err(Error::TooManyCalls(format!(
            "the any server already runs {max} calls (its limit, `any serve --max-calls`); \
             this one was not started: retry when some have finished"
        )));
    };
    let (id, outcome) = state.hub.call(new).await;
    match outcome {
        Ok(result) => Ok(Json(CallSuccess {
            v: VERSION,
            id,
            result,
        })),
        Err(body) => Err(Error::Call { id, body }),
    }
}

/// Checks a call request and converts it into the task table's terms.
pub(crate) fn validate(request: CallRequest) -> Result<NewCall, Error> {
    let CallRequest {
        page,
        method,
        params,
        timeout_ms,
        browser,
        tab,
    } = request;
    let scheme_ok = ["http://", "https://", "file://"]
        .iter()
        // Bytes, not `&page[..n]`: a multi-byte character across `n` must not panic.
        .any(|s| {
            page.len() > s.len() && page.as_bytes()[..s.len()].eq_ignore_ascii_case(s.as_bytes())
        });
    if !scheme_ok {
        return Err(Error::BadRequest(format!(
            "`page` must be an absolute http://, https:// or file:// URL, got {page:?}"
        )));
    }
    if method.is_empty() || method.chars().any(char::is_whitespace) {
        return Err(Error::BadRequest(format!(
            "`method` must be the name of a function on globalThis.__any__, got {method:?}"
        )));
    }
    let timeout_ms = timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS);
    if timeout_ms == 0 || timeout_ms > MAX_TIMEOUT_MS {
        return Err(Error::BadRequest(format!(
            "`timeout_ms` must be between 1 and {MAX_TIMEOUT_MS} (one day), got {timeout_ms}"
        )));
    }
    let params = match params {
        Some(p) if p.get() != "null" => p,
        _ => crate::calls::empty_params(),
    };
    Ok(NewCall {
        page,
        method,
        params,
        timeout: Duration::from_millis(timeout_ms),
        browser: browser.filter(|b| !b.is_empty()),
        tab: tab.unwrap_or_default(),
        script: None,
    })
}

/// The answer of `POST /v1/shutdown`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShutdownAck {
    pub ok: bool,
    /// The process that is stopping.
    pub pid: u32,
}

/// `POST /v1/shutdown`: stops the server gracefully once this answer is sent.
pub async fn shutdown(State(state): State<AppState>) -> Json<ShutdownAck> {
    tracing::info!("shutdown requested over HTTP");
    state.shutdown.send_replace(true);
    Json(ShutdownAck {
        ok: true,
        pid: std::process::id(),
    })
}

/// `GET /v1/openapi.json`.
pub async fn openapi() -> Json<serde_json::Value> {
    Json(crate::openapi::document())
}

/// Any other path or method, answered in the API's error shape.
pub async fn no_route(method: Method, uri: Uri) -> Error {
    let known = crate::routes().into_iter().any(|r| r.path == uri.path());
    let (status, what) = if known {
        (
            StatusCode::METHOD_NOT_ALLOWED,
            "this method is not allowed on",
        )
    } else {
        (StatusCode::NOT_FOUND, "there is no endpoint")
    };
    Error::NoRoute {
        status,
        message: format!(
            "{what} {method} {}; the API is described at GET /v1/openapi.json",
            uri.path()
        ),
    }
}
