//! The outbox path's tables inside the Postgres-like store: `orders` and `outbox` in the order
//! database; `inbox` and the projection (`effects`) in the consumer's. Rows written in a
//! transaction are invisible to others until COMMIT and vanish on ROLLBACK; a claim (`FOR UPDATE
//! SKIP LOCKED`) locks rows until its transaction ends.
//!
//! Departure from PostgreSQL, on purpose: `SELECT .. FOR UPDATE SKIP LOCKED` locks whole rows of
//! `outbox`, and an order's `SELECT .. FOR UPDATE` its aggregate's row (a table of aggregates
//! not modelled otherwise); nothing else here takes row locks, since no other statement of the
//! path updates a row another transaction may hold.

use crate::world::{Msg, Node, Record};
use invariants::{Event, Obs, OrderId};
use sim::Ctx;

/// A row of the `outbox` table (Debezium's layout: id, aggregatetype = "order", aggregateid,
/// type = "order.created", payload = the order; only what the model reads is kept).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct OutboxRow {
    /// From a sequence, in insert order.
    pub id: u32,
    pub event: Event,
}

/// A write of an open transaction, applied at COMMIT.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Pending {
    Order { event: Event, outbox: Option<u32> },
    MarkSent { id: u32 },
}

#[derive(Debug, Default, Hash)]
pub struct Tables {
    orders: Vec<Event>,
    /// Committed outbox rows and whether they were marked sent.
    outbox: Vec<(OutboxRow, bool)>,
    inbox: Vec<OrderId>,
    effects: Vec<Event>,
    pending: Vec<(u64, Pending)>,
    /// Outbox row ids locked by a claiming transaction.
    locks: Vec<(u64, u32)>,
    /// Aggregates whose row an order's transaction locked (`FOR UPDATE`).
    aggregate_locks: Vec<(u64, u32)>,
    /// The last outbox id handed out.
    next_id: u32,
}
sim::clone_by_field!(Tables { orders, outbox, inbox, effects, pending, locks, aggregate_locks, next_id });

/// What the consumer's autocommit `Apply` did.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Applied {
    Done,
    /// The inbox already holds the message: nothing applied.
    Duplicate,
}

impl Tables {
    pub fn clear(&mut self) {
        let Tables { orders, outbox, inbox, effects, pending, locks, aggregate_locks, next_id } = self;
        orders.clear();
        outbox.clear();
        inbox.clear();
        effects.clear();
        pending.clear();
        locks.clear();
        aggregate_locks.clear();
        *next_id = 0;
    }

    /// Rebuild from one durable record (after a crash).
    pub fn replay(&mut self, r: &Record) {
        match *r {
            Record::Order(e) => self.orders.push(e),
            Record::Outbox(row) => {
                self.outbox.push((row, false));
                self.next_id = self.next_id.max(row.id);
            }
            Record::OutboxSent { id } => self.outbox.iter_mut().filter(|(r, _)| r.id == id).for_each(|(_, s)| *s = true),
            Record::Inbox { order } => self.inbox.push(order),
            Record::Effect(e) => self.effects.push(e),
            _ => {}
        }
    }

    /// `INSERT INTO orders ..` (and the outbox row) in transaction `tx`; with `lock`, after
    /// locking the aggregate's row. False: another transaction holds that lock (wait for it).
    /// A copy of the statement (a database link that duplicates, `targets.lossy` with the
    /// store: TCP never does) inserts nothing more.
    pub fn insert_order(&mut self, tx: u64, event: Event, outbox: bool, lock: bool) -> bool {
        if self.pending.iter().any(|&(t, p)| t == tx && matches!(p, Pending::Order { event: e, .. } if e == event)) {
            return true;
        }
        if lock {
            let a = event.aggregate;
            if self.aggregate_locks.iter().any(|&(t, l)| l == a && t != tx) {
                return false;
            }
            if !self.aggregate_locks.contains(&(tx, a)) {
                self.aggregate_locks.push((tx, a));
            }
        }
        let id = outbox.then(|| {
            self.next_id += 1; // ids from 1, in insert order
            self.next_id
        });
        self.pending.push((tx, Pending::Order { event, outbox: id }));
        true
    }

    /// The unsent committed rows, oldest first, up to `limit`; with `claim`, skipping rows
    /// another transaction holds and locking the rest for `tx`. Sends one reply per row (row
    /// `index` of `of`), or `NoRows`.
    pub fn poll(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, limit: u8, claim: bool) {
        use crate::payment::postgres::SqlReply;
        let free = |locks: &[(u64, u32)], id: u32| !claim || !locks.iter().any(|&(t, l)| l == id && t != tx);
        let of = self.outbox.iter().filter(|(r, sent)| !sent && free(&self.locks, r.id)).take(limit as usize).count() as u8;
        let to = crate::payment::owner(tx);
        if of == 0 {
            return ctx.send(to, Msg::SqlReply { tx, reply: SqlReply::NoRows });
        }
        let mut index = 0;
        for i in 0..self.outbox.len() {
            let (row, sent) = self.outbox[i];
            if index == of {
                break;
            }
            if sent || !free(&self.locks, row.id) {
                continue;
            }
            if claim && !self.locks.contains(&(tx, row.id)) {
                self.locks.push((tx, row.id));
            }
            ctx.send(to, Msg::SqlReply { tx, reply: SqlReply::Row { row, index, of } });
            index += 1;
        }
    }

    /// `UPDATE outbox SET sent = true WHERE id = $1`: in `tx` (a claim), or at once.
    pub fn mark_sent(&mut self, ctx: &mut Ctx<'_, Node>, tx: Option<u64>, id: u32) {
        match tx {
            Some(tx) => self.pending.push((tx, Pending::MarkSent { id })),
            None => self.apply_mark(ctx, id),
        }
    }

    fn apply_mark(&mut self, ctx: &mut Ctx<'_, Node>, id: u32) {
        if let Some((_, sent)) = self.outbox.iter_mut().find(|(r, sent)| r.id == id && !*sent) {
            *sent = true;
            ctx.write(Record::OutboxSent { id });
        }
    }

    /// The consumer's transaction: the inbox row (a primary-key conflict means the message was
    /// processed: nothing is applied) and/or the effect, committed at once.
    pub fn apply(&mut self, ctx: &mut Ctx<'_, Node>, event: Event, inbox: bool, effect: bool) -> Applied {
        if inbox {
            if self.inbox.contains(&event.order) {
                return Applied::Duplicate;
            }
            self.inbox.push(event.order);
            ctx.write(Record::Inbox { order: event.order });
        }
        if effect {
            self.effects.push(event);
            ctx.write(Record::Effect(event));
            ctx.observe(Obs::Applied { event });
        }
        Applied::Done
    }

    /// COMMIT of `tx`: its writes become visible and go to the WAL; its locks are released.
    pub fn commit(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64) {
        let mut i = 0;
        while i < self.pending.len() {
            if self.pending[i].0 != tx {
                i += 1;
                continue;
            }
            match self.pending.remove(i).1 {
                Pending::Order { event, outbox } => {
                    self.orders.push(event);
                    ctx.write(Record::Order(event));
                    if let Some(id) = outbox {
                        let row = OutboxRow { id, event };
                        self.outbox.push((row, false));
                        ctx.write(Record::Outbox(row));
                    }
                    ctx.observe(Obs::OrderCommitted { event });
                }
                Pending::MarkSent { id } => self.apply_mark(ctx, id),
            }
        }
        self.release(tx);
    }

    /// The end of `tx`: its row locks go.
    fn release(&mut self, tx: u64) {
        self.locks.retain(|&(t, _)| t != tx);
        self.aggregate_locks.retain(|&(t, _)| t != tx);
    }

    /// ROLLBACK (or an abort) of `tx`.
    pub fn rollback(&mut self, tx: u64) {
        self.pending.retain(|&(t, _)| t != tx);
        self.release(tx);
    }

    /// The committed orders an auditor finds in `log`, in commit order.
    pub fn orders_at(log: &[Record], out: &mut Vec<Event>) {
        out.extend(log.iter().filter_map(|r| if let Record::Order(e) = r { Some(*e) } else { None }));
    }

    /// The effects an auditor finds in `log`, in the order they were applied.
    pub fn effects_at(log: &[Record], out: &mut Vec<Event>) {
        out.extend(log.iter().filter_map(|r| if let Record::Effect(e) = r { Some(*e) } else { None }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim::Choices;

    /// `f` with a context over throwaway buffers (the commit's WAL writes and observations).
    fn with_ctx(f: impl FnOnce(&mut Ctx<'_, Node>)) {
        let (mut out, mut choices, mut next_timer) = (Vec::new(), Choices::seeded(0), 0);
        f(&mut Ctx::new(0, 0, &mut out, &mut choices, &mut next_timer));
    }

    fn ev(order: OrderId, aggregate: u32) -> Event {
        Event { order, aggregate }
    }

    /// A copy of an order's INSERT in its transaction (a database link that duplicates) inserts
    /// nothing more: the COMMIT writes the order and its outbox row once.
    #[test]
    fn a_copy_of_an_insert_commits_one_order() {
        let mut t = Tables::default();
        assert!(t.insert_order(1, ev(1, 0), true, true));
        assert!(t.insert_order(1, ev(1, 0), true, true), "the copy is answered as the statement was");
        with_ctx(|ctx| t.commit(ctx, 1));
        let ids: Vec<u32> = t.outbox.iter().map(|(r, _)| r.id).collect();
        assert_eq!((&t.orders[..], &ids[..]), (&[ev(1, 0)][..], &[1][..]));
    }

    /// The aggregate lock holds the next order of that aggregate (not of another) until the
    /// holder commits or rolls back, and the waiter's outbox id is handed out after that: one
    /// aggregate's ids follow its commit order.
    #[test]
    fn an_aggregate_lock_holds_the_next_order_until_the_first_ends() {
        let mut t = Tables::default();
        assert!(t.insert_order(1, ev(1, 0), true, true));
        assert!(!t.insert_order(2, ev(2, 0), true, true), "the same aggregate waits");
        assert!(t.insert_order(3, ev(3, 1), true, true), "another aggregate does not");
        assert!(t.insert_order(2, ev(2, 0), true, false), "without the lock nothing waits");
        t.rollback(2);
        with_ctx(|ctx| t.commit(ctx, 1));
        assert!(t.insert_order(2, ev(2, 0), true, true), "a commit releases the lock");
        t.rollback(3);
        assert!(t.insert_order(4, ev(4, 1), true, true), "a rollback releases the lock");
        with_ctx(|ctx| {
            t.commit(ctx, 4);
            t.commit(ctx, 2);
        });
        let ids: Vec<(OrderId, u32)> = t.outbox.iter().map(|(r, _)| (r.event.order, r.id)).collect();
        // In commit order; order 2's id was handed out after order 1 committed (ids 2 and 3
        // went to inserts that rolled back).
        assert_eq!(ids, [(1, 1), (4, 5), (2, 4)]);
    }
}
