//! Socket addresses, and name lookups that never stall a scheduler.
//!
//! `getaddrinfo(3)` blocks: it reads files, and may ask a DNS server and
//! wait for the answer. Called on a thread that runs green threads or
//! tasks, it stalls every one of them for the whole lookup. So
//! [`ToSocketAddrs`] tells a literal address from a name *without* a
//! lookup, and a name is looked up:
//!
//! ```text
//!  literal IP and port ───────────────────────────────▶ used as is, no lookup
//!  a name, in a green thread or on an executor thread ─▶ on the blocking pool
//!                                                        (the green thread parks,
//!                                                        the task awaits)
//!  a name, on a plain OS thread ───────────────────────▶ on the calling thread
//! ```
//!
//! Lookups share the global blocking pool: a burst runs
//! [`DEFAULT_MAX_THREADS`](greenloop_runtime::blocking::DEFAULT_MAX_THREADS)
//! at a time and queues the rest; past the pool's queue bound a lookup
//! waits for room: a green thread's parks, a task's awaits (see the pool's
//! back-pressure docs).
//!
//! The trait is greenloop's own (like tokio's and async-net's) because the
//! pool needs an owned, `Send` name, and `std::net::ToSocketAddrs` offers
//! no way to tell a literal from a name before resolving it. It is
//! implemented for the same types as std's.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use greenloop_runtime::blocking::{Pool, spawn_blocking};
use greenloop_runtime::{green, task};

/// What an address argument holds: addresses, or a name to look up.
#[doc(hidden)]
#[derive(Debug)]
pub enum Lookup<'a> {
    /// One literal address.
    One(SocketAddr),
    /// Literal addresses, tried in order.
    Many(&'a [SocketAddr]),
    /// A host name and a port, to look up.
    Name(String, u16),
    /// Not an address (a string without a port, for instance).
    Invalid,
}

/// Something that names one or more socket addresses: the types std's
/// `ToSocketAddrs` takes (`"host:port"`, `("host", port)`, a `SocketAddr`,
/// an `(IpAddr, u16)`, a slice of addresses...). See the module docs for
/// where a name is looked up.
///
/// ```
/// use greenloop_net::UdpSocket;
///
/// // A literal: no lookup at all. A name: looked up off the scheduler.
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind(("localhost", 0)).unwrap();
/// assert!(a.local_addr().unwrap().ip().is_loopback());
/// assert!(b.local_addr().unwrap().ip().is_loopback());
/// ```
pub trait ToSocketAddrs {
    /// The addresses, or the name to look up.
    #[doc(hidden)]
    fn lookup(&self) -> Lookup<'_>;
}

impl ToSocketAddrs for SocketAddr {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::One(*self)
    }
}

impl ToSocketAddrs for SocketAddrV4 {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::One((*self).into())
    }
}

impl ToSocketAddrs for SocketAddrV6 {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::One((*self).into())
    }
}

impl ToSocketAddrs for (IpAddr, u16) {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::One((*self).into())
    }
}

impl ToSocketAddrs for (Ipv4Addr, u16) {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::One((*self).into())
    }
}

impl ToSocketAddrs for (Ipv6Addr, u16) {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::One((*self).into())
    }
}

/// A host (a literal IP or a name) and a port.
fn host_port(host: &str, port: u16) -> Lookup<'static> {
    match host.parse::<IpAddr>() {
        Ok(ip) => Lookup::One((ip, port).into()),
        Err(_) => Lookup::Name(host.to_owned(), port),
    }
}

impl ToSocketAddrs for (&str, u16) {
    fn lookup(&self) -> Lookup<'_> {
        host_port(self.0, self.1)
    }
}

impl ToSocketAddrs for (String, u16) {
    fn lookup(&self) -> Lookup<'_> {
        host_port(&self.0, self.1)
    }
}

/// `"host:port"`, as std parses it: a literal `ip:port` (IPv6 in
/// brackets), or a name and a port split at the last colon.
impl ToSocketAddrs for str {
    fn lookup(&self) -> Lookup<'_> {
        if let Ok(addr) = self.parse::<SocketAddr>() {
            return Lookup::One(addr);
        }
        match self.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>())) {
            Some((host, Ok(port))) => Lookup::Name(host.to_owned(), port),
            _ => Lookup::Invalid,
        }
    }
}

impl ToSocketAddrs for String {
    fn lookup(&self) -> Lookup<'_> {
        self.as_str().lookup()
    }
}

impl ToSocketAddrs for [SocketAddr] {
    fn lookup(&self) -> Lookup<'_> {
        Lookup::Many(self)
    }
}

impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {
    fn lookup(&self) -> Lookup<'_> {
        (**self).lookup()
    }
}

/// Whether a lookup here would stall green threads or tasks.
fn on_a_scheduler() -> bool {
    green::in_green_thread() || task::live_tasks().is_some()
}

/// Looks `host:port` up on the calling thread: `getaddrinfo(3)`, or the
/// resolver a test installed (feature `test-resolver`).
fn lookup_here(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    #[cfg(feature = "test-resolver")]
    if let Some(resolve) = test_resolver::installed() {
        return resolve(host, port);
    }
    std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
}

/// A seam for greenloop's own tests: a resolver that replaces
/// `getaddrinfo(3)` for every lookup of the process, so a test can make
/// lookups slow and count where they run. Built only with the
/// `test-resolver` feature; not a stable API.
#[cfg(feature = "test-resolver")]
#[doc(hidden)]
pub mod test_resolver {
    use std::io;
    use std::net::SocketAddr;
    use std::sync::OnceLock;

    /// A resolver: a host and a port to their addresses.
    pub type Resolve = fn(&str, u16) -> io::Result<Vec<SocketAddr>>;

    static INSTALLED: OnceLock<Resolve> = OnceLock::new();

    /// Makes `resolve` answer every later lookup of this process; `false`
    /// (and no change) if a resolver is installed already.
    pub fn install(resolve: Resolve) -> bool {
        INSTALLED.set(resolve).is_ok()
    }

    /// The installed resolver, if any.
    pub(crate) fn installed() -> Option<Resolve> {
        INSTALLED.get().copied()
    }
}

/// Looks `host:port` up: on the blocking pool from a scheduler's thread,
/// waiting blocking-style (parks a green thread); on this thread elsewhere.
pub(crate) fn lookup_blocking(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    if !on_a_scheduler() {
        return lookup_here(&host, port);
    }
    spawn_blocking(move || lookup_here(&host, port)).join().map_err(lookup_failed)?
}

/// Looks `host:port` up on the blocking pool, awaiting room in its queue
/// and then the answer.
pub(crate) async fn lookup_async(host: String, port: u16) -> io::Result<Vec<SocketAddr>> {
    let job = Pool::global().spawn_async(move || lookup_here(&host, port)).await;
    job.await.map_err(lookup_failed)?
}

/// The error of a lookup job that did not finish (it panicked).
fn lookup_failed(error: greenloop_runtime::task::JoinError) -> io::Error {
    io::Error::other(format!("name lookup on the blocking pool: {error}"))
}

/// Calls `f` on each address of `addrs` until one succeeds; the last
/// error if none does.
pub(crate) fn each_addr<A: ToSocketAddrs + ?Sized, T>(
    addrs: &A,
    f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    match addrs.lookup() {
        Lookup::One(addr) => first_ok([addr], f),
        Lookup::Many(list) => first_ok(list.iter().copied(), f),
        Lookup::Name(host, port) => first_ok(lookup_blocking(host, port)?, f),
        Lookup::Invalid => Err(invalid()),
    }
}

/// std's error for a string that is no `host:port`.
pub(crate) fn invalid() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "invalid socket address")
}

/// `f` on each address until one succeeds; the last error if none does.
fn first_ok<T>(
    addrs: impl IntoIterator<Item = SocketAddr>,
    mut f: impl FnMut(SocketAddr) -> io::Result<T>,
) -> io::Result<T> {
    let mut last = None;
    for addr in addrs {
        match f(addr) {
            Ok(value) => return Ok(value),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(no_address))
}

/// The error of a lookup that gave no address.
pub(crate) fn no_address() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "could not resolve to any address")
}

#[cfg(test)]
mod tests {
    use super::{Lookup, ToSocketAddrs};
    use std::net::{Ipv6Addr, SocketAddr};

    fn one(lookup: Lookup<'_>) -> Option<SocketAddr> {
        match lookup {
            Lookup::One(addr) => Some(addr),
            _ => None,
        }
    }

    #[test]
    fn literals_need_no_lookup() {
        let v4: SocketAddr = "127.0.0.1:80".parse().unwrap();
        let v6: SocketAddr = "[::1]:80".parse().unwrap();
        assert_eq!(one("127.0.0.1:80".lookup()), Some(v4));
        assert_eq!(one("[::1]:80".lookup()), Some(v6));
        assert_eq!(one(("127.0.0.1", 80).lookup()), Some(v4));
        assert_eq!(one(("::1", 80).lookup()), Some(v6));
        assert_eq!(one((Ipv6Addr::LOCALHOST, 80).lookup()), Some(v6));
        assert_eq!(one(String::from("127.0.0.1:80").lookup()), Some(v4));
        let by_ref: &SocketAddr = &v4;
        assert_eq!(one(ToSocketAddrs::lookup(&by_ref)), Some(v4));
        assert!(matches!([v4, v6][..].lookup(), Lookup::Many([_, _])));
    }

    #[test]
    fn names_are_split_like_std() {
        for (input, host, port) in [("localhost:80", "localhost", 80), ("a.b:0", "a.b", 0)] {
            match input.lookup() {
                Lookup::Name(h, p) => assert_eq!((h.as_str(), p), (host, port), "{input}"),
                other => panic!("{input}: {other:?}"),
            }
        }
        match ("localhost".to_string(), 7).lookup() {
            Lookup::Name(h, 7) => assert_eq!(h, "localhost"),
            other => panic!("{other:?}"),
        }
        // No port, or a bad one: an error, as from std.
        for bad in ["localhost", "localhost:x", "localhost:70000"] {
            let err = super::each_addr(bad, Ok).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput, "{bad}: {err}");
        }
    }
}
