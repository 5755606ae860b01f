//! Sync Details, `GET /api/collections/{c}/records/{id}/sync?peer=P`: one
//! record as this node holds it and as the peer does — every slot with its
//! value, clock and life — and its status, for the dashboard's drawer.
//!
//! The peer's state is fetched live and never merged (pull does that). The
//! status follows the integrity report's rules (`shoal_core` recon
//! `Status`): the same state digest on both sides is `in-sync` (or
//! `assets-missing` while a blob it references is not here), a record alive
//! on one side only is `local-only` / `peer-only`, alive on both in
//! different states `diverged`; deleted on both is in sync, as the report
//! does not list it. It must not write anything.

use super::extract;
use super::{Failure, Shared, blocking};
use crate::api::{ApiError, Side, SlotInfo, SyncDetails};
use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use shoal::{Change, RecordId, RecordState, Slot, SlotVersion, StateDigest, Store, refs_in};

/// The query: the peer to compare with.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SyncQuery {
    /// The peer's id.
    peer: String,
}

/// One record on both sides, and its status.
#[utoipa::path(get, path = "/api/collections/{collection}/records/{id}/sync", tag = "federation",
    params(("collection" = String, Path), ("id" = String, Path), SyncQuery),
    responses((status = 200, body = SyncDetails), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 403, body = ApiError),
        (status = 404, body = ApiError), (status = 502, body = ApiError),
        (status = 504, body = ApiError)))]
pub async fn details(
    State(control): State<Shared>,
    Path((collection, id)): Path<(String, String)>,
    Query(query): Query<SyncQuery>,
) -> Result<Json<SyncDetails>, Failure> {
    let name = extract::collection(&collection)?;
    let id = extract::record_id(&id)?;
    let peer = extract::peer(&query.peer)?;
    let store = control.store.clone();
    let (c, i) = (name.clone(), id.clone());
    let local = blocking(move || local_side(&store, c.as_str(), &i)).await?;
    let remote = control
        .node
        .peer_record(peer, &name, &id)
        .await
        .map_err(|e| Failure::federation(&e))?;
    if local.is_none() && remote.is_none() {
        return Err(Failure::not_found(format!(
            "neither this node nor the peer has record {name}/{id}"
        )));
    }
    let status = status(&id, local.as_ref(), remote.as_deref());
    Ok(Json(SyncDetails {
        collection: name.to_string(),
        id: id.to_string(),
        peer: peer.to_string(),
        status: status.to_string(),
        local: local.map(|(changes, missing)| side(&changes, missing)),
        remote: remote.map(|changes| side(&changes, Vec::new())),
    }))
}

/// This node's slots of the record and the blobs it references that are
/// not here; `None` if never seen here.
type Local = (Vec<Change>, Vec<String>);

fn local_side(store: &Store, collection: &str, id: &RecordId) -> Result<Option<Local>, Failure> {
    let Some(changes) = store
        .record_changes(collection, id.as_str())
        .map_err(Failure::store)?
    else {
        return Ok(None);
    };
    let mut missing = Vec::new();
    if let Some(value) = state_of(&changes).render() {
        // A malformed reference was refused when written; none is missing.
        for blob in refs_in(&Value::Object(value)).unwrap_or_default() {
            if !store.has_blob(&blob.hash).map_err(Failure::store)? {
                missing.push(blob.hash.to_hex());
            }
        }
    }
    Ok(Some((changes, missing)))
}

fn state_of(changes: &[Change]) -> RecordState {
    RecordState::from_slots(changes.iter().map(|c| {
        (
            c.slot.clone(),
            SlotVersion {
                value: c.value.clone(),
                clock: c.clock,
                life: c.life,
                pred: c.pred,
            },
        )
    }))
}

/// The status of the record between the two sides.
fn status(id: &RecordId, local: Option<&Local>, remote: Option<&[Change]>) -> &'static str {
    let alive = |changes: Option<&[Change]>| changes.is_some_and(|c| state_of(c).is_alive());
    let local_changes = local.map(|(changes, _)| changes.as_slice());
    let same = match (local_changes, remote) {
        (Some(l), Some(r)) => StateDigest::of_changes(id, l) == StateDigest::of_changes(id, r),
        _ => false,
    };
    let assets_missing = local.is_some_and(|(_, missing)| !missing.is_empty());
    match (alive(local_changes), alive(remote)) {
        (true, true) if same && assets_missing => "assets-missing",
        (true, true) if same => "in-sync",
        (true, true) => "diverged",
        (true, false) => "local-only",
        (false, true) => "peer-only",
        (false, false) => "in-sync",
    }
}

/// One side as the API shows it.
fn side(changes: &[Change], missing_blobs: Vec<String>) -> Side {
    let state = state_of(changes);
    Side {
        alive: state.is_alive(),
        value: state.render().map(Value::Object),
        life: state.life().0,
        slots: state.slots().map(|(slot, v)| slot_info(slot, v)).collect(),
        missing_blobs,
    }
}

fn slot_info(slot: &Slot, version: &SlotVersion) -> SlotInfo {
    let (name, kind, field, key) = match slot {
        Slot::Life => ("life".to_string(), "life", None, None),
        Slot::Field(f) => (f.to_string(), "field", Some(f.to_string()), None),
        Slot::Entry(f, k) => (
            format!("{f}[{k}]"),
            "entry",
            Some(f.to_string()),
            Some(k.clone()),
        ),
    };
    SlotInfo {
        slot: name,
        kind: kind.to_string(),
        field,
        key,
        value: version.value.as_ref().map(|v| v.to_value()),
        clock: version.clock.to_string(),
        wall_ms: version.clock.hlc.wall_ms(),
        site: version.clock.site.to_string(),
        life: version.life.0,
    }
}
