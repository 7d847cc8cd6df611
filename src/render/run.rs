//! One run of the pair — live, or read back from a saved capture — in any format: a title, the timeline, and
//! the account of what happened. Live and saved runs go through this one function, so they print alike.

use crate::explain::story;
use crate::explain::timeline::Timeline;
use crate::model::run::PairRun;
use crate::render::{Format, Style, csv, json, ladder, mermaid, svg, text};

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
        Format::Svg => svg::svg(t, &title(pair, kernel)),
        Format::Csv => csv::timeline(t),
        Format::Json => {
            let mut summary = serde_json::to_value(story::comparison_row(pair, t, kernel))
                .expect("plain values serialise");
            summary["kind"] = "summary".into();
            summary["a"] = pair.a.to_string().into();
            summary["b"] = pair.b.to_string().into();
            summary["account"] = lines.into();
            summary["warnings"] = warnings.into();
            format!("{}{summary}\n", json::timeline_json(t))
        }
    }
}
