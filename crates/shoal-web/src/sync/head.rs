//! The end of the tab's change log, watched: every commit (a local write,
//! or a merge of a peer's changes) moves it, and each running sync session
//! waits on it to push the new changes to its peer
//! (`Session::local_committed`). Single-threaded (a tab runs on one
//! thread): shared with `Rc`, woken through the wakers that wait.
//!
//! It owns the watch only; who commits and who pushes is elsewhere.

use shoal_core::DbVersion;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct State {
    head: DbVersion,
    waiting: Vec<Waker>,
}

/// The watched head of the log; clones share it.
#[derive(Debug, Clone, Default)]
pub struct HeadWatch(Rc<RefCell<State>>);

impl HeadWatch {
    /// A watch starting at `head`.
    pub fn new(head: DbVersion) -> Self {
        HeadWatch(Rc::new(RefCell::new(State {
            head,
            waiting: Vec::new(),
        })))
    }

    /// The head now.
    pub fn head(&self) -> DbVersion {
        self.0.borrow().head
    }

    /// A commit ended the log at `head` (a lower value than known is ignored).
    pub fn advance(&self, head: DbVersion) {
        let waiting = {
            let mut state = self.0.borrow_mut();
            if head <= state.head {
                return;
            }
            state.head = head;
            std::mem::take(&mut state.waiting)
        };
        for waker in waiting {
            waker.wake();
        }
    }

    /// Resolves with the head once it is past `seen`.
    pub fn changed(&self, seen: DbVersion) -> Changed {
        Changed {
            watch: self.clone(),
            seen,
        }
    }
}

/// The future of [`HeadWatch::changed`].
#[derive(Debug)]
pub struct Changed {
    watch: HeadWatch,
    seen: DbVersion,
}

impl Future for Changed {
    type Output = DbVersion;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<DbVersion> {
        let mut state = self.watch.0.borrow_mut();
        if state.head > self.seen {
            return Poll::Ready(state.head);
        }
        if !state.waiting.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiting.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
