//! The timeline as a terminal table (comfy-table) or a Markdown table: time | A | wire | B.

use comfy_table::{
    Attribute, Cell, Color, ColumnConstraint, ContentArrangement, Table, Width, presets,
};

use crate::explain::timeline::{KernelRow, RowKind, Timeline, WireRow};
use crate::model::calls::{CallKind, Peer, SocketCall};
use crate::model::kernel::KernelEventKind;
use crate::model::segment::{TcpFlags, preview};
use crate::render::{Style, escape, fit, time_text};

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

/// Flags as words for beginners (`--flags words`): `SYN`, `SYN-ACK`, `ACK`, `PSH-ACK`, `FIN-ACK`, `RST`,
/// `RST-ACK`; the flags other than ACK in tcpdump's order, then ACK, joined by `-`.
pub fn flag_words(f: TcpFlags) -> String {
    const NAMES: [(u16, &str); 8] = [
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::URG, "URG"),
        (TcpFlags::ECE, "ECE"),
        (TcpFlags::CWR, "CWR"),
        (TcpFlags::AE, "AE"),
    ];
    let mut words: Vec<&str> = NAMES
        .iter()
        .filter(|(bit, _)| f.has(*bit))
        .map(|(_, n)| *n)
        .collect();
    if f.ack() {
        words.push("ACK");
    }
    if words.is_empty() {
        "none".to_string()
    } else {
        words.join("-")
    }
}

/// A segment's flags as the output shows them: tcpdump's letters, or words.
pub fn flags_shown(f: TcpFlags, words: bool) -> String {
    if words { flag_words(f) } else { f.tcpdump() }
}

/// The text of a segment cell: `A → B [P.] seq 1:21 ack 1 len 20 "hello…"`.
pub fn segment_text(w: &WireRow) -> String {
    segment_text_as(w, false)
}

/// [`segment_text`], the flags as words when `words`.
pub fn segment_text_as(w: &WireRow, words: bool) -> String {
    let seg = &w.segment;
    let arrow = match w.from {
        Peer::A => "──▶",
        Peer::B => "◀──",
    };
    let mut s = format!(
        "{arrow} [{}] seq {}",
        flags_shown(seg.flags, words),
        w.rel_seq
    );
    if seg.len > 0 {
        s.push_str(&format!(":{}", w.rel_seq.wrapping_add(seg.len)));
    }
    if let Some(ack) = w.rel_ack {
        s.push_str(&format!(" ack {ack}"));
    }
    s.push_str(&format!(" len {}", seg.len));
    if zero_window(seg) {
        s.push_str(" win 0");
    }
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

/// A zero window advertised (the sender's receive buffer is full: its peer must stop sending), shown as `win 0`;
/// not on a RST, whose window Linux always sets to 0 and which advertises nothing.
pub fn zero_window(seg: &crate::model::segment::Segment) -> bool {
    seg.window == 0 && !seg.flags.rst()
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

/// The four cells of each row, with its tone; flags as words when `words`.
fn rows(t: &Timeline, words: bool) -> (bool, Vec<([String; 4], Tone)>) {
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
                RowKind::Segment(w) => (None, segment_text_as(w, words), tone_of_segment(w)),
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

/// A comfy table in our frame, fitted to `style`; call [`keep_words`] once its rows are in.
pub fn framed_table(style: Style) -> Table {
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
    table
}

/// No column of `table` narrower than `mins` (each column's widest word), so that no word is cut; the caller
/// has checked with [`table_fits`] that these fit. Columns exist once the header or rows are in.
pub fn keep_words(table: &mut Table, mins: &[usize]) {
    if table.width().is_none() {
        return;
    }
    // the lower bound counts the cell's padding (one space each side)
    table.set_constraints(mins.iter().map(|m| {
        ColumnConstraint::LowerBoundary(Width::Fixed(u16::try_from(m + 2).unwrap_or(u16::MAX)))
    }));
}

/// Whether columns of these smallest widths fit `style`'s width in our frame (a border and a space each side of
/// every cell).
pub fn table_fits(style: Style, mins: &[usize]) -> bool {
    style
        .room()
        .is_none_or(|room| mins.iter().sum::<usize>() + 3 * mins.len() < room)
}

/// The colour of a row's cells.
fn tone_cell(cell: Cell, tone: Tone, color: bool) -> Cell {
    if !color {
        return cell;
    }
    match tone {
        Tone::Plain => cell,
        Tone::Fin => cell.fg(FIN_COLOUR).add_attribute(Attribute::Bold),
        Tone::Error => cell.fg(RESET_COLOUR),
        Tone::Reset => cell.fg(RESET_COLOUR).add_attribute(Attribute::Bold),
    }
}

/// FIN rows: a dark cyan (xterm 30, #008787), bold, that keeps a contrast of about 4.5:1 on a white and on a
/// black background alike (docs/img/colours-*.png); the 16 named colours change with the terminal's palette and bright cyan vanishes on white.
pub const FIN_COLOUR: Color = Color::AnsiValue(30);
/// RST and failed calls: xterm 160 (#d70000), bold for RST rows; readable on white and on black.
pub const RESET_COLOUR: Color = Color::AnsiValue(160);

/// The timeline as a terminal table, fitted to `style`'s width. Stated order when it does not fit: cells wrap at
/// spaces; a side's column with nothing in it (A and B of a plain capture) is left out at any width; when the
/// columns of time | A | wire | B cannot each have 28 columns (or their widest word) side by side, the rows are stacked in one column with a
/// column naming the side (t | at | what), so that no word is ever cut.
pub fn timeline_table(t: &Timeline, style: Style) -> String {
    timeline_table_as(t, style, false)
}

/// [`timeline_table`], the flags as words when `words`.
pub fn timeline_table_as(t: &Timeline, style: Style, words: bool) -> String {
    let (unit_ms, rows) = rows(t, words);
    let headers = headers(t, unit_ms).map(|h| escape::text(&h).into_owned());
    let rows: Vec<([String; 4], Tone)> = rows
        .into_iter()
        .map(|(cells, tone)| (cells.map(|c| escape::lines(&c).into_owned()), tone))
        .collect();
    // the time and the wire are always shown; A's and B's columns when something is in them
    let used: Vec<usize> = (0..4)
        .filter(|&i| i == 0 || i == 2 || rows.iter().any(|(c, _)| !c[i].is_empty()))
        .collect();
    let mins: Vec<usize> = used
        .iter()
        .map(|&i| {
            rows.iter()
                .map(|(c, _)| fit::longest_word(&c[i]))
                .chain([fit::longest_word(&headers[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    // side by side only when every column has room to be read, not merely its widest word
    let comfortable: Vec<usize> = used
        .iter()
        .zip(&mins)
        .map(|(&i, &m)| {
            let widest = rows.iter().map(|(c, _)| fit::widest_line(&c[i])).max();
            widest.unwrap_or(0).min(m.max(COMFORTABLE))
        })
        .collect();
    if !table_fits(style, &comfortable) {
        return stacked_table(&headers, &rows, style);
    }
    let mut table = framed_table(style);
    table.set_header(used.iter().map(|&i| headers[i].clone()));
    for (cells, tone) in &rows {
        table.add_row(
            used.iter()
                .map(|&i| tone_cell(Cell::new(&cells[i]), *tone, style.color)),
        );
    }
    keep_words(&mut table, &mins);
    table.to_string()
}

/// The width a column of the side-by-side timeline should have at least to be read without a word per line.
const COMFORTABLE: usize = 28;

/// The narrow form of the timeline table: a row per event as `t | at | what`, `at` naming A, B or the wire.
fn stacked_table(headers: &[String; 4], rows: &[([String; 4], Tone)], style: Style) -> String {
    let at = |i: usize| match i {
        1 => "A",
        3 => "B",
        _ => "wire",
    };
    let mut cells: Vec<([String; 3], Tone)> = Vec::new();
    for (c, tone) in rows {
        let i = (1..4).find(|&i| !c[i].is_empty()).unwrap_or(2);
        cells.push(([c[0].clone(), at(i).to_string(), c[i].clone()], *tone));
    }
    let head = [headers[0].clone(), "at".to_string(), "what".to_string()];
    let mins: Vec<usize> = (0..3)
        .map(|i| {
            cells
                .iter()
                .map(|(c, _)| fit::longest_word(&c[i]))
                .chain([fit::longest_word(&head[i])])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut table = framed_table(style);
    table.set_header(head);
    // who A and B are, as the wide table's headers said
    for (i, label) in [(1, &headers[1]), (3, &headers[3])] {
        table.add_row([String::new(), at(i).to_string(), label.clone()]);
    }
    for (c, tone) in cells {
        table.add_row(c.map(|c| tone_cell(Cell::new(c), tone, style.color)));
    }
    keep_words(&mut table, &mins);
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
    let (unit_ms, rows) = rows(t, false);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explain::rows::WireRow;
    use crate::model::segment::TcpFlags;
    use crate::testing::seg;

    fn row(flags: u16, window: u16) -> WireRow {
        let mut segment = seg(1, Peer::B, flags, 1, 1, b"");
        segment.window = window;
        WireRow {
            from: Peer::B,
            segment,
            rel_seq: 1,
            rel_ack: Some(1),
            states_after: None,
            notes: Vec::new(),
            rst_fate: None,
        }
    }

    #[test]
    fn a_zero_window_is_shown_but_not_on_a_reset() {
        assert!(segment_text(&row(TcpFlags::ACK, 0)).ends_with("len 0 win 0"));
        assert!(!segment_text(&row(TcpFlags::ACK, 55)).contains("win"));
        // Linux sets a RST's window to 0: it advertises nothing
        assert!(!segment_text(&row(TcpFlags::RST | TcpFlags::ACK, 0)).contains("win"));
        let ladder = crate::render::ladder::segment_label(&row(TcpFlags::ACK, 0));
        assert!(ladder.ends_with("win 0"), "{ladder}");
    }
}
