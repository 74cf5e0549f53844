//! The overload path's presets: the correct fleet (full jitter, `Retry-After` honoured with
//! jitter, a gRPC A6 retry budget, 409 for a key in flight) and bug zoo 16-18. Names are fixed:
//! scripts and the seed corpus depend on them.

use super::design::*;
use crate::knobs::{Backoff, RetryBudget};
use crate::presets::full_faults;
use crate::scenario::{Expect, Scenario, Targets};
use invariants::overload::{AVAILABILITY, RECOVERY, SETTLES};

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
            writes: Writes::PerKey,
        },
        bounds: Bounds { bucket_us: 50 * MS, recovery_us: 300 * MS, goodput_fraction: 0.9, amplification_max: 3.0, starve_us: 100 * MS },
        tiers: Vec::new(),
    }
}

/// A tier that retries like the clients of `jitter_budget` (3 attempts, full jitter from 20 ms)
/// with a 300 ms timeout (longer than a service round trip, shorter than a client's patience).
pub fn retrying_tier() -> TierDesign {
    TierDesign { backoff: Backoff::FullJitter, base_us: 20 * MS, cap_us: 1_000 * MS, max_attempts: 3, timeout_us: 300 * MS }
}

/// The contention workload: a herd of 100 clients, each with one operation arriving in the first
/// 10 ms, every one a read-modify-write of the same row under optimistic concurrency (a 10 ms
/// transaction; a conflict answers 409). Clients retry with `backoff` from a 10 ms base, capped
/// at 1 s, up to 100 attempts, with no budget: the comparison of AWS's "Exponential Backoff And
/// Jitter" (total calls, and the time until every client has succeeded).
pub fn contention(backoff: Backoff) -> OverloadDesign {
    let mut d = jitter_budget();
    d.fleet = FleetDesign {
        clients: 100,
        arrivals: Arrivals::Burst,
        interval_us: 5 * MS,
        duration_us: 1_000 * MS,
        slow_per_mille: 0,
        backoff,
        base_us: 10 * MS,
        cap_us: 1_000 * MS,
        max_attempts: 100,
        timeout_us: 1_000 * MS,
        retry_after: RetryAfter::Ignored,
        budget: RetryBudget::None {},
    };
    d.server = ServerDesign {
        workers: 64,
        queue_limit: 1_000,
        service_us: 10 * MS,
        slow_service_us: 10 * MS,
        outage: None,
        writes: Writes::OneRow,
        ..d.server
    };
    // No outage: amplification is judged over the whole run (a herd of one-row writers needs many
    // calls each; the bound only catches runaway retrying).
    d.bounds.amplification_max = 40.0;
    d
}

fn scenario(name: &str, description: &str, expect: Expect, overload: OverloadDesign) -> Scenario {
    // A herd of one-row writers may take many seconds to get through: it is judged by `settles`.
    let contention = overload.server.writes == Writes::OneRow;
    Scenario {
        name: name.into(),
        description: description.into(),
        expect,
        time_limit_us: if contention { 30_000 * MS } else { 5_000 * MS },
        settle_bound_us: if contention { 15_000 * MS } else { 2_000 * MS },
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
                d.fleet.budget = RetryBudget::None {};
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
                d.fleet.budget = RetryBudget::None {};
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
        bug(
            "overload/retry-every-layer",
            "Two tiers between the clients and the service (a gateway and a mid-tier service), each retrying its calls 3 times with full jitter like the clients do: during the outage every operation can send up to 27 requests to the service, and does send several times the design's amplification bound (the SRE book: retry at one layer only).",
            RECOVERY,
            |d| d.tiers = vec![retrying_tier(); 2],
        ),
        scenario(
            "overload/contention",
            "A herd of 100 clients updating one row under optimistic concurrency (10 ms transactions; a conflict answers 409), each retrying with full jitter from 10 ms, capped at 1 s: every client gets through within the settle bound.",
            Expect::Pass,
            contention(Backoff::FullJitter),
        ),
        scenario(
            "overload/contention-no-jitter",
            "The same herd retrying with plain exponential backoff (10 ms doubling to 1 s, no jitter): the clients that conflicted retry together and conflict again, so each wave lets only a few through, and the herd does not get through within the settle bound.",
            Expect::Violation(SETTLES.into()),
            contention(Backoff::Exponential),
        ),
    ]
}
