//! What the key store said of a key, in one shape for Postgres's row and Redis's value.

use crate::payment::postgres::{KeyRow, RecoveryPoint};
use crate::payment::redis::Value;
use invariants::ChargeId;

/// What the key store said of the key, in one shape for both stores.
#[derive(Copy, Clone, Debug, Hash)]
pub(super) struct Existing {
    pub(super) fp: u32,
    pub(super) done: bool,
    pub(super) failed: bool,
    pub(super) charge: Option<ChargeId>,
    pub(super) point: RecoveryPoint,
    pub(super) locked_until_us: u64,
}

impl From<KeyRow> for Existing {
    fn from(r: KeyRow) -> Self {
        Existing {
            fp: r.fp,
            done: r.point == RecoveryPoint::Finished,
            failed: r.point == RecoveryPoint::Failed,
            charge: r.charge,
            point: r.point,
            locked_until_us: r.locked_until_us,
        }
    }
}

impl From<Value> for Existing {
    fn from(v: Value) -> Self {
        let open = Existing { fp: 0, done: false, failed: false, charge: None, point: RecoveryPoint::Started, locked_until_us: u64::MAX };
        match v {
            Value::InFlight { fp } => Existing { fp, ..open },
            Value::Done { fp, charge, .. } => {
                Existing { fp, done: true, charge: Some(charge), point: RecoveryPoint::Finished, locked_until_us: 0, ..open }
            }
            Value::Failed { fp } => Existing { fp, failed: true, point: RecoveryPoint::Failed, locked_until_us: 0, ..open },
        }
    }
}
