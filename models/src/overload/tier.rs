//! A tier between the clients and the service (a gateway, a backend-for-frontend, a mid-tier
//! service). It forwards each request it gets one tier in, retries that call under its own
//! policy (`TierDesign`), and answers its caller with the first success or, when it gives up,
//! with the last refusal (503, 409) or 504 after a timeout. Each tier that retries multiplies the
//! requests that reach the service: the amplification `recovery` judges.
//!
//! A tier keeps no budget and ignores `Retry-After` (what a plain retry wrapper around an RPC
//! does); forwarded calls in progress live in a slab reused run after run.

use super::design::TierDesign;
use super::fleet::Phase;
use super::{Call, CODE_GATEWAY_TIMEOUT, CODE_OK};
use crate::knobs::Backoff;
use crate::payment::Shared;
use crate::retry::backoff_us;
use crate::world::{Msg, Node, Record, Timer};
use invariants::Obs;
use sim::{ChoiceKind, Ctx, NodeId, TimerId};

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum TierTimer {
    /// The forwarded call in `slot` (its `serial`-th use) had no answer to attempt `attempt`.
    Timeout { slot: u32, serial: u32, attempt: u32 },
    /// Time to send the call in `slot` again.
    Retry { slot: u32, serial: u32 },
}

/// What a tier is configured with.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct TierSetup {
    pub design: TierDesign,
    /// 0 for the outermost tier.
    pub index: u8,
    /// The next tier in, or the service.
    pub next: NodeId,
}

/// One request being forwarded: `call` as the caller sent it (the answer goes back with it).
#[derive(Copy, Clone, Debug, Hash)]
struct Forward {
    call: Call,
    from: NodeId,
    attempt: u32,
    phase: Phase,
    /// Told apart from earlier uses of the slot, so a stale timer does nothing.
    serial: u32,
    prev_sleep_us: u64,
    timeout: Option<TimerId>,
}

#[derive(Clone, Debug, Hash)]
pub struct Tier {
    setup: Shared<TierSetup>,
    slots: Vec<Forward>,
    free: Vec<u32>,
    serial: u32,
}

impl Tier {
    pub fn new(setup: Shared<TierSetup>) -> Tier {
        Tier { setup, slots: Vec::new(), free: Vec::new(), serial: 0 }
    }

    /// Back to the state `new` gives, keeping the buffers.
    pub fn reset(&mut self, setup: Shared<TierSetup>) {
        self.setup = setup;
        self.slots.clear();
        self.free.clear();
        self.serial = 0;
    }

    pub fn on_call(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, call: Call) {
        self.serial += 1;
        let f = Forward {
            call,
            from,
            attempt: 0,
            phase: Phase::Free,
            serial: self.serial,
            prev_sleep_us: self.setup.design.base_us,
            timeout: None,
        };
        let slot = super::take_slot(&mut self.slots, &mut self.free, f);
        self.send(ctx, slot);
    }

    fn send(&mut self, ctx: &mut Ctx<'_, Node>, slot: u32) {
        let s = *self.setup;
        let f = &mut self.slots[slot as usize];
        f.attempt += 1;
        f.phase = Phase::Waiting;
        ctx.observe(Obs::Forwarded { tier: s.index, client: f.call.client, op: f.call.op, attempt: f.attempt });
        // One tier in, the call is this tier's: its slot and attempt number come back with the answer.
        ctx.send(s.next, Msg::Call(Call { attempt: f.attempt, slot, ..f.call }));
        let t = Timer::Tier(TierTimer::Timeout { slot, serial: f.serial, attempt: f.attempt });
        f.timeout = Some(ctx.set_timer(s.design.timeout_us, t));
    }

    /// The slot's call, if it is still the one that sent `call` and waits for its answer.
    fn waiting(&self, call: &Call) -> bool {
        self.slots
            .get(call.slot as usize)
            .is_some_and(|f| f.phase == Phase::Waiting && f.attempt == call.attempt && f.call.client == call.client && f.call.op == call.op)
    }

    pub fn on_answer(&mut self, ctx: &mut Ctx<'_, Node>, call: Call, code: u16, retry_after_us: u32) {
        if !self.waiting(&call) {
            return; // a late answer: that attempt timed out, or the request was answered
        }
        let f = &mut self.slots[call.slot as usize];
        if let Some(t) = f.timeout.take() {
            ctx.cancel_timer(t);
        }
        if code == CODE_OK {
            return self.answer(ctx, call.slot, CODE_OK, 0);
        }
        self.retry_or(ctx, call.slot, code, retry_after_us);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: TierTimer) {
        let live = |s: &Self, slot: u32, serial: u32, phase: Phase| {
            s.slots.get(slot as usize).is_some_and(|f| f.serial == serial && f.phase == phase)
        };
        match t {
            TierTimer::Timeout { slot, serial, attempt } => {
                if live(self, slot, serial, Phase::Waiting) && self.slots[slot as usize].attempt == attempt {
                    self.slots[slot as usize].timeout = None;
                    self.retry_or(ctx, slot, CODE_GATEWAY_TIMEOUT, 0);
                }
            }
            TierTimer::Retry { slot, serial } => {
                if live(self, slot, serial, Phase::Backoff) {
                    self.send(ctx, slot);
                }
            }
        }
    }

    /// Retry after the backoff if attempts are left; else answer the caller with `code`.
    fn retry_or(&mut self, ctx: &mut Ctx<'_, Node>, slot: u32, code: u16, retry_after_us: u32) {
        let d = self.setup.design;
        let f = &mut self.slots[slot as usize];
        if d.backoff == Backoff::None || f.attempt >= d.max_attempts {
            return self.answer(ctx, slot, code, retry_after_us);
        }
        let sleep = backoff_us(d.backoff, d.base_us, d.cap_us, f.attempt, &mut f.prev_sleep_us, |hi| {
            ctx.choose(ChoiceKind::Jitter, hi.min(u32::MAX as u64 - 1) as u32 + 1) as u64
        });
        f.phase = Phase::Backoff;
        ctx.set_timer(sleep, Timer::Tier(TierTimer::Retry { slot, serial: f.serial }));
    }

    fn answer(&mut self, ctx: &mut Ctx<'_, Node>, slot: u32, code: u16, retry_after_us: u32) {
        let f = &mut self.slots[slot as usize];
        f.phase = Phase::Free;
        ctx.send(f.from, Msg::Answer { call: f.call, code, retry_after_us });
        self.free.push(slot);
    }

    /// A crash forgets every forwarded request: their callers find out by their own timeouts.
    pub fn on_crash(&mut self, _durable: &[Record]) {
        let (setup, serial) = (self.setup, self.serial);
        self.reset(setup);
        self.serial = serial;
    }
}
