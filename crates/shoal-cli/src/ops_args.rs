//! The arguments of the commands that operate a node rather than its data:
//! `backup`, `restore` and `service`, as clap derive structs.
//!
//! Like `args.rs`, which re-exports everything here, it owns the shape of
//! the interface and its `--help`, and runs nothing.

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// Arguments of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Directory to write the backup to (must not exist, or be empty)
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// Also copy the secrets: this node's key and DIR/group.key (the backup
    /// is then as secret as the group key; needed only for --same-identity)
    #[arg(long)]
    pub include_secrets: bool,
}

/// Arguments of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup directory (`shoal backup DEST` made it)
    #[arg(value_name = "SRC")]
    pub src: PathBuf,
    /// Keep the backed-up node's identity (peer id, site id) instead of
    /// taking a new one; needs --old-machine-is-gone and a backup made with
    /// --include-secrets
    #[arg(long, requires = "old_machine_is_gone")]
    pub same_identity: bool,
    /// State that the machine the backup came from is gone for good and will
    /// never run its old data again (required by --same-identity)
    #[arg(long, requires = "same_identity")]
    pub old_machine_is_gone: bool,
}
