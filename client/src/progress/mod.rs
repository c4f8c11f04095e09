//! Showing a transaction's progress: its signals become bars and spinners on a terminal
//! ([`tty`]) or plain lines otherwise ([`plain`]); `--quiet` shows nothing.
//!
//! Also owns the text of upstream's download progress line, shared by both renderers.

pub mod plain;
pub mod tty;

use rpmostree_api::TransactionEvent;

use crate::output::format_size;

/// Something that shows a transaction's events as they arrive.
pub trait Renderer {
    /// One signal of the transaction (`Finished` included).
    fn event(&mut self, event: &TransactionEvent);
    /// A line from the client itself (e.g. that it is cancelling), shown even when quiet.
    fn note(&mut self, text: &str);
    /// The transaction is over: end any bar or partial line.
    fn finish(&mut self);
}

/// The renderer for the current output: nothing when `quiet`, bars on a terminal, lines
/// otherwise.
pub fn renderer(quiet: bool) -> Box<dyn Renderer> {
    use std::io::IsTerminal;
    if quiet {
        Box::new(Quiet)
    } else if std::io::stdout().is_terminal() {
        Box::new(tty::TtyRenderer::new())
    } else {
        Box::new(plain::PlainRenderer::new(std::io::stdout()))
    }
}

/// `--quiet`: only the client's own notes, on stderr.
#[derive(Debug)]
struct Quiet;

impl Renderer for Quiet {
    fn event(&mut self, _event: &TransactionEvent) {}

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }

    fn finish(&mut self) {}
}

/// The numbers of one `DownloadProgress` signal, by name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Download {
    /// Fetches still outstanding.
    pub outstanding_fetches: u32,
    /// Writes still outstanding.
    pub outstanding_writes: u32,
    /// Metadata objects scanned.
    pub scanned_metadata: u32,
    /// Metadata objects fetched.
    pub fetched_metadata: u32,
    /// Metadata fetches still outstanding.
    pub outstanding_metadata_fetches: u32,
    /// Total static delta parts.
    pub total_delta_parts: u32,
    /// Static delta parts fetched.
    pub fetched_delta_parts: u32,
    /// Total size of the delta parts.
    pub total_delta_part_size: u64,
    /// Content objects fetched.
    pub fetched: u32,
    /// Content objects requested.
    pub requested: u32,
    /// Bytes transferred so far.
    pub bytes_transferred: u64,
    /// Current rate in bytes per second.
    pub bytes_per_sec: u64,
}

impl Download {
    /// The numbers of a `DownloadProgress` event, or `None` for another event.
    pub fn from_event(event: &TransactionEvent) -> Option<Self> {
        let TransactionEvent::DownloadProgress {
            outstanding,
            metadata,
            delta,
            content,
            transfer,
            ..
        } = event
        else {
            return None;
        };
        Some(Self {
            outstanding_fetches: outstanding.0,
            outstanding_writes: outstanding.1,
            scanned_metadata: metadata.0,
            fetched_metadata: metadata.1,
            outstanding_metadata_fetches: metadata.2,
            total_delta_parts: delta.0,
            fetched_delta_parts: delta.1,
            total_delta_part_size: delta.3,
            fetched: content.0,
            requested: content.1,
            bytes_transferred: transfer.0,
            bytes_per_sec: transfer.1,
        })
    }

    /// The one-line summary upstream shows while pulling: receiving objects (with percentage,
    /// counts, rate and total), delta parts, metadata, writing, or scanning.
    pub fn line(&self) -> String {
        let transferred = format_size(self.bytes_transferred);
        if self.outstanding_fetches > 0 {
            let rate = if self.bytes_per_sec > 0 {
                format!("{}/s ", format_size(self.bytes_per_sec))
            } else {
                String::new()
            };
            if self.total_delta_parts > 0 {
                format!(
                    "Receiving delta parts: {}/{} {}/{}",
                    self.fetched_delta_parts,
                    self.total_delta_parts,
                    transferred,
                    format_size(self.total_delta_part_size)
                )
            } else if self.outstanding_metadata_fetches > 0 {
                format!(
                    "Receiving metadata objects: {}/(estimating) {rate}{transferred}",
                    self.fetched_metadata
                )
            } else {
                let percent = (u64::from(self.fetched) * 100)
                    .checked_div(u64::from(self.requested))
                    .unwrap_or(0);
                format!(
                    "Receiving objects: {percent}% ({}/{}) {rate}{transferred}",
                    self.fetched, self.requested
                )
            }
        } else if self.outstanding_writes > 0 {
            format!("Writing objects: {}", self.outstanding_writes)
        } else {
            format!("Scanning metadata: {}", self.scanned_metadata)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        outstanding: (u32, u32),
        metadata: (u32, u32, u32),
        content: (u32, u32),
    ) -> TransactionEvent {
        TransactionEvent::DownloadProgress {
            time: (0, 1),
            outstanding,
            metadata,
            delta: (0, 0, 0, 0),
            content,
            transfer: (2_500_000, 1_000_000),
        }
    }

    #[test]
    fn download_lines() {
        let d = Download::from_event(&event((3, 0), (5, 5, 0), (10, 40))).expect("download");
        assert_eq!(d.line(), "Receiving objects: 25% (10/40) 1.0 MB/s 2.5 MB");
        let d = Download::from_event(&event((1, 0), (5, 2, 1), (0, 0))).expect("download");
        assert!(
            d.line()
                .starts_with("Receiving metadata objects: 2/(estimating)")
        );
        let d = Download::from_event(&event((0, 4), (5, 5, 0), (40, 40))).expect("download");
        assert_eq!(d.line(), "Writing objects: 4");
        let d = Download::from_event(&event((0, 0), (7, 7, 0), (40, 40))).expect("download");
        assert_eq!(d.line(), "Scanning metadata: 7");
    }
}
