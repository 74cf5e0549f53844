//! What a scenario gives the engine: its configuration, its actors, and the judge of its history.

use crate::actor::Actor;
use crate::faults::{FaultProfile, SimConfig};
use crate::history::{Entry, RunEnd, Stats, Verdict};

/// A runnable scenario. `build` and `check` must be pure functions of `self` and their arguments:
/// that is what makes a run a pure function of (scenario, choice sequence).
pub trait Model: Sync {
    type Actor: Actor;
    fn config(&self) -> &SimConfig;
    /// Push the initial actors, one per `config().nodes` entry, in that order.
    fn build(&self, nodes: &mut Vec<Self::Actor>);
    /// Judge a finished run.
    fn check(&self, run: &RunView<'_, <Self::Actor as Actor>::Obs>) -> Verdict;
}

/// A finished run as the checkers see it.
pub struct RunView<'a, O> {
    pub history: &'a [Entry<O>],
    pub end: RunEnd,
    pub stats: &'a Stats,
    /// The profile this run used (drawn per seed in swarm mode).
    pub faults: &'a FaultProfile,
}

impl<O> RunView<'_, O> {
    /// From this time on no new fault starts.
    pub fn heal_at_us(&self) -> u64 {
        self.faults.fault_phase_us
    }
}
