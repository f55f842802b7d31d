//! The reactor: one per OS thread, shared by everything that waits on it.
//!
//! A reactor owns a `mio::Poll` (epoll), a slab of I/O registrations, a
//! timing wheel and a remote wake queue. It knows nothing of schedulers: it
//! stores a [`Waker`] for each readiness interest and each timer and calls it
//! when the event arrives. Green threads, stackless tasks and plain
//! `block_on` calls all wait the same way, which is what lets greenloop
//! compare them fairly.
//!
//! ```text
//!            Reactor::turn(timeout)
//!  ┌──────────────────────────────────────────────────────┐
//!  │ sleep for min(timeout, next timer), unless notified: │
//!  │   no I/O registered -> on the state word's futex     │
//!  │   else epoll_wait   -> io[k]: set readiness, take    │
//!  │                        waker (token k)               │
//!  │   (each to the µs, not rounded up to a ms: wait.rs)  │
//!  │ notified? -> take the mailbox (remote.rs)            │
//!  │ wheel.advance(now) -> take timer wakers              │
//!  │ wake everything taken (no borrow held while waking), │
//!  │ run the injected closures, keep the green and task   │
//!  │ wakes for the context to route                       │
//!  └──────────────────────────────────────────────────────┘
//! ```
//!
//! A reactor with no I/O registered has nothing for `epoll_wait` to
//! report but its own eventfd, so it sleeps on a futex instead, which
//! costs its wakers and itself less (a futex wake and wait against an
//! `eventfd` write and `epoll_wait`), and a turn that does not sleep then
//! makes no system call. Registrations are made on the owner thread only,
//! so none appears while it sleeps there; where the system has no futex,
//! it sleeps in `epoll_wait` always.
//!
//! The reactor lives in a thread-local and is created on first use
//! ([`Reactor::current`]). It is single-threaded (`!Send`); other threads
//! reach it only through its [`Remote`] handle: the wake it sends ends the
//! owner's sleep, and its mailbox carries wakes of green threads and tasks,
//! which the thread's context routes to their run queues (see
//! `context.rs`), and closures injected by
//! [`Shard::spawn`](crate::shard::Shard::spawn), run inside the turn.

mod io;
mod remote;
mod ticks;
mod wait;
pub(crate) mod wheel;

pub use crate::id::ReactorId;
pub use io::{Direction, IoKey, ReadyEvent};
use remote::Sleep;
pub use remote::{Inject, Remote, dropped_wakes};
pub(crate) use remote::{MailboxRef, Wake, drop_wake};

use std::cell::{Cell, OnceCell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};
use std::{fmt, io as stdio};

use crate::context::Context as LoopContext;
use crate::id::ExecutorId;
use crate::slab::Slab;
use io::IoState;
use ticks::Ticks;
use wait::Wait;
use wheel::{TimerKey, Wheel};

/// The token reserved for the remote `mio::Waker`.
const WAKE_TOKEN: mio::Token = mio::Token(usize::MAX);

/// Events fetched per `epoll_wait`.
const EVENTS_CAPACITY: usize = 1024;

/// A per-thread event loop core: I/O readiness, timers and remote wakes.
pub struct Reactor {
    id: ReactorId,
    poll: RefCell<mio::Poll>,
    events: RefCell<mio::Events>,
    io: RefCell<Slab<IoState>>,
    timers: RefCell<Wheel<Waker>>,
    /// The waker of the last timer cancelled since the last turn, which
    /// the next timer armed with an equivalent waker (`will_wake`) takes
    /// instead of a clone: a waiter that arms and cancels a timer per
    /// operation (a timeout per request) then pays no waker clone and drop
    /// for it. Dropped at the next turn, so it keeps what it wakes alive
    /// one turn longer at most.
    spare_waker: Cell<Option<Waker>>,
    /// The wheel's clock: ticks are whole milliseconds after the reactor's
    /// creation.
    ticks: Ticks,
    /// The loop's clock: the instant the last turn read (see [`Reactor::turn_time`]).
    turn_time: Cell<Instant>,
    /// Number of completed turns, used to date readiness (see `io`).
    turns: Cell<u64>,
    remote: Arc<Remote>,
    /// Whether the owner may sleep on the futex when no I/O is registered:
    /// cleared for good once a futex sleep failed (no futex here).
    futex: Cell<bool>,
    /// Reused buffers, so a turn does not allocate in steady state.
    to_wake: RefCell<Vec<Waker>>,
    to_inject: RefCell<Vec<Arc<dyn Inject>>>,
    /// Green and task wakes from the mailbox, for the context to route
    /// (`take_woken`); tasks of executors that run in no loop stay here.
    woken: RefCell<Vec<Wake>>,
    /// The executors alive on this thread: a remote wake of a task whose
    /// executor is not listed is dropped (see `remote.rs`).
    executors: RefCell<Vec<ExecutorId>>,
}

thread_local! {
    static CURRENT: OnceCell<Rc<Reactor>> = const { OnceCell::new() };
    /// The id of this thread's reactor (0: none yet), for cheap "am I on
    /// the owner thread?" checks.
    static CURRENT_ID: Cell<u64> = const { Cell::new(0) };
}

impl Reactor {
    /// Creates a reactor (an epoll instance and an eventfd).
    fn new() -> stdio::Result<Reactor> {
        let poll = mio::Poll::new()?;
        let waker = mio::Waker::new(poll.registry(), WAKE_TOKEN)?;
        let id = ReactorId::next();
        let start = Instant::now();
        Ok(Reactor {
            id,
            poll: RefCell::new(poll),
            events: RefCell::new(mio::Events::with_capacity(EVENTS_CAPACITY)),
            io: RefCell::new(Slab::new()),
            timers: RefCell::new(Wheel::new()),
            spare_waker: Cell::new(None),
            ticks: Ticks::new(start),
            turn_time: Cell::new(start),
            turns: Cell::new(0),
            remote: Remote::new(waker, id),
            futex: Cell::new(true),
            to_wake: RefCell::new(Vec::new()),
            to_inject: RefCell::new(Vec::new()),
            woken: RefCell::new(Vec::new()),
            executors: RefCell::new(Vec::new()),
        })
    }

    /// The calling thread's reactor, created on first use.
    ///
    /// # Errors
    ///
    /// Fails only when the first call cannot create the epoll instance or
    /// its eventfd (typically `EMFILE`: the process is out of descriptors).
    #[inline]
    pub fn try_current() -> stdio::Result<Rc<Reactor>> {
        match Reactor::existing() {
            Some(reactor) => Ok(reactor),
            None => Reactor::install(),
        }
    }

    /// Creates this thread's reactor. Out of line and cold: `Reactor::new`
    /// builds a value of some kilobytes on the stack, and inlined into
    /// [`try_current`](Reactor::try_current) it gave every call (each timer
    /// poll of a green thread) a frame that size, whose stack probe wrote a
    /// cache line pages below the caller: a cache miss per call on a green
    /// thread's stack, and more stack pages per thread.
    #[cold]
    #[inline(never)]
    fn install() -> stdio::Result<Rc<Reactor>> {
        let created = Rc::new(Reactor::new()?);
        // `try_current` installs only when `existing` found none, so the
        // slot is empty and takes `created`.
        let reactor = CURRENT.with(|slot| slot.get_or_init(|| created).clone());
        CURRENT_ID.with(|id| id.set(reactor.id.as_u64().get()));
        Ok(reactor)
    }

    /// The calling thread's reactor if it has one (never creates it).
    pub fn existing() -> Option<Rc<Reactor>> {
        CURRENT.with(|slot| slot.get().cloned())
    }

    /// Runs `f` with the calling thread's reactor, created on first use,
    /// without taking a reference count: for the short visits of a timer's
    /// poll and drop.
    ///
    /// # Panics
    ///
    /// As [`Reactor::current`], if the reactor cannot be created.
    ///
    /// Inside a runtime it takes the reactor from the thread's context,
    /// whose thread-local is a plain pointer, instead of from `CURRENT`,
    /// whose access goes through its destructor's registration state.
    #[inline]
    pub(crate) fn with_current<R>(f: impl FnOnce(&Reactor) -> R) -> R {
        LoopContext::with(|context| match context {
            Some(context) => f(context.reactor()),
            None => CURRENT.with(|slot| match slot.get() {
                Some(reactor) => f(reactor),
                None => f(&Reactor::current()),
            }),
        })
    }

    /// Runs `f` with the calling thread's reactor if it has one (never
    /// creates it), from the thread's context first, as
    /// [`with_current`](Reactor::with_current) does.
    #[inline]
    pub(crate) fn with_existing<R>(f: impl FnOnce(&Reactor) -> R) -> Option<R> {
        LoopContext::with(|context| match context {
            Some(context) => Some(f(context.reactor())),
            None => CURRENT.with(|slot| slot.get().map(|reactor| f(reactor))),
        })
    }

    /// The calling thread's reactor, created on first use.
    ///
    /// # Panics
    ///
    /// Panics if the reactor cannot be created (see [`Reactor::try_current`]);
    /// there is no way to wait without one.
    pub fn current() -> Rc<Reactor> {
        match Reactor::try_current() {
            Ok(reactor) => reactor,
            Err(e) => panic!("greenloop: cannot create this thread's reactor (epoll): {e}"),
        }
    }

    /// The id of the calling thread's reactor, `None` if it has none yet.
    #[inline]
    pub fn current_id() -> Option<ReactorId> {
        std::num::NonZeroU64::new(CURRENT_ID.with(Cell::get)).map(ReactorId::from_u64)
    }

    /// A process-unique id for this reactor.
    pub fn id(&self) -> ReactorId {
        self.id
    }

    /// The handle other threads use to wake this reactor.
    pub fn remote(&self) -> &Arc<Remote> {
        &self.remote
    }

    /// Number of live I/O registrations.
    pub fn io_count(&self) -> usize {
        self.io.borrow().len()
    }

    /// Number of pending timers.
    pub fn timer_count(&self) -> usize {
        self.timers.borrow().len()
    }

    // ----- I/O -------------------------------------------------------------

    /// Registers `source` for read and write readiness, edge-triggered.
    /// Call once per socket; deregister before closing it.
    ///
    /// # Errors
    ///
    /// Whatever `epoll_ctl(EPOLL_CTL_ADD)` reports.
    pub fn register(&self, source: &mut impl mio::event::Source) -> stdio::Result<IoKey> {
        let mut io = self.io.borrow_mut();
        let key = io.vacant_key();
        let interest = mio::Interest::READABLE | mio::Interest::WRITABLE;
        self.poll.borrow().registry().register(source, mio::Token(key), interest)?;
        let inserted = io.insert(IoState::default());
        debug_assert_eq!(inserted, key);
        Ok(IoKey(key))
    }

    /// Names the fd that registration `key` watches, so that a dump shows
    /// its waiters by fd (the reactor cannot learn it from a `Source`).
    pub fn name_fd(&self, key: IoKey, fd: std::os::fd::RawFd) {
        if let Some(state) = self.io.borrow_mut().get_mut(key.0) {
            state.fd = Some(fd);
        }
    }

    /// Removes `source`'s registration; its waiters are dropped.
    ///
    /// # Errors
    ///
    /// Whatever `epoll_ctl(EPOLL_CTL_DEL)` reports; the slab entry is freed
    /// in any case.
    pub fn deregister(
        &self,
        key: IoKey,
        source: &mut impl mio::event::Source,
    ) -> stdio::Result<()> {
        let state = self.io.borrow_mut().remove(key.0);
        drop(state);
        self.poll.borrow().registry().deregister(source)
    }

    /// Ready if `dir` is ready; otherwise stores `cx`'s waker for the next
    /// edge and returns `Pending`.
    pub fn poll_ready(&self, key: IoKey, dir: Direction, cx: &mut Context<'_>) -> Poll<ReadyEvent> {
        let mut io = self.io.borrow_mut();
        let Some(state) = io.get_mut(key.0) else {
            // Deregistered: report ready so the caller's syscall reports the error.
            return Poll::Ready(ReadyEvent { dir, tick: u64::MAX });
        };
        let fd = state.fd;
        let state = state.dir(dir);
        if let Some(tick) = state.ready {
            return Poll::Ready(ReadyEvent { dir, tick });
        }
        match &mut state.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        drop(io);
        crate::dump::note(crate::dump::Wait::Io { key: key.0, fd, dir });
        Poll::Pending
    }

    /// The readiness of `dir` if the reactor holds one, without storing a
    /// waker: lets a blocking caller try its syscall only when it may
    /// succeed, and go straight to waiting otherwise.
    pub fn ready_event(&self, key: IoKey, dir: Direction) -> Option<ReadyEvent> {
        match self.io.borrow_mut().get_mut(key.0) {
            Some(state) => state.dir(dir).ready.map(|tick| ReadyEvent { dir, tick }),
            // Deregistered: ready, so the caller's syscall reports the error.
            None => Some(ReadyEvent { dir, tick: u64::MAX }),
        }
    }

    /// Clears the readiness `event` observed, after a syscall returned
    /// `WouldBlock`; a newer edge is kept.
    pub fn clear_ready(&self, key: IoKey, event: ReadyEvent) {
        self.clear(key, event, false);
    }

    /// Clears the readiness `event` observed, after a stream read or write
    /// moved fewer bytes than asked (but some): the kernel buffer is drained
    /// (or full), and the next byte (or free space) brings a new edge. A
    /// newer edge is kept, and so is the readiness of a closed direction:
    /// its close came once, perhaps in the same edge as the data just read,
    /// and the caller still has to see it (`Ok(0)`, or the error).
    pub fn clear_drained(&self, key: IoKey, event: ReadyEvent) {
        self.clear(key, event, true);
    }

    /// Clears `event`'s readiness unless a newer edge replaced it (or, with
    /// `keep_closed`, the direction has closed).
    fn clear(&self, key: IoKey, event: ReadyEvent, keep_closed: bool) {
        if let Some(state) = self.io.borrow_mut().get_mut(key.0) {
            let state = state.dir(event.dir);
            if state.ready == Some(event.tick) && !(keep_closed && state.closed) {
                state.ready = None;
            }
        }
    }

    // ----- timers ----------------------------------------------------------

    /// The loop's clock: the instant the last turn read, or the reactor's
    /// creation before the first turn. Never later than now, and at most
    /// one turn old while the loop runs: what timers and wait records use
    /// instead of reading the clock per operation (a read of the clock is a
    /// `clock_gettime`, some 25 ns on a virtual machine).
    #[inline]
    pub fn turn_time(&self) -> Instant {
        self.turn_time.get()
    }

    /// Arms a timer that wakes `waker` at or after `deadline`.
    pub(crate) fn insert_timer(&self, deadline: Instant, waker: Waker) -> TimerKey {
        let tick = self.ticks.ceil(deadline);
        self.timers.borrow_mut().insert(tick, waker)
    }

    /// Arms a timer for a waiter that polls it (`time::Sleep`): `None` if
    /// `deadline` has passed by the loop's clock, so there is nothing to
    /// wait for. Reads no clock: a deadline that passes after the last turn
    /// is armed and fires at the first turn after its tick, as it would
    /// have had it been armed a moment earlier.
    #[inline]
    pub(crate) fn arm_timer(&self, deadline: Instant, waker: &Waker) -> Option<TimerKey> {
        if deadline <= self.turn_time.get() {
            return None;
        }
        let tick = self.ticks.ceil(deadline);
        let waker = match self.spare_waker.take() {
            Some(spare) if spare.will_wake(waker) => spare,
            _ => waker.clone(),
        };
        Some(self.timers.borrow_mut().insert(tick, waker))
    }

    /// Cancels a timer; `false` if it already fired (or was cancelled).
    /// Its waker becomes the spare (see `spare_waker`), dropped (if it
    /// replaces one) with no borrow of the wheel held.
    #[inline]
    pub(crate) fn cancel_timer(&self, key: TimerKey) -> bool {
        let cancelled = self.timers.borrow_mut().cancel(key);
        match cancelled {
            Some(waker) => {
                drop(self.spare_waker.replace(Some(waker)));
                true
            }
            None => false,
        }
    }

    /// Replaces the waker of a pending timer; `false` if it already fired.
    pub(crate) fn set_timer_waker(&self, key: TimerKey, waker: &Waker) -> bool {
        match self.timers.borrow_mut().get_mut(key) {
            Some(slot) => {
                if !slot.will_wake(waker) {
                    slot.clone_from(waker);
                }
                true
            }
            None => false,
        }
    }

    /// Time from `now` until the next timer may be due, `None` if there is
    /// no timer.
    fn next_timer_in(&self, now: Instant) -> Option<Duration> {
        let next = self.timers.borrow().next_deadline()?;
        let due = self.ticks.instant(next);
        Some(due.saturating_duration_since(now))
    }

    // ----- remote wakes ----------------------------------------------------

    /// Takes the mailbox, if a notification came: green and task wakes to
    /// the `woken` list, and closures, if any came, from there to
    /// `to_inject`.
    fn take_mailbox(&self, to_inject: &mut Vec<Arc<dyn Inject>>) {
        if !self.remote.resume() {
            return;
        }
        let mut woken = self.woken.borrow_mut();
        if !self.remote.drain_into(&mut woken) {
            return;
        }
        let mut i = 0;
        while i < woken.len() {
            if matches!(woken[i], Wake::Run(_)) {
                if let Wake::Run(item) = woken.remove(i) {
                    to_inject.push(item);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Moves the green and task wakes that came from other threads to
    /// `out` (owner side; the context routes them).
    #[inline]
    pub(crate) fn take_woken(&self, out: &mut Vec<Wake>) {
        let mut woken = self.woken.borrow_mut();
        if !woken.is_empty() {
            std::mem::swap(&mut *woken, out);
        }
    }

    /// Keeps a task's wake until a context runs its executor.
    pub(crate) fn keep_woken(&self, wake: Wake) {
        self.woken.borrow_mut().push(wake);
    }

    /// Lists a new executor of this thread.
    pub(crate) fn add_executor(&self, id: ExecutorId) {
        self.executors.borrow_mut().push(id);
    }

    /// Whether the executor `id` lives on this thread.
    pub(crate) fn has_executor(&self, id: ExecutorId) -> bool {
        self.executors.borrow().contains(&id)
    }

    /// Unlists an executor that shut down, dropping the wakes kept for it;
    /// later ones are dropped when routed.
    pub(crate) fn remove_executor(&self, id: ExecutorId) {
        self.executors.borrow_mut().retain(|&e| e != id);
        let kept = {
            let mut woken = self.woken.borrow_mut();
            let (kept, others) = std::mem::take(&mut *woken)
                .into_iter()
                .partition(|w| matches!(w, Wake::Task(e, _) if *e == id));
            *woken = others;
            kept
        };
        for wake in kept {
            drop_wake(wake);
        }
    }

    // ----- the loop --------------------------------------------------------

    /// Waits for events for at most `timeout` (`None`: until something
    /// happens; the next timer bounds it either way), then wakes every
    /// waiter that became ready, fires due timers and runs remote
    /// injections. Returns how many wakers and injections ran.
    ///
    /// A turn reads the clock once: after its wait, for the timers and
    /// [`turn_time`](Reactor::turn_time); or, with timers armed, before it,
    /// to bound its wait, and again after only if it may have blocked.
    ///
    /// The thread sleeps only if no other thread notified it since its
    /// last turn (see `remote.rs`), and with no I/O registered it sleeps on
    /// a futex (module docs).
    ///
    /// # Errors
    ///
    /// Whatever `epoll_wait` reports, except `EINTR` (treated as no event).
    pub fn turn(&self, timeout: Option<Duration>) -> stdio::Result<usize> {
        drop(self.spare_waker.take());
        let before = (!self.timers.borrow().is_empty()).then(Instant::now);
        let timeout = match (timeout, before.and_then(|now| self.next_timer_in(now))) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut to_wake = std::mem::take(&mut *self.to_wake.borrow_mut());
        let mut to_inject = std::mem::take(&mut *self.to_inject.borrow_mut());
        let tick = self.turns.get().wrapping_add(1);
        self.turns.set(tick);

        let polled = self.wait(timeout, tick, &mut to_wake);
        self.take_mailbox(&mut to_inject);

        let now = match before {
            Some(now) if timeout == Some(Duration::ZERO) => now,
            _ => Instant::now(),
        };
        self.turn_time.set(now);
        let tick = self.ticks.floor(now);
        self.timers.borrow_mut().advance(tick, &mut |_, waker| to_wake.push(waker));

        let ran = to_wake.len() + to_inject.len();
        if ran != 0 {
            for waker in to_wake.drain(..) {
                waker.wake();
            }
            for item in to_inject.drain(..) {
                item.run();
            }
        }
        *self.to_wake.borrow_mut() = to_wake;
        *self.to_inject.borrow_mut() = to_inject;
        polled.map(|()| ran)
    }

    /// The waiting part of a turn: sleeps for at most `timeout` unless
    /// notified (`Some(ZERO)`: never), on the futex if no I/O is
    /// registered, else in `epoll_wait`, whose readiness it records (dated
    /// `tick`) and whose wakers it adds to `to_wake`.
    fn wait(
        &self,
        timeout: Option<Duration>,
        tick: u64,
        to_wake: &mut Vec<Waker>,
    ) -> stdio::Result<()> {
        let sleeps = timeout != Some(Duration::ZERO);
        if self.io.borrow().len() == 0 && self.futex.get() {
            if sleeps && self.remote.sleep(Sleep::Futex) && self.remote.wait(timeout).is_err() {
                self.futex.set(false);
            }
            return Ok(());
        }
        let timeout = match sleeps && self.remote.sleep(Sleep::Epoll) {
            true => timeout,
            false => Some(Duration::ZERO),
        };
        let mut events = self.events.borrow_mut();
        match wait::epoll(&mut self.poll.borrow_mut(), &mut events, Wait::bounded_by(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == stdio::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut io = self.io.borrow_mut();
        for event in events.iter() {
            // The eventfd (`WAKE_TOKEN`) only ends the sleep: the state
            // word says whether a notification came (`take_mailbox`).
            if event.token() == WAKE_TOKEN {
                continue;
            }
            if let Some(state) = io.get_mut(event.token().0) {
                state.on_event(event, tick, to_wake);
            }
        }
        Ok(())
    }
}

impl Drop for Reactor {
    /// Closes the mailbox: wakes for this thread are dropped from now on,
    /// and so are, counted, the ones no context routed yet.
    fn drop(&mut self) {
        self.remote.close();
        for wake in self.woken.get_mut().drain(..) {
            drop_wake(wake);
        }
    }
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("id", &self.id)
            .field("io", &self.io.borrow().len())
            .field("timers", &self.timers.borrow().len())
            .field("timer_tick", &self.timers.borrow().elapsed())
            .field("turns", &self.turns.get())
            .finish_non_exhaustive()
    }
}
