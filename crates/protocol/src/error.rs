//! The error shape every failed call ends in, on the socket and on the client API.

use serde::{Deserialize, Serialize};

use crate::Stage;

/// A failed call: `{code, name, message, stack?, stage?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub code: ErrorCode,
    /// For `page_error`, the page's own `error.name` (e.g. `"TypeError"`); otherwise the
    /// code's [`ErrorCode::name`].
    pub name: String,
    /// Human-readable; says what happened and, where there is one, what to do.
    pub message: String,
    /// For `page_error`, the page's own stack trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
    /// How far the call got before it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<Stage>,
}

impl ErrorBody {
    /// An infrastructure error: `name` is derived from `code`.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            name: code.name().to_owned(),
            message: message.into(),
            stack: None,
            stage: None,
        }
    }

    /// The same error, recording the stage the call had reached.
    pub fn at(mut self, stage: Stage) -> Self {
        self.stage = Some(stage);
        self
    }
}

/// The closed set of error codes. Adding one is a protocol change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No extension is connected (or none with the requested label) after the bounded
    /// wait. HTTP 503.
    NoExtension,
    /// The call's deadline passed; the message says which stage it had reached. HTTP 504.
    Timeout,
    /// The request is malformed or invalid. HTTP 400.
    BadRequest,
    /// `globalThis.__any__[method]` never appeared on the page. HTTP 404.
    MethodNotFound,
    /// The method threw or rejected; `name`, `message` and `stack` are the page's own.
    /// HTTP 422: the server and the extension are fine, the page's code failed.
    PageError,
    /// The tab could not load `page`. HTTP 502.
    NavigationFailed,
    /// The tab was closed, or navigated away, while the call was running. HTTP 502.
    TabClosed,
    /// The method's result cannot be represented; the message names the path
    /// (e.g. `$.items[3]`). HTTP 422.
    NotSerializable,
    /// The extension running the call disconnected before answering. HTTP 502.
    ExtensionDisconnected,
    /// A peer broke the protocol (bad frame, wrong version). HTTP 502.
    ProtocolError,
    /// A request, frame or result exceeds the documented size limit. HTTP 413.
    TooLarge,
    /// The client API needs `Authorization: Bearer <token>` with the user's token (the
    /// file `~/.local/share/any/token`; `any token` prints it). HTTP 401.
    Unauthorized,
    /// The request came from somewhere the server does not serve: a web page's `Origin`,
    /// a `Host` that is not this server's loopback address (DNS rebinding), or an origin
    /// other than the extension's on the extension socket. HTTP 403.
    Forbidden,
    /// The server already runs its maximum number of calls (`any serve --max-calls`);
    /// nothing was started. Retry when some have finished. HTTP 429.
    TooManyCalls,
    /// Ad-hoc scripts (`POST /v1/run`) are refused: the server was not started with
    /// `any serve --allow-scripts`, or the browser's "Allow User Scripts" switch for the
    /// any extension is off (the message says which, and what to switch on). HTTP 403.
    ScriptsDisabled,
    /// No script can run in the document at `page`, so it can have no methods: it is
    /// sandboxed by its Content-Security-Policy (`sandbox` without `allow-scripts`), or
    /// it is a page the browser does not let extensions script (`chrome://`, the web
    /// store, `file://` without "Allow access to file URLs"). The message names the
    /// cause. HTTP 422.
    NotScriptable,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 16] = [
        ErrorCode::NoExtension,
        ErrorCode::Timeout,
        ErrorCode::BadRequest,
        ErrorCode::MethodNotFound,
        ErrorCode::PageError,
        ErrorCode::NavigationFailed,
        ErrorCode::TabClosed,
        ErrorCode::NotSerializable,
        ErrorCode::ExtensionDisconnected,
        ErrorCode::ProtocolError,
        ErrorCode::TooLarge,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::TooManyCalls,
        ErrorCode::ScriptsDisabled,
        ErrorCode::NotScriptable,
    ];

    /// The wire name, e.g. `"method_not_found"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NoExtension => "no_extension",
            ErrorCode::Timeout => "timeout",
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::MethodNotFound => "method_not_found",
            ErrorCode::PageError => "page_error",
            ErrorCode::NavigationFailed => "navigation_failed",
            ErrorCode::TabClosed => "tab_closed",
            ErrorCode::NotSerializable => "not_serializable",
            ErrorCode::ExtensionDisconnected => "extension_disconnected",
            ErrorCode::ProtocolError => "protocol_error",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::TooManyCalls => "too_many_calls",
            ErrorCode::ScriptsDisabled => "scripts_disabled",
            ErrorCode::NotScriptable => "not_scriptable",
        }
    }

    /// The error `name` used for infrastructure errors, e.g. `"MethodNotFound"`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::NoExtension => "NoExtension",
            ErrorCode::Timeout => "Timeout",
            ErrorCode::BadRequest => "BadRequest",
            ErrorCode::MethodNotFound => "MethodNotFound",
            ErrorCode::PageError => "PageError",
            ErrorCode::NavigationFailed => "NavigationFailed",
            ErrorCode::TabClosed => "TabClosed",
            ErrorCode::NotSerializable => "NotSerializable",
            ErrorCode::ExtensionDisconnected => "ExtensionDisconnected",
            ErrorCode::ProtocolError => "ProtocolError",
            ErrorCode::TooLarge => "TooLarge",
            ErrorCode::Unauthorized => "Unauthorized",
            ErrorCode::Forbidden => "Forbidden",
            ErrorCode::TooManyCalls => "TooManyCalls",
            ErrorCode::ScriptsDisabled => "ScriptsDisabled",
            ErrorCode::NotScriptable => "NotScriptable",
        }
    }

    /// The HTTP status the client API answers with for this code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::BadRequest => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::ScriptsDisabled => 403,
            ErrorCode::MethodNotFound => 404,
            ErrorCode::TooLarge => 413,
            ErrorCode::TooManyCalls => 429,
            ErrorCode::PageError | ErrorCode::NotSerializable | ErrorCode::NotScriptable => 422,
            ErrorCode::NavigationFailed
            | ErrorCode::TabClosed
            | ErrorCode::ExtensionDisconnected
            | ErrorCode::ProtocolError => 502,
            ErrorCode::NoExtension => 503,
            ErrorCode::Timeout => 504,
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
