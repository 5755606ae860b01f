//! Optional progress display: an indicatif bar on stderr when, and only when,
//! stderr is a terminal, so stdout stays clean for parsing and logs stay quiet.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::Cell;
use std::io::IsTerminal;

/// How many operations pass between bar updates, so the bar costs next to
/// nothing inside timed loops.
const STEP: u64 = 1024;

/// A progress bar over a known number of operations, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Operations of the current phase already credited by [`tick`](Self::tick).
    ticked: Cell<u64>,
}

impl Progress {
    /// A bar of `total` operations, shown only if stderr is a terminal.
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            if let Ok(style) =
                ProgressStyle::with_template("{msg:<24} [{bar:40}] {pos}/{len} ({elapsed})")
            {
                bar.set_style(style.progress_chars("=> "));
            }
            bar
        });
        Self {
            bar,
            ticked: Cell::new(0),
        }
    }

    /// Names the phase now running.
    pub fn phase(&self, name: String) {
        if let Some(bar) = &self.bar {
            bar.set_message(name);
        }
    }

    /// Notes that operation number `done` (1-based) of the current phase finished.
    #[inline]
    pub fn tick(&self, done: u64) {
        if let (0, Some(bar)) = (done % STEP, &self.bar) {
            bar.inc(STEP);
            self.ticked.set(self.ticked.get() + STEP);
        }
    }

    /// Notes that a phase of `ops` operations finished, crediting whatever
    /// [`tick`](Self::tick) did not report (all of it for an untracked phase).
    pub fn finish_phase(&self, ops: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(ops.saturating_sub(self.ticked.get()));
        }
        self.ticked.set(0);
    }

    /// Runs `f` (which prints to stdout) with the bar hidden, so lines do not
    /// interleave with it on a shared terminal.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(f),
            None => f(),
        }
    }

    /// Removes the bar from the terminal.
    pub fn clear(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
