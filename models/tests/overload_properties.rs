//! Property tests of the overload path over random fleet sizes (1 to 1,000 clients), arrival
//! modes, backoff policies, `Retry-After` handling, budgets, outage modes and in-flight policies:
//! tiers in between (0 to 2, each with its own attempts) and one-row contention: every run
//! replays bit for bit; no operation sends more attempts than the cap, no tier more than its own;
//! every operation that finished had arrived, and none finished twice; with 409 no worker ever
//! blocks; write conflicts happen only on one shared row; and a run that ends quiet has every
//! operation ended (or dropped by a fleet crash).

use invariants::Obs;
use models::knobs::{Backoff, RetryBudget};
use models::overload::design::*;
use models::{presets, Scenario};
use proptest::prelude::*;
use sim::Sim;
use std::collections::BTreeMap;

fn budget() -> impl Strategy<Value = RetryBudget> {
    prop_oneof![
        Just(RetryBudget::None {}),
        Just(RetryBudget::TokenBucket { max_tokens: 10.0, token_ratio: 0.1 }),
        Just(RetryBudget::Ratio { percent: 10.0 }),
        Just(RetryBudget::AwsQuota { max_tokens: 500, retry_cost: 5, timeout_cost: 10 }),
    ]
}

fn backoff() -> impl Strategy<Value = Backoff> {
    prop_oneof![
        Just(Backoff::None),
        Just(Backoff::Immediate),
        Just(Backoff::Exponential),
        Just(Backoff::FullJitter),
        Just(Backoff::EqualJitter),
        Just(Backoff::Decorrelated),
    ]
}

/// A random fleet against the correct preset's service. Fleets of up to 1,000 clients make few
/// operations each (the run stays small), and keep to at most 8 attempts.
fn scenario() -> impl Strategy<Value = Scenario> {
    let fleet = (1..=1000u32, any::<bool>(), backoff(), 1..=8u32, budget(), 0..3usize, 0..=20u32);
    let server =
        (any::<bool>(), any::<bool>(), any::<bool>(), 0..2usize, any::<bool>(), proptest::collection::vec((backoff(), 1..=3u32), 0..=2));
    (fleet, server).prop_map(|((clients, open, backoff, max_attempts, budget, ra, slow), (block, drop, silent, outage, one_row, tiers))| {
        let mut s = presets::get("overload/jitter-budget").expect("preset");
        let d = s.overload_mut();
        d.fleet.clients = clients;
        d.fleet.arrivals = if open { Arrivals::Open } else { Arrivals::Closed };
        // About 100 operations a second from the whole fleet (200 a run), whatever its size.
        d.fleet.interval_us = 10_000 * clients as u64;
        d.fleet.backoff = backoff;
        d.fleet.max_attempts = max_attempts;
        d.fleet.budget = budget;
        d.fleet.retry_after = [RetryAfter::Ignored, RetryAfter::Exact, RetryAfter::Jittered][ra];
        d.fleet.slow_per_mille = slow;
        d.server.in_flight = if block { InFlightPolicy::Block } else { InFlightPolicy::Reject409 };
        d.server.when_full = if drop { Shedding::Drop } else { Shedding::Reject503 };
        if let Some(o) = &mut d.server.outage {
            o.mode = if silent { OutageMode::Silent } else { OutageMode::Unavailable503 };
        }
        if outage == 1 {
            d.server.outage = None;
        }
        d.server.writes = if one_row { Writes::OneRow } else { Writes::PerKey };
        d.tiers = tiers
            .into_iter()
            .map(|(backoff, max_attempts)| TierDesign { backoff, max_attempts, ..models::overload::presets::retrying_tier() })
            .collect();
        s.validate().expect("a valid scenario");
        s
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_fleets_replay_and_keep_their_promises(s in scenario(), seed in 0..1_000u64) {
        let d = s.overload().clone();
        let model = s.model();
        let (mut a, mut b) = (Sim::new(), Sim::new());
        let (x, y) = (a.run_seed(&model, seed), b.run_seed(&model, seed));
        prop_assert_eq!(x.history_hash, y.history_hash, "the same seed ran twice differently");
        let mut arrived = BTreeMap::new();
        let mut finished = BTreeMap::new();
        for e in a.history() {
            match e.obs {
                Obs::Offered { client, op } => {
                    prop_assert!(arrived.insert((client, op), e.at_us).is_none(), "operation {client}/{op} arrived twice");
                }
                Obs::Attempted { client, op, attempt } => {
                    prop_assert!(attempt <= d.fleet.max_attempts, "attempt {attempt} over the cap {}", d.fleet.max_attempts);
                    prop_assert!(arrived.contains_key(&(client, op)));
                }
                Obs::Finished { client, op, attempts, .. } => {
                    prop_assert!(arrived.contains_key(&(client, op)), "{client}/{op} finished but never arrived");
                    prop_assert!(finished.insert((client, op), attempts).is_none(), "{client}/{op} finished twice");
                    prop_assert!(attempts >= 1 && attempts <= d.fleet.max_attempts);
                }
                Obs::Blocked { .. } => prop_assert_eq!(d.server.in_flight, InFlightPolicy::Block, "a worker blocked under 409"),
                Obs::WriteConflict { .. } => prop_assert_eq!(d.server.writes, Writes::OneRow, "a write conflict on rows of their own"),
                Obs::Forwarded { tier, attempt, .. } => {
                    let t = d.tiers.get(tier as usize);
                    prop_assert!(t.is_some_and(|t| attempt <= t.max_attempts), "tier {tier} attempt {attempt}: over its cap or no such tier");
                }
                _ => {}
            }
        }
        prop_assert!(finished.len() <= arrived.len());
        if x.end == sim::RunEnd::Quiescent {
            // Every attempt has a timeout, so a run that went quiet left nothing waiting: every
            // operation ended, or a fleet crash dropped it.
            let Some(models::world::Node::Fleet(f)) = a.nodes().get(1) else { panic!("node 1 is the fleet") };
            let open = arrived.keys().filter(|k| !finished.contains_key(k) && !f.forgotten().contains(k)).count();
            prop_assert_eq!(open, 0, "operations left open in a run that settles passed");
        }
    }
}
