//! `any browser`: starts Chromium with the built extension, ready to automate.
//!
//! Runs in the `any` process (native, not in a browser). It finds a Chromium, copies the
//! built extension into the profile (`<profile>/any-extension/`) with a `config.json` that
//! points the extension at `ws://127.0.0.1:<port>/v1/extension`, and starts Chromium with
//! a dedicated `--user-data-dir`, background throttling off and the background-network
//! chatter silenced. It stays in the foreground until Chromium exits and stops Chromium
//! when it is itself interrupted (SIGINT/SIGTERM), so no browser is left behind.
//!
//! How the extension gets in (`--load-with`):
//! - `flag`: `--load-extension=<copy>` on the command line. Chromium (Debian's included),
//!   Chrome for Testing and Google Chrome before 137 honour it.
//! - `cdp`: branded Google Chrome 137+ ignores `--load-extension`, so Chromium is started
//!   with `--remote-debugging-port=0 --enable-unsafe-extension-debugging`; once it has
//!   written `<profile>/DevToolsActivePort` (port, then the browser's WebSocket path; a
//!   stale one is deleted before launch), `any browser` connects to
//!   `ws://127.0.0.1:<port><path>` and sends the DevTools command
//!   `Extensions.loadUnpacked {path: <copy>}`, which answers the extension's id (checked
//!   against [`any_protocol::EXTENSION_ID`]). The trade-off: while the browser runs, it
//!   listens for DevTools connections on a loopback port, through which any local process
//!   can drive it. (`--remote-debugging-pipe` would avoid the port, but needs fds 3/4 set
//!   up in the child, which needs `unsafe`, forbidden in this workspace.) Verified with
//!   Chromium 156, which loads over the port; the Chromium source of the Chrome 137 era
//!   allowed `Extensions.loadUnpacked` only to pipe clients ("Method not available."
//!   otherwise), so an older branded Chrome may refuse, and the error says so.
//! - `auto` (default): `cdp` when the executable's `--version` says branded
//!   "Google Chrome" 137 or later, else `flag`.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::{SinkExt, StreamExt};
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

/// Where Chromium writes the DevTools port it chose, inside the profile.
const DEVTOOLS_ACTIVE_PORT: &str = "DevToolsActivePort";

/// How long `--load-with cdp` waits for Chromium's DevTools endpoint and its answer to
/// `Extensions.loadUnpacked`.
const CDP_LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long `chromium --version` may take (for `--load-with auto`).
const VERSION_TIMEOUT: Duration = Duration::from_secs(10);

/// The first branded Google Chrome that ignores `--load-extension`.
const CHROME_WITHOUT_LOAD_EXTENSION: u32 = 137;

/// How `any browser` loads the extension into the browser (`--load-with`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LoadWith {
    /// `cdp` when `--version` says branded "Google Chrome" 137+, else `flag`.
    #[default]
    Auto,
    /// `--load-extension` on the command line (Chromium, Chrome for Testing).
    Flag,
    /// DevTools `Extensions.loadUnpacked` once the browser runs (branded Chrome 137+);
    /// the browser then listens for DevTools on a loopback port while it runs.
    Cdp,
}

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
    /// How many idle tabs the extension keeps open; beyond that it closes the least
    /// recently used idle ones (tabs running a call are never closed). Default: the
    /// extension's own (10, or what its Options page says).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub max_tabs: Option<u16>,
    /// One more Chromium command-line flag, passed as is after the ones `any browser`
    /// sets; repeatable. Example: `--chromium-arg=--remote-debugging-port=0` (DevTools
    /// then writes the port it chose to `<profile>/DevToolsActivePort`).
    #[arg(long, value_name = "FLAG", allow_hyphen_values = true)]
    pub chromium_arg: Vec<String>,
    /// How the extension gets into the browser: `flag` (`--load-extension`), `cdp`
    /// (DevTools `Extensions.loadUnpacked`, for branded Google Chrome 137+, which ignores
    /// `--load-extension`; the browser then exposes a DevTools port on 127.0.0.1 while it
    /// runs) or `auto`: `cdp` for branded Google Chrome 137+ (by `--version`), else `flag`.
    #[arg(long, value_enum, value_name = "HOW", default_value_t = LoadWith::Auto)]
    pub load_with: LoadWith,
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
    let load_with = match args.load_with {
        LoadWith::Auto => detect_load_with(&chromium).await,
        chosen => chosen,
    };

    let server = format!("ws://127.0.0.1:{port}/v1/extension");
    let label = args.label.unwrap_or_default();
    let loaded = install_extension(&extension, &profile, &server, &label, args.max_tabs)?;
    enable_developer_mode(&profile)?;
    allow_user_scripts(&profile)?;
    if load_with == LoadWith::Cdp {
        // A file left by an earlier run would name a port nobody listens on any more.
        remove_if_present(&profile.join(DEVTOOLS_ACTIVE_PORT))?;
    }

    // Chromium is chatty on stderr (D-Bus, GPU, ...): keep its output out of the terminal
    // but findable.
    let log_path = profile.join(CHROMIUM_LOG);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    // Listen for SIGINT/SIGTERM before Chromium exists, so that no signal can end this
    // process while leaving the browser behind.
    let mut signals = Signals::new()?;
    let mut command = Command::new(&chromium);
    command
        .args(chromium_flags(
            &profile,
            &loaded,
            load_with,
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
        "any browser: started {} (pid {pid}{}) with the extension from {} ({}), profile {} \
         (browser log: {}), server {server}{}",
        chromium.display(),
        if args.headless { ", headless" } else { "" },
        extension.display(),
        match load_with {
            LoadWith::Cdp => "loaded through DevTools",
            _ => "loaded with --load-extension",
        },
        profile.display(),
        log_path.display(),
        if label.is_empty() {
            String::new()
        } else {
            format!(", label {label:?}")
        },
    );

    if load_with == LoadWith::Cdp {
        let started = Instant::now();
        let early = tokio::select! {
            loaded = load_through_devtools(&profile, &loaded) => Early::Loaded(loaded),
            status = child.wait() => Early::Exited(status),
            _ = signals.interrupt.recv() => Early::Signalled,
            _ = signals.terminate.recv() => Early::Signalled,
        };
        match early {
            Early::Loaded(Ok(port)) => println!(
                "any browser: extension {} loaded through DevTools on 127.0.0.1:{port} in {} ms",
                any_protocol::EXTENSION_ID,
                started.elapsed().as_millis()
            ),
            Early::Loaded(Err(error)) => {
                eprintln!("any browser: stopping Chromium");
                stop(&mut child).await?;
                return Err(error.context(format!(
                    "cannot load the extension through DevTools (browser log: {})",
                    log_path.display()
                )));
            }
            Early::Exited(status) => bail!(
                "Chromium exited with {} before the extension was loaded; its last messages:\n{}",
                status?,
                log_tail(&log_path, 15)
            ),
            Early::Signalled => {
                eprintln!("any browser: stopping Chromium");
                stop(&mut child).await?;
                return Ok(());
            }
        }
    }

    let status = wait_or_stop(&mut child, signals).await?;
    match status {
        Some(status) if !status.success() => bail!(
            "Chromium exited with {status}; its last messages:\n{}",
            log_tail(&log_path, 15)
        ),
        _ => Ok(()),
    }
}

/// What ended the wait for `--load-with cdp`'s loading.
enum Early {
    /// The loading finished: the DevTools port, or why it failed.
    Loaded(anyhow::Result<u16>),
    /// Chromium exited first.
    Exited(std::io::Result<ExitStatus>),
    /// SIGINT or SIGTERM arrived first.
    Signalled,
}

/// `--load-with auto`: `cdp` when `chromium --version` names branded Google Chrome 137+,
/// else `flag` (also when the version cannot be read: today's behaviour).
async fn detect_load_with(chromium: &Path) -> LoadWith {
    let output = tokio::time::timeout(
        VERSION_TIMEOUT,
        Command::new(chromium)
            .arg("--version")
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    match output {
        Ok(Ok(output)) => load_with_for_version(&String::from_utf8_lossy(&output.stdout)),
        _ => {
            eprintln!(
                "any browser: `{} --version` did not answer; loading the extension with \
                 --load-extension (pass --load-with cdp for branded Google Chrome 137+)",
                chromium.display()
            );
            LoadWith::Flag
        }
    }
}

/// The loading `--load-with auto` picks for a browser whose `--version` printed `version`,
/// e.g. `Google Chrome 137.0.7151.55` → `cdp`; `Chromium 156.0.8078.79 built on Debian`,
/// `Google Chrome for Testing 137.0.7151.55` or `Google Chrome 136.0.7103.92` → `flag`.
fn load_with_for_version(version: &str) -> LoadWith {
    let Some(rest) = version.trim().strip_prefix("Google Chrome ") else {
        return LoadWith::Flag;
    };
    if rest.starts_with("for Testing") {
        return LoadWith::Flag;
    }
    let major = rest
        .split(['.', ' '])
        .next()
        .and_then(|major| major.parse::<u32>().ok());
    match major {
        Some(major) if major < CHROME_WITHOUT_LOAD_EXTENSION => LoadWith::Flag,
        // Branded Chrome 137+, or a version we cannot read: only DevTools is sure to work.
        _ => LoadWith::Cdp,
    }
}

/// Waits for Chromium's DevTools endpoint (`<profile>/DevToolsActivePort`), then loads the
/// extension at `extension` with `Extensions.loadUnpacked`; returns the DevTools port.
async fn load_through_devtools(profile: &Path, extension: &Path) -> anyhow::Result<u16> {
    let path = extension
        .to_str()
        .with_context(|| format!("{} is not UTF-8", extension.display()))?;
    let active_port = profile.join(DEVTOOLS_ACTIVE_PORT);
    tokio::time::timeout(CDP_LOAD_TIMEOUT, async {
        let (port, ws_path) = loop {
            if let Some(endpoint) = std::fs::read_to_string(&active_port)
                .ok()
                .as_deref()
                .and_then(parse_devtools_active_port)
            {
                break endpoint;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        let id = load_unpacked(&format!("ws://127.0.0.1:{port}{ws_path}"), path).await?;
        if id != any_protocol::EXTENSION_ID {
            bail!(
                "Chromium loaded the extension as {id}, not {}: the manifest.json in {} lacks \
                 the extension's fixed \"key\" (rebuild it with ./build.sh build)",
                any_protocol::EXTENSION_ID,
                extension.display()
            );
        }
        Ok(port)
    })
    .await
    .with_context(|| {
        format!(
            "no answer within {CDP_LOAD_TIMEOUT:?} (waiting for {}, then for \
             Extensions.loadUnpacked)",
            active_port.display()
        )
    })?
}

/// The port and the browser's WebSocket path in the text of `DevToolsActivePort`
/// (`"41235\n/devtools/browser/<uuid>"`); `None` until Chromium has written both.
fn parse_devtools_active_port(text: &str) -> Option<(u16, String)> {
    let mut lines = text.lines();
    let port = lines
        .next()?
        .trim()
        .parse::<u16>()
        .ok()
        .filter(|port| *port != 0)?;
    let path = lines.next()?.trim();
    path.starts_with("/devtools/browser/")
        .then(|| (port, path.to_owned()))
}

/// Sends `Extensions.loadUnpacked {path}` on the browser's DevTools socket at `endpoint`;
/// returns the loaded extension's id.
async fn load_unpacked(endpoint: &str, path: &str) -> anyhow::Result<String> {
    use tokio_tungstenite::tungstenite::Message;
    let (mut socket, _) = tokio_tungstenite::connect_async(endpoint)
        .await
        .with_context(|| format!("cannot connect to Chromium's DevTools at {endpoint}"))?;
    let request = serde_json::json!({
        "id": 1,
        "method": "Extensions.loadUnpacked",
        "params": {"path": path},
    });
    socket
        .send(Message::text(request.to_string()))
        .await
        .context("cannot send Extensions.loadUnpacked")?;
    while let Some(message) = socket.next().await {
        let Message::Text(text) = message.context("Chromium's DevTools socket failed")? else {
            continue;
        };
        let answer: serde_json::Value = serde_json::from_str(text.as_str())
            .with_context(|| format!("Chromium's DevTools answered non-JSON: {text}"))?;
        // Anything else is an event.
        if answer.get("id") == Some(&serde_json::json!(1)) {
            let _ = socket.close(None).await;
            return loaded_extension_id(&answer);
        }
    }
    bail!("Chromium closed the DevTools socket without answering Extensions.loadUnpacked")
}

/// The extension id in Chromium's answer to `Extensions.loadUnpacked`
/// (`{"id":1,"result":{"id":"<extension id>"}}`), or its `error` as a readable failure.
fn loaded_extension_id(answer: &serde_json::Value) -> anyhow::Result<String> {
    if let Some(error) = answer.get("error") {
        let message = error
            .get("message")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("(no message)");
        // -32601: no such method (e.g. `'Extensions.loadUnpacked' wasn't found`).
        let unknown = error.get("code") == Some(&serde_json::json!(-32601));
        let hint = if unknown || message.contains("not available") {
            " (this browser does not let a DevTools port client load extensions: older \
             Chrome versions allow Extensions.loadUnpacked only over --remote-debugging-pipe, \
             which any browser cannot use; use a newer Chrome, or Chromium or Chrome for \
             Testing with --load-with flag)"
        } else {
            ""
        };
        bail!("Chromium refused Extensions.loadUnpacked: {message}{hint} ({error})");
    }
    answer
        .pointer("/result/id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .with_context(|| {
            format!("Chromium's answer to Extensions.loadUnpacked has no id: {answer}")
        })
}

/// Deletes the file at `path`; a missing file is fine.
fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("cannot remove {}", path.display()))
        }
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
/// user's `--chromium-arg`s), then the first page. `load_with` is `Flag` or `Cdp`.
fn chromium_flags(
    profile: &Path,
    extension: &Path,
    load_with: LoadWith,
    headless: bool,
    extra: &[String],
) -> Vec<String> {
    let mut flags = vec![format!("--user-data-dir={}", profile.display())];
    if load_with == LoadWith::Cdp {
        // DevTools on a loopback port Chromium picks (written to DevToolsActivePort), with
        // the Extensions domain switched on.
        flags.push("--remote-debugging-port=0".into());
        flags.push("--enable-unsafe-extension-debugging".into());
    } else {
        flags.push(format!("--load-extension={}", extension.display()));
    }
    flags.extend(
        [
            // A tab that is not in front still runs its timers at full speed: calls run in
            // tabs the user is not looking at.
            "--disable-background-timer-throttling",
            "--disable-renderer-backgrounding",
            "--disable-backgrounding-occluded-windows",
            // No first-run UI and no chatter with Google's services.
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ]
        .map(String::from),
    );
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
    max_tabs: Option<u16>,
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
    let mut config = serde_json::json!({ "server": server, "label": label });
    if let Some(n) = max_tabs {
        config["max_tabs"] = n.into();
    }
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

        let copy = install_extension(
            &ext,
            &profile,
            "ws://127.0.0.1:4321/v1/extension",
            "work",
            Some(4),
        )
        .unwrap();

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
            serde_json::json!({"server": "ws://127.0.0.1:4321/v1/extension", "label": "work", "max_tabs": 4})
        );
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn flags_load_the_copy_in_its_own_profile_without_throttling() {
        let flags = chromium_flags(
            Path::new("/p"),
            Path::new("/p/any-extension"),
            LoadWith::Flag,
            true,
            &[],
        );
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
        let windowed = chromium_flags(Path::new("/p"), Path::new("/e"), LoadWith::Flag, false, &[]);
        assert!(!windowed.iter().any(|f| f.starts_with("--headless")));
    }

    #[test]
    fn extra_chromium_args_come_after_ours_and_before_the_first_page() {
        let extra = [
            "--remote-debugging-port=0".to_owned(),
            "--lang=de".to_owned(),
        ];
        let flags = chromium_flags(
            Path::new("/p"),
            Path::new("/e"),
            LoadWith::Flag,
            true,
            &extra,
        );
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
    fn cdp_loading_opens_devtools_instead_of_load_extension() {
        let flags = chromium_flags(
            Path::new("/p"),
            Path::new("/p/any-extension"),
            LoadWith::Cdp,
            true,
            &[],
        );
        assert!(!flags.iter().any(|f| f.starts_with("--load-extension")));
        for expected in [
            "--remote-debugging-port=0",
            "--enable-unsafe-extension-debugging",
            "--user-data-dir=/p",
        ] {
            assert!(
                flags.iter().any(|f| f == expected),
                "{expected} missing from {flags:?}"
            );
        }
        // The flag's values and its default.
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            browser: BrowserArgs,
        }
        let parse = |args: &[&str]| {
            <Cli as clap::Parser>::try_parse_from(
                std::iter::once("any").chain(args.iter().copied()),
            )
            .map(|cli| cli.browser.load_with)
        };
        assert_eq!(parse(&[]).unwrap(), LoadWith::Auto);
        assert_eq!(parse(&["--load-with", "cdp"]).unwrap(), LoadWith::Cdp);
        assert_eq!(parse(&["--load-with=flag"]).unwrap(), LoadWith::Flag);
        assert!(parse(&["--load-with", "pipe"]).is_err());
    }

    #[test]
    fn auto_loads_through_devtools_only_for_branded_chrome_137_and_later() {
        for (version, expected) in [
            (
                "Chromium 156.0.8078.79 built on Debian GNU/Linux 12 (bookworm)\n",
                LoadWith::Flag,
            ),
            ("Chromium 137.0.7151.55 snap\n", LoadWith::Flag),
            ("Google Chrome for Testing 137.0.7151.55 \n", LoadWith::Flag),
            ("Google Chrome 136.0.7103.92 \n", LoadWith::Flag),
            ("Google Chrome 137.0.7151.55 \n", LoadWith::Cdp),
            ("Google Chrome 142.0.7444.59 beta\n", LoadWith::Cdp),
            ("Google Chrome 150 unstable", LoadWith::Cdp),
            // Branded, version unreadable: only DevTools is sure to work.
            ("Google Chrome dev-build", LoadWith::Cdp),
            ("Microsoft Edge 137.0.3296.52", LoadWith::Flag),
            ("", LoadWith::Flag),
        ] {
            assert_eq!(load_with_for_version(version), expected, "{version:?}");
        }
    }

    #[test]
    fn devtools_active_port_gives_port_and_browser_path_once_complete() {
        assert_eq!(
            parse_devtools_active_port("41235\n/devtools/browser/5e2a-77\n"),
            Some((41235, "/devtools/browser/5e2a-77".to_owned()))
        );
        assert_eq!(
            parse_devtools_active_port("9222\r\n/devtools/browser/x"),
            Some((9222, "/devtools/browser/x".to_owned()))
        );
        // Written halfway, or not the file we expect.
        for text in [
            "",
            "41235",
            "41235\n",
            "0\n/devtools/browser/x",
            "70000\n/devtools/browser/x",
            "port\n/devtools/browser/x",
            "41235\n/devtools/page/x",
        ] {
            assert_eq!(parse_devtools_active_port(text), None, "{text:?}");
        }
    }

    #[test]
    fn the_answer_to_load_unpacked_gives_the_id_or_a_readable_error() {
        let ok = serde_json::json!({"id": 1, "result": {"id": any_protocol::EXTENSION_ID}});
        assert_eq!(
            loaded_extension_id(&ok).unwrap(),
            any_protocol::EXTENSION_ID
        );
        let refused = serde_json::json!({"id": 1, "error":
            {"code": -32600, "message": "File path cannot be resolved."}});
        let err = loaded_extension_id(&refused).unwrap_err().to_string();
        assert!(err.contains("File path cannot be resolved."), "{err}");
        let missing = serde_json::json!({"id": 1, "error":
            {"code": -32601, "message": "'Extensions.loadUnpacked' wasn't found"}});
        let err = loaded_extension_id(&missing).unwrap_err().to_string();
        assert!(err.contains("--load-with flag"), "{err}");
        let empty = serde_json::json!({"id": 1, "result": {}});
        assert!(loaded_extension_id(&empty).is_err());
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
