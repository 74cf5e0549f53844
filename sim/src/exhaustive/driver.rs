//! One run of the search. The driver replays the path's prefix, then extends it with the
//! simplest choices; before every event it records the state (and stops if an earlier visit
//! covers it), keeps the sleep set of the partial-order reduction, and picks the next event.

use super::table::StateTable;
use super::tree::{fault_slot, Asleep, NewPick, FAULT_KINDS};
use super::{Bounds, HistoryView};
use crate::actor::Actor;
use crate::choices::Choice;
use crate::engine::{Driver, EventInfo, Sim, Step};
use crate::history::{Entry, StableHasher};
use std::hash::{Hash, Hasher};

/// Why a run stopped before its end.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Cut {
    /// It reached a state an earlier visit had explored.
    Pruned,
    /// Every event that could run next was asleep: an equivalent run was explored already.
    Blocked,
    /// It reached `Bounds::max_events`.
    Truncated,
}

/// A running hash of what the checker reads of the history (see `HistoryView`), updated as
/// entries are appended.
#[derive(Default)]
struct HistoryKey {
    view: HistoryView,
    seen: usize,
    /// One hash chain for `Ordered`, one per node for `PerNode` and `Relevant`.
    chains: Vec<u64>,
}
crate::clone_by_field!(HistoryKey { view, seen, chains });

/// What the checker reads of one observation (`Model::observation_key`), for `Relevant`.
pub(super) type ObsKey<'a, O> = &'a (dyn Fn(&Entry<O>) -> Option<u64> + Sync);

impl HistoryKey {
    fn update<O: Hash>(&mut self, history: &[Entry<O>], relevant: ObsKey<'_, O>) {
        for e in &history[self.seen..] {
            let (slot, key) = match self.view {
                HistoryView::Ordered => (0, None),
                HistoryView::PerNode => (e.node, None),
                HistoryView::Relevant => match relevant(e) {
                    Some(k) => (e.node, Some(k)),
                    None => continue,
                },
                HistoryView::Ignored => continue,
            };
            if self.chains.len() <= slot {
                self.chains.resize(slot + 1, 0);
            }
            let mut h = StableHasher::default();
            h.write_u64(self.chains[slot]);
            match key {
                Some(k) => h.write_u64(k),
                None => e.hash(&mut h),
            }
            self.chains[slot] = h.finish();
        }
        self.seen = history.len();
    }
}

/// What one run needs from the search, and what it hands back.
pub(super) struct RunDriver<'a, A: Actor> {
    bounds: &'a Bounds,
    pub table: &'a StateTable,
    relevant: ObsKey<'a, A::Obs>,
    prune: bool,
    reduce: bool,
    /// Of eligible events with the same key, try only the first (see `symmetry`).
    one_per_key: bool,
    /// The prefix to replay: its event picks, and how many `Choices` answers it holds.
    prefix_picks: &'a [u32],
    prefix_choices: usize,
    /// Where this run leaves snapshots to resume later runs from (see `Checkpoints`).
    checkpoints: &'a mut Checkpoints<A>,
    /// Event picks made past the prefix (the choice answers are in `Sim::choices`).
    pub new_picks: &'a mut Vec<NewPick>,
    /// Where the run stands: what a snapshot saves.
    at: &'a mut AtBoundary,
    pub cut: Option<Cut>,
    /// The buffer the next sleep set is built in (swapped with the current one).
    spare_sleep: &'a mut Vec<EventInfo>,
}

/// A worker's buffers for its runs' drivers, kept across runs: a search makes millions of runs,
/// most of them a few events long, and allocating these afresh for each was a tenth of its time.
#[derive(Default)]
pub(super) struct DriverBuffers {
    pub at: AtBoundary,
    pub new_picks: Vec<NewPick>,
    spare_sleep: Vec<EventInfo>,
}

/// What a driver knows at an event boundary besides the prefix it follows: saved with a
/// snapshot of the simulator, it lets a later run resume there.
#[derive(Default)]
pub(super) struct AtBoundary {
    picks_done: usize,
    /// Events asleep before the next one runs (partial-order reduction), unique by key.
    sleep: Vec<EventInfo>,
    history: HistoryKey,
    faults: [u32; FAULT_KINDS],
    faults_counted: usize,
    events: u64,
}
crate::clone_by_field!(AtBoundary { picks_done, sleep, history, faults, faults_counted, events });

/// Snapshots of the current path's run, every `every` events, so that the next run (which
/// shares the path up to the point the search backtracked to) resumes from the last one before
/// that point instead of replaying its prefix from the start: the replay was most of a search's
/// time (a run is pruned a few events past a prefix of dozens). The search is the same either
/// way: the same runs in the same order, the same report.
pub(super) struct Checkpoints<A: Actor> {
    every: u64,
    stack: Vec<Checkpoint<A>>,
    /// Snapshots popped off the stack, whose buffers the next ones reuse (`clone_by_field`).
    spare: Vec<Checkpoint<A>>,
}

struct Checkpoint<A: Actor> {
    sim: Sim<A>,
    driver: AtBoundary,
    /// Points of the path (choices answered and events picked) consumed when it was taken.
    consumed: usize,
}

impl<A: Actor + Clone> Checkpoints<A> {
    /// `every == 0`: no snapshots, every run replays from the start.
    pub fn new(every: u64) -> Self {
        Checkpoints { every, stack: Vec::new(), spare: Vec::new() }
    }

    /// Forget every snapshot (before a worker takes up another subtree).
    pub fn clear(&mut self) {
        self.spare.append(&mut self.stack);
    }

    /// Snapshot the run at an event boundary.
    fn take(&mut self, sim: &Sim<A>, driver: &AtBoundary, consumed: usize) {
        let c = match self.spare.pop() {
            Some(mut c) => {
                c.sim.clone_from(sim);
                c.driver.clone_from(driver);
                c.consumed = consumed;
                c
            }
            None => Checkpoint { sim: sim.clone(), driver: driver.clone(), consumed },
        };
        self.stack.push(c);
    }

    /// Before the run of a path whose point `changed` the search just moved (`None`: the first
    /// run): drop the snapshots taken after that point was consumed, and put `sim` in the state
    /// of the last one left and `at` in what its driver knew then; false (neither touched) if
    /// the run must start from the beginning. `tape` is the path's choice answers.
    pub fn restore(&mut self, sim: &mut Sim<A>, changed: Option<usize>, tape: &[u32], at: &mut AtBoundary) -> bool {
        let Some(changed) = changed else { return false };
        while self.stack.last().is_some_and(|c| c.consumed > changed) {
            self.spare.extend(self.stack.pop());
        }
        let Some(c) = self.stack.last() else { return false };
        sim.clone_from(&c.sim);
        sim.choices.retape(tape);
        at.clone_from(&c.driver);
        true
    }
}

impl<'a, A: Actor + Clone> RunDriver<'a, A> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        bounds: &'a Bounds,
        table: &'a StateTable,
        relevant: ObsKey<'a, A::Obs>,
        prune: bool,
        reduce: bool,
        one_per_key: bool,
        view: HistoryView,
        prefix_picks: &'a [u32],
        prefix_choices: usize,
        checkpoints: &'a mut Checkpoints<A>,
        buffers: &'a mut DriverBuffers,
        resumed: bool,
    ) -> Self {
        let DriverBuffers { at, new_picks, spare_sleep } = buffers;
        if !resumed {
            // The start of a run (a resumed one has its snapshot's, from `Checkpoints::restore`).
            at.picks_done = 0;
            at.sleep.clear();
            at.history.view = view;
            at.history.seen = 0;
            at.history.chains.clear();
            at.faults = [0; FAULT_KINDS];
            at.faults_counted = 0;
            at.events = 0;
        }
        new_picks.clear();
        RunDriver {
            bounds,
            table,
            relevant,
            prune,
            reduce,
            one_per_key,
            prefix_picks,
            prefix_choices,
            checkpoints,
            new_picks,
            at,
            cut: None,
            spare_sleep,
        }
    }

    /// Events the run took so far.
    pub fn events(&self) -> u64 {
        self.at.events
    }

    /// The key of the simulator's state as the search compares states: everything the rest of
    /// the run depends on (`Sim::state_hash`), what the checker reads of the history so far, and
    /// the fault budget spent (a state with budget left can reach more).
    pub fn state_key(&mut self, sim: &Sim<A>) -> u64 {
        self.count_faults(sim.choices.recorded());
        self.key(sim, true)
    }

    /// A complete run's final state for `ExhaustiveReport::final_states`: `state_key` without
    /// the fault budget spent, which no event is left to read, so that searches with different
    /// budgets compare.
    pub fn final_key(&mut self, sim: &Sim<A>) -> u64 {
        self.key(sim, false)
    }

    /// The simulator's state and what the checker reads of the history, and (`budget`) the
    /// fault budget spent.
    fn key(&mut self, sim: &Sim<A>, budget: bool) -> u64 {
        self.at.history.update(sim.history(), self.relevant);
        let mut h = StableHasher::default();
        h.write_u64(sim.state_hash());
        self.at.history.chains.hash(&mut h);
        if budget {
            self.at.faults.hash(&mut h);
        }
        h.finish()
    }

    fn count_faults(&mut self, recorded: &[Choice]) {
        for c in &recorded[self.at.faults_counted..] {
            if let Some(slot) = fault_slot(c.kind) {
                self.at.faults[slot] += (c.value != 0) as u32;
            }
        }
        self.at.faults_counted = recorded.len();
    }

    /// Not to be tried here: asleep (the reduction), or covered by a sibling (`EventInfo::covered`).
    fn asleep(&self, e: &EventInfo) -> bool {
        e.covered || self.at.sleep.iter().any(|z| z.key == e.key)
    }

    /// Which eligible event runs next: the prefix's pick while replaying, else the first one
    /// awake. `None` if all are asleep.
    fn pick(&mut self, eligible: &[EventInfo], pos: usize) -> Option<usize> {
        if eligible.len() == 1 {
            return (!self.asleep(&eligible[0])).then_some(0);
        }
        if let Some(&v) = self.prefix_picks.get(self.at.picks_done) {
            self.at.picks_done += 1;
            return Some(v as usize);
        }
        // An event with the same key as an earlier sibling is that sibling up to labels: what
        // it leads to is explored (or covered) from the sibling (see `symmetry`).
        let twin = |i: usize| self.one_per_key && eligible[..i].iter().any(|o| o.key == eligible[i].key);
        let asleep: Asleep = eligible.iter().enumerate().map(|(i, e)| self.asleep(e) || twin(i)).collect();
        let v = (0..eligible.len()).find(|&i| !asleep.get(i))?;
        self.new_picks.push(NewPick { pos, bound: eligible.len() as u32, value: v as u32, asleep });
        self.at.picks_done += 1;
        Some(v)
    }

    /// Sleep sets (Godefroid): the siblings explored before this pick, and what was asleep
    /// already, stay asleep after it as long as they are independent of it — any run that
    /// runs them next is a reordering of one explored in their own subtree.
    fn update_sleep(&mut self, eligible: &[EventInfo], v: usize) {
        let e = eligible[v];
        let next = &mut self.spare_sleep;
        next.clear();
        next.extend(self.at.sleep.iter().chain(&eligible[..v]).filter(|z| z.independent(&e)));
        next.sort_unstable_by_key(|z| z.key);
        next.dedup_by_key(|z| z.key);
        std::mem::swap(&mut self.at.sleep, next);
    }
}

impl<A: Actor + Clone> Driver<A> for RunDriver<'_, A> {
    fn next(&mut self, sim: &Sim<A>, eligible: &[EventInfo]) -> Step {
        if self.at.events >= self.bounds.max_events {
            self.cut = Some(Cut::Truncated);
            return Step::Stop;
        }
        // States on the replayed prefix were recorded by the run that first took it.
        let replaying = self.at.picks_done < self.prefix_picks.len() || sim.choices.count() < self.prefix_choices;
        if !replaying && self.checkpoints.every > 0 && self.at.events.is_multiple_of(self.checkpoints.every) {
            let consumed = sim.choices.count() + self.at.picks_done;
            self.checkpoints.take(sim, self.at, consumed);
        }
        if !replaying {
            let key = self.state_key(sim);
            let depth = if self.bounds.max_events == u64::MAX { 0 } else { self.at.events };
            if self.table.visit(key, depth, &self.at.sleep) && self.prune {
                self.cut = Some(Cut::Pruned);
                return Step::Stop;
            }
        }
        let Some(v) = self.pick(eligible, sim.choices.count()) else {
            self.cut = Some(Cut::Blocked);
            return Step::Stop;
        };
        if self.reduce {
            self.update_sleep(eligible, v);
        }
        self.at.events += 1;
        Step::Run(v)
    }
}
