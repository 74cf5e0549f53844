//! A Redis-like key store: `SET key value NX PX ttl`, `GET`, `SET .. PX`, an append-only file
//! fsynced per `appendfsync`, and optionally an asynchronous replica promoted on failover.
//!
//! Every write is handed to the OS before the reply (Redis writes its AOF buffer before it
//! answers), so a process crash loses nothing; a machine crash loses what was not yet fsynced.
//! The background fsync runs on a clock of one period (1 s for `everysec`, about 30 s for the
//! OS's flush under `no`) that has been running since long before the run: its phase is a
//! choice drawn at the first start (so it shrinks, to 0, and replays). A write is durable at the
//! clock's next tick; a restarted process starts its clock again at boot. A slow disk
//! (`fsync_stall_percent`) stalls a tick's fsync until the next tick; meanwhile Redis postpones
//! writing its AOF buffer, so what is written during the stall is lost even in a process crash,
//! and a machine crash loses up to 2 s. Without `appendonly` nothing is persisted at all.
//! `maxmemory` and eviction are in `eviction.rs`.
//!
//! Expiry is checked on access against simulated time, as Redis's lazy expiry does. With
//! `replica_failover`, a crash stands for a failover: the new primary holds what was streamed to
//! the replica (each write `replication_lag_us` after it was made: the flush clock is armed by
//! the first write not yet shipped), modelled as the log's durable part, whatever the AOF policy.
//!
//! Split brain (`replica_failover`, `split.rs`): the store draws a cut between the primary and
//! its replica and sentinels. The app servers on the primary's side of the cut keep using it; the
//! others cannot reach it, and after `down_after_us` the sentinels promote the replica, with what
//! had streamed to it before the cut, and point them there. Two primaries now accept SETNX for
//! one key. When the cut heals the old primary resyncs from the new one: what it accepted during
//! the cut is gone. `min_replicas_to_write` makes the old primary refuse writes once its replica
//! has not acknowledged for `min_replicas_max_lag_us`. Departure: the model's durable log holds
//! the surviving primary's data, so a crash of the store during a cut ends it, and the new
//! primary's writes during the cut are made durable (as a resync) only when it heals.

pub use super::split::{Side, Split, SplitFault, SplitNote};
use super::{Msg, Node, Peers, Record, Shared, Timer};
use crate::knobs::{AppendFsync, KeyStore};
use invariants::{ChargeId, Key};
use sim::{ChoiceKind, Ctx, NodeId};

/// What a key holds: in flight (with the payload fingerprint) or the stored response.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Value {
    InFlight {
        fp: u32,
    },
    Done {
        fp: u32,
        charge: ChargeId,
        amount: u32,
    },
    /// A failure stored as the key's result.
    Failed {
        fp: u32,
    },
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum RedisCmd {
    /// `SET key value NX PX ttl`.
    SetNx {
        key: Key,
        value: Value,
    },
    Get {
        key: Key,
    },
    /// `SET key value PX ttl`.
    Set {
        key: Key,
        value: Value,
    },
    /// If the key is still in flight, delete it (`then: None`) or set it to `then` (a Lua
    /// script: `GET`, then `DEL` or `SET`).
    IfInFlight {
        key: Key,
        then: Option<Value>,
    },
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum RedisReply {
    /// `OK` (SET NX: the key was absent and is now ours).
    Ok,
    /// `SET NX` found the key (nil), or `GET` found this value.
    Exists(Value),
    /// `GET` found nothing.
    Nil,
    /// `-NOREPLICAS Not enough good replicas to write` (`min_replicas_to_write`).
    NoReplicas,
    /// `-OOM command not allowed when used memory > 'maxmemory'` (`maxmemory_policy = noeviction`).
    Oom,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    /// `None`: the key was deleted.
    pub value: Option<Value>,
    pub expires_at_us: u64,
}

#[derive(Debug, Hash)]
pub struct Redis {
    cfg: Shared<KeyStore>,
    peers: Shared<Peers>,
    pub(super) fault: Shared<SplitFault>,
    pub(super) data: Vec<Entry>,
    boots: u32,
    flush_armed: bool,
    /// A slow fsync is running (`fsync_stall_percent`): writes stay in the process until the next
    /// tick, which ends it.
    stalled: bool,
    /// The fsync clock ticks at `phase_us + k * period`.
    phase_us: u64,
    /// `replica_failover`: what the replica holds (every write streamed to it),
    pub(super) replica: Vec<Entry>,
    /// and the writes not streamed yet.
    pub(super) unshipped: Vec<Entry>,
    /// A split brain in progress.
    pub(super) split: Option<Split>,
    /// What this run's cut did (kept across crashes: it is the run's record, not the store's).
    pub note: Option<SplitNote>,
    /// Keys evicted at `maxmemory`: how many, and the first one and when (the run's record too).
    pub evicted: (u32, Key, u64),
}
sim::clone_by_field!(Redis { cfg, peers, fault, data, boots, flush_armed, stalled, phase_us, replica, unshipped, split, note, evicted });

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum RedisTimer {
    /// The background fsync (everysec, or the OS for `no`), or the replica catching up.
    Flush,
    /// The primary is cut off from its replica and the sentinels for `len_us`; the servers whose
    /// bit is set in `old_side` are on its side of the cut.
    Cut { len_us: u64, old_side: u64 },
    /// The sentinels agree the primary is down and promote the replica.
    Promote,
    /// The cut heals.
    Heal,
}

impl Redis {
    pub fn new(cfg: Shared<KeyStore>, peers: Shared<Peers>, fault: Shared<SplitFault>) -> Self {
        Redis {
            cfg,
            peers,
            fault,
            data: Vec::new(),
            boots: 0,
            flush_armed: false,
            stalled: false,
            phase_us: 0,
            replica: Vec::new(),
            unshipped: Vec::new(),
            split: None,
            note: None,
            evicted: (0, 0, 0),
        }
    }

    pub(super) fn params(&self) -> (AppendFsync, u64, bool, u64) {
        let KeyStore::Redis { appendfsync, ttl_us, replica_failover, replication_lag_us, .. } = *self.cfg else {
            unreachable!("redis config")
        };
        (appendfsync, ttl_us, replica_failover, replication_lag_us)
    }

    /// The TTL a value gets: the lock TTL while in flight, the result TTL once it holds a result.
    fn ttl_of(&self, v: Value) -> u64 {
        let KeyStore::Redis { ttl_us, lock_ttl_us, .. } = *self.cfg else { unreachable!("redis config") };
        match v {
            Value::InFlight { .. } if lock_ttl_us > 0 => lock_ttl_us,
            _ => ttl_us,
        }
    }

    /// The keys as an auditor finds them at `now_us` in what survived (`log`): live ones only.
    pub fn keys_at(log: &[Record], now_us: u64, out: &mut Vec<(Key, Value)>) {
        for r in log {
            if let Record::Redis(e) = *r {
                out.retain(|(k, _)| *k != e.key);
                if let Some(v) = e.value.filter(|_| e.expires_at_us > now_us) {
                    out.push((e.key, v));
                }
            }
        }
    }

    /// The keys in memory at `now_us`, live ones only (what an auditor finds in a store without
    /// persistence).
    pub fn live_keys(&self, now_us: u64, out: &mut Vec<(Key, Value)>) {
        out.extend(self.data.iter().filter(|e| e.expires_at_us > now_us).filter_map(|e| Some((e.key, e.value?))));
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        self.boots += 1;
        let (appendfsync, _, replica, _) = self.params();
        if let (false, Some(period_us)) = (replica, appendfsync.period_us()) {
            // The first process has run for long: its clock is anywhere in its period. A
            // restarted one starts its clock now.
            self.phase_us = if self.boots == 1 { ctx.choose(ChoiceKind::Model, period_us as u32) as u64 } else { ctx.now_us() % period_us };
        }
        if self.boots > 1 {
            self.peers.tell_restart(ctx);
        }
        if self.boots == 1 && self.params().2 {
            self.plan_split(ctx);
        }
    }

    /// Become `Redis::new(cfg)`, keeping the buffers.
    pub fn reset(&mut self, cfg: Shared<KeyStore>, peers: Shared<Peers>, fault: Shared<SplitFault>) {
        let Redis { cfg: c, peers: p, fault: f, data, boots, flush_armed, stalled, phase_us, replica, unshipped, split, note, evicted } =
            self;
        (*c, *p, *f, *boots, *flush_armed, *stalled, *phase_us, *split, *note) = (cfg, peers, fault, 0, false, false, 0, None, None);
        *evicted = (0, 0, 0);
        data.clear();
        replica.clear();
        unshipped.clear();
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let (boots, note, evicted) = (self.boots, self.note, self.evicted);
        self.reset(self.cfg, self.peers, self.fault);
        (self.boots, self.note, self.evicted) = (boots, note, evicted);
        for r in durable {
            if let Record::Redis(e) = *r {
                put(&mut self.data, e);
            }
        }
        // The promoted replica's data is the primary's now, and its replica is in sync.
        self.replica.clone_from(&self.data);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: RedisTimer) {
        match t {
            RedisTimer::Flush => {
                self.flush_armed = false;
                if self.split.is_some() {
                    return; // Nothing reaches the replica across the cut; shipped at the heal.
                }
                for e in self.unshipped.drain(..) {
                    put(&mut self.replica, e);
                }
                if self.stalls(ctx) {
                    return;
                }
                ctx.fsync();
            }
            RedisTimer::Cut { len_us, old_side } => self.cut(ctx, len_us, old_side),
            RedisTimer::Promote => self.promote(ctx.now_us()),
            RedisTimer::Heal => self.heal(ctx),
        }
    }

    pub fn on_cmd(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, req: u64, cmd: RedisCmd) {
        let now = ctx.now_us();
        let Some(side) = self.side_of(from) else { return self.park(from, req, cmd) }; // Across the cut.
        if cmd.writes() && self.refuses_writes(side, now) {
            return ctx.send(from, Msg::RedisReply { req, reply: RedisReply::NoReplicas });
        }
        let reply = match cmd {
            RedisCmd::Get { key } => {
                self.touch(key);
                self.get_on(side, key, now).map_or(RedisReply::Nil, RedisReply::Exists)
            }
            RedisCmd::SetNx { key, value } => match self.get_on(side, key, now) {
                Some(v) => {
                    self.touch(key);
                    RedisReply::Exists(v)
                }
                None if !self.make_room(ctx, key, now) => RedisReply::Oom,
                None => {
                    self.write(ctx, side, Entry { key, value: Some(value), expires_at_us: now + self.ttl_of(value) });
                    self.claimed(side, key);
                    RedisReply::Ok
                }
            },
            RedisCmd::Set { key, .. } if !self.make_room(ctx, key, now) => RedisReply::Oom,
            RedisCmd::Set { key, value } => {
                self.write(ctx, side, Entry { key, value: Some(value), expires_at_us: now + self.ttl_of(value) });
                RedisReply::Ok
            }
            RedisCmd::IfInFlight { key, then } => {
                if matches!(self.get_on(side, key, now), Some(Value::InFlight { .. })) {
                    let expires_at_us = then.map_or(0, |v| now + self.ttl_of(v));
                    self.write(ctx, side, Entry { key, value: then, expires_at_us });
                }
                RedisReply::Ok
            }
        };
        ctx.send(from, Msg::RedisReply { req, reply });
    }

    /// Apply a write and append it to the AOF (handed to the OS before the reply); fsync now, or
    /// arm the background flush. During a cut a write stays on its side (see `split.rs`).
    pub(super) fn write(&mut self, ctx: &mut Ctx<'_, Node>, side: Side, e: Entry) {
        if side == Side::Promoted {
            return self.write_promoted(e);
        }
        put(&mut self.data, e);
        let (appendfsync, _, replica, lag_us) = self.params();
        if replica {
            // The replica holds what was shipped to it: the log's durable part (see the top).
            ctx.write(Record::Redis(e));
            self.unshipped.push(e);
        } else if !self.appendonly() {
            return; // No persistence: memory is all there is.
        } else if self.stalled {
            ctx.write(Record::Redis(e)); // Postponed: in the process's AOF buffer only.
        } else {
            ctx.write_os(Record::Redis(e));
        }
        let delay_us = match (replica, appendfsync.period_us()) {
            (true, _) => lag_us,
            (false, None) => return ctx.fsync(),
            // The clock's next tick: 1 to `period_us` from now.
            (false, Some(period_us)) => period_us - (ctx.now_us() + period_us - self.phase_us) % period_us,
        };
        self.arm_flush_in(ctx, delay_us);
    }

    pub fn appendonly(&self) -> bool {
        matches!(*self.cfg, KeyStore::Redis { appendonly: true, .. })
    }

    /// At a tick: end a stalled fsync (what was postponed is written and synced now), or draw
    /// whether this tick's fsync stalls until the next one. True if nothing is synced now.
    fn stalls(&mut self, ctx: &mut Ctx<'_, Node>) -> bool {
        let KeyStore::Redis { fsync_stall_percent, appendfsync, .. } = *self.cfg else { unreachable!("redis config") };
        if fsync_stall_percent == 0 || self.stalled {
            self.stalled = false;
            return false;
        }
        if !ctx.flip(ChoiceKind::Model, fsync_stall_percent as f64 / 100.0) {
            return false;
        }
        self.stalled = true;
        self.arm_flush_in(ctx, appendfsync.period_us().expect("everysec has a period"));
        true
    }

    fn arm_flush_in(&mut self, ctx: &mut Ctx<'_, Node>, delay_us: u64) {
        if !self.flush_armed {
            self.flush_armed = true;
            ctx.set_timer(delay_us, Timer::Redis(RedisTimer::Flush));
        }
    }

    /// Stream what is not shipped yet to the replica.
    pub(super) fn arm_flush(&mut self, ctx: &mut Ctx<'_, Node>) {
        let lag_us = self.params().3;
        self.arm_flush_in(ctx, lag_us);
    }

    pub(super) fn cfg(&self) -> &KeyStore {
        &self.cfg
    }
}

impl RedisCmd {
    fn writes(self) -> bool {
        !matches!(self, RedisCmd::Get { .. })
    }
}

/// The live value of `key` in `data` at `now_us`.
pub(super) fn get(data: &[Entry], key: Key, now_us: u64) -> Option<Value> {
    data.iter().find(|e| e.key == key && e.expires_at_us > now_us).and_then(|e| e.value)
}

/// Store `e` in `data` (a `None` value deletes the key).
pub(super) fn put(data: &mut Vec<Entry>, e: Entry) {
    data.retain(|d| d.key != e.key);
    if e.value.is_some() {
        data.push(e);
    }
}
