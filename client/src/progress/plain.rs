//! Progress as plain lines, for logs and pipes: a task is one `<text>... <result>` line,
//! percentages and downloads are summarised once when they end, messages are lines.

use std::io::Write;

use rpmostree_api::TransactionEvent;

use super::{Download, Renderer};

/// What is on screen or buffered and not finished yet.
#[derive(Debug)]
enum Pending {
    /// Nothing.
    None,
    /// A task line written up to `<text>... `, waiting for its result.
    Task,
    /// A measured step: its last text and percentage, not written yet.
    Percent { text: String, percent: u32 },
    /// A pull: its last numbers, not written yet.
    Download(Download),
}

/// Writes progress as lines to `W`.
#[derive(Debug)]
pub struct PlainRenderer<W: Write> {
    out: W,
    pending: Pending,
}

impl<W: Write> PlainRenderer<W> {
    /// A renderer writing to `out`.
    pub fn new(out: W) -> Self {
        Self {
            out,
            pending: Pending::None,
        }
    }

    /// The writer (for tests).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Ends whatever is pending; `ended` says the step finished (ProgressEnd) rather than
    /// being interrupted by other output.
    fn flush_pending(&mut self, ended: bool) {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        let _ = match pending {
            Pending::None => Ok(()),
            Pending::Task => writeln!(self.out),
            Pending::Percent { text, percent } => {
                if ended || percent >= 100 {
                    writeln!(self.out, "{text}... done")
                } else {
                    writeln!(self.out, "{text} ({percent}%)")
                }
            }
            Pending::Download(d) => writeln!(self.out, "{}", d.line()),
        };
    }

    fn line(&mut self, text: &str) {
        self.flush_pending(false);
        let _ = writeln!(self.out, "{text}");
    }
}

/// The text of a measured step without its counts, to tell one step from the next.
fn step_key(text: &str) -> String {
    text.chars().filter(|c| !c.is_ascii_digit()).collect()
}

impl<W: Write> Renderer for PlainRenderer<W> {
    fn event(&mut self, event: &TransactionEvent) {
        match event {
            TransactionEvent::Message { text } => self.line(text),
            TransactionEvent::TaskBegin { text } => {
                self.flush_pending(false);
                let _ = write!(self.out, "{text}... ");
                self.pending = Pending::Task;
            }
            TransactionEvent::TaskEnd { text } => {
                if matches!(self.pending, Pending::Task) {
                    self.pending = Pending::None;
                    let _ = writeln!(self.out, "{text}");
                } else {
                    self.line(text);
                }
            }
            TransactionEvent::PercentProgress { text, percentage } => {
                let same = matches!(&self.pending, Pending::Percent { text: t, .. } if step_key(t) == step_key(text));
                if !same {
                    self.flush_pending(false);
                }
                self.pending = Pending::Percent {
                    text: text.clone(),
                    percent: *percentage,
                };
            }
            TransactionEvent::DownloadProgress { .. } => {
                if !matches!(self.pending, Pending::Download(_)) {
                    self.flush_pending(false);
                }
                if let Some(d) = Download::from_event(event) {
                    self.pending = Pending::Download(d);
                }
            }
            TransactionEvent::ProgressEnd => self.flush_pending(true),
            TransactionEvent::SignatureProgress { .. } => {}
            TransactionEvent::Finished { .. } => self.flush_pending(true),
        }
        let _ = self.out.flush();
    }

    fn note(&mut self, text: &str) {
        self.line(text);
        let _ = self.out.flush();
    }

    fn finish(&mut self) {
        self.flush_pending(true);
        let _ = self.out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(events: &[TransactionEvent]) -> String {
        let mut r = PlainRenderer::new(Vec::new());
        for e in events {
            r.event(e);
        }
        r.finish();
        String::from_utf8(r.into_inner()).expect("utf-8")
    }

    #[test]
    fn tasks_messages_and_progress() {
        let text = render(&[
            TransactionEvent::TaskBegin {
                text: "Checking out tree".into(),
            },
            TransactionEvent::TaskEnd {
                text: "done".into(),
            },
            TransactionEvent::Message {
                text: "Moving to be first deployment".into(),
            },
            TransactionEvent::PercentProgress {
                text: "Writing objects: 1/2".into(),
                percentage: 50,
            },
            TransactionEvent::PercentProgress {
                text: "Writing objects: 2/2".into(),
                percentage: 100,
            },
            TransactionEvent::ProgressEnd,
            TransactionEvent::Finished {
                success: true,
                error_message: String::new(),
            },
        ]);
        assert_eq!(
            text,
            "Checking out tree... done\nMoving to be first deployment\nWriting objects: 2/2... done\n"
        );
    }

    #[test]
    fn a_message_inside_a_task_starts_a_new_line() {
        let text = render(&[
            TransactionEvent::TaskBegin {
                text: "Pulling".into(),
            },
            TransactionEvent::Message {
                text: "hello".into(),
            },
            TransactionEvent::TaskEnd {
                text: "done".into(),
            },
        ]);
        assert_eq!(text, "Pulling... \nhello\ndone\n");
    }
}
