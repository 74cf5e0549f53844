//! What the bug-zoo tests of every path share: the presets of a path that expect a violation,
//! and the check that each, changed by a variant (fixed, or its trigger switched off), holds.

use models::{presets, Expect, Scenario};

pub fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The bug-zoo presets whose names start with `prefix` (`"payment/"`, `"outbox/"`, ...).
pub fn bugs(prefix: &str) -> Vec<Scenario> {
    presets::all().into_iter().filter(|s| s.expect != Expect::Pass && s.name.starts_with(prefix)).collect()
}

/// Every preset of `zoo`, changed by `variant`, holds over seeds `0..seeds` (`what` names the
/// variant in the failure message).
pub fn assert_every_variant_holds(zoo: &[Scenario], variant: fn(&Scenario) -> Scenario, seeds: u64, what: &str) {
    let failures: Vec<String> = zoo
        .iter()
        .filter_map(|s| {
            let r = variant(s).explore(0..seeds, threads(), None);
            r.first.map(|f| format!("{} {what} still fails at seed {}: {}", s.name, f.seed, f.violation.message))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
