//! Resets no call of the application caused: a keepalive timer that gave up, a socket destroyed from outside
//! (SOCK_DESTROY), a listener answering a segment that crossed its connection's close. Why each came, in words, from what the timeline shows; [`crate::explain::story`] tells them.

use crate::explain::rows::{RowKind, Timeline, WireRow};
use crate::model::calls::{CallKind, Peer};
use crate::model::segment::TimestampNs;

/// `peer`'s first RST of the connection's own: not one its listener sent back at a segment that crossed the close
/// (unless that is the only one).
pub fn own_rst(t: &Timeline, peer: Peer) -> Option<&WireRow> {
    t.segments()
        .find(|w| w.from == peer && w.segment.flags.rst() && !from_listener(t, w))
        .or_else(|| {
            t.segments()
                .find(|w| w.from == peer && w.segment.flags.rst())
        })
}

/// A RST sent by `w.from`'s listening socket: a segment of the other side's that found the connection socket
/// already unhashed by close() went to the listener, which answers an ACK with RST (`TCP_FLAGS` on 6.x).
fn from_listener(t: &Timeline, w: &WireRow) -> bool {
    w.segment.flags.rst()
        && t.rows
            .iter()
            .filter(|r| r.t == w.segment.ts)
            .any(|r| matches!(&r.kind, RowKind::Kernel(k) if k.peer == w.from && k.from_listener()))
}

/// What each RST a listener sent back says (see [`own_rst`]): not a second close, a race inside the kernel.
pub fn listener_answers(t: &Timeline, at: impl Fn(TimestampNs) -> String) -> Vec<String> {
    t.segments()
        .filter(|w| from_listener(t, w))
        .map(|w| {
            let (peer, other) = (w.from, w.from.other());
            format!(
                "{peer}'s listening socket also sent RST [{}] at {}: a segment of {other}'s arrived after \
                 {peer}'s connection socket was gone and was answered by the listener (the kernel's reason: {}), \
                 a race inside the kernel, not a second close.",
                w.segment.flags.tcpdump(),
                at(w.segment.ts),
                t.reset_reason(w).unwrap_or("none given")
            )
        })
        .collect()
}

/// `peer`'s keepalive gave up: the empty probes on the wire before its RST, and what its call got.
pub fn keepalive_timeout(t: &Timeline, peer: Peer, rst: &WireRow) -> Vec<String> {
    let last_data = t
        .segments()
        .filter(|x| x.segment.ts < rst.segment.ts)
        .filter(|x| x.segment.len > 0 || x.segment.flags.syn() || x.segment.flags.fin())
        .map(|x| x.segment.ts)
        .last()
        .unwrap_or(i64::MIN);
    let probes = t
        .segments()
        .filter(|x| x.from == peer && x.segment.ts > last_data && x.segment.ts < rst.segment.ts)
        // a probe is empty and one byte behind what was acknowledged (RFC 9293 3.8.4), so the peer must answer
        .filter(|x| x.segment.len == 0 && x.segment.seq + 1 == rst.segment.seq)
        .count();
    let answered = t
        .segments()
        .any(|x| x.from != peer && x.segment.ts > last_data && x.segment.ts < rst.segment.ts);
    let got = t
        .calls()
        .find(|c| c.peer == peer && c.t_end > rst.segment.ts && c.errno().is_some())
        .map_or(String::new(), |c| {
            let errno = crate::model::calls::errno_name(c.errno().unwrap_or(0));
            format!("; {peer}'s {} failed with {errno}", c.call)
        });
    let silence = if answered {
        "some were answered"
    } else {
        "none was answered"
    };
    vec![
        format!(
            "Why: the connection was idle and {peer} had keepalive on: its kernel sent {probes} probe(s) \
             and {silence}; it gave up, reset the connection{got}."
        ),
        "Fix: this is keepalive doing its job — a vanished peer is noticed. Without it an idle connection to a \
         peer that is gone stays ESTABLISHED for ever."
            .to_string(),
    ]
}

/// `peer`'s socket was destroyed from outside: what each side's next call returned, as recorded.
pub fn destroyed(t: &Timeline, peer: Peer) -> Vec<String> {
    let after = t
        .calls()
        .find(|c| c.kind == CallKind::Destroy && c.peer == peer)
        .map_or(i64::MIN, |c| c.t_end);
    let felt: Vec<String> = [peer, peer.other()]
        .into_iter()
        .filter_map(|p| {
            let c = t
                .calls()
                .find(|c| c.peer == p && c.t_start >= after && c.errno().is_some())?;
            let errno = crate::model::calls::errno_name(c.errno().unwrap_or(0));
            Some(format!("{p}'s {} failed with {errno}", c.call))
        })
        .collect();
    let felt = if felt.is_empty() {
        String::new()
    } else {
        format!(": {}", felt.join(", "))
    };
    vec![
        format!(
            "Why: {peer}'s socket was destroyed from outside (SOCK_DESTROY through sock_diag, what ss -K \
             does), and Linux aborts it as a failed connection{felt}."
        ),
        "Fix: nothing in the applications; find who destroys sockets (ss -K, a tool that kills connections \
         on a link change)."
            .to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::timeline::{States, build};
    use crate::model::calls::Outcome;
    use crate::model::segment::TcpFlags;
    use crate::testing::{call, seg, sides};

    #[test]
    fn unanswered_probes_are_counted_and_the_call_that_failed_is_named() {
        const ACK: u16 = TcpFlags::ACK;
        let segments = [
            seg(10, Peer::A, TcpFlags::SYN, 0, 0, b""),
            seg(20, Peer::B, TcpFlags::SYN | ACK, 0, 1, b""),
            seg(30, Peer::A, ACK, 1, 1, b""),
            // probes: one byte behind what was acknowledged
            seg(1_000, Peer::A, ACK, 0, 1, b""),
            seg(2_000, Peer::A, ACK, 0, 1, b""),
            seg(3_000, Peer::A, TcpFlags::RST | ACK, 1, 1, b""),
        ];
        let calls = [call(
            Peer::A,
            CallKind::Recv,
            (40, 3_100),
            Outcome::Err {
                errno: libc::ETIMEDOUT,
            },
        )];
        let t = build(sides(), &calls, &segments, States::Recorded);
        let rst = t.segments().find(|w| w.segment.flags.rst()).unwrap();
        let text = keepalive_timeout(&t, Peer::A, rst).join("\n");
        assert!(
            text.contains("sent 2 probe(s) and none was answered"),
            "{text}"
        );
        assert!(text.contains("A's recv() failed with ETIMEDOUT"), "{text}");
    }
}
