//! The network's faults, decided once for both backends: which links are faulty, what a
//! partition cuts, and a message's fate when it is sent (lost, duplicated, or neither).

use crate::actor::NodeId;
use crate::choices::{ChoiceKind, Choices};
use crate::faults::{FaultProfile, NodeSpec};
use crate::trace::CutDir;

/// The scenario's lossy nodes and the partitions in force.
#[derive(Debug, Default)]
pub struct Links {
    /// Bit `i` set: node `i` is lossy. A link suffers loss, duplication and partitions only if
    /// both its ends are lossy; a link the scenario declares reliable never does.
    pub lossy: u64,
    /// Active partitions: a node cut off in a direction.
    pub cuts: Vec<(NodeId, CutDir)>,
}
crate::clone_by_field!(Links { lossy, cuts });

/// What the network does with a message as it is sent.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Fate {
    Lost,
    Sent { duplicated: bool },
}

impl Links {
    /// A new run: the scenario's lossy nodes, no partition.
    pub fn reset(&mut self, nodes: &[NodeSpec]) {
        self.lossy = nodes.iter().enumerate().filter(|(_, n)| n.lossy).fold(0, |m, (i, _)| m | 1 << i);
        self.cuts.clear();
    }

    /// True if the link `from -> to` may suffer network faults (both ends lossy).
    #[inline(always)]
    pub fn faulty(&self, from: NodeId, to: NodeId) -> bool {
        self.lossy >> from & 1 == 1 && self.lossy >> to & 1 == 1
    }

    /// True if an active partition cuts the link `from -> to`. Like loss and duplication,
    /// partitions hit only faulty links: the partition of a node leaves its links to reliable
    /// nodes alone.
    #[inline]
    pub fn cut(&self, from: NodeId, to: NodeId) -> bool {
        self.faulty(from, to) && self.cuts.iter().any(|&(n, d)| (n == to && d != CutDir::Outbound) || (n == from && d != CutDir::Inbound))
    }

    pub fn start_cut(&mut self, node: NodeId, dir: CutDir) {
        self.cuts.push((node, dir));
    }

    pub fn end_cut(&mut self, node: NodeId, dir: CutDir) {
        if let Some(i) = self.cuts.iter().position(|&c| c == (node, dir)) {
            self.cuts.swap_remove(i);
        }
    }

    /// The `k`-th lossy node (a partition's victim). No Vec: the bulk path allocates nothing
    /// per run.
    pub fn lossy_node(&self, k: usize) -> NodeId {
        (0..64).filter(|i| self.lossy >> i & 1 == 1).nth(k).expect("k < number of lossy nodes")
    }

    /// A message's fate as it is sent at `now_us`: on a faulty link during the fault phase,
    /// a loss flip, then (if not lost) a duplication flip; elsewhere no choice is drawn.
    #[inline(always)]
    pub fn fate(&self, faults: &FaultProfile, now_us: u64, from: NodeId, to: NodeId, choices: &mut Choices) -> Fate {
        let faulty = self.faulty(from, to) && now_us < faults.fault_phase_us;
        if faulty && choices.flip(ChoiceKind::Loss, faults.loss_probability) {
            return Fate::Lost;
        }
        Fate::Sent { duplicated: faulty && choices.flip(ChoiceKind::Duplicate, faults.duplicate_probability) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links(lossy: [bool; 3]) -> Links {
        let nodes: Vec<NodeSpec> = lossy.iter().enumerate().map(|(i, &l)| NodeSpec::new(format!("n{i}")).lossy(l)).collect();
        let mut l = Links::default();
        l.reset(&nodes);
        l
    }

    #[test]
    fn a_partition_cuts_only_links_between_lossy_nodes() {
        let mut l = links([true, true, false]);
        l.start_cut(0, CutDir::Both);
        assert!(l.cut(0, 1) && l.cut(1, 0));
        assert!(!l.cut(0, 2) && !l.cut(2, 0), "node 2 is reliable");
        l.end_cut(0, CutDir::Both);
        assert!(!l.cut(0, 1));
    }

    #[test]
    fn a_one_way_cut_cuts_one_way() {
        let mut l = links([true, true, true]);
        l.start_cut(1, CutDir::Inbound);
        assert!(l.cut(0, 1) && !l.cut(1, 0));
        l.start_cut(2, CutDir::Outbound);
        assert!(l.cut(2, 0) && !l.cut(0, 2));
    }

    #[test]
    fn a_reliable_link_draws_no_choice() {
        let l = links([true, false, true]);
        let f = FaultProfile { loss_probability: 0.5, duplicate_probability: 0.5, ..FaultProfile::none() };
        let mut c = Choices::seeded(1);
        assert_eq!(l.fate(&f, 0, 0, 1, &mut c), Fate::Sent { duplicated: false });
        assert_eq!(c.count(), 0);
        // Past the fault phase the faulty link is calm too.
        assert_eq!(l.fate(&f, f.fault_phase_us, 0, 2, &mut c), Fate::Sent { duplicated: false });
        assert_eq!(c.count(), 0);
    }
}
