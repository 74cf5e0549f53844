//! The same actors on two independent deterministic schedulers: idemsim's own and madsim 0.2.
//! For every preset, both backends must reach the preset's verdict over the same seed range:
//! every correct design holds on both, every bug-zoo design is caught on both by its named
//! invariant (others may break in the same runs). A disagreement is a bug in one of the two
//! backends.

use models::run::Backend;
use models::{presets, Expect};
use sim::ExploreReport;

/// Seeds per preset and backend. The rarest bug-zoo trigger shows up in about 12% of runs on
/// either backend, so 1,500 seeds miss none; madsim runs about 2,000 of these runs/s per core.
const SEEDS: std::ops::Range<u64> = 0..1_500;
/// Overload presets are fleets (about 5,700 events a run, 250,000 for a retry storm): fewer
/// seeds. Their rarest bug (`overload/block-in-flight`) is caught in about half the runs.
const OVERLOAD_SEEDS: std::ops::Range<u64> = 0..20;

fn threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn describe(r: &ExploreReport) -> String {
    format!(
        "{} runs, {} violating {:?}, first {:?}",
        r.runs,
        r.violations,
        r.by_invariant,
        r.first.as_ref().map(|f| (f.seed, &f.violation.message))
    )
}

#[test]
fn every_preset_gets_the_same_verdict_on_native_and_madsim() {
    let mut table = Vec::new();
    for scenario in presets::all() {
        let seeds = if scenario.overload.is_some() { OVERLOAD_SEEDS } else { SEEDS };
        let native = scenario.explore_with(Backend::Native, seeds.clone(), threads(), None);
        let madsim = scenario.explore_with(Backend::Madsim, seeds.clone(), threads(), None);
        for (backend, r) in [(Backend::Native, &native), (Backend::Madsim, &madsim)] {
            assert_eq!(r.runs, seeds.end - seeds.start);
            match &scenario.expect {
                Expect::Pass => {
                    assert_eq!(r.violations, 0, "{} is a correct design but fails on {backend}: {}", scenario.name, describe(r))
                }
                // The benchmark's violation (a 6-attempt client giving up on a durable charge)
                // comes a few times in ten thousand runs: rare on both, never common.
                Expect::Violation(_) if scenario.name.starts_with("bench/") => {
                    assert!(r.violations * 100 < r.runs, "{} fails too often on {backend}: {}", scenario.name, describe(r))
                }
                Expect::Violation(inv) => {
                    assert!(
                        r.by_invariant.get(inv).is_some_and(|n| *n > 0),
                        "{} was not caught by {inv} on {backend}: {}",
                        scenario.name,
                        describe(r)
                    );
                }
            }
        }
        table.push(format!(
            "{:40} {:>20} native {:>4}/{} madsim {:>4}/{}",
            scenario.name,
            scenario.expect.to_string(),
            native.violations,
            native.runs,
            madsim.violations,
            madsim.runs
        ));
    }
    println!("{}", table.join("\n"));
}

#[test]
fn a_madsim_seed_replays_bit_for_bit() {
    for name in ["payment/durable-on-conflict", "payment/lease-shorter-than-pause", "payment/setnx-everysec"] {
        let model = presets::get(name).expect("preset").model();
        for seed in 0..20 {
            let a = sim::run_madsim(&model, seed);
            let b = sim::run_madsim(&model, seed);
            assert_eq!(a, b, "{name} seed {seed}");
        }
    }
}
