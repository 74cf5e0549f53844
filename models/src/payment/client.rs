//! The client: runs its operations one after another; each operation is one charge, sent with an
//! idempotency key and retried under the design's policy until it settles.

use super::{Msg, Node, Request, Shared, Timer, SERVER};
use crate::knobs::{Backoff, ClientDesign, KeyPolicy, RetryBudget};
use invariants::{Key, Obs, OpId, Settle, Status};
use sim::{ChoiceKind, Ctx, TimerId};

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
    design: Shared<ClientDesign>,
    index: u32,
    ops: u32,
    duplicates: u32,
    amount: u32,
    /// Index of the current operation in `0..ops`.
    current: u32,
    attempt: u32,
    phase: Phase,
    timeout: Option<TimerId>,
    prev_sleep_us: u64,
    /// Retry budget state: gRPC tokens (x1000), or SRE ratio counters.
    tokens_milli: i64,
    requests: u64,
    retries: u64,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ClientTimer {
    Timeout { op: OpId, attempt: u32 },
    Retry { op: OpId },
}

impl Client {
    pub fn new(design: Shared<ClientDesign>, index: u32, ops: u32, duplicates: u32, amount: u32) -> Self {
        let tokens_milli = match design.budget {
            RetryBudget::TokenBucket { max_tokens, .. } => (max_tokens * 1000.0) as i64,
            _ => 0,
        };
        Client {
            design,
            index,
            ops,
            duplicates,
            amount,
            current: 0,
            attempt: 0,
            phase: Phase::Done,
            timeout: None,
            prev_sleep_us: 0,
            tokens_milli,
            requests: 0,
            retries: 0,
        }
    }

    fn op(&self) -> OpId {
        self.index * 1000 + self.current
    }

    /// The idempotency key of the current attempt.
    fn key(&self) -> Key {
        let per_attempt = if self.design.key == KeyPolicy::PerAttempt { self.attempt as u64 } else { 0 };
        (self.op() as u64) << 16 | per_attempt
    }

    /// The amount of the current attempt (a buggy client changes it on retries).
    fn amount(&self) -> u32 {
        let changed = self.design.retry_changes_payload && self.attempt > 1;
        self.amount + self.current + if changed { 50 } else { 0 }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        if self.ops > 0 {
            self.start_op(ctx);
        }
    }

    fn start_op(&mut self, ctx: &mut Ctx<'_, Node>) {
        self.attempt = 0;
        self.prev_sleep_us = self.design.base_us;
        ctx.observe(Obs::OpStarted { op: self.op(), amount: self.amount() });
        self.send_attempt(ctx);
    }

    fn send_attempt(&mut self, ctx: &mut Ctx<'_, Node>) {
        self.attempt += 1;
        self.requests += 1;
        let copies = if self.attempt == 1 { 1 + self.duplicates } else { 1 };
        let req = Request { op: self.op(), attempt: self.attempt, key: self.key(), amount: self.amount() };
        ctx.observe(Obs::Sent { op: req.op, attempt: req.attempt, key: req.key, amount: req.amount, copies });
        for _ in 0..copies {
            ctx.send(SERVER, Msg::Request(req));
        }
        self.phase = Phase::Waiting;
        self.timeout =
            Some(ctx.set_timer(self.design.timeout_us, Timer::Client(ClientTimer::Timeout { op: req.op, attempt: req.attempt })));
    }

    pub fn on_response(&mut self, ctx: &mut Ctx<'_, Node>, op: OpId, attempt: u32, status: Status) {
        // A response to an abandoned attempt is discarded, as an HTTP client that timed out would.
        if self.phase != Phase::Waiting || op != self.op() || attempt != self.attempt {
            return;
        }
        if let Some(t) = self.timeout.take() {
            ctx.cancel_timer(t);
        }
        ctx.observe(Obs::Received { op, attempt, key: self.key(), status });
        match status {
            Status::Ok { charge, amount, .. } => {
                self.refund();
                self.settle(ctx, Settle::Succeeded { charge, amount });
            }
            Status::Mismatch => self.settle(ctx, Settle::Rejected { code: 422 }),
            Status::Unavailable { retry_after_us } => self.retry(ctx, if self.design.honour_retry_after { retry_after_us } else { 0 }),
            Status::Conflict | Status::ServerError => self.retry(ctx, 0),
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, timer: ClientTimer) {
        match timer {
            ClientTimer::Timeout { op, attempt } if self.phase == Phase::Waiting && op == self.op() && attempt == self.attempt => {
                self.timeout = None;
                ctx.observe(Obs::TimedOut { op, attempt });
                self.retry(ctx, 0);
            }
            ClientTimer::Retry { op } if self.phase == Phase::Backoff && op == self.op() => self.send_attempt(ctx),
            _ => {}
        }
    }

    /// Retry after the policy's backoff (at least `floor_us`), if attempts and budget allow.
    fn retry(&mut self, ctx: &mut Ctx<'_, Node>, floor_us: u64) {
        if self.design.backoff == Backoff::None || self.attempt >= self.design.max_attempts || !self.budget_allows() {
            let attempts = self.attempt;
            return self.settle(ctx, Settle::GaveUp { attempts });
        }
        self.retries += 1;
        let sleep_us = self.backoff_us(ctx).max(floor_us);
        self.phase = Phase::Backoff;
        ctx.set_timer(sleep_us, Timer::Client(ClientTimer::Retry { op: self.op() }));
    }

    /// Brooker's formulas; `n` is the number of the retry (0 for the first).
    fn backoff_us(&mut self, ctx: &mut Ctx<'_, Node>) -> u64 {
        let d = &self.design;
        let n = (self.attempt - 1).min(40);
        let exp = d.cap_us.min(d.base_us.saturating_mul(1 << n));
        let mut jitter = |hi: u64| ctx.choose(ChoiceKind::Jitter, hi.min(u32::MAX as u64) as u32 + 1) as u64;
        match d.backoff {
            Backoff::None | Backoff::Immediate => 0,
            Backoff::Exponential => exp,
            Backoff::FullJitter => jitter(exp),
            Backoff::EqualJitter => exp / 2 + jitter(exp / 2),
            Backoff::Decorrelated => {
                let hi = self.prev_sleep_us.saturating_mul(3).max(d.base_us);
                let sleep = d.cap_us.min(d.base_us + jitter(hi - d.base_us));
                self.prev_sleep_us = sleep;
                sleep
            }
        }
    }

    fn budget_allows(&mut self) -> bool {
        match self.design.budget {
            RetryBudget::None => true,
            RetryBudget::TokenBucket { max_tokens, .. } => {
                self.tokens_milli = (self.tokens_milli - 1000).max(0);
                self.tokens_milli as f64 > max_tokens * 500.0
            }
            RetryBudget::Ratio { percent } => (self.retries as f64) < self.requests as f64 * percent / 100.0,
        }
    }

    fn refund(&mut self) {
        if let RetryBudget::TokenBucket { max_tokens, token_ratio } = self.design.budget {
            self.tokens_milli = (self.tokens_milli + (token_ratio * 1000.0) as i64).min((max_tokens * 1000.0) as i64);
        }
    }

    fn settle(&mut self, ctx: &mut Ctx<'_, Node>, outcome: Settle) {
        ctx.observe(Obs::Settled { op: self.op(), outcome });
        self.phase = Phase::Done;
        self.current += 1;
        if self.current < self.ops {
            self.start_op(ctx);
        }
    }

    /// A crashed client forgets everything (clients are not crashed by the presets).
    pub fn on_crash(&mut self) {
        self.phase = Phase::Done;
        self.current = self.ops;
    }
}
