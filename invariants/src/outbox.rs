//! Checkers of the outbox path: every committed order's event has exactly one effect at the
//! consumer after the heal (none is a lost event, two a duplicate effect), no effect exists for
//! an order that never committed (a phantom), and one aggregate's effects apply in the order its
//! orders committed.

use crate::ms;
use crate::obs::{Event, Obs, OrderId};
use sim::{Entry, RunEnd, Verdict, Violation};

pub const EFFECTIVELY_ONCE_EVENT: &str = "effectively_once_event";
pub const PER_AGGREGATE_ORDER: &str = "per_aggregate_order";

/// The outbox invariants in checker order.
pub const ALL: [&str; 2] = [EFFECTIVELY_ONCE_EVENT, PER_AGGREGATE_ORDER];

/// Everything the outbox checkers judge.
pub struct OutboxRun<'a> {
    pub history: &'a [Entry<Obs>],
    /// The orders an auditor finds committed in the order database after the run, in commit
    /// order (the durable log's order).
    pub committed: &'a [Event],
    /// The effects an auditor finds in the consumer's projection after the run, in the order they
    /// were applied (committed).
    pub effects: &'a [Event],
    pub end: RunEnd,
    /// When the run ended.
    pub end_us: u64,
    /// From this time on no new fault starts.
    pub heal_at_us: u64,
    /// The design promises per-aggregate order (events keyed by aggregate id into one partition,
    /// one ordered stream per partition). Off for a design that does not promise it.
    pub ordered: bool,
    /// `committed` holds the operations charged, not orders committed: the checkout chain,
    /// where each paid operation's order must be fulfilled exactly once, and nothing may be
    /// fulfilled without a durable charge.
    pub charged: bool,
    /// Judge lost events (a committed order whose event was never applied by the end): sound
    /// only where every message arrives within a bound while the pollers still poll. Off in a
    /// search that lets a message be late past every poll (untimed, or bounded with late
    /// messages): there a lost event cannot be told from a late one. Duplicates and phantoms
    /// are judged either way.
    pub liveness: bool,
}

/// What went wrong in one run, counted (for `compare`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Committed orders with no effect.
    pub lost: u64,
    /// Effects beyond the first of a committed order.
    pub duplicate: u64,
    /// Effects of orders that never committed.
    pub phantom: u64,
    /// Effects applied before an effect of the same aggregate that committed earlier.
    pub out_of_order: u64,
    /// Orders the service placed whose row is not in the orders database at the end: a failed
    /// or timed-out call (a lock held past the call timeout), the service dying mid-order, or,
    /// with `synchronous_commit = off`, a crash losing an acknowledged commit. Their customers
    /// saw an error, except in that last case; and an order whose commit landed after the
    /// service gave up is committed here, though its customer saw an error too. What a design
    /// costs in availability; no invariant judges it. `None` on the checkout chain, whose
    /// orders are placed by paid operations, not by an order service.
    pub not_committed: Option<u64>,
}

/// Count lost, duplicate, phantom and out-of-order effects.
pub fn tally(committed: &[Event], effects: &[Event]) -> Tally {
    let mut t = Tally::default();
    for c in committed {
        match effects.iter().filter(|e| e.order == c.order).count() {
            0 => t.lost += 1,
            n => t.duplicate += n as u64 - 1,
        }
    }
    t.phantom = effects.iter().filter(|e| !committed.iter().any(|c| c.order == e.order)).count() as u64;
    t.out_of_order = out_of_order(committed, effects).count() as u64;
    t
}

/// Every outbox checker, in `ALL`'s order; the verdict names each invariant the run broke.
pub fn check(run: &OutboxRun<'_>) -> Verdict {
    let checkers: [fn(&OutboxRun<'_>) -> Option<Violation>; 2] = [effectively_once_event, per_aggregate_order];
    Violation::combine(checkers.iter().filter_map(|c| c(run)).collect())
}

/// Indices of the history entries about `order`'s event.
fn order_events(h: &[Entry<Obs>], order: OrderId) -> Vec<usize> {
    (0..h.len()).filter(|&i| event_of(&h[i].obs).is_some_and(|e| e.order == order)).collect()
}

fn event_of(o: &Obs) -> Option<Event> {
    match *o {
        Obs::OrderCommitted { event }
        | Obs::Published { event, .. }
        | Obs::Delivered { event, .. }
        | Obs::Applied { event }
        | Obs::Deduplicated { event }
        | Obs::Expired { event, .. } => Some(event),
        _ => None,
    }
}

/// The journey of `order`'s event, one clause per step: commit, every publish, every delivery,
/// every effect, every dedup and retention deletion, with simulated times.
pub fn event_story(h: &[Entry<Obs>], order: OrderId) -> String {
    let mut parts = Vec::new();
    for e in h {
        let at = ms(e.at_us);
        let text = match e.obs {
            Obs::OrderCommitted { event } if event.order == order => format!("committed at {at}"),
            Obs::Published { event, partition, offset, producer } if event.order == order => {
                format!("published by node {producer} to partition {partition} offset {offset} at {at}")
            }
            Obs::Delivered { event, partition, offset } if event.order == order => {
                format!("delivered from partition {partition} offset {offset} at {at}")
            }
            Obs::Applied { event } if event.order == order => format!("applied at {at}"),
            Obs::Deduplicated { event } if event.order == order => format!("skipped as a duplicate at {at}"),
            Obs::Expired { event, partition, offset } if event.order == order => {
                format!("deleted unread by retention from partition {partition} offset {offset} at {at}")
            }
            _ => continue,
        };
        parts.push(text);
    }
    if parts.is_empty() {
        "no step of it was recorded".into()
    } else {
        parts.join(", ")
    }
}

/// `effectively_once_event`: every committed order has exactly one effect, and every effect has a
/// committed order.
pub fn effectively_once_event(run: &OutboxRun<'_>) -> Option<Violation> {
    let h = run.history;
    let cut = if run.end == RunEnd::TimeLimit { " (the run hit its time limit with events still pending)" } else { "" };
    for c in run.committed {
        let n = run.effects.iter().filter(|e| e.order == c.order).count();
        let what = match n {
            1 => continue,
            0 if !run.liveness => continue,
            0 if run.charged => format!(
                "lost fulfilment: operation {} was charged, but its order's event (message id {}) was never applied by the end of \
                 the run at {}, {} after the heal{cut}",
                c.order,
                c.order,
                ms(run.end_us),
                ms(run.end_us.saturating_sub(run.heal_at_us))
            ),
            0 => format!(
                "lost event: order {} (message id {}, aggregate {}) committed, but its event was never applied by the end of the run \
                 at {}, {} after the heal{cut}",
                c.order,
                c.order,
                c.aggregate,
                ms(run.end_us),
                ms(run.end_us.saturating_sub(run.heal_at_us))
            ),
            n => format!("duplicate effect: order {} (message id {}, aggregate {}) was applied {n} times", c.order, c.order, c.aggregate),
        };
        let message = format!("{what}. Its event: {}. ", event_story(h, c.order));
        return Some(Violation::new(EFFECTIVELY_ONCE_EVENT, message, order_events(h, c.order)));
    }
    let phantom = run.effects.iter().find(|e| !run.committed.iter().any(|c| c.order == e.order))?;
    let never = if run.charged { "its operation has no durable charge" } else { "the order never committed" };
    let message = format!(
        "phantom event: order {} (message id {}, aggregate {}) was applied, but {never}. Its event: {}. ",
        phantom.order,
        phantom.order,
        phantom.aggregate,
        event_story(h, phantom.order)
    );
    Some(Violation::new(EFFECTIVELY_ONCE_EVENT, message, order_events(h, phantom.order)))
}

/// Pairs (early, late) of one aggregate where `early` committed before `late` but `late`'s
/// first effect came before `early`'s. Lost orders (no effect) are not reorders.
fn out_of_order<'a>(committed: &'a [Event], effects: &'a [Event]) -> impl Iterator<Item = (Event, Event)> + 'a {
    let first_effect = move |order: OrderId| effects.iter().position(|e| e.order == order);
    committed.iter().enumerate().flat_map(move |(i, &early)| {
        committed[i + 1..].iter().filter(move |late| late.aggregate == early.aggregate).filter_map(move |&late| {
            match (first_effect(early.order), first_effect(late.order)) {
                (Some(e), Some(l)) if l < e => Some((early, late)),
                _ => None,
            }
        })
    })
}

/// `per_aggregate_order`: one aggregate's effects apply in the order its orders committed
/// (judged on each order's first effect; duplicates and losses are `effectively_once_event`'s).
pub fn per_aggregate_order(run: &OutboxRun<'_>) -> Option<Violation> {
    if !run.ordered {
        return None;
    }
    let (early, late) = out_of_order(run.committed, run.effects).next()?;
    let h = run.history;
    let message = format!(
        "out of order: aggregate {} had order {} applied before order {}, which committed first. Order {}: {}. Order {}: {}. ",
        late.aggregate,
        late.order,
        early.order,
        early.order,
        event_story(h, early.order),
        late.order,
        event_story(h, late.order)
    );
    let mut events = order_events(h, early.order);
    events.extend(order_events(h, late.order));
    events.sort_unstable();
    Some(Violation::new(PER_AGGREGATE_ORDER, message, events))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(order: OrderId, aggregate: u32) -> Event {
        Event { order, aggregate }
    }

    fn run<'a>(committed: &'a [Event], effects: &'a [Event]) -> OutboxRun<'a> {
        OutboxRun {
            history: &[],
            committed,
            effects,
            end: RunEnd::Quiescent,
            end_us: 0,
            heal_at_us: 0,
            ordered: true,
            charged: false,
            liveness: true,
        }
    }

    #[test]
    fn without_liveness_a_missing_effect_is_not_judged_but_a_duplicate_or_phantom_is() {
        let c = [ev(1, 0), ev(2, 0)];
        let one = [ev(1, 0)];
        let lost = run(&c, &one);
        assert!(check(&lost).violation().is_some_and(|v| v.message.starts_with("lost event")));
        assert!(check(&OutboxRun { liveness: false, ..lost }).is_pass());
        let twice = [ev(1, 0), ev(1, 0)];
        assert!(check(&OutboxRun { liveness: false, ..run(&c, &twice) }).violation().is_some_and(|v| v.message.starts_with("duplicate")));
        let phantom = [ev(3, 0)];
        assert!(check(&OutboxRun { liveness: false, ..run(&c, &phantom) }).violation().is_some_and(|v| v.message.starts_with("phantom")));
    }

    #[test]
    fn exactly_one_effect_per_committed_order_in_order_passes() {
        let c = [ev(1, 0), ev(2, 1), ev(3, 0)];
        assert!(check(&run(&c, &[ev(2, 1), ev(1, 0), ev(3, 0)])).is_pass());
        assert_eq!(tally(&c, &[ev(1, 0), ev(2, 1), ev(3, 0)]), Tally::default());
    }

    #[test]
    fn lost_duplicate_and_phantom_are_each_caught() {
        let c = [ev(1, 0), ev(2, 0)];
        for effects in [&[ev(1, 0)][..], &[ev(1, 0), ev(2, 0), ev(2, 0)], &[ev(1, 0), ev(2, 0), ev(9, 0)]] {
            let v = check(&run(&c, effects));
            assert!(v.violation().is_some_and(|v| v.broke(EFFECTIVELY_ONCE_EVENT)), "{effects:?}: {v:?}");
        }
        let t = tally(&c, &[ev(2, 0), ev(2, 0), ev(9, 0)]);
        assert_eq!((t.lost, t.duplicate, t.phantom), (1, 1, 1));
    }

    #[test]
    fn an_aggregate_applied_out_of_commit_order_is_caught_and_others_are_not() {
        let c = [ev(1, 0), ev(2, 1), ev(3, 0)];
        let v = check(&run(&c, &[ev(3, 0), ev(1, 0), ev(2, 1)]));
        let v = v.violation().expect("out of order");
        assert!(v.broke(PER_AGGREGATE_ORDER) && !v.broke(EFFECTIVELY_ONCE_EVENT), "{v:?}");
        assert!(v.message.contains("order 3 applied before order 1"), "{}", v.message);
        // Different aggregates may interleave freely; a duplicate of an earlier one is no reorder.
        assert!(per_aggregate_order(&run(&c, &[ev(2, 1), ev(1, 0), ev(3, 0), ev(1, 0)])).is_none());
        assert_eq!(tally(&c, &[ev(3, 0), ev(1, 0), ev(2, 1)]).out_of_order, 1);
    }
}
