//! The checkers judge every run of a search, so they were rewritten to allocate nothing on a
//! passing run (sorted scratch vectors where they built maps) and to look a 200's request or an
//! operation's start up among the `Sent` or `OpStarted` entries rather than the whole history. This keeps the map-based versions
//! they replaced as oracles and checks, over many random small histories, that both give the same
//! verdict and the same message: the rewrite changed speed, not judgement. Since, the checkers
//! share one pass over the history (`Marks`); `check` is compared whole too, so a checker that
//! left another's buffer dirty shows here.

use super::*;
use crate::obs::{Begin, Settle};
use sim::{ChoiceKind, Choices};
use std::collections::BTreeMap;

fn exactly_once_charge(run: &PaymentRun<'_>) -> Option<Violation> {
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
    told_failed_but_charged(run, &by_op)
}

/// An operation whose last word to its user was "failed" or "gave up" while a charge for it is
/// durable: the user believes they did not pay (and may pay again).
fn told_failed_but_charged(run: &PaymentRun<'_>, by_op: &BTreeMap<OpId, Vec<&ChargeRow>>) -> Option<Violation> {
    let h = run.history;
    let mut last: BTreeMap<OpId, (usize, Settle)> = BTreeMap::new();
    for (i, e) in h.iter().enumerate() {
        if let Obs::Settled { op, outcome } = e.obs {
            last.insert(op, (i, outcome));
        }
    }
    for (&op, &(i, outcome)) in &last {
        if matches!(outcome, Settle::Succeeded { .. }) || (!run.liveness && matches!(outcome, Settle::GaveUp { .. })) {
            continue;
        }
        let Some(row) = by_op.get(&op).and_then(|rows| rows.first()) else { continue };
        let reported_later = h[i..]
            .iter()
            .any(|e| matches!(e.obs, Obs::Received { op: o, status: Status::Ok { charge, .. }, .. } if o == op && charge == row.charge));
        if reported_later {
            continue;
        }
        let at = charge_time(h, row.charge).map_or("at an unrecorded time".into(), |(_, t)| format!("at {}", ms(t)));
        let message = format!(
            "charged but told failed: operation {op} settled {} at {}, but charge #{} (key {:#x}, amount {}) made {at} is durable \
             and no later answer reported it. Client: {}.",
            settle_text(outcome),
            ms(h[i].at_us),
            row.charge,
            row.key,
            row.amount,
            client_story(h, op)
        );
        return violation(EXACTLY_ONCE_CHARGE, message, op_events(h, op));
    }
    None
}

fn replay_fidelity(run: &PaymentRun<'_>) -> Option<Violation> {
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
                     at {} (operation {op}). Client: {}.",
                    ms(h[j].at_us),
                    ms(e.at_us),
                    client_story(h, op)
                );
                return violation(REPLAY_FIDELITY, message, vec![j, i]);
            }
            Some(_) => {}
        }
    }
    None
}

fn mismatch_rejected(run: &PaymentRun<'_>) -> Option<Violation> {
    let h = run.history;
    for (i, e) in h.iter().enumerate() {
        let Obs::Received { op, attempt, copy, key, status: Status::Ok { charge, amount: charged, .. } } = e.obs else { continue };
        let sent = h[..i]
            .iter()
            .rposition(|s| matches!(s.obs, Obs::Sent { op: o, attempt: a, copy: c, .. } if o == op && a == attempt && c == copy));
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
    // The first payload sent with a key is the key's; a charge for another amount under it is a
    // mismatched request that was executed.
    for row in run.charges {
        let first = h.iter().position(|e| matches!(e.obs, Obs::Sent { key, .. } if key == row.key));
        let Some(f) = first else { continue };
        let Obs::Sent { amount, .. } = h[f].obs else { unreachable!() };
        if amount != row.amount {
            let message = format!(
                "payload mismatch charged: key {:#x} was first sent with amount {amount} at {}, but charge #{} under it is for \
                 amount {}: a reused key with another payload was executed instead of refused with 422. Client: {}.",
                row.key,
                ms(h[f].at_us),
                row.charge,
                row.amount,
                client_story(h, row.op)
            );
            let mut events = vec![f];
            events.extend(charge_time(h, row.charge).map(|(i, _)| i));
            return violation(MISMATCH_REJECTED, message, events);
        }
    }
    None
}

fn settles(run: &PaymentRun<'_>) -> Option<Violation> {
    if !run.liveness {
        return None;
    }
    let h = run.history;
    let last_at = h.last().map_or(0, |e| e.at_us);
    if run.end == RunEnd::TimeLimit {
        let open = unsettled(h).into_iter().map(|(_, op)| op.to_string()).collect::<Vec<_>>();
        let open = if open.is_empty() { String::new() } else { format!(" Unsettled operations: {}.", open.join(", ")) };
        let message = format!(
            "the run hit its time limit with events still pending (last observation at {}): a livelock, a retry storm or a \
             background job that never stops.{open}",
            ms(last_at)
        );
        return violation(SETTLES, message, Vec::new());
    }
    if let Some((i, op)) = unsettled(h).into_iter().next() {
        let message =
            format!("operation {op} never settled: the run went quiet with its client still waiting. Client: {}.", client_story(h, op));
        return violation(SETTLES, message, op_events(h, op).into_iter().chain([i]).collect());
    }
    for (i, e) in h.iter().enumerate() {
        let Obs::Settled { op, .. } = e.obs else { continue };
        let started = h[..i].iter().rposition(|s| matches!(s.obs, Obs::OpStarted { op: o, .. } if o == op)).map_or(0, |s| h[s].at_us);
        let deadline = started.max(run.heal_at_us) + run.settle_bound_us;
        if e.at_us > deadline {
            let message = format!(
                "operation {op} settled only at {}, after its bound ({} after the later of its start and the heal at {}). Client: {}.",
                ms(e.at_us),
                ms(run.settle_bound_us),
                ms(run.heal_at_us),
                client_story(h, op)
            );
            return violation(SETTLES, message, op_events(h, op));
        }
    }
    if let Some(k) = run.keys.iter().find(|k| k.end == KeyEnd::InFlight) {
        let message = format!(
            "key {:#x} of operation {} is stuck in flight: the run ended with it claimed and unfinished, neither finished, failed \
             nor released (a crash or timeout left it, and nothing drove it on). Client: {}.",
            k.key,
            k.op,
            client_story(h, k.op)
        );
        return violation(SETTLES, message, op_events(h, k.op));
    }
    if run.provider {
        for row in run.charges {
            let recorded = run.keys.iter().any(|k| k.end == KeyEnd::Finished { charge: row.charge })
                || h.iter().any(|e| matches!(e.obs, Obs::ResultStored { charge, .. } if charge == row.charge));
            if !recorded {
                let at = charge_time(h, row.charge).map_or("at an unrecorded time".into(), |(_, t)| format!("at {}", ms(t)));
                let message = format!(
                    "orphan charge: the provider made charge #{} (key {:#x}, operation {}, amount {}) {at}, but no key ever recorded it as \
                     its result. Client: {}.",
                    row.charge,
                    row.key,
                    row.op,
                    row.amount,
                    client_story(h, row.op)
                );
                return violation(SETTLES, message, op_events(h, row.op));
            }
        }
    }
    None
}

/// Operations whose last start has no later `Settled`, with the index of that start.
fn unsettled(h: &[Entry<Obs>]) -> Vec<(usize, OpId)> {
    let mut open: BTreeMap<OpId, Option<usize>> = BTreeMap::new();
    for (i, e) in h.iter().enumerate() {
        match e.obs {
            Obs::OpStarted { op, .. } => {
                open.insert(op, Some(i));
            }
            Obs::Settled { op, .. } => {
                open.insert(op, None);
            }
            _ => {}
        }
    }
    let mut v: Vec<(usize, OpId)> = open.into_iter().filter_map(|(op, i)| i.map(|i| (i, op))).collect();
    v.sort();
    v
}

/// A random history of a few operations over a few keys, and a ledger to go with it: small
/// enough that collisions (double charges, differing replays, unsettled operations) are common.
fn random_run(c: &mut Choices) -> (Vec<Entry<Obs>>, Vec<ChargeRow>, RunEnd) {
    let mut pick = |n: u32| c.pick(ChoiceKind::Model, n);
    let mut h = Vec::new();
    let len = pick(24);
    for t in 0..len {
        let (op, key, charge) = (pick(3), pick(3) as u64, pick(4));
        let status = if pick(3) == 0 { Status::Ok { charge, amount: 100 + 50 * pick(2), replayed: false } } else { Status::Conflict };
        let obs = match pick(7) {
            0 => Obs::OpStarted { op, amount: 100, begin: Begin::First },
            1 => Obs::Sent { op, attempt: 1, copy: 0, key, amount: 100 + 50 * pick(2), server: 0 },
            2 | 3 => Obs::Received { op, attempt: 1, copy: 0, key, status },
            4 => Obs::Settled {
                op,
                outcome: match pick(3) {
                    0 => Settle::Succeeded { charge, amount: 100 },
                    1 => Settle::GaveUp { attempts: 3 },
                    _ => Settle::Rejected { code: 422 },
                },
            },
            5 => Obs::Charged { row: ChargeRow { charge, op, key, amount: 100 } },
            _ => Obs::ResultStored { key, charge },
        };
        h.push(Entry { at_us: t as u64 * 1_000, node: 0, obs });
    }
    let charges = (0..pick(5)).map(|_| ChargeRow { charge: pick(4), op: pick(3), key: pick(3) as u64, amount: 100 }).collect();
    let end = if pick(4) == 0 { RunEnd::TimeLimit } else { RunEnd::Quiescent };
    (h, charges, end)
}

#[test]
fn the_rewritten_checkers_judge_as_the_map_based_ones_did() {
    // Counts per checker in `pairs`' order; the last is of histories with an unsettled operation
    // (one per seed, not two).
    let (mut violations, mut runs) = ([0u32; 5], 0);
    for seed in 0..20_000 {
        let mut c = Choices::seeded(seed);
        let (h, charges, end) = random_run(&mut c);
        for liveness in [true, false] {
            let r = PaymentRun {
                history: &h,
                charges: &charges,
                keys: &[],
                provider: false,
                end,
                heal_at_us: 0,
                settle_bound_us: 10_000,
                liveness,
            };
            let pairs = [
                (super::exactly_once_charge(&r), exactly_once_charge(&r)),
                (super::replay_fidelity(&r), replay_fidelity(&r)),
                (super::mismatch_rejected(&r), mismatch_rejected(&r)),
                (super::settles(&r), settles(&r)),
            ];
            // All four at once, as a run is judged: they share one gathering of the history.
            let old: Vec<Violation> =
                [exactly_once_charge(&r), mismatch_rejected(&r), replay_fidelity(&r), settles(&r)].into_iter().flatten().collect();
            assert_eq!(super::check(&r), Violation::combine(old), "seed {seed}, liveness {liveness}: {h:?} {charges:?}");
            for (k, (new, old)) in pairs.into_iter().enumerate() {
                assert_eq!(new, old, "seed {seed}, liveness {liveness}, checker {k}: {h:?} {charges:?}");
                violations[k] += new.is_some() as u32;
            }
            runs += 1;
        }
        let open = unsettled(&h);
        assert_eq!(super::unsettled(&h), open, "seed {seed}: {h:?}");
        assert_eq!(super::first_unsettled(&h), open.first().copied(), "seed {seed}: {h:?}");
        violations[4] += !open.is_empty() as u32;
    }
    // The histories must exercise every checker both ways, or the comparison shows nothing.
    for (k, v) in violations.iter().enumerate() {
        let n = if k == 4 { runs / 2 } else { runs };
        assert!(*v > n / 20 && *v < n - n / 20, "checker {k}: {v} violations in {n} runs");
    }
}
