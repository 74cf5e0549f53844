//! One recorded run as a text timeline, a mermaid sequence diagram or JSON.

use crate::ms;
use models::run::RunRecord;
use serde_json::json;
use sim::{CrashKind, LossCause, TraceKind, Verdict};
use std::collections::BTreeSet;
use std::fmt::Write;

/// The observations (history indices) the violation names.
pub fn marked(record: &RunRecord) -> BTreeSet<usize> {
    record.outcome.verdict.violation().map(|v| v.events.iter().copied().collect()).unwrap_or_default()
}

/// `Debug` text made easier to read: `Request(Request { .. })` -> `Request { .. }`, keys in hex
/// as the violation messages print them.
pub fn tidy(debug: &str) -> String {
    hex_keys(&collapse_newtypes(debug))
}

/// `Name(Name { .. })` -> `Name { .. }`.
fn collapse_newtypes(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut skip_close: Vec<usize> = Vec::new(); // indices of ')' to drop
    let mut i = 0;
    while i < chars.len() {
        if skip_close.contains(&i) {
            i += 1;
            continue;
        }
        if chars[i].is_ascii_uppercase() && (i == 0 || !chars[i - 1].is_alphanumeric()) {
            let start = i;
            let mut j = i;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            let name: String = chars[start..j].iter().collect();
            let inner: String = format!("({name} ");
            let rest: String = chars[j..].iter().take(inner.len()).collect();
            if rest == inner {
                // Find the ')' that closes chars[j].
                let mut depth = 0;
                for (k, &c) in chars.iter().enumerate().skip(j) {
                    match c {
                        '(' | '{' | '[' => depth += 1,
                        ')' | '}' | ']' => {
                            depth -= 1;
                            if depth == 0 {
                                skip_close.push(k);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                out.push_str(&name);
                i = j + 1 + name.len(); // skip "(Name"
                continue;
            }
            out.push_str(&name);
            i = j;
            continue;
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// `key: 65536` -> `key: 0x10000` (also `order_key`, `key: Some(..)`).
fn hex_keys(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(p) = rest.find("key: ") {
        let (head, tail) = rest.split_at(p + 5);
        out.push_str(head);
        let (prefix, tail) = if let Some(t) = tail.strip_prefix("Some(") { ("Some(", t) } else { ("", tail) };
        out.push_str(prefix);
        let digits = tail.chars().take_while(|c| c.is_ascii_digit()).count();
        match tail[..digits].parse::<u64>() {
            Ok(n) if digits > 0 => {
                let _ = write!(out, "{n:#x}");
            }
            _ => out.push_str(&tail[..digits]),
        }
        rest = &tail[digits..];
    }
    out.push_str(rest);
    out
}

fn cause(c: LossCause) -> &'static str {
    match c {
        LossCause::Network => "lost by the network",
        LossCause::Partition => "lost to a partition",
        LossCause::ReceiverDown => "dropped: receiver down or restarted",
    }
}

/// "1 thread", "2 threads".
pub(crate) fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// One line per event: time, node, what happened. Lines the violation names start with `*`.
pub fn text(record: &RunRecord, title: &str) -> String {
    let names = &record.node_names;
    let width = names.iter().map(|n| n.len()).max().unwrap_or(4).max(4);
    let marked = marked(record);
    let mut out = String::new();
    let s = &record.outcome.stats;
    let _ = writeln!(out, "{title}");
    let _ =
        writeln!(out, "{} events, {} choices, ended at {}; faults: {}", s.events, record.tape.len(), ms(s.sim_time_us), fault_list(record));
    let _ = writeln!(out);
    let _ = writeln!(out, "  {:>12}  {:width$}  {:8}  detail", "time", "node", "event");
    for e in &record.trace {
        let (verb, detail, mark) = match &e.kind {
            TraceKind::Send { to, msg, duplicated } => {
                let dup = if *duplicated { "  (duplicate copy)" } else { "" };
                (if *duplicated { "DUP" } else { "send" }, format!("-> {}  {}{dup}", names[*to], tidy(msg)), false)
            }
            TraceKind::LateRestart => {
                ("LATE", "its restart after this crash is late: it may come at any later moment, past restart_delay_us_max".into(), false)
            }
            TraceKind::Late { to } => (
                "LATE",
                format!(
                    "-> {}  a copy of the message sent above is late: it may arrive at any later moment, past delay_us_max",
                    names[*to]
                ),
                false,
            ),
            TraceKind::Lose { to, msg, cause: LossCause::ReceiverDown } if *to == e.node => {
                ("DROPPED", format!("{}  (arrived while down, or sent before its restart)", tidy(msg)), false)
            }
            TraceKind::Lose { to, msg, cause: c } => ("LOST", format!("-> {}  {}  ({})", names[*to], tidy(msg), cause(*c)), false),
            TraceKind::Deliver { from, msg } => ("deliver", format!("<- {}  {}", names[*from], tidy(msg)), false),
            TraceKind::Timer { timer } => ("timer", tidy(timer), false),
            TraceKind::Crash { writes_lost, kind } => (
                "CRASH",
                match (kind, *writes_lost) {
                    (CrashKind::Machine, 0) => "machine crash: volatile state gone; no un-fsynced writes".into(),
                    (CrashKind::Machine, n) => {
                        format!("machine crash: volatile state gone; {} LOST", plural(n, "un-fsynced write", "un-fsynced writes"))
                    }
                    (CrashKind::Process, 0) => "process crash: volatile state gone; what it wrote to the OS kept".into(),
                    (CrashKind::Process, n) => {
                        format!(
                            "process crash: volatile state gone; {} LOST",
                            plural(n, "write not yet handed to the OS", "writes not yet handed to the OS")
                        )
                    }
                },
                false,
            ),
            TraceKind::Restart => ("restart", "recovers from its durable log".into(), false),
            TraceKind::Pause { until_us } => ("PAUSE", format!("stalls until {}", ms(*until_us)), false),
            TraceKind::Resume => ("resume", "runs again, with whatever it believed before the pause".into(), false),
            TraceKind::PartitionStart { dir } => ("CUT", format!("partitioned ({dir:?})"), false),
            TraceKind::PartitionEnd { dir } => ("heal", format!("partition ({dir:?}) ends"), false),
            TraceKind::Write { record } => ("write", tidy(record), false),
            TraceKind::Fsync { durable_records } => ("fsync", format!("{durable_records} records durable"), false),
            TraceKind::Observe { obs, index } => ("observe", format!("#{index} {}", tidy(obs)), marked.contains(index)),
        };
        let _ = writeln!(out, "{} {:>12}  {:width$}  {:8}  {detail}", if mark { "*" } else { " " }, ms(e.at_us), names[e.node], verb);
    }
    let _ = writeln!(out);
    match &record.outcome.verdict {
        Verdict::Pass => {
            let _ = writeln!(out, "PASS: no invariant violated.");
        }
        Verdict::Violation(v) => {
            let _ = writeln!(out, "VIOLATION of {}:", v.invariant);
            let _ = writeln!(out, "  {}", v.message);
            if !v.events.is_empty() {
                let _ = writeln!(out, "  (the observations it names are marked * above: #{})", join(&v.events, ", #"));
            }
        }
    }
    out
}

fn join(v: &[usize], sep: &str) -> String {
    v.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(sep)
}

/// "1 crash, 1 lost message" or "none".
pub fn fault_list(record: &RunRecord) -> String {
    let s = &record.outcome.stats;
    let mut parts = Vec::new();
    for (n, one, many) in [
        (s.crashes, "crash", "crashes"),
        (s.writes_lost, "lost write", "lost writes"),
        (s.pauses, "pause", "pauses"),
        (s.partitions, "partition", "partitions"),
        (s.messages_lost, "lost message", "lost messages"),
        (s.messages_duplicated, "duplicated message", "duplicated messages"),
        (s.messages_late, "late message", "late messages"),
        (s.restarts_late, "late restart", "late restarts"),
    ] {
        if n > 0 {
            parts.push(plural(n, one, many));
        }
    }
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

/// A short label for a message or observation: the variant name and its scalar fields, minus
/// connection-level ids (`req`, `tx`), with nothing mermaid would choke on.
fn label(debug: &str) -> String {
    let t = tidy(debug);
    let mut kept: Vec<String> = Vec::new();
    for tok in t.split(", ") {
        // `Redis { req: 42` -> field `req: 42` after the last `{ `.
        let (prefix, field) = match tok.rfind("{ ") {
            Some(p) => (&tok[..p + 2], &tok[p + 2..]),
            None => ("", tok),
        };
        if ["req: ", "tx: ", "lock_timeout_us: ", "begin: ", "expires_at_us: "].iter().any(|f| field.starts_with(f)) {
            if !prefix.is_empty() {
                kept.push(prefix.to_string());
            }
            continue;
        }
        kept.push(tok.to_string());
    }
    let mut out = String::new();
    for k in kept {
        if !out.is_empty() && !out.ends_with("{ ") {
            out.push_str(", ");
        }
        out.push_str(&k);
    }
    // `status: Ok {` -> `Ok {`: a struct-valued field is named by its type.
    let words: Vec<&str> = out.split(' ').collect();
    let mut cleaned: Vec<&str> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        let next_is_struct = words.get(i + 2).is_some_and(|n| n.starts_with('{'));
        if w.ends_with(':') && next_is_struct {
            continue;
        }
        cleaned.push(w);
    }
    let out = cleaned.join(" ").replace(['{', '}', '(', ')'], " ");
    let out: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    mermaid_safe(&out.replace(" ,", ","))
}

/// Mermaid reads `#..;` as an entity and `;` as a statement end.
fn mermaid_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '<' | '>' => {}
            c => out.push(c),
        }
    }
    out
}

/// A mermaid `sequenceDiagram`: messages as arrows when delivered (lost ones as `-x` when sent),
/// crashes, restarts, pauses, lost writes and charges as notes, the violation at the end.
pub fn mermaid(record: &RunRecord) -> String {
    let names = &record.node_names;
    let marked = marked(record);
    // Only nodes that do something appear.
    let mut used = vec![false; names.len()];
    for e in &record.trace {
        used[e.node] = true;
        match &e.kind {
            TraceKind::Send { to, .. } | TraceKind::Lose { to, .. } | TraceKind::Late { to } => used[*to] = true,
            _ => {}
        }
    }
    let mut out = String::from("sequenceDiagram\n");
    // Clients first, then server, store, provider: left to right as a request travels.
    let mut order: Vec<usize> = (0..names.len()).filter(|&i| names[i].starts_with("client")).collect();
    order.extend((0..names.len()).filter(|&i| !names[i].starts_with("client")));
    order.retain(|&i| used[i]);
    for &i in &order {
        let _ = writeln!(out, "    participant {}", names[i]);
    }
    for e in &record.trace {
        let at = ms(e.at_us);
        let n = &names[e.node];
        match &e.kind {
            TraceKind::Deliver { from, msg } => {
                let _ = writeln!(out, "    {}->>{}: {} {}", names[*from], n, at, label(msg));
            }
            TraceKind::Lose { to, msg, cause: LossCause::ReceiverDown } if *to == e.node => {
                let _ = writeln!(out, "    Note over {n}: {at} dropped {} (arrived while down or before its restart)", label(msg));
            }
            TraceKind::Lose { to, msg, cause: c } => {
                let _ = writeln!(out, "    {}-x{}: {} {} ({})", n, names[*to], at, label(msg), cause(*c));
            }
            TraceKind::Crash { writes_lost, kind } => {
                let lost = if *writes_lost > 0 { format!(", {} lost", plural(*writes_lost, "write", "writes")) } else { String::new() };
                let what = if *kind == CrashKind::Process { "PROCESS CRASH" } else { "CRASH" };
                let _ = writeln!(out, "    Note over {n}: {at} {what}{lost}");
            }
            TraceKind::Late { to } => {
                let _ = writeln!(out, "    Note over {n}: {at} a message to {} is LATE (any later moment)", names[*to]);
            }
            TraceKind::LateRestart => {
                let _ = writeln!(out, "    Note over {n}: {at} its restart is LATE (any later moment)");
            }
            TraceKind::Restart => {
                let _ = writeln!(out, "    Note over {n}: {at} restart");
            }
            TraceKind::Pause { until_us } => {
                let _ = writeln!(out, "    Note over {n}: {at} PAUSE until {}", ms(*until_us));
            }
            TraceKind::Resume => {
                let _ = writeln!(out, "    Note over {n}: {at} resume");
            }
            TraceKind::PartitionStart { dir } => {
                let _ = writeln!(out, "    Note over {n}: {at} partitioned {dir:?}");
            }
            TraceKind::PartitionEnd { .. } => {
                let _ = writeln!(out, "    Note over {n}: {at} partition healed");
            }
            TraceKind::Observe { obs, index } => {
                let interesting = obs.starts_with("Charged") || obs.starts_with("KeyClaimed") || obs.starts_with("TimedOut");
                if marked.contains(index) && (interesting || obs.starts_with("Settled")) {
                    let _ = writeln!(out, "    Note over {n}: {at} ⚠ {}", label(obs));
                } else if interesting {
                    let _ = writeln!(out, "    Note over {n}: {at} {}", label(obs));
                }
            }
            TraceKind::Send { .. } | TraceKind::Timer { .. } | TraceKind::Write { .. } | TraceKind::Fsync { .. } => {}
        }
    }
    if let Some(v) = record.outcome.verdict.violation() {
        let (first, last) = match (order.first(), order.last()) {
            (Some(&f), Some(&l)) => (names[f].as_str(), names[l].as_str()),
            _ => ("server", "server"),
        };
        let head = v.message.split(". ").next().unwrap_or(&v.message);
        let _ = writeln!(out, "    Note over {first},{last}: VIOLATION {}: {}", v.invariant, mermaid_safe(head));
    }
    out
}

/// The run as one JSON object: verdict, stats, every trace event (with node names and marks)
/// and the history.
pub fn json(record: &RunRecord, scenario: &str, source: &serde_json::Value) -> serde_json::Value {
    let marked = marked(record);
    let events: Vec<serde_json::Value> = record
        .trace
        .iter()
        .map(|e| {
            let mut v = serde_json::to_value(e).expect("trace events serialize");
            v["node_name"] = json!(record.node_names[e.node]);
            if let TraceKind::Observe { index, .. } = e.kind {
                v["marked"] = json!(marked.contains(&index));
            }
            v
        })
        .collect();
    let history: Vec<serde_json::Value> = record
        .history
        .iter()
        .enumerate()
        .map(|(i, (at, node, obs))| json!({"index": i, "at_us": at, "node": node, "node_name": record.node_names[*node], "obs": obs, "marked": marked.contains(&i)}))
        .collect();
    let verdict = match &record.outcome.verdict {
        Verdict::Pass => json!({"pass": true}),
        Verdict::Violation(v) => json!({"pass": false, "invariant": v.invariant, "message": v.message, "events": v.events}),
    };
    json!({
        "scenario": scenario,
        "source": source,
        "verdict": verdict,
        "end": record.outcome.end,
        "stats": record.outcome.stats,
        "history_hash": record.outcome.history_hash,
        "nodes": record.node_names,
        "tape": record.tape.iter().map(|c| c.value).collect::<Vec<_>>(),
        "events": events,
        "history": history,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tidy_collapses_newtypes_and_hexes_keys() {
        assert_eq!(
            tidy("Request(Request { op: 0, attempt: 1, key: 65536, amount: 100 })"),
            "Request { op: 0, attempt: 1, key: 0x10000, amount: 100 }"
        );
        assert_eq!(
            tidy("Charge { req: 1, key: Some(16), op: 0, order_key: 16 }"),
            "Charge { req: 1, key: Some(0x10), op: 0, order_key: 0x10 }"
        );
        assert_eq!(tidy("Redis(Entry { key: 0 })"), "Redis(Entry { key: 0x0 })");
    }

    #[test]
    fn labels_are_short_and_mermaid_safe() {
        assert_eq!(
            label("Redis { req: 4294967297, cmd: SetNx { key: 16, value: InFlight { fp: 100 } } }"),
            "Redis SetNx key: 0x10, InFlight fp: 100"
        );
        assert_eq!(
            label("Response { op: 1, attempt: 2, status: Ok { charge: 4, amount: 1, replayed: false } }"),
            "Response op: 1, attempt: 2, Ok charge: 4, amount: 1, replayed: false"
        );
        assert_eq!(label("Charged { row: ChargeRow { charge: 4, op: 1 } }"), "Charged ChargeRow charge: 4, op: 1");
        assert_eq!(mermaid_safe("#4; x"), "#35;4#59; x");
    }
}
