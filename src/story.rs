//! The one causal sentence that opens a counterexample's explanation ("the store crashed 0.17 ms
//! after acknowledging SETNX for key 0x0 and before its next fsync; the key was lost; ...").
//!
//! It is built from the run itself, replayed with its typed history, fault log and timeline:
//! which node crashed and how, what it had acknowledged, what was lost, what the retry did. No
//! sentence is written per preset. The payment path's double charge gets the full story (a key
//! lost in a store crash, a fresh key per retry, an expired or taken-over key, a provider that
//! charged twice); every other violation gets the generic one, which still names the faults of
//! the run and the violating event.

use invariants::{ChargeRow, Obs};
use models::knobs::{ChargeTarget, KeyClaim, KeyStore, LeaseClock};
use models::scenario::Path;
use models::Scenario;
use sim::{FaultKind, FaultNote, Semantics, Sim, TraceEvent, TraceKind, Violation};

/// The story of the run of `scenario` under `tape` (read in `semantics`); `None` if it violates
/// nothing.
pub fn tell(scenario: &Scenario, semantics: Semantics, tape: &[u32]) -> Option<String> {
    let model = scenario.model();
    let mut sim = Sim::new();
    semantics.apply(&mut sim);
    // Only the payment stories read the trace; an overload fleet's would take gigabytes.
    let payment = matches!(scenario.path(), Path::Payment | Path::Chain);
    sim.set_trace(payment);
    let outcome = sim.run_tape(&model, tape);
    let v = outcome.verdict.violation()?;
    let run = Run {
        scenario,
        history: sim.history().iter().map(|e| (e.at_us, e.node, e.obs)).collect(),
        faults: sim.fault_log(),
        trace: sim.trace(),
        names: sim::Model::config(&model).nodes.iter().map(|n| n.name.clone()).collect(),
    };
    let told = if payment && v.invariant == "exactly_once_charge" { run.double_charge(v) } else { None };
    Some(told.unwrap_or_else(|| run.generic(v)))
}

struct Run<'a> {
    scenario: &'a Scenario,
    history: Vec<(u64, usize, Obs)>,
    faults: &'a [FaultNote],
    trace: &'a [TraceEvent],
    names: Vec<String>,
}

fn ms(us: u64) -> String {
    invariants::ms(us)
}

fn key(k: u64) -> String {
    format!("{k:#x}")
}

impl Run<'_> {
    fn name(&self, node: usize) -> &str {
        self.names.get(node).map_or("?", |s| s.as_str())
    }

    fn node_named(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// "a double charge" told from its cause: why the second request came, and why it charged.
    fn double_charge(&self, v: &Violation) -> Option<String> {
        let charged: Vec<(u64, ChargeRow)> = v
            .events
            .iter()
            .filter_map(|&i| match self.history.get(i) {
                Some(&(at, _, Obs::Charged { row })) => Some((at, row)),
                _ => None,
            })
            .collect();
        let (first, second) =
            charged.iter().enumerate().find_map(|(i, a)| charged[i + 1..].iter().find(|b| b.1.op == a.1.op).map(|b| (*a, *b)))?;
        let op = first.1.op;
        let again = self.request_behind(op, second);
        let cause = if first.1.key != second.1.key {
            format!(
                "{again} carried a fresh idempotency key ({} after {}), so the server took it for a new payment and charged again (#{} at {})",
                key(second.1.key),
                key(first.1.key),
                second.1.charge,
                ms(second.0)
            )
        } else {
            self.same_key(first, second, &again)
        };
        Some(format!("{}.", capitalized(&cause)))
    }

    /// Why one key was charged twice.
    fn same_key(&self, first: (u64, ChargeRow), second: (u64, ChargeRow), again: &str) -> String {
        let k = first.1.key;
        let claims: Vec<(u64, usize, bool)> = self
            .history
            .iter()
            .filter_map(|&(at, node, ref o)| match *o {
                Obs::KeyClaimed { key, takeover, .. } if key == k && at <= second.0 => Some((at, node, takeover)),
                _ => None,
            })
            .collect();
        let charged_again = format!("charged again (#{} at {})", second.1.charge, ms(second.0));
        let design = self.scenario.payment();
        let retention = design.provider.key_retention_us;
        if design.server.charge == ChargeTarget::KeyedProvider && second.0 >= first.0 + retention {
            return format!(
                "the provider charged key {} at {} and forgot the call's key {} later (its key retention); {again} called it again with that key at {}, and it {charged_again}",
                key(k),
                ms(first.0),
                ms(retention),
                ms(second.0)
            );
        }
        let [(c1, claimer, _), .., (c2, taker, takeover)] = claims[..] else {
            let by = match design.server.charge {
                ChargeTarget::LocalLedger => "the ledger",
                _ => "the provider",
            };
            return format!(
                "{again} for key {} reached {by}, which {charged_again}, while the first charge (#{} at {}) was in flight: no claim of the key kept the second request out",
                key(k),
                first.1.charge,
                ms(first.0)
            );
        };
        let store = self.node_named("store");
        let crash = self.faults.iter().find(|f| {
            Some(f.node) == store
                && f.at_us > c1
                && f.at_us < c2
                && matches!(f.kind, FaultKind::Crash { writes_lost, .. } if writes_lost > 0)
        });
        if let (Some(crash), Some(store)) = (crash, store) {
            let FaultKind::Crash { writes_lost, kind } = crash.kind else { unreachable!("a crash") };
            // The acknowledgement is the store's last reply to the claiming server before the claim.
            let acked = self
                .trace
                .iter()
                .rfind(|e| e.node == store && e.at_us <= c1 && matches!(e.kind, TraceKind::Send { to, .. } if to == claimer))
                .map_or(c1, |e| e.at_us);
            let how = match kind {
                sim::CrashKind::Machine => "crashed",
                sim::CrashKind::Process => "'s process crashed",
            };
            return format!(
                "the store{} {} after acknowledging {} for key {} and before its next fsync, losing {writes_lost} un-fsynced write{}; the key was lost; {again} claimed it again at {} and {charged_again}",
                if how.starts_with('\'') { how.to_string() } else { format!(" {how}") },
                ms(crash.at_us - acked),
                self.claim_verb(),
                key(k),
                if writes_lost == 1 { "" } else { "s" },
                ms(c2),
            );
        }
        let server = design.server;
        let early = server.lease_clock == LeaseClock::App && c2 < c1 + server.lease_us;
        if takeover && early {
            // The lease had not run out by true time: the taker's clock runs ahead.
            return format!(
                "{} took over key {} at {}, only {} into {}'s {} lease: the instances read leases on their own clocks (lease_clock = \"app\"), and {}'s runs at least {} ahead; {again} {charged_again}, though the first holder had charged (#{})",
                self.name(taker),
                key(k),
                ms(c2),
                ms(c2 - c1),
                self.name(claimer),
                ms(server.lease_us),
                self.name(taker),
                ms(c1 + server.lease_us - c2),
                first.1.charge
            );
        }
        if takeover {
            let pause = self
                .faults
                .iter()
                .find(|f| f.node == claimer && f.at_us >= c1 && f.at_us < c2 && matches!(f.kind, FaultKind::Pause { .. }));
            let why = match pause {
                Some(FaultNote { at_us, kind: FaultKind::Pause { until_us }, .. }) => format!(
                    "{} paused for {} at {} while holding key {}, its lease ran out",
                    self.name(claimer),
                    ms(until_us - at_us),
                    ms(*at_us),
                    key(k)
                ),
                _ => format!("the lease on key {} ran out while {} still held it", key(k), self.name(claimer)),
            };
            return format!(
                "{why}; {again} took the key over at {} and {charged_again}, though the first holder had charged (#{})",
                ms(c2),
                first.1.charge
            );
        }
        if let Some(evicted) = self.evicted(k, c1, c2) {
            return format!("{evicted}; {again} claimed it again at {} and {charged_again}", ms(c2));
        }
        if let Some(ttl) = self.ttl_us().filter(|ttl| c2 >= c1 + ttl) {
            return format!(
                "key {} expired {} after its claim (its TTL); {again} claimed it again at {} and {charged_again}",
                key(k),
                ms(ttl),
                ms(c2)
            );
        }
        let released = self.history.iter().find_map(|&(at, node, ref o)| match *o {
            Obs::KeyReleased { key } if key == k && at > c1 && at < c2 => Some((at, node)),
            _ => None,
        });
        if let Some((at, node)) = released {
            return format!(
                "{} released key {} at {} after its call failed, though the call had charged (#{} at {}); {again} claimed it again and {charged_again}",
                self.name(node),
                key(k),
                ms(at),
                first.1.charge,
                ms(first.0)
            );
        }
        format!(
            "key {} was claimed at {} and again at {}, while the first claim was still in flight: the {} did not keep the second request out, and it {charged_again}",
            key(k),
            ms(c1),
            ms(c2),
            self.claim_verb()
        )
    }

    /// The request that led to `charge`, told as how it came about ("the client timed out at
    /// 50.000 ms and its retry (attempt 2)").
    fn request_behind(&self, op: u32, charge: (u64, ChargeRow)) -> String {
        let sent = self.history.iter().rev().find_map(|&(at, node, ref o)| match *o {
            Obs::Sent { op: o, attempt, copy, key, .. } if o == op && key == charge.1.key && at <= charge.0 => {
                Some((at, node, attempt, copy))
            }
            _ => None,
        });
        let Some((sent_at, client, attempt, copy)) = sent else { return "a second request".into() };
        if copy > 0 {
            return format!("a second copy of attempt {attempt} (a double click)");
        }
        if attempt <= 1 {
            return "a second request".into();
        }
        let prev = attempt - 1;
        // The last answer to this client lost before the retry went out.
        let lost = self.faults.iter().rfind(|f| {
            matches!(f.kind, FaultKind::Lost { to, .. } if to == client) && f.at_us <= sent_at && self.name(f.node).starts_with("server")
        });
        let lost = lost.map(|f| format!("the response from {} was lost at {}, ", self.name(f.node), ms(f.at_us))).unwrap_or_default();
        let ended = self.history.iter().find_map(|&(at, _, ref o)| match *o {
            Obs::TimedOut { op: o, attempt: a } if o == op && a == prev => Some(format!("the client timed out at {}", ms(at))),
            Obs::Received { op: o, attempt: a, status, .. } if o == op && a == prev && status.code() != 200 => {
                Some(format!("attempt {prev} got {status} at {}", ms(at)))
            }
            _ => None,
        });
        match ended {
            Some(ended) => format!("{lost}{ended}, and its retry (attempt {attempt})"),
            None => format!("{lost}the retry (attempt {attempt})"),
        }
    }

    /// The store command that claims a key.
    fn claim_verb(&self) -> &'static str {
        match self.scenario.payment().server.key_claim {
            KeyClaim::SetNx => "SETNX",
            KeyClaim::InsertOnConflict => "INSERT .. ON CONFLICT",
            KeyClaim::SelectThenInsert => "SELECT-then-INSERT",
            #[allow(unreachable_patterns)]
            _ => "claim",
        }
    }

    /// "the store was full (maxmemory_keys = 4) and evicted key 0x0 at 12.000 ms (allkeys_lru)",
    /// if a Redis store with `maxmemory` evicted key `k` between its two claims.
    fn evicted(&self, k: u64, c1: u64, c2: u64) -> Option<String> {
        let KeyStore::Redis { maxmemory_keys, maxmemory_policy, .. } = self.scenario.payment().store else { return None };
        let store = self.node_named("store")?;
        // An eviction is written to the AOF as a deletion; a release would have been observed.
        let del = format!("key: {k}, value: None");
        let at = self.trace.iter().find_map(|e| match &e.kind {
            TraceKind::Write { record } if e.node == store && e.at_us > c1 && e.at_us < c2 && record.contains(&del) => Some(e.at_us),
            _ => None,
        })?;
        let released = self.history.iter().any(|&(t, _, ref o)| matches!(*o, Obs::KeyReleased { key } if key == k && t > c1 && t <= at));
        (maxmemory_keys > 0 && !released).then(|| {
            format!(
                "the store was full (maxmemory_keys = {maxmemory_keys}) and evicted key {} at {} ({})",
                key(k),
                ms(at),
                maxmemory_policy.name()
            )
        })
    }

    /// The key store's TTL on a claimed key, if it has one.
    fn ttl_us(&self) -> Option<u64> {
        match self.scenario.payment().store {
            KeyStore::Redis { ttl_us, lock_ttl_us, .. } => Some(if lock_ttl_us > 0 { lock_ttl_us.min(ttl_us) } else { ttl_us }),
            _ => None,
        }
    }

    /// Any violation: the faults that struck, then what broke, where and when.
    fn generic(&self, v: &Violation) -> String {
        let faults: Vec<String> = self.faults.iter().filter(|f| !matches!(f.kind, FaultKind::Restart)).map(|f| self.fault(f)).collect();
        let head = v.message.split(':').next().unwrap_or(&v.message).trim();
        let last = v.events.iter().filter_map(|&i| self.history.get(i)).max_by_key(|e| e.0);
        let at = last.map(|&(at, node, o)| format!(" at {} ({} on {})", ms(at), obs_name(&o), self.name(node))).unwrap_or_default();
        let shown = 4;
        let mut list = faults.iter().take(shown).cloned().collect::<Vec<_>>().join(", ");
        if faults.len() > shown {
            list.push_str(&format!(" and {} more", faults.len() - shown));
        }
        let before = self.faults.iter().all(|f| Some(f.at_us) <= last.map(|e| e.0));
        match (faults.is_empty(), before) {
            (true, _) => format!("With no fault at all (the interleaving alone), {} broke{at}: {head}.", v.invariant),
            (false, true) => format!("After {list}, {} broke{at}: {head}.", v.invariant),
            (false, false) => format!("{} broke{at}: {head}; the faults of the run: {list}.", capitalized(&v.invariant)),
        }
    }

    fn fault(&self, f: &FaultNote) -> String {
        let node = self.name(f.node);
        let at = ms(f.at_us);
        match f.kind {
            FaultKind::Crash { writes_lost, kind } => {
                let what = match kind {
                    sim::CrashKind::Machine => "crashed",
                    sim::CrashKind::Process => "had its process crash",
                };
                let lost = if writes_lost > 0 {
                    format!(", losing {writes_lost} un-fsynced write{}", if writes_lost == 1 { "" } else { "s" })
                } else {
                    String::new()
                };
                format!("{node} {what} at {at}{lost}")
            }
            FaultKind::Restart => format!("{node} restarted at {at}"),
            FaultKind::LateRestart => format!("{node}'s restart after its crash at {at} was late: it may come at any later moment"),
            FaultKind::Pause { until_us } => format!("{node} paused at {at} for {}", ms(until_us - f.at_us)),
            FaultKind::Partition { .. } => format!("{node} was cut off at {at}"),
            FaultKind::Lost { to, .. } => format!("a message {node} -> {} was lost at {at}", self.name(to)),
            FaultKind::Duplicated { to } => format!("a message {node} -> {} was duplicated at {at}", self.name(to)),
            FaultKind::Late { to } => {
                format!("a message {node} -> {} was sent late at {at}: it may arrive at any later moment", self.name(to))
            }
        }
    }
}

/// `Charged { row: .. }` -> `Charged`.
fn obs_name(o: &Obs) -> String {
    let d = format!("{o:?}");
    d.split([' ', '{', '(']).next().unwrap_or_default().to_string()
}

/// The sentence's first letter up, unless it opens with a node's or an invariant's name, which
/// keep their spelling.
fn capitalized(s: &str) -> String {
    const WORDS: [&str; 6] = ["the ", "a ", "an ", "key ", "after ", "with "];
    if !WORDS.iter().any(|w| s.starts_with(w)) {
        return s.to_string();
    }
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
