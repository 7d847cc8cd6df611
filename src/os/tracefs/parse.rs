//! One line of `trace_pipe` text → one kernel event. The kernel prints enum names itself (reset reasons, states),
//! so reading the text needs no table of numbers; the header's timestamp is in the instance's trace clock.
//!
//! A line looks like
//! `  python3-20093   [001] ..s2.   832.997484: tcp_receive_reset: family=AF_INET sport=54966 dport=45678 …`.
//! The task name may hold spaces and colons, so the line is cut at `: <event>: `, not split on whitespace.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use crate::model::kernel::KernelEventKind;
use crate::model::tcp_state::TcpState;

/// The events we enable, as `group/name`.
pub const EVENTS: [&str; 4] = [
    "tcp/tcp_send_reset",
    "tcp/tcp_receive_reset",
    "sock/inet_sock_set_state",
    "sock/inet_sk_error_report",
];

/// What one line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// An event at `clock_ns` on the instance's trace clock.
    Event {
        clock_ns: i64,
        kind: KernelEventKind,
    },
    /// `CPU:1 [LOST 12 EVENTS]`: the kernel overwrote events before we read them.
    Lost(u64),
    /// A line we expected and may drop: a blank line, a non-TCP protocol.
    Skip,
    /// A line we could not read.
    Unreadable,
}

pub fn parse_line(line: &str) -> Line {
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Line::Skip;
    }
    if let Some(n) = lost_count(trimmed) {
        return Line::Lost(n);
    }
    // The last `: <event>: ` in the line is the real one (a task name could hold another).
    let Some((event, header, body)) = EVENTS
        .iter()
        .filter_map(|e| {
            let name = e.split('/').nth(1)?;
            let (header, body) = trimmed.rsplit_once(&format!(": {name}: "))?;
            Some((name, header, body))
        })
        .max_by_key(|(_, header, _)| header.len())
    else {
        return Line::Unreadable;
    };
    let Some(clock_ns) = header.split_whitespace().last().and_then(clock_ns) else {
        return Line::Unreadable;
    };
    let fields: HashMap<&str, &str> = body
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    match event_kind(event, &fields) {
        Some(Some(kind)) => Line::Event { clock_ns, kind },
        Some(None) => Line::Skip,
        None => Line::Unreadable,
    }
}

/// `Some(None)` for an event that is not TCP.
fn event_kind(event: &str, f: &HashMap<&str, &str>) -> Option<Option<KernelEventKind>> {
    if f.get("protocol").is_some_and(|p| *p != "IPPROTO_TCP") {
        return Some(None);
    }
    Some(Some(match event {
        "tcp_send_reset" => {
            let (src, dst) = match (f.get("src"), f.get("dest")) {
                (Some(s), Some(d)) => (s.parse().ok()?, d.parse().ok()?),
                _ => addresses(f)?,
            };
            KernelEventKind::SendReset {
                reason: f.get("reason")?.to_string(),
                state: f.get("state").and_then(|s| tcp_state(s)),
                src,
                dst,
            }
        }
        "tcp_receive_reset" => {
            let (src, dst) = addresses(f)?;
            KernelEventKind::ReceiveReset { src, dst }
        }
        "inet_sock_set_state" => {
            let (src, dst) = addresses(f)?;
            KernelEventKind::StateChange {
                old: tcp_state(f.get("oldstate")?)?,
                new: tcp_state(f.get("newstate")?)?,
                src,
                dst,
            }
        }
        "inet_sk_error_report" => {
            let (src, dst) = addresses(f)?;
            KernelEventKind::ErrorReport {
                errno: f.get("error")?.parse().ok()?,
                src,
                dst,
            }
        }
        _ => return None,
    }))
}

/// Source and destination from `family sport dport saddr daddr saddrv6 daddrv6`.
fn addresses(f: &HashMap<&str, &str>) -> Option<(SocketAddr, SocketAddr)> {
    let (s, d) = match *f.get("family")? {
        "AF_INET6" => ("saddrv6", "daddrv6"),
        _ => ("saddr", "daddr"),
    };
    let ip = |k: &str| f.get(k)?.parse::<IpAddr>().ok();
    let port = |k: &str| f.get(k)?.parse::<u16>().ok();
    Some((
        SocketAddr::new(ip(s)?, port("sport")?),
        SocketAddr::new(ip(d)?, port("dport")?),
    ))
}

/// A kernel state name (`TCP_FIN_WAIT2`, `TCP_NEW_SYN_RECV`); `None` for `UNKNOWN` (no socket).
pub fn tcp_state(name: &str) -> Option<TcpState> {
    match name.strip_prefix("TCP_")? {
        "NEW_SYN_RECV" => Some(TcpState::SynReceived),
        other => TcpState::from_linux_name(other),
    }
}

/// `832.997484` (s.µs, or s.ns) → ns.
fn clock_ns(stamp: &str) -> Option<i64> {
    let stamp = stamp.strip_suffix(':').unwrap_or(stamp);
    let (secs, frac) = stamp.split_once('.')?;
    if frac.is_empty() || frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let scale = 10i64.pow(9 - frac.len() as u32);
    Some(secs.parse::<i64>().ok()? * 1_000_000_000 + frac.parse::<i64>().ok()? * scale)
}

/// `CPU:1 [LOST 12 EVENTS]` → 12.
fn lost_count(line: &str) -> Option<u64> {
    let rest = line.strip_prefix("CPU:")?;
    let n = rest.split_once("[LOST ")?.1.split_whitespace().next()?;
    n.parse().ok()
}

#[cfg(test)]
mod tests;
