//! A panic is a finding (issue 13): an actor whose handler panics, or a checker that does, turns
//! its run into a violation named `panic` with the message and where it was raised; the search
//! goes on over the other seeds, and the seed (or the exhaustive checker's tape) replays it.

use sim::*;

/// Node 0 sends one request to node 1, which "charges" it and panics if the same request comes
/// twice (its author never thought of a duplicated message).
#[derive(Clone, Debug, Hash)]
enum Fragile {
    Sender,
    Handler { seen: bool },
}

impl Actor for Fragile {
    type Msg = u32;
    type Timer = ();
    type Obs = u32;
    type Record = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Fragile::Sender = self {
            ctx.send(1, 7);
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, _from: NodeId, n: u32) {
        if let Fragile::Handler { seen } = self {
            assert!(!*seen, "request {n} handled twice");
            *seen = true;
            ctx.observe(n);
        }
    }
    fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: ()) {}
    fn on_crash(&mut self, _: &[()]) {}
}

struct FragileModel {
    config: SimConfig,
    /// The checker panics on a run with no observation (a lost request): a checker bug.
    checker_panics: bool,
}

impl FragileModel {
    fn new(loss: f64, duplicate: f64, checker_panics: bool) -> Self {
        let faults = FaultProfile { loss_probability: loss, duplicate_probability: duplicate, ..FaultProfile::default() };
        let nodes = vec![NodeSpec::new("sender").lossy(true), NodeSpec::new("handler").lossy(true)];
        FragileModel { config: SimConfig { nodes, faults, swarm: false, time_limit_us: 1_000_000 }, checker_panics }
    }
}

impl Model for FragileModel {
    type Actor = Fragile;
    fn config(&self) -> &SimConfig {
        &self.config
    }
    fn build(&self, nodes: &mut Vec<Fragile>) {
        nodes.push(Fragile::Sender);
        nodes.push(Fragile::Handler { seen: false });
    }
    fn check(&self, run: &RunView<'_, Fragile>) -> Verdict {
        if self.checker_panics {
            let first = run.history.first().expect("the request was handled");
            assert_eq!(first.obs, 7);
        }
        Verdict::Pass
    }
}

#[test]
fn an_actor_panic_is_a_violation_and_the_search_goes_on() {
    let model = FragileModel::new(0.0, 0.5, false);
    let r = explore(&model, 0..400, 2, None);
    assert_eq!(r.runs, 400, "every seed ran");
    let panicked = r.by_invariant.get(PANIC).copied().unwrap_or(0);
    assert!(panicked > 100 && panicked < 300, "about half the runs duplicate the request: {panicked}");
    let f = r.first.expect("a panic found");
    let v = &f.violation;
    assert_eq!(v.invariant, PANIC);
    assert!(v.message.starts_with("handler's handler panicked at "), "{}", v.message);
    assert!(v.message.contains("request 7 handled twice (at ") && v.message.contains("panics.rs:"), "{}", v.message);
    // The seed replays it, the same way twice, and on the same simulator as other runs.
    let mut sim = Sim::new();
    let again = sim.run_seed(&model, f.seed);
    assert_eq!(again.verdict.violation(), Some(v));
    assert_eq!(again.history_hash, f.history_hash);
    // A panic leaves nothing behind in a reused simulator: the next runs are as on a fresh one.
    for seed in 0..50 {
        let (reused, fresh) = (sim.run_seed(&model, seed), Sim::new().run_seed(&model, seed));
        assert_eq!((reused.history_hash, reused.verdict), (fresh.history_hash, fresh.verdict), "seed {seed}");
    }
    // The report is the same on one thread.
    assert_eq!(explore(&model, 0..400, 1, None), explore(&model, 0..400, 2, None));
}

#[test]
fn a_checker_panic_is_a_violation_too() {
    let model = FragileModel::new(0.5, 0.0, true);
    let r = explore(&model, 0..200, 2, None);
    let v = r.first.expect("a lost request makes the checker panic").violation;
    assert!(
        v.message.starts_with("the checker or the engine panicked at ") && v.message.contains("the request was handled"),
        "{}",
        v.message
    );
    assert!(r.violations < 200, "runs that delivered the request pass");
}

#[test]
fn the_exhaustive_checker_reports_a_panic_with_a_tape_that_replays_it() {
    let model = FragileModel::new(0.0, 0.5, false);
    let opts = ExhaustiveOptions { bounds: Bounds { max_duplicated: 1, ..Bounds::default() }, ..ExhaustiveOptions::default() };
    let r = check_exhaustive(&model, &opts, None);
    assert!(r.exhausted);
    let c = r.first.expect("the duplicate is found");
    assert_eq!(c.violation.invariant, PANIC);
    let replayed = sim::exhaustive::replay(&model, r.semantics, &c.tape);
    assert_eq!(replayed.verdict.violation().map(|v| v.invariant.as_str()), Some(PANIC));
    // Without duplicates there is nothing to find.
    let none = check_exhaustive(&model, &ExhaustiveOptions::default(), None);
    assert!(none.exhausted && none.violations == 0, "{none:?}");
}

/// The same on madsim: a handler's panic stops the run as a violation named `panic`, the search
/// goes on, and the seed replays it.
#[cfg(all(feature = "madsim", madsim))]
#[test]
fn an_actor_panic_on_madsim_is_a_violation_and_the_search_goes_on() {
    let model = FragileModel::new(0.0, 0.5, false);
    let r = explore_madsim(&model, 0..100, 2, None);
    assert_eq!(r.runs, 100, "every seed ran");
    let panicked = r.by_invariant.get(PANIC).copied().unwrap_or(0);
    assert!(panicked > 20 && panicked < 80, "about half the runs duplicate the request: {panicked}");
    let f = r.first.expect("a panic found");
    let v = &f.violation;
    assert!(v.message.starts_with("handler's handler panicked at "), "{}", v.message);
    assert!(v.message.contains("request 7 handled twice (at ") && v.message.contains("panics.rs:"), "{}", v.message);
    let again = run_madsim(&model, f.seed);
    assert_eq!(again.verdict.violation(), Some(v));
    assert_eq!(again.history_hash, f.history_hash);
}

#[cfg(all(feature = "madsim", madsim))]
#[test]
fn a_checker_panic_on_madsim_is_a_violation_too() {
    let model = FragileModel::new(0.5, 0.0, true);
    let r = explore_madsim(&model, 0..100, 2, None);
    let v = r.first.expect("a lost request makes the checker panic").violation;
    assert!(
        v.message.starts_with("the checker or the engine panicked at ") && v.message.contains("the request was handled"),
        "{}",
        v.message
    );
    assert!(r.violations < 100, "runs that delivered the request pass");
}
