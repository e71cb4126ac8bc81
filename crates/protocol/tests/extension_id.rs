//! [`any_protocol::EXTENSION_ID`] is the id Chrome derives from the `"key"` in
//! `extension/manifest.json`: the first 32 hex digits of SHA-256 of the DER public key,
//! each digit 0–f written as a letter a–p. If the key changes, this fails and says the
//! new id, so the server's pinned origin cannot drift from the real extension.

use std::path::Path;

use base64::Engine;
use sha2::{Digest, Sha256};

fn id_of_key(key_base64: &str) -> String {
    let der = base64::engine::general_purpose::STANDARD
        .decode(key_base64)
        .expect("the manifest key is base64");
    Sha256::digest(der)
        .iter()
        .take(16)
        .flat_map(|byte| [byte >> 4, byte & 0xf])
        .map(|nibble| char::from(b'a' + nibble))
        .collect()
}

#[test]
fn the_pinned_extension_id_is_the_one_the_manifest_key_gives() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../extension/manifest.json");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).expect("manifest.json"))
            .expect("JSON");
    let key = manifest["key"]
        .as_str()
        .expect("the manifest has a fixed key");

    let id = id_of_key(key);

    assert_eq!(
        id,
        any_protocol::EXTENSION_ID,
        "update EXTENSION_ID and EXTENSION_ORIGIN to the manifest key's id"
    );
    assert_eq!(
        any_protocol::EXTENSION_ORIGIN,
        format!("chrome-extension://{id}")
    );
}
