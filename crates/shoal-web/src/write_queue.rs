//! Group commit for the tab's local writes. A write waits in the queue
//! while a transaction is running; when that transaction completes, every
//! write waiting (up to [`MAX_GROUP`]) goes into the next one
//! (`storage.rs`, write_batch.rs: each still its own write, with its own clock tick,
//! change-log version and outcome). Each caller's promise still resolves
//! only once the transaction holding its write is complete — durable — so
//! nothing is acknowledged sooner; what changes is that writes made
//! without waiting for each other (an import, a UI that saves as the user
//! types) share one flush instead of queueing one flush each, which is
//! what a browser's storage charges for. A write made after the previous
//! one resolved runs alone, exactly as before.
//!
//! It owns the queue and the order of transactions: one at a time, writes
//! in call order, subscribers and sync sessions told of each committed
//! write (through [`WriteTarget::committed`]) in that order before its
//! caller hears. It does not decide writes (write_batch.rs) nor run the
//! transaction's steps (`idb/write_tx.rs`, `sql/write_tx.rs`).

use crate::error::WebError;
use crate::storage::Storage;
use crate::write_batch::{Committed, WriteOutcome, WriteRequest};
use futures_channel::oneshot;
use shoal_core::Intent;
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

/// Most writes one transaction carries: a bound on the rows it reads and
/// writes at once, however many writes wait.
pub const MAX_GROUP: usize = 512;

/// Most bytes of written values (as JSON) one transaction carries, unless
/// its first write alone is larger: a bound on what one commit holds at
/// once, and on how many unrelated writes one refusal of the browser (its
/// quota) fails together. A record may hold 16 MiB.
pub const MAX_GROUP_BYTES: usize = 4 << 20;

/// Where the queue's writes go and who hears of them: the open store.
pub(crate) trait WriteTarget: 'static {
    /// The store's queue.
    fn queue(&self) -> &WriteQueue;
    /// The database, or the error every waiting write gets instead (the
    /// store was closed).
    fn db(&self) -> Result<&Storage, WebError>;
    /// `write` committed as `committed` (called in write order, before
    /// the write's caller is answered).
    fn committed(&self, write: &WriteRequest, committed: &Committed);
}

/// A write waiting for its transaction, and where its outcome goes.
struct Waiting {
    write: WriteRequest,
    answer: oneshot::Sender<WriteOutcome>,
}

/// The writes waiting for a transaction, and whether one is running.
#[derive(Default)]
pub(crate) struct WriteQueue {
    waiting: RefCell<VecDeque<Waiting>>,
    running: Cell<bool>,
    /// Transactions run so far (for tests: how the writes were grouped).
    transactions: Cell<u64>,
}

impl WriteQueue {
    /// Queues `write` on `target`'s store and answers its outcome once the
    /// transaction holding it is complete (or refused it, or failed).
    pub(crate) async fn write<T: WriteTarget>(target: &Rc<T>, write: WriteRequest) -> WriteOutcome {
        let (answer, outcome) = oneshot::channel();
        let queue = target.queue();
        queue
            .waiting
            .borrow_mut()
            .push_back(Waiting { write, answer });
        if !queue.running.replace(true) {
            // Runs once the caller's turn ends: writes made in the same
            // turn are all waiting by then and share the first transaction.
            wasm_bindgen_futures::spawn_local(run(target.clone()));
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(WebError::Storage("the write was dropped unanswered".into())))
    }

    /// Transactions run so far.
    #[cfg(test)]
    fn transactions(&self) -> u64 {
        self.transactions.get()
    }
}

/// Runs transactions while writes wait, one at a time.
async fn run<T: WriteTarget>(target: Rc<T>) {
    loop {
        let group = next_group(&mut target.queue().waiting.borrow_mut());
        if group.is_empty() {
            target.queue().running.set(false);
            return;
        }
        let (writes, answers): (Vec<WriteRequest>, Vec<_>) =
            group.into_iter().map(|w| (w.write, w.answer)).unzip();
        let now = js_sys::Date::now() as u64;
        let outcomes = match target.db() {
            Ok(db) => {
                target
                    .queue()
                    .transactions
                    .set(target.queue().transactions.get() + 1);
                db.write_all(&writes, now).await
            }
            Err(error) => Err(error),
        };
        match outcomes {
            Ok(outcomes) => {
                for ((write, answer), outcome) in writes.iter().zip(answers).zip(outcomes) {
                    if let Ok(Some(committed)) = &outcome {
                        target.committed(write, committed);
                    }
                    let _ = answer.send(outcome);
                }
            }
            // Nothing of the transaction is stored: every write in it failed.
            Err(error) => {
                for answer in answers {
                    let _ = answer.send(Err(error.clone()));
                }
            }
        }
    }
}

/// The writes of the next transaction: the first waiting, then as many as
/// follow within [`MAX_GROUP`] and [`MAX_GROUP_BYTES`].
fn next_group(waiting: &mut VecDeque<Waiting>) -> Vec<Waiting> {
    let (mut n, mut bytes) = (0, 0);
    for write in waiting.iter().take(MAX_GROUP) {
        bytes += weight(&write.write.intent);
        if n > 0 && bytes > MAX_GROUP_BYTES {
            break;
        }
        n += 1;
    }
    waiting.drain(..n).collect()
}

/// The bytes of the values `intent` writes, as JSON.
fn weight(intent: &Intent) -> usize {
    /// Counts what is written to it.
    struct Counted(usize);
    impl std::io::Write for Counted {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counted = Counted(0);
    let _ = match intent {
        Intent::Put(map) | Intent::Create(map) | Intent::Patch(map) => {
            serde_json::to_writer(&mut counted, map)
        }
        Intent::MapSet { value, .. } => serde_json::to_writer(&mut counted, value),
        Intent::Delete | Intent::MapRemove { .. } => Ok(()),
    };
    counted.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::StorageKind;
    use serde_json::json;
    use shoal_core::{CollectionName, DbVersion, Intent, RecordId};
    use wasm_bindgen_test::wasm_bindgen_test;

    wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);

    /// A store for the queue alone: its database and what it was told.
    struct Target {
        queue: WriteQueue,
        db: Storage,
        closed: Cell<bool>,
        heard: RefCell<Vec<(String, DbVersion)>>,
    }

    impl WriteTarget for Target {
        fn queue(&self) -> &WriteQueue {
            &self.queue
        }
        fn db(&self) -> Result<&Storage, WebError> {
            match self.closed.get() {
                true => Err(WebError::Closed),
                false => Ok(&self.db),
            }
        }
        fn committed(&self, write: &WriteRequest, committed: &Committed) {
            self.heard
                .borrow_mut()
                .push((write.id.as_str().to_string(), committed.version));
        }
    }

    async fn target(name: &str) -> Rc<Target> {
        Storage::delete(name, StorageKind::IndexedDb).await.unwrap();
        let (db, _) = Storage::open(name, StorageKind::IndexedDb).await.unwrap();
        Rc::new(Target {
            queue: WriteQueue::default(),
            db,
            closed: Cell::new(false),
            heard: RefCell::new(Vec::new()),
        })
    }

    fn request(id: &str, intent: Intent) -> WriteRequest {
        WriteRequest {
            collection: CollectionName::new("notes").unwrap(),
            id: RecordId::new(id).unwrap(),
            intent,
        }
    }

    fn put(value: serde_json::Value) -> Intent {
        Intent::Put(value.as_object().unwrap().clone())
    }

    #[wasm_bindgen_test]
    async fn writes_made_together_share_a_transaction_and_each_gets_its_own_outcome() {
        let target = target("q-together").await;
        let mut writes = Vec::new();
        for i in 0..100 {
            writes.push(request(&format!("n{i}"), put(json!({ "i": i }))));
        }
        // A patch of a record written earlier in the same group sees it; a
        // create of a live record and a patch of a missing one are refused
        // alone.
        writes.push(request(
            "n7",
            Intent::Patch(json!({ "done": true }).as_object().unwrap().clone()),
        ));
        writes.push(request(
            "n8",
            Intent::Create(json!({ "i": 0 }).as_object().unwrap().clone()),
        ));
        writes.push(request(
            "gone",
            Intent::Patch(json!({ "i": 0 }).as_object().unwrap().clone()),
        ));
        // The same put again changes nothing.
        writes.push(request("n9", put(json!({ "i": 9 }))));
        let outcomes =
            futures::future::join_all(writes.into_iter().map(|w| WriteQueue::write(&target, w)))
                .await;
        // Made in one turn, they all waited for the queue's first transaction.
        assert_eq!(target.queue.transactions(), 1, "104 writes made together");
        for (i, outcome) in outcomes.iter().take(100).enumerate() {
            let committed = outcome.as_ref().unwrap().as_ref().unwrap();
            assert_eq!(committed.version, DbVersion(i as u64 + 1));
        }
        let patched = outcomes[100].as_ref().unwrap().as_ref().unwrap();
        assert_eq!(patched.version, DbVersion(101));
        assert_eq!(patched.value.as_deref(), Some(r#"{"done":true,"i":7}"#));
        assert_eq!(outcomes[101].as_ref().unwrap_err().code(), "already-exists");
        assert_eq!(outcomes[102].as_ref().unwrap_err().code(), "not-found");
        assert_eq!(outcomes[103], Ok(None));
        // Subscribers heard of the committed writes, in write order.
        let heard = target.heard.borrow().clone();
        assert_eq!(heard.len(), 101);
        assert!(heard.windows(2).all(|w| w[0].1 < w[1].1));
        assert_eq!(heard[100], ("n7".to_string(), DbVersion(101)));
        // All of it is stored, and the version the node took is the last one.
        let db = &target.db;
        let notes = CollectionName::new("notes").unwrap();
        let n7 = db.get(&notes, &RecordId::new("n7").unwrap()).await.unwrap();
        assert_eq!(n7.as_deref(), Some(r#"{"done":true,"i":7}"#));
        assert_eq!(
            db.get(&notes, &RecordId::new("gone").unwrap())
                .await
                .unwrap(),
            None
        );
        assert_eq!(db.meta().await.unwrap().version, DbVersion(101));
    }

    #[wasm_bindgen_test]
    async fn a_transaction_carries_at_most_max_group_writes() {
        let target = target("q-bounded").await;
        let n = 2 * MAX_GROUP + 10;
        let outcomes = futures::future::join_all((0..n).map(|i| {
            WriteQueue::write(&target, request(&format!("b{i}"), put(json!({ "i": i }))))
        }))
        .await;
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Some(_)))));
        assert_eq!(
            target.queue.transactions(),
            3,
            "{n} writes, at most {MAX_GROUP} a transaction"
        );
        assert_eq!(target.db.meta().await.unwrap().version, DbVersion(n as u64));
    }

    #[wasm_bindgen_test]
    async fn a_transaction_carries_at_most_max_group_bytes_of_values() {
        let target = target("q-bytes").await;
        // Any two together are past the bound: one transaction each.
        let big = "x".repeat(MAX_GROUP_BYTES / 2 + 1);
        let outcomes = futures::future::join_all((0..3).map(|i| {
            WriteQueue::write(
                &target,
                request(&format!("big{i}"), put(json!({ "t": big }))),
            )
        }))
        .await;
        assert!(outcomes.iter().all(|o| matches!(o, Ok(Some(_)))));
        assert_eq!(target.queue.transactions(), 3);
        // Small ones made together still share one.
        let small = futures::future::join_all((0..3).map(|i| {
            WriteQueue::write(&target, request(&format!("s{i}"), put(json!({ "i": i }))))
        }))
        .await;
        assert!(small.iter().all(|o| matches!(o, Ok(Some(_)))));
        assert_eq!(target.queue.transactions(), 4);
    }

    #[wasm_bindgen_test]
    async fn a_row_that_is_not_a_record_refuses_only_the_writes_of_its_record() {
        let target = target("q-bad-row").await;
        let notes = CollectionName::new("notes").unwrap();
        let bad = RecordId::new("bad").unwrap();
        // A row under the record's key without its version and state.
        let row = js_sys::Object::new();
        js_sys::Reflect::set(
            &row,
            &"k".into(),
            &crate::keys::record_key(&notes, &bad).into(),
        )
        .unwrap();
        let Storage::Idb(db) = &target.db else {
            unreachable!("the queue's tests run on IndexedDB")
        };
        let tx = crate::idb::tx::write(db, &[crate::idb::schema::RECORDS]).unwrap();
        crate::idb::tx::store(&tx, crate::idb::schema::RECORDS)
            .unwrap()
            .put(&row)
            .unwrap();
        crate::idb::request::completed(&tx).await.unwrap();
        let outcomes = futures::future::join_all(
            ["good", "bad", "also-good"]
                .map(|id| WriteQueue::write(&target, request(id, put(json!({ "i": 1 }))))),
        )
        .await;
        assert_eq!(target.queue.transactions(), 1);
        assert!(
            matches!(outcomes[1], Err(WebError::Corrupt(_))),
            "{:?}",
            outcomes[1]
        );
        assert_eq!(
            outcomes[0].as_ref().unwrap().as_ref().unwrap().version,
            DbVersion(1)
        );
        assert_eq!(
            outcomes[2].as_ref().unwrap().as_ref().unwrap().version,
            DbVersion(2)
        );
    }

    #[wasm_bindgen_test]
    async fn a_write_made_after_the_last_resolved_runs_alone() {
        let target = target("q-alone").await;
        for i in 0..5u64 {
            let outcome = WriteQueue::write(&target, request("one", put(json!({ "i": i })))).await;
            assert_eq!(outcome.unwrap().unwrap().version, DbVersion(i + 1));
        }
        assert_eq!(target.queue.transactions(), 5);
    }

    #[wasm_bindgen_test]
    async fn writes_waiting_when_the_store_closes_are_refused_and_the_queue_recovers() {
        let target = target("q-closed").await;
        target.closed.set(true);
        let refused = futures::future::join_all((0..3).map(|i| {
            WriteQueue::write(&target, request(&format!("c{i}"), put(json!({ "i": i }))))
        }))
        .await;
        assert!(
            refused.iter().all(|o| *o == Err(WebError::Closed)),
            "{refused:?}"
        );
        target.closed.set(false);
        let written = WriteQueue::write(&target, request("c0", put(json!({ "i": 0 })))).await;
        assert_eq!(written.unwrap().unwrap().version, DbVersion(1));
    }
}
