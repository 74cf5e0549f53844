//! Bad input on the command line: unknown presets and files, malformed scenarios and seed
//! files, values no scenario can mean, flags that would run nothing. Each gets exit status 2
//! and a message naming the field or flag and the fix.

use crate::cli::{find_bug, scenario_file, BUG, GOOD};
use crate::common::idemsim;
use predicates::prelude::*;
use std::path::PathBuf;
use tempfile::TempDir;

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
        (("name = \"payment/setnx-everysec\"", "name = \"\""), "give the scenario a name"),
        (("restart_delay_us_max = 50000", "restart_delay_us_max = 5000000000"), "faults.restart_delay_us_max = 5000000000"),
        (("crashes_per_node_max = 1", "crashes_per_node_max = 1000000"), "faults.crashes_per_node_max = 1000000: use 0 to 100"),
        (("ttl_us = 86400000000", "ttl_us = 0"), "payment.store.ttl_us must be > 0"),
        (("lease_us = 0", "lease_us = 300000"), "payment.server.lease_us has no effect with recovery = \"none\""),
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
    // The outbox path's database links are TCP connections: they neither lose nor copy a statement.
    let (_dir, path) = crate::common::edited_preset("outbox/outbox-inbox", |t| t.replace("lossy = [\"", "lossy = [\"store\", \""));
    idemsim()
        .arg("explore")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("targets.lossy names \"store\"").and(predicate::str::contains("remove \"store\"")));
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
