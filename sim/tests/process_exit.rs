//! A process crash closes the process's connections; a machine crash closes nothing
//! (`Actor::on_process_exit`). Node 0 is an app with a connection to node 1, a database that
//! notes every FIN it reads; only the app crashes.

use sim::*;

#[derive(Clone, Debug, Hash)]
enum Conn {
    /// `breaks_contract`: its exit handler also sets a timer, which a dead process cannot.
    App {
        breaks_contract: bool,
    },
    Db,
}

impl Actor for Conn {
    type Msg = &'static str;
    type Timer = ();
    type Obs = &'static str;
    type Record = ();

    fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, _from: NodeId, msg: &'static str) {
        ctx.observe(msg);
    }
    fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    fn on_crash(&mut self, _: &[()]) {}
    fn on_process_exit(&self, ctx: &mut Ctx<'_, Self>) {
        if let Conn::App { breaks_contract } = *self {
            ctx.send(1, "FIN");
            if breaks_contract {
                ctx.set_timer(1, ());
            }
        }
    }
}

struct ConnModel {
    config: SimConfig,
    breaks_contract: bool,
}

impl ConnModel {
    /// The app crashes in every run: a machine crash with probability `machine`, else a process crash.
    fn new(machine: f64, breaks_contract: bool) -> Self {
        let faults = FaultProfile {
            crash_probability: machine,
            process_crash_probability: 1.0,
            fault_phase_us: 5_000,
            restart_delay_us_min: 100,
            restart_delay_us_max: 200,
            ..FaultProfile::default()
        };
        let nodes = vec![NodeSpec::new("app").crashable(true), NodeSpec::new("db")];
        ConnModel { config: SimConfig { nodes, faults, swarm: false, time_limit_us: 1_000_000 }, breaks_contract }
    }
}

impl Model for ConnModel {
    type Actor = Conn;
    fn config(&self) -> &SimConfig {
        &self.config
    }
    fn build(&self, nodes: &mut Vec<Conn>) {
        nodes.push(Conn::App { breaks_contract: self.breaks_contract });
        nodes.push(Conn::Db);
    }
    fn check(&self, _: &RunView<'_, Conn>) -> Verdict {
        Verdict::Pass
    }
}

/// The FINs the database read, and the process crashes, over seeds 0..100 on the native engine.
fn fins_and_process_crashes(model: &ConnModel) -> (u64, u64) {
    let mut sim = Sim::new();
    let (mut fins, mut crashes) = (0, 0);
    for seed in 0..100 {
        let out = sim.run_seed(model, seed);
        assert!(out.verdict.violation().is_none(), "seed {seed}: {:?}", out.verdict);
        assert!(out.stats.crashes >= 1, "seed {seed}: the app crashes in every run");
        fins += sim.history().iter().filter(|e| e.obs == "FIN").count() as u64;
        crashes += out.stats.process_crashes;
    }
    (fins, crashes)
}

#[test]
fn a_process_crash_closes_its_connections_a_machine_crash_does_not() {
    let (fins, crashes) = fins_and_process_crashes(&ConnModel::new(0.0, false));
    assert_eq!((fins, crashes), (100, 100), "one process crash a run, one FIN each");
    let (fins, crashes) = fins_and_process_crashes(&ConnModel::new(1.0, false));
    assert_eq!((fins, crashes), (0, 0), "machine crashes only: nobody is told");
    // The FIN leaves at the crash, before the node goes down, and reads in the timeline so.
    let mut sim = Sim::new();
    sim.set_trace(true);
    sim.run_seed(&ConnModel::new(0.0, false), 3);
    let kinds: Vec<String> = sim.trace().iter().filter(|t| t.node == 0).map(|t| format!("{:?}", t.kind)).collect();
    let (send, crash) = (kinds.iter().position(|k| k.starts_with("Send")), kinds.iter().position(|k| k.starts_with("Crash")));
    assert!(send.is_some() && send < crash, "{kinds:?}");
}

#[test]
fn an_exit_handler_that_does_more_than_send_is_a_panic_finding() {
    let r = explore(&ConnModel::new(0.0, true), 0..20, 1, None);
    assert_eq!(r.violations, 20, "{r:?}");
    let v = r.first.expect("a finding").violation;
    assert_eq!(v.invariant, PANIC);
    assert!(v.message.contains("on_process_exit may only send") && v.message.contains("set a timer"), "{}", v.message);
}

/// The same on madsim.
#[cfg(all(feature = "madsim", madsim))]
#[test]
fn a_process_crash_closes_its_connections_on_madsim_too() {
    for (machine, expected) in [(0.0, 1), (1.0, 0)] {
        let model = ConnModel::new(machine, false);
        for seed in 0..20 {
            let run = run_madsim_full(&model, seed, false);
            let fins = run.history.iter().filter(|e| e.obs == "FIN").count();
            assert_eq!(fins, expected, "machine crash probability {machine}, seed {seed}");
            assert_eq!(run.outcome.stats.process_crashes, expected as u64);
        }
    }
}

/// Two process crashes close together: the second may strike between the restart and the
/// node's `on_start` on madsim (its endpoint not yet bound); the process had no connection yet,
/// so nothing is sent, and nothing panics. Native restarts run `on_start` at once.
#[test]
fn a_crash_right_after_a_restart_sends_nothing_and_is_no_finding() {
    let mut model = ConnModel::new(0.0, false);
    model.config.faults.crashes_per_node_max = 2;
    model.config.faults.fault_phase_us = 3_000;
    let r = explore(&model, 0..300, 2, None);
    assert_eq!(r.violations, 0, "{:?}", r.first);
    assert!(r.stats.process_crashes > 300, "{:?}", r.stats);
    #[cfg(all(feature = "madsim", madsim))]
    {
        let r = explore_madsim(&model, 0..300, 2, None);
        assert_eq!(r.violations, 0, "madsim: {:?}", r.first);
        assert!(r.stats.process_crashes > 300, "madsim: {:?}", r.stats);
    }
}
