//! `shoal restore SRC`: a new data directory from a backup, checked before
//! it is put in place, with a NEW node identity unless told otherwise.
//!
//! Two live nodes with one identity would write under one site id (their
//! clocks could collide and replicas diverge) and share one peer id (peers
//! keep one cursor per peer id, which would skip the changes of whichever
//! log is shorter). So a restore removes the node key from the copy: the
//! restored node makes a new key, hence a new peer id and site id, keeps
//! every record with its clocks, the sharing rules and its own cursors about
//! its peers, and peers catch it up from scratch as a new peer.
//! `--same-identity` keeps the old key, and only with `--old-machine-is-gone`
//! (the user's statement that the old node will never run again) and a
//! backup made with `--include-secrets`; its log then moves on by
//! `backup::LOG_SKIP` versions, past any version the old node can have
//! reached after the backup, so peers holding a cursor for this peer id do
//! not skip its new writes. The backup's layout is `backup_files.rs`'s.

use crate::args::RestoreArgs;
use crate::backup_files::{self, BackupDir, Staging};
use crate::datadir::DataDir;
use crate::exit::usage;
use crate::output::{Output, hint};
use crate::progress::{Meter, Unit};
use crate::secrets::{self, GROUP_KEY_FILE};
use anyhow::{Context, Result};
use serde_json::json;
use shoal::{StoreError, backup};

/// `shoal restore`.
pub fn run(data: &DataDir, args: RestoreArgs, out: &mut Output) -> Result<()> {
    let source = BackupDir::at(&args.src);
    let manifest = source.manifest()?;
    if args.same_identity && !manifest.node_key {
        return Err(usage(format!(
            "{} was made without --include-secrets, so it holds no node key to keep: restore \
             it without --same-identity (the restored node gets a new identity)",
            args.src.display()
        )));
    }
    if !backup_files::is_absent_or_empty(data.dir())? {
        return Err(usage(format!(
            "{} is not empty: a restore makes a new data directory and never mixes into or \
             replaces an existing one; pass --data with a new (or empty) directory",
            data.dir().display()
        )));
    }
    let found = backup_files::digest(&source.db_path())?;
    if found != manifest.database {
        return Err(StoreError::Corrupt {
            path: source.db_path(),
            detail: format!(
                "the backup is damaged: the file has {} bytes hashing to {}, the manifest says \
                 {} bytes hashing to {}",
                found.bytes, found.blake3, manifest.database.bytes, manifest.database.blake3
            ),
        }
        .into());
    }

    let staging = Staging::new(data.dir())?;
    let target = staging.data_dir();
    std::fs::copy(source.db_path(), target.db_path())
        .with_context(|| format!("cannot copy {}", source.db_path().display()))?;
    let described = backup::describe_database(&target.db_path())?;
    let meter = Meter::new("copying blobs", Unit::Bytes);
    let blobs = backup::copy_blobs(
        &source.db_path(),
        &target.db_path(),
        &described.blobs,
        &mut |d, t| meter.set(d, t),
    )?;
    meter.finish();
    if let Some(hash) = blobs.vanished.first() {
        return Err(StoreError::Corrupt {
            path: source.dir().join("shoal.blobs"),
            detail: format!(
                "the backup is damaged: blob {hash} (and {} more) it lists is not in it",
                blobs.vanished.len() - 1
            ),
        }
        .into());
    }
    if args.same_identity {
        // Peers' cursors for this peer id may be past the copy's log.
        backup::skip_log(&target.db_path())?;
    } else {
        backup::forget_identity(&target.db_path())?;
    }
    let meter = Meter::new("verifying", Unit::Bytes);
    let checked = backup::check_copy(&target.db_path(), &mut |_stage, done, total| {
        meter.set(done, total)
    })
    .with_context(|| {
        format!(
            "{} failed its check; nothing was restored",
            args.src.display()
        )
    })?;
    meter.finish();
    let carried = backup_files::carried_files(true);
    let files = backup_files::copy_small_files(source.dir(), staging.path(), &carried)?;
    // Opening makes the new node key (unless kept).
    let status = target.open()?.status()?;
    secrets::ensure_token(&target)?;
    staging.commit()?;

    let group_key = files.iter().any(|f| f == GROUP_KEY_FILE);
    if args.same_identity {
        hint(format_args!(
            "warning: this node now has the identity of {} (peer id {}). The old machine must \
             never run again with its data: two nodes with one identity make replicas diverge.",
            args.src.display(),
            manifest.peer_id
        ));
    }
    if out.is_json() {
        out.json(&json!({
            "data": data.dir(),
            "backup": args.src,
            "peer_id": status.peer_id,
            "site_id": status.site.to_string(),
            "previous_peer_id": manifest.peer_id,
            "previous_site_id": manifest.site_id,
            "same_identity": args.same_identity,
            "db_version": status.db_version.0,
            "records": described.records,
            "tombstones": described.tombstones,
            "pages_checked": checked.pages,
            "blobs": checked.blobs,
            "blob_bytes": checked.blob_bytes,
            "files": files,
            "group_key": group_key,
        }))?;
        return Ok(());
    }
    out.line(format_args!(
        "restored {} into {}",
        args.src.display(),
        data.dir().display()
    ))?;
    out.line(format_args!(
        "records  {} ({} deleted), {} blobs ({} bytes), verified",
        described.records, described.tombstones, checked.blobs, checked.blob_bytes
    ))?;
    let was = if args.same_identity {
        "kept"
    } else {
        "new; the backup's was"
    };
    out.line(format_args!(
        "peer id  {} ({was} {})",
        status.peer_id, manifest.peer_id
    ))?;
    out.line(format_args!("site id  {}", status.site))?;
    if group_key {
        out.line("next     `shoal serve`: peers catch this node up")?;
    } else {
        out.line(
            "next     `shoal join CODE` with a code from a running member (`shoal invite`), \
             then `shoal serve`: peers catch this node up",
        )?;
    }
    if !args.same_identity {
        hint(format_args!(
            "note: sharing rules other nodes set for the old peer id {} do not apply to this \
             one; set them again for {} where needed (`shoal share`)",
            manifest.peer_id, status.peer_id
        ));
    }
    Ok(())
}
