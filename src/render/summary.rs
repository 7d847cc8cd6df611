//! The analyze summary: one row per shown connection, then totals, as an aligned table, Markdown, CSV or JSON
//! Lines. Rows are formatted without a table library, in parts on two threads, and written out as they are made, so
//! a million rows cost a second, not a minute, and never sit in memory whole.

use std::borrow::Cow;
use std::io::{self, Write};

use serde_json::{Value, json};

use crate::model::time::{push_iso_time, push_seconds, push_u64};
use crate::render::conn_json::{first_close_json, push_conn_json, push_endpoint, push_json_str};
use crate::render::rows::{ROWS_PER_PART, write_rows};
use crate::render::text::markdown_table;
use crate::render::{csv, escape, fit, json};
use crate::track::conn::{CloseKind, Conn, Ending, Side};
use crate::track::report::FileReport;

/// One file's summary as the pipeline picked it: the file's report, the connections to show (in id order), and
/// their endings counted, most frequent first.
pub struct Shown<'a> {
    pub report: &'a FileReport,
    pub conns: Vec<&'a Conn>,
    pub endings: Vec<(Ending, u64)>,
}

pub const HEADERS: [&str; 13] = [
    "id",
    "client",
    "server",
    "start (UTC)",
    "duration (s)",
    "bytes c→s",
    "bytes s→c",
    "first close",
    "FIN c/s",
    "RST c/s",
    "conn_state",
    "history",
    "ending",
];

/// `a/b` of two counters.
fn push_pair(out: &mut String, a: u16, b: u16) {
    let mut ib = itoa::Buffer::new();
    out.push_str(ib.format(a));
    out.push('/');
    out.push_str(ib.format(b));
}

/// Append cell `i` (in [`HEADERS`] order) of a connection's row; `ending` is its ending's text.
pub(crate) fn push_cell(out: &mut String, c: &Conn, i: usize, ending: &str) {
    match i {
        0 => push_u64(out, u64::from(c.id)),
        1 => push_endpoint(out, &c.client),
        2 => push_endpoint(out, &c.server),
        3 => push_iso_time(out, c.start),
        4 => push_seconds(out, c.duration()),
        5 => push_u64(out, c.bytes(Side::Client)),
        6 => push_u64(out, c.bytes(Side::Server)),
        7 => out.push_str(first_close_str(c)),
        8 => push_pair(out, c.fins(Side::Client), c.fins(Side::Server)),
        9 => push_pair(out, c.rsts(Side::Client), c.rsts(Side::Server)),
        10 => out.push_str(c.conn_state().code()),
        11 => out.push_str(c.history()),
        _ => out.push_str(ending),
    }
}

/// `client FIN`, `server RST`, or `-`, as [`first_close_text`] words it.
fn first_close_str(c: &Conn) -> &'static str {
    match c.first_close {
        Some((Side::Client, CloseKind::Fin)) => "client FIN",
        Some((Side::Client, CloseKind::Rst)) => "client RST",
        Some((Side::Server, CloseKind::Fin)) => "server FIN",
        Some((Side::Server, CloseKind::Rst)) => "server RST",
        None => "-",
    }
}

/// The cells of one connection's row.
pub fn cells(c: &Conn) -> [String; 13] {
    let ending = c.ending().text();
    std::array::from_fn(|i| {
        let mut s = String::new();
        push_cell(&mut s, c, i, ending);
        s
    })
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Printed width of `ip:port` without formatting it (a million rows must not be formatted twice).
fn endpoint_width(e: &crate::track::conn::Endpoint) -> usize {
    match e.ip {
        std::net::IpAddr::V4(v4) => {
            v4.octets()
                .iter()
                .map(|&o| digits(u64::from(o)))
                .sum::<usize>()
                + 3
                + 1
                + digits(u64::from(e.port))
        }
        // [addr]:port; compressed IPv6 is at most 39 characters.
        std::net::IpAddr::V6(v6) => v6.to_string().len() + 3 + digits(u64::from(e.port)),
    }
}

/// Column widths from cheap measures of every shown connection, so rows can be written as they are formatted.
/// Many connections are measured in two halves, one on a second thread.
fn widths(conns: &[&Conn]) -> ([usize; 13], usize) {
    if conns.len() < 2 * ROWS_PER_PART {
        return widths_of(conns);
    }
    let (a, b) = conns.split_at(conns.len() / 2);
    let (wa, wb) = std::thread::scope(|scope| {
        let other = scope.spawn(|| widths_of(b));
        let wa = widths_of(a);
        match other.join() {
            Ok(wb) => (wa, wb),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    });
    (
        std::array::from_fn(|i| wa.0[i].max(wb.0[i])),
        wa.1.max(wb.1),
    )
}

fn widths_of(conns: &[&Conn]) -> ([usize; 13], usize) {
    let mut w: [usize; 13] = std::array::from_fn(|i| HEADERS[i].chars().count());
    let mut ending_word = fit::longest_word(HEADERS[12]);
    for c in conns {
        ending_word = ending_word.max(fit::longest_word(c.ending().text()));
        let m = [
            digits(u64::from(c.id)),
            endpoint_width(&c.client),
            endpoint_width(&c.server),
            27,
            digits((c.duration() / 1_000_000_000) as u64) + 7,
            digits(c.bytes(Side::Client)),
            digits(c.bytes(Side::Server)),
            first_close_text_width(c),
            digits(u64::from(c.fins(Side::Client))) + 1 + digits(u64::from(c.fins(Side::Server))),
            digits(u64::from(c.rsts(Side::Client))) + 1 + digits(u64::from(c.rsts(Side::Server))),
            c.conn_state().code().len(),
            c.history().chars().count(),
            c.ending().text().chars().count(),
        ];
        for (a, b) in w.iter_mut().zip(m) {
            *a = (*a).max(b);
        }
    }
    (w, ending_word)
}

fn first_close_text_width(c: &Conn) -> usize {
    match c.first_close {
        Some((side, _)) => side.name().len() + 4,
        None => 1,
    }
}

const SPACES: &str = "                                                                ";

fn push_spaces(out: &mut String, mut n: usize) {
    while n > 0 {
        let k = n.min(SPACES.len());
        out.push_str(&SPACES[..k]);
        n -= k;
    }
}

/// The summary's columns in the order they are left out when the width is too small for them (indices of
/// [`HEADERS`], least telling first); id, client, server and the ending stay, and the ending wraps at its spaces.
pub const DROP_ORDER: [usize; 9] = [3, 7, 4, 6, 5, 11, 8, 9, 10];

/// The room the last column (the ending) should have at least, or its widest word if that is wider.
const ENDING_ROOM: usize = 24;

/// How the plain table is laid out in `room`: the width of every column, which are shown, where the ending
/// starts, and which parts go on lines of their own.
struct Plan {
    width: [usize; 13],
    /// The shown columns, indices of [`HEADERS`].
    cols: Vec<usize>,
    shown: [bool; 13],
    /// Where the ending starts, and how much room it has before the edge.
    indent: usize,
    ending_room: Option<usize>,
    /// Too little room beside the other columns (long IPv6 addresses): the ending goes on a line of its own.
    below: bool,
    /// Too little room even for the client and the server side by side (IPv6 at 80 columns): the server starts
    /// a line of its own under the client, whole (an address is never shortened), the columns after it follow.
    stack: bool,
}

fn plan(shown: &[&Conn], room: Option<usize>) -> Plan {
    let (width, ending_word) = widths(shown);
    let last = width.len() - 1;
    let mut need = width;
    need[last] = width[last].min(ENDING_ROOM.max(ending_word));
    let stack = room.is_some_and(|r| width[0] + 2 + width[1] + 2 + width[2] > r);
    if stack {
        need[1] = 0;
    }
    let shown_cols = fit::shown_columns(&need, &DROP_ORDER, 2, 0, room);
    let cols: Vec<usize> = (0..width.len()).filter(|&i| shown_cols[i]).collect();
    let indent: usize = cols[..cols.len() - 1]
        .iter()
        .filter(|&&i| !(stack && i == 1))
        .map(|&i| width[i] + 2)
        .sum();
    Plan {
        width,
        shown: std::array::from_fn(|i| shown_cols[i]),
        ending_room: room.map(|r| r.saturating_sub(indent).max(ending_word)),
        below: room.is_some_and(|r| r.saturating_sub(indent) < ENDING_ROOM.min(width[last])),
        cols,
        indent,
        stack,
    }
}

impl Plan {
    /// End the line in `buf` and start the next under the client's column.
    fn under_client(&self, buf: &mut String) {
        buf.truncate(buf.trim_end().len());
        buf.push('\n');
        push_spaces(buf, self.width[0] + 2);
    }

    /// The column names, laid out as the rows are.
    fn header(&self) -> String {
        let mut head = String::new();
        for (k, &i) in self.cols.iter().enumerate() {
            if self.stack && i == 2 {
                self.under_client(&mut head);
            }
            if self.below && k + 1 == self.cols.len() {
                head.truncate(head.trim_end().len());
                head.push_str("\n    ");
            }
            head.push_str(HEADERS[i]);
            if k + 1 < self.cols.len() {
                let pad = self.width[i].saturating_sub(fit::width(HEADERS[i])) + 2;
                push_spaces(&mut head, pad);
            }
        }
        head.push('\n');
        head
    }

    /// One connection's row, laid out.
    fn row(&self, buf: &mut String, c: &Conn, room: Option<usize>) {
        let ending = c.ending().text();
        for (k, &i) in self.cols.iter().enumerate() {
            if k + 1 == self.cols.len() && self.below {
                buf.truncate(buf.trim_end().len());
                buf.push('\n');
                buf.push_str(fit::wrap(ending, room, "    ", "    ").trim_end());
                break;
            }
            if k + 1 == self.cols.len() {
                match self.ending_room {
                    Some(r) if fit::width(ending) > r => {
                        let hang = " ".repeat(self.indent);
                        let wrapped = fit::wrap(ending, Some(self.indent + r), &hang, &hang);
                        buf.push_str(wrapped[self.indent..].trim_end());
                    }
                    _ => push_cell(buf, c, i, ending),
                }
                break;
            }
            if self.stack && i == 2 {
                self.under_client(buf);
            }
            let start = buf.len();
            push_cell(buf, c, i, ending);
            let cell = &buf[start..];
            let n = if cell.is_ascii() {
                cell.len()
            } else {
                cell.chars().count()
            };
            push_spaces(buf, self.width[i].saturating_sub(n) + 2);
        }
        buf.push('\n');
    }
}

/// Plain aligned columns (two spaces apart), fitted to `room`: columns are left out in [`DROP_ORDER`] until the
/// rest fit, and the last column (the ending) wraps at its spaces under itself. Rows go to `out` in chunks as they
/// are formatted, so a million-row summary never sits in memory as a whole.
pub fn write_summary_table(
    shown: &[&Conn],
    room: Option<usize>,
    out: &mut dyn Write,
) -> io::Result<()> {
    let plan = plan(shown, room);
    out.write_all(plan.header().as_bytes())?;
    write_rows(
        shown,
        &|buf: &mut String, c: &Conn| plan.row(buf, c, room),
        out,
    )?;
    let dropped: Vec<&str> = (0..plan.width.len())
        .filter(|&i| !plan.shown[i])
        .map(|i| HEADERS[i])
        .collect();
    if !dropped.is_empty() {
        // say what is left out, so that nobody reads a missing column as a missing fact
        let note = format!(
            "(left out to fit {} columns: {}; --width 0, -f markdown or -f csv shows all)",
            room.unwrap_or(0),
            dropped.join(", ")
        );
        out.write_all(fit::wrap(&note, room, "", " ").as_bytes())?;
    }
    Ok(())
}

/// What a writer of the summary wrote, as a string (small outputs and tests).
fn written(write: impl FnOnce(&mut Vec<u8>) -> io::Result<()>) -> String {
    let mut out = Vec::new();
    // writing to memory does not fail
    let _ = write(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// The aligned table as one string.
pub fn summary_table(shown: &Shown) -> String {
    written(|out| write_summary_table(&shown.conns, None, out))
}

/// The Markdown table as one string.
pub fn summary_markdown(shown: &Shown) -> String {
    written(|out| write_summary_markdown(&shown.conns, out))
}

/// The summary as a Markdown table, written to `out` in parts as the rows are formatted (as
/// [`markdown_table`] lays it out: cells escaped by [`escape::markdown`]).
pub fn write_summary_markdown(shown: &[&Conn], out: &mut dyn Write) -> io::Result<()> {
    let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    out.write_all(markdown_table(&headers, &[]).as_bytes())?;
    let row = |buf: &mut String, c: &Conn| {
        let ending = c.ending().text();
        buf.push_str("| ");
        for i in 0..HEADERS.len() {
            if i > 0 {
                buf.push_str(" | ");
            }
            let start = buf.len();
            push_cell(buf, c, i, ending);
            if let Cow::Owned(escaped) = escape::markdown(&buf[start..]) {
                buf.truncate(start);
                buf.push_str(&escaped);
            }
        }
        buf.push_str(" |\n");
    };
    write_rows(shown, &row, out)
}

/// The summary's CSV columns: snake_case ASCII names, a value per cell (the table's `3/3` is two columns), an
/// empty cell for none; A is the client, B the server, as in the JSON.
pub const CSV_HEADERS: [&str; 17] = [
    "file",
    "id",
    "a",
    "b",
    "start",
    "duration_s",
    "bytes_a",
    "bytes_b",
    "first_close_by",
    "first_close_flag",
    "fins_a",
    "fins_b",
    "rsts_a",
    "rsts_b",
    "conn_state",
    "history",
    "ending",
];

/// CSV header for summaries (a `file` column first, so several files make one table).
pub fn summary_csv_header() -> String {
    csv::line(&CSV_HEADERS)
}

/// Append CSV cell `i` (in [`CSV_HEADERS`] order, after `file`) of a connection's row.
fn push_csv_cell(out: &mut String, c: &Conn, i: usize, ending: &str) {
    let (by, flag) = first_close_json(c);
    match i {
        1 => push_u64(out, u64::from(c.id)),
        2 => push_endpoint(out, &c.client),
        3 => push_endpoint(out, &c.server),
        4 => push_iso_time(out, c.start),
        5 => push_seconds(out, c.duration()),
        6 => push_u64(out, c.bytes(Side::Client)),
        7 => push_u64(out, c.bytes(Side::Server)),
        8 => out.push_str(by.unwrap_or_default()),
        9 => out.push_str(flag.unwrap_or_default()),
        10 => push_u64(out, u64::from(c.fins(Side::Client))),
        11 => push_u64(out, u64::from(c.fins(Side::Server))),
        12 => push_u64(out, u64::from(c.rsts(Side::Client))),
        13 => push_u64(out, u64::from(c.rsts(Side::Server))),
        14 => out.push_str(c.conn_state().code()),
        15 => out.push_str(c.history()),
        _ => out.push_str(ending),
    }
}

/// Quote the field that starts at `start` in `buf` the way [`csv::field`] does, when it needs it.
fn quote_csv_from(buf: &mut String, start: usize) {
    if buf[start..].contains([',', '"', '\n', '\r']) {
        let quoted = csv::field(&buf[start..]);
        buf.truncate(start);
        buf.push_str(&quoted);
    }
}

/// CSV rows of the shown connections (no header: see [`summary_csv_header`]), the file's name first.
pub fn write_summary_csv(shown: &Shown, out: &mut dyn Write) -> io::Result<()> {
    let file = csv::field(&shown.report.name);
    let row = |buf: &mut String, c: &Conn| {
        let ending = c.ending().text();
        buf.push_str(&file);
        for i in 1..CSV_HEADERS.len() {
            buf.push(',');
            let start = buf.len();
            push_csv_cell(buf, c, i, ending);
            quote_csv_from(buf, start);
        }
        buf.push('\n');
    };
    write_rows(&shown.conns, &row, out)
}

/// The last line for a file: totals, and frames skipped and why.
pub fn totals_json(shown: &Shown) -> Value {
    let r = shown.report;
    let endings: serde_json::Map<String, Value> = shown
        .endings
        .iter()
        .map(|(e, n)| (e.describe(), json!(n)))
        .collect();
    let skipped_total: u64 = r.skipped.values().sum();
    json!({
        "schema": json::SCHEMA,
        "kind": "totals",
        "file": r.name,
        "format": r.kind.map(|k| k.name()),
        "gzip": r.gzip,
        "frames": r.counts.frames,
        "tcp_segments": r.counts.tcp_segments,
        "syn_segments": r.counts.syn,
        "fin_segments": r.counts.fin,
        "rst_segments": r.counts.rst,
        "connections": r.connections(),
        "connections_shown": shown.conns.len(),
        "endings": endings,
        "skipped_frames": skipped_total,
        "skipped": r.skipped,
        "error": r.open_error.as_ref().or(r.read_error.as_ref()),
    })
}

/// JSON Lines, written to `out` in chunks: one object per shown connection, then the totals line.
pub fn write_summary_json(shown: &Shown, out: &mut dyn Write) -> io::Result<()> {
    let mut file = String::new();
    push_json_str(&mut file, &shown.report.name);
    let row = |buf: &mut String, c: &Conn| {
        push_conn_json(buf, &file, c, None);
        buf.push('\n');
    };
    write_rows(&shown.conns, &row, out)?;
    let mut last = totals_json(shown).to_string();
    last.push('\n');
    out.write_all(last.as_bytes())
}

/// The JSON Lines as one string.
pub fn summary_json(shown: &Shown) -> String {
    written(|out| write_summary_json(shown, out))
}

/// The totals in words: "812 closed cleanly (client first), 37 reset by the server, …".
pub fn totals_text(shown: &Shown) -> String {
    let r = shown.report;
    let endings = &shown.endings;
    let shown = shown.conns.len();
    let mut out = format!(
        "{}: {} connection{}",
        escape::text(&r.name),
        r.connections(),
        if r.connections() == 1 { "" } else { "s" }
    );
    if shown != r.connections() {
        out.push_str(&format!(" ({shown} shown)"));
    }
    out.push_str(&format!(
        " in {} TCP segments of {} frames",
        r.counts.tcp_segments, r.counts.frames
    ));
    if !endings.is_empty() {
        let words: Vec<String> = endings
            .iter()
            .map(|(e, n)| format!("{n} {}", e.describe()))
            .collect();
        out.push_str(&format!(": {}", words.join(", ")));
    }
    out.push('\n');
    if !r.skipped.is_empty() {
        let total: u64 = r.skipped.values().sum();
        let mut reasons: Vec<(&String, &u64)> = r.skipped.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let words: Vec<String> = reasons
            .iter()
            .map(|(k, n)| format!("{n} {}", escape::text(k)))
            .collect();
        out.push_str(&format!(
            "skipped {total} frame{}: {}\n",
            if total == 1 { "" } else { "s" },
            words.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::model::segment::TcpFlags;
    use crate::model::time::iso_time;
    use crate::render::conn_json;
    use crate::track::tracker::Tracker;

    use crate::testing::segment as seg;
    use crate::track::select::Selection;

    /// Every connection of `r` shown, as the pipeline picks them with no filter.
    fn every(r: &FileReport) -> Shown<'_> {
        Shown {
            report: r,
            conns: r.conns.iter().collect(),
            endings: r.endings(&Selection::default()),
        }
    }

    /// Connections of every kind of ending, over IPv4 and IPv6, at odd times and durations.
    fn varied() -> Vec<Conn> {
        const S: u16 = TcpFlags::SYN;
        const A: u16 = TcpFlags::ACK;
        const F: u16 = TcpFlags::FIN;
        const R: u16 = TcpFlags::RST;
        let mut t = Tracker::new();
        let pairs = [
            ("10.0.0.1:5555", "10.0.0.2:80"),
            ("[2001:db8::1]:40000", "[2001:db8::2]:443"),
            ("192.168.100.200:1", "1.2.3.4:65535"),
            ("[::1]:9", "[fe80::1:2:3:4]:10"),
            ("10.0.0.3:7", "10.0.0.4:8"),
            ("10.0.0.5:7", "10.0.0.6:8"),
        ];
        let t0 = 1_700_000_000_123_456_789;
        for (k, (c, s)) in pairs.iter().enumerate() {
            let ts = |i: i64| t0 + i * 1_234_567_891 * (k as i64 + 1);
            let isn = 1000 * k as u32;
            t.add(&seg(ts(0), c, s, S, isn, 0, 0));
            if k == 4 {
                continue; // never answered
            }
            t.add(&seg(ts(1), s, c, S | A, 77, isn + 1, 0));
            t.add(&seg(ts(2), c, s, A, isn + 1, 78, 10));
            match k {
                0 => {
                    t.add(&seg(ts(3), c, s, F | A, isn + 11, 78, 0));
                    t.add(&seg(ts(4), s, c, F | A, 78, isn + 12, 0));
                }
                1 => {
                    t.add(&seg(ts(3), s, c, R, 78, 0, 0));
                }
                2 => {
                    t.add(&seg(ts(3), s, c, F | A, 78, isn + 11, 5));
                    t.add(&seg(ts(4), c, s, R | A, isn + 11, 84, 0));
                }
                3 => {
                    t.add(&seg(ts(3), c, s, F | A, isn + 11, 78, 0));
                }
                _ => {}
            }
        }
        // a reset to the SYN, and one seen only from its SYN-ACK
        t.add(&seg(t0, "10.9.9.9:1", "10.9.9.8:2", S, 5, 0, 0));
        t.add(&seg(t0 + 1, "10.9.9.8:2", "10.9.9.9:1", R | A, 0, 6, 0));
        t.add(&seg(-5_000, "10.9.9.7:2", "10.9.9.6:1", S | A, 5, 9, 0));
        t.conns
    }

    #[test]
    fn json_rows_match_serde_json() {
        // The hand-written JSON line is byte for byte what serde_json prints for the same value.
        for file in ["plain.pcap", "odd \"name\"\\ with\ttab\u{1}.pcap"] {
            let mut quoted = String::new();
            push_json_str(&mut quoted, file);
            for c in varied() {
                let mut mine = String::new();
                push_conn_json(&mut mine, &quoted, &c, None);
                assert_eq!(mine, conn_json::conn_json(file, &c).to_string());
            }
        }
    }

    #[test]
    fn many_rows_come_out_whole_and_in_order() {
        // More rows than one part: a second thread formats every other part.
        let base = varied();
        let conns: Vec<Conn> = (0..3 * ROWS_PER_PART + 5)
            .map(|i| {
                let mut c = base[i % base.len()].clone();
                c.id = i as u32;
                c
            })
            .collect();
        let r = FileReport {
            name: "many.pcap".into(),
            conns,
            ..FileReport::default()
        };
        let shown = every(&r);
        let json = summary_json(&shown);
        let lines: Vec<&str> = json.lines().collect();
        assert_eq!(lines.len(), r.conns.len() + 1);
        for (line, c) in lines.iter().zip(&r.conns) {
            assert_eq!(*line, conn_json::conn_json("many.pcap", c).to_string());
        }
        let table = summary_table(&shown);
        let ids: Vec<u32> = table
            .lines()
            .skip(1)
            .map(|l| l.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(ids, (0..r.conns.len() as u32).collect::<Vec<_>>());
    }

    #[test]
    fn long_addresses_put_the_ending_on_a_line_below_not_a_word_per_line() {
        let mut t = Tracker::new();
        let (c, s) = (
            "[2a00:6020:ad0b:8381:fd70:e2f9:f031:9dc4]:49980",
            "[2a00:6020:ad0b:8380::10]:389",
        );
        t.add(&seg(1, c, s, TcpFlags::SYN, 1, 0, 0));
        t.add(&seg(2, s, c, TcpFlags::RST, 0, 0, 0));
        let shown: Vec<&Conn> = t.conns.iter().collect();
        let mut out = Vec::new();
        write_summary_table(&shown, Some(90), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.lines().all(|l| fit::width(l) <= 90), "{text}");
        let ending = shown[0].ending().text();
        assert!(
            text.lines().any(|l| l.trim() == ending),
            "the ending whole on its own line:\n{text}"
        );
    }

    #[test]
    fn markdown_streams_the_table_markdown_table_makes() {
        let r = FileReport {
            name: "m.pcap".into(),
            conns: varied(),
            ..FileReport::default()
        };
        let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
        let rows: Vec<Vec<String>> = r.conns.iter().map(|c| cells(c).to_vec()).collect();
        assert_eq!(
            summary_markdown(&every(&r)),
            markdown_table(&headers, &rows)
        );
    }

    #[test]
    fn rows_match_the_cells_as_formatted_before() {
        // The cells as they were formatted with format!/to_string before rows were written in place.
        for c in varied() {
            let before = [
                c.id.to_string(),
                c.client.socket().to_string(),
                c.server.socket().to_string(),
                iso_time(c.start),
                format!(
                    "{}.{:06}",
                    c.duration() / 1_000_000_000,
                    (c.duration() % 1_000_000_000) / 1000
                ),
                c.bytes(Side::Client).to_string(),
                c.bytes(Side::Server).to_string(),
                crate::track::conn::first_close_text(&c),
                format!("{}/{}", c.fins(Side::Client), c.fins(Side::Server)),
                format!("{}/{}", c.rsts(Side::Client), c.rsts(Side::Server)),
                c.conn_state().to_string(),
                c.history().to_string(),
                c.ending().describe(),
            ];
            assert_eq!(cells(&c), before);
        }
    }

    #[test]
    fn iso_time_known_instants() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00.000000Z");
        // 2000-02-29 12:34:56.789 UTC (a leap day)
        assert_eq!(
            iso_time(951_827_696_789_000_000),
            "2000-02-29T12:34:56.789000Z"
        );
        assert_eq!(iso_time(-1_000), "1969-12-31T23:59:59.999999Z");
    }
}
