//! madsim keeps tasks alive that are still pending when its runtime is dropped (a pending task's
//! waker holds the scheduler queue, which holds the task). The madsim backend kills every node
//! before its runtime drops; this test holds it to that: 100,000 runs must not grow the heap.
//!
//! Live heap bytes are counted by this test binary's global allocator (exact, unlike RSS, which
//! the allocator may keep); VmRSS and VmHWM are printed alongside.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE_BYTES.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find_map(|l| l.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok()).unwrap_or(0)
}

#[test]
fn a_hundred_thousand_madsim_runs_do_not_grow_the_heap() {
    let runs: u64 = std::env::var("IDEMSIM_MEMORY_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let model = models::presets::get("bench/five-charges").expect("preset").model();
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    // Warm up: one-time allocations (tracing callsites, thread-locals, the allocator's own).
    let warm = sim::explore_madsim(&model, 0..2_000, threads, None);
    assert!(warm.violations * 100 < warm.runs, "the benchmark fails rarely (a client that gives up on a durable charge)");
    let (live0, rss0) = (LIVE_BYTES.load(Ordering::Relaxed), status_kib("VmRSS:"));
    let t = std::time::Instant::now();
    let report = sim::explore_madsim(&model, 2_000..2_000 + runs, threads, None);
    let secs = t.elapsed().as_secs_f64();
    let (live1, rss1, hwm) = (LIVE_BYTES.load(Ordering::Relaxed), status_kib("VmRSS:"), status_kib("VmHWM:"));
    println!(
        "{runs} madsim runs of bench/five-charges on {threads} threads in {secs:.1} s: live heap {live0} -> {live1} bytes \
         ({:+} bytes), VmRSS {rss0} -> {rss1} kB, VmHWM {hwm} kB",
        live1 - live0
    );
    assert_eq!(report.runs, runs);
    assert!(report.violations * 100 < report.runs);
    // A leaked run costs kilobytes (its tasks, nodes, sockets and actors): 100,000 of them would
    // be hundreds of megabytes. Allow a little for allocator-internal and lazily grown buffers.
    assert!(live1 - live0 < 64 * 1024, "the heap grew by {} bytes over {runs} runs", live1 - live0);
}
