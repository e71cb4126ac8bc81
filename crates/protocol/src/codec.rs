//! Turning frames into socket text and back, with the version and type checks.
//!
//! Decoding reads a small head first (`v`, `type`, `id`) so that a wrong version or an
//! unknown type gets its own clear error, then parses the body straight into the
//! variant's struct. Nothing here panics on any input.

use std::borrow::Cow;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::error::Category;

use crate::{ExtensionFrame, ServerFrame, VERSION};

/// A direction of frames on the extension socket.
pub trait Frame: Serialize + Sized {
    /// The `type` tags this direction knows.
    const TYPES: &'static [&'static str];

    /// Parses `text` as the variant tagged `ty` (one of [`Frame::TYPES`]).
    fn decode_body(ty: &str, text: &str) -> serde_json::Result<Self>;
}

/// Encodes a frame as one JSON text: `{"v":1,"type":...,...}`.
pub fn encode<F: Frame>(frame: &F) -> String {
    // Frames hold only strings, numbers, enums and raw JSON: serializing cannot fail.
    let body =
        serde_json::to_string(frame).unwrap_or_else(|e| unreachable!("frame serializes: {e}"));
    let fields = body.strip_prefix('{').unwrap_or(&body);
    format!("{{\"v\":{VERSION},{fields}")
}

/// Decodes one frame, checking its version and type first.
pub fn decode<F: Frame>(text: &str) -> Result<F, DecodeError> {
    let head: Head<'_> = serde_json::from_str(text).map_err(|e| match e.classify() {
        Category::Data => DecodeError::NotAnObject,
        _ => DecodeError::Json(e.to_string()),
    })?;
    match head.v {
        None => return Err(DecodeError::MissingVersion),
        Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(VERSION)) => {}
        Some(other) => {
            return Err(DecodeError::WrongVersion {
                got: other.to_string(),
            });
        }
    }
    let ty = head.ty.ok_or(DecodeError::MissingType)?;
    if !F::TYPES.contains(&ty.as_ref()) {
        return Err(DecodeError::UnknownType {
            ty: ty.into_owned(),
            known: F::TYPES,
        });
    }
    F::decode_body(&ty, text).map_err(|e| DecodeError::Invalid {
        ty: ty.into_owned(),
        id: head.id.map(Cow::into_owned),
        reason: e.to_string(),
    })
}

/// The fields every frame is checked for before its body is parsed.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default)]
    v: Option<serde_json::Value>,
    #[serde(default, rename = "type", borrow)]
    ty: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

/// Why a text is not a frame. Its `Display` is the message to log or send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// Not JSON at all.
    Json(String),
    /// JSON, but not an object with string `type` and `id` fields.
    NotAnObject,
    /// No `v` field.
    MissingVersion,
    /// `v` is not this crate's [`VERSION`]; `got` is the value as JSON text.
    WrongVersion { got: String },
    /// No `type` field.
    MissingType,
    /// A `type` this direction does not have.
    UnknownType {
        ty: String,
        known: &'static [&'static str],
    },
    /// The `type` is known but the fields are wrong. `id` is the frame's `id`, when it
    /// had one, so that the call it belongs to can be failed.
    Invalid {
        ty: String,
        id: Option<String>,
        reason: String,
    },
}

impl DecodeError {
    /// The call this broken frame was about, if it said.
    pub fn call_id(&self) -> Option<&str> {
        match self {
            DecodeError::Invalid { id, .. } => id.as_deref(),
            _ => None,
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Json(e) => write!(f, "malformed JSON: {e}"),
            DecodeError::NotAnObject => {
                f.write_str("a frame must be a JSON object with string fields `type` and `id`")
            }
            DecodeError::MissingVersion => {
                write!(
                    f,
                    "the frame has no protocol version `v` (this end speaks v{VERSION})"
                )
            }
            DecodeError::WrongVersion { got } => write!(
                f,
                "protocol version {got} is not supported: this end speaks v{VERSION}; \
                 update the any server and the any extension to matching releases"
            ),
            DecodeError::MissingType => f.write_str("the frame has no `type`"),
            DecodeError::UnknownType { ty, known } => {
                write!(
                    f,
                    "unknown frame type {ty:?} (expected one of: {})",
                    known.join(", ")
                )
            }
            DecodeError::Invalid { ty, reason, .. } => write!(f, "invalid {ty:?} frame: {reason}"),
        }
    }
}

impl std::error::Error for DecodeError {}

fn body<T: DeserializeOwned>(text: &str) -> serde_json::Result<T> {
    serde_json::from_str(text)
}

fn unknown(ty: &str) -> serde_json::Error {
    serde::de::Error::custom(format!("unknown frame type {ty:?}"))
}

impl Frame for ExtensionFrame {
    const TYPES: &'static [&'static str] =
        &["hello", "progress", "result", "error", "pong", "tabs"];

    fn decode_body(ty: &str, text: &str) -> serde_json::Result<Self> {
        Ok(match ty {
            "hello" => ExtensionFrame::Hello(body(text)?),
            "progress" => ExtensionFrame::Progress(body(text)?),
            "result" => ExtensionFrame::Result(body(text)?),
            "error" => ExtensionFrame::Error(body(text)?),
            "pong" => ExtensionFrame::Pong(body(text)?),
            "tabs" => ExtensionFrame::Tabs(body(text)?),
            other => return Err(unknown(other)),
        })
    }
}

impl Frame for ServerFrame {
    const TYPES: &'static [&'static str] = &[
        "welcome", "reject", "call", "cancel", "ping", "scripts", "run",
    ];

    fn decode_body(ty: &str, text: &str) -> serde_json::Result<Self> {
        Ok(match ty {
            "welcome" => ServerFrame::Welcome(body(text)?),
            "reject" => ServerFrame::Reject(body(text)?),
            "call" => ServerFrame::Call(body(text)?),
            "cancel" => ServerFrame::Cancel(body(text)?),
            "ping" => ServerFrame::Ping(body(text)?),
            "scripts" => ServerFrame::Scripts(body(text)?),
            "run" => ServerFrame::Run(body(text)?),
            other => return Err(unknown(other)),
        })
    }
}
