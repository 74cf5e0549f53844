//! Exhaustive bounded checks of outbox designs (issue 10): every run of one order through
//! service, relay, broker and consumer within fault bounds, in the *bounded* semantics (a message
//! arrives at any moment up to `delay_us_max` after its send, and no timer fires past an
//! undelivered message's deadline: every timed run is one of its runs). The untimed semantics
//! lets a reply wait behind any number of relay and consumer polls, and its search never ends.
//!
//! The scenarios are presets shrunk by `Scenario::exhaustive_scenario(orders, 1)`: one order of
//! one aggregate, the design's relays (two at most), one partition, pollers every 200 ms backing
//! off when idle. Crashes
//! are narrowed to the roles a test names (at most one crash per node, as in the presets). The
//! whole proof the issue asks for (a relay crash, a consumer crash and a duplicate in one run)
//! takes seconds since state keys name timers by content (BENCHMARKS.md has the numbers).

use models::presets;
use models::run::Source;
use models::{Role, Scenario};
use sim::exhaustive::replay;
use sim::{Bounds, ExhaustiveOptions, ExhaustiveReport, HistoryView, Semantics};

const EFFECTIVELY_ONCE: &str = invariants::outbox::EFFECTIVELY_ONCE_EVENT;

/// One order of `preset`, shrunk for a bounded search, crashing only `crash`.
fn scenario(preset: &str, crash: &[Role]) -> Scenario {
    let mut s = presets::get(preset).expect("a preset").exhaustive_scenario(1, 1).expect("a valid scenario");
    assert!(crash.iter().all(|r| s.targets.crash.contains(r)), "{preset} crashes {:?}", s.targets.crash);
    s.targets.crash = crash.to_vec();
    assert_eq!(s.faults.crashes_per_node_max, 1);
    s
}

/// The outbox path's options: bounded semantics, pruning, reduction, the per-node view.
/// `values`: how many spread values a wide choice (a restart delay) is tried at.
fn opts(s: &Scenario, duplicated: u32, crashes: u32, values: u32) -> ExhaustiveOptions {
    let bounds = Bounds { max_duplicated: duplicated, max_crashes: crashes, max_values: values, ..Bounds::default() };
    // The outbox path's own view (`check` takes it from the model too).
    let o = ExhaustiveOptions {
        semantics: s.path().exhaustive_semantics(),
        history: s.model().history_view(),
        ..Scenario::exhaustive_options(bounds)
    };
    assert_eq!(o.semantics, Semantics::Bounded);
    o
}

fn show(what: &str, r: &ExhaustiveReport) {
    eprintln!(
        "{what}: {} interleavings, {} distinct states, max depth {} events, {} runs ({} pruned, {} sleep-blocked), {} violating, {:.2} s",
        r.interleavings, r.distinct_states, r.max_depth, r.runs, r.pruned, r.sleep_blocked, r.violations, r.elapsed_s
    );
}

fn assert_holds(what: &str, r: &ExhaustiveReport) {
    show(what, r);
    assert_eq!((r.semantics, r.history, r.reduction, r.prune_states), (Semantics::Bounded, HistoryView::PerNode, true, true));
    assert!(r.exhausted, "{what}: the search was cut short");
    assert_eq!((r.truncated, r.time_limited), (0, 0), "{what}: runs cut by the depth or time limit");
    // It branched: more states than the one run a deterministic world would take (with every
    // other order of events merged into explored states, one complete run can be all it judges).
    assert!(r.interleavings >= 1 && r.distinct_states > r.max_depth + 1, "{what}: {r:?}");
    assert_eq!(r.violations, 0, "{what}: {:?}", r.first);
}

#[test]
fn outbox_inbox_holds_for_one_order_with_a_crash_and_a_duplicate() {
    for role in [Role::Relay, Role::Consumer] {
        let s = scenario("outbox/outbox-inbox", &[role]);
        let r = s.check_exhaustive(&opts(&s, 1, 1, 2), None);
        assert_holds(&format!("outbox-inbox, 1 order, <= 1 {role:?} crash, <= 1 duplicate"), &r);
        // The bounds were used: the search did crash and duplicate (a no-fault search is far smaller).
        let clean = s.check_exhaustive(&opts(&s, 0, 0, 2), None);
        assert!(clean.exhausted && clean.violations == 0 && clean.distinct_states * 20 < r.distinct_states, "{clean:?}");
    }
}

/// The proof: one order, at most one relay crash, one consumer crash and one duplicated
/// message in the same run. `idemsim check outbox/outbox-inbox --exhaustive --requests 1
/// --crash relay,consumer --crashes 2 --duplicated 1 --values 2` runs the same search.
/// (1.7 M states, seconds; 41 M states and 26 minutes before timers were keyed by content.)
#[test]
fn outbox_inbox_holds_for_one_order_with_a_relay_crash_a_consumer_crash_and_a_duplicate() {
    let s = scenario("outbox/outbox-inbox", &[Role::Relay, Role::Consumer]);
    let r = s.check_exhaustive(&opts(&s, 1, 2, 2), None);
    assert_holds("outbox-inbox, 1 order, <= 1 relay crash + <= 1 consumer crash + <= 1 duplicate", &r);
}

/// `outbox/no-inbox` applies every delivery. The shortest run that applies one twice: the
/// consumer crashes after the effect and before committing its offset, and the redelivery
/// applies it again. Proven shortest by a search one event shallower; it replays; with the
/// inbox back (the fix), no run within the same bounds violates.
#[test]
fn no_inbox_is_found_with_its_shortest_counterexample() {
    let s = scenario("outbox/no-inbox", &[Role::Consumer]);
    let o = opts(&s, 0, 1, 2);
    let found = s.shortest_counterexample(&o, None);
    show("no-inbox, 1 order, <= 1 consumer crash", &found.full);
    assert!(found.full.exhausted && found.full.violations > 0, "{:?}", found.full);
    let c = found.shortest.as_ref().expect("a counterexample");
    assert_eq!(c.violation.invariant, EFFECTIVELY_ONCE);
    assert!(c.violation.message.starts_with("duplicate effect: order 1"), "{}", c.violation.message);
    assert!(c.violation.message.contains("consumer crashed"), "{}", c.violation.message);
    let proof = found.proof.as_ref().expect("a proof of shortness");
    show(&format!("no-inbox, bounded at {} events", c.events - 1), proof);
    assert!(proof.exhausted && proof.violations == 0 && proof.truncated > 0, "{proof:?}");
    assert_eq!(proof.max_depth, c.events - 1);
    eprintln!("no-inbox: shortest counterexample {} events, tape {:?}\n  {}", c.events, c.tape, c.violation.message);
    // The tape replays in the bounded semantics, and only there.
    let replayed = replay(&s.model(), Semantics::Bounded, &c.tape);
    assert_eq!(replayed.verdict.violation(), Some(&c.violation));
    assert_eq!((replayed.history_hash, replayed.stats.events), (c.history_hash, c.events));
    assert_ne!(replay(&s.model(), Semantics::Untimed, &c.tape).history_hash, c.history_hash);
    let record = s.record_in(Semantics::Bounded, &Source::Tape(c.tape.clone()), true);
    assert_eq!(record.outcome.verdict.violation(), Some(&c.violation));
    // The fix: the inbox row in the effect's transaction. Same bounds, nothing violates.
    let fixed = scenario("outbox/outbox-inbox", &[Role::Consumer]);
    assert_holds("outbox-inbox, 1 order, <= 1 consumer crash", &fixed.check_exhaustive(&opts(&fixed, 0, 1, 2), None));
    // Without its trigger (no crash) no-inbox holds too.
    assert_holds("no-inbox, 1 order, no fault", &s.check_exhaustive(&opts(&s, 0, 0, 2), None));
}

/// Snapshots are speed only: resuming runs from them searches exactly what replaying every run
/// from the start does (same runs, states, verdicts and counterexample), on both paths.
#[test]
fn snapshots_change_nothing_but_speed() {
    let mut payment = presets::get("payment/durable-on-conflict").unwrap().exhaustive_scenario(2, 1).unwrap();
    payment.targets.crash = vec![Role::Store];
    let cases = [
        (scenario("outbox/no-inbox", &[Role::Consumer]), opts(&scenario("outbox/no-inbox", &[]), 1, 1, 2)),
        (payment, Scenario::exhaustive_options(Bounds { max_lost: 1, max_values: 2, ..Bounds::default() })),
    ];
    for (s, o) in cases {
        let mut reports = Vec::new();
        for every in [0, 1, 8] {
            let r = s.check_exhaustive(&ExhaustiveOptions { snapshot_every_events: every, collect_final_states: true, ..o.clone() }, None);
            eprintln!("{}: snapshot every {every} events: {} runs, {} states, {:.2} s", s.name, r.runs, r.distinct_states, r.elapsed_s);
            reports.push(r);
        }
        assert!(reports[0].runs > 1_000 && reports[0].interleavings > 10, "{}: {:?}", s.name, reports[0]);
        for r in &reports[1..] {
            assert_eq!(r.untimed_fields(), reports[0].untimed_fields(), "{}", s.name);
        }
    }
}
