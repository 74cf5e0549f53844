//! The same actors on madsim 0.2: a second, independent deterministic scheduler.
//!
//! Every actor becomes one madsim node (with its own IP) whose tasks call the actor's handlers;
//! the effects a handler writes into its [`Ctx`] are carried out with madsim's primitives:
//!
//! - `Send`: a `madsim::net::Endpoint` datagram (`send_to_raw` / `recv_from_raw`) to the
//!   receiver's endpoint, after a delay drawn from the run's `Choices` as natively (the wire
//!   task sleeps it off; madsim's own latency is set to zero).
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
//!   and only in the fault phase); a duplicate is a second datagram with its own delay.
//! - partitions, and a receiver that restarted since the message was sent: checked by the world
//!   when a message arrives (as natively).
//!
//! What the run is about — the fault plan, a link's fate, local effects, crash bookkeeping, the
//! verdict — is [`crate::world`]'s, shared with the native engine; this file only moves it
//! through madsim's time, tasks and sockets.
//!
//! Randomness: the run's seed seeds both madsim and the run's [`Choices`]. Every decision the
//! scenario makes — the fault profile (swarm), the fault plan, loss and duplication, restart
//! delays, the actors' own `ctx.choose` — is a draw from that `Choices`, in the order the run asks
//! for it; the profile and the plan are drawn first, before any task runs, so one seed gives the
//! native engine's plan exactly. Message delays are `Choices` draws too. madsim's own RNG, which
//! no adapter can reach, orders the tasks that are ready at the same instant (and draws the tiny
//! random pauses of `Endpoint`, which last 1 ms whatever is drawn, and a latency we pin to 0).
//! That order is not a choice the adapter sees, so it cannot be recorded, replayed from a tape
//! or shrunk: a madsim run replays by seed only. After the plan the two backends' choice
//! streams part (madsim runs handlers in another order, so a draw falls on another message),
//! but a madsim run is still a pure function of its seed: `first_divergence` over two runs'
//! recorded choices checks it draw by draw.
//!
//! Panics: a handler that panics stops the run (as natively); the run is a violation named
//! `panic` and the search goes on. So does a checker that panics.
//!
//! Two things madsim 0.2 does on its own, which make its timing differ slightly from the native
//! engine's (verdicts must not depend on either):
//! - every `madsim::time::sleep` lasts at least 1 ms (tokio's granularity), including the tiny
//!   random pause `Endpoint` takes before a send and after a receive: a datagram costs
//!   [`ENDPOINT_OVERHEAD_US`] on top of its drawn delay, so the adapter sleeps that much less
//!   (end to end a message takes its drawn delay, or 2 ms if that is shorter than 3 ms);
//!   timers shorter than 1 ms fire after 1 ms, and binding a restarted node's endpoint takes 1 ms.
//! - madsim resolves a datagram's destination socket when it is handed to it, 2 ms before it
//!   arrives: a message to a node that is down then is lost even if the node is back before
//!   it would arrive (natively it is delivered to the new incarnation).
//!
//! Memory: madsim keeps tasks that are still pending when a runtime is dropped (a task's waker
//! holds its scheduler queue, which holds the task). Every run therefore ends by killing every
//! node, which drops all their tasks before the runtime goes; a test holds 100,000 runs to a
//! flat heap.

use crate::actor::{Actor, Cmd, Ctx, NodeId, TimerId};
use crate::choices::{Choice, ChoiceKind, Choices};
use crate::faults::{FaultProfile, SimConfig};
use crate::history::{Entry, RunEnd};
use crate::model::Model;
use crate::runner::ExploreReport;
use crate::trace::{FaultNote, TraceEvent, TraceKind};
use crate::world::{Outcome, PlannedFault, World};
use madsim::net::Endpoint;
use madsim::runtime::{Handle, NodeHandle, Runtime};
use madsim::time::{self, Duration, Instant, TimeHandle};
use std::future::poll_fn;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
#[derive(Default)]
struct Pending {
    count: AtomicUsize,
    /// The supervisor, waiting for `count` to reach zero.
    waker: Mutex<Option<Waker>>,
    /// Datagrams dropped because their receiver was down or had restarted since.
    dropped_down: AtomicU64,
    /// A handler panicked: the run stops, quiescent or not.
    stopped: AtomicBool,
}

impl Pending {
    fn wake(&self) {
        if let Some(w) = self.waker.lock().unwrap_or_else(|e| e.into_inner()).take() {
            w.wake();
        }
    }
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
            self.0.wake();
        }
    }
}

/// A datagram's payload. Its `msg` is taken when it reaches a live receiver; an envelope dropped
/// with its message inside (a dead socket's mailbox, a node that was down) counts as dropped.
struct Envelope<M> {
    from: NodeId,
    /// The receiver's incarnation when the message was sent: a restart since voids it.
    epoch: u64,
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

/// How a node is wired into madsim (its life — up, down, paused — is the world's).
#[derive(Default)]
struct Wiring {
    /// The live incarnation's endpoint (None while down).
    ep: Option<Endpoint>,
    /// Held from a (re)start until `on_start` has run.
    start: Option<Busy>,
    mid: Option<madsim::task::NodeId>,
}

/// The run's state, shared by every task (madsim runs them all on one thread; the mutex is
/// never contended).
struct Run<A: Actor> {
    w: World<A>,
    choices: Choices,
    next_timer: u64,
    out: Vec<Cmd<A>>,
    rt: Vec<Wiring>,
    addrs: Vec<SocketAddr>,
    /// A handler (or `on_crash`: `usize::MAX`) panicked: who, when, the message. Nothing runs
    /// after it.
    panic: Option<(NodeId, u64, String)>,
    /// The node that carries datagrams and runs fault injection; never crashes.
    wire: Option<NodeHandle>,
    /// Simulated time 0 of the run: when every node has bound its endpoint.
    t0: Option<Instant>,
    bound: usize,
    gate: Vec<Waker>,
}

struct Shared<A: Actor> {
    world: Mutex<Run<A>>,
    pending: Arc<Pending>,
}

type SharedRef<A> = Arc<Shared<A>>;

impl<A: Actor> Shared<A> {
    fn lock(&self) -> MutexGuard<'_, Run<A>> {
        // Handlers' panics are caught inside; keep the state readable whatever happens.
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

impl<A: MadsimActor> Run<A> {
    fn now_us(&self) -> u64 {
        elapsed_us(self.t0)
    }

    /// Run one handler of `node`, then carry out its effects, in order. A panic in either stops
    /// the run: it is recorded, the supervisor is woken, and no handler runs after it.
    fn handle(&mut self, shared: &SharedRef<A>, node: NodeId, f: impl FnOnce(&mut A, &mut Ctx<'_, A>)) {
        if self.panic.is_some() {
            return;
        }
        let now_us = self.now_us();
        let ran = crate::panics::catch(|| {
            let mut out = std::mem::take(&mut self.out);
            {
                let incarnation = self.w.life[node].epoch;
                let mut ctx = Ctx::new(now_us, node, &mut out, &mut self.choices, &mut self.next_timer).in_incarnation(incarnation);
                f(&mut self.w.nodes[node], &mut ctx);
            }
            for cmd in out.drain(..) {
                self.apply(shared, node, now_us, cmd);
            }
            self.out = out;
        });
        if let Err(message) = ran {
            self.stop(shared, node, now_us, message);
        }
    }

    /// End the run after a panic (the first one counts).
    fn stop(&mut self, shared: &SharedRef<A>, node: NodeId, now_us: u64, message: String) {
        self.out.clear();
        self.panic.get_or_insert((node, now_us, message));
        shared.pending.stopped.store(true, Ordering::Relaxed);
        shared.pending.wake();
    }

    fn apply(&mut self, shared: &SharedRef<A>, node: NodeId, now_us: u64, cmd: Cmd<A>) {
        match cmd {
            Cmd::Send { to, incarnation, msg } => {
                if let Some(duplicated) = self.w.send_fate(now_us, node, to, &msg, &mut self.choices) {
                    let epoch = incarnation.unwrap_or(self.w.life[to].epoch);
                    if duplicated {
                        self.datagram(shared, node, to, epoch, msg.clone());
                    }
                    self.datagram(shared, node, to, epoch, msg);
                }
            }
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
            local => self.w.apply_local(now_us, node, local),
        }
    }

    fn datagram(&mut self, shared: &SharedRef<A>, from: NodeId, to: NodeId, epoch: u64, msg: A::Msg) {
        let ep = self.rt[from].ep.clone().expect("a node runs handlers only while its endpoint is bound");
        let env = Box::new(Envelope { from, epoch, msg: Some(msg), _busy: Busy::new(&shared.pending) });
        let dst = self.addrs[to];
        let (lo, hi) = (self.w.faults.delay_us_min, self.w.faults.delay_us_max);
        let delay_us = lo + self.choices.pick(ChoiceKind::Delay, (hi - lo + 1) as u32) as u64;
        // What `Endpoint` adds is slept off less; a sleep shorter than 1 ms would last 1 ms.
        let sleep_us = delay_us.saturating_sub(ENDPOINT_OVERHEAD_US);
        // Sent from the wire node, so a crash of the sender right after its handler returned
        // does not take back what the handler sent (as natively: effects are atomic).
        self.wire.as_ref().expect("wire node is up").spawn(async move {
            if sleep_us >= 1_000 {
                time::sleep(Duration::from_micros(sleep_us)).await;
            }
            // Only fails if the destination address does not resolve; the envelope then counts
            // as dropped.
            let _ = ep.send_to_raw(dst, TAG, env).await;
        });
    }
}

/// A timer of `node` is due (its task ran, so the node is up and not paused).
fn fire<A: MadsimActor>(shared: &SharedRef<A>, node: NodeId, id: TimerId, timer: A::Timer) {
    let mut r = shared.lock();
    // After a panic the run is over: nothing more happens (nor is counted).
    if r.w.cancelled.take(id) || r.panic.is_some() {
        return;
    }
    r.w.stats.events += 1;
    let now_us = r.now_us();
    r.w.note(now_us, node, || TraceKind::Timer { timer: format!("{timer:?}") });
    r.handle(shared, node, |a, ctx| a.on_timer(ctx, timer));
}

/// A datagram reached `node`'s live endpoint.
fn deliver<A: MadsimActor>(shared: &SharedRef<A>, node: NodeId, env: &mut Envelope<A::Msg>) {
    let Some(msg) = env.msg.take() else { return };
    let from = env.from;
    let mut r = shared.lock();
    let now_us = r.now_us();
    if r.panic.is_some() || r.w.refused(now_us, from, node, env.epoch, &msg) {
        return;
    }
    r.w.stats.events += 1;
    r.w.stats.messages_delivered += 1;
    r.w.note(now_us, node, || TraceKind::Deliver { from, msg: format!("{msg:?}") });
    r.handle(shared, node, |a, ctx| a.on_message(ctx, from, msg));
}

/// Wait until the run's time 0 (every node has bound its endpoint).
async fn started<A: MadsimActor>(shared: &SharedRef<A>) -> Instant {
    let gate = shared.clone();
    poll_fn(move |cx| {
        let mut r = gate.lock();
        if let Some(t0) = r.t0 {
            return Poll::Ready(t0);
        }
        r.gate.push(cx.waker().clone());
        Poll::Pending
    })
    .await
}

/// The init task of an actor's node, run at creation and again at every restart.
async fn node_main<A: MadsimActor>(shared: SharedRef<A>, node: NodeId) {
    let addr = shared.lock().addrs[node];
    let ep = Endpoint::bind(addr).await.expect("each node binds its own address");
    {
        let mut r = shared.lock();
        r.rt[node].ep = Some(ep.clone());
        r.bound += 1;
        if r.t0.is_none() && r.bound == r.w.nodes.len() {
            // Everyone can be reached: the run starts now.
            r.t0 = Some(TimeHandle::current().now_instant());
            for waker in std::mem::take(&mut r.gate) {
                waker.wake();
            }
        }
    }
    started(&shared).await;
    let started = {
        let mut r = shared.lock();
        r.handle(&shared, node, |a, ctx| a.on_start(ctx));
        r.rt[node].start.take()
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

mod inject;
use inject::inject;

/// The supervisor: builds the nodes, injects the planned faults, waits for quiescence, a panic
/// or the time limit, then kills every node so that no task outlives the runtime.
async fn supervise<A: MadsimActor>(shared: SharedRef<A>, cfg: SimConfig) -> RunEnd {
    let handle = Handle::current();
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
    let t0 = started(&shared).await;
    let plan = shared.lock().w.plan.clone();
    for fault in plan {
        let busy = Busy::new(&shared.pending);
        wire.spawn(inject(shared.clone(), fault, t0, handle.clone(), busy));
    }
    let pending = shared.pending.clone();
    let quiet = poll_fn(move |cx| {
        *pending.waker.lock().unwrap_or_else(|e| e.into_inner()) = Some(cx.waker().clone());
        if pending.count.load(Ordering::Relaxed) == 0 || pending.stopped.load(Ordering::Relaxed) {
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
        let mut r = shared.lock();
        r.w.stats.sim_time_us = if end == RunEnd::TimeLimit { cfg.time_limit_us } else { r.now_us() };
        r.w.stats.messages_dropped_down += shared.pending.dropped_down.load(Ordering::Relaxed);
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
    /// The crashes, pauses and partitions drawn for the run (the native engine draws the same
    /// for the same seed).
    pub plan: Vec<PlannedFault>,
    /// The faults that struck, in order.
    pub fault_log: Vec<FaultNote>,
    /// Every choice the run drew, in order (recorded with the timeline only).
    pub choices: Vec<Choice>,
}

/// Run `model` once on madsim with seed `seed`, and judge it.
pub fn run_madsim<M: Model>(model: &M, seed: u64) -> MadsimOutcome
where
    M::Actor: MadsimActor,
{
    run_madsim_full(model, seed, false).outcome
}

/// Like [`run_madsim`], and keep the history, the final actors, the fault plan and log, and (if
/// `trace`) the timeline and the recorded choices.
pub fn run_madsim_full<M: Model>(model: &M, seed: u64, trace: bool) -> MadsimRun<M::Actor>
where
    M::Actor: MadsimActor,
{
    let cfg = model.config().clone();
    let shared = Arc::new(Shared { world: Mutex::new(Run::new(model, seed, trace)), pending: Arc::new(Pending::default()) });
    let mut config = madsim::Config::default();
    config.net.packet_loss_rate = 0.0;
    // The delay is drawn by the adapter (see `Run::datagram`): madsim adds none.
    config.net.send_latency = Duration::ZERO..Duration::from_nanos(1);
    let rt = Runtime::with_seed_and_config(seed, config);
    let end = rt.block_on(supervise(shared.clone(), cfg));
    drop(rt);

    let mut r = shared.lock();
    r.wire = None;
    r.rt.clear();
    let outcome = r.judge(model, end);
    MadsimRun {
        outcome,
        history: std::mem::take(&mut r.w.history),
        trace: r.w.trace.take().unwrap_or_default(),
        nodes: std::mem::take(&mut r.w.nodes),
        faults: r.w.faults.clone(),
        plan: std::mem::take(&mut r.w.plan),
        fault_log: std::mem::take(&mut r.w.fault_log),
        choices: r.choices.recorded().to_vec(),
    }
}

impl<A: MadsimActor> Run<A> {
    /// A run of `model` whose fault profile and plan are drawn already: the first draws of
    /// `Choices::seeded(seed)`, as natively, before madsim schedules anything.
    fn new<M: Model<Actor = A>>(model: &M, seed: u64, trace: bool) -> Self {
        let cfg = model.config();
        let mut w = World { trace: trace.then(Vec::new), ..World::default() };
        w.reset(model);
        let mut choices = Choices::seeded(seed);
        choices.set_recording(trace);
        w.draw_faults(cfg, false, &mut choices);
        let n = cfg.nodes.len();
        Run {
            w,
            choices,
            next_timer: 0,
            out: Vec::new(),
            rt: (0..n).map(|_| Wiring::default()).collect(),
            addrs: (0..n).map(node_addr).collect(),
            panic: None,
            wire: None,
            t0: None,
            bound: 0,
            gate: Vec::new(),
        }
    }

    /// The verdict: a panic's, else the checker's (a checker's panic is a violation too).
    fn judge<M: Model<Actor = A>>(&mut self, model: &M, end: RunEnd) -> Outcome {
        if let Some((node, at_us, message)) = self.panic.take() {
            return self.w.panicked(model, node, at_us, message);
        }
        let (sim_time_us, count) = (self.w.stats.sim_time_us, self.choices.count());
        crate::panics::catch(|| self.w.judge(model, end, sim_time_us, count))
            .unwrap_or_else(|message| self.w.panicked(model, usize::MAX, sim_time_us, message))
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
