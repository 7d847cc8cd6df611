//! The printers, one per kind of view, each chosen once from its format and writing to any `io::Write`:
//! [`TimelinePrinter`] draws one connection's timeline (a run, or a connection of a capture) in any of the seven
//! formats; [`RowsPrinter`] writes the views with a row per run or per connection (the comparison, the summary).

use std::io::{self, Write};

use crate::explain::timeline::Timeline;
use crate::render::compare::Compared;
use crate::render::run::{RunView, title};
use crate::render::summary::{self, Shown};
use crate::render::text;
use crate::render::{
    RowsFormat, Style, TimelineFormat, compare, csv, escape, fit, json, ladder, mermaid, svg, zeek,
};
use crate::track::conn::Conn;

/// One connection of a capture with its timeline (`analyze --conn N`).
pub struct ConnView<'a> {
    /// The capture file's name.
    pub file: &'a str,
    pub conn: &'a Conn,
    pub timeline: &'a Timeline,
    /// What happened, a line each (`explain::account::account`), shown under the timeline as `run`'s account is.
    pub account: &'a [String],
}

/// Draws timelines in one format.
#[derive(Debug, Clone, Copy)]
pub struct TimelinePrinter {
    format: TimelineFormat,
    style: Style,
    /// More than one drawing goes to the output: Mermaid fences each under a heading.
    several: bool,
    /// The table and the ladder write flags as words (`SYN-ACK`), not tcpdump's letters (`[S.]`).
    flag_words: bool,
}

impl TimelinePrinter {
    /// `style` colours and fits the terminal table.
    pub fn new(format: TimelineFormat, style: Style) -> TimelinePrinter {
        TimelinePrinter {
            format,
            style,
            several: false,
            flag_words: false,
        }
    }

    /// Flags as words in the table and the ladder (`--flags words`).
    pub fn flag_words(self, words: bool) -> TimelinePrinter {
        TimelinePrinter {
            flag_words: words,
            ..self
        }
    }

    /// The printer for several drawings in one output (every mode, several connections).
    pub fn several(self) -> TimelinePrinter {
        TimelinePrinter {
            several: true,
            ..self
        }
    }

    pub fn format(&self) -> TimelineFormat {
        self.format
    }

    /// A run: its title, the timeline, and the account of what happened.
    pub fn run(&self, out: &mut dyn Write, v: &RunView) -> io::Result<()> {
        let t = v.timeline;
        let title = title(v.pair, v.kernel);
        let text = match self.format {
            TimelineFormat::Table => {
                let room = self.style.room();
                let mut s = match v.saved_in {
                    Some(file) => fit::wrap(
                        &format!(
                            "{}: a tcp-close-watch run, socket calls included",
                            escape::text(file)
                        ),
                        room,
                        "",
                        "  ",
                    ),
                    None => String::new(),
                };
                s.push_str(&fit::wrap(&escape::text(&title), room, "", "  "));
                s.push_str(&text::timeline_table_as(t, self.style, self.flag_words));
                s.push_str("\n\nWhat happened:\n");
                let warnings = v.warnings.iter().map(|w| format!("WARNING: {w}"));
                for l in warnings.chain(v.account.iter().cloned()) {
                    s.push_str(&fit::wrap(&escape::text(&l), room, "  • ", "    "));
                }
                s
            }
            TimelineFormat::Markdown => {
                let mut s = format!("### {}\n\n", escape::markdown(&title));
                s.push_str(&text::timeline_markdown(t));
                s.push('\n');
                let warnings = v
                    .warnings
                    .iter()
                    .map(|w| format!("**Warning:** {}", escape::markdown(w)));
                let account = v.account.iter().map(|l| escape::markdown(l).into_owned());
                for l in warnings.chain(account) {
                    s.push_str(&format!("- {l}\n"));
                }
                s
            }
            TimelineFormat::Ladder => format!(
                "{}\n{}",
                fit::wrap(&escape::text(&title), self.style.room(), "", "  "),
                ladder::ladder_as(t, self.style.room(), self.flag_words)
            ),
            TimelineFormat::Mermaid if self.several => mermaid::fenced(
                &title,
                &mermaid::mermaid(t, &format!("mode {}", v.pair.mode)),
            ),
            TimelineFormat::Mermaid => mermaid::mermaid(t, &format!("mode {}", v.pair.mode)),
            TimelineFormat::Svg => svg::svg(t, &title),
            TimelineFormat::Csv => csv::timeline(t, v.warnings),
            TimelineFormat::Json => {
                let mut summary = serde_json::to_value(v.outcome).expect("plain values serialise");
                summary["kind"] = "run".into();
                summary["schema"] = json::SCHEMA.into();
                if summary.get("kernel_reason").is_none() {
                    summary["kernel_reason"] = serde_json::Value::Null;
                }
                summary["a"] = v.pair.a.to_string().into();
                summary["b"] = v.pair.b.to_string().into();
                summary["account"] = v.account.into();
                summary["warnings"] = v.warnings.into();
                format!("{}{summary}\n", json::timeline_json(t, v.warnings))
            }
        };
        out.write_all(text.as_bytes())
    }

    /// A connection of a capture: a line naming it and how it ended, then its timeline.
    pub fn connection(&self, out: &mut dyn Write, v: &ConnView) -> io::Result<()> {
        let c = v.conn;
        let t = v.timeline;
        // the file's name is the user's (or whoever named the file): escaped with the line, per format
        let head = format!(
            "{} connection {}: client {} → server {}, {}, conn_state {} history {}",
            v.file,
            c.id,
            c.client.socket(),
            c.server.socket(),
            c.ending().describe(),
            c.conn_state(),
            c.history()
        );
        // a diagram's title: the connection and how it ended (the addresses are on its lifelines)
        let short = format!("connection {}: {}", c.id, c.ending().describe());
        let text = match self.format {
            TimelineFormat::Table => {
                let mut s = format!(
                    "{}{}\n",
                    fit::wrap(&escape::text(&head), self.style.room(), "", "  "),
                    text::timeline_table_as(t, self.style, self.flag_words)
                );
                if !v.account.is_empty() {
                    s.push_str("\nWhat happened:\n");
                    for l in v.account {
                        s.push_str(&fit::wrap(
                            &escape::text(l),
                            self.style.room(),
                            "  • ",
                            "    ",
                        ));
                    }
                }
                s
            }
            TimelineFormat::Markdown => {
                let mut s = format!(
                    "### {}\n\n{}\n",
                    escape::markdown(&head),
                    text::timeline_markdown(t)
                );
                for l in v.account {
                    s.push_str(&format!("- {}\n", escape::markdown(l)));
                }
                s
            }
            TimelineFormat::Csv => csv::timeline(t, &[]),
            TimelineFormat::Json => {
                let mut s = json::timeline_json(t, &[]);
                if !v.account.is_empty() {
                    let account = serde_json::json!({
                        "schema": json::SCHEMA,
                        "kind": "account",
                        "conn": c.id,
                        "account": v.account,
                    });
                    s.push_str(&format!("{account}\n"));
                }
                s
            }
            TimelineFormat::Ladder => format!(
                "{}\n{}",
                fit::wrap(&escape::text(&head), self.style.room(), "", "  "),
                ladder::ladder_as(t, self.style.room(), self.flag_words)
            ),
            TimelineFormat::Svg => svg::svg(t, &head),
            TimelineFormat::Mermaid if self.several => {
                mermaid::fenced(&head, &mermaid::mermaid(t, &short))
            }
            TimelineFormat::Mermaid => mermaid::mermaid(t, &short),
        };
        out.write_all(text.as_bytes())
    }
}

/// Writes the views with a row per run or per connection in one format. One per output: CSV summaries of several
/// files share one header line (a `file` column tells their rows apart).
#[derive(Debug)]
pub struct RowsPrinter {
    format: RowsFormat,
    style: Style,
    csv_header_written: bool,
}

impl RowsPrinter {
    /// `style` colours and fits the comparison's terminal table.
    pub fn new(format: RowsFormat, style: Style) -> RowsPrinter {
        RowsPrinter {
            format,
            style,
            csv_header_written: false,
        }
    }

    /// Runs side by side, a row each, under `heading` (which names the kernels they were recorded on).
    pub fn comparison(
        &mut self,
        out: &mut dyn Write,
        rows: &[Compared],
        heading: &str,
    ) -> io::Result<()> {
        let text = match self.format {
            RowsFormat::Table => format!(
                "{}{}\n",
                fit::wrap(
                    &escape::text(&compare::kernels_line(rows, heading)),
                    self.style.room(),
                    "",
                    "  "
                ),
                compare::table(rows, self.style)
            ),
            RowsFormat::Markdown => compare::markdown(rows, heading),
            RowsFormat::Json => compare::json(rows),
            RowsFormat::Csv => compare::csv(rows),
            // a conn.log has connections, not runs: the pipeline summarises saved runs for it (per_connection)
            RowsFormat::Zeek | RowsFormat::ZeekJson => String::new(),
        };
        out.write_all(text.as_bytes())
    }

    /// Whether this printer describes connections only (Zeek's conn.log): saved runs are summarised, not compared.
    pub fn per_connection(&self) -> bool {
        self.format.per_connection()
    }

    /// A capture file's connections, a row each, and its totals (CSV has no totals).
    pub fn summary(&mut self, out: &mut dyn Write, shown: &Shown) -> io::Result<()> {
        match self.format {
            RowsFormat::Table => {
                summary::write_summary_table(&shown.conns, self.style.room(), out)?;
                let totals: String = summary::totals_text(shown)
                    .lines()
                    .map(|l| fit::wrap(l, self.style.room(), "", "  "))
                    .collect();
                out.write_all(totals.as_bytes())
            }
            RowsFormat::Markdown => {
                let name = escape::markdown(&shown.report.name);
                out.write_all(format!("### {name}\n\n").as_bytes())?;
                summary::write_summary_markdown(&shown.conns, out)?;
                out.write_all(b"\n")?;
                out.write_all(escape::markdown_lines(&summary::totals_text(shown)).as_bytes())
            }
            RowsFormat::Csv => {
                if !self.csv_header_written {
                    self.csv_header_written = true;
                    out.write_all(summary::summary_csv_header().as_bytes())?;
                }
                summary::write_summary_csv(shown, out)
            }
            RowsFormat::Json => summary::write_summary_json(shown, out),
            RowsFormat::Zeek | RowsFormat::ZeekJson => {
                let tsv = self.format == RowsFormat::Zeek;
                if tsv && !self.csv_header_written {
                    self.csv_header_written = true;
                    out.write_all(zeek::header().as_bytes())?;
                }
                let name = &shown.report.name;
                for part in shown.conns.chunks(8192) {
                    let text: String = part
                        .iter()
                        .map(|c| {
                            if tsv {
                                zeek::tsv_line(name, c)
                            } else {
                                zeek::json_line(name, c)
                            }
                        })
                        .collect();
                    out.write_all(text.as_bytes())?;
                }
                Ok(())
            }
        }
    }
}
