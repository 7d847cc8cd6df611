//! The TCP state each side must be in after each segment of a captured connection, and the notes worth a
//! reader's attention (RFC 9293 §3.3.2 transitions and §3.10.7 acceptability, driven only by what the wire shows).
//!
//! A capture sees segments, not sockets, and from one place on the path. The states shown never run ahead of what
//! the packets prove:
//! - a SYN or a FIN counts as arrived only once its receiver shows it: it acknowledges it, or its sender sends
//!   something after it that arrives (segments of one direction arrive in order). Until then the receiver stays
//!   where it was: a FIN sent again and again leaves its peer in ESTABLISHED, and when both FINs cross (neither
//!   acknowledges the other) both sides go FIN-WAIT-1 → CLOSING → TIME-WAIT;
//! - ACKs and data are taken as delivered when seen;
//! - a RST changes its receiver's state only when the receiver would accept it: in SYN-SENT when it acknowledges
//!   the SYN (ISS < SEG.ACK ≤ SND.NXT), in LISTEN never, in a synchronized state only at exactly the next expected
//!   sequence number (RFC 5961 §3.2: in the window but not exact draws a challenge ACK, out of the window is
//!   dropped silently).
//!
//! Nothing here panics or fails: any sequence of segments gives states, however odd.

use crate::explain::rows::{RowKind, RstFate, Timeline, WireRow};
use crate::model::calls::Peer;
use crate::model::segment::{Control, Segment, SeqNumber, TcpFlags, TimestampNs};
use crate::model::tcp_state::TcpState;

/// What one side has sent so far.
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    isn: Option<SeqNumber>,
    /// It sent a SYN without ACK (a connect()).
    bare_syn: bool,
    /// It sent a SYN with ACK.
    syn_ack: bool,
    /// One past the highest sequence number sent (SYN and FIN count one).
    next: Option<SeqNumber>,
    /// Sequence number of its FIN.
    fin: Option<SeqNumber>,
    /// Payload bytes sent.
    data: u64,
    /// Highest acknowledgment it sent.
    acked: Option<SeqNumber>,
    /// The window it last advertised (as on the wire, unscaled).
    window: Option<u16>,
    /// The peer sent data after this side's FIN.
    data_in_after_fin: bool,
    /// It sent a RST.
    rst: bool,
    /// When the peer first acknowledged its FIN.
    fin_acked_at: Option<TimestampNs>,
}

impl Sent {
    /// It has acknowledged `seq` (a SYN's or FIN's own number).
    fn has_acked(&self, seq: Option<SeqNumber>) -> bool {
        matches!((self.acked, seq), (Some(a), Some(s)) if a.acknowledges(s))
    }
}

/// Both sides as the capture shows them so far, indexed by [`Peer`] (A is the client).
#[derive(Debug, Clone, Copy)]
struct Conn {
    state: [TcpState; 2],
    sent: [Sent; 2],
    /// A SYN (its sequence number) from the other side that has not yet been shown to reach this side.
    syn_in_flight: [Option<SeqNumber>; 2],
    /// Likewise a FIN.
    fin_in_flight: [Option<SeqNumber>; 2],
    /// This side was reset by the other's RST: its state before, shown back if it sends anything after (a closed
    /// socket sends nothing, so the RST had not reached it yet).
    reset_from: [Option<TcpState>; 2],
}

impl RstFate {
    fn accepted(self) -> bool {
        matches!(self, RstFate::Accepted)
    }
}

/// The facts about one segment that the transitions and the notes both read, taken before it changes anything.
#[derive(Debug, Clone, Copy)]
struct Seen {
    /// The segment's control, with a FIN sent again read as no FIN: it changes no state a second time.
    control: Control,
    ack: bool,
    /// It acknowledges the receiver's SYN.
    acks_syn: bool,
    /// It acknowledges the receiver's FIN.
    acks_fin: bool,
    /// For a RST: what its receiver does with it.
    rst: Option<RstFate>,
    /// A SYN with the sender's first SYN's number after that SYN was acknowledged: a copy made by the network.
    duplicate_syn: bool,
    /// The receiver had acknowledged the sender's SYN before this segment.
    own_syn_acked: bool,
    /// A bare RST from a side in SYN-RECEIVED at the number the other side's last ACK gave, that ACK not
    /// acknowledging its SYN: RFC 9293 §3.10.7.4's answer to an unacceptable ACK, after which it stays.
    rst_for_bad_ack: bool,
}

/// Fill `states_after` and `notes` of every segment row, A being the client and B the server. Only
/// [`crate::explain::timeline::build`] calls this, for [`crate::explain::timeline::States::Inferred`].
pub(crate) fn annotate(t: &mut Timeline) {
    if t.sides.a == t.sides.b {
        return annotate_self_connect(t);
    }
    let first = t.segments().next().map(|w| w.segment.flags);
    let mut conn = Conn {
        state: initial_states(first),
        sent: [Sent::default(); 2],
        syn_in_flight: [None; 2],
        fin_in_flight: [None; 2],
        reset_from: [None; 2],
    };
    // the row where each side was last shown reset, while that may still be taken back
    let mut reset_row: [Option<usize>; 2] = [None; 2];
    let mut last_fin_row: [Option<usize>; 2] = [None; 2];
    let mut reset_rows_back = Vec::new();
    for (i, row) in t.rows.iter_mut().enumerate() {
        let RowKind::Segment(w) = &mut row.kind else {
            continue;
        };
        let x = w.from as usize;
        let unreset = conn.reset_from[x].filter(|_| !w.segment.flags.rst());
        let (was, seen) = step(&mut conn, w);
        w.notes.extend(notes(&was, &conn, w, &seen));
        if let (Some(before), Some(from)) = (unreset, reset_row[x]) {
            w.notes.push(format!(
                "the {} sends after the {}'s RST, so that RST had not reached it yet (it was in flight): shown {} until here",
                name(w.from),
                name(w.from.other()),
                before
            ));
            reset_rows_back.push((x, from, i, before));
        }
        if seen.rst.is_some_and(RstFate::accepted) {
            reset_row[1 - x] = Some(i);
        }
        w.states_after = Some((conn.state[0], conn.state[1]));
        w.rst_fate = seen.rst;
        if w.segment.flags.fin() && !w.segment.flags.rst() {
            last_fin_row[w.from as usize] = Some(i);
        }
    }
    // refused: a RST that answers the SYN of a side in SYN-SENT, from a side that never sent a SYN, shows nothing
    // listened there: that side was CLOSED all along, not LISTEN
    if let Some(i) = refused_at(t) {
        for row in &mut t.rows[..i] {
            if let RowKind::Segment(w) = &mut row.kind
                && let Some(states) = &mut w.states_after
            {
                states.1 = TcpState::Closed;
            }
        }
    }
    // a side shown reset too early: its state from the RST up to the segment it sent after it
    for (side, from, to, before) in reset_rows_back {
        for row in &mut t.rows[from..to] {
            if let RowKind::Segment(w) = &mut row.kind
                && let Some(states) = &mut w.states_after
            {
                if side == 0 {
                    states.0 = before;
                } else {
                    states.1 = before;
                }
            }
        }
    }
    // A FIN that nothing ever showed to arrive: from here the capture cannot tell.
    for (x, row) in last_fin_row.iter().enumerate() {
        let (Some(i), Some(_)) = (row, conn.fin_in_flight[1 - x]) else {
            continue;
        };
        if let RowKind::Segment(w) = &mut t.rows[*i].kind {
            let (xname, yname) = (name(w.from), name(w.from.other()));
            w.notes.push(format!(
                "no ACK of the {xname}'s FIN seen: it may never have reached the {yname}, whose state is shown as before it"
            ));
        }
    }
}

/// The row of a refusal by B (the server): its first segment, a RST taken by the client in SYN-SENT.
fn refused_at(t: &Timeline) -> Option<usize> {
    let (i, w) = t.rows.iter().enumerate().find_map(|(i, r)| match &r.kind {
        RowKind::Segment(w) if w.from == Peer::B => Some((i, w)),
        _ => None,
    })?;
    let refused = w.segment.flags.rst()
        && w.rst_fate == Some(RstFate::Accepted)
        && w.notes.iter().any(|n| n.starts_with("connection refused"));
    refused.then_some(i)
}

/// A socket connected to itself (both ends one address and port): every segment it sends comes back to it, so
/// each is sent and then received by the same socket, which shows in both columns: SYN_SENT, SYN_RECV on its own
/// SYN (a simultaneous open with itself), ESTABLISHED on its own SYN-ACK, and on close FIN_WAIT1, CLOSING on its
/// own FIN, TIME_WAIT on the ACK of it.
fn annotate_self_connect(t: &mut Timeline) {
    use TcpState::*;
    let mut state = Closed;
    let mut sent = Sent::default();
    let mut first = true;
    for row in &mut t.rows {
        let RowKind::Segment(w) = &mut row.kind else {
            continue;
        };
        let s = &w.segment;
        let control = s.flags.control();
        let acks = |n: Option<SeqNumber>| s.flags.ack() && n.is_some_and(|n| s.ack.acknowledges(n));
        let own_fin = matches!(control, Control::Fin | Control::SynFin) && sent.fin.is_none();
        if s.flags.syn() {
            sent.isn.get_or_insert(s.seq);
        }
        if own_fin {
            sent.fin = Some(fin_seq(s));
        }
        state = match (state, control) {
            (_, Control::Rst) => Closed,
            (Closed | SynSent, Control::Syn) => SynReceived,
            (SynReceived | SynSent, Control::SynAck) if acks(sent.isn) => Established,
            (SynReceived | Established, Control::Fin) if own_fin => Closing,
            (FinWait1 | Closing, _) if acks(sent.fin) => TimeWait,
            (other, _) => other,
        };
        if first {
            w.notes.push(
                "a socket connected to itself (one address and port at both ends): each segment it sends comes back to it, so both columns are that one socket"
                    .to_string(),
            );
            first = false;
        }
        w.states_after = Some((state, state));
    }
}

/// One segment from `x` to `y`: first what it proves had reached its sender (what it acknowledges) and, in order,
/// its receiver; then the sender's transition and the receiver's. Returns both sides as they were just before
/// the segment itself, and the facts about it.
fn step(conn: &mut Conn, w: &WireRow) -> (Conn, Seen) {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    // a side that sends was not reset yet: the RST it was shown taking had not reached it
    if !s.flags.rst()
        && let Some(before) = conn.reset_from[x].take()
    {
        conn.state[x] = before;
    }
    if s.flags.ack() && !s.flags.rst() {
        if conn.syn_in_flight[x].is_some_and(|n| s.ack.acknowledges(n)) {
            syn_arrives(conn, x);
        }
        if conn.fin_in_flight[x].is_some_and(|n| s.ack.acknowledges(n)) {
            fin_arrives(conn, x);
        }
    }
    let was = *conn;
    let seen = seen(conn, w);
    // a RST no socket of this connection would send (SYN-SENT's unacceptable ACK) says nothing of its sender;
    // one answering an unacceptable ACK leaves SYN-RECEIVED as it was
    if seen.rst != Some(RstFate::UnacceptableAck) && !seen.rst_for_bad_ack {
        conn.state[x] = sends(conn.state[x], seen.control, &seen, &conn.sent[x]);
    }
    remember(&mut conn.sent, w, &seen);
    match seen.control {
        Control::Rst if seen.rst.is_some_and(RstFate::accepted) => {
            conn.reset_from[y] = Some(conn.state[y]);
            conn.state[y] = TcpState::Closed;
        }
        Control::Rst => {}
        Control::Syn if seen.duplicate_syn => {}
        Control::Syn => {
            conn.syn_in_flight[y] = Some(s.seq);
            if conn.state[y] == TcpState::Closed {
                conn.state[y] = TcpState::Listen;
            }
        }
        Control::Fin => {
            conn.state[y] = ack_arrives(conn.state[y], &seen);
            conn.fin_in_flight[y] = Some(fin_seq(s));
        }
        Control::SynFin => {
            conn.syn_in_flight[y] = Some(s.seq);
            conn.fin_in_flight[y] = Some(fin_seq(s));
        }
        Control::SynAck => {
            // A SYN-ACK carries its SYN: in SYN-SENT (or, opening simultaneously, in SYN-RECEIVED) the one that
            // acknowledges the receiver's SYN completes the handshake.
            let opening_too =
                conn.sent[y].bare_syn && !conn.sent[y].syn_ack && conn.sent[x].bare_syn;
            if opening_too {
                // simultaneous open: its own SYN-ACK, still to come, shows it took the SYN first
                syn_arrives(conn, y);
            } else if matches!(conn.state[y], TcpState::SynSent | TcpState::SynReceived)
                && seen.acks_syn
            {
                conn.syn_in_flight[y] = None;
                conn.state[y] = TcpState::Established;
            }
        }
        Control::None => conn.state[y] = ack_arrives(conn.state[y], &seen),
    }
    (was, seen)
}

/// The other side's SYN reaches side `r`.
fn syn_arrives(conn: &mut Conn, r: usize) {
    conn.syn_in_flight[r] = None;
    conn.state[r] = match conn.state[r] {
        TcpState::Closed | TcpState::Listen => TcpState::SynReceived,
        // simultaneous open (RFC 9293 §3.5, figure 8)
        TcpState::SynSent => TcpState::SynReceived,
        other => other,
    };
}

/// The other side's FIN reaches side `r`. Its ACK was taken before its FIN (RFC 9293 §3.10.7.4), so a FIN-WAIT-1
/// whose FIN the other side had acknowledged is in FIN-WAIT-2 already.
fn fin_arrives(conn: &mut Conn, r: usize) {
    conn.fin_in_flight[r] = None;
    conn.state[r] = after_fin(conn.state[r]);
}

/// A side's state once the other side's FIN has reached it.
fn after_fin(state: TcpState) -> TcpState {
    use TcpState::*;
    match state {
        SynReceived | Established => CloseWait,
        FinWait1 => Closing,
        FinWait2 => TimeWait,
        other => other,
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
    let duplicate_syn = control == Control::Syn
        && c.sent[x].isn == Some(s.seq)
        && c.sent[y].has_acked(c.sent[x].isn);
    Seen {
        control: if retransmitted_fin {
            control.without_fin(ack)
        } else {
            control
        },
        ack,
        acks_syn: acks(c.sent[y].isn),
        acks_fin: acks(c.sent[y].fin),
        rst: (control == Control::Rst).then(|| rst_fate(c, w)),
        duplicate_syn,
        own_syn_acked: c.sent[y].has_acked(c.sent[x].isn),
        rst_for_bad_ack: control == Control::Rst
            && !ack
            && c.state[x] == TcpState::SynReceived
            && c.sent[y].acked == Some(s.seq)
            && !c.sent[y].has_acked(c.sent[x].isn),
    }
}

/// The sequence number of a segment's FIN: after its payload (and its SYN, if it has one).
fn fin_seq(s: &Segment) -> SeqNumber {
    s.seq + s.len + u32::from(s.flags.syn())
}

/// What the receiver does with this RST, by its state (RFC 9293 §3.10.7, RFC 5961 §3.2). Its RCV.NXT is what it
/// last acknowledged, or else the sender's next number; exact at either counts (it may have taken data in
/// without acknowledging it yet).
fn rst_fate(c: &Conn, w: &WireRow) -> RstFate {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (me, peer) = (&c.sent[x], &c.sent[y]);
    match c.state[y] {
        TcpState::Listen => RstFate::Listener,
        TcpState::Closed => RstFate::NoConnection,
        TcpState::SynSent => {
            // ISS < SEG.ACK ≤ SND.NXT
            let ok = s.flags.ack()
                && peer.isn.is_some_and(|iss| s.ack.acknowledges(iss))
                && peer.next.is_none_or(|nxt| nxt.is_at_or_after(s.ack));
            if ok {
                RstFate::Accepted
            } else {
                RstFate::UnacceptableAck
            }
        }
        _ => synchronized_fate(s, [peer.acked, me.next], peer.window),
    }
}

/// A synchronized receiver: the RST exact at one of the candidates for RCV.NXT, in the window, or out of it.
fn synchronized_fate(
    rst: &Segment,
    rcv_nxt: [Option<SeqNumber>; 2],
    window: Option<u16>,
) -> RstFate {
    let Some(first) = rcv_nxt.iter().flatten().next() else {
        return RstFate::Accepted;
    };
    if rcv_nxt.iter().flatten().any(|&e| rst.seq == e) {
        return RstFate::Accepted;
    }
    let off = rst.seq.offset_from(*first);
    // The window scale is in the SYN's options, which are not decoded: the raw window is the least the receiver
    // offered, so a RST inside it is surely in the window.
    let wnd = i64::from(window.unwrap_or(0));
    if off > 0 && i64::from(off) < wnd {
        RstFate::Challenge { off }
    } else {
        RstFate::OutOfWindow { off }
    }
}

/// The sender's state after sending a segment with `control`.
fn sends(state: TcpState, control: Control, seen: &Seen, me: &Sent) -> TcpState {
    use TcpState::*;
    match (state, control) {
        (_, Control::Rst) => Closed,
        // a copy of an old SYN made by the network: its sender did not send it again
        (_, Control::Syn) if seen.duplicate_syn => state,
        (SynReceived, Control::Syn) => state,
        (_, Control::Syn) => SynSent,
        // simultaneous open: its own SYN already acknowledged, the SYN-ACK completes it
        (SynReceived, Control::SynAck) if me.bare_syn && seen.own_syn_acked => Established,
        (Established, Control::SynAck) => Established,
        (_, Control::SynAck) => SynReceived,
        (_, Control::SynFin) => sends(
            sends(state, control.without_fin(seen.ack), seen, me),
            Control::Fin,
            seen,
            me,
        ),
        (CloseWait, Control::Fin) => LastAck,
        (Closed | TimeWait | LastAck | Closing | FinWait1 | FinWait2, Control::Fin) => state,
        (Listen | SynSent | SynReceived | Established, Control::Fin) => FinWait1,
        // The client's ACK of the SYN-ACK.
        (SynSent, Control::None) if seen.ack => Established,
        // opening simultaneously, an ACK rather than a SYN-ACK: it took the other's SYN-ACK in SYN-SENT
        (SynReceived, Control::None) if seen.ack && me.bare_syn && !me.syn_ack => Established,
        (_, Control::None) => state,
    }
}

/// The receiver's state after the ACK of a segment arrives.
fn ack_arrives(state: TcpState, seen: &Seen) -> TcpState {
    use TcpState::*;
    match state {
        SynReceived if seen.acks_syn => Established,
        FinWait1 if seen.acks_fin => FinWait2,
        Closing if seen.acks_fin => TimeWait,
        LastAck if seen.acks_fin => Closed,
        other => other,
    }
}

/// What the segment adds to what its sender has sent (and, for data after a FIN, to what its receiver has seen).
fn remember(sent: &mut [Sent; 2], w: &WireRow, seen: &Seen) {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    if seen.control != Control::Rst {
        if s.flags.syn() && !seen.duplicate_syn && sent[x].isn.is_some_and(|isn| isn != s.seq) {
            // a new incarnation on the same ports (a SYN-ACK answering an old duplicate SYN): its numbers start
            // again, and what the old one sent, acknowledged and advertised no longer judges its peer's RSTs
            (sent[x].next, sent[x].fin, sent[x].acked, sent[x].window) = (None, None, None, None);
        }
        if s.flags.syn() && !seen.duplicate_syn {
            sent[x].isn = Some(s.seq);
            sent[x].bare_syn |= !s.flags.ack();
            sent[x].syn_ack |= s.flags.ack();
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
        sent[x].window = Some(s.window);
    }
    if seen.control == Control::Rst {
        sent[x].rst = true;
    }
    if s.flags.ack() && seen.control != Control::Rst {
        sent[x].acked = Some(sent[x].acked.map_or(s.ack, |a| a.latest(s.ack)));
        if sent[y].fin_acked_at.is_none() && sent[x].has_acked(sent[y].fin) {
            sent[y].fin_acked_at = Some(s.ts);
        }
    }
}

fn name(p: Peer) -> &'static str {
    match p {
        Peer::A => "client",
        Peer::B => "server",
    }
}

/// The remarks on one segment, from both sides just before it (`was`) and after it (`now`).
fn notes(was: &Conn, now: &Conn, w: &WireRow, seen: &Seen) -> Vec<String> {
    if let Some(fate) = seen.rst {
        let mut notes = rst_notes(was, w, fate);
        if seen.rst_for_bad_ack {
            notes.insert(0, format!(
                "the {} in SYN_RECV answers an ACK that does not acknowledge its SYN-ACK with this RST (seq = that ACK) and stays in SYN_RECV (RFC 9293 §3.10.7.4)",
                name(w.from)
            ));
        }
        return notes;
    }
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (xname, yname) = (name(w.from), name(w.from.other()));
    let mut notes = syn_notes(was, w, seen);
    if s.len > 0 {
        notes.extend(data_notes(was, now, w));
    }
    if s.flags.fin() && was.sent[x].fin == Some(fin_seq(s)) {
        notes.push(if was.sent[y].has_acked(Some(fin_seq(s))) {
            "retransmitted FIN: already acknowledged (that ACK had not reached it yet)".to_string()
        } else {
            format!(
                "retransmitted FIN: no ACK of it seen yet, so its first copy or that ACK was lost: the {yname} is still {} if the FIN was lost, {} if only its ACK was",
                was.state[y],
                after_fin(was.state[y])
            )
        });
    }
    // this segment moved its receiver while the sender's FIN is unacknowledged: it may have arrived already
    if seen.control != Control::Fin
        && now.fin_in_flight[y].is_some()
        && now.state[y] != was.state[y]
    {
        notes.push(format!(
            "the {yname} is in {} if the {xname}'s FIN has not reached it yet, in {} if it has (its ACK of that FIN will tell)",
            now.state[y],
            after_fin(now.state[y])
        ));
    }
    let fin_crossed = seen.control == Control::Fin && was.fin_in_flight[x].is_some();
    if fin_crossed {
        notes.push(format!(
            "simultaneous close: the {xname}'s FIN does not acknowledge the {yname}'s, so the two FINs crossed: a side that takes the other's FIN before the ACK of its own goes FIN_WAIT1 → CLOSING → TIME_WAIT, one whose own FIN is acknowledged first FIN_WAIT1 → FIN_WAIT2 → TIME_WAIT"
        ));
    }
    notes
}

/// SYNs sent again, copied by the network, or crossing each other.
fn syn_notes(was: &Conn, w: &WireRow, seen: &Seen) -> Vec<String> {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (xname, yname) = (name(w.from), name(w.from.other()));
    let (me, peer) = (&was.sent[x], &was.sent[y]);
    let mut notes = Vec::new();
    if !s.flags.syn() {
        return notes;
    }
    if seen.duplicate_syn {
        notes.push(format!(
            "duplicate SYN: a copy of the {xname}'s first SYN, after its handshake was done (a retransmission would have come before); the network made it, the connection is not restarted and the {yname} ({}) answers it as an old duplicate",
            was.state[y]
        ));
    } else if s.flags.ack() && me.syn_ack && me.isn == Some(s.seq) {
        notes.push("retransmitted SYN-ACK".to_string());
    } else if s.flags.ack() && me.bare_syn && me.isn == Some(s.seq) {
        notes.push(format!(
            "simultaneous open: the {xname} had sent its own SYN; this SYN-ACK answers the {yname}'s. The {yname} is in SYN_RECV if the {xname}'s SYN reached it (its own SYN-ACK follows), else it takes this one in SYN_SENT and is ESTABLISHED (a plain ACK follows)"
        ));
    } else if !s.flags.ack() && me.bare_syn && me.isn == Some(s.seq) {
        notes.push("retransmitted SYN".to_string());
    } else if !s.flags.ack() && peer.bare_syn && me.isn.is_none() {
        notes.push(format!(
            "simultaneous open: the {xname} sends a SYN of its own instead of answering the {yname}'s"
        ));
    }
    notes
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

/// What a RST does at its receiver: refuses, resets, or is dropped (and why).
fn rst_notes(was: &Conn, w: &WireRow, fate: RstFate) -> Vec<String> {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let (xname, yname) = (name(w.from), name(w.from.other()));
    let (me, peer) = (&was.sent[x], &was.sent[y]);
    let mut notes = Vec::new();
    match fate {
        RstFate::Accepted if was.state[y] == TcpState::SynSent => notes.push(format!(
            "connection refused: the {xname} answers the SYN with RST (its ACK acknowledges the SYN)"
        )),
        RstFate::Accepted if me.fin.is_some() && me.data_in_after_fin => {
            notes.push(format!(
                "RST answering data sent after close: the {xname} had closed (FIN), so the {yname}'s later data is refused"
            ));
            notes.extend(fin_wait2_note(was, w));
        }
        RstFate::Accepted if me.rst && was.state[x] == TcpState::Closed => notes.push(format!(
            "the {xname} had already reset: this RST answers the {yname}'s later segment for a socket that no longer exists"
        )),
        RstFate::Accepted if was.state[y] == TcpState::TimeWait => notes.push(format!(
            "RST to the {yname} in TIME_WAIT: Linux ends the TIME_WAIT at once (net.ipv4.tcp_rfc1337 = 0)"
        )),
        RstFate::Accepted if was.state[x] == TcpState::Closed && !s.flags.ack() => notes.push(format!(
            "the {xname} has no connection left (CLOSED): its kernel answers the {yname}'s segment for a socket that no longer exists with this RST (seq = that segment's ACK), which the {yname} takes"
        )),
        RstFate::Accepted => notes.push(format!(
            "the {xname} resets the connection (the likely cause is in the account below)"
        )),
        RstFate::UnacceptableAck => notes.push(match (s.flags.ack(), peer.isn) {
            (true, Some(iss)) => format!(
                "RST dropped: in SYN_SENT a RST counts only if it acknowledges the SYN (RFC 9293 §3.10.7.3: ISS < SEG.ACK ≤ SND.NXT); its ACK is ISS{:+}, so the {yname} keeps waiting",
                s.ack.offset_from(iss)
            ),
            _ => format!(
                "RST dropped: in SYN_SENT a RST counts only with an ACK of the SYN (RFC 9293 §3.10.7.3); the {yname} keeps waiting"
            ),
        }),
        RstFate::Listener => notes.push(listener_note(was, w)),
        RstFate::Challenge { off } => notes.push(format!(
            "RST in the window but {off:+} from the next expected number: the {yname} keeps the connection and is due to answer with a challenge ACK (RFC 5961 §3.2)"
        )),
        RstFate::OutOfWindow { off } if off.unsigned_abs() < 1 << 30 => notes.push(format!(
            "RST out of the window ({off:+} from the next expected number): the {yname} drops it silently, no challenge ACK (RFC 5961 §3.2)"
        )),
        RstFate::OutOfWindow { .. } => notes.push(format!(
            "RST far out of the window: the {yname} drops it silently"
        )),
        RstFate::NoConnection => notes.push(format!(
            "RST after the {yname} had already closed: nothing left to reset"
        )),
    }
    if s.len > 0 {
        notes.push(format!(
            "RST carries {} bytes (a diagnostic, not data)",
            s.len
        ));
    }
    notes
}

/// A bare RST (no ACK, at the peer's ACK number) from a side whose FIN was acknowledged: it was in FIN_WAIT2,
/// and either its orphaned socket refused the data or, past net.ipv4.tcp_fin_timeout, no socket was left.
fn fin_wait2_note(was: &Conn, w: &WireRow) -> Option<String> {
    let s = &w.segment;
    let (x, y) = (w.from as usize, w.from.other() as usize);
    let acked_at = was.sent[x].fin_acked_at?;
    if s.flags.ack() || was.sent[y].acked != Some(s.seq) {
        return None;
    }
    let gap = (s.ts - acked_at) as f64 / 1e9;
    Some(format!(
        "bare RST (no ACK, its seq the {yname}'s ACK number), {gap:.3} s after the {yname} acknowledged the {xname}'s FIN: the {xname} was in FIN_WAIT2 with its socket closed (close() or exit; a socket only shut down for writing takes data there). A closed socket lives in FIN_WAIT2 for net.ipv4.tcp_fin_timeout (60 s by default), refusing data with this RST; after it, the kernel has no socket left and sends the same RST",
        xname = name(w.from),
        yname = name(w.from.other()),
    ))
}

/// A RST to a side in LISTEN: ignored — and, when its SYN may have arrived unseen, what SYN-RECEIVED would do.
fn listener_note(was: &Conn, w: &WireRow) -> String {
    let s = &w.segment;
    let yname = name(w.from.other());
    let y = w.from.other() as usize;
    let base =
        format!("RST ignored: the {yname} is in LISTEN, which ignores RST (RFC 9293 §3.10.7.2)");
    let Some(syn) = was.syn_in_flight[y] else {
        return base;
    };
    let off = s.seq.offset_from(syn + 1);
    let then = if off == 0 {
        "at exactly RCV.NXT it would reset that embryonic connection".to_string()
    } else if off < 0 {
        format!(
            "its seq is {off:+} from RCV.NXT, out of the window: dropped silently there too, no challenge ACK"
        )
    } else {
        format!(
            "its seq is {off:+} from RCV.NXT: inside the window it would draw a challenge ACK, beyond it be dropped silently"
        )
    };
    format!(
        "{base}; had the SYN reached it unseen (no SYN-ACK in the capture), it is in SYN_RECV: {then}"
    )
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

    fn states(r: &[(String, Vec<String>)]) -> Vec<&str> {
        r.iter().map(|(s, _)| s.as_str()).collect()
    }

    fn handshake() -> Vec<Segment> {
        vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, S | A, 500, 101, 0),
            seg(3, true, A, 101, 501, 0),
        ]
    }

    #[test]
    fn clean_close_walks_the_rfc_states_and_a_fin_counts_once_acknowledged() {
        let mut segs = handshake();
        segs.extend([
            seg(4, true, F | A, 101, 501, 0),
            seg(5, false, A, 501, 102, 0),
            seg(6, false, F | A, 501, 102, 0),
            seg(7, true, A, 102, 502, 0),
        ]);
        let r = run(segs);
        assert_eq!(
            states(&r),
            [
                "SYN_SENT LISTEN",
                "ESTABLISHED SYN_RECV",
                "ESTABLISHED ESTABLISHED",
                "FIN_WAIT1 ESTABLISHED",
                "FIN_WAIT2 CLOSE_WAIT",
                "FIN_WAIT2 LAST_ACK",
                "TIME_WAIT CLOSE",
            ]
        );
        assert!(r.iter().all(|(_, n)| n.is_empty()), "{r:?}");
    }

    #[test]
    fn crossing_fins_are_a_simultaneous_close_on_both_sides() {
        let mut segs = handshake();
        segs.extend([
            seg(4, true, F | A, 101, 501, 0),
            // the server's FIN acknowledges only up to the client's FIN, not the FIN itself
            seg(5, false, F | A, 501, 101, 0),
            seg(6, true, A, 102, 502, 0),
            seg(7, false, A, 502, 102, 0),
        ]);
        let r = run(segs);
        assert_eq!(
            states(&r)[3..],
            [
                "FIN_WAIT1 ESTABLISHED",
                "FIN_WAIT1 FIN_WAIT1",
                "CLOSING FIN_WAIT2",
                "TIME_WAIT TIME_WAIT",
            ]
        );
        assert!(r[4].1[0].starts_with("simultaneous close"), "{:?}", r[4]);
        // the client's ACK reaches the server before its FIN is shown to: both outcomes are said
        assert!(
            r[5].1[0].contains(
                "FIN_WAIT2 if the client's FIN has not reached it yet, in TIME_WAIT if it has"
            ),
            "{:?}",
            r[5]
        );
    }

    #[test]
    fn a_fin_sent_again_leaves_its_peer_where_it_was_until_acknowledged() {
        let mut segs = handshake();
        segs.extend([
            seg(4, true, F | A, 101, 501, 0),
            seg(5, true, F | A, 101, 501, 0),
            seg(6, true, F | A, 101, 501, 0),
            seg(7, false, A, 501, 102, 0),
        ]);
        let r = run(segs);
        assert_eq!(
            states(&r)[3..],
            [
                "FIN_WAIT1 ESTABLISHED",
                "FIN_WAIT1 ESTABLISHED",
                "FIN_WAIT1 ESTABLISHED",
                "FIN_WAIT2 CLOSE_WAIT",
            ]
        );
        assert!(r[4].1[0].starts_with("retransmitted FIN: no ACK"), "{r:?}");
        assert!(r[4].1[0].contains("ESTABLISHED if the FIN was lost, CLOSE_WAIT"));
    }

    #[test]
    fn crossing_syns_are_a_simultaneous_open() {
        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, S, 500, 0, 0),
            seg(3, true, S | A, 100, 501, 0),
            seg(4, false, S | A, 500, 101, 0),
        ]);
        assert_eq!(
            states(&r),
            [
                "SYN_SENT LISTEN",
                "SYN_SENT SYN_SENT",
                "SYN_RECV SYN_RECV",
                "ESTABLISHED ESTABLISHED",
            ]
        );
        assert!(r[2].1[0].starts_with("simultaneous open"), "{r:?}");
        assert!(r[3].1[0].starts_with("simultaneous open"), "{r:?}");
        assert!(
            r.iter()
                .flat_map(|(_, n)| n)
                .all(|n| !n.contains("retransmitted"))
        );
    }

    #[test]
    fn a_duplicate_syn_after_the_close_restarts_nothing() {
        let mut segs = handshake();
        segs.extend([
            seg(4, true, F | A, 101, 501, 0),
            seg(5, false, F | A, 501, 102, 0),
            seg(6, true, A, 102, 502, 0),
            seg(7, true, S, 100, 0, 0),
        ]);
        let r = run(segs);
        assert_eq!(r[6].0, "TIME_WAIT CLOSE");
        assert!(r[6].1[0].starts_with("duplicate SYN"), "{:?}", r[6]);
    }

    #[test]
    fn rst_in_syn_sent_counts_only_when_it_acknowledges_the_syn() {
        // ACK equal to the SYN's own number (not > ISS): dropped, and the handshake goes on
        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, R | A, 7, 100, 0),
            seg(3, false, R, 7, 0, 0),
            seg(4, false, S | A, 500, 101, 0),
            seg(5, true, A, 101, 501, 0),
        ]);
        assert_eq!(
            states(&r),
            [
                "SYN_SENT LISTEN",
                "SYN_SENT LISTEN",
                "SYN_SENT LISTEN",
                "ESTABLISHED SYN_RECV",
                "ESTABLISHED ESTABLISHED"
            ]
        );
        assert!(r[1].1[0].starts_with("RST dropped: in SYN_SENT"), "{r:?}");
        assert!(r[1].1[0].contains("ISS+0"), "{r:?}");
        assert!(r[2].1[0].contains("only with an ACK"), "{r:?}");

        let r = run(vec![
            seg(1, true, S, 100, 0, 0),
            seg(2, false, R | A, 0, 101, 0),
        ]);
        assert!(r[1].1[0].starts_with("connection refused"));
        assert_eq!(r[1].0, "CLOSE CLOSE");
        assert_eq!(
            r[0].0, "SYN_SENT CLOSE",
            "nothing listened: the server was never in LISTEN"
        );
    }

    #[test]
    fn a_listener_ignores_rst_and_windows_decide_the_rest() {
        let r = run(vec![seg(1, true, S, 100, 0, 0), seg(2, true, R, 100, 0, 0)]);
        assert_eq!(r[1].0, "CLOSE LISTEN");
        assert!(r[1].1[0].starts_with("RST ignored: the server is in LISTEN"));
        assert!(!r[1].1[0].contains("challenge ACK and"), "{r:?}");

        // the server advertises a window of 1000 bytes (testing::seg's default window)
        let mut segs = handshake();
        segs.push(seg(4, false, R, 510, 0, 0));
        segs.push(seg(5, false, R, 9_999_999, 0, 0));
        segs.push(seg(6, false, R, 400, 0, 0));
        let r = run(segs);
        assert!(r[3].1[0].contains("challenge ACK"), "{:?}", r[3]);
        // nothing from the client after it: the challenge ACK is not in the capture, and the note says so
        assert!(
            r[3].1[1].starts_with("no challenge ACK from the client follows"),
            "{:?}",
            r[3]
        );
        assert!(r[4].1[0].starts_with("RST out of the window"), "{:?}", r[4]);
        assert!(r[5].1[0].contains("drops it silently"), "{:?}", r[5]);
        assert!(
            r[3..].iter().all(|(s, _)| s == "ESTABLISHED CLOSE"),
            "{r:?}"
        );
    }

    #[test]
    fn a_challenge_ack_is_named_only_when_it_follows() {
        let mut segs = handshake();
        segs.push(seg(4, false, R, 510, 0, 0));
        segs.push(seg(5, true, A, 101, 501, 0));
        let r = run(segs.clone());
        assert!(r[3].1[1].contains("pure ACK"), "{:?}", r[3]);
        assert!(
            r[3].1[1].contains("likely that challenge ACK"),
            "{:?}",
            r[3]
        );
        // data is no challenge ACK
        segs[4] = seg(5, true, A, 101, 501, 10);
        let r = run(segs);
        assert!(r[3].1[1].starts_with("no challenge ACK"), "{:?}", r[3]);
    }

    #[test]
    fn syn_with_fin_is_read_as_the_syn_then_the_fin() {
        let r = run(vec![
            seg(1, true, S | F, 100, 0, 0),
            seg(2, true, S | F, 100, 0, 0),
        ]);
        assert_eq!(r[0].0, "FIN_WAIT1 LISTEN");
        assert_eq!(r[1].0, "SYN_SENT LISTEN", "a repeated FIN changes nothing");
        assert_eq!(r[1].1[0], "retransmitted SYN");
        assert!(r[1].1[1].starts_with("retransmitted FIN"));
    }

    #[test]
    fn data_after_fin_and_the_rst_answering_it() {
        let mut segs = handshake();
        segs.extend([
            seg(4, false, F | A, 501, 101, 0),
            seg(5, true, A, 101, 502, 0),
            seg(6, true, P | A, 101, 502, 5),
            seg(7, false, R, 502, 0, 0),
        ]);
        let r = run(segs);
        assert!(r[5].1[0].starts_with("data after FIN"), "{r:?}");
        assert!(r[6].1[0].starts_with("RST answering data sent after close"));
        assert_eq!(r[6].0, "CLOSE CLOSE");
    }
}
