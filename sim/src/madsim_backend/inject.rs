//! Planned faults carried out with madsim's primitives: what a fault does to the run is the
//! world's (`World::crash`, `pause`, `cut_start`, ...); this moves the node in madsim to match.

use super::{sleep_to, Busy, MadsimActor, SharedRef};
use crate::world::PlannedFault;
use madsim::runtime::Handle;
use madsim::time::{self, Duration, Instant};

/// Carry out one planned fault on the wire node.
pub(super) async fn inject<A: MadsimActor>(shared: SharedRef<A>, fault: PlannedFault, t0: Instant, handle: Handle, _busy: Busy) {
    match fault {
        PlannedFault::Crash { node, at_us, kind } => {
            sleep_to(t0, at_us).await;
            let (ep, mid, restart_after_us) = {
                let mut guard = shared.lock();
                let r = &mut *guard;
                // The process dies, its machine does not: the OS closes its connections. Not
                // between a restart and its `on_start` (no endpoint, no connection yet).
                let started = r.rt[node].ep.is_some() && r.rt[node].start.is_none();
                if r.w.closes_connections(node, kind) && started {
                    r.handle(&shared, node, |a, ctx| crate::actor::process_exit(a, ctx));
                    if r.panic.is_some() {
                        return; // The run stopped there: no more actor code runs.
                    }
                }
                let now_us = r.now_us();
                // `on_crash` is the actor's code: a panic there stops the run like a handler's.
                let crashed = crate::panics::catch(|| r.w.crash(now_us, node, kind, &mut r.choices));
                let after = match crashed {
                    Ok(Some(after)) => after,
                    Ok(None) => return,
                    Err(message) => return r.stop(&shared, usize::MAX, now_us, message),
                };
                r.w.stats.events += 1;
                (r.rt[node].ep.take(), r.rt[node].mid.expect("node created"), after)
            };
            // Every task of the node goes (receive loops, timers); its socket closes, so what
            // is in flight to it is lost: a connection reset.
            handle.kill(mid);
            drop(ep);
            time::sleep(Duration::from_micros(restart_after_us)).await;
            {
                let mut r = shared.lock();
                let now_us = r.now_us();
                r.w.restart(now_us, node);
                r.rt[node].start = Some(Busy::new(&shared.pending));
            }
            // The node's init task binds a fresh endpoint, then runs `on_start`.
            handle.restart(mid);
        }
        PlannedFault::Pause { node, at_us, until_us } => {
            sleep_to(t0, at_us).await;
            let mid = {
                let mut r = shared.lock();
                let now_us = r.now_us();
                if !r.w.pause(now_us, node, until_us) {
                    return;
                }
                r.w.stats.events += 1;
                r.rt[node].mid.expect("node created")
            };
            handle.pause(mid);
            sleep_to(t0, until_us).await;
            let resume = {
                let mut r = shared.lock();
                r.w.stats.events += 1;
                let now_us = r.now_us();
                r.w.resume(now_us, node);
                // Not after a crash since (the restarted node runs unpaused) or a longer pause.
                let life = r.w.life[node];
                !life.down && life.paused_until_us <= now_us
            };
            if resume {
                handle.resume(mid);
            }
        }
        PlannedFault::Cut { node, dir, at_us, len_us } => {
            sleep_to(t0, at_us).await;
            {
                let mut r = shared.lock();
                r.w.stats.events += 1;
                let now_us = r.now_us();
                r.w.cut_start(now_us, node, dir);
            }
            sleep_to(t0, at_us + len_us).await;
            let mut r = shared.lock();
            r.w.stats.events += 1;
            let now_us = r.now_us();
            r.w.cut_end(now_us, node, dir);
        }
    }
}
