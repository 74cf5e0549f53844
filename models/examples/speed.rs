//! Runs/s of one preset on 1 and 2 threads: `cargo run --release -p models --example speed -- bench/five-charges 500000`.
fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "bench/five-charges".into());
    let runs: u64 = std::env::args().nth(2).and_then(|a| a.parse().ok()).unwrap_or(500_000);
    let s = models::presets::get(&name).expect("preset");
    for threads in [1, 2, 1, 2] {
        let t = std::time::Instant::now();
        let r = s.explore(0..runs, threads, None);
        let secs = t.elapsed().as_secs_f64();
        println!("{name} threads {threads}: {:.0} runs/s, {:.2} M events/s", r.runs as f64 / secs, r.stats.events as f64 / secs / 1e6);
    }
}
