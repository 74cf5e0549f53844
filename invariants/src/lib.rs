//! # invariants — what models report, and the judges of a recorded history
//!
//! Models report [`Obs`] observations as a run goes (a request sent, a response received, a
//! charge applied, …). Checkers are pure functions over the history (plus, where durability
//! matters, the rows an auditor would find on disk after the run) that return a
//! [`sim::Violation`] whose message names the operation, the key, the events involved and their
//! simulated times.

pub mod obs;
pub mod outbox;
pub mod overload;
pub mod payment;

pub use obs::{Begin, ChargeId, ChargeRow, Event, Key, KeyEnd, KeyRecord, Obs, OpId, OrderId, Settle, Status};

/// Every invariant of every path, safety first within each path.
pub const ALL: [&str; 8] = [
    payment::ALL[0],
    payment::ALL[1],
    payment::ALL[2],
    payment::ALL[3],
    outbox::EFFECTIVELY_ONCE_EVENT,
    outbox::PER_AGGREGATE_ORDER,
    overload::RECOVERY,
    overload::AVAILABILITY,
];

/// Is `invariant` a liveness property (judged after the heal phase) rather than a safety one?
pub fn is_liveness(invariant: &str) -> bool {
    payment::is_liveness(invariant) || overload::ALL.contains(&invariant)
}

/// Simulated microseconds as milliseconds for messages (`12.345 ms`).
pub fn ms(at_us: u64) -> String {
    format!("{}.{:03} ms", at_us / 1000, at_us % 1000)
}
