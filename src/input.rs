//! SCENARIO arguments: a preset name or a path to a TOML scenario file.

use crate::{BadInput, Result};
use models::{presets, Scenario};
use std::path::Path;

/// Load a scenario from a preset name or a TOML file, or say precisely why not.
pub fn load_scenario(arg: &str) -> Result<Scenario> {
    if let Some(s) = presets::get(arg) {
        return Ok(s);
    }
    let path = Path::new(arg);
    if path.is_file() {
        let text = read(path)?;
        if crate::seedfile::looks_like_seed_file(&text) {
            return Err(BadInput(format!("{arg} is a seed file, not a scenario: use `idemsim replay {arg}` or `idemsim shrink {arg}`")));
        }
        return Scenario::from_toml(&text).map_err(|e| BadInput(format!("{arg}: {}", e.trim_end())));
    }
    if looks_like_path(arg) || path.is_dir() {
        return Err(BadInput(format!("{arg}: no such file (SCENARIO is a preset name or a path to a TOML scenario file)")));
    }
    Err(unknown_preset(arg))
}

/// An argument meant as a path, not a preset name (presets are `path/name`, never absolute,
/// never dotted, never `.toml`): a missing one is "no such file", not "unknown preset".
pub fn looks_like_path(arg: &str) -> bool {
    arg.ends_with(".toml") || arg.starts_with('/') || arg.starts_with('.') || arg.starts_with('~')
}

/// "unknown preset", with the closest name if there is one.
pub fn unknown_preset(name: &str) -> BadInput {
    let hint = match presets::closest(name) {
        Some(c) => format!("did you mean {c:?}? "),
        None => String::new(),
    };
    BadInput(format!(
        "unknown preset {name:?}: {hint}`idemsim list` shows every preset; SCENARIO may also be a path to a TOML scenario file"
    ))
}

pub fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| BadInput(format!("{}: {e}", path.display())))
}

/// A file-name-safe form of a scenario name (`payment/setnx-everysec` -> `payment-setnx-everysec`).
pub fn slug(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' }).collect();
    let s = s.trim_matches('-').to_string();
    if s.is_empty() {
        "scenario".into()
    } else {
        s
    }
}

/// All cores: the default of every `--threads`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The most worker threads an explicit `--threads` may ask for: far past any core count a run
/// gains from, and a fixed number, so a command line that works on one machine works on another.
pub const MAX_THREADS: usize = 1024;

/// A `--threads T` value: a whole number, 1 to [`MAX_THREADS`]. 0 is refused rather than read as
/// 1 or as all cores, since a user who types it means one of the two; a huge T (a typo, or cores
/// multiplied by something) would spawn that many threads.
pub fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) | Err(_) => Err("use 1 or more worker threads, or leave --threads out for all cores".into()),
        Ok(n) if n > MAX_THREADS => Err(format!(
            "use at most {MAX_THREADS} worker threads (the cap; this machine has {}), or leave --threads out for all cores",
            crate::render::plural(default_threads() as u64, "core", "cores")
        )),
        Ok(n) => Ok(n),
    }
}

/// The seeds `--seed S --runs N` ask for, S..S+N: at least one, and within the 64-bit seeds.
pub fn seed_range(seed: u64, runs: u64) -> Result<std::ops::Range<u64>> {
    if runs == 0 {
        return Err(BadInput("--runs 0: use 1 or more".into()));
    }
    let end = seed.checked_add(runs).ok_or_else(|| {
        let fewer = match u64::MAX - seed {
            0 => String::new(),
            n => format!(", or --runs {n} or fewer"),
        };
        BadInput(format!(
            "--seed {seed} + --runs {runs} overflows: S + N may be at most {}; use --seed {} or lower{fewer}",
            u64::MAX,
            u64::MAX - runs
        ))
    })?;
    Ok(seed..end)
}
