//! The observation vocabulary: what models report to the history.

use serde::{Deserialize, Serialize};
use std::fmt;

/// One business operation (one charge a client wants made): `client * 1000 + index`.
pub type OpId = u32;
/// An idempotency key as the server sees it.
pub type Key = u64;
/// A charge as the ledger or payment provider numbers it.
pub type ChargeId = u32;

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
    /// 503 with Retry-After.
    Unavailable { retry_after_us: u64 },
}

impl Status {
    pub fn code(&self) -> u16 {
        match self {
            Status::Ok { .. } => 200,
            Status::Conflict => 409,
            Status::Mismatch => 422,
            Status::ServerError => 500,
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
    /// A definitive refusal (422).
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

/// Everything a model may report.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Obs {
    /// A client begins an operation.
    OpStarted { op: OpId, amount: u32 },
    /// A client sends an attempt (`copies` > 1: the same request fired concurrently).
    Sent { op: OpId, attempt: u32, key: Key, amount: u32, copies: u32 },
    /// A client got a response to its current attempt.
    Received { op: OpId, attempt: u32, key: Key, status: Status },
    /// A client's attempt timed out with no response.
    TimedOut { op: OpId, attempt: u32 },
    /// A client is done with an operation.
    Settled { op: OpId, outcome: Settle },
    /// The server claimed a key for a new execution (or took over an expired lock).
    KeyClaimed { key: Key, op: OpId, takeover: bool },
    /// The server answered from a stored result.
    KeyReplayed { key: Key },
    /// The server refused a request (409 in flight, 422 mismatch).
    KeyRejected { key: Key, code: u16 },
    /// A charge was applied (committed at the ledger or made by the provider).
    Charged { row: ChargeRow },
}
