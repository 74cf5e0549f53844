//! # idemsim — the command line
//!
//! The `idemsim` binary is a thin clap layer over these modules; the integration tests use them
//! directly too (the seed corpus, the shrinker's 1-minimality).
//!
//! - [`input`]: SCENARIO arguments (a preset name or a TOML file) and bad-input errors.
//! - [`seedfile`]: the self-contained seed file format.
//! - [`explore`]: many seeds on all cores, sharding, merging shard results.
//! - [`replay`] and [`render`]: one run as a text timeline, a mermaid diagram or JSON.
//! - [`shrink`]: a failing run reduced to a 1-minimal counterexample, within a budget.
//! - [`shrunk`]: `idemsim shrink`, and the shrinking `explore` does by default.
//! - [`story`]: the causal sentence that opens a counterexample's explanation.
//! - [`check`]: every run of a small scenario within bounds (exhaustive search).
//! - [`compare`]: designs side by side on the same seeds.
//! - [`list`]: the preset catalogue.
//! - [`plot`]: offered load and goodput over time of overload scenarios, as an SVG.

pub mod check;
pub mod compare;
pub mod explore;
pub mod input;
pub mod list;
pub mod plot;
pub mod render;
pub mod replay;
pub mod seedfile;
pub mod shrink;
pub mod shrunk;
pub mod story;

use std::fmt;

/// Bad input: exit status 2 and a message naming what is wrong and what would be valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadInput(pub String);

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for BadInput {
    fn from(s: String) -> Self {
        BadInput(s)
    }
}

pub type Result<T> = std::result::Result<T, BadInput>;

/// What a command found, as an exit status: 0 nothing violated, 1 a violation.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Found {
    Nothing,
    Violation,
}

/// Simulated microseconds as milliseconds (`12.345 ms`).
pub fn ms(at_us: u64) -> String {
    invariants::ms(at_us)
}

/// How to invoke this program in a command we print for the user to copy: `cargo run --release --`
/// when cargo started us (it sets `CARGO_PKG_NAME`), else `idemsim`.
pub fn program() -> &'static str {
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("idemsim") {
        "cargo run --release --"
    } else {
        "idemsim"
    }
}

/// Quote a path or argument for a shell command line if it needs it.
pub fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@".contains(c)) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}
