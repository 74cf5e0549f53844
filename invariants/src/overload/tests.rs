//! The overload checkers on hand-made histories: each invariant broken once, and passed.

use super::*;

fn at(at_us: u64, obs: Obs) -> Entry<Obs> {
    Entry { at_us, node: 0, obs }
}

fn run(h: &[Entry<Obs>]) -> OverloadRun<'_> {
    OverloadRun {
        history: h,
        end_us: 1_000,
        bucket_us: 100,
        outage: Some((200, 400)),
        capacity_per_bucket: 10.0,
        arrivals_end_us: 1_000,
        recovery_us: 200,
        goodput_fraction: 0.9,
        amplification_max: 3.0,
        starve_us: 50,
        workers: 2,
        tiers: 0,
        liveness: true,
        settle_bound_us: 300,
        end: RunEnd::Quiescent,
        heal_at_us: 0,
        forgotten: &[],
    }
}

fn op(t: u64, n: u32, attempts: u32, ok_at: Option<u64>) -> Vec<Entry<Obs>> {
    let mut v = vec![at(t, Obs::Offered { client: 0, op: n })];
    v.extend((1..=attempts).map(|a| at(t, Obs::Attempted { client: 0, op: n, attempt: a })));
    v.extend(ok_at.map(|at_us| at(at_us, Obs::Finished { client: 0, op: n, attempts, ok: true, arrived_us: t })));
    v
}

#[test]
fn goodput_back_soon_after_the_outage_passes_and_never_back_fails_with_numbers() {
    let mut good = Vec::new();
    for (n, t) in [0u64, 100, 150, 250, 450, 550, 650, 750, 850, 950].iter().enumerate() {
        good.extend(op(*t, n as u32, 2, Some(t + 10)));
    }
    good.sort_by_key(|e| e.at_us);
    assert!(check(&run(&good)).is_pass(), "{:?}", check(&run(&good)));
    let bad: Vec<_> = good.iter().filter(|e| e.at_us < 400 || !matches!(e.obs, Obs::Finished { .. })).cloned().collect();
    let v = check(&run(&bad));
    let v = v.violation().expect("no recovery");
    assert!(v.broke(RECOVERY) && v.message.contains("never was"), "{}", v.message);
}

#[test]
fn amplification_over_the_bound_names_the_bucket() {
    let mut h = op(250, 0, 5, Some(500));
    h.extend(op(500, 1, 1, Some(510)));
    let v = recovery(
        &run(&h),
        &{
            let mut b = Vec::new();
            buckets(&run(&h), &mut b);
            b
        },
        &{
            let mut b = Vec::new();
            buckets(&run(&h), &mut b);
            summarize(&run(&h), &b)
        },
    );
    let v = v.expect("amplification 5 > 3");
    assert!(v.message.contains("retry amplification 5.00") && v.message.contains("bucket 2"), "{}", v.message);
}

#[test]
fn an_operation_left_waiting_or_settled_late_breaks_settles_and_a_forgotten_one_does_not() {
    let mut h = op(100, 0, 1, Some(150));
    h.extend(op(120, 1, 2, None));
    let v = settles(&run(&h)).expect("operation 1 never settled");
    assert!(
        v.message.contains("client 0 operation 1 arrived at 0.120 ms, its client sent 2 attempts") && v.message.contains("went quiet"),
        "{}",
        v.message
    );
    let forgotten = [(0, 1)];
    assert!(settles(&OverloadRun { forgotten: &forgotten, ..run(&h) }).is_none(), "a fleet crash ended it");
    assert!(settles(&OverloadRun { liveness: false, ..run(&h) }).is_none());
    // Settled 900 µs after arriving at 120, with the outage ending at 400 and a bound of 300.
    let late = [op(100, 0, 1, Some(150)), op(120, 1, 1, Some(900))].concat();
    let v = settles(&run(&late)).expect("settled past 400 + 300");
    assert!(v.message.contains("settled only at 0.900 ms, past its bound at 0.700 ms"), "{}", v.message);
    let v = settles(&OverloadRun { end: RunEnd::TimeLimit, ..run(&op(100, 0, 1, Some(150))) }).expect("time limit");
    assert!(v.message.contains("events kept coming"), "{}", v.message);
}

#[test]
fn open_operations_are_kept_per_client_and_the_first_is_the_earliest_arrival() {
    let mut open = OpenOps(Vec::new());
    open.insert((3, 1), 7);
    open.insert((0, 4), 9);
    open.insert((3, 2), 5);
    assert_eq!((open.len(), open.first()), (3, Some((3, 2))));
    assert!(open.remove((3, 2)) && !open.remove((3, 2)) && !open.remove((9, 0)), "removed once, unknown client");
    assert_eq!(open.first(), Some((3, 1)));
    open.insert((3, 1), 11); // Offered again: its latest arrival counts, as a map's insert.
    assert_eq!((open.len(), open.first()), (2, Some((0, 4))));
}

#[test]
fn a_long_wait_behind_blocked_workers_is_starvation_and_one_without_is_not() {
    let served = |waited_us, blocked| Obs::Served { client: 1, op: 7, waited_us, queue: 3, blocked };
    let h = [at(10, Obs::Blocked { client: 0, op: 1, waited_us: 0, blocked: 1 }), at(100, served(90, 1))];
    // One of the two workers blocked is half the pool.
    let v = availability(&run(&h)).expect("starved");
    assert!(v.message.contains("client 1 operation 7, waited 0.090 ms") && v.message.contains("client 0 operation 1"), "{}", v.message);
    assert!(availability(&run(&[at(100, served(90, 0))])).is_none(), "a long wait alone is overload, not starvation");
}
