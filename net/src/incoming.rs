//! A listener's incoming connections as a futures-core [`Stream`].
//!
//! [`TcpListener::incoming`] borrows the listener;
//! [`TcpListener::into_incoming`] owns it (for a `'static` accept loop).
//! Each item is one `accept4` result, registered with the reactor of the
//! thread that polls the stream; an error (`EMFILE`, for instance) is an
//! item too, and the stream goes on after it: back off before polling
//! again, as the server's accept loop does. The stream never ends.
//!
//! ```
//! use futures::StreamExt;
//! use greenloop_net::{TcpListener, TcpStream};
//!
//! let rt = greenloop_runtime::task::Runtime::new().unwrap();
//! rt.block_on(async {
//!     let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//!     let addr = listener.local_addr().unwrap();
//!     let client = TcpStream::connect_async(addr).await.unwrap();
//!     let server = listener.incoming().next().await.unwrap().unwrap();
//!     assert_eq!(server.peer_addr().unwrap(), client.local_addr().unwrap());
//! });
//! ```

use std::borrow::Borrow;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_core::Stream;

use crate::{TcpListener, TcpStream};

/// The connections accepted by a listener, as a [`Stream`]; see the
/// module docs. `L` is `&TcpListener` or `TcpListener`.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
pub struct Incoming<L> {
    listener: L,
}

impl TcpListener {
    /// The connections this listener accepts, as a [`Stream`] that borrows it.
    pub fn incoming(&self) -> Incoming<&TcpListener> {
        Incoming { listener: self }
    }

    /// The connections this listener accepts, as a [`Stream`] that owns it.
    pub fn into_incoming(self) -> Incoming<TcpListener> {
        Incoming { listener: self }
    }
}

impl<L: Borrow<TcpListener>> Incoming<L> {
    /// The listener.
    pub fn listener(&self) -> &TcpListener {
        self.listener.borrow()
    }

    /// Polls for the next connection (what `poll_next` does, without the pin).
    ///
    /// # Errors
    ///
    /// As [`TcpListener::accept`].
    pub fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<TcpStream>> {
        let (stream, _) = ready!(self.listener().poll_accept_std(cx))?;
        Poll::Ready(TcpStream::from_std(stream))
    }
}

impl<L: Borrow<TcpListener> + Unpin> Stream for Incoming<L> {
    type Item = io::Result<TcpStream>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.poll_accept(cx).map(Some)
    }
}
