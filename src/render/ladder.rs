//! The textbook ladder diagram in plain ASCII: A's calls and lifeline on the left, B's on the right, each segment an
//! arrow sloping down across between them (two lines: it leaves the sender on one, reaches the receiver on the
//! next). RST arrows are drawn with `=` and marked `RST`; FIN arrows are marked `FIN`.

use crate::explain::timeline::{RowKind, Timeline, WireRow};
use crate::model::calls::{Peer, SocketCall};
use crate::render::{escape, time_text};

const CALL_W: usize = 40;
const GAP: usize = 42;

/// A call in a few words: `recv(64) = -1 ECONNRESET [CLOSE]`; a blocked call's return is named without its
/// arguments (`recv = -1 ECONNRESET`), as they were shown when it was made.
pub fn short_call(call: &SocketCall, pending: bool, returned: bool) -> String {
    let name = if returned {
        call.call.split('(').next().unwrap_or(&call.call)
    } else {
        &call.call
    };
    let mut s = escape::text(name).into_owned();
    if let Some(n) = call.unread_before.filter(|n| *n > 0) {
        s.push_str(&format!(" ({n} unread)"));
    }
    if pending {
        s.push_str(" ...");
        return s;
    }
    match call.errno() {
        Some(e) => s.push_str(&format!(" = -1 {}", crate::model::calls::errno_name(e))),
        None if call.kind == crate::model::calls::CallKind::Recv && call.ret() == 0 => {
            s.push_str(" = 0 (end of stream)")
        }
        None => s.push_str(&format!(" = {}", call.ret())),
    }
    // what was read or sent is often the point (B's "ERROR\n"): show its start
    if !call.data().is_empty()
        && matches!(
            call.kind,
            crate::model::calls::CallKind::Recv | crate::model::calls::CallKind::Send
        )
    {
        s.push_str(&format!(
            " \"{}\"",
            crate::model::segment::preview(call.data(), 10)
        ));
    }
    if let Some(st) = call.state {
        s.push_str(&format!(" [{st}]"));
    }
    s
}

/// The label of a segment arrow: `[R.] seq 1 ack 35 RST`.
pub fn segment_label(w: &WireRow) -> String {
    let seg = &w.segment;
    let mut s = format!("[{}] seq {}", seg.flags.tcpdump(), w.rel_seq);
    if let Some(a) = w.rel_ack {
        s.push_str(&format!(" ack {a}"));
    }
    if seg.len > 0 {
        s.push_str(&format!(" len {}", seg.len));
    }
    if seg.flags.rst() {
        s.push_str(" RST");
    } else if seg.flags.fin() {
        s.push_str(" FIN");
    }
    s
}

fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        s.to_string()
    } else {
        s.chars().take(w - 1).chain(['~']).collect()
    }
}

/// The two lines of an arrow between the lifelines (without them), `GAP` characters wide.
fn arrow(w: &WireRow) -> [String; 2] {
    let fill = if w.segment.flags.rst() { '=' } else { '-' };
    let label = fit(&segment_label(w), GAP - 10);
    // the arrow leaves the sender on the first line, long enough for its label, and reaches the receiver below
    let first_len = (GAP * 2 / 3).max(label.chars().count() + 6).min(GAP - 3);
    match w.from {
        Peer::A => {
            // |--label-------.          |
            // |               `-------->|
            let head = format!("{fill}{fill} {label} ");
            let line1 = format!(
                "{head}{}.",
                fill.to_string()
                    .repeat(first_len.saturating_sub(head.chars().count() + 1))
            );
            let pad = " ".repeat(first_len);
            let line2 = format!("{pad}`{}>", fill.to_string().repeat(GAP - first_len - 2));
            [format!("{line1:<GAP$}"), line2]
        }
        Peer::B => {
            // |        .-------label--|
            // |<------'               |
            let start = GAP - first_len;
            let tail = format!(" {label} {fill}{fill}");
            let dashes = first_len.saturating_sub(tail.chars().count() + 1);
            let line1 = format!(
                "{}.{}{tail}",
                " ".repeat(start),
                fill.to_string().repeat(dashes)
            );
            let line2 = format!("<{}'", fill.to_string().repeat(start.saturating_sub(2)));
            [format!("{line1:>GAP$}"), format!("{line2:<GAP$}")]
        }
    }
}

/// The ladder diagram of a timeline.
pub fn ladder(t: &Timeline) -> String {
    let t0 = t.t0();
    let unit_ms = t.rows.last().map_or(0, |r| r.t - t0) >= 10_000_000;
    let unit = if unit_ms { "ms" } else { "µs" };
    let mut out = String::new();
    let line = |time: &str, left: &str, mid: &str, right: &str| {
        let (left, right) = (escape::text(left), escape::text(right));
        format!("{time:>9}  {left:>CALL_W$} |{mid:<GAP$}| {right}")
            .trim_end()
            .to_string()
            + "\n"
    };
    out.push_str(&line(
        &format!("t ({unit})"),
        &fit(&t.sides.a_label, CALL_W),
        "",
        &t.sides.b_label,
    ));
    out.push_str(&line("", "", "", ""));
    for row in &t.rows {
        let time = time_text(row.t - t0, unit_ms);
        match &row.kind {
            RowKind::Call {
                call,
                returns_later,
            } => {
                let text = short_call(call, *returns_later, false);
                out.push_str(&match call.peer {
                    Peer::A => line(&time, &fit(&text, CALL_W), "", ""),
                    Peer::B => line(&time, "", "", &text),
                });
            }
            RowKind::Return { call } => {
                let text = format!("-> {}", short_call(call, false, true));
                out.push_str(&match call.peer {
                    Peer::A => line(&time, &fit(&text, CALL_W), "", ""),
                    Peer::B => line(&time, "", "", &text),
                });
            }
            RowKind::Segment(w) => {
                let [l1, l2] = arrow(w);
                out.push_str(&line(&time, "", &l1, ""));
                out.push_str(&line("", "", &l2, ""));
            }
            RowKind::Kernel(k) => {
                let text = format!("* {}", k.short());
                out.push_str(&match k.peer {
                    Peer::A => line(&time, &fit(&text, CALL_W), "", ""),
                    Peer::B => line(&time, "", "", &text),
                });
            }
        }
    }
    out
}
