//! The one world every path runs in: the actor type of every role (an enum of the roles), the
//! messages they exchange, their timers and their write-ahead log records. One type for all
//! paths is what lets a scenario compose paths (the checkout chain runs the payment server
//! against the outbox relay's database) and the command line stay path-agnostic.

use crate::outbox::broker::{Broker, LogEntry};
use crate::outbox::consumer::{Consumer, ConsumerTimer};
use crate::outbox::relay::{Relay, RelayTimer};
use crate::outbox::service::{Service, ServiceTimer};
use crate::outbox::tables::OutboxRow;
use crate::overload::fleet::{Fleet, FleetTimer};
use crate::overload::server::{Pool, PoolTimer};
use crate::overload::tier::{Tier, TierTimer};
use crate::overload::Call;
use crate::payment::client::{Client, ClientTimer};
use crate::payment::postgres::{self, PgTimer, Postgres, Sql, SqlReply};
use crate::payment::provider::{ChargeCall, KeyedCall, Provider, ProviderReply, ProviderTimer};
use crate::payment::redis::{self, Redis, RedisCmd, RedisReply, RedisTimer};
use crate::payment::server::{Reply, Server, ServerTimer};
use crate::payment::Request;
use invariants::{ChargeRow, Event, Obs, OrderId, Status};
use sim::{Actor, Ctx, NodeId};

/// 16-byte aligned: every copy of a message (out buffer, event queue, handler argument) then
/// moves the same 16-byte chunks, so no load straddles two earlier narrower stores (a
/// store-to-load forwarding stall; they were the hottest instructions of the benchmark).
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
#[repr(align(16))]
pub enum Msg {
    Request(Request),
    Response {
        req: Request,
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
    Charge(ChargeCall),
    ProviderReply {
        req: u64,
        reply: ProviderReply,
    },
    /// The key store came back from a crash: connections to it broke.
    StoreRestarted,
    /// The server came back from a crash: its connections broke.
    ServerRestarted {
        boot: u32,
    },
    /// The sender's process died (incarnation `boot`), its machine did not: the OS closed its
    /// connections, and the database sees each one end (`Actor::on_process_exit`).
    ConnectionsClosed {
        boot: u32,
    },
    /// Outbox path, to the broker: append `event` for producer session `pid` with its
    /// per-partition sequence number `seq`.
    Produce {
        pid: u64,
        seq: u32,
        event: Event,
    },
    /// The broker's answer to a `Produce`: appended (or a duplicate of an appended one, dropped),
    /// or refused as out of sequence (`ok = false`; the producer resends in order).
    ProduceAck {
        pid: u64,
        partition: u32,
        seq: u32,
        ok: bool,
    },
    /// The consumer asks for the message at `offset` of `partition`.
    Fetch {
        partition: u32,
        offset: u32,
    },
    /// The message at `offset` (later than asked when retention deleted the asked one), or
    /// `None`: nothing there yet.
    Fetched {
        partition: u32,
        offset: u32,
        event: Option<Event>,
    },
    /// The consumer group's position: everything before `offset` is consumed.
    CommitOffset {
        partition: u32,
        offset: u32,
    },
    OffsetCommitted {
        partition: u32,
        offset: u32,
    },
    FetchOffset {
        partition: u32,
    },
    GroupOffset {
        partition: u32,
        offset: u32,
    },
    /// Overload path: a client's request to the service.
    Call(Call),
    /// The service's (or a tier's) answer: 200, 409, 503 (with its `Retry-After`) or 504.
    Answer {
        call: Call,
        code: u16,
        retry_after_us: u32,
    },
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Timer {
    Client(ClientTimer),
    Server(ServerTimer),
    Pg(PgTimer),
    Redis(RedisTimer),
    Provider(ProviderTimer),
    Service(ServiceTimer),
    Relay(RelayTimer),
    Consumer(ConsumerTimer),
    Fleet(FleetTimer),
    Pool(PoolTimer),
    Tier(TierTimer),
}

/// One entry of a node's write-ahead log.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Record {
    Boot,
    Key(postgres::KeyRow),
    /// A key row deleted (released).
    KeyGone {
        rid: u32,
    },
    Charge(ChargeRow),
    /// The provider's memory of a keyed call.
    Keyed(KeyedCall),
    Redis(redis::Entry),
    /// The client app's pending payment: purchase `index`, under key generation `session` (the
    /// key itself is durable only with `key_storage = persisted`).
    ClientPending {
        index: u32,
        session: u32,
    },
    /// The client app finished purchase `index`.
    ClientDone {
        index: u32,
    },
    /// Outbox path: a committed order row.
    Order(Event),
    /// A committed outbox row (unsent).
    Outbox(OutboxRow),
    OutboxSent {
        id: u32,
    },
    /// The consumer's inbox row (subscriber, message id).
    Inbox {
        order: OrderId,
    },
    /// The consumer's projection row: the event's effect.
    Effect(Event),
    /// The broker appended `entry` to `partition`.
    Logged {
        partition: u32,
        entry: LogEntry,
    },
    /// The consumer group committed `offset` on `partition`.
    GroupOffset {
        partition: u32,
        offset: u32,
    },
    /// The order service began placing order `index`.
    Placed {
        index: u32,
    },
}

/// Every role of every path.
#[derive(Debug, Hash)]
pub enum Node {
    Client(Client),
    Server(Server),
    Postgres(Postgres),
    Redis(Redis),
    Provider(Provider),
    Service(Service),
    Relay(Relay),
    Broker(Broker),
    Consumer(Consumer),
    /// Overload path: every client of the fleet.
    Fleet(Fleet),
    /// Overload path: the service's worker pool.
    Pool(Pool),
    /// Overload path: a tier between the clients and the service.
    Tier(Tier),
}

/// `clone_from` of the same role clones into the actor in place, keeping its buffers (the
/// exhaustive search restores snapshots this way: see `sim::clone_by_field`).
macro_rules! node_clone {
    ($($role:ident),*) => {
        impl Clone for Node {
            fn clone(&self) -> Self {
                match self {
                    $(Node::$role(a) => Node::$role(a.clone()),)*
                }
            }
            fn clone_from(&mut self, src: &Self) {
                match (self, src) {
                    $((Node::$role(a), Node::$role(b)) => a.clone_from(b),)*
                    (me, src) => *me = src.clone(),
                }
            }
        }
    };
}
node_clone!(Client, Server, Postgres, Redis, Provider, Service, Relay, Broker, Consumer, Fleet, Pool, Tier);

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
            Node::Provider(_) | Node::Broker(_) | Node::Tier(_) => {}
            Node::Service(s) => s.on_start(ctx),
            Node::Relay(r) => r.on_start(ctx),
            Node::Consumer(c) => c.on_start(ctx),
            Node::Fleet(f) => f.on_start(ctx),
            Node::Pool(p) => p.on_start(ctx),
        }
    }

    // `#[inline]` makes this compiled along with the engine's code that calls it (else it is
    // the models crate's, called through the GOT). It is still called, not inlined, but the
    // engine's delivery path compiles tighter so: ~1,100 instructions fewer per run of the
    // payment benchmark (callgrind), ~20 per delivery.
    #[inline]
    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match (self, msg) {
            (Node::Server(s), Msg::Request(req)) => s.on_request(ctx, from, req),
            (Node::Server(s), Msg::SqlReply { tx, reply }) => s.on_reply(ctx, tx, Reply::Sql(reply)),
            (Node::Server(s), Msg::RedisReply { req, reply }) => s.on_reply(ctx, req, Reply::Redis(reply)),
            (Node::Server(s), Msg::ProviderReply { req, reply }) => s.on_reply(ctx, req, Reply::Provider(reply)),
            (Node::Server(s), Msg::StoreRestarted) => s.on_store_restarted(ctx),
            (Node::Server(s), Msg::ProduceAck { pid, partition, seq, ok }) => s.on_ack(ctx, pid, partition, seq, ok),
            (Node::Client(c), Msg::Response { req, status }) => c.on_response(ctx, req, status),
            (Node::Postgres(p), Msg::Sql { tx, begin, sql, lock_timeout_us }) => p.on_sql(ctx, tx, begin, sql, lock_timeout_us),
            (Node::Postgres(p), Msg::ServerRestarted { boot }) => p.on_server_restarted(ctx, from, boot),
            (Node::Postgres(p), Msg::ConnectionsClosed { boot }) => p.on_connections_closed(ctx, from, boot),
            (Node::Redis(_), Msg::ServerRestarted { .. } | Msg::ConnectionsClosed { .. }) => {}
            (Node::Redis(r), Msg::Redis { req, cmd }) => r.on_cmd(ctx, from, req, cmd),
            (Node::Provider(p), Msg::Charge(call)) => p.on_charge(ctx, from, call),
            (Node::Service(s), Msg::SqlReply { tx, reply }) => s.on_sql_reply(ctx, tx, reply),
            (Node::Service(s), Msg::ProduceAck { pid, partition, seq, ok }) => s.on_ack(ctx, pid, partition, seq, ok),
            (Node::Service(s), Msg::StoreRestarted) => s.on_store_restarted(ctx),
            (Node::Relay(r), Msg::SqlReply { tx, reply }) => r.on_sql_reply(ctx, tx, reply),
            (Node::Relay(r), Msg::ProduceAck { pid, partition, seq, ok }) => r.on_ack(ctx, pid, partition, seq, ok),
            (Node::Relay(r), Msg::StoreRestarted) => r.on_store_restarted(ctx),
            (Node::Broker(b), msg) => b.on_message(ctx, from, msg),
            (Node::Consumer(c), msg) => c.on_message(ctx, from, msg),
            (Node::Pool(p), Msg::Call(call)) => p.on_call(ctx, from, call),
            (Node::Fleet(f), Msg::Answer { call, code, retry_after_us }) => f.on_answer(ctx, call, code, retry_after_us),
            (Node::Tier(t), Msg::Call(call)) => t.on_call(ctx, from, call),
            (Node::Tier(t), Msg::Answer { call, code, retry_after_us }) => t.on_answer(ctx, call, code, retry_after_us),
            (node, msg) => unreachable!("{msg:?} sent to {node:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match (self, timer) {
            (Node::Client(c), Timer::Client(t)) => c.on_timer(ctx, t),
            (Node::Server(s), Timer::Server(t)) => s.on_timer(ctx, t),
            (Node::Postgres(p), Timer::Pg(t)) => p.on_timer(ctx, t),
            (Node::Redis(r), Timer::Redis(t)) => r.on_timer(ctx, t),
            (Node::Provider(p), Timer::Provider(t)) => p.on_timer(ctx, t),
            (Node::Service(s), Timer::Service(t)) => s.on_timer(ctx, t),
            (Node::Relay(r), Timer::Relay(t)) => r.on_timer(ctx, t),
            (Node::Consumer(c), Timer::Consumer(t)) => c.on_timer(ctx, t),
            (Node::Fleet(f), Timer::Fleet(t)) => f.on_timer(ctx, t),
            (Node::Pool(p), Timer::Pool(t)) => p.on_timer(ctx, t),
            (Node::Tier(x), Timer::Tier(t)) => x.on_timer(ctx, t),
            (node, t) => unreachable!("{t:?} fired on {node:?}"),
        }
    }

    fn on_crash(&mut self, durable: &[Record]) {
        match self {
            Node::Client(c) => c.on_crash(durable),
            Node::Server(s) => s.on_crash(durable),
            Node::Postgres(p) => p.on_crash(durable),
            Node::Redis(r) => r.on_crash(durable),
            Node::Provider(p) => p.on_crash(durable),
            Node::Service(s) => s.on_crash(durable),
            Node::Relay(r) => r.on_crash(durable),
            Node::Broker(b) => b.on_crash(durable),
            Node::Consumer(c) => c.on_crash(durable),
            Node::Fleet(f) => f.on_crash(durable),
            Node::Pool(p) => p.on_crash(durable),
            Node::Tier(t) => t.on_crash(durable),
        }
    }

    fn on_process_exit(&self, ctx: &mut Ctx<'_, Self>) {
        match self {
            Node::Server(s) => s.on_process_exit(ctx),
            Node::Service(s) => s.on_process_exit(ctx),
            Node::Relay(r) => r.on_process_exit(ctx),
            _ => {}
        }
    }
}

/// A scenario of any path, ready to run: the one `Model` the command line, the tests and the
/// benchmarks drive.
// Built once per exploration and only borrowed after: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum World {
    Payment(crate::payment::PaymentModel),
    Outbox(crate::outbox::OutboxModel),
    /// The checkout chain: the payment world whose servers hand paid orders to the outbox tail.
    Chain(crate::chain::ChainModel),
    /// A client fleet against a service with bounded capacity and an outage.
    Overload(crate::overload::OverloadModel),
}

impl World {
    /// What this path's checkers read of the history (`sim::HistoryView`), as the exhaustive
    /// explorer must be told.
    pub fn history_view(&self) -> sim::HistoryView {
        match self {
            World::Payment(_) => crate::payment::PaymentModel::HISTORY_VIEW,
            World::Outbox(_) => crate::outbox::OutboxModel::HISTORY_VIEW,
            World::Chain(_) => crate::chain::ChainModel::HISTORY_VIEW,
            World::Overload(_) => crate::overload::OverloadModel::HISTORY_VIEW,
        }
    }

    /// What the run `sim` just finished did, counted (for `compare`).
    pub fn tally(&self, sim: &sim::Sim<Node>) -> Tally {
        let mut t = Tally::default();
        match self {
            World::Payment(_) | World::Chain(_) => {
                if let World::Chain(m) = self {
                    t.events = Some(m.tally(|n| sim.durable(n)));
                }
                for e in sim.history() {
                    match e.obs {
                        Obs::OpStarted { .. } => t.operations += 1,
                        Obs::Sent { .. } => t.attempts += 1,
                        _ => {}
                    }
                }
            }
            World::Overload(m) => {
                thread_local!(static BUF: std::cell::RefCell<Vec<invariants::overload::Bucket>> =
                    const { std::cell::RefCell::new(Vec::new()) });
                let s = BUF.with_borrow_mut(|b| m.measure(sim.history(), sim_end(sim), b));
                (t.operations, t.attempts, t.overload) = (s.operations, s.attempts, Some(s));
            }
            World::Outbox(m) => {
                t.events = Some(m.tally(|n| sim.durable(n)));
                for e in sim.history() {
                    match e.obs {
                        Obs::OrderCommitted { .. } => t.operations += 1,
                        Obs::Delivered { .. } => t.attempts += 1,
                        _ => {}
                    }
                }
            }
        }
        t
    }

    /// Overload path: the last run of `sim`, bucket by bucket (into `out`), and its headline
    /// numbers; `None` on other paths.
    pub fn overload_buckets(
        &self,
        sim: &sim::Sim<Node>,
        out: &mut Vec<invariants::overload::Bucket>,
    ) -> Option<invariants::overload::Summary> {
        match self {
            World::Overload(m) => Some(m.measure(sim.history(), sim_end(sim), out)),
            _ => None,
        }
    }
}

/// The time of the last run's last observation: the buckets after it are empty.
fn sim_end(sim: &sim::Sim<Node>) -> u64 {
    sim.history().last().map_or(0, |e| e.at_us)
}

/// One run's work and damage, counted.
#[derive(Copy, Clone, Debug, Default, PartialEq)]
pub struct Tally {
    /// Payment and chain: operations started. Outbox: orders committed.
    pub operations: u64,
    /// Payment: requests sent (retries and copies included). Outbox: deliveries to the consumer.
    pub attempts: u64,
    /// Outbox: lost, duplicate, phantom and out-of-order effects (chain: fulfilments of charged
    /// operations); `None` on paths without events.
    pub events: Option<invariants::outbox::Tally>,
    /// Overload: amplification, recovery and goodput; `None` on other paths.
    pub overload: Option<invariants::overload::Summary>,
}

impl sim::Model for World {
    type Actor = Node;

    fn config(&self) -> &sim::SimConfig {
        match self {
            World::Payment(m) => m.config(),
            World::Outbox(m) => m.config(),
            World::Chain(m) => m.config(),
            World::Overload(m) => m.config(),
        }
    }
    fn build(&self, nodes: &mut Vec<Node>) {
        match self {
            World::Payment(m) => m.build(nodes),
            World::Outbox(m) => m.build(nodes),
            World::Chain(m) => m.build(nodes),
            World::Overload(m) => m.build(nodes),
        }
    }
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        match self {
            World::Payment(m) => m.rebuild(nodes),
            World::Outbox(m) => m.rebuild(nodes),
            World::Chain(m) => m.rebuild(nodes),
            World::Overload(m) => m.rebuild(nodes),
        }
    }
    fn observation_key(&self, entry: &sim::Entry<Obs>) -> Option<u64> {
        match self {
            World::Payment(m) => m.observation_key(entry),
            // The others declare no `Relevant` key: the whole entry, as under `PerNode`.
            _ => Some(sim::stable_hash(entry)),
        }
    }
    fn check(&self, run: &sim::RunView<'_, Node>) -> sim::Verdict {
        match self {
            World::Payment(m) => m.check(run),
            World::Outbox(m) => m.check(run),
            World::Chain(m) => m.check(run),
            World::Overload(m) => m.check(run),
        }
    }
}
