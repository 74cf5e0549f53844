//! # models — the designs idemsim holds to their invariants
//!
//! Actors for every design variant of each path ([`payment`], [`outbox`], and the whole
//! [`chain`]), the knobs that select them ([`knobs`]), the
//! scenario format ([`scenario`]) and the preset catalogue ([`presets`]). [`custom`] runs your own
//! server actor in the payment world. [`run`] is the surface
//! the command line uses: explore, replay and judge any scenario.

pub mod chain;
pub mod custom;
pub mod knobs;
pub mod outbox;
pub mod overload;
pub mod payment;
pub mod presets;
pub mod retry;
pub mod run;
pub mod scenario;
pub mod shape;
pub mod world;

pub use scenario::{Expect, Role, Scenario, Targets, Workload};
