//! The Redis key store's other ways to lose a key (issue 12): `maxmemory` eviction, running
//! without persistence, and a slow disk that postpones the AOF under `everysec`. Each test sets
//! one option on a preset and compares it with the same preset without it, on the same seeds.

use models::knobs::{KeyStore, MaxmemoryPolicy};
use models::{presets, Scenario};
use sim::ExploreReport;

const EXACTLY_ONCE: &str = invariants::payment::EXACTLY_ONCE_CHARGE;

fn explore(s: &Scenario, runs: u64) -> ExploreReport {
    s.validate().expect("valid");
    s.explore(0..runs, 2, None)
}

fn broke(r: &ExploreReport) -> u64 {
    r.by_invariant.get(EXACTLY_ONCE).copied().unwrap_or(0)
}

fn redis(s: &mut Scenario) -> &mut KeyStore {
    let store = &mut s.payment_mut().store;
    assert!(matches!(store, KeyStore::Redis { .. }));
    store
}

/// SETNX on a store with appendfsync always and an unkeyed provider, holding at most 3 keys (the
/// workload has 8 operations and their re-payments, each result kept 24 h).
fn full_store(policy: MaxmemoryPolicy) -> Scenario {
    let mut s = presets::get("payment/ttl-shorter-than-retries").unwrap();
    if let KeyStore::Redis { ttl_us, lock_ttl_us, maxmemory_keys, maxmemory_policy, .. } = redis(&mut s) {
        (*ttl_us, *lock_ttl_us, *maxmemory_keys, *maxmemory_policy) = (86_400_000_000, 300_000, 3, policy);
    }
    s
}

/// An evicting store drops idempotency keys like a cache drops entries, and a retry of an
/// evicted key charges again; `noeviction` refuses the claim instead (the client gets 500s and
/// may give up) and never loses a key. (It is not safe either: a full store refuses the claim of
/// a retry whose lock expired, and a charged user can be told the payment failed; the property
/// test in `properties.rs` found such a run. These 1,000 seeds have none.)
#[test]
fn an_evicting_store_double_charges_and_noeviction_does_not() {
    for policy in [MaxmemoryPolicy::AllkeysLru, MaxmemoryPolicy::VolatileTtl] {
        let r = explore(&full_store(policy), 1_000);
        assert!(broke(&r) > 10, "{policy:?}: {} double charges", broke(&r));
    }
    let refused = explore(&full_store(MaxmemoryPolicy::Noeviction), 1_000);
    assert_eq!(broke(&refused), 0, "noeviction: {:?}", refused.first);
    assert!(refused.by_invariant.get(invariants::payment::SETTLES).copied().unwrap_or(0) > 0, "a full store should refuse claims");
    // Without the limit the same design holds on these seeds: the eviction is the cause.
    let mut unlimited = full_store(MaxmemoryPolicy::AllkeysLru);
    if let KeyStore::Redis { maxmemory_keys, .. } = redis(&mut unlimited) {
        *maxmemory_keys = 0;
    }
    assert_eq!(explore(&unlimited, 1_000).violations, 0);
}

/// `appendonly = false`: even a process crash (which keeps every AOF write) comes back empty,
/// and the fsync presets' design double-charges where it held with the AOF on.
#[test]
fn without_persistence_a_process_crash_loses_every_key() {
    let process_crashes = |appendonly: bool| {
        let mut s = presets::get("payment/setnx-everysec").unwrap();
        (s.faults.process_crash_probability, s.faults.crash_probability) = (s.faults.crash_probability, 0.0);
        if let KeyStore::Redis { appendonly: a, .. } = redis(&mut s) {
            *a = appendonly;
        }
        explore(&s, 2_000)
    };
    let (aof, none) = (process_crashes(true), process_crashes(false));
    assert_eq!(aof.violations, 0, "{:?}", aof.first);
    assert!(broke(&none) > 0 && none.stats.process_crashes > 0, "{} double charges without persistence", broke(&none));
}

/// A provider called with our key keeps the money right without persistence too, but a store
/// crash erases the only record of a charge: `settles` reports it as an orphan charge (found by
/// the property test in properties.rs, which keeps `appendonly` on).
#[test]
fn without_persistence_a_keyed_provider_keeps_the_money_but_the_record_is_lost() {
    let mut s = presets::get("payment/setnx-always").unwrap();
    s.faults.crash_probability = 0.5;
    if let KeyStore::Redis { appendonly, .. } = redis(&mut s) {
        *appendonly = false;
    }
    let r = explore(&s, 2_000);
    assert_eq!(broke(&r), 0, "{:?}", r.first);
    let orphan = r.first.as_ref().expect("a store crash erases a record").violation.message.clone();
    assert!(orphan.starts_with("orphan charge"), "{orphan}");
}

/// A slow disk: a stalled fsync postpones the AOF, so a process crash during the stall loses
/// what was written meanwhile (it never reached the OS), where a quick disk loses nothing.
#[test]
fn a_stalled_fsync_loses_writes_even_in_a_process_crash() {
    let process_crashes = |stall_percent: u32| {
        let mut s = presets::get("payment/setnx-everysec").unwrap();
        (s.faults.process_crash_probability, s.faults.crash_probability) = (s.faults.crash_probability, 0.0);
        if let KeyStore::Redis { fsync_stall_percent, .. } = redis(&mut s) {
            *fsync_stall_percent = stall_percent;
        }
        explore(&s, 2_000)
    };
    let (quick, slow) = (process_crashes(0), process_crashes(50));
    assert_eq!(quick.stats.writes_lost + quick.violations, 0);
    assert!(slow.stats.writes_lost > 0 && broke(&slow) > 0, "{} writes lost, {} double charges", slow.stats.writes_lost, broke(&slow));
}

/// Bad combinations are refused with the field's name.
#[test]
fn store_options_are_validated() {
    let mut s = presets::get("payment/setnx-always").unwrap();
    if let KeyStore::Redis { fsync_stall_percent, .. } = redis(&mut s) {
        *fsync_stall_percent = 10; // appendfsync always: no fsync clock to stall
    }
    assert!(s.validate().unwrap_err().contains("fsync_stall_percent"));
    let mut s = presets::get("payment/setnx-split-brain").unwrap();
    if let KeyStore::Redis { maxmemory_keys, .. } = redis(&mut s) {
        *maxmemory_keys = 3;
    }
    assert!(s.validate().unwrap_err().contains("maxmemory_keys"));
}
