//! `idemsim explore` (many seeds on all cores, sharded) and `idemsim merge` (shard results into
//! the summary one machine would give).

use crate::seedfile::SeedFile;
use crate::{program, shell_quote, BadInput, Found, Result};
use models::run::{Backend, Source};
use models::{Expect, Scenario};
use serde::{Deserialize, Serialize};
use sim::{ExploreReport, Shard};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Where explore writes seed files unless told otherwise (not `seeds/`: that is the committed
/// regression corpus, which only shrunk, reviewed files should enter).
pub const DEFAULT_SAVE_DIR: &str = "idemsim-seeds";

pub struct Args {
    pub scenario: String,
    pub runs: u64,
    pub seed: u64,
    pub threads: usize,
    pub shard: Option<Shard>,
    pub swarm: bool,
    pub json: bool,
    pub save: PathBuf,
    pub backend: Backend,
    /// Overload scenarios: an SVG of offered load and goodput over time.
    pub plot: Option<PathBuf>,
    /// Shrink the first violation within this budget (`None`: `--no-shrink`).
    pub shrink: Option<crate::shrink::Budget>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Seeds {
    pub start: u64,
    pub end: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FirstViolation {
    pub seed: u64,
    pub invariant: String,
    pub message: String,
    /// The seed file written for it (null if none was written).
    pub seed_file: Option<String>,
    /// The command that replays it.
    pub replay: String,
}

/// The first violation shrunk: what `first_violation` says, of the shrunk run, and how it came
/// about (a field of `explore --json` results, so `merge` prints what one machine prints).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShrunkViolation {
    /// The seed the first violation came from.
    pub seed: u64,
    pub invariant: String,
    /// The causal sentence built from the shrunk run's trace.
    pub story: String,
    pub message: String,
    /// The shrunk seed file (a tape).
    pub seed_file: Option<String>,
    /// The command that replays it.
    pub replay: String,
    /// Shrinking reached a fixpoint and nothing more can go.
    pub one_minimal: bool,
    /// The budget ran out first: the result is smaller, not proven 1-minimal.
    pub budget_exhausted: bool,
    /// Candidate runs shrinking took, and its budget.
    pub runs: u64,
    pub budget_runs: u64,
    /// The size before and after, in words ("2 clients, 8 operations, 9 faults (...)").
    pub before: String,
    pub after: String,
    /// How it ended, in words ("1-minimal after 83 runs").
    pub verdict: String,
}

/// What `explore --json` prints, and what `merge` reads and prints.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub scenario: String,
    /// A hash of the whole scenario: shards of different scenarios refuse to merge.
    pub scenario_digest: String,
    /// The simulator the seeds ran on (`native` when absent, as in results of older builds).
    #[serde(default)]
    pub backend: Backend,
    pub swarm: bool,
    /// The seeds this summary covers (a shard's part, or the whole range).
    pub seeds: Seeds,
    /// `K/N` for one shard's result; null for a whole range or a merge.
    pub shard: Option<String>,
    pub runs: u64,
    pub violations: u64,
    pub violations_by_invariant: BTreeMap<String, u64>,
    /// Runs that reached the time limit with events left.
    pub time_limited: u64,
    pub runs_per_sec: f64,
    pub elapsed_sec: f64,
    pub threads: usize,
    pub first_violation: Option<FirstViolation>,
    /// The first violation shrunk (null without a violation, with `--no-shrink`, or on madsim).
    #[serde(default)]
    pub shrunk: Option<ShrunkViolation>,
    /// Everything merging needs: counts, stats, the lowest failing seed, the XOR of history hashes.
    pub report: ExploreReport,
}

pub fn digest(scenario: &Scenario) -> String {
    use std::hash::Hasher;
    let mut h = sim::StableHasher::default();
    h.write(scenario.to_toml().as_bytes());
    format!("{:016x}", h.finish())
}

pub fn run(args: &Args) -> Result<Found> {
    let mut scenario = crate::input::load_scenario(&args.scenario)?;
    scenario.swarm |= args.swarm;
    let all = crate::input::seed_range(args.seed, args.runs)?;
    if args.shrink.is_some_and(|b| b.runs == 0) {
        return Err(BadInput("--shrink-budget 0: use 1 or more candidate runs, or --no-shrink".into()));
    }
    let seeds = match args.shard {
        Some(shard) => shard_range(shard, all)?,
        None => all,
    };
    let threads = args.threads.max(1);
    if let Some(p) = &args.plot {
        crate::plot::check_path(p)?;
    }
    if args.plot.is_some() && scenario.overload.is_none() {
        return Err(BadInput(format!(
            "--plot draws overload scenarios (offered load and goodput over time); {} has no [overload] table",
            scenario.name
        )));
    }
    let started = Instant::now();
    let report = with_progress(seeds.end - seeds.start, |progress| scenario.explore_with(args.backend, seeds.clone(), threads, progress));
    let elapsed = started.elapsed().as_secs_f64();
    let mut shrunk = None;
    let first_violation = match &report.first {
        None => None,
        Some(found) => {
            let file = SeedFile {
                backend: args.backend,
                ..SeedFile::new(
                    scenario.clone(),
                    &Source::Seed(found.seed),
                    Expect::Violation(found.violation.invariant.clone()),
                    found.violation.message.clone(),
                )
            };
            let path = crate::seedfile::backend_path(&args.save, &scenario, args.backend, found.seed);
            file.write(&path)?;
            if let (Some(budget), Backend::Native) = (args.shrink, args.backend) {
                let input = crate::shrunk::explore_input(&scenario, found.seed, &path);
                shrunk = crate::shrunk::shrink_to_file(&input, None, budget)?.map(|r| shrunk_violation(found.seed, &r));
            }
            let shown = path.display().to_string();
            Some(FirstViolation {
                seed: found.seed,
                invariant: found.violation.invariant.clone(),
                message: found.violation.message.clone(),
                replay: format!("{} replay {}", program(), shell_quote(&shown)),
                seed_file: Some(shown),
            })
        }
    };
    let summary = Summary {
        scenario: scenario.name.clone(),
        scenario_digest: digest(&scenario),
        backend: args.backend,
        swarm: scenario.swarm,
        seeds: Seeds { start: seeds.start, end: seeds.end },
        shard: args.shard.map(|s| format!("{}/{}", s.index + 1, s.count)),
        runs: report.runs,
        violations: report.violations,
        violations_by_invariant: report.by_invariant.clone(),
        time_limited: report.time_limited,
        runs_per_sec: if elapsed > 0.0 { (report.runs as f64 / elapsed).round() } else { 0.0 },
        elapsed_sec: (elapsed * 1000.0).round() / 1000.0,
        threads,
        first_violation,
        shrunk,
        report,
    };
    print_summary(&summary, args.json, Some(&scenario.expect));
    if let Some(path) = &args.plot {
        // The mean of the first seeds (at most 1,000): a picture, not a census.
        let plotted = seeds.start..seeds.end.min(seeds.start + 1_000);
        let row = crate::compare::measure(&scenario, plotted.clone(), threads, None);
        crate::plot::draw(path, &[row])?;
        eprintln!("plot: {} (mean over seeds {}..{})", path.display(), plotted.start, plotted.end);
    }
    Ok(found(&summary))
}

/// The seeds shard `shard` of `all` runs; refused when some of the N parts would be empty (more
/// shards than runs), since merge needs every part and an empty one is surely a mistake.
fn shard_range(shard: Shard, all: std::ops::Range<u64>) -> Result<std::ops::Range<u64>> {
    let runs = all.end - all.start;
    if shard.count > runs {
        let k = format!("{}/{}", shard.index + 1, shard.count);
        let part = shard.range(all.clone());
        let which = if part.is_empty() {
            format!("this shard is empty ({runs} runs make at most {runs} shards)")
        } else {
            format!("{} shards of {runs} runs leave some empty", shard.count)
        };
        return Err(BadInput(format!("--shard {k} with --runs {runs}: {which}; use N <= {runs} (or more --runs)")));
    }
    Ok(shard.range(all))
}

fn shrunk_violation(seed: u64, r: &crate::shrunk::Report) -> ShrunkViolation {
    let shown = r.path.display().to_string();
    ShrunkViolation {
        seed,
        invariant: r.shrunk.invariant.clone(),
        story: r.story.clone(),
        message: r.shrunk.message.clone(),
        replay: format!("{} replay {}", program(), shell_quote(&shown)),
        seed_file: Some(shown),
        one_minimal: r.one_minimal(),
        budget_exhausted: !r.shrunk.complete,
        runs: r.shrunk.runs,
        budget_runs: r.budget.runs,
        before: r.size_text(&r.shrunk.before),
        after: r.size_text(&r.shrunk.after),
        verdict: r.verdict_text(),
    }
}

fn found(s: &Summary) -> Found {
    if s.violations > 0 {
        Found::Violation
    } else {
        Found::Nothing
    }
}

/// Run `work` with a progress bar on stderr if stderr is a terminal (nothing otherwise).
pub fn with_progress<T: Send>(total: u64, work: impl FnOnce(Option<&AtomicU64>) -> T + Send) -> T {
    let style = indicatif::ProgressStyle::with_template("{bar:40.cyan/blue} {pos}/{len} runs  {msg}  eta {eta}")
        .expect("a valid template")
        .progress_chars("=> ");
    drive(indicatif::ProgressBar::new(total).with_style(style), work)
}

/// Run `work` on this thread while another polls its run counter into `bar` (a bar or a
/// spinner), if stderr is a terminal; otherwise run it bare.
pub fn drive<T: Send>(bar: indicatif::ProgressBar, work: impl FnOnce(Option<&AtomicU64>) -> T + Send) -> T {
    if !std::io::stderr().is_terminal() {
        return work(None);
    }
    let done = AtomicU64::new(0);
    let finished = std::sync::atomic::AtomicBool::new(false);
    let out = std::thread::scope(|s| {
        s.spawn(|| {
            let started = Instant::now();
            while !finished.load(Ordering::Relaxed) {
                let n = done.load(Ordering::Relaxed);
                bar.set_message(format!("{:.0} runs/s", n as f64 / started.elapsed().as_secs_f64().max(1e-3)));
                bar.set_position(n);
                bar.tick();
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        let out = work(Some(&done));
        finished.store(true, Ordering::Relaxed);
        out
    });
    bar.finish_and_clear();
    out
}

pub fn print_summary(s: &Summary, json: bool, expect: Option<&Expect>) {
    if json {
        println!("{}", serde_json::to_string_pretty(s).expect("a summary serializes"));
    } else {
        print!("{}", text(s, expect));
    }
}

fn pct(n: u64, of: u64) -> String {
    if of == 0 {
        "0%".into()
    } else {
        format!("{:.2}%", 100.0 * n as f64 / of as f64)
    }
}

pub fn text(s: &Summary, expect: Option<&Expect>) -> String {
    let mut out = String::new();
    let shard = s.shard.as_ref().map(|k| format!(" (shard {k})")).unwrap_or_default();
    let swarm = if s.swarm { ", swarm" } else { "" };
    let swarm = match s.backend {
        Backend::Native => swarm.to_string(),
        b => format!("{swarm}, on {b}"),
    };
    let _ = writeln!(out, "explore {}{swarm}: seeds {}..{}{shard}", s.scenario, s.seeds.start, s.seeds.end);
    let threads = crate::render::plural(s.threads as u64, "thread", "threads");
    let _ = writeln!(out, "{} runs in {:.2} s on {threads}: {} runs/s", s.runs, s.elapsed_sec, s.runs_per_sec);
    if s.violations == 0 {
        let _ = writeln!(out, "no violations");
    } else {
        let _ = writeln!(out, "violating runs: {} ({})", s.violations, pct(s.violations, s.runs));
        let w = s.violations_by_invariant.keys().map(|k| k.len()).max().unwrap_or(0);
        for (inv, n) in &s.violations_by_invariant {
            let _ = writeln!(out, "  {inv:w$}  {n:>8}  {}", pct(*n, s.runs));
        }
    }
    if s.time_limited > 0 {
        let _ = writeln!(out, "runs that hit the time limit with events left: {}", s.time_limited);
    }
    match (&s.first_violation, &s.shrunk) {
        (Some(f), Some(k)) => shrunk_text(&mut out, f, k),
        (Some(f), None) => first_text(&mut out, f, s.backend),
        _ => {}
    }
    match expect {
        Some(Expect::Pass) if s.violations > 0 => {
            let _ = writeln!(out, "\nThis scenario is expected to pass: that is a finding.");
        }
        Some(Expect::Violation(inv)) if s.violations == 0 => {
            let _ = writeln!(out, "\nThis scenario is expected to violate {inv}; try more --runs or --swarm.");
        }
        _ => {}
    }
    out
}

/// The first violation as found (`--no-shrink`, or madsim).
fn first_text(out: &mut String, f: &FirstViolation, backend: Backend) {
    let _ = writeln!(out, "\nfirst violation: seed {}, {}", f.seed, f.invariant);
    let _ = writeln!(out, "  {}", f.message);
    if let Some(file) = &f.seed_file {
        let _ = writeln!(out, "\nseed file:  {file}");
    }
    let _ = writeln!(out, "replay it:  {}", f.replay);
    match (&f.seed_file, backend) {
        (Some(file), Backend::Native) => {
            let _ = writeln!(out, "shrink it:  {} shrink {}", program(), shell_quote(file));
        }
        (_, Backend::Madsim) => {
            let _ = writeln!(
                out,
                "shrink:     works on native runs (a madsim run replays by seed, with no tape to edit): explore without --backend madsim, then shrink its seed file"
            );
        }
        _ => {}
    }
}

/// The first violation shrunk: its story and message first, then where both seed files are.
fn shrunk_text(out: &mut String, f: &FirstViolation, k: &ShrunkViolation) {
    let _ = writeln!(out, "\nfirst violation: seed {}, {}", f.seed, f.invariant);
    let _ = writeln!(out, "shrunk to {}: {}; as found: {}", k.after, k.verdict, k.before);
    let _ = writeln!(out, "  {}", k.story);
    let _ = writeln!(out, "  {}", k.message);
    let _ = writeln!(out);
    if let Some(file) = &f.seed_file {
        let _ = writeln!(out, "seed file:    {file}  (seed {}, as found)", f.seed);
    }
    if let Some(file) = &k.seed_file {
        let _ = writeln!(out, "shrunk file:  {file}");
    }
    let _ = writeln!(out, "replay it:    {}", k.replay);
    let _ = writeln!(out, "as a diagram: {} --format mermaid", k.replay);
}

/// Merge shard summaries (disjoint, contiguous seed ranges of one scenario) into the summary of
/// the whole range. `runs_per_sec` is the sum of the shards' rates (they ran side by side).
pub fn merge(parts: Vec<Summary>) -> Result<Summary> {
    let mut parts = parts;
    if parts.is_empty() {
        return Err(BadInput("merge needs at least one explore --json result".into()));
    }
    parts.sort_by_key(|p| p.seeds.start);
    let first = &parts[0];
    for p in &parts[1..] {
        if p.backend != first.backend {
            return Err(BadInput(format!(
                "cannot merge results of different backends: {} and {} (merge the shards of one search)",
                first.backend, p.backend
            )));
        }
        if p.swarm != first.swarm && p.scenario == first.scenario {
            let (with, without) = if first.swarm { (first, p) } else { (p, first) };
            return Err(BadInput(format!(
                "cannot merge {} of {}, which ran with --swarm, and {}, which ran without: merge the shards of one search (all with --swarm or all without)",
                part_name(with),
                with.scenario,
                part_name(without)
            )));
        }
        if p.scenario_digest != first.scenario_digest || p.swarm != first.swarm {
            return Err(BadInput(format!(
                "cannot merge results of different scenarios: {} (digest {}) and {} (digest {})",
                first.scenario, first.scenario_digest, p.scenario, p.scenario_digest
            )));
        }
    }
    check_shards(&parts)?;
    for w in parts.windows(2) {
        if w[0].seeds.end != w[1].seeds.start {
            return Err(BadInput(format!(
                "seed ranges {}..{} and {}..{} {}: merge the shards of one search (all K of --shard K/N, same --seed and --runs)",
                w[0].seeds.start,
                w[0].seeds.end,
                w[1].seeds.start,
                w[1].seeds.end,
                if w[0].seeds.end > w[1].seeds.start { "overlap" } else { "leave a gap" }
            )));
        }
    }
    let mut report = ExploreReport::default();
    let mut first_violation: Option<FirstViolation> = None;
    let mut shrunk = None;
    for p in &parts {
        report.merge(p.report.clone());
        if let Some(f) = &p.first_violation {
            if !matches!(&first_violation, Some(g) if g.seed <= f.seed) {
                first_violation = Some(f.clone());
                // Shrinking is a function of the seed and the budget: the shard that found the
                // lowest seed shrank exactly what one machine would have.
                shrunk = p.shrunk.clone();
            }
        }
    }
    let last = parts.last().expect("non-empty");
    Ok(Summary {
        scenario: first.scenario.clone(),
        scenario_digest: first.scenario_digest.clone(),
        backend: first.backend,
        swarm: first.swarm,
        seeds: Seeds { start: first.seeds.start, end: last.seeds.end },
        shard: None,
        runs: report.runs,
        violations: report.violations,
        violations_by_invariant: report.by_invariant.clone(),
        time_limited: report.time_limited,
        runs_per_sec: parts.iter().map(|p| p.runs_per_sec).sum(),
        elapsed_sec: parts.iter().map(|p| p.elapsed_sec).fold(0.0, f64::max),
        threads: parts.iter().map(|p| p.threads).sum(),
        first_violation,
        shrunk,
        report,
    })
}

/// A part of a merge, as its user named it: `shard K/N`, or `seeds S..E` for a whole search.
fn part_name(p: &Summary) -> String {
    match &p.shard {
        Some(k) => format!("shard {k}"),
        None => format!("seeds {}..{}", p.seeds.start, p.seeds.end),
    }
}

/// Shard results merge only as a complete set: every K of one N, each once. Results of whole
/// searches (no shard) merge with each other (contiguous ranges), not with shards.
fn check_shards(parts: &[Summary]) -> Result<()> {
    let mut shards = Vec::new();
    for p in parts {
        if let Some(k) = &p.shard {
            let s = Shard::parse(k).map_err(|_| {
                BadInput(format!("\"shard\": {k:?}: expected K/N with 1 <= K <= N (not an `idemsim explore --json` result?)"))
            })?;
            shards.push((s, k));
        }
    }
    let Some(&(first, first_k)) = shards.first() else {
        return Ok(());
    };
    let n = first.count;
    if let Some(whole) = parts.iter().find(|p| p.shard.is_none()) {
        return Err(BadInput(format!(
            "{} is a whole search (no --shard) and shard {first_k} is part of one: merge all {n} shards of one search, or whole searches only",
            part_name(whole)
        )));
    }
    if let Some((_, k)) = shards.iter().find(|(s, _)| s.count != n) {
        return Err(BadInput(format!(
            "shard {first_k} and shard {k} disagree on N: merge all N shards of one search (the same --shard K/N count)"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (s, k) in &shards {
        if !seen.insert(s.index) {
            return Err(BadInput(format!("shard {k} given twice: merge each of the {n} shards of one search once")));
        }
    }
    // Found within the first parts.len() + 1 indices, however large N is.
    if let Some(missing) = (0..n).find(|i| !seen.contains(i)) {
        return Err(BadInput(format!("shard {}/{n} missing: merge all {n} shards of one search", missing + 1)));
    }
    Ok(())
}

pub fn merge_files(files: &[PathBuf], json: bool) -> Result<Found> {
    let mut parts = Vec::new();
    for f in files {
        let text = if f.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin()).map_err(|e| BadInput(format!("stdin: {e}")))?
        } else {
            crate::input::read(Path::new(f))?
        };
        let s: Summary =
            serde_json::from_str(&text).map_err(|e| BadInput(format!("{}: not an `idemsim explore --json` result: {e}", f.display())))?;
        parts.push(s);
    }
    let merged = merge(parts)?;
    print_summary(&merged, json, None);
    Ok(found(&merged))
}
