//! The contention workload (AWS's "Exponential Backoff And Jitter"): a herd of 100 clients each
//! updating one row under optimistic concurrency, retrying conflicts under a backoff policy. The
//! ranking of the policies by total calls and by the time until every client has succeeded must
//! not depend on which seeds were drawn: README reports it with these numbers.

use models::knobs::Backoff;
use models::overload::presets::contention;
use models::presets;
use sim::Sim;
use std::ops::Range;

const POLICIES: [(Backoff, &str); 4] = [
    (Backoff::Exponential, "exponential (no jitter)"),
    (Backoff::EqualJitter, "equal jitter"),
    (Backoff::FullJitter, "full jitter"),
    (Backoff::Decorrelated, "decorrelated jitter"),
];

/// Mean calls (attempts) per run, mean time until every client had succeeded (over the runs in
/// which all did), and the runs in which some client never did.
#[derive(Copy, Clone, Debug)]
struct Mean {
    calls: f64,
    done_ms: f64,
    unfinished: u64,
}

fn measure(backoff: Backoff, seeds: Range<u64>) -> Mean {
    let mut s = presets::get("overload/contention").expect("preset");
    *s.overload_mut() = contention(backoff);
    let model = s.model();
    let (mut sim, mut buf) = (Sim::new(), Vec::new());
    let (mut calls, mut done, mut finished, mut unfinished) = (0u64, 0u64, 0u64, 0u64);
    let n = seeds.end - seeds.start;
    for seed in seeds {
        sim.run_seed(&model, seed);
        let sum = model.overload_buckets(&sim, &mut buf).expect("an overload run");
        calls += sum.attempts;
        match sum.done_us {
            Some(t) => (done, finished) = (done + t, finished + 1),
            None => unfinished += 1,
        }
    }
    Mean { calls: calls as f64 / n as f64, done_ms: done as f64 / 1e3 / finished.max(1) as f64, unfinished }
}

/// Policy indices into `POLICIES`, best (lowest) first.
fn ranking(means: &[Mean], key: impl Fn(&Mean) -> f64) -> Vec<usize> {
    let mut r: Vec<usize> = (0..means.len()).collect();
    r.sort_by(|&a, &b| key(&means[a]).total_cmp(&key(&means[b])));
    r
}

#[test]
fn the_jitter_ranking_on_the_contention_workload_is_stable_across_seed_ranges() {
    const PER_RANGE: u64 = 200;
    let ranges: Vec<Range<u64>> = (0..3).map(|i| i * 10_000..i * 10_000 + PER_RANGE).collect();
    let mut by_calls = Vec::new();
    let mut by_time = Vec::new();
    for r in &ranges {
        let means: Vec<Mean> = std::thread::scope(|s| {
            let hs: Vec<_> = POLICIES
                .iter()
                .map(|&(b, _)| {
                    s.spawn({
                        let r = r.clone();
                        move || measure(b, r)
                    })
                })
                .collect();
            hs.into_iter().map(|h| h.join().expect("measured")).collect()
        });
        println!("seeds {}..{}:", r.start, r.end);
        for (m, (_, name)) in means.iter().zip(POLICIES) {
            println!("  {name:24} calls {:8.1}  all done at {:9.1} ms  runs not done {}", m.calls, m.done_ms, m.unfinished);
        }
        by_calls.push(ranking(&means, |m| m.calls));
        by_time.push(ranking(&means, |m| m.done_ms + 1e9 * m.unfinished as f64));
    }
    println!("by calls {by_calls:?}, by time {by_time:?}");
    assert!(by_calls.windows(2).all(|w| w[0] == w[1]), "ranking by calls changed with the seeds: {by_calls:?}");
    assert!(by_time.windows(2).all(|w| w[0] == w[1]), "ranking by time changed with the seeds: {by_time:?}");
}
