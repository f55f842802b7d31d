//! A clear message when a green thread overflows its stack.
//!
//! # Mechanism
//!
//! Every green stack has a guard page at its bottom, a guard marker or a
//! `PROT_NONE` page (see the `stack` module), so running off the end of it
//! faults with `SIGSEGV` at an address in that page. That
//! fault happens *on the exhausted green stack*, where the kernel has no room
//! to push a signal frame, so the handler is installed with `SA_ONSTACK` and
//! every scheduler thread gets an alternate signal stack ([`ensure_altstack`]).
//!
//! The scheduler calls [`Tracker::enter`] before each resume and
//! [`Tracker::leave`] after the green thread suspends or finishes; they point
//! this OS thread's thread-local at the [`Record`] of the green thread
//! running: its guard range, usable size, name and id. The handler ([`install`]) compares the fault address (`si_addr`)
//! with that guard range. On a match it writes one line such as
//! `green thread 'conn-17' overflowed its 64 KiB stack` to fd 2 and calls
//! `abort()`. Any other fault is passed on to the handler that was installed
//! before ours (Rust's std installs one to report main-thread overflows), or,
//! if that was `SIG_DFL`/`SIG_IGN`, that disposition is restored and the
//! handler returns, so the faulting instruction runs again and gets the
//! default action.
//!
//! # Invariants of the unsafe code
//!
//! * The handler is async-signal-safe: it allocates nothing, takes no lock,
//!   and calls only `write`, `abort`, `sigaction` and `raise` (all listed in
//!   signal-safety(7)), plus previously installed handlers.
//! * The state it reads lives in `thread_local!` `Cell`s that are
//!   const-initialised and have no destructor. Such thread-locals compile to a
//!   plain TLS access with no lazy initialisation and no destructor
//!   registration, which is signal-safe in practice (POSIX promises nothing
//!   about TLS in handlers; glibc's lazy TLS allocation for `dlopen`ed modules
//!   is the theoretical exception).
//! * Synchronous faults are delivered to the faulting thread, so the handler
//!   reads the same thread's state that `enter` wrote; a compiler (signal)
//!   fence after `enter`'s store and before `leave`'s keeps them from being
//!   moved across the resume.
//! * The thread-local holds a raw pointer to the record, and the record a
//!   raw pointer to and the length of the name; [`Tracker::enter`] is
//!   `unsafe` because its caller must keep both valid until
//!   [`Tracker::leave`].
//! * A [`Tracker`] holds the address of this OS thread's thread-local, taken
//!   once, so that `enter` and `leave` are plain stores, with no thread-local
//!   lookup per resume. A const-initialised thread-local without destructor
//!   keeps its address for as long as its OS thread lives, and a `Tracker`
//!   is neither `Send` nor `Sync`, so it is used only on the OS thread whose
//!   thread-local it points at, while that thread lives.
//! * The previous dispositions are recorded before our handler is installed
//!   and never change afterwards, so the handler reads them without locks.

use std::cell::Cell;
use std::ffi::c_void;
use std::mem::MaybeUninit;
use std::ops::Range;
use std::ptr;
use std::sync::atomic::{Ordering, compiler_fence};
use std::sync::{Once, OnceLock};

use libc::{c_int, siginfo_t};

use super::stack::GreenStack;

/// Smallest alternate signal stack [`ensure_altstack`] maps.
const MIN_ALTSTACK: usize = 64 * 1024;

/// Longest name prefix (bytes) put in the message; longer names end in `...`.
const NAME_MAX: usize = 128;

/// Size of the message buffer: fits the longest possible message.
const MSG_CAP: usize = 256;

/// Signature of an `SA_SIGINFO` handler.
type SigactionFn = extern "C" fn(c_int, *mut siginfo_t, *mut c_void);

/// Signature of a plain (non-`SA_SIGINFO`) handler.
type SighandlerFn = extern "C" fn(c_int);

/// What the handler knows of a green thread (see [`Record`]).
#[derive(Clone, Copy, Debug)]
struct Current {
    /// Address range of its stack's guard page.
    guard: (usize, usize),
    /// Usable stack size in bytes.
    stack_size: usize,
    /// Name bytes (UTF-8), or null when unnamed.
    name_ptr: *const u8,
    /// Length of the name in bytes.
    name_len: usize,
    /// Numeric id.
    id: u64,
}

thread_local! {
    /// The record of the green thread now running on this OS thread; null
    /// between resumes. Const-initialised, no destructor: safe to read from
    /// the signal handler, and its address is fixed (see [`Tracker`]).
    static CURRENT: Cell<*const Record> = const { Cell::new(ptr::null()) };

    /// The alternate signal stack [`ensure_altstack`] mapped for this thread.
    static ALTSTACK: Cell<Option<AltStack>> = const { Cell::new(None) };
}

/// The `SIGSEGV` disposition in force before [`install`].
static PREV_SEGV: OnceLock<libc::sigaction> = OnceLock::new();

/// The `SIGBUS` disposition in force before [`install`].
static PREV_BUS: OnceLock<libc::sigaction> = OnceLock::new();

/// Installs (once per process, idempotent, thread-safe) the `SIGSEGV` and
/// `SIGBUS` handler with `SA_SIGINFO | SA_ONSTACK`, remembering the previous
/// dispositions to chain to.
pub(crate) fn install() {
    /// Guards the one-time installation.
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        install_one(libc::SIGSEGV, &PREV_SEGV);
        install_one(libc::SIGBUS, &PREV_BUS);
    });
}

/// An all-zero `sigaction`: `SIG_DFL`, empty mask, no flags.
fn zeroed_sigaction() -> libc::sigaction {
    // SAFETY: sigaction is a plain C struct of integers, a sigset_t and an
    // Option<fn>, for all of which all-zero bytes are valid (0 is SIG_DFL, an
    // all-zero sigset_t is the empty set on Linux, and None for the restorer).
    unsafe { MaybeUninit::zeroed().assume_init() }
}

/// Records the current disposition of `sig` into `prev`, then installs ours.
fn install_one(sig: c_int, prev: &OnceLock<libc::sigaction>) {
    let mut old = zeroed_sigaction();
    // SAFETY: sigaction(2) with a NULL act only stores the current disposition
    // in `old`, a valid, writable sigaction.
    if unsafe { libc::sigaction(sig, ptr::null(), &mut old) } != 0 {
        return;
    }
    // Recorded before our handler can run, so the handler always finds it. A
    // disposition changed by other code between the two calls is lost; std
    // sets its own before main, so that does not happen in practice.
    let _ = prev.set(old);

    let mut act = zeroed_sigaction();
    // SAFETY: sigemptyset(3) only initialises the sigset_t it is given, here
    // a field of a sigaction we own.
    unsafe { libc::sigemptyset(&mut act.sa_mask) };
    act.sa_sigaction = on_fault as SigactionFn as libc::sighandler_t;
    act.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
    // SAFETY: sigaction(2) with a valid act and NULL oldact; `on_fault` has the
    // three-argument signature SA_SIGINFO requires and is async-signal-safe.
    unsafe { libc::sigaction(sig, &act, ptr::null_mut()) };
}

/// Ensures the calling OS thread has an alternate signal stack of at least
/// `max(SIGSTKSZ, AT_MINSIGSTKSZ, 64 KiB)` bytes with a guard page below it.
///
/// An existing alternate stack (std sets one on threads it spawns) is kept.
/// The one mapped here is disabled and unmapped when the thread exits. If it
/// cannot be mapped or registered, this does nothing: a green-thread overflow
/// then still kills the process with `SIGSEGV`, only without the message.
pub(crate) fn ensure_altstack() {
    let _ = ALTSTACK.try_with(|slot| {
        let Some(current) = query_altstack() else {
            return;
        };
        if current.ss_flags & libc::SS_DISABLE == 0 {
            return;
        }
        // SAFETY: getauxval(3) takes no pointers; it returns 0 for an absent entry.
        let min_kernel = unsafe { libc::getauxval(libc::AT_MINSIGSTKSZ) };
        let size = libc::SIGSTKSZ.max(usize::try_from(min_kernel).unwrap_or(0)).max(MIN_ALTSTACK);
        let Ok(region) = GreenStack::new(size) else {
            return;
        };
        let new = libc::stack_t {
            ss_sp: region.guard().end as *mut c_void,
            ss_flags: 0,
            ss_size: region.size(),
        };
        // SAFETY: sigaltstack(2) with a valid ss: ss_sp/ss_size describe the
        // readable and writable part of `region`, which stays mapped until
        // AltStack's Drop has disabled it again.
        if unsafe { libc::sigaltstack(&new, ptr::null_mut()) } != 0 {
            return;
        }
        slot.set(Some(AltStack { region: Some(region) }));
    });
}

/// The calling thread's alternate signal stack settings, if they can be read.
fn query_altstack() -> Option<libc::stack_t> {
    let mut old = MaybeUninit::<libc::stack_t>::zeroed();
    // SAFETY: sigaltstack(2) with a NULL ss only stores the current settings in
    // `old`, a valid, writable stack_t.
    if unsafe { libc::sigaltstack(ptr::null(), old.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: sigaltstack returned 0, so it filled in `old`.
    Some(unsafe { old.assume_init() })
}

/// An alternate signal stack mapped by [`ensure_altstack`]; disabled, then
/// unmapped, when the owning thread exits.
#[derive(Debug)]
struct AltStack {
    /// The mapping (`None` only while being dropped).
    region: Option<GreenStack>,
}

impl Drop for AltStack {
    /// Disables the alternate stack if it is still this thread's, then unmaps it.
    fn drop(&mut self) {
        let Some(region) = self.region.take() else {
            return;
        };
        let ours = region.guard().end;
        let unused = match query_altstack() {
            Some(cur) if cur.ss_sp as usize == ours && cur.ss_flags & libc::SS_DISABLE == 0 => {
                let disable = libc::stack_t {
                    ss_sp: ptr::null_mut(),
                    ss_flags: libc::SS_DISABLE,
                    ss_size: 0,
                };
                // SAFETY: sigaltstack(2) with SS_DISABLE ignores ss_sp/ss_size;
                // it fails (EPERM) only while running on the alternate stack.
                unsafe { libc::sigaltstack(&disable, ptr::null_mut()) == 0 }
            }
            // Replaced or disabled by someone else: no longer registered.
            Some(_) => true,
            None => false,
        };
        if unused {
            drop(region);
        } else {
            // Still registered (or unknown): leaking beats unmapping a live signal stack.
            std::mem::forget(region);
        }
    }
}

/// What the handler is told of a green thread: its guard page range,
/// usable stack size, name (`None` = unnamed) and numeric id. Made once,
/// when the thread is spawned, and kept beside its coroutine, so that a
/// resume only stores a pointer to it ([`Tracker::enter`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Record(Current);

impl Record {
    /// The record of a thread. Only a pointer to and the length of `name`
    /// are kept (see [`Tracker::enter`]'s contract).
    pub(crate) fn new(
        guard: Range<usize>,
        stack_size: usize,
        name: Option<&str>,
        id: u64,
    ) -> Record {
        let (name_ptr, name_len) = match name {
            Some(n) => (n.as_ptr(), n.len()),
            None => (ptr::null(), 0),
        };
        Record(Current { guard: (guard.start, guard.end), stack_size, name_ptr, name_len, id })
    }

    /// The address just above the thread's usable stack.
    pub(crate) fn stack_top(&self) -> usize {
        self.0.guard.1 + self.0.stack_size
    }
}

/// This OS thread's record of the green thread running, reached without a
/// thread-local lookup: the address of the thread-local, taken once by
/// [`Tracker::new`] (module invariants). Neither `Send` nor `Sync`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tracker(*const Cell<*const Record>);

impl Tracker {
    /// The tracker of the calling OS thread.
    pub(crate) fn new() -> Tracker {
        Tracker(CURRENT.with(ptr::from_ref))
    }

    /// The thread-local cell.
    #[inline(always)]
    fn cell(&self) -> &Cell<*const Record> {
        // SAFETY: the address of this OS thread's `CURRENT`, which stays
        // valid while the thread lives, and a `Tracker` is used only on the
        // thread that made it (module invariants).
        unsafe { &*self.0 }
    }

    /// Records the green thread about to run on this OS thread. Call it
    /// before every resume.
    ///
    /// # Safety
    ///
    /// Only a pointer to `record` is stored, and the record holds only a
    /// pointer to and the length of its name, so both must stay valid and
    /// unchanged until [`leave`](Tracker::leave) (or the next `enter`) is
    /// called on this thread, on every path, unwinding included: the fault
    /// handler may read them at any moment in between.
    #[inline(always)]
    pub(crate) unsafe fn enter(self, record: *const Record) {
        self.cell().set(record);
        compiler_fence(Ordering::SeqCst);
    }

    /// Clears what [`enter`](Tracker::enter) recorded; call it after the
    /// green thread suspends or finishes.
    #[inline(always)]
    pub(crate) fn leave(self) {
        compiler_fence(Ordering::SeqCst);
        self.cell().set(ptr::null());
    }
}

/// The usable stack of the green thread running on this OS thread, if
/// one runs (between [`Tracker::enter`] and [`Tracker::leave`]). Reads
/// only the const thread-local and the record it points at, so a signal
/// handler may call it (the monitor's backtrace walks the frame chain
/// within it).
pub(crate) fn running_stack() -> Option<Range<usize>> {
    let record = CURRENT.with(Cell::get);
    // SAFETY: a non-null record stays valid until `leave` clears it
    // (`Tracker::enter`'s contract), and the caller runs on this thread,
    // inside that span or after it (then the pointer is null).
    let current = unsafe { record.as_ref() }?;
    Some(current.0.guard.1..current.0.guard.1 + current.0.stack_size)
}

/// The `SIGSEGV`/`SIGBUS` handler (runs on the alternate signal stack).
extern "C" fn on_fault(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    // si_code > 0 means the kernel raised it for a fault, so si_addr is valid;
    // a signal sent with kill/tgkill/sigqueue carries no fault address.
    // SAFETY: the kernel passes a valid siginfo_t for an SA_SIGINFO handler;
    // si_addr is the union member defined for kernel-raised SIGSEGV/SIGBUS.
    let fault = unsafe { ((*info).si_code > 0).then(|| (*info).si_addr() as usize) };
    let record = CURRENT.try_with(Cell::get).unwrap_or(ptr::null());
    // SAFETY: a non-null record stays valid until `leave` clears it
    // (`Tracker::enter`'s contract); this thread is inside that span.
    let current = unsafe { record.as_ref() }.map(|record| record.0);
    if let (Some(addr), Some(cur)) = (fault, current)
        && cur.guard.0 <= addr
        && addr < cur.guard.1
    {
        let name = (!cur.name_ptr.is_null()).then(|| {
            // SAFETY: `Tracker::enter`'s contract keeps these name_len bytes
            // valid and unchanged until `leave`, which has not run yet.
            unsafe { std::slice::from_raw_parts(cur.name_ptr, cur.name_len) }
        });
        let mut buf = [0u8; MSG_CAP];
        let len = compose(&mut buf, name, cur.id, cur.stack_size);
        write_stderr(&buf[..len]);
        // SAFETY: abort(3) is async-signal-safe and never returns.
        unsafe { libc::abort() };
    }
    // SAFETY: called from the handler for `sig` with the kernel's own arguments.
    unsafe { chain(sig, info, ctx) };
}

/// Passes a fault that is not a green-thread overflow to the previous
/// disposition.
///
/// # Safety
///
/// Must be called only from the `sig` handler, with the arguments the kernel
/// passed to it.
unsafe fn chain(sig: c_int, info: *mut siginfo_t, ctx: *mut c_void) {
    let prev = match sig {
        libc::SIGSEGV => PREV_SEGV.get(),
        _ => PREV_BUS.get(),
    };
    let Some(prev) = prev else {
        reset_default(sig, None, info);
        return;
    };
    let handler = prev.sa_sigaction;
    if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
        reset_default(sig, Some(prev), info);
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: sigaction(2): with SA_SIGINFO set, sa_sigaction holds a
        // three-argument handler (not SIG_DFL/SIG_IGN, checked above), which
        // its installer expects to be called exactly like this.
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, SigactionFn>(handler) };
        f(sig, info, ctx);
    } else {
        // SAFETY: without SA_SIGINFO, sa_handler (the same field) holds a
        // one-argument handler (not SIG_DFL/SIG_IGN, checked above).
        let f = unsafe { std::mem::transmute::<libc::sighandler_t, SighandlerFn>(handler) };
        f(sig);
    }
}

/// Restores `prev` (or `SIG_DFL`) for `sig` and lets the default action happen:
/// a fault re-executes and re-faults once the handler returns; a signal sent by
/// a process is raised again (it stays pending until the handler returns).
fn reset_default(sig: c_int, prev: Option<&libc::sigaction>, info: *mut siginfo_t) {
    let dfl = zeroed_sigaction();
    let act = prev.unwrap_or(&dfl);
    // SAFETY: sigaction(2) with a valid act and NULL oldact; async-signal-safe.
    unsafe { libc::sigaction(sig, act, ptr::null_mut()) };
    // SAFETY: the kernel passes a valid siginfo_t to an SA_SIGINFO handler.
    if unsafe { (*info).si_code } <= 0 {
        // SAFETY: raise(3) is async-signal-safe; the signal stays pending
        // (blocked while this handler runs) and is delivered on return.
        unsafe { libc::raise(sig) };
    }
}

/// Writes all of `bytes` to fd 2 with `write(2)` only, retrying on `EINTR`
/// and short writes, giving up on any other error.
fn write_stderr(mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: write(2) reads at most bytes.len() bytes from a valid slice.
        let n = unsafe { libc::write(libc::STDERR_FILENO, bytes.as_ptr().cast(), bytes.len()) };
        if n > 0 {
            bytes = &bytes[n.unsigned_abs()..];
        } else if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
            continue;
        } else {
            return;
        }
    }
}

/// A bounded writer into a stack buffer: no allocation, no `fmt`.
struct Buf<'a> {
    /// Destination bytes.
    bytes: &'a mut [u8],
    /// Bytes written so far.
    len: usize,
}

impl Buf<'_> {
    /// Appends as much of `s` as fits.
    fn put(&mut self, s: &[u8]) {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s[..n]);
        self.len += n;
    }

    /// Appends `v` in decimal.
    fn put_u64(&mut self, mut v: u64) {
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.put(&digits[i..]);
    }
}

/// Composes the overflow message into `buf`, returning its length:
/// `green thread 'NAME' overflowed its SIZE stack\n`, or for an unnamed thread
/// `green thread '<unnamed>' (id ID) overflowed its SIZE stack\n`. SIZE is in
/// MiB or KiB when it divides evenly, else in bytes.
fn compose(buf: &mut [u8; MSG_CAP], name: Option<&[u8]>, id: u64, stack_size: usize) -> usize {
    let mut w = Buf { bytes: buf, len: 0 };
    w.put(b"green thread '");
    match name {
        Some(n) if n.len() > NAME_MAX => {
            // Cut at a UTF-8 character boundary (never before a continuation byte).
            let mut cut = NAME_MAX;
            while cut > 0 && n[cut] & 0xC0 == 0x80 {
                cut -= 1;
            }
            w.put(&n[..cut]);
            w.put(b"...");
        }
        Some(n) => w.put(n),
        None => w.put(b"<unnamed>"),
    }
    w.put(b"'");
    if name.is_none() {
        w.put(b" (id ");
        w.put_u64(id);
        w.put(b")");
    }
    w.put(b" overflowed its ");
    let size = stack_size as u64;
    if size >= 1 << 20 && size.is_multiple_of(1 << 20) {
        w.put_u64(size >> 20);
        w.put(b" MiB");
    } else if size >= 1 << 10 && size.is_multiple_of(1 << 10) {
        w.put_u64(size >> 10);
        w.put(b" KiB");
    } else {
        w.put_u64(size);
        w.put(b" bytes");
    }
    w.put(b" stack\n");
    w.len
}

#[cfg(test)]
mod tests {
    use super::*;
    use corosensei::stack::Stack;
    use corosensei::{Coroutine, Yielder};
    use std::io::Read;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Output, Stdio};
    use std::time::{Duration, Instant};

    /// How long a child may run before it is killed and the test fails
    /// (each crashes within milliseconds when the handler works).
    const CHILD_LIMIT: Duration = Duration::from_secs(60);

    /// Env var telling a re-executed test binary which child scenario to run.
    const CHILD_ENV: &str = "GREENLOOP_TEST_OVERFLOW_CHILD";

    /// Composes a message into a fresh buffer, as a `String` for asserting.
    fn message(name: Option<&str>, id: u64, size: usize) -> String {
        let mut buf = [0u8; MSG_CAP];
        let len = compose(&mut buf, name.map(str::as_bytes), id, size);
        String::from_utf8(buf[..len].to_vec()).unwrap()
    }

    /// Message text for named/unnamed threads and the size units.
    #[test]
    fn compose_messages() {
        assert_eq!(
            message(Some("conn-17"), 17, 64 * 1024),
            "green thread 'conn-17' overflowed its 64 KiB stack\n"
        );
        assert_eq!(
            message(None, 17, 64 * 1024),
            "green thread '<unnamed>' (id 17) overflowed its 64 KiB stack\n"
        );
        assert_eq!(
            message(None, u64::MAX, 2 << 20),
            "green thread '<unnamed>' (id 18446744073709551615) overflowed its 2 MiB stack\n"
        );
        assert_eq!(
            message(None, 0, 1000),
            "green thread '<unnamed>' (id 0) overflowed its 1000 bytes stack\n"
        );
        let long = "é".repeat(200);
        let msg = message(Some(&long), 1, 3 << 10);
        assert!(msg.ends_with("...' overflowed its 3 KiB stack\n"), "{msg}");
        assert!(msg.len() < MSG_CAP);
    }

    /// `install` is idempotent and leaves our handler in place with the right flags.
    #[test]
    fn install_is_idempotent() {
        install();
        install();
        for sig in [libc::SIGSEGV, libc::SIGBUS] {
            let mut cur = zeroed_sigaction();
            // SAFETY: sigaction(2) with NULL act only fills in `cur`.
            let rc = unsafe { libc::sigaction(sig, ptr::null(), &mut cur) };
            assert_eq!(rc, 0);
            assert_eq!(cur.sa_sigaction, on_fault as SigactionFn as libc::sighandler_t);
            assert_eq!(
                cur.sa_flags & (libc::SA_SIGINFO | libc::SA_ONSTACK),
                libc::SA_SIGINFO | libc::SA_ONSTACK
            );
        }
        assert!(PREV_SEGV.get().is_some() && PREV_BUS.get().is_some());
    }

    /// On a thread with no alternate stack, one of at least 64 KiB is mapped
    /// (once); an existing one is kept.
    #[test]
    fn altstack_mapped_once_or_kept() {
        std::thread::spawn(|| {
            let disable =
                libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: sigaltstack(2) with SS_DISABLE; not running on it. Any
            // stack std registered stays mapped and std unmaps it at exit.
            assert_eq!(unsafe { libc::sigaltstack(&disable, ptr::null_mut()) }, 0);
            ensure_altstack();
            let first = query_altstack().unwrap();
            assert_eq!(first.ss_flags & libc::SS_DISABLE, 0);
            assert!(first.ss_size >= MIN_ALTSTACK);
            ensure_altstack();
            assert_eq!(query_altstack().unwrap().ss_sp, first.ss_sp);
        })
        .join()
        .unwrap();

        std::thread::spawn(|| {
            let mine = GreenStack::new(MIN_ALTSTACK).unwrap();
            let ss = libc::stack_t {
                ss_sp: mine.guard().end as *mut c_void,
                ss_flags: 0,
                ss_size: mine.size(),
            };
            // SAFETY: ss describes the writable part of `mine`, which stays
            // mapped until it is disabled again below.
            assert_eq!(unsafe { libc::sigaltstack(&ss, ptr::null_mut()) }, 0);
            ensure_altstack();
            assert_eq!(query_altstack().unwrap().ss_sp, ss.ss_sp);
            let disable =
                libc::stack_t { ss_sp: ptr::null_mut(), ss_flags: libc::SS_DISABLE, ss_size: 0 };
            // SAFETY: sigaltstack(2) with SS_DISABLE; not running on it.
            assert_eq!(unsafe { libc::sigaltstack(&disable, ptr::null_mut()) }, 0);
        })
        .join()
        .unwrap();
    }

    /// Test path of `name` as libtest knows it (the module path minus the crate).
    fn test_path(name: &str) -> String {
        let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
        format!("{module}::{name}")
    }

    /// Re-runs this test binary on test `name` only, in child mode `scenario`.
    /// Fails the test if the child runs past [`CHILD_LIMIT`] (a handler
    /// that hangs instead of aborting), after killing it.
    fn run_child(name: &str, scenario: &str) -> Output {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", &test_path(name), "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, scenario)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let drain = |mut pipe: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                bytes
            })
        };
        let stdout = drain(Box::new(child.stdout.take().unwrap()));
        let stderr = drain(Box::new(child.stderr.take().unwrap()));
        let deadline = Instant::now() + CHILD_LIMIT;
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("child {scenario:?} still ran after {CHILD_LIMIT:?}: killed");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        Output { status, stdout: stdout.join().unwrap(), stderr: stderr.join().unwrap() }
    }

    /// Runs `scenario` in a child (see [`run_child`]), checks that `signal`
    /// ended it, and returns its stderr.
    fn child_killed_by(test: &str, scenario: &str, signal: libc::c_int) -> String {
        let out = run_child(test, scenario);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.signal(), Some(signal), "status {:?}, stderr:\n{stderr}", out.status);
        stderr
    }

    /// In a child process: switch off core dumps, install the handler and an
    /// alternate stack.
    fn child_setup() {
        let no_core = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: setrlimit(2) reads a valid rlimit; lowering limits needs no privilege.
        unsafe { libc::setrlimit(libc::RLIMIT_CORE, &no_core) };
        install();
        ensure_altstack();
    }

    /// Recurses until the stack runs out; `black_box` on a stack array keeps
    /// every frame real.
    #[inline(never)]
    fn recurse(depth: u64) -> u64 {
        let mut frame = [0u8; 512];
        frame[0] = depth as u8;
        std::hint::black_box(&mut frame);
        if std::hint::black_box(true) { recurse(depth + 1) + u64::from(frame[1]) } else { depth }
    }

    /// A green thread recursing forever on a 64 KiB stack is reported by name
    /// and the process aborts.
    #[test]
    fn overflow_reports_and_aborts() {
        if std::env::var_os(CHILD_ENV).is_some_and(|v| v == "overflow") {
            child_setup();
            let stack = GreenStack::new(64 * 1024).unwrap();
            let (guard, size) = (stack.guard(), stack.size());
            let mut co = Coroutine::with_stack(stack, |_: &Yielder<(), ()>, ()| recurse(0));
            let record = Record::new(guard, size, Some("conn-17"), 17);
            let tracker = Tracker::new();
            // SAFETY: the record outlives `leave`; the name is a 'static str.
            unsafe { tracker.enter(&record) };
            co.resume(());
            tracker.leave();
            unreachable!("the green thread returned from infinite recursion");
        }
        let stderr = child_killed_by("overflow_reports_and_aborts", "overflow", libc::SIGABRT);
        assert!(
            stderr.contains("green thread 'conn-17' overflowed its 64 KiB stack\n"),
            "stderr:\n{stderr}"
        );
    }

    /// An overflow of an ordinary OS-thread stack is chained to the handler
    /// std installed before ours, which prints its own message and aborts.
    #[test]
    fn os_thread_overflow_chains_to_std() {
        if std::env::var_os(CHILD_ENV).is_some_and(|v| v == "os-thread") {
            child_setup();
            recurse(0);
            unreachable!("returned from infinite recursion");
        }
        let stderr =
            child_killed_by("os_thread_overflow_chains_to_std", "os-thread", libc::SIGABRT);
        assert!(stderr.contains("has overflowed its stack"), "stderr:\n{stderr}");
        assert!(!stderr.contains("green thread"), "stderr:\n{stderr}");
    }

    /// A null-pointer write outside any green thread keeps the default
    /// behaviour: death by `SIGSEGV`, no message.
    #[test]
    fn null_write_is_plain_segv() {
        if std::env::var_os(CHILD_ENV).is_some_and(|v| v == "null") {
            child_setup();
            // SAFETY: deliberately faults: a store to address 0, which is never
            // mapped (vm.mmap_min_addr); done in asm since it is UB in Rust.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                std::arch::asm!("mov byte ptr [{0}], 1", in(reg) 0usize);
            }
            // SAFETY: as above.
            #[cfg(target_arch = "aarch64")]
            unsafe {
                std::arch::asm!("strb wzr, [{0}]", in(reg) 0usize);
            }
            unreachable!("writing to address 0 did not fault");
        }
        let stderr = child_killed_by("null_write_is_plain_segv", "null", libc::SIGSEGV);
        assert!(!stderr.contains("overflowed its"), "stderr:\n{stderr}");
    }

    /// A write to a green stack's guard page after `leave` is not reported as
    /// an overflow: plain `SIGSEGV`.
    #[test]
    fn guard_hit_after_leave_is_plain_segv() {
        if std::env::var_os(CHILD_ENV).is_some_and(|v| v == "after-leave") {
            child_setup();
            let stack = GreenStack::new(64 * 1024).unwrap();
            let record = Record::new(stack.guard(), stack.size(), Some("conn-17"), 17);
            let tracker = Tracker::new();
            // SAFETY: the record outlives `leave`; the name is a 'static str.
            unsafe { tracker.enter(&record) };
            tracker.leave();
            let guard = stack.limit().get() as *mut u8;
            // SAFETY: deliberately faults: the guard page is PROT_NONE.
            unsafe { guard.write_volatile(1) };
            unreachable!("writing to the guard page did not fault");
        }
        let stderr =
            child_killed_by("guard_hit_after_leave_is_plain_segv", "after-leave", libc::SIGSEGV);
        assert!(!stderr.contains("overflowed its"), "stderr:\n{stderr}");
    }
}
