//! A run of the demo pair as data: which scenario, who was where, every socket call, the end states.

use std::fmt;
use std::net::SocketAddr;

use crate::model::calls::SocketCall;
use crate::model::tcp_state::TcpState;

/// The scenarios `run` can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    Abrupt,
    Shutdown,
    Drain,
    Linger0,
    HalfClose,
    WriteAfterClose,
    PrimesOk,
    PrimesBad,
    PrimesSix,
    Refused,
    Linger2Abort,
    ShutdownRead,
    AcceptQueueReset,
    SelfConnect,
    SockDestroy,
    KeepaliveDeadPeer,
    UserTimeout,
    ZeroWindow,
    /// A scenario read from a file (`run --scenario`, or a saved run of one): its own name, summary and text.
    File(&'static ScenarioFile),
}

/// A scenario from a file, kept whole so that a saved run of it can be analysed without the file.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ScenarioFile {
    pub name: String,
    pub summary: String,
    /// The file's text, as it was read.
    pub text: String,
}

impl Mode {
    /// The mode of a scenario file. Its strings live as long as the program (a handful per run): `Mode` stays
    /// `Copy` like the shipped modes.
    pub fn file(name: String, summary: String, text: String) -> Mode {
        Mode::File(Box::leak(Box::new(ScenarioFile {
            name,
            summary,
            text,
        })))
    }

    pub const ALL: [Mode; 18] = [
        Mode::Abrupt,
        Mode::Shutdown,
        Mode::Drain,
        Mode::Linger0,
        Mode::HalfClose,
        Mode::WriteAfterClose,
        Mode::PrimesOk,
        Mode::PrimesBad,
        Mode::PrimesSix,
        Mode::Refused,
        Mode::Linger2Abort,
        Mode::ShutdownRead,
        Mode::AcceptQueueReset,
        Mode::SelfConnect,
        Mode::SockDestroy,
        Mode::KeepaliveDeadPeer,
        Mode::UserTimeout,
        Mode::ZeroWindow,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Abrupt => "abrupt",
            Mode::Shutdown => "shutdown",
            Mode::Drain => "drain",
            Mode::Linger0 => "linger0",
            Mode::HalfClose => "half-close",
            Mode::WriteAfterClose => "write-after-close",
            Mode::PrimesOk => "primes-ok",
            Mode::PrimesBad => "primes-bad",
            Mode::PrimesSix => "primes-six",
            Mode::Refused => "refused",
            Mode::Linger2Abort => "linger2-abort",
            Mode::ShutdownRead => "shutdown-read",
            Mode::AcceptQueueReset => "accept-queue-reset",
            Mode::SelfConnect => "self-connect",
            Mode::SockDestroy => "sock-destroy",
            Mode::KeepaliveDeadPeer => "keepalive-dead-peer",
            Mode::UserTimeout => "user-timeout",
            Mode::ZeroWindow => "zero-window",
            Mode::File(f) => &f.name,
        }
    }

    /// One line for `tcp-close-watch modes`.
    pub fn summary(self) -> &'static str {
        match self {
            Mode::Abrupt => {
                "B reads 1 byte and close()s with the rest unread: its kernel sends RST, A's recv() fails with ECONNRESET"
            }
            Mode::Shutdown => {
                "the textbook fix: B calls shutdown(SHUT_WR) before close(); A's recv() returns 0 — and Linux still resets"
            }
            Mode::Drain => {
                "the real fix: B reads until A's end of stream, answers, closes; FIN both ways, no RST"
            }
            Mode::Linger0 => {
                "B sets SO_LINGER {on, 0 s} and closes with nothing unread: RST anyway, no TIME_WAIT"
            }
            Mode::HalfClose => {
                "A sends and shutdown(SHUT_WR)s; B reads to end of stream and replies; A reads the reply, then 0"
            }
            Mode::WriteAfterClose => {
                "B closes cleanly; A keeps sending: first send succeeds, B answers RST, the next send fails with EPIPE"
            }
            Mode::PrimesOk => {
                "A sends five primes and waits for \"OK\"; B checks them, answers OK, closes: a clean ending"
            }
            Mode::PrimesBad => {
                "the 2nd number is not prime: B answers \"ERROR\" and closes with 3 numbers unread: RST"
            }
            Mode::PrimesSix => {
                "A sends six primes; B reads five, answers \"OK\", closes with the sixth unread: RST"
            }
            Mode::Refused => {
                "A connects to a port with no listener: RST/ACK, connect() fails with ECONNREFUSED"
            }
            Mode::Linger2Abort => {
                "B half-closes, sets TCP_LINGER2 = -1 and close()s in FIN_WAIT2: RST at once instead of waiting for A's FIN"
            }
            Mode::ShutdownRead => {
                "B calls shutdown(SHUT_RD): its recv() returns 0, yet Linux still queues A's bytes — and close() resets"
            }
            Mode::AcceptQueueReset => {
                "A connects and sends; B never accept()s and closes its listener: the queued connection is reset"
            }
            Mode::SelfConnect => {
                "A's socket connects to its own address and port: a simultaneous open with itself, then talks to itself"
            }
            Mode::SockDestroy => {
                "the kernel is asked to destroy B's socket (SOCK_DESTROY, what ss -K does): B's recv() fails with ECONNABORTED, A's with ECONNRESET"
            }
            Mode::KeepaliveDeadPeer => {
                "B vanishes (its answers go nowhere); A's keepalive probes go unanswered; A's kernel resets and recv() fails with ETIMEDOUT"
            }
            Mode::UserTimeout => {
                "B vanishes while A's bytes are in flight: retransmissions, then TCP_USER_TIMEOUT ends it — ETIMEDOUT and no RST at all"
            }
            Mode::ZeroWindow => {
                "B's receive buffer is full: its kernel advertises a zero window, A's send() succeeds anyway; B closes with bytes unread: RST"
            }
            Mode::File(f) => &f.summary,
        }
    }

    pub fn from_name(name: &str) -> Option<Mode> {
        Mode::ALL.into_iter().find(|m| m.name() == name)
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Each socket's state when the scenario is over and the kernel has settled; `None` means the kernel holds no
/// socket for it any more (CLOSED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndStates {
    pub a: Option<TcpState>,
    pub b: Option<TcpState>,
}

/// What one scenario did: every socket call of A and B, and who was where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRun {
    pub mode: Mode,
    pub a: SocketAddr,
    pub b: SocketAddr,
    pub calls: Vec<SocketCall>,
    pub end_states: EndStates,
}
