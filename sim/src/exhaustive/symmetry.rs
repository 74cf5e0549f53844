//! Symmetry reduction by erasing labels: `ExhaustiveOptions::symmetry`.
//!
//! Some fields of a model's state are pure *labels*: values no handler branches on, which are
//! only carried along (from a request into its response, into an observation). The copies of a
//! concurrently fired request are the example: the three copies of `--requests 3` are the same
//! request but for their copy number, which the server echoes and the client reports. Runs that
//! differ only by which copy went first reach states that differ only by a permutation of the
//! copy numbers, and a search keyed on the full state explores each of them (3! orders of three
//! copies through the same server: up to 6 times the states).
//!
//! While a search with symmetry on runs, `labels_erased()` is true on its worker threads, and
//! a model's `Hash` impls (which `Sim::state_hash` and the event keys use) and its
//! `Model::observation_key` may leave its labels out. Soundness: let α erase the labels from a
//! state. If no handler reads a label's value, only copies it, then running an event from two
//! states with the same α-image gives states with the same α-image again (the handlers do the
//! same thing, carrying different labels), so the two states have the same futures up to
//! labels: the same α-images of every later state, of the final actors and logs, and of the
//! history. If moreover the verdict does not depend on the labels (the model's argument, at its
//! `observation_key`), the two states judge alike, and merging them, as pruning does when their
//! keys are equal, loses no verdict and no final state (as keyed). Two events with the same key
//! are then one event up to labels (e.g. the delivery of copy 1 or of copy 2 of one request), so
//! the driver tries only the first of them at a choice point and a sleeping one puts the others
//! to sleep too; without symmetry, events with the same key are identical and the same holds.
//! A model that erases a field some handler does read is unsound under this option: keep the
//! argument next to the field.
//!
//! Outside a search (seeded runs, replays) nothing is erased, nor in `history_hash` ever.

use std::cell::Cell;

thread_local! {
    static ERASED: Cell<bool> = const { Cell::new(false) };
}

/// True while this thread runs an exhaustive search with symmetry on: hash the state without
/// its labels (see the module's documentation for when a field is one).
pub fn labels_erased() -> bool {
    ERASED.with(Cell::get)
}

/// Erases labels on this thread until dropped (then restores what was there, even on a panic).
pub(crate) struct Erasing(bool);

impl Erasing {
    pub fn new(on: bool) -> Self {
        Erasing(ERASED.with(|e| e.replace(on)))
    }
}

impl Drop for Erasing {
    fn drop(&mut self) {
        ERASED.with(|e| e.set(self.0));
    }
}
