//! The executor: a FIFO run queue of tasks on one OS thread and a registry
//! of its live tasks. It is the task half of the thread's
//! [`Context`](crate::context), whose loop pops tasks from it and runs
//! them, beside green threads.
//!
//! A waker on this thread, while the executor is its context's, pushes onto
//! the local queue; anywhere else it pushes the task onto its reactor's
//! mailbox (`reactor/remote.rs`), from which the context running this
//! executor moves it to the local queue.
//!
//! # Unsafe invariants
//!
//! 1. An `&Executor` is reached through the thread's context
//!    (`Context::with_executor`), which borrows it for as long as it is
//!    current.
//! 2. `spare_refs` counts strong counts of `shared` that the executor owns
//!    without an `Arc` value: each was an `Arc` turned into a raw pointer by
//!    `keep_task_ref` (when a task's cell was freed on this thread while
//!    this executor was current), and each is either turned back into an
//!    `Arc` for a new task by `task_ref` or released when the executor is
//!    dropped, after its shutdown freed what it could.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::panic::Location;
use std::rc::Rc;
use std::sync::Arc;
use std::{fmt, io};

use super::JoinHandle;
use super::raw::{Polling, RawTask, Schedule};
use crate::context::Context;
use crate::dump::{self, Entry, Model, Noted, State};
use crate::id::ExecutorId;
use crate::reactor::{MailboxRef, Reactor, Wake};
use crate::slab::Slab;

/// The part of an executor that wakers on any thread reach.
pub(crate) struct Shared {
    id: ExecutorId,
    /// The reactor's mailbox, for wakes from other threads.
    mailbox: MailboxRef,
}

impl Schedule for Shared {
    fn release(self: Arc<Self>) {
        Executor::with(|e| match e {
            Some(e) if e.is_owner_of(&self) => e.keep_task_ref(self),
            _ => drop(self),
        });
    }

    fn schedule(&self, task: RawTask) {
        let task = Executor::with(|e| match e {
            Some(e) if e.is_owner_of(self) => {
                e.queue.borrow_mut().push_back(task);
                None
            }
            _ => Some(task),
        });
        if let Some(task) = task {
            self.mailbox.push(Wake::Task(self.id, task));
        }
    }
}

/// One OS thread's stackless executor.
pub(crate) struct Executor {
    shared: Arc<Shared>,
    reactor: Rc<Reactor>,
    queue: RefCell<VecDeque<RawTask>>,
    registry: RefCell<Slab<RawTask>>,
    /// The task being polled, if any.
    polling: Polling,
    /// Strong counts of `shared` that freed tasks gave back on this thread
    /// (module invariant 2), for the next spawns: a task's reference to
    /// the executor then costs no atomic operation in the steady state.
    spare_refs: Cell<usize>,
}

impl Executor {
    pub(crate) fn new() -> io::Result<Executor> {
        let reactor = Reactor::try_current()?;
        crate::panic::install_hook();
        let shared =
            Arc::new(Shared { id: ExecutorId::next(), mailbox: reactor.remote().mailbox() });
        reactor.add_executor(shared.id);
        Ok(Executor {
            shared,
            reactor,
            queue: RefCell::new(VecDeque::new()),
            registry: RefCell::new(Slab::new()),
            polling: Polling::default(),
            spare_refs: Cell::new(0),
        })
    }

    /// Runs `f` with the executor of this thread's running context, if any.
    #[inline]
    pub(crate) fn with<R>(f: impl FnOnce(Option<&Executor>) -> R) -> R {
        Context::with_executor(f)
    }

    /// Whether `shared` is this executor's own part. An address check: one
    /// `Shared` per executor, and two live ones never share an address,
    /// so it says what comparing their ids would, one load sooner.
    #[inline]
    fn is_owner_of(&self, shared: &Shared) -> bool {
        std::ptr::eq(Arc::as_ptr(&self.shared), shared)
    }

    /// The reactor of the thread that created the executor.
    pub(crate) fn reactor(&self) -> &Rc<Reactor> {
        &self.reactor
    }

    /// Number of tasks spawned and not yet completed.
    pub(crate) fn live_tasks(&self) -> usize {
        self.registry.borrow().len()
    }

    /// Spawns `future` on this executor; `site` is where the user spawned it.
    pub(crate) fn spawn<F>(
        &self,
        future: F,
        site: &'static Location<'static>,
    ) -> JoinHandle<F::Output>
    where
        F: Future + 'static,
        F::Output: 'static,
    {
        crate::id::id_source!(static TASK_IDS);
        let id = TASK_IDS.next();
        let (handle, queued, registered) = RawTask::spawned(future, self.task_ref(), id, site);
        let key = self.registry.borrow_mut().insert(registered);
        queued.set_key(key);
        self.queue.borrow_mut().push_back(queued);
        JoinHandle::new(handle)
    }

    /// A strong count of `shared` for a new task: a spare one if any.
    fn task_ref(&self) -> Arc<Shared> {
        let spare = self.spare_refs.get();
        if spare == 0 {
            return self.shared.clone();
        }
        self.spare_refs.set(spare - 1);
        // SAFETY: a count kept by `keep_task_ref`, whose `into_raw` returned
        // this same pointer; we hand it on (module invariant 2).
        unsafe { Arc::from_raw(Arc::as_ptr(&self.shared)) }
    }

    /// Keeps the count a freed task gave back (see `Shared::release`).
    fn keep_task_ref(&self, shared: Arc<Shared>) {
        debug_assert!(Arc::ptr_eq(&shared, &self.shared));
        let _ = Arc::into_raw(shared);
        self.spare_refs.set(self.spare_refs.get() + 1);
    }

    /// A task's id and spawn site: for the monitor, which records what runs.
    pub(crate) fn identify(&self, task: &RawTask) -> (u64, &'static Location<'static>) {
        (task.id(), task.site())
    }

    /// Records the polled task's wait, as `noted` makes it; `false`,
    /// without calling `noted`, outside a task's poll.
    #[inline]
    pub(crate) fn note_wait(&self, noted: impl FnOnce() -> Noted) -> bool {
        self.polling.note(noted)
    }

    /// The id of the task being polled, if any: for panic reports.
    pub(crate) fn running_task(&self) -> Option<u64> {
        self.polling.id()
    }

    /// An entry per live task, for a dump.
    pub(crate) fn snapshot(&self, out: &mut Vec<Entry>) {
        let queued: std::collections::HashSet<usize> =
            self.queue.borrow().iter().map(RawTask::key).collect();
        let registry = self.registry.borrow();
        for key in 0..registry.capacity() {
            let Some(task) = registry.get(key) else { continue };
            let state = match key {
                _ if self.polling.is(task) => State::Running,
                _ if queued.contains(&key) => State::Runnable,
                _ => State::Parked,
            };
            // SAFETY: `&self` is reached on the executor's thread (module
            // invariant 1), and the registry holds only its own tasks.
            let noted = unsafe { task.noted() };
            out.push(dump::entry(Model::Task, (task.id(), None, task.site()), state, noted, None));
        }
    }

    /// The next runnable task.
    #[inline]
    pub(crate) fn pop(&self) -> Option<RawTask> {
        self.queue.borrow_mut().pop_front()
    }

    /// Polls `task` once (see `RawTask::run`).
    #[inline]
    pub(crate) fn run(&self, task: RawTask) {
        // The task's recorded wait is not cleared here (a store per poll):
        // a task parked on a primitive that records none shows its last one.
        task.run(&self.polling, |task| self.registry.borrow_mut().remove(task.key()));
    }

    /// Whether no task is runnable.
    #[inline]
    pub(crate) fn is_idle(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    /// This executor's process-unique id.
    pub(crate) fn id(&self) -> ExecutorId {
        self.shared.id
    }

    /// Queues a task woken on another thread (the context routes it here).
    pub(crate) fn push(&self, task: RawTask) {
        self.queue.borrow_mut().push_back(task);
    }

    /// Cancels every live task, dropping its future on this thread, with
    /// this executor current (a dropped future may spawn or wake tasks).
    fn shutdown(&self) {
        Context::enter_executor(self, || {
            self.cancel_all();
            self.close_remote();
        });
    }

    /// Cancels every live task (`shutdown`, with this executor current).
    fn cancel_all(&self) {
        loop {
            let tasks: Vec<RawTask> = {
                let mut registry = self.registry.borrow_mut();
                (0..registry.capacity()).filter_map(|k| registry.remove(k)).collect()
            };
            if tasks.is_empty() {
                break;
            }
            for task in tasks {
                task.shutdown();
            }
        }
    }

    /// Drops the queued tasks and unlists the executor from its reactor:
    /// wakes from other threads are dropped from now on (`remote.rs`).
    fn close_remote(&self) {
        self.reactor.remove_executor(self.shared.id);
        let queued = std::mem::take(&mut *self.queue.borrow_mut());
        drop(queued);
    }
}

impl Drop for Executor {
    fn drop(&mut self) {
        self.shutdown();
        // Tasks freed from now on release their counts themselves.
        for _ in 0..self.spare_refs.replace(0) {
            // SAFETY: a count kept by `keep_task_ref` (module invariant 2);
            // `self.shared` holds another, so this is never the last.
            unsafe { Arc::decrement_strong_count(Arc::as_ptr(&self.shared)) };
        }
    }
}

impl fmt::Debug for Executor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Executor")
            .field("id", &self.shared.id)
            .field("live_tasks", &self.registry.borrow().len())
            .field("runnable", &self.queue.borrow().len())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").field("id", &self.id).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::Executor;
    use crate::context::Context;
    use crate::dump::{State, Wait};
    use std::sync::Arc;

    /// A snapshot lists each task with the site that spawned it and what it
    /// waits on, both kept in its cell, and the task taking it as running.
    #[test]
    fn a_snapshot_names_each_task_by_site_and_wait() {
        let executor = Executor::new().unwrap();
        Context::block_on(&executor, async {
            let (tx, mut rx) = crate::sync::mpsc::channel::<()>(1);
            let line = line!() + 1;
            let parked = super::super::spawn(async move { rx.recv().await });
            let snapshot = super::super::spawn(async { Context::with(|c| c.unwrap().snapshot()) });
            let snapshot_id = snapshot.id();
            let entries = snapshot.await.unwrap();
            let parked_entry = entries.iter().find(|e| e.id == parked.id()).unwrap();
            assert_eq!(parked_entry.state, State::Parked);
            assert_eq!(parked_entry.wait, Some(Wait::Channel));
            assert!(parked_entry.waiting_for.is_some());
            assert_eq!((parked_entry.site.file(), parked_entry.site.line()), (file!(), line));
            let running = entries.iter().find(|e| e.id == snapshot_id).unwrap();
            assert_eq!(running.state, State::Running);
            assert_eq!(running.wait, None);
            drop(tx);
            assert_eq!(parked.await.ok(), Some(None));
        });
    }

    /// Counts of the executor's `Shared` given back by freed tasks are kept
    /// for the next spawns, and all released when the executor is dropped,
    /// also for tasks freed after it (their handles outlive it).
    #[test]
    fn task_references_to_the_executor_are_reused_and_released() {
        let executor = Executor::new().unwrap();
        let shared = Arc::downgrade(&executor.shared);
        crate::context::Context::block_on(&executor, async {
            for i in 0..100u32 {
                assert_eq!(super::super::spawn(async move { i }).await.ok(), Some(i));
            }
        });
        // Each task was freed before the next spawn: one count went round.
        assert_eq!(executor.spare_refs.get(), 1);
        assert_eq!(shared.strong_count(), 2);
        let late = executor.spawn(std::future::pending::<()>(), std::panic::Location::caller());
        assert_eq!(executor.spare_refs.get(), 0);
        drop(executor);
        assert_eq!(shared.strong_count(), 1, "only the late task's count is left");
        drop(late);
        assert!(shared.upgrade().is_none(), "the executor's shared part leaked");
    }
}
