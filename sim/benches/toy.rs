//! Engine benchmark (issue 2): the toy ping-pong model under a realistic fault profile.
//!
//! ```text
//! cargo bench -p sim --bench toy                    # full: 7 reps x {1,2} threads, 10M-run memory check
//! cargo bench -p sim --bench toy -- --quick         # a few seconds (or IDEMSIM_BENCH_QUICK=1)
//! cargo bench -p sim --bench toy -- --runs 100000 --reps 7 --long 2000000 --checkpoint 200000
//! cargo bench -p sim --bench toy -- --phase throughput   # only one phase (throughput|alloc|memory)
//! ```
//!
//! It prints, and asserts nothing about time:
//! 1. throughput: runs/s and events/s through `sim::explore` on 1 and 2 threads, the median of
//!    several repetitions each (1- and 2-thread repetitions interleaved), and the 2/1 ratio of the
//!    medians measured in this same process;
//! 2. allocation: a counting global allocator, read across a batch of runs of one warm `Sim`;
//! 3. memory: one reused `Sim` runs 10 million seeds on one thread; peak RSS (VmHWM) after the
//!    first million and after all of them shows whether memory stays flat.

use sim::toy::PingPongModel;
use sim::{explore, FaultProfile, Model, Sim};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Counts every allocation (alloc, alloc_zeroed, realloc) and the bytes asked for.
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static ALLOC_BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(l.size() as u64, Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        ALLOC_BYTES.fetch_add(new_size as u64, Relaxed);
        System.realloc(p, l, new_size)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> (u64, u64) {
    (ALLOCS.load(Relaxed), ALLOC_BYTES.load(Relaxed))
}

/// The bench scenario: 8 pings, 10% loss, 5% duplication, the pinger crashes with probability
/// 0.05 per run (at a uniform time in the 30 ms fault phase, restarting 1-50 ms later), delays
/// uniform 1-10 ms; the ponger ticks 10 times (timers) and the pinger fsyncs every 2 writes.
fn bench_model() -> PingPongModel {
    let faults = FaultProfile {
        delay_us_min: 1_000,
        delay_us_max: 10_000,
        loss_probability: 0.10,
        duplicate_probability: 0.05,
        crash_probability: 0.05,
        fault_phase_us: 30_000,
        ..FaultProfile::default()
    };
    let mut m = PingPongModel::new(8, faults);
    m.ticks = 10;
    m.fsync_every = 2;
    m.config.validate().expect("bench scenario is valid");
    m
}

struct Params {
    runs: u64,
    reps: usize,
    threads: Vec<usize>,
    long: u64,
    checkpoint: u64,
    alloc_runs: u64,
    phases: Vec<String>,
}

impl Params {
    fn from_env_and_args() -> Params {
        let quick = std::env::var("IDEMSIM_BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0");
        let mut p = Params {
            runs: 1_000_000,
            reps: 7,
            threads: vec![1, 2],
            long: 10_000_000,
            checkpoint: 1_000_000,
            alloc_runs: 100_000,
            phases: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        let mut quick = quick;
        let mut explicit: Vec<(String, u64)> = Vec::new();
        while let Some(a) = args.next() {
            let mut num = |name: &str| -> u64 {
                let v = args.next().unwrap_or_else(|| panic!("{name} needs a number"));
                v.replace('_', "").parse().unwrap_or_else(|_| panic!("{name} {v:?}: not a number"))
            };
            match a.as_str() {
                "--bench" => {} // cargo bench passes this to harness = false benches
                "--quick" => quick = true,
                "--runs" => explicit.push(("runs".into(), num("--runs"))),
                "--reps" => explicit.push(("reps".into(), num("--reps"))),
                "--long" => explicit.push(("long".into(), num("--long"))),
                "--checkpoint" => explicit.push(("checkpoint".into(), num("--checkpoint"))),
                "--alloc-runs" => explicit.push(("alloc_runs".into(), num("--alloc-runs"))),
                "--threads" => {
                    let v = args.next().expect("--threads needs a list like 1,2");
                    p.threads = v.split(',').map(|t| t.trim().parse().expect("--threads: numbers")).collect();
                }
                "--phase" => p.phases.push(args.next().expect("--phase needs throughput|alloc|memory")),
                "-h" | "--help" => {
                    println!(
                        "toy bench options: --quick | --runs N --reps N --threads 1,2 --long N --checkpoint N \
                         --alloc-runs N --phase throughput|alloc|memory (repeatable). Env IDEMSIM_BENCH_QUICK=1 = --quick."
                    );
                    std::process::exit(0);
                }
                other => panic!("unknown argument {other:?} (try --help)"),
            }
        }
        if quick {
            p.runs = 20_000;
            p.long = 200_000;
            p.checkpoint = 20_000;
            p.alloc_runs = 10_000;
        }
        for (k, v) in explicit {
            match k.as_str() {
                "runs" => p.runs = v,
                "reps" => p.reps = v as usize,
                "long" => p.long = v,
                "checkpoint" => p.checkpoint = v,
                _ => p.alloc_runs = v,
            }
        }
        p.checkpoint = p.checkpoint.min(p.long);
        if p.phases.is_empty() {
            p.phases = vec!["throughput".into(), "alloc".into(), "memory".into()];
        }
        p
    }
    fn wants(&self, phase: &str) -> bool {
        self.phases.iter().any(|p| p == phase)
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min_max(v: &[f64]) -> (f64, f64) {
    v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
}

/// A /proc/self/status field in kB (Linux); None elsewhere.
fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(field))?;
    line[field.len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

fn kb(v: Option<u64>) -> String {
    v.map_or("n/a".into(), |k| format!("{k} kB"))
}

fn si(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

fn throughput(model: &PingPongModel, p: &Params) {
    println!("## throughput: sim::explore(model, 0..{}, threads, None), {} repetitions per thread count", p.runs, p.reps);
    // Warm-up (page in code, grow the allocator's arenas).
    black_box(explore(model, 0..p.runs.min(20_000), *p.threads.iter().max().unwrap_or(&1), None));
    let mut rps: Vec<Vec<f64>> = vec![Vec::new(); p.threads.len()];
    let mut eps: Vec<Vec<f64>> = vec![Vec::new(); p.threads.len()];
    let mut hash: Option<(u64, u64)> = None;
    for rep in 0..p.reps {
        // Interleave thread counts, alternating the order, so drift on a noisy machine hits both.
        let order: Vec<usize> = if rep % 2 == 0 { (0..p.threads.len()).collect() } else { (0..p.threads.len()).rev().collect() };
        for i in order {
            let t = p.threads[i];
            let start = Instant::now();
            let r = explore(model, 0..p.runs, t, None);
            let secs = start.elapsed().as_secs_f64();
            assert_eq!(r.runs, p.runs);
            // The report must not depend on the thread count (a determinism check, not a timing one).
            match hash {
                None => hash = Some((r.hash_xor, r.stats.events)),
                Some(h) => assert_eq!(h, (r.hash_xor, r.stats.events), "explore's result depends on the thread count"),
            }
            rps[i].push(r.runs as f64 / secs);
            eps[i].push(r.stats.events as f64 / secs);
            eprintln!(
                "  rep {rep} threads {t}: {:.0} runs/s, {:.0} events/s ({secs:.3} s)",
                rps[i].last().unwrap(),
                eps[i].last().unwrap()
            );
        }
    }
    let (h, events) = hash.expect("at least one rep");
    println!();
    println!("events per run: {:.2}   (hash_xor {h:016x}, identical on every thread count)", events as f64 / p.runs as f64);
    println!();
    println!("| threads | runs/s (median) | runs/s (min..max) | events/s (median) | vs 1 thread |");
    println!("|--------:|----------------:|------------------:|------------------:|------------:|");
    let base = median(&rps[0]);
    for (i, &t) in p.threads.iter().enumerate() {
        let (lo, hi) = min_max(&rps[i]);
        println!(
            "| {t:>7} | {:>15} | {:>17} | {:>17} | {:>10.2}x |",
            format!("{:.0}", median(&rps[i])),
            format!("{}..{}", si(lo), si(hi)),
            format!("{:.0}", median(&eps[i])),
            median(&rps[i]) / base
        );
    }
    if p.threads.len() >= 2 {
        // Per-repetition ratios, paired within the same repetition: less sensitive to drift.
        let ratios: Vec<f64> = rps[1].iter().zip(&rps[0]).map(|(b, a)| b / a).collect();
        let (lo, hi) = min_max(&ratios);
        println!();
        println!(
            "ratio {}-thread / {}-thread: {:.2}x of medians; per-repetition paired ratios median {:.2}x (min {:.2}, max {:.2})",
            p.threads[1],
            p.threads[0],
            median(&rps[1]) / base,
            median(&ratios),
            lo,
            hi
        );
    }
    println!();
}

fn allocation(model: &PingPongModel, p: &Params) {
    println!("## allocation: counting global allocator, one warm Sim, runs {}..{}", 10_000, 10_000 + p.alloc_runs);
    let mut sim = Sim::new();
    for seed in 0..10_000 {
        black_box(sim.run_seed(model, seed));
    }
    let (a0, b0) = allocs();
    let mut events = 0u64;
    for seed in 10_000..10_000 + p.alloc_runs {
        events += black_box(sim.run_seed(model, seed)).stats.events;
    }
    let (a1, b1) = allocs();
    let (n, bytes) = (a1 - a0, b1 - b0);

    // What Model::build alone costs (it runs once per run, into the Sim's reused node vector).
    let mut nodes = Vec::with_capacity(model.config().nodes.len());
    let (c0, _) = allocs();
    for _ in 0..p.alloc_runs {
        nodes.clear();
        model.build(&mut nodes);
        black_box(&nodes);
    }
    let (c1, _) = allocs();

    // explore() on one thread: per-call setup (thread, report) on top of the runs.
    let (e0, _) = allocs();
    black_box(explore(model, 0..p.alloc_runs, 1, None));
    let (e1, _) = allocs();

    let runs = p.alloc_runs as f64;
    println!();
    println!("{} warm runs, {} events:", p.alloc_runs, events);
    println!();
    println!("| what                                               | allocations | per run | per event |");
    println!("|----------------------------------------------------|------------:|--------:|----------:|");
    println!(
        "| Sim::run_seed, reused Sim                          | {:>11} | {:>7.3} | {:>9.5} |",
        n,
        n as f64 / runs,
        n as f64 / events as f64
    );
    println!("| of which Model::build (toy: 2 actors, no heap)     | {:>11} | {:>7.3} |           |", c1 - c0, (c1 - c0) as f64 / runs);
    println!("| explore(.., 1 thread) incl. its per-call setup     | {:>11} | {:>7.3} |           |", e1 - e0, (e1 - e0) as f64 / runs);
    println!();
    println!("bytes allocated per run (Sim::run_seed): {:.1}", bytes as f64 / runs);
    println!();
}

fn memory(model: &PingPongModel, p: &Params) {
    println!("## memory: one reused Sim, Sim::run_seed over seeds 0..{} on one thread", p.long);
    let hwm0 = proc_status_kb("VmHWM:");
    let rss0 = proc_status_kb("VmRSS:");
    let (a0, _) = allocs();
    let mut sim = Sim::new();
    let mut x = 0u64;
    let mut events = 0u64;
    let start = Instant::now();
    let mut at_checkpoint = None;
    for seed in 0..p.long {
        let o = sim.run_seed(model, seed);
        x ^= o.history_hash;
        events += o.stats.events;
        if seed + 1 == p.checkpoint {
            at_checkpoint = Some((proc_status_kb("VmHWM:"), proc_status_kb("VmRSS:"), allocs().0 - a0));
        }
    }
    let secs = start.elapsed().as_secs_f64();
    black_box(x);
    let (a1, _) = allocs();
    let hwm1 = proc_status_kb("VmHWM:");
    let rss1 = proc_status_kb("VmRSS:");
    let (hwm_c, rss_c, allocs_c) = at_checkpoint.expect("checkpoint <= long");
    println!();
    println!("| point                      | VmHWM (peak RSS) | VmRSS      | allocations since start |");
    println!("|----------------------------|-----------------:|-----------:|------------------------:|");
    println!("| before the loop            | {:>16} | {:>10} | {:>23} |", kb(hwm0), kb(rss0), 0);
    println!("| after {:>12} runs     | {:>16} | {:>10} | {:>23} |", p.checkpoint, kb(hwm_c), kb(rss_c), allocs_c);
    println!("| after {:>12} runs     | {:>16} | {:>10} | {:>23} |", p.long, kb(hwm1), kb(rss1), a1 - a0);
    println!();
    let growth = match (hwm_c, hwm1) {
        (Some(a), Some(b)) => format!("{} kB", b as i64 - a as i64),
        _ => "n/a".into(),
    };
    println!(
        "peak RSS growth from run {} to run {}: {growth}; {:.1} s, {:.0} runs/s, {:.0} events/s on this one thread",
        p.checkpoint,
        p.long,
        secs,
        p.long as f64 / secs,
        events as f64 / secs
    );
    println!();
}

fn main() {
    let p = Params::from_env_and_args();
    let model = bench_model();
    let f = &model.config.faults;
    println!("# idemsim engine bench: toy ping-pong");
    println!(
        "scenario: {} pings, loss {}, duplication {}, crash_probability {} (pinger, fault phase {} ms), delay {}-{} ms, \
         {} ticks, fsync every {} writes; {} CPUs available",
        model.pings,
        f.loss_probability,
        f.duplicate_probability,
        f.crash_probability,
        f.fault_phase_us / 1000,
        f.delay_us_min / 1000,
        f.delay_us_max / 1000,
        model.ticks,
        model.fsync_every,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!();
    if p.wants("throughput") {
        throughput(&model, &p);
    }
    if p.wants("alloc") {
        allocation(&model, &p);
    }
    if p.wants("memory") {
        memory(&model, &p);
    }
}
