//! Checks of the JavaScript that runs in pages, from `cargo test` (native, no browser).
//!
//! * The result encoder exists twice — in `extension/page-world.js` (MAIN-world methods)
//!   and in `clients/userscript/any-lane.js` (postMessage-lane methods) — because
//!   `executeScript` ships each function's text alone and a userscript cannot import
//!   from the extension. The two copies must stay identical.
//! * `extension/tests/page-world.test.mjs` runs the encoding rules and the lane in Node.

use std::path::PathBuf;
use std::process::Command;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn encoder(path: &str) -> Vec<String> {
    let text =
        std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let start = text
        .find("// BEGIN encode")
        .unwrap_or_else(|| panic!("{path} has no BEGIN encode marker"));
    let end = text
        .find("// END encode")
        .unwrap_or_else(|| panic!("{path} has no END encode marker"));
    text[start..end]
        .lines()
        .skip(1)
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn lane_helper_encodes_exactly_like_the_extension() {
    let main = encoder("extension/page-world.js");
    let lane = encoder("clients/userscript/any-lane.js");
    assert!(main.len() > 20, "the encoder block looks empty");
    assert_eq!(
        main, lane,
        "copy the encode block of extension/page-world.js into clients/userscript/any-lane.js"
    );
}

#[test]
fn page_world_rules_in_node() {
    let Ok(out) = Command::new("node")
        .arg("--test")
        .arg(root().join("extension/tests/"))
        .output()
    else {
        eprintln!("SKIPPED: node is not installed; the page-world encoding tests did not run");
        return;
    };
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "node --test extension/tests failed:\n{report}"
    );
    assert!(report.contains("# fail 0"), "{report}");
}
