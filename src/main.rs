//! The `idemsim` command line: see `idemsim --help` and README.md.

use clap::{Parser, Subcommand};
use idemsim::input::{default_threads, parse_threads};
use idemsim::shrink::Budget;
use idemsim::{check, compare, explore, list, replay, shrunk, BadInput, Found};
use models::run::Backend;
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
SCENARIO is a preset name (see `idemsim list`) or a path to a TOML scenario file
(start one with `idemsim list --toml payment/setnx-everysec > my.toml`).

Exit status: 0 nothing violated, 1 a violation was found (or reproduced), 2 bad input.

Typical session:
  idemsim explore payment/setnx-everysec          # find a double charge, shrink it, explain it
  idemsim replay idemsim-seeds/<file>.shrunk.toml # read it as a timeline (or --format mermaid)
  idemsim shrink idemsim-seeds/<file>.toml        # shrink any seed file (explore --no-shrink, check)
  idemsim compare payment/setnx-everysec payment/setnx-always payment/durable-on-conflict
  idemsim check payment/durable-on-conflict --exhaustive --crashes 1 --lost 1   # every run, not a sample";

/// Deterministic simulation testing for idempotency and retry designs: explore seeds, replay and
/// shrink a failing run, compare designs, check every run of a small scenario.
#[derive(Parser)]
#[command(name = "idemsim", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List the presets with their expected verdict, or print one as a TOML scenario file.
    List {
        /// Print this preset as a TOML scenario file to start your own from.
        #[arg(long, value_name = "PRESET")]
        toml: Option<String>,
        /// One JSON array of {name, expect, description}.
        #[arg(long, conflicts_with = "toml")]
        json: bool,
    },
    /// Run many seeds of a scenario on all cores; on a violation, write a seed file, shrink it
    /// (within a deterministic budget) and explain the shrunk run.
    #[command(after_help = "Exit status: 0 no violation, 1 a violation was found, 2 bad input.")]
    Explore {
        /// A preset name or a TOML scenario file.
        scenario: String,
        /// How many seeds to run (all shards together; at least N with --shard K/N).
        #[arg(long, default_value_t = 100_000)]
        runs: u64,
        /// The first seed: runs seeds S..S+N.
        #[arg(long, default_value_t = 0, value_name = "S")]
        seed: u64,
        /// Worker threads, at most 1024 [default: all cores].
        #[arg(long, value_name = "T", default_value_t = default_threads(), hide_default_value = true, value_parser = parse_threads)]
        threads: usize,
        /// Run only part K of N equal parts of the seed range (for CI matrices); merge the
        /// `--json` results with `idemsim merge`.
        #[arg(long, value_name = "K/N", value_parser = parse_shard)]
        shard: Option<sim::Shard>,
        /// Draw a fresh fault profile per seed (some runs without a fault, some with a lot).
        #[arg(long)]
        swarm: bool,
        /// Print one JSON object (scenario, runs, violations, runs_per_sec, first_violation, ...).
        #[arg(long)]
        json: bool,
        /// Directory for the seed file of the first violation.
        #[arg(long, value_name = "DIR", default_value = explore::DEFAULT_SAVE_DIR)]
        save: PathBuf,
        /// The simulator: native (idemsim's scheduler; its runs replay and shrink) or madsim (the
        /// same actors on madsim 0.2; a seed means another run there, replayed by seed only).
        #[arg(long, value_name = "B", default_value = "native", value_parser = parse_backend)]
        backend: Backend,
        /// Overload scenarios: draw offered load and goodput over simulated time (mean over the
        /// first 1,000 seeds at most) into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
        /// Do not shrink the first violation (print it as found).
        #[arg(long)]
        no_shrink: bool,
        /// Shrink the first violation within this many candidate runs (and 2,000 simulated events
        /// a run): a deterministic bound, the same on every machine. When it runs out, the
        /// result is smaller but not proven 1-minimal.
        #[arg(long, value_name = "RUNS", default_value_t = idemsim::shrink::EXPLORE_RUNS, conflicts_with = "no_shrink")]
        shrink_budget: u64,
    },
    /// Check every run of a small scenario within bounds (exhaustive search), not a sample of
    /// seeds; on a violation, write the counterexample as a seed file.
    #[command(after_help = CHECK_HELP)]
    Check(check::Args),
    /// Merge `explore --json` results of all N shards of one search (each once), or of whole
    /// searches of adjacent seed ranges, into the summary one machine would give.
    Merge {
        /// `explore --json` outputs (`-` reads standard input).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Replay one run as a timeline: every message, loss, crash, pause, write, fsync and
    /// observation with its simulated time, the violation at the end.
    #[command(
        after_help = "Examples:\n  idemsim replay idemsim-seeds/payment-setnx-everysec-seed-6.toml\n  idemsim replay payment/setnx-everysec --seed 6 --format mermaid"
    )]
    Replay {
        /// A seed file, or a SCENARIO together with --seed.
        input: String,
        /// Run SCENARIO with this seed.
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// With SCENARIO --seed: swarm mode, as `explore --swarm` ran it.
        #[arg(long)]
        swarm: bool,
        #[arg(long, value_enum, default_value_t = replay::Format::Text)]
        format: replay::Format,
        /// Also log every event through `tracing`, one span per actor, simulated time first (stderr).
        #[arg(long, short)]
        verbose: bool,
        /// The simulator [default: the seed file's, else native]; a seed file replays only on its
        /// own (the same seed is another run on the other). madsim replays seeds only.
        #[arg(long, value_name = "B", value_parser = parse_backend)]
        backend: Option<Backend>,
    },
    /// Shrink a failing run to a 1-minimal counterexample and write it as a seed file.
    #[command(
        after_help = "Exit status: 0 nothing to shrink (the run, or every seed a bare SCENARIO searched, violates nothing),\n1 a violation, shrunk, 2 bad input.\n\nExamples:\n  idemsim shrink idemsim-seeds/payment-setnx-everysec-seed-6.toml\n  idemsim shrink payment/setnx-everysec --out seeds/payment-setnx-everysec.toml   # first failing seed"
    )]
    Shrink {
        /// A seed file; or a SCENARIO with --seed; or a SCENARIO alone (its first failing seed).
        input: String,
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        #[arg(long)]
        swarm: bool,
        /// Where to write the shrunk seed file [default: next to the input, `.shrunk.toml`].
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        #[arg(long)]
        json: bool,
        /// At most this many candidate runs (and 2,000 simulated events a run); past it the
        /// result is smaller but not proven 1-minimal.
        #[arg(long, value_name = "RUNS", default_value_t = idemsim::shrink::MAX_RUNS)]
        budget: u64,
    },
    /// Run the same seeds against each design and print violation rates side by side (on the
    /// native backend).
    Compare {
        /// Two or more different presets or TOML scenario files.
        #[arg(required = true)]
        scenarios: Vec<String>,
        #[arg(long, default_value_t = 20_000)]
        runs: u64,
        #[arg(long, default_value_t = 0, value_name = "S")]
        seed: u64,
        #[arg(long, value_name = "T", default_value_t = default_threads(), hide_default_value = true, value_parser = parse_threads)]
        threads: usize,
        #[arg(long)]
        swarm: bool,
        #[arg(long, value_enum, default_value_t = compare::Format::Table)]
        format: compare::Format,
        /// Overload scenarios: draw offered load and goodput over simulated time (mean over the
        /// seeds), one line per design, the outage shaded, into this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<PathBuf>,
    },
}

fn parse_shard(s: &str) -> Result<sim::Shard, String> {
    sim::Shard::parse(s)
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse::<Backend>().map_err(|_| "use native or madsim".to_string())
}

const CHECK_HELP: &str = "\
SCENARIO is shrunk to one client with --operations operations (1 unless said), one after another,
each sent --requests times at once (same key), with at most --attempts attempts; an outbox
scenario to --requests orders (1 to 4) of one aggregate through its relays (two at most). Each
fault kind it has may strike up to its bound.
The search is untimed on the payment path and bounded on the outbox path unless --semantics (or
--timed) says otherwise; the output says which. A pass is a proof only when the output says
\"exhausted\" and no run was truncated.

Exit status: 0 no violation within the bounds, 1 a violation (its seed file replays and shrinks
like explore's), 2 bad input (a missing --exhaustive, a bad bound).

Examples:
  idemsim check payment/durable-on-conflict --exhaustive --crashes 1 --lost 1
  idemsim check payment/select-then-insert --exhaustive --lost 1 --shortest";

fn run(cli: Cli) -> idemsim::Result<Found> {
    match cli.cmd {
        Cmd::List { toml, json } => list::run(toml.as_deref(), json),
        Cmd::Explore { scenario, runs, seed, threads, shard, swarm, json, save, backend, plot, no_shrink, shrink_budget } => {
            let shrink = (!no_shrink).then_some(Budget::runs(shrink_budget));
            explore::run(&explore::Args { scenario, runs, seed, threads, shard, swarm, json, save, backend, plot, shrink })
        }
        Cmd::Check(args) => check::run(&args),
        Cmd::Merge { files, json } => explore::merge_files(&files, json),
        Cmd::Replay { input, seed, swarm, format, verbose, backend } => {
            let input = replay::RunInput::resolve(&input, seed, swarm, backend)?;
            replay::run(&input, format, verbose)
        }
        Cmd::Shrink { input, seed, swarm, out, json, budget } => {
            if budget == 0 {
                return Err(BadInput("--budget 0: use 1 or more candidate runs".into()));
            }
            match shrunk::resolve(&input, seed, swarm, default_threads())? {
                Some(input) => shrunk::command(&input, out, json, Budget::runs(budget)),
                None => Ok(Found::Nothing),
            }
        }
        Cmd::Compare { scenarios, runs, seed, threads, swarm, format, plot } => {
            let seeds = idemsim::input::seed_range(seed, runs)?;
            compare::run(&scenarios, seeds, threads, swarm, format, plot.as_deref())
        }
    }
}

fn main() -> ExitCode {
    // `idemsim replay ... | head` closes the pipe early: end quietly, as other Unix tools do,
    // rather than panicking on the next print (Rust ignores SIGPIPE by default).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(Found::Nothing) => ExitCode::SUCCESS,
        Ok(Found::Violation) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
