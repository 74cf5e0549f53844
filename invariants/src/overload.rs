//! Checkers of the overload path, all liveness properties over buckets of simulated time:
//! `recovery` (after the outage ends, goodput is back within a bound, and retry amplification
//! at the service during the outage stays under the design's bound), `availability` (requests
//! for other keys are not starved by requests blocked on a key in flight) and `settles` (every
//! operation comes to an end, success or an error its user sees, within the settle bound).

use crate::ms;
use crate::obs::Obs;
use serde::Serialize;
use sim::{Entry, RunEnd, Verdict, Violation};

pub const RECOVERY: &str = "recovery";
pub const AVAILABILITY: &str = "availability";
/// The payment path's liveness invariant, judged here on the fleet's operations.
pub use crate::payment::SETTLES;

/// The overload invariants in checker order.
pub const ALL: [&str; 2] = [RECOVERY, AVAILABILITY];

/// Everything the overload checkers judge.
pub struct OverloadRun<'a> {
    pub history: &'a [Entry<Obs>],
    pub end_us: u64,
    pub bucket_us: u64,
    /// The outage window `[start, end)`, if the scenario has one.
    pub outage: Option<(u64, u64)>,
    /// Requests the worker pool can serve per bucket.
    pub capacity_per_bucket: f64,
    /// Operations arrive until this time.
    pub arrivals_end_us: u64,
    pub recovery_us: u64,
    pub goodput_fraction: f64,
    pub amplification_max: f64,
    pub starve_us: u64,
    pub workers: u32,
    /// Tiers between the clients and the service (0: the clients call it directly).
    pub tiers: u8,
    /// Judge `settles`.
    pub liveness: bool,
    pub settle_bound_us: u64,
    pub end: RunEnd,
    /// From this time on no new fault starts.
    pub heal_at_us: u64,
    /// Operations a crash of the fleet dropped, as `(client, op)`: their users saw an error.
    pub forgotten: &'a [(u32, u32)],
}

impl OverloadRun<'_> {
    /// Does this observation put a request in front of the service (the last hop's send)?
    fn reaches_service(&self, obs: &Obs) -> bool {
        match *obs {
            Obs::Attempted { .. } => self.tiers == 0,
            Obs::Forwarded { tier, .. } => tier + 1 == self.tiers,
            _ => false,
        }
    }
}

/// One bucket of simulated time, counted.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Bucket {
    /// Operations that arrived.
    pub offered: u32,
    /// Requests the clients sent (first attempts and retries).
    pub attempts: u32,
    /// Requests sent to the service (the clients' attempts, or the innermost tier's calls).
    pub service_attempts: u32,
    /// Operations that succeeded (when they succeeded).
    pub goodput: u32,
    /// Operations that arrived in this bucket and succeeded (whenever they did).
    pub arrived_ok: u32,
    /// The longest queue a worker left behind.
    pub queue_max: u32,
    pub unavailable: u32,
    pub conflicts: u32,
    pub timeouts: u32,
    /// Requests starved (see `availability`).
    pub starved: u32,
}

/// A run's headline numbers (for `compare`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub operations: u64,
    pub attempts: u64,
    /// Requests that reached the service (`attempts` when there are no tiers).
    pub service_attempts: u64,
    /// Calls each tier sent one tier in, outermost first (zero past the last tier).
    pub tier_attempts: [u64; 4],
    /// Operations that succeeded.
    pub goodput: u64,
    /// Operations offered and attempts sent during the outage.
    pub outage_operations: u64,
    pub outage_attempts: u64,
    /// Requests that reached the service during the outage.
    pub outage_service_attempts: u64,
    /// When the last operation succeeded, if every operation did (the time a herd took to
    /// get through: the contention workload's headline).
    pub done_us: Option<u64>,
    /// Time from the end of the outage until goodput was back for good (see `recovery`);
    /// `None` if it never was (or there was no outage).
    pub recovery_us: Option<u64>,
    /// The last bucket after the outage from which on goodput was short of the target (the
    /// bucket where recovery broke), if any.
    pub short_from: Option<usize>,
    /// The run had an outage (recovery was judged).
    pub outage: bool,
}

impl Summary {
    /// Requests reaching the service per operation during the outage (over the whole run
    /// without one): what the tiers' and the clients' retries multiply together.
    pub fn outage_amplification(&self) -> f64 {
        self.outage_service_attempts as f64 / self.outage_operations.max(1) as f64
    }
    pub fn amplification(&self) -> f64 {
        self.attempts as f64 / self.operations.max(1) as f64
    }
}

/// Count the history into buckets of `run.bucket_us` (`out` is cleared first).
pub fn buckets(run: &OverloadRun<'_>, out: &mut Vec<Bucket>) {
    out.clear();
    out.resize((run.end_us / run.bucket_us + 1) as usize, Bucket::default());
    for e in run.history {
        let b = &mut out[(e.at_us / run.bucket_us) as usize];
        match e.obs {
            Obs::Offered { .. } => b.offered += 1,
            Obs::Attempted { .. } => {
                b.attempts += 1;
                b.service_attempts += (run.tiers == 0) as u32;
            }
            Obs::Forwarded { tier, .. } => b.service_attempts += (tier + 1 == run.tiers) as u32,
            Obs::Finished { ok: true, arrived_us, .. } => {
                b.goodput += 1;
                out[(arrived_us / run.bucket_us) as usize].arrived_ok += 1;
            }
            Obs::Served { queue, blocked, waited_us, .. } => {
                b.queue_max = b.queue_max.max(queue);
                b.starved += starved(run, waited_us, blocked) as u32;
            }
            Obs::Refused { code: 503, .. } => b.unavailable += 1,
            Obs::Refused { code: 409, .. } | Obs::WriteConflict { .. } => b.conflicts += 1,
            Obs::AttemptTimedOut { .. } => b.timeouts += 1,
            _ => {}
        }
    }
}

/// A request that waited `waited_us` for a worker, which it got with `blocked` workers held by
/// requests blocked on a key in flight, was starved by them: it waited past the bound while at
/// least half the pool was held so. (A long wait with fewer held is overload, not starvation.)
fn starved(run: &OverloadRun<'_>, waited_us: u64, blocked: u32) -> bool {
    waited_us > run.starve_us && blocked > 0 && 2 * blocked >= run.workers
}

/// The headline numbers of a run counted into `buckets`.
pub fn summarize(run: &OverloadRun<'_>, buckets: &[Bucket]) -> Summary {
    let (s, e) = run.outage.unwrap_or((0, run.end_us + 1));
    let mut sum = Summary::default();
    for b in buckets {
        sum.operations += b.offered as u64;
        sum.attempts += b.attempts as u64;
        sum.service_attempts += b.service_attempts as u64;
        sum.goodput += b.goodput as u64;
    }
    let mut last_ok = 0;
    // The outage's operations and attempts, from the observations' own times.
    for x in run.history {
        let inside = s <= x.at_us && x.at_us < e;
        if inside && run.reaches_service(&x.obs) {
            sum.outage_service_attempts += 1;
        }
        match x.obs {
            Obs::Offered { .. } if inside => sum.outage_operations += 1,
            Obs::Attempted { .. } if inside => sum.outage_attempts += 1,
            Obs::Forwarded { tier, .. } => sum.tier_attempts[(tier as usize).min(3)] += 1,
            Obs::Finished { ok: true, .. } => last_ok = x.at_us,
            _ => {}
        }
    }
    sum.done_us = (sum.goodput == sum.operations && sum.operations > 0).then_some(last_ok);
    if run.outage.is_some() {
        sum.outage = true;
        (sum.recovery_us, sum.short_from) = recovered(run, buckets, e);
    }
    sum
}

/// Buckets of a suffix window: shorter windows are too noisy to judge.
const MIN_WINDOW: usize = 4;

/// Goodput is back from bucket `r` on when, for every window from a bucket at or after `r` to
/// the end of arrivals (at least `MIN_WINDOW` buckets long), the operations that arrived in it
/// and succeeded are at least `goodput_fraction` of what the service could do: the operations
/// that arrived, or its capacity if that is lower. (Counting each operation by its arrival, not
/// by when it succeeded, keeps the random arrivals from looking like lost goodput.) Returns the
/// time from `end` (the outage's end) to the first such `r`, and the bucket where the last
/// shortfall began; `(None, Some(b))` if goodput was never back.
fn recovered(run: &OverloadRun<'_>, buckets: &[Bucket], end: u64) -> (Option<u64>, Option<usize>) {
    let w = run.bucket_us;
    let first = (end.div_ceil(w) as usize).min(buckets.len());
    let last = ((run.arrivals_end_us.min(run.end_us) / w) as usize).min(buckets.len()).max(first);
    let (mut offered, mut ok, mut short) = (0u64, 0u64, None);
    for b in (first..last).rev() {
        offered += buckets[b].offered as u64;
        ok += buckets[b].arrived_ok as u64;
        let len = last - b;
        if len >= MIN_WINDOW && (ok as f64) < run.goodput_fraction * (offered as f64).min(run.capacity_per_bucket * len as f64) {
            short = Some(b);
            break;
        }
    }
    match short {
        None => (Some(first as u64 * w - end), None),
        Some(b) if b + MIN_WINDOW < last => (Some((b as u64 + 1) * w - end), Some(b)),
        Some(b) => (None, Some(b)),
    }
}

fn bucket_name(i: usize, w: u64) -> String {
    format!("bucket {i} ({} to {})", ms(i as u64 * w), ms((i as u64 + 1) * w))
}

/// Every overload checker: `recovery`, `availability`, then `settles`.
pub fn check(run: &OverloadRun<'_>) -> Verdict {
    thread_local!(static BUF: std::cell::RefCell<Vec<Bucket>> = const { std::cell::RefCell::new(Vec::new()) });
    BUF.with_borrow_mut(|b| {
        buckets(run, b);
        let s = summarize(run, b);
        Violation::combine([recovery(run, b, &s), availability(run), settles(run)].into_iter().flatten().collect())
    })
}

/// `settles` on the overload path: every operation comes to an end (it succeeds, or its client
/// gives up and tells its user, or a crash of the fleet drops it) within `settle_bound_us` of the
/// latest of its arrival, the heal and the outage's end; and the run does not reach its time
/// limit with work still pending. A client without a timeout fails it: a request swallowed by
/// a silent outage or a lost message leaves its operation waiting for ever.
pub fn settles(run: &OverloadRun<'_>) -> Option<Violation> {
    if !run.liveness {
        return None;
    }
    thread_local!(static OPEN: std::cell::RefCell<OpenOps> = const { std::cell::RefCell::new(OpenOps(Vec::new())) });
    OPEN.with_borrow_mut(|open| settles_with(run, open))
}

/// The operations not yet ended, per client: `(op, index of its arrival)`. A client has few
/// open at once, so a short list each beats a map of them all (a `BTreeMap` was 9% of a fleet
/// run's time). Per-thread, so a passing run allocates nothing here once warm.
struct OpenOps(Vec<Vec<(u32, usize)>>);

impl OpenOps {
    fn insert(&mut self, (client, op): (u32, u32), i: usize) {
        if self.0.len() <= client as usize {
            self.0.resize_with(client as usize + 1, Vec::new);
        }
        let ops = &mut self.0[client as usize];
        match ops.iter_mut().find(|o| o.0 == op) {
            Some(o) => o.1 = i,
            None => ops.push((op, i)),
        }
    }
    fn remove(&mut self, (client, op): (u32, u32)) -> bool {
        let Some(ops) = self.0.get_mut(client as usize) else { return false };
        let found = ops.iter().position(|o| o.0 == op);
        found.map(|k| ops.swap_remove(k)).is_some()
    }
    fn len(&self) -> usize {
        self.0.iter().map(Vec::len).sum()
    }
    /// The open operation that arrived first.
    fn first(&self) -> Option<(u32, u32)> {
        let all = self.0.iter().enumerate().flat_map(|(c, ops)| ops.iter().map(move |&(op, i)| (i, (c as u32, op))));
        all.min().map(|(_, k)| k)
    }
}

fn settles_with(run: &OverloadRun<'_>, open: &mut OpenOps) -> Option<Violation> {
    open.0.iter_mut().for_each(Vec::clear);
    let h = run.history;
    let outage_end = run.outage.map_or(0, |o| o.1);
    let mut late = None;
    for (i, e) in h.iter().enumerate() {
        match e.obs {
            Obs::Offered { client, op } => open.insert((client, op), i),
            Obs::Finished { client, op, arrived_us, .. } => {
                let deadline = arrived_us.max(run.heal_at_us).max(outage_end) + run.settle_bound_us;
                if open.remove((client, op)) && e.at_us > deadline && late.is_none() {
                    late = Some(((client, op), i, deadline));
                }
            }
            _ => {}
        }
    }
    for &k in run.forgotten {
        open.remove(k);
    }
    let first_open = open.first();
    if run.end == RunEnd::TimeLimit {
        let detail = match first_open {
            Some(k) => format!("{} operations never settled; the first, {}", open.len(), story(h, k)),
            None => "every operation had settled, but events kept coming (a livelock or a retry loop that never stops)".into(),
        };
        let events = first_open.map(|k| op_events(h, k)).unwrap_or_default();
        return Some(Violation::new(
            SETTLES,
            format!("the run hit its time limit at {} with events still pending: {detail}. ", ms(run.end_us)),
            events,
        ));
    }
    if let Some(k) = first_open {
        let message = format!("{}: the run went quiet with its client still waiting (no answer and no timeout to end it). ", story(h, k));
        return Some(Violation::new(SETTLES, message, op_events(h, k)));
    }
    let ((client, op), i, deadline) = late?;
    let outage = run.outage.map_or(String::new(), |o| format!(" and the outage's end at {}", ms(o.1)));
    let message = format!(
        "{}, and settled only at {}, past its bound at {} ({} after the latest of its arrival, the heal at {}{outage}). ",
        story(h, (client, op)),
        ms(h[i].at_us),
        ms(deadline),
        ms(run.settle_bound_us),
        ms(run.heal_at_us)
    );
    Some(Violation::new(SETTLES, message, op_events(h, (client, op))))
}

/// The history entries of operation `key`: its arrival, attempts, timeouts and end.
fn op_events(h: &[Entry<Obs>], key: (u32, u32)) -> Vec<usize> {
    let about = |o: &Obs| match *o {
        Obs::Offered { client, op } | Obs::Attempted { client, op, .. } | Obs::AttemptTimedOut { client, op, .. } => (client, op) == key,
        Obs::Finished { client, op, .. } => (client, op) == key,
        _ => false,
    };
    h.iter().enumerate().filter(|(_, e)| about(&e.obs)).map(|(i, _)| i).collect()
}

/// "client C operation O arrived at T, its client sent N attempts (the last at T2), K timed out".
fn story(h: &[Entry<Obs>], key: (u32, u32)) -> String {
    let (mut arrived, mut attempts, mut last, mut timeouts) = (0, 0, 0, 0);
    for i in op_events(h, key) {
        match h[i].obs {
            Obs::Offered { .. } => arrived = h[i].at_us,
            Obs::Attempted { .. } => (attempts, last) = (attempts + 1, h[i].at_us),
            Obs::AttemptTimedOut { .. } => timeouts += 1,
            _ => {}
        }
    }
    format!(
        "client {} operation {} arrived at {}, its client sent {attempts} attempts (the last at {}) and saw {timeouts} of them time out",
        key.0,
        key.1,
        ms(arrived),
        ms(last)
    )
}

/// `recovery`: amplification during the outage under the bound, and goodput back to the target
/// within `recovery_us` of the outage's end.
pub fn recovery(run: &OverloadRun<'_>, buckets: &[Bucket], s: &Summary) -> Option<Violation> {
    let w = run.bucket_us;
    let mut parts = Vec::new();
    if s.outage_amplification() > run.amplification_max {
        let (lo, hi) = run.outage.unwrap_or((0, run.end_us + 1));
        let window = (lo / w) as usize..((hi.div_ceil(w)) as usize).min(buckets.len());
        let amp = |b: &Bucket| b.service_attempts as f64 / b.offered.max(1) as f64;
        let peak = window.clone().max_by(|&a, &b| amp(&buckets[a]).total_cmp(&amp(&buckets[b]))).unwrap_or(0);
        let (mut att, mut ops, mut broke) = (0u64, 0u64, None);
        for i in window {
            att += buckets[i].service_attempts as u64;
            ops += buckets[i].offered as u64;
            if broke.is_none() && att as f64 > run.amplification_max * ops.max(1) as f64 {
                broke = Some(i);
            }
        }
        let pb = &buckets[peak];
        // With tiers in between, what is bounded is what reaches the service.
        let what = if run.tiers == 0 { "attempts" } else { "requests at the service" };
        let per_tier = if run.tiers == 0 {
            String::new()
        } else {
            let calls: Vec<String> = s.tier_attempts[..run.tiers as usize].iter().map(|n| n.to_string()).collect();
            format!("; over the run the clients sent {} requests and the tiers, outermost first, {}", s.attempts, calls.join(", "))
        };
        parts.push(format!(
            "retry amplification {:.2} {what} per operation during the outage ({} {what} for {} operations from {} to {}), over \
             the design's bound of {:.2}; the bound was first broken in {}; peak {:.1} in {} ({} {what} for {} operations, {} \
             answered 503); overall {:.2}{per_tier}",
            s.outage_amplification(),
            s.outage_service_attempts,
            s.outage_operations,
            ms(lo),
            ms(hi.min(run.end_us)),
            run.amplification_max,
            bucket_name(broke.unwrap_or(peak), w),
            amp(pb),
            bucket_name(peak, w),
            pb.service_attempts,
            pb.offered,
            pb.unavailable,
            s.service_attempts as f64 / s.operations.max(1) as f64
        ));
    }
    if let Some((_, end)) = run.outage {
        if s.recovery_us.is_none_or(|r| r > run.recovery_us) {
            let at = s.short_from.unwrap_or(0).min(buckets.len().saturating_sub(1));
            let first = (end.div_ceil(w) as usize).min(buckets.len());
            let last = ((run.arrivals_end_us.min(run.end_us) / w) as usize).min(buckets.len()).max(first);
            let shown: Vec<String> = buckets[first..last].iter().take(12).map(|b| format!("{}/{}", b.arrived_ok, b.offered)).collect();
            let b = &buckets[at];
            parts.push(format!(
                "no recovery: goodput was not back to {:.0}% of the load (or of capacity, {:.1} requests per {}) within {} of the \
                 outage's end at {}: {}; operations that succeeded / arrived per bucket after the end: [{}]; from {} on, the \
                 operations arriving fell short ({} attempts, {} successes, {} answered 503, {} timed out, queue up to {} in that bucket)",
                100.0 * run.goodput_fraction,
                run.capacity_per_bucket,
                ms(w),
                ms(run.recovery_us),
                ms(end),
                match s.recovery_us {
                    Some(r) => format!("it took {}", ms(r)),
                    None => format!("it never was, up to the end of arrivals at {}", ms(run.arrivals_end_us.min(run.end_us))),
                },
                shown.join(", "),
                bucket_name(at, w),
                b.attempts,
                b.goodput,
                b.unavailable,
                b.timeouts,
                b.queue_max
            ));
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(Violation::new(RECOVERY, parts.join(". ") + ". ", Vec::new()))
}

/// `availability`: no request waits longer than `starve_us` for a worker while half the pool or
/// more is held by requests blocked on another key in flight.
pub fn availability(run: &OverloadRun<'_>) -> Option<Violation> {
    let h = run.history;
    let (mut count, mut worst, mut first) = (0u64, None::<usize>, None::<usize>);
    let mut last_blocked = None;
    let mut blocked_before = None;
    for (i, e) in h.iter().enumerate() {
        match e.obs {
            Obs::Blocked { .. } => last_blocked = Some(i),
            Obs::Served { waited_us, blocked, .. } if starved(run, waited_us, blocked) => {
                count += 1;
                first.get_or_insert(i);
                let wait = |j: usize| match h[j].obs {
                    Obs::Served { waited_us, .. } => waited_us,
                    _ => 0,
                };
                if worst.is_none_or(|j| waited_us > wait(j)) {
                    worst = Some(i);
                    blocked_before = last_blocked;
                }
            }
            _ => {}
        }
    }
    let (worst, first) = (worst?, first?);
    let Obs::Served { client, op, waited_us, blocked, queue } = h[worst].obs else { unreachable!() };
    let holder = match blocked_before.map(|j| (j, h[j].obs)) {
        Some((j, Obs::Blocked { client, op, .. })) => {
            format!("; the last worker taken before it went to a retry of client {client} operation {op} at {}, blocked on its own key in flight", ms(h[j].at_us))
        }
        _ => String::new(),
    };
    let message = format!(
        "starved: {count} requests waited longer than {} for a worker while half the workers or more were held by requests \
         blocked on a key in flight; the worst, client {client} operation {op}, waited {} and started at {} with {blocked} of {} workers blocked and \
         {queue} requests still queued{holder}; the first starved request started in {}. ",
        ms(run.starve_us),
        ms(waited_us),
        ms(h[worst].at_us),
        run.workers,
        bucket_name((h[first].at_us / run.bucket_us) as usize, run.bucket_us)
    );
    let events = blocked_before.into_iter().chain([first, worst]).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    Some(Violation::new(AVAILABILITY, message, events))
}

#[cfg(test)]
mod tests;
