//! The client app: runs its user's purchases one after another; each is one operation, paid with
//! an idempotency key and retried under the design's policy until it settles. Every request of an
//! attempt (copies of a double click included) goes to a server instance the load balancer picks,
//! and every response that arrives is observed, late ones too; the first response to the current
//! attempt decides what the client does. A user told "failed" may pay again, under a new key. A
//! crashed app resumes its pending purchase with the key it persisted, or a fresh one.

use super::{Msg, Node, Record, Request, Shared, Timer, FIRST_SERVER};
use crate::knobs::{Backoff, ClientDesign, KeyPolicy, KeyStorage};
use crate::retry::{backoff_us, BudgetState};
use invariants::{Begin, Key, Obs, OpId, Settle, Status};
use sim::{ChoiceKind, Ctx, TimerId};

/// Everything a client is configured with (the same for every client of a scenario).
#[derive(Copy, Clone, Debug, PartialEq)]
pub struct Setup {
    pub design: ClientDesign,
    /// Purchases per client, one after another.
    pub ops: u32,
    /// Extra copies of each purchase's first request, fired at once (not when a crashed app
    /// resumes the purchase: that request is the app's, sent once).
    pub duplicates: u32,
    pub amount: u32,
    pub repay_probability: f64,
    /// The pause between one purchase settling and the next starting.
    pub think_us: u64,
    /// Server instances behind the load balancer.
    pub instances: u32,
    /// The app may crash: it then keeps its pending purchase durable.
    pub crashable: bool,
}

/// What the client is doing now.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Phase {
    /// Waiting for the response to `attempt` (or its timeout).
    Waiting,
    /// Sleeping before the next attempt.
    Backoff,
    Done,
}

#[derive(Clone, Debug, Hash)]
pub struct Client {
    setup: Shared<Setup>,
    index: u32,
    /// Index of the current purchase in `0..ops`.
    current: u32,
    /// Key generation of the current purchase: bumped by a re-payment or a key lost in a crash.
    session: u32,
    /// The user already paid again for the current purchase.
    repaid: bool,
    attempt: u32,
    phase: Phase,
    timeout: Option<TimerId>,
    prev_sleep_us: u64,
    /// Retry budget state: gRPC or AWS tokens, or SRE ratio counters.
    budget: BudgetState,
    /// What the current attempt's retry took from an AWS quota (refunded on success).
    retry_cost: u32,
    /// Set by a crash: the next start resumes from the durable log.
    resume: Option<(u32, u32, bool)>,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ClientTimer {
    Timeout {
        op: OpId,
        attempt: u32,
    },
    Retry {
        op: OpId,
    },
    /// The user's pause is over: the next purchase starts.
    Next {
        index: u32,
    },
}

impl Client {
    pub fn new(setup: Shared<Setup>, index: u32) -> Self {
        Client {
            setup,
            index,
            current: 0,
            session: 0,
            repaid: false,
            attempt: 0,
            phase: Phase::Done,
            timeout: None,
            prev_sleep_us: 0,
            budget: BudgetState::new(setup.design.budget),
            retry_cost: 0,
            resume: None,
        }
    }

    fn design(&self) -> &ClientDesign {
        &self.setup.design
    }

    fn op(&self) -> OpId {
        self.index * 10_000 + self.current
    }

    /// The idempotency key of the current attempt.
    fn key(&self) -> Key {
        let per_attempt = if self.design().key == KeyPolicy::PerAttempt { self.attempt } else { 0 };
        (self.op() as u64) << 16 | (self.session * 64 + per_attempt) as u64
    }

    /// The amount of the current attempt (a buggy client changes it on retries).
    fn amount(&self) -> u32 {
        let changed = self.design().retry_changes_payload && self.attempt > 1;
        self.setup.amount + self.current + if changed { 50 } else { 0 }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        match self.resume.take() {
            None if self.setup.ops > 0 => self.start_op(ctx, Begin::First),
            None => {}
            Some((index, _, true)) => {
                self.current = index + 1;
                if self.current < self.setup.ops {
                    self.start_op(ctx, Begin::First);
                }
            }
            Some((index, session, false)) => {
                self.current = index;
                // A key kept only in memory died with the app: the purchase starts over under a
                // fresh one.
                self.session = if self.design().key_storage == KeyStorage::Persisted { session } else { session + 1 };
                self.start_op(ctx, Begin::Restarted);
            }
        }
    }

    fn start_op(&mut self, ctx: &mut Ctx<'_, Node>, begin: Begin) {
        self.attempt = 0;
        self.retry_cost = 0;
        self.prev_sleep_us = self.design().base_us;
        if begin == Begin::First {
            self.session = 0;
            self.repaid = false;
        }
        if self.setup.crashable {
            // The pending purchase (and with `persisted`, its key) is durable before any request.
            ctx.write(Record::ClientPending { index: self.current, session: self.session });
            ctx.fsync();
        }
        ctx.observe(Obs::OpStarted { op: self.op(), amount: self.amount(), begin });
        // The user's double click fires copies; a purchase resumed after a crash is the app's
        // own recovery, sent once (the double click was before the crash).
        let copies = if begin == Begin::Restarted { 1 } else { 1 + self.setup.duplicates };
        self.send_attempt(ctx, copies);
    }

    fn send_attempt(&mut self, ctx: &mut Ctx<'_, Node>, copies: u32) {
        self.attempt += 1;
        self.budget.requests += 1;
        for copy in 0..copies {
            let (key, amount, incarnation) = (self.key(), self.amount(), ctx.incarnation());
            let req = Request { op: self.op(), attempt: self.attempt, copy, key, amount, incarnation };
            let server = ctx.choose(ChoiceKind::Model, self.setup.instances);
            ctx.observe(Obs::Sent { op: req.op, attempt: req.attempt, copy, key: req.key, amount: req.amount, server });
            ctx.send(FIRST_SERVER + server as usize, Msg::Request(req));
        }
        self.phase = Phase::Waiting;
        let timer = Timer::Client(ClientTimer::Timeout { op: self.op(), attempt: self.attempt });
        self.timeout = Some(ctx.set_timer(self.design().timeout_us, timer));
    }

    pub fn on_response(&mut self, ctx: &mut Ctx<'_, Node>, req: Request, status: Status) {
        let Request { op, attempt, copy, key, .. } = req;
        ctx.observe(Obs::Received { op, attempt, copy, key, status });
        // Only the first answer to the current attempt counts: an HTTP client that timed out, or
        // already has its answer, has closed that connection.
        // (The key too: after a restart or a re-payment the attempt numbers start again, and a
        // late answer under the old key is not this attempt's.)
        if self.phase != Phase::Waiting || op != self.op() || attempt != self.attempt || key != self.key() {
            return;
        }
        if let Some(t) = self.timeout.take() {
            ctx.cancel_timer(t);
        }
        match status {
            Status::Ok { charge, amount, .. } => {
                self.budget.success(self.design().budget, self.retry_cost);
                self.settle(ctx, Settle::Succeeded { charge, amount });
            }
            Status::Mismatch => self.settle(ctx, Settle::Rejected { code: 422 }),
            Status::StoredError => self.settle(ctx, Settle::Rejected { code: 500 }),
            Status::Unavailable { retry_after_us } => self.retry(ctx, if self.design().honour_retry_after { retry_after_us } else { 0 }),
            Status::Conflict | Status::ServerError => self.retry(ctx, 0),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, timer: ClientTimer) {
        match timer {
            ClientTimer::Timeout { op, attempt } if self.phase == Phase::Waiting && op == self.op() && attempt == self.attempt => {
                self.timeout = None;
                ctx.observe(Obs::TimedOut { op, attempt });
                self.retry_timed_out(ctx);
            }
            ClientTimer::Retry { op } if self.phase == Phase::Backoff && op == self.op() => self.send_attempt(ctx, 1),
            ClientTimer::Next { index } if self.phase == Phase::Done && index == self.current => self.start_op(ctx, Begin::First),
            _ => {}
        }
    }

    /// Retry after the policy's backoff (at least `floor_us`), if attempts and budget allow.
    fn retry(&mut self, ctx: &mut Ctx<'_, Node>, floor_us: u64) {
        self.retry_after(ctx, floor_us, false)
    }

    fn retry_timed_out(&mut self, ctx: &mut Ctx<'_, Node>) {
        self.retry_after(ctx, 0, true)
    }

    fn retry_after(&mut self, ctx: &mut Ctx<'_, Node>, floor_us: u64, timed_out: bool) {
        let d = self.setup.design;
        let allowed =
            if d.backoff == Backoff::None || self.attempt >= d.max_attempts { None } else { self.budget.allow_retry(d.budget, timed_out) };
        let Some(cost) = allowed else {
            let attempts = self.attempt;
            return self.settle(ctx, Settle::GaveUp { attempts });
        };
        self.retry_cost = cost;
        let sleep_us = backoff_us(d.backoff, d.base_us, d.cap_us, self.attempt, &mut self.prev_sleep_us, |hi| {
            ctx.choose(ChoiceKind::Jitter, hi.min(u32::MAX as u64) as u32 + 1) as u64
        })
        .max(floor_us);
        self.phase = Phase::Backoff;
        ctx.set_timer(sleep_us, Timer::Client(ClientTimer::Retry { op: self.op() }));
    }

    fn settle(&mut self, ctx: &mut Ctx<'_, Node>, outcome: Settle) {
        ctx.observe(Obs::Settled { op: self.op(), outcome });
        self.phase = Phase::Done;
        // Told it failed (or left not knowing), the user may pay again: a new key, same purchase.
        let failed = !matches!(outcome, Settle::Succeeded { .. });
        if failed && !self.repaid && ctx.flip(ChoiceKind::Model, self.setup.repay_probability) {
            self.repaid = true;
            self.session += 1;
            return self.start_op(ctx, Begin::Repay);
        }
        if self.setup.crashable {
            ctx.write(Record::ClientDone { index: self.current });
            ctx.fsync();
        }
        self.current += 1;
        if self.current < self.setup.ops {
            match self.setup.think_us {
                0 => self.start_op(ctx, Begin::First),
                t => {
                    ctx.set_timer(t, Timer::Client(ClientTimer::Next { index: self.current }));
                }
            }
        }
    }

    /// The app died: everything in memory is gone. What it persisted says where to resume.
    pub fn on_crash(&mut self, durable: &[Record]) {
        let mut resume = None;
        for r in durable {
            match *r {
                Record::ClientPending { index, session } => resume = Some((index, session, false)),
                Record::ClientDone { index } => resume = Some((index, 0, true)),
                _ => {}
            }
        }
        let (setup, index) = (self.setup, self.index);
        *self = Client::new(setup, index);
        // With nothing persisted the app had not begun its first purchase.
        self.resume = resume;
        if resume.is_none() && !setup.crashable {
            self.current = setup.ops;
        }
    }
}
