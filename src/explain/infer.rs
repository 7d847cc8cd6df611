//! The TCP state each side must be in after each segment of a captured connection, and the notes worth a
//! reader's attention (RFC 9293 §3.3.2 transitions, driven only by what the wire shows).
//!
//! A capture sees segments, not sockets: a segment is taken as delivered, so after it the sender is in the state
//! sending it implies and the receiver in the state receiving it implies. A RST the receiver would not accept
//! (RFC 5961: only one at exactly the next expected sequence number) leaves the receiver's state alone.

use crate::explain::timeline::{RowKind, Timeline, WireRow};
use crate::model::calls::Peer;
use crate::model::segment::SeqNumber;
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

/// Fill `states_after` and `notes` of every segment row, A being the client and B the server.
pub fn annotate(t: &mut Timeline) {
    let (a_name, b_name) = ("client", "server");
    let name = |p: Peer| if p == Peer::A { a_name } else { b_name };
    let first = t.segments().next().map(|w| w.segment.flags);
    let mut state = match first {
        Some(f) if f.syn() && !f.ack() => [TcpState::Closed, TcpState::Listen],
        Some(f) if f.syn() && f.ack() => [TcpState::SynSent, TcpState::Listen],
        // Mid-stream: the handshake happened before the capture started.
        _ => [TcpState::Established, TcpState::Established],
    };
    let mut sent = [Sent::default(); 2];
    for row in &mut t.rows {
        let RowKind::Segment(w) = &mut row.kind else {
            continue;
        };
        let x = w.from as usize;
        let y = w.from.other() as usize;
        let notes = step(
            w,
            &mut state,
            &mut sent,
            x,
            y,
            name(w.from),
            name(w.from.other()),
        );
        w.notes.extend(notes);
        w.states_after = Some((state[0], state[1]));
    }
}

fn step(
    w: &WireRow,
    state: &mut [TcpState; 2],
    sent: &mut [Sent; 2],
    x: usize,
    y: usize,
    xname: &str,
    yname: &str,
) -> Vec<String> {
    use TcpState::*;
    let s = &w.segment;
    let f = s.flags;
    let mut notes = Vec::new();

    if f.rst() {
        // Which sequence number the receiver expects from the sender.
        let expected = if f.ack() && sent[x].next.is_none() && state[y] == SynSent {
            None
        } else {
            sent[x].next.or(sent[y].acked)
        };
        // The receiver's own last ACK shows its RCV.NXT too (it may not have taken a FIN in yet).
        let accepted = match expected {
            None => true,
            Some(e) => {
                s.seq == e || sent[y].acked == Some(s.seq) || (state[y] == SynSent && f.ack())
            }
        };
        if state[y] == SynSent && sent[y].isn.is_some() && sent[x].isn.is_none() {
            notes.push(format!(
                "connection refused: the {xname} answers the SYN with RST"
            ));
        } else if !accepted {
            let off = s.seq.0.wrapping_sub(expected.map_or(0, |e| e.0)) as i32;
            if off.unsigned_abs() < (1 << 30) {
                notes.push(format!(
                    "RST ignored: seq is {off:+} from what the {yname} expects (RFC 5961: challenge ACK, connection kept)"
                ));
            } else {
                notes.push(format!("RST out of window: the {yname} ignores it"));
            }
        } else if sent[x].fin.is_some() && sent[x].data_in_after_fin {
            notes.push(format!(
                "RST answering data sent after close: the {xname} had closed (FIN), so the {yname}'s later data is refused"
            ));
        } else if sent[x].fin.is_none() {
            let peer_bytes = acked_bytes(&sent[x], &sent[y]);
            if peer_bytes > 0 {
                notes.push(format!(
                    "RST with {peer_bytes} bytes of the {yname}'s data acknowledged but no FIN: a close() with unread data (or SO_LINGER 0) aborts like this"
                ));
            }
        }
        if matches!(state[y], Closed | TimeWait) && accepted {
            notes.push(format!("RST after the {yname} had already closed"));
        }
        if s.len > 0 {
            notes.push(format!(
                "RST carries {} bytes (a diagnostic, not data)",
                s.len
            ));
        }
        state[x] = Closed;
        if accepted {
            state[y] = Closed;
        }
        note_ack(&mut sent[x], w);
        return notes;
    }

    if f.syn() {
        let repeat = sent[x].isn == Some(s.seq);
        if repeat {
            notes.push(format!(
                "retransmitted {}",
                if f.ack() { "SYN-ACK" } else { "SYN" }
            ));
        }
        sent[x].isn = Some(s.seq);
        if f.ack() {
            state[x] = SynReceived;
            if state[y] == SynSent {
                // The client answers the SYN-ACK with an ACK at once.
                state[y] = Established;
            }
        } else {
            state[x] = SynSent;
            if matches!(state[y], Closed) {
                state[y] = Listen;
            }
        }
    } else if f.ack() {
        if state[x] == SynSent {
            state[x] = Established;
        }
        if state[y] == SynReceived
            && sent[y]
                .isn
                .is_some_and(|isn| s.ack.since(isn) >= 1 && s.ack.since(isn) < 1 << 31)
        {
            state[y] = Established;
        }
    }

    // Does this segment acknowledge the receiver's FIN?
    if f.ack()
        && let Some(fin) = sent[y].fin
        && s.ack.since(fin) >= 1
        && s.ack.since(fin) < 1 << 31
    {
        state[y] = match state[y] {
            FinWait1 => FinWait2,
            Closing => TimeWait,
            LastAck => Closed,
            other => other,
        };
    }

    if s.len > 0 {
        let start = if f.syn() { s.seq + 1 } else { s.seq };
        if let Some(fin) = sent[x].fin
            && start.since(fin) < 1 << 31
        {
            notes.push(format!(
                "data after FIN: the {xname} had already sent its FIN"
            ));
        }
        if sent[y].fin.is_some() {
            sent[y].data_in_after_fin = true;
            if matches!(
                state[y],
                TimeWait | Closed | FinWait2 | FinWait1 | Closing | LastAck
            ) {
                notes.push(format!(
                    "data after FIN: sent after the {yname}'s FIN (fine if the {yname} only shut down writing)"
                ));
            }
        }
        sent[x].data += u64::from(s.len);
    }

    if f.fin() {
        let fin_seq = s.seq + s.len + u32::from(f.syn());
        if sent[x].fin == Some(fin_seq) {
            notes.push("retransmitted FIN".to_string());
        } else {
            sent[x].fin = Some(fin_seq);
            state[x] = match state[x] {
                CloseWait => LastAck,
                Closed | TimeWait | LastAck | Closing | FinWait1 | FinWait2 => state[x],
                _ => FinWait1,
            };
            let acks_ours = sent[y]
                .fin
                .is_some_and(|yf| f.ack() && s.ack.since(yf) >= 1 && s.ack.since(yf) < 1 << 31);
            state[y] = match state[y] {
                Established | SynReceived | SynSent => CloseWait,
                FinWait1 if acks_ours => TimeWait,
                FinWait1 => Closing,
                FinWait2 => TimeWait,
                other => other,
            };
        }
    }

    let end = s.seq + s.seq_len();
    sent[x].next = Some(match sent[x].next {
        Some(n) if n.since(end) < 1 << 31 => n,
        _ => end,
    });
    note_ack(&mut sent[x], w);
    notes
}

fn note_ack(me: &mut Sent, w: &WireRow) {
    let s = &w.segment;
    if s.flags.ack() {
        me.acked = Some(match me.acked {
            Some(a) if a.since(s.ack) < 1 << 31 => a,
            _ => s.ack,
        });
    }
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
    use crate::explain::timeline::{Sides, build};
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
        let mut t = build(sides(), &[], &segs);
        annotate(&mut t);
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
