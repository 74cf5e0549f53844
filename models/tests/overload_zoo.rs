//! The overload path's bug zoo (16-18, then layers and contention): every preset is caught by its invariant from a fixed seed
//! range, and fails only because of its bug: fixed, it holds under the same faults; with its
//! trigger switched off, it holds too. And the correct fleet is deterministic.

use crate::zoo::{self, threads};

use models::knobs::{Backoff, RetryBudget};
use models::overload::design::*;
use models::{presets, Expect, Scenario};
use sim::Sim;

/// Seeds in which each bug must be caught (immediate retries are a flood: ~100 ms a run).
const SEEDS: u64 = 20;
/// Seeds over which each fixed or untriggered bug must hold.
const HOLD_SEEDS: u64 = 400;

fn overload_bugs() -> Vec<Scenario> {
    zoo::bugs("overload/")
}

/// The same preset with its bad knob set right.
fn fixed(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let name = s.name.clone();
    let d = s.overload_mut();
    match name.as_str() {
        // Immediate retries under a retry budget: the budget alone stops the storm.
        "overload/immediate-retries" => d.fleet.budget = RetryBudget::TokenBucket { max_tokens: 10.0, token_ratio: 0.1 },
        "overload/ignore-retry-after" => d.fleet.retry_after = RetryAfter::Jittered,
        "overload/block-in-flight" => d.server.in_flight = InFlightPolicy::Reject409,
        // Retry at one layer only: the tiers forward once and leave retrying to the clients.
        "overload/retry-every-layer" => d.tiers.iter_mut().for_each(|t| t.max_attempts = 1),
        "overload/contention-no-jitter" => d.fleet.backoff = Backoff::FullJitter,
        other => panic!("no fix known for {other}: add one here"),
    }
    s.validate().expect("the fixed design is valid");
    s
}

/// The same preset with what triggers its bug switched off.
fn without_trigger(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let name = s.name.clone();
    let d = s.overload_mut();
    match name.as_str() {
        // No outage: nothing answers 503 for long, so nothing storms.
        "overload/immediate-retries" | "overload/ignore-retry-after" => d.server.outage = None,
        // No slow operation: no retry finds its key still in flight (beyond a duplicated
        // message's or a lost answer's brief overlap).
        "overload/block-in-flight" => d.fleet.slow_per_mille = 0,
        "overload/retry-every-layer" => d.server.outage = None,
        // Every operation writes its own row: nothing conflicts, so nothing retries in waves.
        "overload/contention-no-jitter" => d.server.writes = Writes::PerKey,
        other => panic!("no trigger known for {other}: add one here"),
    }
    s
}

#[test]
fn every_overload_bug_is_caught_by_its_invariant() {
    let zoo = overload_bugs();
    assert_eq!(zoo.len(), 5, "bug zoo 16-18, retry-every-layer and contention-no-jitter");
    for s in zoo {
        let r = s.explore(0..SEEDS, threads(), None);
        let Expect::Violation(expected) = &s.expect else { unreachable!() };
        let caught = r.by_invariant.get(expected).copied().unwrap_or(0);
        assert!(caught > 0, "{}: {expected} not broken in seeds 0..{SEEDS}: {:?}", s.name, r.by_invariant);
        // The message gives the numbers and the bucket where the bound broke.
        let first = r.first.as_ref().expect("a violation");
        let v = std::iter::once(&first.violation).chain(&first.violation.also).find(|v| v.invariant == *expected).unwrap_or_else(|| {
            panic!("{}: the first violating run (seed {}) broke {:?}", s.name, first.seed, first.violation.invariants().collect::<Vec<_>>())
        });
        let (about, place) = match s.name.as_str() {
            "overload/immediate-retries" => ("no recovery", "bucket"),
            "overload/ignore-retry-after" => ("retry amplification", "bucket"),
            "overload/retry-every-layer" => ("requests at the service per operation", "the tiers, outermost first"),
            "overload/contention-no-jitter" => ("settled only at", "past its bound"),
            _ => ("starved", "bucket"),
        };
        assert!(v.message.contains(about) && v.message.contains(place), "{}: the message does not say what broke: {}", s.name, v.message);
        println!("{:32} caught in {caught:3} of {SEEDS} runs, first at seed {}: {:?}", s.name, first.seed, r.by_invariant);
    }
}

fn assert_every_variant_holds(variant: fn(&Scenario) -> Scenario, what: &str) {
    zoo::assert_every_variant_holds(&overload_bugs(), variant, HOLD_SEEDS, what);
}

#[test]
fn every_overload_bug_holds_once_fixed() {
    assert_every_variant_holds(fixed, "fixed");
}

#[test]
fn every_overload_bug_holds_without_its_trigger() {
    assert_every_variant_holds(without_trigger, "without its trigger");
}

#[test]
fn overload_runs_are_deterministic() {
    for name in ["overload/jitter-budget", "overload/block-in-flight", "overload/retry-every-layer", "overload/contention"] {
        let model = presets::get(name).expect("preset").model();
        let (mut a, mut b) = (Sim::new(), Sim::new());
        for seed in 0..40 {
            let (x, y) = (a.run_seed(&model, seed), b.run_seed(&model, seed));
            assert_eq!(x.history_hash, y.history_hash, "{name} seed {seed}: two runs differ");
            assert_eq!(x.verdict, y.verdict, "{name} seed {seed}");
        }
        // The report does not depend on the thread count either.
        let s = presets::get(name).unwrap();
        assert_eq!(s.explore(0..200, 1, None).hash_xor, s.explore(0..200, 2, None).hash_xor, "{name}");
    }
}
