//! Connections of live traffic, for `watch`: the same [`Conn`] records as a file's, kept only while they are open.
//! A connection leaves the tracker when it has ended (a RST, or a FIN each way) and nothing more came for a short
//! settling time, when it was idle longer than the idle timeout (it is then reported as expired), or when a new SYN
//! reuses its 4-tuple; so memory is bounded by the connections open at one time, not by how long it runs.
//!
//! Each connection carries a value of the caller's (`T`: what `watch` learns about it besides its packets).
//! Ids count connections in the order they were first seen, as a file's do.

use std::collections::{HashMap, VecDeque};

use crate::model::segment::{Segment, TimestampNs};
use crate::track::conn::{Conn, Side};
use crate::track::ends::Endpoint;
use crate::track::packet::TcpPacket;
use crate::track::select::Selection;

/// Why a connection left the tracker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Left {
    /// It ended (RST, or FIN both ways) and stayed quiet for the settling time.
    Ended,
    /// A new connection (a SYN with a new sequence number) took its 4-tuple.
    Reused,
    /// Nothing came for longer than the idle timeout: it may still be open.
    Expired,
    /// Still open when the watch stopped.
    Open,
}

impl Left {
    pub fn name(self) -> &'static str {
        match self {
            Left::Ended => "ended",
            Left::Reused => "ended (4-tuple reused)",
            Left::Expired => "expired (idle)",
            Left::Open => "open",
        }
    }
}

/// One connection leaving the tracker.
#[derive(Debug)]
pub struct Gone<T> {
    pub conn: Conn,
    pub extra: T,
    pub left: Left,
}

/// What one packet did to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    pub id: u32,
    /// The packet opened a new connection record.
    pub new: bool,
}

struct Slot<T> {
    conn: Conn,
    extra: T,
    /// When its last packet was seen (the packet's own time).
    last: TimestampNs,
}

/// Open connections by 4-tuple, each with the caller's `T`.
pub struct LiveTracker<T> {
    open: HashMap<(Endpoint, Endpoint), Slot<T>, foldhash::fast::RandomState>,
    next_id: u32,
    keep: Option<Selection>,
    /// Connections that left on a packet (their 4-tuple reused), waiting for [`LiveTracker::due`].
    reused: Vec<Gone<T>>,
    /// Connections that ended, in the order they did (4-tuple, id, the time of the packet that ended it): what
    /// [`LiveTracker::due`] looks at for those settled, rather than at every open connection at every call.
    ending: VecDeque<((Endpoint, Endpoint), u32, TimestampNs)>,
    /// When the open connections were last looked through for idle ones.
    idle_scanned: Option<TimestampNs>,
}

/// Idle connections are looked for at most this often (and at least every eighth of the idle timeout).
const IDLE_SCAN_EVERY: TimestampNs = 1_000_000_000;

/// A 4-tuple in one order whichever way the packet went.
fn key(a: Endpoint, b: Endpoint) -> (Endpoint, Endpoint) {
    if a <= b { (a, b) } else { (b, a) }
}

impl<T: Default> LiveTracker<T> {
    /// A tracker that keeps only connections `sel` may show by their 4-tuple (`--port`, `--host`).
    pub fn new(sel: &Selection) -> LiveTracker<T> {
        LiveTracker {
            open: HashMap::default(),
            next_id: 0,
            keep: sel.narrows_flows().then(|| sel.clone()),
            reused: Vec::new(),
            ending: VecDeque::new(),
            idle_scanned: None,
        }
    }

    /// Connections open now.
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Account one segment; `None` when the selection can never show its connection.
    pub fn add(&mut self, seg: &Segment) -> Option<Added> {
        self.account(seg).map(|(slot, new)| Added {
            id: slot.conn.id,
            new,
        })
    }

    /// [`LiveTracker::add`], and the segment's connection with the caller's value (one hash lookup, not two).
    pub fn add_get(&mut self, seg: &Segment) -> Option<(&Conn, &mut T)> {
        self.account(seg)
            .map(|(slot, _)| (&slot.conn, &mut slot.extra))
    }

    /// The segment accounted to its connection's slot (a new one when none is open or its SYN starts a new
    /// stream); with whether the slot is new.
    fn account(&mut self, seg: &Segment) -> Option<(&mut Slot<T>, bool)> {
        let p = TcpPacket::of(seg);
        if self
            .keep
            .as_ref()
            .is_some_and(|s| !s.may_show_flow(&p.src, &p.dst))
        {
            return None;
        }
        let k = key(p.src, p.dst);
        let mut new = false;
        let reuse = self
            .open
            .get(&k)
            .is_some_and(|s| s.conn.syn_starts_new_stream(&p));
        if reuse && let Some(old) = self.open.remove(&k) {
            self.reused.push(Gone {
                conn: old.conn,
                extra: old.extra,
                left: Left::Reused,
            });
        }
        let slot = self.open.entry(k).or_insert_with(|| {
            new = true;
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            Slot {
                conn: Conn::new(id, &p),
                extra: T::default(),
                last: p.ts,
            }
        });
        let was_ended = ended(&slot.conn);
        slot.conn.account(&p);
        slot.last = slot.last.max(p.ts);
        if !was_ended && ended(&slot.conn) {
            self.ending.push_back((k, slot.conn.id, slot.last));
        }
        Some((slot, new))
    }

    /// The connection between `a` and `b` (either way round), with the caller's value.
    pub fn get_mut(&mut self, a: Endpoint, b: Endpoint) -> Option<(&Conn, &mut T)> {
        self.open
            .get_mut(&key(a, b))
            .map(|s| (&s.conn, &mut s.extra))
    }

    /// Every open connection with the caller's value.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&Conn, &mut T)> {
        self.open.values_mut().map(|s| (&s.conn, &mut s.extra))
    }

    /// The connections that leave at `now`: ended and quiet for `settle`, or idle for `idle`; and those whose
    /// 4-tuple was reused. In id order. The ended ones are found in the order they ended; idle ones by a look
    /// through every open connection, at most every [`IDLE_SCAN_EVERY`] (an eighth of `idle` when shorter).
    pub fn due(
        &mut self,
        now: TimestampNs,
        settle: TimestampNs,
        idle: TimestampNs,
    ) -> Vec<Gone<T>> {
        let mut out = std::mem::take(&mut self.reused);
        let mut again = Vec::new();
        while let Some(&(k, id, at)) = self.ending.front() {
            if now - at < settle {
                break; // it and every later one ended less than `settle` ago
            }
            self.ending.pop_front();
            match self.open.get(&k) {
                // a segment came since it ended: it waits from that one
                Some(s) if s.conn.id == id && now - s.last < settle => again.push((k, id, s.last)),
                Some(s) if s.conn.id == id => {
                    if let Some(s) = self.open.remove(&k) {
                        out.push(Gone {
                            conn: s.conn,
                            extra: s.extra,
                            left: Left::Ended,
                        });
                    }
                }
                _ => {} // gone already (its 4-tuple reused)
            }
        }
        for e in again {
            let at = self.ending.partition_point(|&(_, _, t)| t <= e.2);
            self.ending.insert(at, e);
        }
        if self
            .idle_scanned
            .is_none_or(|t| now - t >= IDLE_SCAN_EVERY.min(idle / 8))
        {
            self.idle_scanned = Some(now);
            let idle_ones: Vec<(Endpoint, Endpoint)> = self
                .open
                .iter()
                .filter(|(_, s)| now - s.last >= idle)
                .map(|(k, _)| *k)
                .collect();
            for k in idle_ones {
                if let Some(s) = self.open.remove(&k) {
                    // an ended one quiet this long left as ended above, unless `idle` < `settle`
                    let left = if ended(&s.conn) && now - s.last >= settle {
                        Left::Ended
                    } else {
                        Left::Expired
                    };
                    out.push(Gone {
                        conn: s.conn,
                        extra: s.extra,
                        left,
                    });
                }
            }
        }
        out.sort_unstable_by_key(|g| g.conn.id);
        out
    }

    /// Every connection still here, as open (the watch stops), in id order.
    pub fn drain(&mut self) -> Vec<Gone<T>> {
        let mut out = std::mem::take(&mut self.reused);
        out.extend(self.open.drain().map(|(_, s)| {
            let left = if ended(&s.conn) {
                Left::Ended
            } else {
                Left::Open
            };
            Gone {
                conn: s.conn,
                extra: s.extra,
                left,
            }
        }));
        out.sort_by_key(|g| g.conn.id);
        out
    }
}

/// A connection is over once a RST went either way, or a FIN went each way.
pub fn ended(c: &Conn) -> bool {
    c.first_rst.is_some() || (c.fins(Side::Client) > 0 && c.fins(Side::Server) > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::conn::tests::{A, C, F, R, S, SV};
    use crate::track::conn::{Ending, Side};

    fn seg(ts: TimestampNs, src: &str, dst: &str, flags: u16, seq: u32, ack: u32) -> Segment {
        crate::testing::segment(ts, src, dst, flags, seq, ack, 0)
    }

    const MS: TimestampNs = 1_000_000;

    #[test]
    fn an_ended_connection_leaves_after_settling_and_an_idle_one_expires() {
        let mut t: LiveTracker<u8> = LiveTracker::new(&Selection::default());
        t.add(&seg(0, C, SV, S, 1, 0));
        t.add(&seg(MS, SV, C, S | A, 9, 2));
        t.add(&seg(2 * MS, C, SV, A, 2, 10));
        t.add(&seg(3 * MS, SV, C, R | A, 10, 2));
        t.add(&seg(0, "10.0.0.1:6000", SV, S, 5, 0));
        assert!(t.due(3 * MS + 10 * MS, 100 * MS, 1000 * MS).is_empty());
        let gone = t.due(3 * MS + 100 * MS, 100 * MS, 1000 * MS);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].left, Left::Ended);
        assert_eq!(
            gone[0].conn.ending(),
            Ending::Reset {
                by: Side::Server,
                after_fin_of: None
            }
        );
        assert_eq!(t.len(), 1, "the unanswered SYN is still open");
        let gone = t.due(1000 * MS, 100 * MS, 1000 * MS);
        assert_eq!((gone.len(), gone[0].left), (1, Left::Expired));
        assert!(t.is_empty(), "nothing is kept once every connection left");
    }

    #[test]
    fn a_new_syn_on_the_tuple_ends_the_old_connection_and_the_rest_drain_as_open() {
        let mut t: LiveTracker<()> = LiveTracker::new(&Selection::default());
        for (i, (flags, seq)) in [(S, 1), (S | A, 9), (F | A, 2), (F | A, 10)]
            .iter()
            .enumerate()
        {
            let (a, b) = if i % 2 == 0 { (C, SV) } else { (SV, C) };
            t.add(&seg(i as i64, a, b, *flags, *seq, 0));
        }
        let second = t.add(&seg(10, C, SV, S, 5000, 0)).unwrap();
        assert_eq!(second, Added { id: 1, new: true });
        t.add(&seg(11, "10.0.0.7:1", SV, A, 1, 1));
        let gone = t.drain();
        let lefts: Vec<(u32, Left)> = gone.iter().map(|g| (g.conn.id, g.left)).collect();
        assert_eq!(lefts, [(0, Left::Reused), (1, Left::Open), (2, Left::Open)]);
        assert!(t.is_empty());
    }

    /// The slow oracle of [`LiveTracker::due`]'s ended connections: a look through every open one.
    fn ended_by_scan<T: Default>(
        t: &mut LiveTracker<T>,
        now: TimestampNs,
        settle: TimestampNs,
    ) -> Vec<u32> {
        let keys: Vec<_> = t
            .open
            .iter()
            .filter(|(_, s)| ended(&s.conn) && now - s.last >= settle)
            .map(|(k, _)| *k)
            .collect();
        let mut out: Vec<u32> = std::mem::take(&mut t.reused)
            .iter()
            .map(|g| g.conn.id)
            .collect();
        out.extend(
            keys.iter()
                .filter_map(|k| t.open.remove(k))
                .map(|s| s.conn.id),
        );
        out.sort_unstable();
        out
    }

    #[test]
    fn connections_leave_when_the_scan_of_every_open_one_says_they_should() {
        // many connections on few 4-tuples (so some are reused), ending by RST or FINs, some with segments after
        // their end, seen at times that move on unevenly; the queue of endings and the scan agree at every call
        let (mut fast, mut slow) = (
            LiveTracker::<()>::new(&Selection::default()),
            LiveTracker::<()>::new(&Selection::default()),
        );
        let mut rng: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let (settle, idle) = (40 * MS, TimestampNs::MAX / 4);
        let (mut now, mut isn, mut left) = (0, 1u32, 0);
        for _ in 0..3000 {
            now += (next(5) as TimestampNs) * MS;
            let c = format!("10.0.0.1:{}", 1000 + next(40));
            let (c, s) = (c.as_str(), SV);
            isn = isn.wrapping_add(100_000);
            let (flags, src, dst, seq) = match next(6) {
                0 => (S, c, s, isn),
                1 => (S | A, s, c, 9),
                2 => (F | A, c, s, 2),
                3 => (F | A, s, c, 10),
                4 => (
                    R,
                    if next(2) == 0 { c } else { s },
                    if next(2) == 0 { s } else { c },
                    3,
                ),
                _ => (A, c, s, 2),
            };
            let p = seg(now, src, dst, flags, seq, 0);
            fast.add(&p);
            slow.add(&p);
            if next(3) == 0 {
                let mine: Vec<u32> = fast
                    .due(now, settle, idle)
                    .iter()
                    .map(|g| g.conn.id)
                    .collect();
                assert_eq!(mine, ended_by_scan(&mut slow, now, settle), "at {now}");
                left += mine.len();
            }
        }
        assert!(
            left > 300 && fast.next_id > 600,
            "{left} left of {}",
            fast.next_id
        );
        assert_eq!(fast.len(), slow.len());
    }

    #[test]
    fn flows_the_selection_never_shows_are_not_kept() {
        let sel = Selection {
            ports: vec![443],
            ..Selection::default()
        };
        let mut t: LiveTracker<()> = LiveTracker::new(&sel);
        assert_eq!(t.add(&seg(0, C, SV, S, 1, 0)), None);
        assert!(t.add(&seg(0, C, "10.0.0.2:443", S, 1, 0)).is_some());
        assert_eq!(t.len(), 1);
    }
}
