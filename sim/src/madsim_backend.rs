//! The same actors on madsim 0.2: a second, independent deterministic scheduler.
//!
//! Every actor becomes one madsim node (with its own IP) whose tasks call the actor's handlers;
//! the effects a handler writes into its [`Ctx`] are carried out with madsim's primitives:
//!
//! - `Send`: a `madsim::net::Endpoint` datagram (`send_to_raw` / `recv_from_raw`) to the
//!   receiver's endpoint. The delay is madsim's: its network config's `send_latency`.
//! - `SetTimer`: a task on the actor's node sleeping on `madsim::time`; cancelled timers are
//!   discarded when they fire, as natively.
//! - crash / restart: `Handle::kill` drops every task of the node (its pending timers, its
//!   receive loop, its socket: messages of the old incarnation are gone, a connection reset);
//!   the write-ahead log is cut to its fsynced prefix and `on_crash(durable)` rebuilds the actor
//!   from it; `Handle::restart` runs the node's init task again, which binds a fresh endpoint
//!   and calls `on_start`. Durable state survives, volatile state does not.
//! - pause: `Handle::pause` / `Handle::resume`: the node's tasks are parked, so it receives and
//!   fires nothing until it resumes, then sees everything that queued up meanwhile.
//! - loss and duplication: drawn in the adapter (madsim's `packet_loss_rate` is one number for
//!   the whole network, while a scenario loses messages only on links between two lossy nodes,
//!   and only in the fault phase); a duplicate is a second datagram with its own madsim delay.
//! - partitions: in the adapter, checked when a message arrives (as natively).
//!
//! Randomness: the run's seed is madsim's seed. madsim's RNG orders ready tasks and draws every
//! network delay; the adapter's and the actors' decisions (`ctx.choose`, faults, loss) come from
//! a [`Choices`] seeded with `madsim::rand::random()`, so all of them derive from madsim's seed.
//!
//! Two things madsim 0.2 does on its own, which make its timing differ slightly from the native
//! engine's (verdicts must not depend on either):
//! - every `madsim::time::sleep` lasts at least 1 ms (tokio's granularity), including the tiny
//!   random pause `Endpoint` takes before a send and after a receive: a datagram costs
//!   [`ENDPOINT_OVERHEAD_US`] on top of the configured latency, so the adapter configures the
//!   latency that much lower (end to end, delays stay within the scenario's range, from 2 ms up);
//!   timers shorter than 1 ms fire after 1 ms, and binding a restarted node's endpoint takes 1 ms.
//! - madsim resolves a datagram's destination socket when it is sent: a message sent to a node
//!   that is down is lost even if the node is back before it would arrive (natively it is
//!   delivered to the new incarnation).
//!
//! Memory: madsim keeps tasks that are still pending when a runtime is dropped (a task's waker
//! holds its scheduler queue, which holds the task). Every run therefore ends by killing every
//! node, which drops all their tasks before the runtime goes; a test holds 100,000 runs to a
//! flat heap.

use crate::actor::{Actor, Cmd, Ctx, NodeId, TimerId};
use crate::choices::{ChoiceKind, Choices};
use crate::engine::Outcome;
use crate::faults::{FaultProfile, SimConfig};
use crate::history::{history_hash, Entry, RunEnd, Stats};
use crate::model::{Log, Model, RunView};
use crate::runner::ExploreReport;
use crate::trace::{CrashKind, CutDir, LossCause, TraceEvent, TraceKind};
use madsim::net::Endpoint;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use madsim::time::{self, Duration, Instant, TimeHandle};
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Poll, Waker};

/// What one madsim run returns: the same shape as a native [`Outcome`].
pub type MadsimOutcome = Outcome;

/// What madsim 0.2's `Endpoint` adds to every datagram: it sleeps a random 0-5 µs before sending
/// and after receiving, and every madsim sleep lasts at least 1 ms.
pub const ENDPOINT_OVERHEAD_US: u64 = 2_000;

/// Receive loops per node: `recv_from_raw` holds each message 1 ms (see above), so one loop
/// would let a node take in at most one message per millisecond.
const RECEIVERS: usize = 4;

/// The endpoint tag every actor message uses.
const TAG: u64 = 0x1de5_0001;

/// An actor the madsim backend can run: madsim moves messages between tasks as
/// `Box<dyn Any + Send + Sync>`, and its node init closures must be `Send + Sync`.
pub trait MadsimActor:
    Actor<Msg: Send + Sync + 'static, Timer: Send + 'static, Obs: Send + 'static, Record: Send + 'static> + Send + 'static
{
}
impl<A> MadsimActor for A where
    A: Actor<Msg: Send + Sync + 'static, Timer: Send + 'static, Obs: Send + 'static, Record: Send + 'static> + Send + 'static
{
}

/// Everything still to happen: in-flight datagrams, pending timers, scheduled faults, nodes not
/// yet started. When it drops to zero the run is quiescent (nothing left to run), as natively.
struct Pending {
    count: AtomicUsize,
    /// The supervisor, waiting for `count` to reach zero.
    waker: Mutex<Option<Waker>>,
    /// Datagrams dropped because their receiver was down or had restarted since.
    dropped_down: AtomicU64,
}

/// One unit of pending work; dropping it (however: done, killed, lost) ends it.
struct Busy(Arc<Pending>);

impl Busy {
    fn new(p: &Arc<Pending>) -> Busy {
        p.count.fetch_add(1, Ordering::Relaxed);
        Busy(p.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::Relaxed) == 1 {
            if let Some(w) = self.0.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                w.wake();
            }
        }
    }
}

/// A datagram's payload. Its `msg` is taken when it reaches a live receiver; an envelope dropped
/// with its message inside (a dead socket's mailbox, a node that was down) counts as dropped.
struct Envelope<M> {
    from: NodeId,
    msg: Option<M>,
    _busy: Busy,
}

impl<M> Drop for Envelope<M> {
    fn drop(&mut self) {
        if self.msg.is_some() {
            self._busy.0.dropped_down.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[derive(Default)]
struct NodeRt {
    down: bool,
    paused_until_us: u64,
    /// Bumped at every restart.
    incarnation: u32,
    /// The live incarnation's endpoint (None while down).
    ep: Option<Endpoint>,
    /// Held from a (re)start until `on_start` has run.
    start: Option<Busy>,
    mid: Option<madsim::task::NodeId>,
}

/// A fault drawn up front (as natively), times relative to the run's start.
#[derive(Clone, Copy)]
enum Fault {
    Crash { node: NodeId, at_us: u64, kind: CrashKind },
    Pause { node: NodeId, at_us: u64, until_us: u64 },
    Cut { node: NodeId, dir: CutDir, at_us: u64, len_us: u64 },
}

/// The run's state, shared by every task (madsim runs them all on one thread; the mutex is
/// never contended).
struct World<A: Actor> {
    actors: Vec<A>,
    logs: Vec<Log<A::Record>>,
    history: Vec<Entry<A::Obs>>,
    stats: Stats,
    choices: Choices,
    next_timer: u64,
    out: Vec<Cmd<A>>,
    cancelled: Vec<TimerId>,
    rt: Vec<NodeRt>,
    addrs: Vec<SocketAddr>,
    cuts: Vec<(NodeId, CutDir)>,
    lossy: u64,
    faults: FaultProfile,
    trace: Option<Vec<TraceEvent>>,
    /// The node that carries datagrams and runs fault injection; never crashes.
    wire: Option<NodeHandle>,
    /// Simulated time 0 of the run: when every node has bound its endpoint.
    t0: Option<Instant>,
    bound: usize,
    gate: Vec<Waker>,
}

struct Shared<A: Actor> {
    world: Mutex<World<A>>,
    pending: Arc<Pending>,
}

type SharedRef<A> = Arc<Shared<A>>;

impl<A: Actor> Shared<A> {
    fn lock(&self) -> MutexGuard<'_, World<A>> {
        // A panicking handler aborts the run anyway; keep the state readable for the report.
        self.world.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn node_addr(node: NodeId) -> SocketAddr {
    let ip = Ipv4Addr::new(10, 0, (node >> 8) as u8, (node & 0xff) as u8 + 1);
    SocketAddr::new(IpAddr::V4(ip), 1)
}

fn elapsed_us(t0: Option<Instant>) -> u64 {
    match t0 {
        Some(t0) => TimeHandle::current().now_instant().saturating_duration_since(t0).as_micros() as u64,
        None => 0,
    }
}

async fn sleep_to(t0: Instant, at_us: u64) {
    time::sleep_until(t0 + Duration::from_micros(at_us)).await
}

impl<A: MadsimActor> World<A> {
    fn now_us(&self) -> u64 {
        elapsed_us(self.t0)
    }

    #[inline]
    fn note(&mut self, node: NodeId, what: impl FnOnce() -> TraceKind) {
        if self.trace.is_some() {
            let at_us = self.now_us();
            if let Some(t) = &mut self.trace {
                t.push(TraceEvent { at_us, node, kind: what() });
            }
        }
    }

    /// Run one handler of `node`, then carry out its effects, in order.
    fn handle(&mut self, shared: &SharedRef<A>, node: NodeId, f: impl FnOnce(&mut A, &mut Ctx<'_, A>)) {
        let now_us = self.now_us();
        let mut out = std::mem::take(&mut self.out);
        {
            let mut ctx = Ctx::new(now_us, node, &mut out, &mut self.choices, &mut self.next_timer);
            f(&mut self.actors[node], &mut ctx);
        }
        for cmd in out.drain(..) {
            self.apply(shared, node, now_us, cmd);
        }
        self.out = out;
    }

    fn apply(&mut self, shared: &SharedRef<A>, node: NodeId, now_us: u64, cmd: Cmd<A>) {
        match cmd {
            Cmd::Send { to, msg } => self.send(shared, node, to, now_us, msg),
            Cmd::SetTimer { id, after_us, timer } => {
                let busy = Busy::new(&shared.pending);
                let shared = shared.clone();
                let t0 = self.t0.expect("handlers run after the start");
                // A task of the actor's node: killed with it, parked while it is paused.
                madsim::task::spawn_local(async move {
                    let _busy = busy;
                    sleep_to(t0, now_us + after_us).await;
                    fire(&shared, node, id, timer);
                });
            }
            Cmd::CancelTimer(id) => self.cancelled.push(id),
            Cmd::Observe(obs) => {
                let index = self.history.len();
                self.note(node, || TraceKind::Observe { obs: format!("{obs:?}"), index });
                self.history.push(Entry { at_us: now_us, node, obs });
            }
            Cmd::Write(rec) => {
                self.stats.writes += 1;
                self.note(node, || TraceKind::Write { record: format!("{rec:?}") });
                self.logs[node].records.push(rec);
            }
            Cmd::WriteOs(rec) => {
                self.stats.writes += 1;
                self.note(node, || TraceKind::Write { record: format!("{rec:?}") });
                self.logs[node].write_os(rec);
            }
            Cmd::Fsync => {
                self.stats.fsyncs += 1;
                let durable_records = self.logs[node].fsync();
                self.note(node, || TraceKind::Fsync { durable_records });
            }
        }
    }

    /// Loss and duplication on faulty links in the fault phase (drawn in the same order as the
    /// native engine), then one datagram per copy.
    fn send(&mut self, shared: &SharedRef<A>, from: NodeId, to: NodeId, now_us: u64, msg: A::Msg) {
        assert!(to < self.actors.len(), "node {from} sent to node {to}, which does not exist");
        self.stats.messages_sent += 1;
        let faulty = self.lossy >> from & 1 == 1 && self.lossy >> to & 1 == 1 && now_us < self.faults.fault_phase_us;
        if faulty && self.choices.flip(ChoiceKind::Loss, self.faults.loss_probability) {
            self.stats.messages_lost += 1;
            self.note(from, || TraceKind::Lose { to, msg: format!("{msg:?}"), cause: LossCause::Network });
            return;
        }
        let duplicated = faulty && self.choices.flip(ChoiceKind::Duplicate, self.faults.duplicate_probability);
        self.note(from, || TraceKind::Send { to, msg: format!("{msg:?}"), duplicated });
        if duplicated {
            self.stats.messages_duplicated += 1;
            self.datagram(shared, from, to, msg.clone());
        }
        self.datagram(shared, from, to, msg);
    }

    fn datagram(&mut self, shared: &SharedRef<A>, from: NodeId, to: NodeId, msg: A::Msg) {
        let ep = self.rt[from].ep.clone().expect("a node runs handlers only while its endpoint is bound");
        let env = Box::new(Envelope { from, msg: Some(msg), _busy: Busy::new(&shared.pending) });
        let dst = self.addrs[to];
        // Sent from the wire node, so a crash of the sender right after its handler returned
        // does not take back what the handler sent (as natively: effects are atomic).
        self.wire.as_ref().expect("wire node is up").spawn(async move {
            // Only fails if the destination address does not resolve; the envelope then counts
            // as dropped.
            let _ = ep.send_to_raw(dst, TAG, env).await;
        });
    }

    fn cut(&self, from: NodeId, to: NodeId) -> bool {
        self.cuts.iter().any(|&(n, d)| (n == to && d != CutDir::Outbound) || (n == from && d != CutDir::Inbound))
    }

    /// Draw this run's crashes, pauses and partitions, exactly as the native engine does.
    fn draw_faults(&mut self, cfg: &SimConfig) -> Vec<Fault> {
        let f = self.faults.clone();
        let phase = f.fault_phase_us as u32;
        let mut plan = Vec::new();
        for (node, spec) in cfg.nodes.iter().enumerate() {
            for _ in 0..if spec.crashable { f.crashes_per_node_max } else { 0 } {
                let kind = if self.choices.flip(ChoiceKind::Crash, f.crash_probability) {
                    Some(CrashKind::Machine)
                } else {
                    self.choices.flip(ChoiceKind::Crash, f.process_crash_probability).then_some(CrashKind::Process)
                };
                if let Some(kind) = kind {
                    let at_us = self.choices.pick(ChoiceKind::FaultShape, phase) as u64;
                    plan.push(Fault::Crash { node, at_us, kind });
                }
            }
            for _ in 0..if spec.pausable { f.pauses_per_node_max } else { 0 } {
                if self.choices.flip(ChoiceKind::Pause, f.pause_probability) {
                    let at_us = self.choices.pick(ChoiceKind::FaultShape, phase) as u64;
                    let len = f.pause_us_min + self.span(f.pause_us_max - f.pause_us_min);
                    plan.push(Fault::Pause { node, at_us, until_us: at_us + len });
                }
            }
        }
        let lossy_count = self.lossy.count_ones();
        for _ in 0..if lossy_count == 0 { 0 } else { f.partitions_max } {
            if self.choices.flip(ChoiceKind::Partition, f.partition_probability) {
                let k = self.choices.pick(ChoiceKind::FaultShape, lossy_count) as usize;
                let node = (0..64).filter(|i| self.lossy >> i & 1 == 1).nth(k).expect("k < number of lossy nodes");
                let dir = [CutDir::Both, CutDir::Inbound, CutDir::Outbound][self.choices.pick(ChoiceKind::FaultShape, 3) as usize];
                let at_us = self.choices.pick(ChoiceKind::FaultShape, phase) as u64;
                let len_us = 1 + self.span(f.partition_us_max);
                plan.push(Fault::Cut { node, dir, at_us, len_us });
            }
        }
        plan
    }

    fn span(&mut self, width: u64) -> u64 {
        self.choices.pick(ChoiceKind::FaultShape, width as u32 + 1) as u64
    }
}

/// A timer of `node` is due (its task ran, so the node is up and not paused).
fn fire<A: MadsimActor>(shared: &SharedRef<A>, node: NodeId, id: TimerId, timer: A::Timer) {
    let mut w = shared.lock();
    if let Some(i) = w.cancelled.iter().position(|&c| c == id) {
        w.cancelled.swap_remove(i);
        return;
    }
    w.stats.events += 1;
    w.note(node, || TraceKind::Timer { timer: format!("{timer:?}") });
    w.handle(shared, node, |a, ctx| a.on_timer(ctx, timer));
}

/// A datagram reached `node`'s live endpoint.
fn deliver<A: MadsimActor>(shared: &SharedRef<A>, node: NodeId, env: &mut Envelope<A::Msg>) {
    let Some(msg) = env.msg.take() else { return };
    let from = env.from;
    let mut w = shared.lock();
    if w.cut(from, node) {
        w.stats.messages_lost += 1;
        w.note(node, || TraceKind::Lose { to: node, msg: format!("{msg:?}"), cause: LossCause::Partition });
        return;
    }
    w.stats.events += 1;
    w.stats.messages_delivered += 1;
    w.note(node, || TraceKind::Deliver { from, msg: format!("{msg:?}") });
    w.handle(shared, node, |a, ctx| a.on_message(ctx, from, msg));
}

/// The init task of an actor's node, run at creation and again at every restart.
async fn node_main<A: MadsimActor>(shared: SharedRef<A>, node: NodeId) {
    let addr = shared.lock().addrs[node];
    let ep = Endpoint::bind(addr).await.expect("each node binds its own address");
    let waiting = {
        let mut w = shared.lock();
        w.rt[node].ep = Some(ep.clone());
        w.bound += 1;
        if w.t0.is_none() && w.bound == w.actors.len() {
            // Everyone can be reached: the run starts now.
            w.t0 = Some(TimeHandle::current().now_instant());
            for waker in std::mem::take(&mut w.gate) {
                waker.wake();
            }
        }
        w.t0.is_none()
    };
    if waiting {
        let gate = shared.clone();
        poll_fn(move |cx| {
            let mut w = gate.lock();
            if w.t0.is_some() {
                return Poll::Ready(());
            }
            w.gate.push(cx.waker().clone());
            Poll::Pending
        })
        .await;
    }
    let started = {
        let mut w = shared.lock();
        if w.rt[node].incarnation > 0 {
            w.note(node, || TraceKind::Restart);
        }
        w.handle(&shared, node, |a, ctx| a.on_start(ctx));
        w.rt[node].start.take()
    };
    drop(started);
    for _ in 1..RECEIVERS {
        madsim::task::spawn_local(receive_loop(shared.clone(), node, ep.clone()));
    }
    receive_loop(shared, node, ep).await
}

async fn receive_loop<A: MadsimActor>(shared: SharedRef<A>, node: NodeId, ep: Endpoint) {
    while let Ok((payload, _)) = ep.recv_from_raw(TAG).await {
        let Ok(mut env) = payload.downcast::<Envelope<A::Msg>>() else { continue };
        deliver(&shared, node, &mut env);
        // The envelope's pending unit ends only now, after the handler's own sends and timers
        // were counted: the run cannot look quiescent in between.
        drop(env);
    }
}

/// Carry out one drawn fault on the wire node.
async fn inject<A: MadsimActor>(shared: SharedRef<A>, fault: Fault, t0: Instant, handle: Handle, _busy: Busy) {
    match fault {
        Fault::Crash { node, at_us, kind } => {
            sleep_to(t0, at_us).await;
            let (ep, mid, restart_after_us) = {
                let mut w = shared.lock();
                if w.rt[node].down {
                    return;
                }
                w.stats.crashes += 1;
                w.stats.process_crashes += (kind == CrashKind::Process) as u64;
                w.stats.events += 1;
                let rt = &mut w.rt[node];
                rt.down = true;
                rt.paused_until_us = 0;
                let ep = rt.ep.take();
                let mid = rt.mid.expect("node created");
                let lost = w.logs[node].crash(kind);
                w.stats.writes_lost += lost;
                w.note(node, || TraceKind::Crash { writes_lost: lost, kind });
                let World { actors, logs, .. } = &mut *w;
                actors[node].on_crash(&logs[node].records);
                let (lo, hi) = (w.faults.restart_delay_us_min, w.faults.restart_delay_us_max);
                let after = lo + w.span(hi - lo);
                (ep, mid, after)
            };
            // Every task of the node goes (receive loops, timers); its socket closes, so what
            // is in flight to it is lost: a connection reset.
            handle.kill(mid);
            drop(ep);
            time::sleep(Duration::from_micros(restart_after_us)).await;
            {
                let mut w = shared.lock();
                let rt = &mut w.rt[node];
                rt.down = false;
                rt.incarnation += 1;
                rt.start = Some(Busy::new(&shared.pending));
            }
            handle.restart(mid);
        }
        Fault::Pause { node, at_us, until_us } => {
            sleep_to(t0, at_us).await;
            let mid = {
                let mut w = shared.lock();
                if w.rt[node].down {
                    return;
                }
                w.stats.pauses += 1;
                w.stats.events += 1;
                let rt = &mut w.rt[node];
                rt.paused_until_us = rt.paused_until_us.max(until_us);
                w.note(node, || TraceKind::Pause { until_us });
                w.rt[node].mid.expect("node created")
            };
            handle.pause(mid);
            sleep_to(t0, until_us).await;
            let resume = {
                let mut w = shared.lock();
                w.stats.events += 1;
                w.note(node, || TraceKind::Resume);
                // A crash since (the restarted node runs unpaused) or a longer pause since.
                let now_us = w.now_us();
                !w.rt[node].down && w.rt[node].paused_until_us <= now_us
            };
            if resume {
                handle.resume(mid);
            }
        }
        Fault::Cut { node, dir, at_us, len_us } => {
            sleep_to(t0, at_us).await;
            {
                let mut w = shared.lock();
                w.stats.partitions += 1;
                w.stats.events += 1;
                w.cuts.push((node, dir));
                w.note(node, || TraceKind::PartitionStart { dir });
            }
            sleep_to(t0, at_us + len_us).await;
            let mut w = shared.lock();
            w.stats.events += 1;
            if let Some(i) = w.cuts.iter().position(|&c| c == (node, dir)) {
                w.cuts.swap_remove(i);
            }
            w.note(node, || TraceKind::PartitionEnd { dir });
        }
    }
}

/// The supervisor: builds the nodes, injects the faults, waits for quiescence or the time limit,
/// then kills every node so that no task outlives the runtime.
async fn supervise<A: MadsimActor>(shared: SharedRef<A>, cfg: SimConfig) -> RunEnd {
    let handle = Handle::current();
    let plan = {
        let mut w = shared.lock();
        w.choices = Choices::seeded(madsim::rand::random());
        w.faults = if cfg.swarm { cfg.faults.swarm(&mut w.choices) } else { cfg.faults.clone() };
        w.draw_faults(&cfg)
    };
    let wire = handle.create_node().name("idemsim-wire").build();
    shared.lock().wire = Some(wire.clone());
    let mut mids = Vec::with_capacity(cfg.nodes.len());
    for (node, spec) in cfg.nodes.iter().enumerate() {
        shared.lock().rt[node].start = Some(Busy::new(&shared.pending));
        let s = shared.clone();
        let mid =
            handle.create_node().name(spec.name.clone()).ip(node_addr(node).ip()).init(move || node_main(s.clone(), node)).build().id();
        shared.lock().rt[node].mid = Some(mid);
        mids.push(mid);
    }
    // Time 0 is when every node has bound its endpoint (madsim's bind takes 1 ms).
    let gate = shared.clone();
    poll_fn(move |cx| {
        let mut w = gate.lock();
        if w.t0.is_some() {
            return Poll::Ready(());
        }
        w.gate.push(cx.waker().clone());
        Poll::Pending
    })
    .await;
    let t0 = shared.lock().t0.expect("gate open");
    for fault in plan {
        let busy = Busy::new(&shared.pending);
        wire.spawn(inject(shared.clone(), fault, t0, handle.clone(), busy));
    }
    let pending = shared.pending.clone();
    let quiet = poll_fn(move |cx| {
        *pending.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if pending.count.load(Ordering::Relaxed) == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    });
    let end = match time::timeout(Duration::from_micros(cfg.time_limit_us), quiet).await {
        Ok(()) => RunEnd::Quiescent,
        Err(_) => RunEnd::TimeLimit,
    };
    {
        let mut w = shared.lock();
        w.stats.sim_time_us = if end == RunEnd::TimeLimit { cfg.time_limit_us } else { w.now_us() };
        w.stats.messages_dropped_down = shared.pending.dropped_down.load(Ordering::Relaxed);
    }
    for mid in mids {
        handle.kill(mid);
    }
    handle.kill(wire.id());
    end
}

/// A madsim run with everything a person may want to read.
pub struct MadsimRun<A: Actor> {
    pub outcome: MadsimOutcome,
    pub history: Vec<Entry<A::Obs>>,
    /// The timeline (empty unless asked for).
    pub trace: Vec<TraceEvent>,
    /// The actors as the run left them.
    pub nodes: Vec<A>,
    /// The fault profile the run used (drawn per seed in swarm mode).
    pub faults: FaultProfile,
}

/// Run `model` once on madsim with madsim seed `seed`, and judge it.
pub fn run_madsim<M: Model>(model: &M, seed: u64) -> MadsimOutcome
where
    M::Actor: MadsimActor,
{
    run_madsim_full(model, seed, false).outcome
}

/// Like [`run_madsim`], and keep the history, the final actors and (if `trace`) the timeline.
pub fn run_madsim_full<M: Model>(model: &M, seed: u64, trace: bool) -> MadsimRun<M::Actor>
where
    M::Actor: MadsimActor,
{
    let cfg = model.config().clone();
    let n = cfg.nodes.len();
    let mut actors = Vec::with_capacity(n);
    model.build(&mut actors);
    assert_eq!(actors.len(), n, "Model::build must push one actor per configured node");
    let pending = Arc::new(Pending { count: AtomicUsize::new(0), waker: Mutex::new(None), dropped_down: AtomicU64::new(0) });
    let world = World {
        actors,
        logs: (0..n).map(|_| Log::default()).collect(),
        history: Vec::new(),
        stats: Stats::default(),
        choices: Choices::seeded(0),
        next_timer: 0,
        out: Vec::new(),
        cancelled: Vec::new(),
        rt: (0..n).map(|_| NodeRt::default()).collect(),
        addrs: (0..n).map(node_addr).collect(),
        cuts: Vec::new(),
        lossy: cfg.nodes.iter().enumerate().filter(|(_, s)| s.lossy).fold(0, |m, (i, _)| m | 1 << i),
        faults: cfg.faults.clone(),
        trace: trace.then(Vec::new),
        wire: None,
        t0: None,
        bound: 0,
        gate: Vec::new(),
    };
    let shared = Arc::new(Shared { world: Mutex::new(world), pending });

    let mut config = madsim::Config::default();
    let (lo, hi) = (cfg.faults.delay_us_min, cfg.faults.delay_us_max);
    let lo = lo.saturating_sub(ENDPOINT_OVERHEAD_US);
    let hi = hi.saturating_sub(ENDPOINT_OVERHEAD_US).max(lo);
    config.net.packet_loss_rate = 0.0;
    config.net.send_latency = Duration::from_micros(lo)..Duration::from_micros(hi + 1);
    let rt = Runtime::with_seed_and_config(seed, config);
    let end = rt.block_on(supervise(shared.clone(), cfg));
    drop(rt);

    let mut w = shared.lock();
    w.stats.choices += w.choices.count() as u64;
    w.wire = None;
    for r in &mut w.rt {
        r.ep = None;
        r.start = None;
    }
    let view = RunView { history: &w.history, nodes: &w.actors, logs: &w.logs, end, stats: &w.stats, faults: &w.faults, fault_log: &[] };
    let verdict = model.check(&view);
    let outcome = Outcome { verdict, end, stats: w.stats.clone(), history_hash: history_hash(&w.history) };
    MadsimRun {
        outcome,
        history: std::mem::take(&mut w.history),
        trace: w.trace.take().unwrap_or_default(),
        nodes: std::mem::take(&mut w.actors),
        faults: w.faults.clone(),
    }
}

/// [`crate::explore`] on madsim: every seed of `seeds` on `threads` threads (one madsim runtime
/// per run), with the same report.
pub fn explore_madsim<M: Model>(model: &M, seeds: Range<u64>, threads: usize, progress: Option<&AtomicU64>) -> ExploreReport
where
    M::Actor: MadsimActor,
{
    crate::runner::par_seeds(
        seeds,
        threads,
        progress,
        || (),
        |_, report: &mut ExploreReport, seed| report.record(seed, &run_madsim(model, seed)),
        ExploreReport::merge,
    )
}

#[cfg(test)]
mod tests;
