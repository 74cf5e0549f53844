//! The search on several threads, by splitting the choice tree into subtrees.
//!
//! Why this shape: a search is a depth-first walk of the choice tree, where every path is a
//! run, so disjoint subtrees are independent work. Each worker walks one subtree at a time with
//! its own simulator and snapshots (a subtree is a path whose first points are fixed: the
//! worker backtracks only the points past its *floor*). When a worker runs dry it says so, and
//! a busy worker hands it the values it has not tried yet at the shallowest point of its path
//! that has some left (the biggest piece it can give; stealing from the top, as in
//! work-stealing schedulers), then keeps the rest. Runs start and end at points, so nothing is
//! searched twice or skipped: the subtrees always partition what is left.
//!
//! The state table is shared (`StateTable`: sharded locks), so a state reached first by one
//! worker prunes it for all. Pruning against a state another worker is still exploring is sound
//! because that worker finishes it (only `max_runs` or a violation stops a search early, and
//! such a search proves nothing). Which visit of a state comes first, though, depends on how
//! the threads run: the set of states reached (every state within the bounds) and whether
//! anything violates do not, but which runs get judged does, hence the counts of runs and
//! interleavings and the shortest counterexample among them. `check_exhaustive` therefore keeps
//! the verdict and the counterexample (and the counts, where they allow it) independent of the
//! thread count (see there). A fixed split with a table per subtree would be deterministic by
//! construction, but it explores a state once in every subtree that reaches it, and the
//! subtrees of one search can share many states (e.g. the same request order reached by
//! different delivery orders).

use super::driver::{Checkpoints, DriverBuffers, RunDriver};
use super::table::StateTable;
use super::tree::{self, Point};
use super::{ExhaustiveOptions, ExhaustiveReport, HistoryView};
use crate::engine::Sim;
use crate::model::Model;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

/// A subtree: the runs whose decisions start with `path`, where the points from `floor` on may
/// still change (the ones before it are another worker's to change).
struct Item {
    path: Vec<Point>,
    floor: usize,
}

/// Subtrees waiting for a worker, and how many workers are waiting for one.
struct Queue {
    items: Vec<Item>,
    idle: usize,
    done: bool,
}

struct Shared<'a> {
    opts: &'a ExhaustiveOptions,
    threads: usize,
    table: StateTable,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// `Queue::idle`, readable without the lock (busy workers look at it after every run).
    hungry: AtomicUsize,
    /// Set when the search stops early (`max_runs`, `stop_at_first`, `stop_at_violation`).
    stopped: AtomicBool,
    /// Runs claimed, for `max_runs`.
    runs: AtomicU64,
    stop_at_violation: bool,
    progress: Option<&'a AtomicU64>,
}

impl Shared<'_> {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next subtree to search; `None` when the search is over: stopped, or every worker
    /// idle with nothing queued (no busy worker is left to split off more).
    fn take(&self) -> Option<Item> {
        let mut q = self.queue();
        loop {
            if q.done {
                return None;
            }
            if let Some(item) = q.items.pop() {
                return Some(item);
            }
            q.idle += 1;
            self.hungry.store(q.idle, Ordering::Relaxed);
            if q.idle == self.threads {
                q.done = true;
                self.wake.notify_all();
                return None;
            }
            q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
            q.idle -= 1;
            self.hungry.store(q.idle, Ordering::Relaxed);
        }
    }

    fn give(&self, item: Item) {
        self.queue().items.push(item);
        self.wake.notify_one();
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
        self.queue().done = true;
        self.wake.notify_all();
    }
}

/// Search with `threads` workers; `stop_at_violation` stops every worker at the first violation
/// any of them finds. Returns the workers' reports merged, with the states and the exhaustion;
/// the caller fills in the options and timings.
pub(super) fn search<M: Model>(
    model: &M,
    opts: &ExhaustiveOptions,
    threads: usize,
    stop_at_violation: bool,
    progress: Option<&AtomicU64>,
) -> ExhaustiveReport
where
    M::Actor: Clone,
{
    let threads = threads.max(1);
    let shared = Shared {
        opts,
        threads,
        table: StateTable::default(),
        queue: Mutex::new(Queue { items: vec![Item { path: Vec::new(), floor: 0 }], idle: 0, done: false }),
        wake: Condvar::new(),
        hungry: AtomicUsize::new(0),
        stopped: AtomicBool::new(false),
        runs: AtomicU64::new(0),
        stop_at_violation,
        progress,
    };
    let parts: Vec<(ExhaustiveReport, BTreeSet<u64>)> = if threads == 1 {
        vec![worker(model, &shared)]
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| worker(model, &shared))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))).collect()
        })
    };
    let mut report = ExhaustiveReport::default();
    let mut finals = BTreeSet::new();
    for (r, f) in parts {
        report.merge(r);
        finals.extend(f);
    }
    report.exhausted = !shared.stopped.load(Ordering::Relaxed);
    report.distinct_states = shared.table.len();
    report.final_states = finals.into_iter().collect();
    report
}

/// One worker: search subtrees until there are none left. Its report holds the counts of the
/// runs it made; its set, the final states it reached (if collected).
fn worker<M: Model>(model: &M, sh: &Shared) -> (ExhaustiveReport, BTreeSet<u64>)
where
    M::Actor: Clone,
{
    let opts = sh.opts;
    let _erasing = super::symmetry::Erasing::new(opts.symmetry);
    let mut sim = Sim::new();
    opts.semantics.apply(&mut sim);
    sim.choices.set_recording(true);
    let reduce = opts.reduction && opts.history != HistoryView::Ordered;
    let mut report = ExhaustiveReport::default();
    let mut finals = BTreeSet::new();
    let mut checkpoints = Checkpoints::new(opts.snapshot_every_events);
    let relevant = |e: &crate::history::Entry<_>| model.observation_key(e);
    // A run's choice answers and event picks, rebuilt from its path (buffers kept across runs).
    let (mut tape, mut picks) = (Vec::new(), Vec::new());
    let mut buffers = DriverBuffers::default();
    while let Some(Item { mut path, mut floor }) = sh.take() {
        // The path is replayed up to its last point, which the last backtrack (or the split
        // that made this subtree) changed.
        checkpoints.clear();
        loop {
            // This run's number: past `max_runs` it is not made; at it, the search stops after it.
            let number = sh.runs.fetch_add(1, Ordering::Relaxed) + 1;
            if number > opts.bounds.max_runs {
                sh.stop();
                break;
            }
            tape.clear();
            tape.extend(path.iter().filter(|p| p.kind.is_some()).map(|p| p.value));
            picks.clear();
            picks.extend(path.iter().filter(|p| p.kind.is_none()).map(|p| p.value));
            let resumed = checkpoints.restore(&mut sim, path.len().checked_sub(1), &tape, &mut buffers.at);
            let mut driver = RunDriver::new(
                &opts.bounds,
                &sh.table,
                &relevant,
                opts.prune_states,
                reduce,
                opts.symmetry,
                opts.history,
                &picks,
                tape.len(),
                &mut checkpoints,
                &mut buffers,
                resumed,
            );
            let outcome = if resumed {
                sim.resume_driven(model, &mut driver)
            } else {
                sim.choices.reset_tape(&tape);
                sim.run_driven(model, &mut driver)
            };
            if outcome.is_some() {
                let key = driver.state_key(&sim);
                driver.table.note_final(key);
                if opts.collect_final_states {
                    finals.insert(driver.final_key(&sim));
                }
            }
            let (events, cut) = (driver.events(), driver.cut);
            let known = path.len();
            tree::extend(&mut path, sim.choices.recorded(), tape.len(), driver.new_picks);
            report.sampled_points += path[known..].iter().filter(|p| p.is_sampled(&opts.bounds)).count() as u64;
            report.runs += 1;
            report.max_depth = report.max_depth.max(events);
            report.note_cut(cut);
            if let Some(o) = outcome {
                report.note_complete(o, &path, events);
            }
            if let Some(p) = sh.progress {
                p.fetch_add(1, Ordering::Relaxed);
            }
            if number >= opts.bounds.max_runs || (report.violations > 0 && (opts.stop_at_first || sh.stop_at_violation)) {
                sh.stop();
            }
            if sh.stopped.load(Ordering::Relaxed) || !tree::backtrack(&mut path, floor, &opts.bounds) {
                break;
            }
            if sh.hungry.load(Ordering::Relaxed) > 0 {
                if let Some((given, at)) = tree::split(&path, floor, &opts.bounds) {
                    floor = at + 1;
                    sh.give(Item { path: given, floor: at });
                }
            }
        }
    }
    (report, finals)
}
