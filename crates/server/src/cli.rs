//! The `any` command line: flags (clap) and what each subcommand does. Runs in the
//! `any` process; `serve` becomes the server, the others are HTTP clients of it.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use any_protocol::api::{CallRequest, DEFAULT_TIMEOUT_MS, Status};
use any_protocol::{ErrorCode, Json, TabPolicy};
use any_server::{Config, DEFAULT_PORT};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::browser;
use crate::client::{CallAnswer, Client};

/// Exit code when `any` itself failed (no server could be reached or started, bad
/// flags' values, ...). Call failures have their own codes, see [`exit_code`].
pub const EXIT_FAILURE: u8 = 1;

#[derive(Parser, Debug)]
#[command(
    name = "any",
    version,
    about = "Automate your real browser: call methods that userscripts define on pages",
    long_about = "Automate your real browser: call methods that userscripts define on pages.\n\n\
        `any serve` runs the local server the browser extension connects to; `any call` asks it \
        to open a page and run globalThis.__any__[method](params) there, starting the server \
        first if none is running.",
    after_help = "Example:\n  any call https://example.com pageInfo --params '{\"delay\": 500}'"
)]
pub struct Cli {
    /// The server's port (every subcommand)
    #[arg(long, global = true, default_value_t = DEFAULT_PORT)]
    pub port: u16,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server in the foreground (logs on stderr; Ctrl-C or `any stop` ends it)
    #[command(after_help = "Example:\n  any serve --port 8765 --connect-wait 10")]
    Serve(ServeArgs),
    /// Run a method on a page and print its result as JSON
    #[command(
        long_about = "Run globalThis.__any__[METHOD](params) in a browser tab at PAGE and print \
            the result as one line of JSON on stdout.\n\n\
            Starts a server (detached, logging to ~/.local/share/any/server-<port>.log) when none \
            answers on the port. On failure prints a message on stderr (or, with --json, the \
            error object as one JSON line on stdout) and exits with the code of the error:\n  \
            1 any itself failed (no server), 2 bad command line,\n  \
            10 no_extension, 11 timeout, 12 bad_request, 13 method_not_found, 14 page_error,\n  \
            15 navigation_failed, 16 tab_closed, 17 not_serializable, 18 extension_disconnected,\n  \
            19 protocol_error, 20 too_large, 21 unauthorized, 22 forbidden,\n  \
            23 too_many_calls, 24 scripts_disabled, 25 not_scriptable",
        after_help = "Examples:\n  any call https://example.com pageInfo --params '{\"delay\": 500}'\n  \
            any call https://example.com pageInfo --browser work --timeout 60 --json"
    )]
    Call(CallArgs),
    /// Show the connected browsers and the calls in flight
    #[command(after_help = "Example:\n  any status --port 8765")]
    Status(StatusArgs),
    /// Stop the server gracefully (calls in flight fail, extensions are disconnected)
    #[command(after_help = "Example:\n  any stop --port 8765")]
    Stop,
    /// Print the token the client API wants in `Authorization: Bearer` (creating it if none exists)
    #[command(
        long_about = "Print the user's any token: the secret every client API request must send as \
            `Authorization: Bearer <token>` (only GET /v1/health and GET /v1/openapi.json are open). \
            It lives in ~/.local/share/any/token ($XDG_DATA_HOME/any/token), readable only by you; \
            `any serve` creates it on first start and reuses it. `any call`, `any status` and the \
            Python client read it themselves.",
        after_help = "Example:\n  curl -H \"Authorization: Bearer $(any token)\" http://127.0.0.1:8765/v1/status"
    )]
    Token,
    /// Start Chromium with the any extension, connected to this server
    Browser(browser::BrowserArgs),
    /// Manage the userscripts the server hosts (run in every connected browser, no
    /// userscript manager needed)
    #[command(
        subcommand,
        long_about = "Manage the userscripts the server hosts. Each is a .user.js file with a \
            ==UserScript== header (@name, @match, @exclude-match, @exclude, @run-at, @version, \
            @description). The server keeps them in ~/.local/share/any/scripts/ and registers the \
            enabled ones with chrome.userScripts in every connected browser, in the page's main \
            world, so the globalThis.__any__ methods they define exist on matching pages. The \
            browser's \"Allow User Scripts\" switch for the any extension must be on \
            (chrome://extensions → any → Details); `any browser` profiles have it on.",
        after_help = "Examples:\n  any scripts add my-methods.user.js\n  any scripts list\n  \
            any scripts disable \"my methods\"\n  any scripts remove \"my methods\""
    )]
    Scripts(crate::scripts_cmd::ScriptsCommand),
    /// Run an ad-hoc script on a page (the server must run with --allow-scripts)
    #[command(
        long_about = "Run a script on PAGE and print its return value as one line of JSON. The \
            script is the body of an async function (use `return`, `await`), run in the page's \
            main world through chrome.userScripts.execute, so it works on strict-CSP pages. \
            Refused with scripts_disabled (exit 24) unless the server was started with \
            `any serve --allow-scripts`. Exit codes as for `any call`.",
        after_help = "Examples:\n  echo 'return document.title;' | any run https://example.com --script -\n  \
            any run https://example.com --script collect.js --timeout 60"
    )]
    Run(crate::scripts_cmd::RunArgs),
    /// Print every frame between the server and its browser extensions, live
    #[command(
        long_about = "Print every frame between the running server and its browser extensions as \
            it passes: one line each with the time (UTC), the connection (ext-N), the direction \
            (<- to the extension, -> from it), the frame's type and call id, and the frame, cut \
            to --width characters with its full size. Sockets that close are shown with the \
            reason. Runs until Ctrl-C. Never starts a server.",
        after_help = "Examples:\n  any trace\n  any trace --record frames.jsonl   \
            (full frames, replayable with `fake-extension --replay frames.jsonl`)\n  \
            any trace --json | jq -c 'select(.frame.type == \"call\")'"
    )]
    Trace(crate::trace_cmd::TraceArgs),
    /// An interactive prompt on one tab: `method {json}` calls, other lines run as JavaScript
    #[command(
        long_about = "An interactive prompt on one tab at PAGE. A line `name {json}` calls \
            globalThis.__any__.name(json) (json defaults to {}); any other line is JavaScript, \
            run as the body of an async function (the server must run with --allow-scripts). \
            Every line reuses the same tab. Results are printed as indented JSON, errors with \
            their name, code, message and stack. History is kept in \
            ~/.local/share/any/repl-history. With stdin piped, prints only the answers and \
            exits 1 if any line failed. Starts a server when none answers, as `any call` does.",
        after_help = "Example:\n  any repl https://example.com\n  any> pageInfo {\"delay\": 0}\n  \
            any> return document.title\n\n  \
            printf 'pageInfo {}\\n' | any repl https://example.com"
    )]
    Repl(crate::repl::ReplArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// The loopback address to listen on (127.0.0.1, ::1 or localhost; others are refused)
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Also accept this Origin (exactly) on the extension socket and the API, e.g. another
    /// build of the extension: chrome-extension://<id>. Repeatable.
    #[arg(long, value_name = "ORIGIN")]
    pub allow_origin: Vec<String>,
    /// How many calls may run at once; more are refused with too_many_calls (HTTP 429)
    #[arg(long, default_value_t = any_server::DEFAULT_MAX_CALLS, value_name = "N")]
    pub max_calls: usize,
    /// Seconds a call waits for a browser extension to connect before failing with no_extension
    #[arg(long, default_value_t = 5.0, value_name = "SECS")]
    pub connect_wait: f64,
    /// Log every frame and stage (debug level)
    #[arg(long, short)]
    pub verbose: bool,
    /// Run ad-hoc scripts sent to POST /v1/run (`any run`); without it they are refused
    /// with scripts_disabled and only named methods are callable
    #[arg(long)]
    pub allow_scripts: bool,
    /// Where the hosted userscripts live (default: ~/.local/share/any/scripts)
    #[arg(long, value_name = "DIR")]
    pub scripts_dir: Option<std::path::PathBuf>,
}

#[derive(Args, Debug)]
pub struct CallArgs {
    /// The absolute URL of the page to run the method on (http://, https:// or file://)
    pub page: String,
    /// The name of the function on globalThis.__any__
    pub method: String,
    /// The method's argument, as JSON
    #[arg(long, default_value = "{}", value_name = "JSON")]
    pub params: String,
    /// Seconds before the server gives up on the call (default 30)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Run in the browser whose extension has this label (default: the most recently connected)
    #[arg(long, value_name = "LABEL")]
    pub browser: Option<String>,
    /// Open a new tab instead of reusing an idle one at the same URL
    #[arg(long)]
    pub new_tab: bool,
    /// On failure, print the error object as one JSON line on stdout instead of a message
    #[arg(long)]
    pub json: bool,
    /// Fail instead of starting a server when none is running
    #[arg(long)]
    pub no_autostart: bool,
}

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print the raw /v1/status JSON
    #[arg(long)]
    pub json: bool,
}

/// Runs the parsed command line; returns the process exit code.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let port = cli.port;
    match cli.command {
        Command::Serve(args) => serve(port, args).await.map(|()| ExitCode::SUCCESS),
        Command::Call(args) => call(port, args).await,
        Command::Status(args) => status(port, args).await,
        Command::Stop => stop(port).await,
        Command::Token => {
            let path = any_server::token::path()?;
            println!("{}", any_server::token::load_or_create(&path)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Browser(args) => browser::run(port, args).await.map(|()| ExitCode::SUCCESS),
        Command::Scripts(command) => crate::scripts_cmd::scripts(port, command).await,
        Command::Run(args) => crate::scripts_cmd::run(port, args).await,
        Command::Trace(args) => crate::trace_cmd::run(port, args).await,
        Command::Repl(args) => crate::repl::run(port, args).await,
    }
}

async fn serve(port: u16, args: ServeArgs) -> anyhow::Result<()> {
    init_logging(args.verbose);
    let connect_wait = Duration::try_from_secs_f64(args.connect_wait)
        .context("--connect-wait must be a number of seconds, 0 or more")?;
    let host = loopback_host(&args.host)?;
    if args.max_calls == 0 {
        anyhow::bail!("--max-calls must be 1 or more");
    }
    let mut allowed_origins = vec![any_protocol::EXTENSION_ORIGIN.to_owned()];
    for origin in &args.allow_origin {
        allowed_origins.push(any_server::access::parse_origin(origin).map_err(anyhow::Error::msg)?);
    }
    let token_path = any_server::token::path()?;
    let token = any_server::token::load_or_create(&token_path)
        .context("the server cannot start without the user's token")?;
    let config = Config {
        connect_wait,
        token,
        allowed_origins: allowed_origins.clone(),
        max_calls: args.max_calls,
        allow_scripts: args.allow_scripts,
        scripts_dir: Some(match args.scripts_dir {
            Some(dir) => dir,
            None => crate::client::data_dir()?.join("scripts"),
        }),
        ..Config::default()
    };
    let listener = tokio::net::TcpListener::bind((host, port))
        .await
        .with_context(|| {
            format!(
                "could not listen on {}:{port}; is another any server running there? \
             (`any status --port {port}` tells)",
                args.host
            )
        })?;
    let addr: SocketAddr = listener.local_addr()?;
    tracing::info!(
        "any {} listening on http://{addr} (extensions connect to ws://{addr}/v1/extension; \
         calls wait {} s for one)",
        any_server::VERSION,
        args.connect_wait
    );
    tracing::info!(
        "clients authenticate with the token in {} (`any token`); accepted origins: {}; \
         at most {} calls at once",
        token_path.display(),
        allowed_origins.join(", "),
        args.max_calls
    );
    any_server::serve(listener, config, stop_signal())
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The address for `--host`: a loopback address, or `localhost` (127.0.0.1). The server
/// drives the user's logged-in browser; it must not be reachable from other machines.
fn loopback_host(host: &str) -> anyhow::Result<std::net::IpAddr> {
    let ip = if host.eq_ignore_ascii_case("localhost") {
        std::net::IpAddr::from([127, 0, 0, 1])
    } else {
        host.trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .with_context(|| format!("--host {host:?} is not an IP address or localhost"))?
    };
    if !ip.is_loopback() {
        anyhow::bail!(
            "refusing to listen on {host}: it is not a loopback address. The any server drives \
             your logged-in browser, so only programs on this machine may reach it; use \
             127.0.0.1 (the default), ::1 or localhost"
        );
    }
    Ok(ip)
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(
            tokio::signal::unix::SignalKind::terminate(),
        ) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(
                    "cannot listen for SIGTERM ({e}); only Ctrl-C and `any stop` stop the server"
                );
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => tracing::info!("interrupted"),
            _ = term.recv() => tracing::info!("terminated"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

fn init_logging(verbose: bool) {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let ours = if verbose {
        LevelFilter::DEBUG
    } else {
        LevelFilter::INFO
    };
    let filter = Targets::new()
        .with_target("any_server", ours)
        .with_target("any", ours)
        .with_default(LevelFilter::WARN);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_target(false),
        )
        .with(filter)
        .init();
}

async fn call(port: u16, args: CallArgs) -> anyhow::Result<ExitCode> {
    let params: Json = serde_json::from_str(&args.params)
        .with_context(|| format!("--params is not valid JSON: {}", args.params))?;
    let timeout_ms = timeout_ms(args.timeout)?;
    let request = CallRequest {
        page: args.page,
        method: args.method,
        params: Some(params),
        timeout_ms: Some(timeout_ms),
        browser: args.browser,
        tab: args.new_tab.then_some(TabPolicy::New),
    };
    let client = Client::new(port)?;
    reach_server(&client, port, args.no_autostart).await?;
    let answer = client.call(&request, patience(timeout_ms)).await?;
    report("call", answer, args.json)
}

/// `--timeout SECS` as a call's `timeout_ms`; the protocol's default when absent.
pub(crate) fn timeout_ms(secs: Option<f64>) -> anyhow::Result<u64> {
    match secs {
        None => Ok(DEFAULT_TIMEOUT_MS),
        Some(secs) if secs.is_finite() && secs > 0.0 => Ok((secs * 1000.0).ceil() as u64),
        Some(secs) => anyhow::bail!("--timeout must be a positive number of seconds, got {secs}"),
    }
}

/// How long a client waits for the HTTP answer of a call with this deadline. The server
/// enforces the deadline; the margin only guards against a server that hangs.
pub(crate) fn patience(timeout_ms: u64) -> Duration {
    Duration::from_millis(timeout_ms) + Duration::from_secs(120)
}

/// Makes sure a server answers on `port`, starting one unless `no_autostart` is set.
pub(crate) async fn reach_server(
    client: &Client,
    port: u16,
    no_autostart: bool,
) -> anyhow::Result<()> {
    if !no_autostart {
        return client.ensure_server().await;
    }
    if client.health().await?.is_none() {
        anyhow::bail!(
            "no any server answers on port {port} (start one with `any serve --port {port}`)"
        );
    }
    Ok(())
}

/// Prints the answer of `any call` / `any run`: the result on stdout, or the failure on
/// stderr (with `json`, as one line on stdout); returns the exit code.
pub(crate) fn report(command: &str, answer: CallAnswer, json: bool) -> anyhow::Result<ExitCode> {
    let (status, failure) = match answer {
        CallAnswer::Success(success) => {
            println!("{}", success.result.get());
            return Ok(ExitCode::SUCCESS);
        }
        CallAnswer::Failure { status, failure } => (status, failure),
    };
    if json {
        println!("{}", serde_json::to_string(&failure)?);
    } else {
        let e = &failure.error;
        let id = failure
            .id
            .as_deref()
            .map(|id| format!(" [{id}]"))
            .unwrap_or_default();
        eprintln!(
            "any {command} failed{id}: {} ({}, HTTP {status}): {}",
            e.name, e.code, e.message
        );
        if let Some(stack) = &e.stack {
            eprintln!("{stack}");
        }
    }
    Ok(ExitCode::from(exit_code(failure.error.code)))
}

/// The exit code of `any call` for a failed call: 10 + the code's place in
/// [`ErrorCode::ALL`] (10 `no_extension` … 20 `too_large`).
pub fn exit_code(code: ErrorCode) -> u8 {
    let index = ErrorCode::ALL.iter().position(|c| *c == code).unwrap_or(0);
    10 + u8::try_from(index).unwrap_or(0)
}

async fn status(port: u16, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(port)?;
    let Some(status) = client.status().await? else {
        eprintln!(
            "no any server is running on port {port} (`any serve --port {port}` starts one; `any call` starts one itself)"
        );
        return Ok(ExitCode::from(EXIT_FAILURE));
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render_status(&status));
    }
    Ok(ExitCode::SUCCESS)
}

/// The readable table of `any status`.
pub fn render_status(status: &Status) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut out = format!(
        "any {} on {} (pid {})\n\n",
        status.version, status.listen, status.pid
    );
    if status.extensions.is_empty() {
        out.push_str("Extensions: none connected (is a browser with the any extension running? `any browser` starts one)\n");
    } else {
        out.push_str(&format!("Extensions ({}):\n", status.extensions.len()));
        let mut rows = vec![vec![
            "CONN".to_owned(),
            "LABEL".to_owned(),
            "BROWSER".to_owned(),
            "EXTENSION".to_owned(),
            "CONNECTED".to_owned(),
            "CALLS".to_owned(),
        ]];
        for e in &status.extensions {
            rows.push(vec![
                e.conn.clone(),
                if e.label.is_empty() {
                    "-".to_owned()
                } else {
                    e.label.clone()
                },
                format!("{} {}", e.browser.name, e.browser.version),
                e.extension_version.clone(),
                format!("{} ago", fmt_age(now - e.connected_since)),
                e.calls_in_flight.to_string(),
            ]);
        }
        out.push_str(&table(&rows));
        for e in status.extensions.iter().filter(|e| !e.tabs.is_empty()) {
            out.push_str(&format!(
                "\nTabs {} opened ({}; idle ones beyond {} are closed):\n",
                e.conn,
                e.tabs.len(),
                e.max_tabs
            ));
            let mut rows = vec![["TAB", "STATE", "CALLS", "URL"].map(str::to_owned).to_vec()];
            for t in &e.tabs {
                rows.push(vec![
                    t.id.to_string(),
                    t.state.clone(),
                    t.calls.to_string(),
                    t.url.clone(),
                ]);
            }
            out.push_str(&table(&rows));
        }
    }
    out.push('\n');
    if status.calls.is_empty() {
        out.push_str("Calls in flight: none\n");
    } else {
        out.push_str(&format!("Calls in flight ({}):\n", status.calls.len()));
        let mut rows = vec![vec![
            "ID".to_owned(),
            "METHOD".to_owned(),
            "STAGE".to_owned(),
            "CONN".to_owned(),
            "AGE".to_owned(),
            "PAGE".to_owned(),
        ]];
        for c in &status.calls {
            rows.push(vec![
                c.id.clone(),
                c.method.clone(),
                c.stage.to_string(),
                c.conn.clone().unwrap_or_else(|| "-".to_owned()),
                fmt_age(c.age_s),
                c.page.clone(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out.push('\n');
    if status.recent.is_empty() {
        out.push_str("Recent calls: none\n");
    } else {
        let shown = status.recent.len().min(RECENT_SHOWN);
        out.push_str(&format!(
            "Recent calls (newest first, {shown} of {}):\n",
            status.recent.len()
        ));
        let mut rows = vec![
            ["ID", "METHOD", "OUTCOME", "TOOK", "ENDED", "PAGE"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for c in status.recent.iter().take(RECENT_SHOWN) {
            let mut outcome = match &c.error {
                None => "ok".to_owned(),
                Some(e) => format!("{}: {}", e.code, shorten(&e.message, 60)),
            };
            if c.dropped_answers > 0 {
                outcome.push_str(&format!(" (+{} dropped answer(s))", c.dropped_answers));
            }
            rows.push(vec![
                c.id.clone(),
                c.method.clone(),
                outcome,
                fmt_age(c.duration_s),
                format!("{} ago", fmt_age(now - c.ended_at)),
                c.page.clone(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    if !status.rejected.is_empty() {
        let shown = status.rejected.len().min(RECENT_SHOWN);
        out.push_str(&format!(
            "\nRefused (newest first, {shown} of {}):\n",
            status.rejected.len()
        ));
        let mut rows = vec![
            ["WHEN", "REQUEST", "ORIGIN", "WHY"]
                .map(str::to_owned)
                .to_vec(),
        ];
        for r in status.rejected.iter().take(RECENT_SHOWN) {
            rows.push(vec![
                format!("{} ago", fmt_age(now - r.at)),
                r.request.clone(),
                r.origin.clone().unwrap_or_else(|| "-".to_owned()),
                format!("{}: {}", r.code, shorten(&r.reason, 90)),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}

/// How many finished calls `any status` lists (`--json` has all the server keeps).
const RECENT_SHOWN: usize = 10;

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max.saturating_sub(1)).collect();
    format!("{cut}…")
}

fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::from(" ");
        for (i, cell) in row.iter().enumerate() {
            line.push(' ');
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - cell.chars().count() + 1));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn fmt_age(secs: f64) -> String {
    let secs = secs.max(0.0);
    if secs < 10.0 {
        format!("{secs:.1}s")
    } else if secs < 3600.0 {
        let s = secs as u64;
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        let s = secs as u64;
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    }
}

async fn stop(port: u16) -> anyhow::Result<ExitCode> {
    let client = Client::new(port)?;
    let Some(ack) = client.shutdown().await? else {
        eprintln!("no any server is running on port {port}: nothing to stop");
        return Ok(ExitCode::SUCCESS);
    };
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        if client.health().await.ok().flatten().is_none() {
            eprintln!("stopped the any server on port {port} (pid {})", ack.pid);
            return Ok(ExitCode::SUCCESS);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!(
        "asked the any server on port {port} (pid {}) to stop, but it still answers after 10 s",
        ack.pid
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_error_code_has_its_own_exit_code_above_the_generic_ones() {
        let codes: std::collections::BTreeSet<u8> =
            ErrorCode::ALL.iter().map(|c| exit_code(*c)).collect();
        assert_eq!(codes.len(), ErrorCode::ALL.len());
        assert!(
            codes.iter().all(|c| *c >= 10),
            "1 and 2 stay any's own and clap's"
        );
        assert_eq!(exit_code(ErrorCode::NoExtension), 10);
        assert_eq!(exit_code(ErrorCode::TooLarge), 20);
    }

    #[test]
    fn the_status_table_shows_each_extension_and_call() {
        let fixture = include_str!("../../protocol/fixtures/api/status.json");
        let status: Status = serde_json::from_str(fixture).expect("fixture");

        let table = render_status(&status);

        assert!(
            table.starts_with("any 0.1.0 on 127.0.0.1:8765 (pid 4242)"),
            "{table}"
        );
        let ext = table
            .lines()
            .find(|l| l.contains("ext-1") && l.contains("work"))
            .expect("extension row");
        assert!(ext.contains("Chromium 156.0.8078.73"), "{ext}");
        assert!(
            table.contains("Tabs ext-1 opened (1; idle ones beyond 10 are closed):"),
            "{table}"
        );
        let tab = table.lines().find(|l| l.contains("1204")).expect("tab row");
        assert!(
            tab.contains("loaded") && tab.contains("https://example.com/"),
            "{tab}"
        );
        let call = table.lines().find(|l| l.contains("c-7")).expect("call row");
        for cell in [
            "pageInfo",
            "method_called",
            "ext-1",
            "0.8s",
            "https://example.com/",
        ] {
            assert!(call.contains(cell), "{cell} missing from {call:?}");
        }
        let failed = table
            .lines()
            .find(|l| l.contains("c-6"))
            .expect("recent row");
        assert!(
            failed.contains("timeout: the call did not finish") && failed.contains("(+1 dropped"),
            "{failed}"
        );
        let done = table
            .lines()
            .find(|l| l.contains("c-5"))
            .expect("recent row");
        assert!(done.contains(" ok ") && done.contains("0.8s"), "{done}");
        let refused = table
            .lines()
            .find(|l| l.contains("https://evil.example"))
            .expect("refused row");
        assert!(
            refused.contains("GET /v1/extension") && refused.contains("forbidden: only the any"),
            "{refused}"
        );
        let old = table
            .lines()
            .find(|l| l.contains("protocol_error"))
            .expect("rejected hello row");
        assert!(
            old.contains("speaks protocol 1 but the extension speaks 2"),
            "{old}"
        );
    }
}
