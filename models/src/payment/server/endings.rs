//! Where a job's calls end badly, and how every job ends: the server's timers (a call that
//! timed out, a poll, a retry of the result's write), a key store that restarted under its
//! calls, the design's error path (`on_error`), and the answer to the client.

use super::{Server, ServerTimer, Step, POLL_US};
use crate::knobs::{ChargeTarget, OnError, ResultWrite};
use crate::payment::postgres::Sql;
use crate::payment::redis::{RedisCmd, Value};
use crate::payment::{Msg, Node};
use invariants::{Obs, Status};
use sim::Ctx;

impl Server {
    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: ServerTimer) {
        match t {
            ServerTimer::Poll { slot, call } => {
                if self.jobs[slot].as_ref().is_some_and(|j| j.call == call && j.step == Step::Poll) {
                    self.claim(ctx, slot);
                }
            }
            ServerTimer::CallTimeout { slot, wait } => {
                let Some(j) = self.jobs[slot].as_mut().filter(|j| j.wait == wait && j.timer.is_some() && j.step != Step::Poll) else {
                    return;
                };
                j.timer = None;
                if j.step == Step::ErrorPath {
                    return self.finish(ctx, slot, Status::ServerError);
                }
                self.error(ctx, slot);
            }
            ServerTimer::StoreAgain { slot, wait } => {
                if self.jobs[slot].as_ref().is_some_and(|j| j.wait == wait && j.step == Step::Complete) {
                    self.job(slot).timer = None;
                    self.complete(ctx, slot);
                }
            }
            ServerTimer::Sweep => self.sweep(ctx),
            ServerTimer::Resend { slot, wait } => self.resend(ctx, slot, wait),
        }
    }

    /// The key store restarted: every call waiting on it is lost.
    pub fn on_store_restarted(&mut self, ctx: &mut Ctx<'_, Node>) {
        self.sweep_call = None;
        for slot in 0..self.jobs.len() {
            let waits_on_store = self.jobs[slot].as_ref().is_some_and(|j| {
                j.step != Step::Poll
                    && !matches!(j.step, Step::Publish { .. })
                    && !(j.step == Step::Charge && self.design.charge != ChargeTarget::LocalLedger)
            });
            if waits_on_store {
                if let Some(t) = self.job(slot).timer.take() {
                    ctx.cancel_timer(t);
                }
                // The transaction may have begun after the restart (a statement sent while the
                // store was down reaches the new incarnation): roll it back either way; a
                // transaction the crash already ended is unknown to the store, which ignores it.
                if self.job(slot).step == Step::ErrorPath {
                    self.finish(ctx, slot, Status::ServerError);
                } else {
                    self.error(ctx, slot);
                }
            }
        }
    }

    pub(super) fn reject(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, status: Status) {
        ctx.observe(Obs::KeyRejected { key: self.job(slot).req.key, code: status.code() });
        self.finish(ctx, slot, status);
    }

    /// A call timed out or failed, or the store's connection broke: the design's error path.
    pub(super) fn error(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        if self.store_again(ctx, slot) {
            return;
        }
        self.end_tx(ctx, slot);
        let r = self.job(slot).req;
        if self.job(slot).client.is_none() {
            return self.drop_job(ctx, slot); // The completer tries again at its next sweep.
        }
        let on_error = self.design.on_error;
        self.job(slot).step = Step::ErrorPath;
        match (on_error, self.postgres) {
            (OnError::Leave, _) => self.finish(ctx, slot, Status::ServerError),
            (OnError::ReleaseKey, pg) => {
                ctx.observe(Obs::KeyReleased { key: r.key });
                if pg {
                    self.sql(ctx, slot, Sql::Release { key: r.key });
                } else {
                    self.redis(ctx, slot, RedisCmd::IfInFlight { key: r.key, then: None });
                }
            }
            (OnError::StoreFailure, pg) => {
                ctx.observe(Obs::KeyFailed { key: r.key });
                if pg {
                    self.sql(ctx, slot, Sql::Fail { key: r.key, op: r.op, fp: r.amount });
                } else {
                    self.redis(ctx, slot, RedisCmd::IfInFlight { key: r.key, then: Some(Value::Failed { fp: r.amount }) });
                }
            }
        }
    }

    /// `result_write = until_stored`: a charged job whose result was not stored keeps its charge
    /// and tries again in `POLL_US`, rather than giving the request up.
    pub(super) fn store_again(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) -> bool {
        if self.design.result_write != ResultWrite::UntilStored || self.job(slot).step != Step::Complete {
            return false;
        }
        self.job(slot).call = 0; // No call is outstanding: a late answer to the failed one is dropped.
        self.arm(ctx, slot, POLL_US, |slot, wait| ServerTimer::StoreAgain { slot, wait });
        true
    }

    /// Respond, rolling back an open (read-only or abandoned) transaction without waiting.
    pub(super) fn finish(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, status: Status) {
        self.end_tx(ctx, slot);
        self.respond(ctx, slot, status);
    }

    pub(super) fn respond(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, status: Status) {
        let j = self.jobs[slot].take().expect("job");
        if let Some(t) = j.timer {
            ctx.cancel_timer(t);
        }
        match j.client {
            Some(client) => ctx.reply(client, j.req.incarnation, Msg::Response { req: j.req, status }),
            None => return self.after_completer_job(ctx),
        }
        if !self.queue.is_empty() {
            let (client, req) = self.queue.remove(0);
            self.start(ctx, slot, Some(client), req);
        }
    }

    /// Give a job up without an answer (the completer's work that turned out not to be needed).
    pub(super) fn drop_job(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        self.end_tx(ctx, slot);
        if let Some(t) = self.jobs[slot].take().and_then(|j| j.timer) {
            ctx.cancel_timer(t);
        }
        self.after_completer_job(ctx);
    }
}
