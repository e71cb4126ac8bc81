//! Chaos mode: the fake extension misbehaves at random, the way a real browser on a bad
//! day does. Each call is still answered by its method name (the crate's table), but
//! first a seeded choice perturbs it: answer at once, after a **delay**, never
//! (**drop**), twice (**duplicate**: the answer, then an `error` frame), **late** (after
//! the call's deadline), or not at all because the socket is closed (**disconnect**;
//! [`run`] then reconnects).
//!
//! Runs inside the fake extension (the `fake-extension --chaos SEED` binary, or the soak
//! driver in `soak.rs`). The choice for a call depends only on the seed and the call id,
//! so two runs with the same seed against fresh servers make the same choices.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use any_protocol::{Call, CallError, ErrorBody, ErrorCode, ExtensionFrame, encode};
use tokio::sync::mpsc;

use crate::{Error, FakeExtension, Options, Out, Transcript, behave};

/// How often each perturbation happens (probabilities per call; the rest is "answer at
/// once") and how long delays are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChaosConfig {
    pub seed: u64,
    pub delay: f64,
    pub drop: f64,
    pub duplicate: f64,
    pub late: f64,
    pub disconnect: f64,
    /// A delayed answer waits 1..=`max_delay_ms`.
    pub max_delay_ms: u64,
    /// A late answer comes this long after the call's `timeout_ms` (at most twice it).
    pub late_by_ms: u64,
}

impl ChaosConfig {
    /// The defaults of `fake-extension --chaos SEED` (those of [`ChaosArgs`]).
    pub fn new(seed: u64) -> Self {
        use clap::Parser;
        #[derive(Parser)]
        struct Defaults {
            #[command(flatten)]
            chaos: ChaosArgs,
        }
        Defaults::parse_from(["chaos"]).chaos.config(seed)
    }
}

/// The chaos flags shared by `fake-extension --chaos SEED` and `soak`.
#[derive(clap::Args, Debug, Clone)]
pub struct ChaosArgs {
    /// Probability that a call is answered after a random delay (1..=--max-delay-ms)
    #[arg(long, default_value_t = 0.2, value_name = "P")]
    pub p_delay: f64,
    /// Probability that a call is never answered
    #[arg(long, default_value_t = 0.02, value_name = "P")]
    pub p_drop: f64,
    /// Probability that a call is answered twice (the answer, then an error frame)
    #[arg(long, default_value_t = 0.05, value_name = "P")]
    pub p_duplicate: f64,
    /// Probability that a call is answered after its deadline
    #[arg(long, default_value_t = 0.02, value_name = "P")]
    pub p_late: f64,
    /// Probability that a call makes the fake close its socket (it then reconnects)
    #[arg(long, default_value_t = 0.001, value_name = "P")]
    pub p_disconnect: f64,
    /// The longest random delay
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub max_delay_ms: u64,
    /// How long after the call's deadline a late answer comes
    #[arg(long, default_value_t = 50, value_name = "MS")]
    pub late_by_ms: u64,
}

impl ChaosArgs {
    pub fn config(&self, seed: u64) -> ChaosConfig {
        ChaosConfig {
            seed,
            delay: self.p_delay,
            drop: self.p_drop,
            duplicate: self.p_duplicate,
            late: self.p_late,
            disconnect: self.p_disconnect,
            max_delay_ms: self.max_delay_ms,
            late_by_ms: self.late_by_ms,
        }
    }
}

/// What chaos did to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Answer,
    Delay(u64),
    Drop,
    Duplicate,
    Late,
    Disconnect,
}

impl Decision {
    /// The decision's name, for tallies.
    pub fn name(self) -> &'static str {
        match self {
            Decision::Answer => "answer",
            Decision::Delay(_) => "delay",
            Decision::Drop => "drop",
            Decision::Duplicate => "duplicate",
            Decision::Late => "late",
            Decision::Disconnect => "disconnect",
        }
    }
}

/// The chaos of one run: its configuration and what it decided, per call id, with the
/// number of the connection (0, 1, ...) that received the call.
pub struct Chaos {
    pub config: ChaosConfig,
    decisions: Mutex<BTreeMap<String, (Decision, usize)>>,
}

impl Chaos {
    pub fn new(config: ChaosConfig) -> Arc<Self> {
        Arc::new(Chaos {
            config,
            decisions: Mutex::default(),
        })
    }

    /// The choice for call `id`: a function of the seed and the id only.
    pub fn decide(&self, id: &str) -> Decision {
        let c = &self.config;
        let mut state = id.bytes().fold(c.seed ^ 0x9E37_79B9_7F4A_7C15, |h, b| {
            splitmix(h ^ u64::from(b))
        });
        let mut uniform = || {
            state = splitmix(state);
            // 53 random bits as a fraction in [0, 1).
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        let roll = uniform();
        let mut edge = 0.0;
        for (p, decision) in [
            (c.disconnect, Decision::Disconnect),
            (c.drop, Decision::Drop),
            (c.late, Decision::Late),
            (c.duplicate, Decision::Duplicate),
            (c.delay, Decision::Delay(0)),
        ] {
            edge += p;
            if roll < edge {
                return match decision {
                    Decision::Delay(_) => {
                        let span = c.max_delay_ms.max(1) as f64;
                        Decision::Delay(1 + (uniform() * span) as u64)
                    }
                    other => other,
                };
            }
        }
        Decision::Answer
    }

    /// Every decision so far: call id → (decision, connection number).
    pub fn decisions(&self) -> BTreeMap<String, (Decision, usize)> {
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answers `call`, which arrived on connection number `connection`, perturbed by the
    /// decision for its id.
    pub(crate) async fn perturb(
        self: Arc<Self>,
        call: Call,
        out: mpsc::UnboundedSender<Out>,
        connection: usize,
    ) {
        let decision = self.decide(&call.id);
        self.decisions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(call.id.clone(), (decision, connection));
        match decision {
            Decision::Answer => behave(call, out).await,
            Decision::Delay(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                behave(call, out).await;
            }
            Decision::Drop => {}
            Decision::Late => {
                let late = call.timeout_ms + self.config.late_by_ms.min(call.timeout_ms);
                tokio::time::sleep(Duration::from_millis(late)).await;
                behave(call, out).await;
            }
            Decision::Duplicate => {
                let id = call.id.clone();
                behave(call, out.clone()).await;
                let second = ErrorBody::new(
                    ErrorCode::PageError,
                    "a second answer to the same call (chaos duplicate): must be dropped",
                );
                let frame = ExtensionFrame::Error(CallError { id, error: second });
                let _ = out.send(Out::Text(encode(&frame)));
            }
            Decision::Disconnect => {
                let _ = out.send(Out::Close);
            }
        }
    }
}

/// One connection of a chaos run: its transcript, kept after it closed.
pub struct Connection {
    pub transcript: Transcript,
}

/// Keeps a chaotic fake extension connected until `stop` is set: connects, runs until
/// the socket closes (chaos disconnects it now and then), reconnects after `pause`.
/// Returns every connection's transcript, in order. Gives up when connecting fails for
/// `patience` in a row. With a transcript file `F.jsonl`, connection N > 0 writes
/// `F.N.jsonl`. `connected` hears the number of each new connection.
pub async fn run(
    options: Options,
    chaos: Arc<Chaos>,
    stop: Arc<AtomicBool>,
    connected: mpsc::UnboundedSender<usize>,
    pause: Duration,
    patience: Duration,
) -> Result<Vec<Connection>, Error> {
    let mut connections = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let number = connections.len();
        let mut options = options.clone();
        if number > 0
            && let Some(path) = &options.transcript
        {
            options.transcript = Some(path.with_extension(format!("{number}.jsonl")));
        }
        let connect = || FakeExtension::connect_chaos(options.clone(), chaos.clone(), number);
        let fake = crate::until_connected(patience, Duration::from_millis(20), connect).await?;
        let _ = connected.send(connections.len());
        let watch_stop = async {
            while !stop.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::select! {
            () = fake.closed() => {}
            () = watch_stop => {}
        }
        let transcript = fake.transcript().clone();
        if !fake.is_closed() {
            fake.close().await;
        }
        connections.push(Connection { transcript });
        if !stop.load(Ordering::SeqCst) {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(connections)
}

/// One step of the SplitMix64 generator: a well-mixed 64-bit value from any input.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decisions_depend_on_seed_and_id_only_and_follow_the_probabilities() {
        let chaos = Chaos::new(ChaosConfig::new(7));
        assert_eq!(
            chaos.decide("c-1"),
            Chaos::new(ChaosConfig::new(7)).decide("c-1")
        );
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let n = 100_000;
        for i in 0..n {
            let d = chaos.decide(&format!("c-{i}"));
            if let Decision::Delay(ms) = d {
                assert!((1..=50).contains(&ms), "{ms}");
            }
            *counts.entry(d.name()).or_default() += 1;
        }
        let share = |name| counts.get(name).copied().unwrap_or(0) as f64 / f64::from(n);
        for (name, p) in [
            ("delay", 0.2),
            ("drop", 0.02),
            ("duplicate", 0.05),
            ("late", 0.02),
            ("disconnect", 0.001),
            ("answer", 0.709),
        ] {
            assert!(
                (share(name) - p).abs() < 0.01 + p / 5.0,
                "{name}: {counts:?}"
            );
        }
        let other = Chaos::new(ChaosConfig::new(8));
        assert!((0..100).any(|i| {
            let id = format!("c-{i}");
            other.decide(&id) != chaos.decide(&id)
        }));
    }
}
