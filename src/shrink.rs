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
/// A bound on runs, so shrinking a huge scenario still ends promptly.
pub const MAX_RUNS: u64 = 300_000;

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

fn plural_kind(kind: &str, n: usize) -> String {
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
}

impl Runner {
    fn new(semantics: Semantics) -> Runner {
        let mut sim = Sim::new();
        semantics.apply(&mut sim);
        sim.choices.set_recording(true);
        Runner { sim, runs: 0 }
    }

    fn eval(&mut self, scenario: &Scenario, model: &World, tape: Option<&[u32]>, seed: u64) -> Cand {
        self.runs += 1;
        let outcome = match tape {
            Some(t) => self.sim.run_tape(model, t),
            None => self.sim.run_seed(model, seed),
        };
        let rec = self.sim.choices.recorded();
        let end = rec.iter().rposition(|c| c.value != 0).map_or(0, |i| i + 1);
        let (invariant, message) = match outcome.verdict.violation() {
            Some(v) => (Some(v.invariant.clone()), v.message.clone()),
            None => (None, String::new()),
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
    /// False if the run budget ran out before a fixpoint (the result still fails, but may not be
    /// 1-minimal).
    pub complete: bool,
}

/// Shrink the run of `scenario` under `tape` (a seed's tape is what `Scenario::record` returns).
/// `None` if that run violates nothing.
pub fn shrink(scenario: &Scenario, tape: &[u32]) -> Option<Shrunk> {
    shrink_in(Semantics::Timed, scenario, tape)
}

/// [`shrink`] with every candidate run in `semantics` (the semantics the tape was recorded in).
pub fn shrink_in(semantics: Semantics, scenario: &Scenario, tape: &[u32]) -> Option<Shrunk> {
    let mut r = Runner::new(semantics);
    let start = r.tape(scenario, tape);
    let invariant = start.invariant.clone()?;
    let before = start.size();
    let same = |c: &Cand| c.invariant.as_deref() == Some(invariant.as_str());
    let mut cur = start;

    // 1. A smaller workload, with the same tape or a fresh seed.
    'workload: loop {
        for s in cur.scenario.smaller() {
            let model = s.model();
            let c = r.eval(&s, &model, Some(&cur.tape), 0);
            if same(&c) {
                cur = c;
                continue 'workload;
            }
            for seed in 0..SEARCH_SEEDS {
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
    while r.runs < MAX_RUNS {
        let mut changed = false;
        // 2. Faults, one at a time.
        let mut i = 0;
        while i < cur.tape.len() {
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
            let c = r.tape(&s, &cur.tape);
            if same(&c) {
                cur = c;
                changed = true;
                break;
            }
        }
        // 4. Everything else: lower, without adding faults or events.
        let mut i = 0;
        while i < cur.tape.len() && r.runs < MAX_RUNS {
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
        if !changed {
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
    let mut r = Runner::new(semantics);
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

/// `idemsim shrink`: shrink, report before and after, write the shrunk seed file.
pub fn command(input: &crate::replay::RunInput, out: Option<std::path::PathBuf>, json: bool) -> crate::Result<crate::Found> {
    use crate::{ms, program, shell_quote};
    use std::fmt::Write;
    if input.backend != models::run::Backend::Native {
        return Err(crate::BadInput(madsim_refusal(input)));
    }
    let started = std::time::Instant::now();
    let first = input.record(false)?;
    let tape: Vec<u32> = first.tape.iter().map(|c| c.value).collect();
    let Some(s) = shrink_in(input.semantics, &input.scenario, &tape) else {
        eprintln!("nothing to shrink: {} violates no invariant", input.origin);
        return Ok(crate::Found::Nothing);
    };
    let elapsed = started.elapsed().as_secs_f64();
    let minimal = check_minimal_in(input.semantics, &s.scenario, &s.tape, &s.invariant);
    let path = out.unwrap_or_else(|| match &input.path {
        Some(p) => {
            let stem = p.file_stem().map(|s| s.to_string_lossy().trim_end_matches(".shrunk").to_string()).unwrap_or_default();
            p.with_file_name(format!("{stem}.shrunk.toml"))
        }
        None => {
            let seed = match input.source {
                models::run::Source::Seed(s) => s,
                models::run::Source::Tape(_) => 0,
            };
            let p = crate::seedfile::default_path(std::path::Path::new(crate::explore::DEFAULT_SAVE_DIR), &input.scenario, seed);
            p.with_extension("shrunk.toml")
        }
    });
    let file = crate::seedfile::SeedFile {
        semantics: input.semantics,
        ..crate::seedfile::SeedFile::new(
            s.scenario.clone(),
            &models::run::Source::Tape(s.tape.clone()),
            models::Expect::Violation(s.invariant.clone()),
            s.message.clone(),
        )
    };
    file.write(&path)?;
    let shown = path.display().to_string();
    let is_minimal = minimal.removable_faults.is_empty() && minimal.removable_operations.is_empty();
    if json {
        let v = serde_json::json!({
            "input": input.origin, "invariant": s.invariant, "message": s.message,
            "before": s.before, "after": s.after, "runs": s.runs, "elapsed_sec": (elapsed * 1000.0).round() / 1000.0,
            "one_minimal": is_minimal, "seed_file": shown, "semantics": input.semantics,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(crate::Found::Violation);
    }
    let (b, a) = (&s.before, &s.after);
    let fault_kinds = |z: &Size| {
        if z.faults.is_empty() {
            "none".to_string()
        } else {
            z.faults.iter().map(|(k, v)| format!("{v} {}", plural_kind(k, *v))).collect::<Vec<_>>().join(", ")
        }
    };
    let [clients, operations, duplicates] = s.scenario.work_labels();
    let rows = [
        (clients, b.clients.to_string(), a.clients.to_string()),
        (operations, b.operations.to_string(), a.operations.to_string()),
        (duplicates, b.duplicates.to_string(), a.duplicates.to_string()),
        ("faults", b.fault_count().to_string(), a.fault_count().to_string()),
        ("events", b.events.to_string(), a.events.to_string()),
        ("choices", b.choices.to_string(), a.choices.to_string()),
        ("simulated time", ms(b.sim_time_us), ms(a.sim_time_us)),
    ];
    let wb = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(6);
    let wa = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(5);
    let mut o = String::new();
    let untimed = match input.semantics {
        Semantics::Timed => String::new(),
        other => format!(" ({}, as `check` found it)", crate::seedfile::semantics_name(other)),
    };
    let _ = writeln!(o, "shrink {}{untimed}: {}", input.origin, s.invariant);
    let _ = writeln!(o, "  {:14}  {:>wb$}  {:>wa$}", "", "before", "after");
    for (name, before, after) in rows {
        let _ = writeln!(o, "  {name:14}  {before:>wb$}  {after:>wa$}");
    }
    let _ = writeln!(o, "  faults before: {}", fault_kinds(b));
    let _ = writeln!(o, "  faults after:  {}", fault_kinds(a));
    let _ = writeln!(o, "{} runs in {:.2} s", s.runs, elapsed);
    if is_minimal {
        let faults = match minimal.faults.len() {
            0 => "no fault is left (the interleaving alone does it)".to_string(),
            1 => "removing the one remaining fault".to_string(),
            n => format!("removing any one of the {n} remaining faults"),
        };
        let tail = if minimal.faults.is_empty() { "; removing" } else { ", or" };
        let units = s.scenario.work_units();
        let _ = writeln!(o, "1-minimal: {faults}{tail} any {units} makes the violation disappear.");
    } else {
        let _ = writeln!(
            o,
            "not 1-minimal (the run budget of {MAX_RUNS} ran out): {} faults and {} workload reductions could still go.",
            minimal.removable_faults.len(),
            minimal.removable_operations.len()
        );
    }
    let _ = writeln!(o, "\nstill violates {}:\n  {}", s.invariant, s.message);
    let _ = writeln!(o, "\nshrunk seed file: {shown}");
    let _ = writeln!(o, "replay it:        {} replay {}", program(), shell_quote(&shown));
    let _ = writeln!(o, "as a diagram:     {} replay {} --format mermaid", program(), shell_quote(&shown));
    print!("{o}");
    Ok(crate::Found::Violation)
}

/// What `idemsim shrink` works on: a seed file, SCENARIO --seed S, or a bare SCENARIO, for which
/// the lowest failing seed below 100,000 is found first.
pub fn resolve(input: &str, seed: Option<u64>, swarm: bool, threads: usize) -> crate::Result<crate::replay::RunInput> {
    let path = std::path::Path::new(input);
    let is_seed_file = path.is_file() && crate::seedfile::looks_like_seed_file(&crate::input::read(path)?);
    if seed.is_some() || is_seed_file {
        return crate::replay::RunInput::resolve(input, seed, swarm, None);
    }
    let mut scenario = crate::input::load_scenario(input)?;
    scenario.swarm |= swarm;
    for range in [0..1_000, 1_000..10_000, 10_000..100_000] {
        if let Some(found) = scenario.explore(range, threads, None).first {
            eprintln!("shrinking the first failing seed of {input}: {}", found.seed);
            return crate::replay::RunInput::resolve(input, Some(found.seed), swarm, None);
        }
    }
    Err(crate::BadInput(format!("{input}: no violation in seeds 0..100000, so nothing to shrink")))
}

/// Why a madsim seed file cannot be shrunk, and what to do instead.
fn madsim_refusal(input: &crate::replay::RunInput) -> String {
    let name = &input.scenario.name;
    let preset = models::presets::get(name).is_some_and(|p| p == input.scenario);
    let p = crate::program();
    let instead = if preset {
        format!("find the bug on the native backend and shrink that: `{p} shrink {name}` (its first failing native seed)")
    } else {
        format!("find the bug on the native backend and shrink that: `{p} explore SCENARIO`, then `{p} shrink` the seed file it writes")
    };
    format!(
        "{} ran on the madsim backend, which replays by seed only: shrinking edits a native choice tape, so it works on native runs. The same seed on the native backend is another run; {instead}",
        input.origin
    )
}
