//! The iterator a write takes its records from as it goes
//! ([`Collection::put_many`](crate::Collection::put_many)), and the check
//! that it does not use the store it feeds.
//!
//! That iterator runs while the write holds the store's lock, so a call
//! into the same store from it, on its thread, would wait for itself
//! forever. The call panics instead, with a message that says why, as
//! `RefCell` does for a second borrow. It owns that marker only: which
//! lock it guards is the store's (`store.rs`), and it must not take locks
//! itself. It cannot see a thread the iterator starts and waits for.

use std::cell::RefCell;

thread_local! {
    /// The stores (the addresses of their locks) whose writes this thread
    /// is feeding right now, outermost first: a `put_many` iterator may
    /// feed another store's `put_many`, whose iterator must not use either.
    static FEEDING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// An iterator feeding a write to the store whose lock is at `store`:
/// whatever runs of it — `next`, `size_hint`, its drop — runs marked as
/// feeding that store.
pub(crate) struct Feeding<I> {
    /// Taken only by the drop, so that it is dropped marked.
    inner: Option<I>,
    store: usize,
}

impl<I: Iterator> Feeding<I> {
    /// `inner`, feeding the store whose lock `store` points to.
    pub(crate) fn new<T>(inner: I, store: &T) -> Self {
        Self {
            inner: Some(inner),
            store: std::ptr::from_ref(store) as usize,
        }
    }
}

/// Runs `f` marked as feeding `store`; the mark goes when `f` returns or
/// panics.
fn marked<R>(store: usize, f: impl FnOnce() -> R) -> R {
    FEEDING.with_borrow_mut(|feeding| feeding.push(store));
    let _unmark = Unmark;
    f()
}

/// Takes the innermost mark away.
struct Unmark;

impl Drop for Unmark {
    fn drop(&mut self) {
        FEEDING.with_borrow_mut(|feeding| feeding.pop());
    }
}

impl<I: Iterator> Iterator for Feeding<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let inner = self.inner.as_mut()?;
        marked(self.store, || inner.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.as_ref().map_or((0, Some(0)), |inner| {
            marked(self.store, || inner.size_hint())
        })
    }
}

impl<I> Drop for Feeding<I> {
    fn drop(&mut self) {
        let inner = self.inner.take();
        marked(self.store, || drop(inner));
    }
}

/// Panics if this thread is feeding a write to the store whose lock is at
/// `store`: taking the lock would wait forever.
pub(crate) fn refuse_reentry<T>(store: &T) {
    let at = std::ptr::from_ref(store) as usize;
    let feeding = FEEDING.with_borrow(|feeding| feeding.contains(&at));
    assert!(
        !feeding,
        "the records given to put_many used the store they are written to: \
         the write holds the store while it takes them, so that call would wait forever; \
         read what they need before calling put_many"
    );
}
