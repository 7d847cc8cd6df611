//! What `watch` learns about one connection besides its packets — the kernel's events about its two sockets, the
//! process on each local end, its segments when its timeline may be printed — and the why of its ending, in words.

use std::net::SocketAddr;

use crate::model::kernel::{KernelEvent, KernelEventKind, errno_name, reset_reason_short};
use crate::model::segment::Segment;
use crate::os::procmap::{Found, Owner};
use crate::track::conn::{Conn, Ending, Side};

/// Kernel events kept per connection at most (a connection's end takes a dozen).
pub const KERNEL_EVENTS_KEPT: usize = 64;
/// Segments kept per connection for `--timeline` at most.
pub const SEGMENTS_KEPT: usize = 2000;

/// What a lookup of one end's process came to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Process {
    /// Not looked up (yet).
    #[default]
    NotAsked,
    /// To be asked once the frames read with this one are in (its connection may have ended among them).
    Due,
    /// Asked, no answer yet.
    Asked,
    /// Too many lookups waiting: this one was not made.
    Refused,
    Found(Found),
}

/// The watch's knowledge of one connection.
#[derive(Debug, Default)]
pub struct Extra {
    pub kernel: Vec<KernelEvent>,
    /// [client, server].
    pub process: [Process; 2],
    pub segments: Vec<Segment>,
    /// One of its ends is held by the process `--pid` (or `-- PROGRAM`) names, or a descendant of it.
    pub mine: bool,
}

impl Extra {
    pub fn add_kernel(&mut self, e: KernelEvent) {
        if self.kernel.len() < KERNEL_EVENTS_KEPT {
            self.kernel.push(e);
        }
    }

    /// Every lookup asked has been answered (or refused).
    pub fn settled(&self) -> bool {
        !self
            .process
            .iter()
            .any(|p| matches!(p, Process::Asked | Process::Due))
    }
}

/// Which side of `c` the socket at `addr` is.
pub fn side_of(c: &Conn, addr: SocketAddr) -> Option<Side> {
    if c.client.socket() == addr {
        Some(Side::Client)
    } else if c.server.socket() == addr {
        Some(Side::Server)
    } else {
        None
    }
}

/// `curl[4242]`, or with `(listener's, inferred)` when only the listening socket's holder is known.
pub fn process_text(p: &Process) -> Option<String> {
    let owner = |o: &Owner| format!("{}[{}]", o.comm, o.pid);
    match p {
        Process::Found(Found::Holder(o)) => Some(owner(o)),
        Process::Found(Found::Listener(o)) => {
            Some(format!("{} (holds the listener; inferred)", owner(o)))
        }
        Process::Found(Found::Unknown) => Some("? (held by no process we saw)".into()),
        Process::Found(Found::Orphan) => {
            Some("? (its process had closed it before it was looked up)".into())
        }
        Process::Refused => Some("? (not looked up: too many at once)".into()),
        Process::Found(Found::Ended) => {
            Some("? (not looked up: the connection had ended before its turn)".into())
        }
        Process::Found(Found::NotLocal) | Process::NotAsked | Process::Due | Process::Asked => None,
    }
}

/// The why of a connection's end, from the kernel's own events where it spoke and from the segments where it could
/// not: the RST reason of each reset sent here, the errno told to each local application, "reset by the remote
/// peer" for a reset no kernel here reported sending. `local[side]`: that end is on this machine.
pub fn why(c: &Conn, x: &Extra, local: [bool; 2]) -> Vec<String> {
    let mut out = Vec::new();
    // who is client and who server is known from the SYN; without one it is the first sender, a guess
    if c.syns(Side::Client) == 0 && c.syns(Side::Server) == 0 {
        out.push(
            "client and server guessed (no SYN seen: the connection began before the watch, or the filter \
             left the handshake out): they may be the other way round"
                .to_string(),
        );
    }
    let mut sent_reset = [false; 2];
    // the kernel's resets first: on loopback the receiver's error report is stamped before the send that caused it
    let resets = x.kernel.iter().filter(|e| e.what.name() == "send_reset");
    let others = x.kernel.iter().filter(|e| e.what.name() != "send_reset");
    for e in resets.chain(others) {
        let Some(side) = side_of(c, e.what.src()) else {
            continue;
        };
        let who = side.name();
        match &e.what {
            KernelEventKind::SendReset { reason, .. } if !sent_reset[side.index()] => {
                sent_reset[side.index()] = true;
                out.push(reset_words(c, side, reason));
            }
            KernelEventKind::ErrorReport { errno, .. } if *errno != 0 => {
                let name =
                    errno_name(*errno).map_or_else(|| format!("errno {errno}"), str::to_string);
                let line = format!("the {who} application was told {name}");
                if !out.contains(&line) {
                    out.push(line);
                }
            }
            _ => {}
        }
    }
    if let Some(by) = c.first_rst
        && !sent_reset[by.index()]
    {
        out.push(if local[by.index()] {
            format!(
                "the {}'s kernel sent the RST; its reason was not traced (no kernel events, or lost)",
                by.name()
            )
        } else {
            format!("reset by the remote peer (the {}, not on this machine)", by.name())
        });
    }
    if out.is_empty()
        && let Ending::Clean { first } = c.ending()
    {
        out.push(format!(
            "orderly close: the {} sent FIN first, FIN both ways",
            first.name()
        ));
    }
    out
}

/// A reset the kernel sent from `side`, in words.
fn reset_words(c: &Conn, side: Side, reason: &str) -> String {
    let who = side.name();
    let other = side.other().name();
    match reason {
        "TCP_ABORT_ON_CLOSE" => format!(
            "the {who} closed with the {other}'s data unread: its kernel sent RST (TCP_ABORT_ON_CLOSE)"
        ),
        "NO_SOCKET" => format!(
            "nothing listened on {}: the {who}'s kernel answered with RST (NO_SOCKET)",
            c.server.socket()
        ),
        "TCP_TIMEWAIT_SOCKET" => format!(
            "data came after the {who} had closed (its socket was already a FIN-WAIT-2/TIME-WAIT remnant): its \
             kernel sent RST (TCP_TIMEWAIT_SOCKET)"
        ),
        "TCP_ABORT_ON_DATA" => format!(
            "data came for a socket the {who} application had closed: its kernel sent RST (TCP_ABORT_ON_DATA)"
        ),
        _ => match reset_reason_short(reason) {
            Some(short) => format!("the {who}'s kernel sent RST: {reason} ({short})"),
            None => format!("the {who}'s kernel sent RST: {reason}"),
        },
    }
}

/// The kernel's reason for the first reset it sent on this connection, for the totals.
pub fn reset_reason(c: &Conn, x: &Extra) -> Option<String> {
    c.first_rst?;
    x.kernel.iter().find_map(|e| match &e.what {
        KernelEventKind::SendReset { reason, .. } if side_of(c, e.what.src()).is_some() => {
            Some(reason.clone())
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::live::LiveTracker;
    use crate::track::select::Selection;

    const S: u16 = crate::model::segment::TcpFlags::SYN;
    const A: u16 = crate::model::segment::TcpFlags::ACK;
    const R: u16 = crate::model::segment::TcpFlags::RST;

    fn reset_conn() -> Conn {
        let mut t: LiveTracker<()> = LiveTracker::new(&Selection::default());
        let (c, s) = ("127.0.0.1:40000", "127.0.0.1:8080");
        for (src, dst, f, seq, ack, len) in [
            (c, s, S, 1, 0, 0),
            (s, c, S | A, 9, 2, 0),
            (c, s, A, 2, 10, 5),
            (s, c, R | A, 10, 7, 0),
        ] {
            t.add(&crate::testing::segment(0, src, dst, f, seq, ack, len));
        }
        t.drain().remove(0).conn
    }

    fn ev(what: KernelEventKind) -> KernelEvent {
        KernelEvent { ts: 1, what }
    }

    #[test]
    fn the_kernels_reason_and_the_errno_say_why() {
        let c = reset_conn();
        let (cl, sv) = (c.client.socket(), c.server.socket());
        let mut x = Extra::default();
        x.add_kernel(ev(KernelEventKind::SendReset {
            reason: "TCP_ABORT_ON_CLOSE".into(),
            state: None,
            src: sv,
            dst: cl,
        }));
        x.add_kernel(ev(KernelEventKind::ErrorReport {
            errno: 104,
            src: cl,
            dst: sv,
        }));
        let w = why(&c, &x, [true, true]);
        assert_eq!(
            w,
            [
                "the server closed with the client's data unread: its kernel sent RST (TCP_ABORT_ON_CLOSE)",
                "the client application was told ECONNRESET"
            ]
        );
        assert_eq!(reset_reason(&c, &x).as_deref(), Some("TCP_ABORT_ON_CLOSE"));
    }

    #[test]
    fn a_reset_no_kernel_here_sent_is_the_remote_peers() {
        let c = reset_conn();
        let x = Extra::default();
        assert_eq!(
            why(&c, &x, [true, false]),
            ["reset by the remote peer (the server, not on this machine)"]
        );
        assert!(why(&c, &x, [true, true])[0].contains("not traced"));
        assert_eq!(reset_reason(&c, &x), None);
    }

    /// Only the reset passed the filter: no SYN says who is client, so the line says its roles are a guess.
    #[test]
    fn without_a_syn_the_roles_are_said_to_be_guessed() {
        let mut t: LiveTracker<()> = LiveTracker::new(&Selection::default());
        t.add(&crate::testing::segment(
            0,
            "127.0.0.1:8080",
            "127.0.0.1:40000",
            R | A,
            10,
            7,
            0,
        ));
        let c = t.drain().remove(0).conn;
        let why = why(&c, &Extra::default(), [true, false]);
        assert!(why[0].starts_with("client and server guessed"), "{why:?}");
        assert!(
            !super::why(&reset_conn(), &Extra::default(), [true, false])[0].contains("guessed")
        );
    }
}
