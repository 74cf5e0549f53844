//! The store's background upkeep: the reaper that deletes old keys (`key_retention_us`) and the
//! end of sessions whose app server went quiet (`session_timeout_us`).

use super::{PgTimer, Postgres, Version};
use crate::knobs::KeyStore;
use crate::payment::{KeyRow, Node, Record, Timer};
use sim::Ctx;

impl Postgres {
    pub(super) fn session_timeout_us(&self) -> u64 {
        match *self.cfg {
            KeyStore::Postgres { session_timeout_us, .. } => session_timeout_us,
            _ => 0,
        }
    }

    /// The reaper (`key_retention_us`): delete every committed key row claimed at least the
    /// retention ago. A row another transaction is changing is left for later, as a DELETE
    /// would wait on its row lock.
    pub(super) fn reap(&mut self, ctx: &mut Ctx<'_, Node>) {
        let KeyStore::Postgres { key_retention_us, .. } = *self.cfg else { return };
        if key_retention_us == 0 {
            return;
        }
        let now = ctx.now_us();
        let old = |v: &Version<KeyRow>| v.created_by.is_none() && v.deleted_by.is_none() && v.row.created_us + key_retention_us <= now;
        let mut reaped = false;
        while let Some(i) = self.keys.iter().position(old) {
            let rid = self.keys.remove(i).row.rid;
            ctx.write(Record::KeyGone { rid });
            reaped = true;
            if self.reaped.0 == 0 {
                self.reaped.1 = now;
            }
            self.reaped.0 += 1;
        }
        if reaped {
            self.durability(ctx);
        }
    }

    /// Arm a session-timeout check for every open transaction that is idle (no statement of it
    /// running or waiting) and has none: someone waits on a lock, or a server restarted, and
    /// only a session's end can free what a dead server holds.
    pub(super) fn watch_sessions(&mut self, ctx: &mut Ctx<'_, Node>) {
        let timeout_us = self.session_timeout_us();
        if timeout_us == 0 {
            return;
        }
        let now = ctx.now_us();
        for t in self.txs.iter_mut().filter(|t| t.waiting.is_none() && t.session_timer.is_none()) {
            let after_us = (t.last_us + timeout_us).saturating_sub(now).max(1);
            t.session_timer = Some(ctx.set_timer(after_us, Timer::Pg(PgTimer::SessionTimeout { tx: t.id })));
        }
    }

    /// A session-timeout check: end `tx` if it has been idle that long, else look again when it
    /// would be.
    pub(super) fn check_session(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64) {
        let Some(t) = self.txs.iter_mut().find(|t| t.id == tx) else { return };
        t.session_timer = None;
        if t.waiting.is_some() {
            return; // Not idle: a statement of it waits on a lock (and re-arms when it parks).
        }
        if ctx.now_us() >= t.last_us + self.session_timeout_us() {
            // FATAL: terminating connection due to idle-in-transaction timeout (or the keepalive
            // found the peer gone): the transaction rolls back and its locks are released.
            self.end(ctx, tx, false, false);
        } else {
            self.watch_sessions(ctx);
        }
    }
}
