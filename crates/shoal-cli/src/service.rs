//! `shoal service install` / `uninstall`: a systemd unit that runs `shoal
//! serve` for this data directory, per user or system-wide.
//!
//! It owns the unit's text (quoted for systemd), where unit files go, the
//! checks that make the unit start as `shoal serve` would here (a database,
//! a group secret the service can read, a config file that parses, absolute
//! paths), and removing only a unit it wrote. It never runs systemctl: it
//! prints the commands that enable, start or stop the unit.

use crate::args::{ServiceArgs, ServiceCommand, ServiceInstallArgs, UnitPlace};
use crate::config::{self, ConfigFile};
use crate::datadir::DataDir;
use crate::exit::{not_found, usage};
use crate::output::{Output, hint};
use crate::secrets::GROUP_KEY_FILE;
use anyhow::{Context, Result};
use serde_json::json;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The first line of every unit this module writes (what `uninstall` checks).
const MARKER: &str = "# Written by `shoal service install`; remove with `shoal service uninstall`.";

/// `shoal service`.
pub fn run(
    data: &DataDir,
    config_flag: Option<&Path>,
    args: ServiceArgs,
    out: &mut Output,
) -> Result<()> {
    match args.command {
        ServiceCommand::Install(a) => install(data, config_flag, a, out),
        ServiceCommand::Uninstall(a) => uninstall(&a.place, out),
    }
}

/// What a unit runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitSpec {
    /// The `shoal` binary.
    pub exe: PathBuf,
    /// The data directory.
    pub data: PathBuf,
    /// The config file, if any.
    pub config: Option<PathBuf>,
    /// The listen addresses the config file names (for the description).
    pub listen: Vec<String>,
    /// `Some(user)` for a system-wide unit run as that account.
    pub system_user: Option<String>,
}

/// The unit file's text.
pub fn unit_text(spec: &UnitSpec) -> String {
    let mut exec = vec![spec.exe.clone().into_os_string()];
    exec.push("--data".into());
    exec.push(spec.data.clone().into_os_string());
    if let Some(config) = &spec.config {
        exec.push("--config".into());
        exec.push(config.clone().into_os_string());
    }
    exec.push("serve".into());
    let exec: Vec<String> = exec.iter().map(|a| quote(a)).collect();
    let listen = if spec.listen.is_empty() {
        "the default addresses (port 4040)".to_string()
    } else {
        spec.listen.join(" ")
    };
    let mut text = format!(
        "{MARKER}\n\
         # Data: {data}\n\
         # Config: {config}\n\
         # Listens on: {listen}\n\
         [Unit]\n\
         Description=Shoal node ({data})\n\
         After=network-online.target\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         Type=simple\n\
         ExecStart={exec}\n\
         # SIGHUP re-reads the sharing rules and peers (no session is dropped).\n\
         ExecReload=kill -HUP $MAINPID\n\
         Restart=on-failure\n\
         RestartSec=5\n\
         UMask=0077\n\
         NoNewPrivileges=yes\n",
        data = spec.data.display(),
        config = spec
            .config
            .as_ref()
            .map_or_else(|| "none".to_string(), |c| c.display().to_string()),
        exec = exec.join(" "),
    );
    if let Some(user) = &spec.system_user {
        text.push_str(&format!(
            "User={user}\n\
             PrivateTmp=yes\n\
             ProtectSystem=strict\n\
             ProtectHome=read-only\n\
             ReadWritePaths={}\n",
            quote(spec.data.as_os_str())
        ));
    }
    let wanted = if spec.system_user.is_some() {
        "multi-user.target"
    } else {
        "default.target"
    };
    text.push_str(&format!("\n[Install]\nWantedBy={wanted}\n"));
    text
}

/// One word of a systemd command line: double-quoted, with `\`, `"`, `%`
/// and `$` escaped (systemd expands the last two itself).
fn quote(word: &std::ffi::OsStr) -> String {
    let text = word.to_string_lossy();
    let mut quoted = String::from("\"");
    for c in text.chars() {
        match c {
            '\\' => quoted.push_str("\\\\"),
            '"' => quoted.push_str("\\\""),
            '%' => quoted.push_str("%%"),
            '$' => quoted.push_str("$$"),
            other => quoted.push(other),
        }
    }
    quoted.push('"');
    quoted
}

/// The directory unit files go in.
fn unit_dir(place: &UnitPlace) -> Result<PathBuf> {
    if let Some(dir) = &place.unit_dir {
        return Ok(dir.clone());
    }
    if place.system {
        return Ok(PathBuf::from("/etc/systemd/system"));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })
        .ok_or_else(|| usage("cannot find the user's unit directory: $HOME is not set"))?;
    Ok(config.join("systemd").join("user"))
}

/// `systemctl` or `systemctl --user`.
fn systemctl(place: &UnitPlace) -> &'static str {
    if place.system {
        "systemctl"
    } else {
        "systemctl --user"
    }
}

/// An absolute form of `path` (relative to the current directory).
fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

fn install(
    data: &DataDir,
    config_flag: Option<&Path>,
    args: ServiceInstallArgs,
    out: &mut Output,
) -> Result<()> {
    if !data.has_database()? {
        data.open()?; // the usual "run shoal init" error
    }
    let data_path = absolute(data.dir())?;
    let file = config::locate(config_flag, data)?;
    let listen = match &file {
        Some(file) => check_config(file, data)?,
        None => {
            require_key_file(data, None)?;
            Vec::new()
        }
    };
    let system_user = if args.place.system {
        Some(match args.run_as {
            Some(user) => user,
            None => std::env::var("USER")
                .ok()
                .filter(|u| !u.is_empty())
                .ok_or_else(|| usage("$USER is not set: pass --run-as USER"))?,
        })
    } else {
        None
    };
    let spec = UnitSpec {
        exe: std::env::current_exe().context("cannot find this shoal binary")?,
        data: data_path,
        config: file.as_ref().map(|f| absolute(f.path())).transpose()?,
        listen,
        system_user,
    };
    let text = unit_text(&spec);
    if args.print {
        out.line(text.trim_end())?;
        return Ok(());
    }
    let dir = unit_dir(&args.place)?;
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join(format!("{}.service", args.place.unit));
    refuse_foreign(&path)?;
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    let ctl = systemctl(&args.place);
    if out.is_json() {
        out.json(&json!({"unit": path, "data": spec.data, "config": spec.config}))?;
    } else {
        out.line(format_args!("wrote {}", path.display()))?;
        out.line(format_args!(
            "start it with: {ctl} daemon-reload && {ctl} enable --now {}",
            args.place.unit
        ))?;
        if !args.place.system {
            hint(
                "note: a user service stops when you log out unless lingering is on \
                 (`loginctl enable-linger`)",
            );
        }
    }
    Ok(())
}

/// Checks the config file the unit will run with; returns its listen addresses.
fn check_config(file: &ConfigFile, data: &DataDir) -> Result<Vec<String>> {
    let mut argv: Vec<OsString> = vec!["shoal".into(), "serve".into()];
    argv.extend(file.serve_flags(|_| false)?);
    let cli = <crate::args::Cli as clap::Parser>::try_parse_from(argv).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid value").to_string();
        usage(format!(
            "{}: {}",
            file.path().display(),
            first.trim_start_matches("error: ")
        ))
    })?;
    let crate::args::Command::Serve(serve) = cli.command else {
        unreachable!("parsed as serve");
    };
    file.rules()?;
    file.peers()?;
    if let Some(secret) = &serve.secret_file
        && !secret.is_absolute()
    {
        return Err(usage(format!(
            "{}: secret-file {} is relative; a service runs in /, so give an absolute path",
            file.path().display(),
            secret.display()
        )));
    }
    require_key_file(data, serve.secret_file.as_deref())?;
    Ok(serve.listen.iter().map(|a| a.to_string()).collect())
}

/// A service has no terminal and no $SHOAL_SECRET: the group secret must be
/// a file (the config's secret-file, or DATA/group.key).
fn require_key_file(data: &DataDir, secret_file: Option<&Path>) -> Result<()> {
    let path = secret_file.map_or_else(|| data.file(GROUP_KEY_FILE), Path::to_path_buf);
    if path.is_file() {
        return Ok(());
    }
    Err(usage(format!(
        "the service would have no group secret: {} does not exist. Run `shoal invite` (a new \
         group) or `shoal join CODE`, or set secret-file in the config file",
        path.display()
    )))
}

/// Refuses to replace a unit file someone else wrote.
fn refuse_foreign(path: &Path) -> Result<()> {
    match std::fs::read_to_string(path) {
        Ok(text) if !text.starts_with(MARKER) => Err(usage(format!(
            "{} exists and was not written by `shoal service install`; it is left alone \
             (choose another --unit NAME)",
            path.display()
        ))),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

fn uninstall(place: &UnitPlace, out: &mut Output) -> Result<()> {
    let path = unit_dir(place)?.join(format!("{}.service", place.unit));
    if !path.exists() {
        return Err(not_found(format!("no unit {}", path.display())));
    }
    refuse_foreign(&path)?;
    std::fs::remove_file(&path).with_context(|| format!("cannot remove {}", path.display()))?;
    let ctl = systemctl(place);
    if out.is_json() {
        out.json(&json!({"removed": path}))?;
    } else {
        out.line(format_args!("removed {}", path.display()))?;
        out.line(format_args!(
            "if it was running: {ctl} disable --now {} && {ctl} daemon-reload",
            place.unit
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_for_systemd() {
        assert_eq!(quote("/a b/c".as_ref()), "\"/a b/c\"");
        assert_eq!(quote("50%$x\"\\".as_ref()), "\"50%%$$x\\\"\\\\\"");
    }

    #[test]
    fn a_system_unit_runs_as_its_user_with_its_data_writable() {
        let spec = UnitSpec {
            exe: "/usr/bin/shoal".into(),
            data: "/var/lib/shoal".into(),
            config: Some("/etc/shoal/shoal.toml".into()),
            listen: vec!["/ip4/0.0.0.0/tcp/4040".into()],
            system_user: Some("shoal".into()),
        };
        let text = unit_text(&spec);
        assert!(text.starts_with(MARKER));
        assert!(text.contains(
            "ExecStart=\"/usr/bin/shoal\" \"--data\" \"/var/lib/shoal\" \"--config\" \
             \"/etc/shoal/shoal.toml\" \"serve\"\n"
        ));
        assert!(text.contains("User=shoal\n"));
        assert!(text.contains("ReadWritePaths=\"/var/lib/shoal\"\n"));
        assert!(text.contains("WantedBy=multi-user.target\n"));
        let user = unit_text(&UnitSpec {
            system_user: None,
            ..spec
        });
        assert!(!user.contains("User="));
        assert!(user.contains("WantedBy=default.target\n"));
    }
}
