//! Every fault kind on the ping-pong toy, exhaustively: each explored within its bound and
//! replayed, restarts placed anywhere up to their deadline, replies lost with the incarnation
//! that asked. The toy judged as failing when a fault of interest struck (`Spotter`) makes the
//! counterexample the shortest run with that fault.

use sim::*;

/// What a `Spotter` flags in a run, if anything.
type Spotted = Box<dyn Fn(&RunView<'_, sim::toy::PingPong>) -> Option<String> + Sync>;

/// The ping-pong toy with timers, judged as failing when its `Spotted` names something in the run.
pub(crate) struct Spotter(sim::toy::PingPongModel, Spotted);
impl Model for Spotter {
    type Actor = sim::toy::PingPong;
    fn config(&self) -> &SimConfig {
        &self.0.config
    }
    fn build(&self, nodes: &mut Vec<sim::toy::PingPong>) {
        self.0.build(nodes)
    }
    fn check(&self, run: &RunView<'_, sim::toy::PingPong>) -> Verdict {
        match (self.1)(run) {
            Some(what) => Verdict::Violation(Violation::new("spotted", what, vec![])),
            None => Verdict::Pass,
        }
    }
}

/// The toy failing whenever a fault of interest happened (`spot` counts it), so the
/// counterexample is the shortest run with that fault.
pub(crate) fn fault_spotter(toy: sim::toy::PingPongModel, spot: fn(&Stats) -> u64) -> Spotter {
    Spotter(toy, Box::new(move |run| (spot(run.stats) > 0).then(|| format!("{:?}", run.stats))))
}

/// A fault kind: its name, the counter that shows it happened, and a budget of one.
type FaultCase = (&'static str, fn(&Stats) -> u64, Bounds);

#[test]
fn every_fault_kind_is_explored_within_its_bound_and_replays() {
    let faults = FaultProfile {
        loss_probability: 0.5,
        duplicate_probability: 0.5,
        crash_probability: 0.5,
        pause_probability: 0.5,
        partition_probability: 0.5,
        restart_delay_us_min: 500,
        restart_delay_us_max: 3_000,
        pause_us_min: 500,
        pause_us_max: 3_000,
        partition_us_max: 3_000,
        fault_phase_us: 2_500,
        // Shorter than a tick: a late message is one a tick overtakes past its deadline (one
        // delivered by then is its on-time twin, which the search does not try twice).
        delay_us_max: 500,
        ..FaultProfile::default()
    };
    let mut toy = sim::toy::PingPongModel::new(1, faults);
    toy.ticks = 2;
    toy.fsync_every = 1;
    let kinds: [FaultCase; 5] = [
        ("loss", |s| s.messages_lost, Bounds { max_lost: 1, ..Bounds::default() }),
        ("duplicate", |s| s.messages_duplicated, Bounds { max_duplicated: 1, ..Bounds::default() }),
        ("crash", |s| s.crashes, Bounds { max_crashes: 1, ..Bounds::default() }),
        ("pause", |s| s.pauses, Bounds { max_pauses: 1, ..Bounds::default() }),
        ("partition", |s| s.partitions, Bounds { max_partitions: 1, ..Bounds::default() }),
    ];
    // A late message is the bounded semantics' own fault: untimed lets every message be late,
    // timed draws its delays.
    let late: FaultCase = ("late", |s| s.messages_late, Bounds { max_late: 1, ..Bounds::default() });
    let model = fault_spotter(toy, |_| 0);
    for semantics in [Semantics::Untimed, Semantics::Bounded, Semantics::Timed] {
        // No budget: no fault at all, in any run.
        let none = ExhaustiveOptions { semantics, prune_states: false, ..ExhaustiveOptions::default() };
        let clean = check_exhaustive(&fault_spotter(model.0.clone_config(), |s| s.faults_total()), &none, None);
        assert!(clean.exhausted && clean.violations == 0 && clean.interleavings > 0, "{semantics:?}: {clean:?}");
        for (name, spot, bounds) in kinds.iter().cloned().chain((semantics == Semantics::Bounded).then_some(late.clone())) {
            let m = fault_spotter(model.0.clone_config(), spot);
            let o = ExhaustiveOptions { semantics, bounds, prune_states: false, history: HistoryView::PerNode, ..none.clone() };
            let r = check_exhaustive(&m, &o, None);
            let found = r.first.as_ref().unwrap_or_else(|| panic!("{semantics:?} {name}: never injected"));
            assert!(r.exhausted, "{semantics:?} {name}");
            let mut sim = Sim::new();
            r.semantics.apply(&mut sim);
            let replayed = sim.run_tape(&m, &found.tape);
            assert_eq!(replayed.history_hash, found.history_hash, "{semantics:?} {name}: the tape must replay the run");
            assert_eq!(replayed.verdict.violation(), Some(&found.violation), "{semantics:?} {name}");
            assert_eq!(replayed.stats.events, found.events, "{semantics:?} {name}");
            // Only the bounded fault, at most once (a partition's own losses count as lost messages).
            let lost_to_cut = if name == "partition" { replayed.stats.messages_lost } else { 0 };
            assert_eq!(spot(&replayed.stats), 1, "{semantics:?} {name}: {:?}", replayed.stats);
            assert_eq!(replayed.stats.faults_total() - lost_to_cut, 1, "{semantics:?} {name}: {:?}", replayed.stats);
            eprintln!("{semantics:?} {name}: {} interleavings, {} violating, tape {:?}", r.interleavings, r.violations, found.tape);
            // Faults do not defeat the reduction's soundness: the same final states either way.
            let all = |reduction| ExhaustiveOptions { reduction, collect_final_states: true, ..o.clone() };
            let (full, reduced) = (check_exhaustive(&m, &all(false), None), check_exhaustive(&m, &all(true), None));
            assert!(reduced.reduction && reduced.interleavings <= full.interleavings);
            assert_eq!(reduced.final_states, full.final_states, "{semantics:?} {name}: reduction lost a final state");
        }
    }
}

/// The toy failing when a crash's restart came after a gap (from the crash, in µs) that `odd`
/// flags.
fn restart_spotter(toy: sim::toy::PingPongModel, odd: fn(u64) -> bool) -> Spotter {
    Spotter(
        toy,
        Box::new(move |run| {
            let at = |kind: fn(&FaultKind) -> bool| run.fault_log.iter().find(|f| kind(&f.kind)).map(|f| f.at_us);
            let crash = at(|k| matches!(k, FaultKind::Crash { .. }))?;
            let gap = at(|k| matches!(k, FaultKind::Restart))? - crash;
            odd(gap).then(|| format!("restart {gap} us after the crash"))
        }),
    )
}

/// Untimed and bounded, a restart is an asynchronous event, not a drawn delay: it may come at
/// the crash's own moment (no delay is drawn), and bounded, never past `restart_delay_us_max`
/// after it; timed, the drawn delays stay within their range.
#[test]
fn an_untimed_restart_may_come_at_any_moment_a_bounded_one_by_its_deadline() {
    let faults = FaultProfile {
        crash_probability: 0.5,
        restart_delay_us_min: 500,
        restart_delay_us_max: 1_500,
        fault_phase_us: 2_500,
        ..FaultProfile::default()
    };
    let mut toy = sim::toy::PingPongModel::new(1, faults);
    toy.ticks = 4;
    let bounds = Bounds { max_crashes: 1, ..Bounds::default() };
    let search = |semantics, odd: fn(u64) -> bool| {
        let o = ExhaustiveOptions { semantics, bounds: bounds.clone(), history: HistoryView::PerNode, ..ExhaustiveOptions::default() };
        let r = check_exhaustive(&restart_spotter(toy.clone_config(), odd), &o, None);
        assert!(r.exhausted && r.interleavings > 1, "{semantics:?}: {r:?}");
        r.violations > 0
    };
    assert!(search(Semantics::Untimed, |gap| gap == 0), "untimed: a restart at the crash's moment");
    assert!(search(Semantics::Bounded, |gap| gap == 0), "bounded: a restart at the crash's moment");
    assert!(search(Semantics::Untimed, |gap| gap > 1_500), "untimed: a restart after the pinger's later ticks");
    assert!(!search(Semantics::Bounded, |gap| gap > 1_500), "bounded: no restart past its deadline");
    assert!(!search(Semantics::Timed, |gap| !(500..=1_500).contains(&gap)), "timed: drawn delays in range");
}

/// Node 0 asks node 1 once per incarnation, naming its incarnation; node 1 answers it (with
/// `Ctx::reply`, or a plain `send` to compare). Node 0 observes (incarnation asked in, its
/// incarnation now) for every answer it gets.
#[derive(Clone, Debug, Hash)]
struct Asker {
    reply: bool,
}
impl Actor for Asker {
    type Msg = (bool, u64);
    type Timer = ();
    type Obs = (u64, u64);
    type Record = ();
    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if ctx.me() == 0 {
            ctx.send(1, (true, ctx.incarnation()));
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, (ask, incarnation): (bool, u64)) {
        match (ask, self.reply) {
            (true, true) => ctx.reply(from, incarnation, (false, incarnation)),
            (true, false) => ctx.send(from, (false, incarnation)),
            (false, _) => ctx.observe((incarnation, ctx.incarnation())),
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    fn on_crash(&mut self, _: &[()]) {}
}

/// Flags an answer that reached another incarnation than the one that asked.
struct Connections(SimConfig, bool);
impl Model for Connections {
    type Actor = Asker;
    fn config(&self) -> &SimConfig {
        &self.0
    }
    fn build(&self, nodes: &mut Vec<Asker>) {
        nodes.extend([Asker { reply: self.1 }, Asker { reply: self.1 }]);
    }
    fn check(&self, run: &RunView<'_, Asker>) -> Verdict {
        match run.history.iter().find(|e| e.obs.0 != e.obs.1) {
            Some(e) => Verdict::Violation(Violation::new("connection", format!("{:?}", e.obs), vec![])),
            None => Verdict::Pass,
        }
    }
}

/// An answer with `Ctx::reply` goes back on the connection the request came in on: if the
/// asker crashed since, it is lost, even once the asker is back (with `send`, its next
/// incarnation would get it). Every run of one crash, exhaustively.
#[test]
fn a_reply_is_lost_with_the_incarnation_that_asked() {
    let faults = FaultProfile { crash_probability: 0.5, fault_phase_us: 10_000, ..FaultProfile::default() };
    let nodes = vec![NodeSpec::new("asker").crashable(true), NodeSpec::new("answerer")];
    let config = SimConfig { nodes, faults, swarm: false, time_limit_us: 1_000_000 };
    let o = ExhaustiveOptions {
        bounds: Bounds { max_crashes: 1, ..Bounds::default() },
        history: HistoryView::PerNode,
        ..ExhaustiveOptions::default()
    };
    let replies = check_exhaustive(&Connections(config.clone(), true), &o, None);
    assert!(replies.exhausted && replies.interleavings > 2, "{replies:?}");
    assert_eq!(replies.violations, 0, "{:?}", replies.first);
    let sends = check_exhaustive(&Connections(config, false), &o, None);
    assert!(sends.violations > 0, "a plain send reaches the restarted asker: {sends:?}");
}

pub(crate) trait FaultsTotal {
    fn faults_total(&self) -> u64;
}
impl FaultsTotal for Stats {
    fn faults_total(&self) -> u64 {
        self.messages_lost
            + self.messages_duplicated
            + self.messages_late
            + self.restarts_late
            + self.crashes
            + self.pauses
            + self.partitions
    }
}

pub(crate) trait CloneConfig {
    fn clone_config(&self) -> Self;
}
impl CloneConfig for sim::toy::PingPongModel {
    fn clone_config(&self) -> Self {
        sim::toy::PingPongModel { config: self.config.clone(), pings: self.pings, ticks: self.ticks, fsync_every: self.fsync_every }
    }
}
