//! Exhaustive bounded checks of payment presets: interleavings, distinct states, depth and
//! states per second (BENCHMARKS.md, "Exhaustive checks"). Asserts nothing about time.
//!
//! ```text
//! cargo run --release -p models --example exhaustive_bench                 # the tests' searches
//! cargo run --release -p models --example exhaustive_bench -- --large      # plus larger ones (~2 min)
//! cargo run --release -p models --example exhaustive_bench -- payment/durable-on-conflict \
//!     --requests 3 [--attempts 1] [--lost N] [--dup N] [--crashes N] [--pauses N] [--partitions N] \
//!     [--late N] [--values N] [--events N] [--runs N] [--timed | --bounded] [--ordered] [--no-prune] \
//!     [--no-reduce] [--shortest]
//! ```
//! `--reps N` (any form) runs each search N times and reports the median time.
use models::presets;
use models::Scenario;
use sim::{Bounds, ExhaustiveOptions, HistoryView, Semantics};

struct Case {
    preset: String,
    requests: u32,
    attempts: u32,
    opts: ExhaustiveOptions,
    /// Also find the counterexample with the fewest events, and prove it.
    shortest: bool,
}

fn case(preset: &str, requests: u32, attempts: u32, lost: u32, crashes: u32, values: u32) -> Case {
    let bounds = Bounds { max_lost: lost, max_crashes: crashes, max_values: values, ..Bounds::default() };
    Case { preset: preset.into(), requests, attempts, opts: Scenario::exhaustive_options(bounds), shortest: false }
}

const DURABLE: &str = "payment/durable-on-conflict";

/// The searches of `models/tests/exhaustive.rs`.
fn standard() -> Vec<Case> {
    vec![
        case(DURABLE, 2, 1, 1, 1, 4),
        case(DURABLE, 1, 2, 1, 0, 4),
        case(DURABLE, 1, 2, 0, 1, 2),
        case(DURABLE, 3, 1, 1, 0, 4),
        Case { shortest: true, ..case("payment/select-then-insert", 2, 1, 1, 0, 4) },
        Case { shortest: true, ..case("payment/setnx-everysec", 2, 1, 0, 1, 2) },
    ]
}

/// Larger searches, for scale.
fn large() -> Vec<Case> {
    let ordered = |c: Case| Case { opts: ExhaustiveOptions { history: HistoryView::Ordered, ..c.opts }, ..c };
    let unreduced = |c: Case| Case { opts: ExhaustiveOptions { reduction: false, ..c.opts }, ..c };
    vec![
        ordered(case(DURABLE, 2, 1, 1, 1, 4)),
        unreduced(case(DURABLE, 2, 1, 1, 1, 4)),
        case(DURABLE, 1, 2, 1, 1, 2),
        case(DURABLE, 3, 1, 0, 0, 4),
        case(DURABLE, 2, 2, 0, 0, 2),
        Case { shortest: true, ..case("payment/select-then-insert", 2, 1, 1, 1, 4) },
        Case { shortest: true, ..case("payment/async-commit", 2, 1, 0, 1, 2) },
        Case { shortest: true, ..case("payment/no-inflight-check", 2, 1, 0, 0, 4) },
        Case { shortest: true, ..case("payment/key-per-attempt", 1, 2, 1, 0, 4) },
        Case { shortest: true, ..case("payment/result-separate-write", 1, 2, 0, 1, 2) },
    ]
}

fn parse(args: &[String]) -> Case {
    let mut c = case(&args[0], 2, 1, 0, 0, 4);
    let mut i = 1;
    let num = |i: usize| -> u64 { args.get(i + 1).and_then(|v| v.parse().ok()).unwrap_or_else(|| panic!("{} needs a number", args[i])) };
    while i < args.len() {
        let b = &mut c.opts.bounds;
        let mut takes = true;
        match args[i].as_str() {
            "--requests" => c.requests = num(i) as u32,
            "--attempts" => c.attempts = num(i) as u32,
            "--lost" => b.max_lost = num(i) as u32,
            "--dup" => b.max_duplicated = num(i) as u32,
            "--crashes" => b.max_crashes = num(i) as u32,
            "--pauses" => b.max_pauses = num(i) as u32,
            "--partitions" => b.max_partitions = num(i) as u32,
            "--late" => b.max_late = num(i) as u32,
            "--values" => b.max_values = num(i) as u32,
            "--events" => b.max_events = num(i),
            "--runs" => b.max_runs = num(i),
            "--reps" => {}
            flag => {
                takes = false;
                match flag {
                    "--timed" => c.opts.semantics = Semantics::Timed,
                    "--bounded" => c.opts.semantics = Semantics::Bounded,
                    "--ordered" => c.opts.history = HistoryView::Ordered,
                    "--no-prune" => c.opts.prune_states = false,
                    "--no-reduce" => c.opts.reduction = false,
                    "--shortest" => c.shortest = true,
                    other => panic!("unknown argument {other}"),
                }
            }
        }
        i += if takes { 2 } else { 1 };
    }
    c
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let reps: usize = args.iter().position(|a| a == "--reps").and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(1);
    let cases = match args.first().map(String::as_str) {
        Some("--large") => standard().into_iter().chain(large()).collect(),
        Some(a) if !a.starts_with("--") => vec![parse(&args)],
        _ => standard(),
    };
    println!("| preset | req | att | bounds | view | interleavings | runs | distinct states | max depth | violating | time (s) | states/s | shortest counterexample |");
    println!("|---|--:|--:|---|---|--:|--:|--:|--:|--:|--:|--:|---|");
    for c in cases {
        let preset = presets::get(&c.preset).unwrap_or_else(|| panic!("no preset {}", c.preset));
        let s = preset.exhaustive_scenario(c.requests, c.attempts).expect("a valid exhaustive scenario");
        let mut times = Vec::new();
        let mut last = None;
        for _ in 0..reps.max(1) {
            let r = s.check_exhaustive(&c.opts, None);
            times.push((r.elapsed_s, r.states_per_sec));
            last = Some(r);
        }
        times.sort_by(|a, b| a.0.total_cmp(&b.0));
        let (elapsed, per_sec) = times[times.len() / 2];
        let r = last.expect("one rep");
        let b = &c.opts.bounds;
        let mut bound = String::new();
        for (n, what) in [
            (b.max_lost, "lost"),
            (b.max_duplicated, "dup"),
            (b.max_crashes, "crash"),
            (b.max_pauses, "pause"),
            (b.max_partitions, "partition"),
            (b.max_late, "late"),
        ] {
            if n > 0 {
                bound += &format!("{what} {n}, ");
            }
        }
        bound += &format!("values {}", b.max_values);
        if b.max_events != u64::MAX {
            bound += &format!(", events {}", b.max_events);
        }
        if !r.prune_states {
            bound += ", no pruning";
        }
        if !r.reduction {
            bound += ", no reduction";
        }
        if r.semantics == Semantics::Timed {
            bound += ", timed";
        }
        let found = match &r.first {
            None => "none".to_string(),
            Some(first) if c.shortest => {
                let sh = s.shortest_counterexample(&c.opts, None);
                let best = sh.shortest.as_ref().expect("found");
                let proof = sh.proof.as_ref().map_or("unproven".to_string(), |p| {
                    format!("none in {} (proof: {} states, {:.2} s)", best.events - 1, p.distinct_states, p.elapsed_s)
                });
                format!("{} events ({proof}); full search's first: {} events", best.events, first.events)
            }
            Some(first) => format!("first: {} events", first.events),
        };
        let exhausted = if r.exhausted { "" } else { " (not exhausted)" };
        println!(
            "| {} | {} | {} | {bound} | {:?} | {} | {} | {} | {} | {} | {elapsed:.2} | {per_sec:.0} | {found}{exhausted} |",
            c.preset, c.requests, c.attempts, r.history, r.interleavings, r.runs, r.distinct_states, r.max_depth, r.violations,
        );
    }
}
