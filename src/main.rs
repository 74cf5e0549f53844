//! The `idemsim` command line: see `idemsim --help` and README.md.

use clap::{Parser, Subcommand};
use idemsim::{compare, explore, list, replay, shrink, BadInput, Found};
use std::path::PathBuf;
use std::process::ExitCode;

const AFTER_HELP: &str = "\
SCENARIO is a preset name (see `idemsim list`) or a path to a TOML scenario file
(start one with `idemsim list --toml payment/setnx-everysec > my.toml`).

Exit status: 0 nothing violated, 1 a violation was found (or reproduced), 2 bad input.

Typical session:
  idemsim explore payment/setnx-everysec          # find a double charge, write a seed file
  idemsim shrink idemsim-seeds/<file>.toml        # reduce it to a minimal counterexample
  idemsim replay idemsim-seeds/<file>.shrunk.toml # read it as a timeline (or --format mermaid)
  idemsim compare payment/setnx-everysec payment/setnx-always payment/durable-on-conflict";

/// Deterministic simulation testing for idempotency and retry designs: explore seeds, replay and
/// shrink a failing run, compare designs.
#[derive(Parser)]
#[command(name = "idemsim", version, after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
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
    /// Run many seeds of a scenario on all cores; on a violation, write a seed file and print the
    /// command that replays it.
    #[command(after_help = "Exit status: 0 no violation, 1 a violation was found, 2 bad input.")]
    Explore {
        /// A preset name or a TOML scenario file.
        scenario: String,
        /// How many seeds to run (all shards together).
        #[arg(long, default_value_t = 100_000)]
        runs: u64,
        /// The first seed: runs seeds S..S+N.
        #[arg(long, default_value_t = 0, value_name = "S")]
        seed: u64,
        /// Worker threads [default: all cores].
        #[arg(long, value_name = "T", default_value_t = default_threads(), hide_default_value = true)]
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
    },
    /// Merge `explore --json` results of the shards of one search into the summary one machine
    /// would give.
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
    },
    /// Shrink a failing run to a 1-minimal counterexample and write it as a seed file.
    #[command(
        after_help = "Examples:\n  idemsim shrink idemsim-seeds/payment-setnx-everysec-seed-6.toml\n  idemsim shrink payment/setnx-everysec --out seeds/payment-setnx-everysec.toml   # first failing seed"
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
    },
    /// Run the same seeds against each design and print violation rates side by side.
    Compare {
        /// Presets or TOML scenario files.
        #[arg(required = true)]
        scenarios: Vec<String>,
        #[arg(long, default_value_t = 20_000)]
        runs: u64,
        #[arg(long, default_value_t = 0, value_name = "S")]
        seed: u64,
        #[arg(long, value_name = "T", default_value_t = default_threads(), hide_default_value = true)]
        threads: usize,
        #[arg(long)]
        swarm: bool,
        #[arg(long, value_enum, default_value_t = compare::Format::Table)]
        format: compare::Format,
    },
}

fn parse_shard(s: &str) -> Result<sim::Shard, String> {
    sim::Shard::parse(s)
}

fn run(cli: Cli) -> idemsim::Result<Found> {
    match cli.cmd {
        Cmd::List { toml, json } => list::run(toml.as_deref(), json),
        Cmd::Explore { scenario, runs, seed, threads, shard, swarm, json, save } => {
            explore::run(&explore::Args { scenario, runs, seed, threads, shard, swarm, json, save })
        }
        Cmd::Merge { files, json } => explore::merge_files(&files, json),
        Cmd::Replay { input, seed, swarm, format, verbose } => {
            let input = replay::RunInput::resolve(&input, seed, swarm)?;
            replay::run(&input, format, verbose)
        }
        Cmd::Shrink { input, seed, swarm, out, json } => {
            let input = shrink::resolve(&input, seed, swarm, default_threads())?;
            shrink::command(&input, out, json)
        }
        Cmd::Compare { scenarios, runs, seed, threads, swarm, format } => {
            let end = seed.checked_add(runs).ok_or_else(|| BadInput(format!("--seed {seed} + --runs {runs} overflows")))?;
            compare::run(&scenarios, seed..end, threads, swarm, format)
        }
    }
}

fn main() -> ExitCode {
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
