//! Bookkeeping of the simulator apart from the event loop: the set of cancelled timers, and the
//! outcome of a run a panic cut short.

use super::{Outcome, Sim};
use crate::actor::{Actor, TimerId};
use crate::history::{history_hash, RunEnd, Verdict, Violation};
use crate::model::Model;

impl<A: Actor> Sim<A> {
    /// Mark timer `id` cancelled: it will be skipped when it comes due.
    pub(super) fn cancel(&mut self, TimerId(id): TimerId) {
        let word = (id / 64) as usize;
        if word >= self.cancelled.len() {
            self.cancelled.resize(word + 1, 0);
        }
        self.cancelled[word] |= 1 << (id % 64);
    }

    /// Was timer `id` cancelled? Clears the mark: a timer fires (or is skipped) once.
    pub(super) fn take_cancelled(&mut self, TimerId(id): TimerId) -> bool {
        let bit = 1 << (id % 64);
        match self.cancelled.get_mut((id / 64) as usize) {
            Some(w) if *w & bit != 0 => {
                *w &= !bit;
                true
            }
            _ => false,
        }
    }

    /// The cancelled timers not yet due, in id order (for state keys).
    pub(crate) fn cancelled_ids(&self) -> Vec<TimerId> {
        let mut ids = Vec::new();
        for (w, &bits) in self.cancelled.iter().enumerate() {
            let mut b = bits;
            while b != 0 {
                ids.push(TimerId(w as u64 * 64 + b.trailing_zeros() as u64));
                b &= b - 1;
            }
        }
        ids
    }

    /// The outcome of a run cut short by a panic: the violation says where and when.
    pub(crate) fn panicked<M: Model<Actor = A>>(&mut self, model: &M, message: String) -> Outcome {
        let names = &model.config().nodes;
        let who = names.get(self.handling).map_or("the checker or the engine".to_string(), |n| format!("{}'s handler", n.name));
        let message = format!(
            "{who} panicked at {}.{:03} ms, after {} events: {message}. The run stopped there; replay it to see what led up to it.",
            self.now_us / 1000,
            self.now_us % 1000,
            self.stats.events
        );
        self.stats.sim_time_us = self.now_us;
        let verdict = Verdict::Violation(Violation::new(crate::panics::PANIC, message, Vec::new()));
        Outcome { verdict, end: RunEnd::Quiescent, stats: self.stats.clone(), history_hash: history_hash(&self.history) }
    }
}
