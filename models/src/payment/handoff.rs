//! The checkout chain's hand-off (`chain/`): after the charge, the paid order goes on to
//! fulfilment. On a Postgres key store the order row (and, for an outbox, its outbox row) join
//! the transaction that stores the charge's result, so the charge, the order and the event
//! commit or vanish together. On a Redis key store they cannot: the order commits in its own
//! transaction on the orders database, after the charge and before the result is stored. A dual
//! write then publishes the event itself, and answers only once the broker has it.

use super::postgres::Sql;
use super::server::{Server, ServerTimer, Step};
use super::{Msg, Node, STORE};
use crate::outbox::broker::Broker;
use crate::outbox::design::OrderWrite;
use invariants::Event;
use sim::Ctx;

impl Server {
    /// The order of the job's operation: one per operation, keyed by its client (the customer).
    fn order(&mut self, slot: usize) -> Event {
        let op = self.job(slot).req.op;
        Event { order: op, aggregate: op / 10_000 }
    }

    fn insert_order(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, db: usize) {
        let outbox = self.chain.is_some_and(|c| c.write == OrderWrite::Outbox);
        let event = self.order(slot);
        self.job(slot).step = Step::Order;
        self.sql_on(ctx, slot, db, Sql::InsertOrder { event, outbox, lock: false });
    }

    /// The transaction that stores the result is ready to commit. In the chain on Postgres the
    /// order goes into it first.
    pub(super) fn commit_result(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        match self.chain {
            Some(_) if self.postgres => self.insert_order(ctx, slot, STORE),
            _ => self.commit(ctx, slot, Step::CompleteCommit),
        }
    }

    pub(super) fn order_inserted(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let then = if self.postgres { Step::CompleteCommit } else { Step::OrderCommit };
        self.commit(ctx, slot, then)
    }

    /// The result (and on Postgres the order with it) committed.
    pub(super) fn result_committed(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        match self.chain {
            Some(_) if self.postgres => self.order_committed(ctx, slot),
            _ => self.succeed(ctx, slot),
        }
    }

    /// Chain on Redis: before the result is stored, the order commits on the orders database.
    /// True when that began (`complete` runs again once the order is in).
    pub(super) fn order_first(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) -> bool {
        let Some(link) = self.chain else { return false };
        if self.postgres || self.job(slot).ordered {
            return false;
        }
        self.insert_order(ctx, slot, link.order_db);
        true
    }

    /// The order is durable. A dual write's second write now: publish the event.
    pub(super) fn order_committed(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        match self.chain {
            Some(link) if link.write == OrderWrite::DualWrite => self.publish(ctx, slot),
            _ => self.order_done(ctx, slot),
        }
    }

    fn order_done(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        if self.postgres {
            return self.succeed(ctx, slot);
        }
        self.job(slot).ordered = true;
        self.complete(ctx, slot)
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let link = self.chain.expect("a publish is the chain's");
        let partition = Broker::partition_of_parts(link.partitions, self.order(slot));
        let seq = self.seq[partition as usize];
        self.seq[partition as usize] += 1;
        self.job(slot).step = Step::Publish { partition, seq };
        self.send_publish(ctx, slot);
    }

    /// Send (or resend) the publish: the producer retries until acknowledged, as Kafka's does
    /// within `delivery.timeout.ms`; only a crash stops it.
    fn send_publish(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let link = self.chain.expect("a publish is the chain's");
        let Step::Publish { seq, .. } = self.job(slot).step else { unreachable!("not publishing") };
        let event = self.order(slot);
        ctx.send(link.broker, Msg::Produce { pid: self.pid(), seq, event });
        self.arm(ctx, slot, link.producer_timeout_us, |slot, wait| ServerTimer::Resend { slot, wait });
    }

    pub(super) fn resend(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, wait: u32) {
        if self.jobs[slot].as_ref().is_some_and(|j| j.wait == wait && matches!(j.step, Step::Publish { .. })) {
            self.job(slot).timer = None;
            self.send_publish(ctx, slot);
        }
    }

    /// The broker's answer to a publish of this producer session; a refusal (out of sequence)
    /// waits for the resend.
    pub fn on_ack(&mut self, ctx: &mut Ctx<'_, Node>, pid: u64, partition: u32, seq: u32, ok: bool) {
        if !ok || pid != self.pid() {
            return;
        }
        let publishing = |j: &Option<super::server::Job>| j.as_ref().is_some_and(|j| j.step == Step::Publish { partition, seq });
        let Some(slot) = self.jobs.iter().position(publishing) else { return };
        if let Some(t) = self.job(slot).timer.take() {
            ctx.cancel_timer(t);
        }
        self.order_done(ctx, slot)
    }

    /// This incarnation's producer session.
    fn pid(&self) -> u64 {
        (self.node as u64) << 48 | (self.boots as u64) << 32
    }
}
