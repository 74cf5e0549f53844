//! The command line end to end: every subcommand, the exit-status contract (0 nothing violated,
//! 1 a violation, 2 bad input) and every bad-input path. Small `--runs` keep it to seconds.

use crate::common::{idemsim, json};
use predicates::prelude::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const BUG: &str = "payment/setnx-everysec";
const GOOD: &str = "payment/durable-on-conflict";

/// The preset as a scenario file, edited by `edit`.
fn scenario_file(dir: &TempDir, name: &str, edit: impl Fn(String) -> String) -> PathBuf {
    let text = models::presets::get(BUG).unwrap().to_toml();
    let path = dir.path().join(name);
    std::fs::write(&path, edit(text)).unwrap();
    path
}

/// `explore BUG` into `dir`; returns the seed file it wrote.
fn find_bug(dir: &Path) -> PathBuf {
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
        (damaged("short.toml", tape[..2].to_vec()), "The run read past the end of its tape (2 of"),
        (damaged("empty.toml", vec![]), "Its tape is empty"),
        (damaged("prefixed.toml", [vec![7, 0, 5], tape.clone()].concat()), "Its tape does not fit this run (choice #0 is 7"),
    ];
    for (path, says) in cases {
        idemsim()
            .arg("replay")
            .arg(&path)
            .assert()
            .code(0)
            .stderr(predicate::str::contains(says).and(predicate::str::contains("or the models or the engine changed")));
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

#[test]
fn unknown_preset_suggests_the_closest_name() {
    for cmd in
        [&["explore", "payment/setnx-everysek"][..], &["compare", "payment/setnx-everysek"], &["list", "--toml", "payment/setnx-everysek"]]
    {
        idemsim()
            .args(cmd)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("unknown preset").and(predicate::str::contains("did you mean \"payment/setnx-everysec\"")));
    }
    idemsim().args(["replay", "payment/setnx-everysek", "--seed", "1"]).assert().code(2).stderr(predicate::str::contains("did you mean"));
}

#[test]
fn missing_scenario_file_is_named() {
    idemsim().args(["explore", "no/such/file.toml"]).assert().code(2).stderr(predicate::str::contains("no/such/file.toml: no such file"));
}

#[test]
fn unknown_toml_field_is_named_with_the_valid_ones() {
    let dir = TempDir::new().unwrap();
    let path = scenario_file(&dir, "bad.toml", |t| t.replace("[workload]\n", "[workload]\ncolour = 3\n"));
    idemsim()
        .arg("explore")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown field `colour`").and(predicate::str::contains("operations_per_client")));
}

/// Values no scenario can mean are refused, each naming its field: read as given, each made
/// every run fail (or run nothing, or for hours).
#[test]
fn values_that_cannot_be_meant_are_refused() {
    let dir = TempDir::new().unwrap();
    for (edit, says) in [
        (("expect = \"exactly_once_charge\"", "expect = \"effectively_once_event\""), "a payment scenario judges exactly_once_charge"),
        (("settle_bound_us = 10000000", "settle_bound_us = 0"), "settle_bound_us = 0"),
        (("timeout_us = 50000", "timeout_us = 100000000000"), "payment.client.timeout_us = 100000000000 is not before time_limit_us"),
        (("restart_delay_us_max = 50000", "restart_delay_us_max = 5000000000"), "faults.restart_delay_us_max = 5000000000"),
        (("crashes_per_node_max = 1", "crashes_per_node_max = 1000000"), "faults.crashes_per_node_max = 1000000: use 0 to 100"),
        (("ttl_us = 86400000000", "ttl_us = 0"), "payment.store.ttl_us must be > 0"),
        // A field beside kind = "none" (serde lets a unit variant take any).
        (("kind = \"none\"", "kind = \"none\"\ntokens = 3"), "unknown field `tokens`"),
    ] {
        let path = scenario_file(&dir, "bad.toml", |t| {
            assert!(t.contains(edit.0), "{} is in the preset", edit.0);
            t.replacen(edit.0, edit.1, 1)
        });
        idemsim().arg("explore").arg(&path).args(["--runs", "5"]).assert().code(2).stderr(predicate::str::contains(says));
    }
    // A fleet that would still be arriving when the run is cut.
    let fleet =
        models::presets::get("overload/jitter-budget").unwrap().to_toml().replacen("duration_us = 2000000", "duration_us = 100000000", 1);
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, fleet).unwrap();
    idemsim()
        .arg("explore")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("overload.fleet.duration_us = 100000000 is not before"));
}

#[test]
fn wrong_type_is_named() {
    let dir = TempDir::new().unwrap();
    let path = scenario_file(&dir, "bad.toml", |t| t.replace("clients = 2", "clients = \"two\""));
    idemsim()
        .arg("explore")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("clients").and(predicate::str::contains("invalid type")));
    let path = scenario_file(&dir, "bad2.toml", |t| t.replace("appendfsync = \"everysec\"", "appendfsync = \"sometimes\""));
    idemsim()
        .arg("explore")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("sometimes").and(predicate::str::contains("everysec")));
}

#[test]
fn impossible_combination_names_the_knob_and_the_fix() {
    let dir = TempDir::new().unwrap();
    let path = scenario_file(&dir, "bad.toml", |t| {
        let store = t.find("[payment.store]").unwrap();
        let end = t[store..].find("\n\n").map_or(t.len(), |e| store + e);
        format!(
            "{}[payment.store]\nkind = \"postgres\"\nsynchronous_commit = true\nunique_constraint = true\nwal_writer_delay_us = 200000{}",
            &t[..store],
            &t[end..]
        )
    });
    idemsim()
        .arg("explore")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("payment.server.key_claim").and(predicate::str::contains("set_nx needs")));
    let path = scenario_file(&dir, "bad2.toml", |t| t.replace("loss_probability = 0.1", "loss_probability = 1.5"));
    idemsim().arg("explore").arg(&path).assert().code(2).stderr(predicate::str::contains("faults.loss_probability = 1.5"));
}

#[test]
fn bad_shard_and_bad_numbers_are_refused() {
    for shard in ["3/2", "0/4", "x", "1/0"] {
        idemsim()
            .args(["explore", BUG, "--runs", "10", "--shard", shard])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("expected K/N"));
    }
    idemsim().args(["explore", BUG, "--runs", "ten"]).assert().code(2).stderr(predicate::str::contains("--runs"));
    // --threads 0 is neither read as 1 nor as all cores.
    for cmd in [&["explore", BUG][..], &["compare", BUG], &["check", BUG, "--exhaustive"]] {
        idemsim()
            .args(cmd)
            .args(["--threads", "0"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("use 1 or more worker threads, or leave --threads out for all cores"));
    }
    idemsim()
        .args(["replay", BUG, "--seed", "1", "--format", "svg"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("text, mermaid, json"));
}

#[test]
fn no_runs_and_an_empty_shard_are_refused() {
    for cmd in [&["explore", BUG][..], &["compare", BUG, GOOD]] {
        idemsim().args(cmd).args(["--runs", "0"]).assert().code(2).stderr(predicate::str::contains("--runs 0: use 1 or more"));
    }
    // 50 runs make at most 50 shards: shard 1/100 runs nothing, and some of the others too.
    idemsim()
        .args(["explore", BUG, "--runs", "50", "--shard", "1/100"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("this shard is empty").and(predicate::str::contains("use N <= 50 (or more --runs)")));
    idemsim()
        .args(["explore", BUG, "--runs", "50", "--shard", "2/100"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("100 shards of 50 runs leave some empty"));
    idemsim().args(["explore", GOOD, "--runs", "50", "--shard", "50/50", "--json"]).assert().code(0);
}

#[test]
fn a_zero_shrink_budget_is_refused() {
    idemsim().args(["shrink", BUG, "--budget", "0"]).assert().code(2).stderr(predicate::str::contains("--budget 0: use 1 or more"));
    idemsim()
        .args(["explore", BUG, "--runs", "50", "--shrink-budget", "0"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--shrink-budget 0: use 1 or more"));
}

#[test]
fn seeds_past_the_last_one_say_what_to_use() {
    let max = u64::MAX.to_string();
    for cmd in [&["explore", BUG][..], &["compare", BUG, GOOD]] {
        idemsim()
            .args(cmd)
            .args(["--seed", &max, "--runs", "50"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("overflows").and(predicate::str::contains(format!("use --seed {} or lower", u64::MAX - 50))));
    }
    idemsim()
        .args(["explore", BUG, "--seed", &(u64::MAX - 10).to_string(), "--runs", "50"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("or --runs 10 or fewer"));
}

#[test]
fn too_many_threads_are_refused() {
    // An explicit --threads is capped at 1024 (on any machine, so a command line moves between them).
    for cmd in [&["explore", BUG, "--runs", "10"][..], &["compare", BUG, GOOD, "--runs", "10"], &["check", BUG, "--exhaustive"]] {
        idemsim()
            .args(cmd)
            .args(["--threads", "1025"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("use at most 1024 worker threads").and(predicate::str::contains("leave --threads out")));
    }
}

#[test]
fn compare_needs_two_different_scenarios() {
    idemsim()
        .args(["compare", BUG, "--runs", "20"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("compare needs two or more different scenarios").and(predicate::str::contains("idemsim explore")));
    idemsim()
        .args(["compare", BUG, GOOD, BUG, "--runs", "20"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(format!("{BUG} is given twice")));
    // Another file with the same content is the same design, whatever its name says.
    let dir = TempDir::new().unwrap();
    let copy = scenario_file(&dir, "copy.toml", |t| t.replace(&format!("name = \"{BUG}\""), "name = \"mine\""));
    idemsim()
        .args(["compare", BUG])
        .arg(&copy)
        .args(["--runs", "20"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("are the same scenario").and(predicate::str::contains("copy.toml")));
    let edited = scenario_file(&dir, "edited.toml", |t| t.replace("loss_probability = 0.1", "loss_probability = 0.2"));
    idemsim().args(["compare", BUG]).arg(&edited).args(["--runs", "50"]).assert().code(1);
}

/// `explore --json` of `GOOD`, 30 seeds, with `extra` flags, into `dir/name`.
fn explore_json(dir: &TempDir, name: &str, extra: &[&str]) -> PathBuf {
    let out = idemsim().args(["explore", GOOD, "--runs", "30", "--threads", "1", "--json"]).args(extra).output().unwrap();
    assert!(out.status.code().is_some_and(|c| c < 2), "{}", String::from_utf8_lossy(&out.stderr));
    let path = dir.path().join(name);
    std::fs::write(&path, out.stdout).unwrap();
    path
}

#[test]
fn merge_refuses_an_incomplete_or_inconsistent_set_of_shards() {
    let dir = TempDir::new().unwrap();
    let [s1, s2, s3] = [1, 2, 3].map(|k| explore_json(&dir, &format!("{k}.json"), &["--shard", &format!("{k}/3")]));
    let of_four = explore_json(&dir, "2of4.json", &["--shard", "2/4"]);
    let swarm = explore_json(&dir, "swarm.json", &["--shard", "2/3", "--swarm"]);
    let whole = explore_json(&dir, "whole.json", &[]);
    let merge = |files: &[&PathBuf], says: &str| {
        idemsim().arg("merge").args(files).assert().code(2).stderr(predicate::str::contains(says.to_string()));
    };
    merge(&[&s1, &s2], "shard 3/3 missing: merge all 3 shards of one search");
    merge(&[&s2], "shard 1/3 missing");
    merge(&[&s1, &s2, &s2, &s3], "shard 2/3 given twice");
    merge(&[&s1, &of_four, &s3], "shard 1/3 and shard 2/4 disagree on N");
    merge(&[&whole, &s1], "seeds 0..30 is a whole search (no --shard)");
    merge(&[&s1, &swarm, &s3], "shard 2/3 of payment/durable-on-conflict, which ran with --swarm, and shard 1/3, which ran without");
    // The complete set merges, and so does one whole search.
    idemsim().arg("merge").args([&s3, &s1, &s2]).assert().code(0).stdout(predicate::str::contains("seeds 0..30"));
    idemsim().arg("merge").arg(&whole).assert().code(0);
    // Whole searches of adjacent ranges merge; ranges with a gap do not.
    let later = explore_json(&dir, "later.json", &["--seed", "30"]);
    let gap = explore_json(&dir, "gap.json", &["--seed", "40"]);
    idemsim().arg("merge").args([&whole, &later]).assert().code(0).stdout(predicate::str::contains("seeds 0..60"));
    merge(&[&whole, &gap], "leave a gap");
}

#[test]
fn seed_files_of_another_format_or_malformed_are_refused() {
    let dir = TempDir::new().unwrap();
    let file = find_bug(dir.path());
    let text = std::fs::read_to_string(&file).unwrap();
    let v2 = dir.path().join("v2.toml");
    std::fs::write(&v2, text.replace("format = 1", "format = 2")).unwrap();
    for cmd in ["replay", "shrink"] {
        idemsim()
            .arg(cmd)
            .arg(&v2)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("format 2 is not supported").and(predicate::str::contains("reads format 1")));
    }
    let garbage = dir.path().join("garbage.toml");
    std::fs::write(&garbage, "format = 1\nexpect = [\n").unwrap();
    idemsim().arg("replay").arg(&garbage).assert().code(2).stderr(predicate::str::contains("garbage.toml"));
    let no_source = dir.path().join("nosource.toml");
    let stripped: String = text.lines().filter(|l| !l.starts_with("seed = ")).map(|l| format!("{l}\n")).collect();
    std::fs::write(&no_source, stripped).unwrap();
    idemsim().arg("replay").arg(&no_source).assert().code(2).stderr(predicate::str::contains("needs `seed = N` or `tape"));
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, text.replace("format = 1\n", "format = 1\nflavour = \"x\"\n")).unwrap();
    idemsim().arg("replay").arg(&unknown).assert().code(2).stderr(predicate::str::contains("unknown field `flavour`"));
    let bad_expect = dir.path().join("expect.toml");
    std::fs::write(&bad_expect, text.replace("expect = \"exactly_once_charge\"\nseed", "expect = \"exactly_once\"\nseed")).unwrap();
    idemsim()
        .arg("replay")
        .arg(&bad_expect)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("use \"pass\", \"panic\"").and(predicate::str::contains("or an invariant: exactly_once_charge")));
}

#[test]
fn replay_needs_a_seed_for_a_scenario() {
    idemsim().args(["replay", BUG]).assert().code(2).stderr(predicate::str::contains("--seed"));
    let dir = TempDir::new().unwrap();
    let path = scenario_file(&dir, "mine.toml", |t| t);
    idemsim().arg("replay").arg(&path).assert().code(2).stderr(predicate::str::contains("is a scenario file"));
    let file = find_bug(dir.path());
    idemsim().arg("explore").arg(&file).assert().code(2).stderr(predicate::str::contains("is a seed file"));
}
