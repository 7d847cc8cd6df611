//! The analyze summary: one row per connection, then totals, as an aligned table, Markdown, CSV or JSON Lines.
//! Written straight into a string without a table library, so a million rows cost a second, not a minute.

use serde_json::{Value, json};

use crate::analyze::{FileReport, Selection, first_close_text, first_close_words};
use crate::conn::{Conn, Side};
use crate::render::csv;
use crate::render::text::markdown_table;

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

/// A timestamp in ns as ISO 8601 UTC with µs (`2024-03-01T12:00:00.123456Z`).
pub fn iso_time(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let us = ns.rem_euclid(1_000_000_000) / 1000;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{us:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

pub fn seconds(ns: i64) -> String {
    format!("{}.{:06}", ns / 1_000_000_000, (ns % 1_000_000_000) / 1000)
}

/// The cells of one connection's row.
pub fn cells(c: &Conn) -> [String; 13] {
    [
        c.id.to_string(),
        c.client.socket().to_string(),
        c.server.socket().to_string(),
        iso_time(c.start),
        seconds(c.duration()),
        c.bytes(Side::Client).to_string(),
        c.bytes(Side::Server).to_string(),
        first_close_text(c),
        format!("{}/{}", c.fins(Side::Client), c.fins(Side::Server)),
        format!("{}/{}", c.rsts(Side::Client), c.rsts(Side::Server)),
        c.conn_state().to_string(),
        c.history().to_string(),
        c.ending().describe(),
    ]
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Printed width of `ip:port` without formatting it (a million rows must not be formatted twice).
fn endpoint_width(e: &crate::conn::Endpoint) -> usize {
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
fn widths(conns: &[&Conn]) -> [usize; 13] {
    let mut w: [usize; 13] = std::array::from_fn(|i| HEADERS[i].chars().count());
    let mut endings = std::collections::HashMap::new();
    for c in conns {
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
            c.conn_state().len(),
            c.history().chars().count(),
            *endings
                .entry(c.ending())
                .or_insert_with(|| c.ending().describe().chars().count()),
        ];
        for (a, b) in w.iter_mut().zip(m) {
            *a = (*a).max(b);
        }
    }
    w
}

fn first_close_text_width(c: &Conn) -> usize {
    match c.first_close {
        Some((side, _)) => side.name().len() + 4,
        None => 1,
    }
}

/// Plain aligned columns (two spaces apart). Rows go to `out` in chunks as they are formatted, so a million-row
/// summary never sits in memory as a whole.
pub fn write_summary_table(
    r: &FileReport,
    sel: &Selection,
    out: &mut dyn FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    let shown: Vec<&Conn> = r.conns.iter().filter(|c| sel.shows(c)).collect();
    let width = widths(&shown);
    let mut buf = String::with_capacity(1 << 20);
    let line = |buf: &mut String, cells: &[&str]| {
        for (i, cell) in cells.iter().enumerate() {
            if i > 0 {
                let pad = width[i - 1].saturating_sub(cells[i - 1].chars().count()) + 2;
                buf.extend(std::iter::repeat_n(' ', pad));
            }
            buf.push_str(cell);
        }
        buf.push('\n');
    };
    line(&mut buf, &HEADERS);
    for c in shown {
        let row = cells(c);
        let refs: Vec<&str> = row.iter().map(String::as_str).collect();
        line(&mut buf, &refs);
        if buf.len() > (1 << 20) - 4096 {
            out(&buf)?;
            buf.clear();
        }
    }
    out(&buf)
}

/// The aligned table as one string (small outputs and tests).
pub fn summary_table(r: &FileReport, sel: &Selection) -> String {
    let mut s = String::new();
    let _ = write_summary_table(r, sel, &mut |chunk| {
        s.push_str(chunk);
        Ok(())
    });
    s
}

pub fn summary_markdown(r: &FileReport, sel: &Selection) -> String {
    let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let rows: Vec<Vec<String>> = r
        .conns
        .iter()
        .filter(|c| sel.shows(c))
        .map(|c| cells(c).to_vec())
        .collect();
    markdown_table(&headers, &rows)
}

/// CSV header for summaries (a `file` column first, so several files make one table).
pub fn summary_csv_header() -> String {
    let mut h = vec!["file".to_string()];
    h.extend(HEADERS.iter().map(|s| s.to_string()));
    csv::line(&h)
}

pub fn write_summary_csv(
    r: &FileReport,
    sel: &Selection,
    out: &mut dyn FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    let mut buf = String::with_capacity(1 << 20);
    for c in r.conns.iter().filter(|c| sel.shows(c)) {
        let mut row = vec![r.name.clone()];
        row.extend(cells(c));
        buf.push_str(&csv::line(&row));
        if buf.len() > (1 << 20) - 4096 {
            out(&buf)?;
            buf.clear();
        }
    }
    out(&buf)
}

/// One JSON object per connection, with the stable keys of the issue.
pub fn conn_json(file: &str, c: &Conn) -> Value {
    let (by, kind) = first_close_words(c);
    json!({
        "type": "connection",
        "file": file,
        "id": c.id,
        "client": c.client.socket().to_string(),
        "server": c.server.socket().to_string(),
        "conn_state": c.conn_state(),
        "history": c.history(),
        "fins": {"client": c.fins(Side::Client), "server": c.fins(Side::Server)},
        "rsts": {"client": c.rsts(Side::Client), "server": c.rsts(Side::Server)},
        "first_close": {"by": by, "kind": kind},
        "bytes": {"client": c.bytes(Side::Client), "server": c.bytes(Side::Server)},
        "packets": c.packets(),
        "start": iso_time(c.start),
        "duration": c.duration() as f64 / 1e9,
        "ending": c.ending().describe(),
    })
}

/// The last line for a file: totals, and frames skipped and why.
pub fn totals_json(r: &FileReport, sel: &Selection) -> Value {
    let endings: serde_json::Map<String, Value> = r
        .endings(sel)
        .into_iter()
        .map(|(e, n)| (e.describe(), json!(n)))
        .collect();
    let skipped_total: u64 = r.skipped.values().sum();
    json!({
        "type": "totals",
        "file": r.name,
        "format": r.kind.map(|k| k.name()),
        "gzip": r.gzip,
        "frames": r.counts.frames,
        "tcp_segments": r.counts.tcp_segments,
        "syn_segments": r.counts.syn,
        "fin_segments": r.counts.fin,
        "rst_segments": r.counts.rst,
        "connections": r.conns.len(),
        "connections_shown": r.conns.iter().filter(|c| sel.shows(c)).count(),
        "endings": endings,
        "skipped_frames": skipped_total,
        "skipped": r.skipped,
        "error": r.open_error.as_ref().or(r.read_error.as_ref()),
    })
}

/// JSON Lines, written to `out` in chunks: one object per shown connection, then the totals line.
pub fn write_summary_json(
    r: &FileReport,
    sel: &Selection,
    out: &mut dyn FnMut(&str) -> Result<(), String>,
) -> Result<(), String> {
    let mut buf = String::with_capacity(1 << 20);
    for c in r.conns.iter().filter(|c| sel.shows(c)) {
        buf.push_str(&conn_json(&r.name, c).to_string());
        buf.push('\n');
        if buf.len() > (1 << 20) - 4096 {
            out(&buf)?;
            buf.clear();
        }
    }
    buf.push_str(&totals_json(r, sel).to_string());
    buf.push('\n');
    out(&buf)
}

pub fn summary_json(r: &FileReport, sel: &Selection) -> String {
    let mut s = String::new();
    let _ = write_summary_json(r, sel, &mut |chunk| {
        s.push_str(chunk);
        Ok(())
    });
    s
}

/// The totals in words: "812 closed cleanly (client first), 37 reset by the server, …".
pub fn totals_text(r: &FileReport, sel: &Selection) -> String {
    let shown = r.conns.iter().filter(|c| sel.shows(c)).count();
    let mut out = format!(
        "{}: {} connection{}",
        r.name,
        r.conns.len(),
        if r.conns.len() == 1 { "" } else { "s" }
    );
    if shown != r.conns.len() {
        out.push_str(&format!(" ({shown} shown)"));
    }
    out.push_str(&format!(
        " in {} TCP segments of {} frames",
        r.counts.tcp_segments, r.counts.frames
    ));
    let endings = r.endings(sel);
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
        let words: Vec<String> = reasons.iter().map(|(k, n)| format!("{n} {k}")).collect();
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
