//! The design knobs. Each is what a team decides when building an idempotent payment API; each
//! doc comment says what the choice means in production.

use serde::{Deserialize, Serialize};

/// How the client picks the `Idempotency-Key` header.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyPolicy {
    /// One key per operation, generated once and reused by every retry (the IETF draft's intent).
    PerOperation,
    /// A fresh UUID per attempt: every retry looks like a new operation to the server.
    PerAttempt,
}

/// How long a client waits before retry `n` (Brooker, "Exponential Backoff and Jitter").
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Never retry.
    None,
    /// Retry at once.
    Immediate,
    /// `min(cap, base * 2^n)`, the same for every client: retries arrive in synchronized waves.
    Exponential,
    /// `rand(0, min(cap, base * 2^n))`: spreads a fleet's retries out; AWS's recommendation.
    FullJitter,
    /// `t/2 + rand(0, t/2)` with `t = min(cap, base * 2^n)`.
    EqualJitter,
    /// `min(cap, rand(base, previous * 3))`.
    Decorrelated,
}

/// A client-side limit on retries across requests.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RetryBudget {
    /// Retry whenever the per-request policy allows. (A struct variant: serde lets a unit
    /// variant of a tagged table take any field, and `deny_unknown_fields` would not hold.)
    None {},
    /// gRPC A6 retry throttling: tokens start at `max_tokens`; each failure costs 1, each
    /// success refunds `token_ratio`; no retries while tokens <= max_tokens / 2.
    TokenBucket { max_tokens: f64, token_ratio: f64 },
    /// Google SRE book: retry only while retries are below `percent` of requests.
    Ratio { percent: f64 },
    /// The AWS SDKs' standard retry quota: a bucket of `max_tokens` (500); a retry takes
    /// `retry_cost` (5), or `timeout_cost` (10) after a timeout; no retry when the bucket cannot
    /// pay; a successful retry gives its cost back, a first-attempt success adds 1.
    AwsQuota { max_tokens: u32, retry_cost: u32, timeout_cost: u32 },
}

impl RetryBudget {
    /// Refuse a budget no client has, naming the knob (`at`) and the fix.
    pub fn validate(&self, at: &str) -> Result<(), String> {
        let ok = match *self {
            RetryBudget::TokenBucket { max_tokens, token_ratio } => max_tokens > 0.0 && token_ratio > 0.0,
            RetryBudget::Ratio { percent } => (0.0..=100.0).contains(&percent),
            RetryBudget::AwsQuota { max_tokens, retry_cost, timeout_cost } => max_tokens > 0 && retry_cost > 0 && timeout_cost > 0,
            RetryBudget::None {} => true,
        };
        if ok {
            return Ok(());
        }
        Err(match self {
            RetryBudget::TokenBucket { .. } => format!("{at}: token_bucket needs max_tokens > 0 and token_ratio > 0 (gRPC A6: 10 and 0.1)"),
            RetryBudget::Ratio { .. } => format!("{at}.percent must be between 0 and 100 (the SRE book: 10)"),
            _ => format!("{at}: aws_quota needs max_tokens, retry_cost and timeout_cost > 0 (the AWS SDKs: 500, 5, 10)"),
        })
    }
}

/// The client: what key it sends, when and how often it retries.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientDesign {
    pub key: KeyPolicy,
    pub backoff: Backoff,
    pub base_us: u64,
    pub cap_us: u64,
    /// Attempts per operation, the first included; then the client gives up (outcome unknown).
    pub max_attempts: u32,
    /// An attempt with no response after this long is abandoned and retried.
    pub timeout_us: u64,
    /// Wait at least the server's Retry-After before retrying a 503 (RFC 9110 10.2.3).
    pub honour_retry_after: bool,
    pub budget: RetryBudget,
    /// Retries send a different payload (a bug in the client: the cart changed, the amount was
    /// recomputed) under the same key.
    pub retry_changes_payload: bool,
    /// Where the app keeps the key of a payment in progress, which decides what a crash of the
    /// app (a mobile app killed, a pod restarted) does to it.
    #[serde(default)]
    pub key_storage: KeyStorage,
}

/// Where the client keeps the idempotency key while a payment is in progress.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyStorage {
    /// Written to durable storage with the pending payment before the first request: a restarted
    /// app resumes the payment with the same key.
    #[default]
    Persisted,
    /// Only in memory: a restarted app knows the purchase is unpaid but not the key, and starts
    /// over with a fresh one (to the server, a new operation).
    Memory,
}

/// What the handler does with its key when a store or provider call times out or fails.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Answer 500 and leave the key as it is, in flight: a retry after the lease expires, or the
    /// completer, resumes it from its recovery point.
    #[default]
    Leave,
    /// Delete the key and answer 500, so a retry starts afresh: the classic bug when the call
    /// that timed out may have charged.
    ReleaseKey,
    /// Store the failure as the key's result and answer 500; retries get the stored 500 again
    /// (Stripe caches 500s; the IETF draft: "the result of the completed operation, success or
    /// error"). Wrong when the failed call may have charged: the user is told it failed.
    StoreFailure,
}

/// What a handler that has charged does when storing the result fails: the key store's
/// connection broke (it crashed or restarted) or the call timed out.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultWrite {
    /// Give the request up: the design's `on_error` path, then 500. The charge is then known
    /// only to the provider, and the key says it is still in flight until its lock expires.
    #[default]
    Once,
    /// Keep the charge and store the result again every 5 ms until the store answers, then
    /// respond: the money moved, so the key must say so. A store whose process restarts within
    /// the lock TTL still holds the claim (Redis wrote it to the OS before it replied), so no
    /// one can take the key meanwhile. Redis key stores only (`key_claim = "set_nx"`).
    UntilStored,
}

/// Whose clock decides whether a lock lease has expired.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseClock {
    /// `locked_at = now()` and `locked_at < now() - lease` in SQL: the database's one clock
    /// (Brandur's rocket-rides-atomic).
    #[default]
    Database,
    /// The app server computes and compares lease times with its own clock: instances whose
    /// clocks disagree disagree about who holds the lease.
    App,
}

/// How a finished key's response is built when it is replayed.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Replay {
    /// The status and body stored with the key, sent again (Stripe, the IETF draft).
    #[default]
    StoredResponse,
    /// The replay is built from the last charge this server instance made (a response object
    /// cached and reused across requests), not from what the key stored: another operation's
    /// charge once the instance has served another payment since.
    LastChargeOfInstance,
}

/// Brandur's completer: a background process that finds keys left unfinished and drives them on.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Completer {
    /// Nothing finishes a key whose request died: only a retry of the same key can. (A struct
    /// variant, as `RetryBudget::None`: serde lets a unit variant of a tagged table take any
    /// field, so a typo beside `kind = "none"` would be silently dropped.)
    None {},
    /// Every `every_us`, take over one key not finished `stuck_after_us` after it was claimed
    /// whose lease has expired, and resume it from its recovery point to a stored result. In the
    /// simulation it sweeps until the liveness deadline (the heal plus `settle_bound_us`): nothing
    /// later is judged, and a run needs an end.
    Sweep { every_us: u64, stuck_after_us: u64 },
}

/// The external payment provider (Stripe-like).
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderDesign {
    /// Between receiving a call and answering it (the charge is made, durably, on receipt).
    pub latency_us: u64,
    /// Probability that a call fails with a 5xx before charging.
    pub error_probability: f64,
    /// How long a keyed call's key is remembered; a call with the key after that charges again
    /// (Stripe: 24 h).
    pub key_retention_us: u64,
}

impl Default for ProviderDesign {
    fn default() -> Self {
        ProviderDesign { latency_us: 0, error_probability: 0.0, key_retention_us: 86_400_000_000 }
    }
}

/// How the server claims an idempotency key for a new execution.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyClaim {
    /// `INSERT .. ON CONFLICT DO UPDATE .. RETURNING *`: one atomic statement; a concurrent insert
    /// of the same key waits on the unique index for the first transaction to finish.
    InsertOnConflict,
    /// `SELECT` the key, and `INSERT` it if absent: two statements with a gap between them.
    SelectThenInsert,
    /// Redis `SET key value NX PX ttl`: atomic on one node, durable only as the AOF allows.
    SetNx,
}

/// What the server does with a request whose key is already in flight.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlight {
    /// Answer 409 at once (with Postgres: a short `lock_timeout` on the unique-index wait), so
    /// the worker is free for other keys and the client retries later.
    Reject409,
    /// Wait until the first request finishes and answer with its result: a worker is held for
    /// as long as the first request takes.
    Block,
    /// Ignore the in-flight row and execute again.
    Proceed,
}

/// Whether the server compares a reused key's payload with the first one.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fingerprint {
    /// Store a checksum of the payload with the key; a different payload gets 422.
    Reject422,
    /// No check: a reused key replays the first result whatever the payload.
    Ignore,
}

/// Where the response is stored relative to the charge.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultStorage {
    /// Key row, charge and stored response commit in one transaction: all or nothing.
    SameTransaction,
    /// The key is claimed in one write, the charge made, and the result stored in a later write.
    SeparateWrite,
    /// The key is recorded only once the operation completed (a cache of finished results):
    /// nothing marks a request in flight.
    OnlyCompletedKeys,
}

/// How a request resumes work that an earlier attempt left unfinished.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Recovery {
    /// No lease: an in-flight key stays in flight until its request finishes (if the server
    /// crashed, forever, or until the key expires).
    None,
    /// A lock lease (`locked_at` in Brandur's rocket-rides-atomic): a retry after the lease expired
    /// takes the key over and starts the work again from the beginning.
    LeaseRestart,
    /// A lease plus recovery points (Stripe / Brandur atomic phases): each phase commits its
    /// effect together with the recovery point, and a takeover resumes from the last one.
    RecoveryPoints,
}

/// Where the money moves.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeTarget {
    /// A ledger table in the same Postgres database as the keys: can share their transaction.
    LocalLedger,
    /// An external payment provider called over the network, without an idempotency key.
    Provider,
    /// An external payment provider called with a key derived from ours
    /// (`rocket-rides-atomic-<key id>`): it deduplicates repeated calls.
    KeyedProvider,
}

/// The server's idempotency layer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDesign {
    pub key_claim: KeyClaim,
    pub in_flight: InFlight,
    pub fingerprint: Fingerprint,
    pub result_storage: ResultStorage,
    pub recovery: Recovery,
    /// Lock lease for `recovery = lease_restart | recovery_points`.
    pub lease_us: u64,
    /// With `in_flight = reject409` on Postgres (`SET lock_timeout`): how long any statement of a
    /// request waits on another transaction's lock on the key before giving up with 409.
    pub lock_timeout_us: u64,
    /// Requests handled at once; more wait in the accept queue.
    pub workers: u32,
    pub charge: ChargeTarget,
    /// Instances behind the load balancer (1 to 4); each request goes to one drawn at random.
    #[serde(default = "one")]
    pub instances: u32,
    /// How far apart the instances' clocks may be: each instance's clock runs ahead of true time
    /// by an offset drawn from `0..=clock_skew_us`. Only `lease_clock = "app"` reads it.
    #[serde(default)]
    pub clock_skew_us: u64,
    #[serde(default)]
    pub lease_clock: LeaseClock,
    /// Every store and provider call is given up after this long without an answer, and the
    /// error path runs (0: wait forever).
    #[serde(default)]
    pub call_timeout_us: u64,
    #[serde(default)]
    pub on_error: OnError,
    #[serde(default)]
    pub replay: Replay,
    #[serde(default)]
    pub completer: Completer,
    #[serde(default)]
    pub result_write: ResultWrite,
}

fn one() -> u32 {
    1
}

/// `idle_in_transaction_session_timeout = 10s`, a common setting (PostgreSQL's own default, 0,
/// leaves it to TCP keepalive: two hours and more on Linux).
pub fn session_timeout_default() -> u64 {
    10_000_000
}

/// Redis `appendfsync`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AppendFsync {
    /// fsync the AOF before replying to every write: nothing acknowledged is lost.
    Always,
    /// fsync once a second (the default): a machine crash loses up to the last second of writes.
    Everysec,
    /// Leave it to the OS (about every 30 s on Linux): a machine crash loses up to ~30 s.
    No,
}

impl AppendFsync {
    /// The period of the background fsync clock (`always` has none: it fsyncs every write).
    pub fn period_us(self) -> Option<u64> {
        match self {
            AppendFsync::Always => None,
            AppendFsync::Everysec => Some(1_000_000),
            AppendFsync::No => Some(30_000_000),
        }
    }
}

/// The store that holds idempotency keys (and, for Postgres, possibly the ledger).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum KeyStore {
    Postgres {
        /// `synchronous_commit = on`: COMMIT returns after the WAL is flushed. `off`: it returns
        /// at once and the WAL writer flushes it between one and 3 x `wal_writer_delay_us` later
        /// (it hibernates between flushes; the model draws the window in that range); a crash
        /// before then loses acknowledged commits, as if they had aborted.
        synchronous_commit: bool,
        /// A unique index on the key. Without it two inserts of one key both succeed.
        unique_constraint: bool,
        /// PostgreSQL's `wal_writer_delay` (200 ms by default).
        wal_writer_delay_us: u64,
        /// How long a key row is kept after it was claimed (`created_at`) before the reaper
        /// deletes it, whatever its state: Stripe prunes keys after 24 h, Brandur's reaper after
        /// about 72 h. A retry that arrives later finds no key and runs again. 0: never deleted.
        /// The model reaps on access (a reaper that runs continuously: a key is gone from the
        /// moment it is old enough, the worst case of a periodic job).
        #[serde(default)]
        key_retention_us: u64,
        /// How long the database keeps the session of an app server that vanished (a machine
        /// crash, a partition) with its transaction open and its row locks held, before it ends
        /// it: `idle_in_transaction_session_timeout`, or TCP keepalive's detection when that is
        /// sooner (Linux: 2 h idle plus 9 probes 75 s apart, unless `tcp_keepalives_idle` is
        /// set). Until then a request for a key whose row it holds waits on the unique index (409
        /// after `lock_timeout`). The timeout counts from the session's last statement, so it
        /// also ends the transaction of a live server paused that long (as PostgreSQL does).
        /// A *process* crash is not held: the machine's kernel closes the dead process's
        /// sockets, and the database ends those sessions when it reads the FIN
        /// (`Msg::ConnectionsClosed`, sent from `Actor::on_process_exit`).
        /// 0: the idealisation of earlier versions: the database learns of a crash when the
        /// server restarts and nothing ends an idle session. Default: 10 s.
        #[serde(default = "session_timeout_default")]
        session_timeout_us: u64,
    },
    Redis {
        appendfsync: AppendFsync,
        /// `PX` on the stored result: after this long it is gone and the key is new again.
        ttl_us: u64,
        /// `PX` on the in-flight claim (a lock that expires if its holder dies); 0: the same as
        /// `ttl_us`.
        #[serde(default)]
        lock_ttl_us: u64,
        /// An asynchronous replica and Sentinel. A crash of the primary is a failover: the
        /// promoted replica has only what was streamed to it, whatever the AOF policy. A cut
        /// between the primary and its replica and sentinels (the scenario's
        /// `partition_probability`, drawn by the store itself) is a split brain: the old primary
        /// keeps serving the app servers on its side of the cut, and after `down_after_us` the
        /// sentinels promote the replica for the others; when the cut heals the old primary
        /// becomes a replica again and what it accepted meanwhile is discarded.
        replica_failover: bool,
        /// How long a write takes to stream to the replica (sub-millisecond in one data centre).
        replication_lag_us: u64,
        /// Sentinel's `down-after-milliseconds`: how long the primary must be unreachable before
        /// the sentinels fail over (30 s by default; presets scale it down to 30 ms, as they
        /// scale the rest of time, so a 100 ms partition can outlast it).
        #[serde(default)]
        down_after_us: u64,
        /// `min-replicas-to-write`: the primary refuses writes (NOREPLICAS) unless this many
        /// replicas acknowledged within `min_replicas_max_lag_us`; 0: off (the default). The model
        /// has one replica, so 0 or 1.
        #[serde(default)]
        min_replicas_to_write: u32,
        /// `min-replicas-max-lag` (10 s by default; replicas acknowledge every second): how long
        /// a primary cut off from its replica keeps accepting writes that will be lost.
        #[serde(default)]
        min_replicas_max_lag_us: u64,
        /// `appendonly`: false runs Redis without persistence (no AOF; no RDB snapshot either):
        /// a crash of either kind, even a process restart, comes back empty.
        #[serde(default = "yes")]
        appendonly: bool,
        /// A slow disk under `everysec`: the percentage of fsync ticks that stall. Redis then
        /// postpones writing its AOF buffer while the fsync runs, for up to 2 s ("Asynchronous
        /// AOF fsync is taking too long"): a process crash meanwhile loses what was written,
        /// and a machine crash loses up to 2 s instead of 1. 0 (the default): fsyncs are quick.
        #[serde(default)]
        fsync_stall_percent: u32,
        /// `maxmemory`, counted in keys: 0 (the default) is no limit.
        #[serde(default)]
        maxmemory_keys: u32,
        #[serde(default)]
        maxmemory_policy: MaxmemoryPolicy,
    },
}

fn yes() -> bool {
    true
}

/// `maxmemory-policy`: what a write of a new key does when `maxmemory_keys` are held.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxmemoryPolicy {
    /// Refuse the write (`-OOM command not allowed when used memory > 'maxmemory'`): the claim
    /// fails, no key is lost. Redis's default.
    #[default]
    Noeviction,
    /// Evict the least recently used key, whatever it holds: a cache's setting, and an
    /// idempotency key in flight or holding its result is a key like any other.
    AllkeysLru,
    /// Evict the key closest to expiring: the in-flight claims, whose lock TTL is short, go first.
    VolatileTtl,
}

impl MaxmemoryPolicy {
    /// As redis.conf spells it.
    pub fn name(self) -> &'static str {
        match self {
            MaxmemoryPolicy::Noeviction => "noeviction",
            MaxmemoryPolicy::AllkeysLru => "allkeys-lru",
            MaxmemoryPolicy::VolatileTtl => "volatile-ttl",
        }
    }
}

/// A whole payment design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentDesign {
    pub client: ClientDesign,
    pub server: ServerDesign,
    pub store: KeyStore,
    #[serde(default)]
    pub provider: ProviderDesign,
}

impl PaymentDesign {
    /// Refuse combinations no real system has, naming the knob and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let s = &self.server;
        let postgres = matches!(self.store, KeyStore::Postgres { .. });
        let unique = matches!(self.store, KeyStore::Postgres { unique_constraint: true, .. });
        let need = |cond: bool, msg: &str| if cond { Ok(()) } else { Err(msg.to_string()) };
        need(
            postgres != (s.key_claim == KeyClaim::SetNx),
            "design.server.key_claim: set_nx needs design.store.kind = \"redis\"; insert_on_conflict and select_then_insert need \"postgres\"",
        )?;
        need(
            s.key_claim != KeyClaim::InsertOnConflict || unique,
            "design.server.key_claim = \"insert_on_conflict\" needs design.store.unique_constraint = true (ON CONFLICT needs a unique index)",
        )?;
        need(
            s.result_write == ResultWrite::Once || s.key_claim == KeyClaim::SetNx,
            "design.server.result_write = \"until_stored\" needs key_claim = \"set_nx\" (a Redis key store); on Postgres keep the result in the charge's transaction (result_storage = \"same_transaction\") or use recovery points",
        )?;
        need(
            postgres || s.charge != ChargeTarget::LocalLedger,
            "design.server.charge = \"local_ledger\" needs a Postgres store; with Redis use \"provider\" or \"keyed_provider\"",
        )?;
        need(
            s.result_storage != ResultStorage::SameTransaction || (postgres && s.charge == ChargeTarget::LocalLedger),
            "design.server.result_storage = \"same_transaction\" needs charge = \"local_ledger\" on Postgres (a provider call cannot join a transaction)",
        )?;
        need(
            s.recovery == Recovery::None || (postgres && s.result_storage == ResultStorage::SeparateWrite),
            "design.server.recovery = lease_restart / recovery_points needs a Postgres store and result_storage = \"separate_write\"",
        )?;
        need(
            s.recovery != Recovery::None || s.lease_us == 0,
            "design.server.lease_us has no effect with recovery = \"none\" (no instance ever takes an expired lease over); use recovery = \"lease_restart\" or \"recovery_points\", or set lease_us = 0",
        )?;
        need(
            s.recovery == Recovery::None || s.lease_us > 0,
            "design.server.lease_us must be > 0 with a lease (recovery = lease_restart / recovery_points)",
        )?;
        need(
            s.in_flight != InFlight::Block || postgres,
            "design.server.in_flight = \"block\" needs a Postgres store (Redis SETNX cannot wait); use reject409 or proceed",
        )?;
        need(
            !(s.in_flight == InFlight::Proceed && s.result_storage == ResultStorage::SameTransaction),
            "design.server.in_flight = \"proceed\" has no effect with result_storage = \"same_transaction\" (the claim waits on the unique index); use separate_write",
        )?;
        if let KeyStore::Redis { replica_failover, down_after_us, min_replicas_to_write, replication_lag_us, .. } = self.store {
            need(
                !replica_failover || down_after_us > 0,
                "design.store.down_after_us must be > 0 with replica_failover = true (Sentinel's down-after-milliseconds: 30 s by default; the presets use 30 ms)",
            )?;
            need(min_replicas_to_write <= 1, "design.store.min_replicas_to_write must be 0 or 1: the model has one replica")?;
            need(
                min_replicas_to_write == 0 || replica_failover,
                "design.store.min_replicas_to_write = 1 needs replica_failover = true (a primary without a replica would refuse every write)",
            )?;
            need(!replica_failover || replication_lag_us <= u32::MAX as u64, "design.store.replication_lag_us must be below 2^32 µs")?;
            let KeyStore::Redis { ttl_us, .. } = self.store else { unreachable!() };
            // Redis refuses `SET .. PX 0` ("invalid expire time"): a key must live a while.
            need(ttl_us > 0, "design.store.ttl_us must be > 0 (Redis refuses PX 0; the presets keep results 24 h: 86400000000)")?;
            let KeyStore::Redis { appendfsync, appendonly, fsync_stall_percent, maxmemory_keys, .. } = self.store else { unreachable!() };
            need(fsync_stall_percent <= 100, "design.store.fsync_stall_percent must be between 0 and 100")?;
            need(
                fsync_stall_percent == 0 || (appendfsync == AppendFsync::Everysec && appendonly && !replica_failover),
                "design.store.fsync_stall_percent needs appendfsync = \"everysec\" with appendonly = true and no replica_failover (only the once-a-second fsync is postponed)",
            )?;
            need(
                maxmemory_keys == 0 || !replica_failover,
                "design.store.maxmemory_keys needs replica_failover = false (eviction is modelled on a single node); set it to 0 or turn failover off",
            )?;
        }
        need((1..=64).contains(&s.workers), "design.server.workers must be between 1 and 64")?;
        need((1..=4).contains(&s.instances), "design.server.instances must be between 1 and 4")?;
        need(s.clock_skew_us <= u32::MAX as u64, "design.server.clock_skew_us must be below 2^32 µs (about 71 minutes)")?;
        if let Completer::Sweep { every_us, .. } = s.completer {
            need(
                postgres && s.recovery != Recovery::None,
                "design.server.completer = sweep needs a Postgres store and a lease (recovery = lease_restart / recovery_points): it finds keys by query and takes over their expired leases",
            )?;
            need(every_us > 0, "design.server.completer.every_us must be > 0")?;
        }
        let p = &self.provider;
        need((0.0..=1.0).contains(&p.error_probability), "design.provider.error_probability must be between 0.0 and 1.0")?;
        let c = &self.client;
        need((1..=50).contains(&c.max_attempts), "design.client.max_attempts must be between 1 and 50")?;
        need(c.timeout_us > 0, "design.client.timeout_us must be > 0")?;
        need(c.base_us <= c.cap_us, "design.client.base_us must be <= design.client.cap_us")?;
        c.budget.validate("design.client.budget")?;
        Ok(())
    }
}

impl Default for Completer {
    fn default() -> Self {
        Completer::None {}
    }
}
