//! What the exhaustive explorer needs from the simulator, kept apart from the seeded bulk path
//! (which never comes here): untimed (asynchronous) event selection, runs steered by a driver
//! that decides which eligible event goes next, and a canonical hash of the simulator's state.

use super::{Event, EventKind, Outcome, Sim, LATE_BIT};
use crate::actor::{Actor, NodeId};
use crate::choices::ChoiceKind;
use crate::exhaustive::timer_names::Naming;
use crate::history::{RunEnd, StableHasher};
use crate::model::Model;
use std::hash::{Hash, Hasher};

/// What a driver is told about one event that may run next.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventInfo {
    /// Stable hash of the event's content (kind, nodes, epoch, message or timer, and its time
    /// where time matters): the same event reached along another path has the same key.
    pub key: u64,
    /// The one node whose state the event reads and writes; `None` for an event that others'
    /// handlers can see: a partition (it changes every link of a node) and a crash (it bumps
    /// the node's epoch, which every `send` to the node reads: a message sent just before the
    /// crash is dropped even after the restart, one sent just after is not).
    pub node: Option<NodeId>,
    /// Running it moves simulated time forward (only timers and other deadlines in untimed mode;
    /// in timed mode every eligible event is due at the same instant).
    pub advances_time: bool,
    /// A late copy or restart (bounded semantics) whose deadline has not passed: running it now
    /// is what its on-time twin does, a sibling the search explores with less of its budget
    /// spent (the same run up to here: no timer fired past that deadline). A driver need not
    /// try it.
    pub covered: bool,
}

impl EventInfo {
    /// Running `self` then `o` reaches the same state as `o` then `self` (up to timer ids, which
    /// are opaque handles, and the order of observations of different nodes in the history):
    /// each touches only its own node, and neither moves the clock the other reads.
    pub fn independent(&self, o: &EventInfo) -> bool {
        !self.advances_time && !o.advances_time && matches!((self.node, o.node), (Some(a), Some(b)) if a != b)
    }
}

/// A driver's answer before each event.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Run the eligible event at this index.
    Run(usize),
    /// End the run here (already explored, or past a bound); `run_driven` returns `None`.
    Stop,
}

/// Steers a run: before every event it sees the simulator and the events that may run next (in
/// the order a `Tie` choice indexes them) and picks one. Ties it decides do not go through
/// `Sim::choices`; a replayable tape puts `Run(i)` where `choices` would have drawn a `Tie`
/// (whenever two or more events are eligible).
pub trait Driver<A: Actor> {
    fn next(&mut self, sim: &Sim<A>, eligible: &[EventInfo]) -> Step;
}

/// Deliveries, and in untimed mode the start of crashes, pauses and partitions, may happen at
/// any moment; the other events wait for their deadline.
fn is_async<A: Actor>(kind: &EventKind<A>) -> bool {
    matches!(
        kind,
        EventKind::Deliver { .. }
            | EventKind::Crash { .. }
            | EventKind::Restart { .. }
            | EventKind::Pause { .. }
            | EventKind::CutStart { .. }
    )
}

/// `Sim::state_hash`'s buffers: the pending events' keys, the clock stops, the timer names.
type Scratch = (Vec<u64>, Vec<u64>, Vec<(u64, u64)>);

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = const { std::cell::RefCell::new((Vec::new(), Vec::new(), Vec::new())) };
}

impl<A: Actor> Sim<A> {
    /// Untimed (asynchronous) semantics, for exhaustive search. Message delays are not drawn:
    /// any pending delivery may run next, at the current time. Crashes, pauses and partitions
    /// may start at any moment of the fault phase (their start time is not drawn), and a
    /// crashed node may restart at any moment after its crash (no restart delay is drawn).
    /// Timers, resumes and partition ends keep their deadlines and fire in deadline order,
    /// moving the clock. A tape recorded in this mode replays only in this mode.
    pub fn set_untimed(&mut self, on: bool) {
        self.untimed = on;
        self.bounded &= on;
        self.late &= on;
    }
    /// Bounded asynchrony (implies untimed): a message may be delivered at any moment from its
    /// send until `delay_us_max` after it, its deadline, and no timer fires past the deadline
    /// of a message still undelivered (to a node that is not paused); likewise a crashed node
    /// restarts at most `restart_delay_us_max` after its crash. Every run of the timed
    /// semantics with delays in `0..=delay_us_max` is one of these (a timer that fires first
    /// there is due before every pending message's arrival, so before its deadline), and far
    /// fewer runs than untimed: a 200 ms poll can no longer overtake a 2 ms round trip.
    pub fn set_bounded(&mut self, on: bool) {
        self.bounded = on;
        self.untimed |= on;
        self.late &= on;
    }
    /// Late messages (implies bounded): every copy sent, and every restart, draws a `Late`
    /// choice; a late copy or restart has no deadline, and may come at any later moment
    /// (`Semantics::BoundedLate`).
    pub fn set_late(&mut self, on: bool) {
        self.late = on;
        if on {
            self.set_bounded(true);
        }
    }
    pub fn is_untimed(&self) -> bool {
        self.untimed
    }
    /// Simulated time now (during a driven run: before the next event).
    pub fn now_us(&self) -> u64 {
        self.now_us
    }

    /// Run the model, letting `driver` pick every next event. `None` if the driver stopped it.
    pub fn run_driven<M: Model<Actor = A>, D: Driver<A>>(&mut self, model: &M, driver: &mut D) -> Option<Outcome> {
        if let Err(message) = crate::panics::catch(|| self.start(model)) {
            return Some(self.panicked(model, message));
        }
        self.resume_driven(model, driver)
    }

    /// Go on with a driven run from where it stands: a clone of a simulator taken inside
    /// `Driver::next` (before the event it was about to pick) resumes exactly there, as if the
    /// run had been replayed up to that point. Set its choices with `Choices::retape` first.
    pub fn resume_driven<M: Model<Actor = A>, D: Driver<A>>(&mut self, model: &M, driver: &mut D) -> Option<Outcome> {
        crate::panics::catch(|| self.drive(model, driver)).unwrap_or_else(|message| Some(self.panicked(model, message)))
    }

    fn drive<M: Model<Actor = A>, D: Driver<A>>(&mut self, model: &M, driver: &mut D) -> Option<Outcome> {
        let limit = model.config().time_limit_us;
        let end = loop {
            self.gather();
            self.find_eligible(limit);
            self.infos.clear();
            for &i in &self.eligible {
                self.infos.push(self.info(i));
            }
            if self.eligible.is_empty() {
                self.put_back(None);
                break RunEnd::Quiescent;
            }
            let pick = match driver.next(self, &self.infos) {
                Step::Run(i) => i,
                Step::Stop => {
                    self.put_back(None);
                    return None;
                }
            };
            // The driver's tie stands where a replay draws a `Tie` choice.
            self.w.stats.choices += (self.eligible.len() > 1) as u64;
            let ev = self.put_back(Some(self.eligible[pick])).expect("picked an eligible event");
            if let Some(end) = self.step(ev, limit) {
                break end;
            }
        };
        Some(self.finish(model, end))
    }

    /// Untimed mode's `next_event`: a `Tie` choice among the eligible events.
    pub(super) fn next_untimed(&mut self, time_limit_us: u64) -> Option<Event<A>> {
        self.gather();
        self.find_eligible(time_limit_us);
        if self.eligible.is_empty() {
            self.put_back(None);
            return None;
        }
        let pick = self.choices.pick(ChoiceKind::Tie, self.eligible.len() as u32) as usize;
        self.put_back(Some(self.eligible[pick]))
    }

    /// Move the events queued since the last step into `ties`, which holds every pending event
    /// of a driven or untimed run in `(at_us, seq)` order, the order a `Tie` indexes them (the
    /// order the queue pops them). Keeping them there, rather than popping the whole queue into
    /// `ties` and pushing it back at every step, is what makes a step cheap: that round trip was
    /// 44% of an exhaustive search's time. In untimed mode a fault start still pending after the
    /// fault phase can never happen: drop it.
    fn gather(&mut self) {
        while let Some(e) = self.queue.pop() {
            let at = self.ties.partition_point(|t| (t.at_us, t.seq) < (e.at_us, e.seq));
            self.tie_keys.insert(at, self.event_key(&e));
            self.ties.insert(at, e);
        }
        if self.untimed && self.now_us >= self.w.faults.fault_phase_us {
            let mut i = 0;
            while i < self.ties.len() {
                if matches!(self.ties[i].kind, EventKind::Crash { .. } | EventKind::Pause { .. } | EventKind::CutStart { .. }) {
                    self.take_tie(i);
                } else {
                    i += 1;
                }
            }
        }
        if self.untimed {
            self.drop_dead_events();
        }
    }

    /// Untimed, events that can do nothing go now, with the trace and count they would leave:
    /// a message to an incarnation that has crashed since it was sent (it is lost whenever it
    /// arrives), and a dead timer (`is_dead_timer`) whose deadline is reached (it would not
    /// even move the clock). Left pending, each could run before or after any other event and
    /// do nothing, which only splits states (the same state with and without it) and runs. The
    /// timed semantics keeps them: there a message's arrival time still orders the events
    /// around it.
    fn drop_dead_events(&mut self) {
        let mut i = 0;
        while i < self.ties.len() {
            let e = &self.ties[i];
            match e.kind {
                EventKind::Deliver { to, epoch, .. } if self.w.life[to].epoch != epoch => {
                    let EventKind::Deliver { from, to, epoch, msg } = self.take_tie(i).kind else { unreachable!("matched a delivery") };
                    let refused = self.w.refused(self.now_us, from, to, epoch, &msg);
                    debug_assert!(refused, "a message to a past incarnation is refused");
                }
                EventKind::Timer { id, .. } if e.at_us <= self.now_us && self.is_dead_timer(e) => {
                    self.take_tie(i);
                    self.w.cancelled.take(id);
                }
                _ => i += 1,
            }
        }
    }

    /// A timer that can no longer run a handler: cancelled, or set by an incarnation that has
    /// crashed since. It still moves the clock to its deadline when it comes due (untimed, the
    /// deadlines reached are the moments a delivery can happen at), and that is all it does.
    fn is_dead_timer(&self, e: &Event<A>) -> bool {
        match e.kind {
            EventKind::Timer { node, epoch, id, .. } => self.w.life[node].epoch != epoch || self.w.cancelled.contains(id),
            _ => false,
        }
    }

    /// Take the event at `take` out of `ties` (the rest stay, in order).
    fn put_back(&mut self, take: Option<usize>) -> Option<Event<A>> {
        take.map(|i| self.take_tie(i))
    }

    /// Remove `ties[i]` and its key.
    fn take_tie(&mut self, i: usize) -> Event<A> {
        self.tie_keys.remove(i);
        self.ties.remove(i)
    }

    /// Fill `eligible` with the indices (into `ties`, in order) of the events that may run next.
    /// Timed: those due at the earliest instant. Untimed: every delivery to a node that is not
    /// paused, every fault start (during the fault phase), and the timers with the earliest
    /// deadline — those past the time limit only when nothing else can run (the run ends there).
    fn find_eligible(&mut self, time_limit_us: u64) {
        self.eligible.clear();
        let Some(first) = self.ties.first() else { return };
        if !self.untimed {
            let t = first.at_us;
            let due = self.ties.iter().take_while(|e| e.at_us == t).count();
            self.eligible.extend(0..due);
            return;
        }
        let now = self.now_us;
        let ready = |s: &Self, e: &Event<A>| match e.kind {
            EventKind::Deliver { to, .. } => s.w.life[to].paused_until_us <= now,
            _ => is_async(&e.kind),
        };
        let deadline = self.ties.iter().filter(|e| !is_async(&e.kind)).map(|e| e.at_us).min();
        let others = self.ties.iter().any(|e| ready(self, e));
        // Bounded: the earliest deadline of a message that could be delivered now or of a
        // restart; no timer fires past it. (A message to a paused node waits for the resume, a
        // deadline event.)
        let due = if self.bounded {
            let bounded =
                |e: &Event<A>| matches!(e.kind, EventKind::Restart { .. }) || matches!(e.kind, EventKind::Deliver { .. }) && ready(self, e);
            self.ties.iter().filter(|e| bounded(e)).map(|e| e.at_us).min()
        } else {
            None
        };
        for (i, e) in self.ties.iter().enumerate() {
            let in_bound = due.is_none_or(|d| e.at_us <= d);
            let timer = !is_async(&e.kind) && Some(e.at_us) == deadline && in_bound && (e.at_us <= time_limit_us || !others);
            if timer || ready(self, e) {
                self.eligible.push(i);
            }
        }
    }

    /// Untimed mode: an asynchronous event happens now; a deadline moves the clock to it.
    pub(super) fn untimed_clock(&mut self, ev: &mut Event<A>) {
        if is_async(&ev.kind) {
            if let EventKind::Pause { until_us, .. } = &mut ev.kind {
                // Scheduled with the pause's length, relative to its (undrawn) start.
                *until_us = self.now_us + (*until_us - ev.at_us);
            }
            ev.at_us = self.now_us;
        } else {
            ev.at_us = ev.at_us.max(self.now_us);
        }
    }

    /// What a driver is told of `ties[i]`.
    fn info(&self, i: usize) -> EventInfo {
        let e = &self.ties[i];
        let node = match e.kind {
            EventKind::Deliver { to, .. } => Some(to),
            EventKind::Timer { node, .. } | EventKind::Restart { node } | EventKind::Pause { node, .. } | EventKind::Resume { node } => {
                Some(node)
            }
            EventKind::Crash { .. } | EventKind::CutStart { .. } | EventKind::CutEnd { .. } => None,
        };
        let advances_time = self.untimed && !is_async(&e.kind) && e.at_us > self.now_us;
        let late = matches!(e.kind, EventKind::Deliver { .. } | EventKind::Restart { .. }) && e.at_us & LATE_BIT != 0;
        let covered = late && self.now_us <= e.at_us & !LATE_BIT;
        EventInfo { key: self.tie_key(i), node, advances_time, covered }
    }

    /// `event_key` of `ties[i]`: the one computed when it joined them, unless the event is a
    /// timer that has died since (a dead timer's key is a stop of the clock).
    fn tie_key(&self, i: usize) -> u64 {
        let e = &self.ties[i];
        if self.is_dead_timer(e) {
            self.event_key(e)
        } else {
            self.cached_key(e, self.tie_keys[i])
        }
    }

    /// A live event's key as computed when it joined `ties`: its content cannot have changed
    /// while it was pending.
    fn cached_key(&self, e: &Event<A>, key: u64) -> u64 {
        debug_assert_eq!(key, self.event_key(e), "a pending event's key does not change while it is alive");
        key
    }

    /// The event's content. Its sequence number is left out (only the relative order of
    /// simultaneous events depends on it, which decides tie indices, not what can happen), and
    /// so is the time of an untimed asynchronous event (it happens whenever it is picked).
    fn event_key(&self, e: &Event<A>) -> u64 {
        let mut h = StableHasher::default();
        // A bounded delivery's or restart's time is its deadline, which decides what may
        // overtake it.
        let deadline = self.bounded && matches!(e.kind, EventKind::Deliver { .. } | EventKind::Restart { .. });
        if !(self.untimed && is_async(&e.kind)) || deadline {
            h.write_u64(e.at_us);
        }
        match &e.kind {
            EventKind::Deliver { from, to, epoch, msg } => (0u8, from, to, epoch, msg).hash(&mut h),
            // A dead timer is a stop of the clock at its deadline, whoever set it.
            EventKind::Timer { .. } if self.is_dead_timer(e) => 8u8.hash(&mut h),
            // Named by what it is, not by its id (see `exhaustive::timer_names`).
            EventKind::Timer { node, epoch, timer, .. } => (1u8, node, epoch, timer).hash(&mut h),
            EventKind::Crash { node, kind } => (2u8, node, kind).hash(&mut h),
            EventKind::Restart { node } => (3u8, node).hash(&mut h),
            EventKind::Pause { node, until_us } => (4u8, node, until_us).hash(&mut h),
            EventKind::Resume { node } => (5u8, node).hash(&mut h),
            EventKind::CutStart { node, dir, len_us } => (6u8, node, dir, len_us).hash(&mut h),
            EventKind::CutEnd { node, dir } => (7u8, node, dir).hash(&mut h),
        }
        h.finish()
    }

    /// A hash of everything the rest of the run depends on: the clock, every actor, every log
    /// (volatile and durable part), each node's up/down state, epoch and pause, the pending
    /// events (as a multiset; a dead timer only as a stop of the clock at its deadline), active
    /// partitions and the drawn fault rates. Left out: the history (the explorer hashes what its
    /// checker reads of it), counters (`Stats`), the sequence counter, and timer ids: a timer is
    /// named by its content (`exhaustive::timer_names`), so the order in which timers were set
    /// does not split states.
    pub fn state_hash(&self) -> u64 {
        let mut h = StableHasher::default();
        h.write_u64(self.now_us);
        // The pending events: `ties` with their keys (a driven run's, all of them), then any
        // still in the queue or `tied` (runs not driven), keyed now.
        let cached = self.ties.iter().zip(self.tie_keys.iter().map(|&k| Some(k)));
        let pending = cached.chain(self.queue.iter().chain(self.tied.iter()).map(|e| (e, None)));
        let _naming = SCRATCH.with(|s| {
            let (events, stops, names) = &mut *s.borrow_mut();
            events.clear();
            stops.clear();
            names.clear();
            for (e, key) in pending {
                // Dead timers are clock stops: which timer it was, and how many stop at one
                // deadline, make no difference (one reached is dropped: `drop_dead_events`).
                if self.is_dead_timer(e) {
                    stops.push(e.at_us);
                    continue;
                }
                let key = key.map_or_else(|| self.event_key(e), |k| self.cached_key(e, k));
                events.push(key);
                if let EventKind::Timer { id, .. } = e.kind {
                    names.push((id.0, key));
                }
            }
            events.sort_unstable();
            events.hash(&mut h);
            stops.sort_unstable();
            stops.dedup();
            stops.hash(&mut h);
            // Timer ids in actors' state hash as the live timers they name (see `timer_names`).
            Naming::new(names)
        });
        for (node, rt) in self.w.nodes.iter().zip(&self.w.life) {
            node.hash(&mut h);
            let paused = if rt.paused_until_us > self.now_us { rt.paused_until_us } else { 0 };
            (rt.down, rt.epoch, paused).hash(&mut h);
        }
        for log in &self.w.stores {
            (&log.records, log.synced, log.written).hash(&mut h);
        }
        // Cancelled timers still pending are clock stops above; other marks are inert.
        let mut cuts = self.w.links.cuts.clone();
        cuts.sort_unstable_by_key(|&(n, d)| (n, d as u8));
        cuts.hash(&mut h);
        let f = &self.w.faults;
        for p in [f.loss_probability, f.duplicate_probability, f.crash_probability, f.pause_probability, f.partition_probability] {
            h.write_u64(p.to_bits());
        }
        h.finish()
    }
}
