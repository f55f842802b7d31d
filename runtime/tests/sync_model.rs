//! Property tests: each primitive against a sequential model.
//!
//! A test case is a random sequence of operations, each run in a random
//! context (a green thread, a stackless task or an OS thread). The test
//! thread issues them one at a time and, after each, asks the model what
//! must have happened: which operation finished at once, which waits, and
//! which waiting operations the step completes (with what result). It then
//! checks the real operations against that. FIFO order, hand-offs, cancel
//! safety (a waiting operation is dropped in its own context) and the
//! absence of lost wake-ups (every expected completion must arrive, or the
//! case fails after a timeout) are all checked this way. At the end, every
//! operation still waiting is cancelled and must report "cancelled": one
//! that finished behind the model's back fails the case.

mod sync_util;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use greenloop_runtime::sync::{
    Mutex, Notify, OwnedMutexGuard, OwnedSemaphorePermit, Semaphore, TryAcquireError, TryRecvError,
    TrySendError, WaitGroup, mpsc, oneshot,
};
use proptest::collection::vec;
use proptest::prelude::*;
use sync_util::{Ctx, Op, Outcome, Start, any_ctx, start, watchdog};

const LIMIT: Duration = Duration::from_secs(120);

fn config() -> ProptestConfig {
    ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() }
}

/// Checks a newly started op against the model's expectation.
fn expect_start<R: Clone + std::fmt::Debug + PartialEq>(op: &Op<R>, finishes_with: Option<R>) {
    match finishes_with {
        Some(expected) => {
            assert_eq!(op.started(), Start::Finished, "{op:?} should finish at once");
            assert_eq!(op.value(), expected, "{op:?}");
        }
        None => assert_eq!(op.started(), Start::Waiting, "{op:?} should wait"),
    }
}

/// Cancels every op still waiting in the model, last first (cancelling a
/// queue's head could let the next waiter through); none may have finished.
fn cancel_all<R: Clone + std::fmt::Debug>(waiting: impl IntoIterator<Item = Op<R>>) {
    let waiting: Vec<_> = waiting.into_iter().collect();
    for op in waiting.into_iter().rev() {
        assert!(op.peek().is_none(), "{op:?} finished although the model says it waits");
        assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} finished instead of cancelling");
    }
}

// ---------------------------------------------------------------- semaphore

#[derive(Clone, Debug)]
enum SemOp {
    Acquire(Ctx, usize),
    TryAcquire(usize),
    Release(usize),
    Cancel(usize),
    AddPermits(usize),
    Close,
}

fn sem_op() -> impl Strategy<Value = SemOp> {
    prop_oneof![
        8 => (any_ctx(), 1..=3usize).prop_map(|(c, n)| SemOp::Acquire(c, n)),
        2 => (1..=3usize).prop_map(SemOp::TryAcquire),
        6 => any::<usize>().prop_map(SemOp::Release),
        3 => any::<usize>().prop_map(SemOp::Cancel),
        1 => (1..=2usize).prop_map(SemOp::AddPermits),
        1 => Just(SemOp::Close),
    ]
}

type PermitSlot = Arc<StdMutex<Option<OwnedSemaphorePermit>>>;

fn run_semaphore(initial: usize, ops: Vec<SemOp>) {
    let sem = Arc::new(Semaphore::new(initial));
    // Model state.
    let mut permits = initial;
    let mut closed = false;
    let mut queue: VecDeque<(Op<bool>, usize, PermitSlot)> = VecDeque::new();
    let mut held: Vec<(usize, PermitSlot)> = Vec::new();

    // Serves the model's queue head while it fits; the real op must finish.
    let serve = |permits: &mut usize,
                 queue: &mut VecDeque<(Op<bool>, usize, PermitSlot)>,
                 held: &mut Vec<(usize, PermitSlot)>| {
        while queue.front().is_some_and(|(_, n, _)| *n <= *permits) {
            let (op, n, slot) = queue.pop_front().unwrap();
            *permits -= n;
            assert!(op.value(), "{op:?} should have been granted");
            held.push((n, slot));
        }
    };

    for (i, step) in ops.into_iter().enumerate() {
        match step {
            SemOp::Acquire(ctx, n) => {
                let slot: PermitSlot = Arc::default();
                let (s, out) = (sem.clone(), slot.clone());
                let op = start(ctx, format!("#{i} acquire {n}"), async move {
                    match s.acquire_many_owned(n).await {
                        Ok(permit) => {
                            *out.lock().unwrap() = Some(permit);
                            true
                        }
                        Err(_) => false,
                    }
                });
                if closed {
                    expect_start(&op, Some(false));
                } else if queue.is_empty() && permits >= n {
                    expect_start(&op, Some(true));
                    permits -= n;
                    held.push((n, slot));
                } else {
                    expect_start(&op, None);
                    queue.push_back((op, n, slot));
                }
            }
            SemOp::TryAcquire(n) => {
                let got = sem.clone().try_acquire_many_owned(n);
                if closed {
                    assert_eq!(got.unwrap_err(), TryAcquireError::Closed);
                } else if queue.is_empty() && permits >= n {
                    permits -= n;
                    held.push((n, Arc::new(StdMutex::new(Some(got.unwrap())))));
                } else {
                    assert_eq!(got.unwrap_err(), TryAcquireError::NoPermits);
                }
            }
            SemOp::Release(pick) if !held.is_empty() => {
                let (n, slot) = held.swap_remove(pick % held.len());
                let permit = slot.lock().unwrap().take().expect("held permit");
                assert_eq!(permit.num_permits(), n);
                drop(permit);
                permits += n;
                if !closed {
                    serve(&mut permits, &mut queue, &mut held);
                }
            }
            SemOp::Cancel(pick) if !queue.is_empty() => {
                let (op, _, _) = queue.remove(pick % queue.len()).unwrap();
                assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} was not waiting");
                serve(&mut permits, &mut queue, &mut held);
            }
            SemOp::AddPermits(n) => {
                sem.add_permits(n);
                permits += n;
                if !closed {
                    serve(&mut permits, &mut queue, &mut held);
                }
            }
            SemOp::Close => {
                sem.close();
                closed = true;
                for (op, _, _) in queue.drain(..) {
                    assert!(!op.value(), "{op:?} should fail: closed");
                }
            }
            SemOp::Release(_) | SemOp::Cancel(_) => {}
        }
        assert_eq!(sem.available_permits(), permits, "after step {i}");
    }
    cancel_all(queue.into_iter().map(|(op, _, _)| op));
    let held_total: usize = held.iter().map(|(n, _)| n).sum();
    drop(held);
    assert_eq!(sem.available_permits(), permits + held_total, "no permit lost");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn semaphore_matches_model(initial in 0..=3usize, ops in vec(sem_op(), 1..40)) {
        watchdog(LIMIT, move || run_semaphore(initial, ops));
    }
}

// -------------------------------------------------------------------- mutex

#[derive(Clone, Debug)]
enum MutexOp {
    Lock(Ctx),
    TryLock,
    Unlock,
    Cancel(usize),
}

fn mutex_op() -> impl Strategy<Value = MutexOp> {
    prop_oneof![
        6 => any_ctx().prop_map(MutexOp::Lock),
        1 => Just(MutexOp::TryLock),
        4 => Just(MutexOp::Unlock),
        2 => any::<usize>().prop_map(MutexOp::Cancel),
    ]
}

type GuardSlot = Arc<StdMutex<Option<OwnedMutexGuard<Vec<usize>>>>>;

fn run_mutex(ops: Vec<MutexOp>) {
    let mutex = Arc::new(Mutex::new(Vec::new()));
    let mut holder: Option<GuardSlot> = None;
    let mut queue: VecDeque<(Op<()>, usize, GuardSlot)> = VecDeque::new();
    let mut order = Vec::new();

    for (i, step) in ops.into_iter().enumerate() {
        match step {
            MutexOp::Lock(ctx) => {
                let slot: GuardSlot = Arc::default();
                let (m, out) = (mutex.clone(), slot.clone());
                let op = start(ctx, format!("#{i} lock"), async move {
                    let mut guard = m.lock_owned().await;
                    guard.push(i);
                    *out.lock().unwrap() = Some(guard);
                });
                if holder.is_none() && queue.is_empty() {
                    expect_start(&op, Some(()));
                    holder = Some(slot);
                    order.push(i);
                } else {
                    expect_start(&op, None);
                    queue.push_back((op, i, slot));
                }
            }
            MutexOp::TryLock => match mutex.clone().try_lock_owned() {
                Ok(mut guard) => {
                    assert!(holder.is_none() && queue.is_empty(), "try_lock barged");
                    guard.push(i);
                    order.push(i);
                    holder = Some(Arc::new(StdMutex::new(Some(guard))));
                }
                Err(_) => assert!(holder.is_some() || !queue.is_empty()),
            },
            MutexOp::Unlock => {
                if let Some(slot) = holder.take() {
                    drop(slot.lock().unwrap().take().expect("held guard"));
                    if let Some((op, index, slot)) = queue.pop_front() {
                        op.value();
                        order.push(index);
                        holder = Some(slot);
                    }
                }
            }
            MutexOp::Cancel(pick) if !queue.is_empty() => {
                let (op, _, _) = queue.remove(pick % queue.len()).unwrap();
                assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} was not waiting");
            }
            MutexOp::Cancel(_) => {}
        }
    }
    cancel_all(queue.into_iter().map(|(op, _, _)| op));
    drop(holder);
    assert_eq!(*mutex.try_lock().expect("unlocked at the end"), order, "FIFO hand-over order");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutex_matches_model(ops in vec(mutex_op(), 1..40)) {
        watchdog(LIMIT, move || run_mutex(ops));
    }
}

// --------------------------------------------------------------------- mpsc

#[derive(Clone, Debug)]
enum ChanOp {
    Send(Ctx),
    TrySend,
    Recv(Ctx),
    TryRecv,
    CancelSend(usize),
    CancelRecv,
    Close,
    DropSender,
}

fn chan_op() -> impl Strategy<Value = ChanOp> {
    prop_oneof![
        8 => any_ctx().prop_map(ChanOp::Send),
        2 => Just(ChanOp::TrySend),
        6 => any_ctx().prop_map(ChanOp::Recv),
        2 => Just(ChanOp::TryRecv),
        2 => any::<usize>().prop_map(ChanOp::CancelSend),
        1 => Just(ChanOp::CancelRecv),
        1 => Just(ChanOp::Close),
        1 => Just(ChanOp::DropSender),
    ]
}

/// Either sender flavour, so one model covers both.
#[derive(Clone)]
enum Tx {
    Bounded(mpsc::Sender<u32>),
    Unbounded(mpsc::UnboundedSender<u32>),
}

impl Tx {
    async fn send(&self, v: u32) -> Result<(), u32> {
        match self {
            Tx::Bounded(tx) => tx.send(v).await.map_err(|e| e.0),
            Tx::Unbounded(tx) => tx.send(v).map_err(|e| e.0),
        }
    }

    fn try_send(&self, v: u32) -> Result<(), TrySendError<u32>> {
        match self {
            Tx::Bounded(tx) => tx.try_send(v),
            Tx::Unbounded(tx) => tx.send(v).map_err(|e| TrySendError::Closed(e.0)),
        }
    }
}

/// Where the test thread keeps the receiver while no receive runs.
type RxHome = Arc<StdMutex<Option<mpsc::Receiver<u32>>>>;

/// Lends the receiver to a receive op and brings it home when the op ends
/// or is dropped (cancelled), after the `Recv` future itself was dropped.
struct Lent {
    home: RxHome,
    rx: Option<mpsc::Receiver<u32>>,
}

impl Drop for Lent {
    fn drop(&mut self) {
        *self.home.lock().unwrap() = self.rx.take();
    }
}

async fn recv_lent(home: RxHome) -> Option<u32> {
    let rx = home.lock().unwrap().take();
    let mut lent = Lent { rx, home };
    lent.rx.as_mut().expect("the receiver is home").recv().await
}

fn with_rx<R>(home: &RxHome, f: impl FnOnce(&mut mpsc::Receiver<u32>) -> R) -> R {
    f(home.lock().unwrap().as_mut().expect("the receiver is home"))
}

struct ChanModel {
    cap: usize,
    queue: VecDeque<u32>,
    sends: VecDeque<(Op<Result<(), u32>>, u32)>,
    recv: Option<Op<Option<u32>>>,
    closed: bool,
    sender_alive: bool,
}

impl ChanModel {
    /// No message will ever come: closed-and-drained.
    fn finished(&self) -> bool {
        self.queue.is_empty() && (self.closed || (!self.sender_alive && self.sends.is_empty()))
    }

    /// After a slot frees: the first waiting send delivers.
    fn admit_send(&mut self) {
        if !self.closed
            && self.queue.len() < self.cap
            && let Some((op, v)) = self.sends.pop_front()
        {
            assert_eq!(op.value(), Ok(()), "{op:?} should have been admitted");
            self.queue.push_back(v);
        }
    }

    /// A pending receive is completed by the next message or by the end.
    fn settle_recv(&mut self) {
        if self.recv.is_some() && self.finished() {
            let op = self.recv.take().unwrap();
            assert_eq!(op.value(), None, "{op:?} should see the end");
        }
    }
}

fn run_channel(cap: Option<usize>, ops: Vec<ChanOp>) {
    let (tx, rx) = match cap {
        Some(cap) => {
            let (tx, rx) = mpsc::channel(cap);
            (Tx::Bounded(tx), rx)
        }
        None => {
            let (tx, rx) = mpsc::unbounded_channel();
            (Tx::Unbounded(tx), rx)
        }
    };
    let mut tx = Some(tx);
    let home: RxHome = Arc::new(StdMutex::new(Some(rx)));
    let mut m = ChanModel {
        cap: cap.unwrap_or(usize::MAX),
        queue: VecDeque::new(),
        sends: VecDeque::new(),
        recv: None,
        closed: false,
        sender_alive: true,
    };
    let mut next = 0u32;

    for (i, step) in ops.into_iter().enumerate() {
        match step {
            ChanOp::TrySend if tx.is_some() => {
                let v = next;
                next += 1;
                let got = tx.as_ref().unwrap().try_send(v);
                if m.closed {
                    assert!(matches!(got, Err(TrySendError::Closed(x)) if x == v));
                } else if let Some(op) = m.recv.take() {
                    assert!(got.is_ok(), "handed to the waiting receiver");
                    assert_eq!(op.value(), Some(v));
                } else if m.sends.is_empty() && m.queue.len() < m.cap {
                    assert!(got.is_ok());
                    m.queue.push_back(v);
                } else {
                    assert!(matches!(got, Err(TrySendError::Full(x)) if x == v));
                }
            }
            ChanOp::Send(ctx) if tx.is_some() => {
                let v = next;
                next += 1;
                let sender = tx.clone().unwrap();
                let op = start(ctx, format!("#{i} send {v}"), async move { sender.send(v).await });
                if m.closed {
                    expect_start(&op, Some(Err(v)));
                } else if let Some(recv) = m.recv.take() {
                    expect_start(&op, Some(Ok(())));
                    assert_eq!(recv.value(), Some(v), "handed to the waiting receiver");
                } else if m.sends.is_empty() && m.queue.len() < m.cap {
                    expect_start(&op, Some(Ok(())));
                    m.queue.push_back(v);
                } else {
                    expect_start(&op, None);
                    m.sends.push_back((op, v));
                }
            }
            ChanOp::Recv(ctx) if m.recv.is_none() => {
                let op = start(ctx, format!("#{i} recv"), recv_lent(home.clone()));
                if let Some(v) = m.queue.pop_front() {
                    expect_start(&op, Some(Some(v)));
                    m.admit_send();
                } else if m.finished() {
                    expect_start(&op, Some(None));
                } else {
                    expect_start(&op, None);
                    m.recv = Some(op);
                }
            }
            ChanOp::TryRecv if m.recv.is_none() => {
                let got = with_rx(&home, |rx| rx.try_recv());
                if let Some(v) = m.queue.pop_front() {
                    assert_eq!(got, Ok(v));
                    m.admit_send();
                } else if m.finished() {
                    assert_eq!(got, Err(TryRecvError::Closed));
                } else {
                    assert_eq!(got, Err(TryRecvError::Empty));
                }
            }
            ChanOp::CancelSend(pick) if !m.sends.is_empty() => {
                let (op, _) = m.sends.remove(pick % m.sends.len()).unwrap();
                assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} was not waiting");
                m.settle_recv();
            }
            ChanOp::CancelRecv => {
                if let Some(op) = m.recv.take() {
                    assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} was not waiting");
                }
            }
            ChanOp::Close if m.recv.is_none() => {
                with_rx(&home, |rx| rx.close());
                m.closed = true;
                for (op, v) in m.sends.drain(..) {
                    assert_eq!(op.value(), Err(v), "{op:?} fails: closed");
                }
            }
            ChanOp::DropSender if tx.is_some() => {
                tx = None;
                m.sender_alive = false;
                m.settle_recv();
            }
            _ => {}
        }
        if m.recv.is_none() {
            assert_eq!(with_rx(&home, |rx| rx.len()), m.queue.len(), "after step {i}");
        }
    }
    cancel_all(m.recv.take());
    cancel_all(m.sends.drain(..).map(|(op, _)| op));
    drop(tx);
    with_rx(&home, |rx| {
        for v in m.queue.drain(..) {
            assert_eq!(rx.try_recv(), Ok(v), "queued messages are kept, in order");
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Closed));
    });
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn bounded_channel_matches_model(cap in 1..=3usize, ops in vec(chan_op(), 1..50)) {
        watchdog(LIMIT, move || run_channel(Some(cap), ops));
    }

    #[test]
    fn unbounded_channel_matches_model(ops in vec(chan_op(), 1..50)) {
        watchdog(LIMIT, move || run_channel(None, ops));
    }
}

// ------------------------------------------------------------------- notify

#[derive(Clone, Debug)]
enum NotifyOp {
    Notified(Ctx),
    NotifyOne,
    NotifyWaiters,
    Cancel(usize),
}

fn notify_op() -> impl Strategy<Value = NotifyOp> {
    prop_oneof![
        6 => any_ctx().prop_map(NotifyOp::Notified),
        4 => Just(NotifyOp::NotifyOne),
        1 => Just(NotifyOp::NotifyWaiters),
        2 => any::<usize>().prop_map(NotifyOp::Cancel),
    ]
}

fn run_notify(ops: Vec<NotifyOp>) {
    let notify = Arc::new(Notify::new());
    let mut permit = false;
    let mut queue: VecDeque<Op<()>> = VecDeque::new();
    for (i, step) in ops.into_iter().enumerate() {
        match step {
            NotifyOp::Notified(ctx) => {
                let n = notify.clone();
                let op = start(ctx, format!("#{i} notified"), async move { n.notified().await });
                if std::mem::take(&mut permit) {
                    expect_start(&op, Some(()));
                } else {
                    expect_start(&op, None);
                    queue.push_back(op);
                }
            }
            NotifyOp::NotifyOne => {
                notify.notify_one();
                match queue.pop_front() {
                    Some(op) => op.value(),
                    None => permit = true,
                }
            }
            NotifyOp::NotifyWaiters => {
                notify.notify_waiters();
                queue.drain(..).for_each(|op| op.value());
            }
            NotifyOp::Cancel(pick) if !queue.is_empty() => {
                let op = queue.remove(pick % queue.len()).unwrap();
                assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} was not waiting");
            }
            NotifyOp::Cancel(_) => {}
        }
    }
    cancel_all(queue);
    let mut probe = notify.notified();
    assert_eq!(sync_util::poll_once(&mut probe).is_ready(), permit, "stored permit");
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn notify_matches_model(ops in vec(notify_op(), 1..40)) {
        watchdog(LIMIT, move || run_notify(ops));
    }
}

// --------------------------------------------------------------- wait group

#[derive(Clone, Debug)]
enum WgOp {
    Add(usize),
    Done,
    Wait(Ctx),
    Cancel(usize),
}

fn wg_op() -> impl Strategy<Value = WgOp> {
    prop_oneof![
        2 => (1..=3usize).prop_map(WgOp::Add),
        4 => Just(WgOp::Done),
        3 => any_ctx().prop_map(WgOp::Wait),
        1 => any::<usize>().prop_map(WgOp::Cancel),
    ]
}

fn run_wait_group(ops: Vec<WgOp>) {
    let wg = WaitGroup::new();
    let mut count = 0;
    let mut waiting: Vec<Op<()>> = Vec::new();
    for (i, step) in ops.into_iter().enumerate() {
        match step {
            WgOp::Add(n) => {
                wg.add(n);
                count += n;
            }
            WgOp::Done if count > 0 => {
                wg.done();
                count -= 1;
                if count == 0 {
                    waiting.drain(..).for_each(|op| op.value());
                }
            }
            WgOp::Wait(ctx) => {
                let w = wg.clone();
                let op = start(ctx, format!("#{i} wait"), async move { w.wait().await });
                if count == 0 {
                    expect_start(&op, Some(()));
                } else {
                    expect_start(&op, None);
                    waiting.push(op);
                }
            }
            WgOp::Cancel(pick) if !waiting.is_empty() => {
                let op = waiting.swap_remove(pick % waiting.len());
                assert!(matches!(op.cancel(), Outcome::Cancelled), "{op:?} was not waiting");
            }
            WgOp::Done | WgOp::Cancel(_) => {}
        }
        assert_eq!(wg.count(), count);
    }
    cancel_all(waiting);
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn wait_group_matches_model(ops in vec(wg_op(), 1..40)) {
        watchdog(LIMIT, move || run_wait_group(ops));
    }
}

// ------------------------------------------------------------------ oneshot

#[derive(Clone, Copy, Debug)]
enum TxEnd {
    Send,
    Drop,
}

fn run_oneshot(rx_ctx: Ctx, receive_first: bool, end: TxEnd, rx_closes: bool) {
    let (tx, mut rx) = oneshot::channel::<u32>();
    if rx_closes {
        rx.close();
        match end {
            TxEnd::Send => assert_eq!(tx.send(7), Err(7)),
            TxEnd::Drop => drop(tx),
        }
        assert!(rx.try_recv().is_err());
        return;
    }
    let finish = move || match end {
        TxEnd::Send => tx.send(7).unwrap(),
        TxEnd::Drop => drop(tx),
    };
    let expected = match end {
        TxEnd::Send => Some(7),
        TxEnd::Drop => None,
    };
    if receive_first {
        let op = start(rx_ctx, "oneshot recv", async move { rx.await.ok() });
        assert_eq!(op.started(), Start::Waiting);
        finish();
        assert_eq!(op.value(), expected);
    } else {
        finish();
        let op = start(rx_ctx, "oneshot recv", async move { rx.await.ok() });
        expect_start(&op, Some(expected));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn oneshot_matches_model(
        rx_ctx in any_ctx(),
        receive_first in any::<bool>(),
        send in any::<bool>(),
        rx_closes in proptest::bool::weighted(0.2),
    ) {
        let end = if send { TxEnd::Send } else { TxEnd::Drop };
        watchdog(LIMIT, move || run_oneshot(rx_ctx, receive_first, end, rx_closes));
    }
}
