//! The outbox path's design knobs: what a team decides when an `order.created` event must reach
//! Kafka whenever an order row commits to Postgres. Each doc comment says what the choice means
//! in production.

use serde::{Deserialize, Serialize};

/// How the order service gets the event out.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderWrite {
    /// Commit the order, then publish to the broker: a crash (or a lost commit reply) between the
    /// two leaves a committed order whose event is never sent.
    DualWrite,
    /// Publish to the broker, then commit the order: when the commit fails or the service
    /// crashes after the publish, consumers act on an order that does not exist.
    PublishThenCommit,
    /// Insert the order row and an outbox row (Debezium's columns: id, aggregatetype,
    /// aggregateid, type, payload) in one transaction; a relay publishes the outbox.
    Outbox,
}

/// Whether one aggregate's orders take turns in the database.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AggregateLock {
    /// Each order's transaction runs on its own. Outbox ids come from a sequence at INSERT, so
    /// two orders of one aggregate can commit in the reverse of their id order: the COMMIT of
    /// an order whose service crashed (or gave up on it) is still on its way when the next
    /// order commits. A relay that polls `ORDER BY id` then publishes them out of commit order.
    #[default]
    None,
    /// `SELECT .. FROM customers WHERE id = $1 FOR UPDATE` first in the order's transaction:
    /// the next order of that aggregate waits until this one commits or rolls back, so its
    /// outbox id is handed out after this one's commit, and id order is commit order.
    ForUpdate,
}

/// Whether concurrent relay instances claim the rows they publish.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Claim {
    /// Each relay reads every unsent row (autocommit `SELECT .. WHERE NOT sent ORDER BY id
    /// LIMIT n`) and marks what it published: two relays publish the same rows twice.
    None,
    /// `SELECT .. FOR UPDATE SKIP LOCKED LIMIT n` in a transaction held across the publish and
    /// the mark: relays split the rows, so one aggregate's rows can go out through two relays
    /// at once, in either order.
    SkipLocked,
}

/// How the consumer recognises a message it already processed.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dedup {
    /// Every delivery is applied: a redelivery is a second effect.
    None,
    /// An inbox row `(subscriber_id, message_id)` with a primary key, inserted in the same
    /// transaction as the effect (the idempotent consumer, microservices.io).
    Inbox,
    /// The dedup record lives in another store (a cache, another database) than the effect: it
    /// is written first, then the effect; a crash between them loses the effect, and a retry of
    /// the effect after a lost reply applies it twice.
    SeparateStore,
}

/// When the consumer commits its offset to the consumer group.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetCommit {
    /// After the effect committed: a crash between redelivers the message (at least once).
    AfterEffect,
    /// Before the effect (auto-commit on poll): a crash between skips the message for good (at
    /// most once).
    BeforeEffect,
}

/// The orders the service places: order `i` (ids from 1) at `i * interval_us`, for aggregate
/// `i % aggregates` (a customer, say; the partition key).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Orders {
    pub count: u32,
    pub aggregates: u32,
    pub interval_us: u64,
}

/// The order service.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceDesign {
    pub write: OrderWrite,
    /// A database or broker call with no answer after this long fails the order (its
    /// transaction is rolled back, if it has not committed).
    pub call_timeout_us: u64,
    /// Whether the order's transaction first locks its aggregate's row (absent: `none`).
    #[serde(default)]
    pub aggregate_lock: AggregateLock,
}

/// The order database (the Postgres-like store of the payment path).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreDesign {
    /// `synchronous_commit = on` (a COMMIT is durable when acknowledged) or `off`.
    pub synchronous_commit: bool,
    pub wal_writer_delay_us: u64,
    /// `idle_in_transaction_session_timeout` (or TCP keepalive's detection, when sooner): how
    /// long the database keeps the session of an order service or relay whose machine crashed
    /// with its transaction open, its row and aggregate locks held and the statements it sent
    /// before it died still served, before it ends it. Counted from the session's last
    /// statement. A process crash is not held: the kernel closes the dead process's sockets.
    /// 0 (when absent): the idealisation of earlier versions, where a vanished session ends
    /// when its service restarts.
    #[serde(default)]
    pub session_timeout_us: u64,
}

/// The outbox relay (a polling publisher).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayDesign {
    /// Relay instances (1 to 4), all polling the same outbox.
    pub instances: u32,
    /// Poll again this soon after a poll that found rows.
    pub poll_interval_us: u64,
    /// An empty poll doubles the wait, up to this.
    pub idle_poll_us_max: u64,
    /// Rows per poll (1 to 16): published together, then marked sent together.
    pub batch_size: u32,
    pub claim: Claim,
    /// A database call with no answer after this long is abandoned (the rows stay unsent).
    pub call_timeout_us: u64,
}

/// The broker: a partitioned log (Kafka-like).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrokerDesign {
    /// Partitions (1 to 8); an event goes to `aggregate % partitions`, so one aggregate's events
    /// share a partition and its order.
    pub partitions: u32,
    /// `enable.idempotence`: the broker drops a producer's retried duplicate and refuses an
    /// out-of-sequence send, within one producer session. A restarted producer is a new session.
    pub idempotent_producer: bool,
    /// A producer resends an unacknowledged message after this long (`request.timeout.ms`),
    /// until it is acknowledged.
    pub producer_timeout_us: u64,
    /// `retention.ms`: messages older than this are deleted, read or not (0: kept forever).
    pub retention_us: u64,
}

/// A window in which the consumer is down (a deploy gone wrong, a stuck rebalance).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub start_us: u64,
    pub duration_us: u64,
}

/// The consumer: reads the topic as one consumer group and applies each event to its projection.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerDesign {
    pub dedup: Dedup,
    pub offset_commit: OffsetCommit,
    /// Fetch again this soon after a fetch that found a message; an empty fetch doubles the
    /// wait, up to `idle_poll_us_max`.
    pub poll_interval_us: u64,
    pub idle_poll_us_max: u64,
    /// A broker or database call with no answer after this long is sent again.
    pub call_timeout_us: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<Outage>,
}

/// A whole outbox design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboxDesign {
    pub orders: Orders,
    pub service: ServiceDesign,
    pub store: StoreDesign,
    pub relay: RelayDesign,
    pub broker: BrokerDesign,
    pub consumer: ConsumerDesign,
}

impl OutboxDesign {
    /// Refuse settings no real system has, naming the knob (as `outbox.…`) and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let need = |cond: bool, msg: &str| if cond { Ok(()) } else { Err(msg.to_string()) };
        let o = &self.orders;
        need((1..=64).contains(&o.count), "outbox.orders.count must be between 1 and 64")?;
        need((1..=o.count).contains(&o.aggregates), "outbox.orders.aggregates must be between 1 and outbox.orders.count")?;
        need(self.service.call_timeout_us > 0, "outbox.service.call_timeout_us must be > 0 (the service gives up on a call)")?;
        let r = &self.relay;
        need((1..=4).contains(&r.instances), "outbox.relay.instances must be between 1 and 4")?;
        need((1..=16).contains(&r.batch_size), "outbox.relay.batch_size must be between 1 and 16")?;
        need(r.poll_interval_us > 0, "outbox.relay.poll_interval_us must be > 0")?;
        need(r.idle_poll_us_max >= r.poll_interval_us, "outbox.relay.idle_poll_us_max must be >= outbox.relay.poll_interval_us")?;
        need(r.call_timeout_us > 0, "outbox.relay.call_timeout_us must be > 0")?;
        let b = &self.broker;
        need((1..=8).contains(&b.partitions), "outbox.broker.partitions must be between 1 and 8")?;
        need(b.producer_timeout_us > 0, "outbox.broker.producer_timeout_us must be > 0 (producers retry unacknowledged sends)")?;
        let c = &self.consumer;
        need(c.poll_interval_us > 0, "outbox.consumer.poll_interval_us must be > 0")?;
        need(c.idle_poll_us_max >= c.poll_interval_us, "outbox.consumer.idle_poll_us_max must be >= outbox.consumer.poll_interval_us")?;
        need(c.call_timeout_us > 0, "outbox.consumer.call_timeout_us must be > 0")?;
        if let Some(w) = c.outage {
            need(w.duration_us > 0, "outbox.consumer.outage.duration_us must be > 0 (or remove the outage)")?;
        }
        Ok(())
    }
}
