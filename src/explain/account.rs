//! The account of one captured connection (`analyze --conn N`), as `run` gives one for a run of the pair: what
//! happened, the likely cause with the evidence for it, what else fits, and what to check.
//!
//! A capture shows packets, not programs: every cause here is a hypothesis weighed on the packets (the timeline's
//! inferred states, what each RST's receiver did with it, timings, windows, the IP header's TTL and ID), worded
//! "likely" and followed by what else fits. Payload previews are escaped as the timeline's (`segment::preview`);
//! the printers escape the line again in their own format.

use crate::explain::rows::{RstFate, Timeline, WireRow};
use crate::model::calls::Peer;
use crate::model::segment::{SeqNumber, TimestampNs, preview};
use crate::model::tcp_state::TcpState;
use crate::track::report::IpFacts;

/// An idle time before a FIN that makes a keep-alive race likely: the peer may reuse the connection just then.
const IDLE_NS: TimestampNs = 1_000_000_000;

fn name(p: Peer) -> &'static str {
    match p {
        Peer::A => "client",
        Peer::B => "server",
    }
}

fn ms(ns: TimestampNs) -> String {
    format!("{:.3} ms", ns as f64 / 1e6)
}

fn secs(ns: TimestampNs) -> String {
    format!("{:.1} s", ns as f64 / 1e9)
}

/// The segments of a timeline with their IP facts and the time zero.
struct Conn<'a> {
    segs: Vec<&'a WireRow>,
    ip: &'a [Option<IpFacts>],
    t0: TimestampNs,
}

impl Conn<'_> {
    fn at(&self, i: usize) -> String {
        ms(self.segs[i].segment.ts - self.t0)
    }

    fn from(&self, p: Peer) -> impl Iterator<Item = (usize, &WireRow)> {
        self.segs
            .iter()
            .enumerate()
            .filter(move |(_, w)| w.from == p)
            .map(|(i, w)| (i, *w))
    }

    /// Both sides' states after row `i` (before the first row: none).
    fn states_before(&self, i: usize) -> Option<(TcpState, TcpState)> {
        i.checked_sub(1).and_then(|j| self.segs[j].states_after)
    }
}

/// The account of a connection of a capture: a line each. `ip` holds the IP facts of the timeline's segments in
/// their order (shorter or empty when unknown).
pub fn account(t: &Timeline, ip: &[Option<IpFacts>]) -> Vec<String> {
    let c = Conn {
        segs: t.segments().collect(),
        ip,
        t0: t.t0(),
    };
    if c.segs.is_empty() {
        return vec!["No segment of this connection was captured.".to_string()];
    }
    if t.sides.a == t.sides.b {
        let port = t.sides.a.port();
        return vec![format!(
            "A socket connected to itself: {} talked to its own address and port ({} segments). Likely a connect() to a port in the ephemeral range (net.ipv4.ip_local_port_range) with nothing listening, where the kernel chose that same port as the source, so the SYN met itself (a simultaneous open with itself). Check: give the service a port outside the ephemeral range, or reserve it (net.ipv4.ip_local_reserved_ports); a client that retries connect() to {port} in a loop will sooner or later do this.",
            t.sides.a,
            c.segs.len()
        )];
    }
    let mut lines = vec![what_happened(&c)];
    let decisive = c
        .segs
        .iter()
        .position(|w| w.rst_fate == Some(RstFate::Accepted));
    lines.extend(forged(&c));
    match decisive {
        Some(i) if refused(&c, i) => lines.push(refusal(&c, i)),
        Some(i) => lines.extend(reset(&c, i)),
        None => lines.extend(no_reset(&c)),
    }
    lines
}

/// A RST that answers the SYN of a side in SYN-SENT and that it takes.
fn refused(c: &Conn, i: usize) -> bool {
    let y = c.segs[i].from.other();
    let before = c
        .states_before(i)
        .map(|(a, b)| if y == Peer::A { a } else { b });
    before == Some(TcpState::SynSent)
}

/// Who opened, how far the handshake got, the bytes each way, how it ended.
fn what_happened(c: &Conn) -> String {
    // a RST's payload is a diagnostic, not data
    let bytes = |p: Peer| -> u64 {
        c.from(p)
            .filter(|(_, w)| !w.segment.flags.rst())
            .map(|(_, w)| u64::from(w.segment.len))
            .sum()
    };
    let opened = match c.segs.iter().position(|w| {
        w.states_after
            .is_some_and(|(a, b)| a == TcpState::Established || b == TcpState::Established)
    }) {
        Some(i) if c.segs[0].segment.flags.syn() => format!("Handshake complete at {}", c.at(i)),
        Some(_) => "The capture begins mid-connection".to_string(),
        None if c.segs[0].segment.flags.syn() => "The handshake never completed".to_string(),
        None => "No handshake seen".to_string(),
    };
    let last = c.segs.len() - 1;
    format!(
        "{opened}; the client sent {} bytes, the server {}; {} segments over {}, ending with the client {} and the server {}.",
        bytes(Peer::A),
        bytes(Peer::B),
        c.segs.len(),
        c.at(last),
        c.segs[last]
            .states_after
            .map_or("?".into(), |s| s.0.to_string()),
        c.segs[last]
            .states_after
            .map_or("?".into(), |s| s.1.to_string()),
    )
}

fn refusal(c: &Conn, i: usize) -> String {
    let w = c.segs[i];
    let port = w.segment.src.port();
    format!(
        "Refused (at {}): the {} answered the SYN with a RST that acknowledges it, as a kernel does when nothing listens on port {port}. Also fits: a firewall rejecting with tcp-reset, a listener whose backlog overflowed with tcp_abort_on_overflow. Check: that the service listens on {} (ss -ltn 'sport = :{port}'), and the firewall's reject rules.",
        c.at(i),
        name(w.from),
        w.segment.src
    )
}

/// No RST taken: a clean close, a half-close, a handshake that never completed, or still open.
fn no_reset(c: &Conn) -> Vec<String> {
    let syns = c
        .from(Peer::A)
        .filter(|(_, w)| w.segment.flags.syn() && !w.segment.flags.ack());
    let syn_times: Vec<TimestampNs> = syns.map(|(_, w)| w.segment.ts).collect();
    let answered = c.from(Peer::B).any(|(_, w)| w.segment.flags.syn());
    let mut lines: Vec<String> = c
        .segs
        .iter()
        .enumerate()
        .filter(|(_, w)| w.rst_fate.is_some())
        .map(|(i, w)| untaken_rst(c, i, w))
        .collect();
    let aborted = c.from(Peer::A).any(|(_, w)| w.segment.flags.rst());
    if !syn_times.is_empty() && !answered && aborted {
        return lines;
    }
    if !lines.is_empty() {
        lines.extend(no_reset_ending(c, &syn_times, answered));
        return lines;
    }
    no_reset_ending(c, &syn_times, answered)
}

/// A RST its receiver did not take, in words.
fn untaken_rst(c: &Conn, i: usize, w: &WireRow) -> String {
    let (xn, yn) = (name(w.from), name(w.from.other()));
    let opening =
        w.from == Peer::A && !c.from(Peer::B).any(|(j, v)| j < i && v.segment.flags.syn());
    let what = match w.rst_fate {
        Some(RstFate::Listener) => format!("the {yn}, in LISTEN, ignores it"),
        Some(RstFate::UnacceptableAck) => {
            format!("the {yn}, in SYN_SENT, drops it: it does not acknowledge the SYN")
        }
        Some(RstFate::Challenge { .. }) => {
            let seen = w
                .notes
                .iter()
                .any(|n| n.contains("likely that challenge ACK"));
            let ack = if seen {
                "its challenge ACK follows"
            } else {
                "no challenge ACK from it shows in the capture"
            };
            format!("in the {yn}'s window but not exact, it keeps the connection; {ack}")
        }
        Some(RstFate::OutOfWindow { .. }) => format!("out of the {yn}'s window, dropped silently"),
        _ => format!("the {yn} had nothing left to reset"),
    };
    if opening {
        format!(
            "The {xn} abandoned its own connection attempt: a RST {} after its SYN, before any answer ({what}). Likely a cancelled or timed-out connect() whose socket was closed, or a scanner. Check: the {xn}'s connect timeout.",
            ms(w.segment.ts - c.segs[0].segment.ts)
        )
    } else {
        format!("The {xn}'s RST at {} was not taken: {what}.", c.at(i))
    }
}

/// How a connection without a RST taken ended.
fn no_reset_ending(c: &Conn, syn_times: &[TimestampNs], answered: bool) -> Vec<String> {
    let fins = |p: Peer| c.from(p).any(|(_, w)| w.segment.flags.fin());
    if !syn_times.is_empty() && !answered {
        let span = syn_times.last().unwrap() - syn_times[0];
        return vec![format!(
            "Handshake timeout, likely: {} SYN{} over {} and no answer in the capture. The SYN or its answer was dropped on the way (a firewall that drops rather than rejects, no route, the host down), or the capture missed the answers. Check: reachability of {} (ping, traceroute -T -p {}), firewall DROP rules, and whether the capture saw both directions.",
            syn_times.len(),
            if syn_times.len() == 1 { "" } else { "s" },
            secs(span),
            c.segs[0].segment.dst,
            c.segs[0].segment.dst.port()
        )];
    }
    match (fins(Peer::A), fins(Peer::B)) {
        (true, true) => vec!["Closed cleanly: a FIN each way, no RST taken.".to_string()],
        (true, false) | (false, true) => {
            let p = if fins(Peer::A) { Peer::A } else { Peer::B };
            vec![format!(
                "Half-closed: the {} sent its FIN, none came back before the capture ended. Fine if the {} still had data to send (shutdown(SHUT_WR) by the {}); else check whether the {}'s application ever called close().",
                name(p),
                name(p.other()),
                name(p),
                name(p.other())
            )]
        }
        (false, false) => {
            vec!["Still open at the end of the capture: no FIN or RST taken.".to_string()]
        }
    }
}

/// What the RST taken at row `i` likely means, with the request in flight.
fn reset(c: &Conn, i: usize) -> Vec<String> {
    let w = c.segs[i];
    let x = w.from;
    let mut lines = Vec::new();
    let cause = duplicate_syn_reset(c, i)
        .or_else(|| already_gone(c, i))
        .or_else(|| after_own_fin(c, i))
        .or_else(|| no_socket(c, i))
        .or_else(|| keepalive_gave_up(c, i))
        .or_else(|| zero_window(c, i))
        .or_else(|| unread(c, i))
        .or_else(|| abort_in_close_wait(c, i))
        .unwrap_or_else(|| {
            format!(
                "The {} reset the connection at {}; the packets do not point at one cause. What fits: close() with unread data or SO_LINGER {{1, 0}}, a keepalive or TCP_USER_TIMEOUT expiry, memory pressure or too many orphaned sockets, ss -K, or a middlebox. Check: the {}'s application logs at that moment, and netstat -s (TcpExt) on its host.",
                name(x),
                c.at(i),
                name(x)
            )
        });
    lines.push(cause);
    // a dead peer's or an answered peer's last data was not what the reset cut short
    let cut_short = keepalive_gave_up(c, i).is_none() && abort_in_close_wait(c, i).is_none();
    if let Some(req) = in_flight(c, i).filter(|_| cut_short) {
        lines.push(req);
    }
    lines
}

/// An old duplicate SYN after the close, answered by a listener with a new SYN-ACK; the other side's old socket
/// answers with its old ACK and the RST for that unacceptable ACK is the one taken.
fn duplicate_syn_reset(c: &Conn, i: usize) -> Option<String> {
    let w = c.segs[i];
    let bad_ack = w.notes.iter().any(|n| n.contains("stays in SYN_RECV"));
    let (d, _) = c.segs[..i]
        .iter()
        .enumerate()
        .find(|(_, v)| v.notes.iter().any(|n| n.starts_with("duplicate SYN")))?;
    if !bad_ack {
        return None;
    }
    let (x, y) = (name(w.from), name(w.from.other()));
    // the SYN's sender in TIME_WAIT, both FINs acknowledged: the old connection had closed cleanly
    let closed = c
        .states_before(d)
        .is_some_and(|(a, b)| TcpState::TimeWait == if w.from == Peer::A { b } else { a });
    let (when, lost) = if closed {
        (
            "after the connection had closed",
            " Nothing of the old connection's data was lost: it had closed cleanly before.",
        )
    } else {
        ("after its handshake was done", "")
    };
    let later = c.segs[i + 1..]
        .iter()
        .any(|v| v.from == w.from.other() && v.segment.flags.rst());
    let then = if later {
        format!(
            " The {y}'s later RST (instead of the ACK its TIME_WAIT gave before) shows that socket was gone by then."
        )
    } else {
        String::new()
    };
    Some(format!(
        "An old duplicate SYN, likely: a copy of the {y}'s first SYN was captured at {}, {when} (the network duplicated and delayed it). The {x}, listening, took it as a new connection and answered with a SYN-ACK of new numbers; the {y}'s old socket answered with its old ACK, which the {x} in SYN_RECV answered with this RST at {} (RFC 9293 §3.10.7.4). That RST ended the {y}'s TIME_WAIT early (Linux, net.ipv4.tcp_rfc1337 = 0: the hazard RFC 1337 describes).{then}{lost} Check: what on the path duplicates segments (a bonding or mirroring misconfiguration, a flapping route), and net.ipv4.tcp_rfc1337 = 1 to keep TIME_WAIT through such RSTs.",
        c.at(d),
        c.at(i),
    ))
}

/// The sender had reset or closed already: its kernel answers for a socket that no longer exists.
fn already_gone(c: &Conn, i: usize) -> Option<String> {
    let w = c.segs[i];
    let x = w.from;
    let earlier = c
        .from(x)
        .take_while(|(j, _)| *j < i)
        .find(|(_, v)| v.rst_fate == Some(RstFate::Accepted));
    let (j, _) = earlier?;
    Some(format!(
        "A reset for a socket that no longer exists: the {} had reset this connection at {} already; this RST (at {}) is its kernel's answer to the {}'s later segment. Nothing more was lost by it: look at the first RST.",
        name(x),
        c.at(j),
        c.at(i),
        name(x.other())
    ))
}

/// A RST without ACK whose sequence number is the peer's last ACK: what a kernel sends for a segment it has no
/// socket for (RFC 9293 §3.10.7.1).
fn no_socket(c: &Conn, i: usize) -> Option<String> {
    let w = c.segs[i];
    let x = w.from;
    if w.segment.flags.ack() {
        return None;
    }
    let (p, last) = c.segs[..i]
        .iter()
        .enumerate()
        .rev()
        .find(|(_, v)| v.from != x)?;
    if !(last.segment.flags.ack() && last.segment.ack == w.segment.seq) {
        return None;
    }
    let own = c.from(x).take_while(|(j, _)| *j < i).last();
    let quiet = own.map_or(String::new(), |(j, _)| {
        format!(
            " (it had been silent for {})",
            secs(w.segment.ts - c.segs[j].segment.ts)
        )
    });
    let fin_wait2 = own.is_some_and(|(j, v)| {
        v.states_after.is_some_and(|s| {
            let mine = if x == Peer::A { s.0 } else { s.1 };
            mine == TcpState::FinWait2 || (j > 0 && v.segment.flags.fin())
        })
    });
    let after_fin = if fin_wait2 {
        format!(
            " The {} had sent its FIN: its orphaned socket likely timed out of FIN_WAIT2 (net.ipv4.tcp_fin_timeout, 60 s) or was killed as an orphan.",
            name(x)
        )
    } else {
        String::new()
    };
    Some(format!(
        "A reset for a socket that no longer exists, likely: the {}'s RST at {} has no ACK and takes its sequence number from the {}'s segment at {} — how a kernel answers a segment it has no socket for{quiet}.{after_fin} Also fits: the socket was closed and freed, killed (too many orphans, memory pressure, ss -K), its host restarted, or a NAT or load balancer sent the segment to another host. Check: the {}'s logs and uptime at that moment.",
        name(x),
        c.at(i),
        name(x.other()),
        c.at(p),
        name(x)
    ))
}

/// Keepalive probes from the RST's sender (sequence number one below its next byte, no data), unanswered, at
/// regular intervals, then the RST: the peer is likely gone.
fn keepalive_gave_up(c: &Conn, i: usize) -> Option<String> {
    let x = c.segs[i].from;
    let mut next: Option<SeqNumber> = None;
    let mut probes = Vec::new();
    for (j, w) in c.from(x).take_while(|(j, _)| *j < i) {
        let s = &w.segment;
        let end = s.seq + s.seq_len();
        let probe =
            s.len <= 1 && !s.flags.syn() && !s.flags.fin() && next.is_some_and(|n| s.seq + 1 == n);
        if probe {
            probes.push(j);
        } else {
            probes.clear();
        }
        next = Some(next.map_or(end, |n| n.latest(end)));
    }
    // unanswered: nothing from the peer after the first probe
    let first = *probes.first()?;
    if probes.len() < 2 || c.segs[first..i].iter().any(|w| w.from != x) {
        return None;
    }
    let times: Vec<TimestampNs> = probes.iter().map(|&j| c.segs[j].segment.ts).collect();
    let gaps: Vec<TimestampNs> = times.windows(2).map(|p| p[1] - p[0]).collect();
    let (lo, hi) = (*gaps.iter().min()?, *gaps.iter().max()?);
    let idle = first
        .checked_sub(1)
        .map(|p| c.segs[first].segment.ts - c.segs[p].segment.ts);
    Some(format!(
        "Dead peer, likely: after {} idle the {} sent {} keepalive probes (sequence number one below its next byte, no data) every {}{}, none answered, then reset. The {} is probably gone: crashed, rebooted, unplugged, or a NAT or firewall on the way forgot the connection. Also fits: the answers were lost one way only. Check: the {}'s host and the state tables between (conntrack -L), and tcp_keepalive_time/intvl/probes.",
        idle.map_or("a while".to_string(), secs),
        name(x),
        probes.len(),
        secs(lo),
        if hi - lo > lo / 4 {
            format!(" to {}", secs(hi))
        } else {
            String::new()
        },
        name(x.other()),
        name(x.other())
    ))
}

/// The RST's sender had sent its FIN, and the peer sent data after it: a keep-alive race when the FIN came
/// after an idle time, else data after a close().
fn after_own_fin(c: &Conn, i: usize) -> Option<String> {
    let x = c.segs[i].from;
    let (f, fin) = c
        .from(x)
        .take_while(|(j, _)| *j < i)
        .find(|(_, w)| w.segment.flags.fin())?;
    let late: Vec<&WireRow> = c.segs[f + 1..i]
        .iter()
        .filter(|w| w.from == x.other() && w.segment.len > 0)
        .copied()
        .collect();
    let first = late.first()?;
    let bytes: u64 = late.iter().map(|w| u64::from(w.segment.len)).sum();
    let idle = f
        .checked_sub(1)
        .map(|p| fin.segment.ts - c.segs[p].segment.ts);
    let (xn, yn) = (name(x), name(x.other()));
    if let Some(idle) = idle.filter(|&g| g >= IDLE_NS && first.segment.ts - fin.segment.ts < g) {
        return Some(format!(
            "Keep-alive race, likely: the connection was idle for {}, then the {xn} closed it (FIN at {}); {} later the {yn} sent {bytes} bytes on it anyway (it had not seen the FIN yet, or reused a pooled connection), and the {xn}'s kernel reset. Also fits: the {yn} ignoring the FIN. Check: the {xn}'s idle timeout against the {yn}'s (a client's pool must drop connections before the server's keep-alive timeout does), and retries of idempotent requests.",
            secs(idle),
            ms(fin.segment.ts - c.t0),
            ms(first.segment.ts - fin.segment.ts),
        ));
    }
    Some(format!(
        "Data after the {xn}'s FIN, likely a close(): the {xn} sent its FIN at {}, the {yn} then sent {bytes} bytes, and the {xn}'s kernel answered with RST — a socket closed for reading refuses data. Also fits: the {xn} shut down both ways (shutdown(SHUT_RDWR)) or its process exited. Check: whether the {xn} meant to wait for the {yn}'s answer (shutdown(SHUT_WR), read to end of stream, then close()).",
        ms(fin.segment.ts - c.t0),
    ))
}

/// The RST's sender had taken the peer's FIN (CLOSE_WAIT) with everything answered, and aborted instead of
/// sending its own FIN.
fn abort_in_close_wait(c: &Conn, i: usize) -> Option<String> {
    let x = c.segs[i].from;
    let (a, b) = c.states_before(i)?;
    let mine = if x == Peer::A { a } else { b };
    (mine == TcpState::CloseWait).then(|| {
        let (xn, yn) = (name(x), name(x.other()));
        format!(
            "Abortive close after the {yn}'s FIN, likely: the {xn} had answered everything, took the {yn}'s FIN (CLOSE_WAIT) and then closed with RST instead of its own FIN: SO_LINGER {{1, 0}}, as some servers do on purpose to skip TIME_WAIT. Nothing the {yn} sent was lost. Also fits: a close() with a last unread byte, ss -K. Check: nothing, unless the {yn}'s application reports ECONNRESET."
        )
    })
}

/// A zero window before the RST: one side stopped reading, the other gave up (or the stuck side aborted).
fn zero_window(c: &Conn, i: usize) -> Option<String> {
    let (z, w) = c.segs[..i]
        .iter()
        .enumerate()
        .find(|(_, w)| w.segment.window == 0 && !w.segment.flags.rst() && !w.segment.flags.syn())?;
    let x = c.segs[i].from;
    Some(format!(
        "Zero window, then abort: the {} advertised a zero window at {} (its application stopped reading) and the {} reset {} later. Likely: a persist or TCP_USER_TIMEOUT expiry, or an application that gave up on a stuck peer. Check: why the {}'s application stopped reading (blocked, overloaded), and its receive buffer (ss -tm).",
        name(w.from),
        c.at(z),
        name(x),
        ms(c.segs[i].segment.ts - w.segment.ts),
        name(w.from)
    ))
}

/// The peer's data after the RST sender's last data, and the sender's window shrinking by it: left unread.
fn unread(c: &Conn, i: usize) -> Option<String> {
    let x = c.segs[i].from;
    let last_x_data = c
        .from(x)
        .take_while(|(j, _)| *j < i)
        .filter(|(_, w)| w.segment.len > 0)
        .last()
        .map(|(j, _)| j);
    let start = last_x_data.map_or(0, |j| j + 1);
    let bytes: u64 = c.segs[start..i]
        .iter()
        .filter(|w| w.from == x.other())
        .map(|w| u64::from(w.segment.len))
        .sum();
    if bytes == 0 {
        return None;
    }
    // the sender's windows before the request's first byte came and after it: a reading application makes room
    // (a window update), an unread buffer does not
    let first = (start..i).find(|&j| c.segs[j].from == x.other() && c.segs[j].segment.len > 0)?;
    let window = |r: std::ops::Range<usize>| -> Vec<u16> {
        c.segs[r]
            .iter()
            .filter(|w| w.from == x && !w.segment.flags.syn())
            .map(|w| w.segment.window)
            .collect()
    };
    let (before, after) = (window(0..first), window(first..i));
    let (xn, yn) = (name(x), name(x.other()));
    let evidence = match (before.iter().max(), after.iter().min(), after.last()) {
        (Some(&max), Some(_), Some(&last)) if last < max => Some(format!(
            "its window fell from {max} to {last} (as on the wire) and never opened again"
        )),
        (_, _, Some(_)) if after.windows(2).all(|p| p[1] <= p[0]) => {
            Some("it acknowledged them but sent no window update, no answer and no FIN".to_string())
        }
        (_, None, None) => Some("it sent nothing between them and the RST".to_string()),
        _ => None,
    };
    let also = "Also fits: SO_LINGER {1, 0}, a keepalive or TCP_USER_TIMEOUT expiry, ss -K, memory pressure";
    Some(match evidence {
        Some(e) => format!(
            "Close with unread data, likely: the {xn} reset at {} with the {yn}'s last {bytes} bytes unanswered, and {e}: the data sat unread when the socket was closed, and its kernel then sends RST instead of FIN. {also}. Check: whether the {xn}'s application reads everything the {yn} sent before it closes.",
            c.at(i)
        ),
        None => format!(
            "Reset by the {xn} at {}, after the {yn}'s last {bytes} bytes, which it never answered; its window grew after them, so they were likely read. What fits: an application that gave up on the request (close() with SO_LINGER {{1, 0}}, or with more unread), a keepalive or TCP_USER_TIMEOUT expiry, ss -K, memory pressure, a middlebox. Check: the {xn}'s application at that moment.",
            c.at(i)
        ),
    })
}

/// The peer's last data before the RST that was not answered: the request in flight, previewed.
fn in_flight(c: &Conn, i: usize) -> Option<String> {
    let x = c.segs[i].from;
    let (j, w) = c.segs[..i]
        .iter()
        .enumerate()
        .rev()
        .take_while(|(_, w)| w.from != x || w.segment.len == 0)
        .find(|(_, w)| w.from != x && w.segment.len > 0)?;
    Some(format!(
        "In flight when the reset came: the {}'s {} bytes at {}, not answered: \"{}\"",
        name(w.from),
        w.segment.len,
        c.at(j),
        preview(&w.segment.payload, 60)
    ))
}

/// An IP ID unlike the sender's: the other side's own (copied into a forged reply), or far from a sender whose
/// IDs run in sequence. Random or constant IDs (other stacks, crafted files) tell nothing.
fn ip_id_evidence(c: &Conn, x: Peer, id: u16, others: &[IpFacts]) -> Option<String> {
    // Linux sends IP ID 0 in DF packets of no full socket (a SYN-ACK from a request socket, a RST for a segment
    // it has no socket for): a 0 says nothing of who sent it
    if id == 0 {
        return None;
    }
    let ids: Vec<u16> = others.iter().filter_map(|o| o.ip_id).collect();
    let ip = |j: usize| c.ip.get(j).copied().flatten();
    let copied = !ids.contains(&id)
        && c.from(x.other())
            .any(|(j, _)| ip(j).and_then(|o| o.ip_id) == Some(id));
    if copied {
        return Some(format!("IP ID {id:#06x}, the {}'s own", name(x.other())));
    }
    let close = |a: u16, b: u16| a.wrapping_sub(b) < 1000 || b.wrapping_sub(a) < 1000;
    let sequential = ids.len() >= 2 && ids.windows(2).all(|p| p[1] != p[0] && close(p[0], p[1]));
    (sequential && !ids.iter().any(|&o| close(o, id)))
        .then(|| format!("IP ID {id:#06x}, far from the {}'s sequence", name(x)))
}

/// A RST's window that is one the other side advertised and unlike every window its sender did: a forger tends
/// to copy the numbers it saw. A window merely new to the sender is no evidence: stacks differ in what their RST
/// carries (0 on Linux; some load balancers and Windows put their own current window).
fn window_evidence(c: &Conn, i: usize) -> Option<String> {
    let w = c.segs[i];
    let win = w.segment.window;
    let own: std::collections::BTreeSet<u16> = c
        .from(w.from)
        .filter(|(j, v)| *j != i && !v.segment.flags.rst())
        .map(|(_, v)| v.segment.window)
        .collect();
    let copied = c.from(w.from.other()).any(|(_, v)| v.segment.window == win);
    if win == 0 || own.is_empty() || own.contains(&win) || !copied {
        return None;
    }
    let listed: Vec<String> = own.iter().take(4).map(u16::to_string).collect();
    let more = if own.len() > 4 { ", …" } else { "" };
    Some(format!(
        "window {win}, the {}'s own, where the {}'s other packets have {}{more}",
        name(w.from.other()),
        name(w.from),
        listed.join(", ")
    ))
}

/// RSTs whose IP header is unlike the sender's other packets (TTL, IP ID) or that a SYN-SENT socket cannot
/// accept: likely injected on the path.
fn forged(c: &Conn) -> Vec<String> {
    let mut lines = Vec::new();
    for (i, w) in c
        .segs
        .iter()
        .enumerate()
        .filter(|(_, w)| w.segment.flags.rst())
    {
        let mut evidence = Vec::new();
        let ip = |j: usize| c.ip.get(j).copied().flatten();
        if let Some(me) = ip(i) {
            let others: Vec<IpFacts> = c
                .from(w.from)
                .filter(|(j, v)| *j != i && !v.segment.flags.rst())
                .filter_map(|(j, _)| ip(j))
                .collect();
            if !others.is_empty() && others.iter().all(|o| o.ttl != me.ttl) {
                let ttls: Vec<String> = others
                    .iter()
                    .map(|o| o.ttl.to_string())
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                evidence.push(format!(
                    "TTL {} where the {}'s other packets have {}",
                    me.ttl,
                    name(w.from),
                    ttls.join(", ")
                ));
            }
            if let Some(id) = me.ip_id {
                evidence.extend(ip_id_evidence(c, w.from, id, &others));
            }
        }
        evidence.extend(window_evidence(c, i));
        if w.rst_fate == Some(RstFate::UnacceptableAck) {
            evidence.push(format!(
                "its ACK is not acceptable in SYN_SENT, so the {} dropped it",
                name(w.from.other())
            ));
        }
        if evidence.is_empty() {
            continue;
        }
        lines.push(format!(
            "The RST at {} looks injected, not sent by the {}: {}. Likely an on-path device (IDS, censor, load balancer) forging resets. Also fits: another host answering for the {}'s address. Check: a capture at the {} itself — its own RST would show there.",
            c.at(i),
            name(w.from),
            evidence.join("; "),
            name(w.from),
            name(w.from)
        ));
    }
    lines
}
