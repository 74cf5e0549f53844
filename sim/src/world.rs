//! The simulated world, written once for both backends. The native engine and the madsim
//! backend differ only in how time passes and events are ordered; what a fault plan is, what a
//! message's link does to it, what a handler's local effects do, what a crash takes, and how a
//! finished run is judged live here, so the two cannot drift apart (they did: madsim's
//! partitions once cut links the scenario declares reliable).
//!
//! A backend owns a [`World`] and calls it at each event: `send_fate` when a handler sends,
//! `refused` when a message arrives, `apply_local` for the effects that touch only the node,
//! `crash` / `restart` / `pause` / `cut_start` / `cut_end` when a planned fault strikes, and
//! `judge` at the end. Every random decision goes through the run's `Choices`, passed in.

pub mod links;
pub mod plan;

use crate::actor::{Actor, Cmd, NodeId, TimerId};
use crate::choices::Choices;
use crate::faults::{FaultProfile, SimConfig};
use crate::history::{history_hash, Entry, RunEnd, Stats, Verdict, Violation};
use crate::model::{Log, Model, RunView};
use crate::trace::{CrashKind, CutDir, FaultKind, FaultNote, LossCause, TraceEvent, TraceKind};
use links::{Fate, Links};
pub use plan::PlannedFault;

/// The result of one run, on either backend.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub end: RunEnd,
    pub stats: Stats,
    pub history_hash: u64,
}

/// A node's life: up or down, which incarnation, paused until when.
#[derive(Clone, Copy, Default)]
pub struct Life {
    pub down: bool,
    /// Bumped at every crash: timers and connections of an earlier incarnation are void.
    pub epoch: u64,
    pub paused_until_us: u64,
}

/// What becomes of a message that arrives (`World::admit`).
pub enum Admit {
    /// Lost (recorded): the receiver is down or restarted since, or a partition cuts the link.
    Refused,
    /// The receiver is paused: it comes again then.
    PausedUntil(u64),
    /// Delivered now (counted and traced): run the receiver's handler.
    Now,
}

/// Everything a run's outcome is made of, whichever scheduler moves it.
pub struct World<A: Actor> {
    pub nodes: Vec<A>,
    pub life: Vec<Life>,
    pub stores: Vec<Log<A::Record>>,
    pub history: Vec<Entry<A::Obs>>,
    pub stats: Stats,
    /// The full timeline, when asked for (replay); `None` on the bulk path.
    pub trace: Option<Vec<TraceEvent>>,
    /// The faults that struck, in order (kept on the bulk path too: they are rare).
    pub fault_log: Vec<FaultNote>,
    pub links: Links,
    /// The profile this run uses (drawn per seed in swarm mode).
    pub faults: FaultProfile,
    /// The crashes, pauses and partitions drawn for this run.
    pub plan: Vec<PlannedFault>,
    pub cancelled: Cancelled,
}
crate::clone_by_field!(World<A> {
    nodes, life, stores, history, stats, trace, fault_log, links, faults, plan, cancelled
} where A: Actor + Clone);

impl<A: Actor> Default for World<A> {
    fn default() -> Self {
        World {
            nodes: Vec::new(),
            life: Vec::new(),
            stores: Vec::new(),
            history: Vec::new(),
            stats: Stats::default(),
            trace: None,
            fault_log: Vec::new(),
            links: Links::default(),
            faults: FaultProfile::default(),
            plan: Vec::new(),
            cancelled: Cancelled::default(),
        }
    }
}

impl<A: Actor> World<A> {
    /// A new run of `model`: fresh actors (via `Model::rebuild`, which may reuse the last
    /// run's), empty logs and history, every buffer kept.
    pub fn reset<M: Model<Actor = A>>(&mut self, model: &M) {
        let cfg = model.config();
        model.rebuild(&mut self.nodes);
        assert_eq!(self.nodes.len(), cfg.nodes.len(), "Model::build must push one actor per configured node");
        self.life.clear();
        self.life.resize(cfg.nodes.len(), Life::default());
        self.stores.truncate(cfg.nodes.len());
        self.stores.iter_mut().for_each(Log::clear);
        self.stores.resize_with(cfg.nodes.len(), Log::default);
        self.links.reset(&cfg.nodes);
        self.history.clear();
        self.fault_log.clear();
        self.plan.clear();
        self.cancelled.clear();
        self.stats = Stats::default();
        if let Some(t) = &mut self.trace {
            t.clear();
        }
    }

    /// Draw the run's fault profile (swarm mode) and its fault plan: the first choices of a run,
    /// on either backend.
    pub fn draw_faults(&mut self, cfg: &SimConfig, untimed: bool, choices: &mut Choices) {
        self.faults = if cfg.swarm { cfg.faults.swarm(choices) } else { cfg.faults.clone() };
        plan::draw(&cfg.nodes, &self.faults, &self.links, untimed, choices, &mut self.plan);
    }

    /// Append to the trace if tracing is on; `what` is only built then (it may format).
    #[inline]
    pub fn note(&mut self, at_us: u64, node: NodeId, what: impl FnOnce() -> TraceKind) {
        if let Some(t) = &mut self.trace {
            t.push(TraceEvent { at_us, node, kind: what() });
        }
    }

    pub fn fault(&mut self, at_us: u64, node: NodeId, kind: FaultKind) {
        self.fault_log.push(FaultNote { at_us, node, kind });
    }

    /// A handler of `from` sends `msg` to `to`: the link's fate, recorded. `None`: lost;
    /// `Some(duplicated)`: the backend carries one copy, or two.
    #[inline(always)]
    pub fn send_fate(&mut self, now_us: u64, from: NodeId, to: NodeId, msg: &A::Msg, choices: &mut Choices) -> Option<bool> {
        assert!(to < self.nodes.len(), "node {from} sent to node {to}, which does not exist");
        self.stats.messages_sent += 1;
        match self.links.fate(&self.faults, now_us, from, to, choices) {
            Fate::Lost => {
                self.stats.messages_lost += 1;
                self.note(now_us, from, || TraceKind::Lose { to, msg: format!("{msg:?}"), cause: LossCause::Network });
                self.fault(now_us, from, FaultKind::Lost { to, cause: LossCause::Network });
                None
            }
            Fate::Sent { duplicated } => {
                self.note(now_us, from, || TraceKind::Send { to, msg: format!("{msg:?}"), duplicated });
                if duplicated {
                    self.stats.messages_duplicated += 1;
                    self.fault(now_us, from, FaultKind::Duplicated { to });
                }
                Some(duplicated)
            }
        }
    }

    /// A message sent to incarnation `epoch` of `to` arrives: true (and recorded) if it is lost
    /// there, because its receiver is down or restarted since, or a partition cuts the link.
    #[inline(always)]
    pub fn refused(&mut self, now_us: u64, from: NodeId, to: NodeId, epoch: u64, msg: &A::Msg) -> bool {
        let life = self.life[to];
        let cause = if life.down || life.epoch != epoch {
            self.stats.messages_dropped_down += 1;
            LossCause::ReceiverDown
        } else if self.links.cut(from, to) {
            self.stats.messages_lost += 1;
            self.fault(now_us, from, FaultKind::Lost { to, cause: LossCause::Partition });
            LossCause::Partition
        } else {
            return false;
        };
        self.note(now_us, to, || TraceKind::Lose { to, msg: format!("{msg:?}"), cause });
        true
    }

    /// A message sent to incarnation `epoch` of `to`, due at `at_us`, arrives now: refused (see
    /// `refused`), put off while `to` is paused, or delivered now (counted and traced).
    #[inline(always)]
    pub fn admit(&mut self, now_us: u64, at_us: u64, from: NodeId, to: NodeId, epoch: u64, msg: &A::Msg) -> Admit {
        if self.refused(now_us, from, to, epoch, msg) {
            return Admit::Refused;
        }
        let paused_until_us = self.life[to].paused_until_us;
        if paused_until_us > at_us {
            return Admit::PausedUntil(paused_until_us);
        }
        self.stats.messages_delivered += 1;
        self.note(now_us, to, || TraceKind::Deliver { from, msg: format!("{msg:?}") });
        Admit::Now
    }

    /// The effects of a handler that touch only its own node: observe, write, fsync, cancel a
    /// timer. `Send` and `SetTimer` are the backend's (it moves messages and time).
    #[inline(always)]
    pub fn apply_local(&mut self, now_us: u64, node: NodeId, cmd: Cmd<A>) {
        match cmd {
            Cmd::Observe(obs) => self.observe(now_us, node, obs),
            Cmd::Write(rec) => {
                self.stats.writes += 1;
                self.note(now_us, node, || TraceKind::Write { record: format!("{rec:?}") });
                self.stores[node].records.push(rec);
            }
            Cmd::WriteOs(rec) => {
                self.stats.writes += 1;
                self.note(now_us, node, || TraceKind::Write { record: format!("{rec:?}") });
                self.stores[node].write_os(rec);
            }
            Cmd::Fsync => {
                self.stats.fsyncs += 1;
                let durable_records = self.stores[node].fsync();
                self.note(now_us, node, || TraceKind::Fsync { durable_records });
            }
            Cmd::CancelTimer(id) => self.cancelled.insert(id),
            Cmd::Send { .. } | Cmd::SetTimer { .. } => unreachable!("the backend carries sends and timers"),
        }
    }

    /// Append an observation to the history.
    #[inline(always)]
    pub fn observe(&mut self, now_us: u64, node: NodeId, obs: A::Obs) {
        let index = self.history.len();
        self.note(now_us, node, || TraceKind::Observe { obs: format!("{obs:?}"), index });
        push_entry(&mut self.history, now_us, node, obs);
    }

    /// `node` crashes now, unless it is down already: volatile state and the writes `kind`
    /// loses go, and the actor rebuilds from its log. Returns how long until it restarts.
    pub fn crash(&mut self, now_us: u64, node: NodeId, kind: CrashKind, choices: &mut Choices) -> Option<u64> {
        self.go_down(now_us, node, kind).then(|| plan::restart_delay(&self.faults, choices))
    }

    /// Whether a crash of this kind first closes `node`'s connections (`Actor::on_process_exit`):
    /// a process crash of a node that is up. A machine crash closes nothing.
    pub fn closes_connections(&self, node: NodeId, kind: CrashKind) -> bool {
        kind == CrashKind::Process && !self.life[node].down
    }

    /// `crash` without drawing when the node comes back: false if it was down already. (The
    /// untimed engine lets a restart happen at any moment, as it does a delivery.)
    pub fn go_down(&mut self, now_us: u64, node: NodeId, kind: CrashKind) -> bool {
        if self.life[node].down {
            return false;
        }
        self.stats.crashes += 1;
        self.stats.process_crashes += (kind == CrashKind::Process) as u64;
        let life = &mut self.life[node];
        life.down = true;
        life.epoch += 1;
        life.paused_until_us = 0;
        let lost = self.stores[node].crash(kind);
        self.stats.writes_lost += lost;
        self.note(now_us, node, || TraceKind::Crash { writes_lost: lost, kind });
        self.fault(now_us, node, FaultKind::Crash { writes_lost: lost, kind });
        self.nodes[node].on_crash(&self.stores[node].records);
        true
    }

    /// `node` is back up (the backend runs its `on_start`).
    pub fn restart(&mut self, now_us: u64, node: NodeId) {
        self.life[node].down = false;
        self.note(now_us, node, || TraceKind::Restart);
        self.fault(now_us, node, FaultKind::Restart);
    }

    /// `node` stalls until `until_us`, unless it is down. True if it does.
    pub fn pause(&mut self, now_us: u64, node: NodeId, until_us: u64) -> bool {
        if self.life[node].down {
            return false;
        }
        self.stats.pauses += 1;
        let life = &mut self.life[node];
        life.paused_until_us = life.paused_until_us.max(until_us);
        self.note(now_us, node, || TraceKind::Pause { until_us });
        self.fault(now_us, node, FaultKind::Pause { until_us });
        true
    }

    pub fn resume(&mut self, now_us: u64, node: NodeId) {
        self.note(now_us, node, || TraceKind::Resume);
    }

    pub fn cut_start(&mut self, now_us: u64, node: NodeId, dir: CutDir) {
        self.stats.partitions += 1;
        self.links.start_cut(node, dir);
        self.note(now_us, node, || TraceKind::PartitionStart { dir });
        self.fault(now_us, node, FaultKind::Partition { dir });
    }

    pub fn cut_end(&mut self, now_us: u64, node: NodeId, dir: CutDir) {
        self.links.end_cut(node, dir);
        self.note(now_us, node, || TraceKind::PartitionEnd { dir });
    }

    /// Judge the finished run. `choices`: how many the run drew.
    pub fn judge<M: Model<Actor = A>>(&mut self, model: &M, end: RunEnd, sim_time_us: u64, choices: usize) -> Outcome {
        self.stats.choices += choices as u64;
        self.stats.sim_time_us = sim_time_us;
        let view = RunView {
            history: &self.history,
            nodes: &self.nodes,
            logs: &self.stores,
            end,
            stats: &self.stats,
            faults: &self.faults,
            fault_log: &self.fault_log,
        };
        let verdict = model.check(&view);
        Outcome { verdict, end, stats: self.stats.clone(), history_hash: history_hash(&self.history) }
    }

    /// The outcome of a run cut short by a panic in `handling`'s handler (`usize::MAX`: in the
    /// checker or the engine): the violation says where and when.
    pub fn panicked<M: Model<Actor = A>>(&mut self, model: &M, handling: usize, now_us: u64, message: String) -> Outcome {
        let names = &model.config().nodes;
        let who = names.get(handling).map_or("the checker or the engine".to_string(), |n| format!("{}'s handler", n.name));
        let message = format!(
            "{who} panicked at {}.{:03} ms, after {} events: {message}. The run stopped there; replay it to see what led up to it.",
            now_us / 1000,
            now_us % 1000,
            self.stats.events
        );
        self.stats.sim_time_us = now_us;
        let verdict = Verdict::Violation(Violation::new(crate::panics::PANIC, message, Vec::new()));
        Outcome { verdict, end: RunEnd::Quiescent, stats: self.stats.clone(), history_hash: history_hash(&self.history) }
    }
}

/// Timers cancelled before they fired, as a bitset over timer ids (they count up from 1 in each
/// run): a due timer tests one bit where it used to scan a list, which a fleet's thousands of
/// cancelled timeouts made the cost of every timer.
#[derive(Default)]
pub struct Cancelled(Vec<u64>);

impl Clone for Cancelled {
    fn clone(&self) -> Self {
        Cancelled(self.0.clone())
    }
    fn clone_from(&mut self, src: &Self) {
        self.0.clone_from(&src.0);
    }
}

impl Cancelled {
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Mark timer `id` cancelled: it will be skipped when it comes due.
    pub fn insert(&mut self, TimerId(id): TimerId) {
        let word = (id / 64) as usize;
        if word >= self.0.len() {
            self.0.resize(word + 1, 0);
        }
        self.0[word] |= 1 << (id % 64);
    }

    /// Is timer `id` marked cancelled (and not yet due)?
    pub fn contains(&self, TimerId(id): TimerId) -> bool {
        self.0.get((id / 64) as usize).is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    /// Was timer `id` cancelled? Clears the mark: a timer fires (or is skipped) once.
    #[inline]
    pub fn take(&mut self, TimerId(id): TimerId) -> bool {
        let bit = 1 << (id % 64);
        match self.0.get_mut((id / 64) as usize) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                true
            }
            _ => false,
        }
    }
}

/// `history.push(Entry { at_us, node, obs })`, with each field written straight into the
/// vector. Built on the stack first, the entry was copied with 16-byte loads over its 8-byte
/// field stores just made: a store-to-load forwarding stall on every observation.
#[inline(always)]
fn push_entry<O>(history: &mut Vec<Entry<O>>, at_us: u64, node: NodeId, obs: O) {
    history.reserve(1);
    let len = history.len();
    // SAFETY: `reserve` made room for one more entry at `len`; all three fields are written
    // before `set_len` makes the entry part of the vector, and nothing in between can panic.
    unsafe {
        let p = history.as_mut_ptr().add(len);
        std::ptr::addr_of_mut!((*p).at_us).write(at_us);
        std::ptr::addr_of_mut!((*p).node).write(node);
        std::ptr::addr_of_mut!((*p).obs).write(obs);
        history.set_len(len + 1);
    }
}
