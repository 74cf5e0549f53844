//! The checkout chain: the seed's whole chain in one scenario. Clients pay through the payment
//! server's idempotency layer; the server hands each paid order on (an order row and an outbox
//! row in the transaction that stores the charge's result, `payment/handoff.rs`); a relay
//! publishes the outbox to the broker; a consumer with an inbox fulfils the order. Judged by the
//! payment checkers and by `effectively_once_event` over the charges: every charged operation is
//! fulfilled exactly once after the heal, and nothing is fulfilled without a durable charge.
//!
//! Nodes: the payment world's (key store, provider, completer, servers, clients), then the tail
//! from `base` on: the orders database (idle unless the key store is Redis), the broker, the
//! consumer's database, its separate dedup store (idle unless the design has one), the consumer,
//! then the relays (none for a dual write).

pub mod design;
pub mod presets;

use crate::knobs::KeyStore;
use crate::outbox::broker::Broker;
use crate::outbox::consumer::{Consumer, ConsumerSetup};
use crate::outbox::design::{BrokerDesign, Dedup, OrderWrite};
use crate::outbox::relay::{Relay, RelaySetup};
use crate::outbox::tables::Tables;
use crate::outbox::{judge_events, Layout};
use crate::payment::postgres::Postgres;
use crate::payment::{charges_in, with_faults, PaymentModel, Peers, Shared, COMPLETER};
use crate::scenario::{Role, Scenario};
use crate::world::{Node, Record};
use design::ChainDesign;
use invariants::outbox;
use invariants::{Event, OpId};
use sim::{HistoryView, Model, NodeId, NodeSpec, RunView, SimConfig, Verdict, Violation};

/// What a payment server needs to hand a paid order on.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct ChainLink {
    pub write: OrderWrite,
    /// Where the order rows go: the key store (Postgres) or the tail's orders database.
    pub order_db: NodeId,
    pub broker: NodeId,
    pub partitions: u32,
    pub producer_timeout_us: u64,
}

/// A checkout chain scenario ready to run.
pub struct ChainModel {
    pub design: ChainDesign,
    payment: PaymentModel,
    config: SimConfig,
    base: NodeId,
    layout: Layout,
    orders_db: Shared<KeyStore>,
    orders_peers: Shared<Peers>,
    consumer_db: Shared<KeyStore>,
    consumer_peers: Shared<Peers>,
    broker: Shared<BrokerDesign>,
    relay: Shared<RelaySetup>,
    consumer: Shared<ConsumerSetup>,
    heal_at_us: u64,
    /// `Scenario::liveness`: lost fulfilments are judged.
    liveness: bool,
}

impl ChainModel {
    /// The payment checkers read each node's own observations and the final logs; the event
    /// checker reads the final logs (charges, effects) alone: per node, as both paths declare.
    pub const HISTORY_VIEW: HistoryView = HistoryView::PerNode;

    pub fn new(s: &Scenario, d: &ChainDesign) -> Self {
        let front = PaymentModel::new(s);
        let base = front.end();
        let relays = if d.write == OrderWrite::Outbox { d.relay.instances } else { 0 };
        let postgres = front.postgres();
        let layout = Layout::chain(base, if postgres { crate::payment::STORE } else { base }, relays);
        let link = ChainLink {
            write: d.write,
            order_db: layout.order_db,
            broker: layout.broker,
            partitions: d.broker.partitions,
            producer_timeout_us: d.broker.producer_timeout_us,
        };
        let relay_range = (layout.first_relay, layout.end());
        let payment = front.chained(link, relay_range);
        let mut nodes = payment.config().nodes.clone();
        let spec = |name: String, role: Role, active: bool| {
            let t = &s.targets;
            NodeSpec::new(name)
                .crashable(active && t.crash.contains(&role))
                .pausable(active && t.pause.contains(&role))
                .lossy(active && t.lossy.contains(&role))
        };
        nodes.extend([
            spec("orders-db".into(), Role::Store, !postgres),
            spec("broker".into(), Role::Broker, true),
            spec("consumer-db".into(), Role::ConsumerStore, true),
            spec("dedup-store".into(), Role::ConsumerStore, d.consumer.dedup == Dedup::SeparateStore),
            spec("consumer".into(), Role::Consumer, true),
        ]);
        nodes.extend((0..relays).map(|i| spec(if relays == 1 { "relay".into() } else { format!("relay{i}") }, Role::Relay, true)));
        let config = SimConfig { nodes, faults: s.faults.clone(), swarm: s.swarm, time_limit_us: s.time_limit_us };
        let poll_until_us = s.faults.fault_phase_us + s.settle_bound_us;
        let db = |synchronous_commit| KeyStore::Postgres {
            synchronous_commit,
            unique_constraint: true,
            wal_writer_delay_us: d.orders_db.wal_writer_delay_us,
            key_retention_us: 0,
            session_timeout_us: d.orders_db.session_timeout_us,
        };
        let b = d.broker;
        ChainModel {
            config,
            base,
            layout,
            orders_db: Shared(db(d.orders_db.synchronous_commit)),
            // The servers (and the completer) and the relays hold connections to it.
            orders_peers: Shared(Peers { instances: 0, notify: (COMPLETER, payment.first_client()), also: relay_range }),
            consumer_db: Shared(db(true)),
            consumer_peers: Shared(Peers::consumer(layout)),
            broker: Shared(b),
            relay: Shared(RelaySetup {
                design: d.relay,
                partitions: b.partitions,
                producer_timeout_us: b.producer_timeout_us,
                layout,
                poll_until_us,
            }),
            consumer: Shared(ConsumerSetup {
                design: d.consumer,
                partitions: b.partitions,
                layout,
                poll_until_us: crate::outbox::consumer::consumer_horizon_us(poll_until_us, b.producer_timeout_us, s.faults.delay_us_max),
            }),
            heal_at_us: s.faults.fault_phase_us,
            liveness: s.liveness,
            payment,
            design: d.clone(),
        }
    }

    /// The paid operations, as the events that must be fulfilled, once each, in charge order.
    fn charged(&self, charges: &[Record], out: &mut Vec<Event>) {
        for c in charges_in(charges) {
            let event = order_of(c.op);
            if !out.contains(&event) {
                out.push(event);
            }
        }
    }

    /// Lost, duplicate and phantom fulfilments of a finished run (for `compare`).
    pub fn tally<'a>(&self, durable: impl Fn(NodeId) -> &'a [Record]) -> outbox::Tally {
        let (mut charged, mut effects) = (Vec::new(), Vec::new());
        self.charged(durable(self.payment.charge_node()), &mut charged);
        Tables::effects_at(durable(self.layout.projection_db), &mut effects);
        // One customer's payments race each other: the chain promises no order among them.
        outbox::Tally { out_of_order: 0, ..outbox::tally(&charged, &effects) }
    }
}

/// The order a paid operation places (as the server's hand-off numbers it).
fn order_of(op: OpId) -> Event {
    Event { order: op, aggregate: op / 10_000 }
}

/// A verdict's violations, the first one first.
fn violations(v: Verdict) -> Vec<Violation> {
    match v {
        Verdict::Pass => Vec::new(),
        Verdict::Violation(mut first) => {
            let also = std::mem::take(&mut first.also);
            std::iter::once(first).chain(also).collect()
        }
    }
}

impl Model for ChainModel {
    type Actor = Node;

    fn config(&self) -> &SimConfig {
        &self.config
    }

    fn build(&self, nodes: &mut Vec<Node>) {
        self.payment.build(nodes);
        let l = self.layout;
        debug_assert_eq!(nodes.len(), self.base);
        nodes.push(Node::Postgres(Postgres::new(self.orders_db, self.orders_peers)));
        nodes.push(Node::Broker(Broker::new(self.broker)));
        nodes.push(Node::Postgres(Postgres::new(self.consumer_db, self.consumer_peers)));
        nodes.push(Node::Postgres(Postgres::new(self.consumer_db, self.consumer_peers)));
        nodes.push(Node::Consumer(Consumer::new(self.consumer, l.consumer)));
        for i in 0..l.relays as usize {
            nodes.push(Node::Relay(Relay::new(self.relay, l.first_relay + i)));
        }
    }

    /// Reuses the previous run's actors (and their buffers) when they have the expected roles.
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        let l = self.layout;
        let b = self.base;
        let shaped = nodes.len() == l.end()
            && matches!(nodes[b], Node::Postgres(_))
            && matches!(nodes[l.broker], Node::Broker(_))
            && matches!(nodes[l.projection_db], Node::Postgres(_))
            && matches!(nodes[l.dedup_db], Node::Postgres(_))
            && matches!(nodes[l.consumer], Node::Consumer(_))
            && nodes[l.first_relay..].iter().all(|n| matches!(n, Node::Relay(_)));
        if !shaped || !self.payment.reset(nodes) {
            nodes.clear();
            return self.build(nodes);
        }
        for (i, node) in nodes.iter_mut().enumerate().skip(b) {
            match node {
                Node::Postgres(p) if i == b => p.reset(self.orders_db, self.orders_peers),
                Node::Postgres(p) => p.reset(self.consumer_db, self.consumer_peers),
                Node::Broker(x) => x.reset(self.broker),
                Node::Consumer(c) => c.reset(self.consumer, i),
                Node::Relay(r) => r.reset(self.relay, i, 0),
                other => unreachable!("{other:?} in the chain's tail"),
            }
        }
    }

    /// The payment checkers, then `effectively_once_event` with the charges as what must be
    /// fulfilled. Per-aggregate order is not promised: one customer's payments race.
    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let mut all = violations(self.payment.verdict(run));
        let charged = |out: &mut Vec<Event>| self.charged(run.durable(self.payment.charge_node()), out);
        all.extend(violations(judge_events(run, charged, self.layout.projection_db, self.heal_at_us, true, self.liveness)));
        with_faults(Violation::combine(all), run, &self.config.nodes)
    }
}
