//! The textbook ladder diagram in plain ASCII: A's calls and lifeline on the left, B's on the right, each segment an
//! arrow sloping down across between them (two lines: it leaves the sender on one, reaches the receiver on the
//! next). RST arrows are drawn with `=` and marked `RST`; FIN arrows are marked `FIN`.

use crate::explain::timeline::{RowKind, Timeline, WireRow};
use crate::model::calls::{Peer, SocketCall};
use crate::render::{escape, fit, time_text};

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
    segment_label_as(w, false)
}

/// [`segment_label`], the flags as words when `words`.
pub fn segment_label_as(w: &WireRow, words: bool) -> String {
    let seg = &w.segment;
    let mut s = format!(
        "[{}] seq {}",
        crate::render::text::flags_shown(seg.flags, words),
        w.rel_seq
    );
    if let Some(a) = w.rel_ack {
        s.push_str(&format!(" ack {a}"));
    }
    if seg.len > 0 {
        s.push_str(&format!(" len {}", seg.len));
    }
    if crate::render::text::zero_window(seg) {
        s.push_str(" win 0");
    }
    if seg.flags.rst() {
        s.push_str(" RST");
    } else if seg.flags.fin() {
        s.push_str(" FIN");
    }
    s
}

/// The columns of a ladder: the time, each side's calls, and the gap the arrows cross.
#[derive(Debug, Clone, Copy)]
struct Layout {
    time: usize,
    call: usize,
    gap: usize,
}

impl Layout {
    /// The widths for `room` columns (`None`: the roomy fixed layout). The gap shrinks first (an arrow's label
    /// then takes two lines), down to 20, so that each side's column can hold its widest word.
    fn new(time: usize, room: Option<usize>, texts: &[String], labels: &[String]) -> Layout {
        let Some(room) = room else {
            return Layout {
                time: 9,
                call: CALL_W,
                gap: GAP,
            };
        };
        let word = texts
            .iter()
            .map(|s| fit::longest_word(s))
            .max()
            .unwrap_or(0);
        let label = labels.iter().map(|s| fit::width(s)).max().unwrap_or(0);
        let frame = time + 6;
        let mut gap = (label + 10).clamp(20, GAP);
        let mut call = room.saturating_sub(frame + gap) / 2;
        if call < word {
            gap = room.saturating_sub(frame + 2 * word).clamp(20, gap);
            call = room.saturating_sub(frame + gap) / 2;
        }
        Layout {
            time,
            call: call.clamp(8, CALL_W),
            gap,
        }
    }
}

/// A label in two parts at a space: what fits in `w` columns, and the rest (empty when all fits).
fn split_label(label: &str, w: usize) -> (String, String) {
    if fit::width(label) <= w {
        return (label.to_string(), String::new());
    }
    let mut first = String::new();
    let mut words = label.split(' ').peekable();
    while let Some(word) = words.peek() {
        let extra = if first.is_empty() { 0 } else { 1 } + fit::width(word);
        if !first.is_empty() && fit::width(&first) + extra > w {
            break;
        }
        if !first.is_empty() {
            first.push(' ');
        }
        first.push_str(word);
        words.next();
    }
    (first, words.collect::<Vec<_>>().join(" "))
}

/// The two lines of an arrow between the lifelines (without them), `gap` characters wide. A label too long for
/// the first line goes on in the second, beside the arrow's end.
fn arrow(w: &WireRow, gap: usize, words: bool) -> [String; 2] {
    let fill = if w.segment.flags.rst() { '=' } else { '-' };
    let (label, rest) = split_label(&segment_label_as(w, words), gap - 10);
    // the arrow leaves the sender on the first line, long enough for its label, and reaches the receiver below
    let first_len = (gap * 2 / 3).max(fit::width(&label) + 6).min(gap - 3);
    let line = |n: usize| fill.to_string().repeat(n);
    match w.from {
        Peer::A => {
            // |--label-------.          |
            // |         rest  `-------->|
            let head = format!("{fill}{fill} {label} ");
            let line1 = format!(
                "{head}{}.",
                line(first_len.saturating_sub(fit::width(&head) + 1))
            );
            let pad = if rest.is_empty() {
                " ".repeat(first_len)
            } else {
                format!("{rest:>w$} ", w = first_len.saturating_sub(1))
            };
            let line2 = format!("{pad}`{}>", line(gap - first_len - 2));
            [pad_to(&line1, gap, false), line2]
        }
        Peer::B => {
            // |        .-------label--|
            // |<------'  rest         |
            let start = gap - first_len;
            let tail = format!(" {label} {fill}{fill}");
            let dashes = first_len.saturating_sub(fit::width(&tail) + 1);
            let line1 = format!("{}.{}{tail}", " ".repeat(start), line(dashes));
            let mut line2 = format!("<{}'", line(start.saturating_sub(2)));
            if !rest.is_empty() {
                line2.push(' ');
                line2.push_str(&rest);
            }
            [pad_to(&line1, gap, true), pad_to(&line2, gap, false)]
        }
    }
}

/// `s` padded with spaces to `w` columns, on the left (`right`-aligned) or on the right.
fn pad_to(s: &str, w: usize, right: bool) -> String {
    let n = w.saturating_sub(fit::width(s));
    if right {
        format!("{}{s}", " ".repeat(n))
    } else {
        format!("{s}{}", " ".repeat(n))
    }
}

/// The text of a row beside a lifeline, and which side it is on (`None` for a segment).
fn side_text(kind: &RowKind) -> Option<(Peer, String)> {
    match kind {
        RowKind::Call {
            call,
            returns_later,
        } => Some((call.peer, short_call(call, *returns_later, false))),
        RowKind::Return { call } => {
            Some((call.peer, format!("-> {}", short_call(call, false, true))))
        }
        RowKind::Segment(_) => None,
        RowKind::Kernel(k) => Some((k.peer, format!("* {}", k.short()))),
    }
}

/// The ladder diagram of a timeline, fitted to `room` columns (`None`: as wide as it needs). A side's text wraps
/// at its spaces onto more lines; no word is cut.
pub fn ladder(t: &Timeline, room: Option<usize>) -> String {
    ladder_as(t, room, false)
}

/// [`ladder`], the flags as words when `words`.
pub fn ladder_as(t: &Timeline, room: Option<usize>, words: bool) -> String {
    let t0 = t.t0();
    let unit_ms = t.rows.last().map_or(0, |r| r.t - t0) >= 10_000_000;
    let unit = if unit_ms { "ms" } else { "µs" };
    let texts: Vec<String> = t
        .rows
        .iter()
        .filter_map(|r| side_text(&r.kind).map(|(_, s)| escape::text(&s).into_owned()))
        .chain([t.sides.a_label.clone(), t.sides.b_label.clone()])
        .collect();
    let labels: Vec<String> = t
        .rows
        .iter()
        .filter_map(|r| match &r.kind {
            RowKind::Segment(w) => Some(segment_label_as(w, words)),
            _ => None,
        })
        .collect();
    let times = t.rows.iter().map(|r| time_text(r.t - t0, unit_ms).len());
    let lay = Layout::new(times.max().unwrap_or(0).max(6), room, &texts, &labels);
    let (tw, cw, gap) = (lay.time, lay.call, lay.gap);
    let mut out = String::new();
    let line = |out: &mut String, time: &str, left: &str, mid: &str, right: &str| {
        let l = format!(
            "{time:>tw$}  {} |{}| {right}",
            pad_to(left, cw, true),
            pad_to(mid, gap, false)
        );
        out.push_str(l.trim_end());
        out.push('\n');
    };
    // a side's text, wrapped to its column, the first line with the time
    let side = |out: &mut String, time: &str, peer: Peer, text: &str| {
        let text = escape::text(text);
        let wrapped = fit::wrap(&text, room.map(|_| cw), "", "");
        for (k, part) in wrapped.lines().enumerate() {
            let time = if k == 0 { time } else { "" };
            match peer {
                Peer::A => line(out, time, part, "", ""),
                Peer::B => line(out, time, "", "", part),
            }
        }
    };
    let head = format!("t ({unit})");
    let (a, b) = (
        fit::wrap(&escape::text(&t.sides.a_label), room.map(|_| cw), "", ""),
        fit::wrap(&escape::text(&t.sides.b_label), room.map(|_| cw), "", ""),
    );
    let (a, b): (Vec<&str>, Vec<&str>) = (a.lines().collect(), b.lines().collect());
    for k in 0..a.len().max(b.len()) {
        let time = if k == 0 { head.as_str() } else { "" };
        line(
            &mut out,
            time,
            a.get(k).copied().unwrap_or(""),
            "",
            b.get(k).copied().unwrap_or(""),
        );
    }
    line(&mut out, "", "", "", "");
    for row in &t.rows {
        let time = time_text(row.t - t0, unit_ms);
        match (&row.kind, side_text(&row.kind)) {
            (RowKind::Segment(w), _) => {
                let [l1, l2] = arrow(w, gap, words);
                line(&mut out, &time, "", &l1, "");
                line(&mut out, "", "", &l2, "");
            }
            (_, Some((peer, text))) => side(&mut out, &time, peer, &text),
            (_, None) => {}
        }
    }
    out
}
