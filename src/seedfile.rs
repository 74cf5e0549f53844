//! Seed files: one recorded run, self-contained.
//!
//! ```toml
//! format = 1                       # this layout; other versions are refused with a clear error
//! expect = "exactly_once_charge"   # the verdict of this run: "pass" or the invariant it violates
//! seed = 6                         # the seed it came from (optional if `tape` is given)
//! tape = [0, 1, 0, 3]              # the choice tape; when present, replay uses it instead of `seed`
//! message = "double charge: ..."   # the violation message when recorded (informational)
//! semantics = "untimed"            # optional: the tape's semantics (`check` finds untimed runs;
//!                                  # or "bounded", "bounded_late"); absent = "timed", the
//!                                  # semantics explore and shrink run in
//! backend = "madsim"               # optional: the simulator the seed ran on; absent = "native"
//!
//! [scenario]                       # the whole scenario, inline: a preset changing later does not
//! name = "payment/setnx-everysec"  # silently change what this file replays
//! ...
//! ```

use crate::{BadInput, Result};
use models::run::{Backend, RunRecord, Source};
use models::{Expect, Scenario};
use serde::{Deserialize, Serialize};
use sim::Semantics;
use std::path::{Path, PathBuf};

/// The seed file layout this build reads and writes.
pub const FORMAT: i64 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    pub format: i64,
    /// The verdict of this run.
    pub expect: Expect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tape: Option<Vec<u32>>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// How the tape reads time: `timed` (explore, shrink; the default, so older files stay
    /// valid), `untimed` or `bounded` (a counterexample of `check --exhaustive`). A tape replays only in the
    /// semantics it was recorded in.
    #[serde(default = "timed", skip_serializing_if = "is_timed")]
    pub semantics: Semantics,
    /// The simulator that ran the seed: `native` (the default) or `madsim` (seed only, no tape).
    #[serde(default, skip_serializing_if = "is_native")]
    pub backend: Backend,
    pub scenario: Scenario,
}

fn timed() -> Semantics {
    Semantics::Timed
}

fn is_timed(s: &Semantics) -> bool {
    *s == Semantics::Timed
}

fn is_native(b: &Backend) -> bool {
    *b == Backend::Native
}

/// The name of a semantics as a seed file spells it.
pub fn semantics_name(s: Semantics) -> &'static str {
    match s {
        Semantics::Timed => "timed",
        Semantics::Untimed => "untimed",
        Semantics::Bounded => "bounded",
        Semantics::BoundedLate => "bounded_late",
    }
}

impl SeedFile {
    pub fn new(scenario: Scenario, source: &Source, expect: Expect, message: String) -> SeedFile {
        let (seed, tape) = match source {
            Source::Seed(s) => (Some(*s), None),
            Source::Tape(t) => (None, Some(trim_tape(t))),
        };
        SeedFile { format: FORMAT, expect, seed, tape, message, semantics: Semantics::Timed, backend: Backend::Native, scenario }
    }

    /// Replay this file's run as it was recorded: in its semantics, on its backend.
    pub fn record(&self, trace: bool) -> std::result::Result<RunRecord, String> {
        record(&self.scenario, self.backend, self.semantics, &self.source(), trace)
    }

    /// What replays this run: the tape if there is one, else the seed.
    pub fn source(&self) -> Source {
        match (&self.tape, self.seed) {
            (Some(t), _) => Source::Tape(t.clone()),
            (None, Some(s)) => Source::Seed(s),
            (None, None) => unreachable!("parse() refuses a seed file with neither seed nor tape"),
        }
    }

    /// Parse a seed file, checking its format version first so an old or new file gets a clear
    /// message rather than a field error.
    pub fn parse(text: &str) -> std::result::Result<SeedFile, String> {
        let value: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
        match value.get("format") {
            None => {
                return Err(format!(
                    "not an idemsim seed file: no `format = {FORMAT}` line (a scenario file goes to `idemsim replay SCENARIO --seed S`)"
                ))
            }
            Some(toml::Value::Integer(FORMAT)) => {}
            Some(toml::Value::Integer(v)) => {
                return Err(format!(
                    "seed file format {v} is not supported: this idemsim reads format {FORMAT}. Replay it with the idemsim version that wrote it, or re-record it: `idemsim explore` or `idemsim replay SCENARIO --seed S` with this build"
                ))
            }
            Some(other) => return Err(format!("format = {other}: expected the integer {FORMAT}")),
        }
        let file: SeedFile = toml::from_str(text).map_err(|e| e.to_string())?;
        if file.seed.is_none() && file.tape.is_none() {
            return Err("a seed file needs `seed = N` or `tape = [...]` (or both; the tape wins)".into());
        }
        if file.backend == Backend::Madsim {
            if file.tape.is_some() || file.seed.is_none() {
                return Err(
                    "backend = \"madsim\" replays by seed only: give `seed = N` and no `tape` (a tape is a native choice sequence)".into(),
                );
            }
            if file.semantics != Semantics::Timed {
                return Err("backend = \"madsim\" runs timed only: drop `semantics` (untimed tapes replay on the native backend)".into());
            }
        }
        file.scenario.validate().map_err(|e| format!("[scenario]: {e}"))?;
        Ok(file)
    }

    pub fn load(path: &Path) -> Result<SeedFile> {
        let text = crate::input::read(path)?;
        SeedFile::parse(&text).map_err(|e| BadInput(format!("{}: {}", path.display(), e.trim_end())))
    }

    /// The file's text: a comment saying how to use it, the header fields, the tape a few
    /// values a line, then the scenario.
    pub fn to_text(&self) -> Result<String> {
        let mut out = String::new();
        out.push_str("# idemsim seed file: one recorded run, self-contained (the scenario is inline).\n");
        out.push_str("# Replay it: idemsim replay THIS_FILE    Shrink it: idemsim shrink THIS_FILE\n");
        out.push_str(&format!("format = {}\n", self.format));
        out.push_str(&format!("expect = {}\n", toml::Value::String(self.expect.to_string())));
        if let Some(seed) = self.seed {
            let seed =
                i64::try_from(seed).map_err(|_| BadInput(format!("seed {seed} does not fit a TOML integer (use seeds below 2^63)")))?;
            out.push_str(&format!("seed = {seed}\n"));
        }
        if let Some(tape) = &self.tape {
            out.push_str("tape = [");
            for (i, chunk) in tape.chunks(20).enumerate() {
                out.push_str(if i == 0 { "\n    " } else { ",\n    " });
                out.push_str(&chunk.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
            }
            out.push_str(if tape.is_empty() { "]\n" } else { ",\n]\n" });
        }
        if !self.message.is_empty() {
            out.push_str(&format!("message = {}\n", toml::Value::String(self.message.clone())));
        }
        if !is_timed(&self.semantics) {
            out.push_str(&format!("semantics = \"{}\"\n", semantics_name(self.semantics)));
        }
        if !is_native(&self.backend) {
            out.push_str(&format!("backend = \"{}\"\n", self.backend));
        }
        #[derive(Serialize)]
        struct Wrap<'a> {
            scenario: &'a Scenario,
        }
        out.push('\n');
        out.push_str(
            &toml::to_string(&Wrap { scenario: &self.scenario }).map_err(|e| BadInput(format!("cannot write the scenario: {e}")))?,
        );
        Ok(out)
    }

    /// Write to `path`, creating its directory.
    pub fn write(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| BadInput(format!("cannot create {}: {e}", dir.display())))?;
        }
        std::fs::write(path, self.to_text()?).map_err(|e| BadInput(format!("cannot write {}: {e}", path.display())))
    }
}

/// One run of `scenario` from `source` on `backend` in `semantics`, recorded in full. madsim
/// runs timed and by seed only: a tape (or the untimed semantics) there is an error.
pub fn record(
    scenario: &Scenario,
    backend: Backend,
    semantics: Semantics,
    source: &Source,
    trace: bool,
) -> std::result::Result<RunRecord, String> {
    match backend {
        Backend::Native => Ok(scenario.record_in(semantics, source, trace)),
        Backend::Madsim if semantics != Semantics::Timed => {
            Err("an untimed tape (from `idemsim check`) replays only on the native backend: drop --backend madsim".into())
        }
        Backend::Madsim => scenario.record_with(backend, source, trace),
    }
}

/// Past its end a tape answers 0, so trailing zeros carry nothing.
pub fn trim_tape(tape: &[u32]) -> Vec<u32> {
    let end = tape.iter().rposition(|&v| v != 0).map_or(0, |i| i + 1);
    tape[..end].to_vec()
}

/// True if `text` is a TOML document with a top-level `format` key (a seed file, any version).
pub fn looks_like_seed_file(text: &str) -> bool {
    text.parse::<toml::Table>().map(|t| t.contains_key("format")).unwrap_or(false)
}

/// The default place for a new seed file: `DIR/<scenario>-seed-<S>.toml`.
pub fn default_path(dir: &Path, scenario: &Scenario, seed: u64) -> PathBuf {
    dir.join(format!("{}-seed-{seed}.toml", crate::input::slug(&scenario.name)))
}

/// Where explore on `backend` puts the seed file of seed `seed`: madsim files get their own
/// name (`DIR/<scenario>-madsim-seed-<S>.toml`), since the same seed is another run there.
pub fn backend_path(dir: &Path, scenario: &Scenario, backend: Backend, seed: u64) -> PathBuf {
    match backend {
        Backend::Native => default_path(dir, scenario, seed),
        Backend::Madsim => dir.join(format!("{}-madsim-seed-{seed}.toml", crate::input::slug(&scenario.name))),
    }
}
