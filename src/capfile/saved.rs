//! A run saved in a capture file, so it carries its story: the captured frames, and A's and B's socket calls.
//!
//! pcapng: every call becomes a packet comment on the frame it belongs with (the first frame captured once the
//! call had started), which Wireshark and tshark show; the whole run — mode, kernel, addresses, every call with
//! its exact times, results and states — is also written, machine-readable, as a second comment of the section
//! header, which is what `analyze` reads back. Readers that know nothing of us skip comments and see every packet.
//! Classic pcap has no place for comments: it holds the frames alone.
//!
//! The kernel's own events, when the run traced them, go the same two ways: a packet comment each on the frame
//! they belong with, and a third section-header comment ([`KERNEL_MARKER`], an event per line). A separate comment
//! keeps the run's own readable by versions that know nothing of kernel events; a run saved before them has none,
//! and reads back with `trace: None`.
//!
//! Contract: never panics. Reading back (`read_run`, `run_in_bytes`, `parse_run_comment`) gives `None` for a file or
//! comment that is not ours or is damaged in any way, never a partial run. The bytes are written by `write`; a
//! comment longer than a pcapng option can hold (65,532 bytes) is cut there.

use std::net::SocketAddr;

use serde_json::{Value, json};

use crate::capfile::Endian;
use crate::capfile::pcapng::{IF_NAME, IF_TSRESOL, SHB_OS, SHB_USERAPPL};
use crate::capfile::write::{Opt, PcapWriter, PcapngWriter};
use crate::model::calls::{CallKind, Outcome, Peer, SocketCall};
use crate::model::frame::RawFrame;
use crate::model::kernel::{KernelEvent, KernelEventKind, KernelTrace};
use crate::model::run::{EndStates, Mode, PairRun};
use crate::model::segment::TimestampNs;
use crate::model::tcp_state::TcpState;

/// The first line of the section-header comment that carries a run.
pub const MARKER: &str = "tcp-close-watch/run v1";

/// The first line of the section-header comment that carries the kernel's events of a run.
pub const KERNEL_MARKER: &str = "tcp-close-watch/kernel v1";

/// A run as read back from a file.
#[derive(Debug, Clone, PartialEq)]
pub struct SavedRun {
    pub pair: PairRun,
    pub kernel: String,
    /// The kernel's events, when the run traced them.
    pub trace: Option<KernelTrace>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn call_json(c: &SocketCall) -> Value {
    json!({
        "peer": c.peer.to_string(),
        "kind": c.kind.name(),
        "call": c.call,
        "t_start": c.t_start,
        "t_end": c.t_end,
        "ret": c.ret(),
        "errno": c.errno(),
        "data": hex(c.data()),
        "state": c.state.map(|s| s.linux_name()),
        "unread_before": c.unread_before,
    })
}

fn call_from_json(v: &Value) -> Option<SocketCall> {
    let peer = match v["peer"].as_str()? {
        "A" => Peer::A,
        "B" => Peer::B,
        _ => return None,
    };
    let outcome = match v["errno"].as_i64() {
        Some(errno) => Outcome::Err {
            errno: i32::try_from(errno).ok()?,
        },
        None => Outcome::Ok {
            ret: v["ret"].as_i64()?,
            data: unhex(v["data"].as_str()?)?,
        },
    };
    let state = match &v["state"] {
        Value::Null => None,
        s => Some(TcpState::from_linux_name(s.as_str()?)?),
    };
    let unread_before = match &v["unread_before"] {
        Value::Null => None,
        n => Some(u32::try_from(n.as_u64()?).ok()?),
    };
    Some(SocketCall {
        peer,
        kind: CallKind::from_name(v["kind"].as_str()?)?,
        call: v["call"].as_str()?.to_string(),
        t_start: v["t_start"].as_i64()?,
        t_end: v["t_end"].as_i64()?,
        outcome,
        state,
        unread_before,
    })
}

fn event_json(e: &KernelEvent) -> Value {
    let mut v = json!({
        "t": e.ts,
        "event": e.what.name(),
        "src": e.what.src().to_string(),
        "dst": e.what.dst().to_string(),
    });
    match &e.what {
        KernelEventKind::SendReset { reason, state, .. } => {
            v["reason"] = reason.as_str().into();
            v["state"] = state.map(|s| s.linux_name()).into();
        }
        KernelEventKind::ReceiveReset { .. } => {}
        KernelEventKind::StateChange { old, new, .. } => {
            v["old"] = old.linux_name().into();
            v["new"] = new.linux_name().into();
        }
        KernelEventKind::ErrorReport { errno, .. } => v["errno"] = (*errno).into(),
    }
    v
}

fn event_from_json(v: &Value) -> Option<KernelEvent> {
    let src: SocketAddr = v["src"].as_str()?.parse().ok()?;
    let dst: SocketAddr = v["dst"].as_str()?.parse().ok()?;
    let state = |k: &str| TcpState::from_linux_name(v[k].as_str()?);
    let what = match v["event"].as_str()? {
        "send_reset" => KernelEventKind::SendReset {
            reason: v["reason"].as_str()?.to_string(),
            state: match &v["state"] {
                Value::Null => None,
                _ => Some(state("state")?),
            },
            src,
            dst,
        },
        "receive_reset" => KernelEventKind::ReceiveReset { src, dst },
        "state" => KernelEventKind::StateChange {
            old: state("old")?,
            new: state("new")?,
            src,
            dst,
        },
        "error_report" => KernelEventKind::ErrorReport {
            errno: i32::try_from(v["errno"].as_i64()?).ok()?,
            src,
            dst,
        },
        _ => return None,
    };
    Some(KernelEvent {
        ts: v["t"].as_i64()?,
        what,
    })
}

/// The kernel's events as a section-header comment: the marker line, a header object, then an event per line.
pub fn kernel_comment(trace: &KernelTrace) -> String {
    let header = json!({
        "lost_events": trace.lost_events,
        "unreadable": trace.unreadable,
    });
    let mut out = format!("{KERNEL_MARKER}\n{header}\n");
    for e in &trace.events {
        out.push_str(&event_json(e).to_string());
        out.push('\n');
    }
    out
}

/// Read the kernel's events back from a section-header comment; `None` when it is not ours or is damaged.
pub fn parse_kernel_comment(text: &str) -> Option<KernelTrace> {
    let mut lines = text.lines();
    if lines.next()? != KERNEL_MARKER {
        return None;
    }
    let header: Value = serde_json::from_str(lines.next()?).ok()?;
    let events = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .ok()
                .and_then(|v: Value| event_from_json(&v))
        })
        .collect::<Option<Vec<_>>>()?;
    let unreadable = header["unreadable"]
        .as_array()?
        .iter()
        .map(|l| l.as_str().map(str::to_string))
        .collect::<Option<Vec<_>>>()?;
    Some(KernelTrace {
        events,
        lost_events: header["lost_events"].as_u64()?,
        unreadable,
    })
}

/// The machine-readable section-header comment: the marker line, a header object, then a call per line.
pub fn run_comment(pair: &PairRun, kernel: &str) -> String {
    let state = |s: Option<TcpState>| s.map(|s| s.linux_name());
    let mut header = json!({
        "mode": pair.mode.name(),
        "kernel": kernel,
        "a": pair.a.to_string(),
        "b": pair.b.to_string(),
        "end_a": state(pair.end_states.a),
        "end_b": state(pair.end_states.b),
    });
    // a scenario from a file travels with its run, so the run is read back without the file
    if let Mode::File(f) = pair.mode {
        header["scenario"] = json!({ "summary": f.summary, "text": f.text });
    }
    let mut out = format!("{MARKER}\n{header}\n");
    for c in &pair.calls {
        out.push_str(&call_json(c).to_string());
        out.push('\n');
    }
    out
}

/// Read a run back from a section-header comment; `None` when the comment is not ours or is damaged.
pub fn parse_run_comment(text: &str) -> Option<SavedRun> {
    let mut lines = text.lines();
    if lines.next()? != MARKER {
        return None;
    }
    let header: Value = serde_json::from_str(lines.next()?).ok()?;
    let state = |v: &Value| match v {
        Value::Null => Some(None),
        s => s.as_str().and_then(TcpState::from_linux_name).map(Some),
    };
    let calls = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .ok()
                .and_then(|v: Value| call_from_json(&v))
        })
        .collect::<Option<Vec<_>>>()?;
    let name = header["mode"].as_str()?;
    let mode = match &header["scenario"] {
        Value::Null => Mode::from_name(name)?,
        s => Mode::file(
            name.to_string(),
            s["summary"].as_str()?.to_string(),
            s["text"].as_str()?.to_string(),
        ),
    };
    let pair = PairRun {
        mode,
        a: header["a"].as_str()?.parse::<SocketAddr>().ok()?,
        b: header["b"].as_str()?.parse::<SocketAddr>().ok()?,
        calls,
        end_states: EndStates {
            a: state(&header["end_a"])?,
            b: state(&header["end_b"])?,
        },
    };
    Some(SavedRun {
        pair,
        kernel: header["kernel"].as_str()?.to_string(),
        trace: None,
    })
}

/// The kernel's events among a file's section-header comments, if any comment holds them.
pub fn parse_kernel_in(comments: &[String]) -> Option<KernelTrace> {
    comments.iter().find_map(|c| parse_kernel_comment(c))
}

/// The run among a file's section-header comments, with the kernel's events when a comment holds them.
pub fn run_in_comments(comments: &[String]) -> Option<SavedRun> {
    let mut run = comments.iter().find_map(|c| parse_run_comment(c))?;
    run.trace = parse_kernel_in(comments);
    Some(run)
}

/// The run carried by a capture file written by [`pcapng`] (plain or gzip), or `None`.
pub fn read_run(path: &str) -> Option<SavedRun> {
    let mut reader = crate::capfile::CaptureReader::open(path).ok()?;
    run_in_comments(&reader.leading_comments())
}

/// The run carried by capture bytes written by [`pcapng`], or `None`.
pub fn run_in_bytes(bytes: Vec<u8>) -> Option<SavedRun> {
    let mut reader = crate::capfile::CaptureReader::from_bytes(bytes).ok()?;
    run_in_comments(&reader.leading_comments())
}

/// The human-readable comment of a call, as Wireshark shows it next to its frame.
pub fn call_comment(c: &SocketCall, t0: TimestampNs) -> String {
    let mut s = format!("{}: {}", c.peer, c.call);
    if let Some(n) = c.unread_before.filter(|_| c.kind == CallKind::Close) {
        s.push_str(&format!(" with {n} bytes unread"));
    }
    s.push_str(&format!(" {}", c.result_text()));
    if let Some(st) = c.state {
        s.push_str(&format!(" [{st}]"));
    }
    s.push_str(&format!(
        " (called +{} µs, returned +{} µs)",
        (c.t_start - t0) / 1000,
        (c.t_end - t0) / 1000
    ));
    s
}

/// For each call, the index of the frame it belongs with: the first frame captured while the call ran (what it
/// put on the wire, or what woke it), else the last frame captured before it started (what it reacts to), else
/// the first frame. `None` when there are no frames.
pub fn frame_of_calls(calls: &[SocketCall], frames: &[RawFrame]) -> Vec<Option<usize>> {
    calls
        .iter()
        .map(|c| {
            if frames.is_empty() {
                return None;
            }
            let first_from_start = frames.partition_point(|f| f.ts < c.t_start);
            let during = frames
                .get(first_from_start)
                .filter(|f| f.ts <= c.t_end)
                .map(|_| first_from_start);
            Some(during.unwrap_or(first_from_start.saturating_sub(1)))
        })
        .collect()
}

/// The human-readable comment of a kernel event of the run, or `None` for a socket that is neither A's nor B's.
pub fn kernel_event_comment(pair: &PairRun, e: &KernelEvent, t0: TimestampNs) -> Option<String> {
    let src = e.what.src();
    let who = if src == pair.a {
        "A"
    } else if src == pair.b {
        "B"
    } else {
        return None;
    };
    Some(format!(
        "{} (kernel, +{} µs)",
        e.what.describe(who),
        (e.ts - t0) / 1000
    ))
}

/// For each kernel event, the index of the frame nearest to it in time (a reset's stamp falls just after the RST it
/// sent, a state change or error just after the segment that caused it). `None` when there are no frames.
pub fn frame_of_events(events: &[KernelEvent], frames: &[RawFrame]) -> Vec<Option<usize>> {
    events
        .iter()
        .map(|e| (0..frames.len()).min_by_key(|&i| (frames[i].ts - e.ts).unsigned_abs()))
        .collect()
}

/// The run as pcapng bytes: section header (with its comments), one interface, a block per frame with its calls
/// as comments.
pub fn pcapng(pair: &PairRun, kernel: &str, frames: &[RawFrame], linktype: u32) -> Vec<u8> {
    pcapng_with_kernel(pair, kernel, None, frames, linktype)
}

/// [`pcapng`], with the kernel's events of the run (when it traced them) as packet comments and a section comment.
pub fn pcapng_with_kernel(
    pair: &PairRun,
    kernel: &str,
    trace: Option<&KernelTrace>,
    frames: &[RawFrame],
    linktype: u32,
) -> Vec<u8> {
    let t0 = pair
        .calls
        .first()
        .map(|c| c.t_start)
        .into_iter()
        .chain(frames.first().map(|f| f.ts))
        .min()
        .unwrap_or(0);
    let how = match pair.mode {
        Mode::File(_) => "--scenario",
        _ => "--mode",
    };
    let summary = format!(
        "tcp-close-watch run {how} {} — {}. Recorded on {kernel} at {}. A (client) {}, B (server) {}.",
        pair.mode,
        pair.mode.summary(),
        crate::model::time::iso_time(t0),
        pair.a,
        pair.b
    );
    let run = run_comment(pair, kernel);
    let traced = trace.map(kernel_comment);
    let mut w = PcapngWriter::new(Endian::Little);
    let mut section = vec![Opt::comment(&summary), Opt::comment(&run)];
    section.extend(traced.as_deref().map(Opt::comment));
    section.push(Opt::text(SHB_OS, kernel));
    section.push(Opt::text(
        SHB_USERAPPL,
        concat!("tcp-close-watch ", env!("CARGO_PKG_VERSION")),
    ));
    w.section(&section);
    // interface: loopback, nanosecond timestamps
    w.interface(
        linktype as u16,
        65535,
        &[Opt::text(IF_NAME, "lo"), Opt::new(IF_TSRESOL, &[9])],
    );
    let owners = frame_of_calls(&pair.calls, frames);
    let events = trace.map_or(&[][..], |t| t.events.as_slice());
    let event_owners = frame_of_events(events, frames);
    for (i, f) in frames.iter().enumerate() {
        let mut comments: Vec<String> = pair
            .calls
            .iter()
            .zip(&owners)
            .filter(|(_, owner)| **owner == Some(i))
            .map(|(c, _)| call_comment(c, t0))
            .collect();
        comments.extend(
            events
                .iter()
                .zip(&event_owners)
                .filter(|(_, owner)| **owner == Some(i))
                .filter_map(|(e, _)| kernel_event_comment(pair, e, t0)),
        );
        let options: Vec<Opt> = comments.iter().map(|c| Opt::comment(c)).collect();
        w.packet(0, f.ts as u64, &f.data, f.orig_len, &options);
    }
    w.into_bytes()
}

/// The frames alone as classic pcap with nanosecond timestamps.
pub fn pcap(frames: &[RawFrame], linktype: u32) -> Vec<u8> {
    let mut w = PcapWriter::new(Endian::Little, true, 65535, linktype);
    for f in frames {
        w.record(f.ts, &f.data, f.orig_len);
    }
    w.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> PairRun {
        PairRun {
            mode: Mode::Abrupt,
            a: "127.0.0.1:40000".parse().unwrap(),
            b: "[::1]:8080".parse().unwrap(),
            calls: vec![
                SocketCall {
                    peer: Peer::B,
                    kind: CallKind::Close,
                    call: "close()".into(),
                    t_start: 1_700_000_000_000_000_000,
                    t_end: 1_700_000_000_000_050_000,
                    outcome: Outcome::Ok {
                        ret: 0,
                        data: vec![],
                    },
                    state: Some(TcpState::Closed),
                    unread_before: Some(33),
                },
                SocketCall {
                    peer: Peer::A,
                    kind: CallKind::Recv,
                    call: "recv(64)".into(),
                    t_start: 1_700_000_000_000_010_000,
                    t_end: 1_700_000_000_000_060_000,
                    outcome: Outcome::Err {
                        errno: libc::ECONNRESET,
                    },
                    state: None,
                    unread_before: None,
                },
                SocketCall {
                    peer: Peer::A,
                    kind: CallKind::Send,
                    call: "send(3 bytes)".into(),
                    t_start: 5,
                    t_end: 6,
                    outcome: Outcome::Ok {
                        ret: 3,
                        data: b"a\n\0".to_vec(),
                    },
                    state: Some(TcpState::Established),
                    unread_before: None,
                },
            ],
            end_states: EndStates {
                a: Some(TcpState::TimeWait),
                b: None,
            },
        }
    }

    #[test]
    fn run_comment_round_trips() {
        let p = pair();
        let back = parse_run_comment(&run_comment(&p, "Linux 6.1")).unwrap();
        assert_eq!(back.pair, p);
        assert_eq!(back.kernel, "Linux 6.1");
    }

    fn trace() -> KernelTrace {
        let (a, b) = (pair().a, pair().b);
        KernelTrace {
            events: vec![
                KernelEvent {
                    ts: 1_700_000_000_000_040_000,
                    what: KernelEventKind::SendReset {
                        reason: "TCP_ABORT_ON_CLOSE".into(),
                        state: Some(TcpState::Closed),
                        src: b,
                        dst: a,
                    },
                },
                KernelEvent {
                    ts: 1_700_000_000_000_041_000,
                    what: KernelEventKind::StateChange {
                        old: TcpState::Established,
                        new: TcpState::Closed,
                        src: a,
                        dst: b,
                    },
                },
                KernelEvent {
                    ts: 1_700_000_000_000_042_000,
                    what: KernelEventKind::ErrorReport {
                        errno: libc::ECONNRESET,
                        src: a,
                        dst: b,
                    },
                },
                KernelEvent {
                    ts: 1_700_000_000_000_043_000,
                    what: KernelEventKind::ReceiveReset { src: a, dst: b },
                },
            ],
            lost_events: 2,
            unreadable: vec!["odd line".into()],
        }
    }

    #[test]
    fn the_kernels_events_round_trip_beside_the_run_and_old_runs_have_none() {
        let frames = vec![RawFrame {
            ts: 1_700_000_000_000_040_000,
            data: vec![1, 2, 3, 4],
            orig_len: 4,
        }];
        let bytes = pcapng_with_kernel(&pair(), "Linux 6.18", Some(&trace()), &frames, 1);
        let back = run_in_bytes(bytes).unwrap();
        assert_eq!(back.pair, pair());
        assert_eq!(back.trace, Some(trace()));
        let old = run_in_bytes(pcapng(&pair(), "Linux 6.1", &frames, 1)).unwrap();
        assert_eq!(old.trace, None);
        assert_eq!(
            parse_kernel_comment("tcp-close-watch/kernel v1\n{}\n"),
            None
        );
        let comment =
            kernel_event_comment(&pair(), &trace().events[0], 1_700_000_000_000_000_000).unwrap();
        assert!(
            comment.starts_with("B's kernel sends RST — reason TCP_ABORT_ON_CLOSE"),
            "{comment}"
        );
    }

    #[test]
    fn damaged_or_foreign_comments_are_not_runs() {
        assert_eq!(parse_run_comment("captured by dumpcap"), None);
        let text = run_comment(&pair(), "x");
        assert_eq!(
            parse_run_comment(&text.replace("\"recv\"", "\"frobnicate\"")),
            None
        );
        assert_eq!(parse_run_comment(&text[..text.len() - 20]), None);
    }

    #[test]
    fn calls_belong_with_the_frame_they_caused_or_follow() {
        let f = |ts| RawFrame {
            ts,
            data: vec![],
            orig_len: 0,
        };
        let frames = [f(10), f(20), f(30)];
        let call = |t_start, t_end| SocketCall {
            t_start,
            t_end,
            ..pair().calls[0].clone()
        };
        let owners = frame_of_calls(
            &[
                call(5, 12),
                call(21, 25),
                call(19, 35),
                call(99, 100),
                call(1, 2),
            ],
            &frames,
        );
        // during: the frame it caused; none during: the one before it; before everything: the first
        assert_eq!(owners, [Some(0), Some(1), Some(1), Some(2), Some(0)]);
        assert_eq!(frame_of_calls(&[call(5, 6)], &[]), [None]);
    }

    #[test]
    fn pcapng_blocks_are_well_framed() {
        let frames = vec![RawFrame {
            ts: 1_700_000_000_000_020_000,
            data: vec![1, 2, 3, 4, 5],
            orig_len: 5,
        }];
        let bytes = pcapng(&pair(), "Linux 6.1", &frames, 1);
        // walk the blocks: every block's two length fields agree and the walk ends exactly at the end
        let mut at = 0;
        let mut kinds = Vec::new();
        while at < bytes.len() {
            let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            let len = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            assert_eq!(len % 4, 0);
            assert_eq!(&bytes[at + len - 4..at + len], &(len as u32).to_le_bytes());
            kinds.push(kind);
            at += len;
        }
        assert_eq!(at, bytes.len());
        assert_eq!(kinds, [0x0A0D_0D0A, 1, 6]);
        assert_eq!(run_in_bytes(bytes.clone()).unwrap().pair, pair());
        assert_eq!(run_in_bytes(bytes[..40].to_vec()), None, "cut short");
        let classic = pcap(&frames, 1);
        assert_eq!(classic.len(), 24 + 16 + 5);
        assert_eq!(&classic[..4], &0xA1B2_3C4Du32.to_le_bytes());
    }
}
