//! `maxmemory` on the Redis key store, counted in keys. A write of a new key when the store is
//! full either fails (`noeviction`, Redis's default: `-OOM`) or evicts another key first, as a
//! cache would: the least recently used (`allkeys-lru`) or the one closest to expiring
//! (`volatile-ttl`). An evicted idempotency key is as gone as a lost one: the eviction is
//! written to the AOF as a `DEL`, so it survives a restart too.
//!
//! Departures: memory is a key count, not bytes; LRU is exact (Redis samples 5 keys); expired
//! keys are reclaimed before anything is evicted (Redis's active expiry does this over time).

use super::redis::{Entry, Redis, Side};
use super::Node;
use crate::knobs::{KeyStore, MaxmemoryPolicy};
use invariants::Key;
use sim::Ctx;

impl Redis {
    fn maxmemory(&self) -> (u32, MaxmemoryPolicy) {
        match *self.cfg() {
            KeyStore::Redis { maxmemory_keys, maxmemory_policy, .. } => (maxmemory_keys, maxmemory_policy),
            _ => unreachable!("redis config"),
        }
    }

    /// A read of `key`: with `maxmemory` set, it becomes the most recently used (the data is
    /// kept in order of use, so the front is the LRU victim).
    pub(super) fn touch(&mut self, key: Key) {
        if self.maxmemory().0 == 0 {
            return;
        }
        if let Some(i) = self.data.iter().position(|e| e.key == key) {
            let e = self.data.remove(i);
            self.data.push(e);
        }
    }

    /// Make room for a write of `key` at `now_us`; false if the policy refuses it (`-OOM`).
    pub(super) fn make_room(&mut self, ctx: &mut Ctx<'_, Node>, key: Key, now_us: u64) -> bool {
        let (max, policy) = self.maxmemory();
        if max == 0 || self.data.iter().any(|e| e.key == key && e.expires_at_us > now_us) {
            return true; // No limit, or an overwrite: no new key.
        }
        self.data.retain(|e| e.expires_at_us > now_us);
        if self.data.len() < max as usize {
            return true;
        }
        let victim = match policy {
            MaxmemoryPolicy::Noeviction => return false,
            MaxmemoryPolicy::AllkeysLru => self.data[0].key,
            MaxmemoryPolicy::VolatileTtl => self.data.iter().min_by_key(|e| e.expires_at_us).expect("full").key,
        };
        debug_assert!(victim != key);
        // Evicted: gone from memory, and a DEL in the AOF.
        if self.evicted.0 == 0 {
            self.evicted = (0, victim, now_us);
        }
        self.evicted.0 += 1;
        let del = Entry { key: victim, value: None, expires_at_us: 0 };
        self.write(ctx, Side::Primary, del);
        debug_assert!(self.data.len() < max as usize);
        true
    }
}
