//! The service under load: a bounded worker pool behind a bounded first-come-first-served queue.
//! A request waits for a worker; a worker spends the service time on it and answers 200. When
//! the queue is full the service sheds (503 with `Retry-After`, or a silent drop). During the
//! outage window it answers every request 503 (or nothing), and the work it had is lost. A
//! request whose key another request is working on gets 409 at once, or holds its worker until
//! that request finishes (`InFlightPolicy`).
//!
//! The idempotency layer is modelled by its in-flight check only: a retry of a key that already
//! finished is served again at full cost (reading a stored result costs a worker too).
//!
//! With `Writes::OneRow` every request is a read-modify-write of one row under optimistic
//! concurrency: it reads the row's version when a worker takes it and commits when its service
//! time ends, unless another request committed first (then 409, a write conflict).

use super::design::{InFlightPolicy, OutageMode, ServerDesign, Shedding, Writes};
use super::{Call, CODE_CONFLICT, CODE_DROPPED, CODE_OK, CODE_UNAVAILABLE};
use crate::payment::Shared;
use crate::world::{Msg, Node, Record, Timer};
use invariants::Obs;
use sim::{Ctx, NodeId};
use std::collections::VecDeque;

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum PoolTimer {
    /// Worker `worker` finishes the request it took in generation `gen`.
    Done { worker: u32, gen: u32 },
    /// The outage begins: the work in hand is lost.
    OutageStarts,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Worker {
    Idle,
    /// Serving a request that read the shared row at version `.1` (see `Writes::OneRow`).
    Serving(Call, u32),
    /// Held by a request waiting for its key's first request to finish.
    Blocked(Call),
}

#[derive(Copy, Clone, Debug, Hash)]
struct Queued {
    call: Call,
    from: NodeId,
    at_us: u64,
}

#[derive(Clone, Debug, Hash)]
pub struct Pool {
    design: Shared<ServerDesign>,
    queue: VecDeque<Queued>,
    workers: Vec<(Worker, NodeId)>,
    blocked: u32,
    /// Bumped when the outage throws the work away: earlier `Done` timers are void.
    gen: u32,
    /// The shared row's version (`Writes::OneRow`): durable, it survives crashes and outages.
    version: u32,
}

impl Pool {
    pub fn new(design: Shared<ServerDesign>) -> Pool {
        let mut p = Pool { design, queue: VecDeque::new(), workers: Vec::new(), blocked: 0, gen: 0, version: 0 };
        p.reset(design);
        p
    }

    /// Back to the state `new` gives, keeping the buffers.
    pub fn reset(&mut self, design: Shared<ServerDesign>) {
        self.design = design;
        self.queue.clear();
        self.queue.reserve(design.queue_limit.min(4096) as usize);
        self.workers.clear();
        self.workers.resize(design.workers as usize, (Worker::Idle, 0));
        self.blocked = 0;
        self.gen = 0;
        self.version = 0;
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some(o) = self.design.outage {
            if ctx.now_us() <= o.start_us {
                ctx.set_timer(o.start_us - ctx.now_us(), Timer::Pool(PoolTimer::OutageStarts));
            }
        }
    }

    fn down(&self, now_us: u64) -> Option<OutageMode> {
        let o = self.design.outage?;
        (o.start_us <= now_us && now_us < o.start_us + o.duration_us).then_some(o.mode)
    }

    fn answer(&self, ctx: &mut Ctx<'_, Node>, to: NodeId, call: Call, code: u16) {
        let retry_after_us = if code == CODE_UNAVAILABLE { self.design.retry_after_us as u32 } else { 0 };
        ctx.send(to, Msg::Answer { call, code, retry_after_us });
    }

    fn refuse(&self, ctx: &mut Ctx<'_, Node>, from: NodeId, call: Call, code: u16) {
        ctx.observe(Obs::Refused { client: call.client, op: call.op, code });
        if code != CODE_DROPPED {
            self.answer(ctx, from, call, code);
        }
    }

    pub fn on_call(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, call: Call) {
        let d = *self.design;
        if let Some(mode) = self.down(ctx.now_us()) {
            let code = if mode == OutageMode::Unavailable503 { CODE_UNAVAILABLE } else { CODE_DROPPED };
            return self.refuse(ctx, from, call, code);
        }
        let q = Queued { call, from, at_us: ctx.now_us() };
        if self.queue.is_empty() {
            if let Some(w) = self.workers.iter().position(|w| w.0 == Worker::Idle) {
                return self.take(ctx, w, q);
            }
        }
        if self.queue.len() < d.queue_limit as usize {
            self.queue.push_back(q);
            return;
        }
        let code = if d.when_full == Shedding::Reject503 { CODE_UNAVAILABLE } else { CODE_DROPPED };
        self.refuse(ctx, from, call, code);
    }

    /// Worker `w` (idle) takes `q`: serves it, answers 409, or blocks on its key. After a 409
    /// the worker is still idle and takes the next queued request.
    fn take(&mut self, ctx: &mut Ctx<'_, Node>, w: usize, q: Queued) {
        let key = q.call.key();
        let in_flight = self.workers.iter().any(|(x, _)| matches!(x, Worker::Serving(c, _) if c.key() == key));
        let waited_us = ctx.now_us() - q.at_us;
        if in_flight {
            match self.design.in_flight {
                InFlightPolicy::Reject409 => {
                    self.refuse(ctx, q.from, q.call, CODE_CONFLICT);
                    return self.next(ctx, w);
                }
                InFlightPolicy::Block => {
                    self.blocked += 1;
                    self.workers[w] = (Worker::Blocked(q.call), q.from);
                    ctx.observe(Obs::Blocked { client: q.call.client, op: q.call.op, waited_us, blocked: self.blocked });
                    return;
                }
            }
        }
        ctx.observe(Obs::Served { client: q.call.client, op: q.call.op, waited_us, queue: self.queue.len() as u32, blocked: self.blocked });
        self.workers[w] = (Worker::Serving(q.call, self.version), q.from);
        let d = &self.design;
        let service_us = if q.call.slow { d.slow_service_us } else { d.service_us };
        ctx.set_timer(service_us, Timer::Pool(PoolTimer::Done { worker: w as u32, gen: self.gen }));
    }

    /// Worker `w` is idle: it takes queued requests until one keeps it busy.
    fn next(&mut self, ctx: &mut Ctx<'_, Node>, w: usize) {
        self.workers[w].0 = Worker::Idle;
        if let Some(q) = self.queue.pop_front() {
            self.take(ctx, w, q);
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: PoolTimer) {
        match t {
            PoolTimer::Done { worker, gen } if gen == self.gen => {
                let w = worker as usize;
                let (Worker::Serving(call, read), from) = self.workers[w] else { return };
                if self.design.writes == Writes::OneRow && read != self.version {
                    // Another request committed since this one read the row: it must start over.
                    ctx.observe(Obs::WriteConflict { client: call.client, op: call.op });
                    self.answer(ctx, from, call, CODE_CONFLICT);
                    return self.next(ctx, w);
                }
                self.version += 1;
                self.answer(ctx, from, call, CODE_OK);
                self.next(ctx, w);
                // Every request blocked on this key gets the result, and its worker back. (Most
                // designs never block: then there is no worker to look for.)
                debug_assert_eq!(self.blocked as usize, self.workers.iter().filter(|w| matches!(w.0, Worker::Blocked(_))).count());
                let look = if self.blocked > 0 { self.workers.len() } else { 0 };
                for b in 0..look {
                    if let (Worker::Blocked(c), to) = self.workers[b] {
                        if c.key() == call.key() {
                            self.blocked -= 1;
                            self.answer(ctx, to, c, CODE_OK);
                            self.next(ctx, b);
                        }
                    }
                }
            }
            PoolTimer::Done { .. } => {}
            PoolTimer::OutageStarts => {
                // The service goes down: queued and running work is lost, unanswered.
                self.gen += 1;
                self.queue.clear();
                self.workers.iter_mut().for_each(|w| w.0 = Worker::Idle);
                self.blocked = 0;
            }
        }
    }

    /// A crash loses everything: the queue and the work in hand (nothing is durable).
    pub fn on_crash(&mut self, _durable: &[Record]) {
        let (design, gen, version) = (self.design, self.gen, self.version);
        self.reset(design);
        // Timers of the old incarnation are void already (the engine's epoch); keep `gen` moving.
        self.gen = gen + 1;
        self.version = version;
    }
}
