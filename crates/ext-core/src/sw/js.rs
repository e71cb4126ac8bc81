//! JavaScript values at the edge: one error type, one conversion, small builders.
//!
//! Runs in: the extension's service worker (wasm). Every `JsValue` error becomes a
//! [`JsError`] here, through [`JsResultExt`], so the rest of the binding handles one
//! error type with a readable message.

use std::fmt;

use js_sys::{Array, Object, Promise, Reflect};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// A JavaScript exception or rejection, as its message.
#[derive(Debug, Clone)]
pub struct JsError(pub String);

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<JsValue> for JsError {
    fn from(value: JsValue) -> Self {
        JsError(describe(&value))
    }
}

/// A readable message for any thrown value.
pub fn describe(value: &JsValue) -> String {
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return String::from(e.message());
    }
    if let Some(s) = value.as_string() {
        return s;
    }
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

pub type JsResult<T> = Result<T, JsError>;

/// Converts `Result<T, JsValue>` (what `catch` externs return) into [`JsResult`].
pub trait JsResultExt<T> {
    fn js(self) -> JsResult<T>;
    /// Same, prefixing the message with what was being done.
    fn context(self, doing: &str) -> JsResult<T>;
}

impl<T> JsResultExt<T> for Result<T, JsValue> {
    fn js(self) -> JsResult<T> {
        self.map_err(JsError::from)
    }

    fn context(self, doing: &str) -> JsResult<T> {
        self.map_err(|e| JsError(format!("{doing}: {}", describe(&e))))
    }
}

/// Awaits a promise returned by a `catch` extern (which may also have thrown).
pub async fn settle(promise: Result<Promise, JsValue>) -> JsResult<JsValue> {
    JsFuture::from(promise.js()?).await.js()
}

/// Builds a plain object: `obj(&[("url", url.into())])`.
pub fn obj(fields: &[(&str, JsValue)]) -> Object {
    let o = Object::new();
    for (k, v) in fields {
        // Setting a data property on a fresh plain object cannot fail.
        let _ = Reflect::set(&o, &JsValue::from_str(k), v);
    }
    o
}

pub fn array(items: &[JsValue]) -> Array {
    items.iter().collect()
}

/// The items of `value` if it is an array, else none. (`Array.from(undefined)` throws,
/// and an uncaught throw would end the async task that made it.)
pub fn items(value: &JsValue) -> Vec<JsValue> {
    if Array::is_array(value) {
        Array::from(value).iter().collect()
    } else {
        Vec::new()
    }
}

/// `value[key]`, `undefined` when absent or not an object.
pub fn get(value: &JsValue, key: &str) -> JsValue {
    if !value.is_object() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(value, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

pub fn get_string(value: &JsValue, key: &str) -> Option<String> {
    get(value, key).as_string()
}

pub fn get_i32(value: &JsValue, key: &str) -> Option<i32> {
    get(value, key).as_f64().map(|n| n as i32)
}

/// Plain JSON text to a JS value (for small, trusted structures we built).
pub fn from_json(text: &str) -> JsValue {
    js_sys::JSON::parse(text).unwrap_or(JsValue::NULL)
}

/// A JS value to JSON text (`None` for values JSON cannot hold).
pub fn to_json(value: &JsValue) -> Option<String> {
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
}

/// Milliseconds since the epoch.
pub fn now() -> f64 {
    js_sys::Date::now()
}

pub async fn sleep(ms: u32) {
    gloo_timers::future::TimeoutFuture::new(ms).await;
}
