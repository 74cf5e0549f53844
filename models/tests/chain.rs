//! The checkout chain: the correct chain holds under the full fault profile, on Postgres and on
//! the correct Redis key store, and flipping any one link to its bug-zoo setting in the scenario
//! file (a fresh key per attempt, SETNX with everysec, dual write, no inbox) is caught by the
//! link's invariant. Each flip is made by editing the TOML text a user would edit.

use invariants::outbox::EFFECTIVELY_ONCE_EVENT;
use invariants::payment::EXACTLY_ONCE_CHARGE;
use models::{presets, Scenario};

const SEEDS: u64 = 2_000;
const HOLD_SEEDS: u64 = 10_000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn checkout_toml() -> String {
    presets::get("chain/checkout").expect("the chain preset").to_toml()
}

/// The chain's scenario file with `edits` made to its text (each must match exactly once).
fn flipped(edits: &[(&str, &str)]) -> Scenario {
    let mut text = checkout_toml();
    for (from, to) in edits {
        assert_eq!(text.matches(from).count(), 1, "{from:?} once in the chain's file");
        text = text.replacen(from, to, 1);
    }
    Scenario::from_toml(&text).expect("the flipped file is valid")
}

const POSTGRES_STORE: &str =
    "kind = \"postgres\"\nsynchronous_commit = true\nunique_constraint = true\nwal_writer_delay_us = 200000\nkey_retention_us = 0\nsession_timeout_us = 1000000";

/// The key store and server of a Redis SETNX design (the claim, the result in a separate write,
/// the charge at the provider), with `appendfsync` and, for the correct one, its lock and keyed
/// provider.
fn setnx(appendfsync: &str, correct: bool) -> Scenario {
    let store = format!(
        "kind = \"redis\"\nappendfsync = \"{appendfsync}\"\nttl_us = 86400000000\nlock_ttl_us = {}\nreplica_failover = false\nreplication_lag_us = 100000",
        if correct { 300_000 } else { 0 }
    );
    let charge = if correct { "charge = \"keyed_provider\"" } else { "charge = \"provider\"" };
    let on_error = if correct { "on_error = \"release_key\"" } else { "on_error = \"leave\"" };
    flipped(&[
        ("key_claim = \"insert_on_conflict\"", "key_claim = \"set_nx\""),
        ("result_storage = \"same_transaction\"", "result_storage = \"separate_write\""),
        ("charge = \"local_ledger\"", charge),
        ("on_error = \"leave\"", on_error),
        (POSTGRES_STORE, &store),
    ])
}

fn assert_holds(s: &Scenario, what: &str) {
    let r = s.explore(0..HOLD_SEEDS, threads(), None);
    assert_eq!(r.runs, HOLD_SEEDS);
    if let Some(f) = &r.first {
        panic!("{what}: seed {} breaks {}: {}", f.seed, f.violation.invariant, f.violation.message);
    }
}

/// Caught by `invariant` within `SEEDS` seeds, and some run's message for it says `says`.
fn assert_caught(s: &Scenario, invariant: &str, says: &str) {
    let r = s.explore(0..SEEDS, threads(), None);
    let n = r.by_invariant.get(invariant).copied().unwrap_or(0);
    assert!(n > 0, "{invariant} never broken in {SEEDS} seeds: {:?}", r.by_invariant);
    let model = s.model();
    let mut sim = sim::Sim::new();
    let messages = (0..SEEDS).find_map(|seed| {
        let v = sim.run_seed(&model, seed).verdict;
        let v = v.violation()?;
        let all: Vec<&sim::Violation> = std::iter::once(v).chain(&v.also).collect();
        all.iter().find(|x| x.invariant == invariant && x.message.contains(says)).map(|x| x.message.clone())
    });
    assert!(messages.is_some(), "no seed of {SEEDS} breaks {invariant} with a message saying {says:?}");
}

#[test]
fn the_checkout_chain_holds_under_the_full_fault_profile() {
    let s = presets::get("chain/checkout").unwrap();
    assert!(s.targets.crash.len() >= 9, "relay, broker, consumer and their stores crash too: {:?}", s.targets.crash);
    assert_holds(&s, "chain/checkout");
    // The same checkers, one link flipped: a pass above is the design's, not a checker's absence.
    let canary = flipped(&[("dedup = \"inbox\"", "dedup = \"none\"")]).explore(0..SEEDS, threads(), None);
    assert!(canary.by_invariant.contains_key(EFFECTIVELY_ONCE_EVENT), "the chain's event checker is not wired: {:?}", canary.by_invariant);
}

#[test]
fn the_chain_on_the_correct_redis_key_store_holds_its_orders_in_their_own_database() {
    assert_holds(&setnx("always", true), "chain/checkout on SETNX with appendfsync always");
}

#[test]
fn a_fresh_key_per_attempt_is_caught_as_a_double_charge() {
    let s = flipped(&[("key = \"per_operation\"", "key = \"per_attempt\"")]);
    assert_caught(&s, EXACTLY_ONCE_CHARGE, "double charge");
}

#[test]
fn setnx_with_everysec_is_caught_as_a_double_charge() {
    assert_caught(&setnx("everysec", false), EXACTLY_ONCE_CHARGE, "double charge");
}

#[test]
fn a_dual_write_is_caught_as_a_lost_fulfilment() {
    let s = flipped(&[("write = \"outbox\"", "write = \"dual_write\"")]);
    assert_caught(&s, EFFECTIVELY_ONCE_EVENT, "lost fulfilment: operation");
}

#[test]
fn no_inbox_is_caught_as_a_double_fulfilment() {
    let s = flipped(&[("dedup = \"inbox\"", "dedup = \"none\"")]);
    assert_caught(&s, EFFECTIVELY_ONCE_EVENT, "duplicate effect");
}

#[test]
fn a_chain_file_with_an_outbox_table_or_without_payment_is_refused() {
    let text = checkout_toml();
    let no_payment: String = {
        let start = text.find("[payment").unwrap();
        let end = text.find("[chain]").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    };
    let err = Scenario::from_toml(&no_payment).unwrap_err();
    assert!(err.contains("[chain] extends the payment path"), "{err}");
    let bad = text.replace("write = \"outbox\"", "write = \"publish_then_commit\"");
    let err = Scenario::from_toml(&bad).unwrap_err();
    assert!(err.contains("chain.write"), "{err}");
    let typo = text.replace("[chain.relay]\n", "[chain.relay]\nbatch = 3\n");
    assert!(Scenario::from_toml(&typo).unwrap_err().contains("batch"));
}

/// With a Redis key store the chain's orders live in their own Postgres, where the servers hold
/// the order transactions: a server's process crash closes those sessions too (its FIN reaches
/// the orders database), a machine crash leaves them to time out.
#[test]
fn a_servers_process_crash_closes_its_orders_database_sessions() {
    let fins = |process: bool| {
        let mut s = setnx("always", true);
        s.targets.crash = vec![models::Role::Server];
        s.faults.crash_probability = 0.5;
        if process {
            s.faults.process_crash_probability = std::mem::take(&mut s.faults.crash_probability);
        }
        s.validate().expect("valid");
        crate::postgres_store::closed_sessions_at(&s, "orders-db")
    };
    let closed = fins(true);
    assert!(!closed.is_empty() && closed.iter().all(|n| n.starts_with("server")), "{closed:?}");
    assert!(fins(false).is_empty(), "a machine crash closes nothing");
}
