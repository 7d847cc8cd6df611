//! The timeline as a terminal table (comfy-table) or a Markdown table: time | A | wire | B.

use comfy_table::{Attribute, Cell, Color, ContentArrangement, Table, presets};

use crate::explain::timeline::{KernelRow, RowKind, Timeline, WireRow};
use crate::model::calls::{CallKind, Peer, SocketCall};
use crate::model::kernel::KernelEventKind;
use crate::model::segment::preview;
use crate::render::{Style, escape, time_text};

/// What a row is about, for colouring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain,
    Fin,
    Reset,
    Error,
}

/// The text of a call cell: `recv(64) = -1 ECONNRESET (…)  [CLOSE]`.
pub fn call_text(call: &SocketCall, pending: bool) -> String {
    let mut s = escape::text(&call.call).into_owned();
    if let Some(n) = call.unread_before.filter(|_| call.kind == CallKind::Close) {
        s.push_str(&format!(
            " with {n} byte{} unread",
            if n == 1 { "" } else { "s" }
        ));
    }
    if pending {
        // connect/accept/recv wait for the peer; the others merely took long enough for segments to go out
        let waits = matches!(
            call.kind,
            CallKind::Recv | CallKind::Accept | CallKind::Connect
        );
        s.push_str(if waits { " … waiting" } else { " …" });
        return s;
    }
    s.push(' ');
    s.push_str(&call.result_text());
    if let Some(state) = call.state {
        s.push_str(&format!("  [{state}]"));
    }
    s
}

fn return_text(call: &SocketCall) -> String {
    let mut s = format!(
        "└ {} returns {}",
        escape::text(&call.call),
        call.result_text()
    );
    if let Some(state) = call.state {
        s.push_str(&format!("  [{state}]"));
    }
    s
}

/// The text of a segment cell: `A → B [P.] seq 1:21 ack 1 len 20 "hello…"`.
pub fn segment_text(w: &WireRow) -> String {
    let seg = &w.segment;
    let arrow = match w.from {
        Peer::A => "──▶",
        Peer::B => "◀──",
    };
    let mut s = format!("{arrow} [{}] seq {}", seg.flags.tcpdump(), w.rel_seq);
    if seg.len > 0 {
        s.push_str(&format!(":{}", w.rel_seq.wrapping_add(seg.len)));
    }
    if let Some(ack) = w.rel_ack {
        s.push_str(&format!(" ack {ack}"));
    }
    s.push_str(&format!(" len {}", seg.len));
    if !seg.payload.is_empty() {
        s.push_str(&format!(" \"{}\"", preview(&seg.payload, 14)));
    }
    if let Some((a, b)) = w.states_after {
        s.push_str(&format!("  ({a} | {b})"));
    }
    for note in &w.notes {
        s.push_str(&format!("\n  ⚠ {note}"));
    }
    s
}

fn tone_of_segment(w: &WireRow) -> Tone {
    if w.segment.flags.rst() {
        Tone::Reset
    } else if w.segment.flags.fin() {
        Tone::Fin
    } else {
        Tone::Plain
    }
}

fn tone_of_call(call: &SocketCall) -> Tone {
    if call.errno().is_some() {
        Tone::Error
    } else {
        Tone::Plain
    }
}

/// The text of a kernel row: `⚙ B's kernel sends RST — reason TCP_ABORT_ON_CLOSE (closed with unread data)`.
pub fn kernel_text(k: &KernelRow) -> String {
    format!("⚙ {}", k.text())
}

fn tone_of_kernel(k: &KernelRow) -> Tone {
    match k.event {
        KernelEventKind::SendReset { .. } => Tone::Reset,
        KernelEventKind::ErrorReport { errno, .. } if errno != 0 => Tone::Error,
        _ => Tone::Plain,
    }
}

/// The four cells of each row, with its tone.
fn rows(t: &Timeline) -> (bool, Vec<([String; 4], Tone)>) {
    let t0 = t.t0();
    let span = t.rows.last().map_or(0, |r| r.t - t0);
    let unit_ms = span >= 10_000_000;
    let out = t
        .rows
        .iter()
        .map(|row| {
            let time = time_text(row.t - t0, unit_ms);
            let (peer, text, tone) = match &row.kind {
                RowKind::Call {
                    call,
                    returns_later,
                } => (
                    Some(call.peer),
                    call_text(call, *returns_later),
                    if *returns_later {
                        Tone::Plain
                    } else {
                        tone_of_call(call)
                    },
                ),
                RowKind::Return { call } => {
                    (Some(call.peer), return_text(call), tone_of_call(call))
                }
                RowKind::Segment(w) => (None, segment_text(w), tone_of_segment(w)),
                RowKind::Kernel(k) => (Some(k.peer), kernel_text(k), tone_of_kernel(k)),
            };
            let cells = match peer {
                Some(Peer::A) => [time, text, String::new(), String::new()],
                Some(Peer::B) => [time, String::new(), String::new(), text],
                None => [time, String::new(), text, String::new()],
            };
            (cells, tone)
        })
        .collect();
    (unit_ms, out)
}

fn headers(t: &Timeline, unit_ms: bool) -> [String; 4] {
    [
        if unit_ms { "t (ms)" } else { "t (µs)" }.to_string(),
        t.sides.a_label.clone(),
        "wire".to_string(),
        t.sides.b_label.clone(),
    ]
}

/// The timeline as a terminal table.
pub fn timeline_table(t: &Timeline, style: Style) -> String {
    let (unit_ms, rows) = rows(t);
    let mut table = Table::new();
    table.load_style(presets::UTF8_FULL_CONDENSED);
    match style.width {
        Some(w) => {
            table.set_width(w);
            table.set_content_arrangement(ContentArrangement::Dynamic);
        }
        None => {
            table.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
    if style.color {
        table.enforce_styling();
    } else {
        table.force_no_tty();
    }
    table.set_header(headers(t, unit_ms).map(|h| escape::text(&h).into_owned()));
    for (cells, tone) in rows {
        let colour = match tone {
            Tone::Plain => None,
            Tone::Fin => Some(Color::Cyan),
            Tone::Reset | Tone::Error => Some(Color::Red),
        };
        let row: Vec<Cell> = cells
            .into_iter()
            .map(|c| {
                // the cell's own line breaks (a note below a segment) stay; anything else is escaped
                let cell = Cell::new(escape::lines(&c));
                match (style.color, colour) {
                    (true, Some(col)) => {
                        let cell = cell.fg(col);
                        if tone == Tone::Reset {
                            cell.add_attribute(Attribute::Bold)
                        } else {
                            cell
                        }
                    }
                    _ => cell,
                }
            })
            .collect();
        table.add_row(row);
    }
    table.to_string()
}

/// Escape a cell for a Markdown table ([`escape::markdown`]: no markup from the data, line breaks as `<br>`).
pub fn md_cell(s: &str) -> String {
    escape::markdown(s).into_owned()
}

/// Lines of a Markdown table of cells already escaped.
fn escaped_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
    out.push_str(&line(headers));
    out.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn md_cells(cells: &[String]) -> Vec<String> {
    cells.iter().map(|c| md_cell(c)).collect()
}

/// Lines of a Markdown table, every cell escaped by [`md_cell`].
pub fn markdown_table(headers: &[String], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows.iter().map(|r| md_cells(r)).collect();
    escaped_table(&md_cells(headers), &rows)
}

/// The timeline as a Markdown table; RST rows in bold, FIN rows in italics (the time column stays plain). Cells are
/// escaped before our own marks go around them.
pub fn timeline_markdown(t: &Timeline) -> String {
    let (unit_ms, rows) = rows(t);
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|(cells, tone)| {
            let mark = match tone {
                Tone::Reset => "**",
                Tone::Fin => "_",
                Tone::Plain | Tone::Error => "",
            };
            cells
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let c = md_cell(&c);
                    if i == 0 || c.is_empty() || mark.is_empty() {
                        c
                    } else {
                        format!("{mark}{c}{mark}")
                    }
                })
                .collect()
        })
        .collect();
    escaped_table(&md_cells(&headers(t, unit_ms)), &rows)
}
