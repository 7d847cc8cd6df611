//! What happened, judged from a timeline: who sent FIN and RST, what A's application saw, how many bytes were
//! thrown away — and, in plain words for teaching, why and the fix. Pure: reads the timeline, says nothing it
//! cannot point to in it.
//!
//! [`verdict`] gives the facts as values, [`account`] the sentences (their order is part of the output: the docs
//! and tests quote them), [`comparison_row`] one row of the `--mode all` table. Nothing here panics on a timeline
//! [`crate::explain::timeline::build`] made: a peer is only asked for its first FIN or RST after the verdict
//! found one.

use serde::Serialize;

use crate::explain::calls_only::{self, Proof};
use crate::explain::outside;
use crate::explain::rows::{RowKind, Timeline, WireRow};
use crate::model::calls::{CallKind, Peer, SocketCall};
use crate::model::kernel::{KernelEventKind, reset_reason_meaning};
use crate::model::run::PairRun;
use crate::model::segment::TimestampNs;
use crate::model::tcp_state::TcpState;

/// The facts of one run, as the comparison table and the tests use them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Peers that sent a FIN, in the order of their first FIN.
    pub fin_from: Vec<Peer>,
    /// Peers that sent an RST, in the order of their first RST.
    pub rst_from: Vec<Peer>,
    /// A's last recv() and last send(), if it made any.
    pub a_last_recv: Option<SocketCall>,
    pub a_last_send: Option<SocketCall>,
    /// Bytes still unread when each peer called close().
    pub discarded_a: u32,
    pub discarded_b: u32,
}

fn first_senders(t: &Timeline, pick: impl Fn(&WireRow) -> bool) -> Vec<Peer> {
    let mut out = Vec::new();
    for w in t.segments().filter(|w| pick(w)) {
        if !out.contains(&w.from) {
            out.push(w.from);
        }
    }
    out
}

pub fn verdict(t: &Timeline) -> Verdict {
    let last = |kind: CallKind| {
        t.calls()
            .filter(|c| c.peer == Peer::A && c.kind == kind)
            .last()
            .cloned()
    };
    let discarded = |peer: Peer| {
        t.calls()
            .filter(|c| c.peer == peer && c.kind == CallKind::Close)
            .filter_map(|c| c.unread_before)
            .sum::<u32>()
            + never_accepted(t, peer)
    };
    Verdict {
        fin_from: first_senders(t, |w| w.segment.flags.fin()),
        rst_from: first_senders(t, |w| w.segment.flags.rst()),
        a_last_recv: last(CallKind::Recv),
        a_last_send: last(CallKind::Send),
        discarded_a: discarded(Peer::A),
        discarded_b: discarded(Peer::B),
    }
}

/// Bytes the other side's send() calls handed over before `peer`'s kernel reset a connection `peer`'s application
/// never accept()ed: no recv() could read them, they went with the socket (the accept queue's, at `peer`).
fn never_accepted(t: &Timeline, peer: Peer) -> u32 {
    let Some(rst) = first_sent(t, peer, is_rst) else {
        return 0;
    };
    let mine = |k: CallKind| t.calls().any(|c| c.peer == peer && c.kind == k);
    let other_connected = t
        .calls()
        .any(|c| c.peer == peer.other() && c.kind == CallKind::Connect && c.errno().is_none());
    if mine(CallKind::Accept) || mine(CallKind::Recv) || !other_connected {
        return 0;
    }
    t.calls()
        .filter(|c| c.peer == peer.other() && c.kind == CallKind::Send)
        .filter(|c| c.t_end <= rst.segment.ts)
        .map(|c| u32::try_from(c.ret().max(0)).unwrap_or(u32::MAX))
        .sum()
}

/// What put a segment on the wire.
#[derive(Debug, Clone, Copy)]
enum Cause<'a> {
    /// A call of the sender (usually the segment is captured while it runs; under load, since capture timestamps
    /// are taken where loopback delivers the frame, a little after it returned).
    Call(&'a SocketCall),
    /// The sender's kernel answering a segment of the other side that came after the sender's last call.
    Answer(&'a WireRow),
    Unknown,
}

fn cause_of<'a>(t: &'a Timeline, w: &WireRow) -> Cause<'a> {
    let ts = w.segment.ts;
    let last_call = t
        .calls()
        .filter(|c| c.peer == w.from && c.t_start <= ts)
        .last();
    let since = last_call.map_or(i64::MIN, |c| c.t_end);
    let answered = t
        .segments()
        .filter(|x| x.from != w.from && x.segment.ts > since && x.segment.ts < ts)
        .filter(|x| x.segment.len > 0 || x.segment.flags.syn() || x.segment.flags.fin())
        .last();
    match (last_call, answered) {
        (Some(c), _) if ts <= c.t_end => Cause::Call(c),
        (_, Some(x)) => Cause::Answer(x),
        (Some(c), None) => Cause::Call(c),
        (None, None) => Cause::Unknown,
    }
}

fn cause_text(peer: Peer, cause: Cause<'_>) -> String {
    match cause {
        Cause::Call(c) => format!(", from {peer}'s {}", c.call),
        Cause::Answer(x) if x.segment.flags.syn() => format!(", answering {}'s SYN", x.from),
        Cause::Answer(x) if x.segment.len > 0 => format!(
            ", answering {} bytes {} sent to a socket {peer}'s application had already closed",
            x.segment.len, x.from
        ),
        Cause::Answer(x) => format!(", answering {}'s [{}]", x.from, x.segment.flags.tcpdump()),
        Cause::Unknown => String::new(),
    }
}

fn us(t: &Timeline, ts: TimestampNs) -> String {
    format!("+{} µs", (ts - t.t0()) / 1000)
}

fn bytes(n: u32) -> String {
    format!("{n} byte{}", if n == 1 { "" } else { "s" })
}

fn state_name(s: Option<TcpState>) -> String {
    match s {
        Some(s) => s.to_string(),
        None => GONE.to_string(),
    }
}

/// A plain-language account: facts, then why, then the fix. `end` is each socket's state at the end;
/// `kernel` names the running kernel (e.g. "Linux 6.1.0").
///
/// One line per fact, in this order: what went on the wire and which call caused it, what A's application saw,
/// what was thrown away, the end states; then why each RST came and its fix; then whether B's answer reached A.
pub fn account(
    t: &Timeline,
    end: Option<(Option<TcpState>, Option<TcpState>)>,
    kernel: &str,
) -> Vec<String> {
    let v = verdict(t);
    let mut lines = wire_lines(t, &v);
    lines.extend(a_saw_line(t, &v));
    lines.push(discarded_line(&v));
    if let Some((a, b)) = end {
        lines.push(format!(
            "End states: A {}, B {}.",
            state_name(a),
            state_name(b)
        ));
    }
    for &peer in &v.rst_from {
        lines.extend(why_reset(t, &v, peer, kernel));
    }
    if t.segments().next().is_none() {
        lines.extend(resets_without_capture(t, kernel));
    }
    lines.extend(answer_despite_reset(t));
    lines.extend(state_disagreements(t));
    if v.rst_from.is_empty() && v.fin_from.len() == 2 {
        lines.push(
            "No RST: each side sent FIN after it had finished; nothing was lost.".to_string(),
        );
    }
    lines
}

/// The first segment `peer` sent that `pick` chooses.
fn first_sent(t: &Timeline, peer: Peer, pick: fn(&WireRow) -> bool) -> Option<&WireRow> {
    t.segments().find(|w| w.from == peer && pick(w))
}

fn is_fin(w: &WireRow) -> bool {
    w.segment.flags.fin()
}

fn is_rst(w: &WireRow) -> bool {
    w.segment.flags.rst()
}

/// What went on the wire, and which call caused it: each side's first FIN, then each side's first RST.
fn wire_lines(t: &Timeline, v: &Verdict) -> Vec<String> {
    let mut lines = Vec::new();
    if t.segments().next().is_none() {
        lines.push("No segment was captured.".to_string());
    }
    for &peer in &v.fin_from {
        let w = first_sent(t, peer, is_fin).expect("peer sent a FIN");
        let cause = cause_text(peer, cause_of(t, w));
        lines.push(format!(
            "{peer} sent FIN at {}{cause}.",
            us(t, w.segment.ts)
        ));
    }
    for &peer in &v.rst_from {
        let w = outside::own_rst(t, peer).expect("peer sent an RST");
        // a timer's reset is no call's doing, even while a call waits
        let cause = match kernel_reason(t, peer) {
            Some("TCP_KEEPALIVE_TIMEOUT") => {
                format!(", from {peer}'s keepalive timer (not a call)")
            }
            _ => cause_text(peer, cause_of(t, w)),
        };
        let reason = kernel_reason(t, peer).map_or(String::new(), |r| {
            format!(
                "; the kernel's own reason: {r}{}",
                reset_reason_meaning(r).map_or(String::new(), |m| format!(" ({m})"))
            )
        });
        lines.push(format!(
            "{peer}'s kernel sent RST [{}] at {}{cause}{reason}.",
            w.segment.flags.tcpdump(),
            us(t, w.segment.ts)
        ));
    }
    lines.extend(outside::listener_answers(t, |ts| us(t, ts)));
    if v.fin_from.is_empty() && v.rst_from.is_empty() && t.segments().next().is_some() {
        lines.push("Neither side sent FIN or RST.".to_string());
    }
    lines
}

/// What A's application saw: a failed connect(), else its last send() that failed and its last recv().
fn a_saw_line(t: &Timeline, v: &Verdict) -> Option<String> {
    if let Some(conn) = t
        .calls()
        .find(|c| c.peer == Peer::A && c.kind == CallKind::Connect && c.errno().is_some())
    {
        return Some(format!(
            "A's application saw: {} {}.",
            conn.call,
            conn.result_text()
        ));
    }
    let a_saw: Vec<String> = [v.a_last_send.as_ref(), v.a_last_recv.as_ref()]
        .into_iter()
        .flatten()
        .filter(|c| c.errno().is_some() || c.kind == CallKind::Recv)
        .map(|c| format!("{} {}", c.call, c.result_text()))
        .collect();
    (!a_saw.is_empty()).then(|| format!("A's application saw, last: {}.", a_saw.join("; ")))
}

/// How many bytes each side threw away unread at close(), or that nothing was.
fn discarded_line(v: &Verdict) -> String {
    if v.discarded_a + v.discarded_b == 0 {
        return "Nothing was thrown away unread.".to_string();
    }
    let who_discarded: Vec<String> = [(Peer::A, v.discarded_a), (Peer::B, v.discarded_b)]
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(p, n)| format!("{} at {p}", bytes(*n)))
        .collect();
    format!(
        "Thrown away unread at close(): {}.",
        who_discarded.join(", ")
    )
}

fn closed_with_unread(t: &Timeline, peer: Peer) -> bool {
    t.calls()
        .any(|c| c.peer == peer && c.kind == CallKind::Close && c.unread_before.unwrap_or(0) > 0)
}

fn set_linger(t: &Timeline, peer: Peer) -> bool {
    t.calls()
        .any(|c| c.peer == peer && c.kind == CallKind::SetSockOpt && c.call.contains("SO_LINGER"))
}

/// The reason `peer`'s kernel gave for its connection's own RST (see [`Timeline::kernel_reason`]).
pub fn kernel_reason(t: &Timeline, peer: Peer) -> Option<&str> {
    t.kernel_reason(peer)
}

/// Which explanation fits a RST: the kernel's own reason when it gave one, else what the timeline implies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ResetWhy {
    UnreadAtClose,
    Linger,
    DataAfterClose,
    NoListener,
    /// The socket was destroyed from outside (SOCK_DESTROY), as the recorded call shows.
    Destroyed,
    /// Keepalive probes went unanswered, as the kernel named it.
    KeepaliveTimeout,
    Unknown,
}

fn reset_why(t: &Timeline, v: &Verdict, peer: Peer, w: Option<&WireRow>) -> ResetWhy {
    if w.is_some_and(|w| matches!(cause_of(t, w), Cause::Call(c) if c.kind == CallKind::Destroy)) {
        return ResetWhy::Destroyed;
    }
    match kernel_reason(t, peer) {
        Some("TCP_ABORT_ON_CLOSE") => return ResetWhy::UnreadAtClose,
        Some("TCP_STATE") if set_linger(t, peer) => return ResetWhy::Linger,
        Some("TCP_ABORT_ON_DATA") => return ResetWhy::DataAfterClose,
        Some("NO_SOCKET") => return ResetWhy::NoListener,
        Some("TCP_KEEPALIVE_TIMEOUT") => return ResetWhy::KeepaliveTimeout,
        _ => {}
    }
    let Some(w) = w else {
        return match calls_only::reset_proof(t, peer) {
            Some(Proof::UnreadAtClose) => ResetWhy::UnreadAtClose,
            Some(Proof::Linger) => ResetWhy::Linger,
            Some(Proof::Refused) => ResetWhy::NoListener,
            Some(Proof::DataAfterClose) => ResetWhy::DataAfterClose,
            None => ResetWhy::Unknown,
        };
    };
    let cause = cause_of(t, w);
    let from_close = matches!(cause, Cause::Call(c) if c.kind == CallKind::Close);
    if from_close && closed_with_unread(t, peer) {
        ResetWhy::UnreadAtClose
    } else if from_close && set_linger(t, peer) {
        ResetWhy::Linger
    } else if matches!(cause, Cause::Answer(x) if x.segment.len > 0) && v.fin_from.contains(&peer) {
        ResetWhy::DataAfterClose
    } else if matches!(cause, Cause::Answer(x) if x.segment.flags.syn())
        && t.segments()
            .all(|x| x.from != peer || !x.segment.flags.syn())
    {
        ResetWhy::NoListener
    } else {
        ResetWhy::Unknown
    }
}

/// Why `peer` sent its RST, and the fix: closing with unread data, SO_LINGER 0, data for a closed socket, or a
/// SYN to a port nobody listens on — as the kernel named it, else as the timeline shows it. Nothing when neither
/// says.
fn why_reset(t: &Timeline, v: &Verdict, peer: Peer, kernel: &str) -> Vec<String> {
    let w = outside::own_rst(t, peer).expect("peer sent an RST");
    match reset_why(t, v, peer, Some(w)) {
        ResetWhy::UnreadAtClose => unread_at_close(t, peer, w.segment.ts, kernel),
        ResetWhy::Linger => linger_zero(t, peer, kernel),
        ResetWhy::DataAfterClose => data_after_close(peer),
        ResetWhy::NoListener => no_listener(t),
        ResetWhy::Destroyed => outside::destroyed(t, peer),
        ResetWhy::KeepaliveTimeout => outside::keepalive_timeout(t, peer, w),
        ResetWhy::Unknown => Vec::new(),
    }
}

/// With no segment captured: each reset the kernel's own word or the calls alone prove, as a fact line marked
/// with what proves it, then its why and fix. What only the wire could show (its flags, its time) is not said.
fn resets_without_capture(t: &Timeline, kernel: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for peer in [Peer::A, Peer::B] {
        let why = reset_why(t, &verdict(t), peer, None);
        let at = match why {
            ResetWhy::Unknown if kernel_reason(t, peer).is_none() => continue,
            ResetWhy::NoListener => t.calls().find(|c| c.errno() == Some(libc::ECONNREFUSED)),
            _ => t
                .calls()
                .find(|c| c.peer == peer && c.kind == CallKind::Close),
        };
        let ts = at.map_or(t.t0(), |c| c.t_start);
        lines.push(match kernel_reason(t, peer) {
            Some(r) => format!(
                "{peer}'s kernel sent RST, by its own word: reason {r}{}; no segment was captured to show it.",
                reset_reason_meaning(r).map_or(String::new(), |m| format!(" ({m})"))
            ),
            None => format!(
                "{peer}'s kernel resets the connection: {} (this follows from the calls; no segment was \
                 captured to confirm it).",
                calls_only::evidence(t, peer)
            ),
        });
        lines.extend(match why {
            ResetWhy::UnreadAtClose => unread_at_close(t, peer, ts, kernel),
            ResetWhy::Linger => linger_zero(t, peer, kernel),
            ResetWhy::DataAfterClose => data_after_close(peer),
            ResetWhy::NoListener => no_listener(t),
            ResetWhy::Destroyed => outside::destroyed(t, peer),
            // the probes themselves are on the wire, which was not captured: the kernel's word alone
            ResetWhy::KeepaliveTimeout => vec![format!(
                "Why: {peer}'s keepalive probes went unanswered, so its kernel ended the connection (its own \
                 reason: TCP_KEEPALIVE_TIMEOUT)."
            )],
            ResetWhy::Unknown => Vec::new(),
        });
    }
    lines
}

fn linger_zero(t: &Timeline, peer: Peer, kernel: &str) -> Vec<String> {
    let mut lines = vec![
            format!(
                "Why: SO_LINGER {{on, 0 s}} makes close() abort the connection: RST instead of FIN, even with \
                 nothing unread, and no TIME_WAIT on {peer}'s side."
            ),
            "Fix: keep the default linger unless aborting is really what you mean; TIME_WAIT is how TCP keeps \
             old segments out of a new connection."
                .to_string(),
    ];
    if kernel_reason(t, peer) == Some("TCP_STATE") {
        lines.insert(
            1,
            format!(
                "Textbook vs this kernel: SO_LINGER {{on, 0}} is taught as \"close with RST\", as if it were the \
                 unread-data abort. This kernel ({kernel}) names it differently: reason TCP_STATE (the abort of \
                 tcp_disconnect), not TCP_ABORT_ON_CLOSE — nothing was unread."
            ),
        );
    }
    lines
}

fn data_after_close(peer: Peer) -> Vec<String> {
    vec![
            format!(
                "Why: {peer}'s application had closed; data arriving for a closed socket is answered with RST. \
                 The sender's first send() had already succeeded (it only queued the bytes). The RST came while \
                 the sender was in CLOSE_WAIT (it had B's FIN), so its next send() fails with EPIPE (SIGPIPE unless \
                 MSG_NOSIGNAL is used); an RST that comes in ESTABLISHED makes the first send() after it fail with \
                 ECONNRESET and only later ones with EPIPE."
            ),
            "Fix: when recv() returns 0 the peer has finished; stop sending, or agree in the protocol who \
             closes first."
                .to_string(),
    ]
}

fn no_listener(t: &Timeline) -> Vec<String> {
    vec![
        format!(
            "Why: nothing listens on {}: the kernel refuses the SYN with RST/ACK and connect() fails with \
                 ECONNREFUSED.",
            t.sides.b
        ),
        "Fix: start the server first, or check the address and port.".to_string(),
    ]
}

/// `peer` closed with received data unread, so its kernel sent RST (`rst`) instead of FIN: what the other side
/// felt, what shutdown() before it did on this kernel, and the fix.
fn unread_at_close(t: &Timeline, peer: Peer, rst: TimestampNs, kernel: &str) -> Vec<String> {
    let other = peer.other();
    // what the reset did to the other side, as its calls show it
    let felt = t
        .calls()
        .filter(|c| c.peer == other && c.t_end > rst)
        .find(|c| c.errno().is_some())
        .map(|c| {
            format!(
                "{other}'s {} failed with {}",
                c.call,
                crate::model::calls::errno_name(c.errno().unwrap_or(0))
            )
        })
        .unwrap_or_else(|| format!("no call of {other} failed; its socket was simply torn down"));
    let mut lines = vec![format!(
        "Why: {peer} closed its socket while received data was still unread. Linux then does not send FIN \
         but RST (RFC 2525 §2.17: the data would otherwise be lost silently): {felt}."
    )];
    // Only a shutdown() that stops writing sends a FIN (SHUT_RD sends nothing): read the direction from the call,
    // and the FIN from the wire.
    let shut_wr = t
        .calls()
        .find(|c| c.peer == peer && c.kind == CallKind::Shutdown && c.call.contains("WR"));
    if let Some(shut) = shut_wr.filter(|_| first_sent(t, peer, is_fin).is_some()) {
        let named =
            kernel_reason(t, peer).map_or(String::new(), |r| format!(" (its own reason: {r})"));
        lines.push(format!(
            "Textbook vs this kernel: {} before close() is the fix the sockets textbook suggests. This \
             kernel ({kernel}) sent the FIN at shutdown() and still an RST at close(), because bytes were \
             unread{named}. The graceful close the RFCs describe is half-close and keep reading until the peer's \
             FIN (mode drain).",
            shut.call
        ));
    } else if let Some(shut) = t
        .calls()
        .find(|c| c.peer == peer && c.kind == CallKind::Shutdown)
        // what the wire showed: not without a capture
        .filter(|_| t.segments().next().is_some() && first_sent(t, peer, is_fin).is_none())
    {
        lines.push(format!(
            "{peer}'s {} sent no FIN: {other} was not told to stop sending.",
            shut.call
        ));
    }
    lines.push(format!(
        "Fix: {peer} should read until the peer's end of stream (recv() returns 0) before close(), or the \
         protocol must say how much the peer sends (see mode drain)."
    ));
    lines
}

/// Whether A got B's answer although B reset the connection: Linux hands out what was queued before the error.
fn answer_despite_reset(t: &Timeline) -> Option<String> {
    let rst = first_sent(t, Peer::B, is_rst)?;
    let a_got = |c: &SocketCall| c.peer == Peer::A && c.kind == CallKind::Recv && c.ret() > 0;
    if let Some(c) = t.calls().find(|c| a_got(c) && c.t_start > rst.segment.ts) {
        return Some(format!(
            "A still received B's answer ({} {}), asking for it only after the RST had arrived: Linux hands \
             out data already queued before it reports the reset. The textbook warns the answer may be lost — on other systems \
             it can be.",
            c.call,
            c.result_text()
        ));
    }
    let b_sent_data = t.segments().any(|x| x.from == Peer::B && x.segment.len > 0);
    t.calls()
        .any(|c| a_got(c) && c.t_end <= rst.segment.ts && b_sent_data)
        .then(|| "A read B's answer before the RST arrived.".to_string())
}

/// How a socket that no longer exists is written: its state went to CLOSE and the kernel freed it.
pub const GONE: &str = "CLOSE (gone)";

/// A socket's end state as text: its state, or [`GONE`].
pub fn end_state_text(s: Option<TcpState>) -> String {
    s.map_or(GONE.to_string(), |s| s.to_string())
}

/// One run's outcome, as plain values: a row of the `--mode all` comparison (and of its JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComparisonRow {
    pub mode: String,
    pub kernel: String,
    pub fin_from: Vec<Peer>,
    pub rst_from: Vec<Peer>,
    /// What A's last recv()/send() (or a failed connect()) returned.
    pub a_saw: String,
    /// What A's recv() calls handed A's application, all together (B's answer, if it got through).
    pub a_received: Option<String>,
    pub discarded_unread: u32,
    /// Each socket's state at the end; `None` when the kernel held no socket for it any more.
    #[serde(serialize_with = "state_or_null")]
    pub end_a: Option<TcpState>,
    #[serde(serialize_with = "state_or_null")]
    pub end_b: Option<TcpState>,
    /// The reason the kernel gave for the first RST, when the run traced the kernel and it sent one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_reason: Option<String>,
}

fn state_or_null<S: serde::Serializer>(s: &Option<TcpState>, ser: S) -> Result<S::Ok, S::Error> {
    match s {
        Some(state) => ser.serialize_str(state.linux_name()),
        None => ser.serialize_none(),
    }
}

/// A's last recv()/send() results (or its failed connect()) in a few words.
fn a_saw(t: &Timeline) -> String {
    if let Some(c) = t
        .calls()
        .find(|c| c.peer == Peer::A && c.kind == CallKind::Connect && c.errno().is_some())
    {
        return format!(
            "connect = -1 {}",
            crate::model::calls::errno_name(c.errno().unwrap_or(0))
        );
    }
    let v = verdict(t);
    let short = |c: &crate::model::calls::SocketCall| {
        let name = if c.kind == CallKind::Recv {
            "recv"
        } else {
            "send"
        };
        match c.errno() {
            Some(e) => format!("{name} = -1 {}", crate::model::calls::errno_name(e)),
            None if c.kind == CallKind::Recv && c.ret() == 0 => format!("{name} = 0 (end)"),
            None => format!("{name} = {}", c.ret()),
        }
    };
    let parts: Vec<String> = [v.a_last_recv.as_ref(), v.a_last_send.as_ref()]
        .into_iter()
        .flatten()
        .map(short)
        .collect();
    if parts.is_empty() {
        "—".into()
    } else {
        parts.join("; ")
    }
}

/// Everything A's recv() calls returned, as text, if anything.
fn a_received(t: &Timeline) -> Option<String> {
    let data: Vec<u8> = t
        .calls()
        .filter(|c| c.peer == Peer::A && c.kind == CallKind::Recv)
        .flat_map(|c| c.data().iter().copied())
        .collect();
    (!data.is_empty()).then(|| String::from_utf8_lossy(&data).into_owned())
}

/// One row of the `--mode all` comparison.
pub fn comparison_row(pair: &PairRun, t: &Timeline, kernel: &str) -> ComparisonRow {
    let v = verdict(t);
    ComparisonRow {
        mode: pair.mode.name().to_string(),
        kernel: kernel.to_string(),
        fin_from: v.fin_from,
        rst_from: v.rst_from,
        a_saw: a_saw(t),
        a_received: a_received(t),
        discarded_unread: v.discarded_a + v.discarded_b,
        end_a: pair.end_states.a,
        end_b: pair.end_states.b,
        kernel_reason: first_kernel_reason(t),
    }
}

/// The reason the kernel gave for the first RST of the run, by whichever side sent it.
fn first_kernel_reason(t: &Timeline) -> Option<String> {
    t.rows.iter().find_map(|r| match &r.kind {
        RowKind::Kernel(k) => k.reason().map(str::to_string),
        _ => None,
    })
}

/// Where the kernel's traced state changes and the state TCP_INFO gave after a call disagree: one line each.
/// A change traced within [`STATE_RACE_NS`] after the call returned is the same state reached a moment later, not
/// a disagreement.
pub fn state_disagreements(t: &Timeline) -> Vec<String> {
    let traced: Vec<(TimestampNs, Peer, TcpState)> = t
        .kernel_rows()
        .filter_map(|k| match &k.event {
            KernelEventKind::StateChange { old, new, .. }
                if *old != TcpState::Listen || *new != TcpState::Closed =>
            {
                Some((k.stamped, k.peer, *new))
            }
            _ => None,
        })
        .collect();
    if traced.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for c in t.calls() {
        let Some(read) = c.state else { continue };
        let at = |ts: TimestampNs| {
            traced
                .iter()
                .rev()
                .find(|(when, p, _)| *p == c.peer && *when <= ts)
                .map(|(_, _, s)| *s)
        };
        let Some(kernel) = at(c.t_end) else { continue };
        if kernel == read || at(c.t_end + STATE_RACE_NS) == Some(read) {
            continue;
        }
        let mut line = format!(
            "The kernel's trace and the state read after {}'s {} disagree: the trace says {kernel}, the socket \
             table read {read}",
            c.peer, c.call
        );
        if (kernel, read) == (TcpState::Closed, TcpState::TimeWait) {
            line.push_str(
                " — Linux ends the full socket (traced as → CLOSE) and leaves a small TIME_WAIT socket in its \
                 place, whose state no tracepoint reports",
            );
        }
        line.push('.');
        out.push(line);
    }
    out
}

/// How long after a call a traced state change still counts as the state the call's TCP_INFO saw.
const STATE_RACE_NS: TimestampNs = 500_000;

/// The peer names as the comparison table writes them.
pub fn peers_text(peers: &[Peer]) -> String {
    if peers.is_empty() {
        "—".to_string()
    } else {
        peers
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::timeline::{States, build};
    use crate::model::calls::Outcome;
    use crate::model::segment::{Segment, TcpFlags};

    use crate::testing::sides;

    fn seg(ts: i64, from: Peer, flags: u16, len: u32) -> Segment {
        crate::testing::seg(ts, from, flags, 1, 1, &vec![b'x'; len as usize])
    }

    fn call(
        peer: Peer,
        kind: CallKind,
        t: (i64, i64),
        outcome: Outcome,
        unread: Option<u32>,
    ) -> SocketCall {
        SocketCall {
            unread_before: unread,
            ..crate::testing::call(peer, kind, t, outcome)
        }
    }

    const ACK: u16 = TcpFlags::ACK;

    #[test]
    fn abrupt_close_with_unread_data_is_explained() {
        let segments = [
            seg(10_000, Peer::A, TcpFlags::PSH | ACK, 34),
            seg(51_000, Peer::B, TcpFlags::RST | ACK, 0),
        ];
        let calls = [
            call(
                Peer::A,
                CallKind::Recv,
                (20_000, 60_000),
                Outcome::Err {
                    errno: libc::ECONNRESET,
                },
                None,
            ),
            call(
                Peer::B,
                CallKind::Close,
                (50_000, 52_000),
                Outcome::Ok {
                    ret: 0,
                    data: vec![],
                },
                Some(33),
            ),
        ];
        let t = build(sides(), &calls, &segments, States::Recorded);
        let v = verdict(&t);
        assert_eq!(v.rst_from, [Peer::B]);
        assert!(v.fin_from.is_empty());
        assert_eq!(v.discarded_b, 33);
        assert_eq!(v.a_last_recv.unwrap().errno(), Some(libc::ECONNRESET));
        let text = account(&t, None, "Linux test").join("\n");
        assert!(
            text.contains("B's kernel sent RST [R.] at +41 µs, from B's close()"),
            "{text}"
        );
        assert!(
            text.contains("Thrown away unread at close(): 33 bytes at B"),
            "{text}"
        );
        assert!(text.contains("ECONNRESET"), "{text}");
        assert!(
            text.contains("Why: B closed its socket while received data was still unread"),
            "{text}"
        );
        assert!(!text.contains("Textbook vs"), "{text}");
    }

    #[test]
    fn clean_close_says_nothing_lost() {
        let segments = [
            seg(10, Peer::A, TcpFlags::FIN | ACK, 0),
            seg(20, Peer::B, TcpFlags::FIN | ACK, 0),
        ];
        let t = build(sides(), &[], &segments, States::Recorded);
        let text = account(&t, Some((Some(TcpState::TimeWait), None)), "x").join("\n");
        assert!(text.contains("No RST"), "{text}");
        assert!(
            text.contains("End states: A TIME_WAIT, B CLOSE (gone)."),
            "{text}"
        );
        assert_eq!(verdict(&t).fin_from, [Peer::A, Peer::B]);
    }

    #[test]
    fn reset_after_shutdown_names_the_kernel() {
        let segments = [
            seg(10, Peer::B, TcpFlags::FIN | ACK, 0),
            seg(31, Peer::B, TcpFlags::RST | ACK, 0),
        ];
        let t = build(
            sides(),
            &shutdown_then_close("shutdown(SHUT_WR)"),
            &segments,
            States::Recorded,
        );
        let text = account(&t, None, "Linux 9.9").join("\n");
        assert!(
            text.contains("shutdown(SHUT_WR) before close() is the fix the sockets textbook suggests. This kernel (Linux 9.9) sent the FIN at shutdown() and still an RST"),
            "{text}"
        );
    }

    /// B's shutdown (`shut`, as the call was written) at 9 µs, then its close() with 5 bytes unread at 30 µs.
    fn shutdown_then_close(shut: &str) -> [SocketCall; 2] {
        let mut shutdown = call(
            Peer::B,
            CallKind::Shutdown,
            (9, 11),
            crate::testing::ok(),
            None,
        );
        shutdown.call = shut.to_string();
        let close = call(
            Peer::B,
            CallKind::Close,
            (30, 32),
            crate::testing::ok(),
            Some(5),
        );
        [shutdown, close]
    }

    #[test]
    fn a_shutdown_of_the_reading_side_is_not_told_as_a_fin() {
        let segments = [
            seg(20, Peer::A, TcpFlags::PSH | ACK, 5),
            seg(31, Peer::B, TcpFlags::RST | ACK, 0),
        ];
        let t = build(
            sides(),
            &shutdown_then_close("shutdown(SHUT_RD)"),
            &segments,
            States::Recorded,
        );
        let text = account(&t, None, "Linux 9.9").join("\n");
        assert!(!text.contains("sent the FIN"), "{text}");
        assert!(!text.contains("SHUT_WR"), "{text}");
        assert!(
            text.contains("B's shutdown(SHUT_RD) sent no FIN: A was not told to stop sending."),
            "{text}"
        );
        assert_eq!(verdict(&t).discarded_b, 5);
    }

    #[test]
    fn a_socket_destroyed_from_outside_is_why_its_kernel_reset() {
        let segments = [seg(20, Peer::B, TcpFlags::RST | ACK, 0)];
        let failed = |errno| Outcome::Err { errno };
        let calls = [
            call(
                Peer::B,
                CallKind::Destroy,
                (10, 30),
                crate::testing::ok(),
                None,
            ),
            call(
                Peer::B,
                CallKind::Recv,
                (40, 41),
                failed(libc::ECONNABORTED),
                None,
            ),
            call(
                Peer::A,
                CallKind::Recv,
                (42, 43),
                failed(libc::ECONNRESET),
                None,
            ),
        ];
        let t = build(sides(), &calls, &segments, States::Recorded);
        let text = account(&t, None, "x").join("\n");
        assert!(text.contains("from B's sock_destroy()"), "{text}");
        assert!(
            text.contains("B's socket was destroyed from outside"),
            "{text}"
        );
        assert!(
            text.contains("B's recv() failed with ECONNABORTED, A's recv() failed with ECONNRESET"),
            "{text}"
        );
    }

    #[test]
    fn bytes_in_a_connection_never_accepted_are_counted_as_thrown_away() {
        let segments = [
            seg(10, Peer::A, TcpFlags::PSH | ACK, 34),
            seg(40, Peer::B, TcpFlags::RST | ACK, 0),
        ];
        let sent = Outcome::Ok {
            ret: 34,
            data: vec![b'x'; 34],
        };
        let mut calls = vec![
            call(
                Peer::A,
                CallKind::Connect,
                (1, 5),
                crate::testing::ok(),
                None,
            ),
            call(Peer::A, CallKind::Send, (8, 12), sent, None),
            call(
                Peer::B,
                CallKind::Close,
                (39, 41),
                crate::testing::ok(),
                None,
            ),
        ];
        let t = build(sides(), &calls, &segments, States::Recorded);
        assert_eq!(verdict(&t).discarded_b, 34);
        let text = account(&t, None, "x").join("\n");
        assert!(!text.contains("Nothing was thrown away"), "{text}");
        assert!(text.contains("34 bytes at B"), "{text}");
        // once B's application has accepted the connection, what it left unread is what close() reports
        calls.push(call(
            Peer::B,
            CallKind::Accept,
            (6, 7),
            crate::testing::ok(),
            None,
        ));
        let t = build(sides(), &calls, &segments, States::Recorded);
        assert_eq!(verdict(&t).discarded_b, 0);
    }

    #[test]
    fn the_kernels_reason_leads_and_a_time_wait_the_trace_cannot_see_is_explained() {
        use crate::explain::timeline::build_with_kernel;
        use crate::model::kernel::{KernelEvent, KernelEventKind};
        let s = sides();
        let segments = [seg(51_000, Peer::B, TcpFlags::RST | ACK, 0)];
        let mut close_a = call(
            Peer::A,
            CallKind::Close,
            (60_000, 61_000),
            Outcome::Ok {
                ret: 0,
                data: vec![],
            },
            None,
        );
        close_a.state = Some(TcpState::TimeWait);
        let setsockopt = SocketCall {
            call: "setsockopt(SO_LINGER, {on, 0 s})".into(),
            ..call(
                Peer::B,
                CallKind::SetSockOpt,
                (40_000, 41_000),
                Outcome::Ok {
                    ret: 0,
                    data: vec![],
                },
                None,
            )
        };
        let close_b = call(
            Peer::B,
            CallKind::Close,
            (50_000, 52_000),
            Outcome::Ok {
                ret: 0,
                data: vec![],
            },
            Some(0),
        );
        let events = [
            KernelEvent {
                ts: 51_004,
                what: KernelEventKind::SendReset {
                    reason: "TCP_STATE".into(),
                    state: Some(TcpState::Closed),
                    src: s.b,
                    dst: s.a,
                },
            },
            KernelEvent {
                ts: 60_500,
                what: KernelEventKind::StateChange {
                    old: TcpState::FinWait2,
                    new: TcpState::Closed,
                    src: s.a,
                    dst: s.b,
                },
            },
        ];
        let t = build_with_kernel(
            s,
            &[setsockopt, close_b, close_a],
            &segments,
            &events,
            States::Recorded,
        );
        let text = account(&t, None, "Linux 6.18").join("\n");
        assert!(
            text.contains("the kernel's own reason: TCP_STATE"),
            "{text}"
        );
        assert!(text.contains("Why: SO_LINGER"), "{text}");
        assert!(
            text.contains("reason TCP_STATE (the abort of tcp_disconnect)"),
            "{text}"
        );
        assert!(
            text.contains("socket table read TIME_WAIT — Linux ends the full socket"),
            "{text}"
        );
        assert_eq!(
            comparison_row(
                &PairRun {
                    mode: crate::model::run::Mode::Linger0,
                    a: t.sides.a,
                    b: t.sides.b,
                    calls: vec![],
                    end_states: crate::model::run::EndStates { a: None, b: None },
                },
                &t,
                "x"
            )
            .kernel_reason
            .as_deref(),
            Some("TCP_STATE")
        );
    }

    /// The race seen in `shutdown` on a loaded machine: B's close() unhashes its socket, A's ACK arrives in that
    /// instant and B's listener answers it with RST (TCP_FLAGS) a moment before close() sends its own RST. The
    /// account gives the close()'s reason, and says what the listener's RST was.
    #[test]
    fn a_listeners_rst_that_crossed_the_close_is_not_taken_for_the_closes() {
        use crate::model::kernel::KernelEvent;
        let s = sides();
        let segments = [
            seg(10_000, Peer::A, TcpFlags::PSH | ACK, 34),
            seg(51_000, Peer::B, TcpFlags::RST, 0),
            seg(52_000, Peer::B, TcpFlags::RST | ACK, 0),
        ];
        let close_b = call(
            Peer::B,
            CallKind::Close,
            (50_000, 52_000),
            Outcome::Ok {
                ret: 0,
                data: vec![],
            },
            Some(33),
        );
        let reset = |ts, reason: &str, state| KernelEvent {
            ts,
            what: KernelEventKind::SendReset {
                reason: reason.into(),
                state: Some(state),
                src: s.b,
                dst: s.a,
            },
        };
        let events = [
            reset(51_000, "TCP_FLAGS", TcpState::Listen),
            reset(52_000, "TCP_ABORT_ON_CLOSE", TcpState::FinWait1),
        ];
        let t = crate::explain::timeline::build_with_kernel(
            s,
            &[close_b],
            &segments,
            &events,
            States::Recorded,
        );
        assert_eq!(kernel_reason(&t, Peer::B), Some("TCP_ABORT_ON_CLOSE"));
        let text = account(&t, None, "Linux 6.18").join("\n");
        assert!(
            text.contains("B's kernel sent RST [R.] at +42 µs, from B's close(); the kernel's own reason: TCP_ABORT_ON_CLOSE"),
            "{text}"
        );
        assert!(
            text.contains("B's listening socket also sent RST [R] at +41 µs"),
            "{text}"
        );
    }
    /// A run with no capture: the calls alone, as `run --no-capture --no-kernel` records them.
    fn calls_only(calls: &[SocketCall]) -> String {
        let t = build(sides(), calls, &[], States::Recorded);
        account(&t, None, "Linux test").join("\n")
    }

    fn ok(ret: i64) -> Outcome {
        Outcome::Ok { ret, data: vec![] }
    }

    fn failed(errno: i32) -> Outcome {
        Outcome::Err { errno }
    }

    #[test]
    fn without_capture_a_close_with_unread_data_still_says_why_marked_as_from_the_calls() {
        let text = calls_only(&[
            call(
                Peer::A,
                CallKind::Recv,
                (20, 60),
                failed(libc::ECONNRESET),
                None,
            ),
            call(Peer::B, CallKind::Close, (50, 52), ok(0), Some(33)),
        ]);
        assert!(
            text.contains(
                "B's kernel resets the connection: B called close() with 33 bytes unread"
            ),
            "{text}"
        );
        assert!(
            text.contains("this follows from the calls; no segment was captured"),
            "{text}"
        );
        assert!(
            text.contains("Why: B closed its socket while received data was still unread"),
            "{text}"
        );
        assert!(text.contains("A's recv() failed with ECONNRESET"), "{text}");
        assert!(text.contains("Fix: B should read"), "{text}");
        // what only the wire shows is not claimed
        assert!(!text.contains("RST [R"), "{text}");
        assert!(!text.contains(" at +"), "{text}");
    }

    #[test]
    fn without_capture_a_refused_connect_and_data_after_close_are_explained() {
        let text = calls_only(&[call(
            Peer::A,
            CallKind::Connect,
            (0, 5),
            failed(libc::ECONNREFUSED),
            None,
        )]);
        assert!(
            text.contains("A's connect() failed with ECONNREFUSED"),
            "{text}"
        );
        assert!(text.contains("Fix: start the server first"), "{text}");
        let text = calls_only(&[
            call(Peer::B, CallKind::Close, (10, 12), ok(0), Some(0)),
            call(Peer::A, CallKind::Send, (20, 21), ok(15), None),
            call(Peer::A, CallKind::Send, (30, 31), failed(libc::EPIPE), None),
        ]);
        assert!(
            text.contains(
                "B had closed its socket when A sent to it; A's send() failed with EPIPE"
            ),
            "{text}"
        );
        assert!(text.contains("Why: B's application had closed"), "{text}");
    }

    #[test]
    fn without_capture_nothing_is_claimed_when_the_calls_prove_no_reset() {
        // EPIPE after A's own shutdown(SHUT_WR) is A's doing, not a reset; a clean close proves none either
        let text = calls_only(&[
            call(Peer::A, CallKind::Shutdown, (5, 6), ok(0), None),
            call(Peer::B, CallKind::Close, (10, 12), ok(0), Some(0)),
            call(Peer::A, CallKind::Send, (30, 31), failed(libc::EPIPE), None),
            call(Peer::A, CallKind::Close, (40, 41), ok(0), Some(0)),
        ]);
        assert!(!text.contains("RST"), "{text}");
        assert!(!text.contains("Why:"), "{text}");
        assert!(text.contains("No segment was captured."), "{text}");
    }
}
