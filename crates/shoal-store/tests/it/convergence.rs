//! Replica convergence of `shoal_store::Store` (DESIGN.md §1, docs/merge.md).
//!
//! A property test runs 3–4 stores, each in its own temporary directory,
//! through a random interleaving of:
//!
//! - local writes of 1–3 records each (`Intent::Put` of whole objects, `Patch`,
//!   `Delete`, re-create by `Put`/`MapSet` after a delete, `MapSet`,
//!   `MapRemove`) over a small id space (2 collections × 3 ids), so
//!   concurrent edits, delete/edit races and concurrent re-creates happen;
//! - partial syncs: a store reads another's change log after the
//!   `SyncCursor` it keeps for that peer — through `read_for_peer` (with a
//!   small byte budget; the last chunk is applied with `apply_from`, which
//!   stores the cursor), `changes_page` or `changes_since` — a few records at
//!   a time, splits the changes into chunks applied in random order, and
//!   sometimes loses some chunks (the cursor then stays put);
//! - re-sends of an already delivered chunk, which must apply nothing;
//! - restarts (close and reopen a store).
//!
//! The edits of one write touch distinct records (ops on one record within a
//! write are pinned by `shoal-core`'s intent tests).
//!
//! Along the way it checks each local write's result against what the intent
//! means (a map edit on a field that does not show as a map is only checked
//! for the entry it sets and the other fields); that a refused write
//! (`RecordNotFound`, then retried record by record) changes nothing; that an
//! `ApplyReport` takes a new db_version exactly when it applied something;
//! that `peer_cursor` returns the cursor `apply_from` stored; that once a pass
//! over a peer's log completes, the peer's whole log applies nothing; and that
//! a restart keeps the identity, the data, the db_version, the peer cursors
//! and a clock no lower than any stored. At the end every store pulls from
//! every other until no `apply` changes anything, and then all stores must
//! hold the same `full_state()` (slots, lives and clocks), the same
//! `get`/`list`/`status` results, the state `shoal_core` computes from every
//! change seen, and a change log that is exactly their current slots.
//! Proptest keeps failing seeds in `proptest-regressions/convergence.txt`; a
//! failure prints the whole op sequence and names the failing step.
//!//!
//! The fixed cases that pin the same laws are in `convergence_fixed.rs`.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

use crate::convergence_model;
use crate::convergence_support;
use convergence_model::*;
use convergence_support::cluster::run;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 48,
        max_shrink_iters: 2048,
        // The default (next to lib.rs) cannot be found from an integration test.
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/convergence.txt",
        ))),
        ..ProptestConfig::default()
    })]

    /// Random local writes, partial, reordered, lossy and duplicated syncs and
    /// restarts; after a full exchange every replica holds the same state.
    #[test]
    fn replicas_converge(n in 3usize..=MAX_STORES, ops in prop::collection::vec(op(), 1..90)) {
        // On failure proptest prints the minimal op sequence (compact `Debug`)
        // and `run` names the failing step.
        run(n, &ops)?;
    }
}
