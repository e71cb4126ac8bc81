//! The `// ==UserScript==` … `// ==/UserScript==` block at the top of a userscript.
//!
//! Runs in: the `any serve` process (and natively in tests). Keys any can honour are
//! read; keys that would change what the script can do but that any cannot provide
//! (`@grant` other than `none`, `@require`, `@resource`, `@include`, `@inject-into
//! content`, `@sandbox DOM`) are errors rather than silently ignored; purely descriptive
//! keys (`@namespace`, `@author`, …) are ignored.

use std::fmt;

use any_protocol::{RunAt, UserScript};

use crate::pattern::check_match_pattern;

/// Why a file is not a userscript any can host. `Display` names the line (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderError {
    /// The line the problem is on, when there is one.
    pub line: Option<usize>,
    pub message: String,
}

impl HeaderError {
    fn at(line: usize, message: impl Into<String>) -> Self {
        HeaderError {
            line: Some(line),
            message: message.into(),
        }
    }

    fn whole(message: impl Into<String>) -> Self {
        HeaderError {
            line: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for HeaderError {}

/// The longest `@name` accepted (it names a file and a `chrome.userScripts` id).
const MAX_NAME: usize = 100;

const EXAMPLE: &str = "// ==UserScript==\n// @name   my methods\n// @match  https://example.com/*\n// ==/UserScript==";

/// Parses `source` (a whole `.user.js` file) into a hosted script, enabled.
pub fn parse(source: &str) -> Result<UserScript, HeaderError> {
    let lines: Vec<&str> = source.lines().collect();
    let start = lines
        .iter()
        .position(|l| is_marker(l, "==UserScript=="))
        .ok_or_else(|| {
            HeaderError::whole(format!(
                "no `// ==UserScript==` header: a userscript starts with a block like\n{EXAMPLE}"
            ))
        })?;
    let end = lines[start + 1..]
        .iter()
        .position(|l| is_marker(l, "==/UserScript=="))
        .map(|i| start + 1 + i)
        .ok_or_else(|| {
            HeaderError::at(
                start + 1,
                "the `// ==UserScript==` header is never closed by `// ==/UserScript==`",
            )
        })?;

    let mut name: Option<(usize, String)> = None;
    let mut version: Option<(usize, String)> = None;
    let mut description: Option<(usize, String)> = None;
    let mut run_at: Option<(usize, RunAt)> = None;
    let mut script = UserScript {
        name: String::new(),
        version: String::new(),
        description: String::new(),
        matches: Vec::new(),
        exclude_matches: Vec::new(),
        exclude_globs: Vec::new(),
        run_at: RunAt::default(),
        noframes: false,
        enabled: true,
        code: source.to_owned(),
    };

    for (index, raw) in lines.iter().enumerate().take(end).skip(start + 1) {
        let n = index + 1;
        let trimmed = raw.trim();
        let Some(comment) = trimmed.strip_prefix("//") else {
            if trimmed.is_empty() {
                continue;
            }
            return Err(HeaderError::at(
                n,
                format!("inside the header every line must be a `//` comment, got {trimmed:?}"),
            ));
        };
        let comment = comment.trim();
        let Some(entry) = comment.strip_prefix('@') else {
            continue; // a plain comment line
        };
        let (key, value) = match entry.split_once(char::is_whitespace) {
            Some((key, value)) => (key, value.trim()),
            None => (entry, ""),
        };
        let needs_value = |what: &str| -> Result<String, HeaderError> {
            if value.is_empty() {
                Err(HeaderError::at(n, format!("@{key} needs {what}")))
            } else {
                Ok(value.to_owned())
            }
        };
        let once = |first: Option<usize>| -> Result<(), HeaderError> {
            match first {
                Some(first) => Err(HeaderError::at(
                    n,
                    format!("@{key} appears twice (first on line {first})"),
                )),
                None => Ok(()),
            }
        };
        match key {
            "name" => {
                once(name.as_ref().map(|(line, _)| *line))?;
                let value = needs_value("the script's name")?;
                check_name(&value).map_err(|e| HeaderError::at(n, e))?;
                name = Some((n, value));
            }
            "version" => {
                once(version.as_ref().map(|(line, _)| *line))?;
                version = Some((n, needs_value("a version, e.g. 1.0")?));
            }
            "description" => {
                once(description.as_ref().map(|(line, _)| *line))?;
                description = Some((n, value.to_owned()));
            }
            "match" => {
                let pattern = needs_value("a match pattern, e.g. https://example.com/*")?;
                check_match_pattern(&pattern)
                    .map_err(|e| HeaderError::at(n, format!("@match {pattern}: {e}")))?;
                script.matches.push(pattern);
            }
            "exclude-match" => {
                let pattern = needs_value("a match pattern, e.g. https://example.com/admin/*")?;
                check_match_pattern(&pattern)
                    .map_err(|e| HeaderError::at(n, format!("@exclude-match {pattern}: {e}")))?;
                script.exclude_matches.push(pattern);
            }
            "exclude" => {
                script
                    .exclude_globs
                    .push(needs_value("a URL glob, e.g. *://*/logout*")?);
            }
            "run-at" => {
                once(run_at.as_ref().map(|(line, _)| *line))?;
                let when = match value {
                    "document-start" => RunAt::DocumentStart,
                    "document-end" => RunAt::DocumentEnd,
                    "document-idle" => RunAt::DocumentIdle,
                    other => {
                        return Err(HeaderError::at(
                            n,
                            format!(
                                "@run-at {other:?} is not supported: use document-start, \
                                 document-end or document-idle"
                            ),
                        ));
                    }
                };
                run_at = Some((n, when));
            }
            "noframes" => script.noframes = true,
            // any runs every hosted script in the page's own world, which is what these
            // values ask for (Violentmonkey's `page`/`auto`, Tampermonkey's `raw` and
            // `JavaScript`); the isolated world they may also ask for is refused.
            "inject-into" if matches!(value, "page" | "auto") => {}
            "inject-into" => {
                return Err(HeaderError::at(
                    n,
                    format!(
                        "@inject-into {value:?} is not supported: any runs userscripts in the \
                         page's own world, where globalThis.__any__ is the page's \
                         (`@inject-into page`); remove the line or say `page`"
                    ),
                ));
            }
            "sandbox" if matches!(value, "raw" | "JavaScript") => {}
            "sandbox" => {
                return Err(HeaderError::at(
                    n,
                    format!(
                        "@sandbox {value:?} is not supported: any runs userscripts in the \
                         page's own world, where globalThis.__any__ is the page's \
                         (`@sandbox raw`); remove the line or say `raw`"
                    ),
                ));
            }
            "grant" if value != "none" => {
                return Err(HeaderError::at(
                    n,
                    format!(
                        "@grant {value}: any runs userscripts in the page's own world, \
                         without GM_* functions; only `@grant none` is supported"
                    ),
                ));
            }
            "include" => {
                return Err(HeaderError::at(
                    n,
                    "@include (URL globs) is not supported: say where the script runs with \
                     @match and a match pattern, e.g. `@match https://example.com/*`",
                ));
            }
            "require" | "resource" => {
                return Err(HeaderError::at(
                    n,
                    format!(
                        "@{key} is not supported: any does not download files for a script; \
                         put the code into the script itself"
                    ),
                ));
            }
            _ => {} // descriptive keys (@namespace, @author, @icon, @name:de, ...)
        }
    }

    let Some((_, name)) = name else {
        return Err(HeaderError::at(
            start + 1,
            "the header has no @name (any identifies hosted scripts by it)",
        ));
    };
    if script.matches.is_empty() {
        return Err(HeaderError::at(
            start + 1,
            "the header has no @match: say which pages the script runs on, \
             e.g. `// @match https://example.com/*`",
        ));
    }
    script.name = name;
    script.version = version.map(|(_, v)| v).unwrap_or_default();
    script.description = description.map(|(_, v)| v).unwrap_or_default();
    script.run_at = run_at.map(|(_, r)| r).unwrap_or_default();
    Ok(script)
}

/// `// ==UserScript==` with any spacing.
fn is_marker(line: &str, marker: &str) -> bool {
    line.trim()
        .strip_prefix("//")
        .is_some_and(|rest| rest.trim() == marker)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.chars().count() > MAX_NAME {
        return Err(format!("@name is longer than {MAX_NAME} characters"));
    }
    if name.starts_with('_') {
        return Err(format!(
            "@name {name:?} starts with `_`, which the browser reserves"
        ));
    }
    if name.chars().any(char::is_control) || name.contains('/') || name.contains('\\') {
        return Err(format!(
            "@name {name:?} contains a slash or a control character"
        ));
    }
    Ok(())
}
