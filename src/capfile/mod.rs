//! Saved captures → frames. Reads classic pcap (µs and ns, both byte orders, the "modified" Kuznetzov variant) and
//! pcapng (several sections, byte-order switches, several interfaces with their own link types and timestamp
//! resolutions), from a file, from standard input, gzip-compressed or not; and writes both (`write`).
//!
//! Contract: never panics on any input. Input is read in blocks of several MiB (a handful of system calls per
//! gigabyte, never one per packet). A damaged record ends the file with a [`ReadError`] that says where; every frame
//! before it has been handed out already, so the caller still has results for what was read. An input that is no
//! capture at all is an [`OpenError`] before any frame.
//!
//! One file per job: this one is the reader's public face (opening files, standard input and gzip; errors; the
//! frame loop); `input` holds the block-buffered bytes, `pcap` and `pcapng` the two formats, `write` the writer.

mod endian;
mod input;
mod pcap;
pub mod pcapng;
pub mod saved;
#[cfg(test)]
pub(crate) mod testfiles;
pub mod write;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::endian::Endian;
use self::input::{Counting, Input};
use crate::model::segment::TimestampNs;
use crate::wire::link::LinkType;

/// The largest record we accept. Real frames stay far below (even TSO/BIG TCP super-frames are < 512 KiB); a
/// larger length is a corrupt header, and accepting it would let a 16-byte file ask for gigabytes of buffer.
const MAX_RECORD: usize = 16 << 20;

/// What went wrong while reading, and where.
#[derive(Debug)]
pub struct ReadError {
    pub what: String,
    /// Byte offset (in the uncompressed input) of the record or block that could not be read.
    pub offset: u64,
    /// Frames handed out before the error.
    pub frames_before: u64,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.frames_before {
            0 => write!(
                f,
                "{} at byte {}; no frame before it",
                self.what, self.offset
            ),
            n => write!(
                f,
                "{} at byte {} (after frame {n}); the {n} frame{} before it were analysed",
                self.what,
                self.offset,
                if n == 1 { "" } else { "s" }
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// Why an input could not be opened as a capture at all.
#[derive(Debug)]
pub struct OpenError(pub String);

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}

/// One captured frame, borrowed from the reader until the next call.
#[derive(Debug)]
pub struct Frame<'a> {
    /// 1-based frame number in the file, as Wireshark numbers frames.
    pub number: u64,
    pub ts: TimestampNs,
    /// The link type, or the LINKTYPE number we do not decode.
    pub link: Result<LinkType, u32>,
    pub data: &'a [u8],
    pub orig_len: u32,
}

/// Where the next frame lies in the input's buffer, and what the file says about it.
#[derive(Debug, Clone, Copy)]
struct Record {
    start: usize,
    len: usize,
    ts: TimestampNs,
    link: Result<LinkType, u32>,
    orig_len: u32,
}

enum Container {
    Pcap(pcap::Format),
    Pcapng(pcapng::Section),
}

/// The kind of file, for messages and the summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Pcap,
    PcapNano,
    PcapModified,
    Pcapng,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Pcap => "pcap",
            FileKind::PcapNano => "pcap (ns)",
            FileKind::PcapModified => "pcap (modified)",
            FileKind::Pcapng => "pcapng",
        }
    }
}

/// Reads frames out of one capture.
pub struct CaptureReader {
    bytes: Input,
    container: Container,
    frames: u64,
    gzip: bool,
    /// Compressed bytes consumed, for progress on gzip input.
    raw_read: Option<Arc<AtomicU64>>,
    raw_total: Option<u64>,
    done: bool,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

impl CaptureReader {
    /// Open a file by path; `-` is standard input.
    pub fn open(path: &str) -> Result<CaptureReader, OpenError> {
        if path == "-" {
            return Self::from_reader(Box::new(io::stdin()), None, None);
        }
        let file =
            File::open(path).map_err(|e| OpenError(format!("cannot open: {}", io_text(&e))))?;
        let meta = file
            .metadata()
            .map_err(|e| OpenError(format!("cannot read its metadata: {}", io_text(&e))))?;
        if meta.is_dir() {
            return Err(OpenError("is a directory, not a capture file".into()));
        }
        if meta.is_file() {
            return Self::from_file(file, meta.len());
        }
        // A pipe or device given by name (`<(zcat f)`, /dev/stdin).
        Self::from_reader(Box::new(file), None, None)
    }

    /// A plain file of `len` bytes, compressed or not. A size of 0 is not believed until a read says so: files in
    /// procfs and sysfs say 0 and hold bytes.
    fn from_file(file: File, len: u64) -> Result<CaptureReader, OpenError> {
        // Plain files are read in large blocks rather than mapped: a mapping makes the kernel fault pages in
        // one small batch at a time (costly on these machines) and counts every page read as ours.
        let mut head = [0u8; 2];
        let n = (&file)
            .read(&mut head)
            .map_err(|e| OpenError(format!("cannot read: {}", io_text(&e))))?;
        if n == 0 {
            return Err(OpenError("empty file (0 bytes): no capture in it".into()));
        }
        let mut file = file;
        io::Seek::seek(&mut file, io::SeekFrom::Start(0))
            .map_err(|e| OpenError(format!("cannot read: {}", io_text(&e))))?;
        let count = Arc::new(AtomicU64::new(0));
        let counted = Counting {
            inner: file,
            count: count.clone(),
        };
        let gzip = n == 2 && head == GZIP_MAGIC;
        let mut r = if gzip {
            Self::from_stream(Box::new(flate2::read::MultiGzDecoder::new(counted)), true)?
        } else {
            Self::from_stream(Box::new(counted), false)?
        };
        r.raw_read = Some(count);
        r.raw_total = (len > 0).then_some(len);
        Ok(r)
    }

    /// Read a capture held in memory (plain or gzip).
    pub fn from_bytes(data: Vec<u8>) -> Result<CaptureReader, OpenError> {
        if data.starts_with(&GZIP_MAGIC) {
            let gz = flate2::read::MultiGzDecoder::new(io::Cursor::new(data));
            return Self::from_stream(Box::new(gz), true);
        }
        Self::start(Input::owned(data), false)
    }

    /// Read a capture from a stream; gzip is recognised by its first bytes.
    pub fn from_reader(
        mut reader: Box<dyn Read + Send>,
        _hint: Option<u64>,
        _name: Option<&str>,
    ) -> Result<CaptureReader, OpenError> {
        let mut head = [0u8; 2];
        let mut got = 0;
        while got < 2 {
            match reader.read(&mut head[got..]) {
                Ok(0) => break,
                Ok(k) => got += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(OpenError(format!("cannot read: {}", io_text(&e)))),
            }
        }
        if got == 0 {
            return Err(OpenError("empty input (0 bytes): no capture in it".into()));
        }
        let chained: Box<dyn Read + Send> =
            Box::new(io::Cursor::new(head[..got].to_vec()).chain(reader));
        if head[..got] == GZIP_MAGIC {
            let gz = flate2::read::MultiGzDecoder::new(chained);
            return Self::from_stream(Box::new(gz), true);
        }
        Self::from_stream(chained, false)
    }

    fn from_stream(reader: Box<dyn Read + Send>, gzip: bool) -> Result<CaptureReader, OpenError> {
        Self::start(Input::stream(reader), gzip)
    }

    /// Read the file header and decide the format; an input that is no capture is refused here.
    fn start(mut bytes: Input, gzip: bool) -> Result<CaptureReader, OpenError> {
        let what = if gzip { "gzip data" } else { "input" };
        bytes
            .ensure(24)
            .map_err(|e| OpenError(format!("cannot read {what}: {}", io_text(&e))))?;
        let head = bytes.peek(24);
        if head.is_empty() {
            return Err(OpenError(format!(
                "empty {} (0 bytes): no capture in it",
                if gzip { "gzip content" } else { "input" }
            )));
        }
        if head.len() < 4 {
            return Err(OpenError(format!(
                "only {} bytes: too short to be a capture file",
                head.len()
            )));
        }
        let container = if head[..4] == pcapng::FILE_MAGIC {
            Container::Pcapng(pcapng::Section::new())
        } else {
            let format = pcap::Format::from_header(head)?;
            bytes.pos = 24;
            Container::Pcap(format)
        };
        Ok(CaptureReader {
            bytes,
            container,
            frames: 0,
            gzip,
            raw_read: None,
            raw_total: None,
            done: false,
        })
    }

    pub fn kind(&self) -> FileKind {
        match &self.container {
            Container::Pcap(pcap::Format { nanos: true, .. }) => FileKind::PcapNano,
            Container::Pcap(pcap::Format { modified: true, .. }) => FileKind::PcapModified,
            Container::Pcap(_) => FileKind::Pcap,
            Container::Pcapng(_) => FileKind::Pcapng,
        }
    }

    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// (bytes consumed, total bytes) of the file on disk, when known: for a progress bar.
    pub fn progress(&self) -> Option<(u64, u64)> {
        match (&self.raw_read, self.raw_total) {
            (Some(n), Some(t)) => Some((n.load(Ordering::Relaxed), t)),
            _ => None,
        }
    }

    /// Frames handed out so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The comments (opt_comment) of the section header the input starts with, read ahead without consuming
    /// anything; empty for pcap, or when the header cannot be read (next_frame then reports why).
    pub fn leading_comments(&mut self) -> Vec<String> {
        if self.frames > 0
            || self.bytes.offset() != 0
            || !matches!(self.container, Container::Pcapng(_))
        {
            return Vec::new();
        }
        pcapng::leading_comments(&mut self.bytes)
    }

    /// The next frame; `Ok(None)` at a clean end of the input.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let r = match self.container {
            Container::Pcap(_) => self.next_pcap(),
            Container::Pcapng(_) => self.next_pcapng(),
        };
        match r {
            Ok(Some(record)) => {
                self.frames += 1;
                let data = &self.bytes.data()[record.start..record.start + record.len];
                Ok(Some(Frame {
                    number: self.frames,
                    ts: record.ts,
                    link: record.link,
                    data,
                    orig_len: record.orig_len,
                }))
            }
            Ok(None) => {
                self.done = true;
                Ok(None)
            }
            Err(e) => {
                self.done = true;
                Err(e)
            }
        }
    }

    fn error(&self, what: impl Into<String>, offset: u64) -> ReadError {
        ReadError {
            what: what.into(),
            offset,
            frames_before: self.frames,
        }
    }

    fn io_error(&self, e: io::Error) -> ReadError {
        let what = if self.gzip {
            format!("gzip data unreadable ({})", io_text(&e))
        } else {
            format!("read failed ({})", io_text(&e))
        };
        self.error(what, self.bytes.offset())
    }

    /// Ensure `n` bytes, or say the input was cut while reading `what`.
    fn need(&mut self, n: usize, what: &str) -> Result<bool, ReadError> {
        match self.bytes.ensure(n) {
            Ok(true) => Ok(true),
            Ok(false) if self.bytes.available() == 0 => Ok(false),
            Ok(false) => {
                let have = self.bytes.available();
                Err(self.error(
                    format!("file cut short in the middle of {what} ({have} of {n} bytes there)"),
                    self.bytes.offset(),
                ))
            }
            Err(e) => Err(self.io_error(e)),
        }
    }
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// An I/O error without Rust's " (os error N)" tail.
fn io_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::testfiles::*;
    use super::*;

    #[test]
    fn gzip_is_read_transparently() {
        use std::io::Write;
        let plain = pcap(false, true, 1, &[(5, eth_syn(1)), (6, eth_syn(2))]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let bytes = gz.finish().unwrap();
        let r = CaptureReader::from_bytes(bytes.clone()).unwrap();
        assert!(r.is_gzip());
        let (frames, err) = all(bytes);
        assert!(err.is_none());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].1, 6);
    }

    #[test]
    fn a_file_whose_size_says_0_is_read_before_it_is_called_empty() {
        // procfs says 0 bytes for files that hold text: it is read, and found to be no capture
        let e = CaptureReader::open("/proc/self/status").err().unwrap();
        assert!(e.to_string().contains("not a pcap or pcapng"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pcap");
        std::fs::write(&empty, b"").unwrap();
        let e = CaptureReader::open(&empty.to_string_lossy()).err().unwrap();
        assert_eq!(e.to_string(), "empty file (0 bytes): no capture in it");
    }

    #[test]
    fn not_a_capture_empty_and_bad_headers() {
        let e = |b: &[u8]| {
            CaptureReader::from_bytes(b.to_vec())
                .err()
                .unwrap()
                .to_string()
        };
        assert!(e(b"").contains("empty"));
        assert!(e(b"<!DOCTYPE html>").contains("not a pcap or pcapng"));
        let mut v = pcap(false, false, 1, &[]);
        v[4] = 1; // version 1.4
        assert!(e(&v).contains("version 1"));
        let mut v = pcap(false, false, 1, &[]);
        v[22] = 0x30; // reserved link-type bits
        assert!(e(&v).contains("reserved"));
        assert!(e(&pcap(false, false, 1, &[])[..10]).contains("cut short"));
    }
}
