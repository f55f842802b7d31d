//! The green scheduler: a FIFO run queue (`run_queue.rs`) of green threads
//! on one OS thread. It is the green half of the thread's [`Context`](crate::context), whose
//! loop pops threads from it and [`resume`](Scheduler::resume)s them:
//!
//! ```text
//!  thread = scheduler.pop()              (the context's loop)
//!  resume(thread): coroutine runs until it parks, yields or returns
//! ```
//!
//! The queue holds [`Runnable`]s, pointers to the threads' coroutine boxes,
//! so that a resume reaches the coroutine, the overflow record and the
//! waker in one load from the queue (no slab lookup by key). A yield
//! queues the running box as it is, a wake the box its thread's `Control`
//! names.
//!
//! A green thread leaves the queue by suspending in [`park`](super::park) and
//! comes back when a wake ends its wait ([`Scheduler::queue_woken`]): at
//! once on this thread, or, from another thread, when this thread takes the
//! tokens posted for it from its reactor's mailbox (`thread.rs`,
//! `reactor/remote.rs`).
//!
//! # Unsafe invariants
//!
//! * A `&Scheduler` is reached through the thread's context (see
//!   `context.rs`), which outlives every green thread of the scheduler: it
//!   tears them all down before it ends, also when unwinding.
//! * A coroutine box's `yielder` points at the `Yielder` that corosensei
//!   passed to the green thread's root closure. It lives on that thread's
//!   stack until the closure returns, and it is only dereferenced by the
//!   thread itself while it runs, so it is valid whenever it is used.
//!   `running` points at the box of the thread that `resume` runs, and is
//!   null at every other time (`Running` clears it), also while `teardown`
//!   runs a thread's destructors: the box is being dropped then. While
//!   `running` is non-null, that box's `yielder` is set: a thread's first
//!   act is to store it (`started`), before any code of its own can
//!   suspend.
//! * Coroutines may borrow data that is not `'static` only for the main
//!   closure of `run`, which `run` outlives (see `spawn_unchecked`).
//! * A slot outlives its coroutine's closure: the closure is consumed when
//!   the coroutine returns, or dropped with the coroutine in `teardown`, and
//!   the slot is removed only after either. The slot's waker owns a count
//!   of the thread's `Shared`, so the closure's `CompleteOnDrop` may point
//!   at it without one.
//! * A coroutine is resumed through a raw pointer into its `CoroutineBox`,
//!   with no borrow of the slab held (the thread may spawn, growing it).
//!   The box is heap memory that does not move with the slab, and it is
//!   freed or taken out of its slot only after its resume returned: by
//!   `resume` on `Return`, or by `teardown`, which runs outside any resume.
//!   Resumes never nest (`drive` runs on the OS thread's own stack), and
//!   nothing else dereferences the pointer, so the access is exclusive.
//! * A box's `waker` holds the raw parts of its slot's waker (no count of
//!   its own), and `unwinding` those of the thread whose destructors
//!   `teardown` runs (`None` at every other time). The slot, and so the
//!   count its waker owns, outlives the box's use and every span in which
//!   the thread is current, so the parts are a valid waker then, and its
//!   data points at the thread's `Control` (which names its key).
//! * Every [`Runnable`] in the run queue points at the box of a live thread
//!   that is not running, and no two entries name one thread, so the box
//!   is alive when the entry is popped: a box is freed or reused only
//!   after its thread finished (`finish`) or in `teardown`, and a thread is
//!   queued (1) once by its spawn, before it starts; (2) by its own yield,
//!   while it runs, just before it suspends (a yield sets no wait bit, so
//!   no wake queues it meanwhile); (3) by a wake that ends a suspension
//!   (`thread.rs`: once per suspension, and a thread that finished is not
//!   suspended), with the box its `Control` names (`queue_woken`, always on
//!   this OS thread: a wake from another OS thread posts a token, which
//!   this thread takes from its mailbox). None of
//!   these leaves an entry behind once the thread ran to its end: it is
//!   popped before it runs. `teardown` empties the queue first, and from
//!   then on nothing is queued (spawns fail, a yield in a destructor
//!   returns at once, `queue_woken` ignores wakes) and nothing pops.

use std::cell::{Cell, RefCell};
use std::mem::{self, ManuallyDrop, MaybeUninit};
use std::panic::{self, AssertUnwindSafe, Location};
use std::ptr::{self, NonNull};
use std::task::{RawWaker, RawWakerVTable, Waker};
use std::{fmt, io};

use corosensei::{Coroutine, CoroutineResult, Yielder};

use super::join::{JoinHandle, Shared};
use super::run_queue::RunQueue;
use super::stack::{GreenStack, StackPool};
use super::thread::{Control, Thread, ThreadId, WAKE, control_of};
use super::{Config, cancel, overflow};
use crate::context::Context;
use crate::dump::{self, Entry, Model, Noted, State};
use crate::id::SchedulerId;
use crate::reactor::{MailboxRef, Reactor};
use crate::slab::Slab;

/// No green thread is running.
pub(crate) const NONE: usize = usize::MAX;

/// How the running green thread leaves the CPU (see `Scheduler::switch`).
#[derive(Clone, Copy)]
pub(crate) enum Switch {
    /// `yield_now`: requeued behind the runnable threads.
    Yield,
    /// `block_on`'s wait for its waker (`wait_wake_current`).
    WaitWake,
}

/// A green thread's coroutine: it yields its scheduler's address (see
/// [`Resumed::Suspended`]).
type GreenCoroutine = Coroutine<(), *const Scheduler, (), GreenStack>;

/// The yielder a green thread suspends with.
type GreenYielder = Yielder<(), *const Scheduler>;

/// A waker's data pointer and vtable, without its reference count.
type WakerParts = (*const (), &'static RawWakerVTable);

fn parts_of(waker: &Waker) -> WakerParts {
    (waker.data(), waker.vtable())
}

/// A green thread as the scheduler holds it.
struct Slot {
    /// The coroutine, boxed so it stays in place while it runs (the slab
    /// may grow meanwhile), with the thread's overflow record; `None` once
    /// `teardown` took it.
    coroutine: Option<CoroutineBox>,
    /// The thread's waker; also its `Thread` handle and `Control`.
    waker: Waker,
    /// Where the thread was spawned (`#[track_caller]`).
    site: &'static Location<'static>,
}

/// One OS thread's green scheduler.
pub(crate) struct Scheduler {
    id: SchedulerId,
    /// The reactor's mailbox, which the threads' wakes from other OS
    /// threads go through.
    mailbox: MailboxRef,
    run_queue: RunQueue<Runnable>,
    threads: RefCell<Slab<Slot>>,
    stacks: RefCell<StackPool>,
    /// Allocations of finished threads' coroutine boxes, for reuse.
    #[allow(clippy::vec_box, reason = "the boxes themselves are reused, unmoved")]
    boxes: RefCell<Vec<Box<MaybeUninit<Boxed>>>>,
    /// The running thread's coroutine box, null when none runs (module
    /// invariant 2): suspending, noting a wait and finding the running
    /// thread's waker need no slab lookup.
    running: Cell<*const Boxed>,
    /// The waker (raw parts) of the thread whose destructors `teardown`
    /// runs, which has no box then (module invariant 6); `None` otherwise.
    unwinding: Cell<Option<WakerParts>>,
    shutting_down: Cell<bool>,
    default_stack: usize,
    /// The overflow handler's record of the running thread.
    tracker: overflow::Tracker,
}

impl Scheduler {
    /// Runs `f` with the green scheduler of this OS thread's context, if a
    /// context is running. Always inlined, as `Context::with` is: see there.
    #[inline(always)]
    pub(crate) fn with<R>(f: impl FnOnce(Option<&Scheduler>) -> R) -> R {
        Context::with(|c| f(c.map(Context::green)))
    }

    /// An empty scheduler for a context on this thread, whose remote wakes
    /// go through `reactor`.
    pub(crate) fn new(config: &Config, reactor: &Reactor) -> Scheduler {
        overflow::install();
        overflow::ensure_altstack();
        let id = SchedulerId::next();
        Scheduler {
            id,
            mailbox: reactor.remote().mailbox(),
            run_queue: RunQueue::new(),
            threads: RefCell::new(Slab::new()),
            stacks: RefCell::new(StackPool::new(config.max_cached_stacks)),
            boxes: RefCell::new(Vec::new()),
            running: Cell::new(ptr::null()),
            unwinding: Cell::new(None),
            shutting_down: Cell::new(false),
            default_stack: config.stack_size,
            tracker: overflow::Tracker::new(),
        }
    }

    /// The next runnable green thread.
    #[inline]
    pub(crate) fn pop(&self) -> Option<Runnable> {
        self.run_queue.pop()
    }

    /// Whether no green thread is runnable.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.run_queue.is_empty()
    }

    /// Runs `thread` (popped from the queue) until it suspends or finishes
    /// (then `main_key` tells whether it was the main thread: the check
    /// sits on the finishing path only, not on every switch). Always
    /// inlined: the loop's green batch is compiled once per monitor mode,
    /// and each copy keeps the switch path in one function.
    #[inline(always)]
    pub(crate) fn resume(&self, thread: Runnable, main_key: usize) -> Resumed<'_> {
        let boxed = thread.0.as_ptr().cast_const();
        // SAFETY: a popped entry's box is alive (module invariant 7) and
        // stays so until `finish` below; its key and record are written
        // once, by `CoroutineBox::new`, and only read since.
        let (key, record) = unsafe { ((*boxed).key, &raw const (*boxed).overflow) };
        // SAFETY: the record lives in the box, and its name in the thread's
        // `Control`; the slot keeps both alive until after `Running` below
        // calls `leave` (the box is freed and the slot removed only once
        // `resume` returned), unwinding included; neither changes meanwhile.
        unsafe { self.tracker.enter(record) };
        // SAFETY: as above; the `Cell` is only ever shared.
        unsafe { (*boxed).noted.set(None) };
        let result = {
            let _running = Running::new(self, boxed);
            // SAFETY: the box stays in the slot, unmoved and unaliased,
            // until the resume returned (module invariant 5).
            unsafe { (*thread.0.as_ptr()).coroutine.resume(()) }
        };
        match result {
            // SAFETY: a thread suspends only in `suspend_in`, called on the
            // scheduler whose `running` is its box: the one that resumed it
            // here (a nested context's scheduler runs only its own
            // threads), so the address is `self`'s.
            CoroutineResult::Yield(scheduler) => Resumed::Suspended(unsafe { &*scheduler }),
            CoroutineResult::Return(()) => {
                self.finish(key);
                Resumed::Finished { main: key == main_key }
            }
        }
    }

    /// Frees the slot of the thread at `key`, whose coroutine returned: its
    /// box and stack go back for reuse. The slot is emptied in place, not
    /// moved out of the slab. What it owns is taken out first: the box
    /// (`None` after the take) and the waker (a no-op waker is left, which
    /// owns nothing), so the rest of the slot needs no drop. The waker is
    /// dropped after the slab's borrow ended: it may free the thread's
    /// `Shared` and with it a result whose drop runs user code.
    #[inline(always)]
    fn finish(&self, key: usize) {
        let taken = self.threads.borrow_mut().vacate_with(key, |slot| {
            (slot.coroutine.take(), mem::replace(&mut slot.waker, Waker::noop().clone()))
        });
        let Some((coroutine, waker)) = taken else { return };
        if let Some(coroutine) = coroutine {
            let (coroutine, allocation) = coroutine.into_inner();
            self.boxes.borrow_mut().push(allocation);
            self.stacks.borrow_mut().give(coroutine.into_stack());
        }
        drop(waker);
    }

    /// The identity of `thread` (id, name, spawn site), given to `f`: for
    /// the monitor, which records what runs.
    pub(crate) fn identify(
        &self,
        thread: Runnable,
        f: impl FnOnce(u64, Option<&str>, &'static Location<'static>),
    ) {
        let threads = self.threads.borrow();
        if let Some(slot) = threads.get(thread.key()) {
            // SAFETY: a slot's waker is the one `Shared::allocate` made in
            // `spawn_unchecked`, a green thread's waker.
            let control = unsafe { control_of(&slot.waker) };
            f(control.id().as_u64().get(), control.name(), slot.site);
        }
    }

    /// Records the running thread's wait, as `noted` makes it; `false`,
    /// without calling `noted`, if none is running. A timer noted after
    /// another wait of the same resume is that wait's timeout: the wait
    /// stays the record.
    pub(crate) fn note_wait(&self, noted: impl FnOnce() -> Noted) -> bool {
        // SAFETY: non-null only while its thread runs (module invariant 2),
        // the box then alive and its `noted` shared only through `&`.
        let Some(boxed) = (unsafe { self.running.get().as_ref() }) else {
            // No box while `teardown` runs a thread's destructors: a thread
            // runs, but there is no record to keep.
            return self.is_running_thread();
        };
        let noted = noted();
        let timeout = matches!(noted.wait, dump::Wait::Timer(_)) && boxed.noted.get().is_some();
        if !timeout {
            boxed.noted.set(Some(noted));
        }
        true
    }

    /// An entry per live green thread, for a dump.
    pub(crate) fn snapshot(&self, out: &mut Vec<Entry>) {
        let mut queued = std::collections::HashSet::new();
        self.run_queue.for_each(|thread| {
            queued.insert(thread.key());
        });
        let threads = self.threads.borrow();
        let current = self.current_key();
        for key in 0..threads.capacity() {
            let Some(slot) = threads.get(key) else { continue };
            // SAFETY: a slot's waker is the one `Shared::allocate` made in
            // `spawn_unchecked`, a green thread's waker.
            let control = unsafe { control_of(&slot.waker) };
            let state = match key {
                _ if key == current => State::Running,
                _ if queued.contains(&key) => State::Runnable,
                _ => State::Parked,
            };
            let identity =
                (control.id().as_u64().get(), control.name().map(str::to_owned), slot.site);
            let top = slot.coroutine.as_ref().map(|boxed| boxed.overflow().stack_top());
            let noted = slot.coroutine.as_ref().and_then(|boxed| boxed.noted().get());
            out.push(dump::entry(Model::Green, identity, state, noted, top));
        }
    }

    /// Spawns a green thread running `f`, spawned at `site`.
    pub(super) fn spawn<F, T>(
        &self,
        name: Option<String>,
        stack_size: Option<usize>,
        site: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        // SAFETY: `f` is `'static`, so it borrows nothing that may die first.
        unsafe { self.spawn_unchecked(name, stack_size, site, f) }
    }

    /// Spawns a green thread running `f`, which may borrow non-`'static` data.
    ///
    /// # Safety
    ///
    /// Everything `f` borrows must outlive the green thread: it must stay
    /// valid until the thread finishes or its coroutine is dropped by
    /// [`Scheduler::teardown`].
    pub(crate) unsafe fn spawn_unchecked<F, T>(
        &self,
        name: Option<String>,
        stack_size: Option<usize>,
        site: &'static Location<'static>,
        f: F,
    ) -> io::Result<JoinHandle<T>>
    where
        F: FnOnce() -> T,
        T: Send + 'static,
    {
        if self.shutting_down.get() {
            return Err(io::Error::other("green runtime is shutting down"));
        }
        let stack = self.stacks.borrow_mut().take(stack_size.unwrap_or(self.default_stack))?;
        let (guard, usable) = (stack.guard(), stack.size());
        let mut threads = self.threads.borrow_mut();
        let key = threads.vacant_key();
        // The box's address is known before its contents, so that the
        // thread's control block can name it for wakes.
        let place = CoroutineBox::place(self.boxes.borrow_mut().pop());
        let control = Control::new(name, key, Runnable(place), self.id, self.mailbox);
        let (shared, waker) = Shared::<T>::allocate(control);
        let done = CompleteOnDrop(ptr::from_ref(&*shared));
        let control = shared.control();
        let overflow =
            overflow::Record::new(guard, usable, control.name(), control.id().as_u64().get());
        let body = move |yielder: &GreenYielder, ()| {
            Scheduler::with(|s| s.map(|s| s.started(yielder)));
            // SAFETY: the slot's waker keeps `Shared` alive (invariant 4).
            if unsafe { (*done.0).control().cancel_state().is_killed() } {
                drop(f);
                return done.complete(Err(Box::new(cancel::Cancelled)));
            }
            let result = panic::catch_unwind(AssertUnwindSafe(|| {
                // SAFETY: the thread's own locals, cleared as it ends.
                let _locals = ClearLocals(unsafe { (*done.0).control() });
                f()
            }));
            let result = match result {
                Err(_) if Scheduler::with(|s| s.is_some_and(|s| s.shutting_down.get())) => {
                    // corosensei's forced unwind at teardown: finish quietly.
                    Err(Box::new("green runtime shut down before this green thread finished") as _)
                }
                result => result.map_err(cancel::into_join_error),
            };
            done.complete(result);
        };
        // SAFETY: the caller guarantees that `f`'s borrows outlive the
        // coroutine; `Scheduler::teardown` drops every coroutine in time.
        let coroutine = unsafe { Coroutine::with_stack_unchecked(stack, body) };
        // SAFETY: `place` came from `CoroutineBox::place` just above, and
        // is initialised here once.
        let boxed =
            unsafe { CoroutineBox::new(place, coroutine, overflow, (parts_of(&waker), key)) };
        let runnable = Runnable(boxed.0);
        threads.insert(Slot { coroutine: Some(boxed), waker, site });
        drop(threads);
        self.run_queue.push(runnable);
        Ok(JoinHandle::new(shared))
    }

    /// Called by a green thread when it starts: remember its yielder.
    fn started(&self, yielder: &GreenYielder) {
        // SAFETY: non-null only while its thread, the caller, runs (module
        // invariant 2), the box then alive and its `yielder` shared only
        // through `&`.
        if let Some(boxed) = unsafe { self.running.get().as_ref() } {
            boxed.yielder.set(yielder);
        }
    }

    /// Unwinds and frees every green thread still alive, youngest first (a
    /// `green::scope`'s threads before the thread that spawned them);
    /// later spawns fail.
    pub(crate) fn teardown(&self) {
        self.shutting_down.set(true);
        self.run_queue.clear();
        let capacity = self.threads.borrow().capacity();
        let mut keys: Vec<(ThreadId, usize)> = (0..capacity)
            .filter_map(|key| {
                let threads = self.threads.borrow();
                // SAFETY: a slot's waker is a green thread's (see `resume`).
                Some((unsafe { control_of(&threads.get(key)?.waker) }.id(), key))
            })
            .collect();
        keys.sort_unstable_by(|a, b| b.cmp(a));
        for (_, key) in keys {
            let coroutine = self
                .threads
                .borrow_mut()
                .get_mut(key)
                .and_then(|s| Some((s.coroutine.take()?, parts_of(&s.waker))));
            if let Some((coroutine, waker)) = coroutine {
                // Destructors run on the thread's stack and may call into
                // the scheduler: make the thread current while they do,
                // with no box (a yield returns at once, a wait panics).
                self.unwinding.set(Some(waker));
                drop(coroutine);
                self.unwinding.set(None);
            }
            let slot = self.threads.borrow_mut().remove(key);
            drop(slot);
        }
    }

    /// Whether `teardown` is unwinding the threads still alive.
    pub(super) fn is_shutting_down(&self) -> bool {
        self.shutting_down.get()
    }

    /// This scheduler's process-unique id.
    pub(crate) fn id(&self) -> SchedulerId {
        self.id
    }

    /// Queues the thread of `control`, one of this scheduler's, whose
    /// suspension a wake just ended on this OS thread (a local wake, or
    /// tokens posted from another thread and taken from the mailbox);
    /// module invariant 7. Does nothing once `teardown` began.
    #[inline]
    pub(super) fn queue_woken(&self, control: &Control) {
        debug_assert!(control.scheduler() == self.id, "a thread queued on another scheduler");
        if !self.shutting_down.get() {
            self.run_queue.push(control.runnable());
        }
    }

    /// Suspends the running green thread (the caller queued it or parked
    /// it); `false` if it has no yielder to suspend with: it runs
    /// destructors in `teardown`, where there is no one left to switch to.
    #[inline(always)]
    fn suspend(&self) -> bool {
        let boxed = self.running.get();
        if boxed.is_null() {
            return false;
        }
        // SAFETY: a running thread's box (module invariant 2); its yielder
        // was set when the thread started, the thread is the one executing
        // this code, so the pointee is live (module invariant 2).
        unsafe { self.suspend_in(boxed) };
        true
    }

    /// Suspends the running thread whose box is `boxed`, handing the
    /// scheduler's address back to `resume` (see [`Resumed::Suspended`]).
    ///
    /// # Safety
    ///
    /// `boxed` is the running thread's box (`running`, non-null), and the
    /// caller is that thread.
    #[inline(always)]
    unsafe fn suspend_in(&self, boxed: *const Boxed) {
        // SAFETY: per the contract the box is alive, and its yielder set
        // (module invariant 2); the `Cell` is only ever shared. No
        // reference to the box lives across the switch, during which the
        // resumer writes its coroutine.
        let yielder = unsafe { (*boxed).yielder.get() };
        // SAFETY: the running thread's own yielder, which lives on its stack
        // until its closure returns (module invariant 2).
        unsafe { (*yielder).suspend(self) };
    }

    /// Waits for one of `tokens` (see `thread.rs`) in the running green
    /// thread; `false` if none is running.
    #[inline]
    pub(super) fn wait_current(&self, tokens: u8) -> bool {
        self.wait(tokens).is_some()
    }

    /// `block_on`'s wait for its waker: like `wait_current(WAKE)`, but a
    /// wake that already happened (a future that woke itself) yields to the
    /// other threads before the re-poll instead of spinning on the future.
    ///
    /// Wakes that come while the thread is queued or runs (the first wake
    /// resumes it, the others of a burst set the token) are no news to the
    /// re-poll that follows, so the token is forgotten before it: left set,
    /// it would make the next wait yield and re-poll for nothing.
    #[inline(always)]
    pub(super) fn wait_wake_current(&self) -> bool {
        let waited = match self.wait(WAKE) {
            Some(true) => true,
            Some(false) => self.yield_current(),
            None => return false,
        };
        if let Some(control) = self.current_control() {
            // SAFETY: the running thread's control block, alive while it runs.
            unsafe { &*control }.forget(WAKE);
        }
        waited
    }

    /// Waits for one of `tokens`: `Some(true)` after suspending,
    /// `Some(false)` if a token was already there, `None` outside a thread.
    #[inline(always)]
    fn wait(&self, tokens: u8) -> Option<bool> {
        let (data, _) = self.current_waker_parts()?;
        // SAFETY: the running thread's waker points at its `Control` (see
        // `control_of`), alive while it runs (module invariant 6).
        let control = unsafe { &*data.cast::<Control>() };
        cancel::check(control);
        let must_suspend = control.begin_wait(tokens);
        if must_suspend {
            if !self.suspend() {
                blocked_in_teardown();
            }
            cancel::check(control);
        }
        Some(must_suspend)
    }

    /// Makes the running green thread `switch` away; `false` if none runs.
    /// Always inlined, with what it calls, into the frame that switches
    /// (see `Context::switch_green`).
    #[inline(always)]
    pub(crate) fn switch(&self, switch: Switch) -> bool {
        match switch {
            Switch::Yield => self.yield_current(),
            Switch::WaitWake => self.wait_wake_current(),
        }
    }

    /// `yield_now` for the running green thread; `false` if none is running.
    /// Always inlined into the yielding frame, whose prologue then saves the
    /// registers that the switch clobbers once for all its yields.
    #[inline(always)]
    pub(super) fn yield_current(&self) -> bool {
        let boxed = self.running.get();
        let Some(thread) = NonNull::new(boxed.cast_mut()) else {
            return self.yield_in_teardown();
        };
        // SAFETY: the running thread's box (module invariant 2); its waker
        // points at its control block (module invariant 6).
        let control = unsafe { (*boxed).waker.0 }.cast::<Control>();
        self.run_queue.push(Runnable(thread));
        // SAFETY: `boxed` is the running thread's box, and this is its code.
        unsafe { self.suspend_in(boxed) };
        // SAFETY: the thread resumed here is the one that suspended, running
        // again, so its control block is alive (module invariant 6).
        cancel::check(unsafe { &*control });
        true
    }

    /// `yield_now` with no box running: in a destructor that `teardown`
    /// runs, it returns at once (no one is left to switch to), after the
    /// cancel check; outside a thread, `false`.
    #[cold]
    #[inline(never)]
    fn yield_in_teardown(&self) -> bool {
        let Some((data, _)) = self.unwinding.get() else { return false };
        // SAFETY: the unwinding thread's control block (module invariant 6).
        cancel::check(unsafe { &*data.cast::<Control>() });
        true
    }

    /// The running green thread's key, `NONE` if none runs.
    fn current_key(&self) -> usize {
        // SAFETY: the running thread's control block (module invariant 6).
        self.current_control().map_or(NONE, |control| unsafe { &*control }.key())
    }

    /// The running green thread's control block, `None` if none runs. The
    /// pointer is valid while that thread runs (module invariant 6).
    #[inline]
    pub(super) fn current_control(&self) -> Option<*const Control> {
        self.current_waker_parts().map(|(data, _)| data.cast::<Control>())
    }

    /// The running green thread's waker as raw parts: from its box, or the
    /// thread that `teardown` unwinds; `None` if none runs (module
    /// invariant 6).
    #[inline(always)]
    fn current_waker_parts(&self) -> Option<WakerParts> {
        // SAFETY: non-null only while its thread runs (module invariant 2),
        // the box then alive; its `waker` is written once, at the spawn.
        match unsafe { self.running.get().as_ref() } {
            Some(boxed) => Some(boxed.waker),
            None => self.unwinding.get(),
        }
    }

    /// Whether a green thread (not the scheduler itself) is running.
    pub(super) fn is_running_thread(&self) -> bool {
        self.current_waker_parts().is_some()
    }

    /// The running green thread's handle.
    pub(super) fn current_thread(&self) -> Option<Thread> {
        // SAFETY: `current_waker` clones the running thread's slot waker,
        // which `Shared::allocate` made.
        self.current_waker().map(|waker| unsafe { Thread::from_waker(waker) })
    }

    /// The running green thread's waker.
    pub(super) fn current_waker(&self) -> Option<Waker> {
        self.current_waker_ref().map(|waker| (*waker).clone())
    }

    /// The running green thread's waker, borrowed: no reference count is
    /// taken, so it must only be used by the running thread while it runs
    /// (a `block_on` frame on its stack), never stored.
    #[inline]
    pub(super) fn current_waker_ref(&self) -> Option<ManuallyDrop<Waker>> {
        let (data, vtable) = self.current_waker_parts()?;
        // SAFETY: a bitwise alias of the slot's waker (module invariant 6),
        // never dropped (so the count stays right). The slot lives until its
        // thread has finished or was unwound, i.e. longer than any frame of
        // that thread, and the contract above keeps the alias in such a
        // frame. Clones made from it go through the vtable and own their
        // reference.
        Some(ManuallyDrop::new(unsafe { Waker::from_raw(RawWaker::new(data, vtable)) }))
    }

    /// Number of live green threads.
    pub(super) fn live_threads(&self) -> usize {
        self.threads.borrow().len()
    }

    /// Number of stacks kept for reuse.
    pub(super) fn cached_stacks(&self) -> usize {
        self.stacks.borrow().cached()
    }
}

/// A wait in a destructor that `teardown` runs: nothing could wake the
/// thread any more, so it panics rather than spin.
#[cold]
#[inline(never)]
fn blocked_in_teardown() -> ! {
    panic!(
        "a green thread blocked in a destructor while its runtime shut down; \
         the other green threads are gone, so nothing can wake it"
    )
}

/// The main green thread of a context: its handle, for the loop to know
/// when it finished and to take its result.
pub(crate) struct MainThread(JoinHandle<()>);

impl MainThread {
    /// The thread's key in its scheduler.
    pub(crate) fn key(&self) -> usize {
        self.0.key()
    }

    /// Its result: `None` if it has not finished.
    pub(crate) fn take(&self) -> Option<super::Result<()>> {
        self.0.try_take()
    }
}

impl Scheduler {
    /// Spawns `body` as the main green thread (named "main").
    ///
    /// # Safety
    ///
    /// As for [`Scheduler::spawn_unchecked`]: what `body` borrows must
    /// outlive the thread, i.e. the caller's context must tear the
    /// scheduler down before those borrows end.
    #[track_caller]
    pub(crate) unsafe fn spawn_main(&self, body: impl FnOnce()) -> io::Result<MainThread> {
        // SAFETY: forwarded to our caller.
        let handle =
            unsafe { self.spawn_unchecked(Some("main".into()), None, Location::caller(), body)? };
        Ok(MainThread(handle))
    }
}

/// What a thread's [`CoroutineBox`] holds: its coroutine, and the record
/// the overflow handler is pointed at while it runs (made once, at its
/// spawn, and kept beside the coroutine so that a resume only stores its
/// address).
///
/// In declared order (`repr(C)`): what a resume and a switch read or write
/// comes first, so that it spans as few cache lines as it can (with
/// thousands of threads, each line of a box is a miss on every resume);
/// the overflow record, whose address alone a resume takes, comes last.
#[repr(C)]
struct Boxed {
    coroutine: GreenCoroutine,
    /// The thread's slab key.
    key: usize,
    /// Set by the thread when it starts (module invariant 2).
    yielder: Cell<*const GreenYielder>,
    /// The slot's waker, as raw parts (module invariant 6).
    waker: WakerParts,
    /// What the thread last recorded it waits on (for dumps).
    noted: Cell<Option<Noted>>,
    overflow: overflow::Record,
}

/// An owned, heap-allocated coroutine reached through a raw pointer only
/// (module invariant 5), whose allocation is reused by the next spawn.
struct CoroutineBox(NonNull<Boxed>);

impl CoroutineBox {
    /// The place of a new box: `allocation` if one is given, else a fresh
    /// one; uninitialised, owned by the caller, who passes it to
    /// [`CoroutineBox::new`] (or leaks it).
    fn place(allocation: Option<Box<MaybeUninit<Boxed>>>) -> NonNull<Boxed> {
        NonNull::from(Box::leak(allocation.unwrap_or_else(Box::new_uninit))).cast()
    }

    /// Boxes a thread's coroutine and overflow record, with its slot's
    /// waker and key (its yielder unset, no wait noted), in `place`. The
    /// fields are written in place, not built on the stack and copied in.
    ///
    /// # Safety
    ///
    /// `place` came from [`CoroutineBox::place`] and is passed here once.
    unsafe fn new(
        place: NonNull<Boxed>,
        coroutine: GreenCoroutine,
        overflow: overflow::Record,
        (waker, key): (WakerParts, usize),
    ) -> CoroutineBox {
        let raw = place.as_ptr();
        // SAFETY: `raw` is an owned allocation sized and aligned for a
        // `Boxed` (the caller's contract); every field is written once, in
        // place, without reading or dropping what was there, so the value
        // is whole before `CoroutineBox` owns it.
        unsafe {
            (&raw mut (*raw).coroutine).write(coroutine);
            (&raw mut (*raw).overflow).write(overflow);
            (&raw mut (*raw).waker).write(waker);
            (&raw mut (*raw).key).write(key);
            (&raw mut (*raw).yielder).write(Cell::new(ptr::null()));
            (&raw mut (*raw).noted).write(Cell::new(None));
        }
        CoroutineBox(place)
    }

    /// The thread's overflow record.
    fn overflow(&self) -> &overflow::Record {
        // SAFETY: from `Box::leak` in `new`, owned by us alone. The record is
        // written once, by `new`; a resume's exclusive access (through
        // `as_ptr`) reaches the coroutine field only.
        unsafe { &(*self.0.as_ptr()).overflow }
    }

    /// What the thread last recorded it waits on.
    fn noted(&self) -> &Cell<Option<Noted>> {
        // SAFETY: as in `overflow`: a `Cell` beside the coroutine field,
        // only ever shared.
        unsafe { &(*self.0.as_ptr()).noted }
    }

    /// The coroutine, and its emptied allocation for reuse.
    fn into_inner(self) -> (GreenCoroutine, Box<MaybeUninit<Boxed>>) {
        let ptr = ManuallyDrop::new(self).0.as_ptr();
        // SAFETY: `ptr` came from `Box::leak` and is owned by us alone; the
        // coroutine is moved out once (the record is plain data) and the
        // allocation is returned as uninitialised, so neither is dropped
        // nor freed twice.
        unsafe {
            ((&raw const (*ptr).coroutine).read(), Box::from_raw(ptr.cast::<MaybeUninit<Boxed>>()))
        }
    }
}

impl Drop for CoroutineBox {
    fn drop(&mut self) {
        // SAFETY: from `Box::leak` in `new`, owned by us alone.
        drop(unsafe { Box::from_raw(self.0.as_ptr()) });
    }
}

/// Completes a green thread's `JoinHandle` exactly once: with its result,
/// or, if the closure is dropped without running (the runtime shut down
/// before the thread started), with an error.
///
/// It borrows the thread's `Shared` without a reference count (module
/// invariant 4): it lives in the thread's closure, and the thread's slot,
/// whose waker owns a count, outlives the closure.
struct CompleteOnDrop<T: Send + 'static>(*const Shared<T>);

impl<T: Send + 'static> CompleteOnDrop<T> {
    fn complete(self, result: super::Result<T>) {
        // SAFETY: the slot's waker keeps `Shared` alive (module invariant 4).
        unsafe { (*self.0).complete(result) };
        std::mem::forget(self);
    }
}

impl<T: Send + 'static> Drop for CompleteOnDrop<T> {
    fn drop(&mut self) {
        let error = Box::new("green runtime shut down before this green thread started");
        // SAFETY: as in `complete` (module invariant 4).
        unsafe { (*self.0).complete(Err(error)) };
    }
}

/// Drops a green thread's locals when its closure ends (returns or
/// unwinds), on the thread itself (`local.rs` invariant 1).
struct ClearLocals<'a>(&'a Control);

impl Drop for ClearLocals<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard lives on the thread's root frame: it runs on
        // the thread, after every frame that borrowed a local has ended.
        unsafe { self.0.locals().clear() }
    }
}

/// Marks a green thread as running (its box, module invariant 2); on drop
/// (also when unwinding) clears it and the overflow handler's record of
/// the thread.
struct Running<'a>(&'a Scheduler);

impl<'a> Running<'a> {
    /// Marks the thread whose coroutine box is `boxed` as running.
    fn new(scheduler: &'a Scheduler, boxed: *const Boxed) -> Running<'a> {
        scheduler.running.set(boxed);
        Running(scheduler)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.set(ptr::null());
        self.0.tracker.leave();
    }
}

/// How a [`Scheduler::resume`] ended.
pub(crate) enum Resumed<'s> {
    /// The thread suspended. It hands back the address of its scheduler
    /// (the one that resumed it) in the switch's return register: the
    /// caller's loop reaches its run queue through it rather than through
    /// its own `&self`, which it would reload from its stack frame, and
    /// that reload waits for the switch's chain of loads that restores the
    /// stack pointer (scheduler, running box, yielder, saved pointer).
    /// With it the next pop starts at once.
    Suspended(&'s Scheduler),
    /// The thread finished; `main` if it was the thread at `main_key`.
    Finished { main: bool },
}

/// A runnable green thread, as the run queue holds it: its coroutine box
/// (module invariant 7). Its `Control` keeps one, for wakes on its OS
/// thread.
#[derive(Clone, Copy)]
pub(crate) struct Runnable(NonNull<Boxed>);

// SAFETY: a `Runnable` is an address. Only its scheduler, on its own OS
// thread, reads through it (module invariant 7); a `Control` on another
// thread only carries it.
unsafe impl Send for Runnable {}
// SAFETY: as for `Send`: shared, it is only copied, never read through.
unsafe impl Sync for Runnable {}

impl fmt::Debug for Runnable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Runnable").field(&self.0).finish()
    }
}

impl Runnable {
    /// The thread's slab key.
    fn key(self) -> usize {
        // SAFETY: a queued entry's box is alive (module invariant 7), and
        // its key is written once, by `CoroutineBox::new`.
        unsafe { (*self.0.as_ptr()).key }
    }
}

impl fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scheduler")
            .field("id", &self.id)
            .field("threads", &self.threads.borrow().len())
            .field("runnable", &self.run_queue.len())
            .finish_non_exhaustive()
    }
}
