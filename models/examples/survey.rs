//! Run every preset over a seed range and print its violation count (a quick survey).
fn main() {
    let runs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2_000);
    for s in models::presets::all() {
        let t = std::time::Instant::now();
        let r = s.explore(0..runs, 2, None);
        println!(
            "{:40} expect {:22} runs {} violations {} {:?} time-limited {} ({:.0} runs/s)",
            s.name,
            s.expect.to_string(),
            r.runs,
            r.violations,
            r.by_invariant,
            r.time_limited,
            r.runs as f64 / t.elapsed().as_secs_f64()
        );
        if let Some(f) = &r.first {
            println!("    seed {}: {}", f.seed, f.violation.message);
        }
    }
}
