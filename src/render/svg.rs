//! A standalone SVG sequence diagram for slides: time runs down, A's lifeline on the left and B's on the right,
//! each segment an arrow sloping across, labelled with its flags and length; RST red, FIN blue. Rows are evenly
//! spaced (the time of each is written in the margin), so short and long gaps read alike.

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

const RST: &str = "#c62828";
const FIN: &str = "#1565c0";
const PLAIN: &str = "#444444";

fn xml(s: &str) -> std::borrow::Cow<'_, str> {
    escape::xml(s)
}

/// The diagram, with `title` (the mode and kernel, or the connection) written above it.
pub fn svg(t: &Timeline, title: &str) -> String {
    let t0 = t.t0();
    let unit_ms = t.rows.last().map_or(0, |r| r.t - t0) >= 10_000_000;
    let height = TOP + t.rows.len() as i32 * ROW + 50;
    let mut s = String::new();
    head(&mut s, t, title, height, unit_ms);
    for (i, row) in t.rows.iter().enumerate() {
        let y = TOP + i as i32 * ROW;
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
            }
            RowKind::Kernel(k) => {
                let error =
                    matches!(k.event, KernelEventKind::ErrorReport { errno, .. } if errno != 0);
                let text = format!("⚙ {}", k.short());
                let _ = writeln!(s, "{}", call_text(k.peer, y, &text, error));
            }
        }
    }
    s.push_str("</svg>\n");
    s
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
    // the title on up to two lines: what it is, then what it shows
    for (i, part) in title.splitn(2, " — ").enumerate() {
        let weight = if i == 0 { "bold" } else { "normal" };
        let _ = writeln!(
            s,
            r##"<text x="14" y="{}" font-size="13" font-weight="{weight}" fill="#333">{}</text>"##,
            18 + 17 * i as i32,
            xml(part)
        );
    }
    // headers and lifelines
    for (x, label) in [(A_X, &t.sides.a_label), (B_X, &t.sides.b_label)] {
        let _ = writeln!(
            s,
            r##"<rect x="{}" y="44" width="240" height="32" rx="6" fill="#f3f3f3" stroke="#888"/><text x="{x}" y="65" text-anchor="middle" font-weight="bold">{}</text>"##,
            x - 120,
            xml(label)
        );
        let _ = writeln!(
            s,
            r##"<line x1="{x}" y1="76" x2="{x}" y2="{}" stroke="#999" stroke-width="2"/>"##,
            height - 30
        );
    }
    let _ = writeln!(
        s,
        r##"<text x="14" y="94" fill="#666">t ({})</text>"##,
        if unit_ms { "ms" } else { "µs" }
    );
}

/// A call's text beside its side's lifeline at height `y`; red when it failed.
fn call_text(peer: Peer, y: i32, text: &str, error: bool) -> String {
    let colour = if error { RST } else { "#222" };
    match peer {
        Peer::A => format!(
            r#"<text class="call" x="{}" y="{}" text-anchor="end" fill="{colour}">{}</text>"#,
            A_X - 10,
            y + 4,
            xml(text)
        ),
        Peer::B => format!(
            r#"<text class="call" x="{}" y="{}" fill="{colour}">{}</text>"#,
            B_X + 10,
            y + 4,
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
