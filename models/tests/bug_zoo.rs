//! Every bug-zoo preset is caught by its expected invariant, and fails only because of its bug:
//! fixed, it holds under the same faults; with its trigger switched off, it holds too.

use crate::zoo::{self, threads};

use models::knobs::*;
use models::presets;
use models::{Expect, Role, Scenario, Targets};

const SEEDS: u64 = 2_000;
const HOLD_SEEDS: u64 = 4_000;

fn bug_zoo() -> Vec<Scenario> {
    zoo::bugs("payment/")
}

/// The same preset with its one bad knob set right.
fn fixed(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let name = s.name.clone();
    let p = s.payment_mut();
    match name.as_str() {
        "payment/key-per-attempt" => p.client.key = KeyPolicy::PerOperation,
        // appendfsync always: the handler already stores a result until the store answers
        // (`result_write = until_stored`), so the fsync window is the one way to lose a key.
        "payment/setnx-everysec" | "payment/setnx-no-fsync" => {
            if let KeyStore::Redis { appendfsync, .. } = &mut p.store {
                *appendfsync = AppendFsync::Always;
            }
        }
        // A store sized for its keys (no maxmemory). `noeviction` is no fix: a full store
        // refuses the claim of a retry whose lock expired (see redis_options.rs).
        "payment/setnx-evicting-cache" => {
            if let KeyStore::Redis { maxmemory_keys, .. } = &mut p.store {
                *maxmemory_keys = 0;
            }
        }
        "payment/select-then-insert" => {
            if let KeyStore::Postgres { unique_constraint, .. } = &mut p.store {
                *unique_constraint = true;
            }
        }
        "payment/no-inflight-check" => p.server.result_storage = ResultStorage::SameTransaction,
        // With the fingerprint the changed retry gets 422; a user told 422 for a purchase whose
        // first attempt was charged is told it failed, so the client must keep its payload too.
        "payment/no-fingerprint" => {
            p.server.fingerprint = Fingerprint::Reject422;
            p.client.retry_changes_payload = false;
        }
        "payment/result-separate-write" => p.server.recovery = Recovery::RecoveryPoints,
        "payment/ttl-shorter-than-retries" => {
            if let KeyStore::Redis { ttl_us, .. } = &mut p.store {
                *ttl_us = 86_400_000_000;
            }
        }
        "payment/async-commit" => {
            if let KeyStore::Postgres { synchronous_commit, .. } = &mut p.store {
                *synchronous_commit = true;
            }
        }
        "payment/lease-shorter-than-pause" | "payment/release-key-on-timeout" => p.server.charge = ChargeTarget::KeyedProvider,
        // A completer finishes what a dead request left; the client keeps asking long enough to
        // hear the result.
        "payment/no-completer" => {
            p.server.completer = Completer::Sweep { every_us: 100_000, stuck_after_us: 200_000 };
            p.client.max_attempts = 20;
        }
        "payment/provider-window-shorter-than-retries" => p.provider.key_retention_us = 86_400_000_000,
        "payment/lease-check-with-skew" => p.server.lease_clock = LeaseClock::Database,
        "payment/in-memory-key" => p.client.key_storage = KeyStorage::Persisted,
        // min-replicas-to-write alone is not enough with an unkeyed provider (split_brain.rs):
        // the correct Redis design (a keyed provider, a lock TTL) with it, under the same cuts.
        "payment/setnx-split-brain" => {
            *p = presets::setnx_always();
            if let KeyStore::Redis { replica_failover, min_replicas_to_write, .. } = &mut p.store {
                (*replica_failover, *min_replicas_to_write) = (true, 1);
            }
        }
        // Stripe's 24 h: far longer than any retry.
        "payment/postgres-retention-shorter-than-retries" => {
            if let KeyStore::Postgres { key_retention_us, .. } = &mut p.store {
                *key_retention_us = 86_400_000_000;
            }
        }
        "payment/replays-other-result" => p.server.replay = Replay::StoredResponse,
        other => panic!("no fix known for {other}: add one here"),
    }
    s.validate().expect("the fixed design is valid");
    s
}

/// The same preset with the fault (or concurrency) that triggers its bug switched off.
fn without_trigger(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    // Eight network hops of up to 10 ms each can outlast the 50 ms client timeout even without a
    // fault, and a timeout is a retry: switching retries off means a timeout no response misses.
    let no_retries = |s: &mut Scenario| {
        s.faults =
            sim::FaultProfile { delay_us_min: s.faults.delay_us_min, delay_us_max: s.faults.delay_us_max, ..sim::FaultProfile::default() };
        s.workload_mut().duplicates = 0;
        s.payment_mut().client.timeout_us = 1_000_000;
    };
    let no_concurrency = |s: &mut Scenario| {
        s.payment_mut().client.timeout_us = 1_000_000;
        s.workload_mut().duplicates = 0;
        s.faults.duplicate_probability = 0.0;
        s.faults.crash_probability = 0.0;
        s.faults.pause_probability = 0.0;
    };
    // A provider that answers at once and never fails, and nothing that crashes or pauses: no
    // call's outcome is ever in doubt.
    let quiet = |s: &mut Scenario| {
        s.payment_mut().provider.latency_us = 0;
        s.payment_mut().provider.error_probability = 0.0;
        s.targets = Targets { crash: vec![], pause: vec![], lossy: vec![Role::Client, Role::Server] };
    };
    match s.name.as_str() {
        // A retry (or a duplicate) after the first attempt went through is the trigger.
        "payment/key-per-attempt"
        | "payment/no-fingerprint"
        | "payment/ttl-shorter-than-retries"
        | "payment/setnx-evicting-cache"
        | "payment/postgres-retention-shorter-than-retries"
        | "payment/replays-other-result" => no_retries(&mut s),
        // A key store crash.
        "payment/setnx-everysec" | "payment/setnx-no-fsync" | "payment/async-commit" => s.targets.crash.retain(|r| *r != Role::Store),
        // Two requests with one key at once.
        "payment/select-then-insert" | "payment/no-inflight-check" => no_concurrency(&mut s),
        // A failure between charge and result: a crash, or a pause that outlasts the call
        // timeout (the handler fails just the same).
        "payment/result-separate-write" => {
            s.targets.crash.clear();
            s.targets.pause.clear();
        }
        // A pause longer than the lease.
        "payment/lease-shorter-than-pause" => s.faults.pause_probability = 0.0,
        // A provider call that times out after charging.
        "payment/release-key-on-timeout" => quiet(&mut s),
        // A request that dies with nobody left to retry it: a crash, a timeout, a client that
        // stops asking.
        "payment/no-completer" => {
            quiet(&mut s);
            s.payment_mut().client.max_attempts = 20;
        }
        // A provider call repeated after the provider's window: only a call whose outcome was in
        // doubt is repeated.
        "payment/provider-window-shorter-than-retries" => quiet(&mut s),
        "payment/lease-check-with-skew" => s.payment_mut().server.clock_skew_us = 0,
        "payment/in-memory-key" => s.targets.crash.clear(),
        // The store's cut is drawn at the partition rate.
        "payment/setnx-split-brain" => s.faults.partition_probability = 0.0,
        other => panic!("no trigger known for {other}: add one here"),
    }
    s
}

#[test]
fn every_bug_zoo_preset_is_caught_by_its_invariant() {
    let zoo = bug_zoo();
    assert_eq!(zoo.len(), 19, "bug zoo 1-10 and the payment world's nine");
    for s in zoo {
        let r = s.explore(0..SEEDS, threads(), None);
        let Expect::Violation(expected) = &s.expect else { unreachable!() };
        let first = r.first.as_ref().unwrap_or_else(|| panic!("{}: no violation in seeds 0..{SEEDS}", s.name));
        // The lowest failing seed breaks the named invariant (perhaps among others: a double
        // charge after a stuck key also breaks `settles`).
        assert!(
            first.violation.broke(expected),
            "{}: first violation (seed {}) breaks {:?}, not {expected}: {}",
            s.name,
            first.seed,
            first.violation.invariants().collect::<Vec<_>>(),
            first.violation.message
        );
        // The message names the fault that caused it.
        let fault = match s.name.as_str() {
            "payment/setnx-everysec" | "payment/setnx-no-fsync" | "payment/async-commit" => Some("store crashed at"),
            "payment/result-separate-write" => Some("crashed at"),
            "payment/lease-shorter-than-pause" => Some(" paused "),
            "payment/in-memory-key" => Some("crashed at"),
            "payment/setnx-split-brain" => Some("Split brain: the store's primary was cut off"),
            "payment/postgres-retention-shorter-than-retries" => Some("The reaper deleted"),
            "payment/setnx-evicting-cache" => Some("evicted"),
            _ => None,
        };
        if let Some(fault) = fault {
            assert!(
                first.violation.message.contains(fault),
                "{}: the message does not name the fault: {}",
                s.name,
                first.violation.message
            );
        }
        println!(
            "{:46} caught in {:5} of {SEEDS} runs, first at seed {}: {:?}",
            s.name, r.by_invariant[expected], first.seed, r.by_invariant
        );
    }
}

/// Every bug-zoo preset, changed by `variant`, holds over `HOLD_SEEDS` seeds; the failures of all
/// presets are listed together.
fn assert_every_variant_holds(variant: fn(&Scenario) -> Scenario, what: &str) {
    zoo::assert_every_variant_holds(&bug_zoo(), variant, HOLD_SEEDS, what);
}

#[test]
fn every_bug_zoo_preset_holds_once_its_bug_is_fixed() {
    assert_every_variant_holds(fixed, "fixed");
}

#[test]
fn every_bug_zoo_preset_holds_without_its_trigger() {
    assert_every_variant_holds(without_trigger, "without its trigger");
}
