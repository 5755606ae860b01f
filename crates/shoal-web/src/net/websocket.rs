//! The browser's WebSocket as a libp2p transport (`websocket-websys`),
//! with one fix: its connection is looked at again every
//! [`RECHECK`] while a read or write waits. libp2p-websocket-websys 0.6.0
//! wakes a waiting reader only when data arrives and a waiting opener only
//! when the socket opens, never on the socket's `close` or `error` events:
//! a dial to a port where nothing listens would surface only at libp2p's
//! 10 s upgrade timeout, and a daemon that went away only when pings time
//! out. Polled again, the connection sees the socket closed and reports a
//! broken pipe at once.
//!
//! It owns that wrapper; the stack is swarm.rs's.

use futures::{AsyncRead, AsyncWrite, FutureExt};
use futures_timer::Delay;
use libp2p::Transport;
use libp2p::core::transport::{DialOpts, ListenerId, TransportError, TransportEvent};
use libp2p::{Multiaddr, websocket_websys};
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How often a waiting read or write looks at the socket again.
pub(crate) const RECHECK: Duration = Duration::from_millis(200);

/// `websocket-websys`'s transport, its connections [`Watched`].
#[derive(Default)]
pub(crate) struct WatchedTransport(websocket_websys::Transport);

impl Transport for WatchedTransport {
    type Output = Watched<websocket_websys::Connection>;
    type Error = websocket_websys::Error;
    type ListenerUpgrade = futures::future::Ready<Result<Self::Output, Self::Error>>;
    type Dial = futures::future::BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn listen_on(
        &mut self,
        id: ListenerId,
        addr: Multiaddr,
    ) -> Result<(), TransportError<Self::Error>> {
        self.0.listen_on(id, addr)
    }

    fn remove_listener(&mut self, id: ListenerId) -> bool {
        self.0.remove_listener(id)
    }

    fn dial(
        &mut self,
        addr: Multiaddr,
        opts: DialOpts,
    ) -> Result<Self::Dial, TransportError<Self::Error>> {
        // websocket-websys would dial the first hop of a relayed address
        // (it reads only its start): a circuit is the relay transport's.
        if crate::net::address::is_relayed(&addr) {
            return Err(TransportError::MultiaddrNotSupported(addr));
        }
        Ok(self
            .0
            .dial(addr, opts)?
            .map(|c| c.map(Watched::new))
            .boxed())
    }

    fn poll(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<TransportEvent<Self::ListenerUpgrade, Self::Error>> {
        // A tab listens on nothing.
        Poll::Pending
    }
}

/// A byte stream polled again every [`RECHECK`] while a read or a write
/// waits. Flushing and closing pass through: the socket's `close` event
/// does wake a waiting close, and a flush waits only on the browser's
/// buffer draining.
pub(crate) struct Watched<C> {
    inner: C,
    read_again: Option<Delay>,
    write_again: Option<Delay>,
}

impl<C> Watched<C> {
    fn new(inner: C) -> Self {
        Watched {
            inner,
            read_again: None,
            write_again: None,
        }
    }
}

/// After a `Pending`: makes sure `cx` is woken within [`RECHECK`].
fn again(timer: &mut Option<Delay>, cx: &mut Context<'_>) {
    let delay = timer.get_or_insert_with(|| Delay::new(RECHECK));
    if delay.poll_unpin(cx).is_ready() {
        *delay = Delay::new(RECHECK);
        let _ = delay.poll_unpin(cx);
    }
}

/// Passes `poll` through, arming `timer` when it is pending. A timer is
/// kept, not dropped, when the poll is ready (at most one spare wake-up
/// later), so a busy connection does not make and clear a browser timeout
/// per read.
fn watched<T>(timer: &mut Option<Delay>, cx: &mut Context<'_>, poll: Poll<T>) -> Poll<T> {
    if poll.is_pending() {
        again(timer, cx);
    }
    poll
}

impl<C: AsyncRead + Unpin> AsyncRead for Watched<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        watched(&mut this.read_again, cx, poll)
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for Watched<C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        watched(&mut this.write_again, cx, poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}
