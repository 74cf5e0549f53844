//! The causal sentence, built from the trace of shrunk runs of several presets (the seed corpus
//! holds one per bug-zoo preset): the payment path's stories name the crash, the retry and the
//! provider; every other violation still names its faults and the violating event.

use idemsim::seedfile::SeedFile;
use std::path::Path;

fn story(name: &str) -> String {
    let file = SeedFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds").join(format!("{name}.toml"))).unwrap();
    let tape = file.tape.clone().expect("a shrunk corpus file has a tape");
    idemsim::story::tell(&file.scenario, file.semantics, &tape).expect("it violates")
}

fn has(name: &str, parts: &[&str]) {
    let s = story(name);
    for p in parts {
        assert!(s.contains(p), "{name}: {p:?} missing from:\n{s}");
    }
}

#[test]
fn a_redis_crash_that_lost_the_key() {
    has(
        "payment-setnx-everysec",
        &[
            "The store crashed 103.219 ms after acknowledging SETNX for key 0x0 and before its next fsync",
            "the key was lost",
            "the response from server0 was lost at 65.430 ms, the client timed out at 103.430 ms",
            "claimed it again at 110.106 ms and charged again (#2 at 111.106 ms)",
        ],
    );
}

#[test]
fn a_key_evicted_from_a_full_store() {
    has(
        "payment-setnx-evicting-cache",
        &[
            "The store was full (maxmemory_keys = 3) and evicted key 0x0 at 18.001 ms (allkeys-lru)",
            "claimed it again at 53.000 ms and charged again",
        ],
    );
}

#[test]
fn a_timeout_and_a_retry_with_a_fresh_key() {
    has(
        "payment-key-per-attempt",
        &["the client timed out at 50.000 ms", "its retry (attempt 2) carried a fresh idempotency key (0x2 after 0x1)"],
    );
}

#[test]
fn the_provider_charging_twice() {
    has("payment-provider-window-shorter-than-retries", &["The provider charged key 0x0", "forgot the call's key", "charged again"]);
    has("payment-release-key-on-timeout", &["released key 0x0", "though the call had charged", "charged again"]);
}

#[test]
fn a_lease_taken_over_by_a_clock_that_runs_ahead() {
    has(
        "payment-lease-check-with-skew",
        &["server1 took over key 0x0 at 40.299 ms, only", "lease_clock = \"app\"", "runs at least", "charged again (#2 at 41.299 ms)"],
    );
}

#[test]
fn a_lease_taken_over_during_a_pause() {
    has("payment-lease-shorter-than-pause", &["server1 paused for", "its lease ran out", "took the key over"]);
}

#[test]
fn other_paths_name_their_faults_and_the_violating_event() {
    has(
        "outbox-dual-write",
        &["After service crashed at", "effectively_once_event broke at", "(OrderCommitted on orders-db)", "lost event"],
    );
    has(
        "payment-async-commit",
        &["store crashed at", "losing 2 un-fsynced writes", "exactly_once_charge broke", "acknowledged charge lost"],
    );
}
