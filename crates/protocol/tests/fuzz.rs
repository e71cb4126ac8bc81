//! Property tests (proptest) of the frame decoder: on any input — random bytes, random
//! JSON, the golden fixtures with random damage — `decode` returns a frame or a
//! `DecodeError` and never panics; whatever decodes re-encodes to a frame that decodes
//! to the same JSON. 10,000 cases per property, about 2 s:
//! `cargo test --release -p any-protocol --test fuzz`.

use std::fs;
use std::path::Path;

use any_protocol::{ExtensionFrame, Frame, ServerFrame, decode, encode};
use proptest::prelude::*;
use serde_json::Value;

/// Decodes `text` in both directions; for what decodes, checks the round trip.
fn check(text: &str) {
    round_trip::<ExtensionFrame>(text);
    round_trip::<ServerFrame>(text);
}

fn round_trip<F: Frame>(text: &str) {
    let Ok(frame) = decode::<F>(text) else { return };
    let again = encode(&frame);
    let decoded: F = decode(&again)
        .unwrap_or_else(|e| panic!("re-encoded frame does not decode ({e}): {again}"));
    assert_eq!(encode(&decoded), again, "encoding is stable");
}

/// Every fixture frame, both directions, as text.
fn fixture_frames() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    ["extension", "server"]
        .iter()
        .flat_map(|dir| fs::read_dir(root.join(dir)).expect("fixture dir"))
        .map(|entry| fs::read_to_string(entry.expect("entry").path()).expect("fixture"))
        .collect()
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A frame-shaped object: a real or random `type`, `v` 1 or not, and random fields,
/// some of them with the names real frames use.
fn frame_like() -> impl Strategy<Value = Value> {
    let types = prop_oneof![
        Just("hello"),
        Just("progress"),
        Just("result"),
        Just("error"),
        Just("pong"),
        Just("welcome"),
        Just("reject"),
        Just("call"),
        Just("cancel"),
        Just("ping"),
        Just("bogus"),
    ];
    let fields = prop::collection::btree_map(
        prop_oneof![
            Just("id".to_owned()),
            Just("value".to_owned()),
            Just("error".to_owned()),
            Just("stage".to_owned()),
            Just("seq".to_owned()),
            Just("protocol".to_owned()),
            Just("params".to_owned()),
            Just("code".to_owned()),
            ".{0,6}",
        ],
        json_value(),
        0..8,
    );
    (
        types,
        prop_oneof![Just(Value::from(1)), json_value()],
        fields,
    )
        .prop_map(|(ty, v, fields)| {
            let mut object: serde_json::Map<String, Value> = fields.into_iter().collect();
            object.insert("type".into(), Value::from(ty));
            object.insert("v".into(), v);
            Value::Object(object)
        })
}

/// One edit of a text's bytes.
#[derive(Debug, Clone)]
enum Damage {
    Flip(usize, u8),
    Delete(usize),
    Insert(usize, u8),
    Truncate(usize),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Flip(i, b)),
        any::<usize>().prop_map(Damage::Delete),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Damage::Insert(i, b)),
        any::<usize>().prop_map(Damage::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, damage: &Damage) {
    if bytes.is_empty() {
        return;
    }
    let at = |i: usize| i % bytes.len();
    match *damage {
        Damage::Flip(i, b) => {
            let i = at(i);
            bytes[i] ^= b;
        }
        Damage::Delete(i) => {
            let i = at(i);
            bytes.remove(i);
        }
        Damage::Insert(i, b) => {
            let i = at(i);
            bytes.insert(i, b);
        }
        Damage::Truncate(i) => {
            let i = at(i);
            bytes.truncate(i);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn random_json_never_panics(value in json_value()) {
        check(&value.to_string());
    }

    #[test]
    fn frame_shaped_json_never_panics_and_round_trips(value in frame_like()) {
        check(&value.to_string());
    }

    #[test]
    fn damaged_fixtures_never_panic(index in any::<usize>(), edits in prop::collection::vec(damage(), 1..6)) {
        let frames = fixture_frames();
        let mut bytes = frames[index % frames.len()].clone().into_bytes();
        for edit in &edits {
            apply(&mut bytes, edit);
        }
        check(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn deep_nesting_never_overflows(depth in 0usize..5000, open in prop_oneof![Just('['), Just('{')], field in prop_oneof![Just("value"), Just("error"), Just("id"), Just("v")]) {
        let (open, close) = if open == '[' { ("[", "]") } else { ("{\"a\":", "}") };
        let nested = format!("{}1{}", open.repeat(depth), close.repeat(depth));
        check(&format!(r#"{{"v":1,"type":"result","id":"c","{field}":{nested}}}"#));
        check(&nested);
    }
}
