//! A hierarchical hashed timing wheel for the reactor's timers.
//!
//! # Mechanism
//!
//! Time is counted in abstract *ticks* (the reactor uses milliseconds). The
//! wheel has 6 levels of 64 slots. A slot of level `k` spans `64^k` ticks, so
//! a whole level `k` spans `64^(k+1)` ticks and the six levels together cover
//! `2^36` ticks (about 2.2 years of milliseconds).
//!
//! ```text
//!             64 slots per level; bit i of occupied[k] <=> slot i non-empty
//!  level 5  [ .  .  .  .  .  .  .  . ... ]   1 slot = 64^5 ticks (~12 days)
//!   ...
//!  level 1  [ .  .  .  #  .  .  .  . ... ]   1 slot = 64 ticks
//!                     |
//!                     +--> A <--> B <--> C      intrusive doubly-linked list,
//!  level 0  [ .  #  .  .  .  #  .  . ... ]   1 slot = 1 tick     oldest first,
//!                                                                 threaded
//!  overflow: A <--> B    deadlines beyond the top level           through the
//!  due:      A           deadlines already <= elapsed             slab of entries
//! ```
//!
//! **Placement.** Write ticks in base 64: digit `k` of a deadline selects the
//! slot at level `k`. A timer is linked at the level of the highest digit in
//! which its deadline differs from `elapsed`, in the slot given by that digit.
//! Hence every occupied slot of a level lies strictly after `elapsed`'s digit
//! at that level, and every timer of level `k` is due before any slot of level
//! `k + 1` starts. The next expiry is therefore the lowest set bit
//! (`trailing_zeros`) of the lowest non-empty level's bitmap: no scan, no
//! wrap-around.
//!
//! **Cascade.** [`Wheel::advance`] jumps straight to the start of the next
//! occupied slot (never tick by tick), detaches its list and, for each timer,
//! either collects it (deadline `<= now`) or re-links it relative to the slot
//! start, which lands it at a lower level. This repeats until the next
//! occupied slot starts after `now`, so a jump of `10^12` ticks costs only the
//! occupied slots on the way. Each timer cascades at most once per level.
//!
//! **Overflow and due lists.** Deadlines that differ from `elapsed` above the
//! top level go to an unsorted overflow list, re-examined when the wheel
//! reaches a lower bound of its earliest deadline. Deadlines already reached
//! at insertion go to a due list, emptied by the next advance. Both keep a
//! lower bound of their earliest deadline for [`Wheel::next_deadline`].
//!
//! **Firing order.** Timers fire in order of `(deadline, insertion sequence
//! number)`. Lists append at the tail, so each holds its timers oldest first,
//! and a cascade keeps that order as it splits a list into lower slots, which
//! are empty at that moment (their timers were all due before the cascaded
//! slot starts, and have been collected). Level
//! 0 has one deadline per slot, visited in tick order, so its timers come out
//! in firing order; so do those a higher slot yields at once, as long as its
//! older timers are not due later than its newer ones: true of timers armed
//! with one delay, like a burst of `sleep(1 ms)`. Whatever breaks the order
//! (mixed delays in one higher slot, past deadlines in the due list, an
//! overflow cascade merging old timers into slots that newer ones reached
//! directly) is caught by one pass that checks the collected timers, and
//! only then are they sorted.
//!
//! **Firing.** Collected timers are freed from the slab into a reused buffer
//! and only then handed to the callback, so steady state does not allocate.

use std::fmt;

/// Bits of a tick count consumed by one level.
const LEVEL_BITS: u32 = 6;
/// Slots per level, one bit each in a `u64` occupancy bitmap.
const SLOTS: usize = 1 << LEVEL_BITS;
/// Mask selecting one base-64 digit.
const SLOT_MASK: u64 = SLOTS as u64 - 1;
/// Number of levels; together they span `64^LEVELS = 2^36` ticks.
const LEVELS: usize = 6;

/// A list of timers, as an index into [`Wheel::heads`]: slot `s` of level
/// `l` is `l * SLOTS + s`; then come the due and the overflow list.
type List = u16;
/// Deadline already reached at insertion; fires at the next advance.
const DUE: List = (LEVELS * SLOTS) as List;
/// Deadlines beyond the top level's range.
const OVERFLOW: List = DUE + 1;
/// Number of lists.
const LISTS: usize = OVERFLOW as usize + 1;
/// The "list" of a vacant entry, which is on the free list instead.
const VACANT: List = OVERFLOW + 1;
/// No entry: the end of a list.
const NIL: u32 = u32::MAX;

/// Identifies one inserted timer. Stale keys (fired or cancelled timers, or a
/// slot reused later) are harmless: cancel/get_mut return None.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct TimerKey {
    /// Index of the timer's entry in the slab.
    index: u32,
    /// Generation of that entry when the timer was inserted.
    generation: u32,
}

/// One slab entry: a pending timer, or a vacant entry on the free list.
/// Its generation outlives the timers occupying it.
struct Entry<T> {
    /// Tick at which the timer is due.
    deadline: u64,
    /// Insertion sequence number, breaking ties between equal deadlines.
    seq: u64,
    /// Bumped each time the entry is freed, invalidating older keys.
    generation: u32,
    /// The list the timer is linked into; `VACANT` when free.
    list: List,
    /// Previous entry in that list (`NIL` at its head).
    prev: u32,
    /// Next entry in that list, or in the free list when vacant.
    next: u32,
    /// The caller's payload; `None` when vacant.
    value: Option<T>,
}

/// A collected timer waiting to be fired: `(deadline, seq, key, value)`.
type Fired<T> = (u64, u64, TimerKey, T);

/// A hierarchical hashed timing wheel mapping deadlines (in ticks) to values.
pub(crate) struct Wheel<T> {
    /// The tick the wheel has advanced to.
    elapsed: u64,
    /// Number of pending timers.
    len: usize,
    /// Sequence number for the next insertion.
    next_seq: u64,
    /// Slab of timer entries.
    entries: Vec<Entry<T>>,
    /// Head of the list of vacant entries (threaded through `next`).
    free: u32,
    /// Head (oldest entry) of each list (see [`List`]).
    heads: [u32; LISTS],
    /// Tail (newest entry) of each list, where insertion appends.
    tails: [u32; LISTS],
    /// Per-level bitmap of non-empty slots.
    occupied: [u64; LEVELS],
    /// Lower bound of the due list's deadlines (`u64::MAX` when empty).
    due_min: u64,
    /// Lower bound of the overflow list's deadlines, `> elapsed` (`u64::MAX` when empty).
    overflow_min: u64,
    /// Reused buffer of timers collected by `advance`.
    fired: Vec<Fired<T>>,
    /// How many times `advance` had to sort its collected timers.
    #[cfg(test)]
    sorts: usize,
}

impl<T> fmt::Debug for Wheel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("len", &self.len)
            .field("elapsed", &self.elapsed)
            .finish_non_exhaustive()
    }
}

impl<T> Wheel<T> {
    /// Creates an empty wheel at tick 0.
    pub(crate) fn new() -> Self {
        Self {
            elapsed: 0,
            len: 0,
            next_seq: 0,
            entries: Vec::new(),
            free: NIL,
            heads: [NIL; LISTS],
            tails: [NIL; LISTS],
            occupied: [0; LEVELS],
            due_min: u64::MAX,
            overflow_min: u64::MAX,
            fired: Vec::new(),
            #[cfg(test)]
            sorts: 0,
        }
    }

    /// The tick the wheel has advanced to.
    pub(crate) fn elapsed(&self) -> u64 {
        self.elapsed
    }

    /// Number of live (pending) timers.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether no timer is pending.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Inserts a timer due at tick `deadline` (ticks are milliseconds for the
    /// caller, but the wheel is unit-agnostic). A deadline `<= elapsed()`
    /// fires at the next advance.
    #[inline(always)]
    pub(crate) fn insert(&mut self, deadline: u64, value: T) -> TimerKey {
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = self.alloc();
        let entry = &mut self.entries[index as usize];
        entry.deadline = deadline;
        entry.seq = seq;
        entry.value = Some(value);
        let key = TimerKey { index, generation: entry.generation };
        self.link(index, deadline);
        key
    }

    /// Removes a pending timer in O(1) and returns its value; `None` for a
    /// stale key.
    #[inline(always)]
    pub(crate) fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.get_mut(key)?;
        self.unlink(key.index);
        Some(self.release(key.index))
    }

    /// Mutable access to a pending timer's value (e.g. to replace a stored
    /// `Waker`); `None` for a stale key.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: TimerKey) -> Option<&mut T> {
        let entry = self.entries.get_mut(key.index as usize)?;
        if entry.generation != key.generation || entry.list == VACANT {
            return None;
        }
        entry.value.as_mut()
    }

    /// The earliest tick at which some timer may be due, `None` when empty.
    ///
    /// Never later than the true earliest deadline: exact for timers in
    /// level 0, the start of their slot (or a lower bound) for farther ones.
    /// It is `> elapsed()` unless a timer is already due. Cost: at most one
    /// bitmap test per level.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let due = (self.heads[DUE as usize] != NIL).then_some(self.due_min);
        let wheel = self.next_expiration().map(|(when, _)| when);
        due.into_iter().chain(wheel).min()
    }

    /// Advances to `now` and calls `fire` for every timer with deadline
    /// `<= now`, in order of (deadline, insertion order). Each fired timer's
    /// slot is freed before `fire` sees it.
    ///
    /// If `now <= elapsed()` the clock does not move, but timers inserted
    /// with a deadline `<= elapsed()` still fire.
    pub(crate) fn advance(&mut self, now: u64, fire: &mut impl FnMut(TimerKey, T)) {
        let now = now.max(self.elapsed);
        if self.len == 0 {
            // No timer in any list: only the clock moves (a loop woken
            // with no timers armed pays no walk of the levels).
            self.elapsed = now;
            return;
        }
        let due = self.take(DUE);
        self.collect(due, now);
        while let Some((when, list)) = self.next_expiration().filter(|&(when, _)| when <= now) {
            self.elapsed = self.elapsed.max(when);
            let head = self.take(list);
            self.collect(head, now);
        }
        self.elapsed = now;
        let order = |&(deadline, seq, _, _): &Fired<T>| (deadline, seq);
        if !self.fired.is_sorted_by_key(order) {
            self.fired.sort_unstable_by_key(order);
            #[cfg(test)]
            {
                self.sorts += 1;
            }
        }
        for (_, _, key, value) in self.fired.drain(..) {
            fire(key, value);
        }
    }

    /// The earliest list to process and a lower bound of its deadlines,
    /// ignoring the due list.
    fn next_expiration(&self) -> Option<(u64, List)> {
        let level = (0..LEVELS).find_map(|level| self.next_in_level(level));
        let overflow =
            (self.heads[OVERFLOW as usize] != NIL).then_some((self.overflow_min, OVERFLOW));
        level.into_iter().chain(overflow).min_by_key(|&(when, _)| when)
    }

    /// The first occupied slot of `level` and the tick at which it starts.
    fn next_in_level(&self, level: usize) -> Option<(u64, List)> {
        let bits = self.occupied[level];
        if bits == 0 {
            return None;
        }
        let slot = u64::from(bits.trailing_zeros());
        let shift = LEVEL_BITS * level as u32;
        debug_assert!(slot > (self.elapsed >> shift) & SLOT_MASK);
        let base = self.elapsed & !((1u64 << (shift + LEVEL_BITS)) - 1);
        let list = (level * SLOTS) as List + slot as List;
        Some((base | (slot << shift), list))
    }

    /// Walks a detached list: timers due by `now` are freed into the fire
    /// buffer, the others are re-linked relative to `elapsed`.
    fn collect(&mut self, mut cursor: u32, now: u64) {
        while cursor != NIL {
            let index = cursor;
            let entry = &self.entries[index as usize];
            let deadline = entry.deadline;
            cursor = entry.next;
            if deadline <= now {
                let key = TimerKey { index, generation: entry.generation };
                let seq = entry.seq;
                let value = self.release(index);
                self.fired.push((deadline, seq, key, value));
            } else {
                self.link(index, deadline);
            }
        }
    }

    /// The list a timer due at `deadline` belongs to, relative to `elapsed`.
    #[inline]
    fn list_for(&self, deadline: u64) -> List {
        if deadline <= self.elapsed {
            return DUE;
        }
        let level = ((self.elapsed ^ deadline) | SLOT_MASK).ilog2() / LEVEL_BITS;
        if level as usize >= LEVELS {
            return OVERFLOW;
        }
        let slot = (deadline >> (level * LEVEL_BITS)) & SLOT_MASK;
        (level as usize * SLOTS) as List + slot as List
    }

    /// Appends entry `index`, due at `deadline`, to the tail of the list
    /// its deadline selects.
    #[inline]
    fn link(&mut self, index: u32, deadline: u64) {
        let list = self.list_for(deadline);
        match list {
            DUE => self.due_min = self.due_min.min(deadline),
            OVERFLOW => self.overflow_min = self.overflow_min.min(deadline),
            slot => self.occupied[usize::from(slot) / SLOTS] |= 1 << (usize::from(slot) % SLOTS),
        }
        let prev = std::mem::replace(&mut self.tails[usize::from(list)], index);
        if prev == NIL {
            self.heads[usize::from(list)] = index;
        } else {
            self.entries[prev as usize].next = index;
        }
        let entry = &mut self.entries[index as usize];
        entry.list = list;
        entry.prev = prev;
        entry.next = NIL;
    }

    /// Unlinks entry `index` from its list in O(1).
    #[inline]
    fn unlink(&mut self, index: u32) {
        let entry = &self.entries[index as usize];
        let (list, prev, next) = (entry.list, entry.prev, entry.next);
        if prev == NIL {
            self.heads[usize::from(list)] = next;
        } else {
            self.entries[prev as usize].next = next;
        }
        if next != NIL {
            self.entries[next as usize].prev = prev;
        } else {
            self.tails[usize::from(list)] = prev;
            if prev == NIL {
                self.mark_empty(list);
            }
        }
    }

    /// Detaches a whole list, returning its former head.
    fn take(&mut self, list: List) -> u32 {
        self.mark_empty(list);
        self.tails[usize::from(list)] = NIL;
        std::mem::replace(&mut self.heads[usize::from(list)], NIL)
    }

    /// Records that `list` is now empty: clears its bit or resets its bound.
    #[inline]
    fn mark_empty(&mut self, list: List) {
        match list {
            DUE => self.due_min = u64::MAX,
            OVERFLOW => self.overflow_min = u64::MAX,
            slot => self.occupied[usize::from(slot) / SLOTS] &= !(1 << (usize::from(slot) % SLOTS)),
        }
    }

    /// A vacant entry (reusing freed ones first), counted as pending.
    #[inline]
    fn alloc(&mut self) -> u32 {
        self.len += 1;
        if self.free == NIL {
            self.grow();
        }
        let index = self.free;
        self.free = self.entries[index as usize].next;
        index
    }

    /// Adds a vacant entry to the slab and the free list (empty before).
    #[cold]
    fn grow(&mut self) {
        let index = u32::try_from(self.entries.len()).ok().filter(|&i| i != NIL);
        self.free = index.expect("too many timers");
        self.entries.push(Entry {
            deadline: 0,
            seq: 0,
            generation: 0,
            list: VACANT,
            prev: NIL,
            next: NIL,
            value: None,
        });
    }

    /// Frees entry `index` (already unlinked) and returns its value,
    /// invalidating its keys (the generation wraps, so a key could only
    /// alias after 2^32 reuses).
    #[inline]
    fn release(&mut self, index: u32) -> T {
        let entry = &mut self.entries[index as usize];
        entry.generation = entry.generation.wrapping_add(1);
        entry.list = VACANT;
        entry.next = self.free;
        self.free = index;
        self.len -= 1;
        entry.value.take().expect("released a vacant entry")
    }

    /// Length of the slab: bounded by the peak number of live timers.
    #[cfg(test)]
    fn slab_capacity(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::cmp::Reverse;
    use std::collections::{BinaryHeap, HashMap};

    /// A xorshift64 generator from `seed` (non-zero): repeatable random
    /// operations for the tests that drive the wheel in long sequences.
    fn xorshift(mut seed: u64) -> impl FnMut() -> u64 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        }
    }

    /// Advances `wheel` to `now` and returns the fired values in order.
    fn advance<T>(wheel: &mut Wheel<T>, now: u64) -> Vec<T> {
        let mut out = Vec::new();
        wheel.advance(now, &mut |_, value| out.push(value));
        out
    }

    /// The true earliest deadline, by scanning the slab.
    fn scan_min<T>(wheel: &Wheel<T>) -> Option<u64> {
        let live = wheel.entries.iter().filter(|e| e.list != VACANT);
        live.map(|entry| entry.deadline).min()
    }

    /// Checks `next_deadline` against a scan of all timers.
    fn check_next_deadline<T>(wheel: &Wheel<T>) {
        let (next, min) = (wheel.next_deadline(), scan_min(wheel));
        assert_eq!(next.is_some(), min.is_some(), "{wheel:?}");
        if let (Some(next), Some(min)) = (next, min) {
            assert!(next <= min, "next_deadline {next} later than {min}");
            assert!(next > wheel.elapsed() || min <= wheel.elapsed());
        }
    }

    #[test]
    fn new_wheel_is_empty() {
        let mut wheel = Wheel::<()>::new();
        assert_eq!((wheel.elapsed(), wheel.len(), wheel.is_empty()), (0, 0, true));
        assert_eq!(wheel.next_deadline(), None);
        assert!(advance(&mut wheel, 1_000).is_empty());
        assert_eq!(wheel.elapsed(), 1_000);
        assert_eq!(format!("{wheel:?}"), "Wheel { len: 0, elapsed: 1000, .. }");
    }

    #[test]
    fn fires_in_deadline_order_and_only_when_due() {
        let mut wheel = Wheel::new();
        let deadlines = [4096, 5, 70, 1, 64, 3, 262_144, 63, 65];
        for deadline in deadlines {
            wheel.insert(deadline, deadline);
        }
        assert_eq!(wheel.next_deadline(), Some(1));
        assert_eq!(advance(&mut wheel, 4), vec![1, 3]);
        assert_eq!(advance(&mut wheel, 64), vec![5, 63, 64]);
        assert_eq!(wheel.len(), 4);
        check_next_deadline(&wheel);
        assert_eq!(advance(&mut wheel, 300_000), vec![65, 70, 4096, 262_144]);
        assert!(wheel.is_empty());
    }

    #[test]
    fn same_deadline_fires_in_insertion_order_across_levels() {
        let mut wheel = Wheel::new();
        wheel.insert(100, 0); // level 1 relative to tick 0
        wheel.insert(100, 1);
        advance(&mut wheel, 70);
        wheel.insert(100, 2); // level 0 relative to tick 70
        wheel.insert(99, 3);
        advance(&mut wheel, 99);
        wheel.insert(100, 4);
        wheel.insert(50, 5); // already due: fires first by deadline
        assert_eq!(wheel.next_deadline(), Some(50));
        assert_eq!(advance(&mut wheel, 100), vec![5, 0, 1, 2, 4]);
    }

    #[test]
    fn overflow_cascade_keeps_insertion_order() {
        let mut wheel = Wheel::new();
        let deadline = (1 << 36) + 5;
        wheel.insert(deadline, "old"); // overflow relative to tick 0
        advance(&mut wheel, 1 << 36);
        wheel.insert(deadline, "new"); // level 0 relative to tick 2^36
        wheel.insert(deadline - 1, "earlier");
        assert_eq!(advance(&mut wheel, deadline), ["earlier", "old", "new"]);
    }

    /// Timers armed with one delay (whatever the clock's jumps and the
    /// cancellations) come out of the lists in firing order: `advance`
    /// never sorts them.
    #[test]
    fn one_delay_fires_in_order_without_a_sort() {
        let mut wheel = Wheel::new();
        let mut next = xorshift(0x9e37_79b9_7f4a_7c15u64);
        let mut keys = Vec::new();
        let mut fired = Vec::new();
        for round in 0..50_000 {
            let r = next();
            let delay = [1, 3, 100, 5_000, 1 << 30][round / 10_000];
            match r % 8 {
                0..=3 => {
                    let deadline = wheel.elapsed() + delay;
                    keys.push(wheel.insert(deadline, deadline));
                }
                4 if !keys.is_empty() => {
                    wheel.cancel(keys.swap_remove((r >> 8) as usize % keys.len()));
                }
                _ => {
                    let by = next() % [2, 70, 5_000, 1 << 31][(r >> 8) as usize % 4];
                    let now = wheel.elapsed() + by;
                    wheel.advance(now, &mut |_, deadline| fired.push(deadline));
                }
            }
        }
        wheel.advance(u64::MAX / 4, &mut |_, deadline| fired.push(deadline));
        assert!(fired.len() > 10_000, "{}", fired.len());
        assert!(fired.is_sorted(), "fired out of deadline order");
        assert_eq!(wheel.sorts, 0);
    }

    #[test]
    fn cancel_before_fire() {
        let mut wheel = Wheel::new();
        let a = wheel.insert(10, "a");
        let b = wheel.insert(10, "b");
        let far = wheel.insert(1 << 40, "far");
        assert_eq!(wheel.cancel(a), Some("a"));
        assert_eq!(wheel.cancel(a), None);
        assert_eq!(wheel.cancel(far), Some("far"));
        assert_eq!(wheel.len(), 1);
        assert_eq!(advance(&mut wheel, 1 << 41), vec!["b"]);
        assert_eq!(wheel.cancel(b), None);
    }

    #[test]
    fn stale_keys_after_fire_and_reuse() {
        let mut wheel = Wheel::new();
        let old = wheel.insert(5, 1);
        *wheel.get_mut(old).unwrap() = 10;
        let mut fired = Vec::new();
        wheel.advance(5, &mut |key, value| fired.push((key, value)));
        assert_eq!(fired, vec![(old, 10)]);
        assert_eq!(wheel.get_mut(old), None);
        let new = wheel.insert(6, 2);
        assert_eq!(new.index, old.index, "slot is reused");
        assert_ne!(new, old);
        assert_eq!(wheel.cancel(old), None);
        assert_eq!(wheel.get_mut(old), None);
        assert_eq!(wheel.get_mut(new), Some(&mut 2));
        assert_eq!(wheel.cancel(new), Some(2));
        let bogus = TimerKey { index: 99, generation: 0 };
        assert_eq!(wheel.cancel(bogus), None);
    }

    #[test]
    fn past_deadline_fires_at_next_advance() {
        let mut wheel = Wheel::new();
        advance(&mut wheel, 100);
        wheel.insert(100, "now");
        wheel.insert(50, "past");
        wheel.insert(0, "zero");
        assert_eq!(wheel.next_deadline(), Some(0));
        check_next_deadline(&wheel);
        assert_eq!(advance(&mut wheel, 100), vec!["zero", "past", "now"]);
        assert_eq!(wheel.elapsed(), 100);
        wheel.insert(7, "late");
        assert_eq!(advance(&mut wheel, 3), vec!["late"], "clock never goes back");
        assert_eq!(wheel.elapsed(), 100);
    }

    #[test]
    fn huge_jumps_and_far_deadlines() {
        let mut wheel = Wheel::new();
        let far = [u64::MAX, u64::MAX / 2, 1 << 36, (1 << 36) - 1, 10u64.pow(12)];
        for deadline in far.into_iter().chain([1, 1_000_000]) {
            wheel.insert(deadline, deadline);
        }
        check_next_deadline(&wheel);
        let start = std::time::Instant::now();
        assert_eq!(
            advance(&mut wheel, 10u64.pow(12)),
            [1, 1_000_000, (1 << 36) - 1, 1 << 36, 10u64.pow(12)]
        );
        check_next_deadline(&wheel);
        assert!(wheel.next_deadline().unwrap() > 10u64.pow(12));
        assert!(advance(&mut wheel, u64::MAX / 2 - 1).is_empty());
        check_next_deadline(&wheel);
        assert_eq!(advance(&mut wheel, u64::MAX / 2), [u64::MAX / 2]);
        assert_eq!(advance(&mut wheel, u64::MAX), [u64::MAX]);
        // A hang check, not a speed test: these jumps take microseconds,
        // a walk tick by tick would take hours.
        assert!(start.elapsed() < std::time::Duration::from_secs(30));
        assert!(wheel.is_empty());
    }

    #[test]
    fn next_deadline_is_a_lower_bound() {
        let mut wheel = Wheel::new();
        let mut next = xorshift(0x2545_f491_4f6c_dd1du64);
        let mut keys = Vec::new();
        for _ in 0..20_000 {
            let r = next();
            match r % 4 {
                0 | 1 => {
                    let delta = next() % [100, 10_000, 1 << 30, 1 << 50][(r >> 8) as usize % 4];
                    keys.push(wheel.insert(wheel.elapsed() + delta, ()));
                }
                2 if !keys.is_empty() => {
                    let key = keys.swap_remove((r >> 8) as usize % keys.len());
                    wheel.cancel(key);
                }
                _ => {
                    let by = next() % [10, 1_000, 100_000, 1 << 40][(r >> 8) as usize % 4];
                    let now = wheel.elapsed() + by;
                    advance(&mut wheel, now);
                }
            }
            check_next_deadline(&wheel);
        }
    }

    #[test]
    fn slab_stays_bounded() {
        let mut wheel = Wheel::new();
        let mut fired = 0;
        for i in 0..100_000u64 {
            wheel.insert(wheel.elapsed() + 1 + i % 7, i);
            if wheel.len() == 10 {
                let now = wheel.elapsed() + 3;
                wheel.advance(now, &mut |_, _| fired += 1);
            }
        }
        wheel.advance(u64::MAX, &mut |_, _| fired += 1);
        assert_eq!(fired, 100_000);
        assert!(wheel.slab_capacity() <= 10, "{}", wheel.slab_capacity());
        assert!(wheel.fired.capacity() <= 10);
    }

    /// One step of the model-based test.
    #[derive(Clone, Debug)]
    enum Op {
        /// Insert a timer `delta` ticks after `elapsed`.
        Insert(u64),
        /// Insert a timer `delta` ticks before `elapsed` (saturating).
        InsertPast(u64),
        /// Cancel the key with this index (modulo) among all keys ever issued.
        Cancel(usize),
        /// Advance by this many ticks.
        Advance(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u64..5_000).prop_map(Op::Insert),
            1 => (0u64..1_000_000_000).prop_map(Op::Insert),
            1 => (0u64..1 << 38).prop_map(Op::Insert),
            1 => (0u64..u64::MAX / 4).prop_map(Op::Insert),
            1 => (0u64..200).prop_map(Op::InsertPast),
            4 => any::<usize>().prop_map(Op::Cancel),
            6 => (0u64..3_000).prop_map(Op::Advance),
            1 => (0u64..1_000_000_000).prop_map(Op::Advance),
            1 => (0u64..1 << 38).prop_map(Op::Advance),
            1 => (0u64..1 << 40).prop_map(Op::Advance),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3_000))]

        #[test]
        fn matches_binary_heap_model(ops in proptest::collection::vec(op(), 1..120)) {
            let mut wheel = Wheel::new();
            let mut keys = Vec::new();
            let mut pending = HashMap::new();
            let mut heap = BinaryHeap::new();
            for op in ops {
                match op {
                    Op::Insert(_) | Op::InsertPast(_) => {
                        let deadline = match op {
                            Op::InsertPast(back) => wheel.elapsed().saturating_sub(back),
                            Op::Insert(delta) | Op::Advance(delta) => wheel.elapsed() + delta,
                            Op::Cancel(_) => unreachable!(),
                        };
                        let id = keys.len();
                        keys.push(wheel.insert(deadline, id));
                        pending.insert(id, deadline);
                        heap.push(Reverse((deadline, id)));
                    }
                    Op::Cancel(pick) if !keys.is_empty() => {
                        let id = pick % keys.len();
                        let expected = pending.remove(&id).map(|_| id);
                        prop_assert_eq!(wheel.get_mut(keys[id]).copied(), expected);
                        prop_assert_eq!(wheel.cancel(keys[id]), expected);
                    }
                    Op::Cancel(_) => {}
                    Op::Advance(by) => {
                        let now = wheel.elapsed() + by;
                        let mut expected = Vec::new();
                        while let Some(&Reverse((deadline, id))) = heap.peek() {
                            if deadline > now {
                                break;
                            }
                            heap.pop();
                            if pending.remove(&id).is_some() {
                                expected.push(id);
                            }
                        }
                        let mut fired = Vec::new();
                        wheel.advance(now, &mut |key, id| fired.push((key, id)));
                        prop_assert!(fired.iter().all(|&(key, id)| keys[id] == key));
                        let fired: Vec<_> = fired.into_iter().map(|(_, id)| id).collect();
                        prop_assert_eq!(fired, expected);
                        prop_assert_eq!(wheel.elapsed(), now);
                    }
                }
                prop_assert_eq!(wheel.len(), pending.len());
                let min = pending.values().copied().min();
                let next = wheel.next_deadline();
                prop_assert_eq!(next.is_some(), min.is_some());
                if let (Some(next), Some(min)) = (next, min) {
                    prop_assert!(next <= min);
                    prop_assert!(next > wheel.elapsed() || min <= wheel.elapsed());
                }
            }
        }
    }
}
