//! The preset catalogue of every path: the correct designs and the bug zoo, each with the
//! verdict it is expected to get. Each path keeps its presets beside its models
//! (`payment::presets`, `outbox::presets`, `chain::presets`). Names are fixed: scripts and the seed corpus depend
//! on them.

use crate::scenario::Scenario;
use sim::FaultProfile;

const MS: u64 = 1_000;

pub use crate::payment::presets::{bench_five_charges, setnx_always};

/// Every preset: the payment path's, then the outbox path's, then the whole chain, then the
/// overload path's.
pub fn all() -> Vec<Scenario> {
    let mut v = crate::payment::presets::all();
    v.extend(crate::outbox::presets::all());
    v.extend(crate::chain::presets::all());
    v.extend(crate::overload::presets::all());
    v
}

/// Every fault at once: what a correct design must survive.
pub fn full_faults() -> FaultProfile {
    FaultProfile {
        delay_us_min: MS,
        delay_us_max: 10 * MS,
        loss_probability: 0.1,
        duplicate_probability: 0.05,
        crash_probability: 0.2,
        process_crash_probability: 0.0,
        crashes_per_node_max: 1,
        restart_delay_us_min: MS,
        restart_delay_us_max: 50 * MS,
        pause_probability: 0.2,
        pauses_per_node_max: 1,
        pause_us_min: MS,
        pause_us_max: 100 * MS,
        partition_probability: 0.1,
        partitions_max: 1,
        partition_us_max: 100 * MS,
        fault_phase_us: 500 * MS,
    }
}

/// The preset of that name.
pub fn get(name: &str) -> Option<Scenario> {
    all().into_iter().find(|s| s.name == name)
}

/// The preset name closest to `name` (for "did you mean").
pub fn closest(name: &str) -> Option<String> {
    all().into_iter().map(|s| s.name).min_by_key(|n| edit_distance(n, name)).filter(|n| edit_distance(n, name) <= n.len() / 2)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for j in 0..b.len() {
            let cur = row[j + 1];
            row[j + 1] = (prev + (ca != b[j]) as usize).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
