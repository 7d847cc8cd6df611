//! Saved captures → frames. Reads classic pcap (µs and ns, both byte orders, the "modified" Kuznetzov variant) and
//! pcapng (several sections, byte-order switches, several interfaces with their own link types and timestamp
//! resolutions), from a file, from standard input, gzip-compressed or not.
//!
//! Contract: never panics on any input. Input is read in blocks of several MiB (a handful of system calls per
//! gigabyte, never one per packet). A damaged record ends the file with a [`ReadError`] that says where; every frame
//! before it has been handed out already, so the caller still has results for what was read.

pub mod saved;

use std::fmt;
use std::fs::File;
use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::model::segment::TimestampNs;
use crate::wire::link::LinkType;

/// Bytes asked of a stream at a time: large, so that reading costs a handful of system calls per gigabyte.
const BLOCK: usize = 8 << 20;
/// The largest record we accept. Real frames stay far below (even TSO/BIG TCP super-frames are < 512 KiB); a
/// larger length is a corrupt header, and accepting it would let a 16-byte file ask for gigabytes of buffer.
const MAX_RECORD: usize = 16 << 20;

/// Where the bytes of a capture come from.
enum Backing {
    /// Bytes held in memory (tests, fuzzing).
    Owned(Vec<u8>),
    /// A stream read in blocks: `buf[pos..end]` is unread, `buf[0]` is at input offset `base`.
    Stream {
        reader: Box<dyn Read + Send>,
        buf: Vec<u8>,
        end: usize,
        eof: bool,
    },
}

/// A window over the input that hands out byte slices without copying when it can.
struct Bytes {
    backing: Backing,
    pos: usize,
    /// Input offset of `pos == 0` (only moves for streams, when consumed bytes are dropped from the buffer).
    base: u64,
}

impl Bytes {
    fn data(&self) -> &[u8] {
        match &self.backing {
            Backing::Owned(v) => v,
            Backing::Stream { buf, end, .. } => &buf[..*end],
        }
    }

    fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    /// Make `n` unread bytes available; `Ok(false)` when the input ends first (what is there stays readable).
    fn ensure(&mut self, n: usize) -> io::Result<bool> {
        let Backing::Stream {
            reader,
            buf,
            end,
            eof,
        } = &mut self.backing
        else {
            return Ok(self.data().len() - self.pos >= n);
        };
        if *end - self.pos >= n {
            return Ok(true);
        }
        // Drop what was consumed, then read until `n` bytes are there or the stream ends.
        if self.pos > 0 {
            buf.copy_within(self.pos..*end, 0);
            *end -= self.pos;
            self.base += self.pos as u64;
            self.pos = 0;
        }
        let want = n.max(BLOCK);
        if buf.len() < want {
            buf.resize(want, 0);
        }
        while *end < n && !*eof {
            match reader.read(&mut buf[*end..]) {
                Ok(0) => *eof = true,
                Ok(k) => *end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(*end >= n)
    }

    fn available(&self) -> usize {
        self.data().len() - self.pos
    }

    fn peek(&self, n: usize) -> &[u8] {
        let d = self.data();
        &d[self.pos..(self.pos + n).min(d.len())]
    }
}

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

/// Why an input could not be opened as a capture at all.
#[derive(Debug)]
pub struct OpenError(pub String);

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// A pcapng interface: its link type and how to turn its timestamps into nanoseconds.
#[derive(Debug, Clone, Copy)]
struct Interface {
    link: Result<LinkType, u32>,
    snaplen: u32,
    /// Timestamp units per second (10^6 by default).
    units_per_sec: u64,
    /// if_tsoffset: seconds to add to every timestamp.
    offset_sec: i64,
}

enum Container {
    Pcap {
        endian: Endian,
        nanos: bool,
        /// Kuznetzov's patched libpcap: 8 more bytes in every record header.
        modified: bool,
        link: Result<LinkType, u32>,
    },
    Pcapng {
        endian: Endian,
        interfaces: Vec<Interface>,
    },
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
    bytes: Bytes,
    container: Container,
    frames: u64,
    gzip: bool,
    /// Compressed bytes consumed, for progress on gzip input.
    raw_read: Option<Arc<AtomicU64>>,
    raw_total: Option<u64>,
    done: bool,
}

/// Counts bytes as they are read, so progress can follow a compressed file.
struct Counting<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
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
            let len = meta.len();
            if len == 0 {
                return Err(OpenError("empty file (0 bytes): no capture in it".into()));
            }
            // Plain files are read in large blocks rather than mapped: a mapping makes the kernel fault pages in
            // one small batch at a time (costly on these machines) and counts every page read as ours.
            let mut head = [0u8; 2];
            let n = (&file)
                .read(&mut head)
                .map_err(|e| OpenError(format!("cannot read: {}", io_text(&e))))?;
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
            r.raw_total = Some(len);
            return Ok(r);
        }
        // A pipe or device given by name (`<(zcat f)`, /dev/stdin).
        Self::from_reader(Box::new(file), None, None)
    }

    /// Read a capture held in memory (plain or gzip).
    pub fn from_bytes(data: Vec<u8>) -> Result<CaptureReader, OpenError> {
        if data.starts_with(&GZIP_MAGIC) {
            let gz = flate2::read::MultiGzDecoder::new(io::Cursor::new(data));
            return Self::from_stream(Box::new(gz), true);
        }
        Self::start(
            Bytes {
                backing: Backing::Owned(data),
                pos: 0,
                base: 0,
            },
            false,
        )
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
        Self::start(
            Bytes {
                backing: Backing::Stream {
                    reader,
                    buf: Vec::new(),
                    end: 0,
                    eof: false,
                },
                pos: 0,
                base: 0,
            },
            gzip,
        )
    }

    fn start(mut bytes: Bytes, gzip: bool) -> Result<CaptureReader, OpenError> {
        let what = if gzip { "gzip data" } else { "input" };
        bytes
            .ensure(24)
            .map_err(|e| OpenError(format!("cannot read {what}: {}", io_text(&e))))?;
        let head = bytes.peek(24).to_vec();
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
        let magic = [head[0], head[1], head[2], head[3]];
        let container = match magic {
            [0x0a, 0x0d, 0x0d, 0x0a] => Container::Pcapng {
                endian: Endian::Little,
                interfaces: Vec::new(),
            },
            _ => {
                let (endian, nanos, modified) =
                    match (u32::from_le_bytes(magic), u32::from_be_bytes(magic)) {
                        (0xa1b2c3d4, _) => (Endian::Little, false, false),
                        (_, 0xa1b2c3d4) => (Endian::Big, false, false),
                        (0xa1b23c4d, _) => (Endian::Little, true, false),
                        (_, 0xa1b23c4d) => (Endian::Big, true, false),
                        (0xa1b2cd34, _) => (Endian::Little, false, true),
                        (_, 0xa1b2cd34) => (Endian::Big, false, true),
                        _ => {
                            return Err(OpenError(format!(
                                "not a pcap or pcapng file (it starts with {})",
                                hex(&head[..head.len().min(8)])
                            )));
                        }
                    };
                if head.len() < 24 {
                    return Err(OpenError(format!(
                        "pcap file header cut short: {} of its 24 bytes; no frame in it",
                        head.len()
                    )));
                }
                let major = endian.u16(&head[4..]);
                let minor = endian.u16(&head[6..]);
                if major != 2 {
                    return Err(OpenError(format!(
                        "pcap version {major}.{minor} is not one we read (only 2.x exists)"
                    )));
                }
                let field = endian.u32(&head[20..]);
                // Bits 16-25 are reserved and must be zero; bits 26-31 describe an FCS (ignored: the IP length
                // already tells where the segment ends).
                if field & 0x03ff_0000 != 0 {
                    return Err(OpenError(format!(
                        "pcap link-type field 0x{field:08x} has reserved bits set; not a valid capture"
                    )));
                }
                let number = field & 0xffff;
                bytes.pos = 24;
                Container::Pcap {
                    endian,
                    nanos,
                    modified,
                    link: LinkType::from_number(number).ok_or(number),
                }
            }
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
            Container::Pcap { nanos: true, .. } => FileKind::PcapNano,
            Container::Pcap { modified: true, .. } => FileKind::PcapModified,
            Container::Pcap { .. } => FileKind::Pcap,
            Container::Pcapng { .. } => FileKind::Pcapng,
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
        let mut comments = Vec::new();
        if self.frames > 0
            || self.bytes.offset() != 0
            || !matches!(self.container, Container::Pcapng { .. })
        {
            return comments;
        }
        if !matches!(self.bytes.ensure(12), Ok(true)) {
            return comments;
        }
        let head = self.bytes.peek(12);
        let endian = match head[8..12] {
            [0x4d, 0x3c, 0x2b, 0x1a] => Endian::Little,
            [0x1a, 0x2b, 0x3c, 0x4d] => Endian::Big,
            _ => return comments,
        };
        let blen = endian.u32(&head[4..]) as usize;
        if !(28..=MAX_RECORD).contains(&blen) || !matches!(self.bytes.ensure(blen), Ok(true)) {
            return comments;
        }
        let block = self.bytes.peek(blen);
        let _ = check_options(endian, &block[24..blen - 4], |code, value| {
            if code == 1 {
                comments.push(String::from_utf8_lossy(value).into_owned());
            }
        });
        comments
    }

    /// The next frame; `Ok(None)` at a clean end of the input.
    #[inline]
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, ReadError> {
        if self.done {
            return Ok(None);
        }
        let r = match self.container {
            Container::Pcap { .. } => self.next_pcap(),
            Container::Pcapng { .. } => self.next_pcapng(),
        };
        match r {
            Ok(Some((start, len, ts, link, orig_len))) => {
                self.frames += 1;
                let data = &self.bytes.data()[start..start + len];
                Ok(Some(Frame {
                    number: self.frames,
                    ts,
                    link,
                    data,
                    orig_len,
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

    /// The next pcap record: (start in data, captured length, time, link, original length).
    #[allow(clippy::type_complexity)]
    #[inline]
    fn next_pcap(
        &mut self,
    ) -> Result<Option<(usize, usize, TimestampNs, Result<LinkType, u32>, u32)>, ReadError> {
        let Container::Pcap {
            endian,
            nanos,
            modified,
            link,
        } = self.container
        else {
            return Ok(None);
        };
        let hlen = if modified { 24 } else { 16 };
        if !self.need(hlen, "a packet record header")? {
            return Ok(None);
        }
        let h = self.bytes.peek(hlen);
        let sec = endian.u32(h) as i64;
        let frac = endian.u32(&h[4..]) as i64;
        let incl = endian.u32(&h[8..]) as usize;
        let orig = endian.u32(&h[12..]);
        if incl > MAX_RECORD {
            return Err(self.error(
                format!("packet record claims {incl} captured bytes (corrupt record header)"),
                self.bytes.offset(),
            ));
        }
        if !self.need(hlen + incl, "a packet")? {
            return Ok(None);
        }
        // Out-of-range fractions (>= 10^9 ns) are kept as written, like tshark does; no overflow either way.
        let ts = sec * 1_000_000_000 + if nanos { frac } else { frac * 1000 };
        let start = self.bytes.pos + hlen;
        self.bytes.pos = start + incl;
        Ok(Some((start, incl, ts, link, orig)))
    }

    #[allow(clippy::type_complexity)]
    fn next_pcapng(
        &mut self,
    ) -> Result<Option<(usize, usize, TimestampNs, Result<LinkType, u32>, u32)>, ReadError> {
        loop {
            if !self.need(12, "a pcapng block header")? {
                return Ok(None);
            }
            let at = self.bytes.offset();
            let head = self.bytes.peek(12);
            let is_shb = head[..4] == [0x0a, 0x0d, 0x0d, 0x0a];
            let endian = if is_shb {
                match head[8..12] {
                    [0x4d, 0x3c, 0x2b, 0x1a] => Endian::Little,
                    [0x1a, 0x2b, 0x3c, 0x4d] => Endian::Big,
                    _ => {
                        return Err(self
                            .error("pcapng section header with an unknown byte-order magic", at));
                    }
                }
            } else {
                match &self.container {
                    Container::Pcapng { endian, .. } => *endian,
                    Container::Pcap { .. } => return Ok(None),
                }
            };
            let btype = endian.u32(head);
            let blen = endian.u32(&head[4..]) as usize;
            if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_RECORD {
                return Err(self.error(
                    format!("pcapng block of type 0x{btype:x} with impossible length {blen}"),
                    at,
                ));
            }
            if !self.need(blen, "a pcapng block")? {
                return Ok(None);
            }
            let start = self.bytes.pos;
            self.bytes.pos += blen;
            let block = &self.bytes.data()[start..start + blen];
            let body = &block[8..blen - 4];
            match btype {
                0x0a0d0d0a => {
                    if body.len() < 16 {
                        return Err(self.error("pcapng section header block too short", at));
                    }
                    let major = endian.u16(&body[4..]);
                    if major != 1 {
                        return Err(self.error(
                            format!("pcapng section version {major} is not one we read"),
                            at,
                        ));
                    }
                    if let Err(what) = check_options(endian, &body[16..], |_, _| {}) {
                        return Err(self.error(format!("pcapng section header: {what}"), at));
                    }
                    self.container = Container::Pcapng {
                        endian,
                        interfaces: Vec::new(),
                    };
                }
                1 => {
                    if body.len() < 8 {
                        return Err(self.error("pcapng interface block too short", at));
                    }
                    let number = endian.u16(body) as u32;
                    let snaplen = endian.u32(&body[4..]);
                    let mut iface = Interface {
                        link: LinkType::from_number(number).ok_or(number),
                        snaplen,
                        units_per_sec: 1_000_000,
                        offset_sec: 0,
                    };
                    let r = check_options(endian, &body[8..], |code, value| match code {
                        9 if !value.is_empty() => {
                            let v = value[0];
                            // High bit set: a power of two; else a power of ten. Beyond 10^18 / 2^63 the
                            // units cannot be stored; keep µs rather than overflow.
                            let exp = u32::from(v & 0x7f);
                            iface.units_per_sec = if v & 0x80 != 0 {
                                1u64.checked_shl(exp).unwrap_or(1_000_000)
                            } else {
                                10u64.checked_pow(exp).unwrap_or(1_000_000)
                            };
                            if iface.units_per_sec == 0 {
                                iface.units_per_sec = 1_000_000;
                            }
                        }
                        14 if value.len() >= 8 => iface.offset_sec = endian.u64(value) as i64,
                        _ => {}
                    });
                    if let Err(what) = r {
                        return Err(self.error(format!("pcapng interface block: {what}"), at));
                    }
                    if let Container::Pcapng { interfaces, .. } = &mut self.container {
                        interfaces.push(iface);
                    }
                }
                6 | 2 => {
                    // Enhanced (6) and obsolete (2) packet blocks share the layout but for the interface id.
                    if body.len() < 20 {
                        return Err(self.error("pcapng packet block too short", at));
                    }
                    let iface_id = if btype == 6 {
                        endian.u32(body) as usize
                    } else {
                        endian.u16(body) as usize
                    };
                    let ts_units = (u64::from(endian.u32(&body[4..])) << 32)
                        | u64::from(endian.u32(&body[8..]));
                    let caplen = endian.u32(&body[12..]) as usize;
                    let orig = endian.u32(&body[16..]);
                    if caplen > body.len() - 20 {
                        return Err(self.error(
                            format!(
                                "pcapng packet block claims {caplen} captured bytes but holds {}",
                                body.len() - 20
                            ),
                            at,
                        ));
                    }
                    let iface = match &self.container {
                        Container::Pcapng { interfaces, .. } => interfaces.get(iface_id).copied(),
                        Container::Pcap { .. } => None,
                    };
                    let Some(iface) = iface else {
                        return Err(self.error(
                            format!(
                                "pcapng packet block names interface {iface_id}, which no interface block described"
                            ),
                            at,
                        ));
                    };
                    let ts = units_to_ns(ts_units, iface.units_per_sec, iface.offset_sec);
                    return Ok(Some((start + 28, caplen, ts, iface.link, orig)));
                }
                3 => {
                    // Simple packet block: interface 0, no timestamp.
                    if body.len() < 4 {
                        return Err(self.error("pcapng simple packet block too short", at));
                    }
                    let orig = endian.u32(body);
                    let iface = match &self.container {
                        Container::Pcapng { interfaces, .. } => interfaces.first().copied(),
                        Container::Pcap { .. } => None,
                    };
                    let Some(iface) = iface else {
                        return Err(
                            self.error("pcapng simple packet block before any interface block", at)
                        );
                    };
                    let mut caplen = (orig as usize).min(body.len() - 4);
                    if iface.snaplen > 0 {
                        caplen = caplen.min(iface.snaplen as usize);
                    }
                    return Ok(Some((start + 12, caplen, 0, iface.link, orig)));
                }
                // Name resolution, statistics, custom, journal and unknown blocks carry no frames.
                _ => {}
            }
        }
    }
}

/// Walk pcapng options, calling `each(code, value)`; an option running past the block is an error, as in tshark.
fn check_options(
    endian: Endian,
    mut opts: &[u8],
    mut each: impl FnMut(u16, &[u8]),
) -> Result<(), String> {
    while opts.len() >= 4 {
        let code = endian.u16(opts);
        let len = endian.u16(&opts[2..]) as usize;
        if code == 0 {
            return Ok(());
        }
        let padded = len.div_ceil(4) * 4;
        if 4 + padded > opts.len() {
            return Err(format!(
                "option {code} of {len} bytes is longer than its block"
            ));
        }
        each(code, &opts[4..4 + len]);
        opts = &opts[4 + padded..];
    }
    Ok(())
}

fn units_to_ns(units: u64, per_sec: u64, offset_sec: i64) -> TimestampNs {
    let ns = u128::from(units) * 1_000_000_000 / u128::from(per_sec.max(1));
    let ns = i64::try_from(ns).unwrap_or(i64::MAX);
    ns.saturating_add(offset_sec.saturating_mul(1_000_000_000))
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

/// Writers of small captures for tests: pcap and pcapng bytes around frames built in the test.
#[cfg(test)]
pub(crate) mod testfiles {
    /// A classic pcap: `big` picks the byte order, `nanos` the timestamp unit. Frames are (time in ns, bytes).
    pub fn pcap(big: bool, nanos: bool, link: u32, frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut out = Vec::new();
        out.extend(u32b(if nanos { 0xa1b23c4d } else { 0xa1b2c3d4 }));
        out.extend(u16b(2));
        out.extend(u16b(4));
        out.extend([0; 8]);
        out.extend(u32b(65535));
        out.extend(u32b(link));
        for (ts, f) in frames {
            let sec = (ts / 1_000_000_000) as u32;
            let frac = (ts % 1_000_000_000) as u32;
            out.extend(u32b(sec));
            out.extend(u32b(if nanos { frac } else { frac / 1000 }));
            out.extend(u32b(f.len() as u32));
            out.extend(u32b(f.len() as u32));
            out.extend(f);
        }
        out
    }

    fn block(big: bool, kind: u32, body: &[u8]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut padded = body.to_vec();
        while !padded.len().is_multiple_of(4) {
            padded.push(0);
        }
        let len = 12 + padded.len() as u32;
        let mut out = Vec::new();
        out.extend(u32b(kind));
        out.extend(u32b(len));
        out.extend(padded);
        out.extend(u32b(len));
        out
    }

    /// A pcapng section: interfaces given as (link type, if_tsresol option), packets as (interface, ts units, bytes).
    pub fn pcapng_section(
        big: bool,
        interfaces: &[(u16, Option<u8>)],
        packets: &[(u32, u64, Vec<u8>)],
    ) -> Vec<u8> {
        let u32b = |v: u32| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut shb = Vec::new();
        shb.extend(u32b(0x1a2b3c4d));
        shb.extend(u16b(1));
        shb.extend(u16b(0));
        shb.extend([0xff; 8]);
        let mut out = block(big, 0x0a0d0d0a, &shb);
        for &(link, resol) in interfaces {
            let mut idb = Vec::new();
            idb.extend(u16b(link));
            idb.extend(u16b(0));
            idb.extend(u32b(0));
            if let Some(r) = resol {
                idb.extend(u16b(9));
                idb.extend(u16b(1));
                idb.extend([r, 0, 0, 0]);
                idb.extend([0; 4]);
            }
            out.extend(block(big, 1, &idb));
        }
        for (iface, ts, f) in packets {
            let mut epb = Vec::new();
            epb.extend(u32b(*iface));
            epb.extend(u32b((ts >> 32) as u32));
            epb.extend(u32b(*ts as u32));
            epb.extend(u32b(f.len() as u32));
            epb.extend(u32b(f.len() as u32));
            epb.extend(f);
            out.extend(block(big, 6, &epb));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testfiles::*;
    use super::*;
    use etherparse::PacketBuilder;

    fn eth_syn(port: u16) -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ethernet2([1; 6], [2; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(port, 80, 7, 1000)
            .syn()
            .write(&mut f, b"")
            .unwrap();
        f
    }

    fn raw_fin() -> Vec<u8> {
        let mut f = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 7, 1000)
            .fin()
            .ack(1)
            .write(&mut f, b"")
            .unwrap();
        f
    }

    /// (frame number, time, link, captured length) of each frame.
    type Seen = Vec<(u64, i64, Result<LinkType, u32>, usize)>;

    fn all(bytes: Vec<u8>) -> (Seen, Option<ReadError>) {
        let mut r = CaptureReader::from_bytes(bytes).unwrap();
        let mut out = Vec::new();
        loop {
            match r.next_frame() {
                Ok(Some(f)) => out.push((f.number, f.ts, f.link, f.data.len())),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_both_byte_orders_and_units() {
        let ts = 1_700_000_000_123_456_789;
        for big in [false, true] {
            for nanos in [false, true] {
                let f = eth_syn(1);
                let (frames, err) = all(pcap(
                    big,
                    nanos,
                    1,
                    &[(ts, f.clone()), (ts + 1000, f.clone())],
                ));
                assert!(err.is_none());
                assert_eq!(frames.len(), 2, "big {big} nanos {nanos}");
                let want = if nanos { ts } else { ts - 789 };
                assert_eq!(frames[0].1, want, "big {big} nanos {nanos}");
                assert_eq!(frames[0].2, Ok(LinkType::Ethernet));
                assert_eq!(frames[1].3, f.len());
            }
        }
    }

    #[test]
    fn truncated_pcap_keeps_what_came_before() {
        let f = eth_syn(1);
        let mut bytes = pcap(
            false,
            false,
            1,
            &[(0, f.clone()), (1000, f.clone()), (2000, f)],
        );
        bytes.truncate(bytes.len() - 10);
        let (frames, err) = all(bytes);
        assert_eq!(frames.len(), 2);
        let err = err.expect("a cut file is an error");
        assert_eq!(err.frames_before, 2);
        assert!(err.to_string().contains("cut short"), "{err}");
        // the offset names the start of the third record: header + 2 records
        assert_eq!(err.offset, 24 + 2 * (16 + 54));
    }

    #[test]
    fn pcapng_interfaces_link_types_resolutions_and_byte_order_switch() {
        let mut bytes = pcapng_section(
            true,
            &[(1, None), (101, Some(9))],
            &[(0, 1_000_000, eth_syn(1)), (1, 2_000_000_000, raw_fin())],
        );
        bytes.extend(pcapng_section(
            false,
            &[(101, Some(0x80 | 10))],
            &[(0, 1024, raw_fin())],
        ));
        let (frames, err) = all(bytes);
        assert!(err.is_none(), "{err:?}");
        let summary: Vec<_> = frames.iter().map(|f| (f.0, f.1, f.2)).collect();
        assert_eq!(
            summary,
            [
                (1, 1_000_000_000, Ok(LinkType::Ethernet)),
                (2, 2_000_000_000, Ok(LinkType::RawIp)),
                (3, 1_000_000_000, Ok(LinkType::RawIp)),
            ]
        );
    }

    #[test]
    fn pcapng_unknown_interface_and_bad_option_are_errors() {
        let bytes = pcapng_section(false, &[(1, None)], &[(3, 0, eth_syn(1))]);
        let (frames, err) = all(bytes);
        assert!(frames.is_empty());
        assert!(err.unwrap().to_string().contains("interface 3"));
        // an interface option longer than its block
        let mut bytes = pcapng_section(false, &[(1, Some(6))], &[]);
        let idb_opt_len = 28 + 8 + 8 + 2; // SHB 28 bytes, block header 8, IDB fields 8, option code 2
        bytes[idb_opt_len] = 200;
        let (_, err) = all(bytes);
        assert!(err.unwrap().to_string().contains("longer than its block"));
    }

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

    #[test]
    fn unknown_link_type_is_reported_per_frame() {
        let (frames, _) = all(pcap(false, false, 281, &[(0, vec![0; 30])]));
        assert_eq!(frames[0].2, Err(281));
    }

    #[test]
    fn huge_record_length_is_corrupt_not_an_allocation() {
        let mut v = pcap(false, false, 1, &[(0, eth_syn(1))]);
        v[24 + 8..24 + 12].copy_from_slice(&u32::MAX.to_le_bytes());
        let (frames, err) = all(v);
        assert!(frames.is_empty());
        assert!(err.unwrap().to_string().contains("corrupt"));
    }
}
