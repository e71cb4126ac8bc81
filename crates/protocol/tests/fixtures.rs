//! The golden fixtures in `crates/protocol/fixtures/` decode, re-encode to the same JSON,
//! and cover every frame type and error code. The Python client and the extension's
//! JavaScript check the same files.

use std::fs;
use std::path::{Path, PathBuf};

use any_protocol::api::{
    AddScript, CallFailure, CallRequest, CallSuccess, Health, RunRequest, ScriptChange, ScriptList,
    Status,
};
use any_protocol::{
    DecodeError, ErrorBody, ErrorCode, ExtensionFrame, Frame, ServerFrame, decode, encode,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn fixtures(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(dir);
    let mut out: Vec<(String, String)> = fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .map(|entry| entry.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p: PathBuf| {
            let stem = p.file_stem().expect("stem").to_string_lossy().into_owned();
            (stem, fs::read_to_string(&p).expect("fixture readable"))
        })
        .collect();
    out.sort();
    out
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn round_trip_frames<F: Frame + std::fmt::Debug>(dir: &str) {
    let files = fixtures(dir);
    let mut names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    names.sort();
    let mut types = F::TYPES.to_vec();
    types.sort();
    assert_eq!(
        names, types,
        "{dir}/ has exactly one fixture per frame type"
    );

    for (name, text) in &files {
        let frame: F = decode(text).unwrap_or_else(|e| panic!("{dir}/{name}: {e}"));
        let again = encode(&frame);
        assert_eq!(json(&again), json(text), "{dir}/{name} round-trips");
        assert_eq!(json(&again)["type"], Value::from(name.as_str()));
        assert!(again.starts_with("{\"v\":1,"), "v comes first: {again}");
    }
}

#[test]
fn extension_frames_round_trip() {
    round_trip_frames::<ExtensionFrame>("extension");
}

#[test]
fn server_frames_round_trip() {
    round_trip_frames::<ServerFrame>("server");
}

#[test]
fn every_error_code_has_a_fixture() {
    let files = fixtures("errors");
    assert_eq!(files.len(), ErrorCode::ALL.len());
    for code in ErrorCode::ALL {
        let (_, text) = files
            .iter()
            .find(|(name, _)| name == code.as_str())
            .unwrap_or_else(|| panic!("fixtures/errors/{code}.json missing"));
        let body: ErrorBody = serde_json::from_str(text).expect("error body parses");
        assert_eq!(body.code, code);
        if code != ErrorCode::PageError {
            assert_eq!(
                body.name,
                code.name(),
                "infrastructure errors are named after their code"
            );
        }
        assert_eq!(
            json(&serde_json::to_string(&body).expect("serializes")),
            json(text)
        );
        assert_eq!(
            serde_json::to_value(code).expect("code"),
            Value::from(code.as_str())
        );
    }
}

fn round_trip_api<T: Serialize + DeserializeOwned>(name: &str) {
    let files = fixtures("api");
    let (_, text) = files
        .iter()
        .find(|(n, _)| n == name)
        .expect("api fixture exists");
    let parsed: T = serde_json::from_str(text).unwrap_or_else(|e| panic!("api/{name}: {e}"));
    assert_eq!(
        json(&serde_json::to_string(&parsed).expect("serializes")),
        json(text),
        "api/{name}"
    );
}

#[test]
fn api_bodies_round_trip() {
    round_trip_api::<CallRequest>("call_request");
    round_trip_api::<CallSuccess>("call_success");
    round_trip_api::<CallFailure>("call_failure");
    round_trip_api::<Health>("health");
    round_trip_api::<Status>("status");
    round_trip_api::<RunRequest>("run_request");
    round_trip_api::<AddScript>("add_script");
    round_trip_api::<ScriptList>("script_list");
    round_trip_api::<ScriptChange>("script_change");
    assert_eq!(
        fixtures("api").len(),
        9,
        "every api fixture is checked above"
    );
}

#[test]
fn call_request_refuses_unknown_fields() {
    let err = serde_json::from_str::<CallRequest>(r#"{"page":"p","method":"m","timeout":5}"#)
        .expect_err("typo is refused");
    assert!(err.to_string().contains("unknown field `timeout`"), "{err}");
}

#[derive(serde::Deserialize)]
struct Invalid {
    direction: String,
    text: String,
    error: String,
}

fn decode_error(direction: &str, text: &str) -> DecodeError {
    match direction {
        "extension" => decode::<ExtensionFrame>(text).expect_err("not a frame"),
        "server" => decode::<ServerFrame>(text).expect_err("not a frame"),
        other => panic!("unknown direction {other}"),
    }
}

#[test]
fn invalid_frames_give_clear_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/invalid.json");
    let cases: Vec<Invalid> =
        serde_json::from_str(&fs::read_to_string(path).expect("read")).expect("parse");
    assert!(cases.len() >= 10);
    for case in cases {
        let err = decode_error(&case.direction, &case.text).to_string();
        assert!(
            err.contains(&case.error),
            "{:?}: got {err:?}, want it to contain {:?}",
            case.text,
            case.error
        );
    }
}

#[test]
fn broken_frame_names_its_call() {
    let err =
        decode::<ExtensionFrame>(r#"{"v":1,"type":"result","id":"c-9"}"#).expect_err("no value");
    assert_eq!(err.call_id(), Some("c-9"));
}

#[test]
fn deep_nesting_neither_crashes_nor_is_lost() {
    let (open, close) = ("[".repeat(100_000), "]".repeat(100_000));
    // Raw values are carried, not parsed into a tree: depth costs nothing.
    let raw = format!(r#"{{"v":1,"type":"result","id":"c","value":{open}{close}}}"#);
    match decode::<ExtensionFrame>(&raw) {
        Ok(ExtensionFrame::Result(result)) => assert_eq!(result.value.get().len(), 200_000),
        other => panic!(
            "deep raw value should pass through, got {:?}",
            other.map(|_| ()).map_err(|e| e.to_string())
        ),
    }
    // Deep nesting where a typed field is expected: an error naming the call.
    let typed = format!(r#"{{"v":1,"type":"error","id":"c","error":{{"code":{open}{close}}}}}"#);
    let err = decode::<ExtensionFrame>(&typed)
        .map(|_| ())
        .expect_err("not an error body");
    assert!(
        err.to_string().starts_with("invalid \"error\" frame"),
        "{err}"
    );
    assert_eq!(err.call_id(), Some("c"));
}

#[test]
fn raw_values_pass_through_byte_for_byte() {
    let text = r#"{"v":1,"type":"result","id":"c-1","value":{"b":1.50,"a":[true,null]}}"#;
    let ExtensionFrame::Result(result) = decode::<ExtensionFrame>(text).expect("decodes") else {
        panic!("not a result");
    };
    assert_eq!(result.value.get(), r#"{"b":1.50,"a":[true,null]}"#);
    assert_eq!(encode(&ExtensionFrame::Result(result)), text);
}
