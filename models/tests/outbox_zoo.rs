//! The outbox path's bug zoo (11-15 and two from incidents): every preset is caught by its
//! invariant from a fixed seed range, and fails only because of its bug: fixed, it holds under
//! the same faults; with its trigger switched off, it holds too.

use crate::zoo::{self, threads};

use models::outbox::design::*;
use models::{Expect, Role, Scenario};

const SEEDS: u64 = 2_000;
const HOLD_SEEDS: u64 = 10_000;

fn outbox_bugs() -> Vec<Scenario> {
    zoo::bugs("outbox/")
}

/// The same preset with its one bad knob set right.
fn fixed(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let name = s.name.clone();
    let d = s.outbox_mut();
    match name.as_str() {
        "outbox/dual-write" | "outbox/publish-then-commit" => d.service.write = OrderWrite::Outbox,
        "outbox/no-inbox" | "outbox/dedup-separate-store" => d.consumer.dedup = Dedup::Inbox,
        "outbox/offset-before-effect" => d.consumer.offset_commit = OffsetCommit::AfterEffect,
        // Keep messages longer than any outage (Kafka's default is 7 days).
        "outbox/retention-shorter-than-outage" => d.broker.retention_us = 7 * 86_400_000_000,
        // Two relays that do not split the rows: both publish everything, in id order, and the
        // inbox drops the copies.
        "outbox/concurrent-relays" => d.relay.claim = Claim::None,
        other => panic!("no fix known for {other}: add one here"),
    }
    s.validate().expect("the fixed design is valid");
    s
}

/// The same preset with the fault (or concurrency) that triggers its bug switched off.
fn without_trigger(s: &Scenario) -> Scenario {
    let mut s = s.clone();
    let spare = |s: &mut Scenario, roles: &[Role]| {
        s.targets.crash.retain(|r| !roles.contains(r));
        s.targets.pause.retain(|r| !roles.contains(r));
    };
    match s.name.as_str() {
        // A service crash between its two writes, or a stalled database whose commit (or
        // rollback) outlives the service's timeout.
        "outbox/dual-write" | "outbox/publish-then-commit" => spare(&mut s, &[Role::Service, Role::Store]),
        // A redelivery: the consumer crashed after the effect; the relay published again after a
        // crash or a stalled mark; a stalled effect retried.
        "outbox/no-inbox" => spare(&mut s, &[Role::Consumer, Role::ConsumerStore, Role::Relay, Role::Store]),
        // A consumer crash between the offset commit and the effect.
        "outbox/offset-before-effect" => spare(&mut s, &[Role::Consumer]),
        // A crash or a stall between the dedup record and the effect.
        "outbox/dedup-separate-store" => spare(&mut s, &[Role::Consumer, Role::ConsumerStore]),
        "outbox/retention-shorter-than-outage" => s.outbox_mut().consumer.outage = None,
        // Two claims at once: a second relay, or one relay's abandoned claim (it timed out on a
        // stalled database, or crashed) still holding its row while its next poll skips past it.
        "outbox/concurrent-relays" => {
            s.outbox_mut().relay.instances = 1;
            spare(&mut s, &[Role::Relay, Role::Store]);
        }
        other => panic!("no trigger known for {other}: add one here"),
    }
    s
}

#[test]
fn every_outbox_bug_is_caught_by_its_invariant() {
    let zoo = outbox_bugs();
    assert_eq!(zoo.len(), 7, "bug zoo 11-15 and two incident bugs");
    for s in zoo {
        let r = s.explore(0..SEEDS, threads(), None);
        let Expect::Violation(expected) = &s.expect else { unreachable!() };
        let first = r.first.as_ref().unwrap_or_else(|| panic!("{}: no violation in seeds 0..{SEEDS}", s.name));
        assert!(
            first.violation.broke(expected),
            "{}: first violation (seed {}) breaks {:?}, not {expected}: {}",
            s.name,
            first.seed,
            first.violation.invariants().collect::<Vec<_>>(),
            first.violation.message
        );
        // The message names what happened to the event.
        let (about, kind) = match s.name.as_str() {
            "outbox/dual-write" | "outbox/offset-before-effect" => ("lost event", "committed at"),
            "outbox/publish-then-commit" => ("phantom event", "published by node"),
            "outbox/no-inbox" => ("duplicate effect", "applied at"),
            "outbox/retention-shorter-than-outage" => ("lost event", "deleted unread by retention"),
            "outbox/concurrent-relays" => ("out of order", "published by node"),
            _ => ("", ""),
        };
        let m = &first.violation.message;
        assert!(m.contains(about) && m.contains(kind), "{}: the message does not say what happened: {m}", s.name);
        println!(
            "{:40} caught in {:5} of {SEEDS} runs, first at seed {}: {:?}",
            s.name, r.by_invariant[expected], first.seed, r.by_invariant
        );
    }
}

fn assert_every_variant_holds(variant: fn(&Scenario) -> Scenario, what: &str) {
    zoo::assert_every_variant_holds(&outbox_bugs(), variant, HOLD_SEEDS, what);
}

#[test]
fn every_outbox_bug_holds_once_fixed() {
    assert_every_variant_holds(fixed, "fixed");
}

#[test]
fn every_outbox_bug_holds_without_its_trigger() {
    assert_every_variant_holds(without_trigger, "without its trigger");
}
