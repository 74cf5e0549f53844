//! Property tests of the outbox path: random correct outbox designs x order workloads x fault
//! profiles never violate `effectively_once_event` or `per_aggregate_order`.
//!
//! The correct family: order and outbox row in one transaction (synchronous commit), relays that
//! do not claim rows (`FOR UPDATE SKIP LOCKED` reorders: `outbox/concurrent-relays`), an
//! idempotent producer or one message in flight per relay (a pipelined batch without it is
//! reordered by a retry), and a consumer with an inbox that commits its offset after the effect,
//! down for a while or not, with a retention longer than any outage.

use models::outbox::design::*;
use models::presets;
use models::Scenario;
use proptest::prelude::*;

fn relay() -> impl Strategy<Value = RelayDesign> {
    (1..=4u32, 2_000..30_000u64, 50_000..500_000u64, 1..=8u32, 10_000..80_000u64).prop_map(
        |(instances, poll_interval_us, idle, batch_size, call_timeout_us)| RelayDesign {
            instances,
            poll_interval_us,
            idle_poll_us_max: poll_interval_us.max(idle),
            batch_size,
            claim: Claim::None,
            call_timeout_us,
        },
    )
}

fn consumer() -> impl Strategy<Value = ConsumerDesign> {
    let outage = prop_oneof![
        Just(None),
        (0..300_000u64, 1..1_500_000u64).prop_map(|(start_us, duration_us)| Some(Outage { start_us, duration_us }))
    ];
    (2_000..30_000u64, 50_000..500_000u64, 10_000..80_000u64, outage).prop_map(|(poll_interval_us, idle, call_timeout_us, outage)| {
        ConsumerDesign {
            dedup: Dedup::Inbox,
            offset_commit: OffsetCommit::AfterEffect,
            poll_interval_us,
            idle_poll_us_max: poll_interval_us.max(idle),
            call_timeout_us,
            outage,
        }
    })
}

fn faults() -> impl Strategy<Value = sim::FaultProfile> {
    (0.0..0.3f64, 0.0..0.2f64, 0.0..0.6f64, 0.0..0.6f64, 0.0..0.3f64, 0..20_000u64).prop_map(
        |(loss, dup, crash, pause, partition, delay_us_max)| sim::FaultProfile {
            delay_us_max: 1_000 + delay_us_max,
            loss_probability: loss,
            duplicate_probability: dup,
            crash_probability: crash,
            pause_probability: pause,
            partition_probability: partition,
            fault_phase_us: 400_000,
            ..presets::full_faults()
        },
    )
}

fn correct_outbox() -> impl Strategy<Value = Scenario> {
    let orders =
        (1..=12u32, 1..=4u32, 1_000..40_000u64).prop_map(|(count, a, interval_us)| Orders { count, aggregates: a.min(count), interval_us });
    let broker = (1..=4u32, any::<bool>(), 10_000..60_000u64).prop_map(|(partitions, idempotent_producer, producer_timeout_us)| {
        BrokerDesign { partitions, idempotent_producer, producer_timeout_us, retention_us: 0 }
    });
    (orders, 10_000..80_000u64, relay(), broker, consumer(), faults(), any::<bool>()).prop_map(
        |(orders, service_timeout_us, mut relay, broker, consumer, faults, long_retention)| {
            if !broker.idempotent_producer {
                relay.batch_size = 1;
            }
            let mut broker = broker;
            if long_retention {
                broker.retention_us = 7 * 86_400_000_000;
            }
            let mut s = presets::get("outbox/outbox-inbox").expect("preset");
            s.name = "proptest".into();
            let d = s.outbox_mut();
            d.orders = orders;
            d.service.call_timeout_us = service_timeout_us;
            d.relay = relay;
            d.broker = broker;
            d.consumer = consumer;
            s.faults = faults;
            s.validate().expect("strategies build valid designs");
            s
        },
    )
}

proptest! {
    // A fixed RNG seed: the suite explores the same designs on every run, so it is never flaky.
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        rng_seed: proptest::test_runner::RngSeed::Fixed(0x0b0c_5eed),
        ..ProptestConfig::default()
    })]

    #[test]
    fn correct_outbox_designs_never_violate(s in correct_outbox()) {
        let r = s.explore(0..300, 1, None);
        prop_assert_eq!(r.violations, 0, "{}\n{}", r.first.map(|f| format!("seed {}: {}", f.seed, f.violation.message)).unwrap_or_default(), s.to_toml());
    }
}
