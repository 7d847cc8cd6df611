//! The socket options and shutdown directions a scenario can ask for, as values, and the one setsockopt(2) of an
//! int; `socket.rs` makes the recorded calls with them.

use std::os::fd::RawFd;

/// The `how` of shutdown(2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shut {
    Read,
    Write,
    Both,
}

impl Shut {
    pub fn name(self) -> &'static str {
        match self {
            Shut::Read => "SHUT_RD",
            Shut::Write => "SHUT_WR",
            Shut::Both => "SHUT_RDWR",
        }
    }

    pub(super) fn raw(self) -> libc::c_int {
        match self {
            Shut::Read => libc::SHUT_RD,
            Shut::Write => libc::SHUT_WR,
            Shut::Both => libc::SHUT_RDWR,
        }
    }
}

/// A socket option the scenarios set: the ones whose effect shows at the end of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockOpt {
    /// SO_LINGER: `None` off, `Some(s)` on with a linger time of s seconds (0: close() resets).
    Linger(Option<u16>),
    /// TCP_LINGER2: seconds an orphan stays in FIN_WAIT2; -1 resets at close() instead.
    Linger2(i32),
    KeepAlive(bool),
    KeepIdle(i32),
    KeepIntvl(i32),
    KeepCnt(i32),
    /// TCP_USER_TIMEOUT in ms.
    UserTimeout(i32),
    RcvBuf(i32),
    NoDelay(bool),
    /// SO_REUSEADDR: here, so that A can bind the port B's placeholder holds (self-connect).
    ReuseAddr(bool),
}

impl SockOpt {
    /// (level, name, its name in text) of the option.
    pub(super) fn key(self) -> (libc::c_int, libc::c_int, &'static str) {
        match self {
            SockOpt::Linger(_) => (libc::SOL_SOCKET, libc::SO_LINGER, "SO_LINGER"),
            SockOpt::Linger2(_) => (libc::IPPROTO_TCP, libc::TCP_LINGER2, "TCP_LINGER2"),
            SockOpt::KeepAlive(_) => (libc::SOL_SOCKET, libc::SO_KEEPALIVE, "SO_KEEPALIVE"),
            SockOpt::KeepIdle(_) => (libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, "TCP_KEEPIDLE"),
            SockOpt::KeepIntvl(_) => (libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, "TCP_KEEPINTVL"),
            SockOpt::KeepCnt(_) => (libc::IPPROTO_TCP, libc::TCP_KEEPCNT, "TCP_KEEPCNT"),
            SockOpt::UserTimeout(_) => (
                libc::IPPROTO_TCP,
                libc::TCP_USER_TIMEOUT,
                "TCP_USER_TIMEOUT",
            ),
            SockOpt::RcvBuf(_) => (libc::SOL_SOCKET, libc::SO_RCVBUF, "SO_RCVBUF"),
            SockOpt::NoDelay(_) => (libc::IPPROTO_TCP, libc::TCP_NODELAY, "TCP_NODELAY"),
            SockOpt::ReuseAddr(_) => (libc::SOL_SOCKET, libc::SO_REUSEADDR, "SO_REUSEADDR"),
        }
    }

    /// The call as written in the timeline: `setsockopt(SO_LINGER, {on, 0 s})`, `setsockopt(TCP_LINGER2, -1)`.
    pub fn call_text(self) -> String {
        let (_, _, name) = self.key();
        let value = match self {
            SockOpt::Linger(None) => "{off}".to_string(),
            SockOpt::Linger(Some(s)) => format!("{{on, {s} s}}"),
            SockOpt::KeepAlive(on) | SockOpt::NoDelay(on) | SockOpt::ReuseAddr(on) => {
                i32::from(on).to_string()
            }
            SockOpt::Linger2(v)
            | SockOpt::KeepIdle(v)
            | SockOpt::KeepIntvl(v)
            | SockOpt::KeepCnt(v)
            | SockOpt::UserTimeout(v)
            | SockOpt::RcvBuf(v) => v.to_string(),
        };
        format!("setsockopt({name}, {value})")
    }
}

pub(super) fn set_int(fd: RawFd, level: libc::c_int, name: libc::c_int, value: i32) -> libc::c_int {
    // SAFETY: setsockopt with one int we own.
    unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    }
}
