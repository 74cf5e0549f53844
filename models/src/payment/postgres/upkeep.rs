//! The store's background upkeep: the reaper that deletes old keys (`key_retention_us`), and the
//! end of sessions: at once when their app server's connections close (a restart with no session
//! timeout, a process's FIN), or when they have been idle `session_timeout_us`.

use super::{boot_of, PgTimer, Postgres, Version};
use crate::knobs::KeyStore;
use crate::payment::owner;
use crate::payment::{KeyRow, Node, Record, Timer};
use sim::{Ctx, NodeId};

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

    /// Server `from` restarted: its old connections are gone, and so are their transactions.
    pub fn on_server_restarted(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, boot: u32) {
        if self.server_boots.len() <= from {
            self.server_boots.resize(from + 1, 0);
        }
        self.server_boots[from] = self.server_boots[from].max(boot);
        if self.session_timeout_us() > 0 {
            // The old connections look alive from here (nothing closed them): their sessions
            // hold their locks until they time out.
            return self.watch_sessions(ctx);
        }
        while let Some(t) = self.txs.iter().find(|t| owner(t.id) == from && boot_of(t.id) < boot) {
            let id = t.id;
            self.finish(ctx, id, false);
        }
    }

    /// Server `from`'s process died (incarnation `boot`) and the OS closed its connections:
    /// each backend reads EOF and ends its session, rolling back the open transaction and
    /// releasing its locks at once. Nobody is told: the connection is gone.
    pub fn on_connections_closed(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, boot: u32) {
        if !self.closed.contains(&(from, boot)) {
            self.closed.push((from, boot)); // (A duplicated FIN changes nothing.)
        }
        while let Some(t) = self.txs.iter().find(|t| owner(t.id) == from && boot_of(t.id) == boot) {
            let id = t.id;
            self.end(ctx, id, false, false);
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
