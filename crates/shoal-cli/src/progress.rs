//! Progress of long local operations (`backup`, `restore`, `gc`) on stderr: a bar
//! per stage on a terminal, nothing otherwise (scripts get the summary only).
//!
//! It owns only the display; the operations report pages or bytes done.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// What a stage counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Database pages.
    Pages,
    /// Bytes.
    Bytes,
    /// Tombstones looked at.
    Tombstones,
}

/// One stage's bar (absent when stderr is not a terminal).
pub struct Meter {
    bar: Option<ProgressBar>,
}

impl Meter {
    /// A bar labelled `label`, shown only when stderr is a terminal.
    pub fn new(label: &str, unit: Unit) -> Self {
        if !std::io::stderr().is_terminal() {
            return Self { bar: None };
        }
        let counts = match unit {
            Unit::Pages => "{pos}/{len} pages",
            Unit::Bytes => "{bytes}/{total_bytes} {bytes_per_sec}",
            Unit::Tombstones => "{pos}/{len} tombstones",
        };
        let template = format!("{label:<20} [{{bar:30}}] {counts} {{eta}}");
        let style = ProgressStyle::with_template(&template)
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        let bar = ProgressBar::new(0);
        bar.set_style(style);
        Self { bar: Some(bar) }
    }

    /// Shows `done` of `total`.
    pub fn set(&self, done: u64, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
        }
    }

    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        self.finish();
    }
}
