//! Classic pcap: a 24-byte file header, then a 16-byte header before every frame (24 bytes in Kuznetzov's
//! "modified" variant). Both byte orders, microsecond and nanosecond timestamps.
//!
//! Contract: never panics. [`Format::from_header`] is given the first bytes of the input (at least 4); a record
//! whose length is absurd or cut short is a located [`ReadError`](super::ReadError).

use super::endian::Endian;
use super::{CaptureReader, Container, MAX_RECORD, OpenError, ReadError, Record, hex};
use crate::wire::link::LinkType;

/// The magic numbers: µs, ns and the modified (µs) variant, as written by a little-endian host.
pub(super) const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub(super) const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
const MAGIC_MODIFIED: u32 = 0xa1b2_cd34;

/// What a classic pcap file header says about every record after it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Format {
    pub(super) endian: Endian,
    pub(super) nanos: bool,
    /// Kuznetzov's patched libpcap: 8 more bytes in every record header.
    pub(super) modified: bool,
    pub(super) link: Result<LinkType, u32>,
}

impl Format {
    /// Read the file header: `head` is the first (up to) 24 bytes of the input, at least 4.
    pub(super) fn from_header(head: &[u8]) -> Result<Format, OpenError> {
        let magic = [head[0], head[1], head[2], head[3]];
        let (endian, nanos, modified) = match (u32::from_le_bytes(magic), u32::from_be_bytes(magic))
        {
            (MAGIC_MICROS, _) => (Endian::Little, false, false),
            (_, MAGIC_MICROS) => (Endian::Big, false, false),
            (MAGIC_NANOS, _) => (Endian::Little, true, false),
            (_, MAGIC_NANOS) => (Endian::Big, true, false),
            (MAGIC_MODIFIED, _) => (Endian::Little, false, true),
            (_, MAGIC_MODIFIED) => (Endian::Big, false, true),
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
        // Bits 16-25 are reserved and must be zero; bits 26-31 describe an FCS (ignored: the IP length already
        // tells where the segment ends).
        if field & 0x03ff_0000 != 0 {
            return Err(OpenError(format!(
                "pcap link-type field 0x{field:08x} has reserved bits set; not a valid capture"
            )));
        }
        let number = field & 0xffff;
        Ok(Format {
            endian,
            nanos,
            modified,
            link: LinkType::from_number(number).ok_or(number),
        })
    }
}

impl CaptureReader {
    /// The next pcap record.
    #[inline]
    pub(super) fn next_pcap(&mut self) -> Result<Option<Record>, ReadError> {
        let Container::Pcap(Format {
            endian,
            nanos,
            modified,
            link,
        }) = self.container
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
        Ok(Some(Record {
            start,
            len: incl,
            ts,
            link,
            orig_len: orig,
        }))
    }
}

#[cfg(test)]
mod tests {
    use crate::capfile::testfiles::*;
    use crate::wire::link::LinkType;

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
