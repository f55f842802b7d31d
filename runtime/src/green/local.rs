//! Green-thread-local storage: [`Local`] and the [`green_local!`] macro,
//! as `gevent.local`.
//!
//! Each green thread's control block holds a vector of values indexed by
//! the key of a `Local` (assigned on its first use, process-wide). A value
//! is created by the `Local`'s initialiser on the thread's first access and
//! dropped, on the thread, when the thread ends: on return, panic, cancel,
//! or runtime shutdown.
//!
//! # Unsafe invariants
//!
//! 1. A thread's `Locals` is touched only by that green thread while it
//!    runs (through the running thread's control block), and the thread
//!    empties it before it ends. So the values never cross OS threads, even
//!    though the control block is shared with other threads.
//! 2. The entry at a key, if any, was made by the `Local<T>` that owns the
//!    key, from a `Box<T>`, and is freed only by `Locals::clear`.
//! 3. References handed out by [`Local::with`] point into the boxes, which
//!    do not move when the vector grows; an entry is freed only when the
//!    thread ends, after every `with` of the thread returned.

use std::cell::UnsafeCell;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A green thread's local values (in its `Control`).
#[derive(Debug, Default)]
pub(crate) struct Locals {
    entries: UnsafeCell<Vec<Option<Entry>>>,
}

#[derive(Debug)]
struct Entry {
    value: NonNull<()>,
    drop: unsafe fn(NonNull<()>),
}

// SAFETY: the values are touched by their own green thread only, and
// dropped by it before it ends (invariant 1); other threads that hold the
// control block never reach them.
unsafe impl Send for Locals {}
// SAFETY: as above.
unsafe impl Sync for Locals {}

impl Locals {
    /// Drops the values of the thread, which is ending.
    ///
    /// # Safety
    ///
    /// Called by the thread that owns `self` (invariant 1), when no
    /// reference from [`Local::with`] is alive (invariant 3).
    pub(super) unsafe fn clear(&self) {
        loop {
            // SAFETY: the owning thread, no other borrow (our caller); the
            // borrow ends before the value's destructor runs, which may
            // use other locals.
            let entry = unsafe { (&mut *self.entries.get()).pop() };
            match entry {
                None => return,
                // SAFETY: the entry is ours to free, with its own drop
                // function (invariant 2).
                Some(Some(entry)) => unsafe { (entry.drop)(entry.value) },
                Some(None) => {}
            }
        }
    }
}

/// A green-thread-local value: each green thread sees its own, initialised
/// lazily and dropped when the thread ends. Declare one with
/// [`green_local!`](crate::green_local).
///
/// Std's `thread_local!` is per OS thread, so every green thread of the
/// OS thread shares it; a `Local` is per green thread.
#[derive(Debug)]
pub struct Local<T: 'static> {
    init: fn() -> T,
    /// The key plus one; 0 until the first access.
    key: AtomicUsize,
}

/// The next unassigned key.
static NEXT_KEY: AtomicUsize = AtomicUsize::new(0);

impl<T: 'static> Local<T> {
    /// A local whose value in each thread starts as `init()`.
    pub const fn new(init: fn() -> T) -> Local<T> {
        Local { init, key: AtomicUsize::new(0) }
    }

    fn key(&self) -> usize {
        match self.key.load(Ordering::Relaxed) {
            0 => self.assign_key(),
            key => key - 1,
        }
    }

    #[cold]
    fn assign_key(&self) -> usize {
        let fresh = NEXT_KEY.fetch_add(1, Ordering::Relaxed) + 1;
        match self.key.compare_exchange(0, fresh, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => fresh - 1,
            Err(won) => won - 1,
        }
    }

    /// Runs `f` with the current green thread's value, creating it first
    /// if needed.
    ///
    /// # Panics
    ///
    /// Outside a green thread (see [`try_with`](Local::try_with)).
    #[inline]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        self.try_with(f).expect("green local used outside a green thread")
    }

    /// Like [`with`](Local::with); `None` outside a green thread.
    #[inline]
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let control = super::current_control()?;
        // SAFETY: the running thread's control block, alive while it runs.
        let locals = unsafe { &*control }.locals();
        let key = self.key();
        // SAFETY: the running thread's own values (invariant 1); the borrow
        // of the vector ends here.
        let value = unsafe { (&*locals.entries.get()).get(key).and_then(|e| e.as_ref()) }
            .map(|entry| entry.value);
        let value = match value {
            Some(value) => value,
            None => self.insert(locals, key),
        };
        // SAFETY: a `Box<T>` made by this `Local` (invariant 2), alive until
        // the thread ends, after this call (invariant 3).
        Some(f(unsafe { value.cast::<T>().as_ref() }))
    }

    #[cold]
    fn insert(&'static self, locals: &Locals, key: usize) -> NonNull<()> {
        let value = (self.init)();
        // SAFETY: the running thread's own values (invariant 1); `init`
        // (which may use locals) has returned, so no borrow of the vector
        // is alive.
        let entries = unsafe { &mut *locals.entries.get() };
        if entries.len() <= key {
            entries.resize_with(key + 1, || None);
        }
        if let Some(entry) = &entries[key] {
            // `init` used this very local: keep the value it made.
            return entry.value;
        }
        let value = NonNull::from(Box::leak(Box::new(value))).cast::<()>();
        entries[key] = Some(Entry { value, drop: drop_box::<T> });
        value
    }
}

/// Frees an entry's `Box<T>`.
///
/// # Safety
///
/// `value` came from `Box::<T>::leak` and is freed once.
unsafe fn drop_box<T>(value: NonNull<()>) {
    // SAFETY: per the contract.
    drop(unsafe { Box::from_raw(value.cast::<T>().as_ptr()) });
}

/// Declares green-thread-local statics, as `std::thread_local!` does for OS
/// threads: each green thread sees its own value, made lazily by the
/// initialiser and dropped when the thread ends.
///
/// ```
/// use greenloop_runtime::{green, green_local};
/// use std::cell::Cell;
///
/// green_local! {
///     static REQUEST_ID: Cell<u64> = Cell::new(0);
/// }
///
/// green::run(|| {
///     let a = green::spawn(|| { REQUEST_ID.with(|id| id.set(1)); green::yield_now(); REQUEST_ID.with(Cell::get) });
///     let b = green::spawn(|| { REQUEST_ID.with(|id| id.set(2)); green::yield_now(); REQUEST_ID.with(Cell::get) });
///     assert_eq!((a.join().unwrap(), b.join().unwrap()), (1, 2));
/// });
/// ```
#[macro_export]
macro_rules! green_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)*) => {
        $(
            $(#[$attr])*
            $vis static $name: $crate::green::Local<$t> = $crate::green::Local::new(|| $init);
        )*
    };
}
