//! The soak, short: 1,000 calls through the real `any serve` binary to a fake extension
//! that delays, drops, duplicates, answers late and disconnects at random (see
//! `fake_extension::soak` for every rule checked). The full run is the `soak` binary:
//! `target/release/soak --calls 10000`.

use std::time::Duration;

use fake_extension::chaos::ChaosConfig;
use fake_extension::soak::{SoakOptions, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_chaotic_calls_each_end_exactly_once() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"));
    let options = SoakOptions {
        any: env!("CARGO_BIN_EXE_any").into(),
        calls: 1000,
        concurrency: 32,
        timeout_ms: 500,
        // More disconnects than the default, so that a short run has several.
        chaos: ChaosConfig {
            disconnect: 0.005,
            ..ChaosConfig::new(7)
        },
        // Its own file: another `cargo test` may run this test at the same time.
        server_log: dir.join(format!("soak-server-{}.log", std::process::id())),
    };
    let tally = run(&options).await.expect("the soak runs");
    println!("{tally}");
    assert!(tally.violations.is_empty(), "{tally}");
    assert_eq!(tally.outcomes.values().sum::<usize>(), 1000);
    assert!(
        tally.reconnects >= 1,
        "chaos should have disconnected: {tally}"
    );
    assert!(
        tally.undelivered_answers > 0,
        "chaos should have duplicated: {tally}"
    );
    assert!(tally.wall < Duration::from_secs(60), "{tally}");
    // Memory: the second half adds no more than a few MB (the server keeps a bounded
    // record of finished calls).
    let [_, mid, end] = tally.rss_kb;
    assert!(end <= mid + 8192, "{tally}");
}
