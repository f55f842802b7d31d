//! [`block_on`]: wait for a future from blocking-style code, anywhere.

use std::cell::UnsafeCell;
use std::future::Future;
use std::ops::Deref;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, RawWaker, RawWakerVTable, Waker};
use std::time::Duration;

use crate::green;
use crate::reactor::{Reactor, Remote};

/// Runs `future` to completion from blocking-style code and returns its
/// output.
///
/// * In a green thread, the future is polled with the green thread's waker
///   and, while it is pending, only the green thread parks: others run.
/// * On a plain OS thread, the thread blocks, driving its own reactor so
///   timers and sockets the future waits on make progress.
/// * Called inside a stackless task it blocks the executor's thread: that
///   is the blocking-in-async anti-pattern, which greenloop keeps visible.
///
/// # Panics
///
/// On a plain OS thread, if the thread's reactor cannot be created or
/// `epoll_wait` fails.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// let value = greenloop_runtime::block_on(async {
///     greenloop_runtime::time::sleep(Duration::from_millis(1)).await;
///     7
/// });
/// assert_eq!(value, 7);
/// ```
//
// Always inlined, the OS-thread path kept out of line: a green thread then
// suspends in its caller's frame. Suspended inside a frame of its own, the
// thread would return out of that frame after each resume, a return the
// CPU's return-address stack cannot predict (the switch left the
// scheduler's addresses there), and its next suspend, a return to the
// scheduler, would mispredict in turn. Measured on the 2-vCPU EPYC with
// corosensei alone: a resume and suspend at one depth 4.5 ns, from inside
// a called function 32 ns; the green channel round trip went from 105 to
// 85 ns of CPU time.
#[inline(always)]
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    if let Some(waker) = green::current_waker_ref() {
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return output;
            }
            green::wait_for_wake();
        }
    }
    block_on_thread(future)
}

/// [`block_on`] on a plain OS thread (or in a stackless task): drives the
/// thread's reactor until `future` is ready.
#[inline(never)]
fn block_on_thread<F: Future>(mut future: Pin<&mut F>) -> F::Output {
    let reactor = Reactor::current();
    let notify = ThreadNotify::new(reactor.remote().clone(), false);
    let waker = notify.waker();
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // Woken during the poll (a future that yields): still give the
        // reactor a non-blocking turn, so that I/O and timers progress.
        let mut timeout = notify.take().then_some(Duration::ZERO);
        loop {
            if let Err(e) = reactor.turn(timeout) {
                panic!("greenloop: block_on: epoll_wait failed: {e}");
            }
            if timeout.is_some() || notify.take() {
                break;
            }
            timeout = None;
        }
    }
}

/// The waker of a `block_on`'s own future: a flag plus the reactor's
/// remote notification, so a wake from any thread ends the wait.
///
/// Its wakers are cloned and dropped often on the waiting thread itself
/// (each `JoinHandle`, timer or channel the future waits on keeps a
/// clone), so that thread recycles strong counts instead of paying two
/// atomic operations per clone, as the executor does for tasks.
///
/// # Unsafe invariants
///
/// `spare` is read and written only on the owner thread: the one whose
/// reactor is behind `remote` (`Reactor::current_id` equals its id there
/// and nowhere else). It counts strong counts of the `Arc<ThreadNotify>`
/// owned without an `Arc` value: a waker dropped on the owner thread gives
/// its count to `spare`, a clone there takes one from it. `None` once the
/// wait ended ([`NotifyWaker`]'s drop released them): clones and drops then
/// count for themselves again, so nothing leaks.
pub(crate) struct ThreadNotify {
    notified: AtomicBool,
    remote: Arc<Remote>,
    spare: UnsafeCell<Option<usize>>,
}

// SAFETY: `spare` is only touched on the owner thread (invariant above);
// the other fields are `Sync`.
unsafe impl Sync for ThreadNotify {}

/// The waker of a wait, which releases the notifier's spare counts when
/// the wait ends (see [`ThreadNotify`]).
pub(crate) struct NotifyWaker {
    waker: Waker,
    notify: Arc<ThreadNotify>,
}

impl Deref for NotifyWaker {
    type Target = Waker;

    fn deref(&self) -> &Waker {
        &self.waker
    }
}

impl Drop for NotifyWaker {
    fn drop(&mut self) {
        if self.notify.on_owner_thread() {
            // SAFETY: owner thread (invariant above).
            let spare = unsafe { (*self.notify.spare.get()).take() }.unwrap_or(0);
            let ptr = Arc::as_ptr(&self.notify);
            for _ in 0..spare {
                // SAFETY: a count owned through `spare`; `self.notify`
                // holds another, so this is never the last.
                unsafe { Arc::decrement_strong_count(ptr) };
            }
        }
    }
}

static VTABLE: RawWakerVTable =
    RawWakerVTable::new(notify_clone, notify_wake, notify_wake_by_ref, notify_drop);

/// # Safety
///
/// `data` is the `Arc<ThreadNotify>` pointer of a live waker.
unsafe fn notify_clone(data: *const ()) -> RawWaker {
    let ptr = data.cast::<ThreadNotify>();
    // SAFETY: the waker being cloned keeps the notifier alive.
    let notify = unsafe { &*ptr };
    // SAFETY: `take_spare` checks for the owner thread (invariant above).
    if !unsafe { notify.take_spare() } {
        // SAFETY: the pointer came from `Arc::into_raw` (in `waker`).
        unsafe { Arc::increment_strong_count(ptr) };
    }
    RawWaker::new(data, &VTABLE)
}

/// # Safety
///
/// As for `notify_clone`; the waker's count is consumed.
unsafe fn notify_wake(data: *const ()) {
    // SAFETY: forwarded.
    unsafe {
        notify_wake_by_ref(data);
        notify_drop(data);
    }
}

/// # Safety
///
/// As for `notify_clone`.
unsafe fn notify_wake_by_ref(data: *const ()) {
    // SAFETY: the waker keeps the notifier alive.
    unsafe { &*data.cast::<ThreadNotify>() }.notify();
}

/// # Safety
///
/// As for `notify_clone`; the waker's count is released.
unsafe fn notify_drop(data: *const ()) {
    let ptr = data.cast::<ThreadNotify>();
    // SAFETY: the waker keeps the notifier alive until its count goes.
    let notify = unsafe { &*ptr };
    // SAFETY: `keep_spare` checks for the owner thread (invariant above).
    if !unsafe { notify.keep_spare() } {
        // SAFETY: the waker's own count, from `Arc::into_raw` in `waker`
        // or taken by `notify_clone`.
        unsafe { Arc::decrement_strong_count(ptr) };
    }
}

impl ThreadNotify {
    /// A notifier for the reactor behind `remote`, initially `notified`.
    pub(crate) fn new(remote: Arc<Remote>, notified: bool) -> Arc<ThreadNotify> {
        Arc::new(ThreadNotify {
            notified: AtomicBool::new(notified),
            remote,
            spare: UnsafeCell::new(Some(0)),
        })
    }

    /// The waker of the wait; call on the owner thread, keep it for the
    /// wait's duration.
    pub(crate) fn waker(self: &Arc<Self>) -> NotifyWaker {
        let data = Arc::into_raw(self.clone()).cast::<()>();
        // SAFETY: the vtable functions treat `data` as an `Arc` pointer
        // owning one count, which `into_raw` just gave.
        let waker = unsafe { Waker::from_raw(RawWaker::new(data, &VTABLE)) };
        NotifyWaker { waker, notify: self.clone() }
    }

    fn on_owner_thread(&self) -> bool {
        Reactor::current_id() == Some(self.remote.id())
    }

    /// Takes a spare count for a clone; `false` if there is none here.
    ///
    /// # Safety
    ///
    /// None beyond the invariant, which this checks; `unsafe` because a
    /// `true` hands the caller a count it must then own.
    unsafe fn take_spare(&self) -> bool {
        if !self.on_owner_thread() {
            return false;
        }
        // SAFETY: owner thread (invariant above).
        match unsafe { &mut *self.spare.get() } {
            Some(spare) if *spare > 0 => {
                *spare -= 1;
                true
            }
            _ => false,
        }
    }

    /// Keeps a dropped waker's count as spare; `false` if it must be
    /// released instead (not the owner thread, or the wait ended).
    ///
    /// # Safety
    ///
    /// The caller gives up the count when this returns `true`.
    unsafe fn keep_spare(&self) -> bool {
        if !self.on_owner_thread() {
            return false;
        }
        // SAFETY: owner thread (invariant above).
        match unsafe { &mut *self.spare.get() } {
            Some(spare) => {
                *spare += 1;
                true
            }
            None => false,
        }
    }

    /// Consumes the notification; `true` if there was one.
    pub(crate) fn take(&self) -> bool {
        self.notified.swap(false, Ordering::Acquire)
    }

    /// Whether a notification is pending.
    pub(crate) fn is_set(&self) -> bool {
        self.notified.load(Ordering::Acquire)
    }

    fn notify(&self) {
        if self.on_owner_thread() {
            // On the waiting thread itself the flag is enough: it checks the
            // flag before it blocks, so there is no epoll_wait to interrupt.
            // A plain store does: other wakers only set the flag too, and
            // `take`, the only clear, runs on this thread.
            self.notified.store(true, Ordering::Release);
        } else if !self.notified.swap(true, Ordering::Release) {
            self.remote.notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ThreadNotify;
    use crate::reactor::Reactor;
    use std::sync::Arc;

    /// Clones and drops on the owner thread recycle counts (the strong
    /// count does not move), another thread counts for itself, and nothing
    /// leaks once the wait ended, also with a clone that outlives it.
    #[test]
    fn owner_thread_recycles_counts_and_nothing_leaks() {
        let reactor = Reactor::current();
        let notify = ThreadNotify::new(reactor.remote().clone(), false);
        let weak = Arc::downgrade(&notify);
        let waker = notify.waker();
        let base = weak.strong_count();
        drop(waker.clone()); // its count becomes spare
        assert_eq!(
            weak.strong_count(),
            base + 1,
            "the dropped clone did not keep its count as spare"
        );
        let reused = waker.clone(); // takes the spare count
        assert_eq!(weak.strong_count(), base + 1);
        let foreign = std::thread::spawn({
            let waker = (*waker).clone();
            move || {
                let clone = waker.clone();
                drop(waker);
                clone.wake();
            }
        });
        foreign.join().unwrap();
        assert!(notify.take(), "the foreign wake was lost");
        drop(waker); // the wait ends: spare counts are released
        drop(notify);
        assert_eq!(weak.strong_count(), 1, "only the clone outliving the wait is left");
        reused.wake_by_ref();
        drop(reused);
        assert!(weak.upgrade().is_none(), "the notifier leaked");
    }
}
