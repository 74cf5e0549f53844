//! What a run leaves behind: the observations models reported (the history the invariants judge),
//! counters of what happened, and a stable hash that determinism checks compare.

use crate::actor::NodeId;
use serde::{Deserialize, Serialize};
use std::hash::{Hash, Hasher};

/// One observation, stamped with simulated time and the node that reported it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Entry<O> {
    pub at_us: u64,
    pub node: NodeId,
    pub obs: O,
}

/// Counters of one run (or, summed, of many).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    pub events: u64,
    pub messages_sent: u64,
    pub messages_delivered: u64,
    pub messages_lost: u64,
    pub messages_duplicated: u64,
    /// Copies sent late: due at no deadline (bounded semantics, `Bounds::max_late`).
    #[serde(default)]
    pub messages_late: u64,
    /// Restarts made late: due at no deadline (bounded semantics, `Bounds::max_late`).
    #[serde(default)]
    pub restarts_late: u64,
    /// Arrived at a node that was down, or had restarted since the message was sent.
    pub messages_dropped_down: u64,
    pub crashes: u64,
    pub pauses: u64,
    pub partitions: u64,
    pub writes: u64,
    pub fsyncs: u64,
    /// Writes that were not fsynced when their node crashed.
    pub writes_lost: u64,
    /// Of `crashes`, the process crashes (the rest were machine crashes).
    #[serde(default)]
    pub process_crashes: u64,
    pub choices: u64,
    pub sim_time_us: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        self.events += o.events;
        self.messages_sent += o.messages_sent;
        self.messages_delivered += o.messages_delivered;
        self.messages_lost += o.messages_lost;
        self.messages_duplicated += o.messages_duplicated;
        self.messages_late += o.messages_late;
        self.restarts_late += o.restarts_late;
        self.messages_dropped_down += o.messages_dropped_down;
        self.crashes += o.crashes;
        self.pauses += o.pauses;
        self.partitions += o.partitions;
        self.writes += o.writes;
        self.fsyncs += o.fsyncs;
        self.writes_lost += o.writes_lost;
        self.process_crashes += o.process_crashes;
        self.choices += o.choices;
        self.sim_time_us += o.sim_time_us;
    }
}

/// How a run ended.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// No event was left to run: everything settled.
    Quiescent,
    /// Events remained at the time limit (something kept going: a livelock, a retry storm).
    TimeLimit,
}

/// An invariant that did not hold, with a message naming operations, events and times.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub invariant: String,
    pub message: String,
    /// Indices into the history of the observations the message names.
    #[serde(default)]
    pub events: Vec<usize>,
    /// The other invariants the same run broke, after this one (the first in the checker's
    /// order): a run is judged by every invariant, not only until the first that fails.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub also: Vec<Violation>,
}

impl Violation {
    pub fn new(invariant: impl Into<String>, message: String, events: Vec<usize>) -> Self {
        Violation { invariant: invariant.into(), message, events, also: Vec::new() }
    }
    /// Every invariant this run broke, this one first.
    pub fn invariants(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.invariant.as_str()).chain(self.also.iter().map(|v| v.invariant.as_str()))
    }
    /// Did this run break `invariant` (first or among the others)?
    pub fn broke(&self, invariant: &str) -> bool {
        self.invariants().any(|i| i == invariant)
    }
    /// One verdict from every violation a run's checkers found, in checker order.
    pub fn combine(mut all: Vec<Violation>) -> Verdict {
        if all.is_empty() {
            return Verdict::Pass;
        }
        let mut first = all.remove(0);
        first.also.extend(all);
        Verdict::Violation(first)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Pass,
    Violation(Violation),
}

impl Verdict {
    pub fn is_pass(&self) -> bool {
        matches!(self, Verdict::Pass)
    }
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            Verdict::Pass => None,
            Verdict::Violation(v) => Some(v),
        }
    }
}

/// A 64-bit FNV-1a style hasher with fixed constants: the same input gives the same hash in every
/// process, thread and build (std's `DefaultHasher` promises none of that).
///
/// Two lanes: consecutive words go to alternate accumulators (each word mixes into the one the
/// word before last left), so two multiply chains run side by side. A history hash is a long
/// serial chain of multiplies; with one lane it was latency-bound, 6% of the payment benchmark's
/// cycles for 1% of its instructions.
#[derive(Clone, Debug)]
pub struct StableHasher {
    /// The lane the next word mixes into.
    a: u64,
    b: u64,
}

impl Default for StableHasher {
    fn default() -> Self {
        StableHasher { a: 0xcbf2_9ce4_8422_2325, b: 0x9e37_79b9_7f4a_7c15 }
    }
}

impl Hasher for StableHasher {
    fn finish(&self) -> u64 {
        // Join the lanes, then a final avalanche so nearby inputs land far apart.
        let mut x = self.a ^ self.b.rotate_left(32).wrapping_mul(0x0000_0100_0000_01b3);
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^= x >> 33;
        x
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            self.write_u64(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
        let rest = chunks.remainder();
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        // The length tells "ab" from "ab\0".
        self.write_u64(u64::from_le_bytes(last) ^ (rest.len() as u64) << 59);
    }
    #[inline]
    fn write_u64(&mut self, v: u64) {
        let mixed = (self.a ^ v).wrapping_mul(0x0000_0100_0000_01b3).rotate_left(29);
        (self.a, self.b) = (self.b, mixed);
    }
    fn write_u32(&mut self, v: u32) {
        self.write_u64(v as u64)
    }
    fn write_u16(&mut self, v: u16) {
        self.write_u64(v as u64)
    }
    fn write_u8(&mut self, v: u8) {
        self.write_u64(v as u64)
    }
    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64)
    }
    fn write_isize(&mut self, v: isize) {
        self.write_u64(v as u64)
    }
}

/// The stable hash of one value (`StableHasher`): the same in every process, thread and build.
pub fn stable_hash<T: Hash + ?Sized>(x: &T) -> u64 {
    let mut h = StableHasher::default();
    x.hash(&mut h);
    h.finish()
}

/// The stable hash of a history (times, nodes and observations, in order). Labels included,
/// even inside an exhaustive search that erases them from state keys (`labels_erased`): a
/// counterexample's hash is its replay's.
pub fn history_hash<O: Hash>(history: &[Entry<O>]) -> u64 {
    let _whole = crate::exhaustive::Erasing::new(false);
    let mut h = StableHasher::default();
    for e in history {
        e.hash(&mut h);
    }
    h.finish()
}
