//! `idemsim replay`: one run, step by step.

use crate::seedfile::SeedFile;
use crate::{render, BadInput, Found, Result};
use models::run::{Backend, RunRecord, Source};
use models::{Expect, Scenario};
use serde_json::json;
use sim::{Semantics, TraceKind};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

/// A run to replay or shrink: from a seed file, or a scenario and a seed.
pub struct RunInput {
    pub scenario: Scenario,
    pub source: Source,
    /// The verdict a seed file recorded.
    pub expect: Option<Expect>,
    /// Where it came from, for titles and messages.
    pub origin: String,
    /// The seed file it was read from.
    pub path: Option<std::path::PathBuf>,
    /// How a tape reads time (a seed file's `semantics`; timed otherwise).
    pub semantics: Semantics,
    /// The simulator to run it on (a seed file's `backend` unless `--backend` says otherwise).
    pub backend: Backend,
}

impl RunInput {
    /// `INPUT` is a seed file (when `seed` is None) or a SCENARIO to run with `seed`. `backend`
    /// (`--backend`) overrides a seed file's.
    pub fn resolve(input: &str, seed: Option<u64>, swarm: bool, backend: Option<Backend>) -> Result<RunInput> {
        match seed {
            Some(seed) => {
                let mut scenario = crate::input::load_scenario(input)?;
                scenario.swarm |= swarm;
                Ok(RunInput {
                    scenario,
                    source: Source::Seed(seed),
                    expect: None,
                    origin: format!("{} --seed {seed}", scenario_label(input)),
                    path: None,
                    semantics: Semantics::Timed,
                    backend: backend.unwrap_or_default(),
                })
            }
            None => {
                let path = Path::new(input);
                if !path.is_file() {
                    if models::presets::get(input).is_some() {
                        return Err(BadInput(format!(
                            "{input} is a preset: say which run with --seed S (e.g. `idemsim replay {input} --seed 0`), or give a seed file"
                        )));
                    }
                    if crate::input::looks_like_path(input) || path.is_dir() {
                        return Err(BadInput(format!("{input}: no such file (give a seed file, or a SCENARIO with --seed S)")));
                    }
                    return Err(crate::input::unknown_preset(input));
                }
                let text = crate::input::read(path)?;
                if !crate::seedfile::looks_like_seed_file(&text) && Scenario::from_toml(&text).is_ok() {
                    return Err(BadInput(format!("{input} is a scenario file: say which run with --seed S, or give a seed file")));
                }
                let file = SeedFile::load(path)?;
                if swarm && !file.scenario.swarm {
                    return Err(BadInput("--swarm applies to SCENARIO --seed S; a seed file carries its own scenario".into()));
                }
                let run_on = backend.unwrap_or(file.backend);
                if run_on == Backend::Madsim && file.tape.is_some() {
                    let what = if file.semantics != Semantics::Timed {
                        format!("a {} tape (from `idemsim check`)", crate::seedfile::semantics_name(file.semantics))
                    } else {
                        "a choice tape".to_string()
                    };
                    return Err(BadInput(format!(
                        "{input} holds {what}, which replays only on the native backend: drop --backend madsim (madsim replays a seed: `idemsim replay SCENARIO --seed S --backend madsim`)"
                    )));
                }
                if run_on != file.backend {
                    // Only a seed is left here: the same seed is another run on the other backend.
                    let seed = file.seed.map_or("S".to_string(), |s| s.to_string());
                    let name = &file.scenario.name;
                    let scenario = if models::presets::get(name).is_some_and(|p| p == file.scenario) { name.as_str() } else { "SCENARIO" };
                    return Err(BadInput(format!(
                        "{input} was recorded on {}: its seed is another run on {run_on}, so drop --backend {run_on} (to run that seed on {run_on}: `{} replay {scenario} --seed {seed} --backend {run_on}`)",
                        file.backend,
                        crate::program()
                    )));
                }
                Ok(RunInput {
                    source: file.source(),
                    scenario: file.scenario,
                    expect: Some(file.expect),
                    origin: input.to_string(),
                    path: Some(path.to_path_buf()),
                    semantics: file.semantics,
                    backend: run_on,
                })
            }
        }
    }

    pub fn source_json(&self) -> serde_json::Value {
        let mut v = match &self.source {
            Source::Seed(s) => json!({"seed": s}),
            Source::Tape(t) => json!({"tape": t}),
        };
        v["semantics"] = json!(self.semantics);
        v["backend"] = json!(self.backend);
        v
    }

    pub fn source_text(&self) -> String {
        let mut s = match &self.source {
            Source::Seed(s) => format!("seed {s}"),
            Source::Tape(t) => format!("a tape of {} choices", t.len()),
        };
        if self.semantics != Semantics::Timed {
            s.push_str(&format!(", {}", crate::seedfile::semantics_name(self.semantics)));
        }
        if self.backend != Backend::Native {
            s.push_str(&format!(", on {}", self.backend));
        }
        s
    }

    /// The run, recorded in full, in its semantics on its backend.
    pub fn record(&self, trace: bool) -> Result<RunRecord> {
        crate::seedfile::record(&self.scenario, self.backend, self.semantics, &self.source, trace).map_err(BadInput)
    }
}

fn scenario_label(input: &str) -> String {
    crate::shell_quote(input)
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per event, for a terminal.
    Text,
    /// A mermaid sequenceDiagram (paste into a GitHub comment inside ```mermaid).
    Mermaid,
    /// One JSON object: verdict, stats, every event, the history.
    Json,
}

pub fn run(input: &RunInput, format: Format, verbose: bool) -> Result<Found> {
    let record = input.record(true)?;
    if verbose {
        emit_tracing(&record);
    }
    let title = format!("replay {} ({}): scenario {}", input.origin, input.source_text(), input.scenario.name);
    match format {
        Format::Text => print!("{}", render::text(&record, &title)),
        Format::Mermaid => print!("{}", render::mermaid(&record)),
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(&render::json(&record, &input.scenario.name, &input.source_json())).expect("json"))
        }
    }
    let got = match record.outcome.verdict.violation() {
        Some(v) => Expect::Violation(v.invariant.clone()),
        None => Expect::Pass,
    };
    if let Some(expect) = &input.expect {
        if *expect != got {
            eprintln!(
                "warning: {} recorded `expect = \"{expect}\"` but this run got {got}: the seed file no longer reproduces. {} Re-record it with `idemsim explore` and `idemsim shrink`.",
                input.origin,
                why_not_reproduced(&input.source, &record)
            );
        }
    }
    Ok(if record.outcome.verdict.is_pass() { Found::Nothing } else { Found::Violation })
}

/// Why a seed file's run may no longer get its recorded verdict, as far as the run tells (one
/// sentence): a tape holding a value its choice cannot take, or values the run never read, does
/// not fit the run; a tape the run read past the end of (where every choice is 0) may have been
/// cut short, though a saved tape always stops at its last choice that is not 0. Each may be
/// damage to the file, or a change of its scenario, the models or the engine (which changes what
/// each choice decides); only the file's history tells them apart.
pub fn why_not_reproduced(source: &Source, record: &RunRecord) -> String {
    const CHANGED: &str = "or the scenario in it, the models or the engine changed";
    let Source::Tape(tape) = source else {
        return format!("The seed was edited, {CHANGED}.");
    };
    let drawn = &record.tape;
    if let Some((i, (v, c))) = tape.iter().zip(drawn).enumerate().find(|(_, (&v, c))| v >= c.bound) {
        let kind = serde_json::to_value(c.kind).ok().and_then(|k| k.as_str().map(str::to_string)).unwrap_or_default();
        return format!(
            "Its tape does not fit this run (choice #{i} is {v}, where this run draws a {kind} choice of 0 to {}): the tape was edited or damaged, {CHANGED}.",
            c.bound - 1
        );
    }
    // Trailing zeros say nothing (past its end a tape answers 0 anyway).
    let tape = crate::seedfile::trim_tape(tape);
    if tape.is_empty() {
        return format!(
            "Its tape is empty (or all 0), which replays the run with no fault and every first option: the tape was emptied, {CHANGED}."
        );
    }
    if tape.len() > drawn.len() {
        return format!(
            "Its tape does not fit this run (it holds {} choices and the run read only {}): the tape was edited or damaged, {CHANGED}.",
            tape.len(),
            drawn.len()
        );
    }
    if tape.len() < drawn.len() {
        // Normal in itself: a saved tape stops at its last choice that is not 0.
        return format!(
            "The run drew {} choices, its tape holds {} (past its end every choice is 0): the tape was cut short or edited, {CHANGED}.",
            drawn.len(),
            tape.len()
        );
    }
    format!("The tape was edited, {CHANGED}.")
}

static NOW_US: AtomicU64 = AtomicU64::new(0);

/// Simulated time, for tracing-subscriber's timestamp column.
struct SimTime;

impl tracing_subscriber::fmt::time::FormatTime for SimTime {
    fn format_time(&self, w: &mut tracing_subscriber::fmt::format::Writer<'_>) -> std::fmt::Result {
        write!(w, "{:>12}", crate::ms(NOW_US.load(Ordering::Relaxed)))
    }
}

/// Re-emit the run as `tracing` events inside one span per actor, stamped with simulated time,
/// on stderr.
fn emit_tracing(record: &RunRecord) {
    let _ = tracing_subscriber::fmt()
        .with_timer(SimTime)
        .with_target(false)
        .with_level(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_max_level(tracing::Level::TRACE)
        .try_init();
    let spans: Vec<tracing::Span> = record.node_names.iter().map(|n| tracing::info_span!("actor", node = %n)).collect();
    let name = |i: usize| record.node_names[i].as_str();
    for e in &record.trace {
        NOW_US.store(e.at_us, Ordering::Relaxed);
        let _g = spans[e.node].enter();
        match &e.kind {
            TraceKind::Send { to, msg, duplicated } => tracing::debug!(to = %name(*to), duplicated, "send {}", render::tidy(msg)),
            TraceKind::LateRestart => tracing::warn!("late: the restart after this crash may come at any later moment"),
            TraceKind::Late { to } => tracing::warn!(to = %name(*to), "late: the copy just sent may arrive at any later moment"),
            TraceKind::Lose { to, msg, cause } => tracing::warn!(to = %name(*to), ?cause, "lost {}", render::tidy(msg)),
            TraceKind::Deliver { from, msg } => tracing::debug!(from = %name(*from), "deliver {}", render::tidy(msg)),
            TraceKind::Timer { timer } => tracing::trace!("timer {}", render::tidy(timer)),
            TraceKind::Crash { writes_lost, kind } => tracing::warn!(writes_lost, kind = kind.name(), "crash"),
            TraceKind::Restart => tracing::info!("restart"),
            TraceKind::Pause { until_us } => tracing::warn!(until = %crate::ms(*until_us), "pause"),
            TraceKind::Resume => tracing::info!("resume"),
            TraceKind::PartitionStart { dir } => tracing::warn!(?dir, "partitioned"),
            TraceKind::PartitionEnd { dir } => tracing::info!(?dir, "partition healed"),
            TraceKind::Write { record } => tracing::trace!("write {}", render::tidy(record)),
            TraceKind::Fsync { durable_records } => tracing::trace!(durable_records, "fsync"),
            TraceKind::Observe { obs, index } => tracing::info!(index, "observe {}", render::tidy(obs)),
        }
    }
}
