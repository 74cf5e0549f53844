//! The outbox path: an order service writing orders to a Postgres-like database, an outbox relay
//! publishing to a partitioned broker, and a consumer applying each `order.created` event to its
//! own projection. The seed's question 4: why is the outbox correct where "write Postgres, then
//! publish to Kafka" is not?
//!
//! Nodes: 0 the order database, 1 the broker, 2 the consumer's database, 3 the separate dedup
//! store (idle unless the design has one), 4 the consumer, 5 the order service, then the relays
//! (none unless the service writes an outbox).

pub mod broker;
pub mod consumer;
pub mod design;
pub mod presets;
pub mod relay;
pub mod service;
pub mod tables;

use crate::knobs::KeyStore;
use crate::payment::postgres::Postgres;
use crate::payment::{Peers, Shared};
use crate::scenario::{Role, Scenario};
use crate::world::{Node, Record};
use broker::Broker;
use consumer::{Consumer, ConsumerSetup};
use design::{Dedup, OrderWrite, OutboxDesign};
use invariants::outbox::{self, OutboxRun, Tally};
use invariants::Event;
use relay::{Relay, RelaySetup};
use service::{Service, ServiceSetup};
use sim::{HistoryView, Model, NodeId, NodeSpec, RunView, SimConfig, Verdict};
use tables::Tables;

/// Where each role of the outbox path sits among the nodes.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct Layout {
    pub order_db: NodeId,
    pub broker: NodeId,
    pub projection_db: NodeId,
    pub dedup_db: NodeId,
    pub consumer: NodeId,
    pub service: NodeId,
    pub first_relay: NodeId,
    pub relays: u32,
}

impl Layout {
    fn new(relays: u32) -> Layout {
        Layout { order_db: 0, broker: 1, projection_db: 2, dedup_db: 3, consumer: 4, service: 5, first_relay: 6, relays }
    }
    /// The checkout chain's tail from node `base` on (`chain/`): its orders database is
    /// `order_db` (the key store, or `base`), and it has no order service (`service` is out of
    /// range).
    pub fn chain(base: NodeId, order_db: NodeId, relays: u32) -> Layout {
        let (broker, projection_db, dedup_db, consumer) = (base + 1, base + 2, base + 3, base + 4);
        Layout { order_db, broker, projection_db, dedup_db, consumer, service: NodeId::MAX, first_relay: base + 5, relays }
    }
    pub fn end(&self) -> NodeId {
        self.first_relay + self.relays as usize
    }
}

/// An outbox scenario ready to run.
pub struct OutboxModel {
    pub design: OutboxDesign,
    config: SimConfig,
    layout: Layout,
    order_db: Shared<KeyStore>,
    consumer_db: Shared<KeyStore>,
    order_peers: Shared<Peers>,
    consumer_peers: Shared<Peers>,
    broker: Shared<design::BrokerDesign>,
    service: Shared<ServiceSetup>,
    relay: Shared<RelaySetup>,
    consumer: Shared<ConsumerSetup>,
    heal_at_us: u64,
    /// `Scenario::liveness`: lost events are judged.
    liveness: bool,
}

impl OutboxModel {
    /// What the outbox checkers read (see `PaymentModel::HISTORY_VIEW` for what this means):
    /// the verdict is a function of the final durable logs alone — the orders committed (the
    /// order database's log, in commit order) and the effects applied (the projection's log, in
    /// apply order). The history gives only the messages' text.
    pub const HISTORY_VIEW: HistoryView = HistoryView::PerNode;

    pub fn new(s: &Scenario, d: &OutboxDesign) -> Self {
        let relays = if d.service.write == OrderWrite::Outbox { d.relay.instances } else { 0 };
        let layout = Layout::new(relays);
        let spec = |name: String, role: Role, active: bool| {
            let t = &s.targets;
            NodeSpec::new(name)
                .crashable(active && t.crash.contains(&role))
                .pausable(active && t.pause.contains(&role))
                .lossy(active && t.lossy.contains(&role))
        };
        let separate = d.consumer.dedup == Dedup::SeparateStore;
        let mut nodes = vec![
            spec("orders-db".into(), Role::Store, true),
            spec("broker".into(), Role::Broker, true),
            spec("consumer-db".into(), Role::ConsumerStore, true),
            spec("dedup-store".into(), Role::ConsumerStore, separate),
            spec("consumer".into(), Role::Consumer, true),
            spec("service".into(), Role::Service, true),
        ];
        nodes.extend((0..relays).map(|i| spec(if relays == 1 { "relay".into() } else { format!("relay{i}") }, Role::Relay, true)));
        let config = SimConfig { nodes, faults: s.faults.clone(), swarm: s.swarm, time_limit_us: s.time_limit_us };
        let poll_until_us = s.faults.fault_phase_us + s.settle_bound_us;
        let b = d.broker;
        let postgres = |synchronous_commit| KeyStore::Postgres {
            synchronous_commit,
            unique_constraint: true,
            wal_writer_delay_us: d.store.wal_writer_delay_us,
            key_retention_us: 0,
            session_timeout_us: d.store.session_timeout_us,
        };
        OutboxModel {
            config,
            layout,
            order_db: Shared(postgres(d.store.synchronous_commit)),
            consumer_db: Shared(postgres(true)),
            order_peers: Shared(Peers { instances: 0, notify: (layout.service, layout.end()), also: (0, 0) }),
            consumer_peers: Shared(Peers::consumer(layout)),
            broker: Shared(b),
            service: Shared(ServiceSetup {
                design: d.service,
                orders: d.orders,
                partitions: b.partitions,
                producer_timeout_us: b.producer_timeout_us,
                layout,
            }),
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
            design: d.clone(),
        }
    }

    /// Lost, duplicate, phantom and out-of-order effects of a finished run, and the orders
    /// placed that did not commit (for `compare`), from each node's durable log.
    pub fn tally<'a>(&self, durable: impl Fn(NodeId) -> &'a [Record]) -> Tally {
        let (mut committed, mut effects) = (Vec::new(), Vec::new());
        Tables::orders_at(durable(self.layout.order_db), &mut committed);
        Tables::effects_at(durable(self.layout.projection_db), &mut effects);
        let placed = durable(self.layout.service).iter().filter(|r| matches!(r, Record::Placed { .. })).count() as u64;
        // An order commits once at most: each has its own transaction, the service never retries
        // a COMMIT, and a copy of its INSERT inserts nothing more (`Tables::insert_order`).
        assert!(committed.len() as u64 <= placed, "{} orders committed, {placed} placed", committed.len());
        Tally { not_committed: Some(placed - committed.len() as u64), ..outbox::tally(&committed, &effects) }
    }
}

impl Model for OutboxModel {
    type Actor = Node;

    fn config(&self) -> &SimConfig {
        &self.config
    }

    fn build(&self, nodes: &mut Vec<Node>) {
        let l = self.layout;
        nodes.push(Node::Postgres(Postgres::new(self.order_db, self.order_peers)));
        nodes.push(Node::Broker(Broker::new(self.broker)));
        nodes.push(Node::Postgres(Postgres::new(self.consumer_db, self.consumer_peers)));
        nodes.push(Node::Postgres(Postgres::new(self.consumer_db, self.consumer_peers)));
        nodes.push(Node::Consumer(Consumer::new(self.consumer, l.consumer)));
        nodes.push(Node::Service(Service::new(self.service, l.service)));
        for i in 0..l.relays as usize {
            nodes.push(Node::Relay(Relay::new(self.relay, l.first_relay + i)));
        }
    }

    /// Reuses the previous run's actors (and their buffers) when they have the expected roles.
    fn rebuild(&self, nodes: &mut Vec<Node>) {
        let l = self.layout;
        let shaped = nodes.len() == l.end()
            && matches!(nodes[l.order_db], Node::Postgres(_))
            && matches!(nodes[l.broker], Node::Broker(_))
            && matches!(nodes[l.consumer], Node::Consumer(_))
            && matches!(nodes[l.service], Node::Service(_))
            && nodes[l.first_relay..].iter().all(|n| matches!(n, Node::Relay(_)));
        if !shaped {
            nodes.clear();
            return self.build(nodes);
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            match node {
                Node::Postgres(p) if i == l.order_db => p.reset(self.order_db, self.order_peers),
                Node::Postgres(p) => p.reset(self.consumer_db, self.consumer_peers),
                Node::Broker(b) => b.reset(self.broker),
                Node::Consumer(c) => c.reset(self.consumer, i),
                Node::Service(s) => s.reset(self.service, i),
                Node::Relay(r) => r.reset(self.relay, i, 0),
                other => unreachable!("{other:?} on the outbox path"),
            }
        }
    }

    fn check(&self, run: &RunView<'_, Node>) -> Verdict {
        let committed = |out: &mut Vec<Event>| Tables::orders_at(run.durable(self.layout.order_db), out);
        let verdict = judge_events(run, committed, self.layout.projection_db, self.heal_at_us, false, self.liveness);
        crate::payment::with_faults(verdict, run, &self.config.nodes)
    }
}

/// The event checkers on a finished run: `committed` fills what must be applied exactly once
/// (in commit order); the effects are those in node `projection`'s durable log. `charged`: what
/// must be applied is the charged operations (the checkout chain), and per-aggregate order is
/// not promised there. `liveness`: lost events are judged (`OutboxRun::liveness`).
pub fn judge_events(
    run: &RunView<'_, Node>,
    committed: impl FnOnce(&mut Vec<Event>),
    projection: NodeId,
    heal_at_us: u64,
    charged: bool,
    liveness: bool,
) -> Verdict {
    // Per-thread buffers: judging a run allocates nothing here once warm.
    thread_local!(static BUF: std::cell::RefCell<(Vec<Event>, Vec<Event>)> =
        const { std::cell::RefCell::new((Vec::new(), Vec::new())) });
    BUF.with_borrow_mut(|(must, effects)| {
        must.clear();
        effects.clear();
        committed(must);
        Tables::effects_at(run.durable(projection), effects);
        outbox::check(&OutboxRun {
            history: run.history,
            committed: must,
            effects,
            end: run.end,
            end_us: run.stats.sim_time_us,
            heal_at_us,
            ordered: !charged,
            charged,
            liveness,
        })
    })
}
