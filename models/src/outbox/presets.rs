//! The outbox path's presets: the correct outbox + inbox design, bug zoo 11-15 and two bugs from
//! incidents, each with the verdict it is expected to get. Names are fixed: scripts and the seed
//! corpus depend on them.

use super::design::*;
use crate::presets::full_faults;
use crate::scenario::{Expect, Scenario, Targets};
use invariants::outbox::{EFFECTIVELY_ONCE_EVENT, PER_AGGREGATE_ORDER};

const MS: u64 = 1_000;

/// Order row and outbox row in one transaction that first locks the order's aggregate (so one
/// aggregate's outbox ids follow its commit order), one relay polling every 10 ms, an idempotent
/// producer, two partitions keyed by aggregate, and a consumer with an inbox row in the effect's
/// transaction that commits its offset after the effect.
pub fn outbox_inbox() -> OutboxDesign {
    OutboxDesign {
        orders: Orders { count: 6, aggregates: 2, interval_us: 20 * MS },
        service: ServiceDesign { write: OrderWrite::Outbox, call_timeout_us: 40 * MS, aggregate_lock: AggregateLock::ForUpdate },
        store: StoreDesign { synchronous_commit: true, wal_writer_delay_us: 200 * MS, session_timeout_us: 1_000 * MS },
        relay: RelayDesign {
            instances: 1,
            poll_interval_us: 10 * MS,
            idle_poll_us_max: 400 * MS,
            batch_size: 4,
            claim: Claim::None,
            call_timeout_us: 40 * MS,
        },
        broker: BrokerDesign { partitions: 2, idempotent_producer: true, producer_timeout_us: 30 * MS, retention_us: 0 },
        consumer: ConsumerDesign {
            dedup: Dedup::Inbox,
            offset_commit: OffsetCommit::AfterEffect,
            poll_interval_us: 10 * MS,
            idle_poll_us_max: 400 * MS,
            call_timeout_us: 40 * MS,
            outage: None,
        },
    }
}

fn scenario(name: &str, description: &str, expect: Expect, outbox: OutboxDesign) -> Scenario {
    Scenario {
        name: name.into(),
        description: description.into(),
        expect,
        time_limit_us: 60_000 * MS,
        settle_bound_us: 3_000 * MS,
        liveness: true,
        swarm: false,
        workload: None,
        payment: None,
        outbox: Some(outbox),
        chain: None,
        overload: None,
        faults: full_faults(),
        targets: Targets::default(),
    }
}

fn bug(name: &str, description: &str, invariant: &str, f: impl Fn(&mut OutboxDesign)) -> Scenario {
    let mut d = outbox_inbox();
    f(&mut d);
    scenario(name, description, Expect::Violation(invariant.into()), d)
}

/// The outbox presets: the correct design, then bug zoo 11-15, then the incident bugs.
pub fn all() -> Vec<Scenario> {
    let mut v = vec![
        scenario(
            "outbox/outbox-inbox",
            "Order row and outbox row in one transaction, which first locks the aggregate's row (FOR UPDATE) so one aggregate's outbox ids follow its commit order; an at-least-once relay; an idempotent producer into partitions keyed by aggregate; a consumer with an inbox row in the effect's transaction, committing its offset after the effect.",
            Expect::Pass,
            outbox_inbox(),
        ),
        bug(
            "outbox/dual-write",
            "Commit the order, then publish to the broker: a service crash (or a commit whose reply came too late) between the two leaves a committed order whose event is never sent.",
            EFFECTIVELY_ONCE_EVENT,
            |d| d.service.write = OrderWrite::DualWrite,
        ),
        bug(
            "outbox/publish-then-commit",
            "Publish to the broker, then commit the order: when the commit fails (the database crashed or stalled past the timeout) or the service crashes after the publish, the consumer acts on an order that never existed.",
            EFFECTIVELY_ONCE_EVENT,
            |d| d.service.write = OrderWrite::PublishThenCommit,
        ),
        bug(
            "outbox/no-inbox",
            "The consumer applies every delivery: a redelivery (the consumer crashed after the effect, before committing its offset; the relay published again after a crash) is a second effect.",
            EFFECTIVELY_ONCE_EVENT,
            |d| d.consumer.dedup = Dedup::None,
        ),
        bug(
            "outbox/offset-before-effect",
            "The consumer commits its offset before applying the effect (auto-commit on poll): a crash between the two skips the message for good.",
            EFFECTIVELY_ONCE_EVENT,
            |d| d.consumer.offset_commit = OffsetCommit::BeforeEffect,
        ),
        bug(
            "outbox/dedup-separate-store",
            "The dedup record is written to a separate store, then the effect to the projection: a crash between loses the effect, and a retried effect after a stalled reply applies it twice.",
            EFFECTIVELY_ONCE_EVENT,
            |d| d.consumer.dedup = Dedup::SeparateStore,
        ),
        bug(
            "outbox/retention-shorter-than-outage",
            "The consumer is down for 2 s and the broker keeps messages for 1 s: events are deleted unread, as GitHub's webhook payloads were in October 2018 when a backlog outlived their TTL.",
            EFFECTIVELY_ONCE_EVENT,
            |d| {
                d.broker.retention_us = 1_000 * MS;
                d.consumer.outage = Some(Outage { start_us: 50 * MS, duration_us: 2_000 * MS });
            },
        ),
        bug(
            "outbox/concurrent-relays",
            "Two relays split the outbox with FOR UPDATE SKIP LOCKED, one row each: one aggregate's rows go out through both at once (or through one relay whose abandoned claim still holds a row), and the later order can reach the partition first.",
            PER_AGGREGATE_ORDER,
            |d| {
                d.relay.instances = 2;
                d.relay.claim = Claim::SkipLocked;
                d.relay.batch_size = 1;
                d.orders = Orders { count: 6, aggregates: 1, interval_us: 2 * MS };
            },
        ),
    ];
    for s in &mut v {
        tune_trigger(s);
    }
    v
}

/// Each bug preset keeps the full fault profile, with a stronger dose of the fault that triggers
/// it where one is needed.
fn tune_trigger(s: &mut Scenario) {
    match s.name.as_str() {
        "outbox/dual-write" | "outbox/publish-then-commit" | "outbox/offset-before-effect" | "outbox/dedup-separate-store" => {
            s.faults.crash_probability = 0.5
        }
        _ => {}
    }
}
