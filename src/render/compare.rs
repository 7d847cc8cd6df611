//! The comparison of runs, one row each: the `run --mode all` cheat sheet, and `analyze` of several saved runs. Each
//! format as a whole string; [`RowsPrinter::comparison`](crate::render::RowsPrinter::comparison) writes it out.

use crate::explain::story::{ComparisonRow, end_state_text, peers_text};
use crate::model::segment::preview;
use crate::render::text::markdown_table;
use crate::render::{Style, csv};
use comfy_table::{ContentArrangement, Table, presets};

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

/// The column the kernel's evidence adds, shown only when some row has it (runs without the kernel's events
/// print as before).
const REASON_HEADER: &str = "kernel's reason";

fn traced(rows: &[ComparisonRow]) -> bool {
    rows.iter().any(|r| r.kernel_reason.is_some())
}

fn headers(rows: &[ComparisonRow]) -> Vec<String> {
    let mut h: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    if traced(rows) {
        h.insert(3, REASON_HEADER.to_string());
    }
    h
}

fn row_cells(r: &ComparisonRow, with_reason: bool) -> Vec<String> {
    let mut c = cells(r);
    if with_reason {
        c.insert(
            3,
            r.kernel_reason.clone().unwrap_or_else(|| "—".to_string()),
        );
    }
    c
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
pub fn kernels_line(rows: &[ComparisonRow], heading: &str) -> String {
    let mut kernels: Vec<&str> = Vec::new();
    for r in rows {
        if !kernels.contains(&r.kernel.as_str()) {
            kernels.push(&r.kernel);
        }
    }
    format!("{heading} (recorded on {}):", kernels.join(", "))
}

pub fn table(rows: &[ComparisonRow], style: Style) -> String {
    let mut t = Table::new();
    t.load_style(presets::UTF8_FULL_CONDENSED);
    if let Some(w) = style.width {
        t.set_width(w)
            .set_content_arrangement(ContentArrangement::Dynamic);
    }
    if style.color {
        t.enforce_styling();
    } else {
        t.force_no_tty();
    }
    t.set_header(headers(rows));
    for r in rows {
        let mut row: Vec<comfy_table::Cell> = row_cells(r, traced(rows))
            .into_iter()
            .map(comfy_table::Cell::new)
            .collect();
        if style.color && !r.rst_from.is_empty() {
            row[2] = comfy_table::Cell::new(peers_text(&r.rst_from)).fg(comfy_table::Color::Red);
        }
        t.add_row(row);
    }
    t.to_string()
}

pub fn markdown(rows: &[ComparisonRow], heading: &str) -> String {
    let body: Vec<Vec<String>> = rows.iter().map(|r| row_cells(r, traced(rows))).collect();
    format!(
        "{}\n\n{}",
        kernels_line(rows, heading),
        markdown_table(&headers(rows), &body)
    )
}

/// JSON Lines, an object per mode with `"kind": "comparison"`; peers as arrays, a socket that is gone as null.
pub fn json(rows: &[ComparisonRow]) -> String {
    rows.iter()
        .map(|r| {
            let mut v = serde_json::to_value(r).expect("plain strings and numbers serialise");
            v["kind"] = "comparison".into();
            v.to_string() + "\n"
        })
        .collect()
}

/// CSV with a header line.
pub fn csv(rows: &[ComparisonRow]) -> String {
    let mut out = csv::line(&headers(rows));
    for r in rows {
        out.push_str(&csv::line(&row_cells(r, traced(rows))));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ComparisonRow {
        ComparisonRow {
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
        }
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
        assert_eq!(
            csv(&rows).lines().nth(1).unwrap(),
            "abrupt,—,B,recv = -1 ECONNRESET,—,33,CLOSE (gone),TIME_WAIT"
        );
        assert!(table(&rows, Style::PLAIN).contains("ECONNRESET"));
    }
}
