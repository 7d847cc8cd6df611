//! A scenario as data: what [`parse`](crate::scenario::parse) makes of a file and what the player and the checker
//! read. Every step and expectation keeps its line, so a failure at run time can point at the file.

use std::time::Duration;

use crate::model::calls::{CallKind, Peer};
use crate::model::segment::TcpFlags;
use crate::model::tcp_state::TcpState;
pub use crate::os::netns::Link;
use crate::os::socket::{Shut, SockOpt};

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub summary: String,
    /// The teaching text: what to notice, and the fix (`teach` lines, in order).
    pub teach: Vec<String>,
    /// B's port is bound but nobody listens on it (`port closed`).
    pub port_closed: bool,
    pub steps: Vec<At<Step>>,
    pub expects: Vec<At<Expect>>,
}

/// Something with the line of the file it came from (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct At<T> {
    pub line: usize,
    pub item: T,
    /// The line as written (trimmed), for messages.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// A socket call of one peer; `background` (`&` at the end) runs it on a thread of its own, and the next
    /// steps go on once the peer is asleep in it, until `wait P returns`.
    Call {
        peer: Peer,
        call: Call,
        background: bool,
    },
    Wait(Wait),
    /// A fixed pause: only where time itself is the lesson.
    Sleep(Duration),
    /// The kernel is asked from outside to destroy `peer`'s connected socket (`destroy B`: SOCK_DESTROY through
    /// sock_diag, what `ss -K` does); recorded as `peer`'s `SOCK_DESTROY (ss -K)`.
    Destroy(Peer),
    /// A link condition between A's and B's private network namespaces (`link blackhole`, `link down`,
    /// `link rate 1mbit`, `link delay 100 ms`): a scenario with one is played over a veth, not loopback.
    Link(Link),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// A connects to B's port.
    Connect,
    /// A binds B's port itself (SO_REUSEADDR; B's port must be `port closed`) and connects to it: to itself.
    ConnectSelf,
    /// B accepts the connection waiting in its queue.
    Accept,
    Send(Vec<u8>),
    /// recv(max); with `until_end`, again and again until it returns 0 or fails.
    Recv {
        max: usize,
        until_end: bool,
    },
    Shutdown(Shut),
    Close,
    /// B closes its listening socket (`B close listener`), with whatever waits in its accept queue.
    CloseListener,
    SetSockOpt(SockOpt),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wait {
    /// Until `peer` has at least `bytes` received and unread.
    Unread { peer: Peer, bytes: usize },
    /// Until the kernel has moved `peer`'s socket to one of `states`; skipped unless `only_if` holds (then).
    State {
        peer: Peer,
        states: Vec<TcpState>,
        only_if: Option<(Peer, Vec<TcpState>)>,
    },
    /// Until everything `peer` sent has been acknowledged by the other side (nothing left in its send queue).
    Acked { peer: Peer },
    /// Until `peer`'s call running in the background has returned.
    Returns(Peer),
    /// Until a segment from `peer`'s socket with one of `flags` has been captured (`wait B sends FIN`).
    Sends { peer: Peer, flags: Vec<Flag> },
    /// Until a segment from `peer`'s socket advertising a zero window has been captured (`wait B sends window 0`):
    /// its receive buffer is full.
    ZeroWindow { peer: Peer },
    /// Until the kernel's trace has shown this event of `peer`'s socket (`wait A kernel receives RST`).
    Kernel { peer: Peer, event: KernelWait },
}

/// An event of the kernel's trace a scenario can wait for, of one peer's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelWait {
    /// `kernel sends RST [reason R|R]`: `tcp_send_reset` from the socket, with one of these reasons if any given.
    SendsReset { reasons: Vec<String> },
    /// `kernel receives RST`: `tcp_receive_reset`, the socket was reset by its peer's RST.
    ReceivesReset,
    /// `kernel state S|S`: `inet_sock_set_state`, the socket moved into one of these states.
    State(Vec<TcpState>),
    /// `kernel reports ERRNO|ERRNO`: `inet_sk_error_report` with one of these errnos.
    Reports(Vec<i32>),
}

/// What a run must show for `run --check` to pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// `peer` sends (or, with `none`, never sends) a segment with this flag; for a RST, the kernel's reason (one
    /// of `reasons`, when any is given).
    Sends {
        peer: Peer,
        flag: Flag,
        none: bool,
        reasons: Vec<String>,
    },
    /// The `nth` (1-based; `None`: the last) call of this kind by `peer` returned what `want` says.
    Returns {
        peer: Peer,
        kind: CallKind,
        nth: Option<usize>,
        want: Want,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flag {
    Syn,
    Fin,
    Rst,
}

impl Flag {
    pub fn name(self) -> &'static str {
        match self {
            Flag::Syn => "SYN",
            Flag::Fin => "FIN",
            Flag::Rst => "RST",
        }
    }

    /// Whether a segment with these flags carries this one.
    pub fn on(self, flags: TcpFlags) -> bool {
        match self {
            Flag::Syn => flags.syn(),
            Flag::Fin => flags.fin(),
            Flag::Rst => flags.rst(),
        }
    }
}

/// The result a call is expected to have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// Failed with one of these errnos.
    Errno(Vec<i32>),
    /// Returned exactly this value.
    Ret(i64),
    /// Returned more than 0 (bytes).
    Positive,
    /// Did not fail.
    Ok,
}

impl Script {
    /// True when a step sets a link condition: the run plays in a private pair of network namespaces.
    pub fn links(&self) -> bool {
        self.steps.iter().any(|s| matches!(s.item, Step::Link(_)))
    }

    /// True when a step asks the kernel to destroy a socket: the run starts the SOCK_DESTROY helper while it
    /// still has the rights.
    pub fn destroys(&self) -> bool {
        self.steps
            .iter()
            .any(|s| matches!(s.item, Step::Destroy(_)))
    }

    /// The first wait on a captured segment (`wait P sends …`): the run needs a capture to meet it.
    pub fn wire_wait(&self) -> Option<&At<Step>> {
        self.steps.iter().find(|s| {
            matches!(
                s.item,
                Step::Wait(Wait::Sends { .. } | Wait::ZeroWindow { .. })
            )
        })
    }

    /// The first wait on the kernel's events (`wait P kernel …`): the run needs the kernel's trace to meet it.
    pub fn kernel_wait(&self) -> Option<&At<Step>> {
        self.steps
            .iter()
            .find(|s| matches!(s.item, Step::Wait(Wait::Kernel { .. })))
    }

    /// The steps' calls, for a test or a reader: which peers act at all.
    pub fn calls(&self) -> impl Iterator<Item = (Peer, &Call)> {
        self.steps.iter().filter_map(|s| match &s.item {
            Step::Call { peer, call, .. } => Some((*peer, call)),
            _ => None,
        })
    }
}
