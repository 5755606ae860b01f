//! The partial filters' time sweep, paced: once when the node starts, then
//! every `NodeConfig::age_out`, the replica re-evaluates its own filters
//! that mention `now` and drops the records that aged out of them
//! ([`Replica::age_out`], on the blocking pool). A record that stops
//! matching by time alone changes nowhere, so no peer names it in a
//! `Leave`; this is how it leaves (see `docs/partial.md`).
//!
//! This file only paces and logs; what is dropped, and the rule that keeps
//! a record, are the replica's.

use crate::replica::Replica;
use std::sync::Arc;
use std::time::Duration;

/// Runs sweeps forever (until the node stops); does nothing when off.
pub(crate) async fn run(replica: Arc<dyn Replica>, every: Option<Duration>) {
    let Some(every) = every else {
        return;
    };
    loop {
        let sweeper = replica.clone();
        match tokio::task::spawn_blocking(move || sweeper.age_out()).await {
            Ok(Ok(0)) => tracing::trace!("no record aged out of the partial filters"),
            Ok(Ok(n)) => tracing::info!(
                records = n,
                "{n} records aged out of this partial replica's filters and left it"
            ),
            Ok(Err(e)) => {
                tracing::warn!("cannot sweep the partial filters for aged-out records: {e}")
            }
            Err(_) => return,
        }
        tokio::time::sleep(every).await;
    }
}
