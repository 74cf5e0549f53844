//! The seed corpus: every file in `seeds/` replays to the verdict it recorded, and every bug-zoo
//! preset has a shrunk counterexample there.

use idemsim::seedfile::SeedFile;
use models::{presets, Expect};
use std::path::{Path, PathBuf};

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("seeds/ exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn refresh_hint(file: &Path, scenario: &str) -> String {
    let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    if presets::get(scenario).is_some() {
        format!(
            "refresh it with: cargo run --release -- shrink {scenario} --out seeds/{name}\n  (that shrinks the preset's first failing seed; if the design now holds on purpose, delete the file or record a passing run)"
        )
    } else {
        format!("refresh it with: cargo run --release -- shrink <scenario file> --out seeds/{name}")
    }
}

#[test]
fn every_seed_file_reproduces_its_recorded_verdict() {
    let files = corpus();
    assert!(!files.is_empty(), "seeds/ is empty");
    let mut failures = Vec::new();
    for file in &files {
        let seed = match SeedFile::load(file) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{}: unreadable: {e}", file.display()));
                continue;
            }
        };
        // In the file's semantics and on its backend (a `check` counterexample is an untimed
        // tape; an explore on madsim is a madsim seed).
        let record = match seed.record(false) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: cannot replay: {e}", file.display()));
                continue;
            }
        };
        let got = match record.outcome.verdict.violation() {
            Some(v) => Expect::Violation(v.invariant.clone()),
            None => Expect::Pass,
        };
        if got != seed.expect {
            failures.push(format!(
                "{} no longer reproduces: it recorded `expect = \"{}\"` but the run now gets {got}.\n  {}",
                file.display(),
                seed.expect,
                refresh_hint(file, &seed.scenario.name)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
fn every_bug_zoo_preset_has_a_seed_file() {
    let names: Vec<String> = corpus().iter().filter_map(|f| SeedFile::load(f).ok()).map(|s| s.scenario.name).collect();
    let missing: Vec<String> = presets::all()
        .into_iter()
        .filter(|p| matches!(p.expect, Expect::Violation(_)) && !names.contains(&p.name))
        .map(|p| {
            format!("{0}: add one with: cargo run --release -- shrink {0} --out seeds/{1}.toml", p.name, idemsim::input::slug(&p.name))
        })
        .collect();
    assert!(missing.is_empty(), "bug-zoo presets without a seed file in seeds/:\n{}", missing.join("\n"));
}
