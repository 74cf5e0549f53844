//! The payment path: clients charging through a server's idempotency layer, a key store
//! (Postgres-like or Redis-like) and a ledger or payment provider.
//!
//! Nodes: 0 the key store, 1 the payment provider, 2 the completer (idle unless the design has
//! one), then the server instances (`FIRST_SERVER..`), then the clients.

pub mod client;
pub mod completer;
mod eviction;
mod handoff;
pub mod postgres;
pub mod presets;
pub mod provider;
pub mod redis;
pub mod server;
pub mod split;
pub mod sql;

use crate::knobs::{ChargeTarget, Completer, KeyStore, PaymentDesign, ProviderDesign, ServerDesign};
use crate::scenario::{Role, Scenario};
pub use crate::world::{Msg, Node, Record, Timer};
use client::Client;
use invariants::payment::{self, PaymentRun};
use invariants::{ChargeRow, Key, KeyEnd, KeyRecord, OpId};
use postgres::{KeyRow, Postgres, RecoveryPoint};
use provider::Provider;
use redis::Redis;
use server::Server;
use sim::{Ctx, HistoryView, Model, NodeId, NodeSpec, RunView, SimConfig, Verdict};
use std::hash::{Hash, Hasher};
use std::ops::Deref;

pub const STORE: NodeId = 0;
pub const PROVIDER: NodeId = 1;
pub const COMPLETER: NodeId = 2;
pub const FIRST_SERVER: NodeId = 3;

/// Whether a payment world's node in `role` takes part under this server design: the completer
/// only if the design has one, the provider only if the money moves through it (a local
/// ledger is a table in the key store). An exhaustive check gives an idle node no fault.
pub fn plays(server: &ServerDesign, role: Role) -> bool {
    match role {
        Role::Completer => server.completer != Completer::None {},
        Role::Provider => server.charge != ChargeTarget::LocalLedger,
        _ => true,
    }
}

/// The node a call id (a transaction, Redis request or provider call) belongs to: call ids are
/// `node << 48 | boot << 32 | counter`, unique across nodes and incarnations.
pub fn owner(call: u64) -> NodeId {
    (call >> 48) as NodeId
}

/// Who a store tells that it restarted: the nodes holding connections to it (on the payment
/// path: the completer and every server instance).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct Peers {
    pub instances: u32,
    /// Nodes `notify.0..notify.1` hold connections to this store,
    pub notify: (NodeId, NodeId),
    /// and so do nodes `also.0..also.1` (the checkout chain's relays).
    pub also: (NodeId, NodeId),
}

impl Peers {
    /// The payment path's key store: its clients are the completer and the server instances.
    pub fn payment(instances: u32) -> Peers {
        Peers { instances, notify: (COMPLETER, FIRST_SERVER + instances as usize), also: (0, 0) }
    }
    /// A consumer's database: the consumer holds the only connection.
    pub fn consumer(layout: crate::outbox::Layout) -> Peers {
        Peers { instances: 0, notify: (layout.consumer, layout.consumer + 1), also: (0, 0) }
    }
    pub fn first_client(&self) -> NodeId {
        FIRST_SERVER + self.instances as usize
    }
    /// The store came back: every connection to it broke.
    pub fn tell_restart(&self, ctx: &mut Ctx<'_, Node>) {
        for node in (self.notify.0..self.notify.1).chain(self.also.0..self.also.1) {
            ctx.send(node, Msg::StoreRestarted);
        }
    }
}

/// Configuration an actor carries (a copy, so no thread shares a reference count on the hot
/// path). It is the same in every state of a run, so it does not count as state: hashing skips it.
#[derive(Copy, Clone, Debug)]
pub struct Shared<T>(pub T);

impl<T> Hash for Shared<T> {
    fn hash<H: Hasher>(&self, _: &mut H) {}
}
impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// A charge request as the client sends it.
#[derive(Copy, Clone, PartialEq, Eq)]
pub struct Request {
    pub op: OpId,
    pub attempt: u32,
    /// Which copy of a concurrently fired request (a double click) this is; 0 for the first.
    pub copy: u32,
    /// The Idempotency-Key header.
    pub key: Key,
    pub amount: u32,
    /// The client's incarnation (`Ctx::incarnation`) that sent it: the connection the answer
    /// goes back on (`Ctx::reply`), which died if the client crashed since.
    pub incarnation: u64,
}

/// The fields, with the incarnation only once the client has crashed (traces stay short).
impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Request");
        d.field("op", &self.op).field("attempt", &self.attempt).field("copy", &self.copy);
        d.field("key", &self.key).field("amount", &self.amount);
        if self.incarnation > 0 {
            d.field("incarnation", &self.incarnation);
        }
        d.finish()
    }
}

/// `copy` is a label (`sim::labels_erased`): an exhaustive search with symmetry on leaves it out
/// of state keys, so the copies of a request are interchangeable and the 3! orders in which three
/// copies can pass the server are one. Why that is sound: no handler reads it. The client writes
/// it into each copy it sends and into its `Sent` / `Received` observations and branches only on
/// (op, attempt, key) of a response; the servers, the completer and the stores carry the request
/// whole and echo it in the response, never comparing it or branching on any of it but the key
/// and the amount. What the checkers read of it is at `PaymentModel::observation_key`. Otherwise
/// the fields hash in declaration order, as a derived `Hash` would.
impl Hash for Request {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self.op, self.attempt).hash(h);
        if !sim::labels_erased() {
            self.copy.hash(h);
        }
        (self.key, self.amount, self.incarnation).hash(h);
    }
}

/// A payment scenario ready to run.
pub struct PaymentModel {
    pub design: PaymentDesign,
    config: SimConfig,
    clients: u32,
    client_setup: Shared<client::Setup>,
    server_design: Shared<crate::knobs::ServerDesign>,
    store: Shared<KeyStore>,
    provider: Shared<ProviderDesign>,
    peers: Shared<Peers>,
    /// A Redis store's split brain (with `replica_failover`).
    split: Shared<redis::SplitFault>,
    /// The completer sweeps until here: the heal plus the liveness bound.
    sweep_until_us: u64,
    heal_at_us: u64,
    settle_bound_us: u64,
    liveness: bool,
    /// The checkout chain's hand-off, when this payment world is the chain's front half.
    chain: Option<Shared<crate::chain::ChainLink>>,
}

impl PaymentModel {
    /// What the payment checkers read of the history, as the exhaustive explorer must be told
    /// (`sim::HistoryView`; a wrong declaration silently merges states that judge differently):
    /// each node's own sequence of observations, never how different nodes' interleave.
    ///
    /// Who observes what: a client reports `OpStarted`, `Sent`, `Received`, `TimedOut` and
    /// `Settled`, only for its own operations (op = client * 10_000 + index, key = op << 16 | key
    /// generation); a server or the completer reports `KeyClaimed` / `KeyReplayed` /
    /// `KeyRejected` / `KeyReleased` / `KeyFailed` / `ResultStored`; the store or the provider
    /// reports `Charged`. What decides each verdict (`invariants::payment`):
    /// - `exactly_once_charge`: more than one durable charge of an op — the final durable log
    ///   (`RunView::durable`, part of the state key); a `Settled { Succeeded { charge } }` whose
    ///   charge is not the op's durable one — a fact of one client entry plus the final log; the
    ///   op's last `Settled` being a failure with no later `Received` 200 of its charge — all on
    ///   the op's own client, so "last" and "later" are that node's order.
    /// - `mismatch_rejected`: a `Received` 200 paired with the latest earlier `Sent` of the same
    ///   (op, attempt, copy), and the first `Sent` of a charged key — on the op's own client.
    /// - `replay_fidelity`: whether two 200s for one key carry different (charge, amount) —
    ///   "some pair differs" is "not all equal", which no order changes.
    /// - `settles`: an `OpStarted` with no later `Settled` of that op, and a `Settled` later than
    ///   its bound after the op's latest start — the op's own client; the final key rows (the
    ///   durable log); a `ResultStored` of a provider charge anywhere — order-free.
    ///
    /// Checkers run in a fixed order and whether each finds a violation is order-free, so the
    /// verdict and the invariants named are a function of the per-node sequences and the final
    /// logs. Only the violation's *text* reads the global order (its `events` indices, which of
    /// several violations of one invariant is quoted, a `Charged` time, the fault summary from
    /// `RunView::stats`); a counterexample is a complete run, replayed, so its text is exact for
    /// that run. Not `Ignored`: `Sent`, `Received` and `Settled` live only in the history (a
    /// client keeps no record of the responses it got). `Ordered` is sound too, but forbids the
    /// partial-order reduction and prunes less. The view declared is `Relevant`: per node, as
    /// above, keeping of each observation only what a verdict reads (`observation_key`).
    ///
    /// Keep this true when a checker changes: a checker that compares observations of two
    /// different nodes by position or time (e.g. "the charge happened before the client's
    /// 200") needs `HistoryView::Ordered`.
    pub const HISTORY_VIEW: HistoryView = HistoryView::Relevant;

    /// What the verdict reads of one observation (`sim::Model::observation_key`, for the
    /// `Relevant` view), given the per-node argument at `HISTORY_VIEW`. With `liveness` on, the
    /// whole entry: `settles` reads times (a `Settled` after its bound), `OpStarted` and any
    /// node's `ResultStored`. With it off (every exhaustive scenario: `settles` returns at once),
    /// the checkers read only what the client reports, and never a time (times, `Charged` rows
    /// and the servers' `Key*` / `ResultStored` appear in messages only, and a counterexample's
    /// message comes from the complete run itself). Of the client's observations, per checker:
    /// - `exactly_once_charge`: the charge of a `Settled { Succeeded }`; which outcome the op's
    ///   last `Settled` had (succeeded, rejected, gave up; a code or an attempt count is not
    ///   read); the charge of each `Received` 200 after it.
    /// - `mismatch_rejected`: a `Received` 200's (op, attempt, copy) and amount, the latest
    ///   earlier `Sent` of that (op, attempt, copy) and its amount, the first `Sent` of each key
    ///   and its amount.
    /// - `replay_fidelity`: each key's `Received` 200s, their (charge, amount).
    ///
    /// So a `Sent` is keyed by (op, attempt, copy, key, amount), a 200 `Received` by (op,
    /// attempt, copy, key, charge, amount), a `Settled` by (op, outcome kind, succeeded charge);
    /// a non-200 `Received`, `OpStarted` and `TimedOut` by nothing (no checker reads them, and
    /// the client's own state tells what it does next). The key of each node's sequence stays in
    /// that node's order, which the checks above ("latest earlier", "after it", "first") need.
    /// With labels erased (symmetry: see `Request`), `copy` is left out of both: it matters only
    /// through "the latest earlier `Sent` of that (op, attempt, copy)", and the client sends
    /// every copy of an attempt in one handler with one amount (each time it sends that attempt:
    /// the copies are always the same set, 1 + duplicates for attempt 1, one for the others), so
    /// that `Sent` has the amount of the latest earlier `Sent` of (op, attempt), whatever the copy.
    /// Dropping the times is the big merge: the untimed search reaches the same state with its
    /// observations stamped at every deadline a timer moved the clock to (3 concurrent requests:
    /// 28 times as many states keyed with times as without).
    pub fn observation_key(&self, e: &sim::Entry<invariants::Obs>) -> Option<u64> {
        use invariants::Obs::*;
        use invariants::{Settle, Status};
        if self.liveness {
            return Some(sim::stable_hash(e));
        }
        let label = |copy: u32| if sim::labels_erased() { 0 } else { copy };
        match e.obs {
            Sent { op, attempt, copy, key, amount, .. } => Some(sim::stable_hash(&(0u8, op, attempt, label(copy), key, amount))),
            Received { op, attempt, copy, key, status: Status::Ok { charge, amount, .. } } => {
                Some(sim::stable_hash(&(1u8, op, attempt, label(copy), key, charge, amount)))
            }
            Settled { op, outcome } => {
                let (kind, charge) = match outcome {
                    Settle::Succeeded { charge, .. } => (0u8, charge),
                    Settle::Rejected { .. } => (1, 0),
                    Settle::GaveUp { .. } => (2, 0),
                };
                Some(sim::stable_hash(&(2u8, op, kind, charge)))
            }
            _ => None,
        }
    }

    pub fn new(s: &Scenario) -> Self {
        let w = s.workload();
        let d = s.payment().clone();
        let spec = |name: String, role: Role| {
            let t = &s.targets;
            // A local ledger's provider keeps its faults here (unlike in `exhaustive_scenario`):
            // idle, it changes nothing, and seeded runs keep drawing the fault plans their seed
            // files recorded.
            let active = role == Role::Provider || plays(&d.server, role);
            NodeSpec::new(name)
                .crashable(active && t.crash.contains(&role))
                .pausable(active && t.pause.contains(&role))
                .lossy(active && t.lossy.contains(&role))
        };
        let mut nodes =
            vec![spec("store".into(), Role::Store), spec("provider".into(), Role::Provider), spec("completer".into(), Role::Completer)];
        let instances = d.server.instances;
        nodes.extend((0..instances).map(|i| spec(if instances == 1 { "server".into() } else { format!("server{i}") }, Role::Server)));
        nodes.extend((0..w.clients).map(|i| spec(format!("client{i}"), Role::Client)));
        let config = SimConfig { nodes, faults: s.faults.clone(), swarm: s.swarm, time_limit_us: s.time_limit_us };
        let client_setup = client::Setup {
            design: d.client,
            ops: w.operations_per_client,
            duplicates: w.duplicates,
            amount: w.amount,
            repay_probability: w.repay_probability,
            think_us: w.think_us,
            instances,
            crashable: s.targets.crash.contains(&Role::Client),
        };
        PaymentModel {
            client_setup: Shared(client_setup),
            server_design: Shared(d.server),
            store: Shared(d.store),
            provider: Shared(d.provider),
            peers: Shared(Peers::payment(instances)),
            split: Shared(redis::SplitFault {
                probability: s.faults.partition_probability,
                phase_us: s.faults.fault_phase_us,
                len_us_max: s.faults.partition_us_max,
                instances,
            }),
            sweep_until_us: s.faults.fault_phase_us + s.settle_bound_us,
            heal_at_us: s.faults.fault_phase_us,
            settle_bound_us: s.settle_bound_us,
            liveness: s.liveness,
            chain: None,
            design: d,
            config,
            clients: w.clients,
        }
    }

    pub fn first_client(&self) -> NodeId {
        self.peers.first_client()
    }

    /// The nodes of this world: the key store, provider, completer, servers and clients.
    pub fn end(&self) -> NodeId {
        self.first_client() + self.clients as usize
    }

    /// This world as the checkout chain's front half: its servers hand each paid order on over
    /// `link`, and nodes `also` (the relays) hold connections to the key store too.
    pub fn chained(mut self, link: crate::chain::ChainLink, also: (NodeId, NodeId)) -> Self {
        self.chain = Some(Shared(link));
        self.peers.0.also = also;
        self
    }

    pub fn postgres(&self) -> bool {
        matches!(*self.store, KeyStore::Postgres { .. })
    }

    fn server(&self, node: NodeId) -> Server {
        Server::new(self.server_design, self.postgres(), node, self.server_role(node), self.chain)
    }

    fn server_role(&self, node: NodeId) -> server::Role {
        if node == COMPLETER {
            server::Role::Completer { sweep_until_us: self.sweep_until_us }
        } else {
            server::Role::Instance
        }
    }

    /// The charges an auditor finds: durable ledger rows, or the provider's records.
    fn charges(&self, run: &RunView<'_, Node>, out: &mut Vec<ChargeRow>) {
        out.extend(charges_in(run.durable(self.charge_node())));
    }

    /// The node whose durable log holds the charges: the ledger's store, or the provider.
    pub fn charge_node(&self) -> NodeId {
        if self.design.server.charge == ChargeTarget::LocalLedger {
            STORE
        } else {
            PROVIDER
        }
    }

    /// The keys an auditor finds in the key store after the run.
    fn keys(&self, run: &RunView<'_, Node>, out: &mut Vec<KeyRecord>) {
        type Rows = (Vec<KeyRow>, Vec<(Key, redis::Value)>);
        thread_local!(static ROWS: std::cell::RefCell<Rows> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) });
        ROWS.with_borrow_mut(|(rows, values)| {
            rows.clear();
            values.clear();
            if self.postgres() {
                Postgres::keys_at(run.durable(STORE), rows);
                out.extend(rows.iter().map(|r| {
                    let end = match r.point {
                        RecoveryPoint::Finished => KeyEnd::Finished { charge: r.charge.unwrap_or(0) },
                        RecoveryPoint::Failed => KeyEnd::Failed,
                        _ => KeyEnd::InFlight,
                    };
                    KeyRecord { key: r.key, op: (r.key >> 16) as OpId, end }
                }));
            } else {
                // Judged at the liveness deadline: a claim whose lock TTL runs out by then is
                // released by Redis itself.
                let at_us = run.stats.sim_time_us.max(self.sweep_until_us);
                match run.nodes.get(STORE) {
                    // Without persistence the store's memory is all there is (a crash emptied it).
                    Some(Node::Redis(r)) if !r.appendonly() => r.live_keys(at_us, values),
                    _ => Redis::keys_at(run.durable(STORE), at_us, values),
                }
                out.extend(values.iter().map(|&(key, v)| {
                    let end = match v {
                        redis::Value::Done { charge, .. } => KeyEnd::Finished { charge },
                        redis::Value::Failed { .. } => KeyEnd::Failed,
                        redis::Value::InFlight { .. } => KeyEnd::InFlight,
                    };
                    KeyRecord { key, op: (key >> 16) as OpId, end }
                }));
            }
        });
    }
}

impl Model for PaymentModel {
    type Actor = Node;

    fn config(&self) -> &SimConfig {
        &self.config
    }

    fn build(&self, nodes: &mut Vec<Node>) {
        nodes.push(if self.postgres() {
            Node::Postgres(Postgres::new(self.store, self.peers))
        } else {
            Node::Redis(Redis::new(self.store, self.peers, self.split))
        });
        nodes.push(Node::Provider(Provider::new(self.provider)));
        for node in COMPLETER..self.first_client() {
            nodes.push(Node::Server(self.server(node)));
        }
        for i in 0..self.clients {
            nodes.push(Node::Client(Client::new(self.client_setup, i)));
        }
    }

    /// Reuses the previous run's actors (and their buffers) when they have the expected roles.
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        if nodes.len() != self.end() || !self.reset(nodes) {
            nodes.clear();
            self.build(nodes);
        }
    }

    fn observation_key(&self, entry: &sim::Entry<invariants::Obs>) -> Option<u64> {
        PaymentModel::observation_key(self, entry)
    }

    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let verdict = with_faults(self.verdict(run), run, &self.config.nodes);
        // (A view without the actors, as `models::custom` gives for a world with your own, has
        // nothing to add.)
        match (verdict, run.nodes.get(STORE)) {
            // The store's own fault (a split brain) is not in the engine's log: name it too.
            (Verdict::Violation(mut v), Some(Node::Redis(Redis { note: Some(note), .. }))) => {
                v.message.push_str(&note.describe(|n| self.config.nodes.get(n).map_or("?".into(), |s| s.name.clone())));
                Verdict::Violation(v)
            }
            // So is the reaper's work.
            (Verdict::Violation(mut v), Some(Node::Postgres(Postgres { reaped: (n, first_us), .. }))) if *n > 0 => {
                let KeyStore::Postgres { key_retention_us, .. } = *self.store else { unreachable!("a Postgres store") };
                v.message.push_str(&format!(
                    " The reaper deleted {n} key{} older than key_retention_us ({}), the first at {}.",
                    if *n == 1 { "" } else { "s" },
                    invariants::ms(key_retention_us),
                    invariants::ms(*first_us)
                ));
                Verdict::Violation(v)
            }
            // And evictions.
            (Verdict::Violation(mut v), Some(Node::Redis(Redis { evicted: (n, first_key, first_us), .. }))) if *n > 0 => {
                let KeyStore::Redis { maxmemory_keys, maxmemory_policy, .. } = *self.store else { unreachable!("a Redis store") };
                v.message.push_str(&format!(
                    " The store, full at maxmemory_keys = {maxmemory_keys}, evicted {n} key{} ({}), the first {first_key:#x} at {}.",
                    if *n == 1 { "" } else { "s" },
                    maxmemory_policy.name(),
                    invariants::ms(*first_us)
                ));
                Verdict::Violation(v)
            }
            (verdict, _) => verdict,
        }
    }
}

impl PaymentModel {
    /// Reset `nodes` (this world's, first in the slice) to a fresh build's, keeping their
    /// buffers; false (nothing changed) when they do not have this world's roles.
    pub fn reset(&self, nodes: &mut [Node]) -> bool {
        let postgres = self.postgres();
        let first_client = self.first_client();
        let nodes = &mut nodes[..self.end()];
        let shaped = matches!((&nodes[STORE], postgres), (Node::Postgres(_), true) | (Node::Redis(_), false))
            && matches!(nodes[PROVIDER], Node::Provider(_))
            && nodes[COMPLETER..first_client].iter().all(|n| matches!(n, Node::Server(_)))
            && nodes[first_client..].iter().all(|n| matches!(n, Node::Client(_)));
        if !shaped {
            return false;
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            match node {
                Node::Server(s) => s.reset(self.server_design, self.postgres(), i, self.server_role(i), self.chain),
                Node::Postgres(p) => p.reset(self.store, self.peers),
                Node::Redis(r) => r.reset(self.store, self.peers, self.split),
                Node::Provider(p) => p.reset(self.provider),
                Node::Client(c) => *c = Client::new(self.client_setup, (i - first_client) as u32),
                other => unreachable!("{other:?} on the payment path"),
            }
        }
        true
    }

    /// The payment checkers' verdict, its messages without the fault summary.
    pub fn verdict(&self, run: &RunView<'_, Node>) -> Verdict {
        // Per-thread buffers: judging a run allocates nothing here once warm.
        thread_local!(static BUF: std::cell::RefCell<(Vec<ChargeRow>, Vec<KeyRecord>)> =
            const { std::cell::RefCell::new((Vec::new(), Vec::new())) });
        BUF.with_borrow_mut(|(charges, keys)| {
            charges.clear();
            keys.clear();
            self.charges(run, charges);
            self.keys(run, keys);
            self.judge(run, charges, keys)
        })
    }
}

impl PaymentModel {
    fn judge(&self, run: &RunView<'_, Node>, charges: &[ChargeRow], keys: &[KeyRecord]) -> Verdict {
        payment::check(&PaymentRun {
            history: run.history,
            charges,
            keys,
            provider: self.design.server.charge != ChargeTarget::LocalLedger,
            end: run.end,
            heal_at_us: self.heal_at_us,
            settle_bound_us: self.settle_bound_us,
            liveness: self.liveness,
        })
    }
}

/// The charges recorded in a durable log (a ledger's or the provider's).
pub fn charges_in(log: &[Record]) -> impl Iterator<Item = ChargeRow> + '_ {
    log.iter().filter_map(|r| if let Record::Charge(c) = r { Some(*c) } else { None })
}

/// A verdict whose messages end with the faults of the run (named with `nodes`' names).
pub fn with_faults(verdict: Verdict, run: &RunView<'_, Node>, nodes: &[NodeSpec]) -> Verdict {
    match verdict {
        Verdict::Violation(mut v) => {
            let faults = crate::scenario::fault_summary(run, nodes);
            v.message.push_str(&faults);
            for other in &mut v.also {
                other.message.push_str(&faults);
            }
            Verdict::Violation(v)
        }
        pass => pass,
    }
}

#[cfg(test)]
mod rebuild_tests {
    use super::*;

    /// `rebuild` over the actors a run left behind gives exactly what `build` gives.
    #[test]
    fn rebuild_after_a_run_equals_a_fresh_build() {
        for mut s in crate::presets::all() {
            s.swarm = true; // crashes, pauses and partitions in many runs
            let model = s.model();
            let mut sim = sim::Sim::new();
            // Fleets are large (and formatting them slow): fewer seeds.
            let seeds = if s.overload.is_some() { 10 } else { 100 };
            for seed in 0..seeds {
                sim.run_seed(&model, seed);
                let mut rebuilt = sim.nodes().to_vec();
                model.rebuild(&mut rebuilt);
                let mut fresh = Vec::new();
                model.build(&mut fresh);
                assert_eq!(format!("{rebuilt:?}"), format!("{fresh:?}"), "{} seed {seed}", s.name);
            }
        }
    }
}
