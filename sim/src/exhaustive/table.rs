//! The state table: every state the search has reached, by key, with how it was first explored.
//!
//! It is the search's memory and, on a search of millions of states, a cache miss per visit.
//! So a shard is an open-addressing table of 16-byte slots (key, depth, sleep set), probed
//! linearly: a lookup reads one cache line, where a `HashMap<u64, Visit>` read its control
//! bytes and then its bucket, at 40 bytes an entry to 16. Sleep sets, which most visits do not
//! have, live beside the slots, in one buffer of words per shard (a boxed slice each was an
//! allocation per state that had one, and millions of frees when the search ended).

use crate::engine::EventInfo;
use std::sync::{Mutex, MutexGuard};

/// How a state was first explored: its key (0: the slot is free), the depth it was reached at
/// (events so far; 0 when depth is unbounded), and its sleep set: 0 for none, else 1 + its
/// index in `Shard::sleeps`.
#[derive(Copy, Clone, Default)]
struct Slot {
    key: u64,
    depth: u32,
    sleep: u32,
}

/// One shard: slots (a power of two of them, at most 3/4 used) and the sleep sets they name.
struct Shard {
    slots: Vec<Slot>,
    len: usize,
    /// Each sleep set's place in `words`, `(start, len)`, named by one slot.
    sleeps: Vec<(u32, u32)>,
    /// The sleep sets' sorted event keys, one after another. A set is rewritten in place when it
    /// shrinks (the usual change: a later visit keeps what both had asleep), else moved to the end.
    words: Vec<u64>,
}

impl Default for Shard {
    fn default() -> Self {
        Shard { slots: vec![Slot::default(); 1024], len: 0, sleeps: Vec::new(), words: Vec::new() }
    }
}

impl Shard {
    /// The slot holding `key`, or the free one where it goes (true if it is there already).
    fn find(&self, key: u64) -> (usize, bool) {
        let mask = self.slots.len() - 1;
        // The low bits: the shard was chosen by the middle ones.
        let mut i = key as usize & mask;
        loop {
            match self.slots[i].key {
                0 => return (i, false),
                k if k == key => return (i, true),
                _ => i = (i + 1) & mask,
            }
        }
    }

    /// Claim the free slot `i` for `key`, growing the table when it is 3/4 full.
    fn insert(&mut self, i: usize, key: u64) -> usize {
        if (self.len + 1) * 4 > self.slots.len() * 3 {
            let bigger = vec![Slot::default(); self.slots.len() * 2];
            let old = std::mem::replace(&mut self.slots, bigger);
            for s in old.into_iter().filter(|s| s.key != 0) {
                let (j, found) = self.find(s.key);
                debug_assert!(!found, "keys are unique");
                self.slots[j] = s;
            }
            let (i, _) = self.find(key);
            return self.insert(i, key);
        }
        self.len += 1;
        // A full table would probe forever: growth keeps a quarter of the slots free.
        assert!(self.len * 4 <= self.slots.len() * 3, "state table over 3/4 full");
        self.slots[i].key = key;
        i
    }

    fn sleep(&self, s: Slot) -> &[u64] {
        match s.sleep {
            0 => &[],
            n => {
                let (start, len) = self.sleeps[n as usize - 1];
                &self.words[start as usize..][..len as usize]
            }
        }
    }

    /// Give slot `i` the sleep set `keys`, in place of the one it had if that was as long.
    fn set_sleep(&mut self, i: usize, keys: impl ExactSizeIterator<Item = u64>) {
        let n = keys.len();
        match self.slots[i].sleep {
            0 if n == 0 => {}
            s if s > 0 && n <= self.sleeps[s as usize - 1].1 as usize => {
                let (start, _) = self.sleeps[s as usize - 1];
                for (w, k) in self.words[start as usize..].iter_mut().zip(keys) {
                    *w = k;
                }
                self.sleeps[s as usize - 1].1 = n as u32;
            }
            s => {
                let start = u32::try_from(self.words.len()).expect("fewer than 2^32 sleeping events in a shard");
                self.words.extend(keys);
                let place = (start, n as u32);
                if s == 0 {
                    self.sleeps.push(place);
                    self.slots[i].sleep = u32::try_from(self.sleeps.len()).expect("fewer than 2^32 sleep sets in a shard");
                } else {
                    self.sleeps[s as usize - 1] = place;
                }
            }
        }
    }

    /// Keep of slot `i`'s sleep set the events `keep` says (in place: a subset is no longer).
    fn retain_sleep(&mut self, i: usize, keep: impl Fn(&u64) -> bool) {
        let s = self.slots[i].sleep;
        if s == 0 {
            return;
        }
        let (start, len) = self.sleeps[s as usize - 1];
        let set = &mut self.words[start as usize..][..len as usize];
        let mut kept = 0;
        for j in 0..set.len() {
            if keep(&set[j]) {
                set[kept] = set[j];
                kept += 1;
            }
        }
        self.sleeps[s as usize - 1].1 = kept as u32;
    }
}

/// Shards of the state table: enough that the workers of a parallel search rarely wait on one
/// another (a lookup holds one shard's lock for a few hundred nanoseconds).
const SHARDS: usize = 64;

/// Every state the search has reached, by key, shared by the workers of a search. A visit is
/// recorded and checked under one lock, so of two workers reaching a state at once exactly one
/// explores it. Pruning against a state another worker is still exploring is sound: every
/// recorded visit is explored to the end by the worker that recorded it (a search stops early
/// only at `max_runs` or a violation, and then claims no proof).
pub(super) struct StateTable {
    shards: Vec<Mutex<Shard>>,
}

impl Default for StateTable {
    fn default() -> Self {
        StateTable { shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect() }
    }
}

/// A state key as the table stores it: 0 marks a free slot, so key 0 is stored as 1 (one more
/// pair of keys that collide, among 2^64).
fn stored(key: u64) -> u64 {
    key.max(1)
}

impl StateTable {
    /// The shard of `key`, chosen by middle bits (a shard indexes its slots by the low ones).
    fn shard(&self, key: u64) -> MutexGuard<'_, Shard> {
        let m = &self.shards[(key >> 32) as usize % SHARDS];
        // A worker that panicked left its shard consistent (every update completes under the lock).
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> u64 {
        (0..SHARDS).map(|i| self.shard((i as u64) << 32).len as u64).sum()
    }

    /// Record a final state (a run's end is a state too; nothing runs from it).
    pub fn note_final(&self, key: u64) {
        let key = stored(key);
        let mut sh = self.shard(key);
        if let (i, false) = sh.find(key) {
            sh.insert(i, key);
        }
    }

    /// Record a visit at `depth` with the events `sleep` asleep (sorted by key); true if an
    /// earlier one explored (or is exploring, and will finish) at least what this one would:
    /// it had as much depth left and no event asleep that is awake now. Otherwise this visit
    /// explores, and the record keeps what is then known to be covered.
    pub fn visit(&self, key: u64, depth: u64, sleep: &[EventInfo]) -> bool {
        debug_assert!(sleep.windows(2).all(|w| w[0].key < w[1].key), "a sleep set is sorted by key, without repeats");
        let depth = u32::try_from(depth).expect("a run of fewer than 2^32 events");
        let asleep = |k: &u64| sleep.binary_search_by_key(k, |z| z.key).is_ok();
        let keys = || sleep.iter().map(|z| z.key);
        let key = stored(key);
        let mut sh = self.shard(key);
        let (i, found) = sh.find(key);
        if !found {
            let i = sh.insert(i, key);
            sh.slots[i].depth = depth;
            sh.set_sleep(i, keys());
            return false;
        }
        let seen = sh.slots[i];
        if seen.depth <= depth && sh.sleep(seen).iter().all(asleep) {
            return true;
        }
        if depth < seen.depth {
            sh.set_sleep(i, keys());
        } else {
            sh.retain_sleep(i, asleep);
        }
        sh.slots[i].depth = depth;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asleep(keys: &[u64]) -> Vec<EventInfo> {
        keys.iter().map(|&key| EventInfo { key, node: None, advances_time: false, covered: false }).collect()
    }

    #[test]
    fn a_visit_is_covered_by_an_earlier_one_with_as_much_left_to_explore() {
        let t = StateTable::default();
        assert!(!t.visit(7, 5, &asleep(&[1, 2])), "first visit explores");
        assert!(t.visit(7, 5, &asleep(&[1, 2, 3])), "same depth, more asleep: covered");
        assert!(t.visit(7, 6, &asleep(&[1, 2])), "deeper: covered");
        assert!(!t.visit(7, 5, &asleep(&[2])), "event 1 awake now: explores");
        // The record keeps only what both visits had asleep: {2}.
        assert!(!t.visit(7, 5, &asleep(&[1])), "event 2 awake now: explores");
        assert!(t.visit(7, 5, &[]), "the record has nothing asleep now: it covers a visit with nothing asleep");
        assert!(!t.visit(7, 4, &asleep(&[9])), "shallower: explores");
        assert!(t.visit(7, 4, &asleep(&[9])));
        // Shallower with more asleep: the record's set grows (moved to the end of the words),
        // and shrinks in place after.
        assert!(!t.visit(7, 3, &asleep(&[4, 5, 9])), "shallower again: explores");
        assert!(t.visit(7, 3, &asleep(&[4, 5, 9])) && !t.visit(7, 3, &asleep(&[4, 9])), "5 awake: explores");
        assert!(t.visit(7, 3, &asleep(&[4, 9])) && !t.visit(7, 3, &asleep(&[4])), "kept 4 and 9, then 9 awake");
        assert!(t.visit(7, 3, &asleep(&[4])) && t.visit(7, 3, &asleep(&[1, 4])) && !t.visit(7, 3, &[]));
        assert!(!t.visit(0, 0, &[]) && t.visit(1, 0, &[]), "key 0 is stored as 1");
        assert_eq!(t.len(), 2);
    }

    #[test]
    fn the_table_grows_without_losing_a_state() {
        let t = StateTable::default();
        // Keys spread over every shard and then some: each shard grows several times.
        let keys: Vec<u64> = (1..200_000u64).map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).collect();
        for (n, &k) in keys.iter().enumerate() {
            assert!(!t.visit(k, 3, &asleep(&[k % 5 + 1])), "new key {n}");
        }
        assert_eq!(t.len(), keys.len() as u64);
        for &k in &keys {
            assert!(t.visit(k, 3, &asleep(&[k % 5 + 1])), "key {k} remembered with its sleep set");
            assert!(!t.visit(k, 3, &[]), "key {k}: a visit with its event awake explores");
        }
    }
}
