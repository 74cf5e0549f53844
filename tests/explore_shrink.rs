//! `explore` shrinks its first violation by default, within a deterministic budget, and opens
//! the explanation with a causal sentence built from the shrunk run; bad paths are named.

use crate::common::{idemsim, json};
use predicates::prelude::*;
use std::path::Path;
use tempfile::TempDir;

const BUG: &str = "payment/setnx-everysec";

/// `explore BUG` (200 seeds, 2 threads) with `extra` arguments: its stdout.
fn explore(dir: &Path, extra: &[&str]) -> Vec<u8> {
    let a = idemsim().args(["explore", BUG, "--runs", "200", "--threads", "2", "--save"]).arg(dir).args(extra).assert();
    a.code(1).get_output().stdout.clone()
}

fn explore_json(dir: &Path, extra: &[&str]) -> serde_json::Value {
    json(&explore(dir, &[extra, &["--json"]].concat()))
}

fn explore_text(dir: &Path, extra: &[&str]) -> String {
    String::from_utf8(explore(dir, extra)).unwrap()
}

#[test]
fn explore_json_has_the_shrunk_counterexample_with_first_violations_fields() {
    let dir = TempDir::new().unwrap();
    let v = explore_json(dir.path(), &[]);
    let (f, k) = (&v["first_violation"], &v["shrunk"]);
    for field in ["seed", "invariant", "message", "seed_file", "replay"] {
        assert!(!k[field].is_null(), "shrunk.{field} missing: {k}");
    }
    assert_eq!(k["seed"], f["seed"]);
    assert_eq!(k["invariant"], "exactly_once_charge");
    assert_eq!(k["one_minimal"], true);
    assert_eq!(k["budget_exhausted"], false);
    assert!(k["runs"].as_u64().unwrap() <= k["budget_runs"].as_u64().unwrap());
    // The story is the trace's: a store crash that lost a SETNX, and the retry that charged again.
    let story = k["story"].as_str().unwrap();
    assert!(story.starts_with("The store crashed") && story.contains("after acknowledging SETNX for key 0x0"), "{story}");
    assert!(story.contains("the key was lost") && story.contains("claimed it again") && story.contains("charged again"), "{story}");
    // Both seed files exist; the shrunk one replays to the same violation.
    let shrunk_file = k["seed_file"].as_str().unwrap();
    assert!(Path::new(f["seed_file"].as_str().unwrap()).is_file() && shrunk_file.ends_with(".shrunk.toml"));
    idemsim().args(["replay", shrunk_file]).assert().code(1).stdout(predicate::str::contains("VIOLATION of exactly_once_charge"));
}

#[test]
fn no_shrink_prints_the_violation_as_found() {
    let dir = TempDir::new().unwrap();
    let v = explore_json(dir.path(), &["--no-shrink"]);
    assert!(v["shrunk"].is_null() && !v["first_violation"].is_null());
    let text = explore_text(dir.path(), &["--no-shrink"]);
    assert!(text.contains("shrink it:") && !text.contains("shrunk file:"), "{text}");
}

#[test]
fn a_spent_budget_says_smaller_not_proven_1_minimal_and_is_deterministic() {
    let dir = TempDir::new().unwrap();
    let a = explore_json(dir.path(), &["--shrink-budget", "200"]);
    let k = &a["shrunk"];
    assert_eq!(k["budget_exhausted"], true, "{k}");
    assert_eq!(k["one_minimal"], false);
    assert!(k["runs"].as_u64().unwrap() <= 200);
    assert!(k["verdict"].as_str().unwrap().contains("not proven 1-minimal"));
    // The budget counts runs, not seconds: the same on every run and machine.
    let b = explore_json(dir.path(), &["--shrink-budget", "200"]);
    assert_eq!(a["shrunk"], b["shrunk"]);
    assert!(explore_text(dir.path(), &["--shrink-budget", "200"]).contains("smaller, not proven 1-minimal: the budget of 200 runs ran out"));
    idemsim()
        .args(["explore", BUG, "--no-shrink", "--shrink-budget", "5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--no-shrink"));
}

#[test]
fn the_text_opens_with_the_story_then_names_both_seed_files() {
    let dir = TempDir::new().unwrap();
    let text = explore_text(dir.path(), &[]);
    let lines: Vec<&str> = text.lines().collect();
    let at = lines.iter().position(|l| l.starts_with("first violation: seed")).expect("a first violation");
    let shrunk = lines[at + 1];
    assert!(shrunk.starts_with("shrunk to 1 client, 1 operation, 3 faults (1 crash, 2 lost messages): 1-minimal after"), "{shrunk}");
    assert!(shrunk.contains("as found: 2 clients, 8 operations"), "{shrunk}");
    assert!(lines[at + 2].starts_with("  The store crashed"), "{text}");
    assert!(lines[at + 3].starts_with("  double charge: operation 0"), "{text}");
    assert!(text.contains("seed file:") && text.contains("shrunk file:") && text.contains("as a diagram:"), "{text}");
}

#[test]
fn a_missing_path_is_no_such_file_not_an_unknown_preset() {
    for arg in ["./mine", "/tmp/does/not/exist", "../scenarios/x", "nope.toml"] {
        for cmd in [&["explore", arg][..], &["compare", arg], &["check", arg, "--exhaustive"], &["shrink", arg], &["replay", arg]] {
            idemsim()
                .args(cmd)
                .assert()
                .code(2)
                .stderr(predicate::str::contains(format!("{arg}: no such file")).and(predicate::str::contains("unknown preset").not()));
        }
    }
    idemsim().args(["explore", "payment/nope"]).assert().code(2).stderr(predicate::str::contains("unknown preset"));
}
