//! The waiter queue every primitive of [`sync`](super) is built on.
//!
//! A [`WaitList`] is a FIFO of parked waiters, kept inside the primitive's
//! own lock (a [`SpinLock`](super::spin::SpinLock)) next to the state it
//! guards (permits, a message queue, a counter). It is a doubly linked list
//! threaded through a slab, so a waiter is pushed, popped *and removed from
//! the middle* in O(1), and the slab's slots are reused: once it has grown
//! to the largest number of concurrent waiters, waiting allocates nothing.
//!
//! ```text
//!   head ─▶ [key 3] ⇄ [key 0] ⇄ [key 5] ◀─ tail      linked: waiting
//!           [key 1]  (unlinked, still in the slab)    served, not yet seen
//! ```
//!
//! The life of a waiter, always under the primitive's lock:
//!
//! 1. A pending future [`push_back`](WaitList::push_back)s itself with its
//!    waker and keeps the returned [`WaiterKey`]. On a re-poll it
//!    [`register`](WaitList::register)s its (possibly new) waker; the
//!    clone is skipped when it wakes the same task ([`same_waker`]).
//!    A waker displaced or removed under the lock is handed back to the
//!    caller, to be dropped after the lock: the last reference to a finished
//!    green thread may drop its result, which may use this very primitive.
//! 2. Whoever serves it (a release, a send, a notify, a close)
//!    [`pop_front`](WaitList::pop_front)s it: the node is *unlinked* but stays
//!    in the slab with its state (what it was handed: a permit, a slot, a
//!    "closed"), and the server wakes its waker after dropping the lock.
//! 3. The owner alone [`remove`](WaitList::remove)s its node: when a poll
//!    sees it unlinked (it was served), or when the future is dropped. A drop
//!    that finds its node already unlinked owns what it was handed and passes
//!    it on to the next waiter: that is the cancel-safety rule of every
//!    primitive.
//!
//! Because only the owner removes a node, a key is never reused while a
//! future still holds it.

use std::task::Waker;

use crate::green::is_green_waker;
use crate::slab::Slab;
use crate::task::is_task_waker;

/// Where a waiting future is: not queued yet, queued under a key, or
/// finished (shared by every primitive's futures).
#[derive(Debug)]
pub(crate) enum Phase {
    Idle,
    Waiting(WaiterKey),
    Done,
}

/// No node (end of the list).
const NIL: usize = usize::MAX;

/// Stores `waker` in a single-waiter slot, cloning it only if the slot does
/// not already hold a waker that wakes the same task. Returns the waker it
/// displaced, to be dropped by the caller *after* releasing its lock: the
/// last reference to a finished task or green thread may drop its output,
/// which may use this very primitive.
#[must_use = "drop the displaced waker after releasing the lock"]
pub(crate) fn register_slot(slot: &mut Option<Waker>, waker: &Waker) -> Option<Waker> {
    match slot {
        Some(old) if same_waker(old, waker) => None,
        slot => slot.replace(waker.clone()),
    }
}

/// Whether `a` and `b` wake the same task: `will_wake`, or the same data
/// pointer with a vtable of the same functions. The second test catches
/// wakers whose vtable constant was duplicated across codegen units (so
/// `will_wake`, which compares vtable addresses, says no), and is sound:
/// the same functions applied to the same data behave the same.
pub(crate) fn same_waker(a: &Waker, b: &Waker) -> bool {
    a.will_wake(b) || (a.data() == b.data() && a.vtable() == b.vtable())
}

/// The waker of a single waiter that waits again and again (a channel's
/// receiver).
///
/// Like a [`WaitList`] node, the slot hands its waker over when it is woken:
/// [`wake`](WakerSlot::wake) runs under the primitive's lock and returns the
/// waker, which the server wakes after releasing it. A waker may be any
/// executor's (a `futures::executor` or tokio task waiting on a greenloop
/// channel), and its `wake` may poll inline or use this very primitive, so it
/// never runs under the lock (see [`spin`](super::spin)).
///
/// The exception is this crate's own wakers, a task's ([`is_task_waker`])
/// or a green thread's ([`is_green_waker`]), whose wake only queues the
/// task or thread: it is woken in place, under the lock, and stays
/// registered, so a wait-wake cycle takes no reference count (measured:
/// taking it out cost a third of the stackless round trip, and 6% of the
/// green one).
#[derive(Debug, Default)]
pub(crate) struct WakerSlot {
    waker: Option<Waker>,
    waiting: bool,
}

impl WakerSlot {
    /// An empty slot.
    pub(crate) const fn new() -> WakerSlot {
        WakerSlot { waker: None, waiting: false }
    }

    /// Marks the waiter waiting, with `waker` (cloned only if it changed);
    /// returns the displaced waker (see [`register_slot`]).
    #[must_use = "drop the displaced waker after releasing the lock"]
    pub(crate) fn register(&mut self, waker: &Waker) -> Option<Waker> {
        self.waiting = true;
        register_slot(&mut self.waker, waker)
    }

    /// Whether the waiter waits (registered and not woken since).
    pub(crate) fn is_waiting(&self) -> bool {
        self.waiting
    }

    /// Withdraws the registration (the waiter stopped waiting); the waker is
    /// kept for reuse.
    pub(crate) fn unregister(&mut self) {
        self.waiting = false;
    }

    /// Wakes a waiting waiter (lock held): a task's or green thread's waker
    /// in place, any other waker by returning it, to be woken once the lock
    /// is released.
    /// The waiter must register again to be woken again.
    #[must_use = "wake the waker after releasing the lock"]
    #[inline]
    pub(crate) fn wake(&mut self) -> Option<Waker> {
        if !std::mem::take(&mut self.waiting) {
            return None;
        }
        match &self.waker {
            Some(waker) if is_task_waker(waker) || is_green_waker(waker) => {
                waker.wake_by_ref();
                None
            }
            _ => self.waker.take(),
        }
    }
}

/// The key a pending future keeps for its node in a [`WaitList`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaiterKey(usize);

#[derive(Debug)]
struct Node<S> {
    state: S,
    waker: Option<Waker>,
    prev: usize,
    next: usize,
    linked: bool,
}

/// A FIFO of waiters with O(1) removal by key (see the module docs).
#[derive(Debug)]
pub(crate) struct WaitList<S> {
    nodes: Slab<Node<S>>,
    head: usize,
    tail: usize,
    /// Number of linked (waiting) nodes.
    len: usize,
}

impl<S> WaitList<S> {
    /// An empty list; allocates nothing until the first push.
    pub(crate) const fn new() -> WaitList<S> {
        WaitList { nodes: Slab::new(), head: NIL, tail: NIL, len: 0 }
    }

    /// Whether no waiter is waiting (served, unseen nodes do not count).
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of waiting waiters.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Appends a waiter with its state and waker; returns its key.
    pub(crate) fn push_back(&mut self, state: S, waker: &Waker) -> WaiterKey {
        let node =
            Node { state, waker: Some(waker.clone()), prev: self.tail, next: NIL, linked: true };
        let key = self.nodes.insert(node);
        match self.nodes.get_mut(self.tail) {
            Some(tail) => tail.next = key,
            None => self.head = key,
        }
        self.tail = key;
        self.len += 1;
        WaiterKey(key)
    }

    /// The state of the first waiting waiter.
    pub(crate) fn front(&self) -> Option<&S> {
        self.nodes.get(self.head).map(|node| &node.state)
    }

    /// Unlinks the first waiter, lets `serve` record in its state what it was
    /// handed, and returns its waker, to be woken once the lock is dropped.
    pub(crate) fn pop_front(&mut self, serve: impl FnOnce(&mut S)) -> Option<Option<Waker>> {
        let key = self.head;
        self.unlink(key);
        let node = self.nodes.get_mut(key)?;
        serve(&mut node.state);
        Some(node.waker.take())
    }

    /// Serves every waiting waiter with `serve`, pushing their wakers to
    /// `wakes`.
    pub(crate) fn drain(&mut self, mut serve: impl FnMut(&mut S), wakes: &mut Wakes) {
        while let Some(waker) = self.pop_front(&mut serve) {
            wakes.push(waker);
        }
    }

    /// Whether the waiter at `key` is still waiting (not served yet).
    ///
    /// # Panics
    ///
    /// If `key` was removed: only its owner removes it, after which it must
    /// not use it again.
    pub(crate) fn is_linked(&self, key: WaiterKey) -> bool {
        self.node(key).linked
    }

    /// Updates the waker of the waiting waiter at `key`; returns the
    /// displaced waker (see [`register_slot`]).
    #[must_use = "drop the displaced waker after releasing the lock"]
    pub(crate) fn register(&mut self, key: WaiterKey, waker: &Waker) -> Option<Waker> {
        let node = self.nodes.get_mut(key.0).expect("greenloop sync: stale waiter key");
        register_slot(&mut node.waker, waker)
    }

    /// Removes the waiter at `key` (owner only); returns its state, whether
    /// it was still waiting (`false`: it had been served), and its waker if
    /// it still had one, to be dropped after the lock (see
    /// [`register_slot`]).
    pub(crate) fn remove(&mut self, key: WaiterKey) -> (S, bool, Option<Waker>) {
        let linked = self.is_linked(key);
        self.unlink(key.0);
        let node = self.nodes.remove(key.0).expect("greenloop sync: stale waiter key");
        (node.state, linked, node.waker)
    }

    fn node(&self, key: WaiterKey) -> &Node<S> {
        self.nodes.get(key.0).expect("greenloop sync: stale waiter key")
    }

    /// Takes the node at `key` out of the linked list, if it is in it.
    fn unlink(&mut self, key: usize) {
        let Some(node) = self.nodes.get_mut(key).filter(|node| node.linked) else { return };
        node.linked = false;
        let (prev, next) = (node.prev, node.next);
        match self.nodes.get_mut(prev) {
            Some(prev) => prev.next = next,
            None => self.head = next,
        }
        match self.nodes.get_mut(next) {
            Some(next) => next.prev = prev,
            None => self.tail = prev,
        }
        self.len -= 1;
    }
}

impl<S> Default for WaitList<S> {
    fn default() -> Self {
        WaitList::new()
    }
}

/// Wakers collected under a lock, woken after it is dropped. The first one
/// is stored inline and the rest only get a vector once there are some:
/// the common single wake-up, or none (a task's or green thread's waker
/// woken in place, see [`WakerSlot`]), allocates nothing and drops nothing.
#[derive(Debug, Default)]
pub(crate) struct Wakes {
    first: Option<Waker>,
    /// `Some` only once `first` is.
    rest: Option<Vec<Waker>>,
}

impl Wakes {
    /// No wakers yet.
    pub(crate) const fn new() -> Wakes {
        Wakes { first: None, rest: None }
    }

    /// Adds a waker to wake (a served waiter may have none).
    #[inline(always)]
    pub(crate) fn push(&mut self, waker: Option<Waker>) {
        let Some(waker) = waker else { return };
        if self.first.is_none() {
            self.first = Some(waker);
        } else {
            self.rest = Some(pushed(self.rest.take(), waker));
        }
    }

    /// Wakes them all, in the order they were pushed. Always inlined: on
    /// the channel's hot path there is usually nothing to wake. (Taking
    /// `self` by value would copy it on that path.)
    #[inline(always)]
    pub(crate) fn wake_all(&mut self) {
        let Some(first) = self.first.take() else { return };
        first.wake();
        if let Some(rest) = self.rest.take() {
            wake_rest(rest);
        }
    }
}

/// `rest` with `waker` added, out of line. Moved in and out rather than
/// borrowed, so that no pointer to a `Wakes` escapes and it can live in
/// registers on the hot path.
#[cold]
fn pushed(rest: Option<Vec<Waker>>, waker: Waker) -> Vec<Waker> {
    let mut rest = rest.unwrap_or_default();
    rest.push(waker);
    rest
}

/// The wake-ups after the first, out of line: most locks serve one waiter.
#[cold]
fn wake_rest(rest: Vec<Waker>) {
    for waker in rest {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::{WaitList, Wakes};
    use std::sync::{Arc, Mutex};
    use std::task::{Wake, Waker};

    /// A waker that logs its number when woken.
    struct Logged(usize, Arc<Mutex<Vec<usize>>>);

    impl Wake for Logged {
        fn wake(self: Arc<Self>) {
            self.1.lock().unwrap().push(self.0);
        }
    }

    #[test]
    fn collected_wakers_are_woken_once_in_push_order() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let waker = |n| Some(Waker::from(Arc::new(Logged(n, log.clone()))));
        let mut wakes = Wakes::new();
        wakes.push(None);
        for n in 1..=4 {
            wakes.push(waker(n));
            wakes.push(None);
        }
        wakes.wake_all();
        assert_eq!(*log.lock().unwrap(), [1, 2, 3, 4]);
        wakes.wake_all();
        assert_eq!(log.lock().unwrap().len(), 4, "woken again");
        wakes.push(waker(5));
        wakes.wake_all();
        assert_eq!(*log.lock().unwrap(), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn fifo_with_removal_from_the_middle() {
        let waker = Waker::noop();
        let mut list = WaitList::new();
        let a = list.push_back('a', waker);
        let b = list.push_back('b', waker);
        let c = list.push_back('c', waker);
        assert_eq!(list.len(), 3);
        assert_eq!(list.remove(b).0, 'b');
        assert_eq!(list.front(), Some(&'a'));
        assert!(list.pop_front(|s| *s = 'A').is_some());
        assert!(!list.is_linked(a));
        assert!(matches!(list.remove(a), ('A', false, None)));
        assert_eq!(list.front(), Some(&'c'));
        let d = list.push_back('d', waker);
        let mut wakes = Wakes::new();
        list.drain(|s| *s = s.to_ascii_uppercase(), &mut wakes);
        assert!(list.is_empty());
        assert!(matches!(list.remove(c), ('C', false, None)));
        assert!(matches!(list.remove(d), ('D', false, None)));
        wakes.wake_all();
    }

    #[test]
    fn slots_are_reused() {
        let waker = Waker::noop();
        let mut list = WaitList::new();
        for round in 0..10 {
            let keys: Vec<_> = (0..4).map(|i| list.push_back(round * 4 + i, waker)).collect();
            for key in keys {
                list.remove(key);
            }
        }
        assert_eq!(list.nodes.capacity(), 4);
    }
}
