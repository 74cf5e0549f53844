//! The client fleet: `clients` clients in one node (the engine's nodes are few; a fleet's
//! clients share its fate in a crash, as the pods of one deployment do). Each client's operations
//! arrive open loop or closed loop; each operation is sent with one idempotency key, and retried
//! after a timeout, a 409 or a 503 under the fleet's backoff, `Retry-After` handling, attempt cap
//! and the client's retry budget. Operations in progress live in a slab reused run after run.

use super::design::{Arrivals, FleetDesign, RetryAfter};
use super::{Call, CODE_CONFLICT, CODE_GATEWAY_TIMEOUT, CODE_OK, CODE_UNAVAILABLE};
use crate::knobs::Backoff;
use crate::payment::Shared;
use crate::retry::{backoff_us, BudgetState};
use crate::world::{Msg, Node, Record, Timer};
use invariants::Obs;
use sim::{ChoiceKind, Ctx, NodeId, TimerId};

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum FleetTimer {
    /// Client `client`'s next operation arrives.
    Arrive {
        client: u32,
    },
    Timeout {
        slot: u32,
        op: u32,
        attempt: u32,
    },
    Retry {
        slot: u32,
        op: u32,
    },
}

/// What the fleet is configured with.
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct FleetSetup {
    pub design: FleetDesign,
    /// Where requests go: the outermost tier, or the service if there are none.
    pub server: NodeId,
}

/// Where a slot's request stands (the fleet's operations, a tier's forwarded calls).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub(super) enum Phase {
    Free,
    Waiting,
    Backoff,
}

/// One operation in progress.
#[derive(Copy, Clone, Debug, Hash)]
struct Op {
    client: u32,
    op: u32,
    attempt: u32,
    phase: Phase,
    slow: bool,
    prev_sleep_us: u64,
    /// What the current attempt's retry took from the budget (refunded on success).
    cost: u32,
    arrived_us: u64,
    timeout: Option<TimerId>,
}

#[derive(Copy, Clone, Debug, Hash)]
struct ClientState {
    /// The next operation's number (kept across a crash: ids come from a clock, not memory).
    next_op: u32,
    budget: BudgetState,
}

#[derive(Clone, Debug, Hash)]
pub struct Fleet {
    setup: Shared<FleetSetup>,
    clients: Vec<ClientState>,
    ops: Vec<Op>,
    free: Vec<u32>,
    /// Operations in progress when the fleet crashed, as `(client, op)`: their users saw an
    /// error, and `settles` does not wait for them.
    forgotten: Vec<(u32, u32)>,
}

impl Fleet {
    pub fn new(setup: Shared<FleetSetup>) -> Fleet {
        let mut f = Fleet { setup, clients: Vec::new(), ops: Vec::new(), free: Vec::new(), forgotten: Vec::new() };
        f.reset(setup);
        f
    }

    /// Back to the state `new` gives, keeping the buffers.
    pub fn reset(&mut self, setup: Shared<FleetSetup>) {
        self.setup = setup;
        let fresh = ClientState { next_op: 0, budget: BudgetState::new(setup.design.budget) };
        self.clients.clear();
        self.clients.resize(setup.design.clients as usize, fresh);
        self.ops.clear();
        self.free.clear();
        self.forgotten.clear();
    }

    /// Operations dropped by a crash of the fleet (see the field).
    pub fn forgotten(&self) -> &[(u32, u32)] {
        &self.forgotten
    }

    fn design(&self) -> &FleetDesign {
        &self.setup.design
    }

    /// A uniform draw in `1..=2 * interval`: the gap before a client's next operation. Never 0:
    /// a shrinker's all-zero choices would otherwise make operations arrive forever at one instant.
    fn gap_us(&self, ctx: &mut Ctx<'_, Node>) -> u64 {
        1 + ctx.choose(ChoiceKind::Model, (2 * self.design().interval_us) as u32) as u64
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        for client in 0..self.design().clients {
            let gap = self.gap_us(ctx);
            ctx.set_timer(gap, Timer::Fleet(FleetTimer::Arrive { client }));
        }
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_, Node>, client: u32) {
        let d = *self.design();
        if ctx.now_us() >= d.duration_us {
            return;
        }
        if d.arrivals == Arrivals::Open {
            let gap = self.gap_us(ctx);
            ctx.set_timer(gap, Timer::Fleet(FleetTimer::Arrive { client }));
        }
        let c = &mut self.clients[client as usize];
        let op = c.next_op;
        c.next_op += 1;
        let slow = d.slow_per_mille > 0 && ctx.choose(ChoiceKind::Model, 1000) < d.slow_per_mille;
        let state = Op {
            client,
            op,
            attempt: 0,
            phase: Phase::Free,
            slow,
            prev_sleep_us: d.base_us,
            cost: 0,
            arrived_us: ctx.now_us(),
            timeout: None,
        };
        let slot = super::take_slot(&mut self.ops, &mut self.free, state);
        ctx.observe(Obs::Offered { client, op });
        self.send(ctx, slot);
    }

    fn send(&mut self, ctx: &mut Ctx<'_, Node>, slot: u32) {
        let (server, timeout_us) = (self.setup.server, self.design().timeout_us);
        let o = &mut self.ops[slot as usize];
        o.attempt += 1;
        o.phase = Phase::Waiting;
        self.clients[o.client as usize].budget.requests += 1;
        let call = Call { client: o.client, op: o.op, attempt: o.attempt, slot, slow: o.slow };
        ctx.observe(Obs::Attempted { client: o.client, op: o.op, attempt: o.attempt });
        ctx.send(server, Msg::Call(call));
        let t = Timer::Fleet(FleetTimer::Timeout { slot, op: o.op, attempt: o.attempt });
        o.timeout = Some(ctx.set_timer(timeout_us, t));
    }

    /// The operation in `slot`, if it is still `op` at `attempt` and waiting for an answer.
    fn waiting(&self, slot: u32, op: u32, client: u32, attempt: u32) -> bool {
        self.ops.get(slot as usize).is_some_and(|o| o.phase == Phase::Waiting && o.op == op && o.client == client && o.attempt == attempt)
    }

    pub fn on_answer(&mut self, ctx: &mut Ctx<'_, Node>, call: Call, code: u16, retry_after_us: u32) {
        if !self.waiting(call.slot, call.op, call.client, call.attempt) {
            return; // a late answer: that attempt timed out, or the operation is done
        }
        let o = &mut self.ops[call.slot as usize];
        if let Some(t) = o.timeout.take() {
            ctx.cancel_timer(t);
        }
        let cost = o.cost;
        match code {
            CODE_OK => {
                let budget = self.design().budget;
                self.clients[call.client as usize].budget.success(budget, cost);
                self.finish(ctx, call.slot, true);
            }
            CODE_UNAVAILABLE => {
                let ra = retry_after_us as u64;
                let floor = match self.design().retry_after {
                    RetryAfter::Ignored => 0,
                    RetryAfter::Exact => ra,
                    RetryAfter::Jittered => ra + ctx.choose(ChoiceKind::Jitter, retry_after_us.saturating_add(1)) as u64,
                };
                self.retry(ctx, call.slot, floor, false);
            }
            CODE_CONFLICT => self.retry(ctx, call.slot, 0, false),
            // A tier in between gave up on the service: as good as a timeout here.
            CODE_GATEWAY_TIMEOUT => self.retry(ctx, call.slot, 0, true),
            other => unreachable!("answer {other} from the overload server"),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: FleetTimer) {
        match t {
            FleetTimer::Arrive { client } => self.arrive(ctx, client),
            FleetTimer::Timeout { slot, op, attempt } => {
                let client = self.ops.get(slot as usize).map_or(u32::MAX, |o| o.client);
                if self.waiting(slot, op, client, attempt) {
                    self.ops[slot as usize].timeout = None;
                    ctx.observe(Obs::AttemptTimedOut { client, op, attempt });
                    self.retry(ctx, slot, 0, true);
                }
            }
            FleetTimer::Retry { slot, op } => {
                if self.ops.get(slot as usize).is_some_and(|o| o.phase == Phase::Backoff && o.op == op) {
                    self.send(ctx, slot);
                }
            }
        }
    }

    /// Retry after the backoff (at least `floor_us`), if the attempt cap and the budget allow;
    /// else give up.
    fn retry(&mut self, ctx: &mut Ctx<'_, Node>, slot: u32, floor_us: u64, timed_out: bool) {
        let d = *self.design();
        let o = &mut self.ops[slot as usize];
        let allowed = if d.backoff == Backoff::None || o.attempt >= d.max_attempts {
            None
        } else {
            self.clients[o.client as usize].budget.allow_retry(d.budget, timed_out)
        };
        let Some(cost) = allowed else { return self.finish(ctx, slot, false) };
        o.cost = cost;
        let sleep = backoff_us(d.backoff, d.base_us, d.cap_us, o.attempt, &mut o.prev_sleep_us, |hi| {
            ctx.choose(ChoiceKind::Jitter, hi.min(u32::MAX as u64 - 1) as u32 + 1) as u64
        })
        .max(floor_us);
        o.phase = Phase::Backoff;
        ctx.set_timer(sleep, Timer::Fleet(FleetTimer::Retry { slot, op: o.op }));
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, Node>, slot: u32, ok: bool) {
        let o = &mut self.ops[slot as usize];
        o.phase = Phase::Free;
        ctx.observe(Obs::Finished { client: o.client, op: o.op, attempts: o.attempt, ok, arrived_us: o.arrived_us });
        let client = o.client;
        self.free.push(slot);
        if self.design().arrivals == Arrivals::Closed {
            let gap = self.gap_us(ctx);
            ctx.set_timer(gap, Timer::Fleet(FleetTimer::Arrive { client }));
        }
    }

    /// The fleet went down: every operation in progress is forgotten (its users see an error).
    pub fn on_crash(&mut self, _durable: &[Record]) {
        let next: Vec<u32> = self.clients.iter().map(|c| c.next_op).collect();
        let mut forgotten = std::mem::take(&mut self.forgotten);
        forgotten.extend(self.ops.iter().filter(|o| o.phase != Phase::Free).map(|o| (o.client, o.op)));
        let setup = self.setup;
        self.reset(setup);
        self.forgotten = forgotten;
        for (c, n) in self.clients.iter_mut().zip(next) {
            c.next_op = n;
        }
    }
}
