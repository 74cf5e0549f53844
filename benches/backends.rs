//! Native vs madsim on DESIGN.md's benchmark scenario, `bench/five-charges`, in one process on
//! one thread: runs per second of each backend (median of several repetitions) and the ratio.
//!
//!     cargo bench --bench backends
//!
//! Environment: IDEMSIM_BENCH_REPS (default 5), IDEMSIM_BENCH_SECS (seconds per repetition and
//! backend, default 2).

use sim::{Model, Sim};
use std::time::{Duration, Instant};

/// Runs seeds from `next` until `budget` has passed; returns runs per second.
fn measure(budget: Duration, next: &mut u64, mut run: impl FnMut(u64) -> bool) -> f64 {
    let t = Instant::now();
    let mut runs = 0u64;
    let mut violations = 0u64;
    while t.elapsed() < budget {
        // Check the clock every 64 runs only: native runs take about a microsecond.
        for _ in 0..64 {
            violations += !run(*next) as u64;
            *next += 1;
            runs += 1;
        }
    }
    assert_eq!(violations, 0, "bench/five-charges is a correct design");
    runs as f64 / t.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this as a smoke test.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let env = |k: &str, d: f64| std::env::var(k).ok().and_then(|s| s.parse().ok()).unwrap_or(d);
    let reps = if smoke { 1 } else { env("IDEMSIM_BENCH_REPS", 5.0) as usize };
    let budget = Duration::from_secs_f64(if smoke { 0.05 } else { env("IDEMSIM_BENCH_SECS", 2.0) });
    let scenario = models::presets::get("bench/five-charges").expect("the bench preset exists");
    let model = scenario.model();
    let mut sim = Sim::new();
    let (mut native, mut madsim) = (Vec::new(), Vec::new());
    let (mut seed_n, mut seed_m) = (0u64, 0u64);
    for rep in 0..reps {
        let n = measure(budget, &mut seed_n, |s| sim.run_seed(&model, s).verdict.is_pass());
        let m = measure(budget, &mut seed_m, |s| sim::run_madsim(&model, s).verdict.is_pass());
        println!("rep {}: native {:>10.0} runs/s  madsim {:>8.0} runs/s  ratio {:>6.1}x", rep + 1, n, m, n / m);
        native.push(n);
        madsim.push(m);
    }
    let (n, m) = (median(native), median(madsim));
    println!(
        "bench/five-charges, 1 thread, {} nodes, median of {reps} x {:.1} s per backend:",
        model.config().nodes.len(),
        budget.as_secs_f64()
    );
    println!("  native  {n:>10.0} runs/s");
    println!("  madsim  {m:>10.0} runs/s");
    println!("  ratio   {:>10.1}x (target: at least 15x)", n / m);
}
