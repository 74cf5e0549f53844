//! The simulator's pending events, ordered by due time and then by sequence number.

use super::{Event, EventKind};
use crate::actor::Actor;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// Bits of a heap key's low word that hold the event's slot (the rest hold its sequence number).
const SLOT_BITS: u32 = 24;

/// The pending events: a binary min-heap of 16-byte keys `(at_us, seq, slot)` over a slab of
/// events, so sifting moves keys, not events (a payment event is ~100 bytes). The order is the
/// one a heap of whole events ordered by `(at_us, seq)` gives: `seq` is unique within a run and
/// sits above the slot bits.
pub(super) struct Queue<A: Actor> {
    heap: BinaryHeap<Reverse<u128>>,
    /// The events, by slot; `None`: a free slot (listed in `free`).
    pub(super) slab: Vec<Option<Event<A>>>,
    pub(super) free: Vec<u32>,
}
crate::clone_by_field!(Queue<A> { heap, slab, free } where A: Actor + Clone);

impl<A: Actor> Queue<A> {
    pub(super) fn new() -> Self {
        Queue { heap: BinaryHeap::new(), slab: Vec::new(), free: Vec::new() }
    }

    pub(super) fn clear(&mut self) {
        self.heap.clear();
        self.slab.clear();
        self.free.clear();
    }

    /// Queue an event. The slot is found first so that the event is written once, straight into
    /// it (a temporary copy of a ~100-byte event read back right after its piecewise stores
    /// stalls on store-to-load forwarding).
    #[inline(always)]
    pub(super) fn push(&mut self, at_us: u64, seq: u64, kind: EventKind<A>) {
        let slot = match self.free.pop() {
            Some(s) => s as usize,
            None => {
                self.slab.push(None);
                self.slab.len() - 1
            }
        };
        assert!(
            seq < 1 << (64 - SLOT_BITS) && slot < 1 << SLOT_BITS,
            "event queue: more than 2^40 events in one run or 2^24 pending at once"
        );
        self.slab[slot] = Some(Event { at_us, seq, kind });
        self.heap.push(Reverse((at_us as u128) << 64 | (seq << SLOT_BITS | slot as u64) as u128));
    }

    /// Queue the event in `slot` (whose key was popped) again, due at `at_us` with sequence
    /// number `seq`: what `take` and `push` of it do, without moving it.
    pub(super) fn requeue(&mut self, slot: usize, at_us: u64, seq: u64) {
        let ev = self.slab[slot].as_mut().expect("a popped key's slot holds its event");
        assert!(seq < 1 << (64 - SLOT_BITS), "event queue: more than 2^40 events in one run");
        (ev.at_us, ev.seq) = (at_us, seq);
        self.heap.push(Reverse((at_us as u128) << 64 | (seq << SLOT_BITS | slot as u64) as u128));
    }

    /// Remove the earliest key: the event's time and slot. The event stays in its slot until
    /// `take` (or `Sim::dispatch_slot`) moves it out.
    #[inline]
    pub(super) fn pop_key(&mut self) -> Option<(u64, usize)> {
        let Reverse(key) = self.heap.pop()?;
        Some(((key >> 64) as u64, (key as u64 & ((1 << SLOT_BITS) - 1)) as usize))
    }

    /// Move the event out of `slot` (whose key was popped) and free the slot.
    #[inline]
    pub(super) fn take(&mut self, slot: usize) -> Event<A> {
        self.free.push(slot as u32);
        self.slab[slot].take().expect("a popped key's slot holds its event")
    }

    /// Free `slot` (whose key was popped) without dropping its event: what is left of it was
    /// moved out in place (`Sim::deliver_slot`, `Sim::fire_slot` read the payload out by
    /// `ptr::read`).
    ///
    /// # Safety
    ///
    /// Whatever in the event needs dropping must have been moved out already; the rest is
    /// forgotten.
    #[inline(always)]
    pub(super) unsafe fn vacate(&mut self, slot: usize) {
        // SAFETY: `ptr::write` does not drop the old value (the caller moved out what needed it).
        unsafe { std::ptr::write(&mut self.slab[slot], None) };
        self.free.push(slot as u32);
    }

    #[inline]
    pub(super) fn pop(&mut self) -> Option<Event<A>> {
        let (_, slot) = self.pop_key()?;
        Some(self.take(slot))
    }

    /// When the earliest pending event is due.
    #[inline]
    pub(super) fn peek_at(&self) -> Option<u64> {
        self.heap.peek().map(|Reverse(k)| (k >> 64) as u64)
    }

    /// The pending events, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Event<A>> {
        self.heap.iter().map(|Reverse(k)| self.slab[(*k as u64 & ((1 << SLOT_BITS) - 1)) as usize].as_ref().expect("queued"))
    }
}
