//! `idemsim check --exhaustive` and `--backend madsim` end to end: exit statuses, the JSON
//! contract, and seed files that replay (and, for native tapes, shrink) in the semantics and on the
//! backend they were found in. Small bounds keep most searches well under a second; the outbox
//! aggregate-lock test, the longest, takes about 10 s.

use crate::common::{edited_preset, idemsim, json};
use idemsim::seedfile::SeedFile;
use models::run::Backend;
use predicates::prelude::*;
use serde_json::Value;
use sim::Semantics;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

const GOOD: &str = "payment/durable-on-conflict";
/// A new key per attempt: one request and its retry charge twice, no fault needed.
const BUG: &str = "payment/key-per-attempt";
const BUG_SHAPE: [&str; 4] = ["--requests", "1", "--attempts", "2"];
const EXACTLY_ONCE: &str = "exactly_once_charge";

fn stdout(a: &assert_cmd::assert::Assert) -> String {
    String::from_utf8(a.get_output().stdout.clone()).unwrap()
}

#[test]
fn check_of_a_correct_design_passes_and_says_how_it_searched() {
    let dir = TempDir::new().unwrap();
    let a = idemsim().args(["check", GOOD, "--exhaustive", "--lost", "1", "--save"]).arg(dir.path()).assert().code(0);
    let text = stdout(&a);
    for want in ["semantics:  untimed", "interleavings:", "distinct states:", "max depth:", "states/s", "exhausted:", "no violation"] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    assert!(!text.contains("NOT exhausted"), "{text}");
    assert_eq!(std::fs::read_dir(dir.path()).map(|d| d.count()).unwrap_or(0), 0, "no seed file for a pass");
    // The JSON contract.
    let out = idemsim().args(["check", GOOD, "--exhaustive", "--lost", "1", "--json"]).assert().code(0).get_output().stdout.clone();
    let v = json(&out);
    assert_eq!(v["scenario"], GOOD);
    assert_eq!((v["requests"].as_u64(), v["attempts"].as_u64()), (Some(2), Some(1)));
    assert_eq!((v["semantics"].as_str(), v["history"].as_str()), (Some("untimed"), Some("relevant")));
    assert_eq!(v["symmetry"].as_bool(), Some(true));
    assert_eq!(v["bounds"]["max_lost"], 1);
    assert!(v["bounds"]["max_events"].is_null() && v["bounds"]["max_runs"].is_null());
    assert_eq!((v["prune_states"].as_bool(), v["reduction"].as_bool(), v["exhausted"].as_bool()), (Some(true), Some(true), Some(true)));
    assert!(v["interleavings"].as_u64().unwrap() > 0 && v["distinct_states"].as_u64().unwrap() > 0);
    assert!(v["max_depth"].as_u64().unwrap() > 0 && v["states_per_sec"].as_f64().is_some());
    assert_eq!(v["violations"], 0);
    assert!(v["first_violation"].is_null() && v.get("shortest").is_none());
}

#[test]
fn a_run_limit_is_not_a_proof() {
    let a = idemsim().args(["check", GOOD, "--exhaustive", "--lost", "1", "--max-runs", "50"]).assert().code(0);
    assert!(stdout(&a).contains("NOT exhausted — not a proof: stopped at --max-runs 50"), "{}", stdout(&a));
    // An untimed search cut short points to the bounded one; a bounded one does not.
    assert!(stdout(&a).contains("hint:") && stdout(&a).contains("--semantics bounded"), "{}", stdout(&a));
    let b = idemsim().args(["check", GOOD, "--exhaustive", "--lost", "1", "--max-runs", "50", "--semantics", "bounded"]).assert().code(0);
    assert!(stdout(&b).contains("NOT exhausted") && !stdout(&b).contains("hint:"), "{}", stdout(&b));
    let a = idemsim().args(["check", GOOD, "--exhaustive", "--max-events", "5"]).assert().code(0);
    assert!(stdout(&a).contains("warning: ") && stdout(&a).contains("cut at --max-events 5"), "{}", stdout(&a));
    let out = idemsim().args(["check", GOOD, "--exhaustive", "--max-runs", "50", "--json"]).assert().code(0).get_output().stdout.clone();
    let v = json(&out);
    assert_eq!((v["exhausted"].as_bool(), v["bounds"]["max_runs"].as_u64()), (Some(false), Some(50)));
}

/// `check BUG` (one request and one retry) into `dir` with `extra` flags: exit 1, and the JSON
/// of the run.
fn find_bug(dir: &Path, extra: &[&str]) -> Value {
    let out = idemsim()
        .args(["check", BUG, "--exhaustive", "--json", "--save"])
        .arg(dir)
        .args(BUG_SHAPE)
        .args(extra)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    json(&out)
}

#[test]
fn a_check_counterexample_replays_and_shrinks_in_its_semantics() {
    let dir = TempDir::new().unwrap();
    let v = find_bug(dir.path(), &[]);
    assert!(v["violations"].as_u64().unwrap() > 0 && v["by_invariant"][EXACTLY_ONCE].as_u64().is_some());
    let f = &v["first_violation"];
    assert_eq!(f["invariant"], EXACTLY_ONCE);
    assert!(f["message"].as_str().unwrap().starts_with("double charge"));
    assert!(f["events"].as_u64().unwrap() > 0 && !f["tape"].as_array().unwrap().is_empty());
    let file = PathBuf::from(f["seed_file"].as_str().unwrap());
    // The file: the tape, untimed, the derived scenario (one operation, one request, 2 attempts).
    let seed = SeedFile::load(&file).unwrap();
    assert_eq!((seed.semantics, seed.backend, seed.seed), (Semantics::Untimed, Backend::Native, None));
    assert_eq!(seed.tape.as_deref().map(|t| t.len()), Some(f["tape"].as_array().unwrap().len()));
    let w = seed.scenario.workload();
    assert_eq!((seed.scenario.name.as_str(), w.clients, w.operations_per_client, w.duplicates), (BUG, 1, 1, 0));
    assert_eq!(seed.scenario.payment().client.max_attempts, 2);
    assert!(std::fs::read_to_string(&file).unwrap().contains("semantics = \"untimed\""));
    let rec = seed.record(false).unwrap();
    assert_eq!(rec.outcome.history_hash, f["history_hash"].as_u64().unwrap(), "the file replays the very run");
    // replay: exit 1, the same invariant, in the untimed semantics.
    idemsim()
        .arg("replay")
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains("untimed").and(predicate::str::contains("VIOLATION of exactly_once_charge")))
        .stderr(predicate::str::contains("no longer reproduces").not());
    // shrink: a 1-minimal counterexample, still untimed, that replays.
    let shrunk = dir.path().join("shrunk.toml");
    let a = idemsim().arg("shrink").arg(&file).arg("--out").arg(&shrunk).assert().code(1);
    assert!(stdout(&a).contains("1-minimal"), "{}", stdout(&a));
    let s = SeedFile::load(&shrunk).unwrap();
    assert_eq!(s.semantics, Semantics::Untimed);
    assert_eq!(s.record(false).unwrap().outcome.verdict.violation().unwrap().invariant, EXACTLY_ONCE);
    let m = idemsim::shrink::check_minimal_in(Semantics::Untimed, &s.scenario, s.tape.as_ref().unwrap(), EXACTLY_ONCE);
    assert!(m.removable_faults.is_empty() && m.removable_operations.is_empty(), "{m:?}");
    idemsim().arg("replay").arg(&shrunk).assert().code(1);
    // A tape found untimed does not replay on madsim.
    idemsim().arg("replay").arg(&file).args(["--backend", "madsim"]).assert().code(2).stderr(predicate::str::contains("native backend"));
}

#[test]
fn shortest_is_proven_and_printed() {
    let dir = TempDir::new().unwrap();
    let v = find_bug(dir.path(), &["--shortest"]);
    let sh = &v["shortest"];
    let e = sh["events"].as_u64().unwrap();
    assert_eq!(v["first_violation"]["events"].as_u64(), Some(e));
    assert_eq!(sh["proven"], true);
    assert_eq!(sh["proof"]["max_events"].as_u64(), Some(e - 1));
    assert!(sh["searches"].as_u64().unwrap() >= 2);
    let a = idemsim().args(["check", BUG, "--exhaustive", "--shortest", "--save"]).arg(dir.path()).args(BUG_SHAPE).assert().code(1);
    let text = stdout(&a);
    assert!(text.contains(&format!("{e} events; no violating run within {} events (proof: ", e - 1)), "{text}");
    assert!(text.contains("seed file:") && text.contains("replay it:  idemsim replay ") && text.contains("shrink it:  idemsim shrink "));
    // --stop-at-first: a violation, and not exhausted.
    let v = find_bug(dir.path(), &["--stop-at-first"]);
    assert_eq!(v["exhausted"], false);
    assert!(v["first_violation"]["seed_file"].is_string());
}

#[test]
fn timed_and_ordered_checks_say_so() {
    let out = idemsim()
        .args(["check", GOOD, "--exhaustive", "--requests", "1", "--timed", "--history", "ordered", "--no-prune", "--json"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!((v["semantics"].as_str(), v["history"].as_str()), (Some("timed"), Some("ordered")));
    assert_eq!((v["prune_states"].as_bool(), v["reduction"].as_bool()), (Some(false), Some(false)));
    // The reductions of the relevant view and of symmetry switch off, and the text says so.
    let a = idemsim().args(["check", GOOD, "--exhaustive", "--lost", "1", "--history", "per-node", "--no-symmetry"]).assert().code(0);
    let text = stdout(&a);
    assert!(text.contains("per-node history view") && text.contains("symmetry off") && text.contains("no violation"), "{text}");
    idemsim()
        .args(["check", GOOD, "--exhaustive", "--requests", "1", "--timed"])
        .assert()
        .code(0)
        .stdout(predicate::str::contains("semantics:  timed"));
}

#[test]
fn check_bad_input_names_the_flag() {
    idemsim()
        .args(["check", GOOD])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("check needs --exhaustive").and(predicate::str::contains("idemsim explore")));
    for (flag, value, says) in [
        ("--requests", "0", "--requests 0: use 1 to 17"),
        ("--requests", "18", "--requests 18"),
        ("--attempts", "0", "--attempts 0"),
        ("--values", "1", "--values 1"),
        ("--max-events", "0", "--max-events 0"),
        ("--max-runs", "0", "--max-runs 0"),
        ("--lost", "x", "--lost"),
        ("--crashes", "many", "--crashes"),
        ("--history", "ignored", "--history"),
    ] {
        idemsim().args(["check", GOOD, "--exhaustive", flag, value]).assert().code(2).stderr(predicate::str::contains(says));
    }
    idemsim().args(["check", GOOD, "--exhaustive", "--history", "ignored"]).assert().code(2).stderr(predicate::str::contains("per-node"));
    // Late messages are a bounded search's fault: untimed has every message late already.
    for semantics in [["--semantics", "untimed"], ["--semantics", "timed"]] {
        idemsim()
            .args(["check", GOOD, "--exhaustive", "--late", "1"])
            .args(semantics)
            .assert()
            .code(2)
            .stderr(predicate::str::contains("--late 1").and(predicate::str::contains("--semantics bounded")));
    }
    idemsim()
        .args(["check", GOOD, "--exhaustive", "--late", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("untimed lets every message and restart be late"));
    idemsim()
        .args(["check", "outbox/outbox-inbox", "--exhaustive", "--attempts", "5"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--attempts 5: an outbox check has no client to retry"));
    // A bound on a fault the checked scenario cannot produce would pass as a proof it is not.
    idemsim()
        .args(["check", "payment/setnx-everysec", "--exhaustive", "--pauses", "1"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--pauses 1").and(predicate::str::contains("targets.pause names none")));
    idemsim()
        .args(["check", GOOD, "--exhaustive", "--crash", "store"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--crash store").and(predicate::str::contains("--crashes N")));
    // A Redis store with a replica cuts itself off (a split brain) whatever targets.lossy says:
    // its partitions are neither refused nor capped.
    let a = idemsim().args(["check", "payment/setnx-split-brain", "--exhaustive", "--partitions", "2", "--stop-at-first"]).assert().code(1);
    assert!(!String::from_utf8_lossy(&a.get_output().stderr).contains("note:"));
    // One above what it can produce is searched as what it can, and said.
    idemsim()
        .args(["check", GOOD, "--exhaustive", "--crash", "store", "--crashes", "2", "--requests", "1"])
        .assert()
        .code(0)
        .stderr(predicate::str::contains("--crashes 2: payment/durable-on-conflict can have at most 1"));
    idemsim()
        .args(["check", GOOD, "--exhaustive", "--shortest", "--stop-at-first"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--stop-at-first"));
    idemsim()
        .args(["check", "payment/durable-on-conflit", "--exhaustive"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("did you mean"));
    idemsim()
        .args(["check", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--exhaustive").and(predicate::str::contains("untimed")));
}

/// A copy a second late takes an expired-looking lease over: the bounded search finds it only
/// with late messages to spend, and its seed file replays them, named, in the bounded semantics.
#[test]
fn late_messages_in_a_bounded_check_are_counted_saved_and_replayed() {
    let dir = TempDir::new().unwrap();
    // (Its checked scenario crashes nothing: --crashes is refused there.)
    let base = ["check", "payment/lease-check-with-skew", "--exhaustive", "--semantics", "bounded", "--lost", "1"];
    let a = idemsim().args(base).assert().code(0);
    assert!(stdout(&a).contains("partitions 0, late 0;") && stdout(&a).contains("no violation"), "{}", stdout(&a));
    let out = idemsim().args(base).args(["--late", "2", "--json", "--save"]).arg(dir.path()).assert().code(1).get_output().stdout.clone();
    let v = json(&out);
    // Its tapes hold a late-or-not choice per copy, which plain bounded tapes do not.
    assert_eq!((v["semantics"].as_str(), v["bounds"]["max_late"].as_u64()), (Some("bounded_late"), Some(2)), "{v}");
    let f = &v["first_violation"];
    assert_eq!(f["invariant"], EXACTLY_ONCE);
    assert!(f["message"].as_str().unwrap().contains("2 late messages"), "{f}");
    let file = PathBuf::from(f["seed_file"].as_str().unwrap());
    assert_eq!(SeedFile::load(&file).unwrap().semantics, Semantics::BoundedLate);
    assert!(std::fs::read_to_string(&file).unwrap().contains("semantics = \"bounded_late\""));
    idemsim().arg("replay").arg(&file).assert().code(1).stdout(
        predicate::str::contains("faults: 2 late messages")
            .and(predicate::str::contains("LATE"))
            .and(predicate::str::contains("VIOLATION of exactly_once_charge")),
    );
    // An untimed check has no late bound to show.
    let a = idemsim().args(["check", GOOD, "--exhaustive", "--max-runs", "5"]).assert().code(0);
    assert!(stdout(&a).contains("partitions 0;") && !stdout(&a).contains("late 0"), "{}", stdout(&a));
}

#[test]
fn an_outbox_check_is_bounded_and_its_counterexample_replays_bounded() {
    let dir = TempDir::new().unwrap();
    let base = ["check", "outbox/no-inbox", "--exhaustive", "--requests", "1", "--crash", "consumer", "--crashes", "1"];
    let out =
        idemsim().args(base).args(["--stop-at-first", "--json", "--save"]).arg(dir.path()).assert().code(1).get_output().stdout.clone();
    let v = json(&out);
    assert_eq!(v["semantics"].as_str(), Some("bounded"), "the outbox path's default: {v}");
    let f = &v["first_violation"];
    assert_eq!(f["invariant"], "effectively_once_event");
    assert!(f["message"].as_str().unwrap().contains("consumer crashed"), "{f}");
    let file = PathBuf::from(f["seed_file"].as_str().unwrap());
    let seed = SeedFile::load(&file).unwrap();
    assert_eq!(seed.semantics, Semantics::Bounded);
    assert_eq!(seed.scenario.targets.crash, vec![models::Role::Consumer], "the file holds the narrowed scenario");
    assert!(std::fs::read_to_string(&file).unwrap().contains("semantics = \"bounded\""));
    idemsim()
        .arg("replay")
        .arg(&file)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(", bounded").and(predicate::str::contains("VIOLATION of effectively_once_event")));
    // With late messages a lost event cannot be told from a late one: the correct design passes
    // (two late statements let the order commit after the relay stopped polling, which the
    // lost-event check would call a lost event), and duplicates are still found.
    let a = idemsim().args(["check", "outbox/outbox-inbox", "--exhaustive", "--requests", "1", "--late", "2"]).assert().code(0);
    assert!(stdout(&a).contains("judged:     duplicates, phantoms and order only"), "{}", stdout(&a));
    assert!(
        !stdout(&idemsim().args(["check", "outbox/outbox-inbox", "--exhaustive", "--requests", "1"]).assert().code(0)).contains("judged:")
    );
    let out = idemsim()
        .args(base)
        .args(["--late", "1", "--stop-at-first", "--json", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    assert!(json(&out)["first_violation"]["message"].as_str().unwrap().starts_with("duplicate effect"), "{}", json(&out));
    // Asked for, the untimed semantics is used (here cut short: its search does not end).
    let out = idemsim().args(base).args(["--semantics", "untimed", "--max-runs", "50", "--json"]).assert().get_output().stdout.clone();
    assert_eq!(json(&out)["semantics"].as_str(), Some("untimed"));
    // A role the path does not have, or one the scenario does not crash, is named with the fix.
    idemsim()
        .args(["check", "outbox/no-inbox", "--exhaustive", "--crash", "provider"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--crash provider").and(predicate::str::contains("relay")));
    // A role whose node is idle in this design would crash nothing: a pass would be no proof. A
    // busy provider the scenario just does not crash is told so, not called idle.
    let refused = |preset: &str, role: &str| {
        let a = idemsim().args(["check", preset, "--exhaustive", "--crashes", "1", "--crash", role]).assert().code(2);
        String::from_utf8_lossy(&a.get_output().stderr).into_owned()
    };
    let e = refused("payment/durable-on-conflict", "completer");
    assert!(e.contains("has no completer") && e.contains("kind = \"none\"") && e.contains("store"), "{e}");
    let e = refused("payment/durable-on-conflict", "provider");
    assert!(e.contains("charge = \"local_ledger\"") && e.contains("crashes client, server, store"), "{e}");
    let e = refused("payment/setnx-everysec", "provider");
    assert!(e.contains("crashes only store") && !e.contains("local_ledger"), "{e}");
    idemsim()
        .args(["check", GOOD, "--exhaustive", "--semantics", "sometimes"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--semantics"));
}

/// The outbox path's checked scenario stops its pollers at a horizon. The correct design holds a
/// crash and a lost message: a relay that crashed publishes late, and the consumer still polls
/// at its horizon, after the relay's (before, the consumer's last backoff step fell before the
/// late publish and the event was called lost).
#[test]
fn the_correct_outbox_design_holds_a_crash_and_a_lost_message() {
    assert_exhausted_pass(
        idemsim().args(["check", "outbox/outbox-inbox", "--exhaustive", "--crashes", "1", "--lost", "1", "--json"]).assert().code(0),
    );
}

/// `check --json`'s verdict: every run within the bounds searched, none violating.
fn assert_exhausted_pass(a: assert_cmd::assert::Assert) {
    let v = json(&a.get_output().stdout);
    assert_eq!((v["exhausted"].as_bool(), v["violations"].as_u64()), (Some(true), Some(0)), "{v}");
}

/// One aggregate's orders take turns (`aggregate_lock = "for_update"`), so its outbox ids follow
/// its commit order. Without the lock a pause and a crash of the order service are enough: the
/// crashed incarnation's COMMIT is still on its way when the restarted service's next order (of
/// the same aggregate, with the next id) commits, and the relay, polling by id, publishes the two
/// in the reverse of their commit order. The correct design holds the same search.
#[test]
fn an_outbox_without_the_aggregate_lock_publishes_out_of_commit_order() {
    let (dir, unlocked) = edited_preset("outbox/outbox-inbox", |toml| {
        assert!(toml.contains("aggregate_lock = \"for_update\""), "{toml}");
        toml.replacen("aggregate_lock = \"for_update\"", "aggregate_lock = \"none\"", 1)
    });
    let search = ["--exhaustive", "--pauses", "1", "--crashes", "1", "--json", "--save"];
    let a = idemsim().arg("check").arg(&unlocked).arg("--stop-at-first").args(search).arg(dir.path()).assert().code(1);
    let v = json(&a.get_output().stdout);
    assert_eq!(v["first_violation"]["invariant"], "per_aggregate_order", "{v}");
    assert_exhausted_pass(idemsim().args(["check", "outbox/outbox-inbox"]).args(search).arg(dir.path()).assert().code(0));
}

/// `check` keeps the design's relays (two at most): two relays that split the outbox with `FOR
/// UPDATE SKIP LOCKED` are found reordering one aggregate's events with no fault at all (with one
/// relay, as before, the search held), and two relays that claim nothing hold.
#[test]
fn check_searches_two_relays_when_the_design_has_them() {
    let a = idemsim().args(["check", "outbox/concurrent-relays", "--exhaustive", "--stop-at-first"]).assert().code(1);
    let text = stdout(&a);
    assert!(text.contains("2 orders of 1 aggregate, 2 relays"), "{text}");
    assert!(text.contains("per_aggregate_order"), "{text}");
    let (_dir, unclaimed) = edited_preset("outbox/concurrent-relays", |toml| {
        let fixed = toml.replacen("claim = \"skip_locked\"", "claim = \"none\"", 1).replacen(
            "expect = \"per_aggregate_order\"",
            "expect = \"pass\"",
            1,
        );
        assert!(fixed.contains("claim = \"none\"") && fixed.contains("expect = \"pass\""), "{fixed}");
        fixed
    });
    assert_exhausted_pass(idemsim().arg("check").arg(&unclaimed).args(["--exhaustive", "--json"]).assert().code(0));
}

/// `--operations 2`: a replay built from the instance's last charge answers one payment with
/// another's, which one operation cannot show (its only charge is its own).
#[test]
fn a_second_operation_finds_a_replay_of_another_payment() {
    let dir = TempDir::new().unwrap();
    let a = idemsim()
        .args([
            "check",
            "payment/replays-other-result",
            "--exhaustive",
            "--operations",
            "2",
            "--attempts",
            "2",
            "--stop-at-first",
            "--json",
            "--save",
        ])
        .arg(dir.path())
        .assert()
        .code(1);
    let v = json(&a.get_output().stdout);
    assert_eq!((v["operations"].as_u64(), v["first_violation"]["invariant"].as_str()), (Some(2), Some("replay_fidelity")), "{v}");
    assert!(v["work"].as_str().unwrap().starts_with("2 operations"), "{v}");
    idemsim()
        .args(["check", "outbox/outbox-inbox", "--exhaustive", "--operations", "2"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--operations 2: only a payment check has operations"));
    idemsim().args(["check", GOOD, "--exhaustive", "--operations", "4"]).assert().code(2).stderr(predicate::str::contains("use 1 to 3"));
}

// ---- the madsim backend ----

#[test]
fn explore_on_madsim_finds_a_bug_and_its_seed_file_replays_on_madsim() {
    let dir = TempDir::new().unwrap();
    let out = idemsim()
        .args(["explore", BUG, "--backend", "madsim", "--runs", "50", "--threads", "2", "--json", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let v = json(&out);
    assert_eq!(v["backend"], "madsim");
    assert_eq!(v["first_violation"]["invariant"], EXACTLY_ONCE);
    let file = PathBuf::from(v["first_violation"]["seed_file"].as_str().unwrap());
    assert!(file.file_name().unwrap().to_string_lossy().contains("-madsim-seed-"), "{}", file.display());
    let seed = SeedFile::load(&file).unwrap();
    assert_eq!((seed.backend, seed.semantics, seed.tape.is_none()), (Backend::Madsim, Semantics::Timed, true));
    assert_eq!(seed.seed, v["first_violation"]["seed"].as_u64());
    assert!(std::fs::read_to_string(&file).unwrap().contains("backend = \"madsim\""));
    // The file replays on madsim (the same run as `replay SCENARIO --seed S --backend madsim`).
    let a = idemsim().arg("replay").arg(&file).args(["--format", "json"]).assert().code(1).get_output().stdout.clone();
    let s = seed.seed.unwrap().to_string();
    let b = idemsim()
        .args(["replay", BUG, "--seed", &s, "--backend", "madsim", "--format", "json"])
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let (a, b) = (json(&a), json(&b));
    assert_eq!(a["source"]["backend"], "madsim");
    assert_eq!((&a["verdict"]["invariant"], &a["history_hash"]), (&b["verdict"]["invariant"], &b["history_hash"]));
    // Text output names the backend and does not offer to shrink.
    let t = idemsim()
        .args(["explore", BUG, "--backend", "madsim", "--runs", "20", "--threads", "1", "--save"])
        .arg(dir.path())
        .assert()
        .code(1);
    let text = stdout(&t);
    assert!(text.contains(", on madsim: seeds 0..20") && !text.contains("shrink it:"), "{text}");
    // shrink refuses a madsim seed file and says why.
    idemsim().arg("shrink").arg(&file).assert().code(2).stderr(predicate::str::contains("madsim").and(predicate::str::contains("native")));
    // A native explore says native in --json; an unknown backend is refused.
    let out = idemsim().args(["explore", GOOD, "--runs", "10", "--json"]).assert().code(0).get_output().stdout.clone();
    assert_eq!(json(&out)["backend"], "native");
    idemsim().args(["explore", GOOD, "--backend", "tokio"]).assert().code(2).stderr(predicate::str::contains("native or madsim"));
}

#[test]
fn a_native_tape_does_not_replay_on_madsim() {
    let dir = TempDir::new().unwrap();
    let out = idemsim()
        .args(["explore", "payment/setnx-everysec", "--runs", "200", "--threads", "2", "--json", "--save"])
        .arg(dir.path())
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let file = json(&out)["first_violation"]["seed_file"].as_str().unwrap().to_string();
    let shrunk = dir.path().join("s.toml");
    idemsim().args(["shrink", &file, "--out"]).arg(&shrunk).assert().code(1);
    idemsim()
        .arg("replay")
        .arg(&shrunk)
        .args(["--backend", "madsim"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("replays only on the native backend"));
}

#[test]
fn seed_files_refuse_a_madsim_tape() {
    let dir = TempDir::new().unwrap();
    let scenario = models::presets::get(BUG).unwrap();
    let mut file = SeedFile::new(scenario, &models::run::Source::Tape(vec![0, 1]), models::Expect::Pass, String::new());
    file.backend = Backend::Madsim;
    let path = dir.path().join("bad.toml");
    file.write(&path).unwrap();
    idemsim().arg("replay").arg(&path).assert().code(2).stderr(predicate::str::contains("replays by seed only"));
}

#[test]
fn older_seed_files_are_timed_and_native() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds/payment-setnx-everysec.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains("semantics") && !text.contains("backend"));
    let seed = SeedFile::load(&file).unwrap();
    assert_eq!((seed.semantics, seed.backend), (Semantics::Timed, Backend::Native));
    // Written back, neither field appears.
    let again = seed.to_text().unwrap();
    assert!(!again.contains("semantics =") && !again.contains("backend ="), "{again}");
}

#[test]
fn merge_refuses_shards_of_different_backends() {
    let dir = TempDir::new().unwrap();
    let mut files = Vec::new();
    for (k, backend) in [(1, "native"), (2, "madsim")] {
        let out = idemsim()
            .args(["explore", GOOD, "--runs", "20", "--threads", "1", "--json", "--backend", backend, "--shard", &format!("{k}/2")])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        let f = dir.path().join(format!("{k}.json"));
        std::fs::write(&f, out).unwrap();
        files.push(f);
    }
    idemsim().arg("merge").args(&files).assert().code(2).stderr(predicate::str::contains("different backends"));
}

/// `--threads`: the same JSON on 1 and 2 threads but for timings and the thread count, for a
/// bug found (its counterexample and counts) and for a pass (its verdict and states).
#[test]
fn threads_change_neither_verdict_nor_counterexample() {
    let dir = TempDir::new().unwrap();
    let strip = |mut v: Value| {
        for k in ["elapsed_s", "states_per_sec", "threads"] {
            v.as_object_mut().unwrap().remove(k);
        }
        v
    };
    let bug: Vec<Value> = ["1", "2"].iter().map(|t| strip(find_bug(dir.path(), &["--threads", t]))).collect();
    assert_eq!(bug[0], bug[1]);
    let good = |t: &str| {
        let out = idemsim()
            .args(["check", GOOD, "--exhaustive", "--lost", "1", "--json", "--threads", t])
            .assert()
            .code(0)
            .get_output()
            .stdout
            .clone();
        let v = json(&out);
        assert_eq!(v["threads"].as_u64(), t.parse().ok());
        (v["exhausted"].clone(), v["violations"].clone(), v["distinct_states"].clone(), v["first_violation"].clone())
    };
    assert_eq!(good("1"), good("2"));
}
