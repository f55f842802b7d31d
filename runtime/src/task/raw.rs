//! Task cells: one allocation per task holding a header, then the future
//! or its output, and the hand-written waker vtable that points into it.
//!
//! ```text
//!  NonNull<Header> ──▶ ┌──────────────────────────────┐  Cell<F, S> (repr(C))
//!  (RawTask, Waker     │ Header: state, vtable,       │
//!   data, JoinHandle,  │   scheduler, join waker, key,│
//!   Polling)           │   id, spawn site, wait record│
//!                      ├──────────────────────────────┤
//!                      │ Stage<F>: Running(F)         │
//!                      │         | Finished(output)   │
//!                      │         | Consumed           │
//!                      └──────────────────────────────┘
//! ```
//!
//! The header is first in a `repr(C)` struct, so a pointer to the cell is a
//! pointer to its header; the header's `&'static Vtable` holds the
//! functions that know the future's type. Wakers carry only the pointer.
//!
//! # Unsafe invariants
//!
//! 1. The cell lives while its reference count (see `state`) is non-zero;
//!    the last reference deallocates it through `vtable.dealloc`.
//! 2. The stage is touched only (a) by the executor thread while the task
//!    is `RUNNING`, or while it processes a `CLOSED` or shutting-down task
//!    it owns, and (b) by the holder of the output after `COMPLETE` (the
//!    `JoinHandle` while `HANDLE` is set; otherwise the party that observed
//!    `COMPLETE` without `HANDLE`). `COMPLETE` is published with `Release`
//!    and observed with `Acquire`, so the output write happens-before its read.
//! 3. The future is dropped only on the executor thread (completion, abort
//!    processing or shutdown), never from a waker or a handle.
//! 4. No user code unwinds through this module: a poll is wrapped in
//!    `catch_unwind`, and drops of futures, outputs and wakers run under
//!    an abort-on-panic guard.
//! 5. The join waker slot is written only by the `JoinHandle`, and only
//!    while `JOIN_WAKER` is clear; the executor only reads it (to wake it
//!    by reference), and only after it set `COMPLETE` while `JOIN_WAKER`
//!    was set. Concurrent accesses are therefore reads. The waker stays in
//!    the slot until the cell is freed.
//! 6. The future is pinned in the cell from its first poll: it is dropped
//!    where it lies, by assigning the next stage over it
//!    ([`end_future`]), never moved out first. An `async` block awaiting a
//!    borrow of its own captures (`rx.recv()`) holds a pointer into the
//!    cell, which its drop follows.
//! 7. A [`Polling`] holds a task's header only while [`RawTask::run`]
//!    polls that task's future, on the executor thread, whose queue
//!    reference keeps the cell alive meanwhile; `run` clears it before
//!    anything else happens to the task (completion, release). The wait
//!    record is written only through the `Polling` that holds its task
//!    ([`Polling::note`], a wait site inside the poll) and read only on
//!    the executor thread ([`RawTask::noted`], between polls or from
//!    inside one); `Polling` is `!Send`, so both are that thread, and
//!    neither keeps a reference to the record, so accesses never overlap.

use crate::loom::{AtomicUsize, Ordering};
use std::cell::{Cell as StdCell, UnsafeCell};
use std::future::Future;
use std::mem::ManuallyDrop;
use std::panic::{self, AssertUnwindSafe, Location};
use std::pin::Pin;
use std::ptr::NonNull;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::{fmt, mem};

use super::JoinError;
use super::state::*;
use crate::dump::Noted;

/// Where a woken task goes: the executor's run queue.
pub(crate) trait Schedule: Send + Sync + 'static {
    /// Queues `task` (which owns the queue's reference) to be run.
    ///
    /// It must only queue (and wake the executor's thread): never run the
    /// task or other user code, never use a `sync` primitive. A task's
    /// waker is woken under a `sync` primitive's lock (see
    /// [`is_task_waker`]), which relies on this.
    fn schedule(&self, task: RawTask);

    /// Takes back the reference a task held, when its cell is freed (on
    /// any thread). An executor may keep it for its next spawn instead of
    /// releasing it, which saves two atomic operations per task.
    fn release(self: Arc<Self>) {
        drop(self);
    }
}

/// The type-erased operations of a cell.
struct Vtable {
    /// Polls the future; `true` if the stage now holds the output.
    poll: unsafe fn(NonNull<Header>) -> bool,
    /// Drops the future (if still there), storing `Err(Cancelled)`.
    cancel: unsafe fn(NonNull<Header>),
    /// Moves the output into `*mut Option<Result<T, JoinError>>`.
    take_output: unsafe fn(NonNull<Header>, *mut ()),
    /// Drops whatever the stage holds, leaving `Consumed`.
    drop_stage: unsafe fn(NonNull<Header>),
    /// Frees the cell.
    dealloc: unsafe fn(NonNull<Header>),
}

/// The type-independent start of every cell.
pub(crate) struct Header {
    state: AtomicUsize,
    vtable: &'static Vtable,
    /// Given back through `Schedule::release` when the cell is freed.
    scheduler: ManuallyDrop<Arc<dyn Schedule>>,
    /// The `JoinHandle`'s waker (see `JOIN_WAKER` and invariant 5).
    join_waker: UnsafeCell<Option<Waker>>,
    /// The task's key in its executor's registry (executor thread only).
    key: AtomicUsize,
    id: u64,
    /// Where the task was spawned: for the monitor and dumps.
    site: &'static Location<'static>,
    /// What the task last waited on (invariant 7): for dumps.
    noted: UnsafeCell<Option<Noted>>,
}

/// The stage of a task: its future, then its output.
enum Stage<F: Future> {
    Running(F),
    Finished(Result<F::Output, JoinError>),
    Consumed,
}

#[repr(C)]
struct Cell<F: Future> {
    header: Header,
    stage: UnsafeCell<Stage<F>>,
}

/// An owned reference to a task (one count of its refcount).
pub(crate) struct RawTask {
    ptr: NonNull<Header>,
}

// SAFETY: what a `RawTask` lets another thread touch is the header: the
// state word and the key are atomics, the vtable, id and site are
// immutable, the scheduler is an `Arc<dyn Schedule>` (`Send + Sync`), and
// the join waker slot is written by the `JoinHandle` only while
// `JOIN_WAKER` is clear and read by the executor only after it set
// `COMPLETE` (invariant 5; a `Waker` is `Send + Sync`). The wait record is
// touched on the executor thread only (invariant 7). The stage, which may
// hold `!Send` data, is touched only on the executor thread or by the
// output's owner (invariant 2).
unsafe impl Send for RawTask {}
// SAFETY: as for `Send`: `&RawTask` reaches the same header fields under
// the same rules, and nothing more.
unsafe impl Sync for RawTask {}

/// Aborts the process if dropped: armed around code that must not unwind.
struct AbortOnPanic;

impl Drop for AbortOnPanic {
    fn drop(&mut self) {
        eprintln!(
            "greenloop: a task's future, output or waker panicked while being dropped; aborting"
        );
        std::process::abort();
    }
}

/// Runs `f`, aborting if it panics (invariant 4). Inlined with its
/// closure: on the completion path it is one store and a drop in place.
#[inline(always)]
fn no_unwind<R>(f: impl FnOnce() -> R) -> R {
    let guard = AbortOnPanic;
    let r = f();
    mem::forget(guard);
    r
}

impl RawTask {
    /// Allocates a task for `future`, marked scheduled and with a handle,
    /// holding one reference (the `JoinHandle`'s). The spawner adds the
    /// queue's and the registry's with [`RawTask::clone_ref`] before anyone
    /// else can see the task. (Executors use [`RawTask::spawned`].)
    #[cfg(test)]
    pub(crate) fn new<F: Future + 'static>(
        future: F,
        scheduler: Arc<dyn Schedule>,
        id: u64,
    ) -> RawTask {
        RawTask::allocate(future, scheduler, id, Location::caller(), 1)
    }

    /// A task for `future` spawned at `site`, marked scheduled and with a
    /// handle, with the three references of a spawn taken at once (no
    /// atomic operations): `(handle, queue, registry)`.
    pub(crate) fn spawned<F: Future + 'static>(
        future: F,
        scheduler: Arc<dyn Schedule>,
        id: u64,
        site: &'static Location<'static>,
    ) -> (RawTask, RawTask, RawTask) {
        let task = RawTask::allocate(future, scheduler, id, site, 3);
        let ptr = task.ptr;
        // SAFETY: `allocate` counted three references, one per value.
        (task, unsafe { RawTask::from_raw(ptr) }, unsafe { RawTask::from_raw(ptr) })
    }

    fn allocate<F: Future + 'static>(
        future: F,
        scheduler: Arc<dyn Schedule>,
        id: u64,
        site: &'static Location<'static>,
        refs: usize,
    ) -> RawTask {
        // Allocated first and written in place: built on the stack and then
        // moved, the cell would be copied with a `memcpy` call.
        let cell = Box::write(
            Box::new_uninit(),
            Cell {
                header: Header {
                    state: AtomicUsize::new(SCHEDULED | HANDLE | (refs * REF_ONE)),
                    vtable: &Vtable {
                        poll: poll::<F>,
                        cancel: cancel::<F>,
                        take_output: take_output::<F>,
                        drop_stage: drop_stage::<F>,
                        dealloc: dealloc::<F>,
                    },
                    scheduler: ManuallyDrop::new(scheduler),
                    join_waker: UnsafeCell::new(None),
                    key: AtomicUsize::new(usize::MAX),
                    id,
                    site,
                    noted: UnsafeCell::new(None),
                },
                stage: UnsafeCell::new(Stage::Running(future)),
            },
        );
        RawTask { ptr: NonNull::from(Box::leak(cell)).cast() }
    }

    /// Takes over one reference counted in `ptr`'s state.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a live cell, and the caller must own one of its
    /// references (which the returned value now owns).
    unsafe fn from_raw(ptr: NonNull<Header>) -> RawTask {
        RawTask { ptr }
    }

    /// A second reference (the caller later splits ownership).
    #[cfg(test)]
    pub(crate) fn clone_ref(&self) -> RawTask {
        check_ref_overflow(self.header().state.fetch_add(REF_ONE, Ordering::Relaxed));
        RawTask { ptr: self.ptr }
    }

    pub(crate) fn header(&self) -> &Header {
        // SAFETY: we own a reference, so the cell is alive (invariant 1).
        unsafe { self.ptr.as_ref() }
    }

    /// The task's id.
    pub(crate) fn id(&self) -> u64 {
        self.header().id
    }

    /// Where the task was spawned.
    pub(crate) fn site(&self) -> &'static Location<'static> {
        self.header().site
    }

    /// What the task last waited on, as a wait site noted it.
    ///
    /// # Safety
    ///
    /// Only on the thread of the executor that owns the task (invariant 7).
    pub(crate) unsafe fn noted(&self) -> Option<Noted> {
        // SAFETY: on the executor thread, the only one that touches the
        // record, and no reference to it is live (invariant 7).
        unsafe { *self.header().noted.get() }
    }

    /// The registry key (executor thread only).
    pub(crate) fn key(&self) -> usize {
        self.header().key.load(Ordering::Relaxed)
    }

    /// Sets the registry key (executor thread only).
    pub(crate) fn set_key(&self, key: usize) {
        self.header().key.store(key, Ordering::Relaxed);
    }

    pub(crate) fn state(&self) -> State {
        State(self.header().state.load(Ordering::Acquire))
    }

    /// Runs one scheduled turn of the task on the executor thread; the
    /// queue reference (`self`) is consumed. Returns `true` if the task
    /// completed (or was cancelled) in this turn; then `unregister` was
    /// called and gave the registry's reference, released with the
    /// completion (see [`RawTask::finish`]). `polling` holds the task for
    /// the span of its future's poll.
    ///
    /// Must only be called by the executor that owns the task, on its thread.
    pub(crate) fn run(
        self,
        polling: &Polling,
        unregister: impl FnOnce(&RawTask) -> Option<RawTask>,
    ) -> bool {
        let header = self.header();
        // SCHEDULED -> RUNNING (set already if it was re-queued after a
        // poll, see `RUNNING`), unless the task was aborted.
        let mut state = header.state.load(Ordering::Acquire);
        loop {
            debug_assert!(
                state & SCHEDULED != 0,
                "running an unscheduled task: {:?}",
                State(state)
            );
            if state & COMPLETE != 0 {
                return false;
            }
            if state & CLOSED != 0 {
                let registered = unregister(&self);
                self.finish(true, registered);
                return true;
            }
            let next = (state & !SCHEDULED) | RUNNING;
            match header.state.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => break,
                Err(actual) => state = actual,
            }
        }
        polling.0.set(Some(self.ptr));
        // SAFETY: RUNNING is set and we are the executor thread (invariant 2).
        let finished = unsafe { (header.vtable.poll)(self.ptr) };
        // Before the task can complete or be released (invariant 7).
        polling.0.set(None);
        if finished {
            let registered = unregister(&self);
            self.finish(false, registered);
            return true;
        }
        // Woken meanwhile: back to the queue with the reference it holds,
        // and no atomic operation. RUNNING stays set until the next `run`
        // clears it with SCHEDULED (see `RUNNING`); only this thread clears
        // SCHEDULED, so once seen it stays, and a CLOSED set after this load
        // is found by that `run`. Else RUNNING -> idle, releasing the queue
        // reference in the same operation.
        let mut state = header.state.load(Ordering::Acquire);
        loop {
            if state & CLOSED != 0 {
                let registered = unregister(&self);
                self.finish(true, registered);
                return true;
            }
            if state & SCHEDULED != 0 {
                let scheduler: *const dyn Schedule = &**header.scheduler;
                // SAFETY: the scheduler lives in the header, which the
                // task `self` keeps alive while `schedule` runs: moved
                // into a queue, it still holds its reference.
                unsafe { (*scheduler).schedule(self) };
                return false;
            }
            let next = (state & !RUNNING) - REF_ONE;
            match header.state.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    // The exchange released our reference.
                    let dealloc = header.vtable.dealloc;
                    let ptr = self.into_raw();
                    if next & REF_MASK == 0 {
                        // SAFETY: that was the last reference (invariant
                        // 1); we are the executor thread, where the future
                        // may be dropped (invariant 3).
                        unsafe { dealloc(ptr) };
                    }
                    return false;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Gives up ownership of the reference without releasing it (the
    /// caller released it, or hands it on as a raw pointer).
    fn into_raw(self) -> NonNull<Header> {
        let ptr = self.ptr;
        mem::forget(self);
        ptr
    }

    /// Completes the task on the executor thread: cancels the future if
    /// `cancel`, publishes COMPLETE, hands the output to the handle or drops
    /// it, and wakes the joiner. Consumes `self` and `registered` (the
    /// registry's reference, if still held), releasing them in as few
    /// atomic operations as it can: both in the exchange that publishes
    /// COMPLETE when nothing is left to do (a handle will take the output,
    /// nobody to wake); otherwise `registered` there and `self` at the end,
    /// as the stage drop or the wake needs the cell alive.
    pub(crate) fn finish(self, cancel: bool, registered: Option<RawTask>) {
        let header = self.header();
        if cancel {
            // SAFETY: executor thread, task not polled concurrently (invariant 2).
            unsafe { (header.vtable.cancel)(self.ptr) };
        }
        let extra = registered.map_or(0, |r| {
            r.into_raw();
            REF_ONE
        });
        let previous = header
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                let done = ((s & !(SCHEDULED | RUNNING)) | COMPLETE) - extra;
                let keep = s & HANDLE == 0 || s & JOIN_WAKER != 0;
                Some(if keep { done } else { done - REF_ONE })
            })
            .unwrap_or_else(|s| s);
        if previous & HANDLE == 0 {
            // SAFETY: no handle will read the output; we saw COMPLETE first.
            unsafe { (header.vtable.drop_stage)(self.ptr) };
        } else if previous & JOIN_WAKER != 0 {
            // SAFETY: JOIN_WAKER was set when COMPLETE was: the handle no
            // longer writes the slot, and a shared read is all we do
            // (invariant 5).
            if let Some(waker) = unsafe { (*header.join_waker.get()).as_ref() } {
                no_unwind(|| waker.wake_by_ref());
            }
        } else {
            // The exchange released `self` too; the handle's reference
            // (HANDLE is set) keeps the cell alive.
            debug_assert!(previous & REF_MASK > extra + REF_ONE);
            self.into_raw();
        }
    }

    /// Marks the task closed at executor shutdown and completes it
    /// (`self` is the registry's reference, already unregistered).
    pub(crate) fn shutdown(self) {
        let state = self.header().state.fetch_or(CLOSED, Ordering::AcqRel);
        if state & COMPLETE == 0 {
            self.finish(true, None);
        }
    }
}

impl Drop for RawTask {
    fn drop(&mut self) {
        // SAFETY: we own one reference.
        unsafe { drop_ref(self.ptr) }
    }
}

impl fmt::Debug for RawTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawTask").field("id", &self.id()).field("state", &self.state()).finish()
    }
}

// ----- JoinHandle side -------------------------------------------------------

impl RawTask {
    /// Handle side of `poll`: the output if complete, else registers `waker`.
    ///
    /// # Safety
    ///
    /// `self` must be the task's `JoinHandle` reference (HANDLE set) and
    /// `T` its future's output type.
    #[inline] // into `JoinHandle::poll`, see there
    pub(crate) unsafe fn poll_join<T>(&self, waker: &Waker) -> Poll<Result<T, JoinError>> {
        let header = self.header();
        let mut state = header.state.load(Ordering::Acquire);
        if state & (COMPLETE | JOIN_WAKER) == JOIN_WAKER {
            // SAFETY: only the handle writes the slot, and only while
            // JOIN_WAKER is clear; the executor at most reads it (invariant 5).
            let same =
                unsafe { (*header.join_waker.get()).as_ref() }.is_some_and(|w| w.will_wake(waker));
            if same {
                return Poll::Pending;
            }
            // Take the slot back to replace the waker (fails if COMPLETE came).
            match header.state.compare_exchange(
                state,
                state & !JOIN_WAKER,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => state &= !JOIN_WAKER,
                Err(actual) => state = actual,
            }
        }
        if state & COMPLETE == 0 {
            // SAFETY: JOIN_WAKER is clear and we are the handle: nobody else
            // touches the slot now (invariant 5).
            unsafe { *header.join_waker.get() = Some(waker.clone()) };
            // Publish the waker; only COMPLETE (or CLOSED/refcount changes)
            // can intervene, and COMPLETE means the output is ready.
            while state & COMPLETE == 0 {
                match header.state.compare_exchange(
                    state,
                    state | JOIN_WAKER,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                ) {
                    Ok(_) => return Poll::Pending,
                    Err(actual) => state = actual,
                }
            }
        }
        let mut out: Option<Result<T, JoinError>> = None;
        // SAFETY: COMPLETE observed with Acquire and HANDLE is ours, so we
        // own the output (invariant 2); `T` matches per the caller.
        unsafe { (header.vtable.take_output)(self.ptr, &mut out as *mut _ as *mut ()) };
        Poll::Ready(out.expect("task JoinHandle polled after it returned its output"))
    }

    /// Whether the task completed (or was cancelled and dropped).
    pub(crate) fn is_complete(&self) -> bool {
        self.header().state.load(Ordering::Acquire) & COMPLETE != 0
    }

    /// Requests cancellation; the executor drops the future on its thread.
    pub(crate) fn abort(&self) {
        let header = self.header();
        let mut state = header.state.load(Ordering::Acquire);
        loop {
            if state & (COMPLETE | CLOSED) != 0 {
                return;
            }
            let idle = state & (SCHEDULED | RUNNING) == 0;
            let next = if idle { (state | CLOSED | SCHEDULED) + REF_ONE } else { state | CLOSED };
            match header.state.compare_exchange_weak(
                state,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if idle {
                        // SAFETY: we added the queue's reference above.
                        let task = unsafe { RawTask::from_raw(self.ptr) };
                        header.scheduler.schedule(task);
                    }
                    return;
                }
                Err(actual) => state = actual,
            }
        }
    }

    /// Handle drop: gives up the output (dropping it here if already there)
    /// and the handle's reference, with one atomic operation: clearing
    /// HANDLE and releasing the reference go together.
    pub(crate) fn drop_handle(self) {
        let header = self.header();
        let mut state = header.state.load(Ordering::Acquire);
        let previous = loop {
            if state & COMPLETE != 0 {
                // SAFETY: COMPLETE seen (Acquire) while HANDLE is ours: we
                // own the output (invariant 2); `Consumed` if already taken.
                unsafe { (header.vtable.drop_stage)(self.ptr) };
                // HANDLE is set, so subtracting it clears it.
                break header.state.fetch_sub(HANDLE | REF_ONE, Ordering::AcqRel);
            }
            // Not complete: the executor drops the output itself when it
            // completes the task and finds HANDLE clear.
            match header.state.compare_exchange_weak(
                state,
                (state & !HANDLE) - REF_ONE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(previous) => break previous,
                Err(actual) => state = actual,
            }
        };
        let dealloc = header.vtable.dealloc;
        let ptr = self.into_raw();
        if previous & REF_MASK == REF_ONE {
            // SAFETY: that was the last reference (invariant 1). Unless the
            // task completed (then the future is gone), the executor's
            // registry still holds one, so this is never the last reference
            // of a live future (invariant 3).
            unsafe { dealloc(ptr) };
        }
    }
}

// ----- vtable functions ------------------------------------------------------

/// # Safety
///
/// `ptr` is a live `Cell<F>`; the caller is the executor thread with RUNNING set.
unsafe fn poll<F: Future>(ptr: NonNull<Header>) -> bool {
    // SAFETY: per the contract, the cell is a `Cell<F>` and we have
    // exclusive access to its stage (invariant 2).
    let cell = unsafe { ptr.cast::<Cell<F>>().as_ref() };
    // SAFETY: as above, exclusive access.
    let stage = unsafe { &mut *cell.stage.get() };
    let Stage::Running(future) = stage else { return true };
    // SAFETY: the future never moves: it stays in the heap cell until
    // dropped in place (invariant 6).
    let future = unsafe { Pin::new_unchecked(future) };
    // The queue reference held by `run` keeps the cell alive during the poll.
    let waker = waker_ref(ptr);
    let mut cx = Context::from_waker(&waker);
    let result = match panic::catch_unwind(AssertUnwindSafe(|| future.poll(&mut cx))) {
        Ok(Poll::Pending) => return false,
        Ok(Poll::Ready(output)) => Ok(output),
        Err(payload) => Err(JoinError::Panicked(payload)),
    };
    end_future(stage, result);
    true
}

/// # Safety
///
/// `ptr` is a live `Cell<F>`; executor thread, not polled concurrently.
unsafe fn cancel<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: per the contract, exclusive access to the stage.
    let stage = unsafe { &mut *ptr.cast::<Cell<F>>().as_ref().stage.get() };
    if let Stage::Running(_) = stage {
        end_future(stage, Err(JoinError::Cancelled));
    }
}

/// Drops the future of a `Running` stage in place and stores `result`
/// (invariant 6): the assignment drops the old value where it lies. During
/// that drop the stage is unusable; nothing reads it, as COMPLETE is not
/// set yet and only this executor thread touches the stage (invariant 2).
fn end_future<F: Future>(stage: &mut Stage<F>, result: Result<F::Output, JoinError>) {
    debug_assert!(matches!(stage, Stage::Running(_)));
    no_unwind(|| *stage = Stage::Finished(result));
}

/// # Safety
///
/// `ptr` is a live `Cell<F>` whose output the caller owns; `out` points to
/// an `Option<Result<F::Output, JoinError>>`.
unsafe fn take_output<F: Future>(ptr: NonNull<Header>, out: *mut ()) {
    // SAFETY: the caller owns the output (invariant 2).
    let stage = unsafe { &mut *ptr.cast::<Cell<F>>().as_ref().stage.get() };
    if let Stage::Finished(result) = mem::replace(stage, Stage::Consumed) {
        // SAFETY: `out` has the type the caller promised.
        unsafe { *out.cast::<Option<Result<F::Output, JoinError>>>() = Some(result) };
    }
}

/// # Safety
///
/// `ptr` is a live `Cell<F>` whose stage the caller owns.
unsafe fn drop_stage<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: the caller owns the stage.
    let stage = unsafe { &mut *ptr.cast::<Cell<F>>().as_ref().stage.get() };
    let old = mem::replace(stage, Stage::Consumed);
    no_unwind(|| drop(old));
}

/// # Safety
///
/// `ptr` is a `Cell<F>` allocated by `RawTask::new` whose last reference
/// was just released.
unsafe fn dealloc<F: Future>(ptr: NonNull<Header>) {
    // SAFETY: allocated as a `Box<Cell<F>>`; no reference remains.
    let mut cell = unsafe { Box::from_raw(ptr.cast::<Cell<F>>().as_ptr()) };
    // SAFETY: taken once, from a cell that is freed right below.
    let scheduler = unsafe { ManuallyDrop::take(&mut cell.header.scheduler) };
    no_unwind(|| {
        drop(cell);
        scheduler.release();
    });
}

/// Releases one reference, deallocating on the last.
///
/// # Safety
///
/// The caller owns one reference to the live cell at `ptr`.
unsafe fn drop_ref(ptr: NonNull<Header>) {
    // SAFETY: the caller's reference keeps the header alive until the
    // decrement below.
    let header = unsafe { ptr.as_ref() };
    let previous = header.state.fetch_sub(REF_ONE, Ordering::AcqRel);
    debug_assert!(previous & REF_MASK != 0, "task refcount underflow: {:?}", State(previous));
    if previous & REF_MASK == REF_ONE {
        let dealloc = header.vtable.dealloc;
        // SAFETY: that was the last reference.
        unsafe { dealloc(ptr) };
    }
}

// ----- the task being polled -------------------------------------------------

/// The task an executor is polling, if any (invariant 7): what the panic
/// hook names, and where a wait site's note goes. `!Send`: it lives with
/// its executor, on that executor's thread.
#[derive(Default)]
pub(crate) struct Polling(StdCell<Option<NonNull<Header>>>);

impl Polling {
    /// The id of the task being polled.
    pub(crate) fn id(&self) -> Option<u64> {
        // SAFETY: a held header is alive during its poll (invariant 7).
        self.0.get().map(|ptr| unsafe { ptr.as_ref() }.id)
    }

    /// Whether `task` is the one being polled.
    pub(crate) fn is(&self, task: &RawTask) -> bool {
        self.0.get() == Some(task.ptr)
    }

    /// Records the wait that `noted` makes as the polled task's; `false`,
    /// without calling `noted`, if no task is being polled.
    #[inline]
    pub(crate) fn note(&self, noted: impl FnOnce() -> Noted) -> bool {
        let Some(ptr) = self.0.get() else { return false };
        let noted = noted();
        // SAFETY: the header is alive during its poll, and this thread, the
        // executor's, is the only one that touches the record, through no
        // live reference (invariant 7).
        unsafe { *ptr.as_ref().noted.get() = Some(noted) };
        true
    }
}

impl fmt::Debug for Polling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Polling").field(&self.id()).finish()
    }
}

// ----- the waker vtable --------------------------------------------------------

/// Waker functions: the data pointer is the task's `NonNull<Header>`, and
/// every `Waker` (but the executor's borrowed one) owns one reference.
static WAKER_VTABLE: RawWakerVTable =
    RawWakerVTable::new(waker_clone, waker_wake, waker_wake_by_ref, waker_drop);

unsafe fn waker_clone(data: *const ()) -> RawWaker {
    // SAFETY: `data` is a live header (the waker being cloned keeps it so).
    let header = unsafe { &*(data as *const Header) };
    // Relaxed, as in `Arc::clone`: the cloned waker's reference keeps the
    // cell alive.
    check_ref_overflow(header.state.fetch_add(REF_ONE, Ordering::Relaxed));
    RawWaker::new(data, &WAKER_VTABLE)
}

unsafe fn waker_wake(data: *const ()) {
    // SAFETY: as in `waker_clone`; then the waker's reference is released.
    unsafe {
        waker_wake_by_ref(data);
        waker_drop(data);
    }
}

unsafe fn waker_wake_by_ref(data: *const ()) {
    // SAFETY: a waker's data is a non-null, live header.
    let ptr = unsafe { NonNull::new_unchecked(data as *mut Header) };
    // SAFETY: live while the waker is.
    let header = unsafe { ptr.as_ref() };
    let mut state = header.state.load(Ordering::Acquire);
    loop {
        if state & (COMPLETE | CLOSED) != 0 {
            return; // finished or being cancelled: final states
        }
        if state & SCHEDULED != 0 {
            // Already queued, but the load may be stale: the executor may
            // have taken the task (SCHEDULED -> RUNNING) and polled it
            // before the caller's write that this wake announces. An
            // exchange reads the latest state, and either its release
            // reaches the executor's next acquire of the state (so the
            // coming poll sees the write) or it finds SCHEDULED clear and
            // sets it. Found by the loom model `loom_wake_racing_a_poll`.
            match header.state.compare_exchange_weak(
                state,
                state,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(actual) => {
                    state = actual;
                    continue;
                }
            }
        }
        let running = state & RUNNING != 0;
        // While running, the executor re-queues with the reference it holds.
        let next = if running { state | SCHEDULED } else { (state | SCHEDULED) + REF_ONE };
        match header.state.compare_exchange_weak(state, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                if !running {
                    // SAFETY: we added the queue's reference above.
                    let task = unsafe { RawTask::from_raw(ptr) };
                    header.scheduler.schedule(task);
                }
                return;
            }
            Err(actual) => state = actual,
        }
    }
}

unsafe fn waker_drop(data: *const ()) {
    // SAFETY: a waker owns one reference to the live header at `data`.
    unsafe { drop_ref(NonNull::new_unchecked(data as *mut Header)) }
}

/// Whether `waker` is a task's waker (made by this module), whose wake only
/// sets the state word and queues the task ([`Schedule::schedule`]). The
/// `sync` primitives wake such a waker in place under their lock, keeping
/// it registered; any other waker is foreign code, taken out and woken
/// after the lock (see `sync/spin.rs`).
pub(crate) fn is_task_waker(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &WAKER_VTABLE)
}

/// A waker for the task at `ptr` that owns no reference: it must not
/// outlive a reference the caller holds, and is never dropped.
fn waker_ref(ptr: NonNull<Header>) -> ManuallyDrop<Waker> {
    let raw = RawWaker::new(ptr.as_ptr() as *const (), &WAKER_VTABLE);
    // SAFETY: the vtable functions uphold RawWaker's contract for task
    // headers; ManuallyDrop keeps us from releasing a reference not taken.
    ManuallyDrop::new(unsafe { Waker::from_raw(raw) })
}
