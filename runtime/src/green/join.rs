//! Spawning: [`Builder`], [`spawn`] and the [`JoinHandle`] that waits for a
//! green thread's result.
//!
//! A spawn makes one allocation: the `Shared<T>` block below, which is at
//! once the thread's [`Control`] (park state, id, name), its `Waker` and
//! the slot its result lands in. The closure itself lives on the green
//! thread's (pooled) stack.
//!
//! # Unsafe invariants
//!
//! A green thread's waker is built here only, by [`Shared::waker`]: its
//! data pointer is `Arc::into_raw` of the `Arc<Shared<T>>` and owns one
//! strong count; the vtable functions are `Shared<T>`'s. `Shared<T>` is
//! `repr(C)` with its `Control` first, so the data pointer of such a waker
//! also points at a valid `Control` ([`Thread`] relies on this).

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::io;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};

use super::scheduler::Scheduler;
use super::thread::{Control, Thread, WAKE};
use crate::completion::Completion;

/// The result of a green thread: its value, or the payload it panicked with.
pub type Result<T> = std::result::Result<T, Box<dyn Any + Send + 'static>>;

/// One allocation per green thread: control block, waker and result slot.
#[repr(C)]
pub(super) struct Shared<T> {
    control: Control,
    join: Completion<Result<T>>,
}

impl<T: Send + 'static> Shared<T> {
    pub(super) fn new(control: Control) -> Arc<Shared<T>> {
        Arc::new(Shared { control, join: Completion::new() })
    }

    /// Stores the result and wakes the joiner.
    pub(super) fn complete(&self, result: Result<T>) {
        self.join.complete(result);
    }
}

impl<T: Send + 'static> Shared<T> {
    const VTABLE: RawWakerVTable = RawWakerVTable::new(
        Self::waker_clone,
        Self::waker_wake,
        Self::waker_wake_by_ref,
        Self::waker_drop,
    );

    /// The one vtable of `Shared<T>` wakers. Every waker and clone must
    /// point at the same address, or `Waker::will_wake` (which compares
    /// addresses) fails and waiters re-clone wakers needlessly: each `&CONST`
    /// expression may be promoted to its own static, so all of them go
    /// through this one non-inlined function.
    #[inline(never)]
    fn vtable() -> &'static RawWakerVTable {
        &Self::VTABLE
    }

    /// A new waker (one strong count) that wakes this thread's `block_on`.
    pub(super) fn waker(self: &Arc<Self>) -> Waker {
        let data = Arc::into_raw(self.clone()).cast::<()>();
        // SAFETY: the vtable functions below treat `data` as the strong
        // count taken by `into_raw` (module invariant), as RawWaker requires.
        unsafe { Waker::from_raw(RawWaker::new(data, Self::vtable())) }
    }

    unsafe fn waker_clone(data: *const ()) -> RawWaker {
        // SAFETY: `data` is a live `Arc<Shared<T>>` pointer (module invariant).
        unsafe { Arc::increment_strong_count(data.cast::<Self>()) };
        RawWaker::new(data, Self::vtable())
    }

    unsafe fn waker_wake(data: *const ()) {
        // SAFETY: takes over the waker's strong count (module invariant).
        let this = unsafe { Arc::from_raw(data.cast::<Self>()) };
        this.control.signal(WAKE);
    }

    unsafe fn waker_wake_by_ref(data: *const ()) {
        // SAFETY: borrows the waker's strong count without releasing it.
        let this = ManuallyDrop::new(unsafe { Arc::from_raw(data.cast::<Self>()) });
        this.control.signal(WAKE);
    }

    unsafe fn waker_drop(data: *const ()) {
        // SAFETY: releases the waker's strong count (module invariant).
        drop(unsafe { Arc::from_raw(data.cast::<Self>()) });
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
    pub fn spawn<F, T>(self, f: F) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        Scheduler::with(|s| match s {
            Some(s) => s.spawn(self.name, self.stack_size, f),
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
    shared: Arc<Shared<T>>,
}

impl<T: Send + 'static> JoinHandle<T> {
    pub(super) fn new(shared: Arc<Shared<T>>) -> JoinHandle<T> {
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
        self.shared.control.key()
    }

    /// The result, if the thread finished and nobody took it yet.
    pub(super) fn try_take(&self) -> Option<Result<T>> {
        self.shared.join.try_take()
    }

    /// The thread's handle.
    pub fn thread(&self) -> Thread {
        Thread::from_waker(self.shared.waker())
    }

    /// Whether the thread has finished (its result is ready).
    pub fn is_finished(&self) -> bool {
        self.shared.join.is_done()
    }
}

impl<T: Send + 'static> Future for JoinHandle<T> {
    type Output = Result<T>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        self.shared.join.poll_take(cx)
    }
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("id", &self.shared.control.id())
            .field("name", &self.shared.control.name())
            .finish_non_exhaustive()
    }
}
