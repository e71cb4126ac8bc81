//! The extension's service-worker logic (placeholder until the extension lands).
