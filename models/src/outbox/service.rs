//! The order service: places orders one after another, each as the design says — commit then
//! publish (a dual write), publish then commit, or the order and its outbox row in one
//! transaction. A failed or unanswered call fails the order (the customer sees an error); a
//! crash abandons the order in progress, and the restarted service goes on with the next one.

use super::broker::Broker;
use super::design::{AggregateLock, OrderWrite, Orders, ServiceDesign};
use super::Layout;
use crate::payment::postgres::{Sql, SqlReply};
use crate::payment::Shared;
use crate::world::{Msg, Node, Record, Timer};
use invariants::Event;
use sim::{Ctx, NodeId, TimerId};

#[derive(Copy, Clone, Debug)]
pub struct ServiceSetup {
    pub design: ServiceDesign,
    pub orders: Orders,
    pub partitions: u32,
    pub producer_timeout_us: u64,
    pub layout: Layout,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ServiceTimer {
    /// Time to place the next order.
    Place,
    CallTimeout {
        call: u64,
    },
    /// Resend the unacknowledged publish.
    Resend {
        call: u64,
    },
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Stage {
    Inserting,
    Committing,
    Publishing { partition: u32, seq: u32 },
}

#[derive(Debug, Hash)]
pub struct Service {
    setup: Shared<ServiceSetup>,
    me: NodeId,
    boots: u32,
    /// Orders begun so far (durable: a restart goes on with the next).
    placed: u32,
    current: Option<(Event, Stage)>,
    tx: u64,
    seq: Vec<u32>,
    timer: Option<TimerId>,
}
sim::clone_by_field!(Service { setup, me, boots, placed, current, tx, seq, timer });

impl Service {
    pub fn new(setup: Shared<ServiceSetup>, me: NodeId) -> Self {
        Service { setup, me, boots: 0, placed: 0, current: None, tx: 0, seq: vec![1; setup.partitions as usize], timer: None }
    }

    pub fn reset(&mut self, setup: Shared<ServiceSetup>, me: NodeId) {
        let mut seq = std::mem::take(&mut self.seq);
        seq.clear();
        seq.resize(setup.partitions as usize, 1);
        *self = Service { seq, ..Service::new(setup, me) };
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        ctx.write(Record::Boot);
        ctx.fsync();
        self.boots += 1;
        if self.boots > 1 {
            ctx.send(self.setup.layout.order_db, Msg::ServerRestarted { boot: self.boots });
        }
        self.schedule(ctx);
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
        let placed = durable.iter().filter(|r| matches!(r, Record::Placed { .. })).count() as u32;
        self.reset(self.setup, self.me);
        (self.boots, self.placed) = (boots, placed);
    }

    /// Wait for the next order's time (now, if it is past).
    fn schedule(&mut self, ctx: &mut Ctx<'_, Node>) {
        let o = self.setup.orders;
        if self.placed < o.count {
            let at = self.placed as u64 * o.interval_us;
            ctx.set_timer(at.saturating_sub(ctx.now_us()), Timer::Service(ServiceTimer::Place));
        }
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: ServiceTimer) {
        match t {
            ServiceTimer::Place if self.current.is_none() => self.place(ctx),
            ServiceTimer::Place => {}
            ServiceTimer::CallTimeout { call } if call == self.tx && self.current.is_some() => {
                self.timer = None;
                self.fail(ctx);
            }
            ServiceTimer::Resend { call } if call == self.tx => {
                if let Some((event, Stage::Publishing { seq, .. })) = self.current {
                    self.send_publish(ctx, event, seq);
                }
            }
            _ => {}
        }
    }

    fn place(&mut self, ctx: &mut Ctx<'_, Node>) {
        let index = self.placed;
        self.placed += 1;
        ctx.write(Record::Placed { index });
        ctx.fsync();
        let event = Event { order: index + 1, aggregate: index % self.setup.orders.aggregates };
        self.tx = (self.me as u64) << 48 | (self.boots as u64) << 32 | self.placed as u64;
        match self.setup.design.write {
            OrderWrite::PublishThenCommit => self.publish(ctx, event),
            OrderWrite::DualWrite | OrderWrite::Outbox => self.insert(ctx, event),
        }
    }

    fn insert(&mut self, ctx: &mut Ctx<'_, Node>, event: Event) {
        self.current = Some((event, Stage::Inserting));
        let outbox = self.setup.design.write == OrderWrite::Outbox;
        let lock = self.setup.design.aggregate_lock == AggregateLock::ForUpdate;
        self.sql(ctx, true, Sql::InsertOrder { event, outbox, lock });
    }

    fn sql(&mut self, ctx: &mut Ctx<'_, Node>, begin: bool, sql: Sql) {
        ctx.send(self.setup.layout.order_db, Msg::Sql { tx: self.tx, begin, sql, lock_timeout_us: 0 });
        self.arm(ctx, ServiceTimer::CallTimeout { call: self.tx });
    }

    fn arm(&mut self, ctx: &mut Ctx<'_, Node>, t: ServiceTimer) {
        if let Some(old) = self.timer.take() {
            ctx.cancel_timer(old);
        }
        let after_us = match t {
            ServiceTimer::Resend { .. } => self.setup.producer_timeout_us,
            _ => self.setup.design.call_timeout_us,
        };
        self.timer = Some(ctx.set_timer(after_us, Timer::Service(t)));
    }

    fn publish(&mut self, ctx: &mut Ctx<'_, Node>, event: Event) {
        let partition = Broker::partition_of_parts(self.setup.partitions, event);
        let seq = self.seq[partition as usize];
        self.seq[partition as usize] += 1;
        self.current = Some((event, Stage::Publishing { partition, seq }));
        self.send_publish(ctx, event, seq);
    }

    /// Send (or resend) the publish. The producer retries until acknowledged, as Kafka's does
    /// within `delivery.timeout.ms`; only a crash stops it.
    fn send_publish(&mut self, ctx: &mut Ctx<'_, Node>, event: Event, seq: u32) {
        let pid = self.pid();
        ctx.send(self.setup.layout.broker, Msg::Produce { pid, seq, event });
        self.arm(ctx, ServiceTimer::Resend { call: self.tx });
    }

    /// This incarnation's producer session.
    fn pid(&self) -> u64 {
        (self.me as u64) << 48 | (self.boots as u64) << 32
    }

    /// The order failed: roll back what is open and go on with the next order.
    fn fail(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some((_, Stage::Inserting | Stage::Committing)) = self.current {
            ctx.send(self.setup.layout.order_db, Msg::Sql { tx: self.tx, begin: false, sql: Sql::Rollback, lock_timeout_us: 0 });
        }
        self.done(ctx);
    }

    fn done(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some(t) = self.timer.take() {
            ctx.cancel_timer(t);
        }
        self.current = None;
        self.schedule(ctx);
    }

    pub fn on_store_restarted(&mut self, ctx: &mut Ctx<'_, Node>) {
        if let Some((_, Stage::Inserting | Stage::Committing)) = self.current {
            self.fail(ctx);
        }
    }

    pub fn on_sql_reply(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, reply: SqlReply) {
        let Some((event, stage)) = self.current else { return };
        if tx != self.tx {
            return;
        }
        match (stage, reply) {
            (Stage::Inserting, SqlReply::Inserted) => {
                self.current = Some((event, Stage::Committing));
                self.sql(ctx, false, Sql::Commit);
            }
            (Stage::Committing, SqlReply::Committed) => match self.setup.design.write {
                // Committed; now the second write. A crash right here loses the event.
                OrderWrite::DualWrite => self.publish(ctx, event),
                OrderWrite::Outbox | OrderWrite::PublishThenCommit => self.done(ctx),
            },
            (Stage::Inserting | Stage::Committing, _) => self.fail(ctx),
            _ => {}
        }
    }

    pub fn on_ack(&mut self, ctx: &mut Ctx<'_, Node>, pid: u64, partition: u32, seq: u32, ok: bool) {
        let Some((event, Stage::Publishing { partition: p, seq: s })) = self.current else { return };
        if (p, s) != (partition, seq) || !ok || pid != self.pid() {
            return;
        }
        match self.setup.design.write {
            // Published; now the commit, which can still fail.
            OrderWrite::PublishThenCommit => self.insert(ctx, event),
            _ => self.done(ctx),
        }
    }
}
