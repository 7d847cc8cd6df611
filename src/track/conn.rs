//! The connection record. One TCP connection in one small fixed-size [`Conn`]: who is the client, counts, first
//! close, and Zeek's state machine (see [`crate::track::zeek`]); how one packet changes it (`Conn::account`);
//! and how it ended, in words ([`Ending`]). Finding a packet's connection, numbered the way Wireshark numbers
//! `tcp.stream`, is [`crate::track::tracker`]'s job.
//!
//! Memory: one [`Conn`] (~250 bytes) per connection, whatever the number of packets.

use crate::model::segment::{Segment, SeqNumber, TimestampNs};
use crate::track::ends::FlowKey;
pub use crate::track::ends::{Endpoint, Side};
use crate::track::packet::TcpPacket;
use crate::track::zeek::{ConnState, ZeekConn};

/// How a side closed: FIN (orderly) or RST (abort).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseKind {
    Fin,
    Rst,
}

impl CloseKind {
    pub fn name(self) -> &'static str {
        match self {
            CloseKind::Fin => "FIN",
            CloseKind::Rst => "RST",
        }
    }
}

/// Counters of one side (its FINs and RSTs are counted once, in Zeek's endpoint state).
#[derive(Debug, Clone, Copy, Default)]
pub struct SideCounts {
    pub packets: u32,
    /// Wireshark's base sequence number for this direction (the SYN's, else the first segment's); meaningless
    /// while `packets` is 0.
    base_seq: SeqNumber,
    pub syns: u16,
}

impl SideCounts {
    /// Count one packet of this direction: its SYN, and Wireshark's base sequence number.
    #[inline]
    pub(super) fn count(&mut self, p: &TcpPacket) {
        let f = p.flags;
        let first = self.packets == 0;
        self.packets = self.packets.saturating_add(1);
        if f.syn() {
            self.syns = self.syns.saturating_add(1);
        }
        if first || (f.syn() && !f.ack() && self.syns == 1) {
            self.base_seq = p.seq;
        }
    }

    /// Wireshark: a pure SYN of this direction whose sequence number differs from its base starts a new stream.
    #[inline]
    pub(super) fn syn_starts_new_stream(&self, p: &TcpPacket) -> bool {
        let pure_syn = p.flags.syn() && !p.flags.ack();
        pure_syn && self.packets != 0 && self.base_seq != p.seq
    }
}

/// One TCP connection: a small record that stays the same size however many packets it had.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Wireshark's `tcp.stream` number within its file.
    pub id: u32,
    pub client: Endpoint,
    pub server: Endpoint,
    pub start: TimestampNs,
    pub end: TimestampNs,
    pub counts: [SideCounts; 2],
    /// IP bytes each side sent, headers included, as the IP headers declare them (conn.log's `*_ip_bytes`).
    pub ip_bytes: [u64; 2],
    pub first_close: Option<(Side, CloseKind)>,
    /// The first RST came after a FIN from this side.
    pub rst_after_fin_of: Option<Side>,
    /// Who sent the first RST.
    pub first_rst: Option<Side>,
    pub zeek: ZeekConn,
    /// The `--filter` expression matched at least one of its frames.
    pub bpf_matched: bool,
}

impl Conn {
    pub fn side_of(&self, seg: &Segment) -> Side {
        if Endpoint::from_socket(seg.src) == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    pub fn side_of_packet(&self, p: &TcpPacket) -> Side {
        if p.src == self.client {
            Side::Client
        } else {
            Side::Server
        }
    }

    pub fn packets(&self) -> u64 {
        u64::from(self.counts[0].packets) + u64::from(self.counts[1].packets)
    }

    pub fn fins(&self, s: Side) -> u16 {
        self.zeek.endpoint(self.sender_side(s)).fin_cnt
    }
    pub fn rsts(&self, s: Side) -> u16 {
        self.zeek.endpoint(self.sender_side(s)).rst_cnt
    }

    /// A socket connected to itself (a self-connect: the same address and port at both ends, so the same 4-tuple
    /// both ways). Every segment is sent by that one socket and comes back to it: it is client and server at once.
    pub fn self_connect(&self) -> bool {
        self.client == self.server
    }

    /// Whose counters tell what `s` sent: its own, except in a self-connect, where every segment is both ends'
    /// and so was counted once, on the client's side (Zeek's originator: Zeek's `is_orig` compares the source
    /// with the originator's address and port, which every segment of a self-connect matches).
    fn sender_side(&self, s: Side) -> Side {
        if self.self_connect() { Side::Client } else { s }
    }
    pub fn syns(&self, s: Side) -> u16 {
        self.counts[s.index()].syns
    }

    /// Payload bytes each side sent, by sequence numbers (Zeek's orig_bytes / resp_bytes).
    pub fn bytes(&self, s: Side) -> u64 {
        self.zeek.size(self.sender_side(s))
    }

    pub fn conn_state(&self) -> ConnState {
        self.zeek.conn_state()
    }

    pub fn history(&self) -> &str {
        self.zeek.history.as_str()
    }

    pub fn duration(&self) -> TimestampNs {
        (self.end - self.start).max(0)
    }

    /// The kind of ending, for totals.
    pub fn ending(&self) -> Ending {
        if self.self_connect() {
            return self.self_connect_ending();
        }
        if let Some(by) = self.first_rst {
            if by == Side::Server
                && self.conn_state() == ConnState::REJ
                && self.syns(Side::Server) == 0
            {
                return Ending::Refused;
            }
            return Ending::Reset {
                by,
                after_fin_of: self.rst_after_fin_of,
            };
        }
        match self.first_close {
            Some((first, _)) if self.fins(first.other()) > 0 => Ending::Clean { first },
            Some((first, _)) => Ending::HalfClosed { by: first },
            None if self.syns(Side::Client) > 0 && self.counts[1].packets == 0 => {
                Ending::Unanswered
            }
            None => Ending::Open,
        }
    }

    /// [`Conn::ending`] of a self-connect: its FIN (or RST) reached the very socket that sent it.
    fn self_connect_ending(&self) -> Ending {
        match self.first_close {
            Some((_, CloseKind::Fin)) if self.first_rst.is_none() => Ending::SelfConnectClosed,
            Some(_) => Ending::SelfConnectReset,
            None => Ending::SelfConnectOpen,
        }
    }
}

impl Conn {
    /// A new connection whose first packet is `p`.
    pub(super) fn new(id: u32, p: &TcpPacket) -> Conn {
        // The client sent the first SYN; a capture that starts with the SYN-ACK shows the client as its receiver
        // (history marked '^'; Zeek flips it only when the SYN-ACK's source port is a likely server port, see
        // docs/analyze.md); otherwise the first sender.
        let synack_first = p.flags.syn() && p.flags.ack();
        let (client, server, zeek) = if synack_first {
            (p.dst, p.src, ZeekConn::flipped())
        } else {
            (p.src, p.dst, ZeekConn::default())
        };
        Conn {
            id,
            client,
            server,
            start: p.ts,
            end: p.ts,
            counts: [SideCounts::default(); 2],
            ip_bytes: [0; 2],
            first_close: None,
            rst_after_fin_of: None,
            first_rst: None,
            zeek,
            bpf_matched: false,
        }
    }

    /// The 4-tuple `key` is this connection's, in either direction.
    #[inline]
    pub(super) fn is_flow(&self, key: &FlowKey) -> bool {
        (self.client == key.0 && self.server == key.1)
            || (self.client == key.1 && self.server == key.0)
    }

    /// Wireshark: a pure SYN whose sequence number differs from the base of its direction starts a new stream on
    /// the same 4-tuple.
    #[inline]
    pub(super) fn syn_starts_new_stream(&self, p: &TcpPacket) -> bool {
        self.counts[self.side_of_packet(p).index()].syn_starts_new_stream(p)
    }

    /// Account one packet of this connection.
    #[inline]
    pub(super) fn account(&mut self, p: &TcpPacket) {
        let side = self.side_of_packet(p);
        let f = p.flags;
        self.end = self.end.max(p.ts);
        self.start = self.start.min(p.ts);
        self.counts[side.index()].count(p);
        self.ip_bytes[side.index()] += u64::from(p.ip_len);
        if f.rst() && self.first_rst.is_none() {
            self.first_rst = Some(side);
            // FINs before this packet (Zeek counts this one's below); after both, the RST answers the other's.
            let fin_before = |s: Side| self.fins(s) > 0 && !(s == side && f.fin());
            self.rst_after_fin_of = match (fin_before(side), fin_before(side.other())) {
                (false, false) => None,
                (true, false) => Some(side),
                (_, true) => Some(side.other()),
            };
        }
        if self.first_close.is_none() {
            if f.rst() {
                self.first_close = Some((side, CloseKind::Rst));
            } else if f.fin() {
                self.first_close = Some((side, CloseKind::Fin));
            }
        }
        self.zeek.process(side, p);
    }
}

/// How a connection ended, in words a reader of the totals wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Ending {
    /// Both sides sent FIN and nobody reset.
    Clean { first: Side },
    /// A RST ended it (possibly after a FIN from `after_fin_of`).
    Reset {
        by: Side,
        after_fin_of: Option<Side>,
    },
    /// The server answered the SYN with a RST.
    Refused,
    /// One side sent FIN, the other never did (and nobody reset).
    HalfClosed { by: Side },
    /// A SYN that got no answer at all.
    Unanswered,
    /// Neither FIN nor RST seen: still open when the capture ended.
    Open,
    /// A socket connected to itself sent a FIN, which came back to it (both ends' FIN), and no RST.
    SelfConnectClosed,
    /// A socket connected to itself sent a RST (to itself).
    SelfConnectReset,
    /// A socket connected to itself, neither FIN nor RST seen.
    SelfConnectOpen,
}

impl Ending {
    pub fn describe(self) -> String {
        self.text().to_string()
    }

    /// [`Ending::describe`] without an allocation: every kind of ending has one fixed text.
    pub fn text(self) -> &'static str {
        use Side::{Client as C, Server as S};
        match self {
            Ending::Clean { first: C } => "closed cleanly (client first)",
            Ending::Clean { first: S } => "closed cleanly (server first)",
            Ending::Reset {
                by: C,
                after_fin_of: None,
            } => "reset by the client",
            Ending::Reset {
                by: S,
                after_fin_of: None,
            } => "reset by the server",
            Ending::Reset {
                by: C,
                after_fin_of: Some(C),
            } => "reset by the client after its own FIN",
            Ending::Reset {
                by: S,
                after_fin_of: Some(S),
            } => "reset by the server after its own FIN",
            Ending::Reset {
                by: C,
                after_fin_of: Some(S),
            } => "reset by the client after the server's FIN",
            Ending::Reset {
                by: S,
                after_fin_of: Some(C),
            } => "reset by the server after the client's FIN",
            Ending::Refused => "refused (RST to the SYN)",
            Ending::HalfClosed { by: C } => "half-closed by the client (no FIN back)",
            Ending::HalfClosed { by: S } => "half-closed by the server (no FIN back)",
            Ending::Unanswered => "SYN never answered",
            Ending::Open => "still open at the end of the capture",
            Ending::SelfConnectClosed => {
                "closed (a socket connected to itself: its FIN came back to it)"
            }
            Ending::SelfConnectReset => "reset (a socket connected to itself)",
            Ending::SelfConnectOpen => "still open (a socket connected to itself)",
        }
    }
}

/// First close of a connection as (by, kind) words for output.
pub fn first_close_words(c: &Conn) -> (Option<&'static str>, Option<&'static str>) {
    match c.first_close {
        Some((side, kind)) => (Some(side.name()), Some(kind.name())),
        None => (None, None),
    }
}

/// `client FIN`, `server RST`, or `-`.
pub fn first_close_text(c: &Conn) -> String {
    match c.first_close {
        Some((side, CloseKind::Fin)) => format!("{} FIN", side.name()),
        Some((side, CloseKind::Rst)) => format!("{} RST", side.name()),
        None => "-".to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::model::segment::TcpFlags;
    use crate::track::tracker::Tracker;

    /// A segment between two `ip:port`s at time 0, for the track tests.
    pub(crate) fn seg(src: &str, dst: &str, flags: u16, seq: u32, ack: u32, len: u32) -> Segment {
        crate::testing::segment(0, src, dst, flags, seq, ack, len)
    }

    pub(crate) const S: u16 = TcpFlags::SYN;
    pub(crate) const A: u16 = TcpFlags::ACK;
    pub(crate) const F: u16 = TcpFlags::FIN;
    pub(crate) const R: u16 = TcpFlags::RST;
    /// The client and the server of the track tests.
    pub(crate) const C: &str = "10.0.0.1:5555";
    pub(crate) const SV: &str = "10.0.0.2:80";

    #[test]
    fn record_stays_small() {
        // a million connections must fit well under 300 MB with the index and the output buffers
        assert!(
            std::mem::size_of::<Conn>() <= 248,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }

    #[test]
    fn client_is_syn_sender_or_synack_receiver_or_first_sender() {
        let mut t = Tracker::new();
        t.add(&seg(SV, C, S | A, 1, 1, 0));
        assert_eq!(t.conns[0].client.socket().to_string(), C);
        assert!(t.conns[0].history().starts_with('^'));
        let mut t = Tracker::new();
        t.add(&seg(SV, C, A, 1, 1, 10));
        assert_eq!(t.conns[0].client.socket().to_string(), SV);
    }

    #[test]
    fn ending_texts_read_as_before() {
        // The words of every kind of ending, as they were formatted before they became fixed strings.
        let sides = [Side::Client, Side::Server];
        for by in sides {
            let n = by.name();
            assert_eq!(
                Ending::Clean { first: by }.text(),
                format!("closed cleanly ({n} first)")
            );
            assert_eq!(
                Ending::HalfClosed { by }.text(),
                format!("half-closed by the {n} (no FIN back)")
            );
            let reset = |after_fin_of| Ending::Reset { by, after_fin_of }.text();
            assert_eq!(reset(None), format!("reset by the {n}"));
            assert_eq!(
                reset(Some(by)),
                format!("reset by the {n} after its own FIN")
            );
            let o = by.other().name();
            assert_eq!(
                reset(Some(by.other())),
                format!("reset by the {n} after the {o}'s FIN")
            );
        }
    }

    /// A self-connect, the segments of self-connect.pcap: one socket at both ends, so Zeek (whose `is_orig` is
    /// "source == originator's address and port") takes every segment as the originator's: its SYN-ACK repeats
    /// the SYN's number, so no 'H'; the responder stays inactive, so conn_state SH and history SADF. The other
    /// columns say what the packets prove: the FIN and the bytes reached the socket that sent them.
    #[test]
    fn self_connect_is_one_socket_at_both_ends() {
        const ME: &str = "127.0.0.1:40000";
        let mut t = Tracker::new();
        for (f, seq, ack, len) in [
            (S, 1, 0, 0),
            (S | A, 1, 2, 0),
            (A, 2, 2, 0),
            (A, 2, 2, 8),
            (A, 10, 10, 0),
            (F | A, 10, 10, 0),
            (A, 11, 11, 0),
        ] {
            t.add(&seg(ME, ME, f, seq, ack, len));
        }
        assert_eq!(t.conns.len(), 1);
        let c = &t.conns[0];
        assert!(c.self_connect());
        assert_eq!((c.conn_state(), c.history()), (ConnState::SH, "SADF"));
        assert_eq!((c.fins(Side::Client), c.fins(Side::Server)), (1, 1));
        assert_eq!((c.bytes(Side::Client), c.bytes(Side::Server)), (8, 8));
        assert_eq!(c.ending(), Ending::SelfConnectClosed);
        // two sockets, same segments but the answers from the other end: an ordinary connection, unchanged
        let mut t = Tracker::new();
        t.add(&seg(C, SV, S, 1, 0, 0));
        t.add(&seg(C, SV, F | A, 2, 0, 0));
        assert!(!t.conns[0].self_connect());
        assert_eq!(t.conns[0].fins(Side::Server), 0);
        assert_eq!(t.conns[0].ending(), Ending::HalfClosed { by: Side::Client });
    }

    #[test]
    fn endings() {
        let mut t = Tracker::new();
        t.add(&seg(C, SV, S, 1, 0, 0));
        t.add(&seg(SV, C, R | A, 0, 2, 0));
        assert_eq!(t.conns[0].ending(), Ending::Refused);
        assert_eq!(t.conns[0].first_close, Some((Side::Server, CloseKind::Rst)));

        let mut t = Tracker::new();
        t.add(&seg(C, SV, S, 1, 0, 0));
        t.add(&seg(SV, C, S | A, 1, 2, 0));
        t.add(&seg(C, SV, F | A, 2, 2, 0));
        t.add(&seg(SV, C, R | A, 2, 3, 0));
        assert_eq!(
            t.conns[0].ending(),
            Ending::Reset {
                by: Side::Server,
                after_fin_of: Some(Side::Client)
            }
        );
        assert_eq!(
            t.conns[0].ending().describe(),
            "reset by the server after the client's FIN"
        );
    }
}
