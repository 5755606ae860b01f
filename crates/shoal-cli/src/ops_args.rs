//! The arguments of the commands that operate a node rather than its data:
//! `backup`, `restore`, `service` and `gc`, as clap derive structs.
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

/// `shoal service`: one of its subcommands.
#[derive(Debug, Args)]
pub struct ServiceArgs {
    /// What to do with the service.
    #[command(subcommand)]
    pub command: ServiceCommand,
}

/// The subcommands of `shoal service`.
#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Write a systemd unit that runs `shoal serve` for this data directory
    #[command(after_help = "\
Writes NAME.service running `shoal --data DIR [--config FILE] serve` with
this very binary: for the current user (~/.config/systemd/user, the default)
or, with --system, system-wide (/etc/systemd/system, run as --run-as USER).
The listen addresses, the secret file and every other setting come from the
config file (--config, else DIR/shoal.toml), which is checked first, so the
unit starts with what `shoal serve` would start with here. `systemctl reload`
sends SIGHUP: the daemon re-reads its sharing rules and peers. It does not
enable or start the unit; it prints the systemctl commands that do.

Examples:
  shoal service install --print
  shoal service install && systemctl --user enable --now shoal
  sudo shoal --data /var/lib/shoal service install --system --run-as shoal")]
    Install(ServiceInstallArgs),
    /// Remove the unit file `shoal service install` wrote
    #[command(after_help = "\
Removes NAME.service if `shoal service install` wrote it (a unit written by
anything else is left alone). Stop and disable it first, with the command it
prints. The data directory is not touched.

Examples:
  systemctl --user disable --now shoal && shoal service uninstall")]
    Uninstall(ServiceUninstallArgs),
}

/// Where a unit goes: per user or system-wide, and its name.
#[derive(Debug, Args)]
pub struct UnitPlace {
    /// System-wide unit (/etc/systemd/system) instead of the current user's
    #[arg(long)]
    pub system: bool,
    /// The unit's name (NAME.service)
    #[arg(long, value_name = "NAME", default_value = "shoal",
          value_parser = parse_unit_name)]
    pub unit: String,
    /// Write the unit in this directory instead of systemd's usual one
    #[arg(long, value_name = "DIR")]
    pub unit_dir: Option<PathBuf>,
}

/// Arguments of `service install`.
#[derive(Debug, Args)]
pub struct ServiceInstallArgs {
    /// Where the unit goes.
    #[command(flatten)]
    pub place: UnitPlace,
    /// The account a --system unit runs as [default: the current user]
    #[arg(long, value_name = "USER", requires = "system")]
    pub run_as: Option<String>,
    /// Print the unit on stdout and write nothing
    #[arg(long)]
    pub print: bool,
}

/// Arguments of `service uninstall`.
#[derive(Debug, Args)]
pub struct ServiceUninstallArgs {
    /// Where the unit is.
    #[command(flatten)]
    pub place: UnitPlace,
}

/// A unit name: 1 to 64 of `[A-Za-z0-9_.@-]`, not starting with `.` or `-`.
fn parse_unit_name(text: &str) -> Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 64
        && !text.starts_with(['.', '-'])
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.@-".contains(&b));
    if !ok {
        return Err("a unit name is 1 to 64 of A-Z a-z 0-9 _ . @ -".into());
    }
    Ok(text.strip_suffix(".service").unwrap_or(text).to_string())
}

/// Arguments of `gc`.
#[derive(Debug, Args)]
pub struct GcArgs {
    /// Collect a tombstone a known peer has not acknowledged once its delete
    /// is older than this (e.g. 30d, 12h, 90m; the daemon's --gc-horizon)
    #[arg(long, value_name = "DURATION", default_value = "30d",
          value_parser = crate::node_args::parse_duration)]
    pub horizon: std::time::Duration,
}
