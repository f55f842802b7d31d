//! Green thread control: cancel (at every kind of park), shield and
//! `green::timeout`.

use std::cell::Cell;
use std::future::{Future, poll_fn};
use std::io::{self, Read, Write};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use greenloop_runtime::block_on;
use greenloop_runtime::green::{self, JoinHandle};
use greenloop_runtime::reactor::{Direction, IoKey, Reactor};
use greenloop_runtime::sync::{Mutex, Semaphore, mpsc};
use mio::net::UnixStream;

mod watchdog;

const LIMIT: Duration = Duration::from_secs(60);
const FOREVER: Duration = Duration::from_secs(3600);

/// Counts its drops: proves a destructor ran.
struct DropCount(Rc<Cell<usize>>);

impl Drop for DropCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() + 1);
    }
}

fn assert_cancelled<T: std::fmt::Debug + Send + 'static>(handle: JoinHandle<T>) {
    match handle.join() {
        Err(payload) => assert!(green::is_cancelled(&*payload), "joined a panic, not a cancel"),
        Ok(value) => panic!("cancelled thread returned {value:?}"),
    }
}

/// A registered non-blocking socket, read blocking-style.
struct Socket {
    stream: UnixStream,
    key: IoKey,
}

impl Socket {
    fn pair() -> (Socket, UnixStream) {
        let (mut stream, peer) = UnixStream::pair().expect("socketpair");
        let key = Reactor::current().register(&mut stream).expect("register");
        (Socket { stream, key }, peer)
    }

    /// Reads, parking the green thread until data comes.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.stream.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let reactor = Reactor::current();
                    let event =
                        block_on(poll_fn(|cx| reactor.poll_ready(self.key, Direction::Read, cx)));
                    reactor.clear_ready(self.key, event);
                }
                result => return result,
            }
        }
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = Reactor::current().deregister(self.key, &mut self.stream);
    }
}

/// A foreign future: pending until dropped, counting its drop.
struct Forever(DropCount);

impl Future for Forever {
    type Output = ();
    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        Poll::Pending
    }
}

/// The kinds of wait a cancelled thread may be parked in.
#[derive(Clone, Copy, Debug)]
enum Wait {
    Sleep,
    SocketRead,
    ChannelRecv,
    MutexLock,
    MutexHeld,
    SemaphoreAcquire,
    Join,
    ForeignFuture,
}

const WAITS: [Wait; 8] = [
    Wait::Sleep,
    Wait::SocketRead,
    Wait::ChannelRecv,
    Wait::MutexLock,
    Wait::MutexHeld,
    Wait::SemaphoreAcquire,
    Wait::Join,
    Wait::ForeignFuture,
];

/// Spawns a thread parked in `wait`, cancels it (before it starts when
/// `early`), and checks that it unwound with its destructors, that the
/// primitive still serves another waiter, and that the joiner sees
/// `Cancelled`.
fn cancel_in(wait: Wait, early: bool) {
    let drops = Rc::new(Cell::new(0));
    let guard = DropCount(drops.clone());
    let settle = || {
        for _ in 0..4 {
            green::yield_now();
        }
    };
    match wait {
        Wait::Sleep => {
            let victim = green::spawn(move || {
                let _guard = guard;
                green::sleep(FOREVER);
            });
            cancel_and_check(victim, early, &drops, settle);
        }
        Wait::SocketRead => {
            let registrations = Reactor::current().io_count();
            let (mut socket, _peer) = Socket::pair();
            let victim = green::spawn(move || {
                let _guard = guard;
                socket.read(&mut [0; 8]).map(|_| ())
            });
            cancel_and_check(victim, early, &drops, settle);
            // The socket was deregistered by its destructor; others still read.
            assert_eq!(Reactor::current().io_count(), registrations);
            let (mut socket, mut peer) = Socket::pair();
            let reader = green::spawn(move || {
                let mut buf = [0; 8];
                socket.read(&mut buf).unwrap()
            });
            settle();
            peer.write_all(b"ping").unwrap();
            assert_eq!(reader.join().unwrap(), 4);
        }
        Wait::ChannelRecv => {
            let (tx, mut rx) = mpsc::channel::<u32>(1);
            let victim = green::spawn(move || {
                let _guard = guard;
                rx.recv_blocking()
            });
            cancel_and_check(victim, early, &drops, settle);
            assert!(tx.send_blocking(1).is_err(), "the receiver outlived its cancelled thread");
        }
        Wait::MutexLock | Wait::MutexHeld => {
            let mutex = Rc::new(Mutex::new(0));
            let main_guard = matches!(wait, Wait::MutexLock).then(|| mutex.try_lock().unwrap());
            let m = mutex.clone();
            let victim = green::spawn(move || {
                let _guard = guard;
                let mut held = m.lock_blocking();
                *held += 1;
                green::sleep(FOREVER);
            });
            let m = mutex.clone();
            let rival = green::spawn(move || *m.lock_blocking() += 10);
            cancel_and_check(victim, early, &drops, settle);
            drop(main_guard);
            rival.join().unwrap();
            let expected = if matches!(wait, Wait::MutexHeld) && !early { 11 } else { 10 };
            assert_eq!(*mutex.try_lock().unwrap(), expected);
        }
        Wait::SemaphoreAcquire => {
            let semaphore = Rc::new(Semaphore::new(1));
            let held = semaphore.try_acquire().unwrap();
            let s = semaphore.clone();
            let victim = green::spawn(move || {
                let _guard = guard;
                let _permit = s.acquire_blocking();
            });
            let s = semaphore.clone();
            let rival = green::spawn(move || s.acquire_blocking().is_ok());
            cancel_and_check(victim, early, &drops, settle);
            drop(held);
            assert!(rival.join().unwrap());
            assert_eq!(semaphore.available_permits(), 1);
        }
        Wait::Join => {
            let target = green::spawn(green::park);
            let target_thread = target.thread();
            let victim = green::spawn(move || {
                let _guard = guard;
                target.join().is_ok()
            });
            cancel_and_check(victim, early, &drops, settle);
            // The target runs on, detached, and still ends when woken.
            assert_eq!(green::stats().unwrap().live_threads, 2);
            target_thread.unpark();
            settle();
            assert_eq!(green::stats().unwrap().live_threads, 1);
        }
        Wait::ForeignFuture => {
            let victim = green::spawn(move || block_on(Forever(guard)));
            cancel_and_check(victim, early, &drops, settle);
        }
    }
}

fn cancel_and_check<T: std::fmt::Debug + Send + 'static>(
    victim: JoinHandle<T>,
    early: bool,
    drops: &Rc<Cell<usize>>,
    settle: impl Fn(),
) {
    if !early {
        settle();
        assert!(!victim.is_finished());
    }
    victim.cancel();
    assert_cancelled(victim);
    assert_eq!(drops.get(), 1, "the cancelled thread's destructors did not run once");
}

#[test]
fn cancel_at_every_wait() {
    watchdog::watchdog(LIMIT, || {
        green::run(|| {
            for wait in WAITS {
                for early in [false, true] {
                    cancel_in(wait, early);
                }
            }
        });
    });
}
