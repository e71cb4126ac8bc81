//! The `==UserScript==` header: what is read, and the errors (each naming its line).

use any_protocol::RunAt;
use any_userscript::parse;

const BRIEF: &str = "// ==UserScript==
// @name         any
// @match        *://*/*
// @grant        none
// @run-at       document-start
// ==/UserScript==
globalThis.__any__ = globalThis.__any__ || {};
";

#[test]
fn the_acceptance_scenario_script_parses() {
    let script = parse(BRIEF).expect("parses");
    assert_eq!(script.name, "any");
    assert_eq!(script.matches, ["*://*/*"]);
    assert_eq!(script.run_at, RunAt::DocumentStart);
    assert!(script.enabled);
    assert_eq!(
        script.code, BRIEF,
        "the whole file is kept, header included"
    );
}

#[test]
fn every_supported_key_is_read() {
    let source = "// a comment before the header\n\
        // ==UserScript==\n\
        // @name        shop helpers\n\
        // @namespace   https://example.com/ns\n\
        // @version     2.1.0\n\
        // @description adds cart methods\n\
        // @match       https://shop.example.com/*\n\
        // @match       http://127.0.0.1/*\n\
        // @exclude-match https://shop.example.com/admin/*\n\
        // @exclude     *logout*\n\
        // @run-at      document-end\n\
        //\n\
        // plain comment\n\
        // ==/UserScript==\n\
        code();\n";
    let script = parse(source).expect("parses");
    assert_eq!(script.name, "shop helpers");
    assert_eq!(script.version, "2.1.0");
    assert_eq!(script.description, "adds cart methods");
    assert_eq!(
        script.matches,
        ["https://shop.example.com/*", "http://127.0.0.1/*"]
    );
    assert_eq!(script.exclude_matches, ["https://shop.example.com/admin/*"]);
    assert_eq!(script.exclude_globs, ["*logout*"]);
    assert_eq!(script.run_at, RunAt::DocumentEnd);
}

#[test]
fn run_at_defaults_to_document_idle() {
    let script =
        parse("// ==UserScript==\n// @name x\n// @match https://a.example/*\n// ==/UserScript==\n")
            .expect("parses");
    assert_eq!(script.run_at, RunAt::DocumentIdle);
    assert_eq!(script.version, "");
    assert!(!script.noframes, "frames too, unless @noframes");
}

#[test]
fn noframes_and_the_page_world_keys_are_read() {
    let script = parse(
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// @noframes\n\
         // @inject-into page\n// @sandbox raw\n// ==/UserScript==\n",
    )
    .expect("parses");
    assert!(script.noframes);
    for ok in ["@inject-into auto", "@sandbox JavaScript"] {
        let source = format!(
            "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// {ok}\n// ==/UserScript==\n"
        );
        assert!(parse(&source).is_ok(), "{ok}");
    }
}

/// (source, expected Display of the error).
const BAD: &[(&str, &str)] = &[
    ("globalThis.x = 1;\n", "no `// ==UserScript==` header"),
    (
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n",
        "line 1: the `// ==UserScript==` header is never closed",
    ),
    (
        "// ==UserScript==\n// @match https://a.example/*\n// ==/UserScript==\n",
        "line 1: the header has no @name",
    ),
    (
        "// ==UserScript==\n// @name x\n// ==/UserScript==\n",
        "line 1: the header has no @match",
    ),
    (
        "// ==UserScript==\n// @name x\n// @name y\n// @match https://a.example/*\n// ==/UserScript==\n",
        "line 3: @name appears twice (first on line 2)",
    ),
    (
        "// ==UserScript==\n// @name\n// ==/UserScript==\n",
        "line 2: @name needs the script's name",
    ),
    (
        "// ==UserScript==\n// @name _x\n// ==/UserScript==\n",
        "line 2: @name \"_x\" starts with `_`",
    ),
    (
        "// ==UserScript==\n// @name a/b\n// ==/UserScript==\n",
        "line 2: @name \"a/b\" contains a slash",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match example.com\n// ==/UserScript==\n",
        "line 3: @match example.com: not a match pattern",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match https://*.*/x\n// ==/UserScript==\n",
        "line 3: @match https://*.*/x: invalid host wildcard",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// @exclude-match ftp://a.example/*\n// ==/UserScript==\n",
        "line 4: @exclude-match ftp://a.example/*: the scheme must be",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// @run-at context-menu\n// ==/UserScript==\n",
        "line 4: @run-at \"context-menu\" is not supported",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// @grant GM_xmlhttpRequest\n// ==/UserScript==\n",
        "line 4: @grant GM_xmlhttpRequest: any runs userscripts in the page's own world",
    ),
    (
        "// ==UserScript==\n// @name x\n// @include *\n// ==/UserScript==\n",
        "line 3: @include (URL globs) is not supported",
    ),
    (
        "// ==UserScript==\n// @name x\n// @require https://cdn.example/lib.js\n// ==/UserScript==\n",
        "line 3: @require is not supported",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// @inject-into content\n// ==/UserScript==\n",
        "line 4: @inject-into \"content\" is not supported: any runs userscripts in the page's own world",
    ),
    (
        "// ==UserScript==\n// @name x\n// @match https://a.example/*\n// @sandbox DOM\n// ==/UserScript==\n",
        "line 4: @sandbox \"DOM\" is not supported",
    ),
    (
        "// ==UserScript==\n// @name x\nvar a = 1;\n// ==/UserScript==\n",
        "line 3: inside the header every line must be a `//` comment",
    ),
];

#[test]
fn bad_headers_are_clear_errors_naming_the_line() {
    for (source, expected) in BAD {
        let err = parse(source).expect_err(source).to_string();
        assert!(
            err.starts_with(expected),
            "for {source:?}\n  got:  {err}\n  want: {expected}…"
        );
    }
}
