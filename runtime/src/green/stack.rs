//! Green-thread stacks: `mmap`'d regions with a guard page, and a per-thread pool.
//!
//! # Mechanism
//!
//! A [`GreenStack`] is one private anonymous mapping laid out as
//!
//! ```text
//! low address                                              high address
//! [ guard page, PROT_NONE ][ usable stack, PROT_READ | PROT_WRITE ]
//! ^ limit()                ^ guard().end                          ^ base()
//! ```
//!
//! Stacks grow downwards, so a green thread that exhausts its usable bytes
//! touches the guard page and takes a `SIGSEGV` instead of silently corrupting
//! whatever lies below (see the `overflow` module for the message printed
//! then). The whole range is first mapped `PROT_NONE` with `MAP_NORESERVE`, and
//! everything but the lowest page is then made readable and writable with
//! `mprotect`. The kernel commits pages lazily: only touched pages count
//! towards RSS, and `MAP_NORESERVE` keeps the untouched rest out of the commit
//! charge (under the default overcommit heuristics).
//!
//! [`StackPool`] (the `pool` module) caches finished threads' stacks per OS
//! thread, across runtimes, so that spawns mostly do no `mmap`/`munmap`; a
//! cached stack beyond the first 1,024 gives its touched pages back with
//! `GreenStack::release_pages` and keeps only its address space.
//!
//! # Invariants of the unsafe code
//!
//! * A `GreenStack` exclusively owns `[start, start + len)`, exactly the range
//!   returned by one successful `mmap`; `len` is a whole number of pages and
//!   the lowest page is `PROT_NONE` for the value's whole life.
//! * The region is unmapped exactly once, in `Drop`, and nothing else ever
//!   unmaps or re-protects it; corosensei only runs code on a stack while its
//!   `Coroutine` owns it, so no frame lives in the region when it is dropped
//!   or when `release_pages` lets the kernel discard its contents.
//! * `base()` and `limit()` are page-aligned, hence aligned to
//!   [`corosensei::stack::STACK_ALIGNMENT`], and at least one guard page plus
//!   [`MIN_STACK_SIZE`] usable bytes lie between them, as the `Stack` trait's
//!   safety contract requires.

use std::fmt;
use std::io;
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicUsize, Ordering};

use corosensei::stack::{MIN_STACK_SIZE, Stack, StackPointer};

mod pool;

pub(crate) use pool::{DEFAULT_MAX_CACHED, StackPool};

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
    /// Maps a stack of at least `size` usable bytes, rounded up to whole pages
    /// (and to at least [`MIN_STACK_SIZE`]), plus one guard page below it.
    ///
    /// Memory is committed lazily by the kernel: RSS counts only touched pages.
    pub(crate) fn new(size: usize) -> io::Result<Self> {
        let usable = usable_size(size)?;
        let guard_len = page_size();
        let len = usable.checked_add(guard_len).ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "stack size overflows usize")
        })?;
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
        // SAFETY: mmap(2) with a NULL hint lets the kernel pick an unused range,
        // so no existing mapping is replaced; MAP_ANONYMOUS with fd -1 and
        // offset 0 is the documented anonymous form. No memory is accessed here.
        let raw = unsafe { libc::mmap(ptr::null_mut(), len, libc::PROT_NONE, flags, -1, 0) };
        if raw == libc::MAP_FAILED {
            return Err(map_error(usable));
        }
        let start =
            NonNull::new(raw.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned NULL"))?;
        // Own the mapping before the fallible mprotect, so Drop unmaps it on error.
        let stack = Self { start, len, guard_len };
        #[cfg(test)]
        count_mapped(1);
        let usable_start = raw.cast::<u8>().wrapping_add(guard_len);
        // SAFETY: mprotect(2) needs a page-aligned address; mmap returned a
        // page-aligned start and guard_len is one page. The range
        // [start + guard_len, start + len) lies inside the mapping that `stack`
        // exclusively owns and that nothing references yet.
        let rc = unsafe {
            libc::mprotect(usable_start.cast(), usable, libc::PROT_READ | libc::PROT_WRITE)
        };
        if rc != 0 {
            return Err(map_error(usable));
        }
        Ok(stack)
    }

    /// Usable bytes of the stack (the guard page excluded).
    pub(crate) fn size(&self) -> usize {
        self.len - self.guard_len
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
        let mut rest = &stacks[..];
        while let Some(first) = rest.first() {
            let adjacent = rest
                .windows(2)
                .take_while(|w| w[0].start.as_ptr().wrapping_add(w[0].len) == w[1].start.as_ptr())
                .count();
            let last = &rest[adjacent];
            let from = first.start.as_ptr().wrapping_add(first.guard_len);
            let len = last.start.as_ptr() as usize + last.len - from as usize;
            let advise = |advice| {
                // SAFETY: madvise(2) on a page-aligned range from the usable
                // start of `first` to the end of `last`: stacks that follow one
                // another in memory without a gap, each a mapping we own
                // exclusively (`&mut`), so the range is fully mapped and ours.
                // MADV_FREE and MADV_DONTNEED only let the pages' contents
                // become zero-fill-on-demand and keep the mappings and their
                // protection (each guard stays PROT_NONE). No coroutine runs on
                // these stacks, so no frame or reference lives in those bytes.
                unsafe { libc::madvise(from.cast(), len, advice) }
            };
            if advise(libc::MADV_FREE) != 0 && advise(libc::MADV_DONTNEED) != 0 {
                return Err(io::Error::last_os_error());
            }
            rest = &rest[adjacent + 1..];
        }
        Ok(())
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
    /// Unmaps the whole region, guard page included.
    fn drop(&mut self) {
        // SAFETY: munmap(2) on exactly the range one mmap returned, which this
        // value exclusively owns and unmaps only here; no coroutine frame is
        // live in it (corosensei owns the stack while code runs on it).
        let rc = unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
        debug_assert_eq!(rc, 0, "munmap of a green stack failed");
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

/// The last OS error of mapping a stack, with what usually causes it.
fn map_error(usable: usize) -> io::Error {
    let error = io::Error::last_os_error();
    let hint = if error.raw_os_error() == Some(libc::ENOMEM) {
        "; each live green thread uses two memory mappings (stack and guard page), \
         so the kernel's vm.max_map_count (see /proc/sys/vm/max_map_count) bounds \
         how many can be alive at once"
    } else {
        ""
    };
    io::Error::new(
        error.kind(),
        format!("cannot map a {} KiB green thread stack: {error}{hint}", usable / 1024),
    )
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

    /// Releasing pages keeps stacks usable and their guard pages
    /// `PROT_NONE`, also across a run of adjacent stacks in one `madvise`.
    #[test]
    fn release_keeps_stacks_and_guards() {
        let mut stacks: Vec<_> = (0..8).map(|_| GreenStack::new(16 * 1024).unwrap()).collect();
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
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        for stack in &stacks {
            let guard = stack.guard();
            let line = maps
                .lines()
                .find(|l| {
                    let (range, _) = l.split_once(' ').unwrap();
                    let (lo, hi) = range.split_once('-').unwrap();
                    let lo = usize::from_str_radix(lo, 16).unwrap();
                    let hi = usize::from_str_radix(hi, 16).unwrap();
                    lo <= guard.start && guard.end <= hi
                })
                .expect("guard page not mapped");
            assert!(line.contains(" ---p "), "guard not PROT_NONE: {line}");
        }
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
        pool.give(co.into_stack());
        assert_eq!(pool.cached(), 1);
        assert_eq!(pool.take(64 * 1024).unwrap().base(), base);
    }
}
