//! Beyond one machine: N shards of one search run as separate processes at once, each with its
//! own output directory (as N machines of a CI matrix or an Indexed Job would), and `merge` of
//! their `--json` results equals the single-machine result, shrunk counterexample included.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_idemsim");
const SCENARIO: &str = "payment/setnx-everysec";
const SHARDS: usize = 3;

fn explore(dir: &Path, shard: Option<usize>) -> std::process::Child {
    let mut c = Command::new(BIN);
    c.args(["explore", SCENARIO, "--runs", "900", "--seed", "7", "--threads", "1", "--json", "--save"]).arg(dir.join("seeds"));
    if let Some(k) = shard {
        c.args(["--shard", &format!("{k}/{SHARDS}")]);
    }
    c.env_remove("CARGO_PKG_NAME").stdout(Stdio::piped()).spawn().expect("the idemsim binary runs")
}

/// The result minus what depends on the machine (timing, threads, which shard) and on where
/// each machine kept its files (paths are compared by file name).
fn comparable(mut v: Value) -> Value {
    let o = v.as_object_mut().unwrap();
    for k in ["runs_per_sec", "elapsed_sec", "threads", "shard"] {
        o.remove(k);
    }
    for part in ["first_violation", "shrunk"] {
        for field in ["seed_file", "replay"] {
            if let Some(Value::String(s)) = o.get_mut(part).and_then(|p| p.get_mut(field)) {
                *s = s.rsplit('/').next().unwrap().to_string();
            }
        }
    }
    v
}

fn output(child: std::process::Child) -> (i32, Vec<u8>) {
    let out = child.wait_with_output().unwrap();
    (out.status.code().unwrap(), out.stdout)
}

#[test]
fn shards_as_separate_processes_merge_into_the_single_machine_result() {
    let root = tempfile::TempDir::new().unwrap();
    let dirs: Vec<_> = (1..=SHARDS).map(|k| root.path().join(format!("machine{k}"))).collect();
    // All shards at once, each its own process and directory.
    let children: Vec<_> = dirs.iter().enumerate().map(|(i, d)| explore(d, Some(i + 1))).collect();
    let mut files = Vec::new();
    for (i, child) in children.into_iter().enumerate() {
        let (code, stdout) = output(child);
        assert!(code <= 1, "shard {} exited {code}", i + 1);
        let f = root.path().join(format!("shard-{}.json", i + 1));
        std::fs::write(&f, stdout).unwrap();
        files.push(f);
    }
    let (single_code, single) = output(explore(&root.path().join("one-machine"), None));
    let merged = Command::new(BIN).arg("merge").args(&files).arg("--json").output().unwrap();
    assert_eq!(merged.status.code(), Some(single_code), "merge exits as the single run does");
    let (merged, single): (Value, Value) = (serde_json::from_slice(&merged.stdout).unwrap(), serde_json::from_slice(&single).unwrap());
    assert!(!single["shrunk"].is_null(), "the search finds and shrinks a violation");
    assert_eq!(comparable(merged), comparable(single));
}
