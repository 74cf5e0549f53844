//! Running a scenario: the one surface the command line, the tests and the benchmarks use.

use crate::payment::PaymentModel;
use crate::scenario::Scenario;
use sim::{Choice, ExploreReport, Outcome, Sim, TraceEvent};
use std::ops::Range;
use std::sync::atomic::AtomicU64;

/// Everything one run leaves for a person to read.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub outcome: Outcome,
    /// The timeline (empty unless tracing was asked for).
    pub trace: Vec<TraceEvent>,
    /// Observations in order: time, node, what (as `Debug` text).
    pub history: Vec<(u64, usize, String)>,
    /// Every choice the run made: replaying these values reproduces it.
    pub tape: Vec<Choice>,
    pub node_names: Vec<String>,
}

/// How a run's choices are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Seed(u64),
    Tape(Vec<u32>),
}

impl Scenario {
    pub fn model(&self) -> PaymentModel {
        PaymentModel::new(self)
    }

    /// Run seeds `seeds` on `threads` threads.
    pub fn explore(&self, seeds: Range<u64>, threads: usize, progress: Option<&AtomicU64>) -> ExploreReport {
        sim::explore(&self.model(), seeds, threads, progress)
    }

    /// One run, recorded in full (`trace`: with its timeline).
    pub fn record(&self, source: &Source, trace: bool) -> RunRecord {
        let model = self.model();
        let mut sim = Sim::new();
        sim.set_trace(trace);
        sim.choices.set_recording(true);
        let outcome = match source {
            Source::Seed(seed) => sim.run_seed(&model, *seed),
            Source::Tape(tape) => sim.run_tape(&model, tape),
        };
        RunRecord {
            history: sim.history().iter().map(|e| (e.at_us, e.node, format!("{:?}", e.obs))).collect(),
            trace: sim.trace().to_vec(),
            tape: sim.choices.recorded().to_vec(),
            node_names: sim::Model::config(&model).nodes.iter().map(|n| n.name.clone()).collect(),
            outcome,
        }
    }
}
