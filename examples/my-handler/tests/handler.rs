//! My handler under idemsim: explore it, read the counterexample, replay its seed, fix it.

use models::custom::OwnServer;
use my_handler::{buggy, fixed, scenario};

#[test]
fn the_check_then_set_handler_charges_twice_and_its_seed_replays() {
    let world = OwnServer::new(&scenario(), buggy).unwrap();
    let report = world.explore(0..2_000, 2);
    let found = report.first.expect("GET-then-SET charges twice for a double click");
    assert_eq!(found.violation.invariant, "exactly_once_charge");
    assert!(found.violation.message.starts_with("double charge"), "{}", found.violation.message);

    // The seed is the whole run: replaying it gives the same violation, event for event.
    let run = world.replay(found.seed);
    let again = run.outcome.verdict.violation().expect("the replay violates too");
    assert_eq!((&again.invariant, &again.message), (&found.violation.invariant, &found.violation.message));
    assert_eq!(run.outcome.history_hash, found.history_hash);
    // Its timeline, as `idemsim replay` prints it (`cargo test -- --nocapture` shows it).
    let timeline = idemsim::render::text(&run, &format!("replay seed {}", found.seed));
    assert!(timeline.contains("VIOLATION of exactly_once_charge"), "{timeline}");
    println!("{timeline}");
}

#[test]
fn the_set_nx_handler_holds() {
    let world = OwnServer::new(&scenario(), fixed).unwrap();
    let report = world.explore(0..20_000, 2);
    assert_eq!(report.violations, 0, "{:?}", report.first.map(|f| (f.seed, f.violation.message)));
    assert_eq!(report.runs, 20_000);
}

#[test]
fn both_handlers_run_each_seed_the_same_way_twice() {
    for make in [buggy, fixed] {
        let world = OwnServer::new(&scenario(), make).unwrap();
        if let Some(n) = world.check_determinism(0..2_000, 2) {
            panic!("{}", n.message);
        }
    }
}

#[test]
fn a_scenario_of_another_path_is_refused() {
    let outbox = models::presets::get("outbox/outbox-inbox").unwrap();
    let err = OwnServer::new(&outbox, fixed).err().expect("refused");
    assert!(err.contains("payment path"), "{err}");
}
