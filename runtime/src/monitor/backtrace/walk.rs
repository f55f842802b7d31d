//! The frame-pointer walk, run inside the signal handler.
//!
//! With frame pointers, every frame starts with a two-word record at the
//! address its frame pointer holds: the caller's frame pointer, then the
//! return address into the caller (x86_64 `push rbp; mov rbp, rsp`;
//! aarch64 `stp x29, x30, [sp, #-16]!; mov x29, sp`). The walk follows
//! that chain from the interrupted frame pointer, and reads a record only
//! where it is sure memory is there: inside the stack that holds the
//! interrupted stack pointer, at or above that pointer (so below the
//! stack's top, above anything the thread popped), aligned, and strictly
//! above the record before it (so a cycle ends the walk). Code built
//! without frame pointers uses the register for data: the checks end the
//! walk there, they never follow it out of the stack.

use std::ops::Range;

/// Why a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Stop {
    /// A null frame pointer or return address: the chain's end.
    End = 0,
    /// The depth limit.
    Depth = 1,
    /// A frame pointer outside the stack (or below the stack pointer).
    OutOfBounds = 2,
    /// A frame pointer not aligned to a word.
    Misaligned = 3,
    /// A frame pointer not above the one before: a cycle or a stale link.
    NotIncreasing = 4,
    /// The stack pointer is on no stack the walk knows.
    UnknownStack = 5,
    /// The target has no register extraction.
    Unsupported = 6,
}

impl Stop {
    /// The `Stop` stored as `code` (see `as u8`); `End` for unknown codes.
    pub(super) fn from_code(code: u8) -> Stop {
        [
            Stop::End,
            Stop::Depth,
            Stop::OutOfBounds,
            Stop::Misaligned,
            Stop::NotIncreasing,
            Stop::UnknownStack,
            Stop::Unsupported,
        ]
        .get(usize::from(code))
        .copied()
        .unwrap_or(Stop::End)
    }

    /// Says why the walk ended, for reports.
    pub(super) fn describe(self) -> &'static str {
        match self {
            Stop::End => "end of the frame chain",
            Stop::Depth => "depth limit",
            Stop::OutOfBounds => "frame pointer left the stack (code without frame pointers?)",
            Stop::Misaligned => "misaligned frame pointer (code without frame pointers?)",
            Stop::NotIncreasing => "frame pointer did not move up the stack",
            Stop::UnknownStack => "stack pointer on no known stack",
            Stop::Unsupported => "backtrace unsupported on this target",
        }
    }
}

/// One frame record: saved frame pointer, then return address.
const RECORD: usize = 2 * size_of::<usize>();

/// Walks the frame chain from frame pointer `fp`, the stack pointer `sp`
/// on `stack`, calling `push` with each return address (at most `depth`
/// of them, innermost first); returns why it stopped. The interrupted PC
/// is not pushed: the caller has it.
///
/// # Safety
///
/// Every byte of `stack` at or above `sp` must be readable for the whole
/// walk: it is the stack `sp` is on, and its owner is stopped (the walk
/// runs on it, in a signal handler, or the caller owns the memory).
pub(super) unsafe fn walk(
    fp: usize,
    sp: usize,
    stack: Range<usize>,
    depth: usize,
    mut push: impl FnMut(usize),
) -> Stop {
    if !stack.contains(&sp) {
        return Stop::UnknownStack;
    }
    let (mut fp, mut floor, mut pushed) = (fp, sp, 0);
    loop {
        if fp == 0 {
            return Stop::End;
        }
        if pushed == depth {
            return Stop::Depth;
        }
        if fp % size_of::<usize>() != 0 {
            return Stop::Misaligned;
        }
        if fp < floor || fp.checked_add(RECORD).is_none_or(|end| end > stack.end) {
            return if fp < floor && fp >= sp { Stop::NotIncreasing } else { Stop::OutOfBounds };
        }
        let record = fp as *const usize;
        // SAFETY: `record..record + RECORD` lies in `stack` at or above
        // `sp` (checked just above), readable by this function's contract,
        // and word-aligned (checked above).
        let (next, ret) = unsafe { (record.read_volatile(), record.add(1).read_volatile()) };
        if ret == 0 {
            return Stop::End;
        }
        push(ret);
        pushed += 1;
        // Strictly above this record: a link to itself or below is a cycle.
        floor = fp + RECORD;
        fp = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fabricated stack of `words` words; returns it and its range.
    fn stack(words: usize) -> (Vec<usize>, Range<usize>) {
        let mem = vec![0usize; words];
        let start = mem.as_ptr() as usize;
        (mem, start..start + words * size_of::<usize>())
    }

    /// Writes a frame record at word `at`: link `next`, return address `ret`.
    fn record(mem: &mut [usize], at: usize, next: usize, ret: usize) {
        mem[at] = next;
        mem[at + 1] = ret;
    }

    fn addr(range: &Range<usize>, word: usize) -> usize {
        range.start + word * size_of::<usize>()
    }

    fn run(mem: &[usize], range: &Range<usize>, fp: usize, sp: usize) -> (Vec<usize>, Stop) {
        let mut out = Vec::new();
        // SAFETY: `range` is `mem`, alive and unchanged for the walk.
        let stop = unsafe { walk(fp, sp, range.clone(), 8, |a| out.push(a)) };
        let _ = mem;
        (out, stop)
    }

    #[test]
    fn follows_a_chain_to_its_end() {
        let (mut mem, range) = stack(32);
        record(&mut mem, 4, addr(&range, 10), 0x1111);
        record(&mut mem, 10, addr(&range, 20), 0x2222);
        record(&mut mem, 20, 0, 0x3333);
        let (out, stop) = run(&mem, &range, addr(&range, 4), addr(&range, 2));
        assert_eq!((out, stop), (vec![0x1111, 0x2222, 0x3333], Stop::End));
    }

    #[test]
    fn a_cycle_stops_the_walk() {
        let (mut mem, range) = stack(32);
        record(&mut mem, 4, addr(&range, 10), 0x1111);
        record(&mut mem, 10, addr(&range, 4), 0x2222);
        let (out, stop) = run(&mem, &range, addr(&range, 4), addr(&range, 0));
        assert_eq!((out, stop), (vec![0x1111, 0x2222], Stop::NotIncreasing));
        // A record linking to itself.
        record(&mut mem, 10, addr(&range, 10), 0x2222);
        let (out, stop) = run(&mem, &range, addr(&range, 10), addr(&range, 0));
        assert_eq!((out, stop), (vec![0x2222], Stop::NotIncreasing));
    }

    #[test]
    fn out_of_bounds_links_stop_the_walk() {
        let (mut mem, range) = stack(32);
        // Past the top, and a record straddling the top.
        record(&mut mem, 4, range.end + 64, 0x1111);
        let (out, stop) = run(&mem, &range, addr(&range, 4), addr(&range, 0));
        assert_eq!((out, stop), (vec![0x1111], Stop::OutOfBounds));
        let (out, stop) = run(&mem, &range, addr(&range, 31), addr(&range, 0));
        assert_eq!((out, stop), (vec![], Stop::OutOfBounds));
        // Below the stack pointer, and a stack pointer off the stack.
        let (out, stop) = run(&mem, &range, addr(&range, 2), addr(&range, 8));
        assert_eq!((out, stop), (vec![], Stop::OutOfBounds));
        let (out, stop) = run(&mem, &range, addr(&range, 4), range.end);
        assert_eq!((out, stop), (vec![], Stop::UnknownStack));
        // A huge link must not overflow the bounds check.
        record(&mut mem, 4, usize::MAX - 7, 0x1111);
        let (out, stop) = run(&mem, &range, addr(&range, 4), addr(&range, 0));
        assert_eq!((out, stop), (vec![0x1111], Stop::OutOfBounds));
    }

    #[test]
    fn misaligned_links_stop_the_walk() {
        let (mut mem, range) = stack(32);
        record(&mut mem, 4, addr(&range, 10) + 3, 0x1111);
        let (out, stop) = run(&mem, &range, addr(&range, 4), addr(&range, 0));
        assert_eq!((out, stop), (vec![0x1111], Stop::Misaligned));
    }

    #[test]
    fn depth_is_bounded() {
        let (mut mem, range) = stack(64);
        for at in (0..60).step_by(2) {
            record(&mut mem, at, addr(&range, at + 2), 0x1000 + at);
        }
        let (out, stop) = run(&mem, &range, addr(&range, 0), addr(&range, 0));
        assert_eq!((out.len(), stop), (8, Stop::Depth));
    }

    #[test]
    fn codes_round_trip() {
        for code in 0..=6u8 {
            assert_eq!(Stop::from_code(code) as u8, code);
        }
    }
}
