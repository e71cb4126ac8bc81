//! `any browser`: starts Chromium with the built extension, ready to automate.
//!
//! Runs in the `any` process (native, not in a browser). It finds a Chromium, copies the
//! built extension into the profile (`<profile>/any-extension/`) with a `config.json` that
//! points the extension at `ws://127.0.0.1:<port>/v1/extension`, and starts Chromium with
//! `--load-extension`, a dedicated `--user-data-dir`, background throttling off and the
//! background-network chatter silenced. It stays in the foreground until Chromium exits
//! and stops Chromium when it is itself interrupted (SIGINT/SIGTERM), so no browser is
//! left behind.
//!
//! Branded Google Chrome 137+ ignores `--load-extension`. Chromium, Chrome for Testing and
//! older Chrome honour it. Should branded Chrome be needed later, the way that works
//! everywhere is to start it with `--remote-debugging-pipe --enable-unsafe-extension-debugging`
//! and send the CDP command `Extensions.loadUnpacked {path}` over the pipe (fds 3/4).

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::signal::unix::{Signal, SignalKind, signal};

/// Browsers tried on `PATH`, in order, when `--chromium` is not given.
const CHROMIUM_NAMES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

/// Where the built extension lives relative to the workspace root (`./build.sh build`).
const DIST_EXTENSION: &str = "dist/extension";

/// The copy of the extension inside the profile; Chromium loads this one.
const PROFILE_EXTENSION: &str = "any-extension";

/// Chromium's stdout and stderr, inside the profile.
const CHROMIUM_LOG: &str = "chromium.log";

/// How long Chromium gets to close its profile cleanly after SIGTERM before it is killed.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Flags of `any browser`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct BrowserArgs {
    /// Run Chromium without a window (`--headless=new`).
    #[arg(long)]
    pub headless: bool,
    /// The browser profile (`--user-data-dir`). Default: a persistent profile kept for
    /// `any`, e.g. `~/.local/share/any/browser-profile`.
    #[arg(long, value_name = "DIR")]
    pub profile: Option<PathBuf>,
    /// The Chromium (or Chrome for Testing) executable. Default: the first of
    /// `chromium`, `chromium-browser`, `google-chrome` on PATH.
    #[arg(long, value_name = "PATH")]
    pub chromium: Option<PathBuf>,
    /// The built extension directory. Default: `dist/extension`, looked for above the
    /// `any` executable, then above the current directory.
    #[arg(long, value_name = "DIR")]
    pub extension: Option<PathBuf>,
    /// The label this browser's extension reports, used to route calls
    /// (`any call --browser LABEL`). Default: none.
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// One more Chromium command-line flag, passed as is after the ones `any browser`
    /// sets; repeatable. Example: `--chromium-arg=--remote-debugging-port=0` (DevTools
    /// then writes the port it chose to `<profile>/DevToolsActivePort`).
    #[arg(long, value_name = "FLAG", allow_hyphen_values = true)]
    pub chromium_arg: Vec<String>,
}

/// Runs `any browser` against the server on `port`; returns when the browser exits.
pub async fn run(port: u16, args: BrowserArgs) -> anyhow::Result<()> {
    let chromium = find_chromium(args.chromium.as_deref())?;
    let extension = find_extension(args.extension.as_deref())?;
    let profile = match args.profile {
        Some(dir) => dir,
        None => default_profile()?,
    };
    std::fs::create_dir_all(&profile)
        .with_context(|| format!("cannot create the profile directory {}", profile.display()))?;
    let profile = profile
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", profile.display()))?;
    refuse_profile_in_use(&profile)?;

    let server = format!("ws://127.0.0.1:{port}/v1/extension");
    let label = args.label.unwrap_or_default();
    let loaded = install_extension(&extension, &profile, &server, &label)?;
    enable_developer_mode(&profile)?;
    allow_user_scripts(&profile)?;

    // Chromium is chatty on stderr (D-Bus, GPU, ...): keep its output out of the terminal
    // but findable.
    let log_path = profile.join(CHROMIUM_LOG);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    // Listen for SIGINT/SIGTERM before Chromium exists, so that no signal can end this
    // process while leaving the browser behind.
    let signals = Signals::new()?;
    let mut command = Command::new(&chromium);
    command
        .args(chromium_flags(
            &profile,
            &loaded,
            args.headless,
            &args.chromium_arg,
        ))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .with_context(|| format!("cannot start {}", chromium.display()))?;
    let pid = child.id().unwrap_or_default();
    println!(
        "any browser: started {} (pid {pid}{}) with the extension from {}, profile {} \
         (browser log: {}), server {server}{}",
        chromium.display(),
        if args.headless { ", headless" } else { "" },
        extension.display(),
        profile.display(),
        log_path.display(),
        if label.is_empty() {
            String::new()
        } else {
            format!(", label {label:?}")
        },
    );

    let status = wait_or_stop(&mut child, signals).await?;
    match status {
        Some(status) if !status.success() => bail!(
            "Chromium exited with {status}; its last messages:\n{}",
            log_tail(&log_path, 15)
        ),
        _ => Ok(()),
    }
}

/// The signals that end `any browser` (and with it, Chromium).
struct Signals {
    interrupt: Signal,
    terminate: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?,
            terminate: signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?,
        })
    }
}

/// Waits for Chromium to exit, or stops it when this process gets SIGINT or SIGTERM.
/// Returns Chromium's exit status, or `None` when we stopped it.
async fn wait_or_stop(
    child: &mut Child,
    mut signals: Signals,
) -> anyhow::Result<Option<ExitStatus>> {
    tokio::select! {
        status = child.wait() => return Ok(Some(status?)),
        _ = signals.interrupt.recv() => {}
        _ = signals.terminate.recv() => {}
    }
    eprintln!("any browser: stopping Chromium");
    stop(child).await?;
    Ok(None)
}

/// Asks Chromium to quit (SIGTERM, so it saves the profile), then kills it after
/// [`SHUTDOWN_GRACE`]. Chromium's helper processes exit with their browser process.
async fn stop(child: &mut Child) -> anyhow::Result<()> {
    if let Some(pid) = child.id() {
        // The workspace forbids `unsafe`, so no direct kill(2); kill(1) is on every Unix.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .stderr(Stdio::null())
            .status();
        if tokio::time::timeout(SHUTDOWN_GRACE, child.wait())
            .await
            .is_ok()
        {
            return Ok(());
        }
        eprintln!("any browser: Chromium did not quit within {SHUTDOWN_GRACE:?}; killing it");
    }
    child.kill().await.context("cannot kill Chromium")
}

/// The Chromium command line, apart from the executable: ours, then `extra` (the
/// user's `--chromium-arg`s), then the first page.
fn chromium_flags(
    profile: &Path,
    extension: &Path,
    headless: bool,
    extra: &[String],
) -> Vec<String> {
    let mut flags = vec![
        format!("--user-data-dir={}", profile.display()),
        format!("--load-extension={}", extension.display()),
        // A tab that is not in front still runs its timers at full speed: calls run in
        // tabs the user is not looking at.
        "--disable-background-timer-throttling".into(),
        "--disable-renderer-backgrounding".into(),
        "--disable-backgrounding-occluded-windows".into(),
        // No first-run UI and no chatter with Google's services.
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-quic".into(),
    ];
    if headless {
        flags.push("--headless=new".into());
        flags.push("--disable-gpu".into());
    }
    if running_as_root() {
        // Chromium refuses to start as root with its sandbox on (containers, CI).
        flags.push("--no-sandbox".into());
    }
    flags.extend(extra.iter().cloned());
    flags.push("about:blank".into());
    flags
}

/// The browser executable: `--chromium`, else the first known name on `PATH`.
fn find_chromium(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = flag {
        if path.components().count() > 1 {
            if !path.is_file() {
                bail!("--chromium {}: no such file", path.display());
            }
            return Ok(path.to_owned());
        }
        return on_path(path.as_os_str())
            .with_context(|| format!("--chromium {}: not found on PATH", path.display()));
    }
    CHROMIUM_NAMES
        .iter()
        .find_map(|name| on_path(name.as_ref()))
        .with_context(|| {
            format!(
                "no Chromium found (looked for {} on PATH): install it (Debian/Ubuntu: \
                 sudo apt-get install chromium) or pass --chromium PATH",
                CHROMIUM_NAMES.join(", ")
            )
        })
}

/// The first executable file called `name` in a `PATH` directory.
fn on_path(name: &std::ffi::OsStr) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|file| {
            file.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The built extension: `--extension`, else `dist/extension` above the executable, then
/// above the current directory.
fn find_extension(flag: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = flag {
        if !dir.join("manifest.json").is_file() {
            bail!(
                "--extension {}: no manifest.json there; build the extension with ./build.sh build",
                dir.display()
            );
        }
        return Ok(dir.canonicalize()?);
    }
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.canonicalize().ok())
        .and_then(|exe| exe.parent().map(Path::to_owned));
    let cwd = std::env::current_dir().ok();
    [exe_dir, cwd]
        .into_iter()
        .flatten()
        .find_map(|start| {
            start
                .ancestors()
                .map(|dir| dir.join(DIST_EXTENSION))
                .find(|dir| dir.join("manifest.json").is_file())
        })
        .context(
            "the built extension (dist/extension) was not found above the any executable or the \
             current directory: run ./build.sh build in the any repository, or pass --extension DIR",
        )
}

/// The persistent profile used when `--profile` is not given.
fn default_profile() -> anyhow::Result<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => {
            let home = std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .context("HOME is not set: pass --profile DIR")?;
            if cfg!(target_os = "macos") {
                Path::new(&home).join("Library/Application Support")
            } else {
                Path::new(&home).join(".local/share")
            }
        }
    };
    Ok(data.join("any").join("browser-profile"))
}

/// Fails when a running Chromium holds `profile`: a second Chromium on the same profile
/// would hand its arguments to the first one and exit at once, without our extension.
/// (Liveness is read from `/proc`; where there is none, the check is skipped.)
fn refuse_profile_in_use(profile: &Path) -> anyhow::Result<()> {
    // Chromium's lock is a symlink `SingletonLock -> <hostname>-<pid>`.
    let Ok(target) = std::fs::read_link(profile.join("SingletonLock")) else {
        return Ok(());
    };
    let target = target.to_string_lossy();
    let Some(pid) = target
        .rsplit('-')
        .next()
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return Ok(());
    };
    if Path::new(&format!("/proc/{pid}")).exists() {
        bail!(
            "the profile {} is in use by a running Chromium (pid {pid}): close it, or pass \
             another --profile",
            profile.display()
        );
    }
    Ok(())
}

/// Copies the extension to `<profile>/any-extension/` and writes its `config.json`;
/// returns the copy's path.
fn install_extension(
    extension: &Path,
    profile: &Path,
    server: &str,
    label: &str,
) -> anyhow::Result<PathBuf> {
    let target = profile.join(PROFILE_EXTENSION);
    if target.exists() {
        std::fs::remove_dir_all(&target)
            .with_context(|| format!("cannot replace {}", target.display()))?;
    }
    copy_dir(extension, &target).with_context(|| {
        format!(
            "cannot copy the extension from {} to {}",
            extension.display(),
            target.display()
        )
    })?;
    let config = serde_json::json!({ "server": server, "label": label });
    std::fs::write(target.join("config.json"), format!("{config:#}\n"))
        .with_context(|| format!("cannot write {}", target.join("config.json").display()))?;
    Ok(target)
}

/// Turns on the profile's extension developer mode (`extensions.ui.developer_mode` in
/// `Default/Preferences`, other settings kept). Without it Chromium 137+ disables an
/// unpacked extension as soon as it reloads itself (`chrome.runtime.reload()`, which the
/// extension does to recover from a crash, and which the extensions page's reload
/// button does): the disable reason is `unsupportedDeveloperExtension`, and the browser
/// never connects again. `--load-extension` alone is allowed; the reload is not.
fn enable_developer_mode(profile: &Path) -> anyhow::Result<()> {
    update_preferences(profile, |prefs| {
        let node = object_at(prefs, &["extensions", "ui"]);
        if node.get("developer_mode") == Some(&serde_json::Value::Bool(true)) {
            return false;
        }
        node["developer_mode"] = serde_json::Value::Bool(true);
        true
    })
}

/// Switches on "Allow User Scripts" for the any extension
/// (`extensions.settings.<id>.user_scripts_enabled` in `Default/Preferences`), which
/// `chrome.userScripts` needs on Chromium 138+ (hosted userscripts, `any run`) — unless
/// the profile already says otherwise, so a user who switched it off keeps it off.
/// Chromium 156 honours the value written before it starts (verified here: with it,
/// `chrome.userScripts` is an object; without it, `undefined`).
fn allow_user_scripts(profile: &Path) -> anyhow::Result<()> {
    update_preferences(profile, |prefs| {
        let node = object_at(
            prefs,
            &["extensions", "settings", any_protocol::EXTENSION_ID],
        );
        if node.get("user_scripts_enabled").is_some() {
            return false;
        }
        node["user_scripts_enabled"] = serde_json::Value::Bool(true);
        true
    })
}

/// The object at `path` in `value`, created (replacing non-objects) where missing.
fn object_at<'a>(value: &'a mut serde_json::Value, path: &[&str]) -> &'a mut serde_json::Value {
    let mut node = value;
    for key in path {
        if !node.get(*key).is_some_and(serde_json::Value::is_object) {
            node[*key] = serde_json::json!({});
        }
        node = &mut node[*key];
    }
    node
}

/// Reads `Default/Preferences` (other settings kept), lets `change` edit it, and writes
/// it back when `change` says it changed something.
fn update_preferences(
    profile: &Path,
    change: impl FnOnce(&mut serde_json::Value) -> bool,
) -> anyhow::Result<()> {
    let dir = profile.join("Default");
    let path = dir.join("Preferences");
    let mut prefs = match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).unwrap_or_else(|e| {
            eprintln!(
                "any browser: {} is not JSON ({e}); starting it afresh",
                path.display()
            );
            serde_json::json!({})
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if !prefs.is_object() {
        prefs = serde_json::json!({});
    }
    if !change(&mut prefs) {
        return Ok(());
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    std::fs::write(&path, prefs.to_string())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Copies the directory tree `from` to `to` (files and directories; symlinks followed).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// The last `lines` lines of the file at `path` (empty when unreadable).
fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Whether this process runs as root (Linux: the owner of `/proc/self`).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("any-browser-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn installs_a_copy_with_config_pointing_at_the_port() {
        let root = temp_dir("install");
        let ext = root.join("ext");
        std::fs::create_dir_all(ext.join("wasm")).unwrap();
        std::fs::write(ext.join("manifest.json"), "{}").unwrap();
        std::fs::write(ext.join("wasm/x.wasm"), "wasm").unwrap();
        let profile = root.join("profile");
        // A stale file from an older copy must not survive.
        std::fs::create_dir_all(profile.join(PROFILE_EXTENSION)).unwrap();
        std::fs::write(profile.join(PROFILE_EXTENSION).join("stale.js"), "").unwrap();

        let copy =
            install_extension(&ext, &profile, "ws://127.0.0.1:4321/v1/extension", "work").unwrap();

        assert_eq!(copy, profile.join("any-extension"));
        assert_eq!(
            std::fs::read_to_string(copy.join("wasm/x.wasm")).unwrap(),
            "wasm"
        );
        assert!(!copy.join("stale.js").exists());
        let config: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(copy.join("config.json")).unwrap())
                .unwrap();
        assert_eq!(
            config,
            serde_json::json!({"server": "ws://127.0.0.1:4321/v1/extension", "label": "work"})
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn flags_load_the_copy_in_its_own_profile_without_throttling() {
        let flags = chromium_flags(Path::new("/p"), Path::new("/p/any-extension"), true, &[]);
        for expected in [
            "--user-data-dir=/p",
            "--load-extension=/p/any-extension",
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            "--headless=new",
        ] {
            assert!(
                flags.iter().any(|f| f == expected),
                "{expected} missing from {flags:?}"
            );
        }
        let windowed = chromium_flags(Path::new("/p"), Path::new("/e"), false, &[]);
        assert!(!windowed.iter().any(|f| f.starts_with("--headless")));
    }

    #[test]
    fn extra_chromium_args_come_after_ours_and_before_the_first_page() {
        let extra = [
            "--remote-debugging-port=0".to_owned(),
            "--lang=de".to_owned(),
        ];
        let flags = chromium_flags(Path::new("/p"), Path::new("/e"), true, &extra);
        let n = flags.len();
        assert_eq!(
            flags[n - 3..],
            ["--remote-debugging-port=0", "--lang=de", "about:blank"]
        );
        // And the command line accepts a flag-like value.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            browser: BrowserArgs,
        }
        let cli = <Cli as clap::Parser>::try_parse_from([
            "any",
            "--chromium-arg",
            "--remote-debugging-port=0",
            "--chromium-arg=--lang=de",
        ])
        .unwrap();
        assert_eq!(cli.browser.chromium_arg, extra);
    }

    #[test]
    fn user_scripts_are_allowed_unless_the_profile_says_otherwise() {
        let profile = temp_dir("user-scripts");
        let read = || -> serde_json::Value {
            serde_json::from_str(
                &std::fs::read_to_string(profile.join("Default/Preferences")).unwrap(),
            )
            .unwrap()
        };
        enable_developer_mode(&profile).unwrap();
        allow_user_scripts(&profile).unwrap();
        let prefs = read();
        assert_eq!(
            prefs["extensions"]["settings"][any_protocol::EXTENSION_ID]["user_scripts_enabled"],
            true
        );
        assert_eq!(prefs["extensions"]["ui"]["developer_mode"], true);
        // Switched off by the user: kept off.
        let off = serde_json::json!({"extensions": {"settings": {any_protocol::EXTENSION_ID:
            {"user_scripts_enabled": false, "path": "x"}}}});
        std::fs::write(profile.join("Default/Preferences"), off.to_string()).unwrap();
        allow_user_scripts(&profile).unwrap();
        assert_eq!(read(), off);
        std::fs::remove_dir_all(profile).unwrap();
    }

    #[test]
    fn developer_mode_is_switched_on_keeping_the_other_preferences() {
        let profile = temp_dir("prefs");
        enable_developer_mode(&profile).unwrap();
        let read = || -> serde_json::Value {
            serde_json::from_str(
                &std::fs::read_to_string(profile.join("Default/Preferences")).unwrap(),
            )
            .unwrap()
        };
        assert_eq!(read()["extensions"]["ui"]["developer_mode"], true);
        std::fs::write(
            profile.join("Default/Preferences"),
            r#"{"browser":{"x":1},"extensions":{"ui":{"developer_mode":false},"y":2}}"#,
        )
        .unwrap();
        enable_developer_mode(&profile).unwrap();
        assert_eq!(
            read(),
            serde_json::json!({"browser":{"x":1},"extensions":{"ui":{"developer_mode":true},"y":2}})
        );
        std::fs::remove_dir_all(profile).unwrap();
    }

    #[test]
    fn a_missing_extension_says_how_to_build_it() {
        let root = temp_dir("missing");
        let err = find_extension(Some(&root)).unwrap_err().to_string();
        assert!(err.contains("./build.sh build"), "{err}");
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_profile_held_by_a_running_chromium_is_refused() {
        let profile = temp_dir("lock");
        let lock = profile.join("SingletonLock");
        // A lock left by a process that is gone (pids are below 2^22 on Linux).
        std::os::unix::fs::symlink("some-host-99999999", &lock).unwrap();
        refuse_profile_in_use(&profile).unwrap();
        // A lock held by a live process: this test's own.
        std::fs::remove_file(&lock).unwrap();
        std::os::unix::fs::symlink(format!("some-host-{}", std::process::id()), &lock).unwrap();
        let err = refuse_profile_in_use(&profile).unwrap_err().to_string();
        assert!(err.contains("in use by a running Chromium"), "{err}");
        std::fs::remove_dir_all(profile).unwrap();
    }

    #[test]
    fn a_missing_chromium_flag_is_an_error() {
        let err = find_chromium(Some(Path::new("/nonexistent/chromium"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/chromium"), "{err}");
    }
}
