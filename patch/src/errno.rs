//! `errno`, read and set without any call the patch interposes.

use libc::c_int;

/// The calling thread's `errno`.
pub(crate) fn get() -> c_int {
    // SAFETY: `__errno_location` returns this thread's errno slot.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's `errno` to `value`.
pub(crate) fn set(value: c_int) {
    // SAFETY: as in `get`; the slot is writable.
    unsafe { *libc::__errno_location() = value };
}

/// Sets `errno` to `value` and returns -1, as a failing libc call does.
pub(crate) fn fail<T: From<i8>>(value: c_int) -> T {
    set(value);
    T::from(-1)
}
