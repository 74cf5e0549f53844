//! What a scenario gives the engine: its configuration, its actors, and the judge of its history.

use crate::actor::{Actor, NodeId};
use crate::faults::{FaultProfile, SimConfig};
use crate::history::{Entry, RunEnd, Stats, Verdict};
use crate::trace::{CrashKind, FaultNote};

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
    /// What `check`'s verdict reads of one observation, for the exhaustive explorer's
    /// `HistoryView::Relevant`: `None` if no verdict depends on it (it is only quoted in
    /// messages), else a key of the parts that can change a verdict. Under that view two states
    /// are merged when each node's sequence of keys so far is the same, so the contract is: the
    /// verdict is a function of the final actors and logs and of each node's sequence of
    /// `Some` keys (in that node's order). The default keys the whole entry, its time included,
    /// which makes `Relevant` the same as `PerNode`. Dropping what no checker reads (the time,
    /// most often: the untimed search moves the clock only at timers, so the same state is
    /// reached with its observations stamped at many times) is what lets the view merge more.
    fn observation_key(&self, entry: &Entry<<Self::Actor as Actor>::Obs>) -> Option<u64> {
        Some(crate::history::stable_hash(entry))
    }
}

/// A node's write-ahead log: `records[..synced]` is durable; `records[..written]` reached the
/// OS (survives a process crash, not a machine crash); the rest is the process's own buffer.
#[derive(Debug)]
pub struct Log<R> {
    pub records: Vec<R>,
    pub synced: usize,
    pub written: usize,
}
crate::clone_by_field!(Log<R> { records, synced, written } where R: Clone);

impl<R> Default for Log<R> {
    fn default() -> Self {
        Log { records: Vec::new(), synced: 0, written: 0 }
    }
}

impl<R> Log<R> {
    pub fn durable(&self) -> &[R] {
        &self.records[..self.synced]
    }
    /// Make every record written so far durable; returns how many are.
    #[inline]
    pub fn fsync(&mut self) -> usize {
        self.synced = self.records.len();
        self.written = self.synced;
        self.synced
    }
    /// Append a record handed to the OS at once (`write(2)` without `fsync`).
    pub fn write_os(&mut self, rec: R) {
        self.records.push(rec);
        self.written = self.records.len();
    }
    /// A crash: a machine crash drops what was not fsynced, a process crash what never reached
    /// the OS; returns how many records were lost.
    pub fn crash(&mut self, kind: CrashKind) -> u64 {
        let keep = match kind {
            CrashKind::Machine => self.synced,
            CrashKind::Process => self.written,
        };
        debug_assert!(self.synced <= self.written && self.written <= self.records.len());
        let lost = (self.records.len() - keep) as u64;
        self.records.truncate(keep);
        self.written = keep;
        self.synced = self.synced.min(keep);
        lost
    }
    /// Empty, keeping the buffer.
    pub fn clear(&mut self) {
        self.records.clear();
        self.synced = 0;
        self.written = 0;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Records 0..3: 0 fsynced, 1 handed to the OS, 2 in the process's buffer.
    fn log() -> Log<u32> {
        let mut l = Log::default();
        l.records.push(0);
        l.fsync();
        l.write_os(1);
        l.records.push(2);
        l
    }

    #[test]
    fn a_process_crash_keeps_what_reached_the_os_and_a_machine_crash_only_what_was_fsynced() {
        let mut p = log();
        assert_eq!(p.crash(CrashKind::Process), 1);
        assert_eq!((p.records.as_slice(), p.synced, p.written), (&[0, 1][..], 1, 2));
        // A machine crash after it still loses the un-fsynced OS write.
        assert_eq!(p.crash(CrashKind::Machine), 1);
        assert_eq!(p.records, vec![0]);
        let mut m = log();
        assert_eq!(m.crash(CrashKind::Machine), 2);
        assert_eq!((m.records.as_slice(), m.synced, m.written), (&[0][..], 1, 1));
        let mut f = log();
        f.fsync();
        assert_eq!((f.crash(CrashKind::Machine), f.records.len()), (0, 3));
    }
}
