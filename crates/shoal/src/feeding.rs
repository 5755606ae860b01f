//! The iterator a write takes its records from as it goes
//! ([`Collection::put_many`](crate::Collection::put_many)), and the check
//! that it does not use the store it feeds.
//!
//! That iterator runs while the write holds the store's lock, so a call
//! into the same store from it would wait for itself forever. The call
//! panics instead, with a message that says why, as `RefCell` does for a
//! second borrow. It owns that marker only: which lock it guards is the
//! store's (`store.rs`), and it must not take locks itself.

use std::cell::Cell;

thread_local! {
    /// The store (the address of its lock) whose write this thread is
    /// feeding right now; 0 when none.
    static FEEDING: Cell<usize> = const { Cell::new(0) };
}

/// An iterator feeding a write to the store whose lock is at `store`:
/// each `next` runs marked as feeding it.
pub(crate) struct Feeding<I> {
    inner: I,
    store: usize,
}

impl<I: Iterator> Feeding<I> {
    /// `inner`, feeding the store whose lock `store` points to.
    pub(crate) fn new<T>(inner: I, store: &T) -> Self {
        Self {
            inner,
            store: std::ptr::from_ref(store) as usize,
        }
    }
}

impl<I: Iterator> Iterator for Feeding<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let before = FEEDING.replace(self.store);
        // Restored even if the caller's iterator panics.
        let _restore = Restore(before);
        self.inner.next()
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

/// Puts the marker back as it was.
struct Restore(usize);

impl Drop for Restore {
    fn drop(&mut self) {
        FEEDING.set(self.0);
    }
}

/// Panics if this thread is feeding a write to the store whose lock is at
/// `store`: taking the lock would wait forever.
pub(crate) fn refuse_reentry<T>(store: &T) {
    let at = std::ptr::from_ref(store) as usize;
    assert!(
        FEEDING.get() != at,
        "the records given to put_many used the store they are written to: \
         the write holds the store while it takes them, so that call would wait forever; \
         read what they need before calling put_many"
    );
}
