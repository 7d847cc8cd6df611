//! Segments → connections. Groups TCP segments by 4-tuple into connections numbered the way Wireshark numbers
//! `tcp.stream` (order of first appearance; a SYN with a new initial sequence number on a known 4-tuple starts a
//! new one), decides who is the client, and keeps per connection one small fixed-size record: counts, first close,
//! and Zeek's state machine (see [`crate::track::zeek`]).
//!
//! Memory: one [`Conn`] (~200 bytes) per connection plus 16 to 32 bytes of index, whatever the number of packets.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

use crate::model::segment::{Segment, SeqNumber, TcpFlags, TimestampNs};
use crate::track::zeek::{self, ZeekConn};

/// The two ends of a connection: the client opened it (sent the first SYN), the server answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

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

/// An address and port in 20 bytes (a `SocketAddr` takes 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn from_socket(a: SocketAddr) -> Endpoint {
        Endpoint {
            ip: a.ip(),
            port: a.port(),
        }
    }
    pub fn socket(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// Counters of one side (its FINs and RSTs are counted once, in Zeek's endpoint state).
#[derive(Debug, Clone, Copy, Default)]
pub struct SideCounts {
    pub packets: u32,
    /// Wireshark's base sequence number for this direction (the SYN's, else the first segment's); meaningless
    /// while `packets` is 0.
    base_seq: u32,
    pub syns: u16,
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
        self.zeek.ep[s.index()].fin_cnt
    }
    pub fn rsts(&self, s: Side) -> u16 {
        self.zeek.ep[s.index()].rst_cnt
    }
    pub fn syns(&self, s: Side) -> u16 {
        self.counts[s.index()].syns
    }

    /// Payload bytes each side sent, by sequence numbers (Zeek's orig_bytes / resp_bytes).
    pub fn bytes(&self, s: Side) -> u64 {
        let (c, sv) = self.zeek.sizes();
        match s {
            Side::Client => c,
            Side::Server => sv,
        }
    }

    pub fn conn_state(&self) -> &'static str {
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
        if let Some(by) = self.first_rst {
            if by == Side::Server && self.conn_state() == "REJ" && self.syns(Side::Server) == 0 {
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
        }
    }
}

/// A 4-tuple. [`Conn::is_flow`] matches it in either direction; hashing puts it in a canonical order first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FlowKey(Endpoint, Endpoint);

/// One decoded TCP segment in a small fixed-size record (no payload, no `SocketAddr`s): what the tracker needs,
/// and what a reader thread hands to it in batches.
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
}

impl TcpPacket {
    pub fn of(seg: &Segment) -> TcpPacket {
        TcpPacket {
            ts: seg.ts,
            src: Endpoint::from_socket(seg.src),
            dst: Endpoint::from_socket(seg.dst),
            flags: seg.flags,
            seq: seg.seq,
            ack: seg.ack,
            window: seg.window,
            len: seg.len,
        }
    }
}

/// Hashes a 4-tuple the same way in both directions, with a seed chosen per run. `Clone` so another thread
/// can hash packets before they reach the [`Tracker`] that made it.
#[derive(Clone)]
pub struct FlowHasher {
    seed: foldhash::fast::RandomState,
    /// Keys for the IPv4 hash, drawn from `seed`.
    keys: [u64; 3],
    /// Tests only: hash every flow to 0.
    collide: bool,
}

/// The 128-bit product of two words, folded to 64 bits: the mixing step of foldhash and wyhash.
fn folded_multiply(x: u64, y: u64) -> u64 {
    let full = u128::from(x) * u128::from(y);
    (full as u64) ^ ((full >> 64) as u64)
}

impl FlowHasher {
    fn new() -> FlowHasher {
        let seed = foldhash::fast::RandomState::default();
        let keys = [1u64, 2, 3].map(|i| seed.hash_one(i) | 1);
        FlowHasher {
            seed,
            keys,
            collide: false,
        }
    }

    pub fn hash(&self, p: &TcpPacket) -> u64 {
        self.hash_pair(p.src, p.dst)
    }

    /// [`FlowHasher::hash`] of a segment's addresses, the same value. Read straight from the `SocketAddr`s: the
    /// byte-aligned `IpAddr`s of a freshly written [`TcpPacket`] are slow to read back (store forwarding fails).
    #[inline]
    pub fn hash_sockets(&self, a: &SocketAddr, b: &SocketAddr) -> u64 {
        match (a, b) {
            (SocketAddr::V4(x), SocketAddr::V4(y)) if !self.collide => {
                self.hash_v4(x.ip().to_bits(), x.port(), y.ip().to_bits(), y.port())
            }
            _ => self.hash_pair(Endpoint::from_socket(*a), Endpoint::from_socket(*b)),
        }
    }

    /// Two IPv4 ends fit in two words: two multiplications instead of hashing the enum-shaped key.
    #[inline]
    fn hash_v4(&self, ip_a: u32, port_a: u16, ip_b: u32, port_b: u16) -> u64 {
        let wa = (u64::from(ip_a) << 16) | u64::from(port_a);
        let wb = (u64::from(ip_b) << 16) | u64::from(port_b);
        let (lo, hi) = (wa.min(wb), wa.max(wb));
        let k = &self.keys;
        folded_multiply(folded_multiply(lo ^ k[0], hi ^ k[1]) ^ hi, k[2])
    }

    fn hash_pair(&self, a: Endpoint, b: Endpoint) -> u64 {
        if self.collide {
            return 0;
        }
        match (a.ip, b.ip) {
            (IpAddr::V4(x), IpAddr::V4(y)) => {
                self.hash_v4(x.to_bits(), a.port, y.to_bits(), b.port)
            }
            _ => {
                let (a, b) = if a <= b { (a, b) } else { (b, a) };
                self.seed.hash_one(FlowKey(a, b))
            }
        }
    }
}

/// 4-tuple → latest connection on it: open addressing with linear probing over 8-byte slots, each the top 32
/// bits of the flow's hash (its tag) and the connection id + 1 (0: empty). A tag match is confirmed against the
/// connection's addresses, so colliding hashes cannot merge two flows: they only probe further. A slot's position
/// comes from the top bits of its tag, so the table grows without hashing anything again.
///
/// No cache in front: the slots of the flows open at the moment stay in the CPU cache by themselves, and one
/// slot is one cache line to fetch for a new flow (a general-purpose map touched two).
struct FlowIndex {
    slots: Vec<u64>,
    /// log2 of the number of slots.
    bits: u32,
    used: usize,
}

impl FlowIndex {
    fn new() -> FlowIndex {
        let bits = 12;
        FlowIndex {
            slots: vec![0; 1 << bits],
            bits,
            used: 0,
        }
    }

    fn home(&self, tag: u32) -> usize {
        (tag >> (32 - self.bits)) as usize
    }

    /// Ask the CPU for the cache line of the flow with hash `h` ahead of its lookup.
    fn prefetch(&self, h: u64) {
        let i = self.home((h >> 32) as u32);
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch is a hint that never faults, whatever the address; SSE is in every x86-64 CPU.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                self.slots[i..].as_ptr().cast(),
            );
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = i;
    }

    /// The slot and connection of the flow `key` with hash `h`, or the empty slot where it would go.
    fn find(&self, conns: &[Conn], key: &FlowKey, h: u64) -> Result<(usize, u32), usize> {
        let tag = (h >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(i);
            }
            if (s >> 32) as u32 == tag {
                let id = (s as u32).wrapping_sub(1);
                if conns[id as usize].is_flow(key) {
                    return Ok((i, id));
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Point slot `i` (from [`FlowIndex::find`]) at connection `id`.
    fn set(&mut self, i: usize, h: u64, id: u32, was_empty: bool) {
        self.slots[i] = ((h >> 32) << 32) | u64::from(id.wrapping_add(1));
        if was_empty {
            self.used += 1;
            // at most half full: probes stay short
            if self.used * 2 > self.slots.len() {
                self.grow();
            }
        }
    }

    fn grow(&mut self) {
        let old = std::mem::replace(&mut self.slots, vec![0; 2 << self.bits]);
        self.bits += 1;
        let mask = self.slots.len() - 1;
        for s in old.into_iter().filter(|&s| s != 0) {
            let mut i = self.home((s >> 32) as u32);
            while self.slots[i] != 0 {
                i = (i + 1) & mask;
            }
            self.slots[i] = s;
        }
    }
}

/// Groups segments into connections as they stream by.
pub struct Tracker {
    pub conns: Vec<Conn>,
    index: FlowIndex,
    hasher: FlowHasher,
}

impl Conn {
    fn is_flow(&self, key: &FlowKey) -> bool {
        (self.client == key.0 && self.server == key.1)
            || (self.client == key.1 && self.server == key.0)
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Tracker::new()
    }
}

impl Tracker {
    pub fn new() -> Tracker {
        Tracker {
            conns: Vec::new(),
            index: FlowIndex::new(),
            hasher: FlowHasher::new(),
        }
    }

    /// The hasher [`Tracker::add_packet`] expects its `hash` argument from.
    pub fn hasher(&self) -> FlowHasher {
        self.hasher.clone()
    }

    /// A hint: a packet with flow hash `h` comes soon (a batch's packets are known ahead).
    pub fn prefetch(&self, h: u64) {
        self.index.prefetch(h);
    }

    /// Every flow hashes alike: for tests of the collision path.
    #[cfg(test)]
    fn colliding() -> Tracker {
        let mut t = Tracker::new();
        t.hasher.collide = true;
        t
    }

    /// Account one segment; gives the id of its connection.
    pub fn add(&mut self, seg: &Segment) -> u32 {
        let p = TcpPacket::of(seg);
        let h = self.hasher.hash(&p);
        self.add_packet(&p, h)
    }

    /// Account one packet whose flow hash (from [`Tracker::hasher`]) is `h`; gives the id of its connection.
    pub fn add_packet(&mut self, p: &TcpPacket, h: u64) -> u32 {
        // no canonical order needed: comparing endpoints costs more than matching both directions
        let key = FlowKey(p.src, p.dst);
        let pure_syn = p.flags.syn() && !p.flags.ack();
        let found = self.index.find(&self.conns, &key, h);
        let existing = match found {
            Ok((_, id)) => {
                // Wireshark: a SYN whose sequence number differs from the base of its direction starts a new
                // stream.
                let c = &self.conns[id as usize];
                let n = &c.counts[c.side_of_packet(p).index()];
                let same = !pure_syn || n.packets == 0 || n.base_seq == p.seq.0;
                same.then_some(id)
            }
            Err(_) => None,
        };
        let id = match existing {
            Some(id) => id,
            None => {
                let id = u32::try_from(self.conns.len()).unwrap_or(u32::MAX);
                self.conns.push(new_conn(id, p));
                match found {
                    Ok((slot, _)) => self.index.set(slot, h, id, false),
                    Err(slot) => self.index.set(slot, h, id, true),
                }
                id
            }
        };
        let c = &mut self.conns[id as usize];
        update(c, p);
        id
    }
}

fn new_conn(id: u32, seg: &TcpPacket) -> Conn {
    let src = seg.src;
    let dst = seg.dst;
    // The client sent the first SYN; a capture that starts with the SYN-ACK shows the client as its receiver
    // (Zeek flips such a connection too, and marks its history with '^'); otherwise the first sender.
    let synack_first = seg.flags.syn() && seg.flags.ack();
    let (client, server, z) = if synack_first {
        (dst, src, ZeekConn::flipped())
    } else {
        (src, dst, ZeekConn::default())
    };
    Conn {
        id,
        client,
        server,
        start: seg.ts,
        end: seg.ts,
        counts: [SideCounts::default(); 2],
        first_close: None,
        rst_after_fin_of: None,
        first_rst: None,
        zeek: z,
        bpf_matched: false,
    }
}

fn update(c: &mut Conn, seg: &TcpPacket) {
    let side = c.side_of_packet(seg);
    let f = seg.flags;
    c.end = c.end.max(seg.ts);
    c.start = c.start.min(seg.ts);
    {
        let n = &mut c.counts[side.index()];
        let first = n.packets == 0;
        n.packets = n.packets.saturating_add(1);
        if f.syn() {
            n.syns = n.syns.saturating_add(1);
        }
        if first || (f.syn() && !f.ack() && n.syns == 1) {
            n.base_seq = seg.seq.0;
        }
    }
    if f.rst() && c.first_rst.is_none() {
        c.first_rst = Some(side);
        let fin_before = [Side::Client, Side::Server]
            .into_iter()
            // FINs before this packet (Zeek counts this one's below)
            .filter(|s| c.fins(*s) > 0 && !(*s == side && f.fin()))
            .collect::<Vec<_>>();
        c.rst_after_fin_of = match fin_before.as_slice() {
            [] => None,
            [one] => Some(*one),
            _ => Some(side.other()),
        };
    }
    if c.first_close.is_none() {
        if f.rst() {
            c.first_close = Some((side, CloseKind::Rst));
        } else if f.fin() {
            c.first_close = Some((side, CloseKind::Fin));
        }
    }
    c.zeek.packet(
        side == Side::Client,
        &zeek::Packet {
            flags: f,
            seq: seg.seq,
            ack: seg.ack,
            window: seg.window,
            len: seg.len,
        },
    );
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
mod tests {
    use super::*;

    pub(crate) fn seg(src: &str, dst: &str, flags: u16, seq: u32, ack: u32, len: u32) -> Segment {
        crate::testing::segment(0, src, dst, flags, seq, ack, len)
    }

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;
    const R: u16 = TcpFlags::RST;
    const C: &str = "10.0.0.1:5555";
    const SV: &str = "10.0.0.2:80";

    fn full_close(t: &mut Tracker, isn: u32) -> Vec<u32> {
        [
            seg(C, SV, S, isn, 0, 0),
            seg(SV, C, S | A, 9000, isn + 1, 0),
            seg(C, SV, A, isn + 1, 9001, 0),
            seg(C, SV, F | A, isn + 1, 9001, 0),
            seg(SV, C, F | A, 9001, isn + 2, 0),
            seg(C, SV, A, isn + 2, 9002, 0),
        ]
        .iter()
        .map(|s| t.add(s))
        .collect()
    }

    #[test]
    fn new_syn_on_a_finished_tuple_is_a_new_connection() {
        let mut t = Tracker::new();
        let first = full_close(&mut t, 100);
        let second = full_close(&mut t, 50_000);
        assert!(first.iter().all(|&id| id == 0));
        assert!(second.iter().all(|&id| id == 1));
        assert_eq!(t.conns.len(), 2);
        assert_eq!(t.conns[1].conn_state(), "SF");
        assert_eq!(
            t.conns[1].ending(),
            Ending::Clean {
                first: Side::Client
            }
        );
    }

    #[test]
    fn hash_collisions_never_merge_flows() {
        // The same traffic through a tracker whose hashes all collide must give the same connections.
        let flows = ["10.0.0.1:1", "10.0.0.1:2", "10.0.0.3:1", "[::1]:1"];
        let mut normal = Tracker::new();
        let mut colliding = Tracker::colliding();
        let mut ids = (Vec::new(), Vec::new());
        for round in 0..3u32 {
            for (i, c) in flows.iter().enumerate() {
                let server = if c.starts_with('[') { "[::2]:80" } else { SV };
                let isn = 1000 * (round + 1) + i as u32;
                for s in [
                    seg(c, server, S, isn, 0, 0),
                    seg(server, c, S | A, 77, isn + 1, 0),
                    seg(c, server, R, isn + 1, 0, 0),
                ] {
                    ids.0.push(normal.add(&s));
                    ids.1.push(colliding.add(&s));
                }
            }
        }
        assert_eq!(ids.0, ids.1);
        assert_eq!(colliding.conns.len(), 12);
        assert!(colliding.conns.iter().all(|c| c.packets() == 3));
    }

    #[test]
    fn socket_and_packet_hashes_agree() {
        let t = Tracker::new();
        let h = t.hasher();
        for (a, b) in [
            (C, SV),
            (SV, C),
            ("[::1]:1", "[::2]:80"),
            ("[::2]:80", "[::1]:1"),
        ] {
            let s = seg(a, b, A, 1, 1, 0);
            assert_eq!(h.hash_sockets(&s.src, &s.dst), h.hash(&TcpPacket::of(&s)));
            let back = seg(b, a, A, 1, 1, 0);
            assert_eq!(
                h.hash_sockets(&s.src, &s.dst),
                h.hash_sockets(&back.src, &back.dst)
            );
        }
        let c = Tracker::colliding().hasher();
        let s = seg(C, SV, A, 1, 1, 0);
        assert_eq!(c.hash_sockets(&s.src, &s.dst), 0);
    }

    #[test]
    fn record_stays_small() {
        // a million connections must fit well under 300 MB with the index and the output buffers
        assert!(
            std::mem::size_of::<Conn>() <= 208,
            "{}",
            std::mem::size_of::<Conn>()
        );
    }

    #[test]
    fn retransmitted_syn_stays_in_its_connection() {
        let mut t = Tracker::new();
        t.add(&seg(C, SV, S, 7, 0, 0));
        t.add(&seg(C, SV, S, 7, 0, 0));
        assert_eq!(t.conns.len(), 1);
        assert_eq!(t.conns[0].syns(Side::Client), 2);
        assert_eq!(t.conns[0].ending(), Ending::Unanswered);
    }

    #[test]
    fn ids_follow_first_appearance() {
        let mut t = Tracker::new();
        let a = t.add(&seg("1.1.1.1:1", "2.2.2.2:2", A, 1, 1, 0));
        let b = t.add(&seg("3.3.3.3:3", "2.2.2.2:2", A, 1, 1, 0));
        let a2 = t.add(&seg("2.2.2.2:2", "1.1.1.1:1", A, 1, 1, 0));
        assert_eq!((a, b, a2), (0, 1, 0));
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
