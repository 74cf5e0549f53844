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

/// A `--threads T` value: a whole number, 1 or more. 0 is refused rather than read as 1 or as
/// all cores, since a user who types it means one of the two.
pub fn parse_threads(s: &str) -> std::result::Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) | Err(_) => Err("use 1 or more worker threads, or leave --threads out for all cores".into()),
        Ok(n) => Ok(n),
    }
}
