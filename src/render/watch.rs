//! `watch`'s output: a line per connection as it ends, written at once (the summary's printers lay out a whole
//! file's rows together, so they cannot stream), and the totals when the watch stops. The four row formats of
//! `analyze`'s summary: an aligned line for the terminal, Markdown, JSON Lines (the summary's object with the
//! watch's keys added), CSV.

use std::io::{self, Write};

use serde_json::{Value, json};

use crate::model::time::iso_time;
use crate::model::time::push_iso_time;
use crate::render::conn_json::{WatchedKeys, push_conn_json, push_json_str};
use crate::render::summary::{cells, push_cell};
use crate::render::{RowsFormat, Style, csv, escape, json, zeek};
use crate::track::conn::Conn;

/// One connection as the watch reports it.
pub struct WatchRow<'a> {
    /// Where it was seen (the capture device).
    pub device: &'a str,
    pub conn: &'a Conn,
    /// Why it left: `ended`, `expired (idle)`, `open`.
    pub left: &'a str,
    /// The process on the client's and on the server's end, when found.
    pub processes: [Option<String>; 2],
    /// Why it ended, a line per piece of evidence.
    pub why: &'a [String],
}

/// What the watch saw in all, for its last lines.
#[derive(Debug, Default, Clone)]
pub struct WatchTotals {
    pub device: String,
    /// What stopped it (`SIGINT`, `the program ended`).
    pub stopped_by: String,
    pub seconds: f64,
    /// Connections reported, by kind of ending, most first.
    pub endings: Vec<(String, u64)>,
    /// Resets, by the kernel's reason (or why there is none), most first.
    pub resets: Vec<(String, u64)>,
    /// Connections still open when it stopped.
    pub open: u64,
    /// Connections that expired (idle).
    pub expired: u64,
    pub pcap_drops: u32,
    /// Kernel events lost from the trace buffer; `None` when the kernel was not traced.
    pub trace_lost: Option<u64>,
    /// Process lookups not made (too many at once).
    pub lookups_refused: u64,
}

const COLUMNS: [&str; 13] = [
    "end (UTC)",
    "id",
    "client",
    "client process",
    "server",
    "server process",
    "first close",
    "bytes c→s",
    "bytes s→c",
    "duration (s)",
    "conn_state",
    "ending",
    "why",
];

/// Writes the watch's rows and totals in one format.
pub struct WatchPrinter {
    format: RowsFormat,
    style: Style,
    header_written: bool,
}

impl WatchPrinter {
    pub fn new(format: RowsFormat, style: Style) -> WatchPrinter {
        WatchPrinter {
            format,
            style,
            header_written: false,
        }
    }

    fn values(r: &WatchRow) -> [String; 13] {
        let c = cells(r.conn);
        let proc = |i: usize| r.processes[i].clone().unwrap_or_else(|| "-".into());
        let ending = match r.left {
            "ended" => c[12].clone(),
            left => format!("{} [{left}]", c[12]),
        };
        [
            iso_time(r.conn.end),
            c[0].clone(),
            c[1].clone(),
            proc(0),
            c[2].clone(),
            proc(1),
            c[7].clone(),
            c[5].clone(),
            c[6].clone(),
            c[4].clone(),
            c[10].clone(),
            ending,
            r.why.join("; "),
        ]
    }

    /// One connection, written whole at once.
    pub fn row(&mut self, out: &mut dyn Write, r: &WatchRow) -> io::Result<()> {
        // the cells, for the formats made of them (built per connection: not for the others)
        let v = || WatchPrinter::values(r);
        let text = match self.format {
            RowsFormat::Table => self.table_line(r),
            RowsFormat::Markdown => {
                let mut s = String::new();
                if !self.header_written {
                    s.push_str(&format!("| {} |\n", COLUMNS.join(" | ")));
                    s.push_str(&format!("|{}\n", "---|".repeat(COLUMNS.len())));
                }
                let cells: Vec<String> = v()
                    .iter()
                    .map(|c| escape::markdown(c).into_owned())
                    .collect();
                s.push_str(&format!("| {} |\n", cells.join(" | ")));
                s
            }
            RowsFormat::Csv => {
                let mut s = String::new();
                if !self.header_written {
                    let mut h = vec!["device".to_string()];
                    h.extend(COLUMNS.iter().map(|c| c.to_string()));
                    s.push_str(&csv::line(&h));
                }
                let mut row = vec![r.device.to_string()];
                row.extend(v());
                s.push_str(&csv::line(&row));
                s
            }
            // Zeek's conn.log, a line as each connection ends (the header first, as Zeek's writer starts a log)
            RowsFormat::Zeek => {
                let mut s = String::new();
                if !self.header_written {
                    s.push_str(&zeek::header());
                }
                s.push_str(&zeek::tsv_line(r.device, r.conn));
                s
            }
            RowsFormat::ZeekJson => zeek::json_line(r.device, r.conn),
            // the summary's connection keys and watch's own: a kind of its own (docs/output.md)
            RowsFormat::Json => {
                let mut s = String::with_capacity(512);
                let mut device = String::new();
                push_json_str(&mut device, r.device);
                let keys = WatchedKeys {
                    left: r.left,
                    processes: &r.processes,
                    why: r.why,
                };
                push_conn_json(&mut s, &device, r.conn, Some(&keys));
                s.push('\n');
                s
            }
        };
        self.header_written = true;
        out.write_all(text.as_bytes())
    }

    /// The terminal line: `time  #id  client (process) → server (process)  close  bytes  duration  state  ending —
    /// why`, written straight into one string (the cells as strings first cost a fifth of the watch's main loop).
    fn table_line(&self, r: &WatchRow) -> String {
        let c = r.conn;
        let ending = c.ending().text();
        let mut s = String::with_capacity(160);
        let cell = |s: &mut String, i: usize| push_cell(s, c, i, ending);
        let mut end = String::with_capacity(32);
        push_iso_time(&mut end, c.end);
        s.push_str(end.get(11..26).unwrap_or(&end));
        s.push_str("  #");
        cell(&mut s, 0);
        for (side, i) in [(0, 1), (1, 2)] {
            s.push_str(if side == 0 { "  " } else { " → " });
            cell(&mut s, i);
            if let Some(p) = &r.processes[side]
                && p != "-"
            {
                s.push(' ');
                s.push_str(p);
            }
        }
        s.push_str("  ");
        cell(&mut s, 7);
        s.push_str("  ");
        cell(&mut s, 5);
        s.push_str("↑ ");
        cell(&mut s, 6);
        s.push_str("↓ bytes  ");
        cell(&mut s, 4);
        s.push_str(" s  ");
        cell(&mut s, 10);
        s.push_str("  ");
        let red = self.style.color && ending.starts_with("reset");
        if red {
            s.push_str("\x1b[1;31m");
        }
        s.push_str(ending);
        if r.left != "ended" {
            s.push_str(" [");
            s.push_str(r.left);
            s.push(']');
        }
        if red {
            s.push_str("\x1b[0m");
        }
        let why = r.why.join("; ");
        if !why.is_empty() {
            s.push_str(" — ");
            s.push_str(&why);
        }
        let mut s = match escape::text(&s) {
            std::borrow::Cow::Borrowed(_) => s,
            std::borrow::Cow::Owned(o) => o,
        };
        s.push('\n');
        s
    }

    /// The slow oracle of [`WatchPrinter::table_line`]: the line from the cells as strings.
    #[cfg(test)]
    fn line(&self, v: &[String; 13]) -> String {
        let end = v[0].get(11..26).unwrap_or(&v[0]);
        let with = |addr: &str, p: &str| match p {
            "-" => addr.to_string(),
            p => format!("{addr} {p}"),
        };
        let ending = if self.style.color && v[11].starts_with("reset") {
            format!("\x1b[1;31m{}\x1b[0m", v[11])
        } else {
            v[11].clone()
        };
        let mut s = format!(
            "{end}  #{}  {} → {}  {}  {}↑ {}↓ bytes  {} s  {}  {}",
            v[1],
            with(&v[2], &v[3]),
            with(&v[4], &v[5]),
            v[6],
            v[7],
            v[8],
            v[9],
            v[10],
            ending
        );
        if !v[12].is_empty() {
            s.push_str(" — ");
            s.push_str(&v[12]);
        }
        let mut s = escape::text(&s).into_owned();
        s.push('\n');
        s
    }

    /// The totals: connections by ending, resets by reason, drops and losses (always shown; non-zero highlighted).
    /// CSV has one kind of row, so its totals are not written to `out` but returned as text, for standard error.
    pub fn totals(&mut self, out: &mut dyn Write, t: &WatchTotals) -> io::Result<Option<String>> {
        let text = match self.format {
            RowsFormat::Json => format!("{}\n", totals_json(t)),
            RowsFormat::Markdown => escape::markdown_lines(&totals_text(t, false)),
            RowsFormat::Table => totals_text(t, self.style.color),
            // one kind of row in these: the totals go to standard error
            RowsFormat::Csv | RowsFormat::Zeek | RowsFormat::ZeekJson => {
                return Ok(Some(totals_text(t, false)));
            }
        };
        out.write_all(text.as_bytes())?;
        Ok(None)
    }
}

fn totals_json(t: &WatchTotals) -> Value {
    let map = |v: &[(String, u64)]| -> serde_json::Map<String, Value> {
        v.iter().map(|(k, n)| (k.clone(), json!(n))).collect()
    };
    json!({
        "schema": json::SCHEMA,
        "kind": "watch_totals",
        "device": t.device,
        "stopped_by": t.stopped_by,
        "seconds": t.seconds,
        "endings": map(&t.endings),
        "resets_by_reason": map(&t.resets),
        "open": t.open,
        "expired": t.expired,
        "pcap_drops": t.pcap_drops,
        "trace_lost": t.trace_lost,
        "lookups_refused": t.lookups_refused,
    })
}

fn totals_text(t: &WatchTotals, color: bool) -> String {
    let hl = |n: u64| {
        if n > 0 && color {
            format!("\x1b[1;31m{n}\x1b[0m")
        } else if n > 0 {
            format!("{n} (!)")
        } else {
            n.to_string()
        }
    };
    let reported: u64 = t.endings.iter().map(|(_, n)| n).sum();
    let mut s = format!(
        "\nwatch on {} stopped by {} after {:.1} s: {reported} connection{}\n",
        escape::text(&t.device),
        t.stopped_by,
        t.seconds,
        if reported == 1 { "" } else { "s" }
    );
    s.push_str("connections, by way they ended:\n");
    for (what, n) in &t.endings {
        s.push_str(&format!("  {n:>8}  {}\n", escape::text(what)));
    }
    if t.endings.is_empty() {
        s.push_str("         0\n");
    }
    s.push_str("resets, by the kernel's reason:\n");
    for (why, n) in &t.resets {
        s.push_str(&format!("  {n:>8}  {}\n", escape::text(why)));
    }
    if t.resets.is_empty() {
        s.push_str("         0\n");
    }
    s.push_str(&format!(
        "still open at the end: {}   expired (idle): {}\n",
        t.open, t.expired
    ));
    let lost = match t.trace_lost {
        Some(n) => hl(n),
        None => "not traced".into(),
    };
    s.push_str(&format!(
        "libpcap drops: {}   trace-buffer losses: {lost}   process lookups not made: {}\n",
        hl(u64::from(t.pcap_drops)),
        hl(t.lookups_refused)
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::segment::TcpFlags;
    use crate::track::live::LiveTracker;
    use crate::track::select::Selection;

    fn reset() -> Conn {
        let mut t: LiveTracker<()> = LiveTracker::new(&Selection::default());
        let (c, s) = ("127.0.0.1:40000", "127.0.0.1:8080");
        let (syn, ack, rst) = (TcpFlags::SYN, TcpFlags::ACK, TcpFlags::RST);
        for (src, dst, f, seq, a, len) in [
            (c, s, syn, 1, 0, 0),
            (s, c, syn | ack, 9, 2, 0),
            (c, s, ack, 2, 10, 5),
            (s, c, rst | ack, 10, 7, 0),
        ] {
            t.add(&crate::testing::segment(0, src, dst, f, seq, a, len));
        }
        t.drain().remove(0).conn
    }

    #[test]
    fn csv_stays_one_table_with_the_totals_set_aside() {
        let c = reset();
        let why = vec!["a, \"quoted\" why".to_string()];
        let row = WatchRow {
            device: "lo",
            conn: &c,
            left: "ended",
            processes: [Some("curl[1]".into()), None],
            why: &why,
        };
        let mut p = WatchPrinter::new(RowsFormat::Csv, Style::PLAIN);
        let mut out = Vec::new();
        p.row(&mut out, &row).unwrap();
        p.row(&mut out, &row).unwrap();
        let aside = p.totals(&mut out, &WatchTotals::default()).unwrap();
        assert!(aside.is_some_and(|t| t.contains("libpcap drops")));
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 3, "a header and two rows: {text}");
        assert!(
            text.lines()
                .nth(1)
                .unwrap()
                .ends_with(",\"a, \"\"quoted\"\" why\""),
            "{text}"
        );
    }

    /// The slow oracle: the watched object built as a serde_json value, as it was first written.
    fn watched_value(r: &WatchRow) -> Value {
        let mut o = crate::render::conn_json::conn_json(r.device, r.conn);
        o["kind"] = json!("watched");
        o["processes"] = json!({"a": r.processes[0], "b": r.processes[1]});
        o["why"] = json!(r.why);
        o["left"] = json!(r.left);
        o["end"] = json!(iso_time(r.conn.end));
        o
    }

    #[test]
    fn json_lines_are_what_serde_json_prints() {
        let c = reset();
        for (device, left, processes, why) in [
            ("lo", "ended", [Some("curl[1]".to_string()), None], vec![]),
            (
                "odd \"dev\"\t\u{1}",
                "expired (idle)",
                [None, Some("nginx[\"2\"]".to_string())],
                vec!["one \\ why".to_string(), "two\nlines".to_string()],
            ),
        ] {
            let r = WatchRow {
                device,
                conn: &c,
                left,
                processes,
                why: &why,
            };
            let mut out = Vec::new();
            WatchPrinter::new(RowsFormat::Json, Style::PLAIN)
                .row(&mut out, &r)
                .unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                format!("{}\n", watched_value(&r))
            );
        }
    }

    #[test]
    fn table_lines_are_what_the_cells_make() {
        let c = reset();
        let whys = [vec![], vec!["one".to_string(), "two\u{1b}[2J".to_string()]];
        for color in [false, true] {
            let style = Style {
                color,
                ..Style::PLAIN
            };
            for left in ["ended", "expired (idle)", "open"] {
                for processes in [
                    [None, None],
                    [
                        Some("curl[1]".to_string()),
                        Some("? (its socket closed)".to_string()),
                    ],
                ] {
                    for why in &whys {
                        let r = WatchRow {
                            device: "lo",
                            conn: &c,
                            left,
                            processes: processes.clone(),
                            why,
                        };
                        let p = WatchPrinter::new(RowsFormat::Table, style);
                        assert_eq!(p.table_line(&r), p.line(&WatchPrinter::values(&r)));
                    }
                }
            }
        }
    }

    #[test]
    fn totals_always_show_drops_and_losses() {
        let t = WatchTotals {
            device: "lo".into(),
            stopped_by: "SIGINT".into(),
            pcap_drops: 3,
            trace_lost: Some(0),
            ..WatchTotals::default()
        };
        let s = totals_text(&t, false);
        assert!(s.contains("libpcap drops: 3 (!)"), "{s}");
        assert!(s.contains("trace-buffer losses: 0 "), "{s}");
        let j = totals_json(&t);
        assert_eq!(j["pcap_drops"], 3);
        assert_eq!(j["trace_lost"], 0);
    }
}
