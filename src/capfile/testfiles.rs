//! Small captures for tests, written with `write` around frames built in the test, and a reader loop that
//! collects what comes back.

use crate::capfile::pcapng::IF_TSRESOL;
use crate::capfile::write::{Opt, PcapWriter, PcapngWriter};
use crate::capfile::{CaptureReader, Endian, ReadError};
use crate::wire::link::LinkType;
use etherparse::PacketBuilder;

fn endian(big: bool) -> Endian {
    if big { Endian::Big } else { Endian::Little }
}

/// A classic pcap: `big` picks the byte order, `nanos` the timestamp unit. Frames are (time in ns, bytes).
pub fn pcap(big: bool, nanos: bool, link: u32, frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(endian(big), nanos, 65535, link);
    for (ts, f) in frames {
        w.record(*ts, f, f.len() as u32);
    }
    w.into_bytes()
}

/// A pcapng section: interfaces given as (link type, if_tsresol option), packets as (interface, ts units, bytes).
pub fn pcapng_section(
    big: bool,
    interfaces: &[(u16, Option<u8>)],
    packets: &[(u32, u64, Vec<u8>)],
) -> Vec<u8> {
    let mut w = PcapngWriter::new(endian(big));
    w.section(&[]);
    for &(link, resol) in interfaces {
        match resol {
            Some(r) => w.interface(link, 0, &[Opt::new(IF_TSRESOL, &[r])]),
            None => w.interface(link, 0, &[]),
        }
    }
    for (iface, ts, f) in packets {
        w.packet(*iface, *ts, f, f.len() as u32, &[]);
    }
    w.into_bytes()
}

pub fn eth_syn(port: u16) -> Vec<u8> {
    let mut f = Vec::new();
    PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
        .tcp(port, 80, 7, 1000)
        .syn()
        .write(&mut f, b"")
        .unwrap();
    f
}

pub fn raw_fin() -> Vec<u8> {
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
pub type Seen = Vec<(u64, i64, Result<LinkType, u32>, usize)>;

pub fn all(bytes: Vec<u8>) -> (Seen, Option<ReadError>) {
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
