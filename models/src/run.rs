//! Running a scenario: the one surface the command line, the tests and the benchmarks use.

use crate::outbox::OutboxModel;
use crate::payment::PaymentModel;
use crate::scenario::{Path, Scenario, Workload};
use crate::world::World;
use serde::{Deserialize, Serialize};
use sim::{
    Bounds, Choice, Counterexample, ExhaustiveOptions, ExhaustiveReport, ExploreReport, HistoryView, Outcome, Semantics, Sim, TraceEvent,
};
use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::sync::atomic::AtomicU64;

/// Everything one run leaves for a person to read.
#[derive(Clone, Debug)]
pub struct RunRecord {
    pub outcome: Outcome,
    /// The timeline (empty unless tracing was asked for).
    pub trace: Vec<TraceEvent>,
    /// Observations in order: time, node, what (as `Debug` text).
    pub history: Vec<(u64, usize, String)>,
    /// Every choice the run made: replaying these values reproduces it.
    pub tape: Vec<Choice>,
    pub node_names: Vec<String>,
}

/// How a run's choices are made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    Seed(u64),
    Tape(Vec<u32>),
}

/// Which simulator runs the actors. The same actors, faults and invariants run on both; a seed
/// means a different run on each (their schedulers and random streams differ).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// idemsim's own scheduler (`sim::Sim`): fast, replays tapes, shrinks.
    #[default]
    Native,
    /// madsim 0.2, the established deterministic runtime for async Rust: one madsim node per
    /// actor, messages over `madsim::net::Endpoint`, crashes via `Handle::kill` / `restart`.
    /// Replays by seed only (no tapes).
    Madsim,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Native, Backend::Madsim];
    pub fn name(self) -> &'static str {
        match self {
            Backend::Native => "native",
            Backend::Madsim => "madsim",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        Backend::ALL.into_iter().find(|b| b.name() == s).ok_or_else(|| format!("--backend {s:?}: use native or madsim"))
    }
}

impl Scenario {
    /// The runnable world of this scenario's path.
    pub fn model(&self) -> World {
        match self.path() {
            Path::Payment => World::Payment(PaymentModel::new(self)),
            Path::Outbox => World::Outbox(OutboxModel::new(self, self.outbox())),
            Path::Chain => World::Chain(crate::chain::ChainModel::new(self, self.chain())),
            Path::Overload => World::Overload(crate::overload::OverloadModel::new(self, self.overload())),
        }
    }

    /// Run seeds `seeds` on `threads` threads.
    pub fn explore(&self, seeds: Range<u64>, threads: usize, progress: Option<&AtomicU64>) -> ExploreReport {
        sim::explore(&self.model(), seeds, threads, progress)
    }

    /// Run seeds `seeds` on `threads` threads on `backend`.
    pub fn explore_with(&self, backend: Backend, seeds: Range<u64>, threads: usize, progress: Option<&AtomicU64>) -> ExploreReport {
        match backend {
            Backend::Native => self.explore(seeds, threads, progress),
            Backend::Madsim => sim::explore_madsim(&self.model(), seeds, threads, progress),
        }
    }

    /// One run on `backend`, recorded in full. madsim runs replay by seed only: a tape is refused
    /// (a tape is a native choice sequence), and the record's `tape` is empty.
    pub fn record_with(&self, backend: Backend, source: &Source, trace: bool) -> Result<RunRecord, String> {
        match (backend, source) {
            (Backend::Native, _) => Ok(self.record(source, trace)),
            (Backend::Madsim, Source::Tape(_)) => {
                Err("a choice tape replays only on the native backend; replay with --seed on madsim, or drop --backend madsim".into())
            }
            (Backend::Madsim, Source::Seed(seed)) => {
                let model = self.model();
                let run = sim::run_madsim_full(&model, *seed, trace);
                Ok(RunRecord {
                    history: run.history.iter().map(|e| (e.at_us, e.node, format!("{:?}", e.obs))).collect(),
                    trace: run.trace,
                    tape: Vec::new(),
                    node_names: sim::Model::config(&model).nodes.iter().map(|n| n.name.clone()).collect(),
                    outcome: run.outcome,
                })
            }
        }
    }

    /// One run, recorded in full (`trace`: with its timeline).
    pub fn record(&self, source: &Source, trace: bool) -> RunRecord {
        self.record_in(Semantics::Timed, source, trace)
    }

    /// One run in `semantics`, recorded in full. A tape found by an exhaustive check replays
    /// only in the semantics it was found in (`ExhaustiveReport::semantics`): an untimed tape
    /// read as a timed one is a different run. `record` is `record_in(Semantics::Timed, ..)`.
    pub fn record_in(&self, semantics: Semantics, source: &Source, trace: bool) -> RunRecord {
        let model = self.model();
        let mut sim = Sim::new();
        semantics.apply(&mut sim);
        sim.set_trace(trace);
        sim.choices.set_recording(true);
        let outcome = match source {
            Source::Seed(seed) => sim.run_seed(&model, *seed),
            Source::Tape(tape) => sim.run_tape(&model, tape),
        };
        RunRecord {
            history: sim.history().iter().map(|e| (e.at_us, e.node, format!("{:?}", e.obs))).collect(),
            trace: sim.trace().to_vec(),
            tape: sim.choices.recorded().to_vec(),
            node_names: sim::Model::config(&model).nodes.iter().map(|n| n.name.clone()).collect(),
            outcome,
        }
    }

    /// The small scenario an exhaustive check explores, derived from this one: the same design,
    /// fault kinds, fault targets and timings, shrunk to one operation of one client whose first
    /// request is fired `requests` times at once (same key, same payload), with at most
    /// `attempts` attempts. The result keeps this scenario's name; a seed file of a run found in
    /// it must record the derived scenario (or the name, `requests` and `attempts`), not the
    /// name alone.
    ///
    /// How the search's bounds map onto it (`sim::Bounds`):
    /// - "N concurrent same-key requests" is `workload.duplicates = N - 1` (2 requests:
    ///   `duplicates = 1`; 3 requests: `duplicates = 2`): copies of the first attempt, fired at
    ///   once; the client reads the first response.
    /// - `attempts` caps `payment.client.max_attempts` (never raises it): 1 = no retries; each
    ///   retry is one more request with the same key (or a fresh one, per the key policy), sent
    ///   after a timeout, a 409 or a 500. Retries are what the untimed semantics multiplies most
    ///   (a client's timeout may fire before any pending response arrives, and each backoff is
    ///   a choice), so keep them few: see BENCHMARKS.md, "Exhaustive checks".
    /// - A fault kind is explored only where its probability is strictly between 0 and 1; how
    ///   many strike is then the bound's business (`max_lost`, `max_duplicated`, `max_crashes`,
    ///   `max_pauses`, `max_partitions`), never the probability's. So every kind the scenario has
    ///   (probability > 0) gets probability 0.5, and a kind it does not have stays off: a bound
    ///   cannot switch on a fault the design is not exposed to. Which nodes a kind may hit is
    ///   `targets` as given (by default: server and store crash and pause; the client-server
    ///   links lose, duplicate and partition; the server-store link is a reliable connection),
    ///   less the nodes the design leaves idle (`Scenario::plays`). `max_crashes` counts crashes
    ///   of all crashable nodes together (each has `faults.crashes_per_node_max` slots).
    /// - Swarm mode is off (its drawn rates would be choices too). One server instance, and no
    ///   re-payment by the user (`workload.repay_probability = 0`).
    /// - The client's patience is not judged (`liveness = false`): the bound on attempts, and the
    ///   untimed semantics in which every attempt may time out, make any client give up; the
    ///   safety invariants are what a bounded search proves.
    /// - The server waits for every call (`call_timeout_us = 0`): in the untimed semantics a call
    ///   timeout may fire before any reply, which multiplies the runs about a hundredfold (1,182
    ///   interleavings of `payment/durable-on-conflict` with 2 requests become 106,528); the
    ///   error path after a timeout is covered by `explore`, not by the bounded search.
    /// - Message delays become 1-2 ms. The untimed semantics draws no delay at all (any pending
    ///   message may be delivered next); the timed one explores `Bounds::max_values` delays
    ///   spread over that range, ends included.
    /// - Everything else is kept: the fault phase, restart delays, pause and partition lengths
    ///   (choices over wide ranges are explored at `Bounds::max_values` spread values), the
    ///   client's timeout, backoff and attempts, the time limit.
    pub fn exhaustive_scenario(&self, requests: u32, attempts: u32) -> Result<Scenario, String> {
        self.exhaustive_scenario_of(1, requests, attempts)
    }

    /// `exhaustive_scenario` with `operations` operations of the one client, one after another
    /// (payment path, 1 to 3): a bug between two payments (a replay of the other one's result)
    /// needs a second.
    pub fn exhaustive_scenario_of(&self, operations: u32, requests: u32, attempts: u32) -> Result<Scenario, String> {
        if !(1..=3).contains(&operations) {
            return Err(format!("{operations} operations: use 1 to 3"));
        }
        if operations > 1 && self.path() != Path::Payment {
            return Err(format!("{operations} operations: only a payment check has operations (an outbox check has orders: --requests)"));
        }
        if !(1..=17).contains(&requests) {
            return Err(format!("{requests} concurrent requests: use 1 to 17 (workload.duplicates 0 to 16)"));
        }
        if attempts == 0 {
            return Err("attempts = 0: use 1 (no retries) or more".into());
        }
        let mut s = self.clone();
        s.swarm = false;
        match s.path() {
            Path::Payment => s.exhaustive_payment(operations, requests, attempts),
            Path::Outbox => s.exhaustive_outbox(requests)?,
            Path::Overload => {
                return Err("an exhaustive check of the overload path is not offered: its verdicts are about load over time (a fleet, buckets, bounds), which an untimed search has no notion of; explore it with seeds".into())
            }
            Path::Chain => {
                return Err("an exhaustive check of the checkout chain is too large a search: check its halves, a payment preset and an outbox preset, with --exhaustive, and explore the chain with seeds".into())
            }
        }
        let f = &mut s.faults;
        for p in [
            &mut f.loss_probability,
            &mut f.duplicate_probability,
            &mut f.crash_probability,
            &mut f.process_crash_probability,
            &mut f.pause_probability,
            &mut f.partition_probability,
        ] {
            *p = if *p > 0.0 { 0.5 } else { 0.0 };
        }
        f.delay_us_min = 1_000;
        f.delay_us_max = 2_000;
        s.validate()?;
        Ok(s)
    }

    fn exhaustive_payment(&mut self, operations: u32, requests: u32, attempts: u32) {
        let s = self;
        let attempts = attempts.min(s.payment().client.max_attempts);
        let ops = if operations == 1 { "1 operation".to_string() } else { format!("{operations} operations") };
        s.description = format!(
            "{} (exhaustive: 1 client, {ops}, {requests} concurrent same-key requests, at most {attempts} attempts)",
            s.description
        );
        // Operations of one user, who does not pay again (a second payment is a second
        // operation), on one server instance: each instance more multiplies the runs by the load
        // balancer's choices; `explore` covers several.
        let w = s.workload().clone();
        s.workload =
            Some(Workload { clients: 1, operations_per_client: operations, duplicates: requests - 1, repay_probability: 0.0, ..w });
        // No fault on a node the design leaves idle (a local ledger's provider, a completer it
        // does not have): it would change nothing and multiply the states (about fourfold).
        let server = s.payment().server;
        for roles in [&mut s.targets.crash, &mut s.targets.pause, &mut s.targets.lossy] {
            roles.retain(|&r| crate::payment::plays(&server, r));
        }
        let p = s.payment_mut();
        p.server.instances = 1;
        p.server.call_timeout_us = 0;
        p.client.max_attempts = attempts;
        s.liveness = false;
    }

    /// The outbox path's small scenario: `orders` orders of one aggregate (for an outbox:
    /// `requests` is the number of orders), the design's relays (two at most), and pollers that give up soon after the
    /// heal: in the untimed semantics every poll is a choice point, so the liveness window is cut
    /// to what one round trip through relay, broker and consumer needs.
    fn exhaustive_outbox(&mut self, orders: u32) -> Result<(), String> {
        if orders > 4 {
            return Err(format!("{orders} orders: an exhaustive outbox check takes 1 to 4 (--requests)"));
        }
        let s = self;
        let o = s.outbox_mut();
        // Two relays at most: a second one is what a claim (or its absence) is about, and each
        // one more multiplies the interleavings.
        o.relay.instances = o.relay.instances.min(2);
        let relays = if o.relay.instances == 1 { "one relay" } else { "two relays" };
        o.orders.count = orders;
        o.orders.aggregates = 1;
        o.broker.partitions = 1;
        // Pollers back off fast and stop soon after the heal: each poll is a handful of events
        // the search must interleave with everything else.
        for (poll_us, idle_us) in [
            (&mut o.relay.poll_interval_us, &mut o.relay.idle_poll_us_max),
            (&mut o.consumer.poll_interval_us, &mut o.consumer.idle_poll_us_max),
        ] {
            *poll_us = (*poll_us).max(200_000);
            *idle_us = 10_000_000;
        }
        // Every call's timeout may fire before its answer (any delivery may be postponed), and each
        // retry is one more message to interleave: long timeouts keep the retries few.
        for t in [
            &mut o.service.call_timeout_us,
            &mut o.relay.call_timeout_us,
            &mut o.consumer.call_timeout_us,
            &mut o.broker.producer_timeout_us,
        ] {
            *t = (*t).max(400_000);
        }
        s.settle_bound_us = s.settle_bound_us.min(1_000_000);
        s.description = format!("{} (exhaustive: {orders} order(s) of one aggregate, {relays})", s.description);
        Ok(())
    }

    /// Options for an exhaustive check of a payment scenario within `bounds`: untimed (sound for
    /// the payment invariants, which are all safety properties plus "settles eventually", which
    /// timers still decide), state pruning and partial-order reduction on, and the history view
    /// the payment checkers are sound under (`PaymentModel::HISTORY_VIEW`).
    pub fn exhaustive_options(bounds: Bounds) -> ExhaustiveOptions {
        ExhaustiveOptions {
            semantics: Semantics::Untimed,
            bounds,
            prune_states: true,
            reduction: true,
            history: PaymentModel::HISTORY_VIEW,
            ..ExhaustiveOptions::default()
        }
    }

    /// Search every run of this scenario within `opts` (`sim::check_exhaustive`); give it a
    /// small scenario (`exhaustive_scenario`). `progress` counts runs started. An
    /// `opts.history` of `Ignored` is raised to `PaymentModel::HISTORY_VIEW`: the payment
    /// checkers read the history, and a view that hides it would merge states that judge
    /// differently (the report's `history` says which view was used). A counterexample's tape
    /// replays with `sim::exhaustive::replay(&scenario.model(), report.semantics, &tape)`, or
    /// with its timeline by `record_in(report.semantics, &Source::Tape(tape), true)`.
    pub fn check_exhaustive(&self, opts: &ExhaustiveOptions, progress: Option<&AtomicU64>) -> ExhaustiveReport {
        let mut opts = opts.clone();
        let model = self.model();
        if opts.history == HistoryView::Ignored {
            opts.history = model.history_view();
        }
        sim::check_exhaustive(&model, &opts, progress)
    }

    /// The violating run with the fewest events within `opts`, and the search that proves no
    /// shorter one exists. Iterative deepening on `Bounds::max_events`: the search at the bounds
    /// as given; then, while a violation was found in E events, a search bounded at E - 1
    /// events (stopping at its first violation); the last one, which finds none, is the proof.
    /// Sound because a depth-bounded search misses no run within its depth (state pruning keeps
    /// the depth a state was explored from; the reduction commutes events, which keeps a run's
    /// length). "Fewest events" is the length of the timeline a person reads; a report's `first`
    /// is instead the shortest *tape* among the runs that search judged, which under pruning is
    /// not always the run with the fewest events.
    pub fn shortest_counterexample(&self, opts: &ExhaustiveOptions, progress: Option<&AtomicU64>) -> Shortest {
        let full = self.check_exhaustive(&ExhaustiveOptions { stop_at_first: false, ..opts.clone() }, progress);
        let mut out = Shortest { shortest: full.first.clone(), proof: None, searches: 1, full };
        let mut o = ExhaustiveOptions { stop_at_first: true, ..opts.clone() };
        while let Some(best) = &out.shortest {
            if !out.full.exhausted || best.events == 0 {
                break; // A search cut by `max_runs` proves nothing.
            }
            o.bounds.max_events = best.events - 1;
            let r = self.check_exhaustive(&o, progress);
            out.searches += 1;
            match r.first {
                Some(shorter) => out.shortest = Some(shorter),
                None if r.exhausted => {
                    out.proof = Some(r);
                    break;
                }
                None => break,
            }
        }
        out
    }
}

/// What `Scenario::shortest_counterexample` found.
#[derive(Clone, Debug)]
pub struct Shortest {
    /// The search at the bounds as given (not stopped at a violation): counts, verdict.
    pub full: ExhaustiveReport,
    /// The violating run with the fewest events; `None` if nothing violates within the bounds.
    pub shortest: Option<Counterexample>,
    /// The search bounded at one event fewer than `shortest`: exhausted, no violation. `None`
    /// if nothing violates, or if a search was cut short (then `shortest` is not proven).
    pub proof: Option<ExhaustiveReport>,
    /// Searches run, the full one included.
    pub searches: u32,
}
