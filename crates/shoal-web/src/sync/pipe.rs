//! An in-memory duplex byte pipe: two ends, each an `AsyncRead` and
//! `AsyncWrite`, what one writes the other reads. For running two sync
//! sessions against each other without a network (the browser tests of two
//! stores in one page, the native tests of the driver); single-threaded.
//!
//! Closing an end (or dropping it) ends the other end's reads once it has
//! read what was written before. [`duplex_bounded`] holds at most so many
//! unread bytes each way: a writer waits for the reader, as over a real
//! connection whose windows are full. [`PipeEnd::tap`] counts the bytes an end
//! wrote, for tests that check what went over the wire.

use futures::io::{AsyncRead, AsyncWrite};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug)]
struct Direction {
    bytes: VecDeque<u8>,
    capacity: usize,
    closed: bool,
    reader: Option<Waker>,
    writer: Option<Waker>,
    written: u64,
}

impl Direction {
    fn new(capacity: usize) -> Rc<RefCell<Self>> {
        Rc::new(RefCell::new(Direction {
            bytes: VecDeque::new(),
            capacity: capacity.max(1),
            closed: false,
            reader: None,
            writer: None,
            written: 0,
        }))
    }
}

/// One end of a [`duplex`] pipe.
#[derive(Debug)]
pub struct PipeEnd {
    incoming: Rc<RefCell<Direction>>,
    outgoing: Rc<RefCell<Direction>>,
}

/// A connected pair of pipe ends.
pub fn duplex() -> (PipeEnd, PipeEnd) {
    duplex_bounded(usize::MAX)
}

/// A connected pair of pipe ends holding at most `capacity` unread bytes
/// each way.
pub fn duplex_bounded(capacity: usize) -> (PipeEnd, PipeEnd) {
    let a = Direction::new(capacity);
    let b = Direction::new(capacity);
    (
        PipeEnd {
            incoming: a.clone(),
            outgoing: b.clone(),
        },
        PipeEnd {
            incoming: b,
            outgoing: a,
        },
    )
}

impl PipeEnd {
    /// Bytes this end has written so far.
    pub fn written(&self) -> u64 {
        self.outgoing.borrow().written
    }

    /// A counter of the bytes this end writes, readable after the end moved
    /// into a session.
    pub fn tap(&self) -> impl Fn() -> u64 + use<> {
        let outgoing = self.outgoing.clone();
        move || outgoing.borrow().written
    }

    fn shut(&self) {
        let mut out = self.outgoing.borrow_mut();
        out.closed = true;
        if let Some(waker) = out.reader.take() {
            waker.wake();
        }
        if let Some(waker) = out.writer.take() {
            waker.wake();
        }
    }
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        self.shut();
        self.incoming.borrow_mut().closed = true;
    }
}

impl AsyncRead for PipeEnd {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut incoming = self.incoming.borrow_mut();
        if incoming.bytes.is_empty() {
            if incoming.closed {
                return Poll::Ready(Ok(0));
            }
            incoming.reader = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let n = buf.len().min(incoming.bytes.len());
        for (slot, byte) in buf.iter_mut().zip(incoming.bytes.drain(..n)) {
            *slot = byte;
        }
        if let Some(waker) = incoming.writer.take() {
            waker.wake();
        }
        Poll::Ready(Ok(n))
    }
}

impl AsyncWrite for PipeEnd {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let mut out = self.outgoing.borrow_mut();
        if out.closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let room = out.capacity.saturating_sub(out.bytes.len());
        if room == 0 && !buf.is_empty() {
            out.writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let buf = &buf[..buf.len().min(room)];
        out.bytes.extend(buf);
        out.written += buf.len() as u64;
        if let Some(waker) = out.reader.take() {
            waker.wake();
        }
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.shut();
        Poll::Ready(Ok(()))
    }
}
