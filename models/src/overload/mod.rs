//! The overload path: a fleet of clients against a service with bounded capacity and an outage
//! window. The seed's questions 2 and 3: why answer 409 rather than block on a key in flight,
//! and which client behaviour across a fleet keeps a recovering service alive after a 503 with
//! `Retry-After`.
//!
//! Nodes: 0 the service (`server::Pool`), 1 the fleet (`fleet::Fleet`, every client in one
//! node), then the tiers in between, outermost first (`tier::Tier`). Judged by `recovery`,
//! `availability` and `settles` (`invariants::overload`) over buckets of simulated time counted
//! from the history.

pub mod design;
pub mod fleet;
pub mod presets;
pub mod server;
pub mod tier;

use crate::payment::Shared;
use crate::scenario::{Role, Scenario};
use crate::world::Node;
use design::OverloadDesign;
use fleet::{Fleet, FleetSetup};
use invariants::overload::{self, Bucket, OverloadRun, Summary};
use invariants::Obs;
use server::Pool;
use sim::{Entry, HistoryView, Model, NodeSpec, RunEnd, RunView, SimConfig, Verdict};
use tier::{Tier, TierSetup};

pub const CODE_OK: u16 = 200;
pub const CODE_CONFLICT: u16 = 409;
pub const CODE_UNAVAILABLE: u16 = 503;
/// A tier gave up on the tier in (it timed out on its last attempt).
pub const CODE_GATEWAY_TIMEOUT: u16 = 504;
/// Not an answer: the request was dropped.
pub const CODE_DROPPED: u16 = 0;

/// One request: attempt `attempt` of client `client`'s operation `op`, whose idempotency key is
/// `(client, op)`. `slot` is where the fleet keeps the operation; `slow`: the server works on
/// it for its slow service time.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct Call {
    pub client: u32,
    pub op: u32,
    pub attempt: u32,
    pub slot: u32,
    pub slow: bool,
}

impl Call {
    pub fn key(&self) -> (u32, u32) {
        (self.client, self.op)
    }
}

/// Put `v` in a free slot of `slots` (or a new one) and return its index: the fleet's and the
/// tiers' requests in progress live in slabs reused run after run.
fn take_slot<T>(slots: &mut Vec<T>, free: &mut Vec<u32>, v: T) -> u32 {
    match free.pop() {
        Some(s) => {
            slots[s as usize] = v;
            s
        }
        None => {
            slots.push(v);
            slots.len() as u32 - 1
        }
    }
}

/// The service is node 0, the fleet node 1, the tiers 2 on.
const SERVER: usize = 0;
const FIRST_TIER: usize = 2;

/// An overload scenario ready to run.
pub struct OverloadModel {
    pub design: OverloadDesign,
    config: SimConfig,
    fleet: Shared<FleetSetup>,
    server: Shared<design::ServerDesign>,
    tiers: Vec<Shared<TierSetup>>,
    settle_bound_us: u64,
    liveness: bool,
}

impl OverloadModel {
    /// The checkers read the history (the buckets are counted from it).
    pub const HISTORY_VIEW: HistoryView = HistoryView::Ordered;

    pub fn new(s: &Scenario, d: &OverloadDesign) -> Self {
        let spec = |name: &str, role: Role| {
            let t = &s.targets;
            NodeSpec::new(name).crashable(t.crash.contains(&role)).pausable(t.pause.contains(&role)).lossy(t.lossy.contains(&role))
        };
        let mut nodes = vec![spec("server", Role::Server), spec("fleet", Role::Client)];
        // Tiers are app servers too (a gateway, a mid-tier service): the server role's faults.
        nodes.extend((1..=d.tiers.len()).map(|i| spec(&format!("tier{i}"), Role::Server)));
        let n = d.tiers.len();
        let tiers = (0..n)
            .map(|i| Shared(TierSetup { design: d.tiers[i], index: i as u8, next: if i + 1 < n { FIRST_TIER + i + 1 } else { SERVER } }))
            .collect();
        let first_hop = if n > 0 { FIRST_TIER } else { SERVER };
        let config = SimConfig { nodes, faults: s.faults.clone(), swarm: s.swarm, time_limit_us: s.time_limit_us };
        OverloadModel {
            config,
            fleet: Shared(FleetSetup { design: d.fleet, server: first_hop }),
            server: Shared(d.server),
            tiers,
            settle_bound_us: s.settle_bound_us,
            liveness: s.liveness,
            design: d.clone(),
        }
    }

    /// What the checkers judge, over `history` of a run that ended at `end_us` (`end`: how it
    /// ended, `heal_at_us`: when faults stopped, `forgotten`: operations a fleet crash dropped).
    pub fn judged<'a>(
        &self,
        history: &'a [Entry<Obs>],
        end_us: u64,
        end: RunEnd,
        heal_at_us: u64,
        forgotten: &'a [(u32, u32)],
    ) -> OverloadRun<'a> {
        let d = &self.design;
        let b = d.bounds;
        let per_bucket = b.bucket_us as f64 / 1e6;
        OverloadRun {
            history,
            end_us,
            bucket_us: b.bucket_us,
            outage: d.server.outage.map(|o| (o.start_us, o.start_us + o.duration_us)),
            capacity_per_bucket: d.capacity_per_sec() * per_bucket,
            arrivals_end_us: d.fleet.duration_us,
            recovery_us: b.recovery_us,
            goodput_fraction: b.goodput_fraction,
            amplification_max: b.amplification_max,
            starve_us: b.starve_us,
            workers: d.server.workers,
            tiers: d.tiers.len() as u8,
            liveness: self.liveness,
            settle_bound_us: self.settle_bound_us,
            end,
            heal_at_us,
            forgotten,
        }
    }

    /// A finished run's buckets and headline numbers (for `compare` and plots).
    pub fn measure(&self, history: &[Entry<Obs>], end_us: u64, buckets: &mut Vec<Bucket>) -> Summary {
        let run = self.judged(history, end_us, RunEnd::Quiescent, 0, &[]);
        overload::buckets(&run, buckets);
        overload::summarize(&run, buckets)
    }
}

impl Model for OverloadModel {
    type Actor = Node;

    fn config(&self) -> &SimConfig {
        &self.config
    }

    fn build(&self, nodes: &mut Vec<Node>) {
        nodes.push(Node::Pool(Pool::new(self.server)));
        nodes.push(Node::Fleet(Fleet::new(self.fleet)));
        nodes.extend(self.tiers.iter().map(|t| Node::Tier(Tier::new(*t))));
    }

    /// Reuses the previous run's actors (and their buffers) when they have the expected roles.
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        let same = nodes.len() == FIRST_TIER + self.tiers.len() && nodes[FIRST_TIER..].iter().all(|n| matches!(n, Node::Tier(_)));
        match &mut nodes[..] {
            [Node::Pool(p), Node::Fleet(f), tiers @ ..] if same => {
                p.reset(self.server);
                f.reset(self.fleet);
                for (t, setup) in tiers.iter_mut().zip(&self.tiers) {
                    if let Node::Tier(t) = t {
                        t.reset(*setup);
                    }
                }
            }
            _ => {
                nodes.clear();
                self.build(nodes);
            }
        }
    }

    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let forgotten = match run.nodes.get(1) {
            Some(Node::Fleet(f)) => f.forgotten(),
            _ => &[],
        };
        let verdict = overload::check(&self.judged(run.history, run.stats.sim_time_us, run.end, run.heal_at_us(), forgotten));
        crate::payment::with_faults(verdict, run, &self.config.nodes)
    }
}

#[cfg(test)]
mod tests {
    use sim::Sim;

    #[test]
    fn a_rebuilt_fleet_runs_as_a_fresh_one() {
        let s = crate::presets::get("overload/jitter-budget").expect("preset");
        let m = s.model();
        let mut warm = Sim::new();
        let a = warm.run_seed(&m, 1);
        let b = warm.run_seed(&m, 1);
        let c = Sim::new().run_seed(&m, 1);
        assert_eq!((a.history_hash, a.stats.events), (b.history_hash, b.stats.events));
        assert_eq!(a.history_hash, c.history_hash);
    }
}
