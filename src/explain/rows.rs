//! The rows of a timeline as data: which peer is which ([`Sides`]), a segment as the timeline shows it
//! ([`WireRow`]), a kernel event placed on it ([`KernelRow`]), a call, and the [`Timeline`] that holds them in time
//! order. Built by `timeline::build`; read by `infer`, `story` and the printers.

use std::net::SocketAddr;

use crate::model::calls::{Peer, SocketCall};
use crate::model::kernel::KernelEventKind;
use crate::model::run::PairRun;
use crate::model::segment::{Segment, TimestampNs};
use crate::model::tcp_state::TcpState;

/// Who is who in a timeline: A on the left, B on the right.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sides {
    pub a: SocketAddr,
    pub b: SocketAddr,
    /// Column titles, e.g. `A (client)` / `B (server)`.
    pub a_label: String,
    pub b_label: String,
}

impl Sides {
    /// Column titles for a run of the demo pair, live or saved.
    pub fn for_pair(pair: &PairRun) -> Sides {
        Sides {
            a: pair.a,
            b: pair.b,
            a_label: format!("A (client {})", pair.a),
            b_label: format!("B (server {})", pair.b),
        }
    }

    /// Whose socket a kernel event is about: A's when its own address is A's, B's when it is B's. A's socket
    /// going CLOSE → SYN_SENT has no port yet (connect() picks it just after): it is A's when it has A's address
    /// with port 0 and B as its peer.
    pub fn owner(&self, e: &KernelEventKind) -> Option<Peer> {
        let src = e.src();
        if src == self.a {
            Some(Peer::A)
        } else if src == self.b {
            Some(Peer::B)
        } else if src.port() == 0 && src.ip() == self.a.ip() && e.dst() == self.b {
            Some(Peer::A)
        } else {
            None
        }
    }

    /// Which side sent this segment, or `None` if it is not between A and B.
    pub fn sender(&self, seg: &Segment) -> Option<Peer> {
        if seg.src == self.a && seg.dst == self.b {
            Some(Peer::A)
        } else if seg.src == self.b && seg.dst == self.a {
            Some(Peer::B)
        } else {
            None
        }
    }
}

/// A segment as a timeline row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRow {
    pub from: Peer,
    pub segment: Segment,
    /// Sequence number relative to the sender's initial sequence number (0 for its SYN).
    pub rel_seq: u32,
    /// Acknowledgment number relative to the receiver's initial sequence number, when ACK is set.
    pub rel_ack: Option<u32>,
    /// The TCP state each side must be in after this segment (A, B), when inferred from the capture.
    pub states_after: Option<(TcpState, TcpState)>,
    /// Short remarks worth a reader's attention ("data after FIN", "retransmitted FIN").
    pub notes: Vec<String>,
    /// For a RST, when states are inferred: what its receiver does with it.
    pub rst_fate: Option<RstFate>,
}

/// What a receiver does with a RST (RFC 9293 §3.10.7, RFC 5961 §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RstFate {
    /// Taken: the connection is reset.
    Accepted,
    /// SYN-SENT: it does not acknowledge the SYN (or has no ACK): dropped.
    UnacceptableAck,
    /// A listener ignores every RST.
    Listener,
    /// In the window but not at the next expected number: a challenge ACK, the connection kept.
    Challenge { off: i32 },
    /// Out of the window: dropped silently.
    OutOfWindow { off: i32 },
    /// Nothing to reset: the receiver had already closed.
    NoConnection,
}

/// A kernel event as a timeline row: what the kernel did or said about `peer`'s socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelRow {
    pub peer: Peer,
    pub event: KernelEventKind,
    /// The kernel's own stamp; the row's time differs only for a reset placed at the segment it sent.
    pub stamped: TimestampNs,
}

impl KernelRow {
    /// A RST sent by a listening socket: the answer to a segment that found no connection socket (see
    /// `explain::outside::own_rst`), not a connection's own end.
    pub fn from_listener(&self) -> bool {
        matches!(
            self.event,
            KernelEventKind::SendReset {
                state: Some(TcpState::Listen),
                ..
            }
        )
    }

    /// The row in words: `B's kernel sends RST — reason TCP_ABORT_ON_CLOSE (closed with unread data)`.
    pub fn text(&self) -> String {
        self.event.describe(&self.peer.to_string())
    }

    /// The row in a few words, for diagrams: `kernel: RST, TCP_ABORT_ON_CLOSE`, `ESTABLISHED → CLOSE`.
    pub fn short(&self) -> String {
        match &self.event {
            KernelEventKind::SendReset { reason, .. } => format!("kernel: RST, {reason}"),
            KernelEventKind::ReceiveReset { .. } => "kernel: reset by RST".to_string(),
            KernelEventKind::StateChange { old, new, .. } => format!("{old} → {new}"),
            KernelEventKind::ErrorReport { errno, .. } => format!(
                "kernel: {}",
                crate::model::kernel::errno_name(*errno)
                    .map_or_else(|| format!("errno {errno}"), str::to_string)
            ),
        }
    }

    /// The reset reason, for a reset the kernel sent.
    pub fn reason(&self) -> Option<&str> {
        match &self.event {
            KernelEventKind::SendReset { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A call was made. `returns_later` is true when other rows happened before it returned.
    Call {
        call: SocketCall,
        returns_later: bool,
    },
    /// A call that had been blocked came back.
    Return {
        call: SocketCall,
    },
    Segment(WireRow),
    /// What the kernel itself said (tracefs): a reset it sent or received, a state change, an error reported.
    Kernel(KernelRow),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub t: TimestampNs,
    pub kind: RowKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeline {
    pub sides: Sides,
    pub rows: Vec<Row>,
}

impl Timeline {
    /// Time of the first row: the zero of the time column.
    pub fn t0(&self) -> TimestampNs {
        self.rows.first().map(|r| r.t).unwrap_or(0)
    }

    pub fn segments(&self) -> impl Iterator<Item = &WireRow> {
        self.rows.iter().filter_map(|r| match &r.kind {
            RowKind::Segment(w) => Some(w),
            _ => None,
        })
    }

    pub fn kernel_rows(&self) -> impl Iterator<Item = &KernelRow> {
        self.rows.iter().filter_map(|r| match &r.kind {
            RowKind::Kernel(k) => Some(k),
            _ => None,
        })
    }

    /// The reason `peer`'s kernel gave for its connection's own RST (a listener's answer only when there is no
    /// other), when the timeline holds the kernel's word.
    pub fn kernel_reason(&self, peer: Peer) -> Option<&str> {
        let resets: Vec<&KernelRow> = self
            .kernel_rows()
            .filter(|k| k.peer == peer && k.reason().is_some())
            .collect();
        let chosen = resets
            .iter()
            .find(|k| !k.from_listener())
            .or(resets.first());
        chosen.and_then(|k| k.reason())
    }

    /// The reason the kernel gave for this RST segment: its sender's `tcp_send_reset` placed at it.
    pub fn reset_reason(&self, w: &WireRow) -> Option<&str> {
        if !w.segment.flags.rst() {
            return None;
        }
        self.rows
            .iter()
            .filter(|r| r.t == w.segment.ts)
            .find_map(|r| match &r.kind {
                RowKind::Kernel(k) if k.peer == w.from => k.reason(),
                _ => None,
            })
    }

    /// Each call once (the row where it was made).
    pub fn calls(&self) -> impl Iterator<Item = &SocketCall> {
        self.rows.iter().filter_map(|r| match &r.kind {
            RowKind::Call { call, .. } => Some(call),
            _ => None,
        })
    }
}
