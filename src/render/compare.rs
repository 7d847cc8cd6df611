//! The `run --mode all` cheat sheet: one row per mode.

use crate::render::Style;
use crate::render::text::markdown_table;
use crate::story::ComparisonRow;
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

fn cells(r: &ComparisonRow) -> Vec<String> {
    vec![
        r.mode.clone(),
        r.fin_from.clone(),
        r.rst_from.clone(),
        r.a_saw.clone(),
        r.a_received.clone(),
        r.discarded_unread.to_string(),
        r.end_a.clone(),
        r.end_b.clone(),
    ]
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
    t.set_header(HEADERS.to_vec());
    for r in rows {
        let mut row: Vec<comfy_table::Cell> =
            cells(r).into_iter().map(comfy_table::Cell::new).collect();
        if style.color && r.rst_from != "—" {
            row[2] = comfy_table::Cell::new(&r.rst_from).fg(comfy_table::Color::Red);
        }
        t.add_row(row);
    }
    t.to_string()
}

pub fn markdown(rows: &[ComparisonRow]) -> String {
    let headers: Vec<String> = HEADERS.iter().map(|h| h.to_string()).collect();
    let body: Vec<Vec<String>> = rows.iter().map(cells).collect();
    markdown_table(&headers, &body)
}

pub fn json(rows: &[ComparisonRow]) -> String {
    rows.iter()
        .map(|r| serde_json::to_string(r).expect("plain strings and numbers serialise") + "\n")
        .collect()
}

/// CSV with a header line; fields quoted when they need to be.
pub fn csv(rows: &[ComparisonRow]) -> String {
    let mut out = csv_line(HEADERS.iter().map(|s| s.to_string()));
    for r in rows {
        out.push_str(&csv_line(cells(r).into_iter()));
    }
    out
}

pub fn csv_line(fields: impl Iterator<Item = String>) -> String {
    let quoted: Vec<String> = fields
        .map(|f| {
            if f.contains([',', '"', '\n']) {
                format!("\"{}\"", f.replace('"', "\"\""))
            } else {
                f
            }
        })
        .collect();
    quoted.join(",") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row() -> ComparisonRow {
        ComparisonRow {
            mode: "abrupt".into(),
            fin_from: "—".into(),
            rst_from: "B".into(),
            a_saw: "recv = -1 ECONNRESET".into(),
            a_received: "—".into(),
            discarded_unread: 33,
            end_a: "gone (CLOSED)".into(),
            end_b: "gone (CLOSED)".into(),
        }
    }

    #[test]
    fn formats_carry_the_same_values() {
        let rows = [row()];
        assert!(markdown(&rows).contains("| abrupt | — | B | recv = -1 ECONNRESET | — | 33 |"));
        let j: serde_json::Value = serde_json::from_str(json(&rows).trim()).unwrap();
        assert_eq!(j["discarded_unread"], 33);
        assert_eq!(j["rst_from"], "B");
        assert_eq!(
            csv(&rows).lines().nth(1).unwrap(),
            "abrupt,—,B,recv = -1 ECONNRESET,—,33,gone (CLOSED),gone (CLOSED)"
        );
        assert!(table(&rows, Style::PLAIN).contains("ECONNRESET"));
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(
            csv_line(["a,b".to_string(), "say \"hi\"".to_string()].into_iter()),
            "\"a,b\",\"say \"\"hi\"\"\"\n"
        );
    }
}
