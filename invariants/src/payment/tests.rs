//! The payment checkers on hand-made histories: each invariant broken once, and passed.

use super::*;
use crate::obs::{Begin, Settle};

fn at(at_us: u64, obs: Obs) -> Entry<Obs> {
    Entry { at_us, node: 0, obs }
}
fn row(charge: u32, op: u32) -> ChargeRow {
    ChargeRow { charge, op, key: 7, amount: 100 }
}
fn ok(charge: u32) -> Status {
    Status::Ok { charge, amount: 100, replayed: false }
}
fn sent(attempt: u32, amount: u32) -> Obs {
    Obs::Sent { op: 1, attempt, copy: 0, key: 7, amount, server: 0 }
}
fn got(attempt: u32, status: Status) -> Obs {
    Obs::Received { op: 1, attempt, copy: 0, key: 7, status }
}
fn settled_run(charge: u32) -> Vec<Entry<Obs>> {
    vec![
        at(0, Obs::OpStarted { op: 1, amount: 100, begin: Begin::First }),
        at(0, sent(1, 100)),
        at(5, Obs::Charged { row: row(charge, 1) }),
        at(9, got(1, ok(charge))),
        at(9, Obs::Settled { op: 1, outcome: Settle::Succeeded { charge, amount: 100 } }),
    ]
}
fn run<'a>(h: &'a [Entry<Obs>], charges: &'a [ChargeRow]) -> PaymentRun<'a> {
    PaymentRun {
        history: h,
        charges,
        keys: &[],
        provider: false,
        end: RunEnd::Quiescent,
        heal_at_us: 0,
        settle_bound_us: 1_000,
        liveness: true,
    }
}

#[test]
fn one_durable_charge_for_a_success_passes() {
    let h = settled_run(3);
    assert_eq!(check(&run(&h, &[row(3, 1)])), Verdict::Pass);
}

#[test]
fn two_charges_for_one_operation_are_a_double_charge() {
    let h = settled_run(3);
    let v = exactly_once_charge(&run(&h, &[row(3, 1), row(4, 1)])).unwrap();
    assert!(v.message.starts_with("double charge: operation 1 has 2 durable charges: #3"), "{}", v.message);
}

#[test]
fn a_success_without_its_durable_charge_is_lost() {
    let h = settled_run(3);
    let v = exactly_once_charge(&run(&h, &[])).unwrap();
    assert!(v.message.starts_with("acknowledged charge lost"), "{}", v.message);
    let v = exactly_once_charge(&run(&h, &[row(9, 1)])).unwrap();
    assert!(v.message.contains("only charge #9 durable"), "{}", v.message);
}

#[test]
fn a_charge_for_an_operation_told_it_failed_is_reported_unless_a_later_answer_says_so() {
    let mut h = settled_run(3);
    h.truncate(3);
    h.push(at(60, Obs::TimedOut { op: 1, attempt: 1 }));
    h.push(at(60, Obs::Settled { op: 1, outcome: Settle::GaveUp { attempts: 1 } }));
    let v = exactly_once_charge(&run(&h, &[row(3, 1)])).unwrap();
    assert!(v.message.starts_with("charged but told failed: operation 1 settled as gave up"), "{}", v.message);
    assert!(v.message.contains("charge #3"), "{}", v.message);
    // A late 200 for the same operation reports the charge after all.
    h.push(at(70, got(1, ok(3))));
    assert_eq!(exactly_once_charge(&run(&h, &[row(3, 1)])), None);
    // No charge, nothing to tell.
    h.pop();
    assert_eq!(exactly_once_charge(&run(&h, &[])), None);
}

#[test]
fn an_unsettled_operation_is_a_liveness_failure_and_a_time_limit_is_named() {
    let h = &settled_run(3)[..4];
    let v = settles(&run(h, &[row(3, 1)])).unwrap();
    assert!(v.message.contains("operation 1 never settled"), "{}", v.message);
    assert_eq!(exactly_once_charge(&run(h, &[row(3, 1)])), None, "liveness is not a money violation");
    let one = [row(3, 1)];
    let mut r = run(h, &one);
    r.end = RunEnd::TimeLimit;
    let v = settles(&r).unwrap();
    assert!(v.message.starts_with("the run hit its time limit") && v.message.contains("Unsettled operations: 1"), "{}", v.message);
}

#[test]
fn settling_after_the_bound_or_a_stuck_key_or_an_orphan_charge_fails_settles() {
    let one = [row(3, 1)];
    let mut h = settled_run(3);
    h[4].at_us = 5_000;
    assert!(settles(&run(&h, &one)).unwrap().message.contains("after its bound"));
    let h = settled_run(3);
    let stuck = [KeyRecord { key: 7, op: 1, end: KeyEnd::InFlight }];
    let r = PaymentRun { keys: &stuck, ..run(&h, &one) };
    assert!(settles(&r).unwrap().message.contains("stuck in flight"));
    let r = PaymentRun { provider: true, ..run(&h, &one) };
    assert!(settles(&r).unwrap().message.starts_with("orphan charge: the provider made charge #3"));
    let done = [KeyRecord { key: 7, op: 1, end: KeyEnd::Finished { charge: 3 } }];
    let r = PaymentRun { provider: true, keys: &done, ..run(&h, &one) };
    assert_eq!(settles(&r), None);
}

#[test]
fn a_200_for_a_changed_payload_is_a_mismatch_and_so_is_its_charge() {
    let mut h = settled_run(3);
    h[1] = at(0, sent(1, 150));
    let v = mismatch_rejected(&run(&h, &[row(3, 1)])).unwrap();
    assert_eq!(v.events, vec![1, 3]);
    let mut h = settled_run(3);
    h.insert(2, at(1, sent(2, 150)));
    let charged = ChargeRow { amount: 150, ..row(3, 1) };
    let v = mismatch_rejected(&run(&h, &[charged])).unwrap();
    assert!(v.message.starts_with("payload mismatch charged: key 0x7 was first sent with amount 100"), "{}", v.message);
}

#[test]
fn different_results_for_one_key_break_replay_fidelity() {
    let mut h = settled_run(3);
    h.push(at(20, got(2, ok(4))));
    let v = replay_fidelity(&run(&h, &[row(3, 1)])).unwrap();
    assert!(v.message.contains("charge #3") && v.message.contains("charge #4"), "{}", v.message);
}

#[test]
fn the_verdict_names_every_invariant_a_run_broke() {
    let mut h = settled_run(3);
    h.push(at(20, got(2, ok(4))));
    let Verdict::Violation(v) = check(&run(&h, &[row(3, 1), row(4, 1)])) else { panic!("violates") };
    assert_eq!(v.invariants().collect::<Vec<_>>(), vec![EXACTLY_ONCE_CHARGE, REPLAY_FIDELITY]);
    assert!(v.broke(REPLAY_FIDELITY) && !v.broke(SETTLES));
}
