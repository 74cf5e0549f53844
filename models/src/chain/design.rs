//! The checkout chain's knobs beyond the payment design: how the payment server hands the
//! paid order on, and the relay, broker and consumer that carry its `order.created` event to
//! fulfilment. Each doc comment says what the choice means in production.

use crate::outbox::design::{
    AggregateLock, BrokerDesign, ConsumerDesign, OrderWrite, Orders, OutboxDesign, RelayDesign, ServiceDesign, StoreDesign,
};
use serde::{Deserialize, Serialize};

/// Everything after the charge: the order's way to the fulfilment service.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChainDesign {
    /// `outbox`: the server inserts the order row and its outbox row in the transaction that
    /// stores the charge's result, and a relay publishes the outbox. `dual_write`: the server
    /// commits the order, then publishes the event itself before answering: a crash between the
    /// two loses the fulfilment of a paid order.
    pub write: OrderWrite,
    /// The orders database when the key store is Redis (a Postgres key store holds the orders
    /// itself, in the charge's transaction). With Redis the order commits in its own
    /// transaction, after the charge and before the result is stored.
    pub orders_db: StoreDesign,
    pub relay: RelayDesign,
    pub broker: BrokerDesign,
    pub consumer: ConsumerDesign,
}

impl ChainDesign {
    /// Refuse settings no real system has, naming the knob (as `chain.…`) and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if self.write == OrderWrite::PublishThenCommit {
            return Err("chain.write = \"publish_then_commit\": the server publishes a paid order only once it is charged; use \"outbox\" or \"dual_write\"".into());
        }
        self.as_outbox().validate().map_err(|e| e.replace("outbox.", "chain."))
    }

    /// The same knobs as an outbox design (its order service unused), for the relay, broker and
    /// consumer models and their validation.
    pub fn as_outbox(&self) -> OutboxDesign {
        OutboxDesign {
            orders: Orders { count: 1, aggregates: 1, interval_us: 0 },
            service: ServiceDesign { write: self.write, call_timeout_us: 1, aggregate_lock: AggregateLock::None },
            store: self.orders_db,
            relay: self.relay,
            broker: self.broker,
            consumer: self.consumer,
        }
    }
}
