//! Userscripts hosted by the server (`any scripts …`, `/v1/scripts`) and ad-hoc scripts
//! (`any run`, `POST /v1/run`). Runs inside `any serve`.
//!
//! The [`Store`] keeps every hosted script as a file in the scripts directory
//! (`<data dir>/scripts/`, `any serve --scripts-dir`): `<name>.user.js` when enabled,
//! `<name>.user.js.disabled` when not. It is read once at start-up; every change through
//! the API writes the file first, then updates memory, then hands the full set to the
//! [`Hub`], which sends a `scripts` frame to every connected extension (and to each one
//! that connects later, right after `welcome`). The extension makes its
//! `chrome.userScripts` registrations equal to the enabled scripts of the latest frame.
//!
//! Ad-hoc scripts are refused with `scripts_disabled` unless the server was started with
//! `--allow-scripts`; then they are calls like any other (same table, deadline, routing,
//! answers), sent as a `run` frame instead of `call`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use any_protocol::api::{AddScript, CallSuccess, RunRequest, ScriptChange, ScriptInfo, ScriptList};
use any_protocol::{ServerFrame, UserScript, encode};
use axum::Json;
use axum::extract::{Path as UrlPath, State};

use crate::api::ApiJson;
use crate::{AppState, Error, Hub};

/// The capability an extension announces in `hello` when `chrome.userScripts` works
/// there (the browser's "Allow User Scripts" switch is on).
pub const USER_SCRIPTS: &str = "user_scripts";

/// What to switch on in the browser, in every message that needs it.
pub const ALLOW_USER_SCRIPTS: &str =
    "open chrome://extensions, click Details on any, and switch on \"Allow User Scripts\"";

const ENABLED: &str = ".user.js";
const DISABLED: &str = ".user.js.disabled";

/// The hosted scripts: in memory, and as files when there is a directory.
pub struct Store {
    dir: Option<PathBuf>,
    scripts: Mutex<BTreeMap<String, Stored>>,
}

#[derive(Clone)]
struct Stored {
    script: UserScript,
    /// The file's name without the directory and without the enabled/disabled suffix.
    stem: String,
}

impl Store {
    /// Reads every script in `dir` (created if missing). `None`: keep scripts in memory
    /// only (tests). A file that does not parse is logged and left alone.
    pub fn load(dir: Option<PathBuf>) -> std::io::Result<Self> {
        let mut scripts = BTreeMap::new();
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir)?;
            let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            for path in entries {
                let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
                    continue;
                };
                let (stem, enabled) = if let Some(stem) = file.strip_suffix(DISABLED) {
                    (stem, false)
                } else if let Some(stem) = file.strip_suffix(ENABLED) {
                    (stem, true)
                } else {
                    continue;
                };
                let source = match std::fs::read_to_string(&path) {
                    Ok(source) => source,
                    Err(e) => {
                        tracing::warn!("skipped the userscript {}: {e}", path.display());
                        continue;
                    }
                };
                match any_userscript::parse(&source) {
                    Ok(mut script) => {
                        script.enabled = enabled;
                        let name = script.name.clone();
                        if scripts.contains_key(&name) {
                            tracing::warn!(
                                "skipped {}: another file already holds a script named {name:?}",
                                path.display()
                            );
                            continue;
                        }
                        scripts.insert(
                            name,
                            Stored {
                                script,
                                stem: stem.to_owned(),
                            },
                        );
                    }
                    Err(e) => tracing::warn!("skipped the userscript {}: {e}", path.display()),
                }
            }
            tracing::info!(
                "{} hosted userscript(s) in {}",
                scripts.len(),
                dir.display()
            );
        }
        Ok(Store {
            dir,
            scripts: Mutex::new(scripts),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Stored>> {
        self.scripts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The encoded `scripts` frame of the current set.
    pub fn frame(&self) -> String {
        let scripts = self.lock().values().map(|s| s.script.clone()).collect();
        encode(&ServerFrame::Scripts(any_protocol::Scripts { scripts }))
    }

    /// Every script, without code, ordered by name.
    pub fn list(&self) -> Vec<ScriptInfo> {
        self.lock().values().map(|s| self.info(s)).collect()
    }

    fn file(&self, stored: &Stored) -> Option<PathBuf> {
        let suffix = if stored.script.enabled {
            ENABLED
        } else {
            DISABLED
        };
        self.dir
            .as_ref()
            .map(|d| d.join(format!("{}{suffix}", stored.stem)))
    }

    fn info(&self, stored: &Stored) -> ScriptInfo {
        let s = &stored.script;
        ScriptInfo {
            name: s.name.clone(),
            version: s.version.clone(),
            description: s.description.clone(),
            matches: s.matches.clone(),
            exclude_matches: s.exclude_matches.clone(),
            exclude_globs: s.exclude_globs.clone(),
            run_at: s.run_at,
            enabled: s.enabled,
            file: self
                .file(stored)
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        }
    }

    /// Adds a script, or replaces the one with the same `@name` (keeping whether it was
    /// enabled).
    pub fn add(&self, source: &str) -> Result<ScriptInfo, Error> {
        let mut script = any_userscript::parse(source)
            .map_err(|e| Error::BadRequest(format!("not a userscript any can host: {e}")))?;
        let mut scripts = self.lock();
        let stem = match scripts.get(&script.name) {
            Some(old) => {
                script.enabled = old.script.enabled;
                old.stem.clone()
            }
            None => unique_stem(&script.name, scripts.values().map(|s| s.stem.as_str())),
        };
        let stored = Stored { script, stem };
        if let Some(path) = self.file(&stored) {
            write_file(&path, source)?;
        }
        let info = self.info(&stored);
        scripts.insert(stored.script.name.clone(), stored);
        Ok(info)
    }

    /// Removes a script and its file.
    pub fn remove(&self, name: &str) -> Result<ScriptInfo, Error> {
        let mut scripts = self.lock();
        let stored = scripts
            .get(name)
            .cloned()
            .ok_or_else(|| no_such(name, &scripts))?;
        if let Some(path) = self.file(&stored) {
            std::fs::remove_file(&path)
                .or_else(ignore_missing)
                .map_err(|e| {
                    Error::BadRequest(format!("could not delete {}: {e}", path.display()))
                })?;
        }
        scripts.remove(name);
        Ok(self.info(&stored))
    }

    /// Enables or disables a script (renames its file).
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<ScriptInfo, Error> {
        let mut scripts = self.lock();
        let stored = scripts
            .get_mut(name)
            .ok_or_else(|| no_such(name, &BTreeMap::new()))?;
        if stored.script.enabled != enabled {
            let from = self.file(stored);
            stored.script.enabled = enabled;
            let to = self.file(stored);
            if let (Some(from), Some(to)) = (from, to)
                && let Err(e) = std::fs::rename(&from, &to)
            {
                stored.script.enabled = !enabled;
                return Err(Error::BadRequest(format!(
                    "could not rename {} to {}: {e}",
                    from.display(),
                    to.display()
                )));
            }
        }
        Ok(self.info(stored))
    }
}

fn no_such(name: &str, scripts: &BTreeMap<String, Stored>) -> Error {
    let known: Vec<String> = scripts.keys().map(|n| format!("{n:?}")).collect();
    let known = if known.is_empty() {
        String::new()
    } else {
        format!(" (hosted: {})", known.join(", "))
    };
    Error::BadRequest(format!(
        "no hosted userscript is named {name:?}{known}; `any scripts list` shows them"
    ))
}

fn ignore_missing(e: std::io::Error) -> std::io::Result<()> {
    if e.kind() == std::io::ErrorKind::NotFound {
        Ok(())
    } else {
        Err(e)
    }
}

fn write_file(path: &Path, source: &str) -> Result<(), Error> {
    // Write next to it and rename: a crash never leaves half a script behind.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, source)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::BadRequest(format!("could not write {}: {e}", path.display())))
}

/// A file name for `name`: its letters, digits, `-`, `_` and `.`, others as `_`; made
/// unique among `taken` with a counter.
fn unique_stem<'a>(name: &str, taken: impl Iterator<Item = &'a str>) -> String {
    let base: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let base = base.trim_start_matches('.').to_owned();
    let base = if base.is_empty() {
        "script".to_owned()
    } else {
        base
    };
    let taken: Vec<&str> = taken.collect();
    let mut stem = base.clone();
    let mut n = 2;
    while taken.contains(&stem.as_str()) {
        stem = format!("{base}-{n}");
        n += 1;
    }
    stem
}

/// Why hosted scripts may not run: connected browsers without `chrome.userScripts`.
fn warnings(hub: &Hub) -> Vec<String> {
    hub.extensions_without(USER_SCRIPTS)
        .into_iter()
        .map(|who| {
            format!("{who}: \"Allow User Scripts\" is off, so hosted scripts do not run there: {ALLOW_USER_SCRIPTS}")
        })
        .collect()
}

fn changed(state: &AppState, script: ScriptInfo) -> Json<ScriptChange> {
    state.hub.publish_scripts(state.scripts.frame());
    Json(ScriptChange {
        script,
        warnings: warnings(&state.hub),
    })
}

/// `GET /v1/scripts`.
pub async fn list(State(state): State<AppState>) -> Json<ScriptList> {
    Json(ScriptList {
        scripts: state.scripts.list(),
        warnings: warnings(&state.hub),
    })
}

/// `POST /v1/scripts`: add or replace a script.
pub async fn add(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AddScript>,
) -> Result<Json<ScriptChange>, Error> {
    let info = state.scripts.add(&request.source)?;
    tracing::info!(
        "hosted userscript {:?} added ({})",
        info.name,
        info.matches.join(" ")
    );
    Ok(changed(&state, info))
}

/// `DELETE /v1/scripts/{name}`.
pub async fn remove(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<ScriptChange>, Error> {
    let info = state.scripts.remove(&name)?;
    tracing::info!("hosted userscript {name:?} removed");
    Ok(changed(&state, info))
}

/// `POST /v1/scripts/{name}/enable`.
pub async fn enable(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<ScriptChange>, Error> {
    let info = state.scripts.set_enabled(&name, true)?;
    tracing::info!("hosted userscript {name:?} enabled");
    Ok(changed(&state, info))
}

/// `POST /v1/scripts/{name}/disable`.
pub async fn disable(
    State(state): State<AppState>,
    UrlPath(name): UrlPath<String>,
) -> Result<Json<ScriptChange>, Error> {
    let info = state.scripts.set_enabled(&name, false)?;
    tracing::info!("hosted userscript {name:?} disabled");
    Ok(changed(&state, info))
}

/// `POST /v1/run`: an ad-hoc script, only with `--allow-scripts`.
pub async fn run(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RunRequest>,
) -> Result<Json<CallSuccess>, Error> {
    if !state.config.allow_scripts {
        return Err(Error::ScriptsDisabled(
            "ad-hoc scripts are off: start the server with `any serve --allow-scripts` to run \
             them (by default only named methods on globalThis.__any__ are callable)"
                .into(),
        ));
    }
    let RunRequest {
        page,
        script,
        timeout_ms,
        browser,
        tab,
    } = request;
    if script.trim().is_empty() {
        return Err(Error::BadRequest(
            "`script` is empty: send the body of an async function, e.g. \"return document.title;\"".into(),
        ));
    }
    let call = any_protocol::api::CallRequest {
        page,
        method: RUN_METHOD.to_owned(),
        params: None,
        timeout_ms,
        browser,
        tab,
    };
    let mut new = crate::api::validate(call)?;
    new.script = Some(script);
    crate::api::start(state, new).await
}

/// How an ad-hoc script appears where a method name would (status, logs).
pub const RUN_METHOD: &str = "(script)";
