//! Shrinking: a failing run reduced to a 1-minimal counterexample by editing its choice tape
//! (and its workload), Hypothesis style.
//!
//! A tape replays a run; past its end every choice is 0, the simplest answer (no fault, the
//! shortest delay, the first option). Every edit below is kept only if the run still violates
//! the same invariant:
//!
//! 1. fewer clients, operations and duplicates: first with the same tape, else with the first
//!    seed below [`SEARCH_SEEDS`] that fails the same way in the smaller workload;
//! 2. each remaining fault choice (loss, duplication, crash, pause, partition) set to 0;
//! 3. the workload again, with the current tape only;
//! 4. other choices (delays, fault shapes, jitter, ties) set to 0 or halved, when that neither
//!    adds faults nor events;
//!
//! and 2-4 repeat until nothing changes. Each kept edit lowers (workload, non-zero choices, sum of
//! choices) — a replayed tape never reads a value larger than the one it was given — so shrinking
//! ends, and it is deterministic. At the end, setting any one remaining fault choice to 0, or
//! removing any client, operation or duplicate, makes the violation disappear: the result is
//! 1-minimal. [`check_minimal`] checks exactly that.

use models::world::{Node, World};
use models::Scenario;
use serde::Serialize;
use sim::{ChoiceKind, Semantics, Sim};
use std::collections::BTreeMap;

/// How many seeds a smaller workload may try to find the same violation.
pub const SEARCH_SEEDS: u64 = 2_000;
/// `idemsim shrink`'s default budget, in candidate runs: enough for every preset to reach a
/// fixpoint, while shrinking a huge scenario still ends.
pub const MAX_RUNS: u64 = 300_000;
/// `explore`'s default budget for shrinking its first violation: every payment and outbox preset
/// shrinks to 1-minimal in well under this (at most about 6,400 runs), in under a second.
pub const EXPLORE_RUNS: u64 = 10_000;
/// Simulated events a budget of one run stands for. A run-heavy scenario (an overload fleet
/// runs a million events where a payment run has a hundred) runs out of events first.
pub const EVENTS_PER_RUN: u64 = 2_000;

/// How much shrinking may do, counted in work rather than wall-clock time so that the result is
/// the same on every machine: at most `runs` candidate runs and `runs * EVENTS_PER_RUN`
/// simulated events, whichever runs out first.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Budget {
    pub runs: u64,
}

impl Budget {
    pub fn runs(runs: u64) -> Budget {
        Budget { runs }
    }
    pub fn events(&self) -> u64 {
        self.runs.saturating_mul(EVENTS_PER_RUN)
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::runs(MAX_RUNS)
    }
}

/// The measurable size of a counterexample.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Size {
    pub clients: u32,
    pub operations: u32,
    pub duplicates: u32,
    /// Fault choices that fired, by kind.
    pub faults: BTreeMap<String, usize>,
    pub events: u64,
    pub choices: usize,
    pub sim_time_us: u64,
}

impl Size {
    pub fn fault_count(&self) -> usize {
        self.faults.values().sum()
    }
}

/// One evaluated candidate.
#[derive(Clone, Debug)]
struct Cand {
    scenario: Scenario,
    /// The tape as the run read it (so positions match `kinds`), trailing zeros trimmed.
    tape: Vec<u32>,
    kinds: Vec<ChoiceKind>,
    invariant: Option<String>,
    message: String,
    events: u64,
    sim_time_us: u64,
}

impl Cand {
    fn faults(&self) -> usize {
        self.kinds.iter().zip(&self.tape).filter(|(k, v)| k.is_fault() && **v != 0).count()
    }
    fn size(&self) -> Size {
        let w = self.scenario.work_size();
        let mut faults = BTreeMap::new();
        for (k, v) in self.kinds.iter().zip(&self.tape) {
            if k.is_fault() && *v != 0 {
                *faults.entry(kind_name(*k)).or_default() += 1;
            }
        }
        Size {
            clients: w.clients,
            operations: w.operations,
            duplicates: w.duplicates,
            faults,
            events: self.events,
            choices: self.tape.len(),
            sim_time_us: self.sim_time_us,
        }
    }
}

pub fn kind_name(k: ChoiceKind) -> String {
    match k {
        ChoiceKind::Loss => "lost message".into(),
        ChoiceKind::Duplicate => "duplicated message".into(),
        ChoiceKind::Crash => "crash".into(),
        ChoiceKind::Pause => "pause".into(),
        ChoiceKind::Partition => "partition".into(),
        // A late message copy or a late restart: one choice kind for both.
        ChoiceKind::Late => "late event".into(),
        other => format!("{other:?}").to_lowercase(),
    }
}

/// The ways to remove the fault at tape position `i`: set it to 0, and keep what follows aligned
/// with the choices the run will now ask for. A fault that fired drew its shape next (a crash's
/// time; a pause's time and length; a partition's node, direction, time and length) — those go;
/// a duplicated message drew a second delay — it goes; a lost message drew no duplication flip
/// nor delay — zeros come in for them. Each variant is tried; all must lose the violation for
/// the fault to count as necessary.
pub fn removals(tape: &[u32], kinds: &[ChoiceKind], i: usize) -> Vec<Vec<u32>> {
    let mut out = Vec::new();
    let zeroed = |t: &mut Vec<u32>| t[i] = 0;
    let mut plain = tape.to_vec();
    zeroed(&mut plain);
    out.push(plain.clone());
    let shape = kinds[i + 1..].iter().take_while(|k| **k == ChoiceKind::FaultShape).count();
    if shape > 0 {
        let mut t = plain.clone();
        t.drain(i + 1..i + 1 + shape);
        out.push(t);
    }
    if kinds[i] == ChoiceKind::Duplicate && kinds.get(i + 1) == Some(&ChoiceKind::Delay) {
        let mut t = plain.clone();
        t.remove(i + 1);
        out.push(t);
    }
    if kinds[i] == ChoiceKind::Loss {
        for k in 1..=2 {
            let mut t = plain.clone();
            t.splice(i + 1..i + 1, vec![0; k]);
            out.push(t);
        }
    }
    out.dedup();
    out
}

pub fn plural_kind(kind: &str, n: usize) -> String {
    match (kind, n) {
        (k, 1) => k.to_string(),
        ("crash", _) => "crashes".into(),
        (k, _) => format!("{k}s"),
    }
}

/// Runs candidates on one reusable simulator, every one in the same semantics (a tape found by
/// `check` is untimed, and means another run read as timed).
struct Runner {
    sim: Sim<Node>,
    runs: u64,
    events: u64,
    budget: Budget,
}

impl Runner {
    fn new(semantics: Semantics, budget: Budget) -> Runner {
        let mut sim = Sim::new();
        semantics.apply(&mut sim);
        sim.choices.set_recording(true);
        Runner { sim, runs: 0, events: 0, budget }
    }

    /// Is there budget left for another candidate?
    fn left(&self) -> bool {
        self.runs < self.budget.runs && self.events < self.budget.events()
    }

    fn eval(&mut self, scenario: &Scenario, model: &World, tape: Option<&[u32]>, seed: u64) -> Cand {
        self.runs += 1;
        // No candidate may spend more than what is left of the budget: one whose edit turned
        // it into a retry storm is cut there, and rejected. The first run, the one to shrink,
        // always runs whole.
        let left = if self.runs == 1 { u64::MAX } else { self.budget.events().saturating_sub(self.events).max(1) };
        self.sim.set_max_events(left);
        let outcome = match tape {
            Some(t) => self.sim.run_tape(model, t),
            None => self.sim.run_seed(model, seed),
        };
        self.events += outcome.stats.events;
        let cut = outcome.stats.events >= left;
        let rec = self.sim.choices.recorded();
        let end = rec.iter().rposition(|c| c.value != 0).map_or(0, |i| i + 1);
        let (invariant, message) = match outcome.verdict.violation() {
            Some(v) if !cut => (Some(v.invariant.clone()), v.message.clone()),
            _ => (None, String::new()),
        };
        Cand {
            scenario: scenario.clone(),
            tape: rec[..end].iter().map(|c| c.value).collect(),
            kinds: rec[..end].iter().map(|c| c.kind).collect(),
            invariant,
            message,
            events: outcome.stats.events,
            sim_time_us: outcome.stats.sim_time_us,
        }
    }

    fn tape(&mut self, scenario: &Scenario, tape: &[u32]) -> Cand {
        let model = scenario.model();
        self.eval(scenario, &model, Some(tape), 0)
    }
}

/// The result of shrinking.
#[derive(Clone, Debug, Serialize)]
pub struct Shrunk {
    pub scenario: Scenario,
    pub tape: Vec<u32>,
    pub invariant: String,
    pub message: String,
    pub before: Size,
    pub after: Size,
    pub runs: u64,
    /// Simulated events those runs took.
    pub events: u64,
    /// False if the budget ran out before a fixpoint (the result still fails and is no larger,
    /// but may not be 1-minimal).
    pub complete: bool,
}

/// Shrink the run of `scenario` under `tape` (a seed's tape is what `Scenario::record` returns).
/// `None` if that run violates nothing.
pub fn shrink(scenario: &Scenario, tape: &[u32]) -> Option<Shrunk> {
    shrink_in(Semantics::Timed, scenario, tape, Budget::default())
}

/// [`shrink`] with every candidate run in `semantics` (the semantics the tape was recorded in),
/// within `budget`.
pub fn shrink_in(semantics: Semantics, scenario: &Scenario, tape: &[u32], budget: Budget) -> Option<Shrunk> {
    let mut r = Runner::new(semantics, budget);
    let start = r.tape(scenario, tape);
    let invariant = start.invariant.clone()?;
    let before = start.size();
    let same = |c: &Cand| c.invariant.as_deref() == Some(invariant.as_str());
    let mut cur = start;

    // 1. A smaller workload, with the same tape or a fresh seed.
    'workload: loop {
        for s in cur.scenario.smaller() {
            if !r.left() {
                break 'workload;
            }
            let model = s.model();
            let c = r.eval(&s, &model, Some(&cur.tape), 0);
            if same(&c) {
                cur = c;
                continue 'workload;
            }
            for seed in 0..SEARCH_SEEDS {
                if !r.left() {
                    break 'workload;
                }
                let c = r.eval(&s, &model, None, seed);
                if same(&c) {
                    cur = c;
                    continue 'workload;
                }
            }
        }
        break;
    }

    let mut complete = false;
    while r.left() {
        let mut changed = false;
        // 2. Faults, one at a time.
        let mut i = 0;
        while i < cur.tape.len() && r.left() {
            if cur.kinds[i].is_fault() && cur.tape[i] != 0 {
                let found = removals(&cur.tape, &cur.kinds, i).into_iter().map(|t| r.tape(&cur.scenario, &t)).find(|c| same(c));
                if let Some(c) = found {
                    cur = c;
                    changed = true;
                    continue;
                }
            }
            i += 1;
        }
        // 3. The workload, with this tape.
        for s in cur.scenario.smaller() {
            if !r.left() {
                break;
            }
            let c = r.tape(&s, &cur.tape);
            if same(&c) {
                cur = c;
                changed = true;
                break;
            }
        }
        // 4. Everything else: lower, without adding faults or events.
        let mut i = 0;
        while i < cur.tape.len() && r.left() {
            if !cur.kinds[i].is_fault() && cur.tape[i] != 0 {
                // 0 first, then halving while it keeps failing.
                let mut target = 0;
                loop {
                    let mut t = cur.tape.clone();
                    t[i] = target;
                    let c = r.tape(&cur.scenario, &t);
                    let kept = same(&c) && c.faults() <= cur.faults() && c.events <= cur.events;
                    if kept {
                        cur = c;
                        changed = true;
                    }
                    if target == 0 && kept || i >= cur.tape.len() {
                        break;
                    }
                    let v = cur.tape[i];
                    target = if target == 0 {
                        v / 2
                    } else if kept {
                        target / 2
                    } else {
                        break;
                    };
                    if target == 0 || target >= v {
                        break;
                    }
                }
            }
            i += 1;
        }
        // A pass that changed nothing proves a fixpoint only if it ran to its end.
        if !changed && r.left() {
            complete = true;
            break;
        }
    }
    Some(Shrunk {
        after: cur.size(),
        scenario: cur.scenario,
        tape: cur.tape,
        invariant,
        message: cur.message,
        before,
        runs: r.runs,
        events: r.events,
        complete,
    })
}

/// What [`check_minimal`] found: each remaining fault and each smaller workload that still
/// violates `invariant` (both empty for a 1-minimal counterexample).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Minimality {
    /// Tape positions (and kinds) of the faults.
    pub faults: Vec<(usize, ChoiceKind)>,
    /// Faults whose removal keeps the violation.
    pub removable_faults: Vec<(usize, ChoiceKind)>,
    /// Smaller workloads (one client, operation, duplicate, order or aggregate fewer) that keep
    /// the violation.
    pub removable_operations: Vec<models::shape::WorkSize>,
}

/// Re-run the counterexample with each remaining fault removed (every variant of [`removals`]),
/// and with one client, operation or duplicate fewer.
pub fn check_minimal(scenario: &Scenario, tape: &[u32], invariant: &str) -> Minimality {
    check_minimal_in(Semantics::Timed, scenario, tape, invariant)
}

/// [`check_minimal`] in `semantics`.
pub fn check_minimal_in(semantics: Semantics, scenario: &Scenario, tape: &[u32], invariant: &str) -> Minimality {
    let mut r = Runner::new(semantics, Budget::runs(u64::MAX / EVENTS_PER_RUN));
    let base = r.tape(scenario, tape);
    let mut m = Minimality::default();
    let violates = |c: &Cand| c.invariant.as_deref() == Some(invariant);
    for i in 0..base.tape.len() {
        if base.kinds[i].is_fault() && base.tape[i] != 0 {
            m.faults.push((i, base.kinds[i]));
            if removals(&base.tape, &base.kinds, i).iter().any(|t| violates(&r.tape(scenario, t))) {
                m.removable_faults.push((i, base.kinds[i]));
            }
        }
    }
    for s in scenario.one_less() {
        if violates(&r.tape(&s, &base.tape)) {
            m.removable_operations.push(s.work_size());
        }
    }
    m
}
