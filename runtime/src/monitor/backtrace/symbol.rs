//! Names for code addresses, with `dladdr` only (no new dependency).
//!
//! `dladdr` finds the loaded object holding an address and the nearest
//! symbol in its dynamic symbol table. Shared libraries export most of
//! their functions (libc's `clock_nanosleep` resolves); an executable
//! exports few unless linked with `-rdynamic`, so its frames print as
//! `object+0xoffset`, which `addr2line -f -C -e object 0xoffset` resolves
//! with the object's debug info. Rust's legacy mangling is shortened to
//! its path (the hash dropped); other names print as they are.

use std::ffi::CStr;

/// Text for code address `address`: `symbol+0xoff (object+0xoff)`, or
/// `object+0xoff`, or the bare address.
pub(super) fn describe(address: usize) -> String {
    // SAFETY: an all-zero Dl_info is a valid value (null pointers).
    let mut info: libc::Dl_info = unsafe { std::mem::zeroed() };
    // SAFETY: dladdr(3) only reads the address as a number and fills `info`;
    // it returns 0 when no object holds it.
    if unsafe { libc::dladdr(address as *const libc::c_void, &mut info) } == 0
        || info.dli_fname.is_null()
    {
        return format!("{address:#x}");
    }
    // SAFETY: dladdr set dli_fname to the object's NUL-terminated path,
    // valid while the object stays loaded (it holds running code).
    let object = unsafe { CStr::from_ptr(info.dli_fname) }.to_string_lossy();
    let offset = address.wrapping_sub(info.dli_fbase as usize);
    let place = format!("{object}+{offset:#x}");
    if info.dli_sname.is_null() {
        return place;
    }
    // SAFETY: dli_sname is non-null: the symbol's NUL-terminated name, in
    // the object's string table.
    let name = unsafe { CStr::from_ptr(info.dli_sname) }.to_string_lossy();
    let from_symbol = address.wrapping_sub(info.dli_saddr as usize);
    format!("{}+{from_symbol:#x} ({place})", demangle(&name))
}

/// `_ZN3std6thread5sleep17h0123456789abcdefE` as `std::thread::sleep`;
/// any other name unchanged.
fn demangle(name: &str) -> String {
    let Some(mut rest) = name.strip_prefix("_ZN").and_then(|n| n.strip_suffix('E')) else {
        return name.to_owned();
    };
    let mut parts = Vec::new();
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let Some(len) = rest[..digits].parse::<usize>().ok().filter(|&l| l <= rest.len() - digits)
        else {
            return name.to_owned();
        };
        let part = &rest[digits..digits + len];
        rest = &rest[digits + len..];
        let is_hash = rest.is_empty()
            && part.len() == 17
            && part.starts_with('h')
            && part[1..].bytes().all(|b| b.is_ascii_hexdigit());
        if !is_hash {
            parts.push(unescape(part));
        }
    }
    parts.join("::")
}

/// Legacy mangling's escapes for the characters a path segment may hold.
fn unescape(part: &str) -> String {
    let part = if part.starts_with("_$") { &part[1..] } else { part };
    part.replace("..", "::")
        .replace("$LT$", "<")
        .replace("$GT$", ">")
        .replace("$RF$", "&")
        .replace("$BP$", "*")
        .replace("$LP$", "(")
        .replace("$RP$", ")")
        .replace("$C$", ",")
        .replace("$u20$", " ")
        .replace("$u7b$", "{")
        .replace("$u7d$", "}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_lose_their_hash() {
        assert_eq!(demangle("_ZN3std6thread5sleep17h0123456789abcdefE"), "std::thread::sleep");
        assert_eq!(
            demangle("_ZN4core3ptr23drop_in_place$LT$u8$GT$17h0123456789abcdefE"),
            "core::ptr::drop_in_place<u8>"
        );
        assert_eq!(demangle("clock_nanosleep"), "clock_nanosleep");
        assert_eq!(demangle("_ZN99tooshortE"), "_ZN99tooshortE");
    }

    #[test]
    fn libc_symbols_resolve() {
        let text = describe(libc::getpid as *const () as usize);
        assert!(text.contains("getpid+0x0 ("), "{text}");
    }
}
