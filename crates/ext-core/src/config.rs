//! Where the extension connects and what it calls itself: plain Rust, no browser.
//!
//! Runs in: the extension's service worker (compiled to wasm) and in native unit tests;
//! it touches no browser API.
//!
//! Three sources, strongest first: values the user saved in the options page or popup
//! (`chrome.storage.local`), then `config.json` in the extension's own directory
//! (written by `any browser`), then the built-in default. Each field is resolved on its
//! own, so a user may override only the label and keep the server from `config.json`.

use serde::{Deserialize, Serialize};

use crate::tabs::DEFAULT_MAX_TABS;

/// The server address when nothing else is configured.
pub const DEFAULT_SERVER: &str = "ws://127.0.0.1:8765/v1/extension";

/// One source's values; absent or empty fields fall through to the next source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigLayer {
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    /// How many idle tabs the extension keeps open (see [`crate::tabs::Tabs::excess`]).
    #[serde(default)]
    pub max_tabs: Option<usize>,
}

impl ConfigLayer {
    /// Parses `config.json`. A broken file is reported, not guessed around.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| format!("config.json is not valid: {e}"))
    }
}

/// Where a resolved value came from, shown in the popup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Stored,
    ConfigFile,
    Default,
}

/// The configuration the extension runs with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Config {
    pub server: String,
    pub server_source: Source,
    pub label: String,
    pub label_source: Source,
    pub max_tabs: usize,
    pub max_tabs_source: Source,
}

/// Resolves each field: stored wins over the file, the file over the default.
pub fn resolve(stored: &ConfigLayer, file: &ConfigLayer) -> Config {
    let pick = |s: &Option<String>, f: &Option<String>| -> Option<(String, Source)> {
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        nonempty(s)
            .map(|v| (v, Source::Stored))
            .or_else(|| nonempty(f).map(|v| (v, Source::ConfigFile)))
    };
    let (server, server_source) = pick(&stored.server, &file.server)
        .unwrap_or_else(|| (DEFAULT_SERVER.to_owned(), Source::Default));
    let (label, label_source) =
        pick(&stored.label, &file.label).unwrap_or_else(|| (String::new(), Source::Default));
    let (max_tabs, max_tabs_source) = match (stored.max_tabs, file.max_tabs) {
        (Some(n), _) if n > 0 => (n, Source::Stored),
        (_, Some(n)) if n > 0 => (n, Source::ConfigFile),
        _ => (DEFAULT_MAX_TABS, Source::Default),
    };
    Config {
        server,
        server_source,
        label,
        label_source,
        max_tabs,
        max_tabs_source,
    }
}

/// Checks a tab limit typed by the user: a whole number from 1 to [`MAX_TABS_LIMIT`];
/// empty means "use the default again" (`None`).
pub fn validate_max_tabs(text: &str) -> Result<Option<usize>, String> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(None);
    }
    match t.parse::<usize>() {
        Ok(n) if (1..=MAX_TABS_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(format!(
            "{t:?} is not a tab limit: give a whole number from 1 to {MAX_TABS_LIMIT}"
        )),
    }
}

/// The highest tab limit the options accept.
pub const MAX_TABS_LIMIT: usize = 1000;

/// Checks a server address typed by the user before it is saved. Empty means "use the
/// default again" and is accepted.
pub fn validate_server(address: &str) -> Result<(), String> {
    let a = address.trim();
    if a.is_empty() {
        return Ok(());
    }
    let rest = a
        .strip_prefix("ws://")
        .or_else(|| a.strip_prefix("wss://"))
        .ok_or_else(|| format!("{a:?} is not a WebSocket address: it must start with ws:// or wss://, e.g. {DEFAULT_SERVER}"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{a:?} has no host, e.g. {DEFAULT_SERVER}"));
    }
    Ok(())
}

/// Checks a label typed by the user: short, one line.
pub fn validate_label(label: &str) -> Result<(), String> {
    if label.chars().count() > 64 {
        return Err("the label is longer than 64 characters".to_owned());
    }
    if label.chars().any(char::is_control) {
        return Err("the label must be one line of text".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(server: Option<&str>, label: Option<&str>) -> ConfigLayer {
        ConfigLayer {
            server: server.map(Into::into),
            label: label.map(Into::into),
            max_tabs: None,
        }
    }

    #[test]
    fn default_without_sources() {
        let c = resolve(&ConfigLayer::default(), &ConfigLayer::default());
        assert_eq!(c.server, DEFAULT_SERVER);
        assert_eq!(c.server_source, Source::Default);
        assert_eq!(c.label, "");
    }

    #[test]
    fn file_gives_defaults_and_stored_wins_per_field() {
        let file = layer(Some("ws://127.0.0.1:9000/v1/extension"), Some("test"));
        let c = resolve(&ConfigLayer::default(), &file);
        assert_eq!(
            (c.server.as_str(), c.server_source),
            ("ws://127.0.0.1:9000/v1/extension", Source::ConfigFile)
        );
        assert_eq!(
            (c.label.as_str(), c.label_source),
            ("test", Source::ConfigFile)
        );

        let c = resolve(&layer(None, Some("work")), &file);
        assert_eq!(c.server_source, Source::ConfigFile);
        assert_eq!((c.label.as_str(), c.label_source), ("work", Source::Stored));
    }

    #[test]
    fn empty_stored_value_falls_through() {
        let c = resolve(
            &layer(Some("  "), Some("")),
            &layer(Some("ws://h:1/x"), None),
        );
        assert_eq!(c.server, "ws://h:1/x");
        assert_eq!(c.label_source, Source::Default);
    }

    #[test]
    fn config_file_parses_and_rejects_garbage() {
        let l = ConfigLayer::from_json(r#"{"server":"ws://127.0.0.1:1/v1/extension","label":"x"}"#);
        assert_eq!(
            l,
            Ok(layer(Some("ws://127.0.0.1:1/v1/extension"), Some("x")))
        );
        assert!(ConfigLayer::from_json("{").is_err());
    }

    #[test]
    fn server_validation() {
        assert!(validate_server("ws://127.0.0.1:8765/v1/extension").is_ok());
        assert!(validate_server("wss://example.com/x").is_ok());
        assert!(validate_server("").is_ok());
        assert!(validate_server("http://127.0.0.1:8765").is_err());
        assert!(validate_server("ws:///path").is_err());
        assert!(validate_label("work").is_ok());
        assert!(validate_label("a\nb").is_err());
    }

    #[test]
    fn tab_limit_from_the_file_or_the_options() {
        let c = resolve(&ConfigLayer::default(), &ConfigLayer::default());
        assert_eq!(
            (c.max_tabs, c.max_tabs_source),
            (DEFAULT_MAX_TABS, Source::Default)
        );
        let file = ConfigLayer::from_json(r#"{"max_tabs": 3}"#).unwrap_or_default();
        let c = resolve(&ConfigLayer::default(), &file);
        assert_eq!((c.max_tabs, c.max_tabs_source), (3, Source::ConfigFile));
        let stored = ConfigLayer {
            max_tabs: Some(7),
            ..ConfigLayer::default()
        };
        assert_eq!(resolve(&stored, &file).max_tabs, 7);
        assert_eq!(validate_max_tabs(" 12 "), Ok(Some(12)));
        assert_eq!(validate_max_tabs(""), Ok(None));
        assert!(validate_max_tabs("0").is_err());
        assert!(validate_max_tabs("many").is_err());
    }
}
