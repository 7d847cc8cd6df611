//! A standalone SVG sequence diagram for slides: time runs down, A's lifeline on the left and B's on the right,
//! each segment an arrow sloping across, labelled with its flags and length; RST red, FIN blue. Rows are evenly
//! spaced (the time of each is written in the margin); an idle gap much longer than the others is drawn as a break
//! in the lifelines, labelled with its length (`⋯ 1.0 ms ⋯`), so that 10 µs and a second no longer look alike.
//! analyze's notes (what the packets alone suggest) sit under their arrow; a small legend closes the picture.

use std::fmt::Write;

use crate::explain::timeline::{RowKind, Timeline, WireRow};
use crate::model::calls::Peer;
use crate::model::kernel::KernelEventKind;
use crate::render::ladder::{segment_label, short_call};
use crate::render::{escape, time_text};

const WIDTH: i32 = 1040;
const A_X: i32 = 390;
const B_X: i32 = 680;
const TOP: i32 = 110;
const ROW: i32 = 34;
const SLOPE: i32 = 16;
/// The extra height of a break: its label sits between the rows around it, clear of both rows' labels.
const BREAK: i32 = 40;

const RST: &str = "#c62828";
const FIN: &str = "#1565c0";
const PLAIN: &str = "#444444";

fn xml(s: &str) -> std::borrow::Cow<'_, str> {
    escape::xml(s)
}

/// Where each row sits, the gaps drawn as breaks (above the row they precede), and the height they take. A gap
/// is a break when it is at least 1 ms and 20 times the median gap between rows.
fn layout(t: &Timeline) -> (Vec<i32>, Vec<Option<i64>>, i32) {
    // times from a file can be anything: saturating, so that a wild stamp makes a break, not a panic
    let mut gaps: Vec<i64> = t
        .rows
        .windows(2)
        .map(|w| w[1].t.saturating_sub(w[0].t))
        .collect();
    let before: Vec<i64> = std::iter::once(0).chain(gaps.iter().copied()).collect();
    gaps.sort_unstable();
    let median = gaps.get(gaps.len() / 2).copied().unwrap_or(0);
    let threshold = median.saturating_mul(20).max(1_000_000);
    let mut y = TOP;
    let mut ys = Vec::new();
    let mut breaks = Vec::new();
    for (i, row) in t.rows.iter().enumerate() {
        let gap = before[i];
        let is_break = i > 0 && gap >= threshold;
        breaks.push(is_break.then_some(gap));
        if is_break {
            y += BREAK;
        }
        ys.push(y);
        let notes = match &row.kind {
            RowKind::Segment(w) => w.notes.iter().map(|n| note_lines(n).len() as i32).sum(),
            _ => 0,
        };
        y += ROW + notes * 14;
    }
    (ys, breaks, y)
}

/// A gap in words: `1.0 s`, `250 ms`, `3.2 ms`.
fn gap_text(ns: i64) -> String {
    if ns >= 1_000_000_000 {
        format!("{:.1} s", ns as f64 / 1e9)
    } else if ns >= 100_000_000 {
        format!("{} ms", ns / 1_000_000)
    } else {
        format!("{:.1} ms", ns as f64 / 1e6)
    }
}

/// A break in both lifelines just above `y`, and how long nothing happened: in the band between the row above
/// (its arrow and the reason under it end 24 px below it) and this row's label (22 px above `y`).
fn gap_break(s: &mut String, y: i32, ns: i64) {
    let (top, bottom) = (y - 48, y - 26);
    for x in [A_X, B_X] {
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="{top}" width="8" height="{}" fill="white"/><line x1="{x}" y1="{top}" x2="{x}" y2="{bottom}" stroke="#999" stroke-width="2" stroke-dasharray="2 4"/>"##,
            x - 4,
            bottom - top,
        );
    }
    let _ = writeln!(
        s,
        r##"<text class="gap" x="{}" y="{}" text-anchor="middle" fill="#666" font-style="italic">⋯ {} ⋯</text>"##,
        (A_X + B_X) / 2,
        bottom - 6,
        gap_text(ns)
    );
}

/// The diagram, with `title` (the mode and kernel, or the connection) written above it.
pub fn svg(t: &Timeline, title: &str) -> String {
    let t0 = t.t0();
    let unit_ms = t.rows.last().map_or(0, |r| r.t - t0) >= 10_000_000;
    let (ys, breaks, bottom) = layout(t);
    let height = bottom + 50 + LEGEND;
    let mut s = String::new();
    head(&mut s, t, title, height, unit_ms);
    for (i, row) in t.rows.iter().enumerate() {
        let y = ys[i];
        if let Some(gap) = breaks[i] {
            gap_break(&mut s, y, gap);
        }
        let _ = writeln!(
            s,
            r##"<text x="14" y="{}" fill="#666">{}</text>"##,
            y + 4,
            time_text(row.t - t0, unit_ms)
        );
        match &row.kind {
            RowKind::Call {
                call,
                returns_later,
            } => {
                let error = !returns_later && call.errno().is_some();
                let text = short_call(call, *returns_later, false);
                let _ = writeln!(s, "{}", call_text(call.peer, y, &text, error));
            }
            RowKind::Return { call } => {
                let text = format!("↳ {}", short_call(call, false, true));
                let error = call.errno().is_some();
                let _ = writeln!(s, "{}", call_text(call.peer, y, &text, error));
            }
            RowKind::Segment(w) => {
                arrow(&mut s, w, y);
                if let Some(reason) = t.reset_reason(w) {
                    reason_label(&mut s, reason, y);
                }
                let lines = w.notes.iter().flat_map(|n| note_lines(n));
                for (k, line) in lines.enumerate() {
                    note_label(&mut s, &line, y + 20 + 14 * k as i32);
                }
            }
            RowKind::Kernel(k) => {
                let error =
                    matches!(k.event, KernelEventKind::ErrorReport { errno, .. } if errno != 0);
                let text = format!("⚙ {}", k.short());
                let _ = writeln!(s, "{}", call_text(k.peer, y, &text, error));
            }
        }
    }
    legend(&mut s, &Shown::of(t), height - LEGEND + 10);
    s.push_str("</svg>\n");
    s
}

/// Room for the legend at the foot.
const LEGEND: i32 = 30;

/// What a picture holds that its legend explains.
#[derive(Default)]
struct Shown {
    rst: bool,
    fin: bool,
    plain: bool,
    failed: bool,
    kernel: bool,
    inferred: bool,
}

impl Shown {
    fn of(t: &Timeline) -> Shown {
        let mut shown = Shown::default();
        for row in &t.rows {
            match &row.kind {
                RowKind::Segment(w) => {
                    let f = w.segment.flags;
                    shown.rst |= f.rst();
                    shown.fin |= f.fin() && !f.rst();
                    shown.plain |= !f.fin() && !f.rst();
                    shown.inferred |= !w.notes.is_empty();
                }
                RowKind::Call {
                    call,
                    returns_later,
                } => shown.failed |= !returns_later && call.errno().is_some(),
                RowKind::Return { call } => shown.failed |= call.errno().is_some(),
                RowKind::Kernel(k) => {
                    shown.kernel = true;
                    shown.failed |=
                        matches!(k.event, KernelEventKind::ErrorReport { errno, .. } if errno != 0);
                }
            }
        }
        shown
    }
}

/// What the colours and marks of the picture mean (only those it shows), one line at height `y`.
fn legend(s: &mut String, shown: &Shown, y: i32) {
    let items = [
        (shown.rst, RST, "RST segment", true),
        (shown.fin, FIN, "FIN segment", true),
        (shown.plain, PLAIN, "other segment", true),
        (shown.failed, RST, "red text: a call that failed", false),
        (shown.kernel, "#222", "⚙ the kernel's own event", false),
        (
            shown.inferred,
            "#8a5a00",
            "⚠ inferred from the packets",
            false,
        ),
    ];
    let mut x = 14;
    for (_, colour, text, line) in items.into_iter().filter(|i| i.0) {
        if line {
            let _ = writeln!(
                s,
                r#"<line x1="{x}" y1="{}" x2="{}" y2="{}" stroke="{colour}" stroke-width="2.5"/>"#,
                y - 4,
                x + 24,
                y - 4
            );
            x += 30;
        }
        let _ = writeln!(
            s,
            r##"<text class="legend" x="{x}" y="{y}" fill="{colour}" font-size="11">{}</text>"##,
            xml(text)
        );
        x += 7 * text.chars().count() as i32 + 24;
    }
}

/// Characters of a note's line: what 10-px DejaVu Sans fits across the picture.
const NOTE_CHARS: usize = ((WIDTH - 40) as f32 / (0.55 * 10.0)) as usize;

/// A note (analyze's ⚠, what the packets alone suggest) as the lines it takes, broken between words.
fn note_lines(note: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::from("⚠");
    for word in note.split(' ') {
        if line.chars().count() + 1 + word.chars().count() > NOTE_CHARS && line != "⚠" {
            lines.push(std::mem::take(&mut line));
        } else if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// One line of a note, small, under its arrow at height `y`.
fn note_label(s: &mut String, line: &str, y: i32) {
    let _ = writeln!(
        s,
        r##"<text class="note" x="{}" y="{y}" text-anchor="middle" fill="#8a5a00" font-size="10" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"##,
        WIDTH / 2,
        xml(line)
    );
}

/// The font size (at most `size`) at which `text` fits `room` pixels: DejaVu Sans is about 0.55 of its size a
/// character, 0.65 in bold (rsvg-convert ignores `textLength`, so the text itself is made smaller).
fn fitting_size(text: &str, size: f32, bold: bool, room: i32) -> f32 {
    let per_char = if bold { 0.65 } else { 0.55 };
    let wide = text.chars().count() as f32 * per_char * size;
    if wide <= room as f32 {
        size
    } else {
        (size * room as f32 / wide * 10.0).floor() / 10.0
    }
}

/// The picture's frame: arrow heads, background, title, both sides' headers and lifelines, the time unit.
fn head(s: &mut String, t: &Timeline, title: &str, height: i32, unit_ms: bool) {
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="13">"#
    );
    s.push_str("<defs>\n");
    for (id, colour) in [("plain", PLAIN), ("fin", FIN), ("rst", RST)] {
        let _ = writeln!(
            s,
            r#"<marker id="head-{id}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="9" markerHeight="9" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/></marker>"#
        );
    }
    s.push_str("</defs>\n");
    let _ = writeln!(
        s,
        r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#
    );
    // the title on up to two lines: what it is, then what it shows (a run: "mode … — what it does"; a
    // connection: "FILE connection N: client → server, how it ended")
    let parts = title
        .split_once(" — ")
        .or_else(|| title.split_once(": "))
        .map_or(vec![title], |(a, b)| vec![a, b]);
    for (i, part) in parts.into_iter().enumerate() {
        let weight = if i == 0 { "bold" } else { "normal" };
        let size = fitting_size(part, 13.0, i == 0, WIDTH - 28);
        let _ = writeln!(
            s,
            r##"<text x="14" y="{}" font-size="{size}" font-weight="{weight}" fill="#333">{}</text>"##,
            18 + 17 * i as i32,
            xml(part)
        );
    }
    // headers and lifelines; a label too long for its box (an IPv6 address) goes on two lines, smaller
    for (x, label) in [(A_X, &t.sides.a_label), (B_X, &t.sides.b_label)] {
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="44" width="240" height="32" rx="6" fill="#f3f3f3" stroke="#888"/>"##,
            x - 120
        );
        let lines = match label.split_once(' ') {
            Some((role, addr)) if fitting_size(label, 13.0, true, 230) < 13.0 => vec![role, addr],
            _ => vec![label.as_str()],
        };
        let size = if lines.len() == 1 {
            13.0
        } else {
            fitting_size(lines[1], 11.0, true, 230)
        };
        for (k, line) in lines.iter().enumerate() {
            let y = if lines.len() == 1 {
                65
            } else {
                57 + 13 * k as i32
            };
            // the role stays readable; only the address is made smaller
            let size = if k == 0 { size.clamp(11.0, 13.0) } else { size };
            let _ = writeln!(
                s,
                r##"<text x="{x}" y="{y}" text-anchor="middle" font-weight="bold" font-size="{size}">{}</text>"##,
                xml(line)
            );
        }
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="76" x2="{x}" y2="{}" stroke="#999" stroke-width="2"/>"##,
            height - 30 - LEGEND
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="14" y="94" fill="#666">t ({})</text>"##,
        if unit_ms { "ms" } else { "µs" }
    );
}

/// A call's text beside its side's lifeline at height `y`; red when it failed. A's text is made smaller when it
/// would run into the times in the margin, B's when it would leave the picture.
fn call_text(peer: Peer, y: i32, text: &str, error: bool) -> String {
    let colour = if error { RST } else { "#222" };
    match peer {
        Peer::A => format!(
            r#"<text class="call" x="{}" y="{}" text-anchor="end" fill="{colour}" font-size="{}">{}</text>"#,
            A_X - 10,
            y + 4,
            fitting_size(text, 13.0, false, A_X - 10 - 70),
            xml(text)
        ),
        Peer::B => format!(
            r#"<text class="call" x="{}" y="{}" fill="{colour}" font-size="{}">{}</text>"#,
            B_X + 10,
            y + 4,
            fitting_size(text, 13.0, false, WIDTH - B_X - 24),
            xml(text)
        ),
    }
}

/// The kernel's reason for a RST, small, under its arrow at height `y`.
fn reason_label(s: &mut String, reason: &str, y: i32) {
    let _ = writeln!(
        s,
        r#"<text class="reason" x="{}" y="{}" text-anchor="middle" fill="{RST}" font-size="10" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"#,
        (A_X + B_X) / 2,
        y + SLOPE + 6,
        xml(&format!("kernel's reason: {reason}"))
    );
}

/// A segment's arrow from its sender's lifeline to the other's, sloping down from `y`, and its label.
fn arrow(s: &mut String, w: &WireRow, y: i32) {
    let (kind, colour) = if w.segment.flags.rst() {
        ("rst", RST)
    } else if w.segment.flags.fin() {
        ("fin", FIN)
    } else {
        ("plain", PLAIN)
    };
    let (x1, x2) = if w.from == Peer::A {
        (A_X, B_X)
    } else {
        (B_X, A_X)
    };
    let width = if kind == "plain" { 1.5 } else { 2.5 };
    let _ = writeln!(
        s,
        r#"<line class="segment {kind}" x1="{x1}" y1="{}" x2="{x2}" y2="{}" stroke="{colour}" stroke-width="{width}" marker-end="url(#head-{kind})"/>"#,
        y - 6,
        y - 6 + SLOPE
    );
    let weight = if kind == "plain" { "normal" } else { "bold" };
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" fill="{colour}" font-weight="{weight}" font-family="DejaVu Sans Mono, monospace" font-size="12" stroke="white" stroke-width="3" paint-order="stroke">{}</text>"#,
        (A_X + B_X) / 2,
        y - 9,
        xml(&segment_label(w))
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::timeline::{States, build};
    use crate::model::segment::TcpFlags;
    use crate::testing::{seg, sides};

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const R: u16 = TcpFlags::RST;

    /// The y of every `<text>` of `class`, and of every segment label (the monospace texts).
    fn ys(svg: &str, marker: &str) -> Vec<i32> {
        svg.lines()
            .filter(|l| l.contains(marker))
            .filter_map(|l| {
                let at = l.find("<text")?;
                let y = l[at..].split(" y=\"").nth(1)?.split('"').next()?;
                y.parse().ok()
            })
            .collect()
    }

    #[test]
    fn a_break_label_stays_clear_of_the_next_arrow_label() {
        // a handshake, then a second of nothing, then the reset
        let segs = vec![
            seg(0, Peer::A, S, 0, 0, b""),
            seg(10_000, Peer::B, S | A, 0, 1, b""),
            seg(20_000, Peer::A, A, 1, 1, b""),
            seg(1_000_020_000, Peer::B, R | A, 1, 1, b""),
        ];
        let svg = svg(&build(sides(), &[], &segs, States::Inferred), "t");
        let gap = ys(&svg, r#"class="gap""#);
        assert_eq!(gap.len(), 1, "{svg}");
        let labels = ys(&svg, "DejaVu Sans Mono");
        let next = labels.iter().find(|&&y| y > gap[0]).expect("a label below");
        // both 12–13 px text: baselines at least a line apart, and the one above the break clear too
        assert!(
            next - gap[0] >= 14,
            "gap at {}, next label at {next}",
            gap[0]
        );
        let above = labels.iter().rev().find(|&&y| y < gap[0]).unwrap();
        assert!(gap[0] - above >= 14, "label at {above}, gap at {}", gap[0]);
    }

    #[test]
    fn the_legend_names_only_what_the_picture_shows() {
        let plain = vec![
            seg(0, Peer::A, S, 0, 0, b""),
            seg(10, Peer::B, S | A, 0, 1, b""),
        ];
        let legend = |segs: &[crate::model::segment::Segment]| {
            let svg = svg(&build(sides(), &[], segs, States::Inferred), "t");
            svg.lines()
                .filter(|l| l.contains(r#"class="legend""#))
                .map(|l| {
                    l.split('>')
                        .nth(1)
                        .unwrap()
                        .split('<')
                        .next()
                        .unwrap()
                        .to_string()
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(legend(&plain), ["other segment"]);
        let mut reset = plain.clone();
        reset.push(seg(20, Peer::B, R | A, 1, 1, b""));
        let with_reset = legend(&reset);
        assert!(
            with_reset.contains(&"RST segment".to_string()),
            "{with_reset:?}"
        );
        // no FIN, no call, no kernel row in either picture
        for absent in [
            "FIN segment",
            "red text: a call that failed",
            "⚙ the kernel's own event",
        ] {
            assert!(!with_reset.iter().any(|l| l == absent), "{with_reset:?}");
        }
    }
}
