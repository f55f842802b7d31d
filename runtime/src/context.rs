//! The per-thread context, and the one loop that drives both models.
//!
//! A [`Context`] is what the two schedulers of an OS thread share while a
//! runtime runs there: the thread's reactor, the green scheduler (its run
//! queue, its green threads, the record of the one running) and the task
//! executor (its run queue and live tasks, the id of the task being
//! polled, for panic reports). One thread-local, `CURRENT`, reaches it
//! (and keeps its executor's address beside it); `green::*`,
//! `task::spawn*` and the wakers of both models find their queue through
//! it.
//!
//! ```text
//!  Context::drive(main):
//!    loop:
//!      main is a woken future?   -> poll it; Ready -> return
//!      resume up to BUDGET green threads   (main thread done -> return)
//!      poll up to BUDGET tasks
//!      (every POLL_EVERY resumes or polls: reactor.turn(zero timeout))
//!      nothing runnable?         -> reactor.turn(until the next event)
//! ```
//!
//! Green threads and tasks thus take turns in batches of at most `BUDGET`
//! each: a green thread that yields in a loop delays tasks by one batch at
//! most, and the reverse. `epoll_wait` blocks only when both queues are
//! empty.
//!
//! Wakes from other threads arrive in the reactor's mailbox
//! (`reactor/remote.rs`, which states the rule for wakes whose target is
//! gone); after each reactor turn, and as a loop starts, the context
//! routes each to the run queue it names: its own scheduler's or
//! executor's, or those of an outer context on this thread (contexts
//! nest, below). A wake whose scheduler or executor no longer lives is
//! dropped there; a task of an executor that lives but runs in no loop
//! now stays with the reactor for the next context that runs it.
//!
//! A wake on this thread of a green thread or task of this context is a push
//! on its run queue: a green thread that `block_on`s a task's handle, or a
//! task that awaits a green thread, costs no syscall.
//!
//! Contexts nest: `task::Runtime::block_on` inside a green thread (or
//! `green::run` inside a task of `block_on`) runs a new context until it
//! returns; wakes of the outer context's threads and tasks meanwhile take
//! the remote path, and the inner context routes them to the outer's run
//! queues.
//!
//! # What stays outside the context
//!
//! Two per-thread records keep thread-locals of their own. The reactor
//! (`reactor/mod.rs`): plain `block_on` on a thread with no runtime needs
//! it, and every context of the thread shares it, as do the executors that
//! outlive a loop (`task::Runtime`). And the record of the running green
//! thread that the `SIGSEGV` handler reads to name an overflow
//! (`green/overflow.rs`): the handler runs at any instruction of this
//! thread, so what it reads must be valid at every one of them. A
//! const-initialised thread-local `Cell` pointing at a record that outlives
//! the resume, written with a signal fence around it, is; a field of the
//! context would be
//! reached through `CURRENT` and would then be only as valid as the
//! context's own lifetime rules (set and cleared by `Entered`, torn down
//! with green threads still running destructors on their stacks), which
//! the handler would have to re-argue. Keeping it separate costs no
//! thread-local lookup per resume: the scheduler keeps the thread-local's
//! address (`overflow::Tracker`).
//!
//! # Unsafe invariants
//!
//! `CURRENT` points at the context whose loop runs on this thread, and at
//! that context's executor; both are null outside any. [`Entered`] sets
//! them to a context on the frame of [`Context::run_green`],
//! [`Context::block_on`] or [`Context::enter_executor`], and restores the
//! outer values before that frame ends, also when unwinding, after tearing down
//! the context's green threads. Green threads and task polls run only
//! inside `drive`, within that span, so every `&Context` obtained through
//! [`Context::with`] is valid for the call, and so is every `&Executor`
//! obtained through [`Context::with_executor`], as a context borrows its
//! executor for its whole life. A context's `outer` is the
//! context `CURRENT` pointed at when it was entered: it outlives the inner
//! one (it is restored only when the inner one ends), so the chain of
//! `outer`s from the running context holds live contexts only.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;
use std::{fmt, io, panic, ptr};

use crate::block_on::ThreadNotify;
use crate::green::Config;
use crate::green::scheduler::{NONE, Resumed, Scheduler, Switch};
use crate::monitor::{self, Watch};
use crate::reactor::{Reactor, Wake, drop_wake};
use crate::task::Executor;

/// Green resumes and task polls between two non-blocking reactor turns, so
/// that busy loops cannot starve I/O and timers.
const POLL_EVERY: u32 = 61;

/// Most green resumes, and most task polls, in one round of the loop.
const BUDGET: usize = 128;

/// The thread-local that reaches this thread's running context.
///
/// It also keeps that context's executor, a copy of `context.executor`
/// written with it: a task's spawn, wake and release then reach the
/// executor with one load from the thread-local, as they would from an
/// executor's own thread-local, where through the context they would need
/// two (the context, then its pointer to the executor).
struct Current {
    context: Cell<*const Context<'static>>,
    executor: Cell<*const Executor>,
}

impl Current {
    #[inline(always)]
    fn context(&self) -> *const Context<'static> {
        self.context.get()
    }

    #[inline(always)]
    fn executor(&self) -> *const Executor {
        self.executor.get()
    }
}

thread_local! {
    static CURRENT: Current = const {
        Current { context: Cell::new(ptr::null()), executor: Cell::new(ptr::null()) }
    };
}

/// What the schedulers of one OS thread share while a runtime runs on it.
pub(crate) struct Context<'a> {
    reactor: Rc<Reactor>,
    green: Scheduler,
    executor: &'a Executor,
    /// A green entry point (`green::run`, `Runtime::run`) runs this context
    /// or an outer one: `green::run` here is an error.
    green_entered: bool,
    /// `task::Runtime::block_on` runs this context or an outer one: another
    /// `block_on` here panics.
    task_entered: bool,
    /// Resumes and polls left before the reactor's next zero-timeout turn.
    ticks_left: Cell<u32>,
    /// The context that was running on this thread when this one was
    /// entered (module invariant), null if none.
    outer: Cell<*const Context<'static>>,
    /// Reused buffer for routing the reactor's woken list.
    woken: std::cell::RefCell<Vec<Wake>>,
}

/// The main work of a loop: when the loop ends.
trait Main {
    /// The main green thread's key, `NONE` if the main work is a future.
    fn green_key(&self) -> usize;
    /// Polls the main future if it was woken; `true` once it finished.
    fn poll(&mut self) -> bool;
    /// Whether the main future was woken and waits for a poll.
    fn is_woken(&self) -> bool;
}

/// The main work is a green thread: the loop ends when it finishes.
struct GreenMain(usize);

impl Main for GreenMain {
    fn green_key(&self) -> usize {
        self.0
    }

    #[inline]
    fn poll(&mut self) -> bool {
        false
    }

    #[inline]
    fn is_woken(&self) -> bool {
        false
    }
}

/// The main work is a future polled on the loop's own stack.
struct FutureMain<'a, F: Future> {
    future: std::pin::Pin<&'a mut F>,
    notify: &'a ThreadNotify,
    cx: TaskContext<'a>,
    output: Option<F::Output>,
}

impl<F: Future> Main for FutureMain<'_, F> {
    fn green_key(&self) -> usize {
        NONE
    }

    #[inline]
    fn poll(&mut self) -> bool {
        if !self.notify.take() {
            return false;
        }
        match self.future.as_mut().poll(&mut self.cx) {
            Poll::Ready(output) => {
                self.output = Some(output);
                true
            }
            Poll::Pending => false,
        }
    }

    #[inline]
    fn is_woken(&self) -> bool {
        self.notify.is_set()
    }
}

impl<'a> Context<'a> {
    /// Runs `f` with this thread's running context, if any.
    ///
    /// Always inlined: a yield or park reached through it switches stacks,
    /// and the switch clobbers every callee-saved register. Left out of line
    /// (its closures make it large), it would save and restore them all on
    /// each switch; inlined, the caller's frame saves them once.
    #[inline(always)]
    pub(crate) fn with<R>(f: impl FnOnce(Option<&Context<'_>>) -> R) -> R {
        let ptr = CURRENT.with(Current::context);
        // SAFETY: non-null only while `Entered` keeps the context alive on
        // its frame (module invariant); `as_ref` maps null to `None`.
        f(unsafe { ptr.as_ref() })
    }

    /// Makes the running green thread of this thread's running context
    /// `switch` away; `false` if none runs. Written without closures, which
    /// the compiler may keep out of line: the switch then stays in the
    /// caller's frame (see `with`).
    #[inline(always)]
    pub(crate) fn switch_green(switch: Switch) -> bool {
        let ptr = CURRENT.with(Current::context);
        // SAFETY: as in `with`; the reference ends with this call.
        match unsafe { ptr.as_ref() } {
            Some(context) => context.green.switch(switch),
            None => false,
        }
    }

    /// Runs `f` with the executor of this thread's running context, if
    /// any: the same as `with` then [`executor`](Context::executor), one
    /// load shorter (see `Current`).
    #[inline]
    pub(crate) fn with_executor<R>(f: impl FnOnce(Option<&Executor>) -> R) -> R {
        let ptr = CURRENT.with(Current::executor);
        // SAFETY: non-null only while `Entered` keeps the context, and so
        // the executor it borrows, alive (module invariant).
        f(unsafe { ptr.as_ref() })
    }

    /// The green scheduler.
    #[inline]
    pub(crate) fn green(&self) -> &Scheduler {
        &self.green
    }

    /// The task executor.
    #[inline]
    pub(crate) fn executor(&self) -> &Executor {
        self.executor
    }

    /// The thread's reactor.
    #[inline]
    pub(crate) fn reactor(&self) -> &Reactor {
        &self.reactor
    }

    /// Whether a green entry point runs this context or an outer one.
    pub(crate) fn green_entered(&self) -> bool {
        self.green_entered
    }

    /// The id of the task being polled, if any (the executor records it).
    pub(crate) fn running_task(&self) -> Option<u64> {
        self.executor.running_task()
    }

    /// The flags of the context running on this thread, if any:
    /// (`green_entered`, `task_entered`).
    fn outer_flags() -> (bool, bool) {
        Context::with(|c| c.map_or((false, false), |c| (c.green_entered, c.task_entered)))
    }

    fn new(config: &Config, executor: &'a Executor, flags: (bool, bool)) -> Context<'a> {
        crate::panic::install_hook();
        let reactor = executor.reactor().clone();
        Context {
            green: Scheduler::new(config, &reactor),
            reactor,
            executor,
            green_entered: flags.0,
            task_entered: flags.1,
            ticks_left: Cell::new(POLL_EVERY),
            outer: Cell::new(ptr::null()),
            woken: std::cell::RefCell::new(Vec::new()),
        }
    }

    /// Runs `main` as the main green thread of a new context and drives
    /// it, other green threads and tasks until `main` returns; then unwinds
    /// the green threads still alive and cancels the tasks.
    pub(crate) fn run_green<F: FnOnce() -> R, R>(config: &Config, main: F) -> io::Result<R> {
        let (green_entered, task_entered) = Context::outer_flags();
        if green_entered {
            return Err(io::Error::other(
                "green::run called inside a green runtime; use green::spawn instead",
            ));
        }
        let executor = Executor::new()?;
        let context = Context::new(config, &executor, (true, task_entered));
        let entered = Entered::new(&context);

        let mut output = None;
        let slot = &mut output;
        let body = move || *slot = Some(main());
        // SAFETY: `body` borrows `output` and `main`'s captures, which live
        // on this frame. `Entered` tears every coroutine down before this
        // frame ends, on return and on unwind; coroutines are never leaked.
        let thread = unsafe { context.green.spawn_main(body)? };
        context.drive(&mut GreenMain(thread.key()))?;
        drop(entered);
        match thread.take() {
            Some(Ok(())) => Ok(output.expect("main green thread finished without output")),
            Some(Err(payload)) => panic::resume_unwind(payload),
            None => unreachable!("main green thread finished without result"),
        }
    }

    /// Runs `future` to completion on a new context whose tasks are
    /// `executor`'s, running them and green threads meanwhile; then unwinds
    /// the green threads still alive (the tasks stay with `executor`).
    ///
    /// # Panics
    ///
    /// If `task::Runtime::block_on` already runs on this thread, or if
    /// `epoll_wait` fails.
    pub(crate) fn block_on<F: Future>(executor: &'a Executor, future: F) -> F::Output {
        let (green_entered, task_entered) = Context::outer_flags();
        assert!(
            !task_entered,
            "task::Runtime::block_on called while an executor is already running on this thread"
        );
        let context = Context::new(&Config::default(), executor, (green_entered, true));
        let _entered = Entered::new(&context);
        let notify = ThreadNotify::new(context.reactor.remote().clone(), true);
        let waker = notify.waker();
        let mut main = FutureMain {
            future: pin!(future),
            notify: &notify,
            cx: TaskContext::from_waker(&waker),
            output: None,
        };
        if let Err(e) = context.drive(&mut main) {
            panic!("greenloop executor: epoll_wait failed: {e}");
        }
        main.output.take().expect("the main future finished without output")
    }

    /// Runs `f` with a context whose executor is `executor` and no loop:
    /// for its shutdown, where dropped futures may spawn or wake tasks.
    pub(crate) fn enter_executor<R>(executor: &'a Executor, f: impl FnOnce() -> R) -> R {
        let context = Context::new(&Config::default(), executor, Context::outer_flags());
        let _entered = Entered::new(&context);
        f()
    }

    /// The loop (see the module docs); returns when `main` finished.
    ///
    /// `main` is a trait object so that the loop is compiled once, with
    /// `Scheduler::resume` inlined at its one call site; `main` is called
    /// once per round, not per resume.
    ///
    /// With the blocked-loop monitor on, the loop registers with it and runs
    /// as `drive_watched::<LoopRecord>`; off, as `drive_watched::<()>`,
    /// whose hooks compile to nothing.
    fn drive(&self, main: &mut dyn Main) -> io::Result<()> {
        let _listed = crate::dump::register(self.reactor.remote());
        match monitor::register() {
            Some(record) => self.drive_watched(main, &*record),
            None => self.drive_watched(main, &()),
        }
    }

    /// The loop, publishing what it runs to `watch` (see `monitor`).
    fn drive_watched<W: Watch>(&self, main: &mut dyn Main, watch: &W) -> io::Result<()> {
        let main_key = main.green_key();
        let executor = self.executor;
        self.route_woken();
        loop {
            if W::ON && main.is_woken() {
                watch.main();
            }
            if main.poll() {
                return Ok(());
            }
            if !self.green.is_idle() && self.run_green_batch(main_key, watch)? {
                return Ok(());
            }
            for _ in 0..BUDGET {
                let Some(task) = executor.pop() else { break };
                if self.tick() {
                    self.turn(Some(Duration::ZERO))?;
                }
                if W::ON {
                    let (id, site) = executor.identify(&task);
                    watch.task(id, site);
                }
                executor.run(task);
            }
            if self.green.is_idle() && executor.is_idle() && !main.is_woken() {
                watch.idle();
                self.turn(None)?;
                watch.busy();
            }
        }
    }

    /// Resumes up to `BUDGET` green threads; `true` once the thread at
    /// `main_key` finished. Out of line, so that the switch path is
    /// optimised on its own, as a loop of its own.
    #[inline(never)]
    fn run_green_batch<W: Watch>(&self, main_key: usize, watch: &W) -> io::Result<bool> {
        let mut green = &self.green;
        for _ in 0..BUDGET {
            let Some(thread) = green.pop() else { break };
            if self.tick() {
                self.turn(Some(Duration::ZERO))?;
            }
            if W::ON {
                green.identify(thread, |id, name, site| watch.green(id, name, site));
            }
            match green.resume(thread, main_key) {
                // The same scheduler, reached without a reload from this
                // frame (see `Resumed::Suspended`).
                Resumed::Suspended(scheduler) => {
                    debug_assert!(ptr::eq(scheduler, &self.green));
                    green = scheduler;
                }
                Resumed::Finished { main: true } => return Ok(true),
                Resumed::Finished { main: false } => {}
            }
        }
        Ok(false)
    }

    /// The cross-thread handle of this context's reactor.
    pub(crate) fn remote(&self) -> &std::sync::Arc<crate::reactor::Remote> {
        self.reactor.remote()
    }

    /// An entry per live green thread and task of this context and of the
    /// contexts it nests in: the one loop of this thread, as a dump lists it.
    pub(crate) fn snapshot(&self) -> Vec<crate::dump::Entry> {
        let mut out = Vec::new();
        let mut context = Some(self);
        while let Some(c) = context {
            c.green.snapshot(&mut out);
            c.executor.snapshot(&mut out);
            // SAFETY: an outer context outlives this one (module invariant).
            context = unsafe { c.outer.get().as_ref() };
        }
        out
    }

    /// Counts one resume or poll; `true` every `POLL_EVERY`, when the
    /// reactor is due a turn without blocking.
    #[inline(always)]
    fn tick(&self) -> bool {
        let left = self.ticks_left.get() - 1;
        self.ticks_left.set(left);
        if left != 0 {
            return false;
        }
        self.ticks_left.set(POLL_EVERY);
        true
    }

    /// Turns the reactor, then queues what other threads woke meanwhile.
    fn turn(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.reactor.turn(timeout)?;
        self.route_woken();
        Ok(())
    }

    /// Moves the green threads and tasks that other threads woke to the run
    /// queues they name, in this context or an outer one (module docs).
    #[inline]
    fn route_woken(&self) {
        let mut woken = self.woken.borrow_mut();
        self.reactor.take_woken(&mut woken);
        for wake in woken.drain(..) {
            self.route(wake);
        }
    }

    /// Queues one wake from another thread (see `route_woken`).
    fn route(&self, wake: Wake) {
        match wake {
            Wake::Green(id, signal) => match self.find(|c| c.green.id() == id) {
                Some(c) => signal.apply(&c.green),
                None => drop_wake(Wake::Green(id, signal)),
            },
            Wake::Task(id, task) => match self.find(|c| c.executor.id() == id) {
                Some(c) => c.executor.push(task),
                None if self.reactor.has_executor(id) => {
                    self.reactor.keep_woken(Wake::Task(id, task));
                }
                None => drop_wake(Wake::Task(id, task)),
            },
            Wake::Run(item) => item.run(),
        }
    }

    /// The first context from this one outwards that `pred` accepts.
    fn find(&self, pred: impl Fn(&Context<'_>) -> bool) -> Option<&Context<'_>> {
        let mut context: &Context<'_> = self;
        loop {
            if pred(context) {
                return Some(context);
            }
            // SAFETY: an outer context outlives this one (module invariant).
            context = unsafe { context.outer.get().as_ref() }?;
        }
    }
}

/// Makes a context this thread's for a scope (module invariant); on drop,
/// also when unwinding, tears its green threads down and restores the
/// outer context.
struct Entered<'a, 'e> {
    context: &'a Context<'e>,
    outer: *const Context<'static>,
    outer_executor: *const Executor,
}

impl<'a, 'e> Entered<'a, 'e> {
    fn new(context: &'a Context<'e>) -> Entered<'a, 'e> {
        // The lifetime is erased in `CURRENT`; `Entered` clears it before
        // `context` ends (module invariant).
        let erased = ptr::from_ref(context).cast::<Context<'static>>();
        let (outer, outer_executor) = CURRENT.with(|current| {
            (current.context.replace(erased), current.executor.replace(context.executor))
        });
        context.outer.set(outer);
        Entered { context, outer, outer_executor }
    }
}

impl Drop for Entered<'_, '_> {
    fn drop(&mut self) {
        self.context.green.teardown();
        CURRENT.with(|current| {
            current.context.set(self.outer);
            current.executor.set(self.outer_executor);
        });
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("green", &self.green)
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Context;

    fn running_task() -> Option<u64> {
        Context::with(|c| c.and_then(Context::running_task))
    }

    /// The panic hook names the task being polled: the context records its
    /// id during the poll only.
    #[test]
    fn the_polled_task_is_recorded_during_its_poll_only() {
        crate::run(|| {
            let task = crate::task::spawn_local(async { running_task() });
            let id = task.id();
            assert_eq!(crate::block_on(task).unwrap(), Some(id));
            assert_eq!(running_task(), None, "a green thread is not a task");
        });
    }
}
