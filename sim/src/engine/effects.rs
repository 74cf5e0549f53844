//! What a handler's commands do: a handler runs with a `Ctx`, and its commands are carried out in
//! order, where they lie in `Sim::out`; a sent message meets the network (its link's fate, then a
//! delay per copy) and goes into the queue.

use super::{EventKind, Sim, LATE_BIT, LATE_PROBABILITY};
use crate::actor::{Actor, Cmd, Ctx, NodeId};
use crate::choices::ChoiceKind;
use crate::trace::{FaultKind, TraceKind};

impl<A: Actor> Sim<A> {
    /// Run one handler of `node`, then carry out the effects it asked for, in order.
    pub(super) fn handle(&mut self, node: NodeId, f: impl FnOnce(&mut A, &mut Ctx<'_, A>)) {
        self.handling = node;
        let mut ctx = Ctx {
            now_us: self.now_us,
            me: node,
            out: &mut self.out,
            choices: &mut self.choices,
            next_timer: &mut self.next_timer,
            incarnation: self.w.life[node].epoch,
        };
        f(&mut self.w.nodes[node], &mut ctx);
        self.apply_effects(node);
    }

    /// Carry out the effects the handler of `node` that just ran asked for, in order.
    #[inline(always)]
    pub(super) fn apply_effects(&mut self, node: NodeId) {
        // The commands are read where they lie, in `self.out` (taking the vector out of `self`
        // and putting it back cost ~15 instructions per handler).
        let n = self.out.len();
        let cmds = self.out.as_ptr();
        // SAFETY: the length goes to 0 first, then each command is moved out exactly once (by
        // `ptr::read`, or by `send`), in order; should a command panic, the rest (and a message
        // `send` had not moved yet) leak, never drop twice. The buffer neither moves nor is
        // written meanwhile: nothing below touches `self.out` (no handler runs inside `apply`),
        // and `as_ptr` makes no reference to it that a later `&mut self` would invalidate.
        unsafe { self.out.set_len(0) };
        for i in 0..n {
            let cmd = unsafe { &*cmds.add(i) };
            match cmd {
                // The observation goes from the buffer straight into the history (no copy of the
                // command first: see `world::push_entry`).
                Cmd::Observe(obs) => self.w.observe(self.now_us, node, unsafe { std::ptr::read(obs) }),
                // The message goes from the buffer straight into the queue: moved out of the
                // command first, it was copied twice more on its way.
                Cmd::Send { to, incarnation, msg } => unsafe { self.send(node, *to, *incarnation, msg) },
                _ => self.apply(node, unsafe { std::ptr::read(cmd) }),
            }
        }
        self.handling = usize::MAX;
    }

    #[inline(always)]
    pub(super) fn apply(&mut self, node: NodeId, cmd: Cmd<A>) {
        match cmd {
            Cmd::Send { to, incarnation, msg } => {
                let msg = std::mem::ManuallyDrop::new(msg);
                // SAFETY: `msg` is given up here (`ManuallyDrop`): `send` moves it out.
                unsafe { self.send(node, to, incarnation, &msg) }
            }
            Cmd::SetTimer { id, after_us, timer } => {
                let epoch = self.w.life[node].epoch;
                self.push(self.now_us + after_us, EventKind::Timer { node, epoch, id, timer });
            }
            local => self.w.apply_local(self.now_us, node, local),
        }
    }

    /// The network: the link's fate (see `World::send_fate`), then a delay per copy. The
    /// message is for `incarnation` of `to` if given, else for the one up now.
    ///
    /// # Safety
    ///
    /// `msg` is moved out (into the queue, or dropped if lost): the caller must neither use nor
    /// drop it after. Should `send` panic first (a send to a node that does not exist), it
    /// leaks, as the run's other unapplied commands do; it is never dropped twice. It is a
    /// reference so that the message is copied once, from the handler's command straight into
    /// its queue slot.
    pub(super) unsafe fn send(&mut self, from: NodeId, to: NodeId, incarnation: Option<u64>, msg: &A::Msg) {
        let Some(duplicated) = self.w.send_fate(self.now_us, from, to, msg, &mut self.choices) else {
            // SAFETY: the caller gave the message up; lost, it is dropped here, once.
            drop(unsafe { std::ptr::read(msg) });
            return;
        };
        let epoch = incarnation.unwrap_or(self.w.life[to].epoch);
        if duplicated {
            let at = self.arrival_us(from, to);
            self.push(at, EventKind::Deliver { from, to, epoch, msg: msg.clone() });
        }
        let at = self.arrival_us(from, to);
        // SAFETY: the caller gave the message up; it is moved into the queue here, once.
        self.push(at, EventKind::Deliver { from, to, epoch, msg: unsafe { std::ptr::read(msg) } });
    }

    /// When a copy sent now is due: after a drawn delay, or in the search's semantics
    /// (`untimed_arrival_us`) at no drawn time.
    #[inline(always)]
    pub(super) fn arrival_us(&mut self, from: NodeId, to: NodeId) -> u64 {
        if self.untimed {
            return self.untimed_arrival_us(from, to);
        }
        let (lo, hi) = (self.w.faults.delay_us_min, self.w.faults.delay_us_max);
        self.now_us + lo + self.choices.pick(ChoiceKind::Delay, (hi - lo + 1) as u32) as u64
    }

    /// With late messages (`set_late`): whether the copy or restart being scheduled is late, a
    /// `Late` choice. Without them no choice is drawn.
    pub(super) fn draw_late(&mut self) -> bool {
        self.late && self.choices.flip(ChoiceKind::Late, LATE_PROBABILITY)
    }

    /// Untimed, any pending delivery may run next (see `next_untimed`): the copy is due now.
    /// Bounded, it is due by its deadline, the longest delay, unless (with late messages, see
    /// `set_late`) the search makes it late (a `Late` choice, within `Bounds::max_late`): then
    /// it has no deadline and may arrive at any later moment, as every message may untimed.
    /// That is a delay past the bound on any link, reliable or not: a TCP connection delivers
    /// what it carries, but a lost segment is retransmitted after a timeout of 200 ms or more,
    /// and a stalled receiver reads late.
    #[inline(never)]
    pub(super) fn untimed_arrival_us(&mut self, from: NodeId, to: NodeId) -> u64 {
        if !self.bounded {
            return self.now_us;
        }
        let deadline_us = self.now_us + self.w.faults.delay_us_max;
        if !self.draw_late() {
            return deadline_us;
        }
        self.w.stats.messages_late += 1;
        self.w.note(self.now_us, from, || TraceKind::Late { to });
        self.w.fault(self.now_us, from, FaultKind::Late { to });
        LATE_BIT | deadline_us
    }
}
