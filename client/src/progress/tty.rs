//! Progress on a terminal with indicatif: a spinner per task, a bar per measured step, one
//! updating line per download; messages print above whatever is drawn.

use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rpmostree_api::TransactionEvent;

use super::{Download, Renderer};

/// What the live bar shows.
#[derive(Debug)]
enum Kind {
    Task(String),
    Percent,
    Download,
}

/// Draws progress on stdout, which is a terminal.
#[derive(Debug, Default)]
pub struct TtyRenderer {
    current: Option<(ProgressBar, Kind)>,
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn spinner(message: String) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stdout())
        .with_style(style("{spinner} {msg}"))
        .with_message(message);
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

impl TtyRenderer {
    /// A renderer with nothing drawn yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces the current bar by a plain line with its final state (indicatif leaves the
    /// cursor at the end of a finished bar's line, so the line is printed by us instead).
    fn end_current(&mut self) {
        if let Some((bar, kind)) = self.current.take() {
            let text = match kind {
                Kind::Task(text) => format!("{text}... "),
                Kind::Download => bar.message(),
                Kind::Percent => format!("{}... done", bar.message()),
            };
            bar.finish_and_clear();
            println!("{text}");
        }
    }

    fn println(&self, text: &str) {
        match &self.current {
            Some((bar, _)) => bar.println(text),
            None => println!("{text}"),
        }
    }
}

impl Renderer for TtyRenderer {
    fn event(&mut self, event: &TransactionEvent) {
        match event {
            TransactionEvent::Message { text } => self.println(text),
            TransactionEvent::TaskBegin { text } => {
                self.end_current();
                self.current = Some((spinner(text.clone()), Kind::Task(text.clone())));
            }
            TransactionEvent::TaskEnd { text } => match self.current.take() {
                Some((bar, Kind::Task(begin))) => {
                    bar.finish_and_clear();
                    println!("{begin}... {text}");
                }
                other => {
                    self.current = other;
                    self.println(text);
                }
            },
            TransactionEvent::PercentProgress { text, percentage } => {
                if !matches!(self.current, Some((_, Kind::Percent))) {
                    self.end_current();
                    let bar =
                        ProgressBar::with_draw_target(Some(100), ProgressDrawTarget::stdout())
                            .with_style(style("{msg} [{bar:30}] {pos:>3}%").progress_chars("=> "));
                    self.current = Some((bar, Kind::Percent));
                }
                if let Some((bar, _)) = &self.current {
                    bar.set_message(text.clone());
                    bar.set_position(u64::from((*percentage).min(100)));
                }
            }
            TransactionEvent::DownloadProgress { .. } => {
                let Some(download) = Download::from_event(event) else {
                    return;
                };
                if !matches!(self.current, Some((_, Kind::Download))) {
                    self.end_current();
                    self.current = Some((spinner(download.line()), Kind::Download));
                }
                if let Some((bar, _)) = &self.current {
                    bar.set_message(download.line());
                }
            }
            TransactionEvent::ProgressEnd => self.end_current(),
            TransactionEvent::SignatureProgress { .. } => {}
            TransactionEvent::Finished { .. } => self.end_current(),
        }
    }

    fn note(&mut self, text: &str) {
        self.println(text);
    }

    fn finish(&mut self) {
        self.end_current();
    }
}
