//! A Postgres-like store: an `idempotency_keys` table and a `charges` ledger, transactions whose
//! statements arrive one round trip at a time (so two handlers interleave between statements),
//! READ COMMITTED visibility, a unique index whose second insert waits for the first transaction
//! to commit or abort, and a WAL that is durable at COMMIT (`synchronous_commit = on`) or only at
//! the WAL writer's next flush (`off`).
//!
//! Departures from PostgreSQL, on purpose: a multi-statement step (insert the charge and update
//! the key) is one message, as a pipelined query would be; charge ids come from a sequence that
//! skips ahead after a crash instead of WAL-logging 32 values at a time.

use super::{owner, Msg, Node, Peers, Record, Shared, Timer};
use crate::knobs::KeyStore;
use crate::outbox::tables::Tables;
use invariants::{ChargeId, ChargeRow, Key, Obs};
use sim::{ChoiceKind, Ctx, NodeId, TimerId};

pub use super::sql::{KeyRow, Lease, RecoveryPoint, Sql, SqlReply};

mod upkeep;

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
struct Version<R> {
    row: R,
    /// Inserted by this uncommitted transaction.
    created_by: Option<u64>,
    /// Replaced by this uncommitted transaction (still visible to everyone else).
    deleted_by: Option<u64>,
}

#[derive(Copy, Clone, Debug, Hash)]
struct Tx {
    id: u64,
    /// A statement blocked on another transaction's row, re-tried when that one finishes.
    waiting: Option<Sql>,
    lock_timer: Option<TimerId>,
    /// When its last statement arrived: the session's idle time counts from here.
    last_us: u64,
    /// The session-timeout check armed for it (`session_timeout_us`), if any.
    session_timer: Option<TimerId>,
}

#[derive(Debug, Hash)]
pub struct Postgres {
    cfg: Shared<KeyStore>,
    peers: Shared<Peers>,
    keys: Vec<Version<KeyRow>>,
    charges: Vec<Version<ChargeRow>>,
    txs: Vec<Tx>,
    /// Transactions rolled back before all their statements arrived (the server gave up on a
    /// call and rolled back): a straggler statement must not begin them again. A real connection
    /// is one ordered stream; this model's messages are not, so the store remembers.
    aborted: Vec<u64>,
    next_rid: u32,
    next_charge: ChargeId,
    boots: u32,
    /// The highest incarnation seen of each server node; transactions of older ones are aborted.
    server_boots: Vec<u32>,
    /// The server incarnations `(node, boot)` whose connections the OS closed (the process
    /// died, not the machine): their sessions are over.
    closed: Vec<(NodeId, u32)>,
    flush_armed: bool,
    /// The outbox path's tables (empty on the payment path).
    tables: Tables,
    /// Keys the reaper deleted and when it first did (for a violation message; kept across
    /// crashes, as the run's record).
    pub reaped: (u32, u64),
}
sim::clone_by_field!(Postgres {
    cfg,
    peers,
    keys,
    charges,
    txs,
    aborted,
    next_rid,
    next_charge,
    boots,
    server_boots,
    closed,
    flush_armed,
    tables,
    reaped
});

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum PgTimer {
    /// The WAL writer flushes (synchronous_commit = off).
    WalFlush,
    /// lock_timeout of a blocked statement.
    LockTimeout { tx: u64 },
    /// Is transaction `tx`'s session idle for `session_timeout_us` (its app server dead or cut
    /// off)? Then the database ends it.
    SessionTimeout { tx: u64 },
}

impl Postgres {
    pub fn new(cfg: Shared<KeyStore>, peers: Shared<Peers>) -> Self {
        Postgres {
            cfg,
            peers,
            keys: Vec::new(),
            charges: Vec::new(),
            txs: Vec::new(),
            aborted: Vec::new(),
            next_rid: 0,
            next_charge: 1,
            boots: 0,
            server_boots: Vec::new(),
            closed: Vec::new(),
            flush_armed: false,
            tables: Tables::default(),
            reaped: (0, 0),
        }
    }

    /// The keys as an auditor finds them in what survived (`log`): each row's last version.
    pub fn keys_at(log: &[Record], out: &mut Vec<KeyRow>) {
        for r in log {
            match *r {
                Record::Key(row) => {
                    out.retain(|k| k.rid != row.rid);
                    out.push(row);
                }
                Record::KeyGone { rid } => out.retain(|k| k.rid != rid),
                _ => {}
            }
        }
    }

    fn sync_commit(&self) -> bool {
        matches!(*self.cfg, KeyStore::Postgres { synchronous_commit: true, .. })
    }
    fn unique(&self) -> bool {
        matches!(*self.cfg, KeyStore::Postgres { unique_constraint: true, .. })
    }

    /// The charges an auditor would find on disk after the run.
    pub fn durable_charges(log: &[Record]) -> impl Iterator<Item = ChargeRow> + '_ {
        log.iter().filter_map(|r| if let Record::Charge(c) = r { Some(*c) } else { None })
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        ctx.write(Record::Boot);
        ctx.fsync();
        self.boots += 1;
        // Sequences skip ahead after a crash, so a charge id is never reused.
        self.next_charge = self.next_charge.max(self.boots * 100_000 + 1);
        if self.boots > 1 {
            // The servers' connections broke: they learn so and fail what was waiting on us.
            self.peers.tell_restart(ctx);
        }
    }

    /// Become `Postgres::new(cfg)`, keeping the buffers.
    pub fn reset(&mut self, cfg: Shared<KeyStore>, peers: Shared<Peers>) {
        let Postgres {
            cfg: c,
            peers: p,
            keys,
            charges,
            txs,
            aborted,
            next_rid,
            next_charge,
            boots,
            server_boots,
            closed,
            flush_armed,
            tables,
            reaped,
        } = self;
        (*c, *p, *next_rid, *next_charge, *boots, *flush_armed, *reaped) = (cfg, peers, 0, 1, 0, false, (0, 0));
        keys.clear();
        charges.clear();
        txs.clear();
        aborted.clear();
        server_boots.clear();
        closed.clear();
        tables.clear();
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let reaped = self.reaped;
        self.reset(self.cfg, self.peers);
        self.reaped = reaped;
        for r in durable {
            match *r {
                Record::Boot => self.boots += 1,
                Record::Key(row) => {
                    self.keys.retain(|v| v.row.rid != row.rid);
                    self.keys.push(Version { row, created_by: None, deleted_by: None });
                    self.next_rid = self.next_rid.max(row.rid + 1);
                }
                Record::KeyGone { rid } => self.keys.retain(|v| v.row.rid != rid),
                Record::Charge(c) => {
                    self.charges.push(Version { row: c, created_by: None, deleted_by: None });
                    self.next_charge = self.next_charge.max(c.charge + 1);
                }
                ref r => self.tables.replay(r),
            }
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: PgTimer) {
        match t {
            PgTimer::WalFlush => {
                self.flush_armed = false;
                ctx.fsync();
            }
            PgTimer::SessionTimeout { tx } => self.check_session(ctx, tx),
            PgTimer::LockTimeout { tx } => {
                if let Some(t) = self.txs.iter_mut().find(|t| t.id == tx && t.waiting.is_some()) {
                    t.waiting = None;
                    t.lock_timer = None;
                    ctx.send(owner(tx), Msg::SqlReply { tx, reply: SqlReply::LockTimeout });
                }
            }
        }
    }

    fn server_boot(&self, node: NodeId) -> u32 {
        self.server_boots.get(node).copied().unwrap_or(0)
    }

    /// Whether `tx` belongs to a server incarnation this database has heard restart since.
    fn orphaned(&self, tx: u64) -> bool {
        boot_of(tx) < self.server_boot(owner(tx))
    }

    /// A statement of transaction `tx`; `begin` marks its first one.
    pub fn on_sql(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, begin: bool, sql: Sql, lock_timeout_us: u64) {
        let gone = self.orphaned(tx) && self.session_timeout_us() == 0;
        // A statement the closing of its connection overtook (TCP would have delivered it
        // first; here messages are unordered): dropped, as if the process died before sending it.
        let closed = self.closed.contains(&(owner(tx), boot_of(tx)));
        if gone || closed {
            return; // From a server incarnation whose connection is gone.
        }
        self.reap(ctx);
        if sql.autocommit() {
            let reply = self.autocommit(ctx, tx, sql);
            if reply != SqlReply::NoReply {
                ctx.send(owner(tx), Msg::SqlReply { tx, reply });
            }
            return;
        }
        let known = self.txs.iter().any(|t| t.id == tx);
        if !known && sql == Sql::Rollback {
            self.aborted.push(tx); // Its statements may still be on their way.
            return;
        }
        if !known && self.aborted.contains(&tx) {
            return ctx.send(owner(tx), Msg::SqlReply { tx, reply: SqlReply::TxAborted });
        }
        if !known && !begin {
            // The transaction is gone: the database restarted since it began.
            return ctx.send(owner(tx), Msg::SqlReply { tx, reply: SqlReply::TxAborted });
        }
        let now = ctx.now_us();
        match self.txs.iter_mut().find(|t| t.id == tx) {
            Some(t) => t.last_us = now,
            None => self.txs.push(Tx { id: tx, waiting: None, lock_timer: None, last_us: now, session_timer: None }),
        }
        match sql {
            Sql::Commit => self.finish(ctx, tx, true),
            Sql::Rollback => self.finish(ctx, tx, false),
            _ => self.statement(ctx, tx, sql, lock_timeout_us),
        }
        if self.orphaned(tx) {
            // A statement its server's dead machine left on the wire, served after the restart
            // (`session_timeout_us` > 0): it may have opened a transaction, or locked rows, that
            // nobody will end but the session's timeout. Watch it, as the restart did the others.
            self.watch_sessions(ctx);
        }
    }

    /// Run a statement, or park it behind the transaction holding the row it needs.
    fn statement(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, sql: Sql, lock_timeout_us: u64) {
        if let Sql::PollOutbox { limit, .. } = sql {
            return self.tables.poll(ctx, tx, limit, true); // SKIP LOCKED never waits.
        }
        match self.execute(ctx, tx, sql) {
            Some(reply) => ctx.send(owner(tx), Msg::SqlReply { tx, reply }),
            None => {
                let timer = (lock_timeout_us > 0).then(|| ctx.set_timer(lock_timeout_us, Timer::Pg(PgTimer::LockTimeout { tx })));
                let t = self.txs.iter_mut().find(|t| t.id == tx).expect("tx exists");
                t.waiting = Some(sql);
                t.lock_timer = timer;
                self.watch_sessions(ctx);
            }
        }
    }

    /// The row of `key` as transaction `tx` sees it, and whether another transaction holds a
    /// version of it (an uncommitted insert or update: what a unique-index insert waits on).
    fn visible(&self, tx: u64, key: Key) -> (Option<usize>, bool) {
        let mut found = None;
        let mut held = false;
        for (i, v) in self.keys.iter().enumerate().filter(|(_, v)| v.row.key == key) {
            let mine_new = v.created_by == Some(tx);
            let committed = v.created_by.is_none() && v.deleted_by != Some(tx);
            if mine_new || committed {
                found = Some(i);
            }
            held |= matches!(v.created_by, Some(o) if o != tx) || matches!(v.deleted_by, Some(o) if o != tx);
        }
        (found, held)
    }

    /// `None`: blocked, wait for the other transaction.
    fn execute(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, sql: Sql) -> Option<SqlReply> {
        let now = ctx.now_us();
        match sql {
            Sql::Select { key } => Some(self.visible(tx, key).0.map_or(SqlReply::NotFound, |i| SqlReply::Found(self.keys[i].row))),
            Sql::Claim { key, op, fp, lease } => {
                let (found, held) = self.visible(tx, key);
                if held {
                    return None; // The unique index makes us wait for the other inserter.
                }
                if let Some(i) = found {
                    return Some(SqlReply::Found(self.keys[i].row));
                }
                let locked_until_us = lease.until(now);
                let row = KeyRow { rid: 0, key, op, fp, point: RecoveryPoint::Started, charge: None, locked_until_us, created_us: now };
                self.insert(tx, row);
                Some(SqlReply::Inserted)
            }
            Sql::Insert { key, op, fp, lease, point, charge } => {
                let locked_until_us = lease.until(now);
                if self.unique() {
                    let (found, held) = self.visible(tx, key);
                    if held {
                        return None;
                    }
                    if found.is_some() {
                        return Some(SqlReply::UniqueViolation);
                    }
                }
                self.insert(tx, KeyRow { rid: 0, key, op, fp, point, charge, locked_until_us, created_us: now });
                Some(SqlReply::Inserted)
            }
            Sql::InsertDone { key, op, fp, charge } => {
                let (found, held) = self.visible(tx, key);
                if self.unique() && held {
                    return None;
                }
                if !(self.unique() && found.is_some()) {
                    let point = RecoveryPoint::Finished;
                    let row = KeyRow { rid: 0, key, op, fp, point, charge: Some(charge), locked_until_us: 0, created_us: now };
                    self.insert(tx, row);
                }
                Some(SqlReply::Inserted)
            }
            Sql::TakeLock { key, lease } => self.update(tx, key, |row| {
                let open = !matches!(row.point, RecoveryPoint::Finished | RecoveryPoint::Failed);
                let free = open && row.locked_until_us <= lease.now(now);
                if free {
                    row.locked_until_us = lease.until(now);
                }
                free
            }),
            Sql::Advance { key, point, charge, unlock } => self.update(tx, key, |row| {
                row.point = point;
                row.charge = charge.or(row.charge);
                if unlock {
                    row.locked_until_us = 0;
                }
                true
            }),
            Sql::InsertCharge { key, op, amount, then } => {
                if let Some((from, point)) = then {
                    // Atomic phase: the charge and its recovery point in one transaction.
                    let charge = Some(self.next_charge);
                    match self.update(tx, key, |row| {
                        if row.point != from {
                            return false;
                        }
                        row.point = point;
                        row.charge = charge;
                        true
                    }) {
                        Some(SqlReply::Updated(true)) => {}
                        other => return other,
                    }
                }
                let row = ChargeRow { charge: self.next_charge, op, key, amount };
                self.next_charge += 1;
                self.charges.push(Version { row, created_by: Some(tx), deleted_by: None });
                Some(SqlReply::Charged(row.charge))
            }
            Sql::InsertOrder { event, outbox, lock } => self.tables.insert_order(tx, event, outbox, lock).then_some(SqlReply::Inserted),
            Sql::MarkSent { id, .. } => {
                self.tables.mark_sent(ctx, Some(tx), id);
                Some(SqlReply::Updated(true))
            }
            Sql::Commit | Sql::Rollback => unreachable!("handled by finish"),
            Sql::PollOutbox { .. } => unreachable!("handled by statement"),
            Sql::Release { .. } | Sql::Fail { .. } | Sql::FindStuck { .. } | Sql::Apply { .. } => unreachable!("autocommit"),
        }
    }

    /// The committed row of `key` that no transaction is changing, if any.
    fn settled_row(&self, key: Key) -> Option<usize> {
        self.keys.iter().position(|v| v.row.key == key && v.created_by.is_none() && v.deleted_by.is_none())
    }

    /// A statement that is its own transaction: it never waits (a row another transaction is
    /// changing is left alone) and is durable as a COMMIT is.
    fn autocommit(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, sql: Sql) -> SqlReply {
        let now = ctx.now_us();
        let reply = match sql {
            Sql::Release { key } => match self.settled_row(key) {
                Some(i) if self.keys[i].row.point != RecoveryPoint::Finished => {
                    let rid = self.keys.remove(i).row.rid;
                    ctx.write(Record::KeyGone { rid });
                    SqlReply::Updated(true)
                }
                _ => SqlReply::Updated(false),
            },
            Sql::Fail { key, op, fp } => {
                let held = self.keys.iter().any(|v| v.row.key == key && (v.created_by.is_some() || v.deleted_by.is_some()));
                match self.settled_row(key) {
                    Some(i) if self.keys[i].row.point == RecoveryPoint::Finished => SqlReply::Updated(false),
                    Some(i) => {
                        self.keys[i].row.point = RecoveryPoint::Failed;
                        self.keys[i].row.locked_until_us = 0;
                        ctx.write(Record::Key(self.keys[i].row));
                        SqlReply::Updated(true)
                    }
                    None if held => SqlReply::Updated(false),
                    None => {
                        let point = RecoveryPoint::Failed;
                        let row = KeyRow { rid: self.next_rid, key, op, fp, point, charge: None, locked_until_us: 0, created_us: now };
                        self.next_rid += 1;
                        self.keys.push(Version { row, created_by: None, deleted_by: None });
                        ctx.write(Record::Key(row));
                        SqlReply::Updated(true)
                    }
                }
            }
            Sql::FindStuck { claimed_before_us, lease } => {
                self.watch_sessions(ctx); // A row a dead session holds is not stuck until it ends.
                let stuck = self.keys.iter().filter(|v| v.created_by.is_none() && v.deleted_by.is_none()).map(|v| v.row).find(|r| {
                    !matches!(r.point, RecoveryPoint::Finished | RecoveryPoint::Failed)
                        && r.created_us <= claimed_before_us
                        && r.locked_until_us <= lease.now(now)
                });
                return SqlReply::Stuck(stuck);
            }
            Sql::PollOutbox { limit, .. } => {
                // A plain SELECT: no locks, nothing to make durable; the rows are the replies.
                self.tables.poll(ctx, tx, limit, false);
                return SqlReply::NoReply;
            }
            Sql::MarkSent { id, .. } => {
                self.tables.mark_sent(ctx, None, id);
                SqlReply::Updated(true)
            }
            Sql::Apply { event, inbox, effect } => SqlReply::Applied(self.tables.apply(ctx, event, inbox, effect)),
            _ => unreachable!("not an autocommit statement"),
        };
        self.durability(ctx);
        reply
    }

    fn insert(&mut self, tx: u64, mut row: KeyRow) {
        row.rid = self.next_rid;
        self.next_rid += 1;
        self.keys.push(Version { row, created_by: Some(tx), deleted_by: None });
    }

    /// Update the visible row of `key` with `f` (a new version owned by `tx`).
    fn update(&mut self, tx: u64, key: Key, f: impl FnOnce(&mut KeyRow) -> bool) -> Option<SqlReply> {
        // An UPDATE sees committed rows and its own; it waits only on a row another transaction
        // is updating (a row lock), not on another transaction's uncommitted insert.
        let Some(i) = self.visible(tx, key).0 else { return Some(SqlReply::Updated(false)) };
        if matches!(self.keys[i].deleted_by, Some(o) if o != tx) {
            return None;
        }
        let mut row = self.keys[i].row;
        if !f(&mut row) {
            return Some(SqlReply::Updated(false));
        }
        if self.keys[i].created_by == Some(tx) {
            self.keys[i].row = row;
        } else {
            self.keys[i].deleted_by = Some(tx);
            self.keys.push(Version { row, created_by: Some(tx), deleted_by: None });
        }
        Some(SqlReply::Updated(true))
    }

    /// COMMIT (write the WAL; flush now or later) or ROLLBACK, then wake waiting statements.
    fn finish(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, commit: bool) {
        self.end(ctx, tx, commit, true)
    }

    /// `finish`, answering the transaction's owner only if `notify` (a session the database
    /// terminates answers nobody: its app server learns at its next statement).
    fn end(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, commit: bool, notify: bool) {
        let Some(pos) = self.txs.iter().position(|t| t.id == tx) else { return };
        let t = self.txs.remove(pos);
        for timer in [t.lock_timer, t.session_timer].into_iter().flatten() {
            ctx.cancel_timer(timer);
        }
        if commit {
            for v in self.keys.iter().filter(|v| v.created_by == Some(tx)) {
                ctx.write(Record::Key(v.row));
            }
            for v in self.charges.iter().filter(|v| v.created_by == Some(tx)) {
                ctx.write(Record::Charge(v.row));
                ctx.observe(Obs::Charged { row: v.row });
            }
            self.keys.retain(|v| v.deleted_by != Some(tx));
            self.keys.iter_mut().for_each(|v| {
                if v.created_by == Some(tx) {
                    v.created_by = None;
                }
            });
            self.charges.iter_mut().for_each(|v| {
                if v.created_by == Some(tx) {
                    v.created_by = None;
                }
            });
            self.tables.commit(ctx, tx);
            self.durability(ctx);
            if notify {
                ctx.send(owner(tx), Msg::SqlReply { tx, reply: SqlReply::Committed });
            }
        } else {
            self.keys.retain(|v| v.created_by != Some(tx));
            self.charges.retain(|v| v.created_by != Some(tx));
            self.tables.rollback(tx);
            self.keys.iter_mut().for_each(|v| {
                if v.deleted_by == Some(tx) {
                    v.deleted_by = None;
                }
            });
            if notify {
                ctx.send(owner(tx), Msg::SqlReply { tx, reply: SqlReply::RolledBack });
            }
        }
        self.wake(ctx);
    }

    /// synchronous_commit = on: flush before acknowledging. off: the WAL writer flushes later.
    fn durability(&mut self, ctx: &mut Ctx<'_, Node>) {
        if self.sync_commit() {
            ctx.fsync();
        } else if !self.flush_armed {
            self.flush_armed = true;
            let KeyStore::Postgres { wal_writer_delay_us, .. } = *self.cfg else { unreachable!() };
            // The WAL writer wakes every wal_writer_delay, and hibernates between flushes when
            // idle: an acknowledged commit waits from one to 3 x wal_writer_delay for its flush.
            // Drawn, so a counterexample shrinks to the shortest window that still loses it.
            let extra_us = ctx.choose(ChoiceKind::Model, (2 * wal_writer_delay_us).min(u32::MAX as u64 - 1) as u32 + 1) as u64;
            ctx.set_timer(wal_writer_delay_us + extra_us, Timer::Pg(PgTimer::WalFlush));
        }
    }

    /// Re-try every parked statement, oldest transaction first.
    fn wake(&mut self, ctx: &mut Ctx<'_, Node>) {
        let mut orphaned = false;
        for i in 0..self.txs.len() {
            let Some(sql) = self.txs[i].waiting else { continue };
            let tx = self.txs[i].id;
            if let Some(reply) = self.execute(ctx, tx, sql) {
                let t = &mut self.txs[i];
                t.waiting = None;
                // Idle from now: a session waiting on a lock is not idle in transaction.
                t.last_us = ctx.now_us();
                if let Some(timer) = t.lock_timer.take() {
                    ctx.cancel_timer(timer);
                }
                orphaned |= self.orphaned(tx);
                ctx.send(owner(tx), Msg::SqlReply { tx, reply });
            }
        }
        if orphaned {
            self.watch_sessions(ctx); // Its server is gone: only the session's end frees what it holds.
        }
    }
}

/// The server incarnation that began transaction (or call) `id`.
fn boot_of(id: u64) -> u32 {
    (id >> 32) as u32 & 0xffff
}
