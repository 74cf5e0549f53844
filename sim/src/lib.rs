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
//! - [`explore`]: many seeds on many threads, sharded; [`check_determinism`]: every seed twice.
//! - `run_madsim` / `explore_madsim`: the same actors on madsim 0.2 ([`madsim_backend`]).
//! - [`world`]: what both backends simulate (fault plan, links, local effects, judging).
//! - [`check_exhaustive`]: every run within bounds, by depth-first search over the choices.

pub mod actor;
pub mod choices;
mod clone_by_field;
pub mod engine;
pub mod exhaustive;
pub mod faults;
pub mod history;
#[cfg(all(feature = "madsim", madsim))]
pub mod madsim_backend;
pub mod model;
pub mod panics;
pub mod runner;
pub mod toy;
pub mod trace;
pub mod world;

pub use actor::{Actor, Cmd, Ctx, NodeId, TimerId};
pub use choices::{first_divergence, Choice, ChoiceKind, Choices, Divergence};
pub use engine::{Driver, EventInfo, Outcome, Sim, Step};
pub use exhaustive::{
    check_exhaustive, labels_erased, Bounds, Counterexample, ExhaustiveOptions, ExhaustiveReport, HistoryView, Semantics,
};
pub use faults::{FaultProfile, NodeSpec, SimConfig};
pub use history::{history_hash, stable_hash, Entry, RunEnd, StableHasher, Stats, Verdict, Violation};
#[cfg(all(feature = "madsim", madsim))]
pub use madsim_backend::{explore_madsim, run_madsim, run_madsim_full, MadsimActor, MadsimOutcome, MadsimRun};
pub use model::{Log, Model, RunView};
pub use panics::PANIC;
pub use runner::{check_determinism, explore, ExploreReport, Found, Nondeterminism, Shard};
pub use trace::{CrashKind, CutDir, FaultKind, FaultNote, LossCause, TraceEvent, TraceKind};
pub use world::PlannedFault;

#[cfg(all(feature = "madsim", not(madsim)))]
compile_error!(
    "sim's madsim backend (the `madsim` feature, on by default) must be compiled with `--cfg madsim`. \
     The workspace sets it in .cargo/config.toml ([build] rustflags = [\"--cfg\", \"madsim\"]), but a RUSTFLAGS \
     or CARGO_BUILD_RUSTFLAGS environment variable replaces that list: unset it, or add the flag to it \
     (RUSTFLAGS=\"$RUSTFLAGS --cfg madsim\"), or build sim alone with --no-default-features. Building outside this workspace: put the same [build] rustflags \
     in your .cargo/config.toml."
);
