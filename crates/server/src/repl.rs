//! `any repl PAGE`: an interactive prompt on one tab. Runs in the `any repl` process, an
//! HTTP client of the server (started when none answers, as `any call` does).
//!
//! A line `name {json}` calls `globalThis.__any__.name(json)` (params default to `{}`);
//! any other line is JavaScript, sent as an ad-hoc script (`POST /v1/run`, which the
//! server refuses with `scripts_disabled` unless it runs with `--allow-scripts`). Every
//! line goes to the same page with `tab: "reuse"`, so they all land in one tab. Results
//! are printed as indented JSON, errors with their name, code, message and stack.
//!
//! On a terminal the prompt has line editing (rustyline) and a history kept across
//! sessions in the data directory (`repl-history`). With stdin piped it reads one line at
//! a time, prints only the answers, keeps no history, and exits 1 if any line failed.

use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use any_protocol::api::{CallFailure, CallRequest, RunRequest};
use any_protocol::{Json, TabPolicy};
use anyhow::Context;
use clap::Args;
use rustyline::error::ReadlineError;
use serde_json::value::RawValue;

use crate::cli::EXIT_FAILURE;
use crate::client::{CallAnswer, Client, data_dir};

/// How many lines the history file keeps.
const HISTORY_SIZE: usize = 1000;

#[derive(Args, Debug)]
pub struct ReplArgs {
    /// The page every line runs on, in one reused tab (an absolute http://, https:// or file:// URL)
    pub page: String,
    /// Seconds each line may take before the server gives up on it (default 30)
    #[arg(long, value_name = "SECS")]
    pub timeout: Option<f64>,
    /// Run in the browser whose extension has this label (default: the most recently connected)
    #[arg(long, value_name = "LABEL")]
    pub browser: Option<String>,
    /// Fail instead of starting a server when none is running
    #[arg(long)]
    pub no_autostart: bool,
}

/// What one input line asks for.
#[derive(Debug)]
pub enum Input {
    Empty,
    Help,
    Exit,
    /// `name {json}`: call a method.
    Method {
        name: String,
        params: Json,
    },
    /// Anything else: JavaScript, the body of an async function.
    Script(String),
    /// A line the REPL can tell is a mistake, with what to do about it.
    Mistake(String),
}

/// Words that start JavaScript statements: a line starting with one is a script
/// (`return 1`, `throw {"a": 1}`); `.call NAME {json}` calls a method of such a name.
const JS_WORDS: &[&str] = &[
    "await", "break", "class", "const", "continue", "debugger", "delete", "do", "for", "function",
    "if", "import", "let", "new", "return", "switch", "throw", "try", "typeof", "var", "void",
    "while", "with", "yield", "async",
];

/// Reads one line: `.help`, `.exit`, `name {json}` (a method call), or a script.
pub fn parse(line: &str) -> Input {
    let line = line.trim();
    if line.is_empty() {
        return Input::Empty;
    }
    if let Some(command) = line.strip_prefix('.')
        && command
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic())
    {
        let (word, rest) = split_word(command);
        return match word {
            "help" => Input::Help,
            "exit" | "quit" => Input::Exit,
            "call" => match method(rest) {
                Some(input) => input,
                None => Input::Mistake(
                    "write .call NAME {json}, e.g. .call delete {\"id\": 3}".to_owned(),
                ),
            },
            other => Input::Mistake(format!(
                "there is no .{other}; the commands are .call, .help and .exit"
            )),
        };
    }
    if JS_WORDS.contains(&split_word(line).0) {
        return Input::Script(line.to_owned());
    }
    method(line).unwrap_or_else(|| Input::Script(line.to_owned()))
}

/// `name`, `name {json}`: a method call; `None` when the line is not one.
fn method(line: &str) -> Option<Input> {
    let (name, rest) = split_word(line);
    if !is_identifier(name) {
        return None;
    }
    let name = name.to_owned();
    if rest.is_empty() {
        return Some(Input::Method {
            name,
            params: empty(),
        });
    }
    match RawValue::from_string(rest.to_owned()) {
        Ok(params) => Some(Input::Method { name, params }),
        Err(e) if rest.starts_with(['{', '[']) => Some(Input::Mistake(format!(
            "the params of {name} are not JSON ({e}); write e.g. {name} {{\"key\": 1}}"
        ))),
        Err(_) => None,
    }
}

/// The first word and the trimmed rest.
fn split_word(line: &str) -> (&str, &str) {
    let line = line.trim();
    line.split_once(char::is_whitespace)
        .map_or((line, ""), |(a, b)| (a, b.trim()))
}

fn is_identifier(word: &str) -> bool {
    let mut chars = word.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_alphanumeric() || c == '_' || c == '$')
}

fn empty() -> Json {
    RawValue::from_string("{}".to_owned()).unwrap_or_else(|_| unreachable!("`{{}}` is JSON"))
}

/// The REPL's session: where lines go.
struct Session {
    client: Client,
    page: String,
    browser: Option<String>,
    timeout_ms: u64,
}

/// What became of one line.
enum Outcome {
    Done,
    Failed,
    Exit,
}

impl Session {
    /// Runs one line and prints what came of it.
    async fn line(&self, line: &str) -> anyhow::Result<Outcome> {
        let answer = match parse(line) {
            Input::Empty => return Ok(Outcome::Done),
            Input::Exit => return Ok(Outcome::Exit),
            Input::Help => {
                println!("{}", help());
                return Ok(Outcome::Done);
            }
            Input::Mistake(message) => {
                println!("{message}");
                return Ok(Outcome::Failed);
            }
            Input::Method { name, params } => {
                let request = CallRequest {
                    page: self.page.clone(),
                    method: name,
                    params: Some(params),
                    timeout_ms: Some(self.timeout_ms),
                    browser: self.browser.clone(),
                    tab: Some(TabPolicy::Reuse),
                };
                self.client.call(&request, self.patience()).await?
            }
            Input::Script(script) => {
                let request = RunRequest {
                    page: self.page.clone(),
                    script,
                    timeout_ms: Some(self.timeout_ms),
                    browser: self.browser.clone(),
                    tab: Some(TabPolicy::Reuse),
                };
                self.client.run(&request, self.patience()).await?
            }
        };
        Ok(match answer {
            CallAnswer::Success(success) => {
                println!("{}", pretty(success.result.get()));
                Outcome::Done
            }
            CallAnswer::Failure { status, failure } => {
                println!("{}", describe_failure(status, &failure));
                Outcome::Failed
            }
        })
    }

    /// The server enforces the deadline; this only guards against one that hangs.
    fn patience(&self) -> Duration {
        crate::cli::patience(self.timeout_ms)
    }
}

/// `TypeError (page_error): x is undefined`, then the stack, then a hint when there is
/// one to give.
pub fn describe_failure(status: u16, failure: &CallFailure) -> String {
    let e = &failure.error;
    let mut out = format!("{} ({}): {}", e.name, e.code, e.message);
    if let Some(stack) = e.stack.as_deref().filter(|s| !s.is_empty()) {
        // A JS stack starts with "Name: message"; do not say it twice.
        let head = format!("{}: {}", e.name, e.message);
        let stack = stack
            .strip_prefix(&head)
            .unwrap_or(stack)
            .trim_start_matches('\n');
        for line in stack.lines() {
            out.push_str("\n    ");
            out.push_str(line.trim_start());
        }
    }
    if e.code.as_str() == "scripts_disabled" {
        out.push_str(
            "\n(lines that are not `method {json}` run as scripts, which this server refuses: \
             start it with `any serve --allow-scripts`)",
        );
    } else if status == 404 && failure.id.is_none() {
        out.push_str("\n(this server cannot run scripts: it is older than this any)");
    }
    out
}

fn help() -> String {
    let history = history_path()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("none ({e})"));
    format!(
        "  name {{json}}   call globalThis.__any__.name(json) on the page (json defaults to {{}})\n  \
         .call name {{json}}  the same, for a name that is a JavaScript word (return, delete, ...)\n  \
         anything else run it as JavaScript, the body of an async function on the page;\n                \
         `return` a value to see it (needs `any serve --allow-scripts`)\n  \
         .help         this text\n  \
         .exit         leave (or Ctrl-D); Ctrl-C clears the line, or cancels a running call\n\
         Every line runs in one tab at the page. History: {history}"
    )
}

/// `~/.local/share/any/repl-history`.
fn history_path() -> anyhow::Result<PathBuf> {
    Ok(data_dir()?.join("repl-history"))
}

/// Runs `any repl`.
pub async fn run(port: u16, args: ReplArgs) -> anyhow::Result<ExitCode> {
    let timeout_ms = crate::cli::timeout_ms(args.timeout)?;
    let client = Client::new(port)?;
    crate::cli::reach_server(&client, port, args.no_autostart).await?;
    let session = Session {
        client,
        page: args.page,
        browser: args.browser.filter(|b| !b.is_empty()),
        timeout_ms,
    };
    if std::io::stdin().is_terminal() {
        interactive(&session, port).await
    } else {
        piped(&session).await
    }
}

/// Lines from a pipe: answers only, no prompt, no history; exit 1 if any line failed.
async fn piped(session: &Session) -> anyhow::Result<ExitCode> {
    let mut failed = false;
    let mut stdin = std::io::stdin().lock();
    loop {
        let mut line = String::new();
        let read = tokio::task::block_in_place(|| stdin.read_line(&mut line))
            .context("could not read stdin")?;
        if read == 0 {
            break;
        }
        match session.line(&line).await? {
            Outcome::Done => {}
            Outcome::Failed => failed = true,
            Outcome::Exit => break,
        }
    }
    Ok(if failed {
        ExitCode::from(EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

/// The prompt on a terminal: line editing, history across sessions, Ctrl-C cancels.
async fn interactive(session: &Session, port: u16) -> anyhow::Result<ExitCode> {
    let config = rustyline::Config::builder()
        .max_history_size(HISTORY_SIZE)
        .context("the history size")?
        .auto_add_history(false)
        .build();
    let mut editor =
        rustyline::DefaultEditor::with_config(config).context("could not set up the terminal")?;
    let history = history_path()?;
    if let Some(dir) = history.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    if history.exists()
        && let Err(e) = editor.load_history(&history)
    {
        eprintln!(
            "any repl: could not read the history {}: {e}",
            history.display()
        );
    }
    println!(
        "any repl on {} (server 127.0.0.1:{port}); every line runs in one tab there.\n\
         `name {{json}}` calls a method, other lines run as JavaScript. .help for more, .exit or Ctrl-D to leave.",
        session.page
    );
    let mut history_broken = false;
    loop {
        let read = tokio::task::block_in_place(|| editor.readline("any> "));
        let line = match read {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e).context("could not read the terminal"),
        };
        if !line.trim().is_empty() {
            let _ = editor.add_history_entry(line.as_str());
            if let Err(e) = editor.append_history(&history)
                && !history_broken
            {
                history_broken = true;
                eprintln!(
                    "any repl: could not save the history {}: {e}",
                    history.display()
                );
            }
        }
        let outcome = tokio::select! {
            outcome = session.line(&line) => outcome,
            _ = tokio::signal::ctrl_c() => {
                // Dropping the request makes the server cancel the call in the browser.
                println!("cancelled");
                continue;
            }
        };
        match outcome {
            Ok(Outcome::Exit) => break,
            Ok(Outcome::Done | Outcome::Failed) => {}
            Err(e) => println!("any: {e:#}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Re-indents compact JSON text without reordering anything (keys keep the page's order).
pub fn pretty(json: &str) -> String {
    let mut out = String::with_capacity(json.len() * 2);
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = json.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek().is_some_and(|n| *n == '}' || *n == ']') {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(line: &str) -> (String, String) {
        match parse(line) {
            Input::Method { name, params } => (name, params.get().to_owned()),
            other => panic!("{line:?} should be a method call, is {other:?}"),
        }
    }

    fn script(line: &str) -> String {
        match parse(line) {
            Input::Script(s) => s,
            other => panic!("{line:?} should be a script, is {other:?}"),
        }
    }

    #[test]
    fn a_name_and_json_is_a_method_call() {
        assert_eq!(
            method("pageInfo {\"delay\": 500}"),
            ("pageInfo".into(), "{\"delay\": 500}".into())
        );
        assert_eq!(method("  echo  "), ("echo".into(), "{}".into()));
        assert_eq!(method("echo [1, 2]"), ("echo".into(), "[1, 2]".into()));
        assert_eq!(method("$x_1 \"text\""), ("$x_1".into(), "\"text\"".into()));
    }

    #[test]
    fn other_lines_are_scripts() {
        assert_eq!(script("return document.title"), "return document.title");
        assert_eq!(script("return 1"), "return 1", "`return` is not a method");
        assert_eq!(script("throw {\"a\": 1}"), "throw {\"a\": 1}");
        assert_eq!(script("document.title"), "document.title");
        assert_eq!(script("x = 1 + 2"), "x = 1 + 2");
        assert_eq!(
            script("await sleep(10); return 2"),
            "await sleep(10); return 2"
        );
    }

    #[test]
    fn commands_empty_lines_and_broken_params() {
        assert!(matches!(parse(".help"), Input::Help));
        assert!(matches!(parse(".exit"), Input::Exit));
        assert!(matches!(parse("   "), Input::Empty));
        assert!(matches!(parse(".nope"), Input::Mistake(m) if m.contains(".help")));
        assert!(
            matches!(parse(".call delete {\"id\": 3}"), Input::Method { name, params } if name == "delete" && params.get() == "{\"id\": 3}"),
            ".call calls a method named like a JavaScript word"
        );
        assert!(matches!(parse(".call"), Input::Mistake(m) if m.contains(".call NAME")));
        assert!(matches!(parse(".call a.b"), Input::Mistake(_)));
        assert!(
            matches!(parse("echo {\"a\": }"), Input::Mistake(m) if m.contains("not JSON")),
            "a method with broken JSON is a mistake, not a script"
        );
        assert_eq!(
            script(".5 + 1"),
            ".5 + 1",
            "a dot and a digit is JavaScript"
        );
    }

    #[test]
    fn pretty_indents_without_reordering() {
        assert_eq!(
            pretty(r#"{"title":"a, b: {c}","url":"u","n":[1,{"z":true,"a":null}],"e":{},"l":[]}"#),
            "{\n  \"title\": \"a, b: {c}\",\n  \"url\": \"u\",\n  \"n\": [\n    1,\n    {\n      \"z\": true,\n      \"a\": null\n    }\n  ],\n  \"e\": {},\n  \"l\": []\n}"
        );
        assert_eq!(pretty(r#""say \"hi\", {ok}""#), r#""say \"hi\", {ok}""#);
        assert_eq!(pretty("42"), "42");
    }

    #[test]
    fn a_page_error_shows_name_code_message_and_stack_once() {
        let failure: CallFailure = serde_json::from_value(serde_json::json!({
            "v": 1, "id": "c-1",
            "error": {"code": "page_error", "name": "TypeError", "message": "x is undefined",
                "stack": "TypeError: x is undefined\n    at boom (https://e.test/m.js:3:9)"}
        }))
        .expect("a failure");

        let text = describe_failure(422, &failure);

        assert_eq!(
            text,
            "TypeError (page_error): x is undefined\n    at boom (https://e.test/m.js:3:9)"
        );
    }
}
