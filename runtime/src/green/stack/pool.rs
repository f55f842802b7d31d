//! The stack cache: finished green threads' stacks kept for the next spawns.
//!
//! # Policy
//!
//! Each OS thread has one cache, a thread-local that outlives any single
//! runtime: the scheduler of a `green::run` adopts it when it starts
//! ([`StackPool::new`]) and hands it back when it ends, so successive runtimes
//! on one thread (criterion samples, tests, a server restarting its loop)
//! reuse stacks instead of mapping new ones. A thread runs at most one
//! scheduler at a time, so no locks.
//!
//! Memory stays bounded three ways:
//!
//! * at most `max_cached` stacks per thread (the runtime's
//!   `max_cached_stacks`, default [`DEFAULT_MAX_CACHED`]); a stack returned
//!   beyond that is unmapped;
//! * up to [`RESIDENT_STACKS`] of them are "warm": they keep the pages their
//!   last green thread touched, and reusing one costs no system call and no
//!   page fault. Stacks returned while that many are warm become "cold":
//!   [`GreenStack::release_pages`] gives their pages back (`MADV_FREE`: the
//!   kernel takes them when it needs memory; until then they still count in
//!   RSS), keeping the address space. It does so for [`RELEASE_BATCH`] at a
//!   time, with one `madvise` per run of adjacent stacks (consecutive `mmap`s
//!   usually are). A cold stack then costs a share of one `madvise`, and at
//!   most a page fault per page it touches when reused, instead of `mmap`,
//!   `mprotect`, `munmap` and those faults. Releasing is a page-table walk
//!   over each stack, so it is kept for bursts beyond [`RESIDENT_STACKS`];
//! * at most about [`PROCESS_MAX_CACHED`] stacks across all threads of the
//!   process: where the kernel has no guard markers, every cached stack holds
//!   two of the process's `vm.max_map_count` mappings (65,530 by default),
//!   which all threads' `mmap`s draw from.
//!
//! When the cache has no stack of the wanted size, [`StackPool::take`] maps
//! [`MAP_BATCH`] at once (fewer if the caps leave less room), hands out one
//! and shelves the others cold: they were never used, so they cost address
//! space and their top page only (faulted in with the batch, see `stack`),
//! and the next spawns take them without a system call.
//! If mapping fails with `ENOMEM` while this thread's cache holds stacks (of
//! other sizes), the cache is emptied and one stack is mapped instead.

use std::cell::Cell;
use std::fmt;
use std::io;
use std::mem;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{GreenStack, usable_size};

/// Default per-thread cache size, `Runtime::max_cached_stacks`: enough for a
/// burst of 10,000 green threads to be reused by the next one.
pub(crate) const DEFAULT_MAX_CACHED: usize = 16 * 1024;

/// Most warm stacks per thread (pages kept resident); further cached stacks
/// are cold. Enough for a burst of 10,000 green threads to be reused by the
/// next burst without a system call or a page fault; it keeps what those
/// threads touched resident (typically one or two pages each, so about
/// 50–100 MiB at most, up to the full stacks if they used them).
pub(crate) const RESIDENT_STACKS: usize = 12 * 1024;

/// Most stacks cached across all threads of the process: 32,768 of the
/// default 65,530 `vm.max_map_count` mappings, the rest left for live stacks
/// and everything else.
pub(crate) const PROCESS_MAX_CACHED: usize = 16 * 1024;

/// Stacks that go cold together, with one `madvise` per run of adjacent ones.
const RELEASE_BATCH: usize = 64;

/// Stacks mapped together, with one `mmap`, when the cache has none to give.
const MAP_BATCH: usize = 64;

/// Cache places claimed by all threads' caches together (each cache's
/// `quota`): at least the stacks they hold.
static PROCESS_CACHED: AtomicUsize = AtomicUsize::new(0);

/// Places a cache claims from [`PROCESS_CACHED`] at once when it needs one,
/// and keeps unused up to this many: the shared counter is touched about
/// once per this many stacks taken or given, not per stack. A thread's
/// cache may so hold up to this many places more than [`PROCESS_MAX_CACHED`]
/// allows in all, once.
const QUOTA_STEP: usize = 64;

thread_local! {
    /// This thread's cache while no scheduler holds it.
    static THREAD_CACHE: Cell<Cache> = const { Cell::new(Cache::new()) };
}

/// Cached stacks of one usable size.
struct Shelf {
    /// Usable size of every stack here.
    size: usize,
    /// Stacks with their pages resident; the most recently returned last.
    warm: Vec<GreenStack>,
    /// Stacks whose pages were given back; the most recently returned last.
    cold: Vec<GreenStack>,
}

impl Shelf {
    /// Whether it holds no stack.
    fn is_empty(&self) -> bool {
        self.warm.is_empty() && self.cold.is_empty()
    }
}

/// One thread's cached stacks, by size, counted in [`PROCESS_CACHED`]
/// through its `quota`.
#[derive(Default)]
struct Cache {
    /// One shelf per size in use; no empty shelves.
    shelves: Vec<Shelf>,
    /// Stacks to go cold whose pages are not released yet (fewer than
    /// [`RELEASE_BATCH`]); the most recently returned last.
    pending: Vec<GreenStack>,
    /// Warm stacks on all shelves.
    warm: usize,
    /// Cold stacks: on all shelves, plus the pending ones.
    cold: usize,
    /// Stacks to unmap, not counted as cached: unmapped [`RELEASE_BATCH`]
    /// at a time, one `munmap` per run of adjacent ones.
    doomed: Vec<GreenStack>,
    /// Places of [`PROCESS_CACHED`] this cache holds: at least `len()`.
    quota: usize,
}

impl Cache {
    /// An empty cache.
    const fn new() -> Self {
        Cache {
            shelves: Vec::new(),
            pending: Vec::new(),
            warm: 0,
            cold: 0,
            doomed: Vec::new(),
            quota: 0,
        }
    }

    /// Number of stacks held.
    fn len(&self) -> usize {
        self.warm + self.cold
    }

    /// A cached stack of exactly `size` usable bytes: a warm one if any,
    /// else a pending, else a cold one, the most recently returned first.
    fn pop(&mut self, size: usize) -> Option<GreenStack> {
        let shelf = self.shelves.iter().position(|s| s.size == size);
        let stack = if let Some(stack) = shelf.and_then(|i| self.shelves[i].warm.pop()) {
            self.warm -= 1;
            stack
        } else if let Some(j) = self.pending.iter().rposition(|s| s.size() == size) {
            self.cold -= 1;
            self.pending.swap_remove(j)
        } else {
            let stack = self.shelves[shelf?].cold.pop()?;
            self.cold -= 1;
            stack
        };
        if let Some(i) = shelf
            && self.shelves[i].is_empty()
        {
            self.shelves.swap_remove(i);
        }
        self.settle();
        Some(stack)
    }

    /// Makes the quota cover `n` more stacks, claiming whole
    /// [`QUOTA_STEP`]s from [`PROCESS_CACHED`]; `false` (nothing claimed)
    /// if `capped` and the process cache is full.
    fn claim(&mut self, n: usize, capped: bool) -> bool {
        let want = self.len() + n;
        if want <= self.quota {
            return true;
        }
        let step = (want - self.quota).next_multiple_of(QUOTA_STEP);
        if PROCESS_CACHED.fetch_add(step, Ordering::Relaxed) >= PROCESS_MAX_CACHED && capped {
            PROCESS_CACHED.fetch_sub(step, Ordering::Relaxed);
            return false;
        }
        self.quota += step;
        true
    }

    /// Gives back unused quota once it reaches two [`QUOTA_STEP`]s, keeping one.
    fn settle(&mut self) {
        if self.quota >= self.len() + 2 * QUOTA_STEP {
            self.give_back(self.quota - self.len() - QUOTA_STEP);
        }
    }

    /// Gives `places` of the quota back to [`PROCESS_CACHED`].
    fn give_back(&mut self, places: usize) {
        PROCESS_CACHED.fetch_sub(places, Ordering::Relaxed);
        self.quota -= places;
    }

    /// Caches `stack` (warm while fewer than `max_warm` are), or dooms it to
    /// be unmapped when `max_cached` or [`PROCESS_MAX_CACHED`] are reached.
    fn push(&mut self, stack: GreenStack, max_cached: usize, max_warm: usize) {
        if self.len() >= max_cached {
            return self.doom(stack);
        }
        if !self.claim(1, true) {
            return self.doom(stack);
        }
        if self.warm < max_warm {
            self.shelf(stack.size()).warm.push(stack);
            self.warm += 1;
            return;
        }
        self.pending.push(stack);
        self.cold += 1;
        if self.pending.len() >= RELEASE_BATCH {
            self.release_pending();
        }
    }

    /// How many more stacks fit under `max_cached` and [`PROCESS_MAX_CACHED`]
    /// (other threads may fill the latter meanwhile: a hint).
    fn room(&self, max_cached: usize) -> usize {
        let process = PROCESS_MAX_CACHED.saturating_sub(PROCESS_CACHED.load(Ordering::Relaxed));
        max_cached.saturating_sub(self.len()).min(process + self.quota - self.len())
    }

    /// Shelves freshly mapped, never used stacks cold (nothing of theirs
    /// needs releasing: only their top page is resident, and it is the
    /// page a spawn uses first); the lowest address is taken first.
    fn stock(&mut self, fresh: &mut Vec<GreenStack>) {
        let Some(size) = fresh.first().map(GreenStack::size) else { return };
        // `room` counted them in already.
        self.claim(fresh.len(), false);
        self.cold += fresh.len();
        self.shelf(size).cold.extend(fresh.drain(..).rev());
    }

    /// Queues `stack` for unmapping; unmaps the queue once it holds
    /// [`RELEASE_BATCH`].
    fn doom(&mut self, stack: GreenStack) {
        self.doomed.push(stack);
        if self.doomed.len() >= RELEASE_BATCH {
            GreenStack::unmap_all(&mut self.doomed);
        }
    }

    /// The shelf for stacks of `size` usable bytes, added if missing.
    #[inline]
    fn shelf(&mut self, size: usize) -> &mut Shelf {
        let i = match self.shelves.iter().position(|s| s.size == size) {
            Some(i) => i,
            None => {
                self.shelves.push(Shelf { size, warm: Vec::new(), cold: Vec::new() });
                self.shelves.len() - 1
            }
        };
        &mut self.shelves[i]
    }

    /// Releases the pending stacks' pages and shelves them cold; unmaps them
    /// instead if that fails.
    fn release_pending(&mut self) {
        let mut batch = mem::take(&mut self.pending);
        if GreenStack::release_pages(&mut batch).is_err() {
            self.cold -= batch.len();
            self.settle();
            return;
        }
        for stack in batch.drain(..) {
            self.shelf(stack.size()).cold.push(stack);
        }
        // Keep the allocation for the next batch.
        self.pending = batch;
    }

    /// Unmaps pending, cold, then warm, stacks until at most `max_cached`
    /// are left, and the doomed ones; gives back the unused quota.
    fn trim(&mut self, max_cached: usize) {
        while self.len() > max_cached
            && let Some(stack) = self.pending.pop()
        {
            self.cold -= 1;
            self.doom(stack);
        }
        while self.len() > max_cached {
            let Some(i) = self.shelves.iter().position(|s| !s.cold.is_empty()) else { break };
            let stack = self.shelves[i].cold.pop();
            self.cold -= 1;
            self.forget_one(i, stack);
        }
        while self.len() > max_cached {
            let Some(i) = self.shelves.iter().position(|s| !s.warm.is_empty()) else { break };
            let stack = self.shelves[i].warm.pop();
            self.warm -= 1;
            self.forget_one(i, stack);
        }
        GreenStack::unmap_all(&mut self.doomed);
        self.give_back(self.quota - self.len());
    }

    /// Dooms a stack just taken off shelf `i` and removes the shelf if it is
    /// now empty.
    fn forget_one(&mut self, i: usize, stack: Option<GreenStack>) {
        if let Some(stack) = stack {
            self.doom(stack);
        }
        if self.shelves[i].is_empty() {
            self.shelves.swap_remove(i);
        }
    }
}

impl Drop for Cache {
    /// Unmaps every cached stack, a run of adjacent ones at a time, and
    /// gives the quota back to the process count.
    fn drop(&mut self) {
        PROCESS_CACHED.fetch_sub(self.quota, Ordering::Relaxed);
        let mut all = mem::take(&mut self.doomed);
        all.append(&mut self.pending);
        for shelf in &mut self.shelves {
            all.append(&mut shelf.warm);
            all.append(&mut shelf.cold);
        }
        GreenStack::unmap_all(&mut all);
    }
}

/// The stack source of one scheduler: this thread's cache while the scheduler
/// runs, given back to the thread when it is dropped.
pub(crate) struct StackPool {
    /// Most stacks cached; extra returned stacks are unmapped.
    max_cached: usize,
    /// Most warm stacks: `min(max_cached, RESIDENT_STACKS)`.
    max_warm: usize,
    /// Most stacks mapped at once on a miss: [`MAP_BATCH`].
    batch: usize,
    /// The adopted thread cache.
    cache: Cache,
}

impl StackPool {
    /// Adopts this thread's cache, trimmed to `max_cached` stacks (0
    /// disables caching and empties it).
    pub(crate) fn new(max_cached: usize) -> Self {
        let mut cache = THREAD_CACHE.try_with(Cell::take).unwrap_or_default();
        cache.trim(max_cached);
        StackPool { max_cached, max_warm: max_cached.min(RESIDENT_STACKS), batch: MAP_BATCH, cache }
    }

    /// A stack of at least `size` usable bytes: a cached one of exactly the
    /// rounded size if any (warm first, the most recently returned first),
    /// else one of a new batch, whose others are cached.
    #[inline]
    pub(crate) fn take(&mut self, size: usize) -> io::Result<GreenStack> {
        let want = usable_size(size)?;
        match self.cache.pop(want) {
            Some(stack) => Ok(stack),
            None => self.map_more(want),
        }
    }

    /// A stack of a new batch of `want` usable bytes each; the others are
    /// cached. Out of line: the cached path of `take` stays short.
    #[inline(never)]
    fn map_more(&mut self, want: usize) -> io::Result<GreenStack> {
        let count = 1 + self.cache.room(self.max_cached).min(self.batch.saturating_sub(1));
        let mut fresh = Vec::new();
        if let Err(e) = GreenStack::map_batch(want, count, &mut fresh) {
            if e.kind() != io::ErrorKind::OutOfMemory || (count == 1 && self.cache.len() == 0) {
                return Err(e);
            }
            // Cached stacks of other sizes may hold the memory or mappings we
            // lack, and a smaller mapping may still fit.
            self.cache = Cache::new();
            GreenStack::map_batch(want, 1, &mut fresh)?;
        }
        let stack = fresh.pop().ok_or_else(|| io::Error::other("a stack batch came back empty"))?;
        self.cache.stock(&mut fresh);
        Ok(stack)
    }

    /// Returns a finished thread's stack to the cache, or unmaps it if the
    /// cache is full.
    #[inline]
    pub(crate) fn give(&mut self, stack: GreenStack) {
        self.cache.push(stack, self.max_cached, self.max_warm);
    }

    /// Number of stacks currently cached.
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }
}

impl Drop for StackPool {
    /// Hands the cache back to the thread for its next scheduler; unmaps it
    /// instead if the thread is exiting.
    fn drop(&mut self) {
        let cache = mem::take(&mut self.cache);
        let previous = THREAD_CACHE.try_with(|slot| slot.replace(cache));
        // Another pool on this thread gave its cache back first (only tests
        // hold two): keep the newer one, unmap the older.
        drop(previous);
    }
}

impl fmt::Debug for StackPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = |pick: fn(&Shelf) -> &Vec<GreenStack>| -> usize {
            self.cache.shelves.iter().map(|s| s.size * pick(s).len()).sum()
        };
        f.debug_struct("StackPool")
            .field("cached", &self.cache.len())
            .field("warm", &self.cache.warm)
            .field("max_cached", &self.max_cached)
            .field("warm_bytes", &bytes(|s| &s.warm))
            .field("cold_bytes", &bytes(|s| &s.cold))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::mapped_here;
    use super::*;
    use corosensei::stack::Stack;
    use proptest::prelude::*;
    use std::collections::HashMap;

    /// Writes and reads back the top and bottom usable bytes of `stack`.
    fn touch(stack: &GreenStack, value: u8) {
        let bottom = stack.guard().end as *mut u8;
        let top = (stack.base().get() - 1) as *mut u8;
        // SAFETY: both addresses lie in the PROT_READ|PROT_WRITE part of the
        // mapping `stack` owns, which outlives these accesses.
        unsafe {
            bottom.write_volatile(value);
            top.write_volatile(value);
            assert_eq!(bottom.read_volatile(), value);
            assert_eq!(top.read_volatile(), value);
        }
    }

    /// Unmaps this thread's cache (a pool of capacity 0 trims it to nothing).
    fn empty_thread_cache() {
        drop(StackPool::new(0));
    }

    /// A returned stack comes back (same base) for the same rounded size only,
    /// and the cache never exceeds `max_cached`.
    #[test]
    fn reuses_and_caps() {
        let mut pool = StackPool::new(2);
        pool.batch = 1;
        let a = pool.take(64 * 1024).unwrap();
        let base = a.base();
        pool.give(a);
        assert_eq!(pool.cached(), 1);
        let smaller = pool.take(32 * 1024).unwrap();
        assert_ne!(smaller.base(), base);
        assert_eq!(pool.cached(), 1);
        let again = pool.take(64 * 1024 - 100).unwrap();
        assert_eq!(again.base(), base);
        assert_eq!(pool.cached(), 0);

        let extra = pool.take(64 * 1024).unwrap();
        pool.give(again);
        pool.give(smaller);
        pool.give(extra);
        assert_eq!(pool.cached(), 2);
        assert!(format!("{pool:?}").contains("cached: 2"));
        drop(pool);

        let mut none = StackPool::new(0);
        assert_eq!(none.cached(), 0, "capacity 0 keeps nothing of the thread cache");
        none.give(GreenStack::new(4096).unwrap());
        assert_eq!(none.cached(), 0);
    }

    /// A later pool on the same thread (the next runtime) gets the stacks an
    /// earlier one cached, trimmed to its own capacity.
    #[test]
    fn thread_cache_outlives_a_pool() {
        let mut first = StackPool::new(8);
        first.batch = 1;
        let stacks: Vec<_> = (0..5).map(|_| first.take(16 * 1024).unwrap()).collect();
        let bases: Vec<_> = stacks.iter().map(|s| s.base()).collect();
        stacks.into_iter().for_each(|s| first.give(s));
        drop(first);

        let mut second = StackPool::new(3);
        assert_eq!(second.cached(), 3, "trimmed to the new capacity");
        let reused = second.take(16 * 1024).unwrap();
        assert!(bases.contains(&reused.base()), "not a stack of the first pool");
        second.give(reused);
        drop(second);

        let on_other_thread = std::thread::spawn(|| StackPool::new(8).cached()).join().unwrap();
        assert_eq!(on_other_thread, 0, "caches are per thread");
        empty_thread_cache();
        assert_eq!(StackPool::new(8).cached(), 0);
    }

    /// Beyond `max_warm`, returned stacks are cached cold (pages released),
    /// warm ones are handed out first, and cold ones are still usable.
    #[test]
    fn warm_cap_then_cold() {
        let mut pool = StackPool::new(6);
        pool.batch = 1;
        pool.max_warm = 2;
        let stacks: Vec<_> = (0..5).map(|_| pool.take(16 * 1024).unwrap()).collect();
        for (i, stack) in stacks.iter().enumerate() {
            touch(stack, i as u8 + 1);
        }
        let bases: Vec<_> = stacks.iter().map(|s| s.base()).collect();
        stacks.into_iter().for_each(|s| pool.give(s));
        assert_eq!((pool.cache.warm, pool.cache.cold), (2, 3));
        assert_eq!(pool.cache.pending.len(), 3, "fewer than a batch: not released yet");
        pool.cache.release_pending();
        assert_eq!((pool.cache.warm, pool.cache.cold, pool.cache.pending.len()), (2, 3, 0));
        assert!(format!("{pool:?}").contains("warm: 2"));

        // The two warm ones (given first) come out before any cold one.
        let warm: Vec<_> = (0..2).map(|_| pool.take(16 * 1024).unwrap()).collect();
        let mut warm_bases: Vec<_> = warm.iter().map(|s| s.base()).collect();
        warm_bases.sort();
        let mut first_two = bases[..2].to_vec();
        first_two.sort();
        assert_eq!(warm_bases, first_two);
        let cold = pool.take(16 * 1024).unwrap();
        assert!(bases[2..].contains(&cold.base()));
        touch(&cold, 0xEE);
        assert_eq!((pool.cache.warm, pool.cache.cold), (0, 2));
        drop((warm, cold, pool));
        empty_thread_cache();
    }

    /// A full batch of cold stacks is released by itself, and a returned
    /// stack still pending is handed out before a released one.
    #[test]
    fn batch_released_and_pending_first() {
        let mut pool = StackPool::new(RELEASE_BATCH + 1);
        pool.batch = 1;
        pool.max_warm = 0;
        let stacks: Vec<_> = (0..=RELEASE_BATCH).map(|_| pool.take(16 * 1024).unwrap()).collect();
        stacks.iter().for_each(|s| touch(s, 9));
        let last = stacks[RELEASE_BATCH].base();
        stacks.into_iter().for_each(|s| pool.give(s));
        assert_eq!(pool.cache.pending.len(), 1);
        assert_eq!(pool.cache.shelves[0].cold.len(), RELEASE_BATCH);
        assert_eq!(pool.take(16 * 1024).unwrap().base(), last);
        let released = pool.take(16 * 1024).unwrap();
        touch(&released, 1);
        drop((released, pool));
        empty_thread_cache();
    }

    /// A corosensei coroutine runs on a stack that went cold in between.
    #[test]
    fn coroutine_on_cold_stack() {
        use corosensei::{Coroutine, CoroutineResult, Yielder};
        let mut pool = StackPool::new(4);
        pool.batch = 1;
        pool.max_warm = 0;
        let stack = pool.take(64 * 1024).unwrap();
        touch(&stack, 7);
        pool.give(stack);
        pool.cache.release_pending();
        assert_eq!(pool.cache.shelves[0].cold.len(), 1);
        let stack = pool.take(64 * 1024).unwrap();
        let mut co = Coroutine::with_stack(stack, |y: &Yielder<u32, u32>, first: u32| {
            let mut scratch = [3u8; 16 * 1024];
            std::hint::black_box(&mut scratch);
            y.suspend(first + 1) + u32::from(scratch[100])
        });
        assert!(matches!(co.resume(1), CoroutineResult::Yield(2)));
        assert!(matches!(co.resume(10), CoroutineResult::Return(13)));
        pool.give(co.into_stack());
        drop(pool);
        empty_thread_cache();
    }

    /// A miss maps a batch with one `mmap`: one stack is handed out, the
    /// others are cached cold and handed out next, in address order, all of
    /// one mapping, and the batch stays within the cache's room.
    #[test]
    fn miss_maps_a_batch() {
        empty_thread_cache();
        let mut pool = StackPool::new(MAP_BATCH * 2);
        let first = pool.take(16 * 1024).unwrap();
        assert_eq!(pool.cached(), MAP_BATCH - 1);
        assert_eq!(pool.cache.cold, MAP_BATCH - 1);
        let rest: Vec<_> = (1..MAP_BATCH).map(|_| pool.take(16 * 1024).unwrap()).collect();
        assert_eq!(pool.cached(), 0);
        assert!(rest.windows(2).all(|w| w[0].base() == w[1].limit()), "slots not adjacent");
        assert_eq!(rest.last().unwrap().base(), first.limit(), "first is the top slot");
        rest.iter().chain([&first]).for_each(|s| touch(s, 3));
        drop((first, rest));

        let mut small = StackPool::new(3);
        let one = small.take(16 * 1024).unwrap();
        assert_eq!(small.cached(), 3, "a batch fills the room left, no more");
        drop((one, small));
        empty_thread_cache();
    }

    /// One step of the model test.
    #[derive(Clone, Debug)]
    enum Op {
        /// Take a stack of this many KiB.
        Take(usize),
        /// Give back the outstanding stack at this index (modulo their count).
        Give(usize),
        /// Drop the pool and start the next one on this thread (a new runtime).
        Restart,
        /// Release the pending stacks' pages now.
        Release,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => prop::sample::select(vec![16usize, 20, 64]).prop_map(Op::Take),
            4 => any::<usize>().prop_map(Op::Give),
            1 => Just(Op::Restart),
            1 => Just(Op::Release),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Random take/give/restart sequences: no range is handed out while
        /// it is still out, the caps hold, the counts add up, and once all is
        /// given back and the cache emptied every stack is unmapped.
        #[test]
        fn model(ops in prop::collection::vec(op(), 1..80), max_cached in 0usize..6, max_warm in 0usize..4) {
            let before = mapped_here();
            let mut pool = StackPool::new(max_cached);
            pool.max_warm = max_warm.min(max_cached);
            let mut out: Vec<GreenStack> = Vec::new();
            for op in ops {
                match op {
                    Op::Take(kib) => {
                        let stack = pool.take(kib * 1024).unwrap();
                        prop_assert_eq!(stack.size(), usable_size(kib * 1024).unwrap());
                        touch(&stack, kib as u8);
                        let (lo, hi) = (stack.limit().get(), stack.base().get());
                        for other in &out {
                            prop_assert!(hi <= other.limit().get() || other.base().get() <= lo,
                                "{stack:?} overlaps {other:?}");
                        }
                        out.push(stack);
                    }
                    Op::Give(i) if !out.is_empty() => {
                        let stack = out.swap_remove(i % out.len());
                        pool.give(stack);
                    }
                    Op::Give(_) => {}
                    Op::Release => pool.cache.release_pending(),
                    Op::Restart => {
                        drop(pool);
                        pool = StackPool::new(max_cached);
                        pool.max_warm = max_warm.min(max_cached);
                    }
                }
                let cache = &pool.cache;
                prop_assert!(cache.len() <= max_cached);
                prop_assert!(cache.len() <= cache.quota && cache.quota <= cache.len() + 2 * QUOTA_STEP);
                prop_assert!(cache.warm <= pool.max_warm);
                let mut per_size: HashMap<usize, usize> = HashMap::new();
                for shelf in &cache.shelves {
                    prop_assert!(!shelf.is_empty());
                    prop_assert!(shelf.warm.iter().chain(&shelf.cold).all(|s| s.size() == shelf.size));
                    *per_size.entry(shelf.size).or_default() += 1;
                }
                prop_assert!(per_size.values().all(|&n| n == 1), "one shelf per size");
                prop_assert!(cache.pending.len() < RELEASE_BATCH);
                prop_assert!(cache.pending.iter().all(|s| s.size() == usable_size(s.size()).unwrap()));
                let warm: usize = cache.shelves.iter().map(|s| s.warm.len()).sum();
                prop_assert_eq!(warm, cache.warm);
                let counted: usize = cache.pending.len()
                    + cache.shelves.iter().map(|s| s.warm.len() + s.cold.len()).sum::<usize>();
                prop_assert_eq!(counted, cache.len());
                prop_assert!(cache.doomed.len() < RELEASE_BATCH);
                let mapped = out.len() + cache.len() + cache.doomed.len();
                prop_assert_eq!(mapped_here() - before, mapped as isize);
            }
            out.into_iter().for_each(|s| pool.give(s));
            drop(pool);
            empty_thread_cache();
            prop_assert_eq!(mapped_here(), before, "stacks left mapped");
        }
    }
}
