//! Redis split brain (`replica_failover`): the primary cut off from its replica and the
//! sentinels while some app servers can still reach it. The store draws the cut itself, at the
//! scenario's partition rate, inside the fault phase: the engine's partitions cut a node's links
//! to other nodes, and the replica and sentinels are not nodes of their own here.
//!
//! Redis Sentinel's timeline: the cut starts; the sentinels mark the primary subjectively down
//! after `down-after-milliseconds` and, agreeing, promote the replica (the model promotes at
//! once then; a real election adds a few seconds) with what had streamed to it; the app servers
//! that can reach the sentinels are told the new primary's address (`+switch-master`) and use
//! it; those on the old primary's side cannot, and keep writing there. Before the promotion the
//! servers on the far side reach no primary at all (their calls time out). When the cut heals the
//! sentinels turn the old primary into a replica of the new one, which discards its data.

use super::redis::{get, put, Entry, Redis, RedisCmd, RedisTimer};
use super::{Node, Record, Timer, FIRST_SERVER};
use crate::knobs::KeyStore;
use sim::{ChoiceKind, Ctx, NodeId};

/// Where a split brain comes from: the scenario's partition fault.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct SplitFault {
    /// Chance that this run has a cut (`faults.partition_probability`).
    pub probability: f64,
    /// It starts within the fault phase (`faults.fault_phase_us`),
    pub phase_us: u64,
    /// and lasts up to this long (`faults.partition_us_max`).
    pub len_us_max: u64,
    /// Server instances, each on either side of the cut.
    pub instances: u32,
}

/// Which primary a command reaches.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Side {
    /// The primary (the old one, during a cut).
    Primary,
    /// The replica the sentinels promoted during a cut.
    Promoted,
}

/// A cut in progress.
#[derive(Clone, Debug, Hash)]
pub struct Split {
    pub cut_at_us: u64,
    /// Nodes (bit per node id) on the old primary's side of the cut.
    pub old_side: u64,
    /// The promoted replica's data, once the sentinels failed over.
    pub promoted: Option<Vec<Entry>>,
    /// The keys each primary let a SETNX claim during the cut.
    claimed: Vec<(invariants::Key, Side)>,
    /// Commands from the far side before the failover, held up in TCP (retransmitted until the
    /// cut heals; dropped when the failover kills their connections).
    parked: Vec<(NodeId, u64, RedisCmd)>,
}

/// What a run's cut did, for its violation message and the tests.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct SplitNote {
    pub cut_at_us: u64,
    pub len_us: u64,
    pub old_side: u64,
    /// When the sentinels promoted the replica (none: the cut healed before `down_after_us`).
    pub promoted_at_us: Option<u64>,
    /// Keys that both primaries let a SETNX claim during the cut (one of the two claims is
    /// discarded at the heal).
    pub claimed_on_both: u32,
    /// SETNX claims the old primary accepted while the promoted replica was taking writes too:
    /// two writable primaries, the split brain itself.
    pub claimed_while_two: u32,
}

impl SplitNote {
    /// One sentence for a violation message; `name` names a node.
    pub fn describe(&self, name: impl Fn(NodeId) -> String) -> String {
        let side: Vec<String> = (0..64).filter(|n| self.old_side >> n & 1 == 1).map(name).collect();
        let side = if side.is_empty() { "no server".to_string() } else { side.join(", ") };
        let at = invariants::ms;
        match self.promoted_at_us {
            None => format!(
                " The store's primary was cut off from its replica and the sentinels at {} for {} (shorter than down_after_us: no failover; {side} on its side).",
                at(self.cut_at_us),
                at(self.len_us)
            ),
            Some(p) => format!(
                " Split brain: the store's primary was cut off from its replica and the sentinels at {} for {}, with {side} on its side; the sentinels promoted the replica at {}; {} key{} claimed on both primaries; at the heal the old primary's writes since the cut were discarded.",
                at(self.cut_at_us),
                at(self.len_us),
                at(p),
                self.claimed_on_both,
                if self.claimed_on_both == 1 { " was" } else { "s were" }
            ),
        }
    }
}

impl Redis {
    /// Draw this run's cut (at the first start only: one per run).
    pub(super) fn plan_split(&mut self, ctx: &mut Ctx<'_, Node>) {
        let f = *self.fault;
        if !ctx.flip(ChoiceKind::Partition, f.probability) {
            return;
        }
        let at_us = ctx.choose(ChoiceKind::FaultShape, f.phase_us.min(u32::MAX as u64) as u32) as u64;
        let len_us = 1 + ctx.choose(ChoiceKind::FaultShape, f.len_us_max.min(u32::MAX as u64 - 1) as u32 + 1) as u64;
        // Any subset of the instances stays with the old primary, none and all included.
        let mask = ctx.choose(ChoiceKind::FaultShape, 1 << f.instances.min(8)) as u64;
        ctx.set_timer(at_us, Timer::Redis(RedisTimer::Cut { len_us, old_side: mask << FIRST_SERVER }));
    }

    pub(super) fn cut(&mut self, ctx: &mut Ctx<'_, Node>, len_us: u64, old_side: u64) {
        if self.split.is_some() {
            return;
        }
        self.split = Some(Split { cut_at_us: ctx.now_us(), old_side, promoted: None, claimed: Vec::new(), parked: Vec::new() });
        self.note =
            Some(SplitNote { cut_at_us: ctx.now_us(), len_us, old_side, promoted_at_us: None, claimed_on_both: 0, claimed_while_two: 0 });
        let KeyStore::Redis { down_after_us, .. } = *self.cfg() else { unreachable!("redis config") };
        if down_after_us < len_us {
            ctx.set_timer(down_after_us, Timer::Redis(RedisTimer::Promote));
        }
        ctx.set_timer(len_us, Timer::Redis(RedisTimer::Heal));
    }

    /// The sentinels fail over: the replica, with what streamed to it before the cut, is the
    /// primary for every server on their side.
    pub(super) fn promote(&mut self, now_us: u64) {
        let replica = self.replica.clone();
        if let Some(s) = &mut self.split {
            s.promoted = Some(replica);
            s.parked.clear();
            if let Some(n) = &mut self.note {
                n.promoted_at_us = Some(now_us);
            }
        }
    }

    /// A SETNX on `side` claimed `key`: count it if the other primary let it be claimed too.
    pub(super) fn claimed(&mut self, side: Side, key: invariants::Key) {
        let (Some(s), Some(n)) = (&mut self.split, &mut self.note) else { return };
        if s.claimed.iter().any(|&(k, o)| k == key && o != side) {
            n.claimed_on_both += 1;
        }
        if side == Side::Primary && s.promoted.is_some() {
            n.claimed_while_two += 1;
        }
        s.claimed.push((key, side));
    }

    /// The cut heals. Without a failover the replica catches up (a partial resync); after one,
    /// the old primary becomes a replica of the new one and its data is replaced: a full
    /// resync, written to the log as what the surviving primary holds.
    pub(super) fn heal(&mut self, ctx: &mut Ctx<'_, Node>) {
        let Some(split) = self.split.take() else { return };
        let Some(new) = split.promoted else {
            if !self.unshipped.is_empty() {
                self.arm_flush(ctx);
            }
            // A blip shorter than down-after: TCP delivers what it held up.
            for (from, req, cmd) in split.parked {
                self.on_cmd(ctx, from, req, cmd);
            }
            return;
        };
        let gone: Vec<Entry> = self
            .data
            .iter()
            .chain(&self.replica)
            .chain(&self.unshipped)
            .filter(|e| !new.iter().any(|n| n.key == e.key))
            .map(|e| Entry { key: e.key, value: None, expires_at_us: 0 })
            .collect();
        for e in gone.iter().chain(&new) {
            ctx.write(Record::Redis(*e));
        }
        ctx.fsync();
        self.data.clone_from(&new);
        self.replica = new;
        self.unshipped.clear();
    }

    /// A command from the far side of the cut before the failover waits in TCP.
    pub(super) fn park(&mut self, from: NodeId, req: u64, cmd: RedisCmd) {
        if let Some(s) = &mut self.split {
            s.parked.push((from, req, cmd));
        }
    }

    /// Which primary `from` reaches; `None`: none (the far side of a cut before the failover).
    pub(super) fn side_of(&self, from: NodeId) -> Option<Side> {
        let Some(s) = &self.split else { return Some(Side::Primary) };
        if from < 64 && s.old_side >> from & 1 == 1 {
            Some(Side::Primary)
        } else if s.promoted.is_some() {
            Some(Side::Promoted)
        } else {
            None
        }
    }

    /// `min_replicas_to_write`: the old primary, its replica silent for `min_replicas_max_lag_us`,
    /// refuses writes.
    pub(super) fn refuses_writes(&self, side: Side, now_us: u64) -> bool {
        let KeyStore::Redis { min_replicas_to_write, min_replicas_max_lag_us, .. } = *self.cfg() else { return false };
        side == Side::Primary
            && min_replicas_to_write > 0
            && self.split.as_ref().is_some_and(|s| now_us >= s.cut_at_us + min_replicas_max_lag_us)
    }

    pub(super) fn dataset(&self, side: Side) -> &[Entry] {
        match (side, &self.split) {
            (Side::Promoted, Some(Split { promoted: Some(p), .. })) => p,
            _ => &self.data,
        }
    }

    /// A write on the promoted replica during a cut (durable when the cut heals).
    pub(super) fn write_promoted(&mut self, e: Entry) {
        if let Some(Split { promoted: Some(p), .. }) = &mut self.split {
            put(p, e);
        }
    }

    /// The live value of `key` on `side`.
    pub(super) fn get_on(&self, side: Side, key: invariants::Key, now_us: u64) -> Option<super::redis::Value> {
        get(self.dataset(side), key, now_us)
    }
}
