//! [`Receiver`] as a futures-core [`Stream`]: the stream of messages, ending
//! when the channel is closed and drained. So `StreamExt` combinators
//! (`next`, `map`, `collect`, `forward`...) work on a greenloop channel.
//!
//! `poll_next` is [`Receiver::poll_recv`]: a `Pending` poll leaves the
//! receiver registered as waiting until the next poll. A stream that is
//! dropped, or no longer polled, while registered loses no message: the
//! next one is handed to it and stays there for the next receive (see
//! [`Receiver::poll_recv`]).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_core::Stream;

use super::Receiver;

impl<T> Stream for Receiver<T> {
    type Item = T;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.get_mut().poll_recv(cx)
    }
}
