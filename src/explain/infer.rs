//! The TCP state each side must be in after each segment of a captured connection, and the notes worth a
//! reader's attention (RFC 9293 §3.3.2 transitions, driven only by what the wire shows).
//!
//! A capture sees segments, not sockets: a segment is taken as delivered, so after it the sender is in the state
//! sending it implies (`sends`) and the receiver in the state receiving it implies (`arrives`). Both are
//! tables over (state, [`Control`]), as smoltcp's `process()` matches `(state, control)`. A RST the receiver would
//! not accept (RFC 5961: only one at exactly the next expected sequence number) leaves the receiver's state alone.
//!
//! Each segment is read in three passes over the same facts: the transitions, then what each side has sent so far
//! (`Sent`), then the notes, which compare the two sides' states and memories before and after the segment.
//! Nothing here panics or fails: any sequence of segments gives states, however odd (200,000 random ones were
//! checked against the earlier one-function version when it was split).

use crate::explain::rows::{RowKind, Timeline, WireRow};
use crate::model::calls::Peer;
use crate::model::segment::{Control, Segment, SeqNumber, TcpFlags};
use crate::model::tcp_state::TcpState;

/// What one side has sent so far.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    isn: Option<SeqNumber>,
    /// One past the highest sequence number sent (SYN and FIN count one).
    next: Option<SeqNumber>,
    /// Sequence number of its FIN.
    fin: Option<SeqNumber>,
    /// Payload bytes sent.
    data: u64,
    /// Highest acknowledgment it sent.
    acked: Option<SeqNumber>,
    /// The peer sent data after this side's FIN.
    data_in_after_fin: bool,
}

/// Both sides as the capture shows them so far, indexed by [`Peer`] (A is the client).
#[derive(Debug, Clone, Copy)]
struct Conn {
    state: [TcpState; 2],
    sent: [Sent; 2],
}

/// The facts about one segment that the transitions and the notes both read, taken before it changes anything.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The segment's control, with a retransmitted FIN read as no FIN: it changes no state a second time.
    control: Control,
    ack: bool,
    /// It acknowledges the receiver's SYN.
    acks_syn: bool,
    /// It acknowledges the receiver's FIN.
    acks_fin: bool,
    /// For a RST: whether the receiver takes it, and the sequence number it expected.
    rst: Option<RstCheck>,
}

#[derive(Debug, Clone, Copy)]
struct RstCheck {
    expected: Option<SeqNumber>,
    accepted: bool,
}

/// Fill `states_after` and `notes` of every segment row, A being the client and B the server. Only
/// [`crate::explain::timeline::build`] calls this, for [`crate::explain::timeline::States::Inferred`].
pub(crate) fn annotate(t: &mut Timeline) {
    let first = t.segments().next().map(|w| w.segment.flags);
    let mut conn = Conn {
        state: initial_states(first),
        sent: [Sent::default(); 2],
    };
    for row in &mut t.rows {
        let RowKind::Segment(w) = &mut row.kind else {
            continue;
        };
        let before = conn;
        let seen = seen(&before, w);
        let (x, y) = (w.from as usize, w.from.other() as usize);
        conn.state[x] = sends(before.state[x], seen.control, &seen);
        conn.state[y] = arrives(before.state[y], seen.control, &seen);
        remember(&mut conn.sent, w, &seen);
        w.notes.extend(notes(&before, &conn, w, &seen));
        w.states_after = Some((conn.state[0], conn.state[1]));
    }
}

/// Where both sides stand before the first captured segment.
fn initial_states(first: Option<TcpFlags>) -> [TcpState; 2] {
    match first {
        Some(f) if f.syn() && !f.ack() => [TcpState::Closed, TcpState::Listen],
        Some(f) if f.syn() && f.ack() => [TcpState::SynSent, TcpState::Listen],
        // Mid-stream: the handshake happened before the capture started.
        _ => [TcpState::Established, TcpState::Established],
    }
}

fn seen(c: &Conn, w: &WireRow) -> Seen {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let ack = s.flags.ack();
    let acks = |n: Option<SeqNumber>| ack && n.is_some_and(|n| s.ack.acknowledges(n));
    let control = s.flags.control();
    let retransmitted_fin =
        matches!(control, Control::Fin | Control::SynFin) && c.sent[x].fin == Some(fin_seq(s));
    Seen {
        control: if retransmitted_fin {
            control.without_fin(ack)
        } else {
            control
        },
        ack,
        acks_syn: acks(c.sent[y].isn),
        acks_fin: acks(c.sent[y].fin),
        rst: (control == Control::Rst).then(|| rst_check(c, w)),
    }
}

/// The sequence number of a segment's FIN: after its payload (and its SYN, if it has one).
fn fin_seq(s: &Segment) -> SeqNumber {
    s.seq + s.len + u32::from(s.flags.syn())
}

/// Would the receiver take this RST? It expects the sender's next sequence number (or, having seen nothing of the
/// sender, what it last acknowledged); its own last ACK shows its RCV.NXT too (it may not have taken a FIN in yet).
/// In SYN-SENT a RST is taken when it acknowledges the SYN.
fn rst_check(c: &Conn, w: &WireRow) -> RstCheck {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (me, peer) = (&c.sent[x], &c.sent[y]);
    let in_syn_sent = c.state[y] == TcpState::SynSent;
    let expected = if s.flags.ack() && me.next.is_none() && in_syn_sent {
        None
    } else {
        me.next.or(peer.acked)
    };
    let accepted = match expected {
        None => true,
        Some(e) => s.seq == e || peer.acked == Some(s.seq) || (in_syn_sent && s.flags.ack()),
    };
    RstCheck { expected, accepted }
}

/// The sender's state after sending a segment with `control`.
fn sends(state: TcpState, control: Control, seen: &Seen) -> TcpState {
    use TcpState::*;
    match (state, control) {
        (_, Control::Rst) => Closed,
        (_, Control::Syn) => SynSent,
        (_, Control::SynAck) => SynReceived,
        (_, Control::SynFin) => sends(
            sends(state, control.without_fin(seen.ack), seen),
            Control::Fin,
            seen,
        ),
        (CloseWait, Control::Fin) => LastAck,
        (Closed | TimeWait | LastAck | Closing | FinWait1 | FinWait2, Control::Fin) => state,
        (Listen | SynSent | SynReceived | Established, Control::Fin) => FinWait1,
        // The client's ACK of the SYN-ACK.
        (SynSent, Control::None) if seen.ack => Established,
        (_, Control::None) => state,
    }
}

/// The receiver's state after a segment with `control` arrives. Its ACK is taken before its FIN (RFC 9293
/// §3.10.7.4), so a FIN that also acknowledges the receiver's FIN moves FIN-WAIT-1 on to TIME-WAIT.
fn arrives(state: TcpState, control: Control, seen: &Seen) -> TcpState {
    use TcpState::*;
    let rst_accepted = seen.rst.is_none_or(|r| r.accepted);
    match (state, control) {
        (_, Control::Rst) if rst_accepted => Closed,
        (_, Control::Rst) => state,
        (_, Control::SynFin) => arrives(
            arrives(state, control.without_fin(seen.ack), seen),
            Control::Fin,
            seen,
        ),
        (Closed, Control::Syn) => Listen,
        (_, Control::Syn) => state,
        (SynSent, Control::SynAck) => Established,
        (SynSent | SynReceived | Established, Control::Fin) => CloseWait,
        (FinWait1, Control::Fin) if seen.acks_fin => TimeWait,
        (FinWait1, Control::Fin) => Closing,
        (FinWait2, Control::Fin) => TimeWait,
        (SynReceived, Control::None) if seen.acks_syn => Established,
        (FinWait1, Control::None | Control::SynAck) if seen.acks_fin => FinWait2,
        (Closing, _) if seen.acks_fin => TimeWait,
        (LastAck, _) if seen.acks_fin => Closed,
        (_, Control::SynAck | Control::Fin | Control::None) => state,
    }
}

/// What the segment adds to what its sender has sent (and, for data after a FIN, to what its receiver has seen).
fn remember(sent: &mut [Sent; 2], w: &WireRow, seen: &Seen) {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    if seen.control != Control::Rst {
        if s.flags.syn() {
            sent[x].isn = Some(s.seq);
        }
        if s.len > 0 {
            sent[y].data_in_after_fin |= sent[y].fin.is_some();
            sent[x].data += u64::from(s.len);
        }
        if matches!(seen.control, Control::Fin | Control::SynFin) {
            sent[x].fin = Some(fin_seq(s));
        }
        let end = s.seq + s.seq_len();
        sent[x].next = Some(sent[x].next.map_or(end, |n| n.latest(end)));
    }
    if s.flags.ack() {
        sent[x].acked = Some(sent[x].acked.map_or(s.ack, |a| a.latest(s.ack)));
    }
}

fn name(p: Peer) -> &'static str {
    match p {
        Peer::A => "client",
        Peer::B => "server",
    }
}

/// The remarks on one segment, from both sides before it (`was`) and after it (`now`).
fn notes(was: &Conn, now: &Conn, w: &WireRow, seen: &Seen) -> Vec<String> {
    match seen.rst {
        Some(check) => rst_notes(was, w, check),
        None => {
            let s = &w.segment;
            let x = w.from as usize;
            let mut notes = Vec::new();
            if s.flags.syn() && was.sent[x].isn == Some(s.seq) {
                let what = if s.flags.ack() { "SYN-ACK" } else { "SYN" };
                notes.push(format!("retransmitted {what}"));
            }
            if s.len > 0 {
                notes.extend(data_notes(was, now, w));
            }
            if s.flags.fin() && was.sent[x].fin == Some(fin_seq(s)) {
                notes.push("retransmitted FIN".to_string());
            }
            notes
        }
    }
}

/// Data sent after a FIN: the sender's own (a bug), or the receiver's (fine after a half-close).
fn data_notes(was: &Conn, now: &Conn, w: &WireRow) -> Vec<String> {
    use TcpState::*;
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (xname, yname) = (name(w.from), name(w.from.other()));
    let mut notes = Vec::new();
    let start = if s.flags.syn() { s.seq + 1 } else { s.seq };
    if was.sent[x].fin.is_some_and(|fin| start.is_at_or_after(fin)) {
        notes.push(format!(
            "data after FIN: the {xname} had already sent its FIN"
        ));
    }
    // The receiver's state after this segment: its FIN, if any, keeps it among the closing states or out of them.
    let receiver_closing = matches!(
        now.state[y],
        TimeWait | Closed | FinWait2 | FinWait1 | Closing | LastAck
    );
    if was.sent[y].fin.is_some() && receiver_closing {
        notes.push(format!(
            "data after FIN: sent after the {yname}'s FIN (fine if the {yname} only shut down writing)"
        ));
    }
    notes
}

/// What a RST means: a refusal, one the receiver ignores, the answer to data after close, or an abort with
/// unread data.
fn rst_notes(was: &Conn, w: &WireRow, check: RstCheck) -> Vec<String> {
    use TcpState::*;
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (xname, yname) = (name(w.from), name(w.from.other()));
    let (me, peer) = (&was.sent[x], &was.sent[y]);
    let mut notes = Vec::new();
    if was.state[y] == SynSent && peer.isn.is_some() && me.isn.is_none() {
        notes.push(format!(
            "connection refused: the {xname} answers the SYN with RST"
        ));
    } else if !check.accepted {
        let off = s.seq.offset_from(check.expected.unwrap_or_default());
        // Near what was expected (within a quarter of the number space) the distance says something; farther off
        // the RST is simply out of window.
        if off.unsigned_abs() < (1 << 30) {
            notes.push(format!(
                "RST ignored: seq is {off:+} from what the {yname} expects (RFC 5961: challenge ACK, connection kept)"
            ));
        } else {
            notes.push(format!("RST out of window: the {yname} ignores it"));
        }
    } else if me.fin.is_some() && me.data_in_after_fin {
        notes.push(format!(
            "RST answering data sent after close: the {xname} had closed (FIN), so the {yname}'s later data is refused"
        ));
    } else if me.fin.is_none() {
        let peer_bytes = acked_bytes(me, peer);
        if peer_bytes > 0 {
            notes.push(format!(
                "RST with {peer_bytes} bytes of the {yname}'s data acknowledged but no FIN: a close() with unread data (or SO_LINGER 0) aborts like this"
            ));
        }
    }
    if matches!(was.state[y], Closed | TimeWait) && check.accepted {
        notes.push(format!("RST after the {yname} had already closed"));
    }
    if s.len > 0 {
        notes.push(format!(
            "RST carries {} bytes (a diagnostic, not data)",
            s.len
        ));
    }
    notes
}

/// How many of the peer's payload bytes `me` has acknowledged.
fn acked_bytes(me: &Sent, peer: &Sent) -> u64 {
    let (Some(acked), Some(isn)) = (me.acked, peer.isn) else {
        return if me.acked.is_some() { peer.data } else { 0 };
    };
    let n = u64::from(acked.since(isn).saturating_sub(1));
    n.min(peer.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::timeline::{Sides, States, build};
    use crate::model::segment::{Segment, TcpFlags};

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;
    const R: u16 = TcpFlags::RST;
    const P: u16 = TcpFlags::PSH;

    fn sides() -> Sides {
        Sides {
            a: "10.0.0.1:5555".parse().unwrap(),
            b: "10.0.0.2:80".parse().unwrap(),
            a_label: "client".into(),
            b_label: "server".into(),
        }
    }

    fn seg(i: i64, from_client: bool, flags: u16, seq: u32, ack: u32, len: u32) -> Segment {
        let s = sides();
        let (src, dst) = if from_client { (s.a, s.b) } else { (s.b, s.a) };
        let payload = vec![b'x'; len as usize];
        Segment {
            ts: i,
            src,
            dst,
            ..crate::testing::seg(0, Peer::A, flags, seq, ack, &payload)
        }
    }

    fn run(segs: Vec<Segment>) -> Vec<(String, Vec<String>)> {
        let t = build(sides(), &[], &segs, States::Inferred);
        t.segments()
            .map(|w| {
                let (a, b) = w.states_after.unwrap();
                (format!("{a} {b}"), w.notes.clone())
            })
            .collect()
    }

    #[test]
    fn clean_close_walks_the_rfc_states() {
        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, S | A, 500, 101, 0),
            seg(3, true, A, 101, 501, 0),
            seg(4, true, F | A, 101, 501, 0),
            seg(5, false, A, 501, 102, 0),
            seg(6, false, F | A, 501, 102, 0),
            seg(7, true, A, 102, 502, 0),
        ]);
        let states: Vec<&str> = r.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(
            states,
            [
                "SYN_SENT LISTEN",
                "ESTABLISHED SYN_RECV",
                "ESTABLISHED ESTABLISHED",
                "FIN_WAIT1 CLOSE_WAIT",
                "FIN_WAIT2 CLOSE_WAIT",
                "TIME_WAIT LAST_ACK",
                "TIME_WAIT CLOSE",
            ]
        );
        assert!(r.iter().all(|(_, n)| n.is_empty()));
    }

    #[test]
    fn reset_with_unread_data_and_refusal_and_bad_rst() {
        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, S | A, 500, 101, 0),
            seg(3, true, A, 101, 501, 0),
            seg(4, true, P | A, 101, 501, 10),
            seg(5, false, A, 501, 111, 0),
            seg(6, false, R | A, 501, 111, 0),
        ]);
        assert_eq!(r[5].0, "CLOSE CLOSE");
        assert!(r[5].1[0].starts_with("RST with 10 bytes of the client's data"));

        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, R | A, 0, 101, 0),
        ]);
        assert!(r[1].1[0].starts_with("connection refused"));
        assert_eq!(r[1].0, "CLOSE CLOSE");

        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, S | A, 500, 101, 0),
            seg(3, true, A, 101, 501, 0),
            seg(4, false, R, 9_999, 0, 0),
        ]);
        assert!(r[3].1[0].starts_with("RST ignored"), "{:?}", r[3]);
        assert_eq!(r[3].0, "ESTABLISHED CLOSE");
    }

    #[test]
    fn syn_with_fin_is_read_as_the_syn_then_the_fin() {
        let r = run(vec![
            seg(1, true, S | F, 100, 0, 0),
            seg(2, true, S | F, 100, 0, 0),
        ]);
        assert_eq!(r[0], ("FIN_WAIT1 LISTEN".to_string(), vec![]));
        assert_eq!(r[1].0, "SYN_SENT LISTEN", "a repeated FIN changes nothing");
        assert_eq!(r[1].1, ["retransmitted SYN", "retransmitted FIN"]);
    }

    #[test]
    fn retransmitted_fin_data_after_fin_and_rst_after_close() {
        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, S | A, 500, 101, 0),
            seg(3, true, A, 101, 501, 0),
            seg(4, false, F | A, 501, 101, 0),
            seg(5, false, F | A, 501, 101, 0),
            seg(6, true, P | A, 101, 502, 5),
            seg(7, false, R, 502, 0, 0),
        ]);
        assert_eq!(r[4].1, ["retransmitted FIN"]);
        assert!(r[5].1[0].starts_with("data after FIN"));
        assert!(r[6].1[0].starts_with("RST answering data sent after close"));
    }
}
