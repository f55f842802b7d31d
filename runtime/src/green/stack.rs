//! Green-thread stacks: slots of batch `mmap`s, each with a guard page, and
//! a per-thread pool.
//!
//! # Mechanism
//!
//! Stacks are mapped in batches: one private anonymous `mmap` of `count`
//! equal slots ([`GreenStack::map_batch`]), each slot becoming one
//! [`GreenStack`] laid out as
//!
//! ```text
//! low address                                              high address
//! [ guard page ][ usable stack, PROT_READ | PROT_WRITE ][ next slot ...
//! ^ limit()     ^ guard().end                          ^ base()
//! ```
//!
//! Stacks grow downwards, so a green thread that exhausts its usable bytes
//! touches its guard page and takes a `SIGSEGV` instead of silently
//! corrupting the slot below (see the `overflow` module for the message
//! printed then). The guard is made inaccessible in place by the `guard`
//! module: a page-table guard marker where the kernel has them (Linux 6.13+),
//! so the whole batch stays **one** mapping (VMA) however many stacks it
//! holds, else a `PROT_NONE` page, which costs each stack two VMAs. The
//! number of VMAs a process may have is `vm.max_map_count` (65,530 by
//! default), so with markers it no longer bounds the number of live green
//! threads; memory does.
//!
//! The mapping is `MAP_NORESERVE` and `MADV_NOHUGEPAGE`: the kernel commits
//! pages lazily, only touched ones count towards RSS, the untouched rest stays
//! out of the commit charge (under the default overcommit heuristics), and no
//! transparent huge page turns a 4 KiB touch into 2 MiB of RSS.
//!
//! The one page each stack is sure to use, its top (where corosensei writes
//! the coroutine's first frame as it is spawned), is faulted in for the
//! whole batch at once: `MADV_POPULATE_WRITE` on every slot's top page with
//! one `process_madvise` (Linux 6.15+; elsewhere the page faults in at the
//! spawn). That saves each fresh stack's page-fault trap, not the page: the
//! kernel still allocates, zeroes and charges it, now in the spawn that maps
//! the batch (on the 2-vCPU test VM a page costs 1.45–1.6 µs this way, about
//! what it costs with a trap, and a slot's guard marker 0.4 µs more:
//! `examples/page_cost.rs` times each step). A batch's stacks not yet used
//! so hold one page each.
//!
//! [`StackPool`] (the `pool` module) maps a batch when its cache has no stack
//! of the wanted size, hands one out and caches the rest, and caches finished
//! threads' stacks per OS thread, across runtimes, so that spawns mostly do no
//! system call; a cached stack beyond the first 12,288 gives its touched pages
//! back with `GreenStack::release_pages` and keeps only its address space.
//!
//! # Invariants of the unsafe code
//!
//! * A `GreenStack` exclusively owns its slot `[start, start + len)`, part of
//!   one successful `mmap` that no other value owns; `len` is a whole number
//!   of pages and the lowest page is a guard for the value's whole life (no
//!   one else maps over, unmaps or re-protects the slot).
//! * The slot is unmapped exactly once, in `Drop` or with its neighbours in
//!   `unmap_all`. The hole it leaves in its batch may take any later
//!   mapping: no guard depends on it, as each stack's guard lies in its own
//!   slot; corosensei only runs code
//!   on a stack while its `Coroutine` owns it, so no frame lives in the slot
//!   when it is dropped or when `release_pages` lets the kernel discard its
//!   contents.
//! * `base()` and `limit()` are page-aligned, hence aligned to
//!   [`corosensei::stack::STACK_ALIGNMENT`], and at least one guard page plus
//!   [`MIN_STACK_SIZE`] usable bytes lie between them, as the `Stack` trait's
//!   safety contract requires.

use std::fmt;
use std::io;
use std::mem::{self, ManuallyDrop};
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use corosensei::stack::{MIN_STACK_SIZE, Stack, StackPointer};

use crate::syscall;

mod advise;
mod guard;
mod pool;

pub(crate) use pool::{DEFAULT_MAX_CACHED, StackPool};

/// Green stacks mapped in this process and not yet unmapped.
static MAPPED: AtomicUsize = AtomicUsize::new(0);

/// Whether a batch's top pages may be faulted in with `process_madvise`
/// (cleared when the kernel refuses).
static POPULATE_OK: AtomicBool = AtomicBool::new(true);

#[cfg(test)]
thread_local! {
    /// Stacks this thread mapped minus those it unmapped, for leak checks.
    static MAPPED_HERE: std::cell::Cell<isize> = const { std::cell::Cell::new(0) };
}

/// Adds `delta` to this thread's [`MAPPED_HERE`] count (tests only).
#[cfg(test)]
fn count_mapped(delta: isize) {
    let _ = MAPPED_HERE.try_with(|c| c.set(c.get() + delta));
}

/// Stacks this thread mapped and has not unmapped (tests only).
#[cfg(test)]
fn mapped_here() -> isize {
    MAPPED_HERE.with(std::cell::Cell::get)
}

/// The system page size in bytes, queried once and cached.
fn page_size() -> usize {
    /// Cached page size; 0 until first queried.
    static PAGE_SIZE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE_SIZE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: sysconf(3) takes no pointers and has no preconditions;
    // _SC_PAGESIZE is a name every POSIX system supports.
    let raw = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    let page = usize::try_from(raw)
        .ok()
        .filter(|p| p.is_power_of_two())
        .expect("sysconf(_SC_PAGESIZE) returned no usable page size");
    PAGE_SIZE.store(page, Ordering::Relaxed);
    page
}

/// Rounds a requested usable size up to whole pages, at least [`MIN_STACK_SIZE`].
#[inline]
fn usable_size(size: usize) -> io::Result<usize> {
    let page = page_size();
    size.max(MIN_STACK_SIZE)
        .checked_add(page - 1)
        .map(|s| s & !(page - 1))
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows usize"))
}

/// An owned `mmap`'d stack: one `PROT_NONE` guard page below the usable bytes.
pub(crate) struct GreenStack {
    /// Lowest address of the mapping (the start of the guard page).
    start: NonNull<u8>,
    /// Length of the whole mapping in bytes, guard page included.
    len: usize,
    /// Length of the guard page in bytes (one page).
    guard_len: usize,
}

// SAFETY: a GreenStack is the sole owner of a private anonymous mapping that no
// other value aliases; it exposes only addresses, never references into the
// memory, so moving that ownership to another thread (which may then munmap it
// in Drop) is no different from moving a Box.
unsafe impl Send for GreenStack {}

impl GreenStack {
    /// Maps one stack of at least `size` usable bytes, rounded up to whole
    /// pages (and to at least [`MIN_STACK_SIZE`]), plus one guard page below it.
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let mut one = Vec::with_capacity(1);
        Self::map_batch(size, 1, &mut one)?;
        one.pop().ok_or_else(|| io::Error::other("a batch of one stack came back empty"))
    }

    /// Maps `count` (at least one) stacks of at least `size` usable bytes
    /// each with one `mmap`, installs their guard pages, and appends them to
    /// `out`, in address order.
    ///
    /// If a guard cannot be installed after the first stack, the stacks made
    /// so far are kept and the rest of the mapping is unmapped: fewer than
    /// `count` may be appended.
    ///
    /// # Errors
    ///
    /// An `InvalidInput` error if the sizes overflow, or the OS error of the
    /// mapping or of the first guard, with what limits the number of stacks.
    pub(crate) fn map_batch(size: usize, count: usize, out: &mut Vec<Self>) -> io::Result<()> {
        let too_big = || io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows usize");
        let usable = usable_size(size)?;
        let page = page_size();
        let slot = usable.checked_add(page).ok_or_else(too_big)?;
        let count = count.max(1);
        let len = slot.checked_mul(count).ok_or_else(too_big)?;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
        // SAFETY: mmap(2) with a NULL hint lets the kernel pick an unused range,
        // so no existing mapping is replaced; MAP_ANONYMOUS with fd -1 and
        // offset 0 is the documented anonymous form. No memory is accessed here.
        let raw = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
        if raw == libc::MAP_FAILED {
            return Err(map_error(io::Error::last_os_error(), usable));
        }
        // SAFETY: madvise(2) on exactly the mapping just made; MADV_NOHUGEPAGE
        // only changes how the kernel backs it. Failure leaves it as it was.
        let _ = syscall!(unsafe { libc::madvise(raw, len, libc::MADV_NOHUGEPAGE) });
        let first = raw.cast::<u8>();
        // SAFETY: the guard page at the bottom of each slot: page-aligned
        // (mmap returns page-aligned memory and `slot` is whole pages), in
        // the mapping made above, which only this function holds and nothing
        // uses yet.
        let (guarded, error) = unsafe { guard::install_each(first, slot, count, page) };
        if guarded < count {
            let rest = first.wrapping_add(guarded * slot).cast();
            // SAFETY: munmap(2) on the slots from the first unguarded one to
            // the end of the mapping made above: none is handed out. On
            // failure they stay mapped, unused, with the address space.
            let _ = syscall!(unsafe { libc::munmap(rest, len - guarded * slot) });
        }
        if let (0, Some(error)) = (guarded, error) {
            return Err(map_error(error, usable));
        }
        // SAFETY: the top page of each guarded slot: page-aligned, in the
        // mapping made above, which only this function holds and nothing
        // uses yet, and read-write (a slot is at least a guard page and
        // MIN_STACK_SIZE bytes, so its top page is no guard).
        // MADV_POPULATE_WRITE only faults the pages in, zero-filled as a
        // first write would, and changes no protection or guard.
        unsafe {
            let top = first.wrapping_add(slot - page);
            let populate = libc::MADV_POPULATE_WRITE;
            advise::advise_each(top, slot, guarded, page, populate, &POPULATE_OK)
        };
        out.reserve(guarded);
        for i in 0..guarded {
            // Not null: it lies in a mapping, which the kernel never puts at 0.
            let Some(start) = NonNull::new(first.wrapping_add(i * slot)) else { break };
            out.push(Self { start, len: slot, guard_len: page });
        }
        MAPPED.fetch_add(guarded, Ordering::Relaxed);
        #[cfg(test)]
        count_mapped(guarded as isize);
        Ok(())
    }

    /// Usable bytes of the stack (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.len - self.guard_len
    }

    /// Whether `next` starts where `self` ends (slots of one batch do).
    fn precedes(&self, next: &GreenStack) -> bool {
        self.start.as_ptr().wrapping_add(self.len) == next.start.as_ptr()
    }

    /// Gives the usable pages of every stack in `stacks` back to the kernel,
    /// keeping the mappings, with one `madvise` per run of adjacent stacks
    /// (`stacks` is sorted by address first). With `MADV_FREE` (Linux 4.5+)
    /// the kernel reclaims the pages when it needs memory (until then they
    /// still count in RSS, and a page written again before that costs no
    /// fault); where that is unsupported, `MADV_DONTNEED` frees them at once
    /// (the next touch of each faults in a zeroed page).
    ///
    /// Takes `&mut`: exclusive access proves no coroutine runs on them.
    pub(crate) fn release_pages(stacks: &mut [GreenStack]) -> io::Result<()> {
        stacks.sort_unstable_by_key(|s| s.start);
        for run in stacks.chunk_by(GreenStack::precedes) {
            let (first, last) = (&run[0], &run[run.len() - 1]);
            let from = first.start.as_ptr().wrapping_add(first.guard_len);
            let len = last.start.as_ptr() as usize + last.len - from as usize;
            let advise = |advice| {
                // SAFETY: madvise(2) on a page-aligned range from the usable
                // start of `first` to the end of `last`: stacks that follow one
                // another in memory without a gap, each a slot we own
                // exclusively (`&mut`), so the range is fully mapped and ours.
                // MADV_FREE and MADV_DONTNEED only let the pages' contents
                // become zero-fill-on-demand and keep the mappings, their
                // protection and their guard markers (each guard stays a
                // guard). No coroutine runs on these stacks, so no frame or
                // reference lives in those bytes.
                syscall!(unsafe { libc::madvise(from.cast(), len, advice) })
            };
            advise(libc::MADV_FREE).or_else(|_| advise(libc::MADV_DONTNEED))?;
        }
        Ok(())
    }

    /// Unmaps every stack in `stacks`, leaving it empty, with one `munmap`
    /// per run of adjacent stacks: a whole batch unmapped together splits no
    /// mapping, where unmapping its slots one by one splits it each time.
    pub(crate) fn unmap_all(stacks: &mut Vec<GreenStack>) {
        stacks.sort_unstable_by_key(|s| s.start);
        let mut all: Vec<_> = mem::take(stacks).into_iter().map(ManuallyDrop::new).collect();
        for run in all.chunk_by_mut(|a, b| a.precedes(b)) {
            let (first, last) = (&run[0], &run[run.len() - 1]);
            let len = last.start.as_ptr() as usize + last.len - first.start.as_ptr() as usize;
            // SAFETY: munmap(2) on adjacent slots that these values own
            // exclusively; they are never dropped after this succeeds, so
            // nothing unmaps the range again. No coroutine runs on them
            // (`&mut`, taken by value from the caller).
            if syscall!(unsafe { libc::munmap(first.start.as_ptr().cast(), len) }).is_ok() {
                MAPPED.fetch_sub(run.len(), Ordering::Relaxed);
                #[cfg(test)]
                count_mapped(-(run.len() as isize));
            } else {
                for stack in run {
                    // SAFETY: each value is dropped exactly once, here, and
                    // not used afterwards (`all` is only deallocated).
                    unsafe { ManuallyDrop::drop(stack) };
                }
            }
        }
    }

    /// Address range of the guard page (the lowest page of the mapping).
    pub(crate) fn guard(&self) -> Range<usize> {
        let start = self.start.as_ptr() as usize;
        start..start + self.guard_len
    }
}

// SAFETY: the region has a PROT_NONE guard page at its bottom and at least
// MIN_STACK_SIZE usable bytes above it (see `new`), both bounds are
// page-aligned and so STACK_ALIGNMENT-aligned, and the mapping lives as long
// as the value.
unsafe impl Stack for GreenStack {
    /// Top of the mapping: the highest address, where the stack starts.
    #[inline]
    fn base(&self) -> StackPointer {
        StackPointer::new(self.start.as_ptr() as usize + self.len)
            .expect("mapping ends at a non-zero address")
    }

    /// Bottom of the mapping, guard page included, as the trait requires.
    #[inline]
    fn limit(&self) -> StackPointer {
        StackPointer::new(self.start.as_ptr() as usize)
            .expect("mapping starts at a non-zero address")
    }
}

impl Drop for GreenStack {
    /// Unmaps the slot, guard page included. Unmapping the middle of a batch
    /// splits its mapping in two, which fails with `ENOMEM` when the process
    /// is at `vm.max_map_count`; the slot's pages are then discarded instead,
    /// and only its address space stays taken.
    fn drop(&mut self) {
        let start = self.start.as_ptr().cast();
        // SAFETY: munmap(2) on exactly the slot this value exclusively owns
        // and unmaps only here; no coroutine frame is live in it (corosensei
        // owns the stack while code runs on it).
        if syscall!(unsafe { libc::munmap(start, self.len) }).is_err() {
            // SAFETY: madvise(2) on the same owned, unused, still mapped slot;
            // MADV_DONTNEED only discards its pages' contents.
            let _ = syscall!(unsafe { libc::madvise(start, self.len, libc::MADV_DONTNEED) });
        }
        MAPPED.fetch_sub(1, Ordering::Relaxed);
        #[cfg(test)]
        count_mapped(-1);
    }
}

impl fmt::Debug for GreenStack {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let guard = self.guard();
        f.debug_struct("GreenStack")
            .field("guard", &format_args!("{:#x}..{:#x}", guard.start, guard.end))
            .field("usable", &format_args!("{:#x}..{:#x}", guard.end, self.base().get()))
            .field("size", &self.size())
            .finish()
    }
}

/// `error` from mapping a stack, with what limits the number of stacks when
/// it is `ENOMEM`: how many are mapped now, and the setting that allows more.
fn map_error(error: io::Error, usable: usize) -> io::Error {
    let kib = usable / 1024;
    if error.raw_os_error() != Some(libc::ENOMEM) {
        return io::Error::new(
            error.kind(),
            format!("cannot map a {kib} KiB green thread stack: {error}"),
        );
    }
    let mapped = MAPPED.load(Ordering::Relaxed);
    let max_map_count = read_number("/proc/sys/vm/max_map_count").unwrap_or(65_530);
    let maps_now = std::fs::read_to_string("/proc/self/maps").map_or(0, |m| m.lines().count());
    let hint = match guard::mappings_per_stack() {
        0 if maps_now + 1_000 < max_map_count => format!(
            "about {mapped} live green threads fit: that many stacks are mapped, sharing \
             a memory mapping per batch, so this is the memory or address-space limit \
             (free memory, `ulimit -v`, vm.overcommit_memory)"
        ),
        0 => format!(
            "about {mapped} live green threads fit: that many stacks are mapped, and the \
             process has {maps_now} memory mappings, at vm.max_map_count \
             ({max_map_count}; freed stacks split their batches' mappings): raise it with \
             `sysctl -w vm.max_map_count=N`"
        ),
        per_stack => {
            let others = maps_now.saturating_sub(per_stack * mapped);
            let fit = max_map_count.saturating_sub(others) / per_stack;
            format!(
                "{mapped} green thread stacks are mapped; each uses {per_stack} memory \
                 mappings (stack and guard page; this kernel has no guard markers), so \
                 vm.max_map_count = {max_map_count} lets about {fit} live green threads fit \
                 in this process; raise it with `sysctl -w vm.max_map_count=N` \
                 (N = {per_stack} per thread + {others})"
            )
        }
    };
    io::Error::new(
        error.kind(),
        format!("cannot map a {kib} KiB green thread stack: {error}; {hint}"),
    )
}

/// The first number in the file at `path` (a `/proc/sys` setting).
fn read_number(path: &str) -> Option<usize> {
    std::fs::read_to_string(path).ok()?.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use corosensei::{Coroutine, CoroutineResult, Yielder};

    /// Sizes round up to pages (min `MIN_STACK_SIZE`), and the guard page is
    /// one aligned page at the bottom of the region.
    #[test]
    fn new_size_and_guard() {
        let page = page_size();
        let s = GreenStack::new(1).unwrap();
        assert_eq!(s.size(), MIN_STACK_SIZE.max(page));
        let s = GreenStack::new(64 * 1024).unwrap();
        assert_eq!(s.size(), 64 * 1024);
        let odd = GreenStack::new(64 * 1024 + 1).unwrap();
        assert_eq!(odd.size(), 64 * 1024 + page);
        let g = s.guard();
        assert_eq!(g.start % page, 0);
        assert_eq!(g.len(), page);
        assert_eq!(g.start, s.limit().get());
        assert_eq!(s.base().get() - s.limit().get(), s.size() + page);
        assert_eq!(s.base().get() % corosensei::stack::STACK_ALIGNMENT, 0);
        assert!(format!("{s:?}").contains("size: 65536"));
        assert!(GreenStack::new(usize::MAX).is_err());
        assert!(GreenStack::new(usize::MAX - 2 * page).is_err());
    }

    /// The lowest and highest usable bytes are writable and readable.
    #[test]
    fn top_and_bottom_bytes_writable() {
        let s = GreenStack::new(16 * 1024).unwrap();
        let bottom = s.guard().end as *mut u8;
        let top = (s.base().get() - 1) as *mut u8;
        // SAFETY: both addresses lie in the PROT_READ|PROT_WRITE part of the
        // mapping `s` owns, which outlives these accesses.
        unsafe {
            bottom.write_volatile(0xA5);
            top.write_volatile(0x5A);
            assert_eq!(bottom.read_volatile(), 0xA5);
            assert_eq!(top.read_volatile(), 0x5A);
        }
    }

    /// Releasing pages keeps stacks usable and their guard pages guards,
    /// also across a run of adjacent stacks in one `madvise`.
    #[test]
    fn release_keeps_stacks_and_guards() {
        let mut stacks = Vec::new();
        GreenStack::map_batch(16 * 1024, 8, &mut stacks).unwrap();
        stacks.push(GreenStack::new(16 * 1024).unwrap());
        stacks.reverse();
        let write = |s: &GreenStack, v: u8| {
            let top = (s.base().get() - 1) as *mut u8;
            // SAFETY: the top usable byte lies in the PROT_READ|PROT_WRITE
            // part of the mapping `s` owns, which outlives the access.
            unsafe {
                top.write_volatile(v);
                top.read_volatile()
            }
        };
        stacks.iter().for_each(|s| assert_eq!(write(s, 0xAB), 0xAB));
        GreenStack::release_pages(&mut stacks).unwrap();
        assert!(stacks.windows(2).all(|w| w[0].start < w[1].start), "sorted by address");
        stacks.iter().for_each(|s| assert_eq!(write(s, 0xCD), 0xCD));
        for stack in &stacks {
            assert!(guard::is_guard(stack.guard()), "guard lost: {stack:?}");
        }
    }

    /// The ranges of the mappings in `/proc/self/maps` that overlap `range`.
    fn mappings_over(range: Range<usize>) -> Vec<Range<usize>> {
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        maps.lines()
            .filter_map(|line| {
                let (lo, hi) = line.split_whitespace().next()?.split_once('-')?;
                Some(usize::from_str_radix(lo, 16).ok()?..usize::from_str_radix(hi, 16).ok()?)
            })
            .filter(|m| m.start < range.end && range.start < m.end)
            .collect()
    }

    /// Whether each page of `range` (page-aligned) is resident (mincore(2)).
    fn resident(range: Range<usize>) -> Vec<bool> {
        let mut vec = vec![0u8; range.len() / page_size()];
        // SAFETY: mincore(2) on a mapped, page-aligned range writes one byte
        // per page into `vec`, which has exactly that many.
        syscall!(unsafe { libc::mincore(range.start as *mut _, range.len(), vec.as_mut_ptr()) })
            .unwrap();
        vec.iter().map(|b| b & 1 == 1).collect()
    }

    /// Where the kernel takes `MADV_POPULATE_WRITE` through
    /// `process_madvise`, a fresh batch has each stack's top page resident,
    /// and no other page of it: the rest commit only when touched.
    #[test]
    fn batch_top_pages_resident() {
        let page = page_size();
        let mut stacks = Vec::new();
        GreenStack::map_batch(64 * 1024, 8, &mut stacks).unwrap();
        for stack in &stacks {
            let below_top = resident(stack.guard().end..stack.base().get() - page);
            assert!(below_top.iter().all(|r| !r), "a page below the top is resident: {stack:?}");
            let top = resident(stack.base().get() - page..stack.base().get());
            let populated = POPULATE_OK.load(Ordering::Relaxed);
            assert_eq!(top, [populated], "top page resident != populated: {stack:?}");
            assert!(guard::is_guard(stack.guard()), "guard lost: {stack:?}");
        }
    }

    /// A batch's stacks are adjacent slots of one mapping where the kernel
    /// has guard markers (two mappings per stack where not), and thousands of
    /// pages mapped afterwards, with and without hints into the batch, land
    /// outside it while every guard stays a guard.
    #[test]
    fn later_mappings_miss_the_batch() {
        const STACKS: usize = 256;
        let page = page_size();
        let mut stacks = Vec::new();
        GreenStack::map_batch(16 * 1024, STACKS, &mut stacks).unwrap();
        assert_eq!(stacks.len(), STACKS);
        assert!(stacks.windows(2).all(|w| w[0].base().get() == w[1].limit().get()));
        let batch = stacks[0].limit().get()..stacks[STACKS - 1].base().get();
        let mappings = mappings_over(batch.clone()).len();
        match guard::mappings_per_stack() {
            0 => assert_eq!(mappings, 1, "a batch with guard markers is one mapping"),
            per_stack => assert_eq!(mappings, per_stack * STACKS),
        }

        let later: Vec<usize> = (0..4096)
            .map(|i| {
                // Every other one asks for an address inside the batch (a
                // hint, not MAP_FIXED: the kernel may not honour it there).
                let hint = if i % 2 == 0 { batch.start + i / 2 % STACKS * page } else { 0 };
                let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
                // SAFETY: mmap(2) without MAP_FIXED never replaces a mapping;
                // the hint is only a hint.
                let raw =
                    unsafe { libc::mmap(hint as *mut _, page, libc::PROT_READ, flags, -1, 0) };
                assert_ne!(raw, libc::MAP_FAILED);
                raw as usize
            })
            .collect();
        let landed = later.iter().filter(|&&a| batch.start <= a && a < batch.end).count();
        assert_eq!(landed, 0, "a later mapping landed inside the batch");
        assert!(stacks.iter().all(|s| guard::is_guard(s.guard())), "a guard was lost");
        for addr in later {
            // SAFETY: unmaps one of the pages mapped just above, unused.
            assert_eq!(unsafe { libc::munmap(addr as *mut _, page) }, 0);
        }
    }

    /// Runs `check` in a forked child, where no other test thread can map
    /// pages into a range `check` has just unmapped and then reads from
    /// `/proc/self/maps`; fails if the child's `check` panicked.
    fn alone(check: impl FnOnce()) {
        // SAFETY: the child is a copy of this thread alone; it runs `check`
        // (mmap, munmap, reading /proc: glibc's malloc is fork-safe) and
        // leaves with `_exit`, never returning into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", io::Error::last_os_error());
        if pid == 0 {
            let passed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check)).is_ok();
            // SAFETY: ends the child without running the parent's exit code.
            unsafe { libc::_exit(if passed { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the check failed in the child (its panic message is above)"
        );
    }

    /// `unmap_all` unmaps whole runs and lone stacks alike and leaves the
    /// vector empty; nothing of the batch stays mapped.
    #[test]
    fn unmap_all_unmaps_runs() {
        alone(unmap_all_unmaps_runs_alone);
    }

    fn unmap_all_unmaps_runs_alone() {
        let before = mapped_here();
        let mut stacks = Vec::new();
        GreenStack::map_batch(16 * 1024, 8, &mut stacks).unwrap();
        let batch = stacks[0].limit().get()..stacks[7].base().get();
        let lone = stacks.remove(3);
        stacks.push(GreenStack::new(16 * 1024).unwrap());
        assert_eq!(mapped_here() - before, 9);
        GreenStack::unmap_all(&mut stacks);
        assert!(stacks.is_empty());
        assert_eq!(mapped_here() - before, 1);
        let lone_range = lone.limit().get()..lone.base().get();
        assert_eq!(mappings_over(batch.clone()), vec![lone_range]);
        drop(lone);
        assert_eq!(mapped_here(), before);
        assert!(mappings_over(batch).is_empty());
    }

    /// Out of memory, the error says how many threads fit and names the
    /// sysctl; other errors are passed on with the stack size.
    #[test]
    fn map_error_names_the_limit() {
        let _stack = GreenStack::new(16 * 1024).unwrap();
        let enomem = map_error(io::Error::from_raw_os_error(libc::ENOMEM), 16 * 1024).to_string();
        assert!(enomem.starts_with("cannot map a 16 KiB green thread stack: "), "{enomem}");
        assert!(enomem.contains("live green threads fit"), "{enomem}");
        let knob = ["sysctl -w vm.max_map_count=", "ulimit -v"];
        assert!(knob.iter().any(|k| enomem.contains(k)), "{enomem}");
        let other = map_error(io::Error::from_raw_os_error(libc::EPERM), 64 * 1024);
        assert_eq!(other.kind(), io::ErrorKind::PermissionDenied);
        assert!(!other.to_string().contains("max_map_count"), "{other}");
    }

    /// A corosensei coroutine runs on a pooled stack, suspends, resumes and
    /// returns, and its stack goes back to the pool (and its thread cache).
    #[test]
    fn coroutine_on_pooled_stack() {
        let mut pool = StackPool::new(4);
        let stack = pool.take(64 * 1024).unwrap();
        let base = stack.base();
        let mut co = Coroutine::with_stack(stack, |y: &Yielder<u32, u32>, first: u32| {
            let mut scratch = [0u8; 16 * 1024];
            scratch[0] = 1;
            std::hint::black_box(&mut scratch);
            let second = y.suspend(first + 1);
            second * 2 + u32::from(scratch[0])
        });
        assert!(matches!(co.resume(1), CoroutineResult::Yield(2)));
        assert!(matches!(co.resume(10), CoroutineResult::Return(21)));
        assert!(co.done());
        // Unmap the rest of the stack's batch, to make room for it.
        while pool.cached() > 0 {
            drop(pool.take(64 * 1024).unwrap());
        }
        pool.give(co.into_stack());
        assert_eq!(pool.cached(), 1);
        assert_eq!(pool.take(64 * 1024).unwrap().base(), base);
    }
}
