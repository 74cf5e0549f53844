//! The engine's integration tests, one binary for both files (each a module): a clean
//! `cargo test --release` spends most of its time linking.

mod engine;
mod exhaustive;
mod fault_kinds;
mod late;
mod panics;
mod process_exit;
mod symmetry;

/// The test file that is a binary of its own.
const ALONE: &str = "-";

/// With `autotests = false` a new file under tests/ that is not declared here would silently
/// never run: this fails instead.
#[test]
fn every_test_file_is_a_module_of_the_suite() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests");
    let suite = std::fs::read_to_string(dir.join("suite.rs")).expect("suite.rs");
    for entry in std::fs::read_dir(&dir).expect("tests/") {
        let name = entry.expect("entry").file_name().to_string_lossy().into_owned();
        let Some(module) = name.strip_suffix(".rs") else { continue };
        if ["suite", ALONE].contains(&module) {
            continue;
        }
        assert!(suite.contains(&format!("mod {module};")), "tests/{name} is not in tests/suite.rs: add `mod {module};`");
    }
}
