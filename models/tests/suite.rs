//! The models crate's integration tests, one binary for all: each file here is a module (a clean
//! `cargo test --release` spends most of its time linking, one LTO link per test binary). Run
//! one file's tests with its module name as the filter, e.g.
//! `cargo test --release -p models --test suite overload_zoo::`. `million.rs` (its own `main`)
//! stays a binary of its own.

mod zoo;

mod bug_zoo;
mod chain;
mod crash_kinds;
mod exhaustive;
mod exhaustive_outbox;
mod outbox_properties;
mod outbox_zoo;
mod overload_contention;
mod overload_properties;
mod overload_zoo;
mod properties;
