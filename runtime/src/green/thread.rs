//! The green thread's identity and parking: [`Thread`], [`ThreadId`],
//! [`park`], [`park_timeout`], [`current`], [`yield_now`], [`sleep`].
//!
//! Parking follows `std::thread`: each green thread has a token.
//! [`Thread::unpark`] makes it available; [`park`] consumes it, suspending
//! the green thread until it is available. An unpark before the park is
//! therefore never lost, and park may return spuriously.
//!
//! Wakers (timers, sockets, joins, channels: everything `block_on` waits
//! for) use a second token, so a `sleep` or a `join` never swallows an
//! unpark meant for a later `park`, and a stray wake rarely ends a `park`:
//!
//! ```text
//!  state bits:  UNPARK, WAKE (tokens)   WAIT_UNPARK, WAIT_WAKE (suspended for one)
//!
//!  signal(token):  the thread waits for it? clear the wait bits and
//!                  schedule the thread (exactly once): the token is
//!                  handed over with the wake, not stored
//!                  else set the token
//!  wait(token):    token set? consume it, no switch
//!                  else set the wait bit and suspend; nothing to consume
//!                  on resume, so a wait is one read and one write
//! ```
//!
//! A thread is thus queued at most once per suspension, and a wake after
//! it finished does nothing.
//!
//! The word is touched on the thread's own OS thread only (see
//! `park_state.rs`). A token from anywhere else, another OS thread or a
//! context on this one that does not run the thread's scheduler, is
//! posted beside it, and a [`Signal`] in the owner's mailbox has the owner
//! take it into the word when it routes the mailbox (`context.rs`), or the
//! thread's next wait takes it first: the same `signal` then, so an unpark
//! is still never lost. A token for a thread that finished meanwhile does
//! nothing, as above; a signal for a scheduler that ended is dropped with
//! the mailbox's other wakes for a gone target (`reactor/remote.rs`).

use std::fmt;
use std::num::NonZeroU64;
use std::time::{Duration, Instant};

use super::cancel::CancelState;
use super::local::Locals;
use super::park_state::ParkState;
pub(super) use super::park_state::{UNPARK, WAKE};
use super::scheduler::{Runnable, Scheduler, Switch};
use std::task::Waker;

use crate::context::Context;
use crate::id::SchedulerId;
use crate::reactor::{MailboxRef, Wake};

/// A unique identifier of a green thread, never reused in the process.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(NonZeroU64);

impl ThreadId {
    /// A new id, from this OS thread's block of reserved ids (no atomic
    /// operation per spawn).
    pub(super) fn next() -> ThreadId {
        crate::id::id_source!(static IDS);
        ThreadId(NonZeroU64::new(IDS.next()).expect("id sources start at 1"))
    }

    /// The id as a number (for logs and metrics).
    pub fn as_u64(self) -> NonZeroU64 {
        self.0
    }
}

/// The non-generic part of a green thread, shared by its [`Thread`]
/// handles, its wakers and its scheduler slot.
#[derive(Debug)]
pub(crate) struct Control {
    state: ParkState,
    id: ThreadId,
    name: Option<String>,
    /// Key of the thread's slot in its scheduler.
    key: usize,
    /// The thread as its scheduler queues it, for wakes on its OS thread.
    runnable: Runnable,
    /// The owning scheduler's id; a wake on its thread goes to its local
    /// queue directly.
    scheduler: SchedulerId,
    /// The mailbox of the scheduler's reactor, for wakes from other threads
    /// (no reference count: see `reactor/remote.rs`).
    mailbox: MailboxRef,
    /// Cancel and timeout requests (see `cancel.rs`).
    cancel: CancelState,
    /// Green-thread-local values (see `local.rs`).
    locals: Locals,
}

impl Control {
    /// Inlined into the spawn, so that the block is built where it goes.
    #[inline]
    pub(super) fn new(
        name: Option<String>,
        key: usize,
        runnable: Runnable,
        scheduler: SchedulerId,
        mailbox: MailboxRef,
    ) -> Control {
        Control {
            state: ParkState::new(),
            id: ThreadId::next(),
            name,
            key,
            runnable,
            scheduler,
            mailbox,
            cancel: CancelState::default(),
            locals: Locals::default(),
        }
    }

    pub(super) fn locals(&self) -> &Locals {
        &self.locals
    }

    pub(super) fn cancel_state(&self) -> &CancelState {
        &self.cancel
    }

    pub(super) fn id(&self) -> ThreadId {
        self.id
    }

    pub(super) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub(super) fn key(&self) -> usize {
        self.key
    }

    pub(super) fn runnable(&self) -> Runnable {
        self.runnable
    }

    pub(super) fn scheduler(&self) -> SchedulerId {
        self.scheduler
    }

    /// Sets `token` (UNPARK or WAKE); schedules the thread if it is
    /// suspended waiting for that token. From any thread: where the
    /// thread's scheduler does not run, the token is posted, and the first
    /// one posted since the owner took them sends it a [`Signal`] (module
    /// docs).
    ///
    /// It only sets the park word and queues the thread (on this thread's
    /// run queue, or in its scheduler's mailbox): never user code, never a
    /// `sync` primitive. The `sync` primitives wake a green thread's waker
    /// under their lock ([`is_green_waker`]), which relies on this.
    ///
    /// [`is_green_waker`]: super::is_green_waker
    #[inline]
    pub(super) fn signal(&self, token: u8) {
        let local = Scheduler::with(|s| match s {
            Some(s) if s.id() == self.scheduler => {
                self.apply(s, token);
                true
            }
            _ => false,
        });
        if !local && self.state.post(token) {
            self.mailbox.push(Wake::Green(self.scheduler, Signal::new(self)));
        }
    }

    /// Sets `token` on the park word and queues the thread on `scheduler`
    /// if it waited for it.
    ///
    /// `scheduler` must be the thread's (its id is `self.scheduler`): a
    /// `&Scheduler` is only reached on the OS thread that runs it (it is
    /// `!Sync`), so this is the owner thread (`park_state.rs`).
    #[inline]
    fn apply(&self, scheduler: &Scheduler, token: u8) {
        debug_assert!(scheduler.id() == self.scheduler, "a token applied on another scheduler");
        // SAFETY: this runs on the thread of `scheduler`, the thread's own
        // (the callers check the id), i.e. on the owner thread.
        if unsafe { self.state.signal(token) } {
            scheduler.queue_woken(self);
        }
    }

    /// Takes the posted tokens into the park word and queues the thread on
    /// `scheduler` if it waited for one; `scheduler` as for `apply`.
    fn take_posted(&self, scheduler: &Scheduler) {
        debug_assert!(scheduler.id() == self.scheduler, "a signal applied on another scheduler");
        // SAFETY: as in `apply`: the owner thread.
        if unsafe { self.state.take_posted() } {
            scheduler.queue_woken(self);
        }
    }

    /// Consumes the `tokens` (a mask of UNPARK and WAKE) that are set and
    /// returns `false`; if none is, marks the thread suspended for them and
    /// returns `true`: the caller must suspend. The signal that resumes it
    /// hands its token over with the wake, so there is none to consume then.
    ///
    /// For the running thread's own control block only (the scheduler's
    /// waits), so on the owner thread.
    #[inline]
    pub(super) fn begin_wait(&self, tokens: u8) -> bool {
        // SAFETY: the running green thread waits on its own word: green
        // threads never leave their OS thread, so this is the owner thread.
        unsafe { self.state.begin_wait(tokens) }
    }

    /// Consumes `token` if it is set (see `ParkState::forget`); for the
    /// running thread's own control block only, as `begin_wait`.
    #[inline]
    pub(super) fn forget(&self, token: u8) {
        // SAFETY: as in `begin_wait`: the running thread, on its owner thread.
        unsafe { self.state.forget(token) }
    }
}

/// The news, for the owner of a green thread, that tokens were posted for
/// it where its scheduler does not run: the owner's mailbox carries it
/// (`Wake::Green`) and the owner takes the tokens when it routes the
/// mailbox (see the module docs).
///
/// It holds a waker of the thread, i.e. a count of its block, so the
/// `Control` it names lives until it is applied or dropped, also if the
/// thread finishes meanwhile: the tokens then land on a finished thread
/// and do nothing. Dropped unapplied (the owner exited), it just gives
/// the count back.
pub(crate) struct Signal {
    /// A green thread's waker (made by `join::waker_of`), which
    /// `control_of` may read.
    thread: Waker,
}

impl Signal {
    fn new(control: &Control) -> Signal {
        Signal { thread: super::join::waker_of(control) }
    }

    /// Takes the thread's posted tokens on `scheduler`, the thread's
    /// (`Context::route` finds it by the id that `Wake::Green` carries); if
    /// it is another one, drops the signal as a wake whose target is gone.
    pub(crate) fn apply(self, scheduler: &Scheduler) {
        // SAFETY: `thread` is a green thread's waker (field doc).
        let control = unsafe { control_of(&self.thread) };
        let owner = control.scheduler;
        if owner == scheduler.id() {
            control.take_posted(scheduler);
        } else {
            crate::reactor::drop_wake(Wake::Green(owner, self));
        }
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: `thread` is a green thread's waker (field doc).
        let control = unsafe { control_of(&self.thread) };
        f.debug_struct("Signal").field("thread", &control.id).finish()
    }
}

/// A handle to a green thread: its id and name, and the way to unpark it.
///
/// It is the thread's `Waker` (see `join.rs`): cheap to clone (a reference
/// count) and `Send + Sync`, so any OS thread may unpark a green thread.
#[derive(Clone)]
pub struct Thread {
    waker: Waker,
}

impl Thread {
    /// Wraps a green thread's waker.
    ///
    /// # Safety
    ///
    /// `waker` must be a green thread's waker: one made by
    /// `Shared::allocate` or `Shared::waker` (join.rs invariant 2), or a
    /// clone of one. [`Thread::control`] reads its data pointer as a
    /// `Control`.
    pub(super) unsafe fn from_waker(waker: Waker) -> Thread {
        Thread { waker }
    }

    pub(super) fn control(&self) -> &Control {
        // SAFETY: `from_waker`'s contract: the waker is a green thread's.
        unsafe { control_of(&self.waker) }
    }

    /// The thread's unique id.
    pub fn id(&self) -> ThreadId {
        self.control().id()
    }

    /// The thread's name, if it was given one with
    /// [`Builder::name`](super::Builder::name).
    pub fn name(&self) -> Option<&str> {
        self.control().name()
    }

    /// Makes the thread's park token available, waking it if it is parked.
    /// Works from any OS thread.
    pub fn unpark(&self) {
        self.control().signal(UNPARK);
    }
}

/// The `Control` of a green thread's waker.
///
/// # Safety
///
/// `waker` must be a green thread's waker: made by `Shared::allocate` or
/// `Shared::waker`, or a clone of one (join.rs invariant 2). Any other
/// waker's data pointer is read as a `Control` it is not.
pub(super) unsafe fn control_of(waker: &Waker) -> &Control {
    // SAFETY: per the caller, the data pointer points at the thread's
    // `repr(C)` `Shared<T>`, whose first field is the `Control`, and the
    // waker's strong count keeps it alive for the borrow (join.rs
    // invariant 1).
    unsafe { &*waker.data().cast::<Control>() }
}

impl fmt::Debug for Thread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Thread").field("id", &self.id()).field("name", &self.name()).finish()
    }
}

/// The green thread that calls it, or `None` outside a green thread.
pub fn try_current() -> Option<Thread> {
    Scheduler::with(|s| s.and_then(Scheduler::current_thread))
}

/// The green thread that calls it.
///
/// # Panics
///
/// Panics when called outside a green thread (use [`try_current`] there).
pub fn current() -> Thread {
    try_current().expect("green::current() called outside a green thread (see green::try_current)")
}

/// Blocks the current green thread until its token is available (see the
/// module docs); may return spuriously. Outside a green thread it is
/// `std::thread::park`.
#[inline]
pub fn park() {
    if !Scheduler::with(|s| s.is_some_and(|s| s.wait_current(UNPARK))) {
        std::thread::park();
    }
}

/// Like [`park`], but returns after `timeout` at the latest. Outside a green
/// thread it is `std::thread::park_timeout`.
///
/// The timeout is the thread's own timer, so the wait also ends (spuriously,
/// as `park` may) on any wake of the thread's waker.
pub fn park_timeout(timeout: Duration) {
    let Some(waker) = super::current_waker() else {
        return std::thread::park_timeout(timeout);
    };
    let Some(deadline) = Instant::now().checked_add(timeout) else {
        return park();
    };
    let reactor = crate::reactor::Reactor::current();
    let timer = reactor.insert_timer(deadline, waker);
    // Cancelled on return and when a cancel unwinds from the wait.
    let _timer = super::timeout::TimerGuard { reactor: &reactor, timer };
    crate::dump::note(crate::dump::Wait::Timer(deadline));
    Scheduler::with(|s| s.map(|s| s.wait_current(UNPARK | WAKE)));
}

/// Puts the current green thread at the back of the run queue and runs the
/// others first. Outside a green thread it is `std::thread::yield_now`.
#[inline]
pub fn yield_now() {
    if !Context::switch_green(Switch::Yield) {
        std::thread::yield_now();
    }
}

/// Parks the current green thread for at least `duration`; other green
/// threads run meanwhile. Outside a green thread it is `std::thread::sleep`.
pub fn sleep(duration: Duration) {
    if super::in_green_thread() {
        crate::block_on(crate::time::sleep(duration));
    } else {
        std::thread::sleep(duration);
    }
}
