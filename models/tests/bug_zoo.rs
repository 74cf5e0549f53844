//! Every bug-zoo preset is caught by its expected invariant, and fails only because of its bug:
//! fixed, it holds under the same faults; with its trigger switched off, it holds too.

use models::knobs::*;
use models::presets;
use models::{Expect, Role, Scenario};

const SEEDS: u64 = 2_000;
const HOLD_SEEDS: u64 = 4_000;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn bug_zoo() -> Vec<Scenario> {
    presets::all().into_iter().filter(|s| s.expect != Expect::Pass).collect()
}

/// The same preset with its one bad knob set right.
fn fixed(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let (c, srv) = (&mut s.payment.client, &mut s.payment.server);
    match s.name.as_str() {
        "payment/key-per-attempt" => c.key = KeyPolicy::PerOperation,
        "payment/setnx-everysec" | "payment/setnx-no-fsync" => {
            if let KeyStore::Redis { appendfsync, .. } = &mut s.payment.store {
                *appendfsync = AppendFsync::Always;
            }
        }
        "payment/select-then-insert" => {
            if let KeyStore::Postgres { unique_constraint, .. } = &mut s.payment.store {
                *unique_constraint = true;
            }
        }
        "payment/no-inflight-check" => srv.result_storage = ResultStorage::SameTransaction,
        "payment/no-fingerprint" => srv.fingerprint = Fingerprint::Reject422,
        "payment/result-separate-write" => srv.recovery = Recovery::RecoveryPoints,
        "payment/ttl-shorter-than-retries" => {
            if let KeyStore::Redis { ttl_us, .. } = &mut s.payment.store {
                *ttl_us = 86_400_000_000;
            }
        }
        "payment/async-commit" => {
            if let KeyStore::Postgres { synchronous_commit, .. } = &mut s.payment.store {
                *synchronous_commit = true;
            }
        }
        "payment/lease-shorter-than-pause" => srv.charge = ChargeTarget::KeyedProvider,
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
        s.workload.duplicates = 0;
        s.payment.client.timeout_us = 1_000_000;
    };
    let no_concurrency = |s: &mut Scenario| {
        s.payment.client.timeout_us = 1_000_000;
        s.workload.duplicates = 0;
        s.faults.duplicate_probability = 0.0;
        s.faults.crash_probability = 0.0;
        s.faults.pause_probability = 0.0;
    };
    match s.name.as_str() {
        // A retry after the first attempt went through is the trigger.
        "payment/key-per-attempt" | "payment/no-fingerprint" | "payment/ttl-shorter-than-retries" => no_retries(&mut s),
        // A key store crash.
        "payment/setnx-everysec" | "payment/setnx-no-fsync" | "payment/async-commit" => s.targets.crash.retain(|r| *r != Role::Store),
        // Two requests with one key at once.
        "payment/select-then-insert" | "payment/no-inflight-check" => no_concurrency(&mut s),
        // A crash between charge and result: of the server, or of the store (which fails the
        // handler just the same).
        "payment/result-separate-write" => s.targets.crash.clear(),
        // A pause longer than the lease.
        "payment/lease-shorter-than-pause" => s.faults.pause_probability = 0.0,
        other => panic!("no trigger known for {other}: add one here"),
    }
    s
}

#[test]
fn every_bug_zoo_preset_is_caught_by_its_invariant() {
    let zoo = bug_zoo();
    assert_eq!(zoo.len(), 10, "bug zoo 1-10");
    for s in zoo {
        let r = s.explore(0..SEEDS, threads(), None);
        let Expect::Violation(expected) = &s.expect else { unreachable!() };
        let first = r.first.as_ref().unwrap_or_else(|| panic!("{}: no violation in seeds 0..{SEEDS}", s.name));
        assert_eq!(
            &first.violation.invariant, expected,
            "{}: first violation (seed {}) is {}",
            s.name, first.seed, first.violation.message
        );
        assert_eq!(
            r.by_invariant.get(expected).copied(),
            Some(r.violations),
            "{}: other invariants broke too: {:?}",
            s.name,
            r.by_invariant
        );
        // The message names the fault that caused it.
        let fault = match s.name.as_str() {
            "payment/setnx-everysec" | "payment/setnx-no-fsync" | "payment/async-commit" => Some("store crashed at"),
            "payment/result-separate-write" => Some("crashed at"),
            "payment/lease-shorter-than-pause" => Some("server paused"),
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
        println!("{:40} caught in {:5} of {SEEDS} runs, first at seed {}", s.name, r.violations, first.seed);
    }
}

#[test]
fn every_bug_zoo_preset_holds_once_its_bug_is_fixed() {
    for s in bug_zoo() {
        let r = fixed(&s).explore(0..HOLD_SEEDS, threads(), None);
        assert_eq!(r.violations, 0, "{} fixed still fails: {:?}", s.name, r.first.map(|f| (f.seed, f.violation.message)));
    }
}

#[test]
fn every_bug_zoo_preset_holds_without_its_trigger() {
    for s in bug_zoo() {
        let r = without_trigger(&s).explore(0..HOLD_SEEDS, threads(), None);
        assert_eq!(r.violations, 0, "{} without its trigger still fails: {:?}", s.name, r.first.map(|f| (f.seed, f.violation.message)));
    }
}
