//! The madsim backend on the toy model: delivery, faults, determinism.

use super::*;
use crate::toy::{Obs, PingPongModel};

fn count(h: &[Entry<Obs>], f: impl Fn(&Obs) -> bool) -> usize {
    h.iter().filter(|e| f(&e.obs)).count()
}

#[test]
fn ping_pong_without_faults_delivers_everything() {
    let model = PingPongModel::new(5, FaultProfile::none());
    let run = run_madsim_full(&model, 1, true);
    assert_eq!(run.outcome.end, RunEnd::Quiescent);
    assert_eq!(count(&run.history, |o| matches!(o, Obs::GotPing(_))), 5);
    assert_eq!(count(&run.history, |o| matches!(o, Obs::GotPong(_))), 5);
    assert_eq!(run.outcome.stats.messages_sent, 10);
    assert_eq!(run.outcome.stats.messages_delivered, 10);
    // End to end, a message takes the scenario's 1-10 ms (madsim's overhead included).
    let last = run.history.iter().map(|e| e.at_us).max().unwrap();
    assert!((2_000..=21_000).contains(&last), "{last}");
    assert!(!run.trace.is_empty());
}

#[test]
fn same_seed_same_history() {
    let model = PingPongModel::new(20, FaultProfile { loss_probability: 0.3, crash_probability: 0.5, ..FaultProfile::none() });
    for seed in 0..20 {
        assert_eq!(run_madsim(&model, seed), run_madsim(&model, seed), "seed {seed}");
    }
    let hashes: std::collections::BTreeSet<u64> = (0..20).map(|s| run_madsim(&model, s).history_hash).collect();
    assert!(hashes.len() > 10, "different seeds should give different histories");
}

#[test]
fn crash_keeps_durable_records_and_restarts() {
    let mut model = PingPongModel::new(50, FaultProfile { crash_probability: 1.0, ..FaultProfile::none() });
    model.config.faults.fault_phase_us = 20_000;
    model.fsync_every = 4;
    let mut recovered = 0;
    for seed in 0..30 {
        let run = run_madsim_full(&model, seed, false);
        assert_eq!(run.outcome.stats.crashes, 1, "seed {seed}");
        for e in &run.history {
            if let Obs::Recovered(n) = e.obs {
                recovered += 1;
                // Only fsynced pongs survive: a multiple of 4.
                assert_eq!(n % 4, 0, "seed {seed}");
            }
        }
    }
    assert_eq!(recovered, 30, "every crash is followed by a restart and on_start");
}

#[test]
fn a_paused_node_fires_nothing_until_it_resumes() {
    let mut model =
        PingPongModel::new(0, FaultProfile { pause_probability: 1.0, pause_us_min: 50_000, pause_us_max: 50_000, ..FaultProfile::none() });
    model.ticks = 200;
    for seed in 0..10 {
        let run = run_madsim_full(&model, seed, true);
        let pause = run.trace.iter().find_map(|t| match t.kind {
            TraceKind::Pause { until_us } => Some((t.at_us, until_us)),
            _ => None,
        });
        let (from, until) = pause.expect("the pause happens");
        let ticks: Vec<u64> = run.history.iter().filter(|e| matches!(e.obs, Obs::Tick(_))).map(|e| e.at_us).collect();
        assert!(ticks.iter().all(|&t| t <= from + 1 || t >= until), "seed {seed}: a tick inside the pause {from}..{until}");
        assert_eq!(ticks.len(), 200);
    }
}

#[test]
fn explore_matches_single_runs() {
    let model = PingPongModel::new(10, FaultProfile { loss_probability: 0.2, ..FaultProfile::none() });
    let r = explore_madsim(&model, 0..40, 2, None);
    assert_eq!(r.runs, 40);
    let xor = (0..40).fold(0, |x, s| x ^ run_madsim(&model, s).history_hash);
    assert_eq!(r.hash_xor, xor);
}

/// A partition cuts only links whose both ends are lossy, as natively: node 1 is declared
/// reliable, so the partition of node 0 (the only lossy node) cuts nothing. (madsim's `cut` once
/// lacked the both-ends-lossy check and lost messages here.)
#[test]
fn a_partition_does_not_cut_a_link_declared_reliable() {
    let faults = FaultProfile { partition_probability: 1.0, partition_us_max: 100_000, fault_phase_us: 10_000, ..FaultProfile::none() };
    let mut model = PingPongModel::new(20, faults);
    model.config.nodes[1].lossy = false;
    for seed in 0..20 {
        let run = run_madsim_full(&model, seed, false);
        assert_eq!(run.outcome.stats.partitions, 1, "seed {seed}: the partition happens");
        assert_eq!(run.outcome.stats.messages_lost, 0, "seed {seed}: a reliable link lost a message");
        assert_eq!(count(&run.history, |o| matches!(o, Obs::GotPong(_))), 20, "seed {seed}");
    }
}
