//! The native simulator: one event queue in simulated time, the network and fault injection, the
//! storage model, all fed by one choice source. A `Sim` is reused run after run; its buffers keep
//! their capacity, so the hot path does not allocate per event once warm.

use crate::actor::{Actor, Cmd, Ctx, NodeId, TimerId};
use crate::choices::{ChoiceKind, Choices};
use crate::faults::FaultProfile;
use crate::history::{history_hash, Entry, RunEnd, Stats, Verdict};
use crate::model::{Log, Model, RunView};
use crate::trace::{CrashKind, CutDir, FaultKind, FaultNote, LossCause, TraceEvent, TraceKind};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

mod bookkeeping;
mod steer;
pub use steer::{Driver, EventInfo, Step};

/// The result of one run. The history stays in the `Sim` (see `Sim::history`) until the next run.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub end: RunEnd,
    pub stats: Stats,
    pub history_hash: u64,
}

/// `CutStart::len_us` is used only in untimed mode, where the end is scheduled when the cut starts.
///
/// Layout, for speed only: `repr(u64)` gives the kind a tag of its own (otherwise it lives in a
/// niche of `A::Msg`'s tag, and moving a message out becomes a byte-offset copy), and with the
/// epoch a `u64` there is no padding before `msg`. Padding let the compiler copy "padding +
/// message" as one misaligned blob whose 16-byte reloads straddled the stores just made: a
/// store-to-load forwarding stall on every send and delivery (the hottest instructions of the
/// payment benchmark before this).
#[repr(u64)]
#[derive(Clone)]
enum EventKind<A: Actor> {
    Deliver { from: NodeId, to: NodeId, epoch: u64, msg: A::Msg },
    Timer { node: NodeId, epoch: u64, id: TimerId, timer: A::Timer },
    Crash { node: NodeId, kind: CrashKind },
    Restart { node: NodeId },
    Pause { node: NodeId, until_us: u64 },
    Resume { node: NodeId },
    CutStart { node: NodeId, dir: CutDir, len_us: u64 },
    CutEnd { node: NodeId, dir: CutDir },
}

#[derive(Clone)]
struct Event<A: Actor> {
    at_us: u64,
    seq: u64,
    kind: EventKind<A>,
}

/// Bits of a heap key's low word that hold the event's slot (the rest hold its sequence number).
const SLOT_BITS: u32 = 24;

/// The pending events: a binary min-heap of 16-byte keys `(at_us, seq, slot)` over a slab of
/// events, so sifting moves keys, not events (a payment event is ~100 bytes). The order is the
/// one a heap of whole events ordered by `(at_us, seq)` gives: `seq` is unique within a run and
/// sits above the slot bits.
#[derive(Clone)]
struct Queue<A: Actor> {
    heap: BinaryHeap<Reverse<u128>>,
    slab: Vec<Option<Event<A>>>,
    free: Vec<u32>,
}

impl<A: Actor> Queue<A> {
    fn new() -> Self {
        Queue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new() }
    }

    fn clear(&mut self) {
        self.heap.clear();
        self.slab.clear();
        self.free.clear();
    }

    /// Queue an event. The slot is found first so that the event is written once, straight into
    /// it (a temporary copy of a ~100-byte event read back right after its piecewise stores
    /// stalls on store-to-load forwarding).
    #[inline(always)]
    fn push(&mut self, at_us: u64, seq: u64, kind: EventKind<A>) {
        let slot = match self.free.pop() {
            Some(s) => s as usize,
            None => {
                self.slab.push(None);
                self.slab.len() - 1
            }
        };
        assert!(
            seq < 1 << (64 - SLOT_BITS) && slot < 1 << SLOT_BITS,
            "event queue: more than 2^40 events in one run or 2^24 pending at once"
        );
        self.slab[slot] = Some(Event { at_us, seq, kind });
        self.heap.push(Reverse((at_us as u128) << 64 | (seq << SLOT_BITS | slot as u64) as u128));
    }

    /// Remove the earliest key: the event's time and slot. The event stays in its slot until
    /// `take` (or `Sim::dispatch_slot`) moves it out.
    #[inline]
    fn pop_key(&mut self) -> Option<(u64, usize)> {
        let Reverse(key) = self.heap.pop()?;
        Some(((key >> 64) as u64, (key as u64 & ((1 << SLOT_BITS) - 1)) as usize))
    }

    /// Move the event out of `slot` (whose key was popped) and free the slot.
    #[inline]
    fn take(&mut self, slot: usize) -> Event<A> {
        self.free.push(slot as u32);
        self.slab[slot].take().expect("a popped key's slot holds its event")
    }

    #[inline]
    fn pop(&mut self) -> Option<Event<A>> {
        let (_, slot) = self.pop_key()?;
        Some(self.take(slot))
    }

    /// When the earliest pending event is due.
    #[inline]
    fn peek_at(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(k)| (k >> 64) as u64)
    }

    /// The pending events, in no particular order.
    fn iter(&self) -> impl Iterator<Item = &Event<A>> {
        self.heap.iter().map(|Reverse(k)| self.slab[(*k as u64 & ((1 << SLOT_BITS) - 1)) as usize].as_ref().expect("queued"))
    }
}

#[derive(Clone, Copy, Default)]
struct NodeRt {
    down: bool,
    /// Bumped at every crash: timers and connections of an earlier incarnation are void.
    epoch: u64,
    paused_until_us: u64,
}

/// The native deterministic simulator. A clone (of a simulator whose actors clone) is a
/// snapshot a driven run can resume from: see `Sim::resume_driven`.
#[derive(Clone)]
pub struct Sim<A: Actor> {
    queue: Queue<A>,
    nodes: Vec<A>,
    rt: Vec<NodeRt>,
    stores: Vec<Log<A::Record>>,
    history: Vec<Entry<A::Obs>>,
    out: Vec<Cmd<A>>,
    ties: Vec<Event<A>>,
    /// Timed runs: the events due at the instant being run when more than one is (in the order
    /// they were scheduled), taken out of the queue once rather than at every step: a fleet whose
    /// shrunk run fires a thousand timers at one instant made each step re-pop them all.
    tied: std::collections::VecDeque<Event<A>>,
    /// Timers cancelled before they fired, as a bitset over timer ids (they count up from 1 in
    /// each run): `fire` tests one bit where it used to scan a list, which a fleet's thousands of
    /// cancelled timeouts made the cost of every timer.
    cancelled: Vec<u64>,
    cuts: Vec<(NodeId, CutDir)>,
    lossy: u64,
    faults: FaultProfile,
    /// The run's one choice source. Set it (`reset_seeded`, `reset_tape`) before `run`.
    pub choices: Choices,
    stats: Stats,
    trace: Option<Vec<TraceEvent>>,
    /// The faults that struck this run (kept on the bulk path too: they are rare).
    fault_log: Vec<FaultNote>,
    /// Untimed (asynchronous) semantics, for the exhaustive explorer: see `set_untimed`.
    untimed: bool,
    /// A run stops after this many events: see `set_max_events`.
    max_events: u64,
    /// Untimed within the delay bound: see `set_bounded`.
    bounded: bool,
    /// Driven runs: which of `ties` may run next, and what the driver is told about them.
    eligible: Vec<usize>,
    infos: Vec<EventInfo>,
    seq: u64,
    now_us: u64,
    next_timer: u64,
    /// The node whose handler runs now (`usize::MAX`: none), named if it panics.
    handling: usize,
}

impl<A: Actor> Default for Sim<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Actor> Sim<A> {
    pub fn new() -> Self {
        Sim {
            queue: Queue::new(),
            nodes: Vec::new(),
            rt: Vec::new(),
            stores: Vec::new(),
            history: Vec::new(),
            out: Vec::new(),
            ties: Vec::new(),
            tied: std::collections::VecDeque::new(),
            cancelled: Vec::new(),
            cuts: Vec::new(),
            lossy: 0,
            faults: FaultProfile::default(),
            choices: Choices::default(),
            stats: Stats::default(),
            trace: None,
            fault_log: Vec::new(),
            untimed: false,
            max_events: u64::MAX,
            bounded: false,
            eligible: Vec::new(),
            infos: Vec::new(),
            seq: 0,
            now_us: 0,
            next_timer: 0,
            handling: usize::MAX,
        }
    }

    /// End the following runs after `max` events, as if at the time limit (`RunEnd::TimeLimit`,
    /// `Stats::events == max`). A bound on work, not on time: the shrinker's budget, which must
    /// not let one candidate whose removed fault turned it into a retry storm run for minutes.
    /// A run cut here is not the run the choices describe: callers discard its verdict.
    pub fn set_max_events(&mut self, max: u64) {
        self.max_events = max;
    }

    /// Record the full timeline of the following runs (for replay).
    pub fn set_trace(&mut self, on: bool) {
        self.trace = if on { Some(Vec::new()) } else { None };
    }
    pub fn trace(&self) -> &[TraceEvent] {
        self.trace.as_deref().unwrap_or(&[])
    }
    /// The faults that struck the last run, in order.
    pub fn fault_log(&self) -> &[FaultNote] {
        &self.fault_log
    }
    pub fn history(&self) -> &[Entry<A::Obs>] {
        &self.history
    }
    /// The actors as the last run left them.
    pub fn nodes(&self) -> &[A] {
        &self.nodes
    }
    /// The records of `node` that survived the last run's crashes (what an auditor reads).
    pub fn durable(&self, node: NodeId) -> &[A::Record] {
        self.stores[node].durable()
    }
    /// The fault profile the last run used (drawn per seed in swarm mode).
    pub fn faults(&self) -> &FaultProfile {
        &self.faults
    }

    /// Run the model with the given seed.
    pub fn run_seed<M: Model<Actor = A>>(&mut self, model: &M, seed: u64) -> Outcome {
        self.choices.reset_seeded(seed);
        self.run(model)
    }

    /// Replay a tape (past its end, every choice is the simplest).
    pub fn run_tape<M: Model<Actor = A>>(&mut self, model: &M, tape: &[u32]) -> Outcome {
        self.choices.reset_tape(tape);
        self.run(model)
    }

    /// Run the model with `self.choices` as it is now. An actor or checker that panics ends
    /// the run with a violation named `panic` (see `panics`).
    pub fn run<M: Model<Actor = A>>(&mut self, model: &M) -> Outcome {
        let run = crate::panics::catch(|| {
            self.start(model);
            let end = self.event_loop(model.config().time_limit_us);
            self.finish(model, end)
        });
        run.unwrap_or_else(|message| self.panicked(model, message))
    }

    /// Everything before the first event: actors built, faults drawn, `on_start` run.
    fn start<M: Model<Actor = A>>(&mut self, model: &M) {
        let cfg = model.config();
        self.reset(model);
        self.faults = if cfg.swarm { cfg.faults.swarm(&mut self.choices) } else { cfg.faults.clone() };
        self.schedule_faults(model);
        for node in 0..self.nodes.len() {
            self.handle(node, |a, ctx| a.on_start(ctx));
        }
    }

    /// Judge the finished run.
    fn finish<M: Model<Actor = A>>(&mut self, model: &M, end: RunEnd) -> Outcome {
        self.stats.choices += self.choices.count() as u64;
        self.stats.sim_time_us = self.now_us;
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

    fn reset<M: Model<Actor = A>>(&mut self, model: &M) {
        let cfg = model.config();
        self.queue.clear();
        self.ties.clear();
        self.tied.clear();
        model.rebuild(&mut self.nodes);
        assert_eq!(self.nodes.len(), cfg.nodes.len(), "Model::build must push one actor per configured node");
        self.rt.clear();
        self.rt.resize(cfg.nodes.len(), NodeRt::default());
        self.stores.truncate(cfg.nodes.len());
        for s in &mut self.stores {
            s.clear();
        }
        while self.stores.len() < cfg.nodes.len() {
            self.stores.push(Log::default());
        }
        self.lossy = cfg.nodes.iter().enumerate().filter(|(_, n)| n.lossy).fold(0, |m, (i, _)| m | 1 << i);
        self.history.clear();
        self.fault_log.clear();
        self.cancelled.clear();
        self.cuts.clear();
        self.stats = Stats::default();
        if let Some(t) = &mut self.trace {
            t.clear();
        }
        self.seq = 0;
        self.now_us = 0;
        self.next_timer = 0;
        // A run cut short by a panic may leave a handler's commands behind.
        self.out.clear();
        self.handling = usize::MAX;
    }

    /// Draw this run's crashes, pauses and partitions up front, all inside the fault phase.
    fn schedule_faults<M: Model<Actor = A>>(&mut self, model: &M) {
        let f = self.faults.clone();
        let phase = f.fault_phase_us as u32;
        for (node, spec) in model.config().nodes.iter().enumerate() {
            for _ in 0..if spec.crashable { f.crashes_per_node_max } else { 0 } {
                // A machine crash, else a process crash (a flip only if the profile has them,
                // so profiles without process crashes draw what they always drew).
                let kind = if self.choices.flip(ChoiceKind::Crash, f.crash_probability) {
                    Some(CrashKind::Machine)
                } else {
                    self.choices.flip(ChoiceKind::Crash, f.process_crash_probability).then_some(CrashKind::Process)
                };
                if let Some(kind) = kind {
                    let at = self.fault_start(phase);
                    self.push(at, EventKind::Crash { node, kind });
                }
            }
            for _ in 0..if spec.pausable { f.pauses_per_node_max } else { 0 } {
                if self.choices.flip(ChoiceKind::Pause, f.pause_probability) {
                    let at = self.fault_start(phase);
                    let len = f.pause_us_min + self.span(f.pause_us_max - f.pause_us_min);
                    self.push(at, EventKind::Pause { node, until_us: at + len });
                }
            }
        }
        // The lossy nodes are the set bits of `self.lossy` (no Vec: the bulk path allocates nothing per run).
        let lossy_count = self.lossy.count_ones();
        for _ in 0..if lossy_count == 0 { 0 } else { f.partitions_max } {
            if self.choices.flip(ChoiceKind::Partition, f.partition_probability) {
                let k = self.choices.pick(ChoiceKind::FaultShape, lossy_count) as usize;
                let node = (0..64).filter(|i| self.lossy >> i & 1 == 1).nth(k).expect("k < number of lossy nodes");
                let dir = [CutDir::Both, CutDir::Inbound, CutDir::Outbound][self.choices.pick(ChoiceKind::FaultShape, 3) as usize];
                let at = self.fault_start(phase);
                let len_us = 1 + self.span(f.partition_us_max);
                self.push(at, EventKind::CutStart { node, dir, len_us });
                if !self.untimed {
                    self.push(at + len_us, EventKind::CutEnd { node, dir });
                }
            }
        }
    }

    /// When a fault starts. Untimed mode draws nothing: its faults may strike at any point of the
    /// fault phase (see `next_untimed`), so a start time would only multiply equivalent runs.
    fn fault_start(&mut self, phase: u32) -> u64 {
        if self.untimed {
            return 0;
        }
        self.choices.pick(ChoiceKind::FaultShape, phase) as u64
    }

    /// A value in `0..=width` through the choice source.
    fn span(&mut self, width: u64) -> u64 {
        self.choices.pick(ChoiceKind::FaultShape, width as u32 + 1) as u64
    }

    fn push(&mut self, at_us: u64, kind: EventKind<A>) {
        self.seq += 1;
        self.queue.push(at_us, self.seq, kind);
    }

    fn event_loop(&mut self, time_limit_us: u64) -> RunEnd {
        if self.untimed {
            loop {
                let Some(ev) = self.next_untimed(time_limit_us) else { return RunEnd::Quiescent };
                if let Some(end) = self.step(ev, time_limit_us) {
                    return end;
                }
            }
        }
        loop {
            if !self.tied.is_empty() {
                let ev = self.break_tie();
                if let Some(end) = self.step(ev, time_limit_us) {
                    return end;
                }
                continue;
            }
            let Some((at_us, slot)) = self.queue.pop_key() else { return RunEnd::Quiescent };
            if self.queue.peek_at() == Some(at_us) {
                let ev = self.queue.take(slot);
                self.tied.push_back(ev);
                let ev = self.break_tie();
                if let Some(end) = self.step(ev, time_limit_us) {
                    return end;
                }
                continue;
            }
            // What `step` does, with the event still in its slot (see `dispatch_slot`).
            if at_us > time_limit_us {
                self.queue.take(slot);
                self.now_us = time_limit_us;
                return RunEnd::TimeLimit;
            }
            debug_assert!(at_us >= self.now_us, "time went backwards");
            if self.stats.events >= self.max_events {
                return RunEnd::TimeLimit;
            }
            self.now_us = at_us;
            self.stats.events += 1;
            self.dispatch_slot(slot);
        }
    }

    /// Several events are due at the same instant (those in `tied`, and any queued since at
    /// that instant, which were scheduled later): the choice source says which goes first (0 =
    /// the one scheduled first). The others wait in `tied`, in order, for the next step; the
    /// last one runs without a choice, as a lone event does.
    fn break_tie(&mut self) -> Event<A> {
        let at = self.tied[0].at_us;
        while self.queue.peek_at() == Some(at) {
            let e = self.queue.pop().expect("peeked");
            debug_assert!(e.seq > self.tied.back().expect("tied").seq, "queued later, scheduled later");
            self.tied.push_back(e);
        }
        if self.tied.len() == 1 {
            return self.tied.pop_front().expect("one");
        }
        let pick = self.choices.pick(ChoiceKind::Tie, self.tied.len() as u32) as usize;
        self.tied.remove(pick).expect("a pick is below the count")
    }

    /// `dispatch` of the event in `slot`. A delivery's message is moved straight out of its slot
    /// into the handler's argument: taking the whole event out first and then the message out of
    /// that copy made the hottest load of the benchmark (a 16-byte load straddling two stores
    /// just made, which stalls on store-to-load forwarding).
    #[inline(always)]
    fn dispatch_slot(&mut self, slot: usize) {
        if let Some(Event { at_us, kind: EventKind::Deliver { from, to, epoch, msg }, .. }) = &self.queue.slab[slot] {
            let (at_us, from, to, epoch) = (*at_us, *from, *to, *epoch);
            // SAFETY: `msg` is read out of the slot exactly once: the slot is overwritten with
            // `None` right after by `ptr::write`, which does not drop the old value, and nothing
            // in between can panic. The event's other fields are plain integers.
            let msg = unsafe { std::ptr::read(msg) };
            unsafe { std::ptr::write(&mut self.queue.slab[slot], None) };
            self.queue.free.push(slot as u32);
            return self.deliver(at_us, from, to, epoch, msg);
        }
        let ev = self.queue.take(slot);
        self.dispatch(ev);
    }

    /// Run one event, unless it lies past the time limit (then the run ends there).
    #[inline]
    fn step(&mut self, mut ev: Event<A>, time_limit_us: u64) -> Option<RunEnd> {
        if self.untimed {
            self.untimed_clock(&mut ev);
        }
        if ev.at_us > time_limit_us {
            self.now_us = time_limit_us;
            return Some(RunEnd::TimeLimit);
        }
        debug_assert!(ev.at_us >= self.now_us, "time went backwards");
        if self.stats.events >= self.max_events {
            return Some(RunEnd::TimeLimit);
        }
        self.now_us = ev.at_us;
        self.stats.events += 1;
        self.dispatch(ev);
        None
    }

    fn dispatch(&mut self, ev: Event<A>) {
        match ev.kind {
            EventKind::Deliver { from, to, epoch, msg } => self.deliver(ev.at_us, from, to, epoch, msg),
            EventKind::Timer { node, epoch, id, timer } => self.fire(ev.at_us, node, epoch, id, timer),
            EventKind::Crash { node, kind } => self.crash(node, kind),
            EventKind::Restart { node } => {
                self.rt[node].down = false;
                self.note(node, || TraceKind::Restart);
                self.fault(node, FaultKind::Restart);
                self.handle(node, |a, ctx| a.on_start(ctx));
            }
            EventKind::Pause { node, until_us } => {
                if !self.rt[node].down {
                    self.stats.pauses += 1;
                    let rt = &mut self.rt[node];
                    rt.paused_until_us = rt.paused_until_us.max(until_us);
                    self.note(node, || TraceKind::Pause { until_us });
                    self.fault(node, FaultKind::Pause { until_us });
                    self.push(until_us, EventKind::Resume { node });
                }
            }
            EventKind::Resume { node } => self.note(node, || TraceKind::Resume),
            EventKind::CutStart { node, dir, len_us } => {
                if self.untimed {
                    self.push(ev.at_us + len_us, EventKind::CutEnd { node, dir });
                }
                self.stats.partitions += 1;
                self.cuts.push((node, dir));
                self.note(node, || TraceKind::PartitionStart { dir });
                self.fault(node, FaultKind::Partition { dir });
            }
            EventKind::CutEnd { node, dir } => {
                if let Some(i) = self.cuts.iter().position(|&c| c == (node, dir)) {
                    self.cuts.swap_remove(i);
                }
                self.note(node, || TraceKind::PartitionEnd { dir });
            }
        }
    }

    fn deliver(&mut self, at_us: u64, from: NodeId, to: NodeId, epoch: u64, msg: A::Msg) {
        let rt = self.rt[to];
        let cause = if rt.down || rt.epoch != epoch {
            self.stats.messages_dropped_down += 1;
            Some(LossCause::ReceiverDown)
        } else if self.cut(from, to) {
            self.stats.messages_lost += 1;
            self.fault(from, FaultKind::Lost { to, cause: LossCause::Partition });
            Some(LossCause::Partition)
        } else {
            None
        };
        if let Some(cause) = cause {
            self.note(to, || TraceKind::Lose { to, msg: format!("{msg:?}"), cause });
            return;
        }
        if rt.paused_until_us > at_us {
            self.push(rt.paused_until_us, EventKind::Deliver { from, to, epoch, msg });
            return;
        }
        self.stats.messages_delivered += 1;
        self.note(to, || TraceKind::Deliver { from, msg: format!("{msg:?}") });
        self.handle(to, |a, ctx| a.on_message(ctx, from, msg));
    }

    fn fire(&mut self, at_us: u64, node: NodeId, epoch: u64, id: TimerId, timer: A::Timer) {
        if self.take_cancelled(id) {
            return;
        }
        let rt = self.rt[node];
        if rt.down || rt.epoch != epoch {
            return;
        }
        if rt.paused_until_us > at_us {
            self.push(rt.paused_until_us, EventKind::Timer { node, epoch, id, timer });
            return;
        }
        self.note(node, || TraceKind::Timer { timer: format!("{timer:?}") });
        self.handle(node, |a, ctx| a.on_timer(ctx, timer));
    }

    fn crash(&mut self, node: NodeId, kind: CrashKind) {
        if self.rt[node].down {
            return;
        }
        self.stats.crashes += 1;
        self.stats.process_crashes += (kind == CrashKind::Process) as u64;
        let rt = &mut self.rt[node];
        rt.down = true;
        rt.epoch += 1;
        rt.paused_until_us = 0;
        let lost = self.stores[node].crash(kind);
        self.stats.writes_lost += lost;
        self.note(node, || TraceKind::Crash { writes_lost: lost, kind });
        self.fault(node, FaultKind::Crash { writes_lost: lost, kind });
        self.nodes[node].on_crash(&self.stores[node].records);
        let (lo, hi) = (self.faults.restart_delay_us_min, self.faults.restart_delay_us_max);
        let at = self.now_us + lo + self.span(hi - lo);
        self.push(at, EventKind::Restart { node });
    }

    /// True if an active partition cuts the link `from -> to`. Like loss and duplication,
    /// partitions hit only links whose both ends are lossy.
    fn cut(&self, from: NodeId, to: NodeId) -> bool {
        let faulty = self.lossy >> from & 1 == 1 && self.lossy >> to & 1 == 1;
        faulty && self.cuts.iter().any(|&(n, d)| (n == to && d != CutDir::Outbound) || (n == from && d != CutDir::Inbound))
    }

    /// Run one handler of `node`, then carry out the effects it asked for, in order.
    fn handle(&mut self, node: NodeId, f: impl FnOnce(&mut A, &mut Ctx<'_, A>)) {
        self.handling = node;
        let mut ctx =
            Ctx { now_us: self.now_us, me: node, out: &mut self.out, choices: &mut self.choices, next_timer: &mut self.next_timer };
        f(&mut self.nodes[node], &mut ctx);
        let mut out = std::mem::take(&mut self.out);
        let n = out.len();
        // SAFETY: the length goes to 0 first, then each command is moved out exactly once (by
        // `ptr::read`), in order; should a command panic, the rest leak, never drop twice. `out`
        // is not touched meanwhile (it is out of `self`, and no handler runs inside `apply`).
        unsafe { out.set_len(0) };
        for i in 0..n {
            let cmd = unsafe { &*out.as_ptr().add(i) };
            match cmd {
                // The observation goes from the buffer straight into the history (no copy of the
                // command first: see `push_entry`).
                Cmd::Observe(obs) => {
                    let index = self.history.len();
                    self.note(node, || TraceKind::Observe { obs: format!("{obs:?}"), index });
                    push_entry(&mut self.history, self.now_us, node, unsafe { std::ptr::read(obs) });
                }
                _ => self.apply(node, unsafe { std::ptr::read(cmd) }),
            }
        }
        self.out = out;
        self.handling = usize::MAX;
    }

    #[inline(always)]
    fn apply(&mut self, node: NodeId, cmd: Cmd<A>) {
        match cmd {
            Cmd::Send { to, msg } => self.send(node, to, msg),
            Cmd::SetTimer { id, after_us, timer } => {
                let epoch = self.rt[node].epoch;
                self.push(self.now_us + after_us, EventKind::Timer { node, epoch, id, timer });
            }
            Cmd::CancelTimer(id) => self.cancel(id),
            Cmd::Observe(obs) => {
                let index = self.history.len();
                self.note(node, || TraceKind::Observe { obs: format!("{obs:?}"), index });
                push_entry(&mut self.history, self.now_us, node, obs);
            }
            Cmd::Write(rec) => {
                self.stats.writes += 1;
                self.note(node, || TraceKind::Write { record: format!("{rec:?}") });
                self.stores[node].records.push(rec);
            }
            Cmd::WriteOs(rec) => {
                self.stats.writes += 1;
                self.note(node, || TraceKind::Write { record: format!("{rec:?}") });
                self.stores[node].write_os(rec);
            }
            Cmd::Fsync => {
                self.stats.fsyncs += 1;
                let durable_records = self.stores[node].fsync();
                self.note(node, || TraceKind::Fsync { durable_records });
            }
        }
    }

    /// The network: loss and duplication on faulty links during the fault phase, then a delay.
    fn send(&mut self, from: NodeId, to: NodeId, msg: A::Msg) {
        assert!(to < self.nodes.len(), "node {from} sent to node {to}, which does not exist");
        self.stats.messages_sent += 1;
        let faulty = self.lossy >> from & 1 == 1 && self.lossy >> to & 1 == 1 && self.now_us < self.faults.fault_phase_us;
        if faulty && self.choices.flip(ChoiceKind::Loss, self.faults.loss_probability) {
            self.stats.messages_lost += 1;
            self.note(from, || TraceKind::Lose { to, msg: format!("{msg:?}"), cause: LossCause::Network });
            self.fault(from, FaultKind::Lost { to, cause: LossCause::Network });
            return;
        }
        let duplicated = faulty && self.choices.flip(ChoiceKind::Duplicate, self.faults.duplicate_probability);
        self.note(from, || TraceKind::Send { to, msg: format!("{msg:?}"), duplicated });
        let epoch = self.rt[to].epoch;
        if duplicated {
            self.stats.messages_duplicated += 1;
            self.fault(from, FaultKind::Duplicated { to });
            let at = self.now_us + self.delay();
            self.push(at, EventKind::Deliver { from, to, epoch, msg: msg.clone() });
        }
        let at = self.now_us + self.delay();
        self.push(at, EventKind::Deliver { from, to, epoch, msg });
    }

    fn delay(&mut self) -> u64 {
        if self.untimed {
            // Any pending delivery may run next (see `next_untimed`): the delay is not drawn.
            // Bounded: the message is due by its deadline, the longest delay.
            return if self.bounded { self.faults.delay_us_max } else { 0 };
        }
        let (lo, hi) = (self.faults.delay_us_min, self.faults.delay_us_max);
        lo + self.choices.pick(ChoiceKind::Delay, (hi - lo + 1) as u32) as u64
    }

    fn fault(&mut self, node: NodeId, kind: FaultKind) {
        self.fault_log.push(FaultNote { at_us: self.now_us, node, kind });
    }

    /// Append to the trace if tracing is on; `what` is only built then (it may format).
    #[inline]
    fn note(&mut self, node: NodeId, what: impl FnOnce() -> TraceKind) {
        if let Some(t) = &mut self.trace {
            t.push(TraceEvent { at_us: self.now_us, node, kind: what() });
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
