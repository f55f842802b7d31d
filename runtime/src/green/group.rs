//! [`Group`] and [`Pool`]: many green threads joined or cancelled together,
//! as `gevent.pool.Group` and `gevent.pool.Pool`.
//!
//! A group keeps the handles of its running threads in a slab and counts
//! them in a [`WaitGroup`]; each thread's wrapper takes its entry out and
//! counts itself done when it ends (also when it unwinds), so a long-lived
//! group holds only its running threads. A pool is a group whose spawn
//! first takes a permit of a [`Semaphore`] of `n`, held by the thread until
//! it ends: the caller parks while `n` threads run, which is the
//! back-pressure a server's accept loop wants.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use super::cancel;
use super::join::{self, JoinHandle};
use super::thread::Thread;
use crate::slab::Slab;
use crate::sync::{Semaphore, WaitGroup};

/// Green threads joined or cancelled together.
///
/// ```
/// use greenloop_runtime::green;
/// use std::time::Duration;
///
/// green::run(|| {
///     let group = green::Group::new();
///     for i in 0..4 {
///         group.spawn(move || green::sleep(Duration::from_millis(i)));
///     }
///     group.spawn(|| green::sleep(Duration::from_secs(60)));
///     green::sleep(Duration::from_millis(10));
///     assert_eq!(group.len(), 1);
///     group.cancel_all();
///     group.join();
///     assert!(group.is_empty());
/// });
/// ```
#[derive(Clone, Default)]
pub struct Group {
    inner: Rc<Inner>,
}

struct Inner {
    running: RefCell<Slab<Thread>>,
    done: WaitGroup,
}

impl Default for Inner {
    fn default() -> Inner {
        Inner { running: RefCell::new(Slab::new()), done: WaitGroup::new() }
    }
}

/// Takes a group's thread out of it when the thread ends.
struct Member {
    inner: Rc<Inner>,
    key: usize,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.inner.running.borrow_mut().remove(self.key);
        self.inner.done.done();
    }
}

impl Group {
    /// An empty group.
    pub fn new() -> Group {
        Group::default()
    }

    /// Spawns `f` as a green thread of the group.
    ///
    /// # Panics
    ///
    /// As [`spawn`](super::spawn): outside a green runtime, or if no stack
    /// can be mapped.
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        self.spawn_holding(f, ())
    }

    /// Spawns `f`, keeping `held` alive until the thread ends.
    #[track_caller]
    fn spawn_holding<F, T, H: 'static>(&self, f: F, held: H) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        let key = self.inner.running.borrow().vacant_key();
        // Counted in before the spawn: the member counts the thread out when
        // its closure ends or is dropped unrun.
        self.inner.done.add(1);
        let member = Member { inner: self.inner.clone(), key };
        let handle = join::spawn(move || {
            let _member = member;
            let _held = held;
            f()
        });
        let inserted = self.inner.running.borrow_mut().insert(handle.thread());
        debug_assert_eq!(inserted, key);
        handle
    }

    /// Parks until every thread of the group ended, those spawned meanwhile
    /// included.
    pub fn join(&self) {
        self.inner.done.wait_blocking();
    }

    /// Cancels every running thread of the group (see
    /// [`JoinHandle::cancel`]); [`join`](Group::join) waits for them to
    /// unwind.
    pub fn cancel_all(&self) {
        let running = self.inner.running.borrow();
        for thread in (0..running.capacity()).filter_map(|key| running.get(key)) {
            cancel::cancel(thread.control());
        }
    }

    /// Number of threads of the group still running.
    pub fn len(&self) -> usize {
        self.inner.running.borrow().len()
    }

    /// Whether no thread of the group is running.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("running", &self.len()).finish()
    }
}

/// A [`Group`] of at most `n` running threads: [`spawn`](Pool::spawn)
/// parks the caller while `n` run.
///
/// ```
/// use greenloop_runtime::green;
///
/// green::run(|| {
///     let pool = green::Pool::new(2);
///     let results: Vec<_> = (0..6).map(|i| pool.spawn(move || i * i)).collect();
///     assert!(pool.len() <= 2);
///     pool.join();
///     let sum: i32 = results.into_iter().map(|h| h.join().unwrap()).sum();
///     assert_eq!(sum, 55);
/// });
/// ```
#[derive(Clone, Debug)]
pub struct Pool {
    group: Group,
    slots: Arc<Semaphore>,
}

impl Pool {
    /// A pool of at most `size` running threads.
    ///
    /// # Panics
    ///
    /// If `size` is 0: no thread could ever run.
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "green::Pool::new(0) could never run a thread");
        Pool { group: Group::new(), slots: Arc::new(Semaphore::new(size)) }
    }

    /// Spawns `f` once fewer than `size` threads of the pool run, parking
    /// the caller until then.
    ///
    /// # Panics
    ///
    /// As [`spawn`](super::spawn).
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> JoinHandle<T>
    where
        F: FnOnce() -> T + 'static,
        T: Send + 'static,
    {
        let permit = self.slots.clone().acquire_owned_blocking().expect("the pool never closes");
        self.group.spawn_holding(f, permit)
    }

    /// The pool's group: join or cancel all its threads.
    pub fn group(&self) -> &Group {
        &self.group
    }

    /// Parks until every thread of the pool ended.
    pub fn join(&self) {
        self.group.join();
    }

    /// Number of threads of the pool running.
    pub fn len(&self) -> usize {
        self.group.len()
    }

    /// Whether no thread of the pool runs.
    pub fn is_empty(&self) -> bool {
        self.group.is_empty()
    }
}
