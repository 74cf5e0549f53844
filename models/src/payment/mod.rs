//! The payment path: clients charging through a server's idempotency layer, a key store
//! (Postgres-like or Redis-like) and a ledger or payment provider.
//!
//! Nodes: 0 the server, 1 the key store, 2 the payment provider, 3.. the clients.

pub mod client;
pub mod postgres;
pub mod provider;
pub mod redis;
pub mod server;

use crate::knobs::{ChargeTarget, KeyStore, PaymentDesign};
use crate::scenario::{Role, Scenario};
use client::{Client, ClientTimer};
use invariants::payment::{self, PaymentRun};
use invariants::{ChargeId, ChargeRow, Key, Obs, OpId, Status};
use postgres::{PgTimer, Postgres, Sql, SqlReply};
use provider::Provider;
use redis::{Redis, RedisCmd, RedisReply, RedisTimer};
use server::{Reply, Server, ServerTimer};
use sim::{Actor, Ctx, HistoryView, Model, NodeId, NodeSpec, RunView, SimConfig, Verdict};
use std::hash::{Hash, Hasher};
use std::ops::Deref;

pub const SERVER: NodeId = 0;
pub const STORE: NodeId = 1;
pub const PROVIDER: NodeId = 2;
pub const FIRST_CLIENT: NodeId = 3;

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
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct Request {
    pub op: OpId,
    pub attempt: u32,
    /// The Idempotency-Key header.
    pub key: Key,
    pub amount: u32,
}

/// 16-byte aligned: every copy of a message (out buffer, event queue, handler argument) then
/// moves the same 16-byte chunks, so no load straddles two earlier narrower stores (a
/// store-to-load forwarding stall; they were the hottest instructions of the benchmark).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
#[repr(align(16))]
pub enum Msg {
    Request(Request),
    Response {
        op: OpId,
        attempt: u32,
        status: Status,
    },
    Sql {
        tx: u64,
        begin: bool,
        sql: Sql,
        lock_timeout_us: u64,
    },
    SqlReply {
        tx: u64,
        reply: SqlReply,
    },
    Redis {
        req: u64,
        cmd: RedisCmd,
    },
    RedisReply {
        req: u64,
        reply: RedisReply,
    },
    /// To the provider: charge `amount` for `op`, with the call's idempotency key if any.
    Charge {
        req: u64,
        key: Option<Key>,
        op: OpId,
        order_key: Key,
        amount: u32,
    },
    Charged {
        req: u64,
        charge: ChargeId,
    },
    /// The key store came back from a crash: connections to it broke.
    StoreRestarted,
    /// The server came back from a crash: its connections broke.
    ServerRestarted {
        boot: u32,
    },
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Timer {
    Client(ClientTimer),
    Server(ServerTimer),
    Pg(PgTimer),
    Redis(RedisTimer),
}

/// One entry of a node's write-ahead log.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Record {
    Boot,
    Key(postgres::KeyRow),
    Charge(ChargeRow),
    Redis(redis::Entry),
}

/// Every role of the payment path.
#[derive(Clone, Debug, Hash)]
pub enum Node {
    Client(Client),
    Server(Server),
    Postgres(Postgres),
    Redis(Redis),
    Provider(Provider),
}

impl Actor for Node {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;
    type Record = Record;

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        match self {
            Node::Client(c) => c.on_start(ctx),
            Node::Server(s) => s.on_start(ctx),
            Node::Postgres(p) => p.on_start(ctx),
            Node::Redis(r) => r.on_start(ctx),
            Node::Provider(_) => {}
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (Node::Server(s), Msg::Request(req)) => s.on_request(ctx, from, req),
            (Node::Server(s), Msg::SqlReply { tx, reply }) => s.on_reply(ctx, tx, Reply::Sql(reply)),
            (Node::Server(s), Msg::RedisReply { req, reply }) => s.on_reply(ctx, req, Reply::Redis(reply)),
            (Node::Server(s), Msg::Charged { req, charge }) => s.on_reply(ctx, req, Reply::Charged(charge)),
            (Node::Server(s), Msg::StoreRestarted) => s.on_store_restarted(ctx),
            (Node::Client(c), Msg::Response { op, attempt, status }) => c.on_response(ctx, op, attempt, status),
            (Node::Postgres(p), Msg::Sql { tx, begin, sql, lock_timeout_us }) => p.on_sql(ctx, tx, begin, sql, lock_timeout_us),
            (Node::Postgres(p), Msg::ServerRestarted { boot }) => p.on_server_restarted(ctx, boot),
            (Node::Redis(_), Msg::ServerRestarted { .. }) => {}
            (Node::Redis(r), Msg::Redis { req, cmd }) => r.on_cmd(ctx, req, cmd),
            (Node::Provider(p), Msg::Charge { req, key, op, order_key, amount }) => p.on_charge(ctx, req, key, op, order_key, amount),
            (node, msg) => unreachable!("{msg:?} sent to {node:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match (self, timer) {
            (Node::Client(c), Timer::Client(t)) => c.on_timer(ctx, t),
            (Node::Server(s), Timer::Server(t)) => s.on_timer(ctx, t),
            (Node::Postgres(p), Timer::Pg(t)) => p.on_timer(ctx, t),
            (Node::Redis(r), Timer::Redis(t)) => r.on_timer(ctx, t),
            (node, t) => unreachable!("{t:?} fired on {node:?}"),
        }
    }

    fn on_crash(&mut self, durable: &[Record]) {
        match self {
            Node::Client(c) => c.on_crash(),
            Node::Server(s) => s.on_crash(durable),
            Node::Postgres(p) => p.on_crash(durable),
            Node::Redis(r) => r.on_crash(durable),
            Node::Provider(p) => p.on_crash(durable),
        }
    }
}

/// A payment scenario ready to run.
pub struct PaymentModel {
    pub design: PaymentDesign,
    config: SimConfig,
    clients: u32,
    ops: u32,
    duplicates: u32,
    amount: u32,
    client_design: Shared<crate::knobs::ClientDesign>,
    server_design: Shared<crate::knobs::ServerDesign>,
    store: Shared<KeyStore>,
}

impl PaymentModel {
    /// What the payment checkers read of the history, as the exhaustive explorer must be told
    /// (`sim::HistoryView`; a wrong declaration silently merges states that judge differently):
    /// each node's own sequence of observations, never how different nodes' interleave.
    ///
    /// Who observes what: a client (node 3..) reports `OpStarted`, `Sent`, `Received`, `TimedOut`
    /// and `Settled`, only for its own operations (op = client * 1000 + index, key = op << 16 |
    /// attempt or 0); the server reports `KeyClaimed` / `KeyReplayed` / `KeyRejected`; the store
    /// or the provider reports `Charged`. What decides each verdict (`invariants::payment`):
    /// - `exactly_once_charge`: more than one durable charge of an op — the final durable log
    ///   (`RunView::durable`, part of the state key); a `Settled { Succeeded { charge } }` whose
    ///   charge is not the op's durable one — a fact of one client entry plus the final log; an
    ///   `OpStarted` with no later `Settled` of that op — both on the op's own client, so "later"
    ///   is that node's order. `RunView::end` follows from the final state.
    /// - `mismatch_rejected`: a `Received` 200 paired with the latest earlier `Sent` of the same
    ///   (op, attempt) — both on the op's own client: that node's order.
    /// - `replay_fidelity`: whether two 200s for one key carry different (charge, amount) —
    ///   "some pair differs" is "not all equal", which no order changes (and all of them are on
    ///   the key's own client anyway).
    ///
    /// Checkers run in a fixed order and whether each finds a violation is order-free, so the
    /// verdict and the invariant named are a function of the per-node sequences and the final
    /// logs. Only the violation's *text* reads the global order (its `events` indices, which of
    /// several violations of one invariant is quoted, a `Charged` time, the fault summary from
    /// `RunView::stats`); a counterexample is a complete run, replayed, so its text is exact for
    /// that run. Not `Ignored`: `Sent`, `Received` and `Settled` live only in the history (a
    /// client keeps no record of the responses it got). `Ordered` is sound too, but forbids the
    /// partial-order reduction and prunes less.
    ///
    /// Keep this true when a checker changes: a checker that compares observations of two
    /// different nodes by position or time (e.g. "the charge happened before the client's
    /// 200") needs `HistoryView::Ordered`.
    pub const HISTORY_VIEW: HistoryView = HistoryView::PerNode;

    pub fn new(s: &Scenario) -> Self {
        let w = &s.workload;
        let spec = |name: String, role: Role| {
            let t = &s.targets;
            NodeSpec::new(name).crashable(t.crash.contains(&role)).pausable(t.pause.contains(&role)).lossy(t.lossy.contains(&role))
        };
        let mut nodes =
            vec![spec("server".into(), Role::Server), spec("store".into(), Role::Store), spec("provider".into(), Role::Provider)];
        nodes.extend((0..w.clients).map(|i| spec(format!("client{i}"), Role::Client)));
        let config = SimConfig { nodes, faults: s.faults.clone(), swarm: s.swarm, time_limit_us: s.time_limit_us };
        let d = s.payment.clone();
        PaymentModel {
            client_design: Shared(d.client),
            server_design: Shared(d.server),
            store: Shared(d.store),
            design: d,
            config,
            clients: w.clients,
            ops: w.operations_per_client,
            duplicates: w.duplicates,
            amount: w.amount,
        }
    }

    /// The charges an auditor finds: durable ledger rows, or the provider's records.
    fn charges(&self, run: &RunView<'_, Node>, out: &mut Vec<ChargeRow>) {
        let node = if self.design.server.charge == ChargeTarget::LocalLedger { STORE } else { PROVIDER };
        out.extend(run.durable(node).iter().filter_map(|r| if let Record::Charge(c) = r { Some(*c) } else { None }));
    }
}

impl Model for PaymentModel {
    type Actor = Node;

    fn config(&self) -> &SimConfig {
        &self.config
    }

    fn build(&self, nodes: &mut Vec<Node>) {
        let postgres = matches!(*self.store, KeyStore::Postgres { .. });
        nodes.push(Node::Server(Server::new(self.server_design, postgres)));
        nodes.push(if postgres { Node::Postgres(Postgres::new(self.store)) } else { Node::Redis(Redis::new(self.store)) });
        nodes.push(Node::Provider(Provider::default()));
        for i in 0..self.clients {
            nodes.push(Node::Client(Client::new(self.client_design, i, self.ops, self.duplicates, self.amount)));
        }
    }

    /// Reuses the previous run's actors (and their buffers) when they have the expected roles.
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        let postgres = matches!(*self.store, KeyStore::Postgres { .. });
        let shaped = nodes.len() == FIRST_CLIENT + self.clients as usize
            && matches!(nodes[SERVER], Node::Server(_))
            && matches!((&nodes[STORE], postgres), (Node::Postgres(_), true) | (Node::Redis(_), false))
            && matches!(nodes[PROVIDER], Node::Provider(_))
            && nodes[FIRST_CLIENT..].iter().all(|n| matches!(n, Node::Client(_)));
        if !shaped {
            nodes.clear();
            return self.build(nodes);
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            match node {
                Node::Server(s) => s.reset(self.server_design, postgres),
                Node::Postgres(p) => p.reset(self.store),
                Node::Redis(r) => r.reset(self.store),
                Node::Provider(p) => p.reset(),
                Node::Client(c) => {
                    let index = (i - FIRST_CLIENT) as u32;
                    *c = Client::new(self.client_design, index, self.ops, self.duplicates, self.amount);
                }
            }
        }
    }

    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        // A per-thread buffer: judging a run allocates nothing here once warm.
        thread_local!(static CHARGES: std::cell::RefCell<Vec<ChargeRow>> = const { std::cell::RefCell::new(Vec::new()) });
        CHARGES.with_borrow_mut(|charges| {
            charges.clear();
            self.charges(run, charges);
            self.judge(run, charges)
        })
    }
}

impl PaymentModel {
    fn judge(&self, run: &RunView<'_, Node>, charges: &[ChargeRow]) -> Verdict {
        let verdict = payment::check(&PaymentRun { history: run.history, charges, end: run.end });
        match verdict {
            Verdict::Violation(mut v) => {
                v.message.push_str(&crate::scenario::fault_summary(run, &self.config.nodes));
                Verdict::Violation(v)
            }
            pass => pass,
        }
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
            for seed in 0..100 {
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
