//! The search tree as a stack of choice points: the path of the current run, each point with the
//! value taken and what it needs to know to pick its next value when the search backtracks.

use super::Bounds;
use crate::choices::{Choice, ChoiceKind};

/// How many kinds of fault the bounds count.
pub(super) const FAULT_KINDS: usize = 6;

/// The slot of a fault kind in a `[u32; FAULT_KINDS]` budget, or `None` for other choices.
pub(super) fn fault_slot(kind: ChoiceKind) -> Option<usize> {
    match kind {
        ChoiceKind::Loss => Some(0),
        ChoiceKind::Duplicate => Some(1),
        ChoiceKind::Crash => Some(2),
        ChoiceKind::Pause => Some(3),
        ChoiceKind::Partition => Some(4),
        ChoiceKind::Late => Some(5),
        _ => None,
    }
}

/// One decision of a run: a choice drawn from `Choices` (`kind` is `Some`), or the next event
/// picked by the driver (`kind` is `None`; a replay draws it as a `Tie`).
#[derive(Clone, Debug)]
pub(super) struct Point {
    pub kind: Option<ChoiceKind>,
    pub bound: u32,
    pub value: u32,
    /// Faults injected by the points before this one, per kind.
    pub faults: [u32; FAULT_KINDS],
    /// Event picks only: which eligible events were asleep here (never to be tried: the
    /// partial-order reduction proved them covered by a sibling explored earlier).
    pub asleep: Asleep,
}

/// Which of a pick's eligible events are asleep: a bit each, the first 64 in a word. A pick
/// among at most 64 events (every pick of the presets) allocates nothing; a search makes
/// millions of picks, and a `Vec<bool>` each was most of its allocations.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Asleep {
    low: u64,
    /// Events 64 and up, if any.
    high: Vec<bool>,
}

impl Asleep {
    pub fn get(&self, i: usize) -> bool {
        if i < 64 {
            self.low >> i & 1 == 1
        } else {
            self.high[i - 64]
        }
    }
}

impl FromIterator<bool> for Asleep {
    fn from_iter<I: IntoIterator<Item = bool>>(iter: I) -> Self {
        let mut a = Asleep::default();
        for (i, b) in iter.into_iter().enumerate() {
            if i < 64 {
                a.low |= (b as u64) << i;
            } else {
                a.high.push(b);
            }
        }
        a
    }
}

/// A new event pick the driver made past the replayed prefix, with its place among the choices.
#[derive(Clone, Debug)]
pub(super) struct NewPick {
    /// How many `Choices` answers preceded it in the run.
    pub pos: usize,
    pub bound: u32,
    pub value: u32,
    pub asleep: Asleep,
}

impl Point {
    /// The fault budget after this point.
    pub fn faults_after(&self) -> [u32; FAULT_KINDS] {
        let mut f = self.faults;
        if let Some(slot) = self.kind.and_then(fault_slot) {
            f[slot] += (self.value != 0) as u32;
        }
        f
    }

    /// The value to try after `self.value`, if any is left within the bounds.
    pub fn next_value(&self, bounds: &Bounds) -> Option<u32> {
        let Some(kind) = self.kind else {
            return (self.value + 1..self.bound).find(|&v| !self.asleep.get(v as usize));
        };
        if let Some(slot) = fault_slot(kind) {
            // Any non-zero value injects the fault: the first one spends the budget.
            let allowed = self.value > 0 || self.faults[slot] < bounds.fault_limit(slot);
            return (allowed && self.value + 1 < self.bound).then_some(self.value + 1);
        }
        sampled(self.bound, bounds.max_values).find(|&v| v > self.value)
    }

    /// True if only some of this choice's values are explored (see `Bounds::max_values`).
    pub fn is_sampled(&self, bounds: &Bounds) -> bool {
        self.kind.is_some_and(|k| fault_slot(k).is_none()) && self.bound > bounds.max_values.max(2)
    }
}

/// The values explored for a choice in `0..bound`: all of them when there are at most `max`,
/// else `max` values spread evenly from 0 to `bound - 1` (both ends always included).
fn sampled(bound: u32, max: u32) -> impl Iterator<Item = u32> {
    let max = max.max(2);
    let n = bound.min(max);
    (0..n).map(move |i| if bound <= max { i } else { (i as u64 * (bound - 1) as u64 / (n - 1) as u64) as u32 })
}

/// Append the decisions of a run past its prefix to `stack`: the `Choices` answers recorded after
/// the prefix's and the driver's new event picks (drained; the buffer is kept), merged in the
/// order the run made them.
pub(super) fn extend(stack: &mut Vec<Point>, recorded: &[Choice], replayed: usize, picks: &mut Vec<NewPick>) {
    let push = |stack: &mut Vec<Point>, kind, bound, value, asleep| {
        let faults = stack.last().map_or([0; FAULT_KINDS], Point::faults_after);
        stack.push(Point { kind, bound, value, faults, asleep });
    };
    let mut picks = picks.drain(..).peekable();
    for (pos, c) in recorded.iter().enumerate().skip(replayed) {
        while let Some(t) = picks.next_if(|t| t.pos <= pos) {
            push(stack, None, t.bound, t.value, t.asleep);
        }
        push(stack, Some(c.kind), c.bound, c.value, Asleep::default());
    }
    for t in picks {
        push(stack, None, t.bound, t.value, t.asleep);
    }
}

/// Move to the next path: change the deepest point at or past `floor` that has a value left,
/// dropping the points below it. False when the subtree (the points before `floor` fixed) is
/// exhausted.
pub(super) fn backtrack(stack: &mut Vec<Point>, floor: usize, bounds: &Bounds) -> bool {
    while stack.len() > floor {
        let p = stack.last_mut().expect("longer than floor");
        if let Some(v) = p.next_value(bounds) {
            p.value = v;
            return true;
        }
        stack.pop();
    }
    false
}

/// Split off part of the subtree still to be searched from `stack` (whose points before `floor`
/// are fixed): the values not yet tried at the shallowest point that has one left, as the path
/// to the first of them. The caller keeps the rest, with its floor past that point. `None` if
/// no point at or past `floor` has a value left.
pub(super) fn split(stack: &[Point], floor: usize, bounds: &Bounds) -> Option<(Vec<Point>, usize)> {
    let (i, v) = stack.iter().enumerate().skip(floor).find_map(|(i, p)| p.next_value(bounds).map(|v| (i, v)))?;
    let mut given = stack[..=i].to_vec();
    given[i].value = v;
    Some((given, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wide_choices_are_sampled_evenly_with_both_ends() {
        assert_eq!(sampled(5, 8).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
        assert_eq!(sampled(101, 3).collect::<Vec<_>>(), vec![0, 50, 100]);
        assert_eq!(sampled(1_000_000, 2).collect::<Vec<_>>(), vec![0, 999_999]);
    }

    #[test]
    fn a_fault_is_tried_only_within_its_budget() {
        let bounds = Bounds { max_lost: 1, ..Bounds::default() };
        let mut p = Point { kind: Some(ChoiceKind::Loss), bound: 2, value: 0, faults: [0; FAULT_KINDS], asleep: Asleep::default() };
        assert_eq!(p.next_value(&bounds), Some(1));
        p.faults[0] = 1;
        assert_eq!(p.next_value(&bounds), None);
    }

    #[test]
    fn picks_skip_asleep_events() {
        let p =
            Point { kind: None, bound: 4, value: 0, faults: [0; FAULT_KINDS], asleep: [false, true, true, false].into_iter().collect() };
        assert_eq!(p.next_value(&Bounds::default()), Some(3));
        // Past the first word too.
        let asleep: Asleep = (0..70).map(|i| i != 0 && i != 66).collect();
        let p = Point { kind: None, bound: 70, value: 0, faults: [0; FAULT_KINDS], asleep };
        assert_eq!(p.next_value(&Bounds::default()), Some(66));
        assert!((1..66).all(|i| p.asleep.get(i)) && !p.asleep.get(0) && p.asleep.get(69));
    }
}
