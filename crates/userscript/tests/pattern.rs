//! Chrome's match-pattern rules, and which URLs a hosted script applies to.

use any_protocol::{RunAt, UserScript};
use any_userscript::{check_match_pattern, glob_matches, pattern_matches, runs_on};

#[test]
fn patterns_chrome_accepts() {
    for ok in [
        "<all_urls>",
        "*://*/*",
        "https://*/*",
        "http://127.0.0.1/*",
        "http://localhost:8080/*",
        "http://localhost:*/*",
        "https://*.example.com/foo*bar",
        "https://example.com/",
        "file:///home/*",
        "http://[::1]/*",
    ] {
        assert_eq!(check_match_pattern(ok), Ok(()), "{ok}");
    }
}

#[test]
fn patterns_chrome_refuses_with_the_reason() {
    for (bad, why) in [
        ("example.com", "not a match pattern"),
        ("https://example.com", "needs a path"),
        ("ftp://example.com/*", "the scheme must be"),
        ("chrome://settings/*", "the scheme must be"),
        ("https:///*", "the host is missing"),
        ("https://*.*/*", "invalid host wildcard"),
        ("https://www.*.com/*", "invalid host wildcard"),
        ("https://*example.com/*", "invalid host wildcard"),
        ("file://host/x", "a file:// pattern has no host"),
        ("http://localhost:http/*", "invalid port"),
        ("https://exa mple.com/*", "no spaces"),
    ] {
        let err = check_match_pattern(bad).expect_err(bad);
        assert!(err.contains(why), "{bad}: {err}");
    }
}

#[test]
fn matching_follows_chrome() {
    let cases = [
        ("*://*/*", "https://example.com/a?b=1", true),
        ("*://*/*", "file:///tmp/x.html", false),
        ("<all_urls>", "file:///tmp/x.html", true),
        (
            "http://127.0.0.1/*",
            "http://127.0.0.1:43123/csp.html",
            true,
        ),
        ("http://127.0.0.1:8080/*", "http://127.0.0.1:43123/", false),
        ("http://127.0.0.1:8080/*", "http://127.0.0.1:8080/x", true),
        ("https://*.example.com/*", "https://example.com/", true),
        ("https://*.example.com/*", "https://a.b.example.com/x", true),
        ("https://*.example.com/*", "https://badexample.com/", false),
        ("https://example.com/*", "http://example.com/", false),
        ("https://example.com/a*", "https://example.com/abc?x", true),
        ("https://example.com/a*", "https://example.com/b", false),
        ("https://example.com/", "https://example.com", true),
        ("https://EXAMPLE.com/*", "https://example.COM/x", true),
        (
            "https://example.com/*",
            "https://user@example.com/x#frag",
            true,
        ),
    ];
    for (pattern, url, expected) in cases {
        assert_eq!(
            pattern_matches(pattern, url),
            expected,
            "{pattern} vs {url}"
        );
    }
}

#[test]
fn globs() {
    assert!(glob_matches("*logout*", "https://a.example/logout?x"));
    assert!(glob_matches("https://a.example/?", "https://a.example/x"));
    assert!(!glob_matches("https://a.example/?", "https://a.example/xy"));
    assert!(glob_matches("*", ""));
    assert!(!glob_matches("a*b", "acbd"));
}

#[test]
fn a_script_runs_where_it_matches_and_is_not_excluded() {
    let script = UserScript {
        name: "s".into(),
        version: String::new(),
        description: String::new(),
        matches: vec!["https://shop.example.com/*".into()],
        exclude_matches: vec!["https://shop.example.com/admin/*".into()],
        exclude_globs: vec!["*logout*".into()],
        run_at: RunAt::DocumentIdle,
        noframes: false,
        enabled: true,
        code: String::new(),
    };
    assert!(runs_on(&script, "https://shop.example.com/cart"));
    assert!(!runs_on(&script, "https://shop.example.com/admin/users"));
    assert!(!runs_on(&script, "https://shop.example.com/logout"));
    assert!(!runs_on(&script, "https://other.example.com/"));
}
