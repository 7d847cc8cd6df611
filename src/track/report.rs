//! What tracking one capture file produced: counts, connections, kept segments, and what could not be read.

use std::collections::{BTreeMap, HashMap};

use crate::capfile::FileKind;
use crate::capfile::saved::SavedRun;
use crate::model::segment::Segment;
use crate::track::conn::{Conn, Ending};
use crate::track::select::Selection;

/// Counts of one file, with tshark's meaning (frames with a TCP header; SYN, FIN, RST set).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub frames: u64,
    pub tcp_segments: u64,
    pub syn: u64,
    pub fin: u64,
    pub rst: u64,
}

/// What the IP header says of a segment's sender, beside the segment: a forged RST tends to differ here from
/// the real sender's packets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpFacts {
    /// IPv4 TTL or IPv6 hop limit, as captured.
    pub ttl: u8,
    /// IPv4 identification (IPv6 has none).
    pub ip_id: Option<u16>,
}

/// Everything learned from one capture.
#[derive(Debug, Default)]
pub struct FileReport {
    pub name: String,
    pub kind: Option<FileKind>,
    pub gzip: bool,
    pub counts: Counts,
    /// Why frames gave no TCP segment: reason → frames.
    pub skipped: BTreeMap<String, u64>,
    /// The connections tracked, in id order; with `--port`/`--host` only those the selection may show (ids stay
    /// the whole file's: see `untracked`).
    pub conns: Vec<Conn>,
    /// Connections numbered but not kept, since `--port`/`--host` could never show them.
    pub untracked: usize,
    /// Segments of the connections named with `--conn`, in capture order.
    pub kept: HashMap<u32, Vec<Segment>>,
    /// The IP header's facts of each kept segment, in the same order (`None` where no IP header was found).
    pub kept_ip: HashMap<u32, Vec<Option<IpFacts>>>,
    /// The file could not be read at all: why.
    pub open_error: Option<String>,
    /// Reading stopped early: where and why (what came before is in the report).
    pub read_error: Option<String>,
    /// Link types we do not decode: LINKTYPE number → frames.
    pub unknown_links: BTreeMap<u32, u64>,
    /// The run this file carries, when tcp-close-watch saved it (`run --write`): its socket calls and story.
    pub saved_run: Option<SavedRun>,
}

impl FileReport {
    /// Every connection of the file, kept or not.
    pub fn connections(&self) -> usize {
        self.conns.len() + self.untracked
    }

    /// True when not a single frame could be read.
    pub fn unreadable(&self) -> bool {
        self.open_error.is_some()
    }

    /// Totals by kind of ending, most frequent first, over the connections `sel` shows.
    pub fn endings(&self, sel: &Selection) -> Vec<(Ending, u64)> {
        // a dozen kinds of ending at most: a short list beats hashing a million times
        let mut v: Vec<(Ending, u64)> = Vec::new();
        for c in self.conns.iter().filter(|c| sel.shows(c)) {
            let e = c.ending();
            match v.iter_mut().find(|(k, _)| *k == e) {
                Some((_, n)) => *n += 1,
                None => v.push((e, 1)),
            }
        }
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}
