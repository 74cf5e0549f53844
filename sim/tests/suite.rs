//! The engine's integration tests, one binary for both files (each a module): a clean
//! `cargo test --release` spends most of its time linking.

mod engine;
mod exhaustive;
mod panics;
