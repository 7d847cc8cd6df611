//! The tracker's view of one TCP segment.

use crate::model::segment::{Segment, SeqNumber, TcpFlags, TimestampNs};
use crate::track::ends::Endpoint;

/// One decoded TCP segment as the tracker and Zeek's state machine read it: the fields of a [`Segment`] without
/// its payload, in a small fixed-size `Copy` record (20-byte [`Endpoint`]s instead of 32-byte `SocketAddr`s, no
/// `Vec` to drop). It stays beside [`Segment`] because of the hot path: the reader thread hands these to the
/// tracker in batches of thousands, and a batch of them is about half the bytes of the same batch of segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpPacket {
    pub ts: TimestampNs,
    pub src: Endpoint,
    pub dst: Endpoint,
    pub flags: TcpFlags,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub window: u16,
    /// Payload length as the IP header declares it.
    pub len: u32,
    /// The IP packet's declared length, headers included (conn.log's `*_ip_bytes` sum it).
    pub ip_len: u32,
    /// The whole payload was captured (Zeek's reassembler takes a segment's bytes only then: a payload cut by
    /// the snap length is never delivered, and its bytes count as missed once the peer acknowledges them).
    pub whole: bool,
}

impl TcpPacket {
    /// The packet of a segment whose captured payload is `seg.payload`.
    pub fn of(seg: &Segment) -> TcpPacket {
        TcpPacket::captured(seg, seg.payload.len())
    }

    /// The packet of a segment of which `captured` payload bytes were captured (the decoder's fast path keeps
    /// the payload apart from the segment).
    #[inline]
    pub fn captured(seg: &Segment, captured: usize) -> TcpPacket {
        TcpPacket {
            ts: seg.ts,
            src: Endpoint::from_socket(seg.src),
            dst: Endpoint::from_socket(seg.dst),
            flags: seg.flags,
            seq: seg.seq,
            ack: seg.ack,
            window: seg.window,
            len: seg.len,
            ip_len: seg.ip_len,
            whole: captured >= seg.len as usize,
        }
    }
}
