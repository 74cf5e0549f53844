//! What a crash loses (issue 12): a *machine* crash (kernel panic, power loss) loses every write
//! not fsynced; a *process* crash (OOM kill, SIGKILL, a deploy's restart) loses only what the
//! process had not handed to the OS. Redis writes its AOF buffer to the OS before it replies, so
//! SETNX-only designs lose keys only in machine crashes; the
//! fsync clock's period decides how wide the window is (`everysec` about 1 s, `no` about 30 s).

use models::{presets, Scenario};
use sim::ExploreReport;

const EXACTLY_ONCE: &str = invariants::payment::EXACTLY_ONCE_CHARGE;
const SEEDS: std::ops::Range<u64> = 0..3_000;

/// `preset` with its machine crashes turned into process crashes at the same rate.
fn process_crashes_only(preset: &str) -> Scenario {
    let mut s = presets::get(preset).expect("a preset");
    assert!(s.faults.crash_probability > 0.0, "{preset} crashes");
    s.faults.process_crash_probability = s.faults.crash_probability;
    s.faults.crash_probability = 0.0;
    s.validate().expect("valid");
    s
}

fn explore(s: &Scenario) -> ExploreReport {
    s.explore(SEEDS, 2, None)
}

fn broke(r: &ExploreReport) -> u64 {
    r.by_invariant.get(EXACTLY_ONCE).copied().unwrap_or(0)
}

/// Under process crashes alone no AOF write is ever lost, and all three SETNX presets hold; under
/// machine crashes `setnx-everysec` and `setnx-no-fsync` double-charge (the key written since the
/// last fsync is gone) and `setnx-always` holds. The fsync presets' handler stores a charge's
/// result again until the store answers (`result_write = until_stored`): with `once`, a crash of
/// either kind cut the handler off between the provider's charge and the stored result, and an
/// unkeyed provider charged again (see `a_handler_that_gives_up_on_the_result_breaks_under_process_crashes`).
#[test]
fn setnx_designs_lose_keys_only_in_machine_crashes() {
    for preset in ["payment/setnx-everysec", "payment/setnx-no-fsync", "payment/setnx-always"] {
        let machine = explore(&presets::get(preset).unwrap());
        let process = explore(&process_crashes_only(preset));
        eprintln!(
            "{preset}: machine crashes: {} double charges in {} runs ({} crashes, {} writes lost); process crashes: {} ({} crashes, {} writes lost)",
            broke(&machine),
            machine.runs,
            machine.stats.crashes,
            machine.stats.writes_lost,
            broke(&process),
            process.stats.crashes,
            process.stats.writes_lost
        );
        // The process crashes did strike the store, none lost a write it had acknowledged, and
        // no design broke.
        assert!(process.stats.process_crashes > 100 && process.stats.process_crashes == process.stats.crashes, "{preset}");
        assert_eq!(machine.stats.process_crashes, 0);
        assert_eq!(process.stats.writes_lost, 0, "{preset}: a process crash lost an AOF write");
        assert_eq!(process.violations, 0, "{preset} under process crashes: {:?}", process.first);
        if preset == "payment/setnx-always" {
            assert_eq!(machine.violations, 0, "{preset}: {:?}", machine.first);
            continue;
        }
        assert!(machine.stats.writes_lost > 0 && broke(&machine) > 0, "{preset}: the machine crash should lose the key");
        let v = &machine.first.as_ref().unwrap().violation;
        assert!(v.message.contains("store crashed at"), "{}", v.message);
    }
}

/// The same fsync preset with a handler that gives a charge up when storing its result fails
/// (`result_write = once`, the default) breaks under process crashes alone, where no key is lost:
/// the claim stays in flight, the client is told the charge failed or a retry charges again.
#[test]
fn a_handler_that_gives_up_on_the_result_breaks_under_process_crashes() {
    let mut s = process_crashes_only("payment/setnx-everysec");
    s.payment_mut().server.result_write = models::knobs::ResultWrite::Once;
    let r = explore(&s);
    assert!(broke(&r) > 0 && r.stats.writes_lost == 0, "{} violations, {} writes lost", broke(&r), r.stats.writes_lost);
    let m = &r.first.as_ref().unwrap().violation.message;
    assert!(m.contains("store's process crashed at"), "{m}");
}

/// The 95% Wilson score interval of `k` successes in `n` trials (as `compare` prints it).
fn wilson(k: u64, n: u64) -> (f64, f64) {
    let (k, n, z) = (k as f64, n as f64, 1.96f64);
    let p = k / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / (1.0 + z * z / n);
    (centre - half, centre + half)
}

/// On the Redis presets' multi-second workload (purchases a second apart, a store crash at any
/// time in the first 4 s, a partition of up to 3 s) and a fsync clock at a random phase, the
/// loss window shows: `no` (about 30 s) double-charges more often than `everysec` (1 s), which
/// does more than `always` (never), with 95% intervals that do not overlap. (On the old
/// workload, every purchase in the first 500 ms, `no` and `everysec` gave the same rate: what
/// separates them is a request for a key more than a second after it was written.)
#[test]
fn a_longer_fsync_period_double_charges_more_often() {
    let rate = |preset: &str| {
        let r = explore(&presets::get(preset).expect("preset"));
        let k = broke(&r);
        eprintln!("{preset}: {k} double-charging runs of {} ({:.2}%)", r.runs, 100.0 * k as f64 / r.runs as f64);
        wilson(k, r.runs)
    };
    let (no, everysec, always) = (rate("payment/setnx-no-fsync"), rate("payment/setnx-everysec"), rate("payment/setnx-always"));
    assert!(no.0 > everysec.1, "no {no:?} should be above everysec {everysec:?}");
    assert!(everysec.0 > always.1, "everysec {everysec:?} should be above always {always:?}");
}

/// The fsync clock has been running since long before the run: the store's first fsync comes at
/// a different moment in each run, anywhere up to a second after its first write (with the clock
/// started with the run it would always come at 1 s).
#[test]
fn the_fsync_clock_starts_at_a_random_phase() {
    let model = presets::get("payment/setnx-everysec").unwrap().model();
    let store = sim::Model::config(&model).nodes.iter().position(|n| n.name == "store").expect("a store node");
    let mut sim = sim::Sim::new();
    sim.set_trace(true);
    let mut firsts = std::collections::BTreeSet::new();
    for seed in 0..50 {
        sim.run_seed(&model, seed);
        let at = |f: &dyn Fn(&sim::TraceKind) -> bool| sim.trace().iter().find(|e| e.node == store && f(&e.kind)).map(|e| e.at_us);
        let (Some(write), Some(fsync)) =
            (at(&|k| matches!(k, sim::TraceKind::Write { .. })), at(&|k| matches!(k, sim::TraceKind::Fsync { .. })))
        else {
            continue;
        };
        // A restarted store starts its clock at boot: judge the runs whose store did not crash first.
        if at(&|k| matches!(k, sim::TraceKind::Crash { .. })).is_some_and(|c| c < fsync) {
            continue;
        }
        assert!(fsync > write && fsync <= write + 1_000_000, "seed {seed}: first write at {write} µs, first fsync at {fsync} µs");
        firsts.insert(fsync % 1_000_000);
    }
    assert!(firsts.len() > 20, "the first fsync should fall at a different moment in each run: {firsts:?}");
}

/// A crashed app resumes its pending purchase with one request: the copies of a double click
/// (`workload.duplicates`) are the user's, fired with the purchase's first request, not again by
/// the app's recovery. (The exhaustive search of `--requests 3` with a client crash would
/// otherwise send six concurrent requests.)
#[test]
fn a_resumed_purchase_sends_its_request_once() {
    let mut s = presets::get("payment/durable-on-conflict").expect("a preset");
    let w = s.workload.as_mut().expect("a payment workload");
    (w.clients, w.operations_per_client, w.duplicates, w.repay_probability) = (1, 1, 2, 0.0);
    s.targets.crash = vec![models::Role::Client];
    s.faults.crash_probability = 1.0;
    s.validate().expect("valid");
    let mut resumed = 0;
    for seed in 0..200 {
        let r = s.record(&models::run::Source::Seed(seed), false);
        let Some(restart) = r.history.iter().position(|(_, _, o)| o.contains("begin: Restarted")) else { continue };
        let sent = |h: &[(u64, usize, String)]| h.iter().filter(|(_, _, o)| o.starts_with("Sent") && o.contains("attempt: 1,")).count();
        let first = sent(&r.history[..restart]);
        // A client that crashed before its first request had persisted nothing and starts afresh.
        if first > 0 {
            assert_eq!(first, 3, "seed {seed}: the double click's three copies");
            assert_eq!(sent(&r.history[restart..]), 1, "seed {seed}: {:#?}", r.history);
            resumed += 1;
        }
    }
    assert!(resumed >= 20, "only {resumed} of 200 seeds resumed a purchase");
}
