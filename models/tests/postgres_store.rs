//! The Postgres store's fidelity (issue 12).
//!
//! A dead app server's transaction: PostgreSQL does not know its client died (a
//! machine crash sends no FIN) and keeps the session, its open transaction and the key's row
//! lock until `idle_in_transaction_session_timeout` or TCP keepalive ends it
//! (`session_timeout_us`). Every request for the key meanwhile waits on the unique index and,
//! with `in_flight = reject409`, gets 409 after `lock_timeout`. The legacy idealisation (0)
//! released it when the server restarted, 1 to 50 ms later. A process crash is different: the
//! machine's OS closes the dead process's connections, and the database ends their sessions
//! as soon as it reads the FIN.
//!
//! `synchronous_commit = off`: the WAL writer flushes an acknowledged commit between one and
//! three `wal_writer_delay`s later, drawn per flush through the choice source.

use invariants::{Obs, Status};
use models::knobs::KeyStore;
use models::payment::PaymentModel;
use models::{presets, Role, Scenario};
use sim::Sim;

/// `payment/durable-on-conflict` where only servers crash, often, with `session_timeout_us`.
fn crashing_servers(session_timeout_us: u64) -> Scenario {
    let mut s = presets::get("payment/durable-on-conflict").expect("preset");
    if let KeyStore::Postgres { session_timeout_us: t, .. } = &mut s.payment_mut().store {
        *t = session_timeout_us;
    }
    s.targets.crash = vec![Role::Server];
    s.targets.pause.clear();
    s.faults.crash_probability = 0.5;
    s.validate().expect("valid");
    s
}

/// The longest run of 409s one operation got (from its first to its last), over seeds 0..300.
fn longest_409_span_us(s: &Scenario) -> u64 {
    let model = PaymentModel::new(s);
    let mut sim = Sim::new();
    let mut longest = 0;
    for seed in 0..300 {
        let out = sim.run_seed(&model, seed);
        assert!(out.verdict.violation().is_none(), "seed {seed}: {:?}", out.verdict.violation().map(|v| &v.message));
        let mut first = std::collections::HashMap::new();
        for e in sim.history() {
            if let Obs::Received { op, status: Status::Conflict, .. } = e.obs {
                let start = *first.entry(op).or_insert(e.at_us);
                longest = longest.max(e.at_us - start);
            }
        }
    }
    longest
}

/// `crashing_servers` whose crashes are process crashes (an OOM kill, a deploy's restart): the
/// machine stays up, and its OS closes the dead process's connections.
fn crashing_processes(session_timeout_us: u64) -> Scenario {
    let mut s = crashing_servers(session_timeout_us);
    s.faults.process_crash_probability = std::mem::take(&mut s.faults.crash_probability);
    s.validate().expect("valid");
    s
}

#[test]
fn a_crashed_servers_transaction_holds_the_key_until_its_session_times_out() {
    let held = longest_409_span_us(&crashing_servers(1_000_000));
    let legacy = longest_409_span_us(&crashing_servers(0));
    let process = longest_409_span_us(&crashing_processes(1_000_000));
    eprintln!(
        "longest run of 409s for one operation: {held} µs with a 1 s session timeout, {legacy} µs released at the server's \
         restart, {process} µs after process crashes"
    );
    // The dead session is ended 1 s after its last statement; the 409s last about that long
    // (the first retry after the crash comes a little after it, the last a little before the end).
    assert!((700_000..1_300_000).contains(&held), "{held}");
    assert!(legacy < 300_000, "{legacy}");
    // A process crash is not a dead machine: the FIN ends the sessions at once, whatever the timeout.
    assert!(process < 300_000, "{process}");
}

/// From the first commit to the WAL writer's flush after it, in the run `sim` just made.
fn flush_gap_us(sim: &Sim<models::world::Node>) -> u64 {
    let committed = sim.history().iter().find(|e| matches!(e.obs, Obs::Charged { .. })).expect("a commit").at_us;
    let flushed = sim
        .trace()
        .iter()
        .find(|t| t.at_us >= committed && matches!(&t.kind, sim::TraceKind::Timer { timer } if timer.contains("WalFlush")));
    flushed.expect("a flush").at_us - committed
}

#[test]
fn an_async_commit_is_flushed_one_to_three_wal_writer_delays_later() {
    let mut s = presets::get("payment/async-commit").unwrap();
    s.faults = sim::FaultProfile { fault_phase_us: s.faults.fault_phase_us, ..sim::FaultProfile::none() };
    let model = PaymentModel::new(&s);
    let mut sim = Sim::new();
    sim.set_trace(true);
    // An empty tape answers 0 to every choice: the shortest window, as a shrunk tape has.
    sim.run_tape(&model, &[]);
    assert_eq!(flush_gap_us(&sim), 200_000);
    let gaps: Vec<u64> = (0..40)
        .map(|seed| {
            sim.run_seed(&model, seed);
            flush_gap_us(&sim)
        })
        .collect();
    assert!(gaps.iter().all(|g| (200_000..=600_000).contains(g)), "{gaps:?}");
    assert!(gaps.iter().any(|&g| g < 300_000) && gaps.iter().any(|&g| g > 500_000), "{gaps:?}");
}

/// The outbox path's writers hold sessions on the orders database too: a process crash of the
/// service or the relay sends the FIN that ends them (`ConnectionsClosed` from that node,
/// delivered to the orders database), and a machine crash sends none.
#[test]
fn the_outbox_service_and_relay_close_their_sessions_in_a_process_crash() {
    let fins_from = |process: bool| {
        let mut s = presets::get("outbox/outbox-inbox").expect("preset");
        s.targets.crash = vec![Role::Service, Role::Relay];
        s.faults.crash_probability = 0.5;
        if process {
            s.faults.process_crash_probability = std::mem::take(&mut s.faults.crash_probability);
        }
        s.validate().expect("valid");
        closed_sessions_at(&s, "orders-db")
    };
    assert_eq!(fins_from(true), ["relay", "service"].map(String::from).into(), "both writers close their sessions");
    assert!(fins_from(false).is_empty(), "a machine crash closes nothing");
}

/// The nodes whose `ConnectionsClosed` reached node `db` (by name) in seeds 0..100 of `s`.
pub(crate) fn closed_sessions_at(s: &Scenario, db: &str) -> std::collections::BTreeSet<String> {
    let model = s.model();
    let nodes: Vec<String> = sim::Model::config(&model).nodes.iter().map(|n| n.name.clone()).collect();
    let db = nodes.iter().position(|n| n == db).expect("the database is a node");
    let mut sim = Sim::new();
    sim.set_trace(true);
    let mut from = std::collections::BTreeSet::new();
    for seed in 0..100 {
        sim.run_seed(&model, seed);
        for t in sim.trace().iter().filter(|t| t.node == db) {
            if let sim::TraceKind::Deliver { from: f, msg } = &t.kind {
                if msg.starts_with("ConnectionsClosed") {
                    from.insert(nodes[*f].clone());
                }
            }
        }
    }
    from
}

/// The outbox path's orders database keeps a vanished order service's session too
/// (`outbox.store.session_timeout_us`): after a machine crash, statements the dead service
/// sent before it died are still served, so its last order can commit after the restarted
/// service has begun the next one, and the design stays correct (every run is judged). With 0
/// (the idealisation before this knob) the restart ended the old session and dropped its
/// statements.
#[test]
fn a_crashed_services_session_outlives_its_restart_and_its_order_still_commits() {
    let late_commits = |session_timeout_us: u64| {
        let mut s = presets::get("outbox/outbox-inbox").expect("preset");
        s.outbox.as_mut().expect("an outbox scenario").store.session_timeout_us = session_timeout_us;
        s.targets.crash = vec![Role::Service];
        s.targets.pause.clear();
        s.faults.crash_probability = 0.5;
        s.validate().expect("valid");
        let model = s.model();
        let names: Vec<String> = sim::Model::config(&model).nodes.iter().map(|n| n.name.clone()).collect();
        let at = |name: &str| names.iter().position(|n| n == name).expect("a node");
        let (service, db) = (at("service"), at("orders-db"));
        let mut sim = Sim::new();
        sim.set_trace(true);
        let mut runs = 0;
        for seed in 0..3000 {
            let out = sim.run_seed(&model, seed);
            assert!(out.verdict.violation().is_none(), "seed {seed}: {:?}", out.verdict.violation().map(|v| &v.message));
            // When the database heard of the restart (with 0 it ends the old sessions then).
            let told = sim.trace().iter().find(|t| {
                t.node == db
                    && matches!(&t.kind, sim::TraceKind::Deliver { from, msg } if *from == service && msg.starts_with("ServerRestarted"))
            });
            let Some(restart_us) = told.map(|t| t.at_us) else { continue };
            // Transaction ids are `node << 48 | boot << 32 | counter`; the first boot is 1.
            let old_commit = sim.trace().iter().any(|t| {
                t.node == db
                    && t.at_us > restart_us
                    && matches!(&t.kind, sim::TraceKind::Send { to, msg, .. }
                        if *to == service && msg.contains("reply: Committed") && tx_boot(msg) == Some(1))
            });
            runs += old_commit as u32;
        }
        runs
    };
    let held = late_commits(1_000_000);
    let ended = late_commits(0);
    eprintln!("runs whose dead service's order committed after the database heard of its restart: {held} with a 1 s session timeout, {ended} with 0");
    assert!(held > 0, "a live session's statements are served after its service restarted");
    assert_eq!(ended, 0, "the idealisation ends the old session at the restart");
}

/// The boot field of the `tx: N` in a traced message.
fn tx_boot(msg: &str) -> Option<u64> {
    let rest = &msg[msg.find("tx: ")? + 4..];
    let n: u64 = rest[..rest.find(|c: char| !c.is_ascii_digit())?].parse().ok()?;
    Some((n >> 32) & 0xffff)
}

/// A relay whose machine died can leave its `FOR UPDATE SKIP LOCKED` poll on the wire; served
/// after its restart (the session lives on), it claims rows in a transaction nobody will end.
/// Its session's timeout must end it: `SKIP LOCKED` never waits, so no waiter ever would, and
/// both relays would skip those rows for good (a lost event). Six orders of six aggregates: no
/// order to break, so any violation is that loss (before the fix: 13 of these seeds, the first 25079).
#[test]
fn a_dead_relays_claim_served_after_its_restart_ends_with_its_session() {
    let mut s = presets::get("outbox/concurrent-relays").expect("preset");
    let o = s.outbox.as_mut().expect("an outbox scenario");
    assert_eq!(o.store.session_timeout_us, 1_000_000, "the preset holds dead sessions");
    o.orders.aggregates = o.orders.count;
    s.validate().expect("valid");
    let r = s.explore(0..100_000, 2, None);
    assert_eq!(r.runs, 100_000);
    if let Some(f) = &r.first {
        panic!("seed {} breaks {}: {}", f.seed, f.violation.invariant, f.violation.message);
    }
}
