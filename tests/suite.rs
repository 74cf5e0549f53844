//! The command line's integration tests, one binary for all: each file here is a module (a clean
//! `cargo test --release` spends most of its time linking, one LTO link per test binary). Run
//! one file's tests with its module name as the filter, e.g. `cargo test --release --test suite
//! cli::`. `madsim_memory.rs` counts the heap with its own global allocator and stays a binary of
//! its own.

mod common;

mod bad_input;
mod check;
mod cli;
mod corpus;
mod explore_shrink;
mod madsim_differential;
mod overload_cli;
mod shards;
mod story;

/// The test file that is a binary of its own.
const ALONE: &str = "madsim_memory";

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
