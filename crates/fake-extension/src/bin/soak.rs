//! `soak`: thousands of calls through a real `any serve` to a chaotic fake extension;
//! prints the tally and exits 1 if any call did not end exactly once as the fake's
//! transcript says, or if the server's memory grew in the second half of the run.
//! See the library's `soak` module for what is checked.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use fake_extension::chaos::ChaosArgs;
use fake_extension::soak::{self, SoakOptions};

/// Soak the any server with calls to a fake extension that delays, drops, duplicates,
/// answers late and disconnects at random.
#[derive(Parser, Debug)]
#[command(
    name = "soak",
    version,
    after_help = "Example:\n  cargo build --release && target/release/soak --calls 10000 --seed 1"
)]
struct Args {
    /// How many calls
    #[arg(long, default_value_t = 10_000)]
    calls: usize,
    /// Callers sending at once
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Each call's timeout_ms (dropped and late calls take this long)
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    timeout_ms: u64,
    /// The chaos seed: the same seed makes the same choices for the same call ids
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[command(flatten)]
    chaos: ChaosArgs,
    /// The any binary. Default: `any` next to this executable
    #[arg(long, value_name = "PATH")]
    any: Option<PathBuf>,
    /// Where the server's log goes
    #[arg(long, default_value = "soak-server.log", value_name = "FILE")]
    server_log: PathBuf,
    /// The most the server's RSS may grow between the middle and the end of the run
    #[arg(long, default_value_t = 8192, value_name = "KB")]
    max_rss_growth_kb: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let any = args.any.clone().unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("any")))
            .unwrap_or_else(|| PathBuf::from("any"))
    });
    let options = SoakOptions {
        any,
        calls: args.calls,
        concurrency: args.concurrency,
        timeout_ms: args.timeout_ms,
        chaos: args.chaos.config(args.seed),
        server_log: args.server_log.clone(),
    };
    match soak::run(&options).await {
        Ok(tally) => {
            println!("{tally}");
            let growth = tally.rss_kb[2].saturating_sub(tally.rss_kb[1]);
            if growth > args.max_rss_growth_kb {
                eprintln!(
                    "soak: the server's RSS grew {growth} kB in the second half (limit {} kB)",
                    args.max_rss_growth_kb
                );
                return ExitCode::FAILURE;
            }
            if tally.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::FAILURE
        }
    }
}
