//! The payment benchmark (`bench/five-charges` by default). Asserts nothing about time.
//!
//! ```text
//! cargo run --release -p models --example speed -- bench/five-charges 500000            # 1 and 2 threads, 2 reps
//! cargo run --release -p models --example speed -- bench/five-charges 500000 --reps 7   # medians of 7 reps each
//! cargo run --release -p models --example speed -- bench/five-charges 200000 --threads 1 --reps 1   # for callgrind/perf
//! cargo run --release -p models --example speed -- bench/five-charges 100000 --alloc    # allocations per run
//! cargo run --release -p models --example speed -- bench/five-charges 10000000 --memory # VmHWM over a long run
//! cargo run --release -p models --example speed -- --hashes 20000                       # determinism fingerprint
//! ```
//!
//! `--hashes N` prints, for every preset with swarm mode off and on, the `hash_xor` (and counts)
//! of seeds `0..N`: a change to the engine or the models that keeps these lines identical ran
//! identical histories.
use sim::{Model, Sim};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Counts every allocation (alloc, alloc_zeroed, realloc).
struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc(l)
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.alloc_zeroed(l)
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Relaxed);
        System.realloc(p, l, new_size)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        System.dealloc(p, l)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.load(Relaxed)
}

/// A /proc/self/status field in kB (Linux).
fn proc_status_kb(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time (user + system) of this process so far, in seconds (getrusage; Linux x86_64 layout).
fn cpu_secs() -> f64 {
    #[repr(C)]
    struct Rusage {
        utime: [i64; 2],
        stime: [i64; 2],
        rest: [i64; 14],
    }
    extern "C" {
        fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
    let mut r = Rusage { utime: [0; 2], stime: [0; 2], rest: [0; 14] };
    // SAFETY: `r` is a valid, writable `struct rusage`; RUSAGE_SELF = 0.
    if unsafe { getrusage(0, &mut r) } != 0 {
        return f64::NAN;
    }
    (r.utime[0] + r.stime[0]) as f64 + (r.utime[1] + r.stime[1]) as f64 / 1e6
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn main() {
    let mut pos = Vec::new();
    let (mut reps, mut threads, mut alloc, mut memory, mut hashes) = (2usize, vec![1usize, 2], false, false, None::<u64>);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--threads" => threads = args.next().expect("--threads 1,2").split(',').map(|t| t.parse().expect("thread count")).collect(),
            "--alloc" => alloc = true,
            "--memory" => memory = true,
            "--hashes" => hashes = Some(args.next().and_then(|v| v.parse().ok()).expect("--hashes N")),
            _ => pos.push(a),
        }
    }
    if let Some(n) = hashes {
        return print_hashes(n);
    }
    let name = pos.first().cloned().unwrap_or_else(|| "bench/five-charges".into());
    let runs: u64 = pos.get(1).and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let s = models::presets::get(&name).expect("preset");
    if alloc {
        return alloc_phase(&s, runs);
    }
    if memory {
        return memory_phase(&s, runs);
    }
    // Per thread count: runs/s, events/s (wall clock), runs per CPU-second.
    #[allow(clippy::type_complexity)]
    let mut per: Vec<(usize, Vec<f64>, Vec<f64>, Vec<f64>)> = threads.iter().map(|&t| (t, Vec::new(), Vec::new(), Vec::new())).collect();
    let mut hash = None;
    let mut events_per_run = 0.0;
    for _ in 0..reps {
        for (t, rs, es, cs) in &mut per {
            let (start, cpu0) = (Instant::now(), cpu_secs());
            let r = s.explore(0..runs, *t, None);
            let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_secs() - cpu0);
            assert!(hash.is_none_or(|h| h == r.hash_xor), "hash_xor differs between thread counts");
            hash = Some(r.hash_xor);
            events_per_run = r.stats.events as f64 / r.runs as f64;
            rs.push(r.runs as f64 / secs);
            es.push(r.stats.events as f64 / secs);
            cs.push(r.runs as f64 / cpu);
            println!(
                "{name} threads {t}: {:.0} runs/s, {:.2} M events/s ({events_per_run:.1} events/run); {:.0} runs per CPU-second",
                r.runs as f64 / secs,
                r.stats.events as f64 / secs / 1e6,
                r.runs as f64 / cpu
            );
        }
    }
    let base = per.first().map(|(_, rs, _, _)| median(&mut rs.clone())).unwrap_or(1.0);
    println!("medians of {reps} reps of {runs} runs, {events_per_run:.1} events/run (hash_xor {:#018x}):", hash.unwrap_or(0));
    for (t, rs, es, cs) in &mut per {
        let (lo, hi) = (rs.iter().cloned().fold(f64::MAX, f64::min), rs.iter().cloned().fold(0.0, f64::max));
        let m = median(rs);
        println!(
            "  threads {t}: {m:.0} runs/s (min {lo:.0}, max {hi:.0}), {:.2} M events/s, {:.2}x of {} thread(s); {:.0} runs per CPU-second",
            median(es) / 1e6,
            m / base,
            threads[0],
            median(cs)
        );
    }
}

/// Allocations of one warm `Sim` over `runs` runs (after 10,000 warm-up runs), then of a whole
/// `explore` call on one thread.
fn alloc_phase(s: &models::scenario::Scenario, runs: u64) {
    let model = s.model();
    let mut sim: Sim<<models::payment::PaymentModel as Model>::Actor> = Sim::new();
    for seed in 0..10_000 {
        sim.run_seed(&model, seed);
    }
    let a0 = allocs();
    let mut events = 0;
    for seed in 10_000..10_000 + runs {
        events += sim.run_seed(&model, seed).stats.events;
    }
    let n = allocs() - a0;
    println!("run_seed, warm Sim: {n} allocations in {runs} runs ({events} events): {:.4} per run", n as f64 / runs as f64);
    let a0 = allocs();
    let r = s.explore(0..runs, 1, None);
    let n = allocs() - a0;
    println!("explore(0..{runs}, 1 thread): {n} allocations: {:.4} per run", n as f64 / r.runs as f64);
}

/// One reused `Sim` over seeds `0..runs` on one thread; VmHWM before, after a tenth, and at the end.
fn memory_phase(s: &models::scenario::Scenario, runs: u64) {
    let model = s.model();
    let mut sim: Sim<<models::payment::PaymentModel as Model>::Actor> = Sim::new();
    let show = |what: &str, runs_done: u64, a0: u64| {
        println!(
            "{what:>16}: VmHWM {} kB, VmRSS {} kB, allocations since start {}",
            proc_status_kb("VmHWM:").unwrap_or(0),
            proc_status_kb("VmRSS:").unwrap_or(0),
            allocs() - a0
        );
        let _ = runs_done;
    };
    let a0 = allocs();
    show("before", 0, a0);
    let start = Instant::now();
    let mut hash = 0;
    for seed in 0..runs {
        hash ^= sim.run_seed(&model, seed).history_hash;
        if seed + 1 == runs / 10 {
            show(&format!("after {}", seed + 1), seed + 1, a0);
        }
    }
    show(&format!("after {runs}"), runs, a0);
    let secs = start.elapsed().as_secs_f64();
    println!("{runs} runs in {secs:.1} s: {:.0} runs/s (hash_xor {hash:#018x})", runs as f64 / secs);
}

/// Every preset, swarm off and on: the report's fingerprint over seeds `0..n` (2 threads).
fn print_hashes(n: u64) {
    for mut s in models::presets::all() {
        for swarm in [false, true] {
            s.swarm = swarm;
            let r = s.explore(0..n, 2, None);
            println!(
                "{:40} swarm {:5} hash_xor {:#018x} violations {:6} time_limited {:5} events {:10} choices {:10} first {:?}",
                s.name,
                swarm,
                r.hash_xor,
                r.violations,
                r.time_limited,
                r.stats.events,
                r.stats.choices,
                r.first.as_ref().map(|f| (f.seed, f.history_hash))
            );
        }
    }
}
