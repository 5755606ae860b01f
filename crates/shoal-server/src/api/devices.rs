//! The HTTP API's shapes for devices and roles (issue 19): `GET
//! /api/devices`, `POST /api/devices/{peer}/approve` and `.../revoke`
//! (docs/http-api.md). Shapes and how the library's report is shown; no
//! handler logic, no store access.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `GET /api/devices`: the group's devices as this node knows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DevicesReply {
    /// The owner key's fingerprint; `null`: the group has no owner, and
    /// every holder of the group secret is a member.
    pub owner: Option<String>,
    /// Whether this node can sign statements (it holds the owner key, or
    /// it is an admin device).
    pub can_sign: bool,
    /// Admitted, revoked and waiting devices.
    pub devices: Vec<DeviceView>,
    /// Statements refused (forged, unsigned, misplaced), with why.
    pub refused: Vec<RefusedStatement>,
}

/// One device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeviceView {
    /// Its peer id.
    pub peer: String,
    /// `admitted`, `revoked` or `pending` (asked, waits for approval).
    pub status: String,
    /// `member`, `read-only` or `admin`; `null` while pending.
    pub role: Option<String>,
    /// Per-collection roles overriding `role`.
    pub collections: BTreeMap<String, String>,
    /// Its name, if given.
    pub name: String,
    /// When it was admitted (ms since the Unix epoch, the signer's clock).
    pub admitted_ms: Option<u64>,
    /// When it was revoked.
    pub revoked_ms: Option<u64>,
    /// When a pending device last asked (this node's clock).
    pub requested_ms: Option<u64>,
    /// `owner`, or `admin <key fingerprint>`.
    pub signed_by: Option<String>,
    /// Whether it is this node.
    pub this_device: bool,
}

/// A stored statement that does not count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RefusedStatement {
    /// Its record id in `shoal_devices`.
    pub record: String,
    /// Why it was refused.
    pub reason: String,
}

/// `POST /api/devices/{peer}/approve`: admit a device (or change its role).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveDevice {
    /// `member` (default), `read-only` or `admin`.
    #[serde(default)]
    pub role: Option<String>,
    /// Per-collection roles: collection name to `member` or `read-only`.
    #[serde(default)]
    pub collections: BTreeMap<String, String>,
    /// A name to show (at most 64 bytes).
    #[serde(default)]
    pub name: String,
}

impl DevicesReply {
    /// The library's report, shown.
    pub fn from_report(report: shoal::devices::DevicesReport, can_sign: bool) -> Self {
        DevicesReply {
            owner: report.owner,
            can_sign,
            devices: report
                .devices
                .into_iter()
                .map(|d| DeviceView {
                    peer: d.peer,
                    status: match d.status {
                        shoal::devices::DeviceStatus::Admitted => "admitted",
                        shoal::devices::DeviceStatus::Revoked => "revoked",
                        shoal::devices::DeviceStatus::Pending => "pending",
                    }
                    .to_string(),
                    role: d.role,
                    collections: d.collections,
                    name: d.name,
                    admitted_ms: d.admitted_ms,
                    revoked_ms: d.revoked_ms,
                    requested_ms: d.requested_ms,
                    signed_by: d.signed_by,
                    this_device: d.this_device,
                })
                .collect(),
            refused: report
                .refused
                .into_iter()
                .map(|(record, reason)| RefusedStatement { record, reason })
                .collect(),
        }
    }
}
