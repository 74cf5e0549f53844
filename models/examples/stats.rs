//! Mean events, messages and simulated time per run of each preset.
fn main() {
    let runs: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    for s in models::presets::all() {
        let r = s.explore(0..runs, 1, None);
        let n = r.runs as f64;
        println!(
            "{:40} events {:7.1} msgs {:6.1} choices {:6.1} sim {:8.1} ms time-limited {}",
            s.name,
            r.stats.events as f64 / n,
            r.stats.messages_sent as f64 / n,
            r.stats.choices as f64 / n,
            r.stats.sim_time_us as f64 / n / 1000.0,
            r.time_limited
        );
    }
}
