//! The interposed `sigaction` and `signal`: every handler installed through
//! them runs inside a trampoline that marks the thread as "in a signal
//! handler", so that interposed calls the handler makes go to libc as they
//! are, even when the signal interrupted a green thread (a handler must
//! never switch stacks). Callers see their own handlers: `oldact` reports
//! the handler they installed, not the trampoline.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use libc::{c_int, c_void, sighandler_t, siginfo_t};

use crate::{gate, real};

/// Signal numbers the trampoline covers (1..=64 on Linux).
const SIGNALS: usize = 65;

/// The user's handler of each signal, as installed through `sigaction`.
static HANDLERS: [AtomicUsize; SIGNALS] = [const { AtomicUsize::new(0) }; SIGNALS];
/// Whether that handler takes `(sig, info, context)` (`SA_SIGINFO`).
static SIGINFO: [AtomicBool; SIGNALS] = [const { AtomicBool::new(false) }; SIGNALS];

/// Runs the user's handler of `sig`, marked as a signal handler.
extern "C" fn trampoline(sig: c_int, info: *mut siginfo_t, context: *mut c_void) {
    let Some(index) = index_of(sig) else { return };
    let handler = HANDLERS[index].load(Ordering::Acquire);
    let siginfo = SIGINFO[index].load(Ordering::Acquire);
    gate::in_signal_handler(|| {
        if siginfo {
            // SAFETY: installed with SA_SIGINFO, so of this type (sigaction(2)).
            let handler: extern "C" fn(c_int, *mut siginfo_t, *mut c_void) =
                unsafe { std::mem::transmute::<usize, _>(handler) };
            handler(sig, info, context);
        } else {
            // SAFETY: installed without SA_SIGINFO, so `void (*)(int)`.
            let handler: extern "C" fn(c_int) = unsafe { std::mem::transmute::<usize, _>(handler) };
            handler(sig);
        }
    });
}

/// The table index of `sig`, `None` outside 1..SIGNALS.
fn index_of(sig: c_int) -> Option<usize> {
    usize::try_from(sig).ok().filter(|&i| (1..SIGNALS).contains(&i))
}

/// The trampoline's address, as `sa_sigaction` holds it.
fn trampoline_address() -> sighandler_t {
    trampoline as extern "C" fn(c_int, *mut siginfo_t, *mut c_void) as sighandler_t
}

/// `sigaction(2)`, installing a handler behind the trampoline.
///
/// # Safety
///
/// As for `sigaction(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    old: *mut libc::sigaction,
) -> c_int {
    let Some(index) = index_of(sig) else {
        // SAFETY: the caller's contract is sigaction(2)'s.
        return unsafe { real::sigaction(sig, act, old) };
    };
    let previous =
        (HANDLERS[index].load(Ordering::Acquire), SIGINFO[index].load(Ordering::Acquire));
    // SAFETY: a non-null `act` points at a sigaction (contract).
    let mut wrapped = unsafe { act.as_ref() }.copied();
    let act = match &mut wrapped {
        Some(action)
            if action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN =>
        {
            HANDLERS[index].store(action.sa_sigaction, Ordering::Release);
            SIGINFO[index].store(action.sa_flags & libc::SA_SIGINFO != 0, Ordering::Release);
            action.sa_sigaction = trampoline_address();
            action.sa_flags |= libc::SA_SIGINFO;
            &raw const *action
        }
        _ => act,
    };
    // SAFETY: `act` is the caller's or its wrapped copy; `old` the caller's.
    let result = unsafe { real::sigaction(sig, act, old) };
    if result != 0 {
        HANDLERS[index].store(previous.0, Ordering::Release);
        SIGINFO[index].store(previous.1, Ordering::Release);
    // SAFETY: on success a non-null `old` holds the previous action.
    } else if let Some(old) = unsafe { old.as_mut() }
        && old.sa_sigaction == trampoline_address()
    {
        old.sa_sigaction = previous.0;
        if !previous.1 {
            old.sa_flags &= !libc::SA_SIGINFO;
        }
    }
    result
}

/// `signal(2)`, with glibc's BSD semantics (`SA_RESTART`), through the
/// interposed [`sigaction`].
///
/// # Safety
///
/// As for `signal(2)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn signal(sig: c_int, handler: sighandler_t) -> sighandler_t {
    // SAFETY: all-zero is a valid sigaction (empty mask, no flags).
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = handler;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: zeroed memory is a valid sigaction to write into.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: both point at valid sigactions.
    if unsafe { sigaction(sig, &raw const action, &raw mut old) } == 0 {
        old.sa_sigaction
    } else {
        libc::SIG_ERR
    }
}
