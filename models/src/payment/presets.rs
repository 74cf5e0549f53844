//! The payment path's presets: its correct designs and bug zoo 1-10 (and the payment world's
//! own), each with the verdict it is expected to get. Names are fixed: scripts and the seed
//! corpus depend on them.

use crate::knobs::*;
use crate::presets::full_faults;
use crate::scenario::{Expect, Role, Scenario, Targets, Workload};
use sim::FaultProfile;

const MS: u64 = 1_000;

/// The client every preset starts from: one key per operation, full jitter, a 50 ms timeout, and
/// retries for several seconds, long past the fault phase and a paused holder's lease: a client
/// that gives up while the outcome is unknown leaves its user told it failed, and a user told it
/// failed may pay again.
fn client() -> ClientDesign {
    ClientDesign {
        key: KeyPolicy::PerOperation,
        backoff: Backoff::FullJitter,
        base_us: 10 * MS,
        cap_us: 1_000 * MS,
        max_attempts: 20,
        timeout_us: 50 * MS,
        honour_retry_after: true,
        budget: RetryBudget::None {},
        retry_changes_payload: false,
        key_storage: KeyStorage::Persisted,
    }
}

/// Postgres, INSERT .. ON CONFLICT, key + charge + result in one transaction, 409 and 422, two
/// instances, a 40 ms timeout on every store and provider call.
fn durable_server() -> ServerDesign {
    ServerDesign {
        key_claim: KeyClaim::InsertOnConflict,
        in_flight: InFlight::Reject409,
        fingerprint: Fingerprint::Reject422,
        result_storage: ResultStorage::SameTransaction,
        recovery: Recovery::None,
        lease_us: 0,
        lock_timeout_us: 5 * MS,
        workers: 8,
        charge: ChargeTarget::LocalLedger,
        instances: 2,
        clock_skew_us: 0,
        lease_clock: LeaseClock::Database,
        call_timeout_us: 40 * MS,
        on_error: OnError::Leave,
        replay: Replay::StoredResponse,
        completer: Completer::None {},
        result_write: ResultWrite::Once,
    }
}

/// Stripe / Brandur: a lock lease, atomic phases with recovery points, the provider called with
/// a key derived from ours, and a completer for keys whose request died.
fn stripe_server() -> ServerDesign {
    ServerDesign {
        result_storage: ResultStorage::SeparateWrite,
        recovery: Recovery::RecoveryPoints,
        lease_us: 300 * MS,
        charge: ChargeTarget::KeyedProvider,
        completer: Completer::Sweep { every_us: 100 * MS, stuck_after_us: 200 * MS },
        ..durable_server()
    }
}

/// Postgres as the designs need it: `idle_in_transaction_session_timeout = 1s`. A server that
/// dies mid-transaction holds the key's row until then, and every request for the key waits on
/// it (409 after `lock_timeout`); with the 10 s default, clients that retry for seconds give up
/// first, and a takeover or the completer then charges a payment its user was told failed.
fn postgres(synchronous_commit: bool, unique_constraint: bool) -> KeyStore {
    KeyStore::Postgres {
        synchronous_commit,
        unique_constraint,
        wal_writer_delay_us: 200 * MS,
        key_retention_us: 0,
        session_timeout_us: 1_000 * MS,
    }
}

fn redis(appendfsync: AppendFsync, ttl_us: u64) -> KeyStore {
    KeyStore::Redis {
        appendfsync,
        ttl_us,
        lock_ttl_us: 0,
        replica_failover: false,
        // A stream within one data centre.
        replication_lag_us: 500,
        // Sentinel's 30 s, scaled down by 1000 as the presets' other times are.
        down_after_us: 30 * MS,
        min_replicas_to_write: 0,
        // Redis's 10 s, scaled the same way.
        min_replicas_max_lag_us: 10 * MS,
        appendonly: true,
        fsync_stall_percent: 0,
        maxmemory_keys: 0,
        maxmemory_policy: MaxmemoryPolicy::Noeviction,
    }
}

/// SETNX claims the key; an external provider (no key of its own) makes the charge: Redis alone
/// is the idempotency store, as in the seed's sixth question.
fn setnx_server() -> ServerDesign {
    ServerDesign {
        key_claim: KeyClaim::SetNx,
        result_storage: ResultStorage::SeparateWrite,
        charge: ChargeTarget::Provider,
        ..durable_server()
    }
}

/// A provider that can hurt: 5 ms to answer, a 5xx on 5% of calls, keys kept for 24 h.
fn provider() -> ProviderDesign {
    ProviderDesign { latency_us: 5 * MS, error_probability: 0.05, key_retention_us: 86_400_000 * MS }
}

fn scenario(name: &str, description: &str, expect: Expect, payment: PaymentDesign) -> Scenario {
    Scenario {
        name: name.into(),
        description: description.into(),
        expect,
        time_limit_us: 60_000 * MS,
        settle_bound_us: 10_000 * MS,
        liveness: true,
        swarm: false,
        workload: Some(workload()),
        payment: Some(payment),
        outbox: None,
        chain: None,
        overload: None,
        faults: full_faults(),
        targets: Targets::default(),
    }
}

fn design(client: ClientDesign, server: ServerDesign, store: KeyStore) -> PaymentDesign {
    PaymentDesign { client, server, store, provider: provider() }
}

fn bug(name: &str, description: &str, invariant: &str, payment: PaymentDesign) -> Scenario {
    scenario(name, description, Expect::Violation(invariant.into()), payment)
}

const EXACTLY_ONCE: &str = invariants::payment::EXACTLY_ONCE_CHARGE;
const SETTLES: &str = invariants::payment::SETTLES;

/// The correct Redis design: SETNX with appendfsync always, the claim a 300 ms lock (a lease
/// that expires if its holder dies), the result kept 24 h, the provider called with our key.
pub fn setnx_always() -> PaymentDesign {
    let mut store = redis(AppendFsync::Always, 86_400_000 * MS);
    if let KeyStore::Redis { lock_ttl_us, .. } = &mut store {
        *lock_ttl_us = 300 * MS;
    }
    // A failed call releases the claim at once: the provider deduplicates the retry's call.
    let server = ServerDesign { charge: ChargeTarget::KeyedProvider, on_error: OnError::ReleaseKey, ..setnx_server() };
    design(client(), server, store)
}

/// `payment/durable-on-conflict`'s design (the checkout chain's front half).
pub fn durable_on_conflict() -> PaymentDesign {
    design(client(), durable_server(), postgres(true, true))
}

/// The workload of every payment preset: two users paying four times each, every first
/// request fired twice (a double click).
pub fn workload() -> Workload {
    Workload { clients: 2, operations_per_client: 4, duplicates: 1, amount: 100, repay_probability: 0.5, think_us: 0 }
}

/// The payment presets, correct designs first, then the bug zoo in DESIGN.md's order.
pub fn all() -> Vec<Scenario> {
    let durable = durable_on_conflict;
    let mut v = vec![
        scenario(
            "payment/durable-on-conflict",
            "One key per operation; two instances on Postgres with synchronous commit; INSERT .. ON CONFLICT; key, charge and result in one transaction; 409 in flight, 422 on mismatch.",
            Expect::Pass,
            durable(),
        ),
        scenario(
            "payment/setnx-always",
            "Redis SETNX on a single node with appendfsync always: the claim a 300 ms lock, the result kept 24 h, stored with SET after the provider's charge, which is called with our key.",
            Expect::Pass,
            setnx_always(),
        ),
        scenario(
            "payment/stripe-recovery-points",
            "Stripe/Brandur atomic phases on two instances: the key claimed with a lock lease, the provider called with a derived key, each phase committed with its recovery point; a takeover or the completer resumes from the last one.",
            Expect::Pass,
            design(client(), stripe_server(), postgres(true, true)),
        ),
        bench_five_charges(),
    ];
    v.extend(payment_bug_zoo(durable));
    v
}

/// Bug zoo 1-10 and the payment world's own: each fails only because of its bug.
fn payment_bug_zoo(durable: impl Fn() -> PaymentDesign) -> Vec<Scenario> {
    let with_server = |f: &dyn Fn(&mut ServerDesign)| {
        let mut d = durable();
        f(&mut d.server);
        d
    };
    let stripe = |f: &dyn Fn(&mut ServerDesign)| {
        let mut d = design(client(), stripe_server(), postgres(true, true));
        f(&mut d.server);
        d
    };
    let mut key_per_attempt = durable();
    key_per_attempt.client.key = KeyPolicy::PerAttempt;
    let mut no_fingerprint = with_server(&|s| s.fingerprint = Fingerprint::Ignore);
    no_fingerprint.client.retry_changes_payload = true;
    let mut select_then_insert = with_server(&|s| s.key_claim = KeyClaim::SelectThenInsert);
    select_then_insert.store = postgres(true, false);
    let mut async_commit = durable();
    async_commit.store = postgres(false, true);
    let setnx = |store: KeyStore| design(client(), setnx_server(), store);
    // The fsync presets' handler keeps a charge whose result it could not store and stores it
    // again once the store answers: the only way left for them to lose a key is the fsync window.
    let setnx_fsync = |appendfsync| {
        let server = ServerDesign { result_write: ResultWrite::UntilStored, ..setnx_server() };
        design(client(), server, redis(appendfsync, 86_400_000 * MS))
    };
    let lease = stripe(&|s| {
        s.charge = ChargeTarget::Provider;
        s.completer = Completer::None {};
    });
    let release = with_server(&|s| {
        s.result_storage = ResultStorage::SeparateWrite;
        s.charge = ChargeTarget::Provider;
        s.on_error = OnError::ReleaseKey;
    });
    let mut no_completer = stripe(&|s| s.completer = Completer::None {});
    no_completer.client.max_attempts = 3;
    let mut window = stripe(&|_| {});
    window.provider.key_retention_us = 100 * MS;
    let skew = stripe(&|s| {
        s.charge = ChargeTarget::Provider;
        s.completer = Completer::None {};
        s.lease_clock = LeaseClock::App;
        s.clock_skew_us = 1_000 * MS;
    });
    // Stripe prunes keys after 24 h, Brandur's reaper after ~72 h; scaled down as the TTL
    // preset's Redis keys are, to 60 ms against a client that retries for seconds.
    let mut retention = durable();
    if let KeyStore::Postgres { key_retention_us, .. } = &mut retention.store {
        *key_retention_us = 60 * MS;
    }
    let mut split_brain = redis(AppendFsync::Always, 86_400_000 * MS);
    if let KeyStore::Redis { replica_failover, .. } = &mut split_brain {
        *replica_failover = true;
    }
    // A Redis configured as a cache: room for 3 keys (the workload has 8 operations, each
    // result kept 24 h), allkeys-lru.
    let mut cache = redis(AppendFsync::Always, 86_400_000 * MS);
    if let KeyStore::Redis { lock_ttl_us, maxmemory_keys, maxmemory_policy, .. } = &mut cache {
        (*lock_ttl_us, *maxmemory_keys, *maxmemory_policy) = (300 * MS, 3, MaxmemoryPolicy::AllkeysLru);
    }
    let mut in_memory = durable();
    in_memory.client.key_storage = KeyStorage::Memory;
    let mut zoo = vec![
        bug("payment/key-per-attempt", "The client sends a fresh key on every retry: a response lost after commit makes the retry a new charge.", EXACTLY_ONCE, key_per_attempt),
        bug("payment/setnx-everysec", "Redis SETNX with appendfsync everysec as the only idempotency store: the key store crashes within a second of a SETNX, the key is lost, and a retry charges again. Purchases come a second apart, the store crashes (in 9 runs of 10) in the first 4 s, and a partition of up to 3 s holds retries back.", EXACTLY_ONCE, setnx_fsync(AppendFsync::Everysec)),
        bug("payment/setnx-no-fsync", "Redis with appendfsync no: the OS flushes every ~30 s, so a key store crash loses every key written since, and a retry of any of them charges again. The world of payment/setnx-everysec.", EXACTLY_ONCE, setnx_fsync(AppendFsync::No)),
        bug("payment/select-then-insert", "SELECT, then INSERT if absent, with no unique constraint: two concurrent requests with one key both find nothing and both charge.", EXACTLY_ONCE, select_then_insert),
        bug("payment/no-inflight-check", "Only completed keys are recorded: a concurrent duplicate finds no key while the first is still charging, and charges too.", EXACTLY_ONCE, with_server(&|s| s.result_storage = ResultStorage::OnlyCompletedKeys)),
        bug("payment/no-fingerprint", "No payload fingerprint, and a client whose retry changes the amount: the retry gets the first charge's 200 instead of 422.", invariants::payment::MISMATCH_REJECTED, no_fingerprint),
        bug("payment/result-separate-write", "Claim, charge and result are three writes, and an expired claim is retried from scratch: a crash between charge and result (the server's, or the store's failing the handler) charges twice.", EXACTLY_ONCE, with_server(&|s| {
            s.result_storage = ResultStorage::SeparateWrite;
            s.recovery = Recovery::LeaseRestart;
            s.lease_us = 300 * MS;
        })),
        bug("payment/ttl-shorter-than-retries", "Redis keys expire after 60 ms, sooner than the client's retries: a late retry finds no key and charges again.", EXACTLY_ONCE, setnx(redis(AppendFsync::Always, 60 * MS))),
        bug("payment/async-commit", "Postgres with synchronous_commit off: a commit is acknowledged before its WAL is flushed, and a crash loses the acknowledged charge.", EXACTLY_ONCE, async_commit),
        bug("payment/lease-shorter-than-pause", "Recovery points with a 300 ms lock lease but an unkeyed provider call: a GC pause longer than the lease lets a retry take the key over, and both holders charge.", EXACTLY_ONCE, lease),
        bug("payment/release-key-on-timeout", "The handler deletes the key when the provider call times out (its answer lost, or the provider paused or crashed after charging): the retry claims the key again and the unkeyed provider charges again.", EXACTLY_ONCE, release),
        bug("payment/no-completer", "Stripe's atomic phases without a completer, and a client that stops after 3 attempts: a key whose request died in a crash stays in flight forever.", SETTLES, no_completer),
        bug("payment/provider-window-shorter-than-retries", "The provider keeps idempotency keys for 100 ms, less than the 300 ms lease: a call retried after a takeover arrives after the provider forgot the key, and it charges again.", EXACTLY_ONCE, window),
        bug("payment/lease-check-with-skew", "Two instances compare lease times on their own clocks, up to 1 s apart, with an unkeyed provider: the instance whose clock runs ahead sees a fresh lease as expired, takes the key over, and both holders charge.", EXACTLY_ONCE, skew),
        bug("payment/in-memory-key", "The app keeps the idempotency key only in memory: it crashes after its payment went through, restarts, and pays again under a fresh key.", EXACTLY_ONCE, in_memory),
        bug("payment/postgres-retention-shorter-than-retries", "Postgres with a reaper that deletes keys 60 ms after they were claimed, sooner than the client's retries: a retry after its response was lost finds no key and charges again.", EXACTLY_ONCE, retention),
        bug("payment/setnx-split-brain", "Redis SETNX with appendfsync always as the only idempotency store, an asynchronous replica and Sentinel (down-after 30 ms), without min-replicas-to-write: the primary is cut off from its replica and the sentinels; the replica is promoted without what had not streamed to it or was held up on the cut; the old primary keeps taking SETNX from the servers on its side until the heal discards it all. A key claimed on both primaries, or lost after its charge, charges twice (or is charged while its client is told it failed).", EXACTLY_ONCE, setnx(split_brain)),
        bug("payment/setnx-evicting-cache", "Redis SETNX with appendfsync always on a store configured as a cache (maxmemory of 3 keys, allkeys-lru): under memory pressure Redis evicts an idempotency key like any cached entry, and a retry of the evicted key charges again.", EXACTLY_ONCE, setnx(cache)),
        bug("payment/replays-other-result", "A replay is built from the last charge the instance made, not from the key's stored response: a duplicate or retry of one payment is answered with another payment's charge.", invariants::payment::REPLAY_FIDELITY, with_server(&|s| {
            s.replay = Replay::LastChargeOfInstance;
            s.instances = 1;
        })),
    ];
    for s in &mut zoo {
        tune_trigger(s);
    }
    zoo
}

/// A world without the faults that hurt an unkeyed provider call or leave a claim in flight by
/// other routes than a preset's own bug: the provider is reliable and quick, and only the roles
/// given crash or pause (a pause outlasting a call's timeout fails the handler as a crash does).
fn quiet_provider(s: &mut Scenario, crash: Vec<Role>, pause: Vec<Role>) {
    s.payment_mut().provider = ProviderDesign { latency_us: 0, error_probability: 0.0, ..s.payment_mut().provider };
    s.targets = Targets { crash, pause, lossy: vec![Role::Client, Role::Server] };
}

/// Each bug-zoo preset keeps the full profile except where its trigger needs a stronger dose,
/// and drops only faults that would make it fail for a reason other than its bug.
fn tune_trigger(s: &mut Scenario) {
    match s.name.as_str() {
        // Redis alone with an unkeyed provider: a server crash or a provider timeout would leave
        // a claim in flight that only a retry after the TTL could resume, by charging again.
        "payment/setnx-everysec" | "payment/setnx-no-fsync" => {
            quiet_provider(s, vec![Role::Store], vec![]);
            // A workload and faults that span seconds: what tells a loss window of 1 s
            // (everysec) from one of 30 s (no) is a request for a key that arrives more than a
            // second after the key was written, here a retry after a partition of up to 3 s. The
            // store crashes in 9 runs of 10, at any time in the first 4 s (not 10 in 10: a fault
            // that is certain is no choice, and a shrinker could not show it was needed).
            s.workload_mut().think_us = 1_000 * MS;
            s.faults.fault_phase_us = 4_000 * MS;
            s.faults.crash_probability = 0.9;
            s.faults.partition_probability = 0.9;
            // The claim is a 300 ms lock, as in `setnx-always`: a claim cut off by a crash frees
            // itself instead of sticking for the result's 24 h (a liveness bug of its own).
            if let KeyStore::Redis { lock_ttl_us, .. } = &mut s.payment_mut().store {
                *lock_ttl_us = 300 * MS;
            }
            s.faults.partition_us_max = 3_000 * MS;
        }
        "payment/ttl-shorter-than-retries" | "payment/setnx-evicting-cache" => quiet_provider(s, vec![], vec![]),
        // The trigger is the store's own cut (drawn at the partition rate): nothing crashes or
        // pauses, as in the other SETNX-only presets.
        "payment/setnx-split-brain" => {
            quiet_provider(s, vec![], vec![]);
            s.faults.partition_probability = 0.5;
        }
        "payment/async-commit" => s.faults.crash_probability = 0.5,
        "payment/result-separate-write" => s.faults.crash_probability = 0.5,
        "payment/lease-shorter-than-pause" => {
            // The trigger is a pause longer than the lease; without a keyed provider a crash or a
            // provider timeout would double-charge through another door, so this preset has none.
            quiet_provider(s, vec![], vec![Role::Server]);
            s.faults.pause_probability = 0.5;
            s.faults.pause_us_min = 100 * MS;
            s.faults.pause_us_max = 1_000 * MS;
        }
        "payment/release-key-on-timeout" => {
            // The trigger is a provider call that times out after it charged: the provider is
            // slow, lossy, paused or crashed. Nothing else crashes: a crash between the claim and
            // the result would leave the key in flight (no lease here).
            s.targets = Targets {
                crash: vec![Role::Provider],
                pause: vec![Role::Provider],
                lossy: vec![Role::Client, Role::Server, Role::Provider],
            };
            s.payment_mut().provider.error_probability = 0.0;
        }
        "payment/no-completer" => s.faults.crash_probability = 0.5,
        "payment/provider-window-shorter-than-retries" => {}
        "payment/lease-check-with-skew" => quiet_provider(s, vec![], vec![]),
        "payment/in-memory-key" => {
            s.targets.crash = vec![Role::Client];
            s.faults.crash_probability = 0.5;
        }
        _ => {}
    }
}

/// DESIGN.md's benchmark: 1 client, 5 charges, 10% loss, 1-10 ms delays, 50 ms timeout, full
/// jitter (10 ms base, 200 ms cap, 6 attempts), key store crash with probability 0.05 per run.
pub fn bench_five_charges() -> Scenario {
    let mut s = scenario(
        "bench/five-charges",
        "The benchmark scenario: 1 client, 5 charges with their own keys, 10% loss, key store crash with probability 0.05. Its client gives up after 6 attempts, and in a few runs in ten thousand it gives up while its charge is durable: the user is told it failed.",
        Expect::Violation(EXACTLY_ONCE.into()),
        design(client(), durable_server(), postgres(true, true)),
    );
    s.workload = Some(Workload { clients: 1, operations_per_client: 5, duplicates: 0, amount: 100, repay_probability: 0.0, think_us: 0 });
    s.payment_mut().client.cap_us = 200 * MS;
    s.payment_mut().client.max_attempts = 6;
    s.payment_mut().server.instances = 1;
    // The reference simulator's server waits for its store (DESIGN.md's scenario has no server
    // call timeout); the speed comparison is of the same work.
    s.payment_mut().server.call_timeout_us = 0;
    s.payment_mut().provider = ProviderDesign::default();
    s.faults = FaultProfile { loss_probability: 0.1, crash_probability: 0.05, ..FaultProfile::default() };
    s.faults.fault_phase_us = 1_000 * MS;
    s.targets = Targets { crash: vec![Role::Store], pause: vec![], lossy: vec![Role::Client, Role::Server] };
    s
}
