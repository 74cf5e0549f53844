//! The fault plan: every crash, pause and partition of a run, drawn up front (before any
//! handler runs), all inside the fault phase. Both backends draw it here, from the run's
//! `Choices`, so one seed gives one plan whichever backend carries it out.

use super::links::Links;
use crate::actor::NodeId;
use crate::choices::{ChoiceKind, Choices};
use crate::faults::{FaultProfile, NodeSpec};
use crate::trace::{CrashKind, CutDir};
use serde::{Deserialize, Serialize};

/// A fault drawn before the run starts; times count from the run's start.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "fault", rename_all = "snake_case")]
pub enum PlannedFault {
    Crash { node: NodeId, at_us: u64, kind: CrashKind },
    Pause { node: NodeId, at_us: u64, until_us: u64 },
    Cut { node: NodeId, dir: CutDir, at_us: u64, len_us: u64 },
}

impl PlannedFault {
    pub fn node(&self) -> NodeId {
        match *self {
            PlannedFault::Crash { node, .. } | PlannedFault::Pause { node, .. } | PlannedFault::Cut { node, .. } => node,
        }
    }
}

/// Draw the plan into `plan` (cleared first; its buffer is reused). In untimed mode start times
/// are not drawn (0): a fault may strike at any point of the fault phase (see the exhaustive
/// explorer), so a drawn start would only multiply equivalent runs.
pub fn draw(nodes: &[NodeSpec], f: &FaultProfile, links: &Links, untimed: bool, choices: &mut Choices, plan: &mut Vec<PlannedFault>) {
    plan.clear();
    let phase = f.fault_phase_us as u32;
    let start = |c: &mut Choices| if untimed { 0 } else { c.pick(ChoiceKind::FaultShape, phase) as u64 };
    for (node, spec) in nodes.iter().enumerate() {
        for _ in 0..if spec.crashable { f.crashes_per_node_max } else { 0 } {
            // A machine crash, else a process crash (a flip only if the profile has them, so
            // profiles without process crashes draw what they always drew).
            let kind = if choices.flip(ChoiceKind::Crash, f.crash_probability) {
                Some(CrashKind::Machine)
            } else {
                choices.flip(ChoiceKind::Crash, f.process_crash_probability).then_some(CrashKind::Process)
            };
            if let Some(kind) = kind {
                plan.push(PlannedFault::Crash { node, at_us: start(choices), kind });
            }
        }
        for _ in 0..if spec.pausable { f.pauses_per_node_max } else { 0 } {
            if choices.flip(ChoiceKind::Pause, f.pause_probability) {
                let at_us = start(choices);
                let len = f.pause_us_min + span(choices, f.pause_us_max - f.pause_us_min);
                plan.push(PlannedFault::Pause { node, at_us, until_us: at_us + len });
            }
        }
    }
    let lossy_count = links.lossy.count_ones();
    for _ in 0..if lossy_count == 0 { 0 } else { f.partitions_max } {
        if choices.flip(ChoiceKind::Partition, f.partition_probability) {
            let node = links.lossy_node(choices.pick(ChoiceKind::FaultShape, lossy_count) as usize);
            let dir = [CutDir::Both, CutDir::Inbound, CutDir::Outbound][choices.pick(ChoiceKind::FaultShape, 3) as usize];
            let at_us = start(choices);
            let len_us = 1 + span(choices, f.partition_us_max);
            plan.push(PlannedFault::Cut { node, dir, at_us, len_us });
        }
    }
}

/// A value in `0..=width` through the choice source.
pub fn span(choices: &mut Choices, width: u64) -> u64 {
    choices.pick(ChoiceKind::FaultShape, width as u32 + 1) as u64
}

/// How long a crashed node stays down, drawn when it crashes.
pub fn restart_delay(f: &FaultProfile, choices: &mut Choices) -> u64 {
    f.restart_delay_us_min + span(choices, f.restart_delay_us_max - f.restart_delay_us_min)
}
