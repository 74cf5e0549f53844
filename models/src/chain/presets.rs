//! The checkout chain's preset: the seed's whole chain, correct at every link. Each link's
//! bug-zoo setting is one edit of this scenario away (`models/tests/chain.rs` flips each).

use super::design::ChainDesign;
use crate::outbox::presets::outbox_inbox;
use crate::payment::presets::{durable_on_conflict, workload};
use crate::presets::full_faults;
use crate::scenario::{Expect, Scenario, Targets};

const MS: u64 = 1_000;

/// After the charge: the order and its outbox row in the charge's transaction, and the
/// outbox path's correct relay, broker and consumer (an inbox row in the effect's transaction).
pub fn checkout() -> ChainDesign {
    let o = outbox_inbox();
    ChainDesign { write: o.service.write, orders_db: o.store, relay: o.relay, broker: o.broker, consumer: o.consumer }
}

pub fn all() -> Vec<Scenario> {
    vec![Scenario {
        name: "chain/checkout".into(),
        description: "The seed's chain: one key per operation with full jitter and Retry-After; INSERT .. ON CONFLICT on Postgres with the key, the charge, the order and its outbox row in one transaction; an at-least-once relay; an idempotent producer; a consumer with an inbox that fulfils each order once.".into(),
        expect: Expect::Pass,
        time_limit_us: 60_000 * MS,
        settle_bound_us: 10_000 * MS,
        liveness: true,
        swarm: false,
        workload: Some(workload()),
        payment: Some(durable_on_conflict()),
        outbox: None,
        chain: Some(checkout()),
        overload: None,
        faults: full_faults(),
        targets: Targets::default(),
    }]
}
