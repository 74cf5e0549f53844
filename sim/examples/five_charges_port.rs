//! The hand-written reference simulator's model (`../shared/bench/handwritten-five-charges`),
//! ported as it is onto the general engine: the same three state machines (a client that sends
//! 5 charges one after another, a server that inserts each request's key into a key store and
//! charges a local ledger if the insert won, a key store that is a set), the same constants,
//! every link lossy, the store crashing with probability 0.05. It measures the engine's own cost
//! (event queue, choice source, effects, history, judging) on exactly the reference's work, which
//! `bench/five-charges` cannot: that preset runs the payment models (three SQL round trips per
//! request, a provider, a completer, four invariants), so it does about 60 events per run where
//! the reference does about 50, and each of them does more. Asserts nothing about time.
//!
//! ```text
//! cargo build --release -p sim --example five_charges_port
//! taskset -c 1 target/release/examples/five_charges_port 1000000
//! ```
//!
//! Differences left, each small and named: times are in µs (the reference draws in ns); the
//! engine ends a run when nothing is pending (the reference stops when the client is done, so
//! its last client timeout never pops); the store's crash falls in the first 300 ms through
//! the engine's fault plan (`fault_phase_us`), and loss goes on for the whole run as in the
//! reference (`fault_phase_us` is the crash window only because the port sets loss itself: see
//! `Port::send`).
use sim::{Actor, ChoiceKind, Ctx, FaultProfile, Model, NodeId, NodeSpec, RunView, Sim, SimConfig, Verdict, Violation};
use std::time::Instant;

const N_OPS: u64 = 5;
const MAX_ATTEMPTS: u32 = 6;
const MS: u64 = 1_000;
const CLIENT_TIMEOUT_US: u64 = 50 * MS;
const BACKOFF_BASE_US: u64 = 10 * MS;
const BACKOFF_CAP_US: u64 = 200 * MS;
const SERVER_KV_TIMEOUT_US: u64 = 25 * MS;
const LOSS: f64 = 0.1;
const CLIENT: NodeId = 0;
const SERVER: NodeId = 1;
const KV: NodeId = 2;

#[derive(Clone, Copy, Debug, Hash)]
enum Msg {
    Charge { key: u64, attempt: u32 },
    Reply { key: u64, attempt: u32, ok: Option<u64> },
    Insert { key: u64, req: u64 },
    InsertResp { req: u64, inserted: bool },
}

#[derive(Clone, Copy, Debug, Hash)]
enum Timer {
    ClientTimeout { op: u64, attempt: u32 },
    ClientRetry { attempt: u32 },
    ServerKvTimeout { req: u64 },
}

/// The reference's trace events (its `ev(kind, a, b)`), hashed into the history hash.
#[derive(Clone, Copy, Debug, Hash)]
enum Obs {
    Send { key: u64, attempt: u32 },
    Ok { key: u64, receipt: u64 },
    Busy { key: u64, attempt: u32 },
    Timeout { key: u64, attempt: u32 },
    GiveUp { key: u64 },
    Ledger { key: u64, receipt: u64 },
    Kv { key: u64, inserted: bool },
}

#[derive(Clone, Debug, Hash)]
enum Port {
    Client { op: u64, attempt: u32, waiting: bool },
    Server { next_req: u64, pending: Vec<(u64, u64, u32)>, ledger: Vec<u64>, responses: Vec<(u64, u64)> },
    Kv { set: Vec<u64> },
}

/// The reference loses 10% of every message, for the whole run: the port draws loss itself
/// (the engine's own loss stops at the end of the fault phase, which here is the crash window).
fn send(ctx: &mut Ctx<'_, Port>, to: NodeId, msg: Msg) {
    if !ctx.flip(ChoiceKind::Loss, LOSS) {
        ctx.send(to, msg);
    }
}

impl Port {
    fn client_send(op: u64, attempt: u32, waiting: &mut bool, ctx: &mut Ctx<'_, Port>) {
        ctx.observe(Obs::Send { key: op, attempt });
        *waiting = true;
        send(ctx, SERVER, Msg::Charge { key: op, attempt });
        // Never cancelled: a stale timeout pops and does nothing, as in the reference.
        ctx.set_timer(CLIENT_TIMEOUT_US, Timer::ClientTimeout { op, attempt });
    }

    fn client_next_op(&mut self, ctx: &mut Ctx<'_, Port>) {
        let Port::Client { op, attempt, waiting } = self else { unreachable!() };
        *op += 1;
        if *op == N_OPS {
            return;
        }
        *attempt = 0;
        Port::client_send(*op, 0, waiting, ctx);
    }

    fn client_backoff(&mut self, ctx: &mut Ctx<'_, Port>) {
        let Port::Client { op, attempt, .. } = self else { unreachable!() };
        if *attempt + 1 < MAX_ATTEMPTS {
            let cap = BACKOFF_CAP_US.min(BACKOFF_BASE_US << *attempt);
            let d = ctx.choose(ChoiceKind::Jitter, cap as u32 + 1) as u64;
            ctx.set_timer(d, Timer::ClientRetry { attempt: *attempt + 1 });
        } else {
            ctx.observe(Obs::GiveUp { key: *op });
            self.client_next_op(ctx);
        }
    }
}

impl Actor for Port {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;
    type Record = ();

    fn on_start(&mut self, ctx: &mut Ctx<'_, Self>) {
        if let Port::Client { op, attempt, waiting } = self {
            if ctx.now_us() == 0 {
                Port::client_send(*op, *attempt, waiting, ctx);
            }
        }
    }

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, _from: NodeId, msg: Msg) {
        match (&mut *self, msg) {
            (Port::Client { op, attempt, waiting }, Msg::Reply { key, attempt: a, ok }) => {
                if *waiting && key == *op && a == *attempt {
                    *waiting = false;
                    match ok {
                        Some(receipt) => {
                            ctx.observe(Obs::Ok { key, receipt });
                            self.client_next_op(ctx);
                        }
                        None => {
                            ctx.observe(Obs::Busy { key, attempt: a });
                            self.client_backoff(ctx);
                        }
                    }
                }
            }
            (Port::Server { next_req, pending, .. }, Msg::Charge { key, attempt }) => {
                let req = *next_req;
                *next_req += 1;
                pending.push((req, key, attempt));
                send(ctx, KV, Msg::Insert { key, req });
                ctx.set_timer(SERVER_KV_TIMEOUT_US, Timer::ServerKvTimeout { req });
            }
            (Port::Server { pending, ledger, responses, .. }, Msg::InsertResp { req, inserted }) => {
                if let Some(i) = pending.iter().position(|p| p.0 == req) {
                    let (_, key, attempt) = pending.swap_remove(i);
                    let ok = if inserted {
                        let receipt = key * 1000 + ledger.len() as u64;
                        ledger.push(key);
                        responses.push((key, receipt));
                        ctx.observe(Obs::Ledger { key, receipt });
                        Some(receipt)
                    } else {
                        responses.iter().find(|(k, _)| *k == key).map(|(_, r)| *r)
                    };
                    send(ctx, CLIENT, Msg::Reply { key, attempt, ok });
                }
            }
            (Port::Kv { set }, Msg::Insert { key, req }) => {
                let inserted = !set.contains(&key);
                if inserted {
                    set.push(key);
                }
                ctx.observe(Obs::Kv { key, inserted });
                send(ctx, SERVER, Msg::InsertResp { req, inserted });
            }
            (node, msg) => unreachable!("{node:?} got {msg:?}"),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_, Self>, timer: Timer) {
        match (&mut *self, timer) {
            (Port::Client { op, attempt, waiting }, Timer::ClientTimeout { op: o, attempt: a }) => {
                if *waiting && o == *op && a == *attempt {
                    *waiting = false;
                    ctx.observe(Obs::Timeout { key: o, attempt: a });
                    self.client_backoff(ctx);
                }
            }
            (Port::Client { op, attempt, waiting }, Timer::ClientRetry { attempt: a }) => {
                *attempt = a;
                Port::client_send(*op, a, waiting, ctx);
            }
            (Port::Server { pending, .. }, Timer::ServerKvTimeout { req }) => {
                if let Some(i) = pending.iter().position(|p| p.0 == req) {
                    let (_, key, attempt) = pending.swap_remove(i);
                    send(ctx, CLIENT, Msg::Reply { key, attempt, ok: None });
                }
            }
            (node, timer) => unreachable!("{node:?} got {timer:?}"),
        }
    }

    /// The reference's store keeps its set across a crash (a down store only drops messages).
    fn on_crash(&mut self, _durable: &[()]) {}
}

struct PortModel {
    config: SimConfig,
}

impl PortModel {
    fn new() -> Self {
        let faults = FaultProfile {
            delay_us_min: MS,
            delay_us_max: 10 * MS,
            crash_probability: 0.05,
            restart_delay_us_min: 10 * MS,
            restart_delay_us_max: 100 * MS,
            fault_phase_us: 300 * MS,
            ..FaultProfile::default()
        };
        let config = SimConfig {
            nodes: vec![NodeSpec::new("client"), NodeSpec::new("server"), NodeSpec::new("kv").crashable(true)],
            faults,
            swarm: false,
            time_limit_us: 100_000 * MS,
        };
        PortModel { config }
    }
}

impl Model for PortModel {
    type Actor = Port;
    fn config(&self) -> &SimConfig {
        &self.config
    }
    fn build(&self, nodes: &mut Vec<Port>) {
        nodes.push(Port::Client { op: 0, attempt: 0, waiting: false });
        nodes.push(Port::Server { next_req: 0, pending: Vec::new(), ledger: Vec::new(), responses: Vec::new() });
        nodes.push(Port::Kv { set: Vec::new() });
    }
    /// Reuse the actors' buffers, as the payment model does.
    fn rebuild(&self, nodes: &mut Vec<Port>) {
        if nodes.len() != 3 {
            nodes.clear();
            return self.build(nodes);
        }
        nodes[0] = Port::Client { op: 0, attempt: 0, waiting: false };
        if let Port::Server { next_req, pending, ledger, responses } = &mut nodes[1] {
            *next_req = 0;
            pending.clear();
            ledger.clear();
            responses.clear();
        }
        if let Port::Kv { set } = &mut nodes[2] {
            set.clear();
        }
    }
    /// The reference's invariant: each operation charged at most once.
    fn check(&self, run: &RunView<'_, Port>) -> Verdict {
        let Port::Server { ledger, .. } = &run.nodes[SERVER] else { unreachable!() };
        for k in 0..N_OPS {
            let n = ledger.iter().filter(|&&x| x == k).count();
            if n > 1 {
                return Verdict::Violation(Violation::new("exactly_once", format!("op {k} charged {n} times"), Vec::new()));
            }
        }
        Verdict::Pass
    }
}

fn main() {
    let runs: u64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let model = PortModel::new();
    let mut sim = Sim::new();
    let (mut events, mut violations, mut hash) = (0u64, 0u64, 0u64);
    let t = Instant::now();
    for seed in 0..runs {
        let out = sim.run_seed(&model, seed);
        events += out.stats.events;
        violations += matches!(out.verdict, Verdict::Violation(_)) as u64;
        hash ^= out.history_hash;
    }
    let dt = t.elapsed().as_secs_f64();
    println!(
        "five_charges_port runs={runs} secs={dt:.3} runs/s={:.0} us/run={:.3} events/run={:.2} violations={violations} hash_xor={hash:#018x}",
        runs as f64 / dt,
        dt * 1e6 / runs as f64,
        events as f64 / runs as f64
    );
}
