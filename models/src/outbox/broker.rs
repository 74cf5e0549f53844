//! A Kafka-like broker: a partitioned log keyed by aggregate id (order holds within a
//! partition), producer acknowledgements, the idempotent producer's per-session sequence check,
//! one consumer group's committed offsets, and a retention limit after which messages are
//! deleted whether or not anyone read them.
//!
//! Departures from Kafka, on purpose: the log is replicated (`acks = all`, `min.insync.replicas`
//! met), so a broker crash loses nothing acknowledged: it is modelled as a durable write at every
//! append. Retention deletes single messages when they are read past their age, not whole
//! segments on a 5-minute check. A fetch returns one message.

use super::design::BrokerDesign;
use crate::payment::Shared;
use crate::world::{Msg, Node, Record};
use invariants::{Event, Obs};
use sim::{Ctx, NodeId};

/// One message in a partition.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct LogEntry {
    pub event: Event,
    /// The producer session and its sequence number (the idempotent producer's dedup state is
    /// the log itself).
    pub pid: u64,
    pub seq: u32,
    pub at_us: u64,
}

#[derive(Debug, Hash)]
pub struct Broker {
    cfg: Shared<BrokerDesign>,
    /// Per partition: every message ever appended (offset = index); `start[p]` is the log start
    /// offset (earlier ones deleted by retention).
    log: Vec<Vec<LogEntry>>,
    start: Vec<u32>,
    /// The consumer group's committed offset per partition.
    committed: Vec<u32>,
}
sim::clone_by_field!(Broker { cfg, log, start, committed });

impl Broker {
    pub fn new(cfg: Shared<BrokerDesign>) -> Self {
        let p = cfg.partitions as usize;
        Broker { cfg, log: vec![Vec::new(); p], start: vec![0; p], committed: vec![0; p] }
    }

    pub fn reset(&mut self, cfg: Shared<BrokerDesign>) {
        let p = cfg.partitions as usize;
        self.cfg = cfg;
        self.log.resize_with(p, Vec::new);
        self.log.iter_mut().for_each(Vec::clear);
        self.start.clear();
        self.start.resize(p, 0);
        self.committed.clear();
        self.committed.resize(p, 0);
    }

    /// The partition of `event` among `partitions`: keyed by aggregate id.
    pub fn partition_of_parts(partitions: u32, event: Event) -> u32 {
        event.aggregate % partitions
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        self.reset(self.cfg);
        for r in durable {
            match *r {
                Record::Logged { partition, entry } => self.log[partition as usize].push(entry),
                Record::GroupOffset { partition, offset } => self.committed[partition as usize] = offset,
                _ => {}
            }
        }
    }

    pub fn on_message(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Produce { pid, seq, event } => self.produce(ctx, from, pid, seq, event),
            Msg::Fetch { partition, offset } => {
                self.expire(ctx, partition);
                let p = partition as usize;
                let offset = offset.max(self.start[p]); // auto.offset.reset = earliest
                let event = self.log[p].get(offset as usize).map(|e| e.event);
                ctx.send(from, Msg::Fetched { partition, offset, event });
            }
            Msg::CommitOffset { partition, offset } => {
                self.committed[partition as usize] = offset;
                ctx.write(Record::GroupOffset { partition, offset });
                ctx.fsync();
                ctx.send(from, Msg::OffsetCommitted { partition, offset });
            }
            Msg::FetchOffset { partition } => {
                let offset = self.committed[partition as usize];
                ctx.send(from, Msg::GroupOffset { partition, offset });
            }
            other => unreachable!("{other:?} sent to the broker"),
        }
    }

    fn produce(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, pid: u64, seq: u32, event: Event) {
        let partition = Self::partition_of_parts(self.cfg.partitions, event);
        self.expire(ctx, partition);
        let log = &mut self.log[partition as usize];
        if self.cfg.idempotent_producer {
            // The broker keeps the last sequence number of each producer session per partition:
            // a retried duplicate is acknowledged without a second append, and a gap (an
            // earlier send lost) is refused so the producer resends in order.
            let last = log.iter().rev().find(|e| e.pid == pid).map_or(0, |e| e.seq);
            if seq <= last {
                return ctx.send(from, Msg::ProduceAck { pid, partition, seq, ok: true });
            }
            if seq != last + 1 {
                return ctx.send(from, Msg::ProduceAck { pid, partition, seq, ok: false });
            }
        }
        let entry = LogEntry { event, pid, seq, at_us: ctx.now_us() };
        let offset = log.len() as u32;
        log.push(entry);
        ctx.write(Record::Logged { partition, entry });
        ctx.fsync();
        ctx.observe(Obs::Published { event, partition, offset, producer: (pid >> 48) as u32 });
        ctx.send(from, Msg::ProduceAck { pid, partition, seq, ok: true });
    }

    /// Retention: delete the messages older than `retention_us`, noting those the group had not
    /// consumed yet.
    fn expire(&mut self, ctx: &mut Ctx<'_, Node>, partition: u32) {
        let keep_us = self.cfg.retention_us;
        if keep_us == 0 {
            return;
        }
        let p = partition as usize;
        let now = ctx.now_us();
        while let Some(e) = self.log[p].get(self.start[p] as usize) {
            if e.at_us + keep_us > now {
                break;
            }
            let offset = self.start[p];
            if offset >= self.committed[p] {
                ctx.observe(Obs::Expired { event: e.event, partition, offset });
            }
            self.start[p] += 1;
        }
    }
}
