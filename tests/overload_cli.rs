//! The overload path on the command line: bad `[overload]` input gets exit status 2 and a message
//! naming the field; `compare` prints the overload columns; `--plot` writes an SVG of offered load
//! and goodput and refuses what it cannot draw.

use crate::common::{idemsim, json};
use predicates::prelude::*;
use tempfile::TempDir;

fn preset_toml(edit: impl Fn(String) -> String) -> (TempDir, std::path::PathBuf) {
    crate::common::edited_preset("overload/jitter-budget", edit)
}

#[test]
fn bad_overload_input_names_the_field_and_exits_2() {
    let cases: [(&str, &str, &str); 3] = [
        ("clients = 50", "clients = 5000", "overload.fleet.clients must be between 1 and 1000"),
        ("workers = 32", "workers = 32\nthreads = 4", "unknown field `threads`"),
        ("backoff = \"full_jitter\"", "backoff = \"fibonacci\"", "unknown variant `fibonacci`"),
    ];
    for (from, to, says) in cases {
        let (_dir, path) = preset_toml(|t| t.replacen(from, to, 1));
        idemsim().arg("explore").arg(&path).args(["--runs", "1"]).assert().code(2).stderr(predicate::str::contains(says));
    }
    // A run shorter than the outage and its recovery bound cannot judge recovery.
    let (_dir, path) = preset_toml(|t| t.replacen("duration_us = 2000000", "duration_us = 1000000", 1));
    idemsim().arg("explore").arg(&path).assert().code(2).stderr(predicate::str::contains("overload.fleet.duration_us"));
}

#[test]
fn compare_prints_amplification_and_recovery_and_plots_an_svg() {
    let dir = TempDir::new().unwrap();
    let svg = dir.path().join("load.svg");
    let out = idemsim()
        .args(["compare", "overload/jitter-budget", "overload/ignore-retry-after", "--runs", "20", "--format", "json", "--plot"])
        .arg(&svg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = json(&out.stdout)["rows"].as_array().unwrap().clone();
    assert!(rows[0]["outage_amplification"].as_f64().unwrap() < 3.0, "{rows:?}");
    assert!(rows[1]["outage_amplification"].as_f64().unwrap() > 3.0, "{rows:?}");
    assert_eq!(rows[0]["unrecovered_runs"].as_u64(), Some(0));
    let text = std::fs::read_to_string(&svg).unwrap();
    assert!(text.starts_with("<svg") && text.contains("goodput") && text.contains("overload/ignore-retry-after"), "not the plot");
    // Nothing to draw, or not an SVG: bad input, before any run.
    idemsim().args(["compare", "payment/durable-on-conflict", "--runs", "5", "--plot"]).arg(&svg).assert().code(2);
    idemsim()
        .args(["explore", "overload/jitter-budget", "--runs", "5", "--plot", "x.png"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(".svg"));
}
