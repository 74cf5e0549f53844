//! Checkers of the payment path: exactly one charge per operation, replayed results identical to
//! the first, and a key reused with another payload refused.

use crate::ms;
use crate::obs::{ChargeRow, Obs, OpId, Settle, Status};
use sim::{Entry, RunEnd, Verdict, Violation};
use std::collections::BTreeMap;

pub const EXACTLY_ONCE_CHARGE: &str = "exactly_once_charge";
pub const MISMATCH_REJECTED: &str = "mismatch_rejected";
pub const REPLAY_FIDELITY: &str = "replay_fidelity";

/// Everything the payment checkers judge.
pub struct PaymentRun<'a> {
    pub history: &'a [Entry<Obs>],
    /// The charges an auditor finds after the run: the ledger's durable rows, or the provider's.
    pub charges: &'a [ChargeRow],
    pub end: RunEnd,
}

/// All payment checkers, in a fixed order; the first violation wins.
pub fn check(run: &PaymentRun<'_>) -> Verdict {
    let checkers: [fn(&PaymentRun<'_>) -> Option<Violation>; 3] = [exactly_once_charge, mismatch_rejected, replay_fidelity];
    checkers.iter().find_map(|c| c(run)).map_or(Verdict::Pass, Verdict::Violation)
}

fn violation(invariant: &str, message: String, events: Vec<usize>) -> Option<Violation> {
    Some(Violation { invariant: invariant.to_string(), message, events })
}

/// Indices of the history entries that concern `op`.
fn op_events(h: &[Entry<Obs>], op: OpId) -> Vec<usize> {
    let about = |o: &Obs| match *o {
        Obs::OpStarted { op: x, .. } | Obs::Sent { op: x, .. } | Obs::Received { op: x, .. } => x == op,
        Obs::TimedOut { op: x, .. } | Obs::Settled { op: x, .. } | Obs::KeyClaimed { op: x, .. } => x == op,
        Obs::Charged { row } => row.op == op,
        _ => false,
    };
    (0..h.len()).filter(|&i| about(&h[i].obs)).collect()
}

/// When each charge was applied, by charge id (from `Charged` observations).
fn charge_time(h: &[Entry<Obs>], charge: u32) -> Option<(usize, u64)> {
    h.iter().position(|e| matches!(e.obs, Obs::Charged { row } if row.charge == charge)).map(|i| (i, h[i].at_us))
}

/// The client's side of `op`: every attempt and response, one line.
fn client_story(h: &[Entry<Obs>], op: OpId) -> String {
    let mut parts = Vec::new();
    for e in h {
        match e.obs {
            Obs::Sent { op: o, attempt, key, amount, copies } if o == op => {
                let copies = if copies > 1 { format!(" x{copies}") } else { String::new() };
                parts.push(format!("attempt {attempt} key {key:#x} amount {amount}{copies} sent at {}", ms(e.at_us)));
            }
            Obs::Received { op: o, attempt, status, .. } if o == op => {
                parts.push(format!("attempt {attempt} got {status} at {}", ms(e.at_us)))
            }
            Obs::TimedOut { op: o, attempt } if o == op => parts.push(format!("attempt {attempt} timed out at {}", ms(e.at_us))),
            _ => {}
        }
    }
    if parts.is_empty() {
        "the client sent nothing".into()
    } else {
        parts.join("; ")
    }
}

/// No operation is charged twice; an operation whose client saw success is charged exactly
/// once, durably, with the charge the client was told of; at the end every operation is settled.
pub fn exactly_once_charge(run: &PaymentRun<'_>) -> Option<Violation> {
    let h = run.history;
    let mut by_op: BTreeMap<OpId, Vec<&ChargeRow>> = BTreeMap::new();
    for row in run.charges {
        by_op.entry(row.op).or_default().push(row);
    }
    for (&op, rows) in &by_op {
        if rows.len() > 1 {
            let list: Vec<String> = rows
                .iter()
                .map(|r| {
                    let at = charge_time(h, r.charge).map_or("at an unrecorded time".into(), |(_, t)| format!("at {}", ms(t)));
                    format!("#{} (key {:#x}, amount {}) {at}", r.charge, r.key, r.amount)
                })
                .collect();
            let message = format!(
                "double charge: operation {op} has {} durable charges: {}. Client: {}.",
                rows.len(),
                list.join(", "),
                client_story(h, op)
            );
            return violation(EXACTLY_ONCE_CHARGE, message, op_events(h, op));
        }
    }
    for e in h {
        let Obs::Settled { op, outcome: Settle::Succeeded { charge, amount } } = e.obs else { continue };
        let durable = by_op.get(&op).and_then(|rows| rows.first());
        if durable.is_none_or(|r| r.charge != charge) {
            let applied = charge_time(h, charge).map_or("never recorded as applied".into(), |(_, t)| format!("applied at {}", ms(t)));
            let now = durable.map_or("no durable charge".into(), |r| format!("only charge #{} durable", r.charge));
            let message = format!(
                "acknowledged charge lost: the client of operation {op} was told 200 charge #{charge} amount {amount} at {}, \
                 but the ledger has {now} for it (charge #{charge} was {applied}). Client: {}.",
                ms(e.at_us),
                client_story(h, op)
            );
            return violation(EXACTLY_ONCE_CHARGE, message, op_events(h, op));
        }
    }
    let started: Vec<(usize, OpId)> =
        h.iter().enumerate().filter_map(|(i, e)| if let Obs::OpStarted { op, .. } = e.obs { Some((i, op)) } else { None }).collect();
    for (i, op) in started {
        if !h[i..].iter().any(|e| matches!(e.obs, Obs::Settled { op: o, .. } if o == op)) {
            let why = if run.end == RunEnd::TimeLimit { "the run hit its time limit" } else { "the run went quiet" };
            let message = format!("operation {op} never settled: {why} with the client still waiting. Client: {}.", client_story(h, op));
            return violation(EXACTLY_ONCE_CHARGE, message, op_events(h, op));
        }
    }
    None
}

/// A key reused with a different payload is refused (422), never answered 200 with the result
/// of the other payload.
pub fn mismatch_rejected(run: &PaymentRun<'_>) -> Option<Violation> {
    let h = run.history;
    for (i, e) in h.iter().enumerate() {
        let Obs::Received { op, attempt, key, status: Status::Ok { charge, amount: charged, .. } } = e.obs else { continue };
        let sent = h[..i].iter().rposition(|s| matches!(s.obs, Obs::Sent { op: o, attempt: a, .. } if o == op && a == attempt));
        let Some(s) = sent else { continue };
        let Obs::Sent { amount: asked, .. } = h[s].obs else { unreachable!() };
        if asked != charged {
            let message = format!(
                "payload mismatch accepted: operation {op} attempt {attempt} reused key {key:#x} with amount {asked} (sent at {}) \
                 and got 200 at {} with charge #{charge} for amount {charged}; it should have been refused with 422. Client: {}.",
                ms(h[s].at_us),
                ms(e.at_us),
                client_story(h, op)
            );
            return violation(MISMATCH_REJECTED, message, vec![s, i]);
        }
    }
    None
}

/// Every success response for one key carries the same result.
pub fn replay_fidelity(run: &PaymentRun<'_>) -> Option<Violation> {
    let h = run.history;
    let mut first: BTreeMap<u64, (usize, Status)> = BTreeMap::new();
    for (i, e) in h.iter().enumerate() {
        let Obs::Received { op, key, status: st @ Status::Ok { charge, amount, .. }, .. } = e.obs else { continue };
        match first.get(&key) {
            None => {
                first.insert(key, (i, st));
            }
            Some(&(j, Status::Ok { charge: c0, amount: a0, .. })) if (c0, a0) != (charge, amount) => {
                let message = format!(
                    "replay differs: key {key:#x} was answered 200 charge #{c0} amount {a0} at {} and 200 charge #{charge} amount {amount} \
                     at {} (operation {op}).",
                    ms(h[j].at_us),
                    ms(e.at_us)
                );
                return violation(REPLAY_FIDELITY, message, vec![j, i]);
            }
            Some(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::obs::Settle;

    fn at(at_us: u64, obs: Obs) -> Entry<Obs> {
        Entry { at_us, node: 0, obs }
    }
    fn row(charge: u32, op: u32) -> ChargeRow {
        ChargeRow { charge, op, key: 7, amount: 100 }
    }
    fn ok(charge: u32) -> Status {
        Status::Ok { charge, amount: 100, replayed: false }
    }
    fn settled_run(charge: u32) -> Vec<Entry<Obs>> {
        vec![
            at(0, Obs::OpStarted { op: 1, amount: 100 }),
            at(0, Obs::Sent { op: 1, attempt: 1, key: 7, amount: 100, copies: 1 }),
            at(5, Obs::Charged { row: row(charge, 1) }),
            at(9, Obs::Received { op: 1, attempt: 1, key: 7, status: ok(charge) }),
            at(9, Obs::Settled { op: 1, outcome: Settle::Succeeded { charge, amount: 100 } }),
        ]
    }

    #[test]
    fn one_durable_charge_for_a_success_passes() {
        let h = settled_run(3);
        assert_eq!(check(&PaymentRun { history: &h, charges: &[row(3, 1)], end: RunEnd::Quiescent }), Verdict::Pass);
    }

    #[test]
    fn two_charges_for_one_operation_are_a_double_charge() {
        let h = settled_run(3);
        let v = exactly_once_charge(&PaymentRun { history: &h, charges: &[row(3, 1), row(4, 1)], end: RunEnd::Quiescent }).unwrap();
        assert!(v.message.starts_with("double charge: operation 1 has 2 durable charges: #3"), "{}", v.message);
    }

    #[test]
    fn a_success_without_its_durable_charge_is_lost() {
        let h = settled_run(3);
        let v = exactly_once_charge(&PaymentRun { history: &h, charges: &[], end: RunEnd::Quiescent }).unwrap();
        assert!(v.message.starts_with("acknowledged charge lost"), "{}", v.message);
        let v = exactly_once_charge(&PaymentRun { history: &h, charges: &[row(9, 1)], end: RunEnd::Quiescent }).unwrap();
        assert!(v.message.contains("only charge #9 durable"), "{}", v.message);
    }

    #[test]
    fn an_unsettled_operation_is_reported() {
        let h = &settled_run(3)[..4];
        let v = exactly_once_charge(&PaymentRun { history: h, charges: &[row(3, 1)], end: RunEnd::TimeLimit }).unwrap();
        assert!(v.message.contains("never settled: the run hit its time limit"), "{}", v.message);
    }

    #[test]
    fn a_200_for_a_changed_payload_is_a_mismatch() {
        let mut h = settled_run(3);
        h[1] = at(0, Obs::Sent { op: 1, attempt: 1, key: 7, amount: 150, copies: 1 });
        let v = mismatch_rejected(&PaymentRun { history: &h, charges: &[row(3, 1)], end: RunEnd::Quiescent }).unwrap();
        assert_eq!(v.events, vec![1, 3]);
    }

    #[test]
    fn different_results_for_one_key_break_replay_fidelity() {
        let mut h = settled_run(3);
        h.push(at(20, Obs::Received { op: 1, attempt: 2, key: 7, status: ok(4) }));
        let v = replay_fidelity(&PaymentRun { history: &h, charges: &[row(3, 1)], end: RunEnd::Quiescent }).unwrap();
        assert!(v.message.contains("charge #3") && v.message.contains("charge #4"), "{}", v.message);
    }
}
