//! The size of a scenario's workload, and the smaller workloads a shrinker may try: one surface
//! for every path, so the command line's shrinker holds no per-path code.

use crate::scenario::{Path, Scenario};
use serde::Serialize;

/// How much work a scenario does.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkSize {
    /// Payment: clients. Outbox: aggregates.
    pub clients: u32,
    /// Payment: operations, all clients together. Outbox: orders.
    pub operations: u32,
    /// Payment: extra concurrent copies of each first request. Outbox: 0.
    pub duplicates: u32,
}

/// `cur`'s smaller values down to `min`: the minimum, half, one less.
fn steps(cur: u32, min: u32) -> Vec<u32> {
    let mut v = vec![min, min.max(cur / 2), cur.saturating_sub(1).max(min)];
    v.retain(|&x| x < cur);
    v.dedup();
    v
}

impl Scenario {
    pub fn work_size(&self) -> WorkSize {
        match self.path() {
            Path::Payment | Path::Chain => {
                let w = self.workload();
                WorkSize { clients: w.clients, operations: w.clients * w.operations_per_client, duplicates: w.duplicates }
            }
            Path::Outbox => {
                let o = self.outbox().orders;
                WorkSize { clients: o.aggregates, operations: o.count, duplicates: 0 }
            }
            Path::Overload => {
                let f = self.overload().fleet;
                let ops = match f.arrivals {
                    crate::overload::design::Arrivals::Burst => 1,
                    _ => (f.duration_us / f.interval_us).min(u32::MAX as u64 / 1000) as u32,
                };
                WorkSize { clients: f.clients, operations: f.clients * ops, duplicates: 0 }
            }
        }
    }

    /// This scenario with less work, largest cuts first within each dimension: fewer clients,
    /// operations or duplicates (payment); fewer orders or aggregates (outbox).
    pub fn smaller(&self) -> Vec<Scenario> {
        let mut out = Vec::new();
        let mut with = |f: &dyn Fn(&mut Scenario)| {
            let mut s = self.clone();
            f(&mut s);
            out.push(s);
        };
        match self.path() {
            Path::Payment | Path::Chain => {
                let w = self.workload().clone();
                for c in steps(w.clients, 1) {
                    with(&|s| s.workload_mut().clients = c);
                }
                for o in steps(w.operations_per_client, 1) {
                    with(&|s| s.workload_mut().operations_per_client = o);
                }
                for d in steps(w.duplicates, 0) {
                    with(&|s| s.workload_mut().duplicates = d);
                }
            }
            Path::Outbox => {
                let o = self.outbox().orders;
                for n in steps(o.count, 1) {
                    with(&|s| {
                        let orders = &mut s.outbox_mut().orders;
                        orders.count = n;
                        orders.aggregates = orders.aggregates.min(n);
                    });
                }
                for a in steps(o.aggregates, 1) {
                    with(&|s| s.outbox_mut().orders.aggregates = a);
                }
            }
            // Fewer clients; the arrival window is what the outage and the bounds need.
            Path::Overload => {
                for c in steps(self.overload().fleet.clients, 1) {
                    with(&|s| s.overload_mut().fleet.clients = c);
                }
            }
        }
        out
    }

    /// This scenario with one unit less of each kind of work (one client, operation, duplicate,
    /// order or aggregate fewer), for a minimality check.
    pub fn one_less(&self) -> Vec<Scenario> {
        let mut out = Vec::new();
        let mut with = |ok: bool, f: &dyn Fn(&mut Scenario)| {
            if ok {
                let mut s = self.clone();
                f(&mut s);
                out.push(s);
            }
        };
        match self.path() {
            Path::Payment | Path::Chain => {
                let w = self.workload().clone();
                with(w.clients > 1, &|s| s.workload_mut().clients -= 1);
                with(w.operations_per_client > 1, &|s| s.workload_mut().operations_per_client -= 1);
                with(w.duplicates > 0, &|s| s.workload_mut().duplicates -= 1);
            }
            Path::Outbox => {
                let o = self.outbox().orders;
                with(o.count > 1, &|s| {
                    let orders = &mut s.outbox_mut().orders;
                    orders.count -= 1;
                    orders.aggregates = orders.aggregates.min(orders.count);
                });
                with(o.aggregates > 1, &|s| s.outbox_mut().orders.aggregates -= 1);
            }
            Path::Overload => {
                let c = self.overload().fleet.clients;
                with(c > 1, &|s| s.overload_mut().fleet.clients -= 1);
            }
        }
        out
    }

    /// What `WorkSize`'s three numbers count on this path, for tables.
    pub fn work_labels(&self) -> [&'static str; 3] {
        match self.path() {
            Path::Payment | Path::Chain => ["clients", "operations", "duplicates"],
            Path::Outbox => ["aggregates", "orders", "duplicates"],
            Path::Overload => ["clients", "operations", "duplicates"],
        }
    }

    /// What `one_less` can remove, in words ("removing any ... makes the violation disappear").
    pub fn work_units(&self) -> &'static str {
        match self.path() {
            Path::Payment | Path::Chain => "client, operation or duplicate",
            Path::Outbox => "aggregate or order",
            Path::Overload => "client",
        }
    }

    /// Attempts per operation of the client, where the path has one (payment).
    pub fn max_attempts(&self) -> Option<u32> {
        match self.path() {
            Path::Payment | Path::Chain => Some(self.payment().client.max_attempts),
            Path::Overload => Some(self.overload().fleet.max_attempts),
            Path::Outbox => None,
        }
    }

    /// The work of this scenario in words, for headers ("1 operation, 2 concurrent same-key
    /// requests, at most 2 attempts"; "1 order of 1 aggregate, 1 relay").
    pub fn work_summary(&self) -> String {
        let n = |k: u32, one: &str, many: &str| format!("{k} {}", if k == 1 { one } else { many });
        match self.path() {
            Path::Payment | Path::Chain => {
                let w = self.workload();
                let relays = match &self.chain {
                    Some(c) if c.write == crate::outbox::design::OrderWrite::Outbox => {
                        format!(", then {}", n(c.relay.instances, "relay", "relays"))
                    }
                    Some(_) => ", then a dual write".into(),
                    None => String::new(),
                };
                format!(
                    "{}, {}, at most {}",
                    n(w.clients * w.operations_per_client, "operation", "operations"),
                    n(w.duplicates + 1, "request", "concurrent same-key requests"),
                    n(self.payment().client.max_attempts, "attempt", "attempts")
                ) + &relays
            }
            Path::Overload => {
                let o = self.overload();
                let f = o.fleet;
                if f.arrivals == crate::overload::design::Arrivals::Burst {
                    return format!(
                        "{} with one operation each (a burst), at most {}, against {} ({:.0} requests/s){}",
                        n(f.clients, "client", "clients"),
                        n(f.max_attempts, "attempt", "attempts"),
                        n(o.server.workers, "worker", "workers"),
                        o.capacity_per_sec(),
                        if o.server.writes == crate::overload::design::Writes::OneRow { ", all writing one row" } else { "" }
                    );
                }
                format!(
                    "{} ({:?} loop, about {:.0} operations/s for {}), at most {}, against {} ({:.0} requests/s)",
                    n(f.clients, "client", "clients"),
                    f.arrivals,
                    o.offered_per_sec(),
                    invariants::ms(f.duration_us),
                    n(f.max_attempts, "attempt", "attempts"),
                    n(o.server.workers, "worker", "workers"),
                    o.capacity_per_sec()
                )
            }
            Path::Outbox => {
                let o = self.outbox();
                let relays = if o.service.write == crate::outbox::design::OrderWrite::Outbox { o.relay.instances } else { 0 };
                format!(
                    "{} of {}, {}",
                    n(o.orders.count, "order", "orders"),
                    n(o.orders.aggregates, "aggregate", "aggregates"),
                    n(relays, "relay", "relays")
                )
            }
        }
    }
}
