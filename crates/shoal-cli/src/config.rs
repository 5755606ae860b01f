//! The config file `shoal.toml`: where it is found, what its keys are, and
//! turning it into `serve` arguments and sharing rules.
//!
//! Its keys are derived from the command line itself: every long flag of
//! `shoal serve` is a key of the same name (`listen = [...]`, `no-mdns =
//! true`, `max-clock-drift = "5m"`), turned back into that flag and parsed
//! by clap with the flags given, so a key can never mean something other
//! than its flag, and a flag added to `serve` is a key at once. A flag given
//! on the command line (or by its environment variable) replaces the key.
//! Three keys are not flags of `serve`: `data` (the data directory, read only
//! from a file given by `--config`), `[[share]]` rules and `local-only`
//! collections (applied when the daemon starts and on SIGHUP, `reload.rs`).
//!
//! It reads and validates; it runs nothing and never writes the file.

use crate::datadir::DataDir;
use crate::exit::usage;
use anyhow::{Context, Result};
use clap::{ArgAction, CommandFactory, parser::ValueSource};
use serde::Deserialize;
use shoal::{ANY_PEER, CollectionName, PeerId, ShareMode};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The config file's name in the data directory.
pub const CONFIG_FILE: &str = "shoal.toml";

/// Keys that are not flags of `serve`.
const OWN_KEYS: [&str; 3] = ["data", "share", "local-only"];

/// A parsed config file.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    path: PathBuf,
    table: toml::Table,
}

/// A sharing rule from the file's `[[share]]` tables.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// A whole peer id, or `*` for every peer without a rule of its own.
    pub peer: String,
    /// The collection.
    pub collection: CollectionName,
    /// `none`, `send`, `receive` or `both`.
    pub mode: ModeName,
}

/// A sharing mode as the file spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    /// Neither way.
    None,
    /// Send only.
    Send,
    /// Receive only.
    Receive,
    /// Both ways.
    Both,
}

impl From<ModeName> for ShareMode {
    fn from(mode: ModeName) -> Self {
        match mode {
            ModeName::None => ShareMode::None,
            ModeName::Send => ShareMode::Send,
            ModeName::Receive => ShareMode::Receive,
            ModeName::Both => ShareMode::Both,
        }
    }
}

/// The file's sharing rules and local-only collections.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Rules {
    /// `[[share]]` tables.
    #[serde(default)]
    pub share: Vec<ShareRule>,
    /// `local-only = [...]`.
    #[serde(default)]
    pub local_only: Vec<CollectionName>,
}

impl ConfigFile {
    /// Reads and checks the file at `path`: TOML, and every key known.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                usage(format!("config file {} does not exist", path.display()))
            } else {
                anyhow::Error::new(e).context(format!("cannot read {}", path.display()))
            }
        })?;
        let file = Self::parse(path, &text)?;
        file.rules()?;
        Ok(file)
    }

    /// Parses `text` as the file at `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let table: toml::Table = text
            .parse()
            .map_err(|e| usage(format!("{} is not valid TOML: {e}", path.display())))?;
        let file = Self {
            path: path.to_path_buf(),
            table,
        };
        let serve = serve_command();
        for key in file.table.keys() {
            if !OWN_KEYS.contains(&key.as_str()) && flag(&serve, key).is_none() {
                return Err(usage(format!(
                    "{}: unknown key `{key}`; the keys are the long flags of `shoal serve` ({}) \
                     and {}",
                    path.display(),
                    flag_names(&serve).join(", "),
                    OWN_KEYS.join(", ")
                )));
            }
        }
        Ok(file)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The `data` key.
    pub fn data(&self) -> Result<Option<PathBuf>> {
        match self.table.get("data") {
            None => Ok(None),
            Some(toml::Value::String(dir)) => Ok(Some(PathBuf::from(dir))),
            Some(other) => Err(self.bad("data", other, "a string (a directory)")),
        }
    }

    /// The `peer` key's addresses, as written (one string or a list).
    pub fn peer_texts(&self) -> Result<Vec<String>> {
        let items: Vec<&toml::Value> = match self.table.get("peer") {
            None => return Ok(Vec::new()),
            Some(toml::Value::Array(items)) => items.iter().collect(),
            Some(one) => vec![one],
        };
        items
            .into_iter()
            .map(|item| match item {
                toml::Value::String(text) => Ok(text.clone()),
                other => Err(self.bad("peer", other, "multiaddr strings")),
            })
            .collect()
    }

    /// The `[[share]]` rules and `local-only` collections, checked.
    pub fn rules(&self) -> Result<Rules> {
        let mut table = toml::Table::new();
        for key in ["share", "local-only"] {
            if let Some(value) = self.table.get(key) {
                table.insert(key.into(), value.clone());
            }
        }
        let rules: Rules = toml::Value::Table(table)
            .try_into()
            .map_err(|e| usage(format!("{}: {e}", self.path.display())))?;
        for rule in &rules.share {
            if rule.peer != ANY_PEER && rule.peer.parse::<PeerId>().is_err() {
                return Err(usage(format!(
                    "{}: [[share]] peer {:?} is not a whole peer id or `*`",
                    self.path.display(),
                    rule.peer
                )));
            }
        }
        Ok(rules)
    }

    /// The file's `serve` keys as flags, leaving out those `given` (on the
    /// command line or by environment) says were given otherwise.
    pub fn serve_flags(&self, given: impl Fn(&str) -> bool) -> Result<Vec<OsString>> {
        let serve = serve_command();
        let mut args = Vec::new();
        for (key, value) in &self.table {
            if OWN_KEYS.contains(&key.as_str()) {
                continue;
            }
            let arg = flag(&serve, key).expect("keys were checked when read");
            if given(arg.get_id().as_str()) {
                continue;
            }
            let name = OsString::from(format!("--{key}"));
            if !arg.get_action().takes_values() {
                match value {
                    toml::Value::Boolean(true) => args.push(name),
                    toml::Value::Boolean(false) => {}
                    other => return Err(self.bad(key, other, "true or false")),
                }
                continue;
            }
            let many = matches!(arg.get_action(), ArgAction::Append);
            let items: Vec<&toml::Value> = match value {
                toml::Value::Array(items) if many => items.iter().collect(),
                toml::Value::Array(_) => {
                    return Err(self.bad(key, value, "one value, not a list"));
                }
                one => vec![one],
            };
            for item in items {
                let text = match item {
                    toml::Value::String(s) => s.clone(),
                    toml::Value::Integer(n) => n.to_string(),
                    other => return Err(self.bad(key, other, "a string or a number")),
                };
                let mut joined = name.clone();
                joined.push("=");
                joined.push(text);
                args.push(joined);
            }
        }
        Ok(args)
    }

    fn bad(&self, key: &str, value: &toml::Value, wanted: &str) -> anyhow::Error {
        usage(format!(
            "{}: key `{key}` is {}; it takes {wanted}",
            self.path.display(),
            value.type_str()
        ))
    }
}

/// The `serve` subcommand's definition.
fn serve_command() -> clap::Command {
    crate::args::Cli::command()
        .find_subcommand("serve")
        .expect("serve is a subcommand")
        .clone()
}

/// The argument of `serve` whose long flag is `key`.
fn flag(serve: &clap::Command, key: &str) -> Option<clap::Arg> {
    serve
        .get_arguments()
        .find(|a| a.get_long() == Some(key) && !a.is_global_set())
        .cloned()
}

/// Every long flag of `serve` (not the global ones): the file's keys.
pub fn flag_names(serve: &clap::Command) -> Vec<String> {
    serve
        .get_arguments()
        .filter(|a| !a.is_global_set())
        .filter_map(|a| a.get_long())
        .filter(|long| *long != "help")
        .map(str::to_string)
        .collect()
}

/// The config file for a command: `--config PATH` (which must exist), else
/// `DATA/shoal.toml` if it exists.
pub fn locate(flag: Option<&Path>, data: &DataDir) -> Result<Option<ConfigFile>> {
    if let Some(path) = flag {
        return ConfigFile::read(path).map(Some);
    }
    let path = data.file(CONFIG_FILE);
    let exists = path
        .try_exists()
        .with_context(|| format!("cannot check for {}", path.display()))?;
    if !exists {
        return Ok(None);
    }
    ConfigFile::read(&path).map(Some)
}

/// The `serve` arguments: those parsed from the command line, or, when
/// there is a config file, the command line parsed again with the file's
/// flags inserted (see [`merged_argv`]).
pub fn serve_args(
    flag: Option<&Path>,
    data: &DataDir,
    parsed: crate::args::ServeArgs,
    argv: Vec<OsString>,
    matches: &clap::ArgMatches,
) -> Result<crate::args::ServeArgs> {
    let Some(file) = locate(flag, data)? else {
        return Ok(parsed);
    };
    let serve = matches
        .subcommand_matches("serve")
        .ok_or_else(|| usage("not a `serve` command line"))?;
    let merged = merged_argv(argv, &file, serve)?;
    let cli = <crate::args::Cli as clap::Parser>::try_parse_from(merged).map_err(|e| {
        let text = e.to_string();
        let first = text.lines().next().unwrap_or("invalid value");
        usage(format!(
            "{}: {}",
            file.path().display(),
            first.trim_start_matches("error: ")
        ))
    })?;
    match cli.command {
        crate::args::Command::Serve(args) => Ok(args),
        _ => Err(usage("not a `serve` command line")),
    }
}

/// `argv` with the config file's flags inserted just after the `serve`
/// subcommand (so clap parses them like typed ones), leaving out the keys
/// the command line or environment gave (`matches` of `serve` say which).
pub fn merged_argv(
    argv: Vec<OsString>,
    file: &ConfigFile,
    matches: &clap::ArgMatches,
) -> Result<Vec<OsString>> {
    let given = |id: &str| {
        matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        )
    };
    let flags = file.serve_flags(given)?;
    let at = subcommand_position(&argv, "serve")
        .ok_or_else(|| usage("cannot find `serve` on the command line"))?;
    let mut merged = argv[..=at].to_vec();
    merged.extend(flags);
    merged.extend_from_slice(&argv[at + 1..]);
    Ok(merged)
}

/// Where the subcommand `name` is in `argv`: the first word that is not a
/// global option (`--json`, `--data DIR`, `--config PATH`) or its value.
fn subcommand_position(argv: &[OsString], name: &str) -> Option<usize> {
    let mut skip_value = false;
    for (i, word) in argv.iter().enumerate().skip(1) {
        if skip_value {
            skip_value = false;
            continue;
        }
        let text = word.to_string_lossy();
        if text == "--data" || text == "--config" {
            skip_value = true;
            continue;
        }
        if text.starts_with('-') {
            continue;
        }
        return (text == name).then_some(i);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example (docs/shoal.example.toml) with every line uncommented.
    fn example() -> String {
        include_str!("../../../docs/shoal.example.toml")
            .lines()
            .map(|l| match l.strip_prefix('#') {
                Some(setting) if !setting.is_empty() && !setting.starts_with(' ') => setting,
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn every_serve_flag_is_a_documented_key() {
        let documented = include_str!("../../../docs/shoal.example.toml");
        let serve = serve_command();
        let names = flag_names(&serve);
        assert!(names.len() >= 10, "{names:?}");
        for name in names {
            assert!(
                documented.contains(&format!("\n#{name} = ")),
                "`serve --{name}` has no key in docs/shoal.example.toml"
            );
        }
    }

    #[test]
    fn the_documented_example_parses_into_serve_flags() {
        let file = ConfigFile::parse(Path::new("example.toml"), &example()).unwrap();
        let flags = file.serve_flags(|_| false).unwrap();
        let mut argv: Vec<OsString> = vec!["shoal".into(), "serve".into()];
        argv.extend(flags);
        let parsed = <crate::args::Cli as clap::Parser>::try_parse_from(argv);
        assert!(parsed.is_ok(), "{parsed:?}");
        assert_eq!(file.rules().unwrap().share.len(), 2);
    }

    #[test]
    fn flags_given_replace_keys_and_bad_keys_are_named() {
        let file = ConfigFile::parse(
            Path::new("x.toml"),
            "listen = [\"/ip4/127.0.0.1/tcp/1\", \"/ip4/127.0.0.1/tcp/2\"]\nresync = 5\nno-mdns = true\n",
        )
        .unwrap();
        let all = file.serve_flags(|_| false).unwrap();
        assert_eq!(all.len(), 4, "{all:?}");
        assert!(all.contains(&OsString::from("--resync=5")));
        assert!(all.contains(&OsString::from("--no-mdns")));
        let some = file.serve_flags(|id| id == "listen").unwrap();
        assert_eq!(some.len(), 2, "{some:?}");

        let bad = ConfigFile::parse(Path::new("x.toml"), "lisen = []").unwrap_err();
        assert!(bad.to_string().contains("unknown key `lisen`"), "{bad}");
        let bad = ConfigFile::parse(Path::new("x.toml"), "resync = [1, 2]")
            .unwrap()
            .serve_flags(|_| false)
            .unwrap_err();
        assert!(bad.to_string().contains("resync"), "{bad}");
        let bad = ConfigFile::parse(Path::new("x.toml"), "no-mdns = \"yes\"")
            .unwrap()
            .serve_flags(|_| false)
            .unwrap_err();
        assert!(bad.to_string().contains("true or false"), "{bad}");
        let bad = ConfigFile::parse(
            Path::new("x.toml"),
            "[[share]]\npeer = \"12D3\"\ncollection = \"diary\"\nmode = \"none\"\n",
        )
        .unwrap()
        .rules()
        .unwrap_err();
        assert!(bad.to_string().contains("whole peer id"), "{bad}");
    }

    #[test]
    fn the_subcommand_is_found_after_global_options() {
        let argv = |words: &[&str]| words.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            subcommand_position(&argv(&["shoal", "--data", "serve", "serve"]), "serve"),
            Some(3)
        );
        assert_eq!(
            subcommand_position(&argv(&["shoal", "--json", "--config=x", "serve"]), "serve"),
            Some(3)
        );
        assert_eq!(subcommand_position(&argv(&["shoal", "put"]), "serve"), None);
    }
}
