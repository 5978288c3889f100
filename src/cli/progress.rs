//! A progress bar for `tagwarden check` on a terminal (stderr), and nothing at all when stdout
//! is not a terminal, so pipes and CI logs stay clean.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::inventory::ScanProgress;

pub(super) struct TerminalProgress {
    bar: ProgressBar,
}

struct BarSink(ProgressBar);

impl ScanProgress for BarSink {
    fn update(&self, done: u64, total: Option<u64>, message: &str) {
        if let Some(t) = total {
            self.0.set_length(t);
        }
        self.0.set_position(done);
        self.0.set_message(message.to_string());
    }
}

impl TerminalProgress {
    /// A spinner with the scan's own words, when stdout is a terminal.
    pub(super) fn start() -> Option<TerminalProgress> {
        if !std::io::stdout().is_terminal() {
            return None;
        }
        let bar = ProgressBar::new_spinner();
        let style = ProgressStyle::with_template("{spinner} {elapsed:>3} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message("scanning…");
        bar.enable_steady_tick(Duration::from_millis(120));
        Some(TerminalProgress { bar })
    }

    pub(super) fn sink(&self) -> Arc<dyn ScanProgress> {
        Arc::new(BarSink(self.bar.clone()))
    }

    pub(super) fn finish(self) {
        self.bar.finish_and_clear();
    }
}
