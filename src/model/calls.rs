//! Socket calls as recorded: what an application asked of its socket, when, and what came back.
//!
//! The demo pair produces these (and a saved run carries them); the timeline and renderers only read them.

use std::fmt;

use serde::Serialize;

use crate::model::segment::{TimestampNs, preview};
use crate::model::tcp_state::TcpState;

/// One of the two applications: A (the client, left column) or B (the server, right column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Peer {
    A,
    B,
}

impl Peer {
    pub fn other(self) -> Peer {
        match self {
            Peer::A => Peer::B,
            Peer::B => Peer::A,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Peer::A => "A",
            Peer::B => "B",
        })
    }
}

/// Which socket operation a call was; the text of the call (with its arguments) is in [`SocketCall::call`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CallKind {
    Connect,
    Accept,
    Send,
    Recv,
    Shutdown,
    Close,
    SetSockOpt,
    /// Not the application's own call: the kernel asked from outside to destroy the socket (SOCK_DESTROY through
    /// sock_diag, what `ss -K` does).
    Destroy,
}

impl CallKind {
    pub const ALL: [CallKind; 8] = [
        CallKind::Connect,
        CallKind::Accept,
        CallKind::Send,
        CallKind::Recv,
        CallKind::Shutdown,
        CallKind::Close,
        CallKind::SetSockOpt,
        CallKind::Destroy,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CallKind::Connect => "connect",
            CallKind::Accept => "accept",
            CallKind::Send => "send",
            CallKind::Recv => "recv",
            CallKind::Shutdown => "shutdown",
            CallKind::Close => "close",
            CallKind::SetSockOpt => "setsockopt",
            CallKind::Destroy => "sock_destroy",
        }
    }

    pub fn from_name(name: &str) -> Option<CallKind> {
        CallKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What a call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The call succeeded with this return value; `data` holds the bytes received or sent, if any.
    Ok { ret: i64, data: Vec<u8> },
    /// The call failed (-1) with this errno.
    Err { errno: i32 },
}

/// One socket call of A or B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketCall {
    pub peer: Peer,
    pub kind: CallKind,
    /// The call as a C programmer would write it: `recv(64)`, `shutdown(SHUT_WR)`.
    pub call: String,
    /// Clock read just before the call was made.
    pub t_start: TimestampNs,
    /// Clock read just after it returned.
    pub t_end: TimestampNs,
    pub outcome: Outcome,
    /// The socket's kernel state right after the call (TCP_INFO, or /proc/net/tcp once the fd is closed).
    pub state: Option<TcpState>,
    /// Received bytes still unread in the socket just before this call (recorded before `close()`).
    pub unread_before: Option<u32>,
}

impl SocketCall {
    /// The value the call returned: -1 for an error.
    pub fn ret(&self) -> i64 {
        match self.outcome {
            Outcome::Ok { ret, .. } => ret,
            Outcome::Err { .. } => -1,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self.outcome {
            Outcome::Err { errno } => Some(errno),
            Outcome::Ok { .. } => None,
        }
    }

    pub fn data(&self) -> &[u8] {
        match &self.outcome {
            Outcome::Ok { data, .. } => data,
            Outcome::Err { .. } => &[],
        }
    }

    /// `= 12 "hello…"`, `= 0 (end of stream)`, `= -1 ECONNRESET (Connection reset by peer)`.
    pub fn result_text(&self) -> String {
        match &self.outcome {
            Outcome::Err { errno } => {
                format!("= -1 {} ({})", errno_name(*errno), errno_message(*errno))
            }
            Outcome::Ok { ret, data } => {
                if self.kind == CallKind::Recv && *ret == 0 {
                    "= 0 (end of stream)".to_string()
                } else if data.is_empty() {
                    format!("= {ret}")
                } else {
                    format!("= {ret} \"{}\"", preview(data, 16))
                }
            }
        }
    }
}

/// The symbolic name of an errno value (`ECONNRESET`); `E<n>` for one we do not name.
pub fn errno_name(errno: i32) -> String {
    let name = match errno {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::EINTR => "EINTR",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::EACCES => "EACCES",
        libc::EFAULT => "EFAULT",
        libc::EINVAL => "EINVAL",
        libc::EPIPE => "EPIPE",
        libc::ENOTSOCK => "ENOTSOCK",
        libc::EADDRINUSE => "EADDRINUSE",
        libc::EADDRNOTAVAIL => "EADDRNOTAVAIL",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::ECONNABORTED => "ECONNABORTED",
        libc::ECONNRESET => "ECONNRESET",
        libc::ENOTCONN => "ENOTCONN",
        libc::ESHUTDOWN => "ESHUTDOWN",
        libc::ETIMEDOUT => "ETIMEDOUT",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::EALREADY => "EALREADY",
        libc::EINPROGRESS => "EINPROGRESS",
        libc::EISCONN => "EISCONN",
        _ => return format!("E{errno}"),
    };
    name.to_string()
}

/// The C library's message for an errno value (`Connection reset by peer`).
pub fn errno_message(errno: i32) -> String {
    let full = std::io::Error::from_raw_os_error(errno).to_string();
    // std appends " (os error N)"
    match full.rfind(" (os error") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(kind: CallKind, outcome: Outcome) -> SocketCall {
        SocketCall {
            peer: Peer::A,
            kind,
            call: "x".into(),
            t_start: 0,
            t_end: 1,
            outcome,
            state: None,
            unread_before: None,
        }
    }

    #[test]
    fn results_read_like_strace() {
        let reset = call(
            CallKind::Recv,
            Outcome::Err {
                errno: libc::ECONNRESET,
            },
        );
        assert_eq!(
            reset.result_text(),
            "= -1 ECONNRESET (Connection reset by peer)"
        );
        assert_eq!(reset.ret(), -1);
        let eof = call(
            CallKind::Recv,
            Outcome::Ok {
                ret: 0,
                data: vec![],
            },
        );
        assert_eq!(eof.result_text(), "= 0 (end of stream)");
        let got = call(
            CallKind::Recv,
            Outcome::Ok {
                ret: 3,
                data: b"OK\n".to_vec(),
            },
        );
        assert_eq!(got.result_text(), "= 3 \"OK\\n\"");
        let closed = call(
            CallKind::Close,
            Outcome::Ok {
                ret: 0,
                data: vec![],
            },
        );
        assert_eq!(closed.result_text(), "= 0");
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::EPIPE), "EPIPE");
        assert_eq!(errno_name(libc::ECONNREFUSED), "ECONNREFUSED");
        assert_eq!(errno_name(9999), "E9999");
        assert_eq!(errno_message(libc::EPIPE), "Broken pipe");
    }
}
