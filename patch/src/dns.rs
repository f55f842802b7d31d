//! The interposed `getaddrinfo`: in a green thread, the lookup runs on the
//! blocking pool ([`spawn_blocking`]) and only the green thread waits, so
//! a slow resolver never stalls the loop. `freeaddrinfo` is libc's, as the
//! list comes from libc's `getaddrinfo` on the pool thread; a list whose
//! green thread was cancelled at shutdown meanwhile is freed with the job.

use std::ffi::CStr;

use greenloop_runtime::blocking::spawn_blocking;
use libc::{addrinfo, c_char, c_int};

use crate::gate::Route;
use crate::{errno, gate, real};

/// The fields of `hints` that `getaddrinfo(3)` reads.
#[derive(Clone, Copy)]
struct Hints {
    flags: c_int,
    family: c_int,
    socktype: c_int,
    protocol: c_int,
}

/// `getaddrinfo(3)`: a green thread waits for the blocking pool instead of
/// blocking the OS thread.
///
/// # Safety
///
/// As for `getaddrinfo(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    match gate::route() {
        Route::Green if !res.is_null() => {}
        Route::Cancelled => {
            errno::set(libc::ECANCELED);
            return libc::EAI_SYSTEM;
        }
        // SAFETY: the caller's contract is getaddrinfo(3)'s.
        _ => return unsafe { real::getaddrinfo(node, service, hints, res) },
    }
    // SAFETY: non-null names are NUL-terminated strings (contract).
    let owned =
        |name: *const c_char| (!name.is_null()).then(|| unsafe { CStr::from_ptr(name) }.to_owned());
    let (node, service) = (owned(node), owned(service));
    // SAFETY: non-null hints point at an addrinfo (contract).
    let hints = unsafe { hints.as_ref() }.map(|h| Hints {
        flags: h.ai_flags,
        family: h.ai_family,
        socktype: h.ai_socktype,
        protocol: h.ai_protocol,
    });
    let job = spawn_blocking(move || lookup(node.as_deref(), service.as_deref(), hints));
    match gate::park(|| job.join()) {
        Some(Ok((code, list))) => {
            // SAFETY: `res` is non-null and writable (contract).
            unsafe { *res = list.into_raw() };
            code
        }
        Some(Err(_)) => {
            errno::set(libc::EIO);
            libc::EAI_SYSTEM
        }
        None => {
            errno::set(libc::ECANCELED);
            libc::EAI_SYSTEM
        }
    }
}

/// A list from libc's `getaddrinfo`, freed on drop unless handed on.
struct AddrList(*mut addrinfo);

// SAFETY: the list is plain heap memory that no other thread refers to;
// whoever holds the `AddrList` owns it.
unsafe impl Send for AddrList {}

impl AddrList {
    /// The list, now the caller's to free.
    fn into_raw(self) -> *mut addrinfo {
        let list = self.0;
        std::mem::forget(self);
        list
    }
}

impl Drop for AddrList {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a list from getaddrinfo(3), owned here, freed once.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// libc's lookup, on a pool thread: its code and list.
fn lookup(node: Option<&CStr>, service: Option<&CStr>, hints: Option<Hints>) -> (c_int, AddrList) {
    let as_ptr = |name: Option<&CStr>| name.map_or(std::ptr::null(), CStr::as_ptr);
    // SAFETY: all-zero is a valid addrinfo (null pointers, zero fields).
    let mut raw: addrinfo = unsafe { std::mem::zeroed() };
    let hints = hints.map_or(std::ptr::null(), |h| {
        raw.ai_flags = h.flags;
        raw.ai_family = h.family;
        raw.ai_socktype = h.socktype;
        raw.ai_protocol = h.protocol;
        &raw const raw
    });
    let mut list: *mut addrinfo = std::ptr::null_mut();
    // SAFETY: valid strings or null, valid hints or null, a writable `list`.
    let code = unsafe { real::getaddrinfo(as_ptr(node), as_ptr(service), hints, &raw mut list) };
    (code, AddrList(list))
}
