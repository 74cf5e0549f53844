//! A scenario: a design, a workload and a fault profile, as a preset or a TOML file.

use crate::chain::design::ChainDesign;
use crate::knobs::PaymentDesign;
use crate::outbox::design::OutboxDesign;
use crate::overload::design::OverloadDesign;
use serde::{Deserialize, Serialize};
use sim::{Actor, CrashKind, FaultKind, FaultNote, FaultProfile, NodeSpec, RunView};
use std::fmt;

/// A role of a path; fault targets name roles (a role a path does not have is ignored).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Payment: the client app.
    Client,
    /// Payment: an app server instance.
    Server,
    /// The primary database: the key store (payment), the order database (outbox).
    Store,
    /// Payment: the payment provider.
    Provider,
    /// Payment: the background completer (when the design has one).
    Completer,
    /// Outbox: the order service.
    Service,
    /// Outbox: an outbox relay instance.
    Relay,
    /// Outbox: the broker.
    Broker,
    /// Outbox: the consumer.
    Consumer,
    /// Outbox: the consumer's database (and its separate dedup store, if any).
    ConsumerStore,
}

/// Which roles each kind of fault may hit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Targets {
    /// May crash (and restart): volatile state and un-fsynced writes are lost.
    pub crash: Vec<Role>,
    /// May stall (a GC pause).
    pub pause: Vec<Role>,
    /// Links between two lossy roles lose, duplicate and partition messages.
    pub lossy: Vec<Role>,
}

impl Default for Targets {
    fn default() -> Self {
        // Every node that a production outage can take down: app servers, the key store, the
        // payment provider, the completer and the client app itself. The server-store link is a
        // TCP connection within a data centre (broken by a crash, never lossy); the client and
        // provider links cross the internet.
        // On the outbox path: the order service, its database, the relays, the broker, the
        // consumer and the consumer's database all crash and pause; the links to the broker cross
        // the network and lose, duplicate and partition; database connections do not.
        use Role::*;
        Targets {
            crash: vec![Client, Server, Store, Provider, Completer, Service, Relay, Broker, Consumer, ConsumerStore],
            pause: vec![Server, Store, Provider, Completer, Service, Relay, Broker, Consumer, ConsumerStore],
            lossy: vec![Client, Server, Provider, Service, Relay, Broker, Consumer],
        }
    }
}

/// What the clients do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    /// Clients running concurrently (1 to 60).
    pub clients: u32,
    /// Operations (charges) each client makes, one after another.
    pub operations_per_client: u32,
    /// Extra identical copies of each operation's first request, fired at once (a double
    /// click, two app instances): same key, same payload, concurrently. A crashed app that
    /// resumes the operation sends its request once.
    #[serde(default)]
    pub duplicates: u32,
    /// The amount of a client's first operation (later ones add their index).
    #[serde(default = "default_amount")]
    pub amount: u32,
    /// After a payment settles as failed or gave up, the user pays again for the same purchase
    /// (under a new key) with this probability, once.
    #[serde(default)]
    pub repay_probability: f64,
    /// The user's pause between one purchase settling and the next starting: with it, a
    /// client's purchases spread over seconds, as real traffic does (what a key store's loss
    /// window of about a second, or thirty, is measured against).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub think_us: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn default_amount() -> u32 {
    100
}

fn default_settle_bound_us() -> u64 {
    10_000_000
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// The verdict a scenario is expected to get.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Expect {
    Pass,
    /// A violation of this invariant.
    Violation(String),
}

pub const INVARIANTS: [&str; 8] = invariants::ALL;

impl TryFrom<String> for Expect {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        if s == "pass" {
            Ok(Expect::Pass)
        } else if INVARIANTS.contains(&s.as_str()) || s == sim::PANIC {
            Ok(Expect::Violation(s))
        } else {
            Err(format!(
                "expect = {s:?}: use \"pass\", \"panic\" (an actor or checker panicked) or an invariant: {}",
                INVARIANTS.join(", ")
            ))
        }
    }
}

impl From<Expect> for String {
    fn from(e: Expect) -> String {
        e.to_string()
    }
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Pass => f.write_str("pass"),
            Expect::Violation(i) => f.write_str(i),
        }
    }
}

/// The paths a scenario can exercise; each has its own design table, models, invariants and
/// presets.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Path {
    Payment,
    Outbox,
    /// The checkout chain: the payment path whose paid orders go on through the outbox tail.
    Chain,
    /// A client fleet against a service with bounded capacity and an outage.
    Overload,
}

impl Path {
    /// The roles this path's nodes play (what fault targets may name).
    pub fn roles(self) -> &'static [Role] {
        use Role::*;
        match self {
            Path::Payment => &[Client, Server, Store, Provider, Completer],
            Path::Outbox => &[Store, Service, Relay, Broker, Consumer, ConsumerStore],
            Path::Chain => &[Client, Server, Store, Provider, Completer, Relay, Broker, Consumer, ConsumerStore],
            Path::Overload => &[Server, Client],
        }
    }

    /// Where an exhaustive check looks by default. Payment: untimed, the strongest (any delivery
    /// may be postponed past any timer). Outbox: bounded, because its relay and consumer poll
    /// on timers: untimed, every message could be postponed past any number of polls, and the
    /// search does not end even for one order with no fault.
    /// The invariants this path's checkers judge (what `expect` may name, with "panic").
    pub fn invariants(self) -> Vec<&'static str> {
        use invariants::{outbox, overload, payment};
        match self {
            Path::Payment => payment::ALL.to_vec(),
            Path::Outbox => outbox::ALL.to_vec(),
            Path::Chain => [&payment::ALL[..], &outbox::ALL[..]].concat(),
            Path::Overload => [&overload::ALL[..], &[payment::SETTLES][..]].concat(),
        }
    }

    pub fn exhaustive_semantics(self) -> sim::Semantics {
        match self {
            Path::Outbox => sim::Semantics::Bounded,
            Path::Payment | Path::Chain | Path::Overload => sim::Semantics::Untimed,
        }
    }
}

/// A complete, self-contained scenario.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub expect: Expect,
    /// The run stops here (simulated µs) if events remain; must exceed `faults.fault_phase_us`.
    pub time_limit_us: u64,
    /// Liveness bound: every operation settles, and every claimed key is finished, failed or
    /// released, within this long after the later of its start and the heal.
    #[serde(default = "default_settle_bound_us")]
    pub settle_bound_us: u64,
    /// Judge the client's patience: `settles`, and a durable charge whose client gave up. Off
    /// only in the scenarios `check --exhaustive` derives, whose client's attempts are cut by the
    /// search's bound and whose untimed semantics lets every attempt time out: giving up is then
    /// the bound's doing, not the design's. (A 422 or a stored 500 for a charged operation is
    /// judged either way.)
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub liveness: bool,
    /// Draw a fresh fault profile per seed, from zero up to (at least) these rates.
    #[serde(default)]
    pub swarm: bool,
    /// The payment path's clients (required there; the outbox path's orders are
    /// `outbox.orders`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// The payment path's design. Exactly one path table is present in a scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentDesign>,
    /// The outbox path's design.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outbox: Option<OutboxDesign>,
    /// The checkout chain: with `[workload]` and `[payment]`, what carries each paid order on to
    /// fulfilment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainDesign>,
    /// The overload path's design: the client fleet, the service and the bounds it is judged by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overload: Option<OverloadDesign>,
    #[serde(default)]
    pub faults: FaultProfile,
    #[serde(default)]
    pub targets: Targets,
}

impl Scenario {
    /// Parse a scenario file, naming the field at fault.
    pub fn from_toml(text: &str) -> Result<Scenario, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        s.validate()?;
        Ok(s)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a scenario always serializes")
    }

    /// Which path this scenario exercises.
    pub fn path(&self) -> Path {
        if self.overload.is_some() {
            Path::Overload
        } else if self.outbox.is_some() {
            Path::Outbox
        } else if self.chain.is_some() {
            Path::Chain
        } else {
            Path::Payment
        }
    }

    /// Whether a node of this scenario plays `role` and does something: its path has the
    /// role, a payment world's completer runs only if the design has one, and its provider
    /// only if the design charges through it (not `charge = "local_ledger"`). An exhaustive check
    /// (`exhaustive_scenario`) strikes no idle node: its crash would change nothing but the
    /// clock, and multiply the states.
    pub fn plays(&self, role: Role) -> bool {
        self.path().roles().contains(&role) && self.payment.as_ref().is_none_or(|p| crate::payment::plays(&p.server, role))
    }

    /// The payment design (a payment scenario; validation guarantees one of each).
    pub fn payment(&self) -> &PaymentDesign {
        self.payment.as_ref().expect("a payment scenario has a [payment] table")
    }
    pub fn payment_mut(&mut self) -> &mut PaymentDesign {
        self.payment.as_mut().expect("a payment scenario has a [payment] table")
    }
    pub fn workload(&self) -> &Workload {
        self.workload.as_ref().expect("a payment scenario has a [workload] table")
    }
    pub fn workload_mut(&mut self) -> &mut Workload {
        self.workload.as_mut().expect("a payment scenario has a [workload] table")
    }
    pub fn outbox(&self) -> &OutboxDesign {
        self.outbox.as_ref().expect("an outbox scenario has an [outbox] table")
    }
    pub fn outbox_mut(&mut self) -> &mut OutboxDesign {
        self.outbox.as_mut().expect("an outbox scenario has an [outbox] table")
    }
    pub fn overload(&self) -> &OverloadDesign {
        self.overload.as_ref().expect("an overload scenario has an [overload] table")
    }
    pub fn overload_mut(&mut self) -> &mut OverloadDesign {
        self.overload.as_mut().expect("an overload scenario has an [overload] table")
    }
    pub fn chain(&self) -> &ChainDesign {
        self.chain.as_ref().expect("a chain scenario has a [chain] table")
    }
    pub fn chain_mut(&mut self) -> &mut ChainDesign {
        self.chain.as_mut().expect("a chain scenario has a [chain] table")
    }

    /// Refuse impossible settings, naming the field and the fix.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(o) = &self.overload {
            return self.validate_overload(o);
        }
        if self.chain.is_some() && (self.outbox.is_some() || self.payment.is_none()) {
            return Err("[chain] extends the payment path: a chain scenario has [workload], [payment] and [chain], and no [outbox]".into());
        }
        match (&self.payment, &self.outbox) {
            (Some(_), Some(_)) => {
                return Err(
                    "a scenario has exactly one path table: [payment] or [outbox], not both (the whole chain is [payment] with [chain])"
                        .into(),
                );
            }
            (None, None) => return Err("missing the path table: add [payment] (with [workload]), [outbox] or [overload]".into()),
            (None, Some(o)) => {
                if self.workload.is_some() {
                    return Err("[workload] belongs to the payment path; an outbox scenario places outbox.orders: remove [workload]".into());
                }
                o.validate()?;
                return self.validate_common();
            }
            (Some(_), None) => {}
        }
        let Some(w) = &self.workload else {
            return Err("missing [workload]: a payment scenario needs workload.clients and workload.operations_per_client".into());
        };
        if !(1..=60).contains(&w.clients) {
            return Err(format!("workload.clients = {}: use 1 to 60", w.clients));
        }
        if !(1..=999).contains(&w.operations_per_client) {
            return Err(format!("workload.operations_per_client = {}: use 1 to 999", w.operations_per_client));
        }
        if w.duplicates > 16 {
            return Err(format!("workload.duplicates = {}: use 0 to 16", w.duplicates));
        }
        if w.think_us > 60_000_000 {
            return Err(format!("workload.think_us = {}: use 0 to 60000000 (a minute between a user's purchases at most)", w.think_us));
        }
        if !(0.0..=1.0).contains(&w.repay_probability) {
            return Err(format!("workload.repay_probability = {}: use a probability from 0.0 to 1.0", w.repay_probability));
        }
        // The knobs name their section `design.`; in a scenario file it is the `payment` table.
        self.payment().validate().map_err(|e| e.replace("design.", "payment."))?;
        if let Some(c) = &self.chain {
            c.validate()?;
        }
        self.validate_common()
    }

    fn validate_overload(&self, o: &OverloadDesign) -> Result<(), String> {
        if self.payment.is_some() || self.outbox.is_some() || self.chain.is_some() || self.workload.is_some() {
            return Err("a scenario has exactly one path table: [overload] goes alone (its clients are overload.fleet): remove [workload], [payment], [outbox] and [chain]".into());
        }
        o.validate()?;
        if o.fleet.duration_us >= self.time_limit_us {
            return Err(format!(
                "overload.fleet.duration_us = {} is not before time_limit_us = {}: operations would still arrive when the run is cut; make it shorter or raise the limit",
                o.fleet.duration_us, self.time_limit_us
            ));
        }
        if let Some(w) = o.server.outage {
            let end = w.start_us + w.duration_us;
            if o.fleet.duration_us < end + o.bounds.recovery_us {
                return Err(format!(
                    "overload.fleet.duration_us = {} ends before the outage's end plus overload.bounds.recovery_us ({} + {}): recovery is judged on the load that arrives then; make duration_us at least {}",
                    o.fleet.duration_us, end, o.bounds.recovery_us, end + o.bounds.recovery_us
                ));
            }
            if end >= self.time_limit_us {
                return Err(format!(
                    "overload.server.outage ends at {end} µs, after time_limit_us = {}: end it earlier or raise the limit",
                    self.time_limit_us
                ));
            }
        }
        self.validate_common()
    }

    /// The checks every path shares: faults, timing and the expected verdict.
    fn validate_common(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("name = \"\": give the scenario a name (it titles every report and names its seed files)".into());
        }
        self.faults.validate()?;
        // The outbox tail's databases are reached over TCP connections, which never lose one
        // statement or deliver it twice; their models rely on that (an order's INSERT and COMMIT
        // delivered twice would commit it twice). The payment path's store tolerates copies.
        let databases: &[(Role, &str)] = match self.path() {
            Path::Outbox => &[(Role::Store, "store"), (Role::ConsumerStore, "consumer_store")],
            Path::Chain => &[(Role::ConsumerStore, "consumer_store")],
            _ => &[],
        };
        if let Some((_, name)) = databases.iter().find(|(r, _)| self.targets.lossy.contains(r)) {
            return Err(format!(
                "targets.lossy names {name:?}: its links are database connections (TCP never loses one statement or delivers it twice; a broken connection is its client's crash or pause); remove {name:?} from targets.lossy"
            ));
        }
        if let Expect::Violation(name) = &self.expect {
            let judged = self.path().invariants();
            if name != sim::PANIC && !judged.contains(&name.as_str()) {
                return Err(format!(
                    "expect = {name:?}: no run of this scenario can break it; a {} scenario judges {} (or expect \"pass\", or \"panic\")",
                    format!("{:?}", self.path()).to_lowercase(),
                    judged.join(", ")
                ));
            }
        }
        if self.settle_bound_us == 0 {
            return Err("settle_bound_us = 0: every operation would have to be settled at the heal itself; use how long one may take after it (the payment presets: 10000000, 10 s)".into());
        }
        if self.faults.fault_phase_us.saturating_add(self.settle_bound_us) >= self.time_limit_us {
            return Err(format!(
                "settle_bound_us = {} ends after time_limit_us = {}: the run must outlast the heal (faults.fault_phase_us = {}) plus the liveness bound",
                self.settle_bound_us, self.time_limit_us, self.faults.fault_phase_us
            ));
        }
        if self.time_limit_us <= self.faults.fault_phase_us {
            return Err(format!(
                "time_limit_us = {} must be larger than faults.fault_phase_us = {} so the run has a heal phase",
                self.time_limit_us, self.faults.fault_phase_us
            ));
        }
        Ok(())
    }
}

/// A sentence naming the faults of a run (with `nodes`' names), for violation messages.
pub fn fault_summary<A: Actor>(run: &RunView<'_, A>, nodes: &[NodeSpec]) -> String {
    let s = run.stats;
    let mut parts = Vec::new();
    let mut count = |n: u64, one: &str, many: &str| {
        if n > 0 {
            parts.push(format!("{n} {}", if n == 1 { one } else { many }));
        }
    };
    count(s.crashes - s.process_crashes, "crash", "crashes");
    count(s.process_crashes, "process crash", "process crashes");
    count(s.writes_lost, "un-fsynced write lost in a crash", "un-fsynced writes lost in crashes");
    count(s.pauses, "pause", "pauses");
    count(s.partitions, "partition", "partitions");
    count(s.messages_lost, "lost message", "lost messages");
    count(s.messages_duplicated, "duplicated message", "duplicated messages");
    count(s.messages_late, "late message", "late messages");
    count(s.restarts_late, "late restart", "late restarts");
    count(s.messages_dropped_down, "message dropped by a restart", "messages dropped by a restart");
    if parts.is_empty() {
        return " Faults in this run: none (the interleaving alone).".into();
    }
    let named = name_faults(run.fault_log, nodes);
    format!(" Faults in this run: {}.{}", parts.join(", "), if named.is_empty() { String::new() } else { format!(" When: {named}.") })
}

/// The faults of a run, in order, with node names and times: crashes, restarts, pauses and
/// partitions always; lost, duplicated and late messages up to a handful.
fn name_faults(log: &[FaultNote], nodes: &[NodeSpec]) -> String {
    const MESSAGES_SHOWN: usize = 6;
    let name = |n: usize| nodes.get(n).map_or("?", |s| s.name.as_str());
    let (mut parts, mut messages, mut hidden) = (Vec::new(), 0, 0);
    for f in log {
        let at = invariants::ms(f.at_us);
        let node = name(f.node);
        let text = match f.kind {
            // A machine crash is a plain "crash" (the kind every earlier message meant).
            FaultKind::Crash { writes_lost: 0, kind: CrashKind::Machine } => format!("{node} crashed at {at}"),
            FaultKind::Crash { writes_lost, kind: CrashKind::Machine } => {
                format!("{node} crashed at {at} losing {writes_lost} un-fsynced write{}", if writes_lost == 1 { "" } else { "s" })
            }
            FaultKind::Crash { writes_lost: 0, kind: CrashKind::Process } => {
                format!("{node}'s process crashed at {at} (what it wrote to the OS survived)")
            }
            FaultKind::Crash { writes_lost, kind: CrashKind::Process } => {
                format!(
                    "{node}'s process crashed at {at} losing {writes_lost} write{} it had not handed to the OS",
                    if writes_lost == 1 { "" } else { "s" }
                )
            }
            FaultKind::Restart => format!("{node} restarted at {at}"),
            FaultKind::LateRestart => format!("{node}'s restart after that crash is late (any later moment)"),
            FaultKind::Pause { until_us } => format!("{node} paused {at} to {}", invariants::ms(until_us)),
            FaultKind::Partition { dir } => format!("{node} partitioned ({dir:?}) at {at}"),
            FaultKind::Lost { .. } | FaultKind::Duplicated { .. } | FaultKind::Late { .. } if messages == MESSAGES_SHOWN => {
                hidden += 1;
                continue;
            }
            FaultKind::Lost { to, cause } => {
                messages += 1;
                format!("{node} -> {} lost ({cause:?}) at {at}", name(to))
            }
            FaultKind::Duplicated { to } => {
                messages += 1;
                format!("{node} -> {} duplicated at {at}", name(to))
            }
            FaultKind::Late { to } => {
                messages += 1;
                format!("{node} -> {} sent late at {at} (it may arrive at any later moment)", name(to))
            }
        };
        parts.push(text);
    }
    if hidden > 0 {
        parts.push(format!("{hidden} more lost, duplicated or late message{}", if hidden == 1 { "" } else { "s" }));
    }
    parts.join("; ")
}
