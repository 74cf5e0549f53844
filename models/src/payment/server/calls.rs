//! A job's calls to the key store, the orders database and the provider: opening and ending
//! transactions, sending statements and commands, and the timeout that guards each call.

use super::{Job, Server, ServerTimer, Step};
use crate::knobs::InFlight;
use crate::payment::postgres::Sql;
use crate::payment::redis::RedisCmd;
use crate::payment::{Msg, Node, Timer, STORE};
use sim::{Ctx, NodeId};

impl Server {
    pub(super) fn end_tx(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let j = self.job(slot);
        if j.in_tx {
            j.in_tx = false;
            let (tx, db) = (j.call, j.db);
            ctx.send(db, Msg::Sql { tx, begin: false, sql: Sql::Rollback, lock_timeout_us: 0 });
        }
    }

    pub(in crate::payment) fn commit(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, then: Step) {
        self.job(slot).step = then;
        self.sql(ctx, slot, Sql::Commit);
        self.job(slot).in_tx = false;
    }

    /// Send a statement, beginning a transaction if none is open (an autocommit statement is a
    /// transaction of its own).
    pub(in crate::payment) fn sql(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, sql: Sql) {
        self.sql_on(ctx, slot, STORE, sql)
    }

    /// `sql` on database `db` (the key store, or the checkout chain's orders database); a
    /// statement of an open transaction goes where the transaction is.
    pub(in crate::payment) fn sql_on(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, db: NodeId, sql: Sql) {
        let autocommit = matches!(sql, Sql::Release { .. } | Sql::Fail { .. });
        let begin = !self.job(slot).in_tx;
        if begin {
            let call = self.new_call();
            let j = self.job(slot);
            (j.call, j.db, j.in_tx) = (call, db, !autocommit);
        }
        let lock_timeout_us = if self.design.in_flight == InFlight::Reject409 { self.design.lock_timeout_us } else { 0 };
        let j = self.job(slot);
        ctx.send(j.db, Msg::Sql { tx: j.call, begin, sql, lock_timeout_us });
        self.arm_timeout(ctx, slot);
    }

    pub(super) fn redis(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, cmd: RedisCmd) {
        let call = self.new_call();
        self.job(slot).call = call;
        ctx.send(STORE, Msg::Redis { req: call, cmd });
        self.arm_timeout(ctx, slot);
    }

    /// Guard the call just sent with `call_timeout_us`.
    pub(super) fn arm_timeout(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let after_us = self.design.call_timeout_us;
        if after_us > 0 {
            self.arm(ctx, slot, after_us, |slot, wait| ServerTimer::CallTimeout { slot, wait });
        }
    }

    /// Replace the job's timer by `timer(slot, wait)` in `after_us`, `wait` naming this call.
    pub(in crate::payment) fn arm(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, after_us: u64, timer: fn(usize, u32) -> ServerTimer) {
        let j = self.job(slot);
        if let Some(t) = j.timer.take() {
            ctx.cancel_timer(t);
        }
        j.wait += 1;
        let t = ctx.set_timer(after_us, Timer::Server(timer(slot, j.wait)));
        self.job(slot).timer = Some(t);
    }

    /// A completer's sweep query goes out as its own call (no job holds it).
    pub(in crate::payment) fn sweep_query(&mut self, ctx: &mut Ctx<'_, Node>, sql: Sql) {
        let call = self.new_call();
        self.sweep_call = Some(call);
        ctx.send(STORE, Msg::Sql { tx: call, begin: true, sql, lock_timeout_us: 0 });
    }

    pub(in crate::payment) fn job(&mut self, slot: usize) -> &mut Job {
        self.jobs[slot].as_mut().expect("a job in this slot")
    }
}
