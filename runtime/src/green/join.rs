//! Spawning: [`Builder`], [`spawn`] and the [`JoinHandle`] that waits for a
//! green thread's result.
//!
//! A spawn makes one allocation: the `Shared<T>` block below, which is at
//! once the thread's [`Control`] (park state, id, name), its `Waker` and
//! the slot its result lands in, recycled per OS thread (`block.rs`). The
//! closure itself lives on the green thread's (pooled) stack, and its
//! coroutine in a box the scheduler reuses from finished threads.
//!
//! Every green thread's waker has the same vtable, whatever `T`: its
//! functions see only the block's non-generic [`Header`] (control block,
//! reference count, and the function that frees the whole block). So a
//! green thread's waker is recognisable ([`is_green_waker`]), and the
//! `sync` primitives may wake it in place under their lock, as they do
//! task wakers (see `sync/spin.rs`): a green thread's wait takes no
//! reference count.
//!
//! # Unsafe invariants
//!
//! 1. A `Shared<T>` lives in memory from `block::alloc::<Shared<T>>`,
//!    written once by [`Shared::allocate`]; when its reference count `refs`
//!    drops to zero its header's `free` (which is `Shared::<T>::free` for
//!    its own `T`) drops it in place and gives the memory back through
//!    `block::free::<Shared<T>>` (recycled per OS thread). A count is owned
//!    by the [`JoinHandle`]'s [`SharedRef`] and by each waker; the
//!    scheduler's slot holds one of the wakers. (A hand-made count rather
//!    than an `Arc`: no weak count to release on the last drop, a spawn
//!    starts with both of its counts at once, and the memory is recycled.)
//! 2. A green thread's waker is built here only, by [`Shared::allocate`] and
//!    [`Shared::waker`]: its data pointer is the `Shared<T>` and owns one
//!    count; its vtable is [`VTABLE`]. `Shared<T>` and [`Header`] are
//!    `repr(C)` with the header first in the block and the `Control` first
//!    in the header, so the data pointer of such a waker points at a valid
//!    `Header` and `Control` ([`Thread`] relies on this).
//! 3. A [`Control`] lives only in the header of a block: it is made only
//!    as the argument of [`Shared::allocate`] (the spawn), which moves it
//!    there. So a `&Control` points into a live block (whoever lent the
//!    borrow holds a count for it), and [`waker_of`] may take one more
//!    count of that block.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::ptr;
use std::ptr::NonNull;
use std::sync::atomic::{self, AtomicUsize, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::block;
use super::scheduler::Scheduler;
use super::thread::{Control, Thread, WAKE};
use crate::completion::Completion;
use crate::task::check_ref_overflow;

/// The result of a green thread: its value, or the payload it panicked with.
pub type Result<T> = std::result::Result<T, Box<dyn Any + Send + 'static>>;

/// One allocation per green thread: control block, waker and result slot.
#[repr(C)]
pub(super) struct Shared<T> {
    header: Header,
    join: Completion<Result<T>>,
}

/// The part of a [`Shared<T>`] that does not depend on `T`: what its
/// wakers touch (invariant 2).
#[repr(C)]
pub(super) struct Header {
    control: Control,
    /// References: the handle's and the wakers' (invariant 1).
    refs: AtomicUsize,
    /// Frees the whole block: `Shared::<T>::free` for the block's `T`.
    free: unsafe fn(*const Header),
}

/// The one vtable of green threads' wakers (a `static`, so one address:
/// `Waker::will_wake` and [`is_green_waker`] compare it).
static VTABLE: RawWakerVTable = RawWakerVTable::new(
    Header::waker_clone,
    Header::waker_wake,
    Header::waker_wake_by_ref,
    Header::waker_drop,
);

/// Whether `waker` is a green thread's (made by this module), whose wake
/// only sets its park word and queues the thread ([`Control::signal`]).
/// The `sync` primitives wake such a waker in place under their lock and
/// keep it registered, as they do task wakers (see `sync/spin.rs`).
pub(crate) fn is_green_waker(waker: &Waker) -> bool {
    ptr::eq(waker.vtable(), &VTABLE)
}

/// A new waker of the green thread whose control block is `control`: one
/// more count of its block.
pub(super) fn waker_of(control: &Control) -> Waker {
    // SAFETY: `control` is the first field of a live block's header
    // (invariant 3), whose first field the block is (invariant 2): its
    // address is the block's, as a waker's data pointer is. `waker_clone`
    // takes a count for the new waker, which owns it (invariants 1, 2).
    unsafe { Waker::from_raw(Header::waker_clone(ptr::from_ref(control).cast())) }
}

impl Header {
    /// Releases one count, freeing the block on the last.
    ///
    /// # Safety
    ///
    /// The caller owns a count of the live block at `this`.
    unsafe fn release(this: *const Header) {
        // SAFETY: our count keeps it alive until the decrement.
        if unsafe { (*this).refs.fetch_sub(1, Ordering::Release) } != 1 {
            return;
        }
        // Pairs with the other owners' releases: their uses of the block
        // happen before the free, as in `Arc`.
        atomic::fence(Ordering::Acquire);
        // SAFETY: that was the last count; `free` is the block's own
        // (invariant 1).
        unsafe { ((*this).free)(this) }
    }

    unsafe fn waker_clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` is a live block's header (invariant 2).
        let previous = unsafe { (*data.cast::<Header>()).refs.fetch_add(1, Ordering::Relaxed) };
        check_ref_overflow(previous);
        RawWaker::new(data, &VTABLE)
    }

    unsafe fn waker_wake(data: *const ()) {
        // SAFETY: uses, then releases, the waker's count (invariant 2).
        unsafe {
            (*data.cast::<Header>()).control.signal(WAKE);
            Header::release(data.cast());
        }
    }

    unsafe fn waker_wake_by_ref(data: *const ()) {
        // SAFETY: borrows the waker's count without releasing it.
        unsafe { (*data.cast::<Header>()).control.signal(WAKE) };
    }

    unsafe fn waker_drop(data: *const ()) {
        // SAFETY: releases the waker's count (invariant 2).
        unsafe { Header::release(data.cast()) }
    }
}

/// The [`JoinHandle`]'s counted reference to a `Shared<T>`.
pub(super) struct SharedRef<T>(NonNull<Shared<T>>);

// SAFETY: through a `SharedRef` other threads reach only the control
// block's atomics and the completion slot, which is `Send + Sync` for
// `T: Send`; the count is atomic.
unsafe impl<T: Send> Send for SharedRef<T> {}
// SAFETY: as above.
unsafe impl<T: Send> Sync for SharedRef<T> {}

impl<T> std::ops::Deref for SharedRef<T> {
    type Target = Shared<T>;

    fn deref(&self) -> &Shared<T> {
        // SAFETY: our count keeps the allocation alive (invariant 1).
        unsafe { self.0.as_ref() }
    }
}

impl<T> Drop for SharedRef<T> {
    fn drop(&mut self) {
        // SAFETY: we own one count (invariant 1); the header is first in the
        // `repr(C)` block.
        unsafe { Header::release(self.0.as_ptr().cast()) }
    }
}

impl<T: Send + 'static> Shared<T> {
    /// Allocates the block with two counts: the handle's reference and the
    /// waker for the scheduler's slot. Inlined into the spawn, its one
    /// caller: left to the compiler, that choice flipped with unrelated
    /// changes, and out of line the spawn passes the control block through
    /// memory (13 more instructions per `spawn_join/green`, callgrind).
    #[inline]
    pub(super) fn allocate(control: Control) -> (SharedRef<T>, Waker) {
        let ptr = block::alloc::<Shared<T>>();
        let raw = ptr.as_ptr();
        let header = Header { control, refs: AtomicUsize::new(2), free: Self::free };
        // SAFETY: `raw` is fresh memory for one `Shared<T>` (`block::alloc`);
        // each field is written once, in place, so the block is initialised
        // before the first use below.
        unsafe {
            ptr::addr_of_mut!((*raw).header).write(header);
            ptr::addr_of_mut!((*raw).join).write(Completion::new());
        }
        // SAFETY: the second count is the waker's (invariants 1 and 2).
        let waker = unsafe { Waker::from_raw(RawWaker::new(ptr.as_ptr().cast(), &VTABLE)) };
        (SharedRef(ptr), waker)
    }
}

impl<T> Shared<T> {
    /// Frees the block whose header is at `this`: a `Header`'s `free`.
    ///
    /// # Safety
    ///
    /// `this` is the header of a `Shared<T>` (this `T`) made by
    /// [`Shared::allocate`], whose last count was just released.
    unsafe fn free(this: *const Header) {
        // The header is first in the `repr(C)` block: the pointers are the
        // same.
        let this = this.cast::<Shared<T>>().cast_mut();
        // SAFETY: that was the last count, so no one else reaches the block.
        // Its value, written by `allocate`, is dropped once, then its memory
        // goes back to where it came from (invariant 1).
        unsafe {
            ptr::drop_in_place(this);
            block::free(NonNull::new_unchecked(this));
        }
    }
}

impl<T: Send + 'static> Shared<T> {
    /// The thread's control block.
    pub(super) fn control(&self) -> &Control {
        &self.header.control
    }

    /// Stores the result and wakes the joiner.
    pub(super) fn complete(&self, result: Result<T>) {
        self.join.complete(result);
    }

    /// A new waker (one count) that wakes this thread's `block_on`.
    pub(super) fn waker(&self) -> Waker {
        // Relaxed, as in `Arc::clone`: the caller's count keeps it alive.
        check_ref_overflow(self.header.refs.fetch_add(1, Ordering::Relaxed));
        // SAFETY: the vtable functions treat `data` as owning the count
        // just taken (invariant 2), as RawWaker requires.
        unsafe { Waker::from_raw(RawWaker::new(ptr::from_ref(self).cast(), &VTABLE)) }
    }
}

/// Configures a green thread before spawning it, like `std::thread::Builder`.
#[derive(Debug, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
}

impl Builder {
    /// A builder with the runtime's defaults: no name, default stack size.
    pub fn new() -> Builder {
        Builder::default()
    }

    /// Names the thread; the name shows in panic and stack-overflow messages.
    pub fn name(mut self, name: String) -> Builder {
        self.name = Some(name);
        self
    }

    /// Sets the usable stack size in bytes (rounded up to whole pages).
    /// Pages are committed lazily, so a large size costs address space, not
    /// memory, until touched.
    pub fn stack_size(mut self, size: usize) -> Builder {
        self.stack_size = Some(size);
        self
    }

    /// Spawns `f` as a green thread on the current green runtime.
    ///
    /// The closure need not be `Send`: a green thread never leaves the OS
    /// thread that spawned it. The result must be `Send` because the
    /// [`JoinHandle`] may be joined from any thread.
    ///
    /// # Errors
    ///
    /// `ErrorKind::Other` when called outside a green runtime, or the error
    /// of `mmap` when a new stack cannot be mapped.
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        self.spawn_at(std::panic::Location::caller(), f)
    }

    /// [`Builder::spawn`] with `site` as the spawn site: for a spawn made
    /// on a caller's behalf (a shard's), which names that caller.
    pub(crate) fn spawn_at<F, T>(
        self,
        site: &'static std::panic::Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        Scheduler::with(|s| match s {
            Some(s) => s.spawn(self.name, self.stack_size, site, f),
            None => Err(io::Error::other(
                "green::spawn called outside a green runtime; start one with green::run",
            )),
        })
    }
}

/// Spawns `f` as a green thread on the current green runtime.
///
/// # Panics
///
/// Panics outside a green runtime, or if no stack can be mapped; use
/// [`Builder::spawn`] to get these as errors.
///
/// # Examples
///
/// ```
/// use greenloop_runtime::green;
///
/// let sum = green::run(|| {
///     let handles: Vec<_> = (0..10).map(|i| green::spawn(move || i * 2)).collect();
///     handles.into_iter().map(|h| h.join().unwrap()).sum::<i32>()
/// });
/// assert_eq!(sum, 90);
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> JoinHandle<T>
where
    F: FnOnce() -> T + 'static,
    T: Send + 'static,
{
    match Builder::new().spawn(f) {
        Ok(handle) => handle,
        Err(e) => panic!("failed to spawn green thread: {e}"),
    }
}

/// An owned permission to join a green thread (wait for its result).
///
/// Dropping it detaches the thread. It is also a `Future`, so a stackless
/// task can `.await` a green thread.
pub struct JoinHandle<T> {
    shared: SharedRef<T>,
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(super) fn new(shared: SharedRef<T>) -> JoinHandle<T> {
        JoinHandle { shared }
    }

    /// Waits for the thread to finish and returns its result, or `Err` with
    /// the panic payload. Inside a green thread this parks only the caller;
    /// on a plain OS thread it blocks that thread.
    pub fn join(self) -> Result<T> {
        crate::block_on(self)
    }

    /// The slot key of the thread in its scheduler.
    pub(super) fn key(&self) -> usize {
        self.shared.header.control.key()
    }

    /// The result, if the thread finished and nobody took it yet.
    pub(super) fn try_take(&self) -> Option<Result<T>> {
        self.shared.join.try_take()
    }

    /// The thread's handle.
    pub fn thread(&self) -> Thread {
        // SAFETY: `Shared::waker` makes a green thread's waker.
        unsafe { Thread::from_waker(self.shared.waker()) }
    }

    /// Cancels the thread: it unwinds at its next park (at once if it is
    /// parked now), running its destructors, and its join gives `Err` with
    /// a [`Cancelled`](super::Cancelled) payload. A thread that finished
    /// first keeps its result. Works from any OS thread. See
    /// [`shield`](super::shield) and the module docs of `green` for what
    /// happens to a running thread or one inside a foreign future.
    pub fn cancel(&self) {
        super::cancel::cancel(&self.shared.header.control);
    }

    /// Whether the thread has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.shared.join.is_done()
    }
}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let id = || self.shared.header.control.id().as_u64().get();
        let join = || crate::dump::Wait::Join { model: crate::dump::Model::Green, id: id() };
        crate::dump::noting(self.shared.join.poll_take(cx), join)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.shared.header.control.id())
            .field("name", &self.shared.header.control.name())
            .finish_non_exhaustive()
    }
}
