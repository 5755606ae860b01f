//! `shoal backup DEST`: a consistent, verified copy of this node's database
//! and the blobs it holds, safe to take while `shoal serve` runs.
//!
//! The copy is built in a staging directory beside DEST and moved into place
//! only once it passed its check, so DEST is either a whole, verified backup
//! or absent. Without `--include-secrets` the backup holds no secret (the
//! node key is removed from the copy; the group key and API token are not
//! copied); with it, the copy keeps the node key and DEST/group.key is
//! written — secret material, said so on stderr. The layout is
//! `backup_files.rs`'s; restoring is `restore.rs`'s.

use crate::args::BackupArgs;
use crate::backup_files::{self, BackupDir, BackupManifest, FORMAT, Staging};
use crate::datadir::DataDir;
use crate::exit::usage;
use crate::output::{Output, hint};
use crate::progress::{Meter, Unit};
use anyhow::{Context, Result};
use serde_json::json;
use shoal::backup;

/// `shoal backup`.
pub fn run(data: &DataDir, args: BackupArgs, out: &mut Output) -> Result<()> {
    if !data.has_database()? {
        // The usual "no database here, run shoal init" error.
        data.open()?;
    }
    if !backup_files::is_absent_or_empty(&args.dest)? {
        return Err(usage(format!(
            "{} already exists and is not empty: a backup is written to a new (or empty) \
             directory, so an older backup is never overwritten; choose another DEST",
            args.dest.display()
        )));
    }
    let staging = Staging::new(&args.dest)?;
    let target = staging.data_dir();
    let copy_path = target.db_path();

    let meter = Meter::new("copying database", Unit::Pages);
    let copy = backup::copy_database(&data.db_path(), &copy_path, &mut |done, total| {
        meter.set(done, total)
    })
    .with_context(|| format!("cannot copy {}", data.db_path().display()))?;
    meter.finish();

    let meter = Meter::new("copying blobs", Unit::Bytes);
    let blobs = backup::copy_blobs(&data.db_path(), &copy_path, &copy.blobs, &mut |d, t| {
        meter.set(d, t)
    })
    .context("cannot copy the blobs")?;
    meter.finish();

    let carried = backup_files::carried_files(args.include_secrets);
    let files = backup_files::copy_small_files(data.dir(), staging.path(), &carried)?;

    let meter = Meter::new("verifying", Unit::Bytes);
    let checked = backup::check_copy(&copy_path, &mut |_stage, done, total| {
        meter.set(done, total)
    })
    .context("the backup failed its check and was not kept")?;
    meter.finish();
    if !args.include_secrets {
        backup::forget_identity(&copy_path)?;
    }

    // What the finished copy holds (blobs that vanished meanwhile are gone
    // from its index), and its digest, for the manifest.
    let kept = backup::describe_database(&copy_path)?;
    let database = backup_files::digest(&copy_path)?;
    let manifest = BackupManifest {
        format: FORMAT.into(),
        created_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
        peer_id: copy.peer_id.clone().unwrap_or_default(),
        site_id: copy.site_id.clone().unwrap_or_default(),
        db_version: kept.db_version.0,
        records: kept.records,
        tombstones: kept.tombstones,
        database: database.clone(),
        blobs: checked.blobs,
        blob_bytes: checked.blob_bytes,
        node_key: args.include_secrets,
        secrets: args.include_secrets,
    };
    BackupDir::at(staging.path()).write_manifest(&manifest)?;
    staging.commit()?;

    if args.include_secrets {
        hint(format_args!(
            "warning: {} holds this node's key and the GROUP KEY: whoever reads it can join \
             the group and read and change all its data. Keep it as safe as the key itself.",
            args.dest.display()
        ));
    }
    let vanished: Vec<String> = blobs.vanished.iter().map(|h| h.to_hex()).collect();
    if out.is_json() {
        out.json(&json!({
            "backup": args.dest,
            "peer_id": manifest.peer_id,
            "site_id": manifest.site_id,
            "db_version": manifest.db_version,
            "records": manifest.records,
            "tombstones": manifest.tombstones,
            "database_bytes": database.bytes,
            "database_blake3": database.blake3,
            "pages_checked": checked.pages,
            "blobs": checked.blobs,
            "blob_bytes": checked.blob_bytes,
            "blobs_vanished": vanished,
            "files": files,
            "secrets": args.include_secrets,
        }))?;
    } else {
        out.line(format_args!("backed up {}", args.dest.display()))?;
        out.line(format_args!(
            "records    {} ({} deleted), version {}",
            manifest.records, manifest.tombstones, manifest.db_version
        ))?;
        out.line(format_args!(
            "database   {} bytes, verified",
            database.bytes
        ))?;
        out.line(format_args!(
            "blobs      {} ({} bytes), re-hashed",
            checked.blobs, checked.blob_bytes
        ))?;
        let secrets = if args.include_secrets {
            "INCLUDED (node key and group key)"
        } else {
            "not included (restore with a new identity, then `shoal join`)"
        };
        out.line(format_args!("secrets    {secrets}"))?;
        if !vanished.is_empty() {
            hint(format_args!(
                "{} blob(s) were removed while the backup ran; a restored node fetches them \
                 from peers",
                vanished.len()
            ));
        }
    }
    Ok(())
}
