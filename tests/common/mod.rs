//! Helpers the end-to-end test files share.
#![allow(dead_code)] // each test file uses its own subset

use assert_cmd::Command;
use serde_json::Value;

/// The built `idemsim` binary, printing commands as `idemsim ...` (not `cargo run ...`).
pub fn idemsim() -> Command {
    let mut c = Command::cargo_bin("idemsim").expect("the idemsim binary is built");
    c.env_remove("CARGO_PKG_NAME");
    c
}

pub fn json(out: &[u8]) -> Value {
    serde_json::from_slice(out).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(out)))
}

/// Preset `name` as a TOML scenario file (`idemsim list --toml`), changed by `edit`, in a fresh
/// directory (kept alive by the returned `TempDir`).
pub fn edited_preset(name: &str, edit: impl Fn(String) -> String) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::TempDir::new().unwrap();
    let out = idemsim().args(["list", "--toml", name]).output().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, edit(String::from_utf8(out.stdout).unwrap())).unwrap();
    (dir, path)
}
