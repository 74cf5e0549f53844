//! The server's idempotency layer. A request moves through Stripe's phases: claim the key,
//! charge, store the result, respond. Each knob of `ServerDesign` changes how a phase is done:
//! whether the claim is one atomic statement or a SELECT then an INSERT, whether the charge and
//! the stored result share a transaction, what an in-flight key gets, how a takeover resumes.

use super::postgres::{KeyRow, RecoveryPoint, Sql, SqlReply};
use super::redis::{RedisCmd, RedisReply, Value};
use super::{Msg, Node, Record, Request, Shared, Timer, PROVIDER, STORE};
use crate::knobs::{ChargeTarget, Fingerprint, InFlight, KeyClaim, Recovery, ResultStorage, ServerDesign};
use invariants::{ChargeId, Obs, Status};
use sim::{Ctx, NodeId};

/// How long a blocked request sleeps before looking at an in-flight key again.
const POLL_US: u64 = 5_000;
/// Requests waiting for a worker beyond this get 503.
const ACCEPT_QUEUE_MAX: usize = 256;

/// Where a job is: what it waits for.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
enum Step {
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
}

/// What the key store said of the key, in one shape for both stores.
#[derive(Copy, Clone, Debug, Hash)]
struct Existing {
    fp: u32,
    done: bool,
    charge: Option<ChargeId>,
    point: RecoveryPoint,
    locked_until_us: u64,
}

impl From<KeyRow> for Existing {
    fn from(r: KeyRow) -> Self {
        Existing {
            fp: r.fp,
            done: r.point == RecoveryPoint::Finished,
            charge: r.charge,
            point: r.point,
            locked_until_us: r.locked_until_us,
        }
    }
}

impl From<Value> for Existing {
    fn from(v: Value) -> Self {
        match v {
            Value::InFlight { fp } => Existing { fp, done: false, charge: None, point: RecoveryPoint::Started, locked_until_us: u64::MAX },
            Value::Done { fp, charge, .. } => {
                Existing { fp, done: true, charge: Some(charge), point: RecoveryPoint::Finished, locked_until_us: 0 }
            }
        }
    }
}

#[derive(Clone, Debug, Hash)]
struct Job {
    client: NodeId,
    req: Request,
    /// The outstanding call: a transaction id (Postgres) or a request id (Redis, provider).
    call: u64,
    /// A transaction is open on `call`.
    in_tx: bool,
    step: Step,
    charge: Option<ChargeId>,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ServerTimer {
    Poll { slot: usize, call: u64 },
}

#[derive(Clone, Debug, Hash)]
pub struct Server {
    design: Shared<ServerDesign>,
    postgres: bool,
    boots: u32,
    next_call: u32,
    jobs: Vec<Option<Job>>,
    queue: Vec<(NodeId, Request)>,
}

/// What came back from the store or the provider, routed to the job that waits for it.
pub enum Reply {
    Sql(SqlReply),
    Redis(RedisReply),
    Charged(ChargeId),
}

impl Server {
    pub fn new(design: Shared<ServerDesign>, postgres: bool) -> Self {
        let jobs = vec![None; design.workers as usize];
        Server { design, postgres, boots: 0, next_call: 0, jobs, queue: Vec::new() }
    }

    pub fn on_start(&mut self, ctx: &mut Ctx<'_, Node>) {
        // The boot count is durable: call ids of this incarnation never collide with older ones.
        ctx.write(Record::Boot);
        ctx.fsync();
        self.boots += 1;
        if self.boots > 1 && self.postgres {
            ctx.send(STORE, Msg::ServerRestarted { boot: self.boots });
        }
    }

    /// Become `Server::new(design, postgres)`, keeping the buffers.
    pub fn reset(&mut self, design: Shared<ServerDesign>, postgres: bool) {
        let Server { design: d, postgres: p, boots, next_call, jobs, queue } = self;
        (*d, *p, *boots, *next_call) = (design, postgres, 0, 0);
        jobs.clear();
        jobs.resize(design.workers as usize, None);
        queue.clear();
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let boots = durable.iter().filter(|r| matches!(r, Record::Boot)).count() as u32;
        self.reset(self.design, self.postgres);
        self.boots = boots;
    }

    pub fn on_request(&mut self, ctx: &mut Ctx<'_, Node>, client: NodeId, req: Request) {
        match self.jobs.iter().position(Option::is_none) {
            Some(slot) => self.start(ctx, slot, client, req),
            None if self.queue.len() < ACCEPT_QUEUE_MAX => self.queue.push((client, req)),
            None => ctx
                .send(client, Msg::Response { op: req.op, attempt: req.attempt, status: Status::Unavailable { retry_after_us: 100_000 } }),
        }
    }

    fn new_call(&mut self) -> u64 {
        self.next_call += 1;
        (self.boots as u64) << 32 | self.next_call as u64
    }

    fn start(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, client: NodeId, req: Request) {
        self.jobs[slot] = Some(Job { client, req, call: 0, in_tx: false, step: Step::Claim, charge: None });
        self.claim(ctx, slot);
    }

    /// Phase 1: claim the key (or, for `only_completed_keys`, look for a stored result).
    fn claim(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let d = self.design;
        let r = self.job(slot).req;
        let lease = ctx.now_us() + d.lease_us;
        self.job(slot).step = Step::Claim;
        match (d.key_claim, d.result_storage) {
            (KeyClaim::SetNx, ResultStorage::OnlyCompletedKeys) => self.redis(ctx, slot, RedisCmd::Get { key: r.key }),
            (KeyClaim::SetNx, _) => self.redis(ctx, slot, RedisCmd::SetNx { key: r.key, value: Value::InFlight { fp: r.amount } }),
            (_, ResultStorage::OnlyCompletedKeys) | (KeyClaim::SelectThenInsert, _) => self.sql(ctx, slot, Sql::Select { key: r.key }),
            (KeyClaim::InsertOnConflict, _) => {
                self.sql(ctx, slot, Sql::Claim { key: r.key, op: r.op, fp: r.amount, locked_until_us: lease })
            }
        }
    }

    /// A reply for call `call`; stale replies (the job moved on or is gone) are dropped.
    pub fn on_reply(&mut self, ctx: &mut Ctx<'_, Node>, call: u64, reply: Reply) {
        let Some(slot) = self.jobs.iter().position(|j| j.as_ref().is_some_and(|j| j.call == call && j.step != Step::Poll)) else { return };
        let step = self.job(slot).step;
        match (step, reply) {
            (_, Reply::Sql(SqlReply::TxAborted)) => self.fail(ctx, slot),
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
            (Step::TakeLock, Reply::Sql(SqlReply::Updated(false))) => self.reject(ctx, slot, Status::Conflict),
            (Step::TakeLockCommit, Reply::Sql(SqlReply::Committed)) => self.claimed(ctx, slot, true),
            (Step::Charge, Reply::Sql(SqlReply::Charged(c)) | Reply::Charged(c)) => self.charged(ctx, slot, c),
            // Another holder of the key ran this phase first (a serialization failure).
            (Step::Charge, Reply::Sql(SqlReply::Updated(false))) => self.reject(ctx, slot, Status::Conflict),
            (Step::ChargeCommit | Step::RecordCommit, Reply::Sql(SqlReply::Committed)) => self.complete(ctx, slot),
            (Step::Record, Reply::Sql(SqlReply::Updated(true))) => self.commit(ctx, slot, Step::RecordCommit),
            (Step::Complete, Reply::Sql(SqlReply::Updated(true) | SqlReply::Inserted)) => self.commit(ctx, slot, Step::CompleteCommit),
            (Step::Complete, Reply::Redis(RedisReply::Ok)) | (Step::CompleteCommit, Reply::Sql(SqlReply::Committed)) => {
                self.succeed(ctx, slot)
            }
            (step, _) => {
                debug_assert!(false, "unexpected reply in step {step:?}");
                self.fail(ctx, slot)
            }
        }
    }

    /// The key store found the key: replay, refuse, wait, take over or proceed.
    fn found(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, e: Existing) {
        let d = self.design;
        let req = self.job(slot).req;
        if d.fingerprint == Fingerprint::Reject422 && e.fp != req.amount {
            return self.reject(ctx, slot, Status::Mismatch);
        }
        if e.done {
            ctx.observe(Obs::KeyReplayed { key: req.key });
            let status = Status::Ok { charge: e.charge.expect("a finished key has its charge"), amount: e.fp, replayed: true };
            return self.finish(ctx, slot, status);
        }
        if d.recovery != Recovery::None && e.locked_until_us <= ctx.now_us() {
            // The lease expired: the request that held it is presumed dead. Take the key over.
            let locked_until_us = ctx.now_us() + d.lease_us;
            self.job(slot).charge =
                if d.recovery == Recovery::RecoveryPoints && e.point == RecoveryPoint::ChargeCreated { e.charge } else { None };
            self.job(slot).step = Step::TakeLock;
            return self.sql(ctx, slot, Sql::TakeLock { key: req.key, locked_until_us });
        }
        match d.in_flight {
            InFlight::Reject409 => self.reject(ctx, slot, Status::Conflict),
            InFlight::Proceed => {
                self.end_tx(ctx, slot);
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
        if d.result_storage == ResultStorage::OnlyCompletedKeys {
            self.end_tx(ctx, slot);
            return self.charge(ctx, slot);
        }
        let r = self.job(slot).req;
        let locked_until_us = ctx.now_us() + d.lease_us;
        self.job(slot).step = Step::InsertKey;
        let insert = Sql::Insert { key: r.key, op: r.op, fp: r.amount, locked_until_us, point: RecoveryPoint::Started, charge: None };
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
                ctx.send(PROVIDER, Msg::Charge { req: call, key, op: r.op, order_key: r.key, amount: r.amount });
            }
        }
    }

    fn charged(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, charge: ChargeId) {
        let d = self.design;
        let key = self.job(slot).req.key;
        self.job(slot).charge = Some(charge);
        match (d.charge, d.recovery, d.result_storage) {
            (_, _, ResultStorage::SameTransaction) => self.commit(ctx, slot, Step::CompleteCommit),
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
    fn complete(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let d = self.design;
        let j = self.job(slot);
        let (r, charge) = (j.req, j.charge.expect("charged before completing"));
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
    fn succeed(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let j = self.job(slot);
        let status = Status::Ok { charge: j.charge.expect("charged"), amount: j.req.amount, replayed: false };
        self.respond(ctx, slot, status);
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: ServerTimer) {
        let ServerTimer::Poll { slot, call } = t;
        if self.jobs[slot].as_ref().is_some_and(|j| j.call == call && j.step == Step::Poll) {
            self.claim(ctx, slot);
        }
    }

    /// The key store restarted: every call waiting on it is lost.
    pub fn on_store_restarted(&mut self, ctx: &mut Ctx<'_, Node>) {
        for slot in 0..self.jobs.len() {
            let waits_on_store = self.jobs[slot]
                .as_ref()
                .is_some_and(|j| j.step != Step::Poll && !(j.step == Step::Charge && self.design.charge != ChargeTarget::LocalLedger));
            if waits_on_store {
                self.job(slot).in_tx = false;
                self.fail(ctx, slot);
            }
        }
    }

    fn reject(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, status: Status) {
        ctx.observe(Obs::KeyRejected { key: self.job(slot).req.key, code: status.code() });
        self.finish(ctx, slot, status);
    }

    fn fail(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        self.finish(ctx, slot, Status::ServerError);
    }

    /// Respond, rolling back an open (read-only or abandoned) transaction without waiting.
    fn finish(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, status: Status) {
        self.end_tx(ctx, slot);
        self.respond(ctx, slot, status);
    }

    fn respond(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, status: Status) {
        let j = self.jobs[slot].take().expect("job");
        ctx.send(j.client, Msg::Response { op: j.req.op, attempt: j.req.attempt, status });
        if !self.queue.is_empty() {
            let (client, req) = self.queue.remove(0);
            self.start(ctx, slot, client, req);
        }
    }

    fn end_tx(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize) {
        let j = self.job(slot);
        if j.in_tx {
            j.in_tx = false;
            let tx = j.call;
            ctx.send(STORE, Msg::Sql { tx, begin: false, sql: Sql::Rollback, lock_timeout_us: 0 });
        }
    }

    fn commit(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, then: Step) {
        self.job(slot).step = then;
        self.sql(ctx, slot, Sql::Commit);
        self.job(slot).in_tx = false;
    }

    /// Send a statement, beginning a transaction if none is open.
    fn sql(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, sql: Sql) {
        let begin = !self.job(slot).in_tx;
        if begin {
            let call = self.new_call();
            self.job(slot).call = call;
            self.job(slot).in_tx = true;
        }
        let lock_timeout_us = if self.design.in_flight == InFlight::Reject409 { self.design.lock_timeout_us } else { 0 };
        ctx.send(STORE, Msg::Sql { tx: self.job(slot).call, begin, sql, lock_timeout_us });
    }

    fn redis(&mut self, ctx: &mut Ctx<'_, Node>, slot: usize, cmd: RedisCmd) {
        let call = self.new_call();
        self.job(slot).call = call;
        ctx.send(STORE, Msg::Redis { req: call, cmd });
    }

    fn job(&mut self, slot: usize) -> &mut Job {
        self.jobs[slot].as_mut().expect("a job in this slot")
    }
}
