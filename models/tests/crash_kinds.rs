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

/// Under process crashes alone no AOF write is ever lost, and `setnx-always` holds under both
/// kinds. `setnx-everysec` and `setnx-no-fsync` break less under process crashes (the key is no
/// longer lost) but still break: the store's crash cuts the handler's connection between the
/// provider's charge and the stored result, the claim stays in flight for its 24 h TTL, and
/// with an unkeyed provider nothing can finish it safely (the client gives up on a charge that
/// went through, or a re-payment charges again). That is a flaw of those designs apart from
/// durability; `setnx-always` has the fix (a lock TTL and a keyed provider).
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
        // The process crashes did strike the store, and none lost a write it had acknowledged.
        assert!(process.stats.process_crashes > 100 && process.stats.process_crashes == process.stats.crashes, "{preset}");
        assert_eq!(machine.stats.process_crashes, 0);
        assert_eq!(process.stats.writes_lost, 0, "{preset}: a process crash lost an AOF write");
        if preset == "payment/setnx-always" {
            assert_eq!(machine.violations + process.violations, 0, "{preset}: {:?} {:?}", machine.first, process.first);
            continue;
        }
        assert!(machine.stats.writes_lost > 0 && broke(&machine) > 0, "{preset}: the machine crash should lose the key");
        let v = &machine.first.as_ref().unwrap().violation;
        assert!(v.message.contains("store crashed at"), "{}", v.message);
        assert!(broke(&process) < broke(&machine), "{preset}: {} vs {}", broke(&process), broke(&machine));
        if let Some(f) = &process.first {
            assert!(f.violation.message.contains("store's process crashed at"), "{}", f.violation.message);
        }
    }
}
