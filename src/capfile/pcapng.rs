//! pcapng: a sequence of blocks, each `type, length, body, length`. Several sections (each with its own byte
//! order), several interfaces (each with its own link type and timestamp resolution). One function per block kind
//! that carries something we need; the rest (name resolution, statistics, custom, journal, unknown) are skipped.
//!
//! Contract: never panics. Every length is checked before it is used: a block's length against
//! [`MAX_RECORD`](super::MAX_RECORD), the bytes there and the copy of it that ends the block, a packet's captured length against its block, an option
//! against the block it sits in. What fails is a [`ReadError`](super::ReadError) at the offset of its block.

use std::ops::Range;

use super::endian::Endian;
use super::input::Input;
use super::{CaptureReader, Container, MAX_RECORD, ReadError, Record};
use crate::model::segment::TimestampNs;
use crate::wire::link::LinkType;

/// Block types.
pub(super) const SECTION_HEADER: u32 = 0x0a0d_0d0a;
pub(super) const INTERFACE_DESCRIPTION: u32 = 1;
pub(super) const OBSOLETE_PACKET: u32 = 2;
pub(super) const SIMPLE_PACKET: u32 = 3;
pub(super) const ENHANCED_PACKET: u32 = 6;
/// The first bytes of every pcapng file (a section header's type, the same in both byte orders).
pub(super) const FILE_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
/// The section header's byte-order magic, as a number and as written little-endian and big-endian.
pub(super) const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const BYTE_ORDER_LE: [u8; 4] = [0x4d, 0x3c, 0x2b, 0x1a];
const BYTE_ORDER_BE: [u8; 4] = [0x1a, 0x2b, 0x3c, 0x4d];

/// Option codes.
pub const OPT_END: u16 = 0;
pub const OPT_COMMENT: u16 = 1;
pub const SHB_OS: u16 = 3;
pub const SHB_USERAPPL: u16 = 4;
pub const IF_NAME: u16 = 2;
pub const IF_TSRESOL: u16 = 9;
pub const IF_TSOFFSET: u16 = 14;

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

/// The section being read: its byte order and the interfaces described so far.
pub(super) struct Section {
    endian: Endian,
    interfaces: Vec<Interface>,
}

impl Section {
    /// Before the first section header is read.
    pub(super) fn new() -> Section {
        Section {
            endian: Endian::Little,
            interfaces: Vec::new(),
        }
    }
}

/// A block whose bytes are all in the buffer (and already consumed).
struct Block {
    kind: u32,
    endian: Endian,
    /// Input offset of its first byte, for errors.
    at: u64,
    /// Where its body lies in the buffer.
    body: Range<usize>,
}

impl CaptureReader {
    /// The next frame of a pcapng input, reading past blocks that carry none.
    pub(super) fn next_pcapng(&mut self) -> Result<Option<Record>, ReadError> {
        loop {
            let Some(block) = self.next_block()? else {
                return Ok(None);
            };
            match block.kind {
                SECTION_HEADER => self.section_header(&block)?,
                INTERFACE_DESCRIPTION => self.interface_description(&block)?,
                ENHANCED_PACKET | OBSOLETE_PACKET => return self.packet(&block).map(Some),
                SIMPLE_PACKET => return self.simple_packet(&block).map(Some),
                _ => {}
            }
        }
    }

    fn section(&self) -> Option<&Section> {
        match &self.container {
            Container::Pcapng(section) => Some(section),
            Container::Pcap(_) => None,
        }
    }

    /// Read a whole block and step past it; `None` at a clean end.
    fn next_block(&mut self) -> Result<Option<Block>, ReadError> {
        if !self.need(12, "a pcapng block header")? {
            return Ok(None);
        }
        let at = self.bytes.offset();
        let head = self.bytes.peek(12);
        let endian = if head[..4] == FILE_MAGIC {
            match byte_order(&head[8..12]) {
                Some(endian) => endian,
                None => {
                    return Err(
                        self.error("pcapng section header with an unknown byte-order magic", at)
                    );
                }
            }
        } else {
            match self.section() {
                Some(section) => section.endian,
                None => return Ok(None),
            }
        };
        let kind = endian.u32(head);
        let blen = endian.u32(&head[4..]) as usize;
        if blen < 12 || !blen.is_multiple_of(4) || blen > MAX_RECORD {
            return Err(self.error(
                format!("pcapng block of type 0x{kind:x} with impossible length {blen}"),
                at,
            ));
        }
        if !self.need(blen, "a pcapng block")? {
            return Ok(None);
        }
        // The length is written at both ends of a block; when they differ, one of them is damaged (tshark says
        // so too), and every length after it is suspect.
        let trailer = endian.u32(&self.bytes.peek(blen)[blen - 4..]) as usize;
        if trailer != blen {
            return Err(self.error(
                format!(
                    "pcapng block of type 0x{kind:x} ends with length {trailer}, not the {blen} it starts with: \
                     the block is damaged"
                ),
                at,
            ));
        }
        let start = self.bytes.pos;
        self.bytes.pos += blen;
        Ok(Some(Block {
            kind,
            endian,
            at,
            body: start + 8..start + blen - 4,
        }))
    }

    /// A section header: a new byte order, and interfaces numbered from 0 again.
    fn section_header(&mut self, block: &Block) -> Result<(), ReadError> {
        let (endian, at) = (block.endian, block.at);
        let body = &self.bytes.data()[block.body.clone()];
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
        self.container = Container::Pcapng(Section {
            endian,
            interfaces: Vec::new(),
        });
        Ok(())
    }

    /// An interface description: link type, snap length, timestamp resolution and offset.
    fn interface_description(&mut self, block: &Block) -> Result<(), ReadError> {
        let (endian, at) = (block.endian, block.at);
        let body = &self.bytes.data()[block.body.clone()];
        if body.len() < 8 {
            return Err(self.error("pcapng interface block too short", at));
        }
        let number = endian.u16(body) as u32;
        let mut iface = Interface {
            link: LinkType::from_number(number).ok_or(number),
            snaplen: endian.u32(&body[4..]),
            units_per_sec: 1_000_000,
            offset_sec: 0,
        };
        let r = check_options(endian, &body[8..], |code, value| match code {
            IF_TSRESOL if !value.is_empty() => iface.units_per_sec = units_per_sec(value[0]),
            IF_TSOFFSET if value.len() >= 8 => iface.offset_sec = endian.u64(value) as i64,
            _ => {}
        });
        if let Err(what) = r {
            return Err(self.error(format!("pcapng interface block: {what}"), at));
        }
        if let Container::Pcapng(section) = &mut self.container {
            section.interfaces.push(iface);
        }
        Ok(())
    }

    /// Enhanced (6) and obsolete (2) packet blocks: they share the layout but for the interface id.
    fn packet(&self, block: &Block) -> Result<Record, ReadError> {
        let (endian, at) = (block.endian, block.at);
        let body = &self.bytes.data()[block.body.clone()];
        if body.len() < 20 {
            return Err(self.error("pcapng packet block too short", at));
        }
        let iface_id = if block.kind == ENHANCED_PACKET {
            endian.u32(body) as usize
        } else {
            endian.u16(body) as usize
        };
        let ts_units =
            (u64::from(endian.u32(&body[4..])) << 32) | u64::from(endian.u32(&body[8..]));
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
        let iface = self.section().and_then(|s| s.interfaces.get(iface_id));
        let Some(iface) = iface else {
            return Err(self.error(
                format!(
                    "pcapng packet block names interface {iface_id}, which no interface block described"
                ),
                at,
            ));
        };
        Ok(Record {
            start: block.body.start + 20,
            len: caplen,
            ts: units_to_ns(ts_units, iface.units_per_sec, iface.offset_sec),
            link: iface.link,
            orig_len: orig,
        })
    }

    /// A simple packet block: interface 0, no timestamp, captured length from the block and the snap length.
    fn simple_packet(&self, block: &Block) -> Result<Record, ReadError> {
        let (endian, at) = (block.endian, block.at);
        let body = &self.bytes.data()[block.body.clone()];
        if body.len() < 4 {
            return Err(self.error("pcapng simple packet block too short", at));
        }
        let orig = endian.u32(body);
        let Some(iface) = self.section().and_then(|s| s.interfaces.first()) else {
            return Err(self.error("pcapng simple packet block before any interface block", at));
        };
        let mut caplen = (orig as usize).min(body.len() - 4);
        if iface.snaplen > 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        Ok(Record {
            start: block.body.start + 4,
            len: caplen,
            ts: 0,
            link: iface.link,
            orig_len: orig,
        })
    }
}

/// The comments (opt_comment) of the section header at the start of `bytes`, read without consuming anything;
/// empty when it cannot be read.
pub(super) fn leading_comments(bytes: &mut Input) -> Vec<String> {
    let mut comments = Vec::new();
    if !matches!(bytes.ensure(12), Ok(true)) {
        return comments;
    }
    let head = bytes.peek(12);
    let Some(endian) = byte_order(&head[8..12]) else {
        return comments;
    };
    let blen = endian.u32(&head[4..]) as usize;
    if !(28..=MAX_RECORD).contains(&blen) || !matches!(bytes.ensure(blen), Ok(true)) {
        return comments;
    }
    let block = bytes.peek(blen);
    let _ = check_options(endian, &block[24..blen - 4], |code, value| {
        if code == OPT_COMMENT {
            comments.push(String::from_utf8_lossy(value).into_owned());
        }
    });
    comments
}

/// The byte order a section header's magic (its bytes 8..12) says.
fn byte_order(magic: &[u8]) -> Option<Endian> {
    if magic == BYTE_ORDER_LE {
        Some(Endian::Little)
    } else if magic == BYTE_ORDER_BE {
        Some(Endian::Big)
    } else {
        None
    }
}

/// if_tsresol: high bit set, a power of two; else a power of ten. Beyond 10^18 / 2^63 the units cannot be stored;
/// keep µs rather than overflow.
fn units_per_sec(v: u8) -> u64 {
    let exp = u32::from(v & 0x7f);
    let units = if v & 0x80 != 0 {
        1u64.checked_shl(exp).unwrap_or(1_000_000)
    } else {
        10u64.checked_pow(exp).unwrap_or(1_000_000)
    };
    if units == 0 { 1_000_000 } else { units }
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
        if code == OPT_END {
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

#[cfg(test)]
mod tests {
    use crate::capfile::testfiles::*;
    use crate::wire::link::LinkType;

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
    fn pcapng_trailing_length_must_match_the_leading_one() {
        let good = pcapng_section(
            false,
            &[(1, None)],
            &[(0, 1, eth_syn(1)), (0, 2, eth_syn(2))],
        );
        let mut bytes = good.clone();
        let last = bytes.len() - 4;
        bytes[last] ^= 4; // the second packet block's trailing length
        let (frames, err) = all(bytes);
        assert_eq!(
            frames.len(),
            1,
            "the frame before the damaged block is kept"
        );
        let err = err.expect("a damaged block is an error");
        let blen = u32::from_le_bytes(good[last..].try_into().unwrap()) as usize;
        assert_eq!(err.frames_before, 1);
        assert_eq!(
            err.offset,
            (good.len() - blen) as u64,
            "located at its block"
        );
        assert!(
            err.to_string()
                .contains("pcapng block of type 0x6 ends with length"),
            "{err}"
        );
    }
}
