//! # invariants — what models report, and the judges of a recorded history
//!
//! Models report [`Obs`] observations as a run goes (a request sent, a response received, a
//! charge applied, …). Checkers are pure functions over the history (plus, where durability
//! matters, the rows an auditor would find on disk after the run) that return a
//! [`sim::Violation`] whose message names the operation, the key, the events involved and their
//! simulated times.

pub mod obs;
pub mod payment;

pub use obs::{Begin, ChargeId, ChargeRow, Key, KeyEnd, KeyRecord, Obs, OpId, Settle, Status};

/// Simulated microseconds as milliseconds for messages (`12.345 ms`).
pub fn ms(at_us: u64) -> String {
    format!("{}.{:03} ms", at_us / 1000, at_us % 1000)
}
