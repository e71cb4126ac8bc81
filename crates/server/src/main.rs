//! The `any` binary (placeholder until the server lands).
fn main() {}
