//! # sim — idemsim's engine
//!
//! A deterministic simulator for message-passing actors. It knows nothing of payments or
//! outboxes: models (the `models` crate) bring actors, observations and checkers; the engine
//! brings simulated time, the network, faults, the storage model, and the one choice source that
//! makes a run a pure function of (scenario, choice sequence).
//!
//! - [`Actor`]: the trait a model implements (start, message, timer, crash).
//! - [`Choices`]: seeded (ChaCha8) or tape-driven; 0 is always the simplest answer.
//! - [`FaultProfile`]: one plain struct of fault rates; swarm mode draws one per seed.
//! - [`Sim`]: the native simulator, reused run after run.
//! - [`explore`]: many seeds on many threads, sharded.
//! - [`check_exhaustive`]: every run within bounds, by depth-first search over the choices.

pub mod actor;
pub mod choices;
pub mod engine;
pub mod exhaustive;
pub mod faults;
pub mod history;
pub mod model;
pub mod runner;
pub mod toy;
pub mod trace;

pub use actor::{Actor, Cmd, Ctx, NodeId, TimerId};
pub use choices::{Choice, ChoiceKind, Choices};
pub use engine::{Driver, EventInfo, Outcome, Sim, Step};
pub use exhaustive::{check_exhaustive, Bounds, Counterexample, ExhaustiveOptions, ExhaustiveReport, HistoryView, Semantics};
pub use faults::{FaultProfile, NodeSpec, SimConfig};
pub use history::{history_hash, Entry, RunEnd, StableHasher, Stats, Verdict, Violation};
pub use model::{Log, Model, RunView};
pub use runner::{explore, ExploreReport, Found, Shard};
pub use trace::{CutDir, LossCause, TraceEvent, TraceKind};
