//! One run of the pair — live, or read back from a saved capture — in any format: a title, the timeline, and
//! the account of what happened. Live and saved runs go through this one function, so they print alike.

use crate::demo::PairRun;
use crate::render::{Format, Style, json, ladder, mermaid, svg, text};
use crate::story;
use crate::timeline::Timeline;

/// Title line of a run.
pub fn title(pair: &PairRun, kernel: &str) -> String {
    format!(
        "mode {} — {} ({kernel}, B on {})",
        pair.mode,
        pair.mode.summary(),
        pair.b
    )
}

/// The run in `format`. `warnings` are shown with the account (and in JSON's summary object).
pub fn run_view(
    pair: &PairRun,
    t: &Timeline,
    kernel: &str,
    warnings: &[String],
    format: Format,
    style: Style,
) -> String {
    let end = Some((pair.end_states.a, pair.end_states.b));
    let lines = story::account(t, end, kernel);
    match format {
        Format::Table => {
            let mut s = format!("{}\n", title(pair, kernel));
            s.push_str(&text::timeline_table(t, style));
            s.push_str("\n\nWhat happened:\n");
            for l in warnings
                .iter()
                .map(|w| format!("WARNING: {w}"))
                .chain(lines)
            {
                s.push_str(&format!("  • {l}\n"));
            }
            s
        }
        Format::Markdown => {
            let mut s = format!("### {}\n\n", title(pair, kernel));
            s.push_str(&text::timeline_markdown(t));
            s.push('\n');
            for l in warnings
                .iter()
                .map(|w| format!("**Warning:** {w}"))
                .chain(lines)
            {
                s.push_str(&format!("- {l}\n"));
            }
            s
        }
        Format::Ladder => format!("{}\n\n{}", title(pair, kernel), ladder::ladder(t)),
        Format::Mermaid => mermaid::mermaid(t),
        Format::Svg => svg::svg(t),
        Format::Csv => text::timeline_csv(t),
        Format::Json => {
            let row = story::comparison_row(pair, t);
            let summary = serde_json::json!({
                "kind": "summary",
                "mode": pair.mode.name(),
                "kernel": kernel,
                "a": pair.a.to_string(),
                "b": pair.b.to_string(),
                "fin_from": row.fin_from,
                "rst_from": row.rst_from,
                "a_saw": row.a_saw,
                "a_received": row.a_received,
                "discarded_unread": row.discarded_unread,
                "end_a": row.end_a,
                "end_b": row.end_b,
                "account": lines,
                "warnings": warnings,
            });
            format!("{}{summary}\n", json::timeline_json(t))
        }
    }
}
