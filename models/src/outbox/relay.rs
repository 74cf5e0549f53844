//! The outbox relay, a polling publisher: poll the outbox for unsent rows, publish them to the
//! broker, mark them sent. At least once: a crash between the publish and the mark publishes the
//! rows again after the restart (a new producer session, which the idempotent producer cannot
//! recognise).

use super::design::{Claim, RelayDesign};
use super::tables::OutboxRow;
use super::Layout;
use crate::payment::postgres::{Sql, SqlReply};
use crate::payment::Shared;
use crate::world::{Msg, Node, Record, Timer};
use sim::{Ctx, NodeId, TimerId};

/// What a relay needs to know.
#[derive(Copy, Clone, Debug)]
pub struct RelaySetup {
    pub design: RelayDesign,
    pub partitions: u32,
    pub producer_timeout_us: u64,
    pub layout: Layout,
    /// Polling stops here (the heal plus the liveness bound): nothing later is judged.
    pub poll_until_us: u64,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum RelayTimer {
    Poll,
    /// A database call went unanswered for `call_timeout_us`.
    CallTimeout {
        call: u64,
    },
    /// Resend the unacknowledged messages.
    Resend,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Phase {
    Idle,
    /// Collecting the rows of poll `tx`.
    Polling,
    Publishing,
    /// Waiting for `left` marks (then the commit, with claims).
    Marking {
        left: u32,
    },
    Committing,
}

#[derive(Debug, Hash)]
pub struct Relay {
    setup: Shared<RelaySetup>,
    me: NodeId,
    boots: u32,
    calls: u32,
    phase: Phase,
    /// The current poll's (or claim transaction's) id.
    tx: u64,
    expect: u8,
    /// The batch: each row, its partition sequence number and whether it was acknowledged.
    batch: Vec<(OutboxRow, u32, bool)>,
    /// The next sequence number per partition of this producer session.
    seq: Vec<u32>,
    idle_us: u64,
    call_timer: Option<TimerId>,
    resend_timer: Option<TimerId>,
    poll_timer: Option<TimerId>,
}
sim::clone_by_field!(Relay { setup, me, boots, calls, phase, tx, expect, batch, seq, idle_us, call_timer, resend_timer, poll_timer });

impl Relay {
    pub fn new(setup: Shared<RelaySetup>, me: NodeId) -> Self {
        Relay {
            setup,
            me,
            boots: 0,
            calls: 0,
            phase: Phase::Idle,
            tx: 0,
            expect: 0,
            batch: Vec::new(),
            seq: vec![1; setup.partitions as usize],
            idle_us: setup.design.poll_interval_us,
            call_timer: None,
            resend_timer: None,
            poll_timer: None,
        }
    }

    /// Become `Relay::new(setup, me)`, keeping the buffers.
    pub fn reset(&mut self, setup: Shared<RelaySetup>, me: NodeId, boots: u32) {
        let mut batch = std::mem::take(&mut self.batch);
        let mut seq = std::mem::take(&mut self.seq);
        batch.clear();
        seq.clear();
        seq.resize(setup.partitions as usize, 1);
        *self = Relay { batch, seq, boots, ..Relay::new(setup, me) };
    }

    fn claim(&self) -> bool {
        self.setup.design.claim == Claim::SkipLocked
    }

    fn pid(&self) -> u64 {
        (self.me as u64) << 48 | (self.boots as u64) << 32
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        ctx.write(Record::Boot);
        ctx.fsync();
        self.boots += 1;
        if self.boots > 1 {
            // The database aborts the claim transaction our old connection held.
            ctx.send(self.setup.layout.order_db, Msg::ServerRestarted { boot: self.boots });
        }
        self.poll_timer = Some(ctx.set_timer(self.setup.design.poll_interval_us, Timer::Relay(RelayTimer::Poll)));
    }

    /// A process crash: the OS closes our database connection, and the database ends its
    /// session (and our open transaction) at once.
    pub fn on_process_exit(&self, ctx: &mut Ctx<'_, Node>) {
        if self.boots > 0 {
            ctx.send(self.setup.layout.order_db, Msg::ConnectionsClosed { boot: self.boots });
        }
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let boots = durable.iter().filter(|r| matches!(r, Record::Boot)).count() as u32;
        self.reset(self.setup, self.me, boots);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: RelayTimer) {
        match t {
            RelayTimer::Poll => {
                self.poll_timer = None;
                self.poll(ctx)
            }
            RelayTimer::CallTimeout { call } if call == self.tx && self.phase != Phase::Idle && self.phase != Phase::Publishing => {
                self.call_timer = None;
                self.abandon(ctx);
            }
            RelayTimer::CallTimeout { .. } => {}
            RelayTimer::Resend => {
                self.resend_timer = None;
                if self.phase == Phase::Publishing {
                    self.publish_unacked(ctx);
                }
            }
        }
    }

    fn sql(&mut self, ctx: &mut Ctx<'_, Node>, begin: bool, sql: Sql) {
        let db = self.setup.layout.order_db;
        ctx.send(db, Msg::Sql { tx: self.tx, begin, sql, lock_timeout_us: 0 });
        if let Some(t) = self.call_timer.take() {
            ctx.cancel_timer(t);
        }
        let call = self.tx;
        self.call_timer = Some(ctx.set_timer(self.setup.design.call_timeout_us, Timer::Relay(RelayTimer::CallTimeout { call })));
    }

    fn poll(&mut self, ctx: &mut Ctx<'_, Node>) {
        self.calls += 1;
        self.tx = (self.me as u64) << 48 | (self.boots as u64) << 32 | self.calls as u64;
        self.phase = Phase::Polling;
        self.batch.clear();
        self.expect = 0;
        let claim = self.claim();
        self.sql(ctx, claim, Sql::PollOutbox { limit: self.setup.design.batch_size as u8, claim });
    }

    /// Wait for the next poll: soon after a busy one, backing off while the outbox is empty.
    fn rest(&mut self, ctx: &mut Ctx<'_, Node>, found: bool) {
        if let Some(t) = self.call_timer.take() {
            ctx.cancel_timer(t);
        }
        self.phase = Phase::Idle;
        let d = self.setup.design;
        self.idle_us = if found { d.poll_interval_us } else { (self.idle_us * 2).min(d.idle_poll_us_max) };
        if let Some(t) = self.poll_timer.take() {
            ctx.cancel_timer(t);
        }
        // The last poll comes at the horizon itself (as the consumer's: a row committed after
        // the last backoff step before it would otherwise stay unsent).
        if let Some(left_us) = self.setup.poll_until_us.checked_sub(ctx.now_us()).filter(|&l| l > 0) {
            self.poll_timer = Some(ctx.set_timer(self.idle_us.min(left_us), Timer::Relay(RelayTimer::Poll)));
        }
    }

    /// A database call failed or went unanswered: give the batch up (its rows stay unsent and
    /// are polled again), rolling back a claim.
    fn abandon(&mut self, ctx: &mut Ctx<'_, Node>) {
        if self.claim() {
            ctx.send(self.setup.layout.order_db, Msg::Sql { tx: self.tx, begin: false, sql: Sql::Rollback, lock_timeout_us: 0 });
        }
        if let Some(t) = self.resend_timer.take() {
            ctx.cancel_timer(t);
        }
        self.rest(ctx, true);
    }

    pub fn on_store_restarted(&mut self, ctx: &mut Ctx<'_, Node>) {
        if !matches!(self.phase, Phase::Idle | Phase::Publishing) {
            self.abandon(ctx);
        }
    }

    pub fn on_sql_reply(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, reply: SqlReply) {
        if tx != self.tx {
            return; // A reply to a call we gave up on.
        }
        match (self.phase, reply) {
            (Phase::Polling, SqlReply::NoRows) => {
                if self.claim() {
                    ctx.send(self.setup.layout.order_db, Msg::Sql { tx, begin: false, sql: Sql::Commit, lock_timeout_us: 0 });
                }
                self.rest(ctx, false);
            }
            (Phase::Polling, SqlReply::Row { row, of, .. }) => {
                self.expect = of;
                self.batch.push((row, 0, false));
                if self.batch.len() == of as usize {
                    // Replies may arrive in any order; publish in id order, as polled.
                    self.batch.sort_unstable_by_key(|(r, _, _)| r.id);
                    self.start_publishing(ctx);
                }
            }
            (Phase::Marking { left }, SqlReply::Updated(_)) => {
                if left > 1 {
                    self.phase = Phase::Marking { left: left - 1 };
                } else if self.claim() {
                    self.phase = Phase::Committing;
                    self.sql(ctx, false, Sql::Commit);
                } else {
                    self.rest(ctx, true);
                }
            }
            (Phase::Committing, SqlReply::Committed) => self.rest(ctx, true),
            (Phase::Polling | Phase::Marking { .. } | Phase::Committing, SqlReply::TxAborted | SqlReply::RolledBack) => self.abandon(ctx),
            _ => {}
        }
    }

    fn start_publishing(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some(t) = self.call_timer.take() {
            ctx.cancel_timer(t);
        }
        self.phase = Phase::Publishing;
        for (row, seq, _) in &mut self.batch {
            let p = super::broker::Broker::partition_of_parts(self.setup.partitions, row.event) as usize;
            *seq = self.seq[p];
            self.seq[p] += 1;
        }
        self.publish_unacked(ctx);
    }

    /// Send every unacknowledged message of the batch, in order (pipelined, as Kafka's
    /// `max.in.flight.requests.per.connection` allows), and arm the resend.
    fn publish_unacked(&mut self, ctx: &mut Ctx<'_, Node>) {
        let pid = self.pid();
        for &(row, seq, acked) in &self.batch {
            if !acked {
                ctx.send(self.setup.layout.broker, Msg::Produce { pid, seq, event: row.event });
            }
        }
        self.resend_timer = Some(ctx.set_timer(self.setup.producer_timeout_us, Timer::Relay(RelayTimer::Resend)));
    }

    pub fn on_ack(&mut self, ctx: &mut Ctx<'_, Node>, pid: u64, partition: u32, seq: u32, ok: bool) {
        if self.phase != Phase::Publishing || !ok || pid != self.pid() {
            // Refused out of sequence (the resend sends it again, in order), or an answer to an
            // earlier incarnation's send.
            return;
        }
        let parts = self.setup.partitions;
        for (row, s, acked) in &mut self.batch {
            if *s == seq && super::broker::Broker::partition_of_parts(parts, row.event) == partition {
                *acked = true;
            }
        }
        if self.batch.iter().all(|b| b.2) {
            if let Some(t) = self.resend_timer.take() {
                ctx.cancel_timer(t);
            }
            // Everything is on the broker: mark it sent. A crash from here to the last mark
            // publishes these rows again.
            let claim = self.claim();
            self.phase = Phase::Marking { left: self.batch.len() as u32 };
            for i in 0..self.batch.len() {
                let id = self.batch[i].0.id;
                self.sql(ctx, false, Sql::MarkSent { id, claim });
            }
        }
    }
}
