//! The one choice source. Every nondeterministic decision of a run — a message's delay, whether it
//! is lost or duplicated, which of two simultaneous events goes first, when a node crashes, a
//! client's jitter — is one call here. A run is a pure function of (scenario, choice sequence).
//!
//! Convention: 0 is always the simplest answer (no fault, shortest delay, first option), so a
//! truncated or edited tape is still a valid run; shrinking and exhaustive search rely on it.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// What a choice decides; kept with recorded choices so shrinking knows which ones are faults.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChoiceKind {
    /// Message delay offset above the minimum.
    Delay,
    /// 1 = the message is lost.
    Loss,
    /// 1 = the message is delivered twice.
    Duplicate,
    /// Which of several events due at the same instant goes first.
    Tie,
    /// 1 = this crash slot fires.
    Crash,
    /// 1 = this pause slot fires.
    Pause,
    /// 1 = this partition slot fires.
    Partition,
    /// When a fault starts, how long it lasts, whom it hits.
    FaultShape,
    /// Swarm mode: which faults this run has, and how much.
    Swarm,
    /// A client's retry jitter.
    Jitter,
    /// 1 = a model's dependency fails this call (a payment provider's 5xx): a fault the model
    /// injects itself, so the shrinker tries to remove it like the engine's.
    Error,
    /// Any other decision a model makes.
    Model,
    /// 1 = the message copy (or restart) is late: it may come at any later moment, past its
    /// deadline. Drawn only with late messages (`Sim::set_late`, `Semantics::BoundedLate`), for
    /// every copy sent and every restart scheduled.
    Late,
}

impl ChoiceKind {
    /// Choices whose non-zero value injects a fault; the shrinker tries to zero each of them.
    pub fn is_fault(self) -> bool {
        matches!(
            self,
            ChoiceKind::Loss
                | ChoiceKind::Duplicate
                | ChoiceKind::Crash
                | ChoiceKind::Pause
                | ChoiceKind::Partition
                | ChoiceKind::Error
                | ChoiceKind::Late
        )
    }
}

/// One recorded decision.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Choice {
    pub kind: ChoiceKind,
    pub bound: u32,
    pub value: u32,
}

// The seeded variant is the hot one: boxing its 320-byte generator would add an indirection to
// every choice of the bulk path.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Mode {
    Seeded(ChaCha8Rng),
    /// Replay `tape`; past its end every answer is 0.
    Tape,
}

/// The run's choice source: seeded (ChaCha8) or a tape, optionally recording what it answers.
pub struct Choices {
    mode: Mode,
    tape: Vec<u32>,
    pos: usize,
    recording: bool,
    record: Vec<Choice>,
}
crate::clone_by_field!(Choices { mode, tape, pos, recording, record });

impl Default for Choices {
    fn default() -> Self {
        Self::seeded(0)
    }
}

impl Choices {
    pub fn seeded(seed: u64) -> Self {
        Choices { mode: Mode::Seeded(ChaCha8Rng::seed_from_u64(seed)), tape: Vec::new(), pos: 0, recording: false, record: Vec::new() }
    }
    pub fn tape(tape: &[u32]) -> Self {
        let mut c = Self::seeded(0);
        c.reset_tape(tape);
        c
    }
    /// Reuse this source for a new seeded run (keeps buffers).
    pub fn reset_seeded(&mut self, seed: u64) {
        self.mode = Mode::Seeded(ChaCha8Rng::seed_from_u64(seed));
        self.tape.clear();
        self.pos = 0;
        self.record.clear();
    }
    /// Reuse this source to replay `tape` (keeps buffers).
    pub fn reset_tape(&mut self, tape: &[u32]) {
        self.mode = Mode::Tape;
        self.tape.clear();
        self.tape.extend_from_slice(tape);
        self.pos = 0;
        self.record.clear();
    }
    /// Go on with another tape that agrees with this one on every answer given so far (a run
    /// resumed from a snapshot taken at this point): the position and the record are kept.
    pub fn retape(&mut self, tape: &[u32]) {
        debug_assert!(matches!(self.mode, Mode::Tape));
        debug_assert!(self.record.iter().zip(tape).all(|(c, &v)| c.value == v), "the new tape must extend the answers given");
        self.tape.clear();
        self.tape.extend_from_slice(tape);
    }
    /// Record every answer from now on (`recorded()`); off by default on the bulk path.
    pub fn set_recording(&mut self, on: bool) {
        self.recording = on;
    }
    pub fn recorded(&self) -> &[Choice] {
        &self.record
    }
    /// The recorded answers as a tape that replays this run.
    pub fn recorded_tape(&self) -> Vec<u32> {
        self.record.iter().map(|c| c.value).collect()
    }
    /// How many choices were made so far in this run.
    pub fn count(&self) -> usize {
        self.pos
    }
    /// True when a tape run has asked past the end of its tape.
    pub fn tape_exhausted(&self) -> bool {
        matches!(self.mode, Mode::Tape) && self.pos > self.tape.len()
    }

    /// A value in `0..bound`. A bound of 0 or 1 is no choice at all (answers 0, records nothing).
    #[inline]
    pub fn pick(&mut self, kind: ChoiceKind, bound: u32) -> u32 {
        if bound <= 1 {
            return 0;
        }
        let value = match &mut self.mode {
            // Multiply-shift: uniform enough for simulation, and one draw per choice.
            Mode::Seeded(rng) => ((rng.next_u32() as u64 * bound as u64) >> 32) as u32,
            Mode::Tape => self.tape.get(self.pos).map_or(0, |&v| v.min(bound - 1)),
        };
        self.note(kind, bound, value);
        value
    }

    /// True with probability `p`. `p <= 0` and `p >= 1` are no choice at all.
    #[inline]
    pub fn flip(&mut self, kind: ChoiceKind, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            return true;
        }
        let value = match &mut self.mode {
            Mode::Seeded(rng) => ((rng.next_u32() as f64) < p * 4_294_967_296.0) as u32,
            Mode::Tape => self.tape.get(self.pos).map_or(0, |&v| (v != 0) as u32),
        };
        self.note(kind, 2, value);
        value != 0
    }

    #[inline]
    fn note(&mut self, kind: ChoiceKind, bound: u32, value: u32) {
        self.pos += 1;
        if self.recording {
            self.record.push(Choice { kind, bound, value });
        }
    }
}

/// Where two recorded choice streams part: the first draw (by index) whose kind, bound or value
/// differ, or where one stream ends before the other (`None` on that side).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    pub index: usize,
    pub a: Option<Choice>,
    pub b: Option<Choice>,
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let side = |c: Option<Choice>| match c {
            Some(c) => format!("{:?} = {} (of {})", c.kind, c.value, c.bound),
            None => "no draw (the stream ended)".to_string(),
        };
        write!(f, "choice #{} differs: {} vs {}", self.index, side(self.a), side(self.b))
    }
}

/// The first draw at which two recorded streams differ (`Choices::recorded`), or `None` if they
/// are the same. Two runs of one seed must give the same stream: this names the draw where
/// determinism broke, which a differing history hash cannot.
pub fn first_divergence(a: &[Choice], b: &[Choice]) -> Option<Divergence> {
    let index = a.iter().zip(b).position(|(x, y)| x != y).unwrap_or(a.len().min(b.len()));
    (index < a.len().max(b.len())).then(|| Divergence { index, a: a.get(index).copied(), b: b.get(index).copied() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_past_its_end_answers_zero() {
        let mut c = Choices::tape(&[3, 1]);
        assert_eq!(c.pick(ChoiceKind::Delay, 10), 3);
        assert!(c.flip(ChoiceKind::Loss, 0.5));
        assert_eq!(c.pick(ChoiceKind::Delay, 10), 0);
        assert!(!c.flip(ChoiceKind::Loss, 0.5));
        assert!(c.tape_exhausted());
    }

    #[test]
    fn tape_values_are_clamped_to_the_bound() {
        let mut c = Choices::tape(&[99]);
        assert_eq!(c.pick(ChoiceKind::Tie, 3), 2);
    }

    #[test]
    fn recording_a_seeded_run_gives_a_tape_that_replays_it() {
        let mut a = Choices::seeded(7);
        a.set_recording(true);
        let drawn: Vec<u32> =
            (0..100).map(|i| if i % 3 == 0 { a.flip(ChoiceKind::Loss, 0.3) as u32 } else { a.pick(ChoiceKind::Delay, 1000) }).collect();
        let mut b = Choices::tape(&a.recorded_tape());
        let replayed: Vec<u32> =
            (0..100).map(|i| if i % 3 == 0 { b.flip(ChoiceKind::Loss, 0.3) as u32 } else { b.pick(ChoiceKind::Delay, 1000) }).collect();
        assert_eq!(drawn, replayed);
    }

    #[test]
    fn certain_and_impossible_flips_are_not_choices() {
        let mut c = Choices::seeded(1);
        c.set_recording(true);
        assert!(!c.flip(ChoiceKind::Loss, 0.0));
        assert!(c.flip(ChoiceKind::Loss, 1.0));
        assert_eq!(c.pick(ChoiceKind::Tie, 1), 0);
        assert!(c.recorded().is_empty());
    }

    #[test]
    fn first_divergence_names_the_first_draw_that_differs() {
        let draw = |seed: u64, n: usize| {
            let mut c = Choices::seeded(seed);
            c.set_recording(true);
            for i in 0..n {
                if i % 2 == 0 {
                    c.pick(ChoiceKind::Delay, 1000);
                } else {
                    c.flip(ChoiceKind::Loss, 0.5);
                }
            }
            c.recorded().to_vec()
        };
        let a = draw(3, 10);
        assert_eq!(first_divergence(&a, &draw(3, 10)), None);
        let mut b = a.clone();
        b[4].value += 1;
        let d = first_divergence(&a, &b).expect("differs");
        assert_eq!((d.index, d.a, d.b), (4, Some(a[4]), Some(b[4])));
        assert!(d.to_string().starts_with("choice #4 differs: Delay = "), "{d}");
        // A stream that stops early differs where it stops.
        let d = first_divergence(&a, &a[..7]).expect("shorter");
        assert_eq!((d.index, d.b), (7, None));
        assert!(d.to_string().ends_with("vs no draw (the stream ended)"), "{d}");
    }
}
