//! The native simulator: one event queue in simulated time, the network and fault injection, the
//! storage model, all fed by one choice source. A `Sim` is reused run after run; its buffers keep
//! their capacity, so the hot path does not allocate per event once warm.

use crate::actor::{Actor, Cmd, Ctx, NodeId, TimerId};
use crate::choices::{ChoiceKind, Choices};
use crate::faults::FaultProfile;
use crate::history::{Entry, RunEnd};
use crate::model::Model;
use crate::trace::{CrashKind, CutDir, FaultKind, FaultNote, TraceEvent, TraceKind};
use crate::world::{Admit, PlannedFault, World};
use queue::Queue;

mod effects;
mod queue;
mod steer;
/// The result of one run. The history stays in the `Sim` (see `Sim::history`) until the next run.
pub use crate::world::Outcome;
pub use steer::{Driver, EventInfo, Step};

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

/// A late copy's due time (bounded semantics) is this bit with the deadline an on-time copy
/// would have: past every deadline, so it holds no timer back (`find_eligible`), and apart from
/// every on-time copy's in state keys, while the deadline says until when delivering it is
/// what an on-time copy does (`EventInfo::covered`). It is never reached: an asynchronous event
/// runs at the moment it is picked (`untimed_clock`).
pub(crate) const LATE_BIT: u64 = 1 << 63;

/// A `Late` choice's probability, for a seeded run in the bounded semantics (a search tries
/// both values whatever it is).
const LATE_PROBABILITY: f64 = 0.01;

/// The native deterministic simulator. A clone (of a simulator whose actors clone) is a
/// snapshot a driven run can resume from: see `Sim::resume_driven`; `clone_from` restores one
/// keeping the simulator's buffers (`clone_by_field`).
pub struct Sim<A: Actor> {
    queue: Queue<A>,
    /// Actors, logs, history, links, faults: what the run is about (shared with madsim).
    w: World<A>,
    out: Vec<Cmd<A>>,
    ties: Vec<Event<A>>,
    /// `event_key` of each of `ties` (same index), computed once when it joins them: a search
    /// keys the pending events at every step, and most stay pending for many steps.
    tie_keys: Vec<u64>,
    /// Timed runs: the events due at the instant being run when more than one is (in the order
    /// they were scheduled), taken out of the queue once rather than at every step: a fleet whose
    /// shrunk run fires a thousand timers at one instant made each step re-pop them all.
    tied: std::collections::VecDeque<Event<A>>,
    /// The run's one choice source. Set it (`reset_seeded`, `reset_tape`) before `run`.
    pub choices: Choices,
    /// Untimed (asynchronous) semantics, for the exhaustive explorer: see `set_untimed`.
    untimed: bool,
    /// A run stops after this many events: see `set_max_events`.
    max_events: u64,
    /// Untimed within the delay bound: see `set_bounded`.
    bounded: bool,
    /// Bounded, and any copy may be late: see `set_late`.
    late: bool,
    /// Driven runs: which of `ties` may run next, and what the driver is told about them.
    eligible: Vec<usize>,
    infos: Vec<EventInfo>,
    seq: u64,
    now_us: u64,
    next_timer: u64,
    /// The node whose handler runs now (`usize::MAX`: none), named if it panics.
    handling: usize,
}
crate::clone_by_field!(Sim<A> {
    queue, w, out, ties, tie_keys, tied, choices, untimed, max_events, bounded, late, eligible, infos, seq, now_us, next_timer, handling
} where A: Actor + Clone);

impl<A: Actor> Default for Sim<A> {
    fn default() -> Self {
        Self::new()
    }
}

impl<A: Actor> Sim<A> {
    pub fn new() -> Self {
        Sim {
            queue: Queue::new(),
            w: World::default(),
            out: Vec::new(),
            ties: Vec::new(),
            tie_keys: Vec::new(),
            tied: std::collections::VecDeque::new(),
            choices: Choices::default(),
            untimed: false,
            max_events: u64::MAX,
            bounded: false,
            late: false,
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
        self.w.trace = if on { Some(Vec::new()) } else { None };
    }
    pub fn trace(&self) -> &[TraceEvent] {
        self.w.trace.as_deref().unwrap_or(&[])
    }
    /// The faults that struck the last run, in order.
    pub fn fault_log(&self) -> &[FaultNote] {
        &self.w.fault_log
    }
    /// The crashes, pauses and partitions drawn for the last run (before any struck).
    pub fn fault_plan(&self) -> &[PlannedFault] {
        &self.w.plan
    }
    pub fn history(&self) -> &[Entry<A::Obs>] {
        &self.w.history
    }
    /// The actors as the last run left them.
    pub fn nodes(&self) -> &[A] {
        &self.w.nodes
    }
    /// The records of `node` that survived the last run's crashes (what an auditor reads).
    pub fn durable(&self, node: NodeId) -> &[A::Record] {
        self.w.stores[node].durable()
    }
    /// The fault profile the last run used (drawn per seed in swarm mode).
    pub fn faults(&self) -> &FaultProfile {
        &self.w.faults
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
        self.reset(model);
        self.w.draw_faults(model.config(), self.untimed, &mut self.choices);
        self.schedule_faults();
        for node in 0..self.w.nodes.len() {
            self.handle(node, |a, ctx| a.on_start(ctx));
        }
    }

    /// Judge the finished run.
    fn finish<M: Model<Actor = A>>(&mut self, model: &M, end: RunEnd) -> Outcome {
        self.w.judge(model, end, self.now_us, self.choices.count())
    }

    /// The outcome of a run cut short by a panic.
    fn panicked<M: Model<Actor = A>>(&mut self, model: &M, message: String) -> Outcome {
        self.w.panicked(model, self.handling, self.now_us, message)
    }

    fn reset<M: Model<Actor = A>>(&mut self, model: &M) {
        self.queue.clear();
        self.ties.clear();
        self.tie_keys.clear();
        self.tied.clear();
        self.w.reset(model);
        self.seq = 0;
        self.now_us = 0;
        self.next_timer = 0;
        // A run cut short by a panic may leave a handler's commands behind.
        self.out.clear();
        self.handling = usize::MAX;
    }

    /// Queue the drawn fault plan, in plan order (sequence numbers break ties between events
    /// due at the same instant). Untimed mode schedules a partition's end when it starts.
    fn schedule_faults(&mut self) {
        for i in 0..self.w.plan.len() {
            match self.w.plan[i] {
                PlannedFault::Crash { node, at_us, kind } => self.push(at_us, EventKind::Crash { node, kind }),
                PlannedFault::Pause { node, at_us, until_us } => self.push(at_us, EventKind::Pause { node, until_us }),
                PlannedFault::Cut { node, dir, at_us, len_us } => {
                    self.push(at_us, EventKind::CutStart { node, dir, len_us });
                    if !self.untimed {
                        self.push(at_us + len_us, EventKind::CutEnd { node, dir });
                    }
                }
            }
        }
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
            if self.w.stats.events >= self.max_events {
                return RunEnd::TimeLimit;
            }
            self.now_us = at_us;
            self.w.stats.events += 1;
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

    /// `dispatch` of the event in `slot`. A delivery's message stays in its slot until it is
    /// known to run now, and is then moved out once, straight into the handler's argument: each
    /// extra move of the ~80-byte message (into `deliver`'s argument, into a closure) cost ~20
    /// instructions per delivery, and taking the whole event out first stalled on
    /// store-to-load forwarding.
    #[inline(always)]
    fn dispatch_slot(&mut self, slot: usize) {
        if let Some(Event { at_us, kind: EventKind::Deliver { from, to, epoch, .. }, .. }) = &self.queue.slab[slot] {
            let (at_us, from, to, epoch) = (*at_us, *from, *to, *epoch);
            return self.deliver_slot(slot, at_us, from, to, epoch);
        }
        if let Some(Event { at_us, kind: EventKind::Timer { node, epoch, id, .. }, .. }) = &self.queue.slab[slot] {
            let (at_us, node, epoch, id) = (*at_us, *node, *epoch, *id);
            return self.fire_slot(slot, at_us, node, epoch, id);
        }
        let ev = self.queue.take(slot);
        self.dispatch(ev);
    }

    /// `deliver` of the message queued in `slot` (whose key was popped).
    fn deliver_slot(&mut self, slot: usize, at_us: u64, from: NodeId, to: NodeId, epoch: u64) {
        let Some(Event { kind: EventKind::Deliver { msg, .. }, .. }) = &self.queue.slab[slot] else {
            unreachable!("deliver_slot of a delivery's slot")
        };
        match self.w.admit(self.now_us, at_us, from, to, epoch, msg) {
            Admit::Refused => {
                self.queue.take(slot);
            }
            Admit::PausedUntil(until_us) => {
                // Queued again as a new event (a new sequence number), in the same slot.
                self.seq += 1;
                self.queue.requeue(slot, until_us, self.seq);
            }
            Admit::Now => {
                // SAFETY: `msg` is read out of the slot exactly once: the slot is overwritten with
                // `None` right after by `ptr::write`, which does not drop the old value, and
                // nothing in between can panic. The event's other fields are plain integers.
                let msg = unsafe { std::ptr::read(msg) };
                unsafe { self.queue.vacate(slot) };
                self.run_on_message(to, from, msg);
            }
        }
    }

    /// `fire` of the timer queued in `slot` (whose key was popped), read where it lies: taking
    /// the whole event out first and reading its timer back stalled on store-to-load forwarding,
    /// the hottest instruction of a timer-heavy run (an overload fleet's).
    fn fire_slot(&mut self, slot: usize, at_us: u64, node: NodeId, epoch: u64, id: TimerId) {
        let life = self.w.life[node];
        if self.w.cancelled.take(id) || life.down || life.epoch != epoch {
            self.queue.take(slot);
            return;
        }
        if life.paused_until_us > at_us {
            // Queued again as a new event (a new sequence number), in the same slot.
            self.seq += 1;
            self.queue.requeue(slot, life.paused_until_us, self.seq);
            return;
        }
        let Some(Event { kind: EventKind::Timer { timer, .. }, .. }) = &self.queue.slab[slot] else {
            unreachable!("fire_slot of a timer's slot")
        };
        // SAFETY: as in `deliver_slot`: `timer` is read out of the slot exactly once, and the
        // slot is overwritten with `None` right after without dropping the old value.
        let timer = unsafe { std::ptr::read(timer) };
        unsafe { self.queue.vacate(slot) };
        self.w.note(self.now_us, node, || TraceKind::Timer { timer: format!("{timer:?}") });
        self.handle(node, |a, ctx| a.on_timer(ctx, timer));
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
        if self.w.stats.events >= self.max_events {
            return Some(RunEnd::TimeLimit);
        }
        self.now_us = ev.at_us;
        self.w.stats.events += 1;
        self.dispatch(ev);
        None
    }

    fn dispatch(&mut self, ev: Event<A>) {
        let now = self.now_us;
        match ev.kind {
            EventKind::Deliver { from, to, epoch, msg } => self.deliver(ev.at_us, from, to, epoch, msg),
            EventKind::Timer { node, epoch, id, timer } => self.fire(ev.at_us, node, epoch, id, timer),
            EventKind::Crash { node, kind } => self.crash(node, kind),
            EventKind::Restart { node } => {
                self.w.restart(now, node);
                self.handle(node, |a, ctx| a.on_start(ctx));
            }
            EventKind::Pause { node, until_us } => {
                if self.w.pause(now, node, until_us) {
                    self.push(until_us, EventKind::Resume { node });
                }
            }
            EventKind::Resume { node } => self.w.resume(now, node),
            EventKind::CutStart { node, dir, len_us } => {
                if self.untimed {
                    self.push(ev.at_us + len_us, EventKind::CutEnd { node, dir });
                }
                self.w.cut_start(now, node, dir);
            }
            EventKind::CutEnd { node, dir } => self.w.cut_end(now, node, dir),
        }
    }

    fn deliver(&mut self, at_us: u64, from: NodeId, to: NodeId, epoch: u64, msg: A::Msg) {
        match self.w.admit(self.now_us, at_us, from, to, epoch, &msg) {
            Admit::Refused => {}
            Admit::PausedUntil(until_us) => self.push(until_us, EventKind::Deliver { from, to, epoch, msg }),
            Admit::Now => self.run_on_message(to, from, msg),
        }
    }

    /// `handle` of `on_message`, with the message passed straight on: captured by a closure,
    /// it was copied once more.
    #[inline(always)]
    fn run_on_message(&mut self, to: NodeId, from: NodeId, msg: A::Msg) {
        self.handling = to;
        let mut ctx = Ctx {
            now_us: self.now_us,
            me: to,
            out: &mut self.out,
            choices: &mut self.choices,
            next_timer: &mut self.next_timer,
            incarnation: self.w.life[to].epoch,
        };
        self.w.nodes[to].on_message(&mut ctx, from, msg);
        self.apply_effects(to);
    }

    fn fire(&mut self, at_us: u64, node: NodeId, epoch: u64, id: TimerId, timer: A::Timer) {
        if self.w.cancelled.take(id) {
            return;
        }
        let life = self.w.life[node];
        if life.down || life.epoch != epoch {
            return;
        }
        if life.paused_until_us > at_us {
            self.push(life.paused_until_us, EventKind::Timer { node, epoch, id, timer });
            return;
        }
        self.w.note(self.now_us, node, || TraceKind::Timer { timer: format!("{timer:?}") });
        self.handle(node, |a, ctx| a.on_timer(ctx, timer));
    }

    fn crash(&mut self, node: NodeId, kind: CrashKind) {
        if self.w.closes_connections(node, kind) {
            // The process dies, its machine does not: the OS closes its connections first.
            self.handle(node, |a, ctx| crate::actor::process_exit(a, ctx));
        }
        let restart_after_us = if self.untimed {
            // A restart is asynchronous here, like a delivery: it may come at any moment after
            // the crash (bounded: up to `restart_delay_us_max` after it, its deadline), so no
            // delay is drawn: each delay a timed run draws is one of those moments.
            let deadline_us = if self.bounded { self.w.faults.restart_delay_us_max } else { 0 };
            self.w.go_down(self.now_us, node, kind).then_some(deadline_us)
        } else {
            self.w.crash(self.now_us, node, kind, &mut self.choices)
        };
        if let Some(after_us) = restart_after_us {
            let at = self.now_us + after_us;
            let at = if self.draw_late() {
                // Late (see `untimed_arrival_us`): no deadline, any later moment.
                self.w.stats.restarts_late += 1;
                self.w.note(self.now_us, node, || TraceKind::LateRestart);
                self.w.fault(self.now_us, node, FaultKind::LateRestart);
                LATE_BIT | at
            } else {
                at
            };
            self.push(at, EventKind::Restart { node });
        }
    }
}
