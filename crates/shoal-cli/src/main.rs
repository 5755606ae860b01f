//! The `shoal` binary: parses the command line, runs one command, and turns
//! its outcome into an exit code (0 ok, 1 not found, 2 usage, 3 storage,
//! 4 network or daemon).
//!
//! Each command lives in its own module; this file only dispatches. A new
//! command (e.g. `serve`, `demo`) is a variant in `args.rs`, a module, and one
//! arm in [`run`].

mod args;
mod backup;
mod backup_files;
mod blob;
mod blob_demand;
mod check;
mod config;
mod conflicts;
mod daemon_client;
mod datadir;
mod demo;
mod demo_wan;
mod devices;
mod exit;
mod federation;
mod gc;
mod http_port;
mod init;
mod input;
mod invite;
mod log;
mod maps;
mod node_args;
mod ops_args;
mod output;
mod partial;
mod peer_file;
mod peer_ref;
mod peers;
mod progress;
mod query;
mod record_args;
mod record_syntax;
mod records;
mod relay;
mod relay_args;
mod reload;
mod restore;
mod schema;
mod secrets;
mod serve;
mod service;
mod status;
mod sync;

use anyhow::Result;
use args::{Cli, Command};
use clap::{CommandFactory, FromArgMatches};
use datadir::DataDir;
use federation::Way;
use output::Output;
use records::WriteKind;
use shoal_server::{api, http};
use std::ffi::OsString;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit with 2 and `--help` / `--version` with 0 (clap's codes).
    let argv: Vec<OsString> = std::env::args_os().collect();
    let parsed = Cli::command()
        .try_get_matches_from(&argv)
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) if e.use_stderr() && output::json_asked(std::env::args_os()) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("invalid usage");
            output::json_error("bad-request", first.trim_start_matches("error: "));
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => e.exit(),
    };
    let json = cli.global.json;
    match run(cli, argv, &matches) {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) if exit::is_broken_pipe(&e) => ExitCode::from(exit::OK),
        Err(e) if json => {
            output::json_error(&exit::json_code(&e), exit::message(&e));
            ExitCode::from(exit::code(&e))
        }
        Err(e) => {
            output::hint(format_args!("error: {}", exit::message(&e)));
            ExitCode::from(exit::code(&e))
        }
    }
}

fn run(cli: Cli, argv: Vec<OsString>, matches: &clap::ArgMatches) -> Result<()> {
    if let Command::Demo(a) = &cli.command {
        if a.wan {
            return demo_wan::run(a.dir.as_deref());
        }
        return demo::run(a.dir.as_deref(), a.http);
    }
    if let Command::Relay(a) = cli.command {
        return relay::run(a);
    }
    // --data / $SHOAL_DATA, else the `data` key of a --config file.
    let named = match &cli.global.config {
        Some(path) => config::ConfigFile::read(path)?.data()?,
        None => None,
    };
    let data = DataDir::resolve(cli.global.data.or(named.map(OsString::from)))?;
    let mut out = Output::new(cli.global.json);
    match cli.command {
        Command::Init => init::run(&data, &mut out)?,
        Command::Put(a) => records::write(&data.open()?, WriteKind::Put, a, &mut out)?,
        Command::Patch(a) => records::write(&data.open()?, WriteKind::Patch, a, &mut out)?,
        Command::Get(a) => records::get(&data.open()?, a, &mut out)?,
        Command::Del(a) => records::del(&data.open()?, a, &mut out)?,
        Command::Ls(a) => records::ls(&data.open()?, a, &mut out)?,
        Command::Map(a) => maps::run(&data.open()?, a, &mut out)?,
        Command::Query(a) => query::run(&data.open()?, a, &mut out)?,
        Command::Log(a) => log::run(&data.open()?, a, &mut out)?,
        Command::Conflicts(a) => conflicts::run(&data.open()?, a, &mut out)?,
        Command::Status => status::run(&data, &data.open()?, &mut out)?,
        Command::Check => check::run(&data, &mut out)?,
        Command::Gc(a) => gc::run(&data, a, &mut out)?,
        Command::Serve(a) => {
            let flag = cli.global.config;
            let a = config::serve_args(flag.as_deref(), &data, a, argv, matches)?;
            serve::run(&data, a, flag, &mut out)?
        }
        Command::Invite(a) => invite::invite(&data, a, &mut out)?,
        Command::Join(a) => invite::join(&data, a, &mut out)?,
        Command::Peers => peers::run(&data, &mut out)?,
        Command::Sync(a) => sync::run(&data, a, &mut out)?,
        Command::Diff(a) => federation::diff(&data, a, &mut out)?,
        Command::Pull(a) => federation::transfer(&data, Way::Pull, a, &mut out)?,
        Command::Push(a) => federation::transfer(&data, Way::Push, a, &mut out)?,
        Command::Share(a) => federation::share(&data, &data.open()?, a, &mut out)?,
        Command::LocalOnly(a) => federation::local_only(&data.open()?, a, &mut out)?,
        Command::Schema(a) => schema::run(&data.open()?, a, &mut out)?,
        Command::Devices(a) => devices::run(&data, &data.open()?, a, &mut out)?,
        Command::Partial(a) => partial::run(&data.open()?, a, &mut out)?,
        Command::Blob(a) => blob::run(&data.open()?, &data, a, &mut out)?,
        Command::Backup(a) => backup::run(&data, a, &mut out)?,
        Command::Restore(a) => restore::run(&data, a, &mut out)?,
        Command::Service(a) => service::run(&data, cli.global.config.as_deref(), a, &mut out)?,
        Command::RelayToken(a) => relay::token(&data, a, &mut out)?,
        Command::Demo(_) | Command::Relay(_) => unreachable!("handled above"),
    }
    out.finish()?;
    Ok(())
}
