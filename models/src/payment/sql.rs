//! The statements the Postgres-like store runs and its replies: the vocabulary shared by the
//! payment server, the completer, the order service, the relays and the consumer
//! (`postgres.rs` is the store that runs them).

use crate::outbox::tables::{Applied, OutboxRow};
use invariants::{ChargeId, Event, Key, OpId};

/// Where a multi-phase request got to (Brandur's `recovery_point`).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum RecoveryPoint {
    Started,
    ChargeCreated,
    Finished,
    /// A failure stored as the key's result (`on_error = store_failure`).
    Failed,
}

/// The clock a statement's lease times are read on: the database's `now()`, or a time the app
/// server computed with its own clock (`lease_clock = app`).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct Lease {
    pub lease_us: u64,
    /// The app's clock reading; `Lease::DB_CLOCK`: the database's own.
    pub clock_us: u64,
}

impl Lease {
    pub const DB_CLOCK: u64 = u64::MAX;
    pub(super) fn now(self, db_now_us: u64) -> u64 {
        if self.clock_us == Self::DB_CLOCK {
            db_now_us
        } else {
            self.clock_us
        }
    }
    pub(super) fn until(self, db_now_us: u64) -> u64 {
        self.now(db_now_us) + self.lease_us
    }
}

/// A row of `idempotency_keys`.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct KeyRow {
    /// Row identity (two rows may share a key when there is no unique index).
    pub rid: u32,
    pub key: Key,
    pub op: OpId,
    /// The payload fingerprint (here: the amount).
    pub fp: u32,
    pub point: RecoveryPoint,
    pub charge: Option<ChargeId>,
    pub locked_until_us: u64,
    /// When the key was first claimed (`created_at`), on the database's clock.
    pub created_us: u64,
}

/// One statement (or pipelined group) of a transaction.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Sql {
    /// `INSERT .. ON CONFLICT (key) DO UPDATE SET last_run_at = now() RETURNING *`.
    Claim {
        key: Key,
        op: OpId,
        fp: u32,
        lease: Lease,
    },
    /// `SELECT * FROM idempotency_keys WHERE key = $1`.
    Select {
        key: Key,
    },
    /// Plain `INSERT` (fails with 23505 under a unique index).
    Insert {
        key: Key,
        op: OpId,
        fp: u32,
        lease: Lease,
        point: RecoveryPoint,
        charge: Option<ChargeId>,
    },
    /// `UPDATE .. SET locked_at = now() WHERE key = $1 AND locked_at < now() - lease`.
    TakeLock {
        key: Key,
        lease: Lease,
    },
    /// `INSERT INTO charges ..`, optionally with `UPDATE idempotency_keys SET recovery_point =
    /// to WHERE recovery_point = from` in the same transaction: an atomic phase. The `WHERE`
    /// stands for SERIALIZABLE isolation, under which a phase that another holder of the key
    /// already ran fails instead of running twice.
    InsertCharge {
        key: Key,
        op: OpId,
        amount: u32,
        then: Option<(RecoveryPoint, RecoveryPoint)>,
    },
    /// `UPDATE idempotency_keys SET recovery_point = $2, charge = $3, locked_at = NULL?`.
    Advance {
        key: Key,
        point: RecoveryPoint,
        charge: Option<ChargeId>,
        unlock: bool,
    },
    /// `INSERT .. ON CONFLICT DO NOTHING` of a finished key.
    InsertDone {
        key: Key,
        op: OpId,
        fp: u32,
        charge: ChargeId,
    },
    Commit,
    Rollback,
    /// Autocommit `DELETE FROM idempotency_keys WHERE key = $1 AND recovery_point <> 'finished'`
    /// (`on_error = release_key`).
    Release {
        key: Key,
    },
    /// Autocommit upsert of a failed result unless the key finished (`on_error = store_failure`).
    Fail {
        key: Key,
        op: OpId,
        fp: u32,
    },
    /// The completer's autocommit query: the oldest key claimed before `claimed_before_us`,
    /// neither finished nor failed, whose lease has expired.
    FindStuck {
        claimed_before_us: u64,
        lease: Lease,
    },
    /// Outbox path: `INSERT INTO orders ..`, and with `outbox` the outbox row, in this
    /// transaction; with `lock`, after `SELECT .. FOR UPDATE` of the aggregate's row (which
    /// waits for another transaction holding it).
    InsertOrder {
        event: Event,
        outbox: bool,
        lock: bool,
    },
    /// `SELECT * FROM outbox WHERE NOT sent ORDER BY id LIMIT $1`: autocommit, or with `claim`
    /// `FOR UPDATE SKIP LOCKED` in this transaction. One `Row` reply per row, or `NoRows`.
    PollOutbox {
        limit: u8,
        claim: bool,
    },
    /// `UPDATE outbox SET sent = true WHERE id = $1`: autocommit, or in the claim's transaction.
    MarkSent {
        id: u32,
        claim: bool,
    },
    /// The consumer's autocommit transaction: `INSERT INTO inbox` (primary key; a conflict means
    /// the message was processed and nothing is applied) and/or the effect.
    Apply {
        event: Event,
        inbox: bool,
        effect: bool,
    },
}

impl Sql {
    /// Runs as its own transaction, committed at once.
    pub(super) fn autocommit(&self) -> bool {
        matches!(
            self,
            Sql::Release { .. }
                | Sql::Fail { .. }
                | Sql::FindStuck { .. }
                | Sql::PollOutbox { claim: false, .. }
                | Sql::MarkSent { claim: false, .. }
                | Sql::Apply { .. }
        )
    }
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum SqlReply {
    Inserted,
    Found(KeyRow),
    NotFound,
    /// A row was updated (TakeLock: false if the lock was not free after all).
    Updated(bool),
    Charged(ChargeId),
    Committed,
    RolledBack,
    /// 23505 unique_violation.
    UniqueViolation,
    /// 55P03 lock_not_available (lock_timeout).
    LockTimeout,
    /// The transaction is gone (the database restarted, or the server's connection reset).
    TxAborted,
    /// `FindStuck`'s answer.
    Stuck(Option<KeyRow>),
    /// `PollOutbox`: row `index` of the `of` rows found (each its own message).
    Row {
        row: OutboxRow,
        index: u8,
        of: u8,
    },
    /// `PollOutbox` found nothing to send.
    NoRows,
    /// Internal: the statement sent its own replies.
    NoReply,
    /// `Apply`: applied, or a duplicate the inbox refused.
    Applied(Applied),
}
