//! Socket calls, captured segments and the kernel's own events merged into one time-ordered list of rows.
//!
//! Pure: takes recorded calls, decoded segments and traced kernel events, knows nothing of how rows are drawn. A call that stayed
//! blocked while other rows happened (A's `recv()` waiting for B) becomes two rows: the call when it was made, and
//! its return when it came back, so the causal order reads top to bottom.
//!
//! [`build`] is the one way to make a timeline, for a live run, a saved run and `analyze --conn` alike; its
//! [`States`] argument says whether segment rows carry states inferred from the wire, so that rule sits here and
//! not at each caller.
//!
//! Kernel events belong to A or B by their socket's own address (never by the task that happened to run when the
//! tracepoint fired). On loopback the kernel stamps its `tcp_send_reset` only after the RST was delivered, so the
//! receiver's reset, state change and error report carry earlier stamps than the send that caused them: a send is
//! placed at its RST's captured segment (or, with no capture, just before the first thing it caused), keeping its
//! own stamp in [`KernelRow::stamped`].

use crate::explain::infer;
pub use crate::explain::rows::{KernelRow, Row, RowKind, Sides, Timeline, WireRow};
use crate::model::calls::{Peer, SocketCall};
use crate::model::kernel::{KernelEvent, KernelEventKind};
use crate::model::segment::{Segment, SeqNumber, TimestampNs};
use crate::model::tcp_state::TcpState;

/// Relative sequence numbers, per direction: relative to the SYN when one was seen, else to the first segment.
fn relative_bases(sides: &Sides, segments: &[Segment]) -> [Option<SeqNumber>; 2] {
    // a socket connected to itself: one sequence space, every segment A's
    let peers = if sides.a == sides.b {
        [Peer::A, Peer::A]
    } else {
        [Peer::A, Peer::B]
    };
    peers.map(|peer| {
        let mut sent = segments.iter().filter(|s| sides.sender(s) == Some(peer));
        let first = sent.clone().next();
        sent.find(|s| s.flags.syn()).or(first).map(|s| s.seq)
    })
}

/// Which TCP states a timeline shows beside its socket calls' recorded ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum States {
    /// Only what the kernel recorded after each socket call: the view of a run of the pair, live or read back from
    /// its file. The calls already say where each socket was; states guessed from the wire would repeat them,
    /// less surely, so segment rows carry none (`states_after` is `None`, no notes).
    Recorded,
    /// Also the states inferred from the segments, with notes, on every segment row: the view of one connection of
    /// a capture (`analyze --conn`), which has no socket calls — or, for a saved run's own connection, shows both.
    Inferred,
}

/// Merge calls and segments into one timeline, with the [`States`] its view shows. Segments that are not between
/// `sides.a` and `sides.b` are left out.
pub fn build(sides: Sides, calls: &[SocketCall], segments: &[Segment], states: States) -> Timeline {
    build_with_kernel(sides, calls, segments, &[], states)
}

/// [`build`], with the kernel's own events as rows of their own. Events about sockets other than A's and B's
/// are left out.
pub fn build_with_kernel(
    sides: Sides,
    calls: &[SocketCall],
    segments: &[Segment],
    kernel: &[KernelEvent],
    states: States,
) -> Timeline {
    let mut t = merge(sides, calls, segments, kernel);
    if states == States::Inferred {
        infer::annotate(&mut t);
        challenge_acks(&mut t);
    }
    t
}

/// For each RST that RFC 5961 answers with a challenge ACK: whether one shows in the capture. The receiver's next
/// segment, a pure ACK (no data, no SYN, FIN or RST), is it; anything else, or nothing, means none was seen.
fn challenge_acks(t: &mut Timeline) {
    use crate::explain::rows::RstFate;
    // each segment row: (row, sender, time, a pure ACK: no data, no SYN, FIN or RST)
    let segs: Vec<(usize, Peer, TimestampNs, bool)> = t
        .rows
        .iter()
        .enumerate()
        .filter_map(|(i, r)| match &r.kind {
            RowKind::Segment(w) => {
                let f = w.segment.flags;
                let pure = f.ack() && w.segment.len == 0 && !f.syn() && !f.fin() && !f.rst();
                Some((i, w.from, w.segment.ts, pure))
            }
            _ => None,
        })
        .collect();
    for (k, &(i, from, ts, _)) in segs.iter().enumerate() {
        let RowKind::Segment(w) = &mut t.rows[i].kind else {
            continue;
        };
        if !matches!(w.rst_fate, Some(RstFate::Challenge { .. })) {
            continue;
        }
        let y = if from == Peer::A { "server" } else { "client" };
        let answer = segs[k + 1..].iter().find(|s| s.1 != from);
        w.notes.push(match answer {
            Some(&(_, _, at, true)) => format!(
                "the {y}'s next segment, a pure ACK {:.3} ms later, is likely that challenge ACK",
                (at - ts) as f64 / 1e6
            ),
            _ => format!(
                "no challenge ACK from the {y} follows in the capture: rate-limited (net.ipv4.tcp_challenge_ack_limit), the RST never reached it, or the capture missed it"
            ),
        });
    }
}

/// How long after its cause a reset's stamp may come, on loopback: what [`reset_placement`] looks back over.
const RESET_STAMP_LAG_NS: TimestampNs = 5_000_000;

/// Where a kernel's `tcp_send_reset` goes: at its captured RST (the same two addresses, within
/// [`RESET_STAMP_LAG_NS`]), else at the earliest event the RST caused on the other socket, else at its stamp.
fn reset_placement(e: &KernelEvent, segments: &[Segment], kernel: &[KernelEvent]) -> TimestampNs {
    let near =
        |t: TimestampNs| (e.ts - RESET_STAMP_LAG_NS..=e.ts + RESET_STAMP_LAG_NS).contains(&t);
    let (src, dst) = (e.what.src(), e.what.dst());
    if let Some(seg) = segments
        .iter()
        .filter(|s| s.flags.rst() && s.src == src && s.dst == dst && near(s.ts))
        .min_by_key(|s| (s.ts - e.ts).abs())
    {
        return seg.ts;
    }
    kernel
        .iter()
        .filter(|x| x.what.src() == dst && x.ts <= e.ts && near(x.ts))
        // what a reset does to its receiver; not, say, the handshake's state changes just before
        .filter(|x| {
            matches!(
                x.what,
                KernelEventKind::ReceiveReset { .. }
                    | KernelEventKind::ErrorReport { .. }
                    | KernelEventKind::StateChange {
                        new: TcpState::Closed,
                        ..
                    }
            )
        })
        .map(|x| x.ts)
        .min()
        .unwrap_or(e.ts)
}

/// How much earlier than the segment that caused it the kernel's stamp of an event may fall: trace_pipe prints
/// whole µs, truncated, and the clocks are matched to about a µs.
const STAMP_SLACK_NS: TimestampNs = 3_000;

/// Where any other kernel event goes: at its stamp, or just after a segment to its socket captured within
/// [`STAMP_SLACK_NS`] after it (what the event reacts to, stamped a little early by the µs the trace prints).
fn event_placement(e: &KernelEvent, segments: &[Segment]) -> TimestampNs {
    let own = e.what.src();
    segments
        .iter()
        .filter(|s| s.dst == own && s.ts > e.ts && s.ts <= e.ts + STAMP_SLACK_NS)
        .map(|s| s.ts)
        .max()
        .unwrap_or(e.ts)
}

/// A row before sorting: (time, order among equal times, index in its source, row).
type Unsorted = (TimestampNs, u8, usize, RowKind);

/// The kernel's events of A's and B's sockets, placed: a reset it sent at its segment (before it), the rest of the
/// kernel's word after the segment that caused it.
fn kernel_rows(sides: &Sides, segments: &[Segment], kernel: &[KernelEvent]) -> Vec<Unsorted> {
    kernel
        .iter()
        .enumerate()
        .filter_map(|(i, e)| {
            let peer = sides.owner(&e.what)?;
            let (t, order) = match e.what {
                KernelEventKind::SendReset { .. } => (reset_placement(e, segments, kernel), 1),
                _ => (event_placement(e, segments), 3),
            };
            let row = KernelRow {
                peer,
                event: e.what.clone(),
                stamped: e.ts,
            };
            Some((t, order, i, RowKind::Kernel(row)))
        })
        .collect()
}

fn merge(
    sides: Sides,
    calls: &[SocketCall],
    segments: &[Segment],
    kernel: &[KernelEvent],
) -> Timeline {
    let bases = relative_bases(&sides, segments);
    // Calls sort before what the kernel did at the same instant, since the call caused it.
    let mut rows: Vec<Unsorted> = kernel_rows(&sides, segments, kernel);
    for (i, seg) in segments.iter().enumerate() {
        let Some(from) = sides.sender(seg) else {
            continue;
        };
        let rel = |n: SeqNumber, peer: Peer| bases[peer as usize].map_or(n.0, |b| n.since(b));
        rows.push((
            seg.ts,
            2,
            i,
            RowKind::Segment(WireRow {
                from,
                segment: seg.clone(),
                rel_seq: rel(seg.seq, from),
                rel_ack: seg.flags.ack().then(|| rel(seg.ack, from.other())),
                states_after: None,
                notes: Vec::new(),
                rst_fate: None,
            }),
        ));
    }
    for (i, call) in calls.iter().enumerate() {
        rows.push((
            call.t_start,
            0,
            i,
            RowKind::Call {
                call: call.clone(),
                returns_later: false,
            },
        ));
    }
    rows.sort_by_key(|(t, order, i, _)| (*t, *order, *i));

    // A call "returns later" when some other row falls inside its [t_start, t_end].
    let mut out: Vec<Row> = rows
        .into_iter()
        .map(|(t, _, _, kind)| Row { t, kind })
        .collect();
    let mut returns: Vec<Row> = Vec::new();
    for i in 0..out.len() {
        let RowKind::Call { call, .. } = &out[i].kind else {
            continue;
        };
        let end = call.t_end;
        let blocked = out[i + 1..].iter().take_while(|r| r.t < end).count() > 0;
        if blocked {
            let call = call.clone();
            if let RowKind::Call { returns_later, .. } = &mut out[i].kind {
                *returns_later = true;
            }
            returns.push(Row {
                t: end,
                kind: RowKind::Return { call },
            });
        }
    }
    // Returns go after every row at or before their time.
    for ret in returns {
        let at = out.partition_point(|r| r.t <= ret.t);
        out.insert(at, ret);
    }
    Timeline { sides, rows: out }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::calls::{CallKind, Outcome};
    use crate::model::segment::TcpFlags;
    use crate::model::tcp_state::TcpState;
    use std::net::SocketAddr;

    use crate::testing::{seg, sides};

    fn call(peer: Peer, kind: CallKind, t_start: i64, t_end: i64, outcome: Outcome) -> SocketCall {
        crate::testing::call(peer, kind, (t_start, t_end), outcome)
    }

    const ACK: u16 = TcpFlags::ACK;

    #[test]
    fn merge_orders_by_time_and_splits_blocked_calls() {
        let segments = vec![
            seg(10, Peer::A, TcpFlags::SYN, 1000, 0, b""),
            seg(11, Peer::B, TcpFlags::SYN | ACK, 5000, 1001, b""),
            seg(12, Peer::A, ACK, 1001, 5001, b""),
            seg(30, Peer::A, TcpFlags::PSH | ACK, 1001, 5001, b"hello"),
            seg(61, Peer::B, TcpFlags::RST | ACK, 5001, 1003, b""),
        ];
        let calls = vec![
            call(
                Peer::A,
                CallKind::Connect,
                9,
                13,
                Outcome::Ok {
                    ret: 0,
                    data: vec![],
                },
            ),
            call(
                Peer::A,
                CallKind::Send,
                29,
                31,
                Outcome::Ok {
                    ret: 5,
                    data: b"hello".to_vec(),
                },
            ),
            call(
                Peer::A,
                CallKind::Recv,
                40,
                70,
                Outcome::Err {
                    errno: libc::ECONNRESET,
                },
            ),
            call(
                Peer::B,
                CallKind::Close,
                60,
                62,
                Outcome::Ok {
                    ret: 0,
                    data: vec![],
                },
            ),
        ];
        let t = build(sides(), &calls, &segments, States::Recorded);
        let shape: Vec<String> = t
            .rows
            .iter()
            .map(|r| match &r.kind {
                RowKind::Call {
                    call,
                    returns_later,
                } => {
                    format!(
                        "{} {:?}{}",
                        call.peer,
                        call.kind,
                        if *returns_later { "…" } else { "" }
                    )
                }
                RowKind::Return { call } => format!("{} {:?} returns", call.peer, call.kind),
                RowKind::Segment(w) => {
                    format!("{}>{} {}", w.from, w.rel_seq, w.segment.flags.tcpdump())
                }
                RowKind::Kernel(k) => format!("{} kernel {}", k.peer, k.event),
            })
            .collect();
        assert_eq!(
            shape,
            [
                "A Connect…",
                "A>0 S",
                "B>0 S.",
                "A>1 .",
                "A Connect returns",
                "A Send…",
                "A>1 P.",
                "A Send returns",
                "A Recv…",
                "B Close…",
                "B>1 R.",
                "B Close returns",
                "A Recv returns",
            ]
        );
        // relative ack of the RST counts the receiver's bytes: 1 (SYN) + 2
        let rst = t.segments().last().unwrap();
        assert_eq!(rst.rel_ack, Some(3));
        assert_eq!(t.t0(), 9);
        assert_eq!(t.calls().count(), 4);
    }

    #[test]
    fn call_with_nothing_in_between_is_one_row() {
        let calls = vec![call(
            Peer::B,
            CallKind::Recv,
            5,
            6,
            Outcome::Ok {
                ret: 1,
                data: b"h".to_vec(),
            },
        )];
        let t = build(sides(), &calls, &[], States::Recorded);
        assert_eq!(t.rows.len(), 1);
        assert!(matches!(
            t.rows[0].kind,
            RowKind::Call {
                returns_later: false,
                ..
            }
        ));
    }

    #[test]
    fn kernel_events_belong_to_a_or_b_by_their_sockets_address() {
        let s = sides();
        let addr = |t: &str| t.parse::<SocketAddr>().unwrap();
        let state = |src: &str, dst: &str| KernelEvent {
            ts: 5,
            what: KernelEventKind::StateChange {
                old: TcpState::Closed,
                new: TcpState::SynSent,
                src: addr(src),
                dst: addr(dst),
            },
        };
        let events = [
            state("127.0.0.1:0", "127.0.0.1:8080"),
            state("127.0.0.1:40000", "127.0.0.1:8080"),
            state("127.0.0.1:8080", "127.0.0.1:40000"),
            state("127.0.0.1:0", "127.0.0.1:9999"),
            state("127.0.0.1:41000", "127.0.0.1:8080"),
        ];
        let t = build_with_kernel(s, &[], &[], &events, States::Recorded);
        let owners: Vec<Peer> = t.kernel_rows().map(|k| k.peer).collect();
        assert_eq!(owners, [Peer::A, Peer::A, Peer::B]);
    }

    #[test]
    fn a_sent_reset_sits_at_its_segment_before_what_it_caused() {
        let s = sides();
        let rst = seg(1_000_000, Peer::B, TcpFlags::RST | ACK, 5001, 1003, b"");
        let (a, b) = (s.a, s.b);
        let events = [
            // the receiver's reaction, stamped (to the µs) a little before the capture
            KernelEvent {
                ts: 999_000,
                what: KernelEventKind::ReceiveReset { src: a, dst: b },
            },
            KernelEvent {
                ts: 1_004_000,
                what: KernelEventKind::SendReset {
                    reason: "TCP_ABORT_ON_CLOSE".into(),
                    state: Some(TcpState::Closed),
                    src: b,
                    dst: a,
                },
            },
        ];
        let t = build_with_kernel(s, &[], &[rst], &events, States::Recorded);
        let shape: Vec<String> = t
            .rows
            .iter()
            .map(|r| match &r.kind {
                RowKind::Kernel(k) => format!("{} {}", k.peer, k.event.name()),
                RowKind::Segment(w) => format!("{} {}", w.from, w.segment.flags.tcpdump()),
                _ => String::new(),
            })
            .collect();
        assert_eq!(shape, ["B send_reset", "B R.", "A receive_reset"]);
        assert_eq!(
            t.reset_reason(t.segments().next().unwrap()),
            Some("TCP_ABORT_ON_CLOSE")
        );
        assert!(t.rows.windows(2).all(|w| w[0].t <= w[1].t));
    }

    #[test]
    fn without_capture_a_reset_sits_before_what_it_did_to_the_receiver_not_the_handshake() {
        let s = sides();
        let (a, b) = (s.a, s.b);
        let change = |ts, src, dst, old, new| KernelEvent {
            ts,
            what: KernelEventKind::StateChange { old, new, src, dst },
        };
        let events = [
            // the handshake, 4 ms before the reset's late stamp
            change(100_000, a, b, TcpState::SynSent, TcpState::Established),
            change(4_000_000, a, b, TcpState::Established, TcpState::Closed),
            KernelEvent {
                ts: 4_010_000,
                what: KernelEventKind::SendReset {
                    reason: "TCP_ABORT_ON_CLOSE".into(),
                    state: Some(TcpState::Closed),
                    src: b,
                    dst: a,
                },
            },
        ];
        let t = build_with_kernel(s, &[], &[], &events, States::Recorded);
        let reset = t
            .rows
            .iter()
            .find(|r| matches!(&r.kind, RowKind::Kernel(k) if k.reason().is_some()));
        assert_eq!(reset.map(|r| r.t), Some(4_000_000));
    }

    #[test]
    fn segments_of_other_connections_are_left_out() {
        let mut other = seg(1, Peer::A, ACK, 1, 1, b"");
        other.dst = "127.0.0.1:9".parse().unwrap();
        let t = build(sides(), &[], &[other], States::Recorded);
        assert!(t.rows.is_empty());
    }

    #[test]
    fn relative_numbers_without_syn_start_at_first_segment() {
        let segments = vec![
            seg(1, Peer::A, ACK, 700, 9000, b"ab"),
            seg(2, Peer::B, ACK, 9000, 702, b""),
        ];
        let t = build(sides(), &[], &segments, States::Recorded);
        let w: Vec<_> = t.segments().map(|w| (w.rel_seq, w.rel_ack)).collect();
        assert_eq!(w, [(0, Some(0)), (0, Some(2))]);
    }
}
