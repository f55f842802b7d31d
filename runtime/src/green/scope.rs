//! [`scope`]: green threads that may borrow from the caller's stack, like
//! `std::thread::scope`.
//!
//! The scope counts its running threads; each thread's wrapper decrements
//! the count when it ends (also when it unwinds) and unparks the scope's
//! owner at zero. `scope` returns only after the count reached zero, which
//! is what makes the borrows sound:
//!
//! * the wait is [`shield`](super::shield)ed: a cancel or timeout of the
//!   owner meanwhile cancels the scope's threads instead, and is delivered
//!   to the owner as soon as they are gone, before `scope` returns;
//! * at runtime shutdown the scheduler unwinds threads youngest first
//!   (`Scheduler::teardown`), so a scope's threads are gone before the
//!   frame of its owner, which spawned them, unwinds.

use std::cell::{Cell, RefCell};
use std::io;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};

use super::cancel::{self, Interrupt};
use super::join::JoinHandle;
use super::scheduler::Scheduler;
use super::thread::Thread;

/// A scope to spawn borrowing green threads in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    /// Threads spawned and not yet ended.
    running: Cell<usize>,
    /// Threads that panicked and whose panic nobody joined.
    unjoined_panics: Cell<usize>,
    /// The threads, to cancel them with the owner.
    threads: RefCell<Vec<Thread>>,
    /// The green thread that called `scope`.
    owner: Thread,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

/// A handle to join a thread of a [`Scope`].
pub struct ScopedJoinHandle<'scope, T> {
    handle: JoinHandle<T>,
    scope: &'scope Cell<usize>,
}

/// Runs `f` with a [`Scope`] whose threads may borrow anything that
/// outlives the call, and returns once all of them ended.
///
/// A thread's result must be `'static` (its closure need not be). If `f`
/// panics, its panic is resumed once the threads ended; otherwise, if a
/// thread panicked and its handle was not joined, `scope` panics then.
///
/// ```
/// use greenloop_runtime::green;
///
/// green::run(|| {
///     let mut cells = vec![0; 8];
///     green::scope(|s| {
///         for (i, chunk) in cells.chunks_mut(2).enumerate() {
///             s.spawn(move || chunk.fill(i));
///         }
///     });
///     assert_eq!(cells, [0, 0, 1, 1, 2, 2, 3, 3]);
/// });
/// ```
///
/// # Panics
///
/// Outside a green thread, and as said above.
pub fn scope<'env, F, R>(f: F) -> R
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> R,
{
    let owner = super::try_current().expect("green::scope called outside a green thread");
    let scope = Scope {
        running: Cell::new(0),
        unjoined_panics: Cell::new(0),
        threads: RefCell::new(Vec::new()),
        owner,
        scope: PhantomData,
        env: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    super::shield(|| scope.wait());
    // A cancel or timeout that came during the wait unwinds the owner now.
    cancel::check(scope.owner.control());
    match result {
        Err(payload) => panic::resume_unwind(payload),
        Ok(_) if scope.unjoined_panics.get() > 0 => panic!("a scoped green thread panicked"),
        Ok(value) => value,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns `f` as a green thread of the scope.
    ///
    /// # Panics
    ///
    /// If no stack can be mapped or the runtime is shutting down.
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: Send + 'static,
    {
        // Counted in before the spawn; the guard counts the thread out when
        // its closure ends or is dropped unrun (cancelled before it started,
        // or the spawn failed).
        let site = std::panic::Location::caller();
        self.running.set(self.running.get() + 1);
        let ended = Ended(self);
        let body = move || {
            let _ended = ended;
            match panic::catch_unwind(AssertUnwindSafe(f)) {
                Ok(value) => value,
                Err(payload) => {
                    if !payload.is::<Interrupt>() {
                        self.unjoined_panics.set(self.unjoined_panics.get() + 1);
                    }
                    panic::resume_unwind(payload)
                }
            }
        };
        let spawned = Scheduler::with(|s| match s {
            // SAFETY: `body` borrows data that outlives 'scope, and the
            // thread ends within 'scope: `scope` waits for it (module docs).
            Some(s) => unsafe { s.spawn_unchecked(None, None, site, body) },
            None => Err(io::Error::other("green::Scope::spawn outside its runtime")),
        });
        let handle = spawned.unwrap_or_else(|e| panic!("failed to spawn scoped green thread: {e}"));
        self.threads.borrow_mut().push(handle.thread());
        ScopedJoinHandle { handle, scope: &self.unjoined_panics }
    }

    /// Parks the owner until every thread ended; cancels them all once if
    /// the owner is asked to unwind meanwhile.
    fn wait(&self) {
        let mut cancelled = false;
        while self.running.get() > 0 {
            if !cancelled && self.owner.control().cancel_state().is_pending() {
                cancelled = true;
                for thread in self.threads.borrow().iter() {
                    cancel::cancel(thread.control());
                }
            }
            super::park();
        }
    }
}

/// Ends a scope's thread: on drop, counts it out and wakes the owner at
/// zero.
struct Ended<'a, 'scope, 'env>(&'a Scope<'scope, 'env>);

impl Drop for Ended<'_, '_, '_> {
    fn drop(&mut self) {
        let running = self.0.running.get() - 1;
        self.0.running.set(running);
        if running == 0 {
            self.0.owner.unpark();
        }
    }
}

impl<T: Send + 'static> ScopedJoinHandle<'_, T> {
    /// Waits for the thread and returns its result or its panic payload; a
    /// panic joined here does not make the scope panic.
    pub fn join(self) -> super::Result<T> {
        let result = self.handle.join();
        if let Err(payload) = &result
            && !cancel::is_cancelled(&**payload)
        {
            self.scope.set(self.scope.get() - 1);
        }
        result
    }

    /// Cancels the thread (see [`JoinHandle::cancel`]).
    pub fn cancel(&self) {
        self.handle.cancel();
    }

    /// Whether the thread has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The thread's handle.
    pub fn thread(&self) -> Thread {
        self.handle.thread()
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope").field("running", &self.running.get()).finish_non_exhaustive()
    }
}

impl<T> std::fmt::Debug for ScopedJoinHandle<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScopedJoinHandle").field("handle", &self.handle).finish()
    }
}
