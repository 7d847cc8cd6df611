//! What the socket calls alone prove about a reset, for a run with no capture (`run --no-capture`): a close()
//! with bytes unread, SO_LINGER {on, 0} then close(), a connect() refused, data sent to a socket its application
//! had closed and then a failed call. Only what the calls show: never a segment's flags or time.

use crate::explain::rows::Timeline;
use crate::model::calls::{CallKind, Peer, SocketCall, errno_name};

/// Why `peer`'s kernel reset the connection, as its calls and the other side's prove it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proof {
    /// `peer` called close() with bytes unread: Linux sends RST instead of FIN.
    UnreadAtClose,
    /// `peer` set SO_LINGER {on, 0 s} and called close(): an abort.
    Linger,
    /// The other side's connect() failed with ECONNREFUSED: `peer`'s address refused the SYN.
    Refused,
    /// `peer` had closed when the other side sent to it, and a later call of the other side failed with EPIPE
    /// or ECONNRESET without its own shutdown() or close() before.
    DataAfterClose,
}

fn close_of(t: &Timeline, peer: Peer) -> Option<&SocketCall> {
    t.calls()
        .find(|c| c.peer == peer && c.kind == CallKind::Close)
}

fn unread_at_close(t: &Timeline, peer: Peer) -> u32 {
    t.calls()
        .filter(|c| c.peer == peer && c.kind == CallKind::Close)
        .filter_map(|c| c.unread_before)
        .sum()
}

/// The reset of `peer`'s kernel the calls prove; `None` when they prove none.
pub fn reset_proof(t: &Timeline, peer: Peer) -> Option<Proof> {
    let other = peer.other();
    let close = close_of(t, peer);
    let after_close = |c: &SocketCall| close.is_some_and(|x| c.t_start > x.t_end);
    let reset_felt = t.calls().any(|c| {
        c.peer == other
            && after_close(c)
            && matches!(c.errno(), Some(libc::EPIPE | libc::ECONNRESET))
    });
    // EPIPE after the other side's own shutdown(SHUT_WR) or close() is its own doing
    let other_stopped = t.calls().any(|c| {
        c.peer == other
            && matches!(c.kind, CallKind::Shutdown | CallKind::Close)
            && c.errno().is_none()
            && close.is_some_and(|x| c.t_start < x.t_end)
    });
    let linger0 = t
        .calls()
        .any(|c| c.peer == peer && c.call.contains("SO_LINGER, {on, 0 s}") && c.errno().is_none());
    let refused = t.calls().any(|c| {
        c.peer == other && c.kind == CallKind::Connect && c.errno() == Some(libc::ECONNREFUSED)
    });
    if close.is_some() && unread_at_close(t, peer) > 0 {
        Some(Proof::UnreadAtClose)
    } else if close.is_some() && linger0 {
        Some(Proof::Linger)
    } else if peer == Peer::B && refused {
        Some(Proof::Refused)
    } else if !other_stopped && reset_felt {
        Some(Proof::DataAfterClose)
    } else {
        None
    }
}

/// The calls that prove `peer`'s reset, in words (empty when they prove none).
pub fn evidence(t: &Timeline, peer: Peer) -> String {
    let other = peer.other();
    let failed = t
        .calls()
        .find(|c| c.peer == other && c.errno().is_some())
        .map_or(String::new(), |c| {
            let errno = errno_name(c.errno().unwrap_or(0));
            format!("; {other}'s {} failed with {errno}", c.call)
        });
    match reset_proof(t, peer) {
        Some(Proof::UnreadAtClose) => {
            let n = unread_at_close(t, peer);
            format!(
                "{peer} called close() with {n} byte{} unread, which on Linux sends RST instead of FIN{failed}",
                if n == 1 { "" } else { "s" }
            )
        }
        Some(Proof::Linger) => {
            format!("{peer} set SO_LINGER {{on, 0 s}} and called close(), which aborts{failed}")
        }
        Some(Proof::Refused) => format!(
            "{other}'s connect() failed with ECONNREFUSED, the answer to a SYN refused with RST"
        ),
        Some(Proof::DataAfterClose) => {
            format!("{peer} had closed its socket when {other} sent to it{failed}")
        }
        None => String::new(),
    }
}
