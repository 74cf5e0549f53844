//! Your own actors in the library's world: the payment path with its server instances played by
//! an actor you write, against the library's client, key store, payment provider and payment
//! invariants, under the scenario's faults.
//!
//! Your server is a [`sim::Actor`] over the payment world's vocabulary ([`Msg`], [`Timer`],
//! [`Obs`], [`Record`]). It speaks the protocol the library's server speaks:
//!
//! - a client sends `Msg::Request(req)`; answer `Msg::Response { req, status }` to the sender
//!   with `ctx.reply(from, req.incarnation, ..)`, on the connection the request came in on (if
//!   the client crashed since, the answer is lost, as it is in production);
//! - the key store is node [`STORE`]: a Redis-like store takes `Msg::Redis { req, cmd }` and
//!   answers `Msg::RedisReply { req, reply }` (a Postgres-like one `Msg::Sql` / `Msg::SqlReply`);
//! - the payment provider is node [`PROVIDER`]: `Msg::Charge(ChargeCall)`, answered by
//!   `Msg::ProviderReply { req, reply }`;
//! - after a store restart every server gets `Msg::StoreRestarted` (its calls in flight are lost);
//! - call ids (`req`) are unique per node: `me << 48 | counter`, as [`owner`](super::payment::owner) reads them;
//! - report what the checkers read: `Obs::KeyClaimed` when you claim a key, `Obs::ResultStored`
//!   once the store acknowledged a charge stored as the key's result (`settles` checks that every
//!   provider charge is some key's result), `Obs::KeyReplayed` / `Obs::KeyRejected` as you answer.
//!
//! Charges are judged from the provider's durable records and the clients' observations, keys
//! from the store's durable log: the checkers read nothing of your actor's state.
//!
//! ```
//! use models::custom::{OwnServer, ServerEnv};
//! use models::payment::{Msg, Record, Timer};
//! use invariants::{Obs, Status};
//! use sim::{Actor, Ctx, NodeId};
//!
//! /// A server that answers 500 to everything: no charge, so no double charge; every
//! /// operation ends with the client giving up, which `exactly_once_charge` accepts.
//! #[derive(Clone, Debug, Hash)]
//! struct Refuse;
//! impl Actor for Refuse {
//!     type Msg = Msg;
//!     type Timer = Timer;
//!     type Obs = Obs;
//!     type Record = Record;
//!     fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}
//!     fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
//!         if let Msg::Request(req) = msg {
//!             ctx.reply(from, req.incarnation, Msg::Response { req, status: Status::ServerError });
//!         }
//!     }
//!     fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: Timer) {}
//!     fn on_crash(&mut self, _: &[Record]) {}
//! }
//!
//! let scenario = models::presets::get("payment/setnx-always").unwrap();
//! let world = OwnServer::new(&scenario, |_: ServerEnv| Refuse).unwrap();
//! let report = world.explore(0..200, 1);
//! assert_eq!(report.runs, 200);
//! assert!(report.by_invariant.get("exactly_once_charge").is_none());
//! ```

pub use crate::payment::{Msg, Node, Record, Timer, PROVIDER, STORE};
use crate::payment::{PaymentModel, FIRST_SERVER};
use crate::run::RunRecord;
use crate::scenario::{Path, Scenario};
pub use invariants::Obs;
use sim::{Actor, Ctx, ExploreReport, Model, NodeId, RunView, SimConfig, Verdict};
use std::fmt::Debug;

/// What your server knows when it is built: who it is and where the others are.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct ServerEnv {
    /// This node's id (use it in call ids: `me << 48 | counter`).
    pub me: NodeId,
    /// Which server instance this is, from 0.
    pub instance: u32,
    /// The key store's node.
    pub store: NodeId,
    /// The payment provider's node.
    pub provider: NodeId,
}

/// The library's actors and yours in one run: what [`OwnServer`] runs.
// One per node, built once per run and reused: boxing the library's node would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, Hash)]
pub enum Mixed<H> {
    Lib(Node),
    Own(H),
}

/// Your server's bounds: the payment world's vocabulary, and what every actor must be.
pub trait ServerActor: Actor<Msg = Msg, Timer = Timer, Obs = Obs, Record = Record> + Clone + Debug + Send + Sync {}
impl<H: Actor<Msg = Msg, Timer = Timer, Obs = Obs, Record = Record> + Clone + Debug + Send + Sync> ServerActor for H {}

impl<H: ServerActor> Actor for Mixed<H> {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;
    type Record = Record;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            Mixed::Lib(n) => ctx.as_actor(|c| n.on_start(c)),
            Mixed::Own(h) => ctx.as_actor(|c| h.on_start(c)),
        }
    }
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match self {
            Mixed::Lib(n) => ctx.as_actor(|c| n.on_message(c, from, msg)),
            Mixed::Own(h) => ctx.as_actor(|c| h.on_message(c, from, msg)),
        }
    }
    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match self {
            Mixed::Lib(n) => ctx.as_actor(|c| n.on_timer(c, timer)),
            Mixed::Own(h) => ctx.as_actor(|c| h.on_timer(c, timer)),
        }
    }
    fn on_crash(&mut self, durable: &[Record]) {
        match self {
            Mixed::Lib(n) => n.on_crash(durable),
            Mixed::Own(h) => h.on_crash(durable),
        }
    }
    fn on_process_exit(&self, ctx: &mut Ctx<'_, Self>) {
        match self {
            Mixed::Lib(n) => ctx.as_actor(|c| n.on_process_exit(c)),
            Mixed::Own(h) => ctx.as_actor(|c| h.on_process_exit(c)),
        }
    }
}

/// A payment scenario whose server instances are yours: the scenario's clients, key store,
/// provider, faults and invariants; its server design knobs are not used (your actor is the
/// design). Build your actor for each instance with `make`.
pub struct OwnServer<H> {
    payment: PaymentModel,
    make: fn(ServerEnv) -> H,
}

impl<H: ServerActor> OwnServer<H> {
    /// `scenario` (a payment scenario: a preset or a TOML file's) with `make(env)` as every
    /// server instance. Err names what is wrong with the scenario.
    pub fn new(scenario: &Scenario, make: fn(ServerEnv) -> H) -> Result<Self, String> {
        scenario.validate()?;
        if scenario.path() != Path::Payment {
            return Err(format!("{}: your own server runs on the payment path (a [payment] table and a [workload])", scenario.name));
        }
        Ok(OwnServer { payment: PaymentModel::new(scenario), make })
    }

    fn servers(&self) -> std::ops::Range<NodeId> {
        FIRST_SERVER..self.payment.first_client()
    }

    /// Run seeds `seeds` on `threads` threads (as `idemsim explore` does); the report's `first`
    /// is the lowest failing seed.
    pub fn explore(&self, seeds: std::ops::Range<u64>, threads: usize) -> ExploreReport {
        sim::explore(self, seeds, threads, None)
    }

    /// Run every seed twice (a reused simulator, then a fresh one) and return the first whose
    /// runs differ, with the first draw or observation where they parted: your handler read
    /// something outside the run (a global, a `HashMap`'s order, the clock) or kept state
    /// across runs. See `sim::check_determinism`.
    pub fn check_determinism(&self, seeds: std::ops::Range<u64>, threads: usize) -> Option<sim::Nondeterminism> {
        sim::check_determinism(self, seeds, threads)
    }

    /// Replay one seed with its full timeline (what `idemsim replay` prints), e.g. the seed
    /// [`explore`](Self::explore) found.
    pub fn replay(&self, seed: u64) -> RunRecord {
        let mut sim = sim::Sim::new();
        sim.set_trace(true);
        sim.choices.set_recording(true);
        let outcome = sim.run_seed(self, seed);
        RunRecord {
            history: sim.history().iter().map(|e| (e.at_us, e.node, format!("{:?}", e.obs))).collect(),
            trace: sim.trace().to_vec(),
            tape: sim.choices.recorded().to_vec(),
            node_names: self.config().nodes.iter().map(|n| n.name.clone()).collect(),
            outcome,
        }
    }
}

impl<H: ServerActor> Model for OwnServer<H> {
    type Actor = Mixed<H>;

    fn config(&self) -> &SimConfig {
        self.payment.config()
    }

    fn build(&self, nodes: &mut Vec<Mixed<H>>) {
        let mut lib = Vec::new();
        self.payment.build(&mut lib);
        let servers = self.servers();
        for (i, node) in lib.into_iter().enumerate() {
            nodes.push(if servers.contains(&i) {
                let env = ServerEnv { me: i, instance: (i - servers.start) as u32, store: STORE, provider: PROVIDER };
                Mixed::Own((self.make)(env))
            } else {
                Mixed::Lib(node)
            });
        }
    }

    fn check(&self, run: &RunView<'_, Mixed<H>>) -> Verdict {
        // The payment checkers read the history, the durable logs and the run's statistics,
        // never an actor's state: the same run seen with no actors is judged the same.
        let view = RunView::<Node> {
            history: run.history,
            nodes: &[],
            logs: run.logs,
            end: run.end,
            stats: run.stats,
            faults: run.faults,
            fault_log: run.fault_log,
        };
        self.payment.check(&view)
    }
}
