//! Run the correct presets over many seeds: `cargo run --release -p models --example hold -- 200000`.
fn main() {
    let runs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let swarm = std::env::args().any(|a| a == "--swarm");
    for mut s in models::presets::all().into_iter().filter(|s| s.expect == models::Expect::Pass) {
        s.swarm = swarm;
        let t = std::time::Instant::now();
        let r = s.explore(0..runs, 2, None);
        println!(
            "{:40} runs {} violations {} {:?} ({:.0} runs/s)",
            s.name,
            r.runs,
            r.violations,
            r.by_invariant,
            r.runs as f64 / t.elapsed().as_secs_f64()
        );
        if let Some(f) = &r.first {
            println!("    seed {}: {}", f.seed, f.violation.message);
        }
    }
}
