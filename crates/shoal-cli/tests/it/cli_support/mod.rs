//! Helpers of the end-to-end tests of the `shoal` binary that run one
//! command at a time: a fresh temporary data directory (initialized or not),
//! the binary pointed at it with optional stdin, and what a run produced.
//! Unlike `common` (daemons, polls), nothing here starts `shoal serve`; a
//! run's result is `common`'s [`Run`].
#![allow(dead_code)] // each test file uses its own subset

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

pub use crate::common::Run;

/// A temporary data directory and the binary pointed at it.
pub struct Shoal {
    _tmp: tempfile::TempDir,
    pub data: PathBuf,
}

impl Shoal {
    /// A data directory that does not exist yet.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("data");
        Self { _tmp: tmp, data }
    }

    /// A data directory with an initialized database.
    pub fn init() -> Self {
        let s = Self::new();
        s.run(&["init"]).ok();
        s
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_shoal"));
        cmd.env_remove("SHOAL_DATA")
            .env("HOME", self.data.parent().unwrap())
            .env_remove("XDG_DATA_HOME")
            .arg("--data")
            .arg(&self.data);
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_stdin(args, None)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let mut cmd = self.command();
        cmd.args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn shoal");
        {
            let mut pipe = child.stdin.take().unwrap();
            if let Some(text) = stdin {
                pipe.write_all(text.as_bytes()).unwrap();
            }
        }
        Run::from_output(child.wait_with_output().unwrap())
    }

    pub fn db(&self) -> PathBuf {
        self.data.join("shoal.db")
    }
}
