//! `idemsim list`: the preset catalogue, and any preset as a scenario file to start from.

use crate::{Found, Result};
use models::presets;
use serde_json::json;
use std::fmt::Write;

pub fn run(toml_of: Option<&str>, json: bool) -> Result<Found> {
    if let Some(name) = toml_of {
        let s = presets::get(name).ok_or_else(|| crate::input::unknown_preset(name))?;
        print!("{}", scenario_file(&s));
        return Ok(Found::Nothing);
    }
    let all = presets::all();
    if json {
        let v: Vec<_> = all.iter().map(|s| json!({"name": s.name, "expect": s.expect.to_string(), "description": s.description})).collect();
        println!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(Found::Nothing);
    }
    let w = all.iter().map(|s| s.name.len()).max().unwrap_or(0);
    let e = all.iter().map(|s| s.expect.to_string().len()).max().unwrap_or(0).max(6);
    let mut out = String::new();
    let _ = writeln!(out, "{:w$}  {:e$}  description", "preset", "expect");
    for s in &all {
        let _ = writeln!(out, "{:w$}  {:e$}  {}", s.name, s.expect.to_string(), s.description);
    }
    print!("{out}");
    eprintln!("\nStart a scenario file from one: idemsim list --toml NAME > my-scenario.toml; then idemsim explore my-scenario.toml");
    Ok(Found::Nothing)
}

/// A preset as a TOML scenario file, with a header saying how to use it.
pub fn scenario_file(s: &models::Scenario) -> String {
    format!(
        "# idemsim scenario, from the preset {name:?}.\n# Edit it, then: idemsim explore THIS_FILE   (fields: see README.md, \"Scenario files\")\n{}",
        s.to_toml(),
        name = s.name
    )
}
