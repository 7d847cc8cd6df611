//! Frames → capture bytes: the one writer of classic pcap and pcapng, for saved runs, tests, fixtures and the
//! synthetic benchmark captures. What it writes, [`CaptureReader`](super::CaptureReader), tshark and libpcap read.
//!
//! Contract: never panics and never fails: every call appends to a buffer held by the writer (no allocation per
//! packet once the buffer has grown), which the caller takes with `into_bytes` or hands to a file with `write_to`.
//! Lengths are not checked against the formats' limits: the caller gives frames a reader will accept (a frame
//! longer than 4 GiB, or a comment longer than an option can hold, is cut: see [`Opt`]).

use std::io::{self, Write};

use super::endian::Endian;
use super::pcap::{MAGIC_MICROS, MAGIC_NANOS};
use super::pcapng::{
    BYTE_ORDER_MAGIC, ENHANCED_PACKET, INTERFACE_DESCRIPTION, OPT_COMMENT, OPT_END, SECTION_HEADER,
};
use crate::model::segment::TimestampNs;

/// A classic pcap file being written: header first, then a record per frame.
pub struct PcapWriter {
    buf: Vec<u8>,
    endian: Endian,
    nanos: bool,
}

impl PcapWriter {
    /// A file header (version 2.4, no time zone) for frames of link type `link`, cut at `snaplen` bytes.
    pub fn new(endian: Endian, nanos: bool, snaplen: u32, link: u32) -> PcapWriter {
        Self::with_capacity(0, endian, nanos, snaplen, link)
    }

    /// Like [`PcapWriter::new`], with room for `capacity` bytes before the buffer grows.
    pub fn with_capacity(
        capacity: usize,
        endian: Endian,
        nanos: bool,
        snaplen: u32,
        link: u32,
    ) -> PcapWriter {
        let mut buf = Vec::with_capacity(capacity.max(24));
        buf.extend(endian.bytes32(if nanos { MAGIC_NANOS } else { MAGIC_MICROS }));
        buf.extend(endian.bytes16(2));
        buf.extend(endian.bytes16(4));
        buf.extend([0; 8]);
        buf.extend(endian.bytes32(snaplen));
        buf.extend(endian.bytes32(link));
        PcapWriter { buf, endian, nanos }
    }

    /// One frame captured at `ts` (cut to µs in a µs file), `orig_len` bytes long on the wire.
    #[inline]
    pub fn record(&mut self, ts: TimestampNs, data: &[u8], orig_len: u32) {
        let e = self.endian;
        let frac = ts.rem_euclid(1_000_000_000);
        let frac = if self.nanos { frac } else { frac / 1000 };
        let mut h = [0u8; 16];
        h[..4].copy_from_slice(&e.bytes32(ts.div_euclid(1_000_000_000) as u32));
        h[4..8].copy_from_slice(&e.bytes32(frac as u32));
        h[8..12].copy_from_slice(&e.bytes32(data.len() as u32));
        h[12..].copy_from_slice(&e.bytes32(orig_len));
        self.buf.extend_from_slice(&h);
        self.buf.extend_from_slice(data);
    }

    /// Bytes written and not yet handed to [`PcapWriter::write_to`].
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Hand what is buffered to `out` and empty the buffer (keeping its memory).
    pub fn write_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// A pcapng option: a code and its value. Values longer than an option can hold once padded (65,532 bytes) are
/// cut; a run's comment is a few KB.
#[derive(Debug, Clone, Copy)]
pub struct Opt<'a> {
    pub code: u16,
    pub value: &'a [u8],
}

impl<'a> Opt<'a> {
    pub fn new(code: u16, value: &'a [u8]) -> Opt<'a> {
        Opt {
            code,
            value: &value[..value.len().min(u16::MAX as usize - 3)],
        }
    }

    /// A text option (comment, name, OS, application).
    pub fn text(code: u16, text: &'a str) -> Opt<'a> {
        Opt::new(code, text.as_bytes())
    }

    /// opt_comment, which Wireshark shows beside the block's frame or section.
    pub fn comment(text: &'a str) -> Opt<'a> {
        Opt::text(OPT_COMMENT, text)
    }

    fn padded_len(&self) -> usize {
        4 + self.value.len().next_multiple_of(4)
    }
}

/// A pcapng file being written: a section header, its interfaces, then packets, in the order called.
pub struct PcapngWriter {
    buf: Vec<u8>,
    endian: Endian,
}

impl PcapngWriter {
    pub fn new(endian: Endian) -> PcapngWriter {
        PcapngWriter {
            buf: Vec::new(),
            endian,
        }
    }

    /// A section header block (version 1.0, length not given); interfaces are numbered from 0 after it.
    pub fn section(&mut self, options: &[Opt]) {
        let e = self.endian;
        let mut fixed = [0xff; 16];
        fixed[..4].copy_from_slice(&e.bytes32(BYTE_ORDER_MAGIC));
        fixed[4..6].copy_from_slice(&e.bytes16(1));
        fixed[6..8].copy_from_slice(&e.bytes16(0));
        self.block(SECTION_HEADER, &fixed, &[], options);
    }

    /// An interface description block: link type and snap length of the packets that name it.
    pub fn interface(&mut self, link: u16, snaplen: u32, options: &[Opt]) {
        let e = self.endian;
        let mut fixed = [0; 8];
        fixed[..2].copy_from_slice(&e.bytes16(link));
        fixed[4..].copy_from_slice(&e.bytes32(snaplen));
        self.block(INTERFACE_DESCRIPTION, &fixed, &[], options);
    }

    /// An enhanced packet block: `ts_units` in the interface's resolution (µs unless if_tsresol says otherwise).
    #[inline]
    pub fn packet(
        &mut self,
        interface: u32,
        ts_units: u64,
        data: &[u8],
        orig_len: u32,
        options: &[Opt],
    ) {
        let e = self.endian;
        let mut fixed = [0; 20];
        fixed[..4].copy_from_slice(&e.bytes32(interface));
        fixed[4..8].copy_from_slice(&e.bytes32((ts_units >> 32) as u32));
        fixed[8..12].copy_from_slice(&e.bytes32(ts_units as u32));
        fixed[12..16].copy_from_slice(&e.bytes32(data.len() as u32));
        fixed[16..].copy_from_slice(&e.bytes32(orig_len));
        self.block(ENHANCED_PACKET, &fixed, data, options);
    }

    /// type, length, fixed fields, data padded to 4 bytes, options (with an end marker when there are any),
    /// length again.
    fn block(&mut self, kind: u32, fixed: &[u8], data: &[u8], options: &[Opt]) {
        let e = self.endian;
        let opts: usize = options.iter().map(Opt::padded_len).sum();
        let end = if options.is_empty() { 0 } else { 4 };
        let total = (12 + fixed.len() + data.len().next_multiple_of(4) + opts + end) as u32;
        self.buf.extend(e.bytes32(kind));
        self.buf.extend(e.bytes32(total));
        self.buf.extend_from_slice(fixed);
        pad_after(&mut self.buf, data);
        for o in options {
            self.buf.extend(e.bytes16(o.code));
            self.buf.extend(e.bytes16(o.value.len() as u16));
            pad_after(&mut self.buf, o.value);
        }
        if !options.is_empty() {
            self.buf.extend(e.bytes16(OPT_END));
            self.buf.extend(e.bytes16(0));
        }
        self.buf.extend(e.bytes32(total));
    }

    /// Hand what is buffered to `out` and empty the buffer (keeping its memory).
    pub fn write_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// `bytes`, then zeros up to a multiple of 4.
fn pad_after(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(bytes);
    buf.resize(buf.len() + bytes.len().next_multiple_of(4) - bytes.len(), 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capfile::CaptureReader;
    use crate::capfile::pcapng::IF_TSRESOL;

    /// (time, bytes, original length) of every frame the reader finds.
    fn read_back(bytes: Vec<u8>) -> Vec<(TimestampNs, Vec<u8>, u32)> {
        let mut r = CaptureReader::from_bytes(bytes).unwrap();
        let mut out = Vec::new();
        while let Some(f) = r.next_frame().unwrap() {
            out.push((f.ts, f.data.to_vec(), f.orig_len));
        }
        out
    }

    #[test]
    fn emit_pcap_and_read_it_back() {
        for endian in [Endian::Little, Endian::Big] {
            for nanos in [false, true] {
                let mut w = PcapWriter::new(endian, nanos, 65535, 1);
                w.record(1_700_000_000_123_456_789, &[1, 2, 3], 60);
                w.record(5_000, &[4; 5], 5);
                let want_ts = if nanos {
                    1_700_000_000_123_456_789
                } else {
                    1_700_000_000_123_456_000
                };
                let frames = read_back(w.into_bytes());
                assert_eq!(frames[0], (want_ts, vec![1, 2, 3], 60));
                assert_eq!(frames[1], (5_000, vec![4; 5], 5));
            }
        }
    }

    #[test]
    fn write_to_hands_over_what_is_buffered_and_keeps_going() {
        let mut w = PcapWriter::new(Endian::Little, false, 65535, 1);
        let mut file = Vec::new();
        w.write_to(&mut file).unwrap();
        assert!(w.is_empty());
        w.record(0, &[9; 7], 7);
        w.write_to(&mut file).unwrap();
        assert_eq!(file.len(), 24 + 16 + 7);
        assert_eq!(read_back(file), [(0, vec![9; 7], 7)]);
    }

    #[test]
    fn emit_pcapng_with_options_and_read_it_back() {
        for endian in [Endian::Little, Endian::Big] {
            let mut w = PcapngWriter::new(endian);
            w.section(&[Opt::comment("first"), Opt::comment("second, longer")]);
            w.interface(1, 0, &[Opt::new(IF_TSRESOL, &[9])]);
            w.packet(0, 1_500, &[1, 2, 3, 4, 5], 5, &[Opt::comment("a call")]);
            w.packet(0, 2_500, &[], 0, &[]);
            let bytes = w.into_bytes();
            let mut r = CaptureReader::from_bytes(bytes.clone()).unwrap();
            assert_eq!(r.leading_comments(), ["first", "second, longer"]);
            let frames = read_back(bytes);
            assert_eq!(
                frames,
                [(1_500, vec![1, 2, 3, 4, 5], 5), (2_500, vec![], 0)]
            );
        }
    }

    #[test]
    fn options_longer_than_an_option_can_hold_are_cut() {
        let long = "x".repeat(70_000);
        assert_eq!(Opt::comment(&long).value.len(), 65_532);
    }
}
