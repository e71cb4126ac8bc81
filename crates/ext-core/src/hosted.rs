//! The userscripts the server hosts, as the extension keeps them: which
//! `chrome.userScripts` registrations to remove and add so that the browser runs exactly
//! the enabled scripts of the server's latest `scripts` frame, and what the popup shows.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API. `sw/userscripts.rs` carries the plan out.

use any_protocol::UserScript;
use serde::Deserialize;
use serde_json::{Value, json};

/// The browser switch `chrome.userScripts` needs, said the same way everywhere.
pub const HOW_TO_ALLOW: &str =
    "open chrome://extensions, click Details on any, and switch on \"Allow User Scripts\"";

/// One registration as `chrome.userScripts.getScripts()` reports it (absent lists are empty).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registered {
    pub id: String,
    #[serde(default)]
    pub matches: Vec<String>,
    #[serde(default)]
    pub exclude_matches: Vec<String>,
    #[serde(default)]
    pub exclude_globs: Vec<String>,
    #[serde(default)]
    pub run_at: Option<String>,
    #[serde(default)]
    pub world: Option<String>,
    #[serde(default)]
    pub all_frames: Option<bool>,
    #[serde(default)]
    pub js: Vec<Source>,
}

/// A `ScriptSource`: inline code or a file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Source {
    #[serde(default)]
    pub code: Option<String>,
}

/// The `RegisteredUserScript` object for `chrome.userScripts.register`: the whole file
/// in the page's MAIN world (where `globalThis.__any__` is the page's own), in every
/// frame unless `@noframes`, as userscript managers do.
pub fn registration(script: &UserScript) -> Value {
    let mut r = json!({
        "id": script.name,
        "matches": script.matches,
        "js": [{"code": code(script)}],
        "runAt": script.run_at.as_str(),
        "world": "MAIN",
        "allFrames": !script.noframes,
    });
    if !script.exclude_matches.is_empty() {
        r["excludeMatches"] = json!(script.exclude_matches);
    }
    if !script.exclude_globs.is_empty() {
        r["excludeGlobs"] = json!(script.exclude_globs);
    }
    r
}

/// The code registered for a script: the file, then a `sourceURL` naming it, so that
/// stacks of errors thrown in it say `any-userscripts/<@name>.user.js:LINE` (the file's
/// own line numbers) instead of an anonymous script.
pub fn code(script: &UserScript) -> String {
    let mut name = String::new();
    for b in script.name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            name.push(char::from(b));
        } else {
            name.push_str(&format!("%{b:02X}"));
        }
    }
    format!(
        "{}\n//# sourceURL=any-userscripts/{name}.user.js\n",
        script.code
    )
}

fn same(script: &UserScript, registered: &Registered) -> bool {
    registered.id == script.name
        && registered.matches == script.matches
        && registered.exclude_matches == script.exclude_matches
        && registered.exclude_globs == script.exclude_globs
        && registered.run_at.as_deref().unwrap_or("document_idle") == script.run_at.as_str()
        && registered.world.as_deref() == Some("MAIN")
        && registered.all_frames.unwrap_or(false) != script.noframes
        && registered.js.len() == 1
        && registered.js[0].code.as_deref() == Some(code(script).as_str())
}

/// What to change in the browser.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Ids to `unregister` (gone, disabled, or changed).
    pub unregister: Vec<String>,
    /// Scripts to `register` (new, re-enabled, or changed).
    pub register: Vec<UserScript>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.unregister.is_empty() && self.register.is_empty()
    }
}

/// The changes that make `registered` equal to the enabled scripts of `wanted`.
pub fn plan(wanted: &[UserScript], registered: &[Registered]) -> Plan {
    let enabled: Vec<&UserScript> = wanted.iter().filter(|s| s.enabled).collect();
    let mut plan = Plan::default();
    for r in registered {
        if !enabled.iter().any(|s| same(s, r)) {
            plan.unregister.push(r.id.clone());
        }
    }
    for s in enabled {
        if !registered.iter().any(|r| same(s, r)) {
            plan.register.push(s.clone());
        }
    }
    plan
}

/// The popup's list: each script, its patterns, and whether it runs on `url` (the tab
/// the popup was opened on) — enabled, registered in the browser and matching.
pub fn popup(scripts: &[UserScript], registered: &[String], url: Option<&str>) -> Value {
    scripts
        .iter()
        .map(|s| {
            let is_registered = registered.contains(&s.name);
            let matches_tab = url.is_some_and(|u| any_userscript::runs_on(s, u));
            json!({
                "name": s.name,
                "version": s.version,
                "matches": s.matches,
                "exclude_matches": s.exclude_matches,
                "exclude_globs": s.exclude_globs,
                "run_at": s.run_at.as_str(),
                "enabled": s.enabled,
                "registered": is_registered,
                "matches_tab": matches_tab,
                "active_on_tab": s.enabled && is_registered && matches_tab,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use any_protocol::RunAt;

    fn script(name: &str, enabled: bool) -> UserScript {
        UserScript {
            name: name.into(),
            version: String::new(),
            description: String::new(),
            matches: vec!["http://127.0.0.1/*".into()],
            exclude_matches: Vec::new(),
            exclude_globs: Vec::new(),
            run_at: RunAt::DocumentStart,
            noframes: false,
            enabled,
            code: format!("/* {name} */"),
        }
    }

    fn registered(script: &UserScript) -> Registered {
        serde_json::from_value(registration(script)).expect("registration reads back")
    }

    #[test]
    fn nothing_to_do_when_the_browser_has_the_enabled_scripts() {
        let a = script("a", true);
        assert!(plan(&[a.clone(), script("b", false)], &[registered(&a)]).is_empty());
    }

    #[test]
    fn new_changed_disabled_and_removed_scripts() {
        let a = script("a", true);
        let mut b = script("b", true);
        let c = script("c", true);
        let old_b = registered(&b);
        b.code.push_str(" changed");
        let stale = Registered {
            id: "gone".into(),
            ..registered(&c)
        };
        let wanted = [a.clone(), b.clone(), script("c", false)];
        let p = plan(&wanted, &[old_b, registered(&c), stale]);
        assert_eq!(p.unregister, ["b", "c", "gone"]);
        assert_eq!(
            p.register
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn chrome_leaves_out_empty_lists_and_default_run_at() {
        let mut a = script("a", true);
        a.run_at = RunAt::DocumentIdle;
        a.noframes = true;
        let from_chrome: Registered = serde_json::from_value(json!({
            "id": "a", "matches": ["http://127.0.0.1/*"], "world": "MAIN",
            "js": [{"code": "/* a */\n//# sourceURL=any-userscripts/a.user.js\n"}]
        }))
        .expect("parses");
        assert!(plan(std::slice::from_ref(&a), std::slice::from_ref(&from_chrome)).is_empty());
        // In frames too is a change.
        a.noframes = false;
        assert_eq!(plan(&[a], &[from_chrome]).unregister, ["a"]);
    }

    #[test]
    fn stacks_name_the_script_by_its_name() {
        let mut a = script("shop helpers/2", true);
        a.code = "x();".into();
        assert_eq!(
            code(&a),
            "x();\n//# sourceURL=any-userscripts/shop%20helpers%2F2.user.js\n"
        );
    }

    #[test]
    fn the_popup_says_where_each_script_is_active() {
        let a = script("a", true);
        let off = script("off", false);
        let list = popup(
            &[a, off],
            &["a".to_owned()],
            Some("http://127.0.0.1:4000/x"),
        );
        assert_eq!(list[0]["active_on_tab"], true);
        assert_eq!(list[1]["active_on_tab"], false);
        assert_eq!(list[1]["matches_tab"], true);
        let elsewhere = popup(
            &[script("a", true)],
            &["a".to_owned()],
            Some("https://example.com/"),
        );
        assert_eq!(elsewhere[0]["active_on_tab"], false);
    }
}
