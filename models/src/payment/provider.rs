//! An external payment provider (or a ledger service): it makes a charge per call, durably, and
//! with an idempotency key returns the first charge again for a repeated key (Stripe-like).

use super::{Msg, Node, Record, SERVER};
use invariants::{ChargeId, ChargeRow, Key, Obs, OpId};
use sim::Ctx;

#[derive(Clone, Debug, Hash, Default)]
pub struct Provider {
    charges: Vec<ChargeRow>,
    /// Which call key made which charge.
    keyed: Vec<(Key, ChargeId)>,
}

impl Provider {
    pub fn charges(&self) -> &[ChargeRow] {
        &self.charges
    }

    /// Become `Provider::default()`, keeping the buffers.
    pub fn reset(&mut self) {
        let Provider { charges, keyed } = self;
        charges.clear();
        keyed.clear();
    }

    /// `key`: the idempotency key the caller sent, if any.
    pub fn on_charge(&mut self, ctx: &mut Ctx<'_, Node>, req: u64, key: Option<Key>, op: OpId, order_key: Key, amount: u32) {
        if let Some(k) = key {
            if let Some(&(_, charge)) = self.keyed.iter().find(|(kk, _)| *kk == k) {
                return ctx.send(SERVER, Msg::Charged { req, charge });
            }
        }
        let row = ChargeRow { charge: self.charges.len() as ChargeId + 1, op, key: order_key, amount };
        self.charges.push(row);
        if let Some(k) = key {
            self.keyed.push((k, row.charge));
        }
        // The provider's own storage is durable before it answers.
        ctx.write(Record::Charge(row));
        ctx.fsync();
        ctx.observe(Obs::Charged { row });
        ctx.send(SERVER, Msg::Charged { req, charge: row.charge });
    }

    pub fn on_crash(&mut self, durable: &[Record]) {
        self.charges.clear();
        self.charges.extend(durable.iter().filter_map(|r| if let Record::Charge(c) = r { Some(*c) } else { None }));
        // Keyed charges survive: the call key is part of the charge record's identity.
        self.keyed.retain(|&(_, c)| c as usize <= self.charges.len());
    }
}
