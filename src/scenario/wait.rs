//! Bounded waits on real conditions: poll a condition (asked of the kernel through `os`), letting the other
//! threads run between polls, and give up with what was awaited after [`LIMIT`]. No system call of its own.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::model::calls::{Peer, errno_name};
use crate::model::kernel::KernelEventKind;
use crate::model::seen::Seen;
use crate::model::segment::Segment;
use crate::os::proc;
use crate::scenario::script::{KernelWait, Wait};

/// Every wait gives up after this long: far more than any step takes on loopback.
pub const LIMIT: Duration = Duration::from_secs(3);

/// How long a call running in the background may take to return: long enough for the kernel's own timers of the
/// link scenarios (a keepalive or a user timeout of a few seconds), still bounded.
pub const CALL_LIMIT: Duration = Duration::from_secs(15);

/// A scenario that could not go on, with what it was waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Poll `cond` until it holds; after [`LIMIT`], fail saying what we waited for.
pub fn until(
    what: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) -> Result<(), ScenarioError> {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        if start.elapsed() > LIMIT {
            return Err(ScenarioError(format!(
                "gave up after {} s waiting for {}",
                LIMIT.as_secs(),
                what()
            )));
        }
        spins += 1;
        proc::back_off(spins);
    }
    Ok(())
}

/// The two sockets' addresses, as far as they are known: B's from its bound port, A's once it has connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Addrs {
    pub a: Option<SocketAddr>,
    pub b: SocketAddr,
}

impl Addrs {
    fn of(self, p: Peer) -> Option<SocketAddr> {
        match p {
            Peer::A => self.a,
            Peer::B => Some(self.b),
        }
    }

    /// Whether something from `src` to `dst` is `p`'s socket's (to the other peer, once its address is known: not
    /// B's listener, nor another connection to B's port).
    fn is(self, p: Peer, src: SocketAddr, dst: SocketAddr) -> bool {
        self.of(p) == Some(src) && self.of(p.other()).is_none_or(|o| o == dst)
    }
}

/// Whether the run has seen what a wait on the wire or on the kernel's events waits for; `None` for a wait on
/// something else (a socket's own queue or state, a call).
pub fn seen_now(w: &Wait, seen: &Seen, addrs: Addrs) -> Option<bool> {
    Some(match w {
        Wait::Sends { peer, flags } => !seen
            .segments(|s| addrs.is(*peer, s.src, s.dst) && flags.iter().any(|f| f.on(s.flags)))
            .is_empty(),
        Wait::ZeroWindow { peer } => !seen
            .segments(|s| addrs.is(*peer, s.src, s.dst) && zero_window(s))
            .is_empty(),
        Wait::Kernel { peer, event } => !seen
            .events(|e| addrs.is(*peer, e.src(), e.dst()) && kernel_match(event, e))
            .is_empty(),
        _ => return None,
    })
}

/// A zero window advertised: not on a RST (its window means nothing) nor a SYN (not scaled yet).
fn zero_window(s: &Segment) -> bool {
    s.window == 0 && s.flags.ack() && !s.flags.rst() && !s.flags.syn()
}

fn kernel_match(w: &KernelWait, e: &KernelEventKind) -> bool {
    match (w, e) {
        (KernelWait::SendsReset { reasons }, KernelEventKind::SendReset { reason, .. }) => {
            reasons.is_empty() || reasons.contains(reason)
        }
        (KernelWait::ReceivesReset, KernelEventKind::ReceiveReset { .. }) => true,
        (KernelWait::State(states), KernelEventKind::StateChange { new, .. }) => {
            states.contains(new)
        }
        (KernelWait::Reports(errnos), KernelEventKind::ErrorReport { errno, .. }) => {
            errnos.contains(errno)
        }
        _ => false,
    }
}

/// What a wait on the wire or the kernel waits for, and what was seen of that peer so far, for its error.
pub fn awaited(w: &Wait, seen: &Seen, addrs: Addrs) -> String {
    match w {
        Wait::Sends { peer, flags } => {
            let names: Vec<&str> = flags.iter().map(|f| f.name()).collect();
            let so_far: Vec<String> = seen
                .segments(|s| addrs.is(*peer, s.src, s.dst))
                .iter()
                .map(|s| s.flags.tcpdump())
                .collect();
            format!(
                "a segment from {peer} with {} to be captured (captured from {peer} so far: {})",
                names.join(" or "),
                if so_far.is_empty() {
                    "none".to_string()
                } else {
                    so_far.join(" ")
                }
            )
        }
        Wait::ZeroWindow { peer } => {
            let windows: Vec<String> = seen
                .segments(|s| addrs.is(*peer, s.src, s.dst))
                .iter()
                .map(|s| s.window.to_string())
                .collect();
            format!(
                "a segment from {peer} advertising a zero window to be captured (windows from {peer} so far: {})",
                if windows.is_empty() {
                    "none".to_string()
                } else {
                    windows.join(" ")
                }
            )
        }
        Wait::Kernel { peer, event } => {
            let so_far: Vec<String> = seen
                .events(|e| addrs.is(*peer, e.src(), e.dst()))
                .iter()
                .map(|e| e.describe(&peer.to_string()))
                .collect();
            format!(
                "{peer}'s kernel to {} (its events so far: {})",
                kernel_words(event),
                if so_far.is_empty() {
                    "none".to_string()
                } else {
                    so_far.join("; ")
                }
            )
        }
        other => format!("{other:?}"),
    }
}

fn kernel_words(w: &KernelWait) -> String {
    match w {
        KernelWait::SendsReset { reasons } if reasons.is_empty() => "send RST".into(),
        KernelWait::SendsReset { reasons } => format!("send RST reason {}", reasons.join(" or ")),
        KernelWait::ReceivesReset => "receive RST".into(),
        KernelWait::State(states) => {
            let names: Vec<&str> = states.iter().map(|s| s.linux_name()).collect();
            format!("move its socket to {}", names.join(" or "))
        }
        KernelWait::Reports(errnos) => {
            let names: Vec<String> = errnos.iter().map(|&e| errno_name(e)).collect();
            format!("report {} to its socket", names.join(" or "))
        }
    }
}

/// Wait, bounded, until the run has seen what `w` waits for on the wire or in the kernel's events.
pub fn on_view(w: &Wait, seen: &Seen, addrs: Addrs) -> Result<(), ScenarioError> {
    until(
        || awaited(w, seen, addrs),
        || seen_now(w, seen, addrs).unwrap_or(true),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_returns_once_true() {
        let mut n = 0;
        until(
            || "n to reach 3".into(),
            || {
                n += 1;
                n >= 3
            },
        )
        .unwrap();
        assert_eq!(n, 3);
    }
}
