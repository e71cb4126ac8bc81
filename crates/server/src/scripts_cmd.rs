//! `any scripts …` (the userscripts the server hosts) and `any run` (an ad-hoc script).
//! Runs in the short-lived `any` process, as an HTTP client of `any serve`
//! (`/v1/scripts`, `/v1/run`); starts a server first when none answers, like `any call`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use any_protocol::TabPolicy;
use any_protocol::api::{AddScript, CallFailure, RunRequest, ScriptInfo, ScriptList};
use anyhow::Context;
use clap::{Args, Subcommand};

use crate::cli::{exit_code, patience, report, timeout_ms};
use crate::client::Client;

#[derive(Subcommand, Debug)]
pub enum ScriptsCommand {
    /// Add a userscript (or replace the hosted one with the same @name)
    #[command(after_help = "Example:\n  any scripts add my-methods.user.js")]
    Add {
        /// The .user.js file; its ==UserScript== header needs @name and @match
        file: PathBuf,
    },
    /// List the hosted userscripts, their patterns, and whether they are enabled
    List {
        /// Print the raw /v1/scripts JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove a hosted userscript (by its @name)
    Remove { name: String },
    /// Enable a hosted userscript again
    Enable { name: String },
    /// Disable a hosted userscript (kept, but not run in browsers)
    Disable { name: String },
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The absolute URL of the page to run the script on (http://, https:// or file://)
    pub page: String,
    /// The script: a file holding the body of an async function, or - for stdin
    #[arg(long, value_name = "FILE|-")]
    pub script: String,
    /// Seconds before the server gives up on the script (default 30)
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
}

/// `any scripts …`.
pub async fn scripts(port: u16, command: ScriptsCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(port)?;
    client.ensure_server().await?;
    let answer = match command {
        ScriptsCommand::List { json } => {
            let list: Result<ScriptList, _> = client.scripts_get().await?;
            return Ok(match list {
                Ok(list) if json => {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                    ExitCode::SUCCESS
                }
                Ok(list) => {
                    print!("{}", render_list(&list));
                    ExitCode::SUCCESS
                }
                Err(failure) => failed("list", &failure),
            });
        }
        ScriptsCommand::Add { file } => {
            let source = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            let answer = client.scripts_add(&AddScript { source }).await?;
            if let Err(failure) = &answer {
                // Name the file, the server names the line.
                eprintln!(
                    "any scripts add: {}: {}",
                    file.display(),
                    failure.error.message
                );
                return Ok(ExitCode::from(exit_code(failure.error.code)));
            }
            ("added", answer)
        }
        ScriptsCommand::Remove { name } => {
            ("removed", client.scripts_change("DELETE", &name, "").await?)
        }
        ScriptsCommand::Enable { name } => (
            "enabled",
            client.scripts_change("POST", &name, "/enable").await?,
        ),
        ScriptsCommand::Disable { name } => (
            "disabled",
            client.scripts_change("POST", &name, "/disable").await?,
        ),
    };
    match answer {
        (verb, Ok(change)) => {
            let s = &change.script;
            let file = if s.file.is_empty() {
                String::new()
            } else {
                format!(" ({})", s.file)
            };
            println!("{verb} {:?}: {}{file}", s.name, patterns(s));
            for warning in &change.warnings {
                eprintln!("warning: {warning}");
            }
            Ok(ExitCode::SUCCESS)
        }
        (verb, Err(failure)) => Ok(failed(verb, &failure)),
    }
}

fn failed(what: &str, failure: &CallFailure) -> ExitCode {
    eprintln!("any scripts {what}: {}", failure.error.message);
    ExitCode::from(exit_code(failure.error.code))
}

fn patterns(s: &ScriptInfo) -> String {
    let mut out = s.matches.join(" ");
    for p in &s.exclude_matches {
        out.push_str(&format!(" !{p}"));
    }
    for g in &s.exclude_globs {
        out.push_str(&format!(" !glob:{g}"));
    }
    out
}

/// The readable table of `any scripts list`.
pub fn render_list(list: &ScriptList) -> String {
    let mut out = String::new();
    if list.scripts.is_empty() {
        out.push_str("No hosted userscripts (`any scripts add FILE.user.js` adds one)\n");
    }
    for s in &list.scripts {
        let state = if s.enabled { "enabled" } else { "disabled" };
        let version = if s.version.is_empty() {
            String::new()
        } else {
            format!(" {}", s.version)
        };
        out.push_str(&format!(
            "{}{version}  [{state}, {}]\n  {}\n",
            s.name,
            s.run_at.as_str().replace('_', "-"),
            patterns(s)
        ));
        if !s.description.is_empty() {
            out.push_str(&format!("  {}\n", s.description));
        }
        if !s.file.is_empty() {
            out.push_str(&format!("  {}\n", s.file));
        }
    }
    for warning in &list.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

/// `any run PAGE --script FILE|-`.
pub async fn run(port: u16, args: RunArgs) -> anyhow::Result<ExitCode> {
    let script = if args.script == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the script from stdin")?;
        text
    } else {
        std::fs::read_to_string(&args.script)
            .with_context(|| format!("cannot read the script {}", args.script))?
    };
    let timeout_ms = timeout_ms(args.timeout)?;
    let request = RunRequest {
        page: args.page,
        script,
        timeout_ms: Some(timeout_ms),
        browser: args.browser,
        tab: args.new_tab.then_some(TabPolicy::New),
    };
    let client = Client::new(port)?;
    client.ensure_server().await?;
    let answer = client.run(&request, patience(timeout_ms)).await?;
    report("run", answer, args.json)
}
