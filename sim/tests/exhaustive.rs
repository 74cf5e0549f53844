//! The exhaustive explorer, checked on toy models whose runs can be counted by hand.

use crate::fault_kinds::{fault_spotter, CloneConfig, FaultsTotal};
use sim::exhaustive::replay;
use sim::*;

/// Toy actors: chains and bursts of messages (for counting), and a tiny payment path with a
/// check-then-act race (for finding a planted bug).
#[derive(Clone, Debug, Hash)]
enum Node {
    /// Sends itself `k` messages, each after the previous one arrived.
    Chain {
        k: u32,
        got: u32,
    },
    /// Sends `k` numbered messages to node `to` at start.
    Burst {
        k: u32,
        to: NodeId,
    },
    /// Keeps what it receives, in order.
    Sink {
        got: Vec<(NodeId, u32)>,
    },
    /// Sends a payment request to node 1 at start, and a second one with the same key after
    /// `work` steps of other work.
    Client {
        work: u32,
    },
    /// Charges a request if the store says its key is new: by a lookup then an insert (racy),
    /// or by one atomic claim.
    Server {
        atomic: bool,
    },
    Store {
        has_key: bool,
    },
    /// Sends node 1 a message and sets a timer of `after_us` at start; observes the timer.
    Racer {
        after_us: u64,
    },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Msg {
    Step(u32),
    Item(u32),
    Pay(u32),
    Lookup(u32),
    Insert,
    Claim(u32),
    Answer { req: u32, new: bool },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Obs {
    Got(NodeId, u32),
    Charged(u32),
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = ();
    type Obs = Obs;
    type Record = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match *self {
            Node::Chain { k, .. } if k > 0 => ctx.send(ctx.me(), Msg::Step(0)),
            Node::Burst { k, to } => (0..k).for_each(|i| ctx.send(to, Msg::Item(i))),
            Node::Racer { after_us } => {
                ctx.send(1, Msg::Item(0));
                ctx.set_timer(after_us, ());
            }
            Node::Client { work } => {
                ctx.send(1, Msg::Pay(0));
                ctx.send(if work == 0 { 1 } else { ctx.me() }, if work == 0 { Msg::Pay(1) } else { Msg::Step(0) });
            }
            _ => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (Node::Chain { k, got }, Msg::Step(i)) => {
                *got += 1;
                ctx.observe(Obs::Got(ctx.me(), i));
                if i + 1 < *k {
                    ctx.send(ctx.me(), Msg::Step(i + 1));
                }
            }
            (Node::Client { work }, Msg::Step(i)) => {
                ctx.send(if i + 1 < *work { ctx.me() } else { 1 }, if i + 1 < *work { Msg::Step(i + 1) } else { Msg::Pay(1) })
            }
            (Node::Sink { got }, Msg::Item(i)) => {
                got.push((from, i));
                ctx.observe(Obs::Got(from, i));
            }
            (Node::Server { atomic }, Msg::Pay(r)) => ctx.send(2, if *atomic { Msg::Claim(r) } else { Msg::Lookup(r) }),
            (Node::Server { atomic }, Msg::Answer { req, new: true }) => {
                if !*atomic {
                    ctx.send(2, Msg::Insert);
                }
                ctx.observe(Obs::Charged(req));
            }
            (Node::Server { .. }, Msg::Answer { new: false, .. }) => {}
            (Node::Store { has_key }, Msg::Lookup(req)) => ctx.send(from, Msg::Answer { req, new: !*has_key }),
            (Node::Store { has_key }, Msg::Insert) => *has_key = true,
            (Node::Store { has_key }, Msg::Claim(req)) => {
                ctx.send(from, Msg::Answer { req, new: !*has_key });
                *has_key = true;
            }
            (node, msg) => panic!("{node:?} got {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, _: ()) {
        ctx.observe(Obs::Got(ctx.me(), u32::MAX));
    }
    fn on_crash(&mut self, _: &[()]) {}
}

/// A scenario of toy nodes; its checker flags a double charge, and (for the bounds tests) a
/// run in which fewer than `expect_got` items arrived.
struct Toy {
    config: SimConfig,
    nodes: Vec<Node>,
    expect_got: usize,
    /// A planted bug: fail if node 1 did all its steps before node 0 did any.
    planted: bool,
    /// Fail if node 0's timer fired before node 1 got its message (see `Node::Racer`).
    timer_race: bool,
}

impl Toy {
    fn new(nodes: Vec<Node>, faults: FaultProfile) -> Self {
        let specs = (0..nodes.len()).map(|i| NodeSpec::new(format!("n{i}")).lossy(true)).collect();
        Toy {
            config: SimConfig { nodes: specs, faults, swarm: false, time_limit_us: 10_000_000 },
            nodes,
            expect_got: 0,
            planted: false,
            timer_race: false,
        }
    }
    fn untimed(nodes: Vec<Node>) -> Self {
        Self::new(nodes, FaultProfile::default())
    }
}

impl Model for Toy {
    type Actor = Node;
    fn config(&self) -> &SimConfig {
        &self.config
    }
    fn build(&self, nodes: &mut Vec<Node>) {
        nodes.extend(self.nodes.iter().cloned());
    }
    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let charges = run.history.iter().filter(|e| matches!(e.obs, Obs::Charged(_))).count();
        let got = run.history.iter().filter(|e| matches!(e.obs, Obs::Got(_, _)) && e.node != 0).count();
        let first_of = |n| run.history.iter().position(|e| e.node == n);
        let last_of = |n| run.history.iter().rposition(|e| e.node == n);
        let fail = |invariant: &str, message: String| Verdict::Violation(Violation::new(invariant, message, vec![]));
        if charges > 1 {
            return fail("exactly_once_charge", format!("key charged {charges} times"));
        }
        if self.planted && matches!((last_of(1), first_of(0)), (Some(l), Some(f)) if l < f) {
            return fail("planted_order", "node 1 finished before node 0 started".into());
        }
        if self.timer_race && matches!((first_of(0), first_of(1)), (Some(t), Some(g)) if t < g) {
            return fail("timer_first", "the timer fired before the message arrived".into());
        }
        if got < self.expect_got {
            return fail("all_delivered", format!("{got} of {} items arrived", self.expect_got));
        }
        Verdict::Pass
    }
}

fn opts(prune: bool, reduce: bool, history: HistoryView) -> ExhaustiveOptions {
    ExhaustiveOptions { prune_states: prune, reduction: reduce, history, collect_final_states: true, ..ExhaustiveOptions::default() }
}

fn factorial(n: u64) -> u64 {
    (1..=n).product()
}

/// (k1 + k2 + ...)! / (k1! k2! ...): the interleavings of independent sequences.
fn multinomial(ks: &[u64]) -> u64 {
    factorial(ks.iter().sum()) / ks.iter().map(|&k| factorial(k)).product::<u64>()
}

fn chains(n: usize, k: u32) -> Toy {
    Toy::untimed((0..n).map(|_| Node::Chain { k, got: 0 }).collect())
}

#[test]
fn independent_chains_interleave_as_the_multinomial_says() {
    for (n, k) in [(2, 1), (2, 3), (2, 4), (3, 2)] {
        let model = chains(n, k);
        let full = check_exhaustive(&model, &opts(false, false, HistoryView::PerNode), None);
        assert!(full.exhausted);
        assert_eq!(full.interleavings, multinomial(&vec![k as u64; n]), "{n} chains of {k}");
        assert_eq!(full.max_depth, n as u64 * k as u64);
        // Every event commutes with every other: one representative run is enough.
        let reduced = check_exhaustive(&model, &opts(false, true, HistoryView::PerNode), None);
        assert_eq!(reduced.interleavings, 1, "{n} chains of {k}");
        assert_eq!(reduced.final_states, full.final_states);
        // The states are the points of the lattice of progress: (k + 1)^n.
        let pruned = check_exhaustive(&model, &opts(true, false, HistoryView::PerNode), None);
        assert_eq!(pruned.distinct_states, (k as u64 + 1).pow(n as u32), "{n} chains of {k}");
        assert_eq!(pruned.final_states, full.final_states);
        assert_eq!(full.distinct_states, pruned.distinct_states, "counting needs no pruning");
    }
}

/// Two senders, each bursting `k` messages to its own sink: all 2k deliveries are pending at once.
fn bursts(k: u32) -> Toy {
    Toy::untimed(vec![Node::Burst { k, to: 2 }, Node::Burst { k, to: 3 }, Node::Sink { got: Vec::new() }, Node::Sink { got: Vec::new() }])
}

#[test]
fn reduction_keeps_every_final_state_while_the_count_drops() {
    for k in 1..=3u64 {
        let model = bursts(k as u32);
        let full = check_exhaustive(&model, &opts(false, false, HistoryView::PerNode), None);
        assert_eq!(full.interleavings, factorial(2 * k), "any order of 2k pending deliveries");
        // Deliveries to the same sink do not commute (it keeps their order); to different sinks they do.
        let reduced = check_exhaustive(&model, &opts(false, true, HistoryView::PerNode), None);
        assert_eq!(reduced.interleavings, factorial(k) * factorial(k), "k! orders per sink");
        assert_eq!(reduced.final_states.len() as u64, factorial(k) * factorial(k));
        assert_eq!(reduced.final_states, full.final_states, "reduction dropped a reachable final state");
        // Both together, and pruning alone, still reach every final state.
        for (prune, reduce) in [(true, false), (true, true)] {
            let r = check_exhaustive(&model, &opts(prune, reduce, HistoryView::PerNode), None);
            assert_eq!(r.final_states, full.final_states, "prune {prune} reduce {reduce}");
            assert!(r.interleavings <= full.interleavings);
        }
        // If the checker may read the global order of observations, nothing commutes.
        let ordered = check_exhaustive(&model, &opts(false, true, HistoryView::Ordered), None);
        assert!(!ordered.reduction);
        assert_eq!(ordered.interleavings, factorial(2 * k));
    }
}

#[test]
fn timed_semantics_enumerates_delays_and_ties() {
    // Two nodes each send one message to itself with a delay of 1 or 2 µs: four delay pairs,
    // and when both delays are equal the two deliveries tie, so 2 + 2 * 2 = 6 runs.
    let mut model = chains(2, 1);
    model.config.faults.delay_us_min = 1;
    model.config.faults.delay_us_max = 2;
    let timed = |prune, reduce| ExhaustiveOptions { semantics: Semantics::Timed, ..opts(prune, reduce, HistoryView::PerNode) };
    let full = check_exhaustive(&model, &timed(false, false), None);
    assert_eq!(full.semantics, Semantics::Timed);
    assert_eq!(full.interleavings, 6);
    // The tied deliveries are at different nodes: one order of each tie is enough.
    let reduced = check_exhaustive(&model, &timed(false, true), None);
    assert_eq!(reduced.interleavings, 4);
    assert_eq!(reduced.final_states, full.final_states);
}

#[test]
fn bounded_semantics_lets_a_timer_overtake_a_message_only_before_its_deadline() {
    // Node 0 sends node 1 a message (delay 1-2 ms) and sets a timer. The timed semantics lets
    // the timer fire first only if it is due by the longest delay; so must the bounded one,
    // which has no delays to enumerate, while the untimed one lets any message wait forever.
    let race = |after_us| {
        let mut m = Toy::new(vec![Node::Racer { after_us }, Node::Sink { got: vec![] }], FaultProfile::default());
        m.config.faults.delay_us_min = 1_000;
        m.config.faults.delay_us_max = 2_000;
        m.timer_race = true;
        m
    };
    for (after_us, overtakes) in [(500, true), (1_500, true), (2_000, true), (2_001, false), (50_000, false)] {
        for semantics in [Semantics::Timed, Semantics::Bounded, Semantics::Untimed] {
            let o =
                ExhaustiveOptions { semantics, bounds: Bounds { max_values: 1_001, ..Bounds::default() }, ..ExhaustiveOptions::default() };
            let r = check_exhaustive(&race(after_us), &o, None);
            assert!(r.exhausted && r.interleavings > 0, "{semantics:?} {after_us}: {r:?}");
            let expect = overtakes || semantics == Semantics::Untimed;
            assert_eq!(r.violations > 0, expect, "{semantics:?}, timer after {after_us} us: {r:?}");
            if let Some(c) = &r.first {
                let mut sim = Sim::new();
                semantics.apply(&mut sim);
                assert_eq!(sim.run_tape(&race(after_us), &c.tape).verdict.violation(), Some(&c.violation));
            }
        }
        // One late message: the bounded search lets the timer overtake it whenever it is due,
        // as untimed does, and the run that shows it replays with that one late message.
        let o = ExhaustiveOptions {
            semantics: Semantics::Bounded,
            bounds: Bounds { max_late: 1, ..Bounds::default() },
            ..ExhaustiveOptions::default()
        };
        let r = check_exhaustive(&race(after_us), &o, None);
        let c = r.first.as_ref().unwrap_or_else(|| panic!("a late message, timer after {after_us} us: {r:?}"));
        assert_eq!(r.semantics, Semantics::BoundedLate);
        let mut sim = Sim::new();
        r.semantics.apply(&mut sim);
        let replayed = sim.run_tape(&race(after_us), &c.tape);
        assert_eq!(replayed.verdict.violation(), Some(&c.violation));
        let late = replayed.stats.messages_late;
        assert!(late == 1 || overtakes && late == 0, "past the deadline only late: {:?}", replayed.stats);
        assert_eq!(sim.fault_log().iter().filter(|f| matches!(f.kind, FaultKind::Late { to: 1 })).count() as u64, late);
    }
}

/// Client (0) sends two payment requests with the same key to the server (1), the second after
/// `WORK` steps of other work; the server asks the store (2) whether the key is new. The race
/// needs the second lookup to reach the store before the first request's insert.
fn payment(atomic: bool) -> Toy {
    Toy::untimed(vec![Node::Client { work: WORK }, Node::Server { atomic }, Node::Store { has_key: false }])
}
const WORK: u32 = 2;

#[test]
fn a_check_then_act_race_is_found_with_a_replayable_shortest_counterexample() {
    let mut results = Vec::new();
    for (prune, reduce) in [(false, false), (true, false), (false, true), (true, true)] {
        let r = check_exhaustive(&payment(false), &opts(prune, reduce, HistoryView::PerNode), None);
        let found = r.first.clone().unwrap_or_else(|| panic!("prune {prune} reduce {reduce}: race not found"));
        assert_eq!(found.violation.invariant, "exactly_once_charge");
        let replayed = replay(&payment(false), Semantics::Untimed, &found.tape);
        assert_eq!(replayed.verdict.violation(), Some(&found.violation), "the tape must replay the violation");
        assert_eq!(replayed.history_hash, found.history_hash);
        // The work steps, then 2 pays, 2 lookups, 2 answers and 2 inserts: both requests charged.
        assert_eq!(found.events, WORK as u64 + 8);
        results.push(r);
    }
    let full = &results[0];
    assert!(full.violations < full.interleavings, "the race needs the second lookup to overtake the first insert");
    // The full search judges every run, so its counterexample is the shortest, then least, tape:
    // one decision off the simplest path (the client's work goes before the first request
    // arrives, so both requests reach the server together).
    assert_eq!(full.first.as_ref().unwrap().tape, vec![1]);
    // The simplest run (every tape answer 0) serves the requests one after the other and passes.
    assert!(replay(&payment(false), Semantics::Untimed, &[]).verdict.is_pass());
    // The atomic claim holds in every interleaving.
    let fixed = check_exhaustive(&payment(true), &opts(true, true, HistoryView::PerNode), None);
    assert!(fixed.exhausted && fixed.first.is_none() && fixed.interleavings > 0, "{fixed:?}");
}

#[test]
fn fault_bounds_are_respected() {
    // One sender bursts 2 items to a sink over a lossy link; the checker flags any loss.
    let mut model = Toy::new(
        vec![Node::Burst { k: 2, to: 1 }, Node::Sink { got: Vec::new() }],
        FaultProfile { loss_probability: 0.5, ..FaultProfile::default() },
    );
    model.expect_got = 2;
    let with =
        |max_lost| ExhaustiveOptions { bounds: Bounds { max_lost, ..Bounds::default() }, ..opts(false, false, HistoryView::Ordered) };
    // No loss: the two delivery orders.
    let none = check_exhaustive(&model, &with(0), None);
    assert_eq!((none.interleavings, none.violations), (2, 0));
    // One loss: either message (then one delivery), besides the two loss-free orders.
    let one = check_exhaustive(&model, &with(1), None);
    assert_eq!((one.interleavings, one.violations), (4, 2));
    // Two: also the run where both are lost.
    let two = check_exhaustive(&model, &with(2), None);
    assert_eq!((two.interleavings, two.violations), (5, 3));
    assert_eq!(check_exhaustive(&model, &with(9), None).interleavings, 5);
}

#[test]
fn the_depth_and_run_bounds_cut_the_search() {
    let model = chains(2, 3);
    let shallow = ExhaustiveOptions { bounds: Bounds { max_events: 2, ..Bounds::default() }, ..opts(false, false, HistoryView::PerNode) };
    let r = check_exhaustive(&model, &shallow, None);
    assert_eq!((r.interleavings, r.truncated, r.max_depth), (0, 4, 2), "the 4 two-event prefixes");
    let few = ExhaustiveOptions { bounds: Bounds { max_runs: 3, ..Bounds::default() }, ..opts(false, false, HistoryView::PerNode) };
    let r = check_exhaustive(&model, &few, None);
    assert_eq!(r.runs, 3);
    assert!(!r.exhausted);
}

#[test]
fn a_check_is_deterministic() {
    let progress = std::sync::atomic::AtomicU64::new(0);
    for (prune, reduce) in [(false, false), (true, true)] {
        let o = opts(prune, reduce, HistoryView::PerNode);
        let a = check_exhaustive(&payment(false), &o, Some(&progress));
        let b = check_exhaustive(&payment(false), &o, None);
        assert_eq!(a.untimed_fields(), b.untimed_fields());
        eprintln!(
            "payment race, prune {prune} reduce {reduce}: {} runs, {} interleavings, {} states, {:.0} states/s",
            a.runs, a.interleavings, a.distinct_states, a.states_per_sec
        );
    }
    assert!(progress.load(std::sync::atomic::Ordering::Relaxed) > 0);
}

#[test]
fn a_bug_in_exactly_one_interleaving_is_found() {
    // Two chains of k steps: only the run where node 1 does all its steps first fails.
    for k in [2u32, 4] {
        let mut model = chains(2, k);
        model.planted = true;
        let full = check_exhaustive(&model, &opts(false, false, HistoryView::Ordered), None);
        assert_eq!((full.interleavings, full.violations), (multinomial(&[k as u64, k as u64]), 1));
        let pruned = check_exhaustive(&model, &opts(true, true, HistoryView::Ordered), None);
        for r in [&full, &pruned] {
            let found = r.first.as_ref().expect("the one bad interleaving");
            // Pick node 1's message at each of its k steps while both are pending.
            assert_eq!(found.tape, vec![1; k as usize]);
            assert!(replay(&model, Semantics::Untimed, &found.tape).verdict.violation().is_some());
        }
        // This checker reads the global order of observations: declaring it does not
        // (`PerNode`) lets the reduction keep one order and miss the bug. The view is a promise.
        let wrong = check_exhaustive(&model, &opts(false, true, HistoryView::PerNode), None);
        assert_eq!(wrong.violations, 0);
        // A model without the bug holds in every interleaving.
        model.planted = false;
        let holds = check_exhaustive(&model, &opts(true, true, HistoryView::Ordered), None);
        assert!(holds.exhausted && holds.first.is_none());
    }
}

/// Not a test: how fast the explorer goes on a larger toy (`cargo test --release -- --ignored --nocapture`).
#[test]
#[ignore]
fn speed() {
    for (name, model, o) in [
        ("3 chains of 4, full", chains(3, 4), opts(false, false, HistoryView::PerNode)),
        ("3 chains of 6, pruned", chains(3, 6), opts(true, false, HistoryView::PerNode)),
        ("bursts of 4, full", bursts(4), opts(false, false, HistoryView::PerNode)),
        ("bursts of 5, pruned+reduced", bursts(5), opts(true, true, HistoryView::PerNode)),
    ] {
        let r = check_exhaustive(&model, &ExhaustiveOptions { collect_final_states: false, ..o }, None);
        eprintln!(
            "{name}: {} runs, {} interleavings, {} states in {:.3}s: {:.0} states/s, {:.0} runs/s",
            r.runs,
            r.interleavings,
            r.distinct_states,
            r.elapsed_s,
            r.states_per_sec,
            r.runs as f64 / r.elapsed_s
        );
    }
}

/// The search on `threads` workers reports what it does on one, timings aside: everything when
/// something violates (the single-threaded search then makes the report) or when nothing is
/// pruned (every worker judges a fixed share of one fixed set of runs); all but the maximum
/// depth when there is no reduction (every state is explored once, whoever reaches it);
/// otherwise the verdict, the exhaustion, the distinct states and the final states (which runs
/// get judged then depends on which worker reaches a shared state first, and with what asleep).
/// Run a few times: the workers race.
fn same_on_threads<M: Model>(name: &str, model: &M, o: &ExhaustiveOptions)
where
    M::Actor: Clone,
{
    let on = |threads| check_exhaustive(model, &ExhaustiveOptions { threads, collect_final_states: true, ..o.clone() }, None);
    let one = on(1);
    assert!(one.exhausted && one.interleavings > 0, "{name}: {one:?}");
    let key = |r: &ExhaustiveReport| (r.exhausted, r.violations > 0, r.first.clone(), r.distinct_states, r.final_states.clone());
    for threads in [2, 3, 2, 3] {
        let r = on(threads);
        assert_eq!(key(&r), key(&one), "{name}: {threads} threads");
        if one.violations > 0 || !o.prune_states {
            assert_eq!(r.untimed_fields(), one.untimed_fields(), "{name}: {threads} threads");
        } else if !one.reduction && o.bounds.max_events == u64::MAX {
            let counts = |r: &ExhaustiveReport| ExhaustiveReport { max_depth: 0, ..r.untimed_fields() };
            assert_eq!(counts(&r), counts(&one), "{name}: {threads} threads");
        }
    }
}

#[test]
fn threads_change_nothing_in_the_report() {
    for (prune, reduce) in [(false, false), (true, false), (true, true)] {
        let o = opts(prune, reduce, HistoryView::PerNode);
        let what = format!("prune {prune} reduce {reduce}");
        same_on_threads(&format!("racy payment, {what}"), &payment(false), &o);
        same_on_threads(&format!("atomic payment, {what}"), &payment(true), &o);
        same_on_threads(&format!("bursts of 3, {what}"), &bursts(3), &o);
        same_on_threads(&format!("3 chains of 3, {what}"), &chains(3, 3), &o);
    }
    // Faults: a ping-pong with a budget of one crash and one loss, under a checker that flags
    // any fault (it reads counters, so not under pruning) and one that passes every run.
    let faults = FaultProfile {
        loss_probability: 0.5,
        crash_probability: 0.5,
        restart_delay_us_min: 500,
        restart_delay_us_max: 3_000,
        fault_phase_us: 2_500,
        ..FaultProfile::default()
    };
    let mut toy = sim::toy::PingPongModel::new(1, faults);
    toy.ticks = 2;
    toy.fsync_every = 1;
    let bounds = Bounds { max_lost: 1, max_crashes: 1, ..Bounds::default() };
    let o = |prune| ExhaustiveOptions { bounds: bounds.clone(), ..opts(prune, true, HistoryView::PerNode) };
    same_on_threads("ping-pong, faults flagged", &fault_spotter(toy.clone_config(), |s| s.faults_total()), &o(false));
    for prune in [false, true] {
        same_on_threads(&format!("ping-pong, passing, prune {prune}"), &fault_spotter(toy.clone_config(), |_| 0), &o(prune));
    }
    let unreduced = ExhaustiveOptions { reduction: false, ..o(true) };
    same_on_threads("ping-pong, passing, no reduction", &fault_spotter(toy.clone_config(), |_| 0), &unreduced);
}
