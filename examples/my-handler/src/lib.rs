//! # my-handler — your own idempotent payment handler under idemsim
//!
//! A payment endpoint as a user of idemsim writes it: an [`Actor`] that takes the client's
//! request with its `Idempotency-Key`, checks the key in Redis, calls the payment provider and
//! stores the result. idemsim supplies everything around it ([`models::custom::OwnServer`]): the
//! clients that retry and double-click, the Redis-like store, the provider, the faults of
//! [`scenario.toml`](../scenario.toml), and the payment invariants. `tests/handler.rs` explores
//! it, finds the bug, replays the failing seed, and holds the fixed version to 20,000 seeds.
//!
//! The handler comes in two versions, which differ only in how they use the key ([`Claim`]):
//! the first looks the key up and charges when it finds nothing (the bug), the second claims it
//! atomically first.

use invariants::{ChargeId, Obs, Status};
use models::custom::{Msg, Record, ServerEnv, Timer};
use models::payment::provider::{ChargeCall, ProviderReply};
use models::payment::redis::{RedisCmd, RedisReply, Value};
use models::payment::Request;
use models::Scenario;
use sim::{Actor, Ctx, NodeId};

/// How the handler makes sure one key is charged once.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Claim {
    /// `GET` the key; if it is absent, charge, then `SET` the result. The bug: two requests
    /// with one key (a double click, a retry while the first is still running) both find it
    /// absent, and both charge.
    GetThenSet,
    /// `SET key in-flight NX` first: only the request that created the key charges; another
    /// gets 409 while it is in flight and the stored result once it is done.
    SetNx,
}

/// The buggy handler, as `OwnServer::new` builds it for each server instance.
pub fn buggy(env: ServerEnv) -> PaymentHandler {
    PaymentHandler::new(env, Claim::GetThenSet)
}

/// The fixed handler.
pub fn fixed(env: ServerEnv) -> PaymentHandler {
    PaymentHandler::new(env, Claim::SetNx)
}

/// The scenario both run in (`scenario.toml`).
pub fn scenario() -> Scenario {
    Scenario::from_toml(include_str!("../scenario.toml")).expect("scenario.toml is valid")
}

/// One payment endpoint instance. Its state is what a real one keeps in memory: the requests it
/// is working on, each waiting for one reply.
#[derive(Clone, Debug, Hash)]
pub struct PaymentHandler {
    env: ServerEnv,
    claim: Claim,
    /// Calls made so far: call ids are `me << 48 | counter`, unique across nodes.
    calls: u64,
    jobs: Vec<Job>,
}

#[derive(Clone, Debug, Hash)]
struct Job {
    /// The call whose reply this job waits for.
    call: u64,
    client: NodeId,
    req: Request,
    step: Step,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Step {
    /// The key's lookup (GET) or claim (SET NX).
    Key,
    /// The provider's charge.
    Charge,
    /// Storing the charge as the key's result.
    Store { charge: ChargeId },
    /// Releasing the claim after a failed charge.
    Release,
}

impl PaymentHandler {
    pub fn new(env: ServerEnv, claim: Claim) -> Self {
        PaymentHandler { env, claim, calls: 0, jobs: Vec::new() }
    }

    fn call(&mut self) -> u64 {
        self.calls += 1;
        (self.env.me as u64) << 48 | self.calls
    }

    fn redis(&mut self, ctx: &mut Ctx<'_, Self>, job: Job, cmd: RedisCmd, step: Step) {
        let call = self.call();
        ctx.send(self.env.store, Msg::Redis { req: call, cmd });
        self.jobs.push(Job { call, step, ..job });
    }

    fn respond(ctx: &mut Ctx<'_, Self>, job: &Job, status: Status) {
        ctx.reply(job.client, job.req.incarnation, Msg::Response { req: job.req, status });
    }

    /// The store answered the job's lookup or claim.
    fn on_key(&mut self, ctx: &mut Ctx<'_, Self>, job: Job, reply: RedisReply) {
        let (key, fp) = (job.req.key, job.req.amount);
        match reply {
            // The key is ours (SET NX), or nobody has it (GET): charge.
            RedisReply::Ok | RedisReply::Nil => {
                ctx.observe(Obs::KeyClaimed { key, op: job.req.op, takeover: false });
                let call = self.call();
                let charge = ChargeCall { req: call, key: None, op: job.req.op, order_key: key, amount: job.req.amount };
                ctx.send(self.env.provider, Msg::Charge(charge));
                self.jobs.push(Job { call, step: Step::Charge, ..job });
            }
            RedisReply::Exists(Value::Done { fp: stored, charge, amount }) if stored == fp => {
                ctx.observe(Obs::KeyReplayed { key });
                Self::respond(ctx, &job, Status::Ok { charge, amount, replayed: true });
            }
            RedisReply::Exists(Value::Done { .. } | Value::Failed { .. }) => {
                ctx.observe(Obs::KeyRejected { key, code: 422 });
                Self::respond(ctx, &job, Status::Mismatch);
            }
            RedisReply::Exists(Value::InFlight { .. }) => {
                ctx.observe(Obs::KeyRejected { key, code: 409 });
                Self::respond(ctx, &job, Status::Conflict);
            }
            // The store refused the write (`min_replicas_to_write` with its replica out of
            // reach, or full at `maxmemory` under `noeviction`): nothing was claimed, the client
            // may retry.
            RedisReply::NoReplicas | RedisReply::Oom => Self::respond(ctx, &job, Status::ServerError),
        }
    }

    /// The provider answered the job's charge.
    fn on_charge(&mut self, ctx: &mut Ctx<'_, Self>, job: Job, reply: ProviderReply) {
        let key = job.req.key;
        match reply {
            ProviderReply::Charged(charge) => {
                let value = Value::Done { fp: job.req.amount, charge, amount: job.req.amount };
                self.redis(ctx, job, RedisCmd::Set { key, value }, Step::Store { charge });
            }
            // Nothing was charged: let a retry claim the key again, and say so.
            _ if self.claim == Claim::SetNx => self.redis(ctx, job, RedisCmd::IfInFlight { key, then: None }, Step::Release),
            _ => Self::respond(ctx, &job, Status::ServerError),
        }
    }

    /// The job waiting for `call`, taken off the list.
    fn take(&mut self, call: u64) -> Option<Job> {
        let i = self.jobs.iter().position(|j| j.call == call)?;
        Some(self.jobs.swap_remove(i))
    }
}

impl Actor for PaymentHandler {
    type Msg = Msg;
    type Timer = Timer;
    type Obs = Obs;
    type Record = Record;

    fn on_start(&mut self, _: &mut Ctx<'_, Self>) {}

    fn on_message(&mut self, ctx: &mut Ctx<'_, Self>, from: NodeId, msg: Msg) {
        match msg {
            Msg::Request(req) => {
                let job = Job { call: 0, client: from, req, step: Step::Key };
                let cmd = match self.claim {
                    Claim::GetThenSet => RedisCmd::Get { key: req.key },
                    Claim::SetNx => RedisCmd::SetNx { key: req.key, value: Value::InFlight { fp: req.amount } },
                };
                self.redis(ctx, job, cmd, Step::Key);
            }
            Msg::RedisReply { req, reply } => {
                let Some(job) = self.take(req) else { return };
                match job.step {
                    Step::Key => self.on_key(ctx, job, reply),
                    Step::Store { charge } => {
                        ctx.observe(Obs::ResultStored { key: job.req.key, charge });
                        Self::respond(ctx, &job, Status::Ok { charge, amount: job.req.amount, replayed: false });
                    }
                    Step::Release => {
                        ctx.observe(Obs::KeyReleased { key: job.req.key });
                        Self::respond(ctx, &job, Status::ServerError);
                    }
                    Step::Charge => unreachable!("a store reply to a provider call"),
                }
            }
            Msg::ProviderReply { req, reply } => {
                if let Some(job) = self.take(req) {
                    self.on_charge(ctx, job, reply);
                }
            }
            // The store restarted: its replies to our calls will not come. (Nothing crashes in
            // scenario.toml; a handler that must survive crashes answers 500 here.)
            Msg::StoreRestarted => {}
            other => unreachable!("the payment handler got {other:?}"),
        }
    }

    fn on_timer(&mut self, _: &mut Ctx<'_, Self>, _: Timer) {}

    /// A crash loses the requests in memory; the call counter goes on (a new connection).
    fn on_crash(&mut self, _: &[Record]) {
        self.jobs.clear();
    }
}
