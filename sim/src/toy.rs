//! Toy models that exercise the engine: the engine's own tests and benchmark use them, and they
//! are the smallest complete examples of an `Actor` and a `Model`.

use crate::actor::{Actor, Ctx, NodeId};
use crate::faults::{FaultProfile, NodeSpec, SimConfig};
use crate::history::Verdict;
use crate::model::{Model, RunView};

/// Node 0 sends `pings` numbered pings to node 1 at time 0; node 1 answers each with a pong.
/// Node 1 also ticks every millisecond for `ticks` ticks (to show pauses hold timers back), and
/// node 0 keeps a write-ahead log of the pongs it has seen, fsyncing every `fsync_every` writes.
#[derive(Clone, Debug, Hash)]
pub enum PingPong {
    Pinger { pings: u32, fsync_every: u32, written: u32 },
    Ponger { ticks: u32 },
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Msg {
    Ping(u32),
    Pong(u32),
}

#[derive(Clone, Debug, Hash, PartialEq, Eq)]
pub enum Obs {
    /// Node 1 received ping `n`.
    GotPing(u32),
    /// Node 0 received pong `n`.
    GotPong(u32),
    /// Node 1's timer fired.
    Tick(u32),
    /// Node 0 made its first `n` records durable.
    Synced(u32),
    /// Node 0 restarted with `n` durable records.
    Recovered(u32),
}

impl Actor for PingPong {
    type Msg = Msg;
    type Timer = u32;
    type Obs = Obs;
    type Record = u32;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            PingPong::Pinger { pings, written, .. } => {
                if ctx.now_us() > 0 {
                    ctx.observe(Obs::Recovered(*written));
                    return;
                }
                for n in 0..*pings {
                    ctx.send(1, Msg::Ping(n));
                }
            }
            PingPong::Ponger { ticks } => {
                if *ticks > 0 {
                    ctx.set_timer(1_000, 1);
                }
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (PingPong::Ponger { .. }, Msg::Ping(n)) => {
                ctx.observe(Obs::GotPing(n));
                ctx.send(from, Msg::Pong(n));
            }
            (PingPong::Pinger { fsync_every, written, .. }, Msg::Pong(n)) => {
                ctx.observe(Obs::GotPong(n));
                ctx.write(n);
                *written += 1;
                if *fsync_every > 0 && *written % *fsync_every == 0 {
                    ctx.fsync();
                    ctx.observe(Obs::Synced(*written));
                }
            }
            (node, msg) => panic!("{node:?} got unexpected {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, tick: u32) {
        if let PingPong::Ponger { ticks } = self {
            ctx.observe(Obs::Tick(tick));
            if tick < *ticks {
                ctx.set_timer(1_000, tick + 1);
            }
        }
    }

    fn on_crash(&mut self, durable: &[u32]) {
        if let PingPong::Pinger { written, .. } = self {
            *written = durable.len() as u32;
        }
    }
}

/// The ping-pong scenario: both nodes lossy, node 0 crashable, node 1 pausable.
pub struct PingPongModel {
    pub config: SimConfig,
    pub pings: u32,
    pub ticks: u32,
    pub fsync_every: u32,
}

impl PingPongModel {
    pub fn new(pings: u32, faults: FaultProfile) -> Self {
        let config = SimConfig {
            nodes: vec![NodeSpec::new("pinger").lossy(true).crashable(true), NodeSpec::new("ponger").lossy(true).pausable(true)],
            faults,
            swarm: false,
            time_limit_us: 10_000_000,
        };
        PingPongModel { config, pings, ticks: 0, fsync_every: 0 }
    }
}

impl Model for PingPongModel {
    type Actor = PingPong;
    fn config(&self) -> &SimConfig {
        &self.config
    }
    fn build(&self, nodes: &mut Vec<PingPong>) {
        nodes.push(PingPong::Pinger { pings: self.pings, fsync_every: self.fsync_every, written: 0 });
        nodes.push(PingPong::Ponger { ticks: self.ticks });
    }
    fn check(&self, _run: &RunView<'_, PingPong>) -> Verdict {
        Verdict::Pass
    }
}
