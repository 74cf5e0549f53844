//! Fault options as one plain struct of probabilities (TigerBeetle style), the nodes they may hit,
//! and swarm mode, which draws a fresh profile per seed so some runs have none of a fault and
//! others a lot.

use crate::actor::NodeId;
use crate::choices::{ChoiceKind, Choices};
use serde::{Deserialize, Serialize};

/// Rates and ranges of every fault the engine injects. Units are last in names.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultProfile {
    /// Every message takes a delay drawn uniformly from `delay_us_min..=delay_us_max`;
    /// reordering follows from overlapping delays.
    pub delay_us_min: u64,
    pub delay_us_max: u64,
    /// Probability that a message on a faulty link is lost.
    pub loss_probability: f64,
    /// Probability that a message on a faulty link is delivered twice (each copy its own delay).
    pub duplicate_probability: f64,
    /// Per crash slot of each crashable node: probability of a *machine* crash (kernel panic,
    /// power loss) once during the fault phase, at a uniformly drawn time. Volatile state and
    /// every write not fsynced are lost, the OS's page cache included.
    pub crash_probability: f64,
    /// Per crash slot not taken by a machine crash: probability of a *process* crash (OOM kill,
    /// SIGKILL, a deploy's restart). Volatile state is lost; what the process handed to the OS
    /// (`Ctx::write_os`: a Redis AOF write) survives, un-fsynced or not.
    pub process_crash_probability: f64,
    /// Crash slots per crashable node per run.
    pub crashes_per_node_max: u32,
    /// A crashed node restarts after a delay drawn from this range.
    pub restart_delay_us_min: u64,
    pub restart_delay_us_max: u64,
    /// Per pause slot of each pausable node: probability of a stall (a GC pause). Nothing is
    /// delivered to or fired on the node meanwhile; then it resumes with its stale state.
    pub pause_probability: f64,
    pub pauses_per_node_max: u32,
    pub pause_us_min: u64,
    pub pause_us_max: u64,
    /// Per partition slot of the run: probability that one node on a faulty link is cut off
    /// (both ways, or one way) for a drawn duration.
    pub partition_probability: f64,
    pub partitions_max: u32,
    pub partition_us_max: u64,
    /// Faults start only before this time; after it the run heals (no loss, duplication, new
    /// crashes, pauses or partitions) so liveness can be judged.
    pub fault_phase_us: u64,
}

impl Default for FaultProfile {
    fn default() -> Self {
        FaultProfile {
            delay_us_min: 1_000,
            delay_us_max: 10_000,
            loss_probability: 0.0,
            duplicate_probability: 0.0,
            crash_probability: 0.0,
            process_crash_probability: 0.0,
            crashes_per_node_max: 1,
            restart_delay_us_min: 1_000,
            restart_delay_us_max: 50_000,
            pause_probability: 0.0,
            pauses_per_node_max: 1,
            pause_us_min: 1_000,
            pause_us_max: 100_000,
            partition_probability: 0.0,
            partitions_max: 1,
            partition_us_max: 100_000,
            fault_phase_us: 1_000_000,
        }
    }
}

impl FaultProfile {
    /// No faults at all: fixed-range delays only.
    pub fn none() -> Self {
        Self::default()
    }

    /// Returns a description of the first impossible setting, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        let probs = [
            ("loss_probability", self.loss_probability),
            ("duplicate_probability", self.duplicate_probability),
            ("crash_probability", self.crash_probability),
            ("process_crash_probability", self.process_crash_probability),
            ("pause_probability", self.pause_probability),
            ("partition_probability", self.partition_probability),
        ];
        for (name, p) in probs {
            if !(0.0..=1.0).contains(&p) || p.is_nan() {
                return Err(format!("faults.{name} = {p} is not a probability; use a number from 0.0 to 1.0"));
            }
        }
        let ranges = [
            ("delay_us", self.delay_us_min, self.delay_us_max),
            ("restart_delay_us", self.restart_delay_us_min, self.restart_delay_us_max),
            ("pause_us", self.pause_us_min, self.pause_us_max),
        ];
        for (name, lo, hi) in ranges {
            if lo > hi {
                return Err(format!("faults.{name}_min = {lo} is larger than faults.{name}_max = {hi}; make min <= max"));
            }
        }
        // Each is drawn as a 32-bit choice.
        for (name, us) in [
            ("delay_us_max", self.delay_us_max),
            ("restart_delay_us_max", self.restart_delay_us_max),
            ("pause_us_max", self.pause_us_max),
            ("partition_us_max", self.partition_us_max),
            ("fault_phase_us", self.fault_phase_us),
        ] {
            // (A width of u32::MAX would overflow the draw's `width + 1`.)
            if us >= u32::MAX as u64 {
                return Err(format!("faults.{name} = {us}: delays and durations must be below 4294967295 µs (about 71 minutes)"));
            }
        }
        // Each slot is drawn in every run: a huge count is a typo, and would make every run slow.
        for (name, n) in [
            ("crashes_per_node_max", self.crashes_per_node_max),
            ("pauses_per_node_max", self.pauses_per_node_max),
            ("partitions_max", self.partitions_max),
        ] {
            if n > 100 {
                return Err(format!("faults.{name} = {n}: use 0 to 100 (presets: 1)"));
            }
        }
        Ok(())
    }

    /// Swarm mode: each probability is off half the time, else uniform in `0..=max`, where
    /// `max` is the larger of this profile's value and a generous default. Drawn through the
    /// run's choices, so the tape replays the drawn profile too.
    pub fn swarm(&self, choices: &mut Choices) -> FaultProfile {
        let mut p = self.clone();
        let mut draw = |configured: f64, generous: f64| -> f64 {
            if choices.pick(ChoiceKind::Swarm, 2) == 0 {
                return 0.0;
            }
            configured.max(generous) * choices.pick(ChoiceKind::Swarm, 1001) as f64 / 1000.0
        };
        p.loss_probability = draw(self.loss_probability, 0.3);
        p.duplicate_probability = draw(self.duplicate_probability, 0.2);
        p.crash_probability = draw(self.crash_probability, 0.5);
        p.pause_probability = draw(self.pause_probability, 0.5);
        p.partition_probability = draw(self.partition_probability, 0.3);
        p
    }
}

/// A node of the scenario and the faults it may suffer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeSpec {
    pub name: String,
    pub crashable: bool,
    pub pausable: bool,
    /// A link suffers loss, duplication and partitions only if both ends are lossy.
    pub lossy: bool,
}

impl NodeSpec {
    pub fn new(name: impl Into<String>) -> Self {
        NodeSpec { name: name.into(), crashable: false, pausable: false, lossy: false }
    }
    pub fn crashable(mut self, on: bool) -> Self {
        self.crashable = on;
        self
    }
    pub fn pausable(mut self, on: bool) -> Self {
        self.pausable = on;
        self
    }
    pub fn lossy(mut self, on: bool) -> Self {
        self.lossy = on;
        self
    }
}

/// Everything the engine needs to know about a scenario besides its actors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimConfig {
    pub nodes: Vec<NodeSpec>,
    pub faults: FaultProfile,
    /// Draw a fresh fault profile per seed (see `FaultProfile::swarm`).
    pub swarm: bool,
    /// The run stops here even if events remain; the outcome says so.
    pub time_limit_us: u64,
}

impl SimConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes.is_empty() {
            return Err("a scenario needs at least one node".into());
        }
        if self.nodes.len() > 64 {
            return Err(format!("{} nodes: at most 64 are supported", self.nodes.len()));
        }
        self.faults.validate()?;
        if self.time_limit_us <= self.faults.fault_phase_us {
            return Err(format!(
                "time_limit_us = {} must be larger than faults.fault_phase_us = {} so the run has a heal phase",
                self.time_limit_us, self.faults.fault_phase_us
            ));
        }
        Ok(())
    }
    pub fn name(&self, node: NodeId) -> &str {
        &self.nodes[node].name
    }
}
