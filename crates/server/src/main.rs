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

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // `any serve` runs on one thread: a call's request, its frame to the extension, the
    // answer and the response then never wait for a wake-up on another thread (against
    // the fake extension: 0.30-0.37 ms per call instead of 0.37-0.46 ms, same
    // throughput with 8 callers). Big frames are decoded on the blocking pool
    // (`any_server::extension`). The clients keep the multi-threaded runtime (`repl`
    // reads the terminal with `block_in_place`).
    let runtime = if matches!(cli.command, cli::Command::Serve(_)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let outcome = match runtime {
        Ok(runtime) => runtime.block_on(cli::run(cli)),
        Err(e) => Err(anyhow::Error::new(e).context("could not start the async runtime")),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("any: {e:#}");
            ExitCode::from(cli::EXIT_FAILURE)
        }
    }
}
