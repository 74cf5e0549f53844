//! Brandur's completer: a background node that finds keys whose request died (not finished some
//! time after they were claimed, lease expired) and drives each to a stored result by running the
//! server's own handler on it: a takeover of the lease that resumes from the recovery point.

use super::postgres::{Lease, Sql, SqlReply};
use super::server::{Reply, Role, Server, ServerTimer};
use super::{Node, Request, Timer};
use crate::knobs::Completer;
use sim::Ctx;

impl Server {
    fn sweep_plan(&self) -> Option<(u64, u64, u64)> {
        match (self.role, self.design.completer) {
            (Role::Completer { sweep_until_us }, Completer::Sweep { every_us, stuck_after_us }) => {
                Some((every_us, stuck_after_us, sweep_until_us))
            }
            _ => None,
        }
    }

    /// At every start of a completer node: the first sweep is one period away.
    pub(super) fn start_sweeping(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some((every_us, _, until_us)) = self.sweep_plan() {
            if ctx.now_us() + every_us <= until_us {
                ctx.set_timer(every_us, Timer::Server(ServerTimer::Sweep));
            }
        }
    }

    /// Look for one stuck key, unless a query or a takeover is already under way.
    pub(super) fn sweep(&mut self, ctx: &mut Ctx<'_, Node>) {
        let Some((every_us, stuck_after_us, until_us)) = self.sweep_plan() else { return };
        if ctx.now_us() + every_us <= until_us {
            ctx.set_timer(every_us, Timer::Server(ServerTimer::Sweep));
        }
        if self.sweep_call.is_some() || self.jobs.iter().any(Option::is_some) {
            return;
        }
        self.find_stuck(ctx, stuck_after_us);
    }

    /// Ask for the oldest key claimed more than `stuck_after_us` ago whose lease has expired.
    fn find_stuck(&mut self, ctx: &mut Ctx<'_, Node>, stuck_after_us: u64) {
        let claimed_before_us = ctx.now_us().saturating_sub(stuck_after_us);
        let lease = Lease { clock_us: self.lease(ctx).clock_us, lease_us: 0 };
        self.sweep_query(ctx, Sql::FindStuck { claimed_before_us, lease });
    }

    pub(super) fn on_sweep_reply(&mut self, ctx: &mut Ctx<'_, Node>, reply: Reply) {
        self.sweep_call = None;
        let Reply::Sql(SqlReply::Stuck(Some(row))) = reply else { return };
        let req = Request { op: row.op, attempt: 0, copy: 0, key: row.key, amount: row.fp, incarnation: 0 };
        self.start(ctx, 0, None, req);
    }

    /// A takeover ended (finished, or not needed): look for the next stuck key at once.
    pub(super) fn after_completer_job(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some((_, stuck_after_us, until_us)) = self.sweep_plan() {
            if ctx.now_us() < until_us && self.sweep_call.is_none() {
                self.find_stuck(ctx, stuck_after_us);
            }
        }
    }
}
