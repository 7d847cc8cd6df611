//! Drawing: a family of printers over values the earlier stages made (ripgrep's printer split). Each view has its
//! own format enum — one connection's timeline draws in all seven formats ([`TimelineFormat`]); the comparison of
//! runs and the analyze summary draw in four ([`RowsFormat`]) — and its printer writes to any `io::Write`.
//!
//! Printers do not decide what happened (the account and the comparison row come made, from `explain`) nor which
//! connections to show (the pipeline picks them); they lay out, escape and write. The summary printer is built for a
//! million rows: it measures column widths and formats rows on two threads, and streams them out in parts.

pub mod compare;
pub mod conn_json;
pub mod csv;
pub mod escape;
pub mod fit;
pub mod json;
pub mod ladder;
pub mod legend;
pub mod mermaid;
pub mod printer;
pub mod rows;
pub mod run;
pub mod summary;
pub mod svg;
pub mod text;
pub mod watch;
pub mod zeek;

pub use printer::{RowsPrinter, TimelinePrinter};

use std::io::IsTerminal;

/// The formats one connection's timeline (a run, or a connection of a capture) is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineFormat {
    Table,
    Markdown,
    Json,
    Csv,
    Ladder,
    Svg,
    Mermaid,
}

impl TimelineFormat {
    /// The format's name, as `--format` spells it.
    pub fn name(self) -> &'static str {
        match self {
            TimelineFormat::Table => "table",
            TimelineFormat::Markdown => "markdown",
            TimelineFormat::Json => "json",
            TimelineFormat::Csv => "csv",
            TimelineFormat::Ladder => "ladder",
            TimelineFormat::Svg => "svg",
            TimelineFormat::Mermaid => "mermaid",
        }
    }

    /// The same format for a view of many rows (the comparison, the summary); `None` for the diagrams, which draw
    /// one connection only.
    pub fn rows(self) -> Option<RowsFormat> {
        match self {
            TimelineFormat::Table => Some(RowsFormat::Table),
            TimelineFormat::Markdown => Some(RowsFormat::Markdown),
            TimelineFormat::Json => Some(RowsFormat::Json),
            TimelineFormat::Csv => Some(RowsFormat::Csv),
            TimelineFormat::Ladder | TimelineFormat::Svg | TimelineFormat::Mermaid => None,
        }
    }
}

/// The formats of the views with a row per run or per connection: the comparison and the analyze summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowsFormat {
    Table,
    Markdown,
    Json,
    Csv,
    /// Zeek's conn.log (TSV): connections only, never runs.
    Zeek,
    /// Zeek's conn.log as its JSON writer prints it.
    ZeekJson,
}

impl RowsFormat {
    /// Whether the format describes a capture's connections only (a saved run is summarised as its connection,
    /// not compared as a run).
    pub fn per_connection(self) -> bool {
        matches!(self, RowsFormat::Zeek | RowsFormat::ZeekJson)
    }
}

/// How text output should look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub color: bool,
    /// Width to fit the table into; `None` lets lines be as long as they need.
    pub width: Option<u16>,
}

impl Style {
    pub const PLAIN: Style = Style {
        color: false,
        width: None,
    };

    /// Colour or not, and the width to fit: `asked` (`--width N`; 0 for no limit), else the terminal's width when
    /// standard output is one, else `COLUMNS` when it is set (a pipe into `less`), else no limit.
    pub fn for_stdout(color: bool, asked: Option<u16>) -> Style {
        let width = match asked {
            Some(0) => None,
            Some(w) => Some(w),
            None if std::io::stdout().is_terminal() => terminal_width(),
            None => std::env::var("COLUMNS")
                .ok()
                .and_then(|c| c.trim().parse::<u16>().ok())
                .filter(|w| *w > 0),
        };
        Style { color, width }
    }

    /// The room a line has, in columns (`None`: no limit).
    pub fn room(self) -> Option<usize> {
        self.width.map(usize::from)
    }
}

fn terminal_width() -> Option<u16> {
    // SAFETY: TIOCGWINSZ fills a winsize struct we own; a failure leaves it zeroed and we ignore it.
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut ws) } == 0;
    (ok && ws.ws_col > 0).then_some(ws.ws_col)
}

/// Render a duration in ns as µs or ms, whichever reads better next to its neighbours (`unit_ms`).
pub fn time_text(ns: i64, unit_ms: bool) -> String {
    if unit_ms {
        format!("{:.3}", ns as f64 / 1e6)
    } else {
        format!("{}", ns / 1000)
    }
}
