//! What the kernel charges for the memory of a green thread's first use, on
//! this host: the costs behind `hello_green`'s cold spawn, one step at a
//! time, in this thread's CPU time and minor faults per page or per range.
//!
//! It lays out `--slots` slots of a guard page plus a 16 KiB stack, as the
//! runtime's stack batches do, and times each way of giving a slot its
//! memory: mapping the batches, installing the guards and populating the
//! stack tops 64 ranges per `process_madvise` (what a batch costs its
//! spawns), a trap on first touch instead, one `madvise` populating a
//! contiguous range (the kernel's cost of a page with no per-range work),
//! and touching a page again after `MADV_DONTNEED` and after `MADV_FREE`
//! (what a cached stack costs when reused).
//!
//! ```text
//! cargo run --release --example page_cost
//! ```

#[path = "common/thread_usage.rs"]
mod thread_usage;

use std::io;
use std::ptr;

use clap::Parser;

/// Time the kernel's steps in giving green thread stacks their memory.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Slots (guard page + 16 KiB stack) per step.
    #[arg(long, default_value_t = 10_240)]
    slots: usize,
}

/// Pages per slot: one guard page and a 16 KiB stack.
const SLOT_PAGES: usize = 5;
/// Slots per batch mapping and ranges per `process_madvise`, as in the runtime.
const BATCH: usize = 64;
/// `MADV_GUARD_INSTALL` (Linux 6.13).
const MADV_GUARD_INSTALL: libc::c_int = 102;
/// `PIDFD_SELF_THREAD_GROUP` (Linux 6.15).
const PIDFD_SELF: libc::c_int = -10001;

fn main() -> io::Result<()> {
    let args = Args::parse();
    let page = 4096;
    let slot = SLOT_PAGES * page;
    let batches = args.slots.div_ceil(BATCH);
    let slots = batches * BATCH;
    let step = |name: &str, per: &str, count: usize, f: &mut dyn FnMut()| {
        let (cpu, faults) = (thread_usage::cpu_ns(), thread_usage::minor_faults());
        f();
        let ns = (thread_usage::cpu_ns() - cpu) as f64 / count as f64;
        let faults = (thread_usage::minor_faults() - faults) as f64 / count as f64;
        println!("page_cost: {name:<28} {ns:>6.0} ns per {per:<5} {faults:.2} faults per {per}");
    };

    let mut maps = Vec::with_capacity(batches);
    step("mmap 64 slots", "slot", slots, &mut || {
        maps.extend((0..batches).map(|_| map(BATCH * slot)));
    });
    let maps: Vec<*mut u8> = maps.into_iter().collect::<io::Result<_>>()?;
    let vectored = |offset: usize, advice: libc::c_int| {
        maps.iter().all(|&batch| advise_slots(batch, offset, slot, advice).is_ok())
    };
    let mut ok = true;
    step("guard install, 64/call", "range", slots, &mut || ok = vectored(0, MADV_GUARD_INSTALL));
    let top = slot - page;
    step("populate top, 64/call", "page", slots, &mut || {
        ok &= vectored(top, libc::MADV_POPULATE_WRITE);
    });
    if !ok {
        println!("page_cost: process_madvise refused (Linux 6.15+ needed): figures above are void");
    }
    // The second page from the top of each slot: never touched so far.
    let below_top = top - page;
    let touch = |offset: usize| {
        for &batch in &maps {
            for i in 0..BATCH {
                // SAFETY: a read-write page of the batch mapped above (the
                // guard is the lowest page of the slot, `offset` is above it).
                unsafe { batch.add(i * slot + offset).write_volatile(1) };
            }
        }
    };
    step("first touch (trap)", "page", slots, &mut || touch(below_top));
    let whole = |advice: libc::c_int| {
        for &batch in &maps {
            // SAFETY: madvise(2) on a whole batch mapped above that no
            // reference points into; the advices used only drop or fault in
            // page contents.
            let _ = unsafe { libc::madvise(batch.cast(), BATCH * slot, advice) };
        }
    };
    step("MADV_DONTNEED batches", "slot", slots, &mut || whole(libc::MADV_DONTNEED));
    step("touch after MADV_DONTNEED", "page", slots, &mut || touch(below_top));
    step("MADV_FREE batches", "slot", slots, &mut || whole(libc::MADV_FREE));
    step("touch after MADV_FREE", "page", slots, &mut || touch(below_top));
    for &batch in &maps {
        // SAFETY: unmaps a batch mapped above; nothing uses it afterwards.
        unsafe { libc::munmap(batch.cast(), BATCH * slot) };
    }

    let pages = slots * SLOT_PAGES;
    let contiguous = map(pages * page)?;
    step("populate contiguous range", "page", pages, &mut || {
        // SAFETY: madvise(2) on the fresh mapping just made; it only faults
        // the pages in, zero-filled.
        let _ =
            unsafe { libc::madvise(contiguous.cast(), pages * page, libc::MADV_POPULATE_WRITE) };
    });
    // SAFETY: unmaps the mapping made above; nothing uses it afterwards.
    unsafe { libc::munmap(contiguous.cast(), pages * page) };
    Ok(())
}

/// A fresh private anonymous read-write mapping of `len` bytes, as a stack
/// batch is mapped (no reserve, no huge pages).
fn map(len: usize) -> io::Result<*mut u8> {
    let prot = libc::PROT_READ | libc::PROT_WRITE;
    let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK;
    // SAFETY: mmap(2) with a NULL hint never replaces a mapping.
    let raw = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, -1, 0) };
    if raw == libc::MAP_FAILED {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: madvise(2) on the mapping just made; it changes only how the
    // kernel backs it.
    unsafe { libc::madvise(raw, len, libc::MADV_NOHUGEPAGE) };
    Ok(raw.cast())
}

/// `advice` on the page at `offset` in each of the [`BATCH`] slots of
/// `stride` bytes from `batch`, with one `process_madvise`.
fn advise_slots(
    batch: *mut u8,
    offset: usize,
    stride: usize,
    advice: libc::c_int,
) -> io::Result<()> {
    let iov: Vec<libc::iovec> = (0..BATCH)
        .map(|i| libc::iovec {
            iov_base: batch.wrapping_add(i * stride + offset).cast(),
            iov_len: 4096,
        })
        .collect();
    // SAFETY: process_madvise(2) on this process reads BATCH iovecs from a
    // valid array, each one page of a batch mapped by `map` that no
    // reference points into; guard markers and populating change no byte
    // that anything reads.
    let done = unsafe {
        libc::syscall(libc::SYS_process_madvise, PIDFD_SELF, iov.as_ptr(), BATCH, advice, 0)
    };
    if done < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
