//! The server's idempotency layer. A request moves through Stripe's phases: claim the key,
//! charge, store the result, respond. Each knob of `ServerDesign` changes how a phase is done:
//! whether the claim is one atomic statement or a SELECT then an INSERT, whether the charge and
//! the stored result share a transaction, what an in-flight key gets, how a takeover resumes,
//! what a timed-out or failed call does to the key (`on_error`). The completer (`completer.rs`)
//! is this same handler run by a background node on keys nobody is working on.

use super::postgres::{Lease, RecoveryPoint, Sql, SqlReply};
use super::provider::{ChargeCall, ProviderReply};
use super::redis::{RedisCmd, RedisReply, Value};
use super::{Msg, Node, Record, Request, Shared, Timer, PROVIDER, STORE};
use crate::chain::ChainLink;
use crate::knobs::{ChargeTarget, Fingerprint, InFlight, KeyClaim, LeaseClock, Recovery, Replay, ResultStorage, ServerDesign};
use invariants::{ChargeId, Obs, Status};
use sim::{ChoiceKind, Ctx, NodeId, TimerId};

mod calls;
mod endings;
mod existing;

use existing::Existing;

/// How long a blocked request sleeps before looking at an in-flight key again.
const POLL_US: u64 = 5_000;
/// Requests waiting for a worker beyond this get 503.
const ACCEPT_QUEUE_MAX: usize = 256;

/// Where a job is: what it waits for.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub(super) enum Step {
    /// The claim: Claim / Select (Postgres), SetNx / Get (Redis).
    Claim,
    /// SELECT-then-INSERT: the INSERT.
    InsertKey,
    /// The claim transaction's COMMIT (separate writes).
    ClaimCommit,
    /// A takeover of an expired lease.
    TakeLock,
    TakeLockCommit,
    /// The charge: a ledger INSERT, or the provider's answer.
    Charge,
    ChargeCommit,
    /// Recording the provider's charge as a recovery point.
    Record,
    RecordCommit,
    /// Storing the result.
    Complete,
    CompleteCommit,
    /// `in_flight = block`: sleeping before claiming again.
    Poll,
    /// The error path's statement (release the key or store the failure), then a 500.
    ErrorPath,
    /// Checkout chain (`handoff.rs`): the order row (and its outbox row) inserted.
    Order,
    /// The order's own transaction committing (a Redis key store: the orders database).
    OrderCommit,
    /// A dual write's publish of the order's event, waiting for the broker's ack.
    Publish {
        partition: u32,
        seq: u32,
    },
}

#[derive(Copy, Clone, Debug, Hash)]
pub(super) struct Job {
    /// Who to answer; `None` for the completer's own work.
    pub(super) client: Option<NodeId>,
    pub(super) req: Request,
    /// The outstanding call: a transaction id (Postgres) or a request id (Redis, provider).
    call: u64,
    /// A transaction is open on `call`, on node `db`.
    in_tx: bool,
    db: NodeId,
    /// Checkout chain, Redis key store: the order is committed (and published), the result not
    /// yet stored.
    pub(super) ordered: bool,
    pub(super) step: Step,
    charge: Option<ChargeId>,
    /// Bumped at every call: a timeout names the call it guards.
    pub(super) wait: u32,
    pub(super) timer: Option<TimerId>,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ServerTimer {
    Poll {
        slot: usize,
        call: u64,
    },
    /// Call `wait` of the job in `slot` has had no answer for `call_timeout_us`.
    CallTimeout {
        slot: usize,
        wait: u32,
    },
    /// The completer's next sweep.
    Sweep,
    /// `result_write = until_stored`: store the result of the job in `slot` again.
    StoreAgain {
        slot: usize,
        wait: u32,
    },
    /// Checkout chain: resend the job in `slot`'s unacknowledged publish (its `wait`-th).
    Resend {
        slot: usize,
        wait: u32,
    },
}

/// What a server node is.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum Role {
    /// An instance behind the load balancer, serving client requests.
    Instance,
    /// The background completer (idle unless the design has one); it sweeps until this time.
    Completer { sweep_until_us: u64 },
}

#[derive(Debug, Hash)]
pub struct Server {
    pub(super) design: Shared<ServerDesign>,
    pub(super) postgres: bool,
    pub(super) node: NodeId,
    pub(super) role: Role,
    /// How far this instance's clock runs ahead of true time (drawn at its first start; a clock
    /// survives a process crash).
    clock_offset_us: u64,
    pub(super) boots: u32,
    next_call: u32,
    pub(super) jobs: Vec<Option<Job>>,
    queue: Vec<(NodeId, Request)>,
    /// The last charge this instance made (`replay = last_charge_of_instance` builds replays
    /// from it).
    last_charge: Option<(ChargeId, u32)>,
    /// The completer's outstanding sweep query.
    pub(super) sweep_call: Option<u64>,
    /// Checkout chain: where the paid order goes (`None` on the payment path).
    pub(super) chain: Option<Shared<ChainLink>>,
    /// Checkout chain, dual write: the next sequence number per partition of this incarnation's
    /// producer session.
    pub(super) seq: Vec<u32>,
}
sim::clone_by_field!(Server {
    design,
    postgres,
    node,
    role,
    clock_offset_us,
    boots,
    next_call,
    jobs,
    queue,
    last_charge,
    sweep_call,
    chain,
    seq
});

/// What came back from the store or the provider, routed to the job that waits for it.
pub enum Reply {
    Sql(SqlReply),
    Redis(RedisReply),
    Provider(ProviderReply),
}

impl Server {
    pub fn new(design: Shared<ServerDesign>, postgres: bool, node: NodeId, role: Role, chain: Option<Shared<ChainLink>>) -> Self {
        let mut s = Server {
            design,
            postgres,
            node,
            role,
            clock_offset_us: 0,
            boots: 0,
            next_call: 0,
            jobs: Vec::new(),
            queue: Vec::new(),
            last_charge: None,
            sweep_call: None,
            chain,
            seq: Vec::new(),
        };
        s.reset(design, postgres, node, role, chain);
        s
    }

    /// Become what `Server::new` with these arguments builds, keeping the buffers (the model
    /// resets its actors before every run, which allocated twice per run through `new`).
    pub fn reset(&mut self, design: Shared<ServerDesign>, postgres: bool, node: NodeId, role: Role, chain: Option<Shared<ChainLink>>) {
        let Server {
            design: d,
            postgres: p,
            node: n,
            role: r,
            clock_offset_us,
            boots,
            next_call,
            jobs,
            queue,
            last_charge,
            sweep_call,
            chain: c,
            seq,
        } = self;
        (*d, *p, *n, *r, *c, *clock_offset_us) = (design, postgres, node, role, chain, 0);
        seq.clear();
        seq.resize(chain.map_or(0, |c| c.partitions as usize), 1);
        (*boots, *next_call, *last_charge, *sweep_call) = (0, 0, None, None);
        jobs.clear();
        jobs.resize(design.workers as usize, None);
        queue.clear();
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        if self.role != Role::Instance && matches!(self.design.completer, crate::knobs::Completer::None {}) {
            return; // The design has no completer: the node stays idle.
        }
        // The boot count is durable: call ids of this incarnation never collide with older ones.
        ctx.write(Record::Boot);
        ctx.fsync();
        self.boots += 1;
        let d = self.design;
        if self.boots == 1 && d.lease_clock == LeaseClock::App && d.clock_skew_us > 0 {
            self.clock_offset_us = ctx.choose(ChoiceKind::Model, d.clock_skew_us as u32 + 1) as u64;
        }
        if self.boots > 1 {
            for db in self.session_stores() {
                ctx.send(db, Msg::ServerRestarted { boot: self.boots });
            }
        }
        self.start_sweeping(ctx);
    }

    /// A process crash: the OS closes this incarnation's database connections, and the
    /// database ends their sessions at once (a machine crash leaves them to time out).
    pub fn on_process_exit(&self, ctx: &mut Ctx<'_, Node>) {
        if self.boots > 0 {
            for db in self.session_stores() {
                ctx.send(db, Msg::ConnectionsClosed { boot: self.boots });
            }
        }
    }

    /// The Postgres databases this server holds sessions on: the key store, and the checkout
    /// chain's own orders database.
    fn session_stores(&self) -> impl Iterator<Item = NodeId> {
        let orders = self.chain.map(|l| l.order_db).filter(|&db| db != STORE);
        self.postgres.then_some(STORE).into_iter().chain(orders)
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let boots = durable.iter().filter(|r| matches!(r, Record::Boot)).count() as u32;
        // The clock's skew is the machine's, not the process's: it outlives a crash.
        let clock_offset_us = self.clock_offset_us;
        self.reset(self.design, self.postgres, self.node, self.role, self.chain);
        (self.boots, self.clock_offset_us) = (boots, clock_offset_us);
    }

    pub fn on_request(&mut self, ctx: &mut Ctx<'_, Node>, client: NodeId, req: Request) {
        match self.jobs.iter().position(Option::is_none) {
            Some(slot) => self.start(ctx, slot, Some(client), req),
            None if self.queue.len() < ACCEPT_QUEUE_MAX => self.queue.push((client, req)),
            None => ctx.reply(client, req.incarnation, Msg::Response { req, status: Status::Unavailable { retry_after_us: 100_000 } }),
        }
    }

    pub(super) fn new_call(&mut self) -> u64 {
        self.next_call += 1;
        (self.node as u64) << 48 | ((self.boots & 0xffff) as u64) << 32 | self.next_call as u64
    }

    pub(super) fn start(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, client: Option<NodeId>, req: Request) {
        let job =
            Job { client, req, call: 0, in_tx: false, db: STORE, ordered: false, step: Step::Claim, charge: None, wait: 0, timer: None };
        self.jobs[slot] = Some(job);
        self.claim(ctx, slot);
    }

    /// This instance's clock.
    fn clock_us(&self, ctx: &Ctx<'_, Node>) -> u64 {
        ctx.now_us() + self.clock_offset_us
    }

    /// A lease from now, on the clock the design reads leases on.
    pub(super) fn lease(&self, ctx: &Ctx<'_, Node>) -> Lease {
        let clock_us = match self.design.lease_clock {
            LeaseClock::Database => Lease::DB_CLOCK,
            LeaseClock::App => self.clock_us(ctx),
        };
        Lease { lease_us: self.design.lease_us, clock_us }
    }

    /// Phase 1: claim the key (or, for `only_completed_keys`, look for a stored result).
    fn claim(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let d = self.design;
        let r = self.job(slot).req;
        let completer = self.job(slot).client.is_none();
        let lease = self.lease(ctx);
        self.job(slot).step = Step::Claim;
        match (d.key_claim, d.result_storage) {
            (KeyClaim::SetNx, ResultStorage::OnlyCompletedKeys) => self.redis(ctx, slot, RedisCmd::Get { key: r.key }),
            (KeyClaim::SetNx, _) => self.redis(ctx, slot, RedisCmd::SetNx { key: r.key, value: Value::InFlight { fp: r.amount } }),
            (_, ResultStorage::OnlyCompletedKeys) | (KeyClaim::SelectThenInsert, _) => self.sql(ctx, slot, Sql::Select { key: r.key }),
            // The completer only looks: a key that is gone is not its to create.
            (KeyClaim::InsertOnConflict, _) if completer => self.sql(ctx, slot, Sql::Select { key: r.key }),
            (KeyClaim::InsertOnConflict, _) => self.sql(ctx, slot, Sql::Claim { key: r.key, op: r.op, fp: r.amount, lease }),
        }
    }

    /// A reply for call `call`; stale replies (the job moved on or is gone) are dropped.
    pub fn on_reply(&mut self, ctx: &mut Ctx<'_, Node>, call: u64, reply: Reply) {
        if self.sweep_call == Some(call) {
            return self.on_sweep_reply(ctx, reply);
        }
        let Some(slot) = self.jobs.iter().position(|j| j.as_ref().is_some_and(|j| j.call == call && j.step != Step::Poll)) else { return };
        if let Some(t) = self.job(slot).timer.take() {
            ctx.cancel_timer(t);
        }
        let step = self.job(slot).step;
        match (step, reply) {
            (Step::ErrorPath, _) => self.finish(ctx, slot, Status::ServerError),
            (_, Reply::Sql(SqlReply::TxAborted) | Reply::Redis(RedisReply::NoReplicas | RedisReply::Oom)) => self.error(ctx, slot),
            (Step::Claim | Step::InsertKey, Reply::Sql(SqlReply::Inserted) | Reply::Redis(RedisReply::Ok)) => {
                self.claimed(ctx, slot, false)
            }
            (Step::Claim, Reply::Sql(SqlReply::Found(row))) => self.found(ctx, slot, row.into()),
            (Step::Claim, Reply::Redis(RedisReply::Exists(v))) => self.found(ctx, slot, v.into()),
            (Step::Claim, Reply::Sql(SqlReply::NotFound) | Reply::Redis(RedisReply::Nil)) => self.not_found(ctx, slot),
            // lock_timeout on any statement: another request holds the key's row. 409, retry later.
            (_, Reply::Sql(SqlReply::LockTimeout)) | (Step::Claim | Step::InsertKey, Reply::Sql(SqlReply::UniqueViolation)) => {
                self.reject(ctx, slot, Status::Conflict)
            }
            (Step::ClaimCommit, Reply::Sql(SqlReply::Committed)) => self.charge(ctx, slot),
            (Step::TakeLock, Reply::Sql(SqlReply::Updated(true))) => self.commit(ctx, slot, Step::TakeLockCommit),
            (Step::TakeLock, Reply::Sql(SqlReply::Updated(false))) => self.in_flight(ctx, slot),
            (Step::TakeLockCommit, Reply::Sql(SqlReply::Committed)) => self.claimed(ctx, slot, true),
            (Step::Charge, Reply::Sql(SqlReply::Charged(c)) | Reply::Provider(ProviderReply::Charged(c))) => self.charged(ctx, slot, c),
            // The provider failed, or another call with our key is still running there: the
            // outcome of the charge is unknown.
            (Step::Charge, Reply::Provider(ProviderReply::Error | ProviderReply::KeyInUse)) => self.error(ctx, slot),
            (Step::Charge, Reply::Provider(ProviderReply::Mismatch)) => self.reject(ctx, slot, Status::Mismatch),
            // Another holder of the key ran this phase first (a serialization failure).
            (Step::Charge, Reply::Sql(SqlReply::Updated(false))) => self.reject(ctx, slot, Status::Conflict),
            (Step::ChargeCommit | Step::RecordCommit, Reply::Sql(SqlReply::Committed)) => self.complete(ctx, slot),
            (Step::Record, Reply::Sql(SqlReply::Updated(true))) => self.commit(ctx, slot, Step::RecordCommit),
            (Step::Complete, Reply::Sql(SqlReply::Updated(true) | SqlReply::Inserted)) => self.commit_result(ctx, slot),
            (Step::Complete, Reply::Redis(RedisReply::Ok)) => self.succeed(ctx, slot),
            (Step::CompleteCommit, Reply::Sql(SqlReply::Committed)) => self.result_committed(ctx, slot),
            (Step::Order, Reply::Sql(SqlReply::Inserted)) => self.order_inserted(ctx, slot),
            (Step::OrderCommit, Reply::Sql(SqlReply::Committed)) => self.order_committed(ctx, slot),
            (step, _) => {
                debug_assert!(false, "unexpected reply in step {step:?}");
                self.error(ctx, slot)
            }
        }
    }

    /// The key store found the key: replay, refuse, wait, take over or proceed.
    fn found(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, e: Existing) {
        let d = self.design;
        let job = self.job(slot);
        let (req, completer) = (job.req, job.client.is_none());
        if completer && (e.done || e.failed) {
            return self.drop_job(ctx, slot); // Someone else finished it meanwhile.
        }
        if d.fingerprint == Fingerprint::Reject422 && e.fp != req.amount {
            return self.reject(ctx, slot, Status::Mismatch);
        }
        if e.failed {
            ctx.observe(Obs::KeyReplayed { key: req.key });
            return self.finish(ctx, slot, Status::StoredError);
        }
        if e.done {
            ctx.observe(Obs::KeyReplayed { key: req.key });
            let charge = e.charge.expect("a finished key has its charge");
            let charge = match d.replay {
                Replay::StoredResponse => charge,
                Replay::LastChargeOfInstance => self.last_charge.map_or(charge, |(c, _)| c),
            };
            return self.finish(ctx, slot, Status::Ok { charge, amount: e.fp, replayed: true });
        }
        // With the database's clock only the database can tell whether the lease expired: ask it
        // (`TakeLock` updates nothing if not). With the app's, this instance's clock decides.
        let expired = completer || d.lease_clock == LeaseClock::Database || e.locked_until_us <= self.clock_us(ctx);
        if d.recovery != Recovery::None && expired {
            self.job(slot).charge =
                if d.recovery == Recovery::RecoveryPoints && e.point == RecoveryPoint::ChargeCreated { e.charge } else { None };
            self.job(slot).step = Step::TakeLock;
            let lease = self.lease(ctx);
            return self.sql(ctx, slot, Sql::TakeLock { key: req.key, lease });
        }
        self.in_flight(ctx, slot)
    }

    /// The key is held by another request: the design's in-flight policy.
    fn in_flight(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        if self.job(slot).client.is_none() {
            return self.drop_job(ctx, slot); // Its holder is alive after all.
        }
        match self.design.in_flight {
            InFlight::Reject409 => self.reject(ctx, slot, Status::Conflict),
            InFlight::Proceed => {
                self.end_tx(ctx, slot);
                self.job(slot).charge = None;
                self.charge(ctx, slot)
            }
            InFlight::Block => {
                self.end_tx(ctx, slot);
                let call = self.job(slot).call;
                self.job(slot).step = Step::Poll;
                ctx.set_timer(POLL_US, Timer::Server(ServerTimer::Poll { slot, call }));
            }
        }
    }

    fn not_found(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let d = self.design;
        if self.job(slot).client.is_none() {
            return self.drop_job(ctx, slot);
        }
        if d.result_storage == ResultStorage::OnlyCompletedKeys {
            self.end_tx(ctx, slot);
            return self.charge(ctx, slot);
        }
        let r = self.job(slot).req;
        let lease = self.lease(ctx);
        self.job(slot).step = Step::InsertKey;
        let insert = Sql::Insert { key: r.key, op: r.op, fp: r.amount, lease, point: RecoveryPoint::Started, charge: None };
        self.sql(ctx, slot, insert);
    }

    /// The key is ours (inserted, or taken over after its lease expired).
    fn claimed(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, takeover: bool) {
        let r = self.job(slot).req;
        ctx.observe(Obs::KeyClaimed { key: r.key, op: r.op, takeover });
        let storage = self.design.result_storage;
        match storage {
            ResultStorage::SameTransaction => self.charge(ctx, slot),
            _ if self.job(slot).in_tx => self.commit(ctx, slot, Step::ClaimCommit),
            _ if self.job(slot).charge.is_some() => self.complete(ctx, slot),
            _ => self.charge(ctx, slot),
        }
    }

    /// Phase 2: move the money.
    fn charge(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let d = self.design;
        let r = self.job(slot).req;
        if self.job(slot).charge.is_some() {
            return self.complete(ctx, slot); // Resumed past the charge's recovery point.
        }
        self.job(slot).step = Step::Charge;
        match d.charge {
            ChargeTarget::LocalLedger => {
                // One statement charges and moves the key on: to finished when the result shares
                // the transaction, to the charge's recovery point in Stripe's atomic phases.
                let then = match (d.result_storage, d.recovery) {
                    (ResultStorage::SameTransaction, _) => Some((RecoveryPoint::Started, RecoveryPoint::Finished)),
                    (_, Recovery::RecoveryPoints) => Some((RecoveryPoint::Started, RecoveryPoint::ChargeCreated)),
                    _ => None,
                };
                self.sql(ctx, slot, Sql::InsertCharge { key: r.key, op: r.op, amount: r.amount, then })
            }
            ChargeTarget::Provider | ChargeTarget::KeyedProvider => {
                let call = self.new_call();
                self.job(slot).call = call;
                let key = (d.charge == ChargeTarget::KeyedProvider).then_some(r.key);
                ctx.send(PROVIDER, Msg::Charge(ChargeCall { req: call, key, op: r.op, order_key: r.key, amount: r.amount }));
                self.arm_timeout(ctx, slot);
            }
        }
    }

    fn charged(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, charge: ChargeId) {
        let d = self.design;
        let (key, amount) = (self.job(slot).req.key, self.job(slot).req.amount);
        self.job(slot).charge = Some(charge);
        self.last_charge = Some((charge, amount));
        match (d.charge, d.recovery, d.result_storage) {
            (_, _, ResultStorage::SameTransaction) => self.commit_result(ctx, slot),
            (ChargeTarget::LocalLedger, _, _) => self.commit(ctx, slot, Step::ChargeCommit),
            (_, Recovery::RecoveryPoints, _) => {
                self.job(slot).step = Step::Record;
                let advance = Sql::Advance { key, point: RecoveryPoint::ChargeCreated, charge: Some(charge), unlock: false };
                self.sql(ctx, slot, advance)
            }
            _ => self.complete(ctx, slot),
        }
    }

    /// Phase 3: store the result.
    pub(super) fn complete(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let d = self.design;
        let j = self.job(slot);
        let (r, charge) = (j.req, j.charge.expect("charged before completing"));
        if self.order_first(ctx, slot) {
            return; // Checkout chain on Redis: the order commits first, then `complete` again.
        }
        let j = self.job(slot);
        j.step = Step::Complete;
        match (d.key_claim, d.result_storage) {
            (KeyClaim::SetNx, _) => {
                self.redis(ctx, slot, RedisCmd::Set { key: r.key, value: Value::Done { fp: r.amount, charge, amount: r.amount } })
            }
            (_, ResultStorage::OnlyCompletedKeys) => self.sql(ctx, slot, Sql::InsertDone { key: r.key, op: r.op, fp: r.amount, charge }),
            _ => self.sql(ctx, slot, Sql::Advance { key: r.key, point: RecoveryPoint::Finished, charge: Some(charge), unlock: true }),
        }
    }

    /// Phase 4: respond with the result just stored.
    pub(super) fn succeed(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let j = self.job(slot);
        let charge = j.charge.expect("charged");
        let (key, amount) = (j.req.key, j.req.amount);
        ctx.observe(Obs::ResultStored { key, charge });
        self.respond(ctx, slot, Status::Ok { charge, amount, replayed: false });
    }
}
