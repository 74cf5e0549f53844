//! Timer handles in state keys: a timer is named by what it is, not by when it was set.
//!
//! `Ctx::set_timer` hands out ids from one counter, so an id records how many timers the whole
//! run had set before: two orders of the same independent events (a server arms a timeout, the
//! store arms a lock timeout) give the two timers swapped ids, and a run in which a lock wait
//! armed and cancelled a timer numbers every later timer one higher. Keyed on raw ids, each of
//! those is a state of its own, although no handler can tell them apart: a handler gets a
//! timer's payload, never its id, and uses an id only to cancel it. (The sleep sets already
//! treated such states as one; the state table did not.)
//!
//! So while `Sim::state_hash` hashes a state, `TimerId`'s `Hash` writes the timer's *name*
//! instead of its id: the key of its pending event (node, incarnation, deadline and payload), or
//! `GONE` for a handle whose timer can no longer run a handler (it fired, was cancelled, or was
//! set by an incarnation that has crashed since: a dead timer is keyed as a stop of the clock at
//! its deadline, whoever set it). Soundness: two states whose keys agree under these names
//! differ at most by a renaming of ids that maps each live pending timer to one with the same
//! node, incarnation, deadline and payload, and each other handle to another that cannot run a
//! handler either. Every handler behaves alike under the renaming (cancelling such a handle
//! marks a timer that does nothing when it comes due), so the two states have the same futures
//! up to it, and no checker reads an id. Outside a state hash (seeded runs, replays,
//! `history_hash`) an id hashes as itself.

use std::cell::{Cell, RefCell};

/// The name of a handle whose timer is not pending.
const GONE: u64 = u64::MAX;

thread_local! {
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
    /// (id, name) of the pending timers, sorted by id, while `ACTIVE`.
    static NAMES: RefCell<Vec<(u64, u64)>> = const { RefCell::new(Vec::new()) };
}

/// What `TimerId`'s `Hash` writes for id `id`: its name during a state hash, else the id.
pub(crate) fn hashed(id: u64) -> u64 {
    if !ACTIVE.with(Cell::get) {
        return id;
    }
    NAMES.with(|n| {
        let n = n.borrow();
        n.binary_search_by_key(&id, |&(i, _)| i).map_or(GONE, |at| n[at].1)
    })
}

/// Names timers by content on this thread until dropped (restored even on a panic).
pub(crate) struct Naming(bool);

impl Naming {
    /// `names`: (id, name) of every live pending timer, in any order.
    pub fn new(names: &[(u64, u64)]) -> Self {
        NAMES.with(|n| {
            let mut n = n.borrow_mut();
            n.clear();
            n.extend_from_slice(names);
            n.sort_unstable();
        });
        Naming(ACTIVE.with(|a| a.replace(true)))
    }
}

impl Drop for Naming {
    fn drop(&mut self) {
        ACTIVE.with(|a| a.set(self.0));
    }
}
