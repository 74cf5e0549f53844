//! The overload path's presets: the correct fleet (full jitter, `Retry-After` honoured with
//! jitter, a gRPC A6 retry budget, 409 for a key in flight) and bug zoo 16-18. Names are fixed:
//! scripts and the seed corpus depend on them.

use super::design::*;
use crate::knobs::{Backoff, RetryBudget};
use crate::presets::full_faults;
use crate::scenario::{Expect, Scenario, Targets};
use invariants::overload::{AVAILABILITY, RECOVERY};

const MS: u64 = 1_000;

/// 50 clients, each with an operation every 100 ms on average (open loop: 500 operations/s), for
/// 2 s; two operations in 1,000 are slow (2 s of work: a stuck downstream call). Full jitter
/// (base 20 ms, cap 1 s), 3 attempts (the SRE book's cap), a 100 ms timeout, `Retry-After` plus
/// jitter, and gRPC A6 retry throttling (10 tokens, 0.1 per success). The service: 32 workers of
/// 20 ms each (1,600 requests/s), a queue of 512 (320 ms of work), 503 when full, 409 for a key
/// in flight, down from 600 ms to 1.1 s answering 503 with `Retry-After: 200 ms`.
pub fn jitter_budget() -> OverloadDesign {
    OverloadDesign {
        fleet: FleetDesign {
            clients: 50,
            arrivals: Arrivals::Open,
            interval_us: 100 * MS,
            duration_us: 2_000 * MS,
            slow_per_mille: 2,
            backoff: Backoff::FullJitter,
            base_us: 20 * MS,
            cap_us: 1_000 * MS,
            max_attempts: 3,
            timeout_us: 100 * MS,
            retry_after: RetryAfter::Jittered,
            budget: RetryBudget::TokenBucket { max_tokens: 10.0, token_ratio: 0.1 },
        },
        server: ServerDesign {
            workers: 32,
            queue_limit: 512,
            service_us: 20 * MS,
            slow_service_us: 2_000 * MS,
            when_full: Shedding::Reject503,
            in_flight: InFlightPolicy::Reject409,
            retry_after_us: 200 * MS,
            outage: Some(OutageWindow { start_us: 600 * MS, duration_us: 500 * MS, mode: OutageMode::Unavailable503 }),
        },
        bounds: Bounds { bucket_us: 50 * MS, recovery_us: 300 * MS, goodput_fraction: 0.9, amplification_max: 3.0, starve_us: 100 * MS },
    }
}

fn scenario(name: &str, description: &str, expect: Expect, overload: OverloadDesign) -> Scenario {
    Scenario {
        name: name.into(),
        description: description.into(),
        expect,
        time_limit_us: 5_000 * MS,
        settle_bound_us: 2_000 * MS,
        liveness: true,
        swarm: false,
        workload: None,
        payment: None,
        outbox: None,
        chain: None,
        overload: Some(overload),
        faults: full_faults(),
        targets: Targets::default(),
    }
}

fn bug(name: &str, description: &str, invariant: &str, f: impl Fn(&mut OverloadDesign)) -> Scenario {
    let mut d = jitter_budget();
    f(&mut d);
    scenario(name, description, Expect::Violation(invariant.into()), d)
}

/// The overload presets: the correct design, then bug zoo 16-18.
pub fn all() -> Vec<Scenario> {
    vec![
        scenario(
            "overload/jitter-budget",
            "A fleet of 50 open-loop clients with full jitter, Retry-After honoured with jitter, 3 attempts and a gRPC A6 retry budget, against 32 workers behind a queue of 512 that answer 409 for a key in flight and are down for 500 ms (503, Retry-After: 200 ms).",
            Expect::Pass,
            jitter_budget(),
        ),
        bug(
            "overload/immediate-retries",
            "Every client retries at once, up to 100 attempts, with no budget and no regard for Retry-After: the outage's 503s come back as a flood, the queue stays full of requests whose clients already gave up, and goodput does not come back (a metastable failure).",
            RECOVERY,
            |d| {
                d.fleet.backoff = Backoff::Immediate;
                d.fleet.retry_after = RetryAfter::Ignored;
                d.fleet.max_attempts = 100;
                d.fleet.budget = RetryBudget::None;
            },
        ),
        bug(
            "overload/ignore-retry-after",
            "Exponential backoff with full jitter from 10 ms, 6 attempts, no budget, and Retry-After ignored: during the outage every operation spends its attempts within a few hundred milliseconds, several times the design's amplification bound.",
            RECOVERY,
            |d| {
                d.fleet.retry_after = RetryAfter::Ignored;
                d.fleet.base_us = 10 * MS;
                d.fleet.max_attempts = 6;
                d.fleet.budget = RetryBudget::None;
            },
        ),
        bug(
            "overload/block-in-flight",
            "A request whose key is in flight holds its worker until the first finishes: every retry of a slow operation (twelve in 1,000, the work takes 1 s; its client times out at 100 ms and tries up to 6 times; no outage) takes one more of the 32 workers, and requests for every other key wait behind them.",
            AVAILABILITY,
            |d| {
                d.server.in_flight = InFlightPolicy::Block;
                // A stronger dose of the trigger (concurrent same-key requests): twelve operations
                // in 1,000 take 1 s, and their clients try up to 6 times. No outage: it would drain
                // the retry budgets and keep most of those retries from happening.
                d.fleet.slow_per_mille = 12;
                d.server.slow_service_us = 1_000 * MS;
                d.fleet.max_attempts = 6;
                d.server.outage = None;
            },
        ),
    ]
}
