//! The comparison of runs, one row each: the `run --mode all` cheat sheet, and `analyze` of several saved runs. Each
//! format as a whole string; [`RowsPrinter::comparison`](crate::render::RowsPrinter::comparison) writes it out.
//! A run whose capture warned carries its warnings in every format: its mode is marked and the warnings follow the
//! table (table, Markdown), or they are a field of its row (`warnings` in JSON and CSV, empty when there are none).

use crate::explain::story::{ComparisonRow, end_state_text, peers_text};
use crate::model::segment::preview;
use crate::render::text::markdown_table;
use crate::render::{Style, csv, escape, fit, text};

/// A row of the comparison: a run's outcome, and the warnings of its capture (none for a whole capture, or a saved
/// run).
#[derive(Debug, Clone)]
pub struct Compared {
    pub outcome: ComparisonRow,
    pub warnings: Vec<String>,
}

impl From<ComparisonRow> for Compared {
    fn from(outcome: ComparisonRow) -> Compared {
        Compared {
            outcome,
            warnings: Vec::new(),
        }
    }
}

const HEADERS: [&str; 8] = [
    "mode",
    "FIN from",
    "RST from",
    "A's last recv/send returned",
    "A received",
    "discarded unread",
    "A ends",
    "B ends",
];

/// The column the kernel's evidence adds after "RST from", shown only when some row has it (runs without the
/// kernel's events print as before).
const REASON_HEADER: &str = "kernel's reason";

fn traced(rows: &[Compared]) -> bool {
    rows.iter().any(|c| c.outcome.kernel_reason.is_some())
}

fn headers(rows: &[Compared]) -> Vec<String> {
    let mut h: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    if traced(rows) {
        h.insert(3, REASON_HEADER.to_string());
    }
    h
}

/// A row's cells, with the kernel's reason when the table has that column.
fn row_cells(r: &ComparisonRow, with_reason: bool) -> Vec<String> {
    let mut c = cells(r);
    if with_reason {
        let reason = r.kernel_reason.clone().unwrap_or_else(|| "—".to_string());
        c.insert(3, reason);
    }
    c
}

/// The cells of the table and Markdown: the mode of a run with warnings is marked, the warnings follow the table.
fn marked_cells(c: &Compared, with_reason: bool) -> Vec<String> {
    let mut cells = row_cells(&c.outcome, with_reason);
    if !c.warnings.is_empty() {
        cells[0].push_str(" (warned)");
    }
    cells
}

/// The warnings of every row, a line each, after `prefix`, naming the mode.
fn warning_lines(rows: &[Compared], prefix: &str) -> String {
    let mut out = String::new();
    for c in rows {
        for w in &c.warnings {
            out.push_str(&format!("{prefix}mode {}: {w}\n", c.outcome.mode));
        }
    }
    out
}

fn cells(r: &ComparisonRow) -> Vec<String> {
    vec![
        r.mode.clone(),
        peers_text(&r.fin_from),
        peers_text(&r.rst_from),
        r.a_saw.clone(),
        r.a_received.as_ref().map_or("—".to_string(), |d| {
            format!("\"{}\"", preview(d.as_bytes(), 24))
        }),
        r.discarded_unread.to_string(),
        end_state_text(r.end_a),
        end_state_text(r.end_b),
    ]
}

/// The line above the table: `heading` and the kernels the rows were recorded on.
pub fn kernels_line(rows: &[Compared], heading: &str) -> String {
    let mut kernels: Vec<&str> = Vec::new();
    for r in rows.iter().map(|c| &c.outcome) {
        if !kernels.contains(&r.kernel.as_str()) {
            kernels.push(&r.kernel);
        }
    }
    format!("{heading} (recorded on {}):", kernels.join(", "))
}

/// The comparison table's columns in the order they are left out when the width is too small for them (least
/// telling first), as names of [`HEADERS`] and [`REASON_HEADER`]; the mode and the FIN and RST columns stay.
pub const DROP_ORDER: [&str; 6] = [
    "A received",
    REASON_HEADER,
    "B ends",
    "A ends",
    "discarded unread",
    "A's last recv/send returned",
];

/// The width a comparison column should have to be read without a word per line.
const COMFORTABLE: usize = 12;

/// Which columns to show at `style`'s width ([`DROP_ORDER`]), and the width each shown one gets at least.
fn fitted(headers: &[String], body: &[Vec<String>], style: Style) -> (Vec<bool>, Vec<usize>) {
    let column = |i: usize| {
        body.iter()
            .map(move |r| r[i].as_str())
            .chain([headers[i].as_str()])
    };
    let comfortable: Vec<usize> = (0..headers.len())
        .map(|i| {
            let word = column(i).map(fit::longest_word).max().unwrap_or(0);
            let widest = column(i).map(fit::width).max().unwrap_or(0);
            widest.min(word.max(COMFORTABLE))
        })
        .collect();
    let order: Vec<usize> = DROP_ORDER
        .iter()
        .filter_map(|name| headers.iter().position(|h| h == name))
        .collect();
    let shown = fit::shown_columns(&comfortable, &order, 3, 4, style.room());
    // every column gets the width it was kept for; comfy shares out what is left
    let mins = comfortable
        .iter()
        .zip(&shown)
        .filter(|(_, s)| **s)
        .map(|(m, _)| *m)
        .collect();
    (shown, mins)
}

/// The line saying which columns were left out, so that nobody reads a missing column as a missing fact.
fn left_out(headers: &[String], shown: &[bool], style: Style) -> Option<String> {
    let dropped: Vec<&str> = headers
        .iter()
        .zip(shown)
        .filter(|(_, s)| !**s)
        .map(|(h, _)| h.as_str())
        .collect();
    if dropped.is_empty() {
        return None;
    }
    let note = format!(
        "(left out to fit {} columns: {}; --width 0 or -f markdown shows all)",
        style.room().unwrap_or(0),
        dropped.join(", ")
    );
    Some(
        fit::wrap(&note, style.room(), "", " ")
            .trim_end()
            .to_string(),
    )
}

/// The table, then a line per warning. It fits `style`'s width: cells wrap at spaces, and columns are left out in
/// [`DROP_ORDER`] while the rest cannot each have their widest word (and 12 columns) side by side.
pub fn table(rows: &[Compared], style: Style) -> String {
    let headers = headers(rows);
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|c| {
            marked_cells(c, traced(rows))
                .iter()
                .map(|c| escape::text(c).into_owned())
                .collect()
        })
        .collect();
    let (shown, mins) = fitted(&headers, &body, style);
    let keep = |cells: &[String]| -> Vec<String> {
        cells
            .iter()
            .zip(&shown)
            .filter(|(_, s)| **s)
            .map(|(c, _)| c.clone())
            .collect()
    };
    let mut t = text::framed_table(style);
    t.set_header(keep(&headers));
    let rst = headers.iter().position(|h| h == "RST from");
    for (c, cells) in rows.iter().zip(&body) {
        let mut row: Vec<comfy_table::Cell> = cells
            .iter()
            .enumerate()
            .filter(|(i, _)| shown[*i])
            .map(|(i, cell)| {
                let cell = comfy_table::Cell::new(cell);
                if style.color && Some(i) == rst && !c.outcome.rst_from.is_empty() {
                    cell.fg(text::RESET_COLOUR)
                } else {
                    cell
                }
            })
            .collect();
        row.shrink_to_fit();
        t.add_row(row);
    }
    text::keep_words(&mut t, &mins);
    let t = match left_out(&headers, &shown, style) {
        Some(note) => format!("{t}\n{note}"),
        None => t.to_string(),
    };
    let warnings = fit::wrap(&warning_lines(rows, "WARNING: "), style.room(), "", "  ");
    if warnings.is_empty() {
        t.to_string()
    } else {
        format!("{t}\n{}", warnings.trim_end())
    }
}

pub fn markdown(rows: &[Compared], heading: &str) -> String {
    let headers = headers(rows);
    let body: Vec<Vec<String>> = rows.iter().map(|c| marked_cells(c, traced(rows))).collect();
    let warnings = warning_lines(rows, "- **Warning:** ");
    format!(
        "{}\n\n{}{}",
        escape::markdown(&kernels_line(rows, heading)),
        markdown_table(&headers, &body),
        if warnings.is_empty() {
            String::new()
        } else {
            format!("\n{warnings}")
        }
    )
}

/// JSON Lines, an object per mode with `"kind": "comparison"`; peers as arrays, a socket that is gone as null, its
/// capture's warnings as an array.
pub fn json(rows: &[Compared]) -> String {
    rows.iter()
        .map(|c| {
            let mut v =
                serde_json::to_value(&c.outcome).expect("plain strings and numbers serialise");
            v["kind"] = "comparison".into();
            v["schema"] = crate::render::json::SCHEMA.into();
            if v.get("kernel_reason").is_none() {
                // a closed key set: the key is there, null when the run did not trace the kernel
                v["kernel_reason"] = serde_json::Value::Null;
            }
            v["warnings"] = c.warnings.clone().into();
            v.to_string() + "\n"
        })
        .collect()
}

/// The comparison's CSV columns: the JSON's keys, in snake_case ASCII.
pub const CSV_HEADERS: [&str; 11] = [
    "mode",
    "kernel",
    "fin_from",
    "rst_from",
    "kernel_reason",
    "a_saw",
    "a_received",
    "discarded_unread",
    "end_a",
    "end_b",
    "warnings",
];

/// CSV with a header line, a value per cell as the JSON has it: several sides joined by `;`, an empty cell for
/// none (no reason, nothing received, a socket that is gone), the row's warnings joined by "; ".
pub fn csv(rows: &[Compared]) -> String {
    let mut out = csv::line(&CSV_HEADERS);
    let sides = |p: &[crate::model::calls::Peer]| {
        p.iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(";")
    };
    let state = |s: Option<crate::model::tcp_state::TcpState>| {
        s.map(|s| s.linux_name().to_string()).unwrap_or_default()
    };
    for c in rows {
        let r = &c.outcome;
        out.push_str(&csv::line(&[
            r.mode.clone(),
            r.kernel.clone(),
            sides(&r.fin_from),
            sides(&r.rst_from),
            r.kernel_reason.clone().unwrap_or_default(),
            r.a_saw.clone(),
            r.a_received.clone().unwrap_or_default(),
            r.discarded_unread.to_string(),
            state(r.end_a),
            state(r.end_b),
            c.warnings.join("; "),
        ]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> Compared {
        Compared::from(ComparisonRow {
            mode: "abrupt".into(),
            kernel: "Linux 6.1".into(),
            fin_from: vec![],
            rst_from: vec![crate::model::calls::Peer::B],
            a_saw: "recv = -1 ECONNRESET".into(),
            a_received: None,
            discarded_unread: 33,
            end_a: None,
            end_b: Some(crate::model::tcp_state::TcpState::TimeWait),
            kernel_reason: None,
        })
    }

    #[test]
    fn formats_carry_the_same_values() {
        let rows = [row()];
        assert!(
            markdown(&rows, "Every mode")
                .contains("| abrupt | — | B | recv = -1 ECONNRESET | — | 33 |")
        );
        let j: serde_json::Value = serde_json::from_str(json(&rows).trim()).unwrap();
        assert_eq!(j["discarded_unread"], 33);
        assert_eq!(j["rst_from"], serde_json::json!(["B"]));
        assert_eq!(j["fin_from"], serde_json::json!([]));
        assert_eq!(j["end_a"], serde_json::Value::Null);
        assert_eq!(j["end_b"], "TIME_WAIT");
        assert_eq!(j["kind"], "comparison");
        assert_eq!(j["warnings"], serde_json::json!([]));
        assert_eq!(
            csv(&rows).lines().nth(1).unwrap(),
            "abrupt,Linux 6.1,,B,,recv = -1 ECONNRESET,,33,,TIME_WAIT,"
        );
        assert!(table(&rows, Style::PLAIN).contains("ECONNRESET"));
        assert!(!table(&rows, Style::PLAIN).contains("WARNING"));
    }

    #[test]
    fn a_warned_row_carries_its_warnings_in_every_format() {
        let mut warned = row();
        warned.warnings = vec!["libpcap reports 2 dropped packet(s)".into()];
        let rows = [row(), warned];
        let table = table(&rows, Style::PLAIN);
        assert!(table.contains("abrupt (warned)"), "{table}");
        assert!(table.ends_with("WARNING: mode abrupt: libpcap reports 2 dropped packet(s)"));
        let md = markdown(&rows, "Every mode");
        assert!(md.contains("| abrupt (warned) |"));
        assert!(md.ends_with("- **Warning:** mode abrupt: libpcap reports 2 dropped packet(s)\n"));
        let json: Vec<serde_json::Value> = json(&rows)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(json[0]["warnings"], serde_json::json!([]));
        assert_eq!(json[1]["mode"], "abrupt");
        assert_eq!(
            json[1]["warnings"],
            serde_json::json!(["libpcap reports 2 dropped packet(s)"])
        );
        let csv = csv(&rows);
        assert!(csv.lines().next().unwrap().ends_with(",end_b,warnings"));
        assert!(csv.lines().nth(1).unwrap().ends_with(",TIME_WAIT,"));
        assert!(
            csv.lines()
                .nth(2)
                .unwrap()
                .ends_with(",TIME_WAIT,libpcap reports 2 dropped packet(s)")
        );
    }
}
