//! The headline check: every correct preset holds over at least 1,000,000 interleavings (one
//! interleaving per seed), on all cores. A `harness = false` target so it prints its own summary.
//!
//! `IDEMSIM_INTERLEAVINGS=N` changes the count per preset (the default suite uses 1,000,000).
//! Overload presets are fleets (50 clients, ~1,000 operations and ~5,700 events a run, about
//! 100 times a payment run's events): they run `N / OVERLOAD_DIVISOR` seeds, and the summary says so.
//! Before trusting a clean result, a canary per invariant (a bug-zoo preset that breaks it) must
//! be caught by the same machinery: a checker that was unplugged would pass everything.

use models::{presets, Expect};
use std::process::ExitCode;
use std::time::Instant;

/// Overload runs per payment or outbox run in this harness (see the module comment).
const OVERLOAD_DIVISOR: u64 = 100;

fn main() -> ExitCode {
    let runs: u64 = std::env::var("IDEMSIM_INTERLEAVINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut passed, mut failed, mut total) = (0, 0, 0u64);

    // One canary per invariant: a bug-zoo preset that breaks it, caught by the same machinery
    // in a fixed seed range. A checker that was unplugged would pass everything.
    let canaries = [
        ("payment/select-then-insert", invariants::payment::EXACTLY_ONCE_CHARGE),
        ("payment/no-fingerprint", invariants::payment::MISMATCH_REJECTED),
        ("payment/replays-other-result", invariants::payment::REPLAY_FIDELITY),
        ("payment/no-completer", invariants::payment::SETTLES),
        ("outbox/no-inbox", invariants::outbox::EFFECTIVELY_ONCE_EVENT),
        ("outbox/concurrent-relays", invariants::outbox::PER_AGGREGATE_ORDER),
        ("overload/ignore-retry-after", invariants::overload::RECOVERY),
        ("overload/block-in-flight", invariants::overload::AVAILABILITY),
        // `settles` is judged apart on the overload path: a canary there too.
        ("overload/contention-no-jitter", invariants::overload::SETTLES),
    ];
    for invariant in invariants::ALL {
        assert!(canaries.iter().any(|c| c.1 == invariant), "no canary for {invariant}");
    }
    for (name, invariant) in canaries {
        let canary = presets::get(name).expect("preset");
        let caught = canary.explore(0..1_000, threads, None);
        match caught.by_invariant.get(invariant) {
            Some(n) if *n > 0 => println!("canary {name:40} broke {invariant} in {n} of 1000 runs"),
            _ => {
                eprintln!("canary {name} did not break {invariant} in 1,000 runs: that checker is not wired");
                failed += 1;
            }
        }
    }

    println!("{:34} {:>12} {:>10} {:>12} {:>9}", "correct preset", "runs", "violations", "runs/s", "seconds");
    for s in presets::all().into_iter().filter(|s| s.expect == Expect::Pass) {
        let runs = if s.name.starts_with("overload/") { (runs / OVERLOAD_DIVISOR).max(1) } else { runs };
        let t = Instant::now();
        let r = s.explore(0..runs, threads, None);
        let secs = t.elapsed().as_secs_f64();
        total += r.runs;
        println!("{:34} {:>12} {:>10} {:>12.0} {:>9.1}", s.name, r.runs, r.violations, r.runs as f64 / secs, secs);
        match &r.first {
            None if r.runs == runs => passed += 1,
            None => {
                eprintln!("{}: ran {} of {runs} seeds", s.name, r.runs);
                failed += 1;
            }
            Some(f) => {
                eprintln!("{}: seed {} violates {}: {}", s.name, f.seed, f.violation.invariant, f.violation.message);
                failed += 1;
            }
        }
    }
    println!(
        "explored {total} interleavings of the correct presets ({runs} each, overload fleets {} each, {threads} threads)",
        (runs / OVERLOAD_DIVISOR).max(1)
    );
    println!("interleavings: {passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
