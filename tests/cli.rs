//! The command line end to end: every subcommand, the exit-status contract (0 nothing violated,
//! 1 a violation, 2 bad input) and every bad-input path. Small `--runs` keep it to seconds.

use crate::common::{idemsim, json};
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

pub(crate) const BUG: &str = "payment/setnx-everysec";
pub(crate) const GOOD: &str = "payment/durable-on-conflict";

/// The preset as a scenario file, edited by `edit`.
pub(crate) fn scenario_file(dir: &TempDir, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = models::presets::get(BUG).unwrap().to_toml();
    let path = dir.path().join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// `explore BUG` into `dir`; returns the seed file it wrote.
pub(crate) fn find_bug(dir: &Path) -> PathBuf {
    let out = idemsim()
        .args(["explore", BUG, "--runs", "200", "--threads", "2", "--json", "--no-shrink", "--save"])
        .arg(dir)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    PathBuf::from(json(&out)["first_violation"]["seed_file"].as_str().expect("a seed file").to_string())
}

#[test]
fn help_says_how_to_use_it() {
    idemsim().arg("--help").assert().success().stdout(predicate::str::contains("Exit status: 0").and(predicate::str::contains("explore")));
    idemsim().args(["explore", "--help"]).assert().success().stdout(predicate::str::contains("--shard <K/N>"));
}

#[test]
fn list_shows_every_preset_with_its_verdict() {
    let out = idemsim().arg("list").assert().success().get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    for p in models::presets::all() {
        let line = text.lines().find(|l| l.starts_with(&format!("{} ", p.name))).unwrap_or_else(|| panic!("{} missing", p.name));
        assert!(line.contains(&p.expect.to_string()), "{line}");
    }
    let out = idemsim().args(["list", "--json"]).assert().success().get_output().stdout.clone();
    assert_eq!(json(&out).as_array().unwrap().len(), models::presets::all().len());
}

#[test]
fn list_toml_prints_a_scenario_file_that_loads_back() {
    let out = idemsim().args(["list", "--toml", BUG]).assert().success().get_output().stdout.clone();
    let s = models::Scenario::from_toml(&String::from_utf8(out).unwrap()).unwrap();
    assert_eq!(s, models::presets::get(BUG).unwrap());
}

#[test]
fn explore_finds_a_violation_writes_a_seed_file_and_prints_the_replay_command() {
    let dir = TempDir::new().unwrap();
    let a = idemsim().args(["explore", BUG, "--runs", "200", "--threads", "2", "--save"]).arg(dir.path()).assert().code(1);
    let text = String::from_utf8(a.get_output().stdout.clone()).unwrap();
    assert!(text.contains("first violation: seed") && text.contains("exactly_once_charge"), "{text}");
    let replay = text.lines().find_map(|l| l.strip_prefix("replay it:")).expect("a replay command");
    let file = replay.trim_start().strip_prefix("idemsim replay ").expect("idemsim replay FILE");
    assert!(Path::new(file).is_file(), "{file}");
    // Both seed files are named: the run as found, and the shrunk one the replay command runs.
    let found = text.lines().find_map(|l| l.strip_prefix("seed file:")).expect("the seed file as found");
    assert!(Path::new(found.trim().split("  ").next().unwrap()).is_file(), "{found}");
    assert!(file.ends_with(".shrunk.toml"), "{file}");
    // The printed command works and reproduces the violation.
    idemsim().args(["replay", file]).assert().code(1).stdout(predicate::str::contains("VIOLATION of exactly_once_charge"));
}

#[test]
fn explore_of_a_correct_design_passes() {
    let dir = TempDir::new().unwrap();
    idemsim()
        .args(["explore", GOOD, "--runs", "200", "--threads", "2", "--save"])
        .arg(dir.path())
        .assert()
        .code(0)
        .stdout(predicate::str::contains("200 runs").and(predicate::str::contains("no violations")));
    assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0, "no seed file for a pass");
}

#[test]
fn explore_json_has_the_contract_fields() {
    let dir = TempDir::new().unwrap();
    let out = idemsim()
        .args(["explore", BUG, "--runs", "200", "--seed", "5", "--json", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["scenario"], BUG);
    assert_eq!(v["runs"], 200);
    assert!(v["violations"].as_u64().unwrap() > 0);
    assert!(v["runs_per_sec"].as_f64().unwrap() > 0.0);
    assert!(v["violations_by_invariant"]["exactly_once_charge"].as_u64().unwrap() > 0, "{}", v["violations_by_invariant"]);
    let f = &v["first_violation"];
    assert!(f["seed"].as_u64().unwrap() >= 5);
    // The first violating seed may break `settles` first (a claim left in flight) or
    // `exactly_once_charge` (a double charge); its message says which.
    let (invariant, message) = (f["invariant"].as_str().unwrap(), f["message"].as_str().unwrap());
    match invariant {
        "exactly_once_charge" => assert!(message.contains("double charge"), "{message}"),
        "settles" => assert!(message.contains("stuck in flight") || message.contains("never settled"), "{message}"),
        other => panic!("{other}: {message}"),
    }
    assert!(Path::new(f["seed_file"].as_str().unwrap()).is_file());
    let out = idemsim().args(["explore", GOOD, "--runs", "50", "--json"]).assert().code(0).get_output().stdout.clone();
    assert!(json(&out)["first_violation"].is_null());
}

#[test]
fn explore_swarm_runs() {
    let dir = TempDir::new().unwrap();
    let out = idemsim()
        .args(["explore", BUG, "--runs", "200", "--swarm", "--json", "--no-shrink", "--save"])
        .arg(dir.path())
        .assert()
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["swarm"], true);
    assert_eq!(v["runs"], 200);
}

/// The summary minus what depends on the machine (timing, threads, which shard).
fn comparable(mut v: Value) -> Value {
    for k in ["runs_per_sec", "elapsed_sec", "threads", "shard"] {
        v.as_object_mut().unwrap().remove(k);
    }
    v
}

#[test]
fn merged_shards_equal_the_one_machine_summary() {
    let dir = TempDir::new().unwrap();
    let whole = idemsim()
        .args(["explore", BUG, "--runs", "300", "--seed", "10", "--json", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let mut files = Vec::new();
    for k in 1..=3 {
        let out = idemsim()
            .args(["explore", BUG, "--runs", "300", "--seed", "10", "--threads", "1", "--json", "--shard", &format!("{k}/3"), "--save"])
            .arg(dir.path())
            .assert()
            .get_output()
            .stdout
            .clone();
        assert_eq!(json(&out)["shard"], format!("{k}/3"));
        let f = dir.path().join(format!("shard{k}.json"));
        std::fs::write(&f, out).unwrap();
        files.push(f);
    }
    files.reverse(); // order does not matter
    let merged = idemsim().arg("merge").args(&files).arg("--json").assert().code(1).get_output().stdout.clone();
    assert_eq!(comparable(json(&merged)), comparable(json(&whole)));
    // Text output too.
    idemsim().arg("merge").args(&files).assert().code(1).stdout(predicate::str::contains("explore payment/setnx-everysec: seeds 10..310"));
    // Two shards of three: refused, naming the missing one.
    idemsim().arg("merge").args([&files[0], &files[2]]).assert().code(2).stderr(predicate::str::contains("shard 2/3 missing"));
}

#[test]
fn merge_refuses_different_scenarios_and_non_json() {
    let dir = TempDir::new().unwrap();
    let a = idemsim()
        .args(["explore", BUG, "--runs", "20", "--json", "--shard", "1/2", "--no-shrink", "--save"])
        .arg(dir.path())
        .assert()
        .get_output()
        .stdout
        .clone();
    let b = idemsim().args(["explore", GOOD, "--runs", "20", "--json", "--shard", "2/2"]).assert().get_output().stdout.clone();
    let (fa, fb, junk) = (dir.path().join("a.json"), dir.path().join("b.json"), dir.path().join("junk.json"));
    std::fs::write(&fa, a).unwrap();
    std::fs::write(&fb, b).unwrap();
    std::fs::write(&junk, "{}").unwrap();
    idemsim().arg("merge").args([&fa, &fb]).assert().code(2).stderr(predicate::str::contains("different scenarios"));
    idemsim().arg("merge").arg(&junk).assert().code(2).stderr(predicate::str::contains("not an `idemsim explore --json` result"));
}

#[test]
fn replay_of_a_seed_file_and_of_scenario_seed_agree() {
    let dir = TempDir::new().unwrap();
    let file = find_bug(dir.path());
    let seed = idemsim::seedfile::SeedFile::load(&file).unwrap().seed.unwrap();
    let a = idemsim().arg("replay").arg(&file).arg("--format").arg("json").assert().code(1).get_output().stdout.clone();
    let b = idemsim().args(["replay", BUG, "--seed", &seed.to_string(), "--format", "json"]).assert().code(1).get_output().stdout.clone();
    let (a, b) = (json(&a), json(&b));
    assert_eq!(a["verdict"], b["verdict"]);
    assert_eq!(a["history_hash"], b["history_hash"]);
    assert_eq!(a["verdict"]["invariant"], "exactly_once_charge");
    assert!(a["events"].as_array().unwrap().iter().any(|e| e["marked"] == true));
}

#[test]
fn replay_text_marks_the_named_events_and_ends_with_the_violation() {
    let dir = TempDir::new().unwrap();
    let file = find_bug(dir.path());
    let out = idemsim().arg("replay").arg(&file).assert().code(1).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.lines().any(|l| l.starts_with('*') && l.contains("observe")), "{text}");
    assert!(text.lines().any(|l| l.contains(" CRASH ")), "{text}");
    assert!(text.contains("deliver") && text.contains("send") && text.contains("write") && text.contains("fsync"));
    let last = text.trim_end().lines().rev().take(3).collect::<Vec<_>>().join("\n");
    assert!(last.contains("marked *"), "{last}");
}

#[test]
fn replay_mermaid_and_verbose() {
    let dir = TempDir::new().unwrap();
    let file = find_bug(dir.path());
    let out = idemsim().arg("replay").arg(&file).args(["--format", "mermaid"]).assert().code(1).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("sequenceDiagram\n"));
    assert!(text.contains("participant server") && text.contains("->>") && text.contains("CRASH"));
    assert!(text.contains("VIOLATION exactly_once_charge"));
    idemsim()
        .arg("replay")
        .arg(&file)
        .arg("--verbose")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("actor{node=server").and(predicate::str::contains(" ms ")));
}

#[test]
fn replay_of_a_passing_run_exits_0() {
    idemsim().args(["replay", GOOD, "--seed", "3"]).assert().code(0).stdout(predicate::str::contains("PASS"));
}

#[test]
fn a_seed_file_replays_only_on_its_own_backend() {
    let dir = TempDir::new().unwrap();
    let file = find_bug(dir.path());
    idemsim()
        .arg("replay")
        .arg(&file)
        .args(["--backend", "madsim"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("was recorded on native").and(predicate::str::contains("drop --backend madsim")));
    idemsim().arg("replay").arg(&file).args(["--backend", "native"]).assert().code(1);
    let out = idemsim()
        .args(["explore", BUG, "--backend", "madsim", "--runs", "50", "--threads", "2", "--json", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let madsim = json(&out)["first_violation"]["seed_file"].as_str().unwrap().to_string();
    idemsim()
        .args(["replay", &madsim, "--backend", "native"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("was recorded on madsim").and(predicate::str::contains("drop --backend native")));
}

#[test]
fn a_damaged_tape_is_told_apart_from_a_model_change() {
    let dir = TempDir::new().unwrap();
    let found = find_bug(dir.path());
    let shrunk = dir.path().join("shrunk.toml");
    idemsim().arg("shrink").arg(&found).arg("--out").arg(&shrunk).assert().code(1);
    let mut file = idemsim::seedfile::SeedFile::load(&shrunk).unwrap();
    let tape = file.tape.clone().unwrap();
    let mut damaged = |name: &str, tape: Vec<u32>| {
        file.tape = Some(tape);
        let path = dir.path().join(name);
        std::fs::write(&path, file.to_text().unwrap()).unwrap();
        path
    };
    let cases = [
        (damaged("short.toml", tape[..2].to_vec()), "its tape holds 2 (past its end every choice is 0)"),
        (damaged("empty.toml", vec![]), "Its tape is empty"),
        (damaged("prefixed.toml", [vec![7, 0, 5], tape.clone()].concat()), "Its tape does not fit this run (choice #0 is 7"),
    ];
    for (path, says) in cases {
        idemsim().arg("replay").arg(&path).assert().code(0).stderr(
            predicate::str::contains(says).and(predicate::str::contains("or the scenario in it, the models or the engine changed")),
        );
    }
}

#[test]
fn shrink_gives_a_1_minimal_counterexample_that_replays() {
    let dir = TempDir::new().unwrap();
    let file = find_bug(dir.path());
    let out_file = dir.path().join("shrunk.toml");
    let out = idemsim().arg("shrink").arg(&file).arg("--out").arg(&out_file).assert().code(1).get_output().stdout.clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("before") && text.contains("after") && text.contains("1-minimal"), "{text}");
    let shrunk = idemsim::seedfile::SeedFile::load(&out_file).unwrap();
    let tape = shrunk.tape.clone().expect("a shrunk file has a tape");
    let original = idemsim::seedfile::SeedFile::load(&file).unwrap();
    let w = shrunk.scenario.workload();
    assert!(
        w.clients * w.operations_per_client <= original.scenario.workload().clients * original.scenario.workload().operations_per_client
    );
    // It still fails the same way...
    let rec = shrunk.scenario.record(&shrunk.source(), false);
    assert_eq!(rec.outcome.verdict.violation().unwrap().invariant, "exactly_once_charge");
    // ...and every remaining fault, and every operation, is needed: re-run without each.
    let kinds: Vec<_> = rec.tape.iter().map(|c| c.kind).collect();
    let values: Vec<u32> = rec.tape.iter().map(|c| c.value).collect();
    for i in (0..values.len()).filter(|&i| kinds[i].is_fault() && values[i] != 0) {
        let mut t = values.clone();
        t[i] = 0;
        let r = shrunk.scenario.record(&models::run::Source::Tape(t), false);
        assert!(
            !matches!(r.outcome.verdict.violation(), Some(v) if v.invariant == "exactly_once_charge"),
            "fault {i} ({:?}) is not needed",
            kinds[i]
        );
    }
    let m = idemsim::shrink::check_minimal(&shrunk.scenario, &tape, "exactly_once_charge");
    assert!(m.removable_faults.is_empty() && m.removable_operations.is_empty(), "{m:?}");
    // The shrunk file replays through the CLI.
    idemsim().arg("replay").arg(&out_file).assert().code(1);
    // Default output: next to the input.
    idemsim().arg("shrink").arg(&file).assert().code(1);
    assert!(file.with_file_name(format!("{}.shrunk.toml", file.file_stem().unwrap().to_string_lossy())).is_file());
}

#[test]
fn shrink_of_a_passing_run_says_so() {
    let dir = TempDir::new().unwrap();
    idemsim()
        .args(["shrink", GOOD, "--seed", "1", "--out"])
        .arg(dir.path().join("x.toml"))
        .assert()
        .code(0)
        .stderr(predicate::str::contains("nothing to shrink"));
}

/// A bare SCENARIO with no failing seed: nothing violated, as with a passing SCENARIO --seed S,
/// so exit 0 too (not bad input).
#[test]
fn shrink_of_a_scenario_with_no_failing_seed_exits_0() {
    let dir = TempDir::new().unwrap();
    idemsim()
        .args(["shrink", GOOD, "--out"])
        .arg(dir.path().join("y.toml"))
        .assert()
        .code(0)
        .stderr(predicate::str::contains("nothing to shrink").and(predicate::str::contains("no invariant in seeds 0..100000")));
    assert!(!dir.path().join("y.toml").exists());
}

#[test]
fn compare_prints_every_format() {
    let args = ["compare", BUG, GOOD, "--runs", "100", "--threads", "2", "--format"];
    let out = idemsim().args(args).arg("csv").assert().code(1).get_output().stdout.clone();
    let csv = String::from_utf8(out).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with(
        "scenario,runs,safety_violating_runs,rate,rate_low,rate_high,liveness_violating_runs,liveness_rate,first_failing_seed"
    ));
    assert!(lines[2].starts_with(&format!("{GOOD},100,0,")));
    let out = idemsim().args(args).arg("json").assert().code(1).get_output().stdout.clone();
    let v = json(&out);
    let rows = v["rows"].as_array().unwrap();
    assert!(rows[0]["safety_violating_runs"].as_u64().unwrap() > 0 && rows[0]["rate_low"].as_f64().unwrap() > 0.0);
    assert!(rows[1]["liveness_violating_runs"].as_u64() == Some(0) && rows[1]["any_violating_runs"].as_u64() == Some(0));
    assert!(rows[1]["first_failing_seed"].is_null() && rows[1]["mean_attempts_per_operation"].as_f64().unwrap() >= 1.0);
    idemsim().args(args).arg("markdown").assert().code(1).stdout(predicate::str::contains("|---|"));
    idemsim()
        .args(args)
        .arg("table")
        .assert()
        .code(1)
        .stdout(predicate::str::contains("95% interval").and(predicate::str::contains("attempts/op")));
    idemsim().args(["compare", GOOD, "payment/setnx-always", "--runs", "50"]).assert().code(0);
}

/// On the outbox path `compare` counts what went wrong with the events and, apart from the
/// invariants, the orders that did not commit; a dead service's session held 1 s
/// (`session_timeout_us`) makes more orders fail than the idealisation that ends it at the
/// restart. The chain's orders are payments: it has no such count.
#[test]
fn compare_counts_the_outbox_paths_effects_and_its_orders_that_did_not_commit() {
    let (_dir, ended) = crate::common::edited_preset("outbox/outbox-inbox", |t| {
        t.replace("session_timeout_us = 1000000", "session_timeout_us = 0").replace("name = \"outbox/outbox-inbox\"", "name = \"ended\"")
    });
    let out = idemsim()
        .args(["compare", "outbox/outbox-inbox", "outbox/dual-write", "outbox/publish-then-commit", "chain/checkout"])
        .arg(&ended)
        .args(["--runs", "3000", "--threads", "2", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    let row = |i: usize, field: &str| v["rows"][i][field].as_u64();
    let (held, dual, publish, chain, idealised) = (0, 1, 2, 3, 4);
    assert_eq!(v["rows"][idealised]["scenario"], "ended");
    assert_eq!((row(held, "lost"), row(held, "duplicate"), row(held, "phantom")), (Some(0), Some(0), Some(0)));
    assert!(row(dual, "lost").unwrap() > 0 && row(publish, "phantom").unwrap() > 0, "{v}");
    // 6 orders a run; a phantom's order is one that did not commit.
    for i in [held, dual, publish, idealised] {
        let n = row(i, "orders_not_committed").unwrap_or_else(|| panic!("row {i}: {v}"));
        assert!(n > 0 && n < 6 * 3000, "row {i}: {n}");
    }
    assert!(row(publish, "orders_not_committed") >= row(publish, "phantom"));
    assert!(v["rows"][chain]["orders_not_committed"].is_null() && row(chain, "lost").is_some());
    let (h, e) = (row(held, "orders_not_committed").unwrap(), row(idealised, "orders_not_committed").unwrap());
    assert!(h > e, "a held session fails more orders: {h} against {e}");
}

#[test]
fn a_scenario_file_runs_like_its_preset() {
    let dir = TempDir::new().unwrap();
    let path = scenario_file(&dir, "mine.toml", |t| t);
    let a = idemsim()
        .arg("explore")
        .arg(&path)
        .args(["--runs", "100", "--json", "--no-shrink", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let b = idemsim()
        .args(["explore", BUG, "--runs", "100", "--json", "--no-shrink", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert_eq!(json(&a)["report"], json(&b)["report"]);
}

// ---- bad input: exit 2, a message naming what is wrong and what would be valid ----
