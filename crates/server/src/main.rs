//! The `any` binary: parses the command line and runs the subcommand. `any serve` is
//! the server (the `any_server` library); `call`, `status` and `stop` are its HTTP
//! clients; `any browser` starts Chromium with the extension.

mod browser;
mod cli;
mod client;
mod repl;
mod scripts_cmd;
mod trace_cmd;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    match cli::run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("any: {e:#}");
            ExitCode::from(cli::EXIT_FAILURE)
        }
    }
}
