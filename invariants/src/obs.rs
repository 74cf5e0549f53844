//! The observation vocabulary: what models report to the history.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One business operation (one purchase a user wants paid for once): `client * 10_000 + index`.
/// A re-payment by the user, or a restart that lost the key, is the same operation under a new key.
pub type OpId = u32;
/// An idempotency key as the server sees it.
pub type Key = u64;
/// A charge as the ledger or payment provider numbers it.
pub type ChargeId = u32;
/// An order of the outbox path (also its event's message id: one `order.created` per order).
pub type OrderId = u32;

/// An `order.created` event as it travels from the order service to the consumer. The order id
/// is the message id (Debezium's outbox `id` header) consumers deduplicate by; the aggregate id
/// is the partition key.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Event {
    pub order: OrderId,
    pub aggregate: u32,
}

/// An HTTP-like response status as the client sees it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Status {
    /// 200/201: the operation's result. `replayed` marks a stored result sent again
    /// (Stripe's `Idempotent-Replayed: true`).
    Ok { charge: ChargeId, amount: u32, replayed: bool },
    /// 409: a request with this key is still in flight.
    Conflict,
    /// 422: this key was first used with a different payload.
    Mismatch,
    /// 500: the server failed; the outcome is unknown to the client.
    ServerError,
    /// 500 replayed from a failure stored as the key's result (Stripe caches 500s; the IETF
    /// draft: "the result of the completed operation, success or error"): the operation failed.
    StoredError,
    /// 503 with Retry-After.
    Unavailable { retry_after_us: u64 },
}

impl Status {
    pub fn code(&self) -> u16 {
        match self {
            Status::Ok { .. } => 200,
            Status::Conflict => 409,
            Status::Mismatch => 422,
            Status::ServerError | Status::StoredError => 500,
            Status::Unavailable { .. } => 503,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Status::Ok { charge, amount, replayed } => {
                write!(f, "200 charge #{charge} amount {amount}{}", if *replayed { " (replayed)" } else { "" })
            }
            Status::Unavailable { retry_after_us } => write!(f, "503 Retry-After {}", crate::ms(*retry_after_us)),
            Status::StoredError => write!(f, "500 (stored failure, replayed)"),
            s => write!(f, "{}", s.code()),
        }
    }
}

/// How an operation ended for its client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Settle {
    Succeeded {
        charge: ChargeId,
        amount: u32,
    },
    /// A definitive refusal or failure: 422, or a stored 500 replayed.
    Rejected {
        code: u16,
    },
    /// Out of attempts or retry budget: the outcome stays unknown to the client.
    GaveUp {
        attempts: u32,
    },
}

/// A row of the ledger (or the payment provider's records) as an auditor reads it.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChargeRow {
    pub charge: ChargeId,
    pub op: OpId,
    pub key: Key,
    pub amount: u32,
}

/// Why a client (re)starts an operation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Begin {
    /// The user's first payment for this purchase.
    First,
    /// The user was told the payment failed (or never heard) and pays again, under a new key.
    Repay,
    /// The app restarted mid-payment and starts the purchase over (with the key it persisted, or
    /// a fresh one if it kept the key only in memory).
    Restarted,
}

/// How a claimed key ended, as the key store holds it after the run.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum KeyEnd {
    /// Finished with this charge as its stored result.
    Finished { charge: ChargeId },
    /// A failure stored as its result.
    Failed,
    /// Still claimed and unfinished: stuck unless something drives it on.
    InFlight,
}

/// A key as an auditor finds it in the key store after the run (deleted or expired keys are
/// released and absent).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KeyRecord {
    pub key: Key,
    pub op: OpId,
    pub end: KeyEnd,
}

/// Everything a model may report.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Obs {
    /// A client begins an operation (or begins it again: `begin`).
    OpStarted {
        op: OpId,
        amount: u32,
        begin: Begin,
    },
    /// A client sends one request of an attempt (`copy` > 0: another copy of the same request
    /// fired concurrently, a double click), to server instance `server`.
    Sent {
        op: OpId,
        attempt: u32,
        copy: u32,
        key: Key,
        amount: u32,
        server: u32,
    },
    /// A client got a response to one request (late ones for earlier attempts included).
    Received {
        op: OpId,
        attempt: u32,
        copy: u32,
        key: Key,
        status: Status,
    },
    /// A client's attempt timed out with no response.
    TimedOut {
        op: OpId,
        attempt: u32,
    },
    /// A client is done with an operation.
    Settled {
        op: OpId,
        outcome: Settle,
    },
    /// The server claimed a key for a new execution (or took over an expired lock).
    KeyClaimed {
        key: Key,
        op: OpId,
        takeover: bool,
    },
    /// The server answered from a stored result.
    KeyReplayed {
        key: Key,
    },
    /// The server refused a request (409 in flight, 422 mismatch).
    KeyRejected {
        key: Key,
        code: u16,
    },
    /// The server's error path after a timeout or error: the key deleted (released) or a
    /// failure stored as its result.
    KeyReleased {
        key: Key,
    },
    KeyFailed {
        key: Key,
    },
    /// The server (or the completer) stored a charge as the key's result, and the store
    /// acknowledged it.
    ResultStored {
        key: Key,
        charge: ChargeId,
    },
    /// A charge was applied (committed at the ledger or made by the provider).
    Charged {
        row: ChargeRow,
    },
    /// Outbox path: the order database committed an order (with its outbox row, if the design
    /// writes one).
    OrderCommitted {
        event: Event,
    },
    /// The broker appended an event to a partition, from producer node `producer`.
    Published {
        event: Event,
        partition: u32,
        offset: u32,
        producer: u32,
    },
    /// The consumer received the event at `partition`/`offset` from the broker.
    Delivered {
        event: Event,
        partition: u32,
        offset: u32,
    },
    /// The consumer's database committed the event's effect (the projection row).
    Applied {
        event: Event,
    },
    /// The consumer skipped the event as already processed (its dedup record exists).
    Deduplicated {
        event: Event,
    },
    /// The broker deleted the event by retention before the consumer group had consumed it.
    Expired {
        event: Event,
        partition: u32,
        offset: u32,
    },
    /// Overload path: operation `op` (numbered per client) arrived at client `client`.
    Offered {
        client: u32,
        op: u32,
    },
    /// Overload: a client sent attempt `attempt` of an operation.
    Attempted {
        client: u32,
        op: u32,
        attempt: u32,
    },
    /// Overload: an attempt had no answer within the client's timeout.
    AttemptTimedOut {
        client: u32,
        op: u32,
        attempt: u32,
    },
    /// Overload: a client is done with an operation: it succeeded, or the client gave up after
    /// `attempts` (out of attempts or retry budget).
    Finished {
        client: u32,
        op: u32,
        attempts: u32,
        ok: bool,
        /// When the operation arrived.
        arrived_us: u64,
    },
    /// Overload server: a worker took a request after it waited `waited_us` for one; `queue`
    /// requests still wait, and `blocked` workers are held by requests blocked on a key in flight.
    Served {
        client: u32,
        op: u32,
        waited_us: u64,
        queue: u32,
        blocked: u32,
    },
    /// Overload server: a request whose key is in flight holds a worker until that key's first
    /// request finishes (`blocked` workers are now held so).
    Blocked {
        client: u32,
        op: u32,
        waited_us: u64,
        blocked: u32,
    },
    /// Overload server: a request refused at once: 503 (outage or shed), 409 (key in flight), or
    /// 0: dropped without an answer.
    Refused {
        client: u32,
        op: u32,
        code: u16,
    },
    /// Overload, one shared row: a request's commit found the row changed since it read it (a
    /// write conflict under optimistic concurrency); the client was answered 409.
    WriteConflict {
        client: u32,
        op: u32,
    },
    /// Overload, a tier between the clients and the service (0: the outermost) sent attempt
    /// `attempt` of its call for a request of client `client`'s operation `op` one tier in.
    Forwarded {
        tier: u8,
        client: u32,
        op: u32,
        attempt: u32,
    },
}
