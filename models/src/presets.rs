//! The preset catalogue: the correct designs and the bug zoo, each with the verdict it is
//! expected to get. Names are fixed: scripts and the seed corpus depend on them.

use crate::knobs::*;
use crate::scenario::{Expect, Role, Scenario, Targets, Workload};
use sim::FaultProfile;

const MS: u64 = 1_000;

/// The client every preset starts from: one key per operation, full jitter, a 50 ms timeout.
fn client() -> ClientDesign {
    ClientDesign {
        key: KeyPolicy::PerOperation,
        backoff: Backoff::FullJitter,
        base_us: 10 * MS,
        cap_us: 200 * MS,
        max_attempts: 6,
        timeout_us: 50 * MS,
        honour_retry_after: true,
        budget: RetryBudget::None,
        retry_changes_payload: false,
    }
}

/// Postgres, INSERT .. ON CONFLICT, key + charge + result in one transaction, 409 and 422.
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
    }
}

fn postgres(synchronous_commit: bool, unique_constraint: bool) -> KeyStore {
    KeyStore::Postgres { synchronous_commit, unique_constraint, wal_writer_delay_us: 200 * MS }
}

fn redis(appendfsync: AppendFsync, ttl_us: u64) -> KeyStore {
    KeyStore::Redis { appendfsync, ttl_us, replica_failover: false, replication_lag_us: 100 * MS }
}

/// SETNX claims the key; an external provider (no key of its own) makes the charge.
fn setnx_server() -> ServerDesign {
    ServerDesign {
        key_claim: KeyClaim::SetNx,
        result_storage: ResultStorage::SeparateWrite,
        charge: ChargeTarget::Provider,
        ..durable_server()
    }
}

/// Every fault at once: what a correct design must survive.
pub fn full_faults() -> FaultProfile {
    FaultProfile {
        delay_us_min: MS,
        delay_us_max: 10 * MS,
        loss_probability: 0.1,
        duplicate_probability: 0.05,
        crash_probability: 0.2,
        crashes_per_node_max: 1,
        restart_delay_us_min: MS,
        restart_delay_us_max: 50 * MS,
        pause_probability: 0.2,
        pauses_per_node_max: 1,
        pause_us_min: MS,
        pause_us_max: 100 * MS,
        partition_probability: 0.1,
        partitions_max: 1,
        partition_us_max: 100 * MS,
        fault_phase_us: 500 * MS,
    }
}

fn scenario(name: &str, description: &str, expect: Expect, payment: PaymentDesign) -> Scenario {
    Scenario {
        name: name.into(),
        description: description.into(),
        expect,
        time_limit_us: 60_000 * MS,
        swarm: false,
        workload: Workload { clients: 2, operations_per_client: 4, duplicates: 1, amount: 100 },
        payment,
        faults: full_faults(),
        targets: Targets::default(),
    }
}

fn design(client: ClientDesign, server: ServerDesign, store: KeyStore) -> PaymentDesign {
    PaymentDesign { client, server, store }
}

fn bug(name: &str, description: &str, invariant: &str, payment: PaymentDesign) -> Scenario {
    scenario(name, description, Expect::Violation(invariant.into()), payment)
}

const EXACTLY_ONCE: &str = invariants::payment::EXACTLY_ONCE_CHARGE;

/// Every preset, correct designs first, then the bug zoo in DESIGN.md's order.
pub fn all() -> Vec<Scenario> {
    let durable = || design(client(), durable_server(), postgres(true, true));
    let mut v = vec![
        scenario(
            "payment/durable-on-conflict",
            "One key per operation; Postgres with synchronous commit; INSERT .. ON CONFLICT; key, charge and result in one transaction; 409 in flight, 422 on mismatch.",
            Expect::Pass,
            durable(),
        ),
        scenario(
            "payment/setnx-always",
            "Redis SETNX on a single node with appendfsync always and a 24 h TTL; the result stored with SET after the provider's charge.",
            Expect::Pass,
            design(client(), setnx_server(), redis(AppendFsync::Always, 86_400_000 * MS)),
        ),
        scenario(
            "payment/stripe-recovery-points",
            "Stripe/Brandur atomic phases: the key claimed with a lock lease, the provider called with a derived key, each phase committed with its recovery point; a takeover resumes from the last one.",
            Expect::Pass,
            design(
                client(),
                ServerDesign {
                    result_storage: ResultStorage::SeparateWrite,
                    recovery: Recovery::RecoveryPoints,
                    lease_us: 300 * MS,
                    charge: ChargeTarget::KeyedProvider,
                    ..durable_server()
                },
                postgres(true, true),
            ),
        ),
        bench_five_charges(),
    ];
    v.extend(payment_bug_zoo(durable));
    v
}

/// Bug zoo 1-10: each fails only because of its bug.
fn payment_bug_zoo(durable: impl Fn() -> PaymentDesign) -> Vec<Scenario> {
    let with_server = |f: &dyn Fn(&mut ServerDesign)| {
        let mut d = durable();
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
    let mut lease = with_server(&|s| {
        s.result_storage = ResultStorage::SeparateWrite;
        s.recovery = Recovery::RecoveryPoints;
        s.lease_us = 300 * MS;
        s.charge = ChargeTarget::Provider;
    });
    lease.client.max_attempts = 8;
    let mut zoo = vec![
        bug("payment/key-per-attempt", "The client sends a fresh key on every retry: a response lost after commit makes the retry a new charge.", EXACTLY_ONCE, key_per_attempt),
        bug("payment/setnx-everysec", "Redis SETNX with appendfsync everysec: the key store crashes soon after a SETNX, the key is lost, and the retry charges again.", EXACTLY_ONCE, setnx(redis(AppendFsync::Everysec, 86_400_000 * MS))),
        bug("payment/setnx-no-fsync", "Redis with appendfsync no: the OS flushes every ~30 s, so a key store crash loses every key written since.", EXACTLY_ONCE, setnx(redis(AppendFsync::No, 86_400_000 * MS))),
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
    ];
    for s in &mut zoo {
        tune_trigger(s);
    }
    zoo
}

/// Each bug-zoo preset keeps the full profile except where its trigger needs a stronger dose,
/// and drops only faults that would make it fail for a reason other than its bug.
fn tune_trigger(s: &mut Scenario) {
    match s.name.as_str() {
        "payment/setnx-everysec" | "payment/setnx-no-fsync" | "payment/async-commit" => {
            s.faults.crash_probability = 0.5;
        }
        "payment/result-separate-write" => {
            s.faults.crash_probability = 0.5;
        }
        "payment/lease-shorter-than-pause" => {
            // The trigger is a pause longer than the lease; without a keyed provider a crash
            // would double-charge through another door, so this preset has no crashes.
            s.targets = Targets { crash: vec![], pause: vec![Role::Server], lossy: vec![Role::Client, Role::Server] };
            s.faults.pause_probability = 0.5;
            s.faults.pause_us_min = 100 * MS;
            s.faults.pause_us_max = 1_000 * MS;
        }
        _ => {}
    }
}

/// DESIGN.md's benchmark: 1 client, 5 charges, 10% loss, 1-10 ms delays, 50 ms timeout, full
/// jitter (10 ms base, 200 ms cap, 6 attempts), key store crash with probability 0.05 per run.
pub fn bench_five_charges() -> Scenario {
    let mut s = scenario(
        "bench/five-charges",
        "The benchmark scenario: 1 client, 5 charges with their own keys, 10% loss, key store crash with probability 0.05.",
        Expect::Pass,
        design(client(), durable_server(), postgres(true, true)),
    );
    s.workload = Workload { clients: 1, operations_per_client: 5, duplicates: 0, amount: 100 };
    s.faults = FaultProfile { loss_probability: 0.1, crash_probability: 0.05, ..FaultProfile::default() };
    s.faults.fault_phase_us = 1_000 * MS;
    s.targets = Targets { crash: vec![Role::Store], pause: vec![], lossy: vec![Role::Client, Role::Server] };
    s
}

/// The preset of that name.
pub fn get(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// The preset name closest to `name` (for "did you mean").
pub fn closest(name: &str) -> Option<String> {
    all().into_iter().map(|s| s.name).min_by_key(|n| edit_distance(n, name)).filter(|n| edit_distance(n, name) <= n.len() / 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + (ca != b[j]) as usize).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
