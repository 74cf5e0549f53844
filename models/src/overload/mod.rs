//! The overload path: a fleet of clients against a service with bounded capacity and an outage
//! window. The seed's questions 2 and 3: why answer 409 rather than block on a key in flight,
//! and which client behaviour across a fleet keeps a recovering service alive after a 503 with
//! `Retry-After`.
//!
//! Nodes: 0 the service (`server::Pool`), 1 the fleet (`fleet::Fleet`, every client in one
//! node). Judged by `recovery` and `availability` (`invariants::overload`) over buckets of
//! simulated time counted from the history.

pub mod design;
pub mod fleet;
pub mod presets;
pub mod server;

use crate::payment::Shared;
use crate::scenario::{Role, Scenario};
use crate::world::Node;
use design::OverloadDesign;
use fleet::{Fleet, FleetSetup};
use invariants::overload::{self, Bucket, OverloadRun, Summary};
use invariants::Obs;
use server::Pool;
use sim::{Entry, HistoryView, Model, NodeSpec, RunView, SimConfig, Verdict};

pub const CODE_OK: u16 = 200;
pub const CODE_CONFLICT: u16 = 409;
pub const CODE_UNAVAILABLE: u16 = 503;
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

/// The service is node 0, the fleet node 1.
const SERVER: usize = 0;

/// An overload scenario ready to run.
pub struct OverloadModel {
    pub design: OverloadDesign,
    config: SimConfig,
    fleet: Shared<FleetSetup>,
    server: Shared<design::ServerDesign>,
}

impl OverloadModel {
    /// The checkers read the history (the buckets are counted from it).
    pub const HISTORY_VIEW: HistoryView = HistoryView::Ordered;

    pub fn new(s: &Scenario, d: &OverloadDesign) -> Self {
        let spec = |name: &str, role: Role| {
            let t = &s.targets;
            NodeSpec::new(name).crashable(t.crash.contains(&role)).pausable(t.pause.contains(&role)).lossy(t.lossy.contains(&role))
        };
        let nodes = vec![spec("server", Role::Server), spec("fleet", Role::Client)];
        let config = SimConfig { nodes, faults: s.faults.clone(), swarm: s.swarm, time_limit_us: s.time_limit_us };
        OverloadModel { config, fleet: Shared(FleetSetup { design: d.fleet, server: SERVER }), server: Shared(d.server), design: d.clone() }
    }

    /// What the checkers judge, over `history` of a run that ended at `end_us`.
    pub fn judged<'a>(&self, history: &'a [Entry<Obs>], end_us: u64) -> OverloadRun<'a> {
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
        }
    }

    /// A finished run's buckets and headline numbers (for `compare` and plots).
    pub fn measure(&self, history: &[Entry<Obs>], end_us: u64, buckets: &mut Vec<Bucket>) -> Summary {
        let run = self.judged(history, end_us);
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
    }

    /// Reuses the previous run's actors (and their buffers) when they have the expected roles.
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        match &mut nodes[..] {
            [Node::Pool(p), Node::Fleet(f)] => {
                p.reset(self.server);
                f.reset(self.fleet);
            }
            _ => {
                nodes.clear();
                self.build(nodes);
            }
        }
    }

    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let verdict = overload::check(&self.judged(run.history, run.stats.sim_time_us));
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
