//! The replica harness of the convergence property test: a set of stores in
//! temporary directories, the sync bookkeeping between them, the steps of an
//! op sequence, the final full exchange and the convergence check.

use super::checks::{check_local, check_log, check_reads};
use super::{fail, ok};
use crate::convergence_model::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use shoal_core::{Change, CoreError, DbVersion, LogPosition, SyncCursor};
use shoal_store::{ApplyReport, Store, StoreConfig, StoreError, WriteOp};
use std::collections::BTreeMap;
use tempfile::TempDir;

/// A set of replicas and the sync bookkeeping between them.
struct Cluster {
    _dirs: Vec<TempDir>,
    stores: Vec<Store>,
    /// `cursors[to][from]`: how far `to` has received `from`'s log.
    cursors: Vec<Vec<SyncCursor>>,
    /// Chunks `to` received from `from` and applied (for re-sends).
    delivered: BTreeMap<(usize, usize), Vec<Vec<Change>>>,
    /// Every change that crossed between stores.
    seen: Vec<Change>,
}

impl Cluster {
    fn new(n: usize) -> Result<Self, TestCaseError> {
        let mut dirs = Vec::new();
        let mut stores = Vec::new();
        for _ in 0..n {
            let dir = tempfile::tempdir().map_err(fail)?;
            stores.push(ok(
                Store::open(dir.path().join("shoal.db"), StoreConfig::default()),
                "open",
            )?);
            dirs.push(dir);
        }
        Ok(Self {
            _dirs: dirs,
            stores,
            cursors: vec![vec![SyncCursor::default(); n]; n],
            delivered: BTreeMap::new(),
            seen: Vec::new(),
        })
    }

    fn n(&self) -> usize {
        self.stores.len()
    }

    /// A distinct `(from, to)` pair from two raw indices.
    fn pair(&self, from: usize, to: usize) -> (usize, usize) {
        let n = self.n();
        let from = from % n;
        (from, (from + 1 + to % (n - 1)) % n)
    }

    /// The stores an op acts on, after resolving its raw indices.
    fn resolved(&self, op: &Op) -> String {
        match op {
            Op::Write { store, .. } | Op::Reopen { store } => format!("s{}", store % self.n()),
            Op::Sync { from, to, .. } | Op::Resend { from, to, .. } => {
                let (from, to) = self.pair(*from, *to);
                format!("s{from} -> s{to}")
            }
        }
    }

    /// Applies one batch and checks the report's own consistency.
    fn apply(&mut self, to: usize, batch: &[Change]) -> Result<ApplyReport, TestCaseError> {
        self.apply_checked(to, batch, None)
    }

    /// Applies one batch with the cursor it completes, as sync does; the
    /// store then reports that cursor for the peer.
    fn apply_from(
        &mut self,
        to: usize,
        peer: &str,
        batch: &[Change],
        cursor: SyncCursor,
    ) -> Result<ApplyReport, TestCaseError> {
        let report = self.apply_checked(to, batch, Some((peer, cursor)))?;
        // A cursor inside a record is persisted as the point before it.
        prop_assert_eq!(
            ok(self.stores[to].peer_cursor(peer), "peer_cursor")?,
            cursor.durable()
        );
        Ok(report)
    }

    fn apply_checked(
        &mut self,
        to: usize,
        batch: &[Change],
        cursor: Option<(&str, SyncCursor)>,
    ) -> Result<ApplyReport, TestCaseError> {
        let before = self.stores[to].db_version();
        let report = match cursor {
            Some((peer, cursor)) => ok(
                self.stores[to].apply_from(peer, batch, cursor),
                "apply_from",
            )?,
            None => ok(self.stores[to].apply(batch), "apply")?,
        };
        let wrote = report.applied > 0;
        prop_assert_eq!(wrote, report.version.is_some(), "report {:?}", report);
        prop_assert_eq!(wrote, !report.changed.is_empty(), "report {:?}", report);
        prop_assert_eq!(
            report.applied + report.stale + report.not_newer,
            batch.len(),
            "every change gets a verdict"
        );
        match report.version {
            Some(v) => prop_assert_eq!(v, DbVersion(before.0 + 1)),
            None => prop_assert_eq!(self.stores[to].db_version(), before),
        }
        prop_assert_eq!(
            self.stores[to].db_version(),
            report.version.unwrap_or(before)
        );
        self.seen.extend_from_slice(batch);
        Ok(report)
    }

    /// Reads `from`'s log after `to`'s cursor for it: at most `limit` whole
    /// records. Returns the changes and the cursor once they are all applied.
    fn pull(
        &self,
        from: usize,
        to: usize,
        read: Read,
        limit: usize,
    ) -> Result<(Vec<Change>, SyncCursor), TestCaseError> {
        // Only the bounded peer read continues inside a record; the others
        // read it again whole, as a new session would.
        let cursor = match read {
            Read::Peer { .. } => self.cursors[to][from],
            _ => self.cursors[to][from].durable(),
        };
        let source = &self.stores[from];
        let end = LogPosition::after_version(source.db_version());
        let records = |changes: &[Change]| {
            let mut positions: Vec<LogPosition> = changes.iter().map(|c| c.position).collect();
            positions.dedup();
            positions.len()
        };
        match read {
            Read::Peer { max_bytes } => {
                let read = ok(
                    source.read_for_peer("peer", cursor, limit as u32, max_bytes),
                    "read_for_peer",
                )?;
                let next = cursor.advance_within(read.upto, read.partial, read.more);
                Ok((read.changes, next))
            }
            Read::Since if cursor == SyncCursor::complete(cursor.base) => {
                // Whole records only: stop before the (limit + 1)th record.
                let mut changes: Vec<Change> = Vec::new();
                let mut more = false;
                for change in source.changes_since(cursor.base) {
                    let change = ok(change, "changes_since")?;
                    let new_record = changes.last().is_none_or(|c| c.position != change.position);
                    if new_record && records(&changes) == limit {
                        more = true;
                        break;
                    }
                    changes.push(change);
                }
                let upto = match changes.last() {
                    Some(last) if more => last.position,
                    _ => end,
                };
                Ok((changes, cursor.advance(upto, more)))
            }
            Read::Page | Read::Since => {
                let changes = ok(
                    source.changes_page(cursor.base, cursor.position, limit),
                    "changes_page",
                )?;
                let more = records(&changes) == limit;
                let upto = match changes.last() {
                    Some(last) if more => last.position,
                    _ => end,
                };
                Ok((changes, cursor.advance(upto, more)))
            }
        }
    }

    fn peer_name(&self, store: usize) -> String {
        self.stores[store].identity().peer_id().to_string()
    }

    /// After a pass over `from`'s log completed, `to` holds everything `from`
    /// holds: `from`'s whole log applies nothing.
    fn check_complete(&mut self, from: usize, to: usize) -> Result<(), TestCaseError> {
        let log = ok(
            self.stores[from]
                .changes_since(DbVersion(0))
                .collect::<Result<Vec<_>, _>>(),
            "changes_since",
        )?;
        let report = self.apply(to, &log)?;
        prop_assert_eq!(
            report.applied,
            0,
            "s{} completed a pass over s{} but lacked some of its changes",
            to,
            from
        );
        Ok(())
    }

    fn write(&mut self, store: usize, edits: &[(usize, Edit)]) -> Result<(), TestCaseError> {
        let s = &mut self.stores[store];
        let mut before = Vec::new();
        for (record, _) in edits {
            let (c, id) = key_of(*record);
            before.push((
                ok(s.get(&c, &id), "get")?,
                ok(s.record_state(&c, &id), "record_state")?,
            ));
        }
        let version = s.db_version();
        let ops = edits.iter().map(|(record, edit)| {
            let (collection, id) = key_of(*record);
            WriteOp {
                collection,
                id,
                intent: edit.intent(),
            }
        });
        match s.write(ops) {
            Ok(outcome) => {
                prop_assert_eq!(outcome.version.is_some(), !outcome.changed.is_empty());
                prop_assert_eq!(s.db_version(), outcome.version.unwrap_or(version));
                for ((record, edit), (get, state)) in edits.iter().zip(&before) {
                    let (c, id) = key_of(*record);
                    let after = ok(s.get(&c, &id), "get")?;
                    check_local(edit, get.as_ref(), state.as_ref(), after.as_ref())?;
                }
                Ok(())
            }
            Err(StoreError::Invalid(CoreError::RecordNotFound)) => {
                // Refused as a whole: some edit needed a live record, and
                // nothing was written.
                let dead = edits
                    .iter()
                    .zip(&before)
                    .any(|((_, edit), (get, _))| edit.needs_live_record() && get.is_none());
                prop_assert!(dead, "RecordNotFound but every target was alive");
                prop_assert_eq!(s.db_version(), version);
                for ((record, _), (get, state)) in edits.iter().zip(&before) {
                    let (c, id) = key_of(*record);
                    prop_assert_eq!(&ok(s.get(&c, &id), "get")?, get);
                    prop_assert_eq!(&ok(s.record_state(&c, &id), "record_state")?, state);
                }
                // Then try the edits one by one, so the others still happen.
                if edits.len() > 1 {
                    for edit in edits {
                        self.write(store, std::slice::from_ref(edit))?;
                    }
                }
                Ok(())
            }
            Err(e) => Err(fail(format!("write failed: {e}"))),
        }
    }

    fn reopen(&mut self, store: usize) -> Result<(), TestCaseError> {
        let peers: Vec<String> = (0..self.n())
            .filter(|&i| i != store)
            .map(|i| self.peer_name(i))
            .collect();
        let old = self.stores.remove(store);
        let path = old.path().to_path_buf();
        let site = old.identity().site();
        let version = old.db_version();
        let full = ok(old.full_state(), "full_state")?;
        let mut cursors = Vec::new();
        for peer in &peers {
            cursors.push(ok(old.peer_cursor(peer), "peer_cursor")?);
        }
        drop(old);
        let new = ok(Store::open(&path, StoreConfig::default()), "reopen")?;
        prop_assert_eq!(new.identity().site(), site);
        prop_assert_eq!(new.db_version(), version);
        let max_stored = full
            .values()
            .flat_map(|state| state.slots().map(|(_, v)| v.clock.hlc))
            .max()
            .unwrap_or_default();
        prop_assert!(
            new.last_hlc() >= max_stored,
            "restored clock {} below a stored one {}",
            new.last_hlc(),
            max_stored
        );
        prop_assert_eq!(&ok(new.full_state(), "full_state")?, &full);
        for (peer, cursor) in peers.iter().zip(cursors) {
            prop_assert_eq!(ok(new.peer_cursor(peer), "peer_cursor")?, cursor);
        }
        self.stores.insert(store, new);
        Ok(())
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        match op {
            Op::Write { store, edits } => self.write(store % self.n(), edits),
            Op::Sync {
                from,
                to,
                read,
                limit,
                chunk,
                shuffle: seed,
                lost,
            } => {
                let (from, to) = self.pair(*from, *to);
                let (batch, cursor) = self.pull(from, to, *read, *limit)?;
                let mut chunks: Vec<Vec<Change>> =
                    batch.chunks(*chunk).map(<[Change]>::to_vec).collect();
                if *seed != 0 {
                    shuffle(&mut chunks, *seed);
                }
                let peer = matches!(read, Read::Peer { .. }).then(|| self.peer_name(from));
                if peer.is_some() && !lost && chunks.is_empty() {
                    chunks.push(Vec::new()); // the cursor still moves
                }
                // A lost batch: only the first half of the chunks arrive.
                let arrive = if *lost {
                    chunks.len() / 2
                } else {
                    chunks.len()
                };
                for (i, chunk) in chunks[..arrive].iter().enumerate() {
                    let last = i + 1 == chunks.len();
                    match (&peer, last) {
                        // The last chunk carries the cursor, as sync does.
                        (Some(peer), true) => self.apply_from(to, peer, chunk, cursor)?,
                        _ => self.apply(to, chunk)?,
                    };
                    self.delivered
                        .entry((from, to))
                        .or_default()
                        .push(chunk.clone());
                }
                if !lost {
                    self.cursors[to][from] = cursor;
                    if cursor == SyncCursor::complete(cursor.base) {
                        self.check_complete(from, to)?;
                    }
                }
                Ok(())
            }
            Op::Resend { from, to, pick } => {
                let (from, to) = self.pair(*from, *to);
                let Some(chunks) = self.delivered.get(&(from, to)) else {
                    return Ok(());
                };
                let chunk = chunks[pick % chunks.len()].clone();
                let report = self.apply(to, &chunk)?;
                prop_assert_eq!(report.applied, 0, "a re-sent chunk applied something");
                prop_assert_eq!(report.version, None);
                Ok(())
            }
            Op::Reopen { store } => self.reopen(store % self.n()),
        }
    }

    /// Every store pulls everything from every other, until a whole round
    /// changes nothing anywhere.
    fn full_exchange(&mut self) -> Result<(), TestCaseError> {
        for _round in 0..10 {
            let mut changed = false;
            for to in 0..self.n() {
                for from in 0..self.n() {
                    if from == to {
                        continue;
                    }
                    let peer = self.peer_name(from);
                    loop {
                        let read = Read::Peer { max_bytes: 4096 };
                        let (batch, cursor) = self.pull(from, to, read, 7)?;
                        changed |= self.apply_from(to, &peer, &batch, cursor)?.applied > 0;
                        self.cursors[to][from] = cursor;
                        if cursor == SyncCursor::complete(cursor.base) {
                            break;
                        }
                    }
                }
            }
            if !changed {
                return Ok(());
            }
        }
        Err(fail("no fixed point after 10 full exchange rounds"))
    }

    fn check_converged(&mut self) -> Result<(), TestCaseError> {
        let reference = ok(self.stores[0].full_state(), "full_state")?;
        for (i, store) in self.stores.iter().enumerate() {
            let full = ok(store.full_state(), "full_state")?;
            prop_assert_eq!(&full, &reference, "store {} differs from store 0", i);
            check_reads(store, &full)?;
            check_log(store, &full)?;
        }
        // The stores agree with the core's merge of every change seen.
        let mut model: Full = BTreeMap::new();
        let mut all = self.seen.clone();
        for store in &self.stores {
            all.extend(ok(
                store
                    .changes_since(DbVersion(0))
                    .collect::<Result<Vec<_>, _>>(),
                "changes_since",
            )?);
        }
        for change in all {
            model
                .entry((change.collection.clone(), change.id.clone()))
                .or_default()
                .apply(
                    change.slot.clone(),
                    shoal_core::SlotVersion {
                        value: change.value.clone(),
                        clock: change.clock,
                        life: change.life,
                        pred: change.pred,
                    },
                );
        }
        prop_assert_eq!(&model, &reference, "stores differ from the core's merge");
        // A fixed point: nobody's full log changes anybody.
        for from in 0..self.n() {
            let log = ok(
                self.stores[from]
                    .changes_since(DbVersion(0))
                    .collect::<Result<Vec<_>, _>>(),
                "changes_since",
            )?;
            for to in 0..self.n() {
                let report = self.apply(to, &log)?;
                prop_assert_eq!(report.applied, 0, "full log of {} changed {}", from, to);
            }
        }
        Ok(())
    }
}

pub fn run(n: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let mut cluster = Cluster::new(n)?;
    for (i, op) in ops.iter().enumerate() {
        cluster.step(op).map_err(|e| {
            let stores = cluster.resolved(op);
            fail(format!("step {i} ({op:?}) [{stores}]: {e}"))
        })?;
    }
    cluster
        .full_exchange()
        .map_err(|e| fail(format!("full exchange: {e}")))?;
    cluster
        .check_converged()
        .map_err(|e| fail(format!("after full exchange: {e}")))
}
