//! Devices over HTTP (issue 19): the group's devices and waiting requests,
//! approving (or re-roling) and revoking a device. Each reply is the
//! devices after the change.
//!
//! What an admission means and who may sign it is the library's (and the
//! core's); this file checks parameters, reads the owner key's file and
//! shows the result. It must not decide any admission itself.

use super::extract::{self, JsonBody};
use super::{Failure, Shared, blocking};
use crate::api::{ApiError, ApproveDevice, DevicesReply};
use axum::Json;
use axum::extract::{Path, State};
use shoal::Store;
use shoal::devices::{CollectionRole, DeviceRole, OwnerKey};
use std::collections::BTreeMap;

/// The group's devices: admitted, revoked and waiting for approval.
#[utoipa::path(get, path = "/api/devices", tag = "devices", operation_id = "list_devices",
    responses((status = 200, body = DevicesReply), (status = 401, body = ApiError)))]
pub async fn list(State(control): State<Shared>) -> Result<Json<DevicesReply>, Failure> {
    let store = control.store.clone();
    let file = control.owner_key_file.clone();
    Ok(Json(blocking(move || read(&store, file.as_deref())).await?))
}

/// Admits a device (or changes its role), signed by the owner key this
/// node holds (or its own key, as an admin).
#[utoipa::path(post, path = "/api/devices/{peer}/approve", tag = "devices",
    operation_id = "approve_device",
    params(("peer" = String, Path, description = "a peer id")),
    request_body = ApproveDevice,
    responses((status = 200, body = DevicesReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError), (status = 415, body = ApiError)))]
pub async fn approve(
    State(control): State<Shared>,
    Path(peer): Path<String>,
    JsonBody(request): JsonBody<ApproveDevice>,
) -> Result<Json<DevicesReply>, Failure> {
    let peer = extract::peer(&peer)?;
    let role: DeviceRole = request
        .role
        .as_deref()
        .unwrap_or("member")
        .parse()
        .map_err(Failure::bad_request)?;
    let mut collections = BTreeMap::new();
    for (name, role) in &request.collections {
        let name = extract::collection(name)?;
        let role: CollectionRole = role.parse().map_err(Failure::bad_request)?;
        collections.insert(name, role);
    }
    let store = control.store.clone();
    let file = control.owner_key_file.clone();
    let reply = blocking(move || {
        let key = signing_key(&store, file.as_deref())?;
        store
            .admit_device(&key, &peer, role, collections, &request.name)
            .map_err(Failure::store)?;
        read(&store, file.as_deref())
    })
    .await?;
    Ok(Json(reply))
}

/// Revokes a device for good.
#[utoipa::path(post, path = "/api/devices/{peer}/revoke", tag = "devices",
    operation_id = "revoke_device",
    params(("peer" = String, Path, description = "a peer id")),
    responses((status = 200, body = DevicesReply), (status = 400, body = ApiError),
        (status = 401, body = ApiError)))]
pub async fn revoke(
    State(control): State<Shared>,
    Path(peer): Path<String>,
) -> Result<Json<DevicesReply>, Failure> {
    let peer = extract::peer(&peer)?;
    let store = control.store.clone();
    let file = control.owner_key_file.clone();
    let reply = blocking(move || {
        let key = signing_key(&store, file.as_deref())?;
        store.revoke_device(&key, &peer).map_err(Failure::store)?;
        read(&store, file.as_deref())
    })
    .await?;
    Ok(Json(reply))
}

/// The owner key from its file, if this node holds it.
fn owner_key(file: Option<&std::path::Path>) -> Result<Option<OwnerKey>, Failure> {
    let Some(file) = file else {
        return Ok(None);
    };
    match std::fs::read_to_string(file) {
        Ok(text) => OwnerKey::from_recovery_code(&text)
            .map(Some)
            .map_err(|e| Failure::internal(format!("{} is damaged: {e}", file.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Failure::internal(format!(
            "cannot read {}: {e}",
            file.display()
        ))),
    }
}

fn signing_key(store: &Store, file: Option<&std::path::Path>) -> Result<OwnerKey, Failure> {
    match owner_key(file)? {
        Some(key) => Ok(key),
        None => store.device_key().map_err(Failure::store),
    }
}

fn read(store: &Store, file: Option<&std::path::Path>) -> Result<DevicesReply, Failure> {
    let report = store.devices().map_err(Failure::store)?;
    let can_sign = owner_key(file)?.is_some()
        || report.devices.iter().any(|d| {
            d.this_device
                && d.status == shoal::devices::DeviceStatus::Admitted
                && d.role.as_deref() == Some("admin")
        });
    Ok(DevicesReply::from_report(report, can_sign))
}
