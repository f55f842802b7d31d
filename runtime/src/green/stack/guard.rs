//! Guard pages inside a shared mapping: page-table guard markers where the
//! kernel has them, `PROT_NONE` pages where it does not.
//!
//! # Mechanism
//!
//! Stacks are carved out of one readable and writable mapping per batch (see
//! the `stack` module), so each stack's guard page must be made inaccessible
//! in place. Two ways exist:
//!
//! * **Guard markers** (`madvise(MADV_GUARD_INSTALL)`, Linux 6.13+): the
//!   kernel writes a marker into the page-table entry, and any access to the
//!   page faults with `SIGSEGV` (`SEGV_MAPERR`, `si_addr` = the address
//!   touched). The mapping is not split, so a whole batch of stacks stays one
//!   VMA (one of the process's `vm.max_map_count`). Markers stay through
//!   `MADV_FREE` and `MADV_DONTNEED`, are kept across `fork`, and go away only
//!   with `munmap`, a `MAP_FIXED` mapping over the page, or
//!   `MADV_GUARD_REMOVE`, none of which we do to a live stack.
//! * **`PROT_NONE` pages** (`mprotect`), everywhere else: each guard splits
//!   the mapping, so a stack costs two VMAs (its guard and its usable bytes).
//!
//! The first guard installed decides: if the kernel rejects `MADV_GUARD_INSTALL`
//! (`EINVAL` on kernels without it), every later guard is a `PROT_NONE` page.
//! A mapping that refuses markers on a kernel that has them (one locked by
//! `mlockall(MCL_FUTURE)`) gets `PROT_NONE` guards too.
//!
//! # Why not unmapped holes
//!
//! A hole left unmapped below each stack would also cost no VMA, but it
//! guards only while nothing is mapped into it, and the kernel's top-down
//! `mmap` puts a new mapping in the highest gap that fits, a one-page hole
//! included. Keeping holes out of its way means reserving a region far from
//! `mmap_base` and from the `brk` heap and arguing that no `mmap` hint,
//! `MAP_FIXED` caller or address-space exhaustion ever reaches it. A guard
//! marker needs none of that: the page stays part of our mapping, so no other
//! mapping can be placed on it except by an explicit `MAP_FIXED` over our
//! memory, which would break any stack, guarded or not.
//!
//! So nothing can land in a guard: the top-down allocator looks only in
//! gaps, and a guard is no gap; an `mmap` hint that points into it is
//! ignored (without `MAP_FIXED` the kernel never replaces a mapping, and the
//! `later_mappings_miss_the_batch` test maps 4,096 pages, half with such
//! hints, and checks); `MAP_FIXED` by other code over our memory is a bug in
//! that code whatever the guard; and when the address space runs out,
//! `mmap` fails with `ENOMEM`, which reaches the spawner as an error naming
//! the limit, while the guards already installed stay.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use super::advise::advise_each;
use crate::syscall;

/// `MADV_GUARD_INSTALL` from `<linux/mman.h>` (Linux 6.13); not in `libc` yet.
const MADV_GUARD_INSTALL: libc::c_int = 102;

/// [`MODE`] before the first guard is installed.
const UNKNOWN: u8 = 0;
/// [`MODE`] once the kernel accepted a guard marker.
const MARKERS: u8 = 1;
/// [`MODE`] once the kernel rejected guard markers.
const PROTECT: u8 = 2;

/// How guards are made in this process: [`UNKNOWN`], [`MARKERS`] or [`PROTECT`].
static MODE: AtomicU8 = AtomicU8::new(UNKNOWN);

/// Mappings (VMAs) each live stack costs once carved: 0 with guard markers
/// (the batch's one mapping is shared), 2 with `PROT_NONE` guards, and 2
/// before the first guard decided it (the cautious answer).
pub(super) fn mappings_per_stack() -> usize {
    match MODE.load(Ordering::Relaxed) {
        MARKERS => 0,
        _ => 2,
    }
}

/// Whether guard markers may be installed with `process_madvise` (cleared
/// when the kernel rejects it).
static VECTORED_OK: AtomicBool = AtomicBool::new(true);

/// Installs a guard of `len` bytes at `first + i * stride` for each `i` in
/// `0..count`, in that order, and returns how many were installed, with
/// the error that stopped it short. With guard markers, a batch of them
/// per system call (`advise_each`, Linux 6.15+); otherwise, or where that
/// is refused, one [`install`] each.
///
/// # Safety
///
/// Every one of those ranges must meet [`install`]'s contract.
pub(super) unsafe fn install_each(
    first: *mut u8,
    stride: usize,
    count: usize,
    len: usize,
) -> (usize, Option<io::Error>) {
    let mut done = 0;
    if MODE.load(Ordering::Relaxed) == UNKNOWN && count > 0 {
        // The first guard decides the mode.
        // SAFETY: the caller's contract covers this range.
        if let Err(error) = unsafe { install(first, len) } {
            return (0, Some(error));
        }
        done = 1;
    }
    if MODE.load(Ordering::Relaxed) == MARKERS {
        let rest = first.wrapping_add(done * stride);
        // SAFETY: each range meets `install`'s contract (the caller's), and
        // MADV_GUARD_INSTALL on it is what `install` does.
        done += unsafe {
            advise_each(rest, stride, count - done, len, MADV_GUARD_INSTALL, &VECTORED_OK)
        };
    }
    while done < count {
        // SAFETY: the caller's contract covers every range.
        if let Err(error) = unsafe { install(first.wrapping_add(done * stride), len) } {
            return (done, Some(error));
        }
        done += 1;
    }
    (done, None)
}

/// Makes `[page, page + len)` inaccessible in place: a guard marker if the
/// kernel has them, else `PROT_NONE`.
///
/// # Errors
///
/// The OS error of `mprotect` (typically `ENOMEM`: `vm.max_map_count`
/// reached), or of `madvise` other than `EINVAL` (the kernel or the mapping
/// does not take markers: `mprotect` then).
///
/// # Safety
///
/// `[page, page + len)` must be page-aligned, lie inside one private
/// anonymous mapping that the caller owns exclusively, and hold no data or
/// frame anyone still uses: its contents are discarded.
pub(super) unsafe fn install(page: *mut u8, len: usize) -> io::Result<()> {
    if MODE.load(Ordering::Relaxed) != PROTECT {
        // SAFETY: madvise(2) on a page-aligned range of a private anonymous
        // mapping the caller owns and no one uses (the contract above);
        // MADV_GUARD_INSTALL only zaps those pages and marks their entries.
        let Err(error) = syscall!(unsafe { libc::madvise(page.cast(), len, MADV_GUARD_INSTALL) })
        else {
            MODE.store(MARKERS, Ordering::Relaxed);
            return Ok(());
        };
        if error.raw_os_error() != Some(libc::EINVAL) {
            return Err(error);
        }
        // EINVAL: no markers in this kernel, or none on this mapping (one
        // locked by `mlockall(MCL_FUTURE)`); a PROT_NONE page serves either way.
        let _ = MODE.compare_exchange(UNKNOWN, PROTECT, Ordering::Relaxed, Ordering::Relaxed);
    }
    // SAFETY: mprotect(2) on a page-aligned range inside a mapping the caller
    // owns exclusively and no one uses (the contract above).
    syscall!(unsafe { libc::mprotect(page.cast(), len, libc::PROT_NONE) }).map(drop)
}

/// Whether every page of `range` (page-aligned) is a guard: a guard marker
/// or a `PROT_NONE` page. For tests: reading the page would kill the process.
#[cfg(test)]
pub(super) fn is_guard(range: std::ops::Range<usize>) -> bool {
    has_markers(range.clone()) || is_prot_none(range)
}

/// Whether every page of `range` holds a guard marker, as
/// `/proc/self/pagemap` reports it (bit 58, Linux 6.15+).
#[cfg(test)]
fn has_markers(range: std::ops::Range<usize>) -> bool {
    use std::os::unix::fs::FileExt;
    let page = super::page_size();
    let pagemap = std::fs::File::open("/proc/self/pagemap").unwrap();
    (range.start..range.end).step_by(page).all(|addr| {
        let mut entry = [0u8; 8];
        let offset = (addr / page * 8) as u64;
        pagemap.read_exact_at(&mut entry, offset).is_ok()
            && u64::from_ne_bytes(entry) >> 58 & 1 == 1
    })
}

/// Whether `range` lies in a `PROT_NONE` mapping as `/proc/self/maps` lists it.
#[cfg(test)]
fn is_prot_none(range: std::ops::Range<usize>) -> bool {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    maps.lines().any(|line| {
        let mut fields = line.split_whitespace();
        let (Some(span), Some(perms)) = (fields.next(), fields.next()) else { return false };
        let Some((lo, hi)) = span.split_once('-') else { return false };
        let lo = usize::from_str_radix(lo, 16).unwrap_or(usize::MAX);
        let hi = usize::from_str_radix(hi, 16).unwrap_or(0);
        perms.starts_with("---") && lo <= range.start && range.end <= hi
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ptr;

    /// Installing a guard decides the mode and leaves the pages on either
    /// side readable and writable (that the guard faults is checked by the
    /// overflow tests, in a child process).
    #[test]
    fn install_keeps_neighbours_writable() {
        let page = crate::green::stack::page_size();
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: mmap(2) with a NULL hint maps a fresh range; no memory is touched.
        let raw = unsafe { libc::mmap(ptr::null_mut(), 3 * page, prot, flags, -1, 0) };
        assert_ne!(raw, libc::MAP_FAILED);
        let base = raw.cast::<u8>();
        // SAFETY: the middle page of the mapping made just above, which only
        // this test owns and nothing uses.
        unsafe { install(base.wrapping_add(page), page) }.unwrap();
        assert_ne!(MODE.load(Ordering::Relaxed), UNKNOWN);
        // SAFETY: the first and last pages stay readable and writable.
        unsafe {
            base.write_volatile(1);
            base.wrapping_add(2 * page).write_volatile(2);
            assert_eq!(base.read_volatile() + base.wrapping_add(2 * page).read_volatile(), 3);
        }
        // SAFETY: unmaps the mapping made above, no longer used.
        assert_eq!(unsafe { libc::munmap(raw, 3 * page) }, 0);
    }

    /// A locked mapping refuses guard markers (`EINVAL`): the guard is then
    /// a `PROT_NONE` page, and the process keeps markers for other mappings.
    #[test]
    fn locked_mapping_gets_prot_none() {
        let page = crate::green::stack::page_size();
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS;
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: mmap(2) with a NULL hint maps fresh ranges; nothing is touched.
        let plain = unsafe { libc::mmap(ptr::null_mut(), page, prot, flags, -1, 0) };
        assert_ne!(plain, libc::MAP_FAILED);
        // SAFETY: the page just mapped, owned by this test and unused.
        unsafe { install(plain.cast(), page) }.unwrap();
        let mode = MODE.load(Ordering::Relaxed);
        // SAFETY: as above, with MAP_LOCKED (within RLIMIT_MEMLOCK: 3 pages).
        let locked =
            unsafe { libc::mmap(ptr::null_mut(), 3 * page, prot, flags | libc::MAP_LOCKED, -1, 0) };
        assert_ne!(locked, libc::MAP_FAILED, "{}", io::Error::last_os_error());
        let middle = locked.cast::<u8>().wrapping_add(page);
        // SAFETY: the middle page of the locked mapping, owned and unused.
        unsafe { install(middle, page) }.unwrap();
        assert!(is_prot_none(middle as usize..middle as usize + page));
        assert_eq!(MODE.load(Ordering::Relaxed), mode, "one locked mapping changed the mode");
        // SAFETY: unmaps both mappings made above, no longer used.
        unsafe {
            assert_eq!(libc::munmap(plain, page), 0);
            assert_eq!(libc::munmap(locked, 3 * page), 0);
        }
    }
}
