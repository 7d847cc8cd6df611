//! Zeek's `TCP_Reassembler` (analyzer/protocol/tcp/TCP_Reassembler.cc, over `Reassembler` in Reassem.cc), reduced
//! to what conn.log reads from it: the content gaps, bytes of a side's stream that the peer acknowledged but no
//! captured segment carried whole. Zeek sums them into `missed_bytes` and logs them as 'G'/'g'.
//!
//! No payload is kept. Per side, only where the delivered stream ends (`last_reassem_seq`, in the endpoint) and,
//! for the few connections that have a hole or a gap, the ranges seen above a hole and the gaps' counts
//! ([`Gaps`], outside the connection record: most connections have none and so cost no allocation).
//! Sequence numbers are Zeek's relative ones (the SYN is 0, the first data byte 1), without wraps, like the rest
//! of `track::zeek`.

use crate::track::ends::Side;
use crate::track::zeek::endpoint::EndpointState::{Closed, Established};
use crate::track::zeek::endpoint::TcpEndpoint;
use crate::track::zeek::history::History;

/// What a connection's content gaps left: allocated when a segment first lands above a hole or a gap is counted,
/// freed when the holes are filled or given up and no gap was counted.
#[derive(Debug, Clone, Default)]
pub struct Gaps {
    /// The ranges `[start, end)` of each side's stream seen above a hole, sorted, apart from each other.
    above: [Vec<(u64, u64)>; 2],
    /// conn.log's `missed_bytes`: bytes in gaps, both directions.
    missed_bytes: u64,
    /// Zeek's `gap_cnt` of each side: letter 'G' is logged at 1, 10, 100 … gaps.
    count: [u32; 2],
}

/// A connection's [`Gaps`], if it has any.
pub type Holes = Option<Box<Gaps>>;

/// conn.log's `missed_bytes`.
pub(super) fn missed_bytes(holes: &Holes) -> u64 {
    holes.as_deref().map_or(0, |g| g.missed_bytes)
}

/// Zeek's `TCP_Reassembler::Gap` when the connection is clean: count the bytes, log 'G' (or 'g') per gap on
/// Zeek's logarithmic scale.
pub(super) fn report_gaps(
    holes: &mut Holes,
    history: &mut History,
    side: Side,
    bytes: u64,
    gaps: u32,
) {
    let g = holes.get_or_insert_with(Default::default);
    g.missed_bytes += bytes;
    for _ in 0..gaps {
        history.scaled_entry(side, &mut g.count[side.index()], b'G');
    }
}

/// Zeek's `TCP_Reassembler::DataSent` and `Reassembler::NewBlock`: `len` whole bytes of `side`'s stream came at
/// relative sequence number `seq`. Bytes at or below the delivered end move it on, with every range above that
/// now touches it; bytes above a hole wait there.
#[inline]
pub(super) fn data_sent(ep: &mut TcpEndpoint, holes: &mut Holes, side: Side, seq: u64, len: u64) {
    let last = ep.last_reassem_seq();
    let upper = seq + len;
    if seq <= last && holes.is_none() {
        // in order, no hole anywhere: the common case
        if upper > last {
            ep.set_last_reassem_seq(upper);
        }
    } else if upper > last {
        data_sent_around_holes(ep, holes, side, seq, upper);
    }
}

/// [`data_sent`] of new bytes when there are ranges above a hole, or these bytes make one.
#[cold]
fn data_sent_around_holes(
    ep: &mut TcpEndpoint,
    holes: &mut Holes,
    side: Side,
    seq: u64,
    upper: u64,
) {
    if seq <= ep.last_reassem_seq() {
        let mut end = upper;
        if let Some(g) = holes.as_deref_mut() {
            let ranges = &mut g.above[side.index()];
            let n = ranges.iter().take_while(|r| r.0 <= end).count();
            for r in ranges.drain(..n) {
                end = end.max(r.1);
            }
        }
        ep.set_last_reassem_seq(end);
        free_if_empty(holes);
    } else {
        let ranges = &mut holes.get_or_insert_with(Default::default).above[side.index()];
        insert(ranges, seq, upper);
    }
}

/// Zeek's `TCP_Reassembler::AckReceived` and `Undelivered`: the peer acknowledged `side`'s stream up to relative
/// `ack`. What lies below it and was never delivered is a gap: the ranges waiting above a hole are delivered, the
/// holes between them and up to the acknowledgment are given up. Returns the gaps' bytes and how many there were
/// (Zeek's `Gap` calls); the caller counts them only when both ends are clean ([`clean`]).
#[inline]
pub(super) fn ack_received(
    ep: &mut TcpEndpoint,
    holes: &mut Holes,
    side: Side,
    ack: u64,
) -> (u64, u32) {
    // the FIN's cap below only lowers the acknowledgment: one at or below the delivered end is nothing new
    if ack <= ep.last_reassem_seq() {
        return (0, 0);
    }
    gaps_below(ep, holes, side, ack)
}

/// [`ack_received`] of an acknowledgment past the delivered end.
#[cold]
fn gaps_below(ep: &mut TcpEndpoint, holes: &mut Holes, side: Side, ack: u64) -> (u64, u32) {
    let mut up_to = ack;
    // Zeek's `FIN_seq` is one past the last FIN; here the side's highest sequence number, which is the same
    // unless the side sent more after its FIN
    let fin_seq = u64::from(ep.last_seq.since(ep.start_seq));
    if ep.fin_cnt > 0 && up_to >= fin_seq {
        // the FIN takes a sequence number but is no byte of the stream
        up_to = fin_seq.saturating_sub(1);
    }
    let mut last = ep.last_reassem_seq();
    if up_to <= last {
        return (0, 0);
    }
    let (mut bytes, mut gaps) = (0, 0);
    if let Some(g) = holes.as_deref_mut() {
        let ranges = &mut g.above[side.index()];
        let n = ranges.iter().take_while(|r| r.0 < up_to).count();
        for (start, end) in ranges.drain(..n) {
            if start > last {
                bytes += start - last;
                gaps += 1;
            }
            last = last.max(end);
        }
    }
    if up_to > last {
        bytes += up_to - last;
        gaps += 1;
        last = up_to;
    }
    ep.set_last_reassem_seq(last);
    free_if_empty(holes);
    (bytes, gaps)
}

/// Zeek's `established_or_cleanly_closing`: a gap is reported only while both ends are established or closed
/// from established; otherwise it may come from a reset's sequence numbers or an unseen start.
#[inline]
pub(super) fn clean(a: &TcpEndpoint, b: &TcpEndpoint) -> bool {
    let is_clean = |e: &TcpEndpoint| {
        e.state == Established || (e.state == Closed && e.prev_state == Established)
    };
    is_clean(a) && is_clean(b)
}

/// Put `[start, end)` among sorted ranges, joining those it overlaps or touches.
fn insert(ranges: &mut Vec<(u64, u64)>, mut start: u64, mut end: u64) {
    let i = ranges.partition_point(|r| r.1 < start);
    let mut j = i;
    while j < ranges.len() && ranges[j].0 <= end {
        start = start.min(ranges[j].0);
        end = end.max(ranges[j].1);
        j += 1;
    }
    ranges.splice(i..j, [(start, end)]);
}

fn free_if_empty(holes: &mut Holes) {
    if holes
        .as_deref()
        .is_some_and(|g| g.missed_bytes == 0 && g.above.iter().all(Vec::is_empty))
    {
        *holes = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_join_when_they_overlap_or_touch() {
        let mut r = Vec::new();
        insert(&mut r, 10, 20);
        insert(&mut r, 30, 40);
        insert(&mut r, 50, 60);
        assert_eq!(r, [(10, 20), (30, 40), (50, 60)]);
        insert(&mut r, 20, 30);
        assert_eq!(r, [(10, 40), (50, 60)]);
        insert(&mut r, 5, 55);
        assert_eq!(r, [(5, 60)]);
        insert(&mut r, 1, 2);
        assert_eq!(r, [(1, 2), (5, 60)]);
    }

    #[test]
    fn a_hole_filled_later_is_no_gap_and_one_never_filled_is() {
        let (mut ep, mut holes) = (TcpEndpoint::default(), None);
        let c = Side::Client;
        data_sent(&mut ep, &mut holes, c, 1, 10); // bytes 1..11
        data_sent(&mut ep, &mut holes, c, 21, 10); // 21..31, above the hole 11..21
        assert!(holes.is_some());
        assert_eq!(ack_received(&mut ep, &mut holes, c, 11), (0, 0));
        data_sent(&mut ep, &mut holes, c, 11, 10); // the hole filled: delivered to 31
        assert!(holes.is_none());
        assert_eq!(ack_received(&mut ep, &mut holes, c, 31), (0, 0));
        // bytes 31..41 lost, 41..51 seen: the ack of 61 gives up 31..41 and 51..61
        data_sent(&mut ep, &mut holes, c, 41, 10);
        assert_eq!(ack_received(&mut ep, &mut holes, c, 61), (20, 2));
        assert!(holes.is_none());
        // an ack that moves back or repeats is nothing new
        assert_eq!(ack_received(&mut ep, &mut holes, c, 40), (0, 0));
    }

    #[test]
    fn the_acked_fin_is_not_a_missing_byte() {
        let (mut ep, mut holes) = (TcpEndpoint::default(), None);
        data_sent(&mut ep, &mut holes, Side::Server, 1, 5);
        ep.fin_cnt = 1;
        ep.last_seq = ep.start_seq + 7; // the FIN at 6
        assert_eq!(ack_received(&mut ep, &mut holes, Side::Server, 7), (0, 0));
    }
}
