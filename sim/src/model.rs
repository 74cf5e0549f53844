//! What a scenario gives the engine: its configuration, its actors, and the judge of its history.

use crate::actor::{Actor, NodeId};
use crate::faults::{FaultProfile, SimConfig};
use crate::history::{Entry, RunEnd, Stats, Verdict};
use crate::trace::FaultNote;

/// A runnable scenario. `build` and `check` must be pure functions of `self` and their arguments:
/// that is what makes a run a pure function of (scenario, choice sequence).
pub trait Model: Sync {
    type Actor: Actor;
    fn config(&self) -> &SimConfig;
    /// Push the initial actors, one per `config().nodes` entry, in that order.
    fn build(&self, nodes: &mut Vec<Self::Actor>);
    /// Make `nodes` (the actors the previous run left, or empty) what `build` pushes onto an
    /// empty `Vec`. The native simulator calls this before every run; override it to reuse the
    /// previous run's actors and their buffers (no allocation per run). The result must be
    /// equal in every respect to a fresh `build`: a run must not depend on the run before it.
    fn rebuild(&self, nodes: &mut Vec<Self::Actor>) {
        nodes.clear();
        self.build(nodes);
    }
    /// Judge a finished run.
    fn check(&self, run: &RunView<'_, Self::Actor>) -> Verdict;
}

/// A node's write-ahead log: `records[..synced]` is durable, the rest vanishes on a crash.
#[derive(Clone, Debug, Default)]
pub struct Log<R> {
    pub records: Vec<R>,
    pub synced: usize,
}

impl<R> Log<R> {
    pub fn durable(&self) -> &[R] {
        &self.records[..self.synced]
    }
    /// Make every record written so far durable; returns how many are.
    #[inline]
    pub fn fsync(&mut self) -> usize {
        self.synced = self.records.len();
        self.synced
    }
    /// A crash: drop what was not fsynced; returns how many records were lost.
    pub fn crash(&mut self) -> u64 {
        let lost = (self.records.len() - self.synced) as u64;
        self.records.truncate(self.synced);
        lost
    }
}

/// A finished run as the checkers see it.
pub struct RunView<'a, A: Actor> {
    pub history: &'a [Entry<A::Obs>],
    /// The actors as the run left them (volatile state included).
    pub nodes: &'a [A],
    /// Each node's log; what an auditor would find after one more crash is `durable(node)`.
    pub logs: &'a [Log<A::Record>],
    pub end: RunEnd,
    pub stats: &'a Stats,
    /// The profile this run used (drawn per seed in swarm mode).
    pub faults: &'a FaultProfile,
    /// The faults that struck, in order (empty on backends that do not record them).
    pub fault_log: &'a [FaultNote],
}

impl<A: Actor> RunView<'_, A> {
    /// The records of `node` that survive any crash.
    pub fn durable(&self, node: NodeId) -> &[A::Record] {
        self.logs[node].durable()
    }
    /// From this time on no new fault starts.
    pub fn heal_at_us(&self) -> u64 {
        self.faults.fault_phase_us
    }
}
