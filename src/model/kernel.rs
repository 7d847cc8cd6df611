//! What the kernel itself said about a connection, read from its tracepoints (tracefs): the resets it sent and
//! received with its own reason, every TCP state change, and the errno it handed to the application's socket.
//!
//! Plain data, filled by `os::tracefs`. Times are CLOCK_REALTIME ns, like captured segments and socket calls, so
//! the three sources sit on one timeline. Reset reasons stay the kernel's own names (`TCP_ABORT_ON_CLOSE`): the
//! numbers behind them change between kernels, the names do not.

use std::fmt;
use std::net::SocketAddr;

use crate::model::segment::TimestampNs;
use crate::model::tcp_state::TcpState;

/// One event from the kernel, stamped on the CLOCK_REALTIME timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelEvent {
    pub ts: TimestampNs,
    pub what: KernelEventKind,
}

/// The tracepoints we read. `src` is always the socket the event is about (its own address), `dst` its peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEventKind {
    /// `tcp:tcp_send_reset`: the kernel sent a RST from `src` to `dst`. `reason` is the `enum sk_rst_reason` name
    /// (see [`reset_reason_meaning`]); `state` is the sending socket's state, `None` when no socket sent it
    /// (NO_SOCKET: nothing listens on `src`).
    SendReset {
        reason: String,
        state: Option<TcpState>,
        src: SocketAddr,
        dst: SocketAddr,
    },
    /// `tcp:tcp_receive_reset`: the socket at `src` was reset by a RST from `dst` (the kernel also fires it on the
    /// side that aborts for TCP_ABORT_ON_DATA).
    ReceiveReset { src: SocketAddr, dst: SocketAddr },
    /// `sock:inet_sock_set_state` for TCP: the socket at `src` moved from `old` to `new`.
    StateChange {
        old: TcpState,
        new: TcpState,
        src: SocketAddr,
        dst: SocketAddr,
    },
    /// `sock:inet_sk_error_report`: the kernel set `errno` on the socket at `src`; the application's next call on
    /// it fails with that error (see [`errno_name`]). 0 is a report with no error left pending.
    ErrorReport {
        errno: i32,
        src: SocketAddr,
        dst: SocketAddr,
    },
}

impl KernelEventKind {
    /// The socket the event is about.
    pub fn src(&self) -> SocketAddr {
        match self {
            KernelEventKind::SendReset { src, .. }
            | KernelEventKind::ReceiveReset { src, .. }
            | KernelEventKind::StateChange { src, .. }
            | KernelEventKind::ErrorReport { src, .. } => *src,
        }
    }

    /// Its peer.
    pub fn dst(&self) -> SocketAddr {
        match self {
            KernelEventKind::SendReset { dst, .. }
            | KernelEventKind::ReceiveReset { dst, .. }
            | KernelEventKind::StateChange { dst, .. }
            | KernelEventKind::ErrorReport { dst, .. } => *dst,
        }
    }

    /// The event's name in JSON and saved runs: `send_reset`, `receive_reset`, `state`, `error_report`.
    pub fn name(&self) -> &'static str {
        match self {
            KernelEventKind::SendReset { .. } => "send_reset",
            KernelEventKind::ReceiveReset { .. } => "receive_reset",
            KernelEventKind::StateChange { .. } => "state",
            KernelEventKind::ErrorReport { .. } => "error_report",
        }
    }

    /// The event in words, for `who`'s socket (`A`, `B`): `B's kernel sends RST — reason TCP_ABORT_ON_CLOSE (closed
    /// with unread data)`, `A's socket: ESTABLISHED → CLOSE`, `kernel reports ECONNRESET to A's socket`.
    pub fn describe(&self, who: &str) -> String {
        match self {
            KernelEventKind::SendReset { reason, .. } => match reset_reason_short(reason) {
                Some(short) => format!("{who}'s kernel sends RST — reason {reason} ({short})"),
                None => format!("{who}'s kernel sends RST — reason {reason}"),
            },
            KernelEventKind::ReceiveReset { .. } => {
                format!("{who}'s kernel receives the RST: the connection is reset")
            }
            KernelEventKind::StateChange {
                old: TcpState::Listen,
                new: TcpState::Closed,
                ..
            } => format!("{who}'s listening socket: LISTEN → CLOSE"),
            KernelEventKind::StateChange { old, new, .. } => {
                format!("{who}'s socket: {old} → {new}")
            }
            KernelEventKind::ErrorReport { errno: 0, .. } => {
                format!("kernel reports no error left pending to {who}'s socket (0)")
            }
            KernelEventKind::ErrorReport { errno, .. } => format!(
                "kernel reports {} to {who}'s socket",
                errno_name(*errno).map_or_else(|| format!("errno {errno}"), str::to_string)
            ),
        }
    }

    /// Whether either end of the event uses `port`.
    pub fn touches_port(&self, port: u16) -> bool {
        self.src().port() == port || self.dst().port() == port
    }
}

impl fmt::Display for KernelEventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KernelEventKind::SendReset {
                reason,
                state,
                src,
                dst,
            } => {
                write!(f, "kernel sends RST {src} → {dst}: {reason}")?;
                match state {
                    Some(s) => write!(f, " (socket in {s})"),
                    None => write!(f, " (no socket)"),
                }
            }
            KernelEventKind::ReceiveReset { src, dst } => {
                write!(f, "kernel: {src} reset by RST from {dst}")
            }
            KernelEventKind::StateChange { old, new, src, dst } => {
                write!(f, "kernel: {src} (peer {dst}) {old} → {new}")
            }
            KernelEventKind::ErrorReport { errno, src, dst } => write!(
                f,
                "kernel reports {} ({errno}) to the socket {src} (peer {dst})",
                errno_name(*errno).unwrap_or("errno")
            ),
        }
    }
}

/// What one run's kernel trace holds: the events in time order, and what the kernel could not give us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelTrace {
    pub events: Vec<KernelEvent>,
    /// Events the kernel dropped or overwrote before we read them (its buffer was full): the trace has gaps.
    pub lost_events: u64,
    /// Lines the kernel printed that we could not read, kept verbatim for a bug report.
    pub unreadable: Vec<String>,
}

/// The kernel's own plain-language line for a reset reason, from the comments of `enum sk_rst_reason`
/// (include/net/rstreason.h, Linux 6.10 onwards). `None` for a name this table does not know yet.
pub fn reset_reason_meaning(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "NOT_SPECIFIED" => "reset reason is not specified",
        "NO_SOCKET" => "no valid socket that can be used (nothing listens on that port)",
        "TCP_INVALID_ACK_SEQUENCE" => {
            "not acceptable ACK: the ack number is not between snd_una and snd_nxt"
        }
        "TCP_RFC7323_PAWS" => "PAWS check failed (timestamp older than the last one seen)",
        "TCP_TOO_OLD_ACK" => "TCP ACK is too old",
        "TCP_ACK_UNSENT_DATA" => "TCP ACK for data we haven't sent yet",
        "TCP_FLAGS" => "TCP flags invalid",
        "TCP_OLD_ACK" => "TCP ACK is old, but in window",
        "TCP_ABORT_ON_DATA" => {
            "abort on data: data arrived for a socket already closed by its application"
        }
        "TCP_TIMEWAIT_SOCKET" => "happened on the TIME-WAIT socket",
        "INVALID_SYN" => "received a bad SYN: a SYN in the window of a synchronized connection",
        "TCP_ABORT_ON_CLOSE" => {
            "abort on close: the application closed with unread data in the receive queue"
        }
        // Linux sends it from close() in FIN-WAIT-2 when TCP_LINGER2 < 0 (tcp.c, __tcp_close): no timer runs.
        "TCP_ABORT_ON_LINGER" => {
            "abort on linger: closed in FIN-WAIT-2 with TCP_LINGER2 below 0, so no waiting for the peer's FIN"
        }
        "TCP_ABORT_ON_MEMORY" => {
            "abort on memory: too many orphaned sockets or out of socket memory"
        }
        "TCP_STATE" => {
            "abort on TCP state (see RFC 9293 for all reset conditions), e.g. SO_LINGER {1, 0}"
        }
        "TCP_KEEPALIVE_TIMEOUT" => {
            "keepalive timeout: all the chances ran out, the connection is reset"
        }
        "TCP_DISCONNECT_WITH_DATA" => {
            "disconnect while the write queue is not empty: data written but unsent is thrown away"
        }
        "MPTCP_RST_EUNSPEC" => "MPTCP: unspecified error, the subflow is no longer available",
        "MPTCP_RST_EMPTCP" => "MPTCP: error in processing MPTCP options",
        "MPTCP_RST_ERESOURCE" => "MPTCP: lack of resources",
        "MPTCP_RST_EPROHIBIT" => "MPTCP: subflow administratively prohibited",
        "MPTCP_RST_EWQ2BIG" => "MPTCP: too much outstanding data",
        "MPTCP_RST_EBADPERF" => "MPTCP: unacceptable performance",
        "MPTCP_RST_EMIDDLEBOX" => "MPTCP: middlebox interference",
        "ERROR" => "unexpected error happens",
        _ => return None,
    })
}

/// A reset reason in a few words, for a timeline cell (`closed with unread data`); [`reset_reason_meaning`] is the
/// full line. Falls back to the full line, then to nothing, for the reasons a close rarely shows.
pub fn reset_reason_short(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "NO_SOCKET" => "nothing listens on that port",
        "TCP_ABORT_ON_DATA" => "data for a socket its application closed",
        "TCP_ABORT_ON_CLOSE" => "closed with unread data",
        "TCP_ABORT_ON_LINGER" => "closed in FIN-WAIT-2 with TCP_LINGER2 < 0",
        "TCP_STATE" => "aborted in its state, e.g. SO_LINGER {1, 0}",
        "TCP_KEEPALIVE_TIMEOUT" => "keepalive timed out",
        "TCP_DISCONNECT_WITH_DATA" => "disconnected with unsent data",
        _ => return reset_reason_meaning(reason),
    })
}

/// The name of an errno the kernel reports on a TCP socket, for the ones a connection's end produces.
pub fn errno_name(errno: i32) -> Option<&'static str> {
    Some(match errno {
        0 => "no error",
        32 => "EPIPE",
        103 => "ECONNABORTED",
        104 => "ECONNRESET",
        110 => "ETIMEDOUT",
        111 => "ECONNREFUSED",
        113 => "EHOSTUNREACH",
        101 => "ENETUNREACH",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn events_name_their_socket_and_print_the_kernels_words() {
        let e = KernelEventKind::SendReset {
            reason: "TCP_ABORT_ON_CLOSE".into(),
            state: Some(TcpState::Closed),
            src: a("127.0.0.1:8080"),
            dst: a("127.0.0.1:40000"),
        };
        assert_eq!(e.src().port(), 8080);
        assert!(e.touches_port(40000) && !e.touches_port(1));
        assert_eq!(
            e.to_string(),
            "kernel sends RST 127.0.0.1:8080 → 127.0.0.1:40000: TCP_ABORT_ON_CLOSE (socket in CLOSE)"
        );
        let r = KernelEventKind::ErrorReport {
            errno: 104,
            src: a("127.0.0.1:40000"),
            dst: a("127.0.0.1:8080"),
        };
        assert!(r.to_string().contains("ECONNRESET (104)"));
    }

    #[test]
    fn the_reasons_seen_on_a_close_have_a_meaning() {
        for r in [
            "TCP_ABORT_ON_CLOSE",
            "TCP_STATE",
            "NO_SOCKET",
            "TCP_ABORT_ON_DATA",
        ] {
            assert!(reset_reason_meaning(r).is_some(), "{r}");
        }
        assert_eq!(reset_reason_meaning("SOMETHING_NEW"), None);
        assert_eq!(errno_name(111), Some("ECONNREFUSED"));
        assert_eq!(errno_name(5), None);
    }
}
