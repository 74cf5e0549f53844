//! Exploring many seeds: on T threads, one reusable simulator per thread, seeds handed out in
//! chunks. The report does not depend on the thread count: counts are sums and the reported
//! violation is the one with the lowest seed.

use crate::choices::{first_divergence, Divergence};
use crate::engine::{Outcome, Sim};
use crate::history::{stable_hash, RunEnd};
use crate::history::{Stats, Violation};
use crate::model::Model;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Part `index` (0-based) of `count` equal contiguous parts of a seed range, for fanning a search
/// out over machines; the parts' reports merge into the report of the whole range.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl Shard {
    /// Parses `K/N` with 1 <= K <= N (1-based, as users write it).
    pub fn parse(s: &str) -> Result<Shard, String> {
        let err = || format!("--shard {s:?}: expected K/N with 1 <= K <= N, e.g. --shard 2/8");
        let (k, n) = s.split_once('/').ok_or_else(err)?;
        let (k, n): (u64, u64) = (k.trim().parse().map_err(|_| err())?, n.trim().parse().map_err(|_| err())?);
        if k == 0 || n == 0 || k > n {
            return Err(err());
        }
        Ok(Shard { index: k - 1, count: n })
    }
    /// The part of `seeds` this shard runs.
    pub fn range(&self, seeds: Range<u64>) -> Range<u64> {
        let len = (seeds.end - seeds.start) as u128;
        let lo = seeds.start + (len * self.index as u128 / self.count as u128) as u64;
        let hi = seeds.start + (len * (self.index + 1) as u128 / self.count as u128) as u64;
        lo..hi
    }
}

/// The lowest failing seed of a search and what it violated.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Found {
    pub seed: u64,
    pub violation: Violation,
    pub history_hash: u64,
}

/// What exploring a seed range found.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExploreReport {
    pub runs: u64,
    pub violations: u64,
    /// Violating runs per invariant.
    pub by_invariant: BTreeMap<String, u64>,
    /// Runs that hit the time limit with events left.
    pub time_limited: u64,
    pub first: Option<Found>,
    pub stats: Stats,
    /// XOR of every run's history hash: equal reports ran identical histories.
    pub hash_xor: u64,
}

impl ExploreReport {
    /// Fold another report (of a disjoint seed range) into this one.
    pub fn merge(&mut self, o: ExploreReport) {
        self.runs += o.runs;
        self.violations += o.violations;
        for (k, v) in o.by_invariant {
            *self.by_invariant.entry(k).or_default() += v;
        }
        self.time_limited += o.time_limited;
        self.stats.add(&o.stats);
        self.hash_xor ^= o.hash_xor;
        if let Some(f) = o.first {
            if self.first.as_ref().is_none_or(|mine| f.seed < mine.seed) {
                self.first = Some(f);
            }
        }
    }
    /// Count one run of `seed`.
    pub fn record(&mut self, seed: u64, o: &Outcome) {
        self.runs += 1;
        self.stats.add(&o.stats);
        self.hash_xor ^= o.history_hash;
        self.time_limited += (o.end == RunEnd::TimeLimit) as u64;
        if let Some(v) = o.verdict.violation() {
            self.violations += 1;
            for i in v.invariants() {
                *self.by_invariant.entry(i.to_string()).or_default() += 1;
            }
            if self.first.as_ref().is_none_or(|f| seed < f.seed) {
                self.first = Some(Found { seed, violation: v.clone(), history_hash: o.history_hash });
            }
        }
    }
}

/// Run every seed of `seeds` on `threads` threads. `progress`, if given, counts finished runs
/// (a progress bar polls it from another thread).
pub fn explore<M: Model>(model: &M, seeds: Range<u64>, threads: usize, progress: Option<&AtomicU64>) -> ExploreReport {
    par_seeds(
        seeds,
        threads,
        progress,
        Sim::new,
        |sim, report: &mut ExploreReport, seed| report.record(seed, &sim.run_seed(model, seed)),
        ExploreReport::merge,
    )
}

/// The first seed whose two runs differed, and where (see `check_determinism`).
#[derive(Clone, Debug, PartialEq)]
pub struct Nondeterminism {
    pub seed: u64,
    /// The first draw the two runs' choice streams disagree on; `None` when they drew the same
    /// (then something outside the choices steered the run: a global, a map's order, a clock).
    pub divergence: Option<Divergence>,
    /// One sentence for a terminal: the seed, the first differing draw or observation.
    pub message: String,
}

/// Run every seed of `seeds` twice, once on a simulator reused from seed to seed (as `explore`
/// runs) and once on a fresh one, and compare outcomes, history hashes and the recorded choice
/// streams; return the lowest seed whose runs differ. A model that reads a global, iterates a
/// `HashMap`, reads the wall clock or keeps state from the run before (a buffer `rebuild`
/// forgot to reset) fails here, with the first draw (or observation) where the runs parted.
/// Costs about three runs per seed (the fresh simulator allocates); for tests and audits.
pub fn check_determinism<M: Model>(model: &M, seeds: Range<u64>, threads: usize) -> Option<Nondeterminism> {
    par_seeds(
        seeds,
        threads,
        None,
        || {
            let mut warm = Sim::new();
            warm.choices.set_recording(true);
            warm
        },
        |warm, found: &mut Option<Nondeterminism>, seed| {
            if found.as_ref().is_some_and(|f| f.seed < seed) {
                return;
            }
            let mut fresh = Sim::new();
            fresh.choices.set_recording(true);
            let (a, b) = (warm.run_seed(model, seed), fresh.run_seed(model, seed));
            if let Some(n) = compare_runs(seed, &a, warm, &b, &fresh) {
                *found = Some(n);
            }
        },
        |mine: &mut Option<Nondeterminism>, other| {
            if let Some(o) = other {
                if mine.as_ref().is_none_or(|m| o.seed < m.seed) {
                    *mine = Some(o);
                }
            }
        },
    )
}

/// `None` if two runs of `seed` were the same in every respect `check_determinism` compares.
fn compare_runs<A: crate::Actor>(seed: u64, a: &Outcome, sa: &Sim<A>, b: &Outcome, sb: &Sim<A>) -> Option<Nondeterminism> {
    let divergence = first_divergence(sa.choices.recorded(), sb.choices.recorded());
    if a == b && divergence.is_none() {
        return None;
    }
    let (ha, hb) = (sa.history(), sb.history());
    // Observations need not be `PartialEq`; they are `Hash`, and a stable hash tells them apart.
    let at = ha.iter().zip(hb).position(|(x, y)| stable_hash(x) != stable_hash(y)).unwrap_or(ha.len().min(hb.len()));
    let side = |h: &[crate::Entry<A::Obs>]| {
        h.get(at).map_or("nothing (the history ended)".to_string(), |e| format!("{:?} at {} µs on node {}", e.obs, e.at_us, e.node))
    };
    let observed = if at < ha.len().max(hb.len()) {
        format!("; observation #{at} differs: {} vs {}", side(ha), side(hb))
    } else {
        "; the histories are the same, the outcomes are not".to_string()
    };
    let drawn = match divergence {
        Some(d) => format!("{d}"),
        None => "both drew the same choices, so something outside them steered the run (a global, a HashMap's order, a clock, state kept from the run before)".to_string(),
    };
    let message = format!("seed {seed} ran differently twice (a reused simulator, then a fresh one): {drawn}{observed}");
    Some(Nondeterminism { seed, divergence, message })
}

/// The one parallel seed loop. Every seed of `seeds` runs on one of `threads` threads; each
/// thread has its own `worker` (a reusable simulator, say) and its own accumulator, which `run`
/// updates per seed; the accumulators are merged at the end. Seeds go out in chunks, so which
/// thread ran a seed varies: `run` and `merge` must make the result independent of that (sums,
/// minima), which is what keeps a report the same on any thread count. `progress` counts runs.
pub fn par_seeds<W, R: Default + Send>(
    seeds: Range<u64>,
    threads: usize,
    progress: Option<&AtomicU64>,
    worker: impl Fn() -> W + Sync,
    run: impl Fn(&mut W, &mut R, u64) + Sync,
    merge: impl Fn(&mut R, R) + Sync,
) -> R {
    const CHUNK: u64 = 64;
    let next = AtomicU64::new(seeds.start);
    let total = Mutex::new(R::default());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| {
                let mut w = worker();
                let mut mine = R::default();
                loop {
                    let lo = next.fetch_add(CHUNK, Ordering::Relaxed);
                    if lo >= seeds.end {
                        break;
                    }
                    let hi = (lo + CHUNK).min(seeds.end);
                    for seed in lo..hi {
                        run(&mut w, &mut mine, seed);
                    }
                    if let Some(p) = progress {
                        p.fetch_add(hi - lo, Ordering::Relaxed);
                    }
                }
                merge(&mut total.lock().expect("no thread panics while holding the lock"), mine);
            });
        }
    });
    total.into_inner().expect("threads joined")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_range_exactly_once() {
        for n in 1..9 {
            let mut next = 10;
            for k in 1..=n {
                let r = Shard::parse(&format!("{k}/{n}")).unwrap().range(10..1_010);
                assert_eq!(r.start, next);
                next = r.end;
            }
            assert_eq!(next, 1_010);
        }
    }

    #[test]
    fn bad_shards_are_refused() {
        for s in ["0/3", "4/3", "3", "a/b", "1/0", ""] {
            assert!(Shard::parse(s).is_err(), "{s}");
        }
    }
}
