//! `idemsim compare`: the same seeds against each design, side by side.

use crate::{BadInput, Found, Result};
use models::Scenario;
use serde::Serialize;
use sim::Sim;
use std::fmt::Write;
use std::ops::Range;
use std::sync::atomic::AtomicU64;

#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for a terminal.
    Table,
    /// A GitHub-flavoured markdown table.
    Markdown,
    Csv,
    Json,
}

/// One design's line of the comparison.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Row {
    pub scenario: String,
    pub runs: u64,
    pub violating_runs: u64,
    pub rate: f64,
    /// 95% Wilson score interval of the violation rate.
    pub rate_low: f64,
    pub rate_high: f64,
    /// Runs that broke a safety invariant (money, replays, mismatches): the rate and interval
    /// above are of these.
    pub safety_violating_runs: u64,
    /// Runs that broke a liveness invariant (`settles`): an operation or key that never settled,
    /// an orphan charge, a run that hit its time limit.
    pub liveness_violating_runs: u64,
    pub liveness_rate: f64,
    /// Runs that broke anything.
    pub any_violating_runs: u64,
    pub first_failing_seed: Option<u64>,
    pub first_invariant: Option<String>,
    /// Attempts (requests sent, retries included) per operation started; on the outbox path,
    /// deliveries to the consumer per committed order.
    pub mean_attempts_per_operation: f64,
    /// Outbox path (null elsewhere): committed orders with no effect, all runs together.
    pub lost: Option<u64>,
    /// Effects beyond the first of an order.
    pub duplicate: Option<u64>,
    /// Effects of orders that never committed.
    pub phantom: Option<u64>,
    /// Effects applied before an earlier-committed effect of the same aggregate.
    pub out_of_order: Option<u64>,
    /// Outbox path only (null on the chain): orders placed whose row is not in the orders
    /// database at the end, all runs together (`invariants::outbox::Tally::not_committed`):
    /// mostly orders whose customer saw an error. No invariant judges it: what the design
    /// costs in availability.
    pub orders_not_committed: Option<u64>,
    pub mean_sim_time_ms: f64,
    /// Overload path (null elsewhere): requests reaching the service per operation during the
    /// outage, all runs together (the retry amplification `recovery` bounds; with tiers in
    /// between, their retries included).
    pub outage_amplification: Option<f64>,
    /// Attempts per operation over the whole run.
    pub amplification: Option<f64>,
    /// Mean time from the outage's end until goodput was back, over the runs where it came back.
    pub mean_recovery_ms: Option<f64>,
    /// Runs where goodput never came back to the target.
    pub unrecovered_runs: Option<u64>,
    /// Operations that succeeded, per second of arrivals, mean over runs.
    pub goodput_per_sec: Option<f64>,
    /// Requests sent, all runs together.
    pub total_attempts: Option<u64>,
    /// Mean time until every operation of a run had succeeded, over the runs where every one
    /// did (a herd's time to get through, on the contention workload).
    pub mean_all_done_ms: Option<f64>,
    /// Mean attempts and successes per bucket over the runs (for plots; not printed).
    #[serde(skip)]
    pub series: Option<Series>,
}

/// Mean offered load (attempts) and goodput per bucket of simulated time, over a design's runs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    pub bucket_us: u64,
    /// The outage window, if any.
    pub outage: Option<(u64, u64)>,
    /// Per bucket: mean attempts, mean successful operations.
    pub points: Vec<(f64, f64)>,
}

/// The 95% Wilson score interval for `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let z = 1.959_963_984_540_054_f64;
    let (n, p) = (n as f64, k as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

#[derive(Default)]
struct Acc {
    runs: u64,
    violating: u64,
    safety: u64,
    liveness: u64,
    first: Option<(u64, String)>,
    attempts: u64,
    operations: u64,
    sim_time_us: u64,
    events: Option<invariants::outbox::Tally>,
    overload: Option<OverloadAcc>,
}

/// The overload path's numbers, summed over runs.
#[derive(Default)]
struct OverloadAcc {
    outage_attempts: u64,
    /// Runs where every operation succeeded, and the sum of the times the last one did.
    all_done: u64,
    all_done_us: u64,
    outage_operations: u64,
    recovered: u64,
    unrecovered: u64,
    recovery_us: u64,
    goodput: u64,
    /// Per bucket: attempts and successes, summed over runs.
    sums: Vec<(u64, u64)>,
    buf: Vec<invariants::overload::Bucket>,
}

impl OverloadAcc {
    fn add(&mut self, s: &invariants::overload::Summary) {
        self.outage_attempts += s.outage_service_attempts;
        self.outage_operations += s.outage_operations;
        self.goodput += s.goodput;
        if let Some(t) = s.done_us {
            self.all_done += 1;
            self.all_done_us += t;
        }
        if let Some(r) = s.recovery_us {
            self.recovered += 1;
            self.recovery_us += r;
        }
        self.unrecovered += (s.outage && s.recovery_us.is_none()) as u64;
    }

    fn add_buckets(&mut self, buckets: &[(u64, u64)]) {
        if self.sums.len() < buckets.len() {
            self.sums.resize(buckets.len(), (0, 0));
        }
        for (s, b) in self.sums.iter_mut().zip(buckets) {
            s.0 += b.0;
            s.1 += b.1;
        }
    }

    fn merge(&mut self, o: OverloadAcc) {
        self.outage_attempts += o.outage_attempts;
        self.outage_operations += o.outage_operations;
        self.all_done += o.all_done;
        self.all_done_us += o.all_done_us;
        self.recovered += o.recovered;
        self.unrecovered += o.unrecovered;
        self.recovery_us += o.recovery_us;
        self.goodput += o.goodput;
        self.add_buckets(&o.sums);
    }
}

impl Acc {
    /// Run `seed` and count it, attempts per operation included (they need the history).
    fn record(&mut self, sim: &mut Sim<models::world::Node>, model: &models::world::World, seed: u64) {
        let o = sim.run_seed(model, seed);
        self.runs += 1;
        self.sim_time_us += o.stats.sim_time_us;
        let t = model.tally(sim);
        self.operations += t.operations;
        self.attempts += t.attempts;
        if let Some(e) = t.events {
            self.add_events(e);
        }
        if t.overload.is_some() {
            let acc = self.overload.get_or_insert_with(Default::default);
            let mut buf = std::mem::take(&mut acc.buf);
            if let Some(s) = model.overload_buckets(sim, &mut buf) {
                acc.add(&s);
                let per: Vec<(u64, u64)> = buf.iter().map(|b| (b.attempts as u64, b.goodput as u64)).collect();
                acc.add_buckets(&per);
            }
            acc.buf = buf;
        }
        if let Some(v) = o.verdict.violation() {
            self.violating += 1;
            self.safety += v.invariants().any(|i| !invariants::is_liveness(i)) as u64;
            self.liveness += v.invariants().any(invariants::is_liveness) as u64;
            self.first_at(seed, &v.invariant);
        }
    }

    /// Keep the lowest failing seed, whichever thread found it.
    fn first_at(&mut self, seed: u64, invariant: &str) {
        if !matches!(&self.first, Some((f, _)) if *f <= seed) {
            self.first = Some((seed, invariant.to_string()));
        }
    }

    fn add_events(&mut self, e: invariants::outbox::Tally) {
        let t = self.events.get_or_insert_with(Default::default);
        t.lost += e.lost;
        t.duplicate += e.duplicate;
        t.phantom += e.phantom;
        t.out_of_order += e.out_of_order;
        if let Some(n) = e.not_committed {
            *t.not_committed.get_or_insert(0) += n;
        }
    }

    fn merge(&mut self, a: Acc) {
        if let Some(e) = a.events {
            self.add_events(e);
        }
        if let Some(o) = a.overload {
            self.overload.get_or_insert_with(Default::default).merge(o);
        }
        self.runs += a.runs;
        self.violating += a.violating;
        self.safety += a.safety;
        self.liveness += a.liveness;
        self.attempts += a.attempts;
        self.operations += a.operations;
        self.sim_time_us += a.sim_time_us;
        if let Some((seed, inv)) = a.first {
            self.first_at(seed, &inv);
        }
    }
}

/// Run `seeds` of `scenario` on `threads` threads, counting attempts per operation as well.
pub fn measure(scenario: &Scenario, seeds: Range<u64>, threads: usize, progress: Option<&AtomicU64>) -> Row {
    let model = scenario.model();
    let a = sim::runner::par_seeds(seeds, threads, progress, Sim::new, |sim, a: &mut Acc, seed| a.record(sim, &model, seed), Acc::merge);
    let (lo, hi) = wilson(a.safety, a.runs);
    let div = |x: f64, n: u64| if n == 0 { 0.0 } else { x / n as f64 };
    Row {
        scenario: scenario.name.clone(),
        runs: a.runs,
        violating_runs: a.safety,
        rate: div(a.safety as f64, a.runs),
        rate_low: lo,
        rate_high: hi,
        safety_violating_runs: a.safety,
        liveness_violating_runs: a.liveness,
        liveness_rate: div(a.liveness as f64, a.runs),
        any_violating_runs: a.violating,
        first_failing_seed: a.first.as_ref().map(|f| f.0),
        first_invariant: a.first.map(|f| f.1),
        mean_attempts_per_operation: div(a.attempts as f64, a.operations),
        mean_sim_time_ms: div(a.sim_time_us as f64 / 1000.0, a.runs),
        lost: a.events.map(|e| e.lost),
        duplicate: a.events.map(|e| e.duplicate),
        phantom: a.events.map(|e| e.phantom),
        out_of_order: a.events.map(|e| e.out_of_order),
        orders_not_committed: a.events.and_then(|e| e.not_committed),
        outage_amplification: a.overload.as_ref().map(|o| o.outage_attempts as f64 / o.outage_operations.max(1) as f64),
        amplification: a.overload.as_ref().map(|_| div(a.attempts as f64, a.operations)),
        mean_recovery_ms: a.overload.as_ref().and_then(|o| (o.recovered > 0).then(|| o.recovery_us as f64 / 1000.0 / o.recovered as f64)),
        unrecovered_runs: a.overload.as_ref().map(|o| o.unrecovered),
        goodput_per_sec: a.overload.as_ref().map(|o| {
            let secs = scenario.overload().fleet.duration_us as f64 / 1e6;
            div(o.goodput as f64 / secs, a.runs)
        }),
        total_attempts: a.overload.as_ref().map(|_| a.attempts),
        mean_all_done_ms: a.overload.as_ref().and_then(|o| (o.all_done > 0).then(|| o.all_done_us as f64 / 1000.0 / o.all_done as f64)),
        series: a.overload.map(|o| {
            let d = scenario.overload();
            Series {
                bucket_us: d.bounds.bucket_us,
                outage: d.server.outage.map(|w| (w.start_us, w.start_us + w.duration_us)),
                points: o.sums.iter().map(|&(at, ok)| (div(at as f64, a.runs), div(ok as f64, a.runs))).collect(),
            }
        }),
    }
}

pub fn run(
    scenarios: &[String],
    seeds: Range<u64>,
    threads: usize,
    swarm: bool,
    format: Format,
    plot: Option<&std::path::Path>,
) -> Result<Found> {
    if scenarios.is_empty() {
        return Err(BadInput("compare needs at least one SCENARIO".into()));
    }
    let mut loaded = Vec::new();
    for s in scenarios {
        let mut sc = crate::input::load_scenario(s)?;
        sc.swarm |= swarm;
        loaded.push(sc);
    }
    if let Some(p) = plot {
        crate::plot::check_path(p)?;
    }
    if plot.is_some() && !loaded.iter().any(|s| s.overload.is_some()) {
        return Err(BadInput(
            "--plot draws overload scenarios (offered load and goodput over time): none of these has an [overload] table".into(),
        ));
    }
    distinct(scenarios, &loaded)?;
    let total = (seeds.end - seeds.start) * loaded.len() as u64;
    let rows = crate::explore::with_progress(total, |progress| {
        loaded.iter().map(|s| measure(s, seeds.clone(), threads, progress)).collect::<Vec<_>>()
    });
    print!("{}", render(&rows, format, &seeds));
    if let Some(path) = plot {
        crate::plot::draw(path, &rows)?;
        eprintln!("plot: {} (mean over seeds {}..{} of each design)", path.display(), seeds.start, seeds.end);
    }
    Ok(if rows.iter().any(|r| r.any_violating_runs > 0) { Found::Violation } else { Found::Nothing })
}

/// Two or more designs, each once: the same argument twice, or two that load to the same
/// scenario (a copied file, a preset saved unchanged) but for what no run reads (name,
/// description, expect), would compare a design with itself.
fn distinct(args: &[String], loaded: &[Scenario]) -> Result<()> {
    if let [only] = args {
        return Err(BadInput(format!(
            "compare needs two or more different scenarios, got only {only}: add another, or run one with `idemsim explore {only}`"
        )));
    }
    let unnamed = |s: &Scenario| Scenario { name: String::new(), description: String::new(), expect: models::Expect::Pass, ..s.clone() };
    for (j, b) in args.iter().enumerate() {
        for (i, a) in args[..j].iter().enumerate() {
            if a == b {
                return Err(BadInput(format!("{a} is given twice: compare needs two or more different scenarios (drop one)")));
            }
            if unnamed(&loaded[i]) == unnamed(&loaded[j]) {
                return Err(BadInput(format!(
                    "{a} and {b} are the same scenario (they differ at most in name, description or expect): compare needs two or more different scenarios (drop one, or edit it)"
                )));
            }
        }
    }
    Ok(())
}

fn pct(x: f64) -> String {
    format!("{:.2}%", 100.0 * x)
}

pub fn render(rows: &[Row], format: Format, seeds: &Range<u64>) -> String {
    let events = rows.iter().any(|r| r.lost.is_some());
    let mut header =
        vec!["scenario", "runs", "safety", "rate", "95% interval", "settles", "rate", "first failing seed", "attempts/op", "mean sim time"];
    if events {
        header.extend(["lost", "duplicate", "phantom", "out of order", "not committed"]);
    }
    let overload = rows.iter().any(|r| r.amplification.is_some());
    if overload {
        header.extend(["amplification (outage)", "amplification", "recovery", "unrecovered", "goodput/s", "attempts", "all done"]);
    }
    let opt = |x: Option<u64>| x.map_or("-".to_string(), |n| n.to_string());
    let optf = |x: Option<f64>, unit: &str| x.map_or("-".to_string(), |v| format!("{v:.2}{unit}"));
    let cells = |r: &Row| {
        let mut c = vec![
            r.scenario.clone(),
            r.runs.to_string(),
            r.safety_violating_runs.to_string(),
            pct(r.rate),
            format!("{} - {}", pct(r.rate_low), pct(r.rate_high)),
            r.liveness_violating_runs.to_string(),
            pct(r.liveness_rate),
            r.first_failing_seed.map_or("-".into(), |s| format!("{s} ({})", r.first_invariant.as_deref().unwrap_or(""))),
            format!("{:.2}", r.mean_attempts_per_operation),
            format!("{:.1} ms", r.mean_sim_time_ms),
        ];
        if events {
            c.extend([opt(r.lost), opt(r.duplicate), opt(r.phantom), opt(r.out_of_order), opt(r.orders_not_committed)]);
        }
        if overload {
            c.extend([
                optf(r.outage_amplification, ""),
                optf(r.amplification, ""),
                match (r.mean_recovery_ms, r.unrecovered_runs) {
                    (Some(v), _) => format!("{v:.1} ms"),
                    (None, Some(n)) if n > 0 => "never".to_string(),
                    _ => "-".to_string(),
                },
                opt(r.unrecovered_runs),
                r.goodput_per_sec.map_or("-".to_string(), |v| format!("{v:.0}")),
                opt(r.total_attempts),
                r.mean_all_done_ms.map_or("-".to_string(), |v| format!("{v:.1} ms")),
            ]);
        }
        c
    };
    let mut out = String::new();
    match format {
        Format::Json => {
            let v = serde_json::json!({"seeds": {"start": seeds.start, "end": seeds.end}, "rows": rows});
            out = serde_json::to_string_pretty(&v).expect("json") + "\n";
        }
        Format::Csv => {
            out.push_str("scenario,runs,safety_violating_runs,rate,rate_low,rate_high,liveness_violating_runs,liveness_rate,first_failing_seed,first_invariant,mean_attempts_per_operation,mean_sim_time_ms,lost,duplicate,phantom,out_of_order,outage_amplification,amplification,mean_recovery_ms,unrecovered_runs,goodput_per_sec,total_attempts,mean_all_done_ms,orders_not_committed\n");
            let opt = |x: Option<u64>| x.map_or(String::new(), |n| n.to_string());
            let optf = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v:.4}"));
            for r in rows {
                let _ = writeln!(
                    out,
                    "{},{},{},{:.6},{:.6},{:.6},{},{:.6},{},{},{:.4},{:.3},{},{},{},{},{},{},{},{},{},{},{},{}",
                    r.scenario,
                    r.runs,
                    r.safety_violating_runs,
                    r.rate,
                    r.rate_low,
                    r.rate_high,
                    r.liveness_violating_runs,
                    r.liveness_rate,
                    r.first_failing_seed.map_or(String::new(), |s| s.to_string()),
                    r.first_invariant.as_deref().unwrap_or(""),
                    r.mean_attempts_per_operation,
                    r.mean_sim_time_ms,
                    opt(r.lost),
                    opt(r.duplicate),
                    opt(r.phantom),
                    opt(r.out_of_order),
                    optf(r.outage_amplification),
                    optf(r.amplification),
                    optf(r.mean_recovery_ms),
                    opt(r.unrecovered_runs),
                    optf(r.goodput_per_sec),
                    opt(r.total_attempts),
                    optf(r.mean_all_done_ms),
                    opt(r.orders_not_committed)
                );
            }
        }
        Format::Markdown => {
            let _ = writeln!(out, "| {} |", header.join(" | "));
            let align: String = (0..header.len()).map(|i| if i == 0 || i == 7 { "---|" } else { "---:|" }).collect();
            let _ = writeln!(out, "|{align}");
            for r in rows {
                let _ = writeln!(
                    out,
                    "| {} |",
                    cells(r).iter().map(|c| if c == &r.scenario { format!("`{c}`") } else { c.clone() }).collect::<Vec<_>>().join(" | ")
                );
            }
        }
        Format::Table => {
            let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
            let widths: Vec<usize> =
                (0..header.len()).map(|i| body.iter().map(|r| r[i].chars().count()).chain([header[i].len()]).max().unwrap_or(0)).collect();
            let line = |cells: &[String]| {
                let mut l = String::new();
                for (i, c) in cells.iter().enumerate() {
                    let pad = widths[i] - c.chars().count();
                    if i == 0 || i == 7 {
                        l.push_str(c);
                        l.push_str(&" ".repeat(pad));
                    } else {
                        l.push_str(&" ".repeat(pad));
                        l.push_str(c);
                    }
                    l.push_str("  ");
                }
                l.trim_end().to_string()
            };
            let _ = writeln!(out, "{}", line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>()));
            for r in &body {
                let _ = writeln!(out, "{}", line(r));
            }
            let _ = writeln!(
                out,
                "(seeds {}..{} for every design; safety: runs breaking a safety invariant (exactly_once_charge, mismatch_rejected, \
                 replay_fidelity, effectively_once_event, per_aggregate_order), interval 95% Wilson; settles: runs breaking liveness{})",
                seeds.start,
                seeds.end,
                if events {
                    "; lost, duplicate, phantom, out of order: effects over all runs; not committed: orders placed whose row is not in the orders database at the end (mostly: the customer saw an error), over all runs, outbox path only; attempts/op on the outbox path: deliveries per committed order"
                } else if overload {
                    "; overload: amplification (outage) is requests reaching the service per operation during the outage (tiers' retries included), amplification the clients' attempts per operation over the run, recovery the mean time from the outage's end until goodput was back (over the runs where it came back; unrecovered: runs where it never did), goodput/s successful operations per second of arrivals, attempts the requests the clients sent in all runs, all done the mean time until every operation had succeeded (over the runs where every one did)"
                } else {
                    ""
                }
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_interval_matches_known_values() {
        let (lo, hi) = wilson(0, 100);
        assert!(lo < 1e-9 && (hi - 0.037).abs() < 0.001, "{lo} {hi}");
        let (lo, hi) = wilson(50, 100);
        assert!((lo - 0.4038).abs() < 0.001 && (hi - 0.5962).abs() < 0.001, "{lo} {hi}");
    }
}
