//! An external payment provider (Stripe-like). A call charges on receipt, durably, and is
//! answered `latency_us` later; a crash in between keeps the charge and loses the answer. A call
//! may fail with a 5xx before charging. With an idempotency key it deduplicates: a repeat of a
//! key returns the first charge while the key is retained (`key_retention_us`; Stripe: 24 h),
//! a call while another with the same key is still being processed gets 409 "key in use", and a
//! repeat with another amount gets an idempotency error.

use super::{Msg, Node, Record, Shared, Timer};
use crate::knobs::ProviderDesign;
use invariants::{ChargeId, ChargeRow, Key, Obs, OpId};
use sim::{ChoiceKind, Ctx, NodeId};

/// The provider's answer to a charge call.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ProviderReply {
    Charged(ChargeId),
    /// 5xx: nothing was charged (the caller cannot know that).
    Error,
    /// 409: a call with this key is still being processed.
    KeyInUse,
    /// 400 idempotency_error: the key was first used with another amount.
    Mismatch,
}

/// A keyed call the provider remembers.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct KeyedCall {
    pub key: Key,
    pub charge: ChargeId,
    pub amount: u32,
    pub at_us: u64,
}

#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub enum ProviderTimer {
    /// Answer call `req` of node `to` now.
    Reply { to: NodeId, req: u64, key: Option<Key>, reply: ProviderReply },
}

#[derive(Debug, Hash)]
pub struct Provider {
    cfg: Shared<ProviderDesign>,
    charges: Vec<ChargeRow>,
    keyed: Vec<KeyedCall>,
    /// Keys of calls being processed (answered later).
    busy: Vec<Key>,
    next_charge: ChargeId,
}
sim::clone_by_field!(Provider { cfg, charges, keyed, busy, next_charge });

/// One charge call as the server sends it.
#[derive(Copy, Clone, Debug, Hash, PartialEq, Eq)]
pub struct ChargeCall {
    pub req: u64,
    /// The call's idempotency key, if any.
    pub key: Option<Key>,
    pub op: OpId,
    /// Our idempotency key, recorded with the charge for the auditor.
    pub order_key: Key,
    pub amount: u32,
}

impl Provider {
    pub fn new(cfg: Shared<ProviderDesign>) -> Self {
        Provider { cfg, charges: Vec::new(), keyed: Vec::new(), busy: Vec::new(), next_charge: 1 }
    }

    /// Become `Provider::new(cfg)`, keeping the buffers.
    pub fn reset(&mut self, cfg: Shared<ProviderDesign>) {
        let Provider { cfg: c, charges, keyed, busy, next_charge } = self;
        (*c, *next_charge) = (cfg, 1);
        charges.clear();
        keyed.clear();
        busy.clear();
    }

    pub fn on_charge(&mut self, ctx: &mut Ctx<'_, Node>, from: NodeId, call: ChargeCall) {
        let now = ctx.now_us();
        let retention = self.cfg.key_retention_us;
        if let Some(k) = call.key {
            if self.busy.contains(&k) {
                return self.answer(ctx, from, call.req, None, ProviderReply::KeyInUse);
            }
            let known = self.keyed.iter().rev().find(|c| c.key == k && now.saturating_sub(c.at_us) < retention);
            if let Some(c) = known {
                let reply = if c.amount == call.amount { ProviderReply::Charged(c.charge) } else { ProviderReply::Mismatch };
                return self.answer(ctx, from, call.req, None, reply);
            }
        }
        if ctx.flip(ChoiceKind::Error, self.cfg.error_probability) {
            return self.answer(ctx, from, call.req, None, ProviderReply::Error);
        }
        let row = ChargeRow { charge: self.next_charge, op: call.op, key: call.order_key, amount: call.amount };
        self.next_charge += 1;
        self.charges.push(row);
        // The provider's own storage is durable before it answers.
        ctx.write(Record::Charge(row));
        if let Some(key) = call.key {
            let keyed = KeyedCall { key, charge: row.charge, amount: row.amount, at_us: now };
            self.keyed.push(keyed);
            ctx.write(Record::Keyed(keyed));
        }
        ctx.fsync();
        ctx.observe(Obs::Charged { row });
        self.answer(ctx, from, call.req, call.key, ProviderReply::Charged(row.charge));
    }

    /// Answer now, or after the latency (the key, if any, stays busy until then).
    fn answer(&mut self, ctx: &mut Ctx<'_, Node>, to: NodeId, req: u64, key: Option<Key>, reply: ProviderReply) {
        if self.cfg.latency_us == 0 {
            return ctx.send(to, Msg::ProviderReply { req, reply });
        }
        if let Some(k) = key {
            self.busy.push(k);
        }
        ctx.set_timer(self.cfg.latency_us, Timer::Provider(ProviderTimer::Reply { to, req, key, reply }));
    }

    pub fn on_timer(&mut self, ctx: &mut Ctx<'_, Node>, t: ProviderTimer) {
        let ProviderTimer::Reply { to, req, key, reply } = t;
        if let Some(k) = key {
            if let Some(i) = self.busy.iter().position(|b| *b == k) {
                self.busy.swap_remove(i);
            }
        }
        ctx.send(to, Msg::ProviderReply { req, reply });
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        let cfg = self.cfg;
        self.reset(cfg);
        for r in durable {
            match *r {
                Record::Charge(c) => {
                    self.charges.push(c);
                    self.next_charge = self.next_charge.max(c.charge + 1);
                }
                Record::Keyed(k) => self.keyed.push(k),
                _ => {}
            }
        }
    }
}
