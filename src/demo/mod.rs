//! The embedded pair: A (client) and B (server) on loopback, real sockets in this process, playing one scenario
//! per mode. Produces socket calls; knows nothing of capture or drawing.
//!
//! Steps wait for real conditions (bytes queued, a thread blocked in recv(), a state reached), never for fixed
//! sleeps, and every wait is bounded, so a run is fast, gives the same story each time, and cannot hang.

mod modes;
pub mod procnet;
pub mod sock;
mod wait;

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::calls::SocketCall;
use crate::tcp_state::TcpState;

pub use wait::ScenarioError;

/// The scenarios `run` can play.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
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
}

impl Mode {
    pub const ALL: [Mode; 10] = [
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

/// A scenario ready to play: B's port is bound (so a capture can filter on it) and nothing has been sent yet.
pub struct Stage {
    mode: Mode,
    listener: sock::Listener,
}

impl Stage {
    /// Bind B's port on 127.0.0.1 (or ::1), a port the kernel picks so that several runs can go on at once.
    pub fn bind(mode: Mode, ipv6: bool) -> std::io::Result<Stage> {
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        // `refused` needs a port nobody listens on: bound but not listening, so no one else takes it meanwhile.
        let listener = sock::Listener::bind(ip, mode != Mode::Refused)?;
        Ok(Stage { mode, listener })
    }

    /// B's address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    /// Play the scenario.
    pub fn play(self) -> Result<PairRun, ScenarioError> {
        modes::play(self.mode, self.listener)
    }
}

/// The running kernel's release (`uname -r`), for saying what this kernel did.
pub fn kernel_release() -> String {
    // SAFETY: uname fills a struct we own.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    let bytes: Vec<u8> = u
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    format!("Linux {}", String::from_utf8_lossy(&bytes))
}
