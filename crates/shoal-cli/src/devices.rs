//! `shoal devices`: list the group's devices and requests, approve, revoke
//! and re-role devices, and make, export and import the group's owner key
//! (its arguments and the command). The owner key lives in
//! `DATA/owner.key` (mode 0600) as its recovery code.
//!
//! What statements mean is the core's, signing and writing them the
//! library's; this file reads arguments and files and prints.

use crate::datadir::DataDir;
use crate::exit::usage;
use crate::output::Output;
use crate::peer_ref;
use crate::secrets::write_private;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use serde_json::json;
use shoal::CollectionName;
use shoal::Store;
use shoal::devices::{CollectionRole, DeviceInfo, DeviceRole, DeviceStatus, OwnerKey};
use std::collections::{BTreeMap, BTreeSet};

/// The owner key's file in the data directory.
pub const OWNER_KEY_FILE: &str = "owner.key";

/// `shoal devices`.
#[derive(Debug, Args)]
#[command(after_help = "\
A group without an owner key works as before devices: whoever holds the group
secret is a member. Once one machine makes the owner key (`shoal devices
owner-key create`), every device needs an admission signed by it (or by an
admin device): the machine admits itself and every peer it has synced with,
and a new device that joins with the invite code is refused (\"not admitted:
waiting for the owner's approval\") until the owner approves it here or on the
dashboard's Instances page. Admissions and revocations are replicated records
(collection shoal_devices), so every device learns them; a forged or unsigned
one is refused.

Roles: member (reads and writes), read-only (receives everything, members
accept nothing from it, its local writes are refused), admin (a member that may
approve and revoke, not other admins; only the owner makes admins). A role can
differ per collection: --collection notes=member. A revoked device is refused
by every member at once, gets nothing new by any path, and cannot be admitted
again.

Keep the owner key's recovery code somewhere safe (`owner-key export`); on a
new machine, `owner-key import CODE` makes it able to approve and revoke.

Examples:
  shoal devices                                   # devices and waiting requests
  shoal devices owner-key create
  shoal devices approve 12D3KooWAbc… --name kitchen-tablet --role read-only
  shoal devices role 12D3KooWAbc… member --collection diary=read-only
  shoal devices revoke 12D3KooWAbc…
  shoal devices owner-key export > /media/usb/owner-code.txt
  shoal devices owner-key import shoal-owner:…")]
pub struct DevicesArgs {
    /// What to do (default: list)
    #[command(subcommand)]
    pub action: Option<DevicesAction>,
}

/// The `shoal devices` subcommands.
#[derive(Debug, Subcommand)]
pub enum DevicesAction {
    /// List the group's devices: admitted, revoked and waiting for approval
    List,
    /// Admit a device that asked (or any peer id), signed by the owner key
    Approve(RoleArgs),
    /// Change an admitted device's role
    Role {
        /// The device's peer id (or a unique start of a known one)
        device: String,
        /// member, read-only or admin
        role: DeviceRole,
        /// Per-collection roles, COLLECTION=member|read-only (repeatable)
        #[arg(long = "collection", value_name = "COLLECTION=ROLE")]
        collections: Vec<String>,
        /// A name to show for it
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Revoke a device for good: no member talks to it any more
    Revoke {
        /// The device's peer id (or a unique start of a known one)
        device: String,
    },
    /// Make, export or import the group's owner key
    #[command(subcommand)]
    OwnerKey(OwnerKeyAction),
}

/// `shoal devices approve`.
#[derive(Debug, Args)]
pub struct RoleArgs {
    /// The device's peer id (or a unique start of a known one)
    pub device: String,
    /// member, read-only or admin
    #[arg(long, default_value = "member")]
    pub role: DeviceRole,
    /// Per-collection roles, COLLECTION=member|read-only (repeatable)
    #[arg(long = "collection", value_name = "COLLECTION=ROLE")]
    pub collections: Vec<String>,
    /// A name to show for it (at most 64 bytes)
    #[arg(long, default_value = "")]
    pub name: String,
}

/// `shoal devices owner-key`.
#[derive(Debug, Subcommand)]
pub enum OwnerKeyAction {
    /// Make the group's owner key here (once per group): admits this machine
    /// and every peer it has synced with
    Create,
    /// Print the owner key's recovery code (secret: whoever holds it can
    /// admit devices)
    Export,
    /// Keep the owner key given by its recovery code on this machine
    Import {
        /// The recovery code (shoal-owner:…)
        code: String,
    },
}

/// Runs `shoal devices`.
pub fn run(data: &DataDir, store: &Store, args: DevicesArgs, out: &mut Output) -> Result<()> {
    match args.action.unwrap_or(DevicesAction::List) {
        DevicesAction::List => list(store, out),
        DevicesAction::Approve(a) => admit(data, store, a, "approved", out),
        DevicesAction::Role {
            device,
            role,
            collections,
            name,
        } => {
            let args = RoleArgs {
                device,
                role,
                collections,
                name,
            };
            admit(data, store, args, "role set", out)
        }
        DevicesAction::Revoke { device } => {
            let peer = resolve(data, store, &device)?;
            let key = signing_key(data, store)?;
            store
                .revoke_device(&key, &peer)
                .with_context(|| format!("cannot revoke {peer}"))?;
            if out.is_json() {
                out.json(&json!({"device": peer.to_string(), "status": "revoked"}))?;
            } else {
                out.line(format_args!("{peer}: revoked"))?;
            }
            Ok(())
        }
        DevicesAction::OwnerKey(action) => owner_key(data, store, action, out),
    }
}

fn list(store: &Store, out: &mut Output) -> Result<()> {
    let report = store.devices().context("cannot read the devices")?;
    if out.is_json() {
        out.json(&serde_json::to_value(&report)?)?;
        return Ok(());
    }
    let Some(owner) = &report.owner else {
        out.line(
            "this group has no owner key: every holder of the group secret is a member \
             (`shoal devices owner-key create` turns on per-device admission)",
        )?;
        return Ok(());
    };
    out.line(format_args!("owner key {owner}"))?;
    for d in &report.devices {
        out.line(format_args!("{}", row(d)))?;
    }
    for (id, why) in &report.refused {
        out.line(format_args!("refused statement {id}: {why}"))?;
    }
    Ok(())
}

fn row(d: &DeviceInfo) -> String {
    let status = match d.status {
        DeviceStatus::Admitted => "admitted",
        DeviceStatus::Revoked => "revoked",
        DeviceStatus::Pending => "waiting for approval",
    };
    let mut text = format!("{}  {status}", d.peer);
    if let Some(role) = &d.role {
        text.push_str(&format!("  {role}"));
    }
    for (c, r) in &d.collections {
        text.push_str(&format!("  {c}={r}"));
    }
    if !d.name.is_empty() {
        text.push_str(&format!("  \"{}\"", d.name));
    }
    if d.this_device {
        text.push_str("  (this device)");
    }
    text
}

fn admit(
    data: &DataDir,
    store: &Store,
    args: RoleArgs,
    done: &str,
    out: &mut Output,
) -> Result<()> {
    let peer = resolve(data, store, &args.device)?;
    let mut collections = BTreeMap::new();
    for pair in &args.collections {
        let (name, role) = pair
            .split_once('=')
            .ok_or_else(|| usage(format!("--collection {pair:?}: expected COLLECTION=ROLE")))?;
        let name = CollectionName::new(name).map_err(|e| usage(e.to_string()))?;
        let role: CollectionRole = role.parse().map_err(|e: String| usage(e))?;
        collections.insert(name, role);
    }
    let key = signing_key(data, store)?;
    store
        .admit_device(&key, &peer, args.role, collections, &args.name)
        .with_context(|| format!("cannot admit {peer}"))?;
    if out.is_json() {
        out.json(
            &json!({"device": peer.to_string(), "status": "admitted", "role": args.role.as_str()}),
        )?;
    } else {
        out.line(format_args!("{peer}: {done} ({})", args.role))?;
    }
    Ok(())
}

/// The peer `given` names among the devices and requests this node knows
/// (and its other known peers).
fn resolve(data: &DataDir, store: &Store, given: &str) -> Result<shoal::PeerId> {
    let mut known: BTreeSet<String> = peer_ref::known_peers(data, None, Some(store));
    if let Ok(report) = store.devices() {
        known.extend(report.devices.into_iter().map(|d| d.peer));
    }
    peer_ref::resolve(given, &known)
}

/// The key this node signs with: the owner key if it holds it, else its
/// own device key (which counts only if it is an admin).
fn signing_key(data: &DataDir, store: &Store) -> Result<OwnerKey> {
    match read_owner_key(data)? {
        Some(key) => Ok(key),
        None => Ok(store.device_key()?),
    }
}

fn read_owner_key(data: &DataDir) -> Result<Option<OwnerKey>> {
    let path = data.file(OWNER_KEY_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    OwnerKey::from_recovery_code(&text)
        .map(Some)
        .map_err(|e| usage(format!("{} is damaged: {e}", path.display())))
}

fn keep_owner_key(data: &DataDir, key: &OwnerKey) -> Result<()> {
    let path = data.file(OWNER_KEY_FILE);
    write_private(&path, format!("{}\n", key.recovery_code()).as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn owner_key(
    data: &DataDir,
    store: &Store,
    action: OwnerKeyAction,
    out: &mut Output,
) -> Result<()> {
    match action {
        OwnerKeyAction::Create => {
            if read_owner_key(data)?.is_some() {
                return Err(usage(format!(
                    "{} exists already: this machine holds the owner key",
                    data.file(OWNER_KEY_FILE).display()
                )));
            }
            if let Some(owner) = store.devices()?.owner {
                return Err(usage(format!(
                    "this group already has an owner key ({owner}); import its recovery code \
                     with `shoal devices owner-key import` instead"
                )));
            }
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed)
                .map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
            let key = OwnerKey::from_seed(seed);
            keep_owner_key(data, &key)?;
            let admitted = store
                .make_owner(&key, &[])
                .context("cannot make the owner key")?;
            if out.is_json() {
                out.json(&json!({
                    "owner": key.public().short(),
                    "admitted": admitted.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                    "file": data.file(OWNER_KEY_FILE),
                }))?;
            } else {
                out.line(format_args!(
                    "owner key {} made; kept in {} (export its recovery code: `shoal devices owner-key export`)",
                    key.public().short(),
                    data.file(OWNER_KEY_FILE).display()
                ))?;
                for peer in admitted {
                    out.line(format_args!("admitted {peer} (member)"))?;
                }
            }
        }
        OwnerKeyAction::Export => {
            let key = read_owner_key(data)?.ok_or_else(|| {
                usage("this machine does not hold the owner key (no DATA/owner.key)")
            })?;
            if out.is_json() {
                out.json(&json!({"code": key.recovery_code()}))?;
            } else {
                out.line(key.recovery_code())?;
            }
        }
        OwnerKeyAction::Import { code } => {
            let key = OwnerKey::from_recovery_code(&code).map_err(|e| usage(e.to_string()))?;
            if let Some(owner) = store.devices()?.owner
                && owner != key.public().short()
            {
                return Err(usage(format!(
                    "this recovery code is not the group's owner key ({owner})"
                )));
            }
            keep_owner_key(data, &key)?;
            if out.is_json() {
                out.json(&json!({"owner": key.public().short()}))?;
            } else {
                out.line(format_args!("owner key {} kept here", key.public().short()))?;
            }
        }
    }
    Ok(())
}
