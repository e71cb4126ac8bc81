//! The `any` binary (placeholder until the server lands).
mod browser;

fn main() {
    let _ = browser::run;
}
