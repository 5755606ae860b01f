//! A command-line tool from PyPI for a test: the one `scripts/test.sh`
//! installed (named by an environment variable), one already on `PATH`, or
//! one this helper installs into a virtualenv under the test build's tmp
//! dir. It owns finding and installing the tool only; what a test does
//! without one is the test's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Where to look for a tool and how to tell that it works.
pub struct PypiTool {
    /// The variable `scripts/test.sh` sets to the installed tool.
    pub env: &'static str,
    /// The program to try on `PATH`.
    pub on_path: &'static str,
    /// The PyPI package that provides it.
    pub package: &'static str,
    /// The virtualenv's folder under `CARGO_TARGET_TMPDIR`.
    pub venv: &'static str,
    /// The program inside the virtualenv's `bin/`.
    pub program: &'static str,
    /// Whether a candidate works (runs, imports the package, …).
    pub works: fn(&Path) -> bool,
}

/// Whether `program ARGS…` runs and exits 0, its output discarded.
pub fn succeeds(program: &Path, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl PypiTool {
    /// The tool's path, or why there is none.
    pub fn find(&self) -> Result<PathBuf, String> {
        if let Some(given) = std::env::var_os(self.env) {
            let given = PathBuf::from(given);
            return if (self.works)(&given) {
                Ok(given)
            } else {
                Err(format!("${} ({}) does not work", self.env, given.display()))
            };
        }
        let on_path = PathBuf::from(self.on_path);
        if (self.works)(&on_path) {
            return Ok(on_path);
        }
        let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(self.venv);
        let installed = venv.join("bin").join(self.program);
        if (self.works)(&installed) {
            return Ok(installed);
        }
        step("python3", &["-m", "venv", &venv.to_string_lossy()])?;
        let pip = venv.join("bin").join("pip").to_string_lossy().into_owned();
        step(
            &pip,
            &[
                "install",
                "--quiet",
                "--disable-pip-version-check",
                self.package,
            ],
        )?;
        if (self.works)(&installed) {
            Ok(installed)
        } else {
            Err(format!(
                "{} does not work after install",
                installed.display()
            ))
        }
    }
}

/// Runs one install step; its stderr is the error.
fn step(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{program} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
