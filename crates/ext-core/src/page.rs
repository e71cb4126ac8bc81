//! Reading what the page-world functions (`extension/page-world.js`) return, and naming
//! the browser: plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API.
//!
//! `chrome.scripting.executeScript` turns a throw into `null` and mangles values, so the
//! page side always answers with an explicit envelope: `{ok: true, json: "<JSON text>"}`
//! or `{ok: false, error: {code, name, message, stack}}`. This module turns the error
//! half into a protocol [`ErrorBody`], and an absent envelope into a clear error.

use any_protocol::{BrowserInfo, ErrorBody, ErrorCode, Stage};
use serde::Deserialize;

/// The `error` half of an envelope, as the page wrote it.
#[derive(Debug, Deserialize)]
struct PageError {
    #[serde(default)]
    code: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    stack: Option<String>,
}

/// Turns the page's `error` object (as JSON text) into the call's error.
pub fn page_error(error_json: &str, method: &str) -> ErrorBody {
    let Ok(e) = serde_json::from_str::<PageError>(error_json) else {
        return ErrorBody::new(
            ErrorCode::PageError,
            format!("{method} failed and its error could not be read: {error_json}"),
        )
        .at(Stage::MethodCalled);
    };
    let mut body = match e.code.as_str() {
        "not_serializable" => ErrorBody::new(ErrorCode::NotSerializable, e.message),
        "method_not_found" => ErrorBody::new(ErrorCode::MethodNotFound, e.message),
        "not_scriptable" => ErrorBody::new(ErrorCode::NotScriptable, e.message),
        _ => {
            let mut b = ErrorBody::new(ErrorCode::PageError, e.message);
            if !e.name.is_empty() {
                b.name = e.name;
            }
            b.stack = e.stack.filter(|s| !s.is_empty());
            b
        }
    };
    body.stage = Some(Stage::MethodCalled);
    body
}

/// Turns a failed `executeScript` (the promise rejected) into the call's error.
pub fn injection_failed(chrome_message: &str, page: &str, stage: Stage) -> ErrorBody {
    let m = chrome_message.to_ascii_lowercase();
    let code =
        if m.contains("tab was closed") || m.contains("no tab with id") || m.contains("removed") {
            ErrorCode::TabClosed
        } else {
            ErrorCode::NavigationFailed
        };
    ErrorBody::new(
        code,
        format!("could not run code in {page}: {chrome_message}"),
    )
    .at(stage)
}

/// `executeScript` resolved without an envelope: the frame went away under the method.
pub fn no_envelope(method: &str) -> ErrorBody {
    ErrorBody::new(
        ErrorCode::TabClosed,
        format!("the page gave no answer for {method}: it was probably reloaded or navigated away while the method ran"),
    )
    .at(Stage::MethodCalled)
}

/// Names the browser from `navigator.userAgentData.brands` (preferred: tells Chrome from
/// Chromium) and the user agent string.
pub fn browser_info(brands: &[(String, String)], user_agent: &str) -> BrowserInfo {
    let real = |b: &&(String, String)| !b.0.contains("Not") && !b.0.trim().is_empty();
    let branded = brands.iter().filter(real).find(|b| b.0 != "Chromium");
    let chromium = brands.iter().filter(real).find(|b| b.0 == "Chromium");
    let ua_version = |token: &str| {
        user_agent
            .split_whitespace()
            .find_map(|part| part.strip_prefix(token))
            .map(str::to_owned)
    };
    let full = ua_version("Chrome/");
    if let Some((name, version)) = branded.or(chromium) {
        let version = full
            .filter(|f| f.starts_with(&format!("{version}.")))
            .unwrap_or_else(|| version.clone());
        return BrowserInfo {
            name: name.clone(),
            version,
        };
    }
    for (token, name) in [
        ("Edg/", "Microsoft Edge"),
        ("OPR/", "Opera"),
        ("Chrome/", "Chrome"),
        ("Firefox/", "Firefox"),
    ] {
        if let Some(version) = ua_version(token) {
            return BrowserInfo {
                name: name.to_owned(),
                version,
            };
        }
    }
    BrowserInfo {
        name: "unknown".to_owned(),
        version: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_errors_keep_the_pages_name_message_and_stack() {
        let e = page_error(
            r#"{"code":"page_error","name":"TypeError","message":"x is undefined","stack":"TypeError: x\n at f"}"#,
            "m",
        );
        assert_eq!(e.code, ErrorCode::PageError);
        assert_eq!(e.name, "TypeError");
        assert_eq!(e.message, "x is undefined");
        assert_eq!(e.stack.as_deref(), Some("TypeError: x\n at f"));
        assert_eq!(e.stage, Some(Stage::MethodCalled));
    }

    #[test]
    fn not_serializable_gets_its_own_code_and_name() {
        let e = page_error(
            r#"{"code":"not_serializable","message":"$.items[3] is a function"}"#,
            "m",
        );
        assert_eq!(e.code, ErrorCode::NotSerializable);
        assert_eq!(e.name, "NotSerializable");
    }

    #[test]
    fn unreadable_error_is_still_an_error() {
        let e = page_error("null", "m");
        assert_eq!(e.code, ErrorCode::PageError);
    }

    #[test]
    fn injection_failures_are_classified() {
        assert_eq!(
            injection_failed("The tab was closed.", "p", Stage::PageLoaded).code,
            ErrorCode::TabClosed
        );
        assert_eq!(
            injection_failed(
                "Frame with ID 0 is showing error page",
                "p",
                Stage::PageLoaded
            )
            .code,
            ErrorCode::NavigationFailed
        );
    }

    #[test]
    fn browser_names() {
        let ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
        let brands = vec![
            ("Chromium".to_owned(), "156".to_owned()),
            ("Not_A Brand".to_owned(), "24".to_owned()),
        ];
        let b = browser_info(&brands, ua);
        assert_eq!(
            (b.name.as_str(), b.version.as_str()),
            ("Chromium", "156.0.0.0")
        );
        let brands = vec![
            ("Google Chrome".to_owned(), "156".to_owned()),
            ("Chromium".to_owned(), "156".to_owned()),
            ("Not=A?Brand".to_owned(), "99".to_owned()),
        ];
        assert_eq!(browser_info(&brands, ua).name, "Google Chrome");
        // fullVersionList beats the reduced user agent.
        let full = vec![("Chromium".to_owned(), "156.0.7632.116".to_owned())];
        assert_eq!(browser_info(&full, ua).version, "156.0.7632.116");
        assert_eq!(browser_info(&[], ua).name, "Chrome");
    }
}
