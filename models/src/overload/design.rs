//! The overload path's design knobs: what a team decides about a fleet of clients that retries
//! against a service with bounded capacity, and about that service. Each doc comment says what
//! the choice means in production.

use crate::knobs::{Backoff, RetryBudget};
use serde::{Deserialize, Serialize};

/// How operations arrive at each client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Arrivals {
    /// Open loop: operations arrive whether or not earlier ones finished (users clicking, a
    /// cron, an upstream queue). A slow or failing service piles up operations, each retrying:
    /// what makes retry storms.
    Open,
    /// Closed loop: a client starts its next operation only after the last one settled (a
    /// worker calling in a loop). Load falls by itself when the service slows down.
    Closed,
    /// A herd: every client has exactly one operation, arriving at a uniform time within the
    /// first `2 * interval_us` (a cache entry expiring for everyone, a cron at the top of the
    /// hour, every client reconnecting after a deploy).
    Burst,
}

/// What a client does with a 503's `Retry-After` (RFC 9110 10.2.3).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RetryAfter {
    /// Retry on the backoff policy alone, as if the header were not there.
    Ignored,
    /// Wait exactly the delay the server asked for: every client told at the same moment wakes
    /// at the same moment (a synchronized wave).
    Exact,
    /// Wait the delay plus a random part of it (`delay + rand(0, delay)`): the wave is spread.
    Jittered,
}

/// The clients: how many, how their operations arrive, and how each retries.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetDesign {
    /// Clients (1 to 1,000), all behaving alike.
    pub clients: u32,
    pub arrivals: Arrivals,
    /// Mean time between a client's operations (open loop: the next arrives after a uniform
    /// draw in `1..=2 * interval_us`; closed loop: the think time after one settles, drawn alike).
    pub interval_us: u64,
    /// Operations arrive until this time; then the clients only finish what they have.
    pub duration_us: u64,
    /// Of every 1,000 operations, this many are slow: the server works on them for
    /// `server.slow_service_us` (a hot row, a slow downstream call). Their clients time out and
    /// retry the same key while the first request is still running.
    #[serde(default)]
    pub slow_per_mille: u32,
    pub backoff: Backoff,
    pub base_us: u64,
    pub cap_us: u64,
    /// Attempts per operation, the first included (the SRE book: 3; gRPC A6 caps at 5).
    pub max_attempts: u32,
    /// An attempt with no response after this long is abandoned and (maybe) retried.
    pub timeout_us: u64,
    pub retry_after: RetryAfter,
    /// Each client's retry budget.
    pub budget: RetryBudget,
}

/// What the service does while it is down.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutageMode {
    /// A front end (load balancer, the app's own health gate) answers every request 503 with
    /// `Retry-After`.
    Unavailable503,
    /// Nothing answers: requests are swallowed and clients find out by their timeout.
    Silent,
}

/// When the service is down.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutageWindow {
    pub start_us: u64,
    pub duration_us: u64,
    pub mode: OutageMode,
}

/// What the service does with a request when its queue is full.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shedding {
    /// Answer 503 with `Retry-After` at once (load shedding with pushback).
    Reject503,
    /// Drop it without an answer (a full accept backlog): the client learns by its timeout.
    Drop,
}

/// What the service does with a request whose idempotency key is being worked on by another
/// request (a retry after a client timeout, a double click).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InFlightPolicy {
    /// Answer 409 at once (the IETF draft): the worker is free for other keys, the client
    /// retries later.
    Reject409,
    /// Hold a worker until the first request finishes, then answer with its result: every
    /// retry of a slow key takes one more worker away from every other key.
    Block,
}

/// What a request does to the service's data.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Writes {
    /// Each operation writes its own rows: requests for different keys never conflict.
    #[default]
    PerKey,
    /// Every request is a read-modify-write of one shared row under optimistic concurrency (a
    /// counter, an inventory row, a lease): it reads the row's version when a worker takes it and
    /// commits at the end of its service time only if no other request committed in between
    /// (first committer wins); otherwise it answers 409 and its client retries. The setting in
    /// which backoff policies are usually compared (AWS's "Exponential Backoff And Jitter").
    OneRow,
}

/// The service: a bounded worker pool behind a bounded queue.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDesign {
    /// Requests worked on at once (1 to 64).
    pub workers: u32,
    /// Requests waiting for a worker (1 to 100,000), served first come first served; a request
    /// whose client gave up is still served when its turn comes (the server cannot tell).
    pub queue_limit: u32,
    /// Worker time per request.
    pub service_us: u64,
    /// Worker time of a slow operation's request (see `fleet.slow_per_mille`).
    pub slow_service_us: u64,
    pub when_full: Shedding,
    pub in_flight: InFlightPolicy,
    /// The `Retry-After` sent with a 503 (shedding or outage).
    pub retry_after_us: u64,
    pub outage: Option<OutageWindow>,
    #[serde(default, skip_serializing_if = "is_per_key")]
    pub writes: Writes,
}

fn is_per_key(w: &Writes) -> bool {
    *w == Writes::PerKey
}

/// A tier between the clients and the service (a gateway, a backend-for-frontend, a mid-tier
/// service): it forwards each request it gets to the next tier in and retries that call with its
/// own policy. Tiers that each retry multiply: three tiers of 3 attempts send up to 27 requests
/// per operation to the service (the SRE book: retry at one layer only).
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierDesign {
    pub backoff: Backoff,
    pub base_us: u64,
    pub cap_us: u64,
    /// Attempts per forwarded request, the first included (1: this tier does not retry).
    pub max_attempts: u32,
    /// A forwarded call with no answer after this long is abandoned and (maybe) retried; when
    /// the tier gives up it answers its caller 504.
    pub timeout_us: u64,
}

/// What the run is judged by: the bounds of `recovery` and `availability`.
#[derive(Copy, Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bounds {
    /// Width of a history bucket.
    pub bucket_us: u64,
    /// After the outage ends, goodput must be back to `goodput_fraction` of what the service
    /// can give (the offered load, or the capacity if that is lower) within this long.
    pub recovery_us: u64,
    pub goodput_fraction: f64,
    /// Attempts per operation the design may send during the outage (its retry amplification).
    pub amplification_max: f64,
    /// A request that waits longer than this for a worker while workers are held by requests
    /// blocked on another key is starved (`availability`).
    pub starve_us: u64,
}

/// Tiers between the clients and the service, at most (the engine's nodes are few).
pub const MAX_TIERS: usize = 4;

/// A whole overload design.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverloadDesign {
    pub fleet: FleetDesign,
    pub server: ServerDesign,
    pub bounds: Bounds,
    /// Tiers between the clients and the service, outermost first: 0 to 4 (so 1 to 5 layers
    /// counting the service). Amplification is judged on the requests that reach the service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierDesign>,
}

impl OverloadDesign {
    /// Operations offered per second by the whole fleet (open loop; closed loop: at most).
    pub fn offered_per_sec(&self) -> f64 {
        self.fleet.clients as f64 * 1e6 / self.fleet.interval_us as f64
    }
    /// Requests per second the worker pool can serve.
    pub fn capacity_per_sec(&self) -> f64 {
        self.server.workers as f64 * 1e6 / self.server.service_us as f64
    }

    /// Refuse settings no real system has, naming the knob (as `overload.…`) and the fix.
    pub fn validate(&self) -> Result<(), String> {
        let need = |cond: bool, msg: &str| if cond { Ok(()) } else { Err(msg.to_string()) };
        let f = &self.fleet;
        need((1..=1000).contains(&f.clients), "overload.fleet.clients must be between 1 and 1000")?;
        need(f.interval_us > 0, "overload.fleet.interval_us must be > 0 (the mean time between a client's operations)")?;
        need(f.duration_us > 0, "overload.fleet.duration_us must be > 0 (how long operations arrive)")?;
        need(f.slow_per_mille <= 1000, "overload.fleet.slow_per_mille must be between 0 and 1000")?;
        need((1..=100).contains(&f.max_attempts), "overload.fleet.max_attempts must be between 1 and 100")?;
        need(f.timeout_us > 0, "overload.fleet.timeout_us must be > 0")?;
        need(f.base_us <= f.cap_us, "overload.fleet.base_us must be <= overload.fleet.cap_us")?;
        need(f.cap_us <= u32::MAX as u64, "overload.fleet.cap_us must be below 2^32 µs (about 71 minutes)")?;
        need(f.interval_us <= u32::MAX as u64 / 2, "overload.fleet.interval_us must be below 2^31 µs")?;
        need(f.backoff != Backoff::Decorrelated || f.base_us > 0, "overload.fleet.base_us must be > 0 with backoff = \"decorrelated\"")?;
        f.budget.validate("overload.fleet.budget")?;
        let s = &self.server;
        need((1..=64).contains(&s.workers), "overload.server.workers must be between 1 and 64")?;
        need((1..=100_000).contains(&s.queue_limit), "overload.server.queue_limit must be between 1 and 100000")?;
        need(s.service_us > 0, "overload.server.service_us must be > 0")?;
        need(s.slow_service_us >= s.service_us, "overload.server.slow_service_us must be >= overload.server.service_us")?;
        need(s.retry_after_us <= u32::MAX as u64, "overload.server.retry_after_us must be below 2^32 µs")?;
        if let Some(o) = s.outage {
            need(o.duration_us > 0, "overload.server.outage.duration_us must be > 0 (or remove the outage)")?;
        }
        need(self.tiers.len() <= MAX_TIERS, "overload.tiers: at most 4 tiers between the clients and the service (5 layers)")?;
        for t in &self.tiers {
            need((1..=100).contains(&t.max_attempts), "overload.tiers[].max_attempts must be between 1 and 100")?;
            need(t.timeout_us > 0, "overload.tiers[].timeout_us must be > 0")?;
            need(t.base_us <= t.cap_us && t.cap_us <= u32::MAX as u64, "overload.tiers[].base_us must be <= cap_us < 2^32 µs")?;
            need(
                t.backoff != Backoff::Decorrelated || t.base_us > 0,
                "overload.tiers[].base_us must be > 0 with backoff = \"decorrelated\"",
            )?;
        }
        let b = &self.bounds;
        need(b.bucket_us > 0, "overload.bounds.bucket_us must be > 0")?;
        need(
            (0.0..=1.0).contains(&b.goodput_fraction),
            "overload.bounds.goodput_fraction must be between 0.0 and 1.0 (the issue's 90%: 0.9)",
        )?;
        need(b.amplification_max >= 1.0, "overload.bounds.amplification_max must be >= 1.0 (every operation sends one attempt)")?;
        Ok(())
    }
}
