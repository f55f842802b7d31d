//! [`GreenloopTimer`]: hyper's `rt::Timer` on the reactor's timing wheel.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use ::hyper::rt::{Sleep, Timer};
use greenloop_runtime::time;

/// hyper's timer (header-read timeouts, keep-alive timers): each sleep is
/// a [`time::Sleep`], armed on first poll in the reactor of the thread
/// that polls it, so it works in tasks and green threads alike. `reset`
/// moves the deadline of the sleep it is given instead of allocating a
/// new one.
#[derive(Clone, Copy, Debug, Default)]
pub struct GreenloopTimer;

impl Timer for GreenloopTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        Box::pin(HyperSleep(time::sleep(duration)))
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(HyperSleep(time::sleep_until(deadline)))
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HyperSleep>() {
            Some(ours) => ours.get_mut().0.reset(new_deadline),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

/// A [`time::Sleep`] as hyper's `rt::Sleep` (which must be `Send + Sync`:
/// a `Sleep` holds only its deadline and its timer's key).
#[derive(Debug)]
struct HyperSleep(time::Sleep);

impl Future for HyperSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl Sleep for HyperSleep {}
