//! The consumer: one member of a consumer group reading every partition, applying each event to
//! a projection in its own database, and committing its offset before or after the effect.
//! Dedup is none, an inbox row in the effect's transaction, or a record in a separate store.
//! After a crash (or an outage window) it resumes from the group's committed offsets: everything
//! after them is delivered again.

use super::design::{ConsumerDesign, Dedup, OffsetCommit};
use super::tables::Applied;
use super::Layout;
use crate::payment::postgres::{Sql, SqlReply};
use crate::payment::Shared;
use crate::world::{Msg, Node, Record, Timer};
use invariants::{Event, Obs};
use sim::{Ctx, NodeId, TimerId};

#[derive(Copy, Clone, Debug)]
pub struct ConsumerSetup {
    pub design: ConsumerDesign,
    pub partitions: u32,
    pub layout: Layout,
    /// Polling stops here, after a last poll at this moment (`consumer_horizon_us`).
    pub poll_until_us: u64,
}

/// The consumer's polling horizon, given the relay's: later by what the relay's last publish
/// may still take after its last poll (the poll's round trip, a produce refused out of order,
/// the producer timeout and the resend), so that the consumer's last poll comes after it.
pub fn consumer_horizon_us(relay_until_us: u64, producer_timeout_us: u64, delay_us_max: u64) -> u64 {
    relay_until_us + 2 * (producer_timeout_us + 2 * delay_us_max)
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ConsumerTimer {
    /// Fetch partition `p` again (after an empty fetch).
    Poll {
        p: u32,
        epoch: u32,
    },
    /// The call `call` of partition `p` went unanswered: send it again.
    Retry {
        p: u32,
        call: u32,
        epoch: u32,
    },
    OutageStart,
    OutageEnd,
}

/// Where one partition's loop is.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Step {
    /// Asking the group's committed offset.
    Position,
    Fetch,
    /// Recording the dedup record in the separate store.
    Dedup(Event),
    Apply(Event),
    /// Committing `offset`; then (offset before effect) applying `then`.
    Commit {
        offset: u32,
        then: Option<Event>,
    },
    /// Waiting for a poll timer.
    Rest,
    Stopped,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
struct Part {
    next: u32,
    step: Step,
    /// Calls made on this partition: a reply or timer for an older one is stale.
    call: u32,
    idle_us: u64,
    timer: Option<TimerId>,
}

#[derive(Debug, Hash)]
pub struct Consumer {
    setup: Shared<ConsumerSetup>,
    me: NodeId,
    boots: u32,
    /// Bumped by an outage: timers set before it are ignored (a crash voids them itself).
    epoch: u32,
    down: bool,
    parts: Vec<Part>,
}
sim::clone_by_field!(Consumer { setup, me, boots, epoch, down, parts });

const SUBSCRIBER_SHIFT: u64 = 40;

impl Consumer {
    pub fn new(setup: Shared<ConsumerSetup>, me: NodeId) -> Self {
        Consumer { setup, me, boots: 0, epoch: 0, down: false, parts: Vec::new() }
    }

    pub fn reset(&mut self, setup: Shared<ConsumerSetup>, me: NodeId) {
        let mut parts = std::mem::take(&mut self.parts);
        parts.clear();
        *self = Consumer { parts, ..Consumer::new(setup, me) };
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        ctx.write(Record::Boot);
        ctx.fsync();
        self.boots += 1;
        // The outage is a window of simulated time, whatever crashes happen around it.
        if let Some(w) = self.setup.design.outage {
            let now = ctx.now_us();
            if now < w.start_us {
                ctx.set_timer(w.start_us - now, Timer::Consumer(ConsumerTimer::OutageStart));
            } else if now < w.start_us + w.duration_us {
                self.down = true;
                ctx.set_timer(w.start_us + w.duration_us - now, Timer::Consumer(ConsumerTimer::OutageEnd));
            }
        }
        self.join(ctx);
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let boots = durable.iter().filter(|r| matches!(r, Record::Boot)).count() as u32;
        self.reset(self.setup, self.me);
        self.boots = boots;
    }

    /// Join the group: learn each partition's committed offset, then fetch from it.
    fn join(&mut self, ctx: &mut Ctx<'_, Node>) {
        if self.down {
            return;
        }
        self.parts.clear();
        let idle_us = self.setup.design.poll_interval_us;
        for p in 0..self.setup.partitions {
            self.parts.push(Part { next: 0, step: Step::Position, call: 0, idle_us, timer: None });
            self.call(ctx, p);
        }
    }

    /// Make (or make again) partition `p`'s current call, and arm its retry.
    fn call(&mut self, ctx: &mut Ctx<'_, Node>, p: u32) {
        let l = self.setup.layout;
        let part = &mut self.parts[p as usize];
        part.call += 1;
        let tx = (self.me as u64) << 48 | (self.boots as u64) << 32 | (p as u64) << SUBSCRIBER_SHIFT | part.call as u64;
        let sql = |sql| Msg::Sql { tx, begin: true, sql, lock_timeout_us: 0 };
        let inbox = self.setup.design.dedup == Dedup::Inbox;
        let (to, msg) = match part.step {
            Step::Position => (l.broker, Msg::FetchOffset { partition: p }),
            Step::Fetch => (l.broker, Msg::Fetch { partition: p, offset: part.next }),
            Step::Dedup(event) => (l.dedup_db, sql(Sql::Apply { event, inbox: true, effect: false })),
            Step::Apply(event) => (l.projection_db, sql(Sql::Apply { event, inbox, effect: true })),
            Step::Commit { offset, .. } => (l.broker, Msg::CommitOffset { partition: p, offset }),
            Step::Rest | Step::Stopped => unreachable!("no call to make"),
        };
        ctx.send(to, msg);
        if let Some(t) = part.timer.take() {
            ctx.cancel_timer(t);
        }
        let retry = ConsumerTimer::Retry { p, call: part.call, epoch: self.epoch };
        part.timer = Some(ctx.set_timer(self.setup.design.call_timeout_us, Timer::Consumer(retry)));
    }

    fn go(&mut self, ctx: &mut Ctx<'_, Node>, p: u32, step: Step) {
        self.parts[p as usize].step = step;
        self.call(ctx, p);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: ConsumerTimer) {
        match t {
            ConsumerTimer::OutageStart => {
                // The consumer goes down: nothing it had in flight counts any more.
                let w = self.setup.design.outage.expect("an outage timer needs an outage");
                self.down = true;
                self.epoch += 1;
                self.parts.clear();
                ctx.set_timer(w.duration_us, Timer::Consumer(ConsumerTimer::OutageEnd));
            }
            ConsumerTimer::OutageEnd => {
                self.down = false;
                self.epoch += 1;
                self.join(ctx);
            }
            _ if self.down => {}
            ConsumerTimer::Poll { p, epoch } if epoch == self.epoch => self.go(ctx, p, Step::Fetch),
            ConsumerTimer::Retry { p, call, epoch } if epoch == self.epoch && self.parts[p as usize].call == call => {
                self.parts[p as usize].timer = None;
                self.call(ctx, p);
            }
            _ => {}
        }
    }

    /// The partition's call was answered: which call, from the reply's id.
    fn current(&self, p: u32, call: Option<u32>) -> bool {
        !self.down && (p as usize) < self.parts.len() && call.is_none_or(|c| self.parts[p as usize].call == c)
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, Node>, _from: NodeId, msg: Msg) {
        match msg {
            Msg::GroupOffset { partition: p, offset } if self.current(p, None) && self.parts[p as usize].step == Step::Position => {
                self.parts[p as usize].next = offset;
                self.go(ctx, p, Step::Fetch);
            }
            Msg::Fetched { partition: p, offset, event } if self.current(p, None) && self.parts[p as usize].step == Step::Fetch => {
                let part = &mut self.parts[p as usize];
                if offset < part.next {
                    return; // A duplicate answer to an earlier fetch.
                }
                match event {
                    Some(event) => {
                        part.next = offset; // Later than asked if retention deleted the rest.
                        part.idle_us = self.setup.design.poll_interval_us;
                        ctx.observe(Obs::Delivered { event, partition: p, offset });
                        self.delivered(ctx, p, event, offset);
                    }
                    None => self.rest(ctx, p),
                }
            }
            Msg::OffsetCommitted { partition: p, offset } if self.current(p, None) => {
                if let Step::Commit { offset: o, then } = self.parts[p as usize].step {
                    if o == offset {
                        self.parts[p as usize].next = offset;
                        match then {
                            Some(event) => self.effect(ctx, p, event),
                            None => self.go(ctx, p, Step::Fetch),
                        }
                    }
                }
            }
            Msg::SqlReply { tx, reply } => self.on_sql_reply(ctx, tx, reply),
            Msg::StoreRestarted => {} // Its calls time out and are made again.
            _ => {}
        }
    }

    fn delivered(&mut self, ctx: &mut Ctx<'_, Node>, p: u32, event: Event, offset: u32) {
        match self.setup.design.offset_commit {
            // Auto-commit style: the position moves on before the work is done.
            OffsetCommit::BeforeEffect => self.go(ctx, p, Step::Commit { offset: offset + 1, then: Some(event) }),
            OffsetCommit::AfterEffect => self.effect(ctx, p, event),
        }
    }

    fn effect(&mut self, ctx: &mut Ctx<'_, Node>, p: u32, event: Event) {
        let step = if self.setup.design.dedup == Dedup::SeparateStore { Step::Dedup(event) } else { Step::Apply(event) };
        self.go(ctx, p, step);
    }

    /// The event is handled (applied or skipped): commit the offset after it, or (its offset
    /// already committed) fetch on.
    fn handled(&mut self, ctx: &mut Ctx<'_, Node>, p: u32) {
        match self.setup.design.offset_commit {
            OffsetCommit::AfterEffect => {
                let offset = self.parts[p as usize].next + 1;
                self.go(ctx, p, Step::Commit { offset, then: None })
            }
            OffsetCommit::BeforeEffect => self.go(ctx, p, Step::Fetch),
        }
    }

    fn on_sql_reply(&mut self, ctx: &mut Ctx<'_, Node>, tx: u64, reply: SqlReply) {
        let p = ((tx >> SUBSCRIBER_SHIFT) & 0xff) as u32;
        let boot = ((tx >> 32) & 0xff) as u32;
        if boot != self.boots & 0xff || !self.current(p, Some(tx as u32)) {
            return;
        }
        let SqlReply::Applied(applied) = reply else { return };
        match self.parts[p as usize].step {
            Step::Dedup(event) if applied == Applied::Done => self.go(ctx, p, Step::Apply(event)),
            Step::Dedup(event) | Step::Apply(event) => {
                if applied == Applied::Duplicate {
                    ctx.observe(Obs::Deduplicated { event });
                }
                self.handled(ctx, p)
            }
            _ => {}
        }
    }

    /// Nothing to read: fetch again later, backing off while the partition stays empty.
    fn rest(&mut self, ctx: &mut Ctx<'_, Node>, p: u32) {
        let d = self.setup.design;
        let part = &mut self.parts[p as usize];
        if let Some(t) = part.timer.take() {
            ctx.cancel_timer(t);
        }
        part.idle_us = (part.idle_us * 2).min(d.idle_poll_us_max);
        // The last poll comes at the horizon itself, not at the last backoff step before it:
        // an event published between the two would be judged lost when it is only unread.
        let Some(left_us) = self.setup.poll_until_us.checked_sub(ctx.now_us()).filter(|&l| l > 0) else {
            part.step = Step::Stopped;
            return;
        };
        part.step = Step::Rest;
        let t = ConsumerTimer::Poll { p, epoch: self.epoch };
        ctx.set_timer(part.idle_us.min(left_us), Timer::Consumer(t));
    }
}
