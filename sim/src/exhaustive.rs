//! # Exhaustive bounded checking
//!
//! Seeded exploration samples runs; `check_exhaustive` enumerates *every* run of a model within
//! bounds — at most so many lost messages, duplicates, crashes, pauses and partitions, and
//! optionally a depth in events — by depth-first search over the choice source. Every
//! nondeterministic decision of a run is one choice, and 0 is always the simplest answer, so the
//! search is stateless: run a prefix of choices, let every later choice answer 0, record what
//! was asked, then change the deepest choice that has a value left and run again. Two
//! techniques keep the tree small. *State pruning* stops a run that reaches a state an earlier
//! run already explored from (the key is every actor, every log, the pending events, the clock,
//! the fault budget spent, and what the checker will read of the history). *Partial-order
//! reduction* (sleep sets) explores one order of events that commute — events at different
//! nodes that do not move the clock — instead of all of them. Either can be switched off, and
//! the tests check that reduction loses no final state. *Symmetry* (`symmetry`) leaves out of
//! the state key the fields a model marks as labels (values no handler reads, such as which copy
//! of a concurrently fired request a message carries), so states that differ only by a
//! permutation of them are one state.
//!
//! Time: enumerating every delay value explodes, so the *untimed* semantics abstracts it to the
//! order of events. A message may be delivered at any moment after it is sent (before or after
//! any timer, in any order with other messages); crashes, pauses and partitions may strike at
//! any moment of the fault phase; timers, restarts and ends of pauses and partitions still fire
//! in deadline order, and they alone move the clock — so designs that depend on timers being
//! ordered (TTLs, leases, timeouts) keep that order. The orders of events this allows are a
//! superset of the timed model's, which makes a pass sound for safety invariants; it can report
//! runs a bounded-delay network would not produce, and handlers that read the clock see the
//! latest deadline reached rather than a message's arrival time. Liveness and time-bound
//! invariants (recovery, availability) belong to the *timed* semantics, which enumerates the
//! model's own choices as they are (give it small delay ranges). Between the two, the *bounded*
//! semantics keeps untimed's asynchrony within the model's delay bound (a message may arrive at
//! any moment up to `delay_us_max` after its send, and no timer fires past the deadline of one
//! still undelivered): every timed run is one of its runs, far fewer untimed ones are. Its
//! fault `Bounds::max_late` puts the two on one scale: up to that many copies may be *late*,
//! due at no deadline, as every message is untimed. A late copy is a choice drawn at its send
//! on any link, reliable ones too (a TCP connection loses nothing but delivers a retransmitted
//! segment late), in the semantics `BoundedLate` that such a search runs in (its tapes hold the
//! choice; plain bounded tapes do not). A late copy delivered before its deadline is what its
//! on-time twin does, so the search does not try it (`EventInfo::covered`): only lateness a
//! timer overtakes costs states. A restart may be late the same way (past
//! `restart_delay_us_max`, as an untimed one may come), from the same budget. With as many late
//! events as a run has, the bounded search reaches untimed's final states (tests check it, with
//! and without crashes), and one or two already find the
//! late-copy bugs untimed finds. In all of them, a choice over more than
//! `Bounds::max_values` values (a crash's restart delay, a pause's length, a client's jitter) is
//! explored at that many evenly spread values, ends included; the report counts such points.
//!
//! The report gives complete runs (interleavings), distinct states, the maximum depth, states
//! per second, the semantics used, and the first counterexample: the shortest violating run
//! found (then the lexicographically least tape), as a tape that `Sim::run_tape` replays once
//! the simulator is in the same semantics (`Semantics::apply`, or `replay`). The result depends
//! only on the model and the options, not on the number of threads (`ExhaustiveOptions::threads`:
//! workers search disjoint subtrees of the choice tree and share the state table; see
//! `check_exhaustive` for which counts a passing search on several threads may vary).
//!
//! Soundness of state pruning: two states with the same key have the same futures, because the
//! key holds all the simulator state the rest of a run depends on (`Sim::state_hash`; it leaves
//! out counters and sequence numbers, which no future reads, names timers by content rather
//! than by id (`timer_names`), and keys a timer that can no longer run a handler only as a stop
//! of the clock at its deadline) and the fault budget left. Untimed, events that can do nothing
//! are dropped as soon as they can do nothing: a message to an incarnation that has crashed
//! since (lost whenever it arrives) and a dead timer whose deadline is reached. Verdicts,
//! though, are computed from the history, so the key must also hold what the checker reads of
//! the past: `HistoryView` says what that is. `Ordered` (the default) keys the whole history
//! with its times and order — always sound, prunes least, and disables the reduction
//! (commuting two nodes' events reorders their observations). `PerNode` keys each node's own
//! sequence of observations: sound when the verdict does not depend on how different
//! nodes' observations interleave (counts, per-operation facts, durable state). `Relevant` keys
//! each node's sequence of `Model::observation_key`s: sound when the model keeps that method's
//! contract (the verdict is a function of the final state and those sequences); it merges the
//! states `PerNode` keeps apart only by what no checker reads, such as observation times.
//! `Ignored` keys no history: sound when the checker reads only the final actors and logs.
//! Checkers must not read `RunView::stats` under pruning (counters are not in the key).

mod driver;
mod parallel;
mod symmetry;
mod table;
pub(crate) mod timer_names;
mod tree;

pub use symmetry::labels_erased;
pub(crate) use symmetry::Erasing;

use crate::engine::{Outcome, Sim};
use crate::history::{RunEnd, Violation};
use crate::model::Model;
use driver::Cut;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::Instant;
use tree::Point;

/// How time is explored.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Semantics {
    /// The model's own timed choices, enumerated as they are (keep delay ranges small).
    Timed,
    /// Asynchronous: any pending delivery may happen next; timers fire in deadline order.
    #[default]
    Untimed,
    /// Asynchronous within the delay bound: a message may be delivered at any moment up to
    /// `delay_us_max` after its send, and no timer fires past an undelivered message's deadline.
    Bounded,
    /// Bounded, and each copy sent and each restart may be late: due at no deadline, it may come
    /// at any later moment (up to `Bounds::max_late` late events a run). `check_exhaustive`
    /// searches `Bounded` with a late budget in it: every copy and restart then draws a `Late`
    /// choice, which a plain bounded tape does not hold (so bounded tapes recorded without the
    /// budget replay as they were, and a search without it pays nothing for it).
    BoundedLate,
}

impl Semantics {
    /// Put a simulator in this semantics (a tape replays only in the semantics it was found in).
    pub fn apply<A: crate::Actor>(self, sim: &mut Sim<A>) {
        sim.set_untimed(self != Semantics::Timed);
        sim.set_bounded(self.is_bounded());
        sim.set_late(self == Semantics::BoundedLate);
    }
    /// Bounded, with or without late messages.
    pub fn is_bounded(self) -> bool {
        matches!(self, Semantics::Bounded | Semantics::BoundedLate)
    }
    /// The semantics a search with these bounds runs in: `BoundedLate` for `Bounded` with a
    /// late budget.
    pub fn with_late(self, max_late: u32) -> Semantics {
        match self {
            Semantics::Bounded if max_late > 0 => Semantics::BoundedLate,
            s => s,
        }
    }
    /// One line for reports.
    pub fn describe(self) -> &'static str {
        match self {
            Semantics::Timed => "timed: the model's delays and fault times, enumerated",
            Semantics::Untimed => "untimed (asynchronous): any pending delivery or restart may happen next; timers ordered by deadline",
            Semantics::Bounded => {
                "bounded (asynchronous within the delay bounds): a message may arrive any time up to delay_us_max after its send, a crashed node restart up to restart_delay_us_max after its crash; no timer fires past such a deadline"
            }
            Semantics::BoundedLate => {
                "bounded, with late messages: as bounded (a message arrives by delay_us_max after its send, a restart by restart_delay_us_max after its crash, no timer fires past such a deadline), except that up to --late messages or restarts may come at any later moment"
            }
        }
    }
}

/// What the model's checker reads of the history, which decides what states may be merged.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HistoryView {
    /// The global order and times of observations may matter. Always sound; no reduction.
    #[default]
    Ordered,
    /// Only each node's own sequence of observations (with times) matters.
    PerNode,
    /// The verdict depends only on the final actors and logs.
    Ignored,
    /// Only each node's own sequence of what the checker reads of its observations, as the
    /// model keys them (`Model::observation_key`: observations no verdict reads are left out,
    /// and so are the parts of the others no verdict reads, such as their times).
    Relevant,
}

/// Limits of the search. A fault is explored only where the model makes it possible (a
/// probability strictly between 0 and 1 on a node or link that can suffer it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Bounds {
    pub max_lost: u32,
    pub max_duplicated: u32,
    pub max_crashes: u32,
    pub max_pauses: u32,
    pub max_partitions: u32,
    /// Messages that may arrive past their delay bound, and restarts that may come past theirs,
    /// at any later moment (bounded semantics only: untimed lets every message and restart be
    /// late, timed draws its delays).
    pub max_late: u32,
    /// Events per run; a run cut here is counted as truncated and not judged.
    pub max_events: u64,
    /// A choice over more values than this is explored at this many, evenly spread.
    pub max_values: u32,
    /// Stop after this many runs (the report then says the search was not exhausted).
    pub max_runs: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_lost: 0,
            max_duplicated: 0,
            max_crashes: 0,
            max_pauses: 0,
            max_partitions: 0,
            max_late: 0,
            max_events: u64::MAX,
            max_values: 4,
            max_runs: u64::MAX,
        }
    }
}

impl Bounds {
    /// The budget of the fault kind in slot `slot` (see `tree::fault_slot`).
    fn fault_limit(&self, slot: usize) -> u32 {
        [self.max_lost, self.max_duplicated, self.max_crashes, self.max_pauses, self.max_partitions, self.max_late][slot]
    }
}

/// Everything a check is asked to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExhaustiveOptions {
    pub semantics: Semantics,
    pub bounds: Bounds,
    /// Merge runs that reach a state already explored.
    pub prune_states: bool,
    /// Partial-order reduction (sleep sets); effective only if `history` is not `Ordered`.
    pub reduction: bool,
    /// Symmetry reduction: state keys leave out the model's labels (see `labels_erased`), and
    /// of events with the same key only the first is tried at a choice point.
    pub symmetry: bool,
    pub history: HistoryView,
    /// Stop at the first violation (it is then the first in search order, not the shortest).
    pub stop_at_first: bool,
    /// Collect the key of every complete run's final state (for tests comparing searches).
    pub collect_final_states: bool,
    /// Snapshot the run every N events so the next run resumes from the last snapshot before
    /// the point it changes instead of replaying from the start (0: always replay). Speed only:
    /// the search and its report are the same for every value.
    pub snapshot_every_events: u64,
    /// Worker threads (0: one per core). The verdict, the counterexample and the distinct
    /// states are the same for every number; `check_exhaustive` says which counts may differ.
    pub threads: usize,
}

impl Default for ExhaustiveOptions {
    fn default() -> Self {
        ExhaustiveOptions {
            semantics: Semantics::Untimed,
            bounds: Bounds::default(),
            prune_states: true,
            reduction: true,
            symmetry: true,
            history: HistoryView::Ordered,
            stop_at_first: false,
            collect_final_states: false,
            snapshot_every_events: SNAPSHOT_EVERY_EVENTS,
            threads: 1,
        }
    }
}

impl ExhaustiveOptions {
    /// The worker threads to use: `threads`, or one per core if it is 0.
    pub fn threads(&self) -> usize {
        match self.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// Snapshot interval of a search (see `ExhaustiveOptions::snapshot_every_events`): a clone of
/// the simulator costs about as much as replaying a handful of events.
pub const SNAPSHOT_EVERY_EVENTS: u64 = 8;

/// A violating run: replay `tape` with `replay` (or `Sim::run_tape` in the same semantics).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counterexample {
    /// Trailing zeros dropped (past its end a tape answers 0).
    pub tape: Vec<u32>,
    pub violation: Violation,
    /// Events the run took.
    pub events: u64,
    pub history_hash: u64,
}

/// What a check found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExhaustiveReport {
    pub semantics: Semantics,
    pub prune_states: bool,
    /// Whether the partial-order reduction was in effect.
    pub reduction: bool,
    /// Whether labels were erased from state keys (`ExhaustiveOptions::symmetry`).
    #[serde(default)]
    pub symmetry: bool,
    pub history: HistoryView,
    /// Complete runs, judged by the checker.
    pub interleavings: u64,
    /// Every run started, complete or cut short.
    pub runs: u64,
    /// Runs stopped at a state already explored.
    pub pruned: u64,
    /// Runs stopped because every next event was asleep (covered by a reordering).
    pub sleep_blocked: u64,
    /// Runs cut at `Bounds::max_events` (not judged).
    pub truncated: u64,
    /// Complete runs that ended at the time limit with events left.
    pub time_limited: u64,
    pub distinct_states: u64,
    /// The most events any run took.
    pub max_depth: u64,
    /// Choice points explored at sampled values only (see `Bounds::max_values`).
    pub sampled_points: u64,
    /// The whole bounded space was searched (no run limit hit, not stopped at a violation).
    pub exhausted: bool,
    pub violations: u64,
    pub by_invariant: BTreeMap<String, u64>,
    pub first: Option<Counterexample>,
    /// Sorted keys of complete runs' final states, if collected (without the fault budget
    /// spent, so that searches with different budgets compare).
    pub final_states: Vec<u64>,
    pub elapsed_s: f64,
    pub states_per_sec: f64,
}

impl ExhaustiveReport {
    /// The report without its timings, for comparing searches.
    pub fn untimed_fields(&self) -> ExhaustiveReport {
        ExhaustiveReport { elapsed_s: 0.0, states_per_sec: 0.0, ..self.clone() }
    }

    fn note_cut(&mut self, cut: Option<Cut>) {
        match cut {
            Some(Cut::Pruned) => self.pruned += 1,
            Some(Cut::Blocked) => self.sleep_blocked += 1,
            Some(Cut::Truncated) => self.truncated += 1,
            None => {}
        }
    }

    /// Add the counts of another worker's runs (the caller sets the states and exhaustion).
    fn merge(&mut self, o: ExhaustiveReport) {
        self.interleavings += o.interleavings;
        self.runs += o.runs;
        self.pruned += o.pruned;
        self.sleep_blocked += o.sleep_blocked;
        self.truncated += o.truncated;
        self.time_limited += o.time_limited;
        self.max_depth = self.max_depth.max(o.max_depth);
        self.sampled_points += o.sampled_points;
        self.violations += o.violations;
        for (k, n) in o.by_invariant {
            *self.by_invariant.entry(k).or_default() += n;
        }
        if let Some(c) = o.first {
            self.offer(c);
        }
    }

    /// Keep `c` if it is the shortest, then least, tape so far.
    fn offer(&mut self, c: Counterexample) {
        if !matches!(&self.first, Some(f) if (f.tape.len(), &f.tape) <= (c.tape.len(), &c.tape)) {
            self.first = Some(c);
        }
    }

    /// Judge a complete run whose decisions are `path`.
    fn note_complete(&mut self, o: Outcome, path: &[Point], events: u64) {
        self.interleavings += 1;
        self.time_limited += (o.end == RunEnd::TimeLimit) as u64;
        let Some(v) = o.verdict.violation() else { return };
        self.violations += 1;
        for i in v.invariants() {
            *self.by_invariant.entry(i.to_string()).or_default() += 1;
        }
        let mut tape: Vec<u32> = path.iter().map(|p| p.value).collect();
        while tape.last() == Some(&0) {
            tape.pop();
        }
        if !matches!(&self.first, Some(f) if (f.tape.len(), &f.tape) <= (tape.len(), &tape)) {
            self.first = Some(Counterexample { tape, violation: v.clone(), events, history_hash: o.history_hash });
        }
    }
}

/// Search every run of `model` within `opts`. `progress`, if given, counts runs started.
///
/// On several threads (`ExhaustiveOptions::threads`) the verdict and the counterexample are
/// those of one thread, always. With state pruning off the whole report is (timings aside):
/// every worker judges a share of one fixed set of runs. With it on, which runs are judged
/// depends on which worker reaches a shared state first (see `parallel`), so the parallel
/// search serves as a proof: it stops at its first violation, and then the single-threaded
/// search makes the report (counts and counterexample exactly as with `threads: 1`). A search
/// that finds nothing reports the parallel search's counts: `exhausted`, `distinct_states` and
/// `final_states` are the same for every thread count (every state within the bounds is
/// reached, whoever reaches it); `interleavings`, `runs`, `pruned`, `sleep_blocked`,
/// `truncated`, `time_limited`, `max_depth` and `sampled_points` can differ from run to run on
/// several threads, when the reduction is on. Without it (or under the ordered view) and with no
/// depth bound, they cannot, `max_depth` aside: every state is then explored exactly once, from
/// whichever visit reaches it first, and each count is a sum over the states of what leaving
/// that state finds, which depends on the state alone (with sleep sets, a state is explored
/// again when reached with fewer events asleep, which depends on the order of visits). A search
/// cut short by `max_runs` on several threads judges different runs each time.
pub fn check_exhaustive<M: Model>(model: &M, opts: &ExhaustiveOptions, progress: Option<&AtomicU64>) -> ExhaustiveReport
where
    M::Actor: Clone,
{
    let started = Instant::now();
    let opts = &ExhaustiveOptions { semantics: opts.semantics.with_late(opts.bounds.max_late), ..opts.clone() };
    let threads = opts.threads();
    let racy = threads > 1 && (opts.prune_states || opts.stop_at_first);
    let mut report = parallel::search(model, opts, threads, racy, progress);
    if racy && report.violations > 0 {
        report = parallel::search(model, opts, 1, false, progress);
    }
    report.semantics = opts.semantics;
    report.prune_states = opts.prune_states;
    report.reduction = opts.reduction && opts.history != HistoryView::Ordered;
    report.symmetry = opts.symmetry;
    report.history = opts.history;
    report.elapsed_s = started.elapsed().as_secs_f64();
    report.states_per_sec = report.distinct_states as f64 / report.elapsed_s.max(1e-9);
    report
}

/// Replay a tape found by `check_exhaustive` in the semantics it was found in.
pub fn replay<M: Model>(model: &M, semantics: Semantics, tape: &[u32]) -> Outcome {
    let mut sim = Sim::new();
    semantics.apply(&mut sim);
    sim.run_tape(model, tape)
}
