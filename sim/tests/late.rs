//! Late messages and restarts (`Bounds::max_late`, `Semantics::BoundedLate`): a budget of events
//! that may come past their deadline puts the bounded semantics on a scale towards untimed. The
//! final-state sets of searches with growing budgets are compared on the ping-pong toy.

use sim::*;

/// With a crash too: a late restart (past `restart_delay_us_max`, as an untimed one may come)
/// is a late event like a late message, and with as many late events as a run has, the bounded
/// search reaches exactly untimed's final states.
#[test]
fn late_restarts_carry_a_bounded_search_with_crashes_to_the_untimed_one() {
    let faults = FaultProfile {
        delay_us_min: 1_000,
        delay_us_max: 2_000,
        crash_probability: 0.5,
        restart_delay_us_min: 500,
        restart_delay_us_max: 1_500,
        fault_phase_us: 5_000,
        ..FaultProfile::default()
    };
    let mut toy = sim::toy::PingPongModel::new(1, faults);
    toy.ticks = 3;
    let finals = |semantics, max_late| {
        let bounds = Bounds { max_late, max_crashes: 1, ..Bounds::default() };
        let o = ExhaustiveOptions {
            semantics,
            bounds,
            history: HistoryView::PerNode,
            collect_final_states: true,
            ..ExhaustiveOptions::default()
        };
        let r = check_exhaustive(&toy, &o, None);
        assert!(r.exhausted && r.violations == 0, "{semantics:?}, {max_late} late: {r:?}");
        r.final_states.into_iter().collect::<std::collections::BTreeSet<u64>>()
    };
    let untimed = finals(Semantics::Untimed, 0);
    let bounded = finals(Semantics::Bounded, 0);
    assert!(bounded.len() < untimed.len() && bounded.is_subset(&untimed), "{} {}", bounded.len(), untimed.len());
    // A ping, a pong (each maybe sent again after a restart) and a restart.
    let late = finals(Semantics::Bounded, 6);
    assert!(late == untimed, "every event late: the untimed semantics ({} of {})", late.len(), untimed.len());
}

/// Only a search with late messages draws a late-or-not choice, one per copy sent (and per
/// restart; this run has no crash): a plain
/// bounded tape holds none, so bounded tapes recorded before late messages existed replay as
/// they were, and a bounded search without the budget pays nothing for it.
#[test]
fn only_late_messages_draw_a_late_choice_per_copy() {
    let faults = FaultProfile { delay_us_min: 1_000, delay_us_max: 2_000, ..FaultProfile::default() };
    let mut toy = sim::toy::PingPongModel::new(2, faults);
    toy.ticks = 3;
    let run = |semantics: Semantics| {
        let mut sim = Sim::new();
        semantics.apply(&mut sim);
        sim.run_tape(&toy, &[])
    };
    let (plain, late) = (run(Semantics::Bounded), run(Semantics::BoundedLate));
    assert_eq!(plain.history_hash, late.history_hash, "no copy late: the same run");
    assert_eq!((plain.stats.messages_late, late.stats.messages_late), (0, 0));
    assert!(late.stats.messages_sent == 4, "{:?}", late.stats);
    assert_eq!(late.stats.choices, plain.stats.choices + late.stats.messages_sent, "one Late choice per copy");
}

/// The bounded semantics with a budget of late messages lies between bounded and untimed: a
/// late message may arrive at any later moment, as every message may untimed. Each late
/// message more reaches at least the final states of one fewer, never one untimed does not;
/// with as many as a run sends, exactly untimed's (here with no crash; with one, see
/// `late_restarts_carry_a_bounded_search_with_crashes_to_the_untimed_one`). Under the ordered view (no reduction) and the per-node one with the
/// reduction and symmetry: a late copy not yet due is left to its on-time twin
/// (`EventInfo::covered`), which must hold with sleep sets too.
#[test]
fn late_messages_carry_the_bounded_semantics_to_the_untimed_one() {
    let faults = FaultProfile { delay_us_min: 1_000, delay_us_max: 2_000, ..FaultProfile::default() };
    let mut toy = sim::toy::PingPongModel::new(2, faults);
    toy.ticks = 3;
    for history in [HistoryView::Ordered, HistoryView::PerNode] {
        let finals = |semantics, max_late| {
            let bounds = Bounds { max_late, ..Bounds::default() };
            let o = ExhaustiveOptions { semantics, bounds, history, collect_final_states: true, ..ExhaustiveOptions::default() };
            let r = check_exhaustive(&toy, &o, None);
            assert!(r.exhausted && r.violations == 0, "{semantics:?}, {max_late} late: {r:?}");
            assert_eq!(r.reduction, history != HistoryView::Ordered);
            r.final_states.into_iter().collect::<std::collections::BTreeSet<u64>>()
        };
        let untimed = finals(Semantics::Untimed, 0);
        let mut fewer = finals(Semantics::Bounded, 0);
        let sizes = (fewer.len(), untimed.len());
        assert!(fewer.len() < untimed.len() && fewer.is_subset(&untimed), "{history:?}: bounded, untimed {sizes:?}");
        // Two pings, two pongs: four messages a run.
        for max_late in 1..=4 {
            let more = finals(Semantics::Bounded, max_late);
            let sizes = (fewer.len(), more.len(), untimed.len());
            assert!(fewer.is_subset(&more) && more.is_subset(&untimed), "{history:?}, {max_late} late: {sizes:?}");
            if max_late == 1 {
                assert!(more.len() > fewer.len(), "{history:?}: one late message reaches new final states");
            }
            fewer = more;
        }
        assert_eq!(fewer, untimed, "{history:?}: every message late is the untimed semantics");
    }
}
