//! `idemsim check SCENARIO --exhaustive`: every run of a small scenario within bounds, by
//! depth-first search with state pruning and partial-order reduction (`sim::check_exhaustive`),
//! instead of a sample of seeds. A counterexample is written as a seed file with its (untimed)
//! tape, which `replay` and `shrink` read like any other.

use crate::seedfile::SeedFile;
use crate::{program, shell_quote, BadInput, Found, Result};
use models::run::Source;
use models::{Expect, Role, Scenario};
use sim::{Bounds, Counterexample, ExhaustiveOptions, HistoryView, Semantics};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Instant;

mod report;
pub use report::{text, BoundsJson, FirstViolation, Proof, ShortestJson, Summary};

/// What the checkers may be judged under: the payment checkers are sound under the relevant view
/// (their default), the per-node one and the ordered one; a view that hides the history is never
/// offered.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum History {
    /// Each node's own sequence of what the checkers read of its observations (the model's
    /// `observation_key`: e.g. no times) is part of a state (prunes most; allows the reduction).
    Relevant,
    /// Each node's own sequence of observations is part of a state (prunes more; allows the
    /// partial-order reduction).
    PerNode,
    /// The global order of observations is part of a state (always sound; no reduction).
    Ordered,
}

/// `--semantics`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SemanticsArg {
    Untimed,
    Bounded,
    Timed,
}

/// `idemsim check`'s flags.
#[derive(Clone, Debug, clap::Args)]
pub struct Args {
    /// A preset name or a TOML scenario file (it is shrunk to one operation; see --operations and
    /// --requests).
    pub scenario: String,
    /// Enumerate every run within the bounds (depth-first, pruning states already seen,
    /// commuting independent events). Required: it is check's only mode.
    #[arg(long)]
    pub exhaustive: bool,
    /// Concurrent same-key requests of the one operation (1 to 17); on the outbox path, orders
    /// of one aggregate (1 to 4).
    #[arg(long, value_name = "N", default_value_t = 2)]
    pub requests: u32,
    /// Operations of the one client, one after another (1 to 3; payment path): a bug between
    /// two payments (a replay built from another payment's charge) needs a second.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub operations: u32,
    /// Attempts per operation: 1 = no retries (capped at the scenario's max_attempts).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub attempts: u32,
    /// At most N lost messages per run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub lost: u32,
    /// At most N duplicated messages per run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub duplicated: u32,
    /// At most N crashes per run (all crashable nodes together).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub crashes: u32,
    /// At most N pauses per run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub pauses: u32,
    /// At most N partitions per run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub partitions: u32,
    /// At most N late messages and restarts per run: a late message (on any link) arrives at
    /// any later moment, past delay_us_max, and holds no timer back (a TCP retransmission, a
    /// stalled reader); a late restart comes past restart_delay_us_max. Bounded semantics only
    /// (the outbox default; --semantics bounded elsewhere): untimed lets every message and
    /// restart be late.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub late: u32,
    /// A choice over a wide range (restart delay, pause length, jitter) is tried at N spread
    /// values, both ends included (2 or more).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub values: u32,
    /// Cut runs at N events (cut runs are counted as truncated, not judged) [default: no bound].
    #[arg(long, value_name = "N")]
    pub max_events: Option<u64>,
    /// Stop after N runs (the search is then not exhausted: not a proof) [default: no limit].
    #[arg(long, value_name = "N")]
    pub max_runs: Option<u64>,
    /// How time is explored: untimed (any pending delivery or restart may happen next; timers
    /// in deadline order), bounded (as untimed, but a message arrives at most delay_us_max after
    /// its send, a restart at most restart_delay_us_max after its crash, and no timer fires past
    /// such a deadline: every timed run is one of its runs; --late N lets N messages or restarts
    /// be later)
    /// or timed (the
    /// model's delays and fault times, enumerated) [default: untimed for payment, bounded for
    /// outbox, whose pollers make the untimed search endless].
    #[arg(long, value_enum, value_name = "S", conflicts_with = "timed")]
    pub semantics: Option<SemanticsArg>,
    /// Short for --semantics timed.
    #[arg(long)]
    pub timed: bool,
    /// Crash only these roles (comma-separated, from the scenario's targets.crash), e.g.
    /// `--crash relay,consumer --crashes 2`; each node still crashes at most
    /// faults.crashes_per_node_max times (1 in every preset) [default: every role in targets.crash].
    #[arg(long, value_name = "ROLES", value_delimiter = ',')]
    pub crash: Vec<String>,
    /// Do not merge runs that reach a state already explored.
    #[arg(long)]
    pub no_prune: bool,
    /// No partial-order reduction (explore every order of independent events).
    #[arg(long)]
    pub no_reduce: bool,
    /// No symmetry reduction (keep the model's labels, such as which copy of a request a
    /// message is, in state keys, and try each of several identical events).
    #[arg(long)]
    pub no_symmetry: bool,
    /// What of the history a state holds: relevant (each node's own observations, only what the
    /// checkers read of them), per-node (each node's own observations, times included) or
    /// ordered (the global order; no reduction) [default: relevant for payment, per-node for
    /// outbox].
    #[arg(long, value_enum, value_name = "VIEW")]
    pub history: Option<History>,
    /// Stop at the first violation (the search is then not exhausted).
    #[arg(long, conflicts_with = "shortest")]
    pub stop_at_first: bool,
    /// Find the violating run with the fewest events, and prove none shorter exists (a search
    /// one event shallower that finds nothing).
    #[arg(long)]
    pub shortest: bool,
    /// Print one JSON object (scenario, semantics, bounds, interleavings, distinct_states,
    /// exhausted, violations, first_violation, ...).
    #[arg(long)]
    pub json: bool,
    /// Directory for the counterexample's seed file.
    #[arg(long, value_name = "DIR", default_value = crate::explore::DEFAULT_SAVE_DIR)]
    pub save: PathBuf,
    /// Worker threads, each searching its own subtrees of the choice tree; the verdict, the
    /// counterexample and the distinct states are the same for any number (with nothing found,
    /// run counts can differ) [default: all cores].
    #[arg(long, value_name = "T", default_value_t = crate::input::default_threads(), hide_default_value = true, value_parser = crate::input::parse_threads)]
    pub threads: usize,
}

fn bad(flag: &str, value: impl std::fmt::Display, why: &str) -> BadInput {
    BadInput(format!("{flag} {value}: {why}"))
}

/// The options the flags ask for, checked.
pub fn options(args: &Args) -> Result<ExhaustiveOptions> {
    if args.values < 2 {
        return Err(bad("--values", args.values, "use 2 or more (a wide choice is always tried at both ends of its range)"));
    }
    if args.max_events == Some(0) {
        return Err(bad("--max-events", 0, "use 1 or more, or leave it out for no depth bound"));
    }
    if args.max_runs == Some(0) {
        return Err(bad("--max-runs", 0, "use 1 or more, or leave it out for no run limit"));
    }
    let mut o = Scenario::exhaustive_options(Bounds {
        max_lost: args.lost,
        max_duplicated: args.duplicated,
        max_crashes: args.crashes,
        max_pauses: args.pauses,
        max_partitions: args.partitions,
        max_late: args.late,
        max_events: args.max_events.unwrap_or(u64::MAX),
        max_values: args.values,
        max_runs: args.max_runs.unwrap_or(u64::MAX),
    });
    o.prune_states = !args.no_prune;
    o.reduction = !args.no_reduce;
    o.symmetry = !args.no_symmetry;
    if let Some(h) = args.history {
        o.history = history_view(h);
    }
    o.stop_at_first = args.stop_at_first;
    o.threads = args.threads;
    Ok(o)
}

fn history_view(h: History) -> HistoryView {
    match h {
        History::Relevant => HistoryView::Relevant,
        History::PerNode => HistoryView::PerNode,
        History::Ordered => HistoryView::Ordered,
    }
}

/// The semantics asked for, or the path's default (`Path::exhaustive_semantics`).
fn semantics(args: &Args, s: &Scenario) -> Semantics {
    match (args.timed, args.semantics) {
        (true, _) | (_, Some(SemanticsArg::Timed)) => Semantics::Timed,
        (_, Some(SemanticsArg::Untimed)) => Semantics::Untimed,
        (_, Some(SemanticsArg::Bounded)) => Semantics::Bounded,
        (false, None) => s.path().exhaustive_semantics(),
    }
}

/// `--crash ROLES`: narrow the crash targets to these roles, each one the scenario crashes.
fn crash_only(s: &mut Scenario, names: &[String]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    let name_of = |r: &Role| serde_json::to_value(r).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
    let crashed: Vec<String> = s.targets.crash.iter().filter(|r| s.plays(**r)).map(name_of).collect();
    let mut roles = Vec::new();
    for n in names {
        let role = serde_json::from_value::<Role>(serde_json::Value::String(n.clone())).ok();
        match role {
            Some(r) if s.targets.crash.contains(&r) && s.plays(r) => roles.push(r),
            // Accepted, it would crash nothing, and a pass would read as a proof it is not.
            Some(r @ (Role::Completer | Role::Provider)) if s.path().roles().contains(&r) && !s.plays(r) => {
                let idle = if r == Role::Completer {
                    "has no completer ([payment.server.completer] kind = \"none\")"
                } else {
                    "charges a ledger table in its key store ([payment.server] charge = \"local_ledger\"): no request reaches its provider"
                };
                let why = format!("{} {idle}, so nothing would crash; it crashes {}", s.name, crashed.join(", "));
                return Err(bad("--crash", n, &why));
            }
            _ => return Err(bad("--crash", n, &format!("{} crashes only {} (targets.crash of its roles)", s.name, crashed.join(", ")))),
        }
    }
    s.targets.crash = roles;
    Ok(())
}

/// The scenario the search runs: SCENARIO shrunk to `--operations` operations, each sent as
/// `--requests` concurrent same-key requests with at most `--attempts` attempts.
pub fn derive(scenario: &Scenario, operations: u32, requests: u32, attempts: u32) -> Result<Scenario> {
    if !(1..=3).contains(&operations) {
        return Err(bad("--operations", operations, "use 1 to 3 operations of the one client"));
    }
    if operations > 1 && scenario.path() != models::scenario::Path::Payment {
        return Err(bad(
            "--operations",
            operations,
            "only a payment check has operations (an outbox check's orders are --requests); drop --operations",
        ));
    }
    if !(1..=17).contains(&requests) {
        return Err(bad("--requests", requests, "use 1 to 17 concurrent same-key requests"));
    }
    if attempts == 0 {
        return Err(bad("--attempts", 0, "use 1 (no retries) or more"));
    }
    scenario.exhaustive_scenario_of(operations, requests, attempts).map_err(|e| BadInput(format!("{}: {e}", scenario.name)))
}

/// One fault bound: the flag, its value, what the fault needs (each a condition and what it
/// says when it fails), and the most the scenario can produce with the knob that sets it.
struct FaultBound(&'static str, u32, Vec<(bool, String)>, u64, String);

/// A bound on a fault the scenario cannot produce changes nothing, and its pass would read as a
/// proof it is not: refused, naming what keeps the fault out. A bound above the most the
/// scenario can produce searches what that most gives: said on stderr.
fn check_fault_bounds(s: &Scenario, b: &Bounds) -> Result<()> {
    use sim::Model as _;
    let model = s.model();
    let (nodes, f) = (&model.config().nodes, &model.config().faults);
    let count = |p: fn(&sim::NodeSpec) -> bool| nodes.iter().filter(|n| p(n)).count() as u64;
    let (crashable, pausable, lossy) = (count(|n| n.crashable), count(|n| n.pausable), count(|n| n.lossy));
    let none_of = |table: &str| format!("targets.{table} names none of the roles its checked scenario runs");
    let no_link = || "a link loses, duplicates or is cut only between two roles of targets.lossy, and it has fewer".to_string();
    // A Redis store with a replica cuts itself off from it (a split brain), drawn by the store
    // from partition_probability whatever targets.lossy and partitions_max say.
    let store_cuts = matches!(s.payment.as_ref().map(|p| p.store), Some(models::knobs::KeyStore::Redis { replica_failover: true, .. }));
    // Crashes and pauses: a probability, roles to strike, and up to a number per role.
    let per_node = |flag, bound, (p, p_zero): (f64, &str), roles: u64, table: &str, (per_role, per_role_name): (u32, &str)| {
        FaultBound(
            flag,
            bound,
            vec![(p > 0.0, p_zero.to_string()), (roles > 0, none_of(table)), (per_role > 0, format!("faults.{per_role_name} = 0"))],
            roles * per_role as u64,
            format!("{roles} role(s) to {table}, each up to faults.{per_role_name} = {per_role} times"),
        )
    };
    let kinds: [FaultBound; 5] = [
        FaultBound(
            "--lost",
            b.max_lost,
            vec![(f.loss_probability > 0.0, "faults.loss_probability = 0".into()), (lossy >= 2, no_link())],
            u64::MAX,
            String::new(),
        ),
        FaultBound(
            "--duplicated",
            b.max_duplicated,
            vec![(f.duplicate_probability > 0.0, "faults.duplicate_probability = 0".into()), (lossy >= 2, no_link())],
            u64::MAX,
            String::new(),
        ),
        per_node(
            "--crashes",
            b.max_crashes,
            (f.crash_probability + f.process_crash_probability, "faults.crash_probability = 0 (and no process crashes)"),
            crashable,
            "crash",
            (f.crashes_per_node_max, "crashes_per_node_max"),
        ),
        per_node(
            "--pauses",
            b.max_pauses,
            (f.pause_probability, "faults.pause_probability = 0"),
            pausable,
            "pause",
            (f.pauses_per_node_max, "pauses_per_node_max"),
        ),
        FaultBound(
            "--partitions",
            b.max_partitions,
            vec![
                (f.partition_probability > 0.0, "faults.partition_probability = 0".into()),
                (store_cuts || lossy >= 2, no_link()),
                (store_cuts || f.partitions_max > 0, "faults.partitions_max = 0".into()),
            ],
            if store_cuts { u64::MAX } else { f.partitions_max as u64 },
            "faults.partitions_max".into(),
        ),
    ];
    for FaultBound(flag, bound, needs, most, how) in kinds {
        if bound == 0 {
            continue;
        }
        if let Some((_, why)) = needs.iter().find(|(holds, _)| !holds) {
            return Err(bad(
                flag,
                bound,
                &format!("{} can have none ({why}): drop {flag}, or give the scenario what the fault needs", s.name),
            ));
        }
        if bound as u64 > most {
            eprintln!("note: {flag} {bound}: {} can have at most {most} ({how}); the search is the one {flag} {most} gives", s.name);
        }
    }
    Ok(())
}

pub fn run(args: &Args) -> Result<Found> {
    if !args.exhaustive {
        return Err(BadInput(format!(
            "check needs --exhaustive (its only mode: every run within the bounds), e.g. `idemsim check {} --exhaustive --lost 1`; to sample seeds instead, use `idemsim explore {}`",
            shell_quote(&args.scenario),
            shell_quote(&args.scenario)
        )));
    }
    let scenario = crate::input::load_scenario(&args.scenario)?;
    let opts = options(args)?;
    let mut opts = opts;
    if args.attempts != 1 && scenario.path() == models::scenario::Path::Outbox {
        let why = "an outbox check has no client to retry (its relay and consumer retry by their design); drop --attempts";
        return Err(bad("--attempts", args.attempts, why));
    }
    let mut s = derive(&scenario, args.operations, args.requests, args.attempts)?;
    opts.semantics = semantics(args, &s);
    if args.late > 0 && opts.semantics != Semantics::Bounded {
        let why = match opts.semantics {
            Semantics::Untimed => "untimed lets every message and restart be late already; add --semantics bounded to let only N be",
            _ => "a late message is a bounded search's fault (timed runs draw their delays); use --semantics bounded instead",
        };
        return Err(bad("--late", args.late, why));
    }
    // A message that may be late past every poll makes a lost event indistinguishable from a
    // late one: only safety is judged then (payment's small scenario judges only safety anyway).
    if matches!(opts.semantics.with_late(opts.bounds.max_late), Semantics::Untimed | Semantics::BoundedLate) {
        s.liveness = false;
    }
    if args.history.is_none() {
        opts.history = s.model().history_view();
    }
    crash_only(&mut s, &args.crash)?;
    if !args.crash.is_empty() && args.crashes == 0 {
        return Err(bad(
            "--crash",
            args.crash.join(","),
            "names the roles to crash, and --crashes N (1 or more) how many crashes: without it nothing crashes",
        ));
    }
    check_fault_bounds(&s, &opts.bounds)?;
    let started = Instant::now();
    let (report, found, shortest) = with_spinner(|p| {
        if args.shortest {
            let sh = s.shortest_counterexample(&opts, p);
            let found = sh.shortest.clone();
            (sh.full.clone(), found, Some(sh))
        } else {
            let r = s.check_exhaustive(&opts, p);
            let found = r.first.clone();
            (r, found, None)
        }
    });
    let total = started.elapsed().as_secs_f64();
    let first_violation = match &found {
        None => None,
        Some(c) => Some(save(&s, report.semantics, c, &args.save)?),
    };
    let b = &opts.bounds;
    let summary = Summary {
        scenario: s.name.clone(),
        operations: args.operations,
        requests: args.requests,
        attempts: s.max_attempts(),
        work: s.work_summary(),
        semantics: report.semantics,
        history: report.history,
        bounds: BoundsJson {
            max_lost: b.max_lost,
            max_duplicated: b.max_duplicated,
            max_crashes: b.max_crashes,
            max_pauses: b.max_pauses,
            max_partitions: b.max_partitions,
            max_late: b.max_late,
            max_values: b.max_values,
            max_events: args.max_events,
            max_runs: args.max_runs,
        },
        prune_states: report.prune_states,
        reduction: report.reduction,
        symmetry: report.symmetry,
        interleavings: report.interleavings,
        runs: report.runs,
        pruned: report.pruned,
        sleep_blocked: report.sleep_blocked,
        truncated: report.truncated,
        time_limited: report.time_limited,
        distinct_states: report.distinct_states,
        max_depth: report.max_depth,
        sampled_points: report.sampled_points,
        exhausted: report.exhausted,
        violations: report.violations,
        by_invariant: report.by_invariant.clone(),
        elapsed_s: round3(report.elapsed_s),
        states_per_sec: report.states_per_sec.round(),
        threads: opts.threads(),
        first_violation,
        shortest: shortest.map(|sh| ShortestJson {
            events: sh.shortest.as_ref().map(|c| c.events),
            proven: sh.proof.is_some(),
            proof: sh.proof.as_ref().map(|p| Proof {
                // The proof search was bounded at one event fewer than the counterexample.
                max_events: sh.shortest.as_ref().map_or(p.max_depth, |c| c.events - 1),
                interleavings: p.interleavings,
                runs: p.runs,
                distinct_states: p.distinct_states,
                elapsed_s: round3(p.elapsed_s),
            }),
            searches: sh.searches,
            total_elapsed_s: round3(total),
        }),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary).expect("a summary serializes"));
    } else {
        print!("{}", text(&summary, &s, args));
    }
    Ok(if summary.violations > 0 { Found::Violation } else { Found::Nothing })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Write the counterexample as a seed file: its tape, its semantics and the derived scenario
/// inline (it keeps the preset's name, so the name alone would replay another scenario).
fn save(s: &Scenario, semantics: Semantics, c: &Counterexample, dir: &Path) -> Result<FirstViolation> {
    let file = SeedFile {
        semantics,
        ..SeedFile::new(
            s.clone(),
            &Source::Tape(c.tape.clone()),
            Expect::Violation(c.violation.invariant.clone()),
            c.violation.message.clone(),
        )
    };
    let path = dir.join(format!("{}-check-{:08x}.toml", crate::input::slug(&s.name), c.history_hash as u32));
    file.write(&path)?;
    let shown = path.display().to_string();
    Ok(FirstViolation {
        invariant: c.violation.invariant.clone(),
        message: c.violation.message.clone(),
        events: c.events,
        tape: c.tape.clone(),
        history_hash: c.history_hash,
        replay: format!("{} replay {}", program(), shell_quote(&shown)),
        seed_file: shown,
    })
}

/// Run `work` with a spinner on stderr counting runs, if stderr is a terminal.
fn with_spinner<T: Send>(work: impl FnOnce(Option<&AtomicU64>) -> T + Send) -> T {
    let style = indicatif::ProgressStyle::with_template("{spinner} {pos} runs  {msg}  {elapsed}").expect("a valid template");
    crate::explore::drive(indicatif::ProgressBar::new_spinner().with_style(style), work)
}
