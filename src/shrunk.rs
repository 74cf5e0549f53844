//! `idemsim shrink`, and the shrinking `explore` does to its first violation by default: a
//! failing run shrunk within a budget, checked for 1-minimality, told as a story and written as
//! a seed file.

use crate::replay::RunInput;
use crate::seedfile::SeedFile;
use crate::shrink::{check_minimal_in, plural_kind, shrink_in, Budget, Minimality, Shrunk, Size};
use crate::{ms, program, shell_quote, BadInput, Found, Result};
use models::run::{Backend, Source};
use models::{Expect, Scenario};
use sim::Semantics;
use std::fmt::Write;
use std::path::{Path, PathBuf};

/// A shrunk counterexample, written.
pub struct Report {
    pub shrunk: Shrunk,
    pub minimal: Minimality,
    /// The causal sentence that opens its explanation.
    pub story: String,
    pub path: PathBuf,
    pub budget: Budget,
    pub elapsed_sec: f64,
}

impl Report {
    /// 1-minimal: shrinking reached its fixpoint and no fault or unit of work can go.
    pub fn one_minimal(&self) -> bool {
        self.shrunk.complete && self.minimal.removable_faults.is_empty() && self.minimal.removable_operations.is_empty()
    }

    /// "1 client, 1 operation, 2 faults (1 crash, 1 lost message)".
    pub fn size_text(&self, z: &Size) -> String {
        let [clients, operations, _] = self.shrunk.scenario.work_labels();
        let one = |label: &str, n: u32| {
            let label = if n == 1 { label.trim_end_matches('s') } else { label };
            format!("{n} {label}")
        };
        format!("{}, {}, {}", one(clients, z.clients), one(operations, z.operations), fault_text(z))
    }

    /// "the budget of 10000 runs ran out", or, when long runs spent its events first, "the
    /// budget of 20000000 simulated events (10000 runs x 2000) ran out after 5 runs".
    pub fn budget_spent(&self) -> String {
        let b = self.budget;
        if self.shrunk.runs < b.runs {
            format!(
                "the budget of {} simulated events ({} runs x {}) ran out after {} runs",
                b.events(),
                b.runs,
                crate::shrink::EVENTS_PER_RUN,
                self.shrunk.runs
            )
        } else {
            format!("the budget of {} runs ran out", b.runs)
        }
    }

    /// One line: what shrinking did and whether the result is proven 1-minimal.
    pub fn verdict_text(&self) -> String {
        let how = format!("after {} runs", self.shrunk.runs);
        if self.one_minimal() {
            format!("1-minimal {how}")
        } else if !self.shrunk.complete && self.shrunk.before == self.shrunk.after {
            format!("not shrunk: {} before any edit held (raise it with --shrink-budget, or `shrink` the seed file)", self.budget_spent())
        } else if !self.shrunk.complete {
            format!("smaller, not proven 1-minimal: {} (raise it with --shrink-budget, or `shrink` the seed file)", self.budget_spent())
        } else {
            format!(
                "not 1-minimal {how}: {} faults and {} units of work could still go",
                self.minimal.removable_faults.len(),
                self.minimal.removable_operations.len()
            )
        }
    }
}

fn fault_text(z: &Size) -> String {
    let n = z.fault_count();
    let kinds = z.faults.iter().map(|(k, v)| format!("{v} {}", plural_kind(k, *v))).collect::<Vec<_>>().join(", ");
    match n {
        0 => "no fault".into(),
        1 => kinds,
        n => format!("{n} faults ({kinds})"),
    }
}

/// Where a shrunk file goes by default: next to the input's seed file, `.shrunk.toml`.
fn default_out(input: &RunInput) -> PathBuf {
    match &input.path {
        Some(p) => {
            let stem = p.file_stem().map(|s| s.to_string_lossy().trim_end_matches(".shrunk").to_string()).unwrap_or_default();
            p.with_file_name(format!("{stem}.shrunk.toml"))
        }
        None => {
            let seed = match input.source {
                Source::Seed(s) => s,
                Source::Tape(_) => 0,
            };
            crate::seedfile::default_path(Path::new(crate::explore::DEFAULT_SAVE_DIR), &input.scenario, seed).with_extension("shrunk.toml")
        }
    }
}

/// Shrink `input`'s run within `budget` and write it to `out` (default: next to the input).
/// `None` if the run violates nothing.
pub fn shrink_to_file(input: &RunInput, out: Option<PathBuf>, budget: Budget) -> Result<Option<Report>> {
    if input.backend != Backend::Native {
        return Err(BadInput(madsim_refusal(input)));
    }
    let started = std::time::Instant::now();
    let first = input.record(false)?;
    let tape: Vec<u32> = first.tape.iter().map(|c| c.value).collect();
    let Some(s) = shrink_in(input.semantics, &input.scenario, &tape, budget) else {
        return Ok(None);
    };
    let elapsed_sec = started.elapsed().as_secs_f64();
    // Checking 1-minimality re-runs the result once per fault left: cheap at a fixpoint, but as
    // unbounded as the run itself when the budget ran out first, so only a fixpoint is checked.
    let minimal = if s.complete { check_minimal_in(input.semantics, &s.scenario, &s.tape, &s.invariant) } else { Minimality::default() };
    let story = crate::story::tell(&s.scenario, input.semantics, &s.tape).unwrap_or_default();
    let path = out.unwrap_or_else(|| default_out(input));
    let file = SeedFile {
        semantics: input.semantics,
        ..SeedFile::new(s.scenario.clone(), &Source::Tape(s.tape.clone()), Expect::Violation(s.invariant.clone()), s.message.clone())
    };
    file.write(&path)?;
    Ok(Some(Report { shrunk: s, minimal, story, path, budget, elapsed_sec }))
}

/// The run of `scenario` under `seed`, as found by explore and saved in `seed_file`.
pub fn explore_input(scenario: &Scenario, seed: u64, seed_file: &Path) -> RunInput {
    RunInput {
        scenario: scenario.clone(),
        source: Source::Seed(seed),
        expect: None,
        origin: seed_file.display().to_string(),
        path: Some(seed_file.to_path_buf()),
        semantics: Semantics::Timed,
        backend: Backend::Native,
    }
}

/// `idemsim shrink`: shrink, report before and after, write the shrunk seed file.
pub fn command(input: &RunInput, out: Option<PathBuf>, json: bool, budget: Budget) -> Result<Found> {
    let Some(r) = shrink_to_file(input, out, budget)? else {
        eprintln!("nothing to shrink: {} violates no invariant", input.origin);
        return Ok(Found::Nothing);
    };
    let s = &r.shrunk;
    let shown = r.path.display().to_string();
    if json {
        let v = serde_json::json!({
            "input": input.origin, "invariant": s.invariant, "story": r.story, "message": s.message,
            "before": s.before, "after": s.after, "runs": s.runs, "events": s.events,
            "budget_runs": r.budget.runs, "complete": s.complete,
            "elapsed_sec": (r.elapsed_sec * 1000.0).round() / 1000.0,
            "one_minimal": r.one_minimal(), "seed_file": shown, "semantics": input.semantics,
        });
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(Found::Violation);
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
    let _ = writeln!(o, "{} runs in {:.2} s", s.runs, r.elapsed_sec);
    if r.one_minimal() {
        let faults = match r.minimal.faults.len() {
            0 => "no fault is left (the interleaving alone does it)".to_string(),
            1 => "removing the one remaining fault".to_string(),
            n => format!("removing any one of the {n} remaining faults"),
        };
        let tail = if r.minimal.faults.is_empty() { "; removing" } else { ", or" };
        let units = s.scenario.work_units();
        let _ = writeln!(o, "1-minimal: {faults}{tail} any {units} makes the violation disappear.");
    } else if !s.complete {
        let _ = writeln!(o, "smaller, not proven 1-minimal: {} (--budget N raises it).", r.budget_spent());
    } else {
        let _ = writeln!(
            o,
            "not 1-minimal: {} faults and {} workload reductions could still go.",
            r.minimal.removable_faults.len(),
            r.minimal.removable_operations.len()
        );
    }
    let _ = writeln!(o, "\nstill violates {}:\n  {}\n  {}", s.invariant, r.story, s.message);
    let _ = writeln!(o, "\nshrunk seed file: {shown}");
    let _ = writeln!(o, "replay it:        {} replay {}", program(), shell_quote(&shown));
    let _ = writeln!(o, "as a diagram:     {} replay {} --format mermaid", program(), shell_quote(&shown));
    print!("{o}");
    Ok(Found::Violation)
}

/// The seeds a bare SCENARIO's first failing seed is looked for in.
pub const FIRST_FAILING_SEEDS: std::ops::Range<u64> = 0..100_000;

/// What `idemsim shrink` works on: a seed file, SCENARIO --seed S, or a bare SCENARIO, for which
/// the lowest failing seed below 100,000 is found first. `None`: a bare SCENARIO violated
/// nothing in those seeds, so there is nothing to shrink (said on stderr). That is a finding,
/// not bad input, as a passing `SCENARIO --seed S` is: both exit 0.
pub fn resolve(input: &str, seed: Option<u64>, swarm: bool, threads: usize) -> Result<Option<RunInput>> {
    let path = Path::new(input);
    let is_seed_file = path.is_file() && crate::seedfile::looks_like_seed_file(&crate::input::read(path)?);
    if seed.is_some() || is_seed_file {
        return RunInput::resolve(input, seed, swarm, None).map(Some);
    }
    let mut scenario = crate::input::load_scenario(input)?;
    scenario.swarm |= swarm;
    let (start, end) = (FIRST_FAILING_SEEDS.start, FIRST_FAILING_SEEDS.end);
    for range in [start..1_000, 1_000..10_000, 10_000..end] {
        if let Some(found) = scenario.explore(range, threads, None).first {
            eprintln!("shrinking the first failing seed of {input}: {}", found.seed);
            return RunInput::resolve(input, Some(found.seed), swarm, None).map(Some);
        }
    }
    eprintln!("nothing to shrink: {input} violates no invariant in seeds {start}..{end}");
    Ok(None)
}

/// Why a madsim seed file cannot be shrunk, and what to do instead.
fn madsim_refusal(input: &RunInput) -> String {
    let name = &input.scenario.name;
    let preset = models::presets::get(name).is_some_and(|p| p == input.scenario);
    let p = program();
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
