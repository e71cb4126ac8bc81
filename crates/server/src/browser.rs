//! `any browser`: starts Chromium with the built extension (placeholder until it lands).

/// Flags of `any browser`.
#[derive(clap::Args, Debug)]
pub struct BrowserArgs {}

/// Runs `any browser` against the server on `port`; returns when the browser exits.
pub async fn run(_port: u16, _args: BrowserArgs) -> anyhow::Result<()> {
    anyhow::bail!("any browser is not implemented yet")
}
