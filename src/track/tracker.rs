//! The hot lookup of connection tracking: which connection a packet belongs to. A per-run seeded hash of the
//! 4-tuple ([`FlowHasher`], the same in both directions), an open-addressing index from it to the latest
//! connection on that 4-tuple (`FlowIndex`), and the [`Tracker`] that numbers connections the way Wireshark
//! numbers `tcp.stream` and hands each packet to its [`Conn`].
//!
//! Memory: 16 to 32 bytes of index per connection, besides the connections themselves. A flow that `--port` and
//! `--host` can never show keeps a [`Ghost`] (68 bytes, and one per 4-tuple however many streams it carries)
//! instead of a record: just what numbering its streams the way Wireshark does needs.

use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};

use crate::model::segment::Segment;
use crate::track::conn::{Conn, SideCounts};
use crate::track::ends::{Endpoint, FlowKey};
use crate::track::packet::TcpPacket;
use crate::track::select::Selection;

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
            (SocketAddr::V4(a4), SocketAddr::V4(b4)) if !self.collide => {
                self.hash_v4(a4.ip().to_bits(), a4.port(), b4.ip().to_bits(), b4.port())
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
            (IpAddr::V4(ip_a), IpAddr::V4(ip_b)) => {
                self.hash_v4(ip_a.to_bits(), a.port, ip_b.to_bits(), b.port)
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

    /// The slot and place ([`Place`]) of the flow `key` with hash `h`, or the empty slot where it would go.
    fn find(
        &self,
        conns: &[Conn],
        ghosts: &[Ghost],
        key: &FlowKey,
        h: u64,
    ) -> Result<(usize, u32), usize> {
        let tag = (h >> 32) as u32;
        let mask = self.slots.len() - 1;
        let mut i = self.home(tag);
        loop {
            let s = self.slots[i];
            if s == 0 {
                return Err(i);
            }
            if (s >> 32) as u32 == tag {
                let place = (s as u32).wrapping_sub(1);
                let mine = if place & GHOST == 0 {
                    conns[place as usize].is_flow(key)
                } else {
                    ghosts[(place & !GHOST) as usize].is_flow(key)
                };
                if mine {
                    return Ok((i, place));
                }
            }
            i = (i + 1) & mask;
        }
    }

    /// Point slot `i` (from [`FlowIndex::find`]) at `place`.
    fn set(&mut self, i: usize, h: u64, place: u32, was_empty: bool) {
        self.slots[i] = ((h >> 32) << 32) | u64::from(place.wrapping_add(1));
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

/// A place in the index: an index into `conns`, or (with this bit) into `ghosts`.
const GHOST: u32 = 1 << 31;

/// A 4-tuple whose connections the selection can never show: what tells its packets apart from other flows'
/// and a new stream from the current one, and the current stream's id.
#[derive(Debug, Clone)]
struct Ghost {
    id: u32,
    client: Endpoint,
    server: Endpoint,
    counts: [SideCounts; 2],
}

impl Ghost {
    fn new(id: u32, p: &TcpPacket) -> Ghost {
        // the client as Conn::new sees it
        let (client, server) = if p.flags.syn() && p.flags.ack() {
            (p.dst, p.src)
        } else {
            (p.src, p.dst)
        };
        Ghost {
            id,
            client,
            server,
            counts: [SideCounts::default(); 2],
        }
    }

    fn is_flow(&self, key: &FlowKey) -> bool {
        (self.client == key.0 && self.server == key.1)
            || (self.client == key.1 && self.server == key.0)
    }

    fn side(&self, p: &TcpPacket) -> usize {
        usize::from(p.src != self.client)
    }
}

/// Groups segments into connections as they stream by.
pub struct Tracker {
    /// The connections kept, in id order (every one, unless [`Tracker::keeping`] narrowed them).
    pub conns: Vec<Conn>,
    ghosts: Vec<Ghost>,
    /// The next connection's id: connections numbered so far.
    next_id: u32,
    /// Keep only connections this may show (`--port`, `--host`).
    keep: Option<Selection>,
    index: FlowIndex,
    hasher: FlowHasher,
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
            ghosts: Vec::new(),
            next_id: 0,
            keep: None,
            index: FlowIndex::new(),
            hasher: FlowHasher::new(),
        }
    }

    /// A tracker that keeps a record only of connections `sel` may show by their 4-tuple (when its `--port` or
    /// `--host` narrow them); the others are numbered all the same, so ids stay Wireshark's.
    pub fn keeping(sel: &Selection) -> Tracker {
        Tracker {
            keep: sel.narrows_flows().then(|| sel.clone()),
            ..Tracker::new()
        }
    }

    /// Connections numbered but not kept.
    pub fn untracked(&self) -> usize {
        self.next_id as usize - self.conns.len()
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
        let found = self.index.find(&self.conns, &self.ghosts, &key, h);
        if let Ok((_, place)) = found
            && place & GHOST != 0
        {
            return self.ghost_packet(place & !GHOST, p);
        }
        let existing = match found {
            Ok((_, place)) => {
                (!self.conns[place as usize].syn_starts_new_stream(p)).then_some(place)
            }
            Err(_) => None,
        };
        let place = match existing {
            Some(place) => place,
            None => {
                let id = self.next_id;
                self.next_id = self.next_id.saturating_add(1);
                let place = if self
                    .keep
                    .as_ref()
                    .is_none_or(|s| s.may_show_flow(&p.src, &p.dst))
                {
                    self.conns.push(Conn::new(id, p));
                    (self.conns.len() - 1) as u32
                } else {
                    self.ghosts.push(Ghost::new(id, p));
                    (self.ghosts.len() - 1) as u32 | GHOST
                };
                match found {
                    Ok((slot, _)) => self.index.set(slot, h, place, false),
                    Err(slot) => self.index.set(slot, h, place, true),
                }
                if place & GHOST != 0 {
                    return self.ghost_packet(place & !GHOST, p);
                }
                place
            }
        };
        let c = &mut self.conns[place as usize];
        c.account(p);
        c.id
    }

    /// A packet of a flow kept as a ghost: a new stream on it takes the next id in the ghost's place.
    fn ghost_packet(&mut self, at: u32, p: &TcpPacket) -> u32 {
        let g = &mut self.ghosts[at as usize];
        let side = g.side(p);
        if g.counts[side].syn_starts_new_stream(p) {
            *g = Ghost::new(self.next_id, p);
            self.next_id = self.next_id.saturating_add(1);
        }
        let side = g.side(p);
        g.counts[side].count(p);
        g.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::conn::tests::{A, C, F, R, S, SV, seg};
    use crate::track::conn::{Ending, Side};
    use crate::track::zeek::ConnState;

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
        assert_eq!(t.conns[1].conn_state(), ConnState::SF);
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
    fn retransmitted_syn_stays_in_its_connection() {
        let mut t = Tracker::new();
        t.add(&seg(C, SV, S, 7, 0, 0));
        t.add(&seg(C, SV, S, 7, 0, 0));
        assert_eq!(t.conns.len(), 1);
        assert_eq!(t.conns[0].syns(Side::Client), 2);
        assert_eq!(t.conns[0].ending(), Ending::Unanswered);
    }

    /// Tracking with `--port`/`--host` keeps exactly the records tracking everything would show, under the same
    /// ids: flows reused by new SYNs, SYN-ACK-first flows, IPv6, ports on either side.
    #[test]
    fn narrowed_tracking_keeps_the_same_records_under_the_same_ids() {
        let sel = Selection {
            ports: vec![80],
            hosts: vec!["10.0.0.9".parse().unwrap()],
            ..Selection::default()
        };
        let mut all = Tracker::new();
        let mut narrowed = Tracker::keeping(&sel);
        let mut ids = (Vec::new(), Vec::new());
        let mut n = 0u32;
        for round in 0..4u32 {
            for (c, sv) in [
                ("10.0.0.9:5000", "10.0.0.2:80"),
                ("10.0.0.1:5000", "10.0.0.2:80"),
                ("10.0.0.9:5001", "10.0.0.2:443"),
                ("10.0.0.9:80", "10.0.0.3:6000"),
                ("[::9]:5000", "[::2]:80"),
                ("10.0.0.2:80", "10.0.0.9:5002"),
            ] {
                n += 1;
                let isn = 1000 * round + n;
                let steps = [
                    seg(c, sv, S, isn, 0, 0),
                    seg(sv, c, S | A, 77 + round, isn + 1, 0),
                    seg(c, sv, A, isn + 1, 78 + round, 5),
                    seg(c, sv, S, isn, 0, 0), // a retransmitted SYN: the same stream
                    seg(sv, c, R | A, 78 + round, isn + 6, 0),
                ];
                // every other round starts with the SYN-ACK (the SYN was not captured)
                for s in &steps[usize::from(round % 2 == 1)..] {
                    ids.0.push(all.add(s));
                    ids.1.push(narrowed.add(s));
                }
            }
        }
        assert_eq!(ids.0, ids.1, "the same ids for every packet");
        let shown: Vec<String> = all
            .conns
            .iter()
            .filter(|c| sel.may_show_flow(&c.client, &c.server))
            .map(|c| format!("{c:?}"))
            .collect();
        let kept: Vec<String> = narrowed.conns.iter().map(|c| format!("{c:?}")).collect();
        assert_eq!(kept, shown);
        assert!(!kept.is_empty() && narrowed.untracked() > 0);
        assert_eq!(narrowed.untracked() + kept.len(), all.conns.len());
        assert_eq!(all.untracked(), 0);
    }

    #[test]
    fn ids_follow_first_appearance() {
        let mut t = Tracker::new();
        let a = t.add(&seg("1.1.1.1:1", "2.2.2.2:2", A, 1, 1, 0));
        let b = t.add(&seg("3.3.3.3:3", "2.2.2.2:2", A, 1, 1, 0));
        let a2 = t.add(&seg("2.2.2.2:2", "1.1.1.1:1", A, 1, 1, 0));
        assert_eq!((a, b, a2), (0, 1, 0));
    }
}
