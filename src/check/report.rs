//! What `check` prints: the JSON summary (`--json`) and the text report.

use super::Args;
use crate::render::plural;
use crate::{program, shell_quote};
use models::{Expect, Scenario};
use serde::Serialize;
use sim::{HistoryView, Semantics};
use std::collections::BTreeMap;
use std::fmt::Write;

/// `bounds` in `check --json`: `max_events` and `max_runs` are null when unbounded.
#[derive(Clone, Debug, Serialize)]
pub struct BoundsJson {
    pub max_lost: u32,
    pub max_duplicated: u32,
    pub max_crashes: u32,
    pub max_pauses: u32,
    pub max_partitions: u32,
    pub max_late: u32,
    pub max_values: u32,
    pub max_events: Option<u64>,
    pub max_runs: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct FirstViolation {
    pub invariant: String,
    pub message: String,
    /// Events the run took.
    pub events: u64,
    pub tape: Vec<u32>,
    pub history_hash: u64,
    pub seed_file: String,
    /// The command that replays it.
    pub replay: String,
}

/// The proof search of `--shortest`: bounded at one event fewer, exhausted, nothing found.
#[derive(Clone, Debug, Serialize)]
pub struct Proof {
    pub max_events: u64,
    pub interleavings: u64,
    pub runs: u64,
    pub distinct_states: u64,
    pub elapsed_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct ShortestJson {
    /// Events of the shortest violating run found (null if nothing violates).
    pub events: Option<u64>,
    /// Proven: no violating run within `events - 1` events.
    pub proven: bool,
    pub proof: Option<Proof>,
    /// Searches run, the full one included.
    pub searches: u32,
    /// Seconds of all the searches together.
    pub total_elapsed_s: f64,
}

/// What `check --json` prints. The counts are those of the search at the bounds as given (with
/// `--shortest`, the full search; the deepening searches are in `shortest`).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub scenario: String,
    /// Operations of the one client (payment path; 1 elsewhere).
    pub operations: u32,
    pub requests: u32,
    /// Attempts per operation (the scenario's `max_attempts` caps `--attempts`); null on paths
    /// without a retrying client.
    pub attempts: Option<u32>,
    /// The derived scenario's work in words.
    pub work: String,
    pub semantics: Semantics,
    pub history: HistoryView,
    pub bounds: BoundsJson,
    pub prune_states: bool,
    /// Whether the partial-order reduction was in effect (never under the ordered view).
    pub reduction: bool,
    /// Whether the model's labels were left out of state keys (`--no-symmetry` turns it off).
    pub symmetry: bool,
    pub interleavings: u64,
    pub runs: u64,
    pub pruned: u64,
    pub sleep_blocked: u64,
    pub truncated: u64,
    pub time_limited: u64,
    pub distinct_states: u64,
    pub max_depth: u64,
    pub sampled_points: u64,
    pub exhausted: bool,
    pub violations: u64,
    pub by_invariant: BTreeMap<String, u64>,
    pub elapsed_s: f64,
    pub states_per_sec: f64,
    /// Worker threads the search used.
    pub threads: usize,
    pub first_violation: Option<FirstViolation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shortest: Option<ShortestJson>,
}

fn semantics_name(s: Semantics) -> &'static str {
    crate::seedfile::semantics_name(s)
}

fn on_off(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

pub fn text(sum: &Summary, s: &Scenario, args: &Args) -> String {
    let mut o = String::new();
    let b = &sum.bounds;
    let _ = writeln!(o, "check {} --exhaustive: {}", sum.scenario, sum.work);
    let _ = writeln!(o, "  semantics:  {}", sum.semantics.describe());
    let history = match sum.history {
        HistoryView::Relevant => "relevant",
        HistoryView::PerNode => "per-node",
        HistoryView::Ordered => "ordered",
        HistoryView::Ignored => "ignored",
    };
    let reduction = match (sum.reduction, args.no_reduce) {
        (false, false) => "off (the ordered view commutes nothing)",
        (r, _) => on_off(r),
    };
    let _ = writeln!(
        o,
        "  states:     {history} history view, state pruning {}, partial-order reduction {reduction}, symmetry {}",
        on_off(sum.prune_states),
        on_off(sum.symmetry)
    );
    if s.path() == models::scenario::Path::Outbox && !s.liveness {
        let _ = writeln!(
            o,
            "  judged:     duplicates, phantoms and order only: a message may be late past every poll, so a lost event is not told from a late one"
        );
    }
    let limit = |v: Option<u64>| v.map_or("unbounded".to_string(), |n| n.to_string());
    let _ = writeln!(
        o,
        "  bounds:     lost {}, duplicated {}, crashes {}, pauses {}, partitions {}{}; {} values per wide choice; events {}; runs {}",
        b.max_lost,
        b.max_duplicated,
        b.max_crashes,
        b.max_pauses,
        b.max_partitions,
        if sum.semantics.is_bounded() { format!(", late {}", b.max_late) } else { String::new() },
        b.max_values,
        limit(b.max_events),
        limit(b.max_runs)
    );
    let _ = writeln!(o, "interleavings:    {}", sum.interleavings);
    let _ = writeln!(o, "distinct states:  {}", sum.distinct_states);
    let _ = writeln!(o, "max depth:        {}", plural(sum.max_depth, "event", "events"));
    let _ = writeln!(
        o,
        "runs:             {} ({} pruned, {} sleep-blocked, {} truncated)",
        sum.runs, sum.pruned, sum.sleep_blocked, sum.truncated
    );
    let _ = writeln!(
        o,
        "elapsed:          {:.2} s, {} states/s, {}",
        sum.elapsed_s,
        sum.states_per_sec,
        plural(sum.threads as u64, "thread", "threads")
    );
    if sum.exhausted {
        let _ = writeln!(o, "exhausted:        every run within the bounds was explored");
    } else {
        let why = if sum.violations > 0 && args.stop_at_first {
            "stopped at the first violation (--stop-at-first)".to_string()
        } else {
            format!("stopped at --max-runs {}", limit(b.max_runs))
        };
        let _ = writeln!(o, "NOT exhausted — not a proof: {why}");
        if sum.violations == 0 && sum.semantics == Semantics::Untimed {
            // Untimed lets every timeout fire before any answer: often the search that does not end.
            let _ = writeln!(
                o,
                "hint:             --semantics bounded is often far smaller, and still a proof for every run whose delays stay within the scenario's bounds; --late N adds runs in which N messages or restarts are later than that"
            );
        }
    }
    if sum.truncated > 0 {
        let _ = writeln!(
            o,
            "warning: {} cut at --max-events {} and not judged: runs longer than that are not covered",
            plural(sum.truncated, "run was", "runs were"),
            limit(b.max_events)
        );
    }
    if sum.time_limited > 0 {
        let _ = writeln!(
            o,
            "warning: {} the scenario's time limit with events left (judged as they stood)",
            plural(sum.time_limited, "run reached", "runs reached")
        );
    }
    if sum.violations == 0 {
        let _ = writeln!(o, "no violation");
    } else {
        let _ = writeln!(o, "violating interleavings: {}", sum.violations);
        let w = sum.by_invariant.keys().map(|k| k.len()).max().unwrap_or(0);
        for (inv, n) in &sum.by_invariant {
            let _ = writeln!(o, "  {inv:w$}  {n:>8}");
        }
    }
    if let Some(f) = &sum.first_violation {
        let which = if sum.shortest.is_some() { "shortest counterexample" } else { "counterexample" };
        let _ = writeln!(o, "\n{which}: {}, {}", f.invariant, plural(f.events, "event", "events"));
        let _ = writeln!(o, "  {}", f.message);
        if let Some(sh) = &sum.shortest {
            let _ = match &sh.proof {
                Some(p) => writeln!(
                    o,
                    "  {} events; no violating run within {} events (proof: {} states, {} searches, {:.2} s)",
                    f.events, p.max_events, p.distinct_states, sh.searches, sh.total_elapsed_s
                ),
                None => writeln!(o, "  {} events; not proven shortest (a search was cut short: raise --max-runs)", f.events),
            };
        }
        let _ = writeln!(o, "\nseed file:  {} ({} tape)", f.seed_file, semantics_name(sum.semantics));
        let _ = writeln!(o, "replay it:  {}", f.replay);
        let _ = writeln!(o, "shrink it:  {} shrink {}", program(), shell_quote(&f.seed_file));
    }
    match &s.expect {
        Expect::Pass if sum.violations > 0 => {
            let _ = writeln!(o, "\nThis scenario is expected to pass: that is a finding.");
        }
        Expect::Violation(inv) if sum.violations == 0 && !sum.exhausted => {
            let _ = writeln!(o, "\nThis scenario is expected to violate {inv}; the search stopped before it found a violation.");
        }
        Expect::Violation(inv) if sum.violations == 0 => {
            let _ = writeln!(
                o,
                "\nThis scenario is expected to violate {inv}; within these bounds it does not (its trigger may need more operations, requests, attempts or faults)."
            );
        }
        _ => {}
    }
    o
}
