//! The signal that makes a blocked loop thread walk its own stack.
//!
//! The monitor thread asks a [`Tracee`] (one per loop thread) for a walk:
//! it stores a request number in `want` and sends the backtrace signal to
//! the thread with `pthread_kill`. The handler, on that thread, claims the
//! request by swapping `want` to 0 (a late or repeated signal finds 0 and
//! does nothing), walks the frame chain into `frames` and publishes the
//! request number in `done` with a release store. The monitor thread reads
//! the frames after an acquire load of `done` shows its number; no other
//! handler writes them until it asks again.

use std::ffi::c_void;
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering, compiler_fence};
use std::sync::{Mutex, OnceLock, PoisonError};

use libc::{c_int, siginfo_t};

use super::walk::{self, Stop};

/// Most return addresses a walk records.
pub(super) const DEPTH: usize = 64;

/// The first real-time signal offset (from `SIGRTMIN`) tried.
pub(super) const FIRST_OFFSET: c_int = 5;

/// The signal the handler was installed for; `None` inside if no
/// real-time signal from `SIGRTMIN + FIRST_OFFSET` up was free.
static SIGNAL: OnceLock<Option<c_int>> = OnceLock::new();

/// Walks answered by the handler.
pub(super) static ANSWERED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// This thread's tracee while a monitored loop runs on it; null
    /// otherwise. Const-initialised, no destructor: the handler reads it.
    static TRACEE: std::cell::Cell<*const Tracee> = const { std::cell::Cell::new(ptr::null()) };
}

/// One loop thread, as the monitor thread signals it and the handler
/// answers.
#[derive(Debug)]
pub(crate) struct Tracee {
    thread: libc::pthread_t,
    /// The OS thread's own stack, as `pthread_getattr_np` reports it.
    os_stack: Range<usize>,
    /// Whether the thread still runs a monitored loop: the monitor thread
    /// holds the lock while it signals, so the thread cannot exit then.
    alive: Mutex<bool>,
    /// The request the handler should answer (0: none).
    want: AtomicU64,
    /// The last request answered.
    done: AtomicU64,
    /// Request numbers handed out.
    asked: AtomicU64,
    pc: AtomicUsize,
    len: AtomicUsize,
    stop: AtomicU8,
    frames: [AtomicUsize; DEPTH],
}

/// What one walk found: the interrupted PC, return addresses, why it
/// stopped.
pub(super) struct Walked {
    pub(super) pc: usize,
    pub(super) returns: Vec<usize>,
    pub(super) stop: Stop,
}

impl Tracee {
    /// The calling thread's tracee.
    pub(super) fn current() -> Tracee {
        Tracee {
            // SAFETY: pthread_self(3) is always safe to call.
            thread: unsafe { libc::pthread_self() },
            os_stack: os_stack(),
            alive: Mutex::new(true),
            want: AtomicU64::new(0),
            done: AtomicU64::new(0),
            asked: AtomicU64::new(0),
            pc: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            stop: AtomicU8::new(Stop::End as u8),
            frames: [const { AtomicUsize::new(0) }; DEPTH],
        }
    }

    /// Makes this tracee the one the handler answers for on this thread
    /// (nested loops share the outermost's). The caller keeps `self` alive
    /// until it calls [`Tracee::leave`].
    pub(super) fn enter(&self) {
        TRACEE.with(|t| t.set(self));
        compiler_fence(Ordering::SeqCst);
    }

    /// The tracee the calling thread entered, if any.
    pub(super) fn entered() -> *const Tracee {
        TRACEE.with(|t| t.get())
    }

    /// Stops answering on this thread (the loop ends): no signal is sent
    /// to it afterwards, and a pending one finds no tracee.
    pub(crate) fn leave(&self) {
        *self.alive.lock().unwrap_or_else(PoisonError::into_inner) = false;
        compiler_fence(Ordering::SeqCst);
        TRACEE.with(|t| t.set(ptr::null()));
    }

    /// Signals the thread and waits up to `patience` for its walk; `Err`
    /// says why there is none.
    pub(super) fn walk(&self, patience: std::time::Duration) -> Result<Walked, &'static str> {
        let Some(signal) = installed() else {
            return Err("no free real-time signal for backtraces");
        };
        let request = self.asked.fetch_add(1, Ordering::Relaxed) + 1;
        {
            let alive = self.alive.lock().unwrap_or_else(PoisonError::into_inner);
            if !*alive {
                return Err("the loop ended");
            }
            self.want.store(request, Ordering::Release);
            // SAFETY: `alive` is true and locked, so the thread is still
            // inside its loop (`leave` waits for the lock), thus running:
            // its pthread_t is valid (pthread_kill(3)).
            let rc = unsafe { libc::pthread_kill(self.thread, signal) };
            if rc != 0 {
                self.want.store(0, Ordering::Relaxed);
                return Err("pthread_kill failed");
            }
        }
        let deadline = std::time::Instant::now() + patience;
        while self.done.load(Ordering::Acquire) != request {
            // Past the deadline, withdraw the request unless the handler
            // claimed it: then it is walking, and ends soon.
            if std::time::Instant::now() >= deadline
                && self
                    .want
                    .compare_exchange(request, 0, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok()
            {
                return Err("the thread did not answer in time");
            }
            std::thread::sleep(std::time::Duration::from_micros(100));
        }
        let len = self.len.load(Ordering::Relaxed).min(DEPTH);
        Ok(Walked {
            pc: self.pc.load(Ordering::Relaxed),
            returns: self.frames[..len].iter().map(|f| f.load(Ordering::Relaxed)).collect(),
            stop: Stop::from_code(self.stop.load(Ordering::Relaxed)),
        })
    }
}

/// The OS thread's stack range (empty if unknown).
fn os_stack() -> Range<usize> {
    let mut attr = std::mem::MaybeUninit::<libc::pthread_attr_t>::uninit();
    // SAFETY: pthread_getattr_np(3) initialises `attr` for the calling
    // thread on success; only then is it read and destroyed.
    unsafe {
        if libc::pthread_getattr_np(libc::pthread_self(), attr.as_mut_ptr()) != 0 {
            return 0..0;
        }
        let (mut addr, mut size) = (ptr::null_mut(), 0);
        let rc = libc::pthread_attr_getstack(attr.as_ptr(), &mut addr, &mut size);
        libc::pthread_attr_destroy(attr.as_mut_ptr());
        if rc != 0 {
            return 0..0;
        }
        addr as usize..addr as usize + size
    }
}

/// The backtrace signal, installing its handler on first call; `None` if
/// every real-time signal from `SIGRTMIN + FIRST_OFFSET` up has a handler.
pub(super) fn install() -> Option<c_int> {
    *SIGNAL.get_or_init(|| {
        (libc::SIGRTMIN() + FIRST_OFFSET..=libc::SIGRTMAX()).find(|&signal| claim(signal))
    })
}

/// The backtrace signal if its handler is installed.
pub(super) fn installed() -> Option<c_int> {
    SIGNAL.get().copied().flatten()
}

/// Installs the handler for `signal` if nobody handles it (`SIG_DFL`).
fn claim(signal: c_int) -> bool {
    // SAFETY: an all-zero sigaction is a valid value (empty mask, no flags).
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only queries the disposition into `old`.
    if unsafe { libc::sigaction(signal, ptr::null(), &mut old) } != 0
        || old.sa_sigaction != libc::SIG_DFL
    {
        return false;
    }
    // SAFETY: as above.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = on_signal as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as usize;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_ONSTACK;
    // SAFETY: `on_signal` is async-signal-safe (see the module invariants in
    // `backtrace`), and its signature matches SA_SIGINFO.
    unsafe { libc::sigaction(signal, &action, ptr::null_mut()) == 0 }
}

/// The handler: answers this thread's tracee's request, if any.
extern "C" fn on_signal(_: c_int, _: *mut siginfo_t, context: *mut c_void) {
    // SAFETY: __errno_location returns this thread's errno slot; it is
    // restored before return so the interrupted code sees no change.
    let errno = unsafe { *libc::__errno_location() };
    let tracee = TRACEE.with(|t| t.get());
    // SAFETY: a non-null pointer in TRACEE is the entered tracee, which its
    // registration keeps alive until `leave` nulls it, on this very thread.
    if let Some(tracee) = unsafe { tracee.as_ref() } {
        let request = tracee.want.swap(0, Ordering::Acquire);
        if request != 0 {
            answer(tracee, context);
            ANSWERED.fetch_add(1, Ordering::Relaxed);
            tracee.done.store(request, Ordering::Release);
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Walks the interrupted context into `tracee`'s buffer.
fn answer(tracee: &Tracee, context: *mut c_void) {
    let Some((pc, fp, sp)) = registers(context) else {
        tracee.pc.store(0, Ordering::Relaxed);
        tracee.len.store(0, Ordering::Relaxed);
        tracee.stop.store(Stop::Unsupported as u8, Ordering::Relaxed);
        return;
    };
    let stack = match crate::green::running_stack() {
        Some(green) if green.contains(&sp) => green,
        _ => tracee.os_stack.clone(),
    };
    let mut len = 0;
    // SAFETY: `stack` is the stack holding `sp` (the running green
    // thread's, or this OS thread's), mapped and readable from `sp` up;
    // its owner is this thread, stopped in this handler.
    let stop = unsafe {
        walk::walk(fp, sp, stack, DEPTH, |ret| {
            tracee.frames[len].store(ret, Ordering::Relaxed);
            len += 1;
        })
    };
    tracee.pc.store(pc, Ordering::Relaxed);
    tracee.len.store(len, Ordering::Relaxed);
    tracee.stop.store(stop as u8, Ordering::Relaxed);
}

/// The interrupted PC, frame pointer and stack pointer.
#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
fn registers(context: *mut c_void) -> Option<(usize, usize, usize)> {
    // SAFETY: the kernel passes an SA_SIGINFO handler a valid ucontext_t.
    let gregs = unsafe { &(*context.cast::<libc::ucontext_t>()).uc_mcontext.gregs };
    let reg = |r: c_int| gregs[r as usize] as usize;
    Some((reg(libc::REG_RIP), reg(libc::REG_RBP), reg(libc::REG_RSP)))
}

/// The interrupted PC, frame pointer and stack pointer.
#[cfg(all(target_os = "linux", target_arch = "aarch64"))]
fn registers(context: *mut c_void) -> Option<(usize, usize, usize)> {
    // SAFETY: the kernel passes an SA_SIGINFO handler a valid ucontext_t.
    let m = unsafe { &(*context.cast::<libc::ucontext_t>()).uc_mcontext };
    Some((m.pc as usize, m.regs[29] as usize, m.sp as usize))
}

/// Other targets: no register extraction.
#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
fn registers(_: *mut c_void) -> Option<(usize, usize, usize)> {
    None
}
