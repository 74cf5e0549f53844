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

/// Seeds per preset for the per-seed comparisons below (each seed runs on both backends).
const PLAN_SEEDS: std::ops::Range<u64> = 0..150;

/// What of a run's faults is comparable across backends, per seed. Both backends draw the fault
/// profile (swarm) and the fault plan first, from `Choices::seeded(seed)`, before any handler
/// runs: those must be identical. After that the choice streams part (madsim runs ready tasks
/// in its own RNG's order, so a loss or delay draw falls on another message), so which
/// messages are lost or duplicated, restart delays and writes lost differ per seed and
/// are compared only in aggregate (the verdict test above). What the plan alone decides must
/// agree: every planned partition strikes, on its node, in its direction; a node's only planned
/// crash strikes, of its kind, and is followed by a restart; a pause strikes on a node that never
/// crashes (elsewhere it is skipped if the node happens to be down, which depends on a restart
/// delay drawn after the streams parted); and nothing strikes that was not planned.
fn struck_as_planned(plan: &[sim::PlannedFault], log: &[sim::FaultNote], at: &str) {
    use sim::{FaultKind, PlannedFault};
    let crashes = |n: usize| plan.iter().filter(|p| matches!(p, PlannedFault::Crash { node, .. } if *node == n)).count();
    let count = |f: &dyn Fn(&sim::FaultNote) -> bool| log.iter().filter(|n| f(n)).count();
    let nodes: std::collections::BTreeSet<usize> = plan.iter().map(|p| p.node()).collect();
    for &n in &nodes {
        let struck_crashes = count(&|f| f.node == n && matches!(f.kind, FaultKind::Crash { .. }));
        let restarts = count(&|f| f.node == n && f.kind == FaultKind::Restart);
        assert!(struck_crashes <= crashes(n) && restarts == struck_crashes, "{at}: node {n}'s crashes and restarts");
        if crashes(n) == 1 {
            assert_eq!(struck_crashes, 1, "{at}: node {n}'s one planned crash");
        }
        let pauses = plan.iter().filter(|p| matches!(p, PlannedFault::Pause { node, .. } if *node == n)).count();
        let struck_pauses = count(&|f| f.node == n && matches!(f.kind, FaultKind::Pause { .. }));
        assert!(struck_pauses <= pauses, "{at}: node {n}'s pauses");
        if crashes(n) == 0 {
            assert_eq!(struck_pauses, pauses, "{at}: node {n} never crashes, so every planned pause strikes");
        }
    }
    let mut cuts: Vec<_> =
        plan.iter().filter_map(|p| if let PlannedFault::Cut { node, dir, .. } = *p { Some((node, dir as u8)) } else { None }).collect();
    let mut struck: Vec<_> =
        log.iter().filter_map(|f| if let FaultKind::Partition { dir } = f.kind { Some((f.node, dir as u8)) } else { None }).collect();
    cuts.sort();
    struck.sort();
    assert_eq!(cuts, struck, "{at}: partitions");
    for f in log {
        let planned = matches!(f.kind, FaultKind::Lost { .. } | FaultKind::Duplicated { .. }) || nodes.contains(&f.node);
        assert!(planned, "{at}: {f:?} struck but was not planned");
    }
}

#[test]
fn per_seed_both_backends_draw_the_same_fault_plan_and_it_strikes_alike() {
    let mut compared = 0;
    for preset in presets::all().into_iter().filter(|s| s.overload.is_none()) {
        for swarm in [false, true] {
            let scenario = models::Scenario { swarm, ..preset.clone() };
            let model = scenario.model();
            let mut native = sim::Sim::new();
            for seed in PLAN_SEEDS {
                let at = format!("{} (swarm {swarm}) seed {seed}", scenario.name);
                native.run_seed(&model, seed);
                let madsim = sim::run_madsim_full(&model, seed, false);
                assert_eq!(native.faults(), &madsim.faults, "{at}: the drawn fault profile");
                assert_eq!(native.fault_plan(), &madsim.plan[..], "{at}: the drawn fault plan");
                struck_as_planned(native.fault_plan(), native.fault_log(), &format!("{at}, native"));
                struck_as_planned(&madsim.plan, &madsim.fault_log, &format!("{at}, madsim"));
                compared += !madsim.plan.is_empty() as u32;
            }
        }
    }
    assert!(compared > 1_000, "only {compared} runs had planned faults");
}

/// A run is a pure function of its seed on either backend: two runs of a seed draw the same
/// choices, draw for draw (on madsim too, although madsim's own RNG orders its tasks: it is
/// seeded with the same seed). On a failure the message names the first draw that differs.
/// Across backends the streams agree at least until the plan is drawn.
#[test]
fn a_seed_draws_the_same_choices_twice_on_each_backend() {
    use sim::ChoiceKind::{Crash, FaultShape, Partition, Pause, Swarm};
    for name in ["payment/setnx-everysec", "payment/lease-shorter-than-pause", "outbox/no-inbox", "chain/checkout"] {
        let model = models::Scenario { swarm: true, ..presets::get(name).expect("preset") }.model();
        let native_run = |seed| {
            let mut s = sim::Sim::new();
            s.choices.set_recording(true);
            s.run_seed(&model, seed);
            s.choices.recorded().to_vec()
        };
        for seed in 0..10 {
            let (a, b) = (native_run(seed), native_run(seed));
            assert!(sim::first_divergence(&a, &b).is_none(), "{name} seed {seed}, native: {}", sim::first_divergence(&a, &b).unwrap());
            let (ma, mb) = (sim::run_madsim_full(&model, seed, true).choices, sim::run_madsim_full(&model, seed, true).choices);
            assert!(!ma.is_empty());
            assert!(sim::first_divergence(&ma, &mb).is_none(), "{name} seed {seed}, madsim: {}", sim::first_divergence(&ma, &mb).unwrap());
            let plan_draws = a.iter().position(|c| !matches!(c.kind, Swarm | Crash | Pause | Partition | FaultShape)).unwrap_or(a.len());
            if let Some(d) = sim::first_divergence(&a, &ma) {
                assert!(d.index >= plan_draws, "{name} seed {seed}: the backends part inside the fault plan: {d}");
            }
        }
    }
}
