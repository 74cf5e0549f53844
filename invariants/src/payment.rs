//! Checkers of the payment path: money (exactly one charge per operation, and the client told the
//! truth about it), replayed results identical to the first, a key reused with another payload
//! refused, and liveness (every operation and every claimed key settles).

use crate::ms;
use crate::obs::{ChargeRow, KeyEnd, KeyRecord, Obs, OpId, Settle, Status};
use sim::{Entry, RunEnd, Verdict, Violation};
use std::cell::RefCell;

pub const EXACTLY_ONCE_CHARGE: &str = "exactly_once_charge";
pub const MISMATCH_REJECTED: &str = "mismatch_rejected";
pub const REPLAY_FIDELITY: &str = "replay_fidelity";
pub const SETTLES: &str = "settles";

/// The payment invariants in checker order: safety first, liveness last.
pub const ALL: [&str; 4] = [EXACTLY_ONCE_CHARGE, MISMATCH_REJECTED, REPLAY_FIDELITY, SETTLES];

/// Is `invariant` a liveness property (judged after the heal phase) rather than a safety one?
pub fn is_liveness(invariant: &str) -> bool {
    invariant == SETTLES
}

/// Everything the payment checkers judge.
pub struct PaymentRun<'a> {
    pub history: &'a [Entry<Obs>],
    /// The charges an auditor finds after the run: the ledger's durable rows, or the provider's.
    pub charges: &'a [ChargeRow],
    /// The keys the key store holds after the run (durable part; released keys are absent).
    pub keys: &'a [KeyRecord],
    /// The charges live at an external provider, so each must be recorded locally too.
    pub provider: bool,
    pub end: RunEnd,
    /// From this time on no new fault starts.
    pub heal_at_us: u64,
    /// Every operation settles within this long after the later of its start and the heal.
    pub settle_bound_us: u64,
    /// Judge the client's patience (`settles`, and a charge whose client gave up). Off when the
    /// client's attempts are cut by a search bound rather than by its design.
    pub liveness: bool,
}

/// Every payment checker, in `ALL`'s order; the verdict names each invariant the run broke.
pub fn check(run: &PaymentRun<'_>) -> Verdict {
    let checkers: [fn(&PaymentRun<'_>, &mut Marks) -> Option<Violation>; 4] = [exactly_once_in, mismatch_in, replay_in, settles_in];
    with_marks(run, |m| Violation::combine(checkers.iter().filter_map(|c| c(run, m)).collect()))
}

/// The entries and rows the checkers look at, gathered in one pass: most of a history is
/// requests and replies no checker reads, and each checker used to scan all of it (six passes a
/// run, a tenth of the benchmark's time with the history hash). Judged for every run of a
/// search; per-thread buffers, so a passing run allocates nothing here once warm.
struct Marks {
    /// `Sent` entries, in history order.
    sents: Vec<usize>,
    /// 200 answers, `(key, index)`, in history order.
    oks: Vec<(u64, usize)>,
    /// `OpStarted` and `Settled` entries, `(operation, index)`, in history order.
    life: Vec<(u64, usize)>,
    /// The ledger's rows, `(operation, index in run.charges)`, sorted: each operation's rows
    /// together, in operation order, each in the ledger's order.
    by_op: Vec<(u64, usize)>,
    /// A checker's sorted copy of one of the above.
    sorted: Vec<(u64, usize)>,
}

impl Marks {
    const fn new() -> Self {
        Marks { sents: Vec::new(), oks: Vec::new(), life: Vec::new(), by_op: Vec::new(), sorted: Vec::new() }
    }

    fn gather(&mut self, run: &PaymentRun<'_>) {
        let Marks { sents, oks, life, by_op, sorted } = self;
        for v in [&mut *oks, &mut *life, &mut *by_op, &mut *sorted] {
            v.clear();
        }
        sents.clear();
        for (i, e) in run.history.iter().enumerate() {
            match e.obs {
                Obs::Sent { .. } => sents.push(i),
                Obs::Received { key, status: Status::Ok { .. }, .. } => oks.push((key, i)),
                Obs::OpStarted { op, .. } | Obs::Settled { op, .. } => life.push((op as u64, i)),
                _ => {}
            }
        }
        by_op.extend(run.charges.iter().enumerate().map(|(i, r)| (r.op as u64, i)));
        by_op.sort_unstable();
    }
}

/// `f` with the marks of `run` (the thread's buffers).
fn with_marks<R>(run: &PaymentRun<'_>, f: impl FnOnce(&mut Marks) -> R) -> R {
    thread_local!(static MARKS: RefCell<Marks> = const { RefCell::new(Marks::new()) });
    MARKS.with_borrow_mut(|m| {
        m.gather(run);
        f(m)
    })
}

fn violation(invariant: &str, message: String, events: Vec<usize>) -> Option<Violation> {
    Some(Violation::new(invariant, message, events))
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

/// The client's side of `op`: every request and response, one line.
pub fn client_story(h: &[Entry<Obs>], op: OpId) -> String {
    let mut parts = Vec::new();
    for e in h {
        match e.obs {
            Obs::OpStarted { op: o, begin, .. } if o == op && begin != crate::obs::Begin::First => parts.push(format!(
                "{} at {}",
                if begin == crate::obs::Begin::Repay { "the user paid again" } else { "the app restarted the payment" },
                ms(e.at_us)
            )),
            Obs::Sent { op: o, attempt, copy, key, amount, server } if o == op => {
                let copy = if copy > 0 { format!(" (copy {})", copy + 1) } else { String::new() };
                parts.push(format!("attempt {attempt}{copy} key {key:#x} amount {amount} sent to server{server} at {}", ms(e.at_us)));
            }
            Obs::Received { op: o, attempt, copy, status, .. } if o == op => {
                let copy = if copy > 0 { format!(" (copy {})", copy + 1) } else { String::new() };
                parts.push(format!("attempt {attempt}{copy} got {status} at {}", ms(e.at_us)))
            }
            Obs::TimedOut { op: o, attempt } if o == op => parts.push(format!("attempt {attempt} timed out at {}", ms(e.at_us))),
            Obs::Settled { op: o, outcome } if o == op => parts.push(format!("settled {} at {}", settle_text(outcome), ms(e.at_us))),
            _ => {}
        }
    }
    if parts.is_empty() {
        "the client sent nothing".into()
    } else {
        parts.join("; ")
    }
}

fn settle_text(s: Settle) -> String {
    match s {
        Settle::Succeeded { charge, .. } => format!("as paid (charge #{charge})"),
        Settle::Rejected { code } => format!("as failed ({code})"),
        Settle::GaveUp { attempts } => format!("as gave up after {attempts} attempts"),
    }
}

/// Money: no operation is charged twice; an operation whose client saw success is charged exactly
/// once, durably, with the charge the client was told of; and no operation whose client settled
/// as failed or gave up is charged, unless a later answer reported that charge to the client.
pub fn exactly_once_charge(run: &PaymentRun<'_>) -> Option<Violation> {
    with_marks(run, |m| exactly_once_in(run, m))
}

fn exactly_once_in(run: &PaymentRun<'_>, m: &mut Marks) -> Option<Violation> {
    let h = run.history;
    for rows in m.by_op.chunk_by(|a, b| a.0 == b.0) {
        if rows.len() > 1 {
            let op = rows[0].0 as OpId;
            let list: Vec<String> = rows
                .iter()
                .map(|&(_, i)| {
                    let r = &run.charges[i];
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
    for &(_, i) in &m.life {
        let e = &h[i];
        let Obs::Settled { op, outcome: Settle::Succeeded { charge, amount } } = e.obs else { continue };
        let durable = first_row(run.charges, &m.by_op, op);
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
    told_failed_but_charged(run, m)
}

/// The first of `op`'s rows in the ledger, given `by_op` as `Marks` sorts it.
fn first_row<'a>(charges: &'a [ChargeRow], by_op: &[(u64, usize)], op: OpId) -> Option<&'a ChargeRow> {
    let i = by_op.partition_point(|&(o, _)| o < op as u64);
    by_op.get(i).filter(|&&(o, _)| o == op as u64).map(|&(_, row)| &charges[row])
}

/// An operation whose last word to its user was "failed" or "gave up" while a charge for it is
/// durable: the user believes they did not pay (and may pay again).
fn told_failed_but_charged(run: &PaymentRun<'_>, m: &mut Marks) -> Option<Violation> {
    let h = run.history;
    let Marks { life, by_op, sorted: settled, .. } = m;
    settled.clear();
    settled.extend(life.iter().filter(|&&(_, i)| matches!(h[i].obs, Obs::Settled { .. })));
    settled.sort_unstable();
    // Each operation's last `Settled`, in operation order.
    for group in settled.chunk_by(|a, b| a.0 == b.0) {
        let (op, i) = (group[0].0 as OpId, group[group.len() - 1].1);
        let Obs::Settled { outcome, .. } = h[i].obs else { unreachable!("a Settled entry") };
        if matches!(outcome, Settle::Succeeded { .. }) || (!run.liveness && matches!(outcome, Settle::GaveUp { .. })) {
            continue;
        }
        let Some(row) = first_row(run.charges, by_op, op) else { continue };
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

/// A key reused with a different payload is refused (422): never answered 200 with the result
/// of the other payload, and never charged for the other payload.
pub fn mismatch_rejected(run: &PaymentRun<'_>) -> Option<Violation> {
    with_marks(run, |m| mismatch_in(run, m))
}

fn mismatch_in(run: &PaymentRun<'_>, m: &mut Marks) -> Option<Violation> {
    let h = run.history;
    let sents = &m.sents;
    for &(_, i) in &m.oks {
        let e = &h[i];
        let Obs::Received { op, attempt, copy, key, status: Status::Ok { charge, amount: charged, .. } } = e.obs else {
            unreachable!("a 200 entry")
        };
        // A 200's request is looked for among the `Sent` entries before it, not in the
        // whole history before it.
        let sent = sents[..sents.partition_point(|&s| s < i)]
            .iter()
            .rev()
            .copied()
            .find(|&s| matches!(h[s].obs, Obs::Sent { op: o, attempt: a, copy: c, .. } if o == op && a == attempt && c == copy));
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
    // The first payload sent with a key is the key's; a charge for another amount under it
    // is a mismatched request that was executed.
    for row in run.charges {
        let first = sents.iter().copied().find(|&s| matches!(h[s].obs, Obs::Sent { key, .. } if key == row.key));
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

/// Every success response for one key carries the same result.
pub fn replay_fidelity(run: &PaymentRun<'_>) -> Option<Violation> {
    with_marks(run, |m| replay_in(run, m))
}

fn replay_in(run: &PaymentRun<'_>, m: &mut Marks) -> Option<Violation> {
    let h = run.history;
    let ok = |i: usize| match h[i].obs {
        Obs::Received { op, status: Status::Ok { charge, amount, .. }, .. } => (op, charge, amount),
        _ => unreachable!("a 200 entry"),
    };
    let Marks { oks: in_order, sorted: oks, .. } = m;
    oks.clear();
    oks.extend_from_slice(in_order);
    oks.sort_unstable();
    // The earliest 200 (in history order) that differs from its key's first.
    let mut first_diff: Option<(u64, usize, usize)> = None;
    for group in oks.chunk_by(|a, b| a.0 == b.0) {
        let (key, j) = group[0];
        let (_, c0, a0) = ok(j);
        let diff = group[1..].iter().map(|&(_, i)| i).find(|&i| (ok(i).1, ok(i).2) != (c0, a0));
        if let Some(i) = diff.filter(|&i| first_diff.is_none_or(|(_, _, f)| i < f)) {
            first_diff = Some((key, j, i));
        }
    }
    let (key, j, i) = first_diff?;
    let ((_, c0, a0), (op, charge, amount)) = (ok(j), ok(i));
    let message = format!(
        "replay differs: key {key:#x} was answered 200 charge #{c0} amount {a0} at {} and 200 charge #{charge} amount {amount} \
         at {} (operation {op}). Client: {}.",
        ms(h[j].at_us),
        ms(h[i].at_us),
        client_story(h, op)
    );
    violation(REPLAY_FIDELITY, message, vec![j, i])
}

/// Liveness: the run ends by itself; after the heal phase every operation settles within the
/// scenario's bound; every claimed key ends finished, failed or released; and every charge made
/// at an external provider is recorded locally as some key's result (no orphan charge).
pub fn settles(run: &PaymentRun<'_>) -> Option<Violation> {
    with_marks(run, |m| settles_in(run, m))
}

fn settles_in(run: &PaymentRun<'_>, m: &mut Marks) -> Option<Violation> {
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
    if let Some((i, op)) = first_unsettled_in(h, m) {
        let message =
            format!("operation {op} never settled: the run went quiet with its client still waiting. Client: {}.", client_story(h, op));
        return violation(SETTLES, message, op_events(h, op).into_iter().chain([i]).collect());
    }
    for (k, &(_, i)) in m.life.iter().enumerate() {
        let e = &h[i];
        let Obs::Settled { op, .. } = e.obs else { continue };
        // The operation's latest start so far, looked for among the starts and settles
        // before it, not the whole history.
        let started = m.life[..k]
            .iter()
            .rev()
            .find(|&&(o, s)| o == op as u64 && matches!(h[s].obs, Obs::OpStarted { .. }))
            .map_or(0, |&(_, s)| h[s].at_us);
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

/// Operations whose last start has no later `Settled`, with the index of that start, in
/// history order.
fn unsettled(h: &[Entry<Obs>]) -> Vec<(usize, OpId)> {
    let life: Vec<(u64, usize)> = h
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e.obs {
            Obs::OpStarted { op, .. } | Obs::Settled { op, .. } => Some((op as u64, i)),
            _ => None,
        })
        .collect();
    let mut v = Vec::new();
    each_unsettled(h, &life, &mut Vec::new(), |i, op| v.push((i, op)));
    v.sort_unstable();
    v
}

/// The first of `unsettled`, from the marks (no allocation: the passing path of every run
/// goes through here).
fn first_unsettled_in(h: &[Entry<Obs>], m: &mut Marks) -> Option<(usize, OpId)> {
    let mut first: Option<(usize, OpId)> = None;
    each_unsettled(h, &m.life, &mut m.sorted, |i, op| {
        if first.is_none_or(|f| (i, op) < f) {
            first = Some((i, op));
        }
    });
    first
}

/// `first_unsettled_in` on its own (for the equivalence test).
#[cfg(test)]
fn first_unsettled(h: &[Entry<Obs>]) -> Option<(usize, OpId)> {
    let run = PaymentRun {
        history: h,
        charges: &[],
        keys: &[],
        provider: false,
        end: RunEnd::Quiescent,
        heal_at_us: 0,
        settle_bound_us: 0,
        liveness: true,
    };
    with_marks(&run, |m| first_unsettled_in(h, m))
}

/// Each operation whose last `OpStarted` or `Settled` (of `life`, as `Marks` holds them) is a
/// start, with that start's index. `sorted` is scratch.
fn each_unsettled(h: &[Entry<Obs>], life: &[(u64, usize)], sorted: &mut Vec<(u64, usize)>, mut f: impl FnMut(usize, OpId)) {
    sorted.clear();
    sorted.extend_from_slice(life);
    sorted.sort_unstable();
    for group in sorted.chunk_by(|a, b| a.0 == b.0) {
        let (op, i) = (group[0].0 as OpId, group[group.len() - 1].1);
        if matches!(h[i].obs, Obs::OpStarted { .. }) {
            f(i, op);
        }
    }
}

#[cfg(test)]
mod equivalence;

#[cfg(test)]
mod tests;
