//! The command line's integration tests, one binary for all: each file here is a module (a clean
//! `cargo test --release` spends most of its time linking, one LTO link per test binary). Run
//! one file's tests with its module name as the filter, e.g. `cargo test --release --test suite
//! cli::`. `madsim_memory.rs` counts the heap with its own global allocator and stays a binary of
//! its own.

mod common;

mod check;
mod cli;
mod corpus;
mod madsim_differential;
mod overload_cli;
