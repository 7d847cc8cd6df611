//! Drawing: a family of printers over the same data (ripgrep's printer split). Nothing here computes what
//! happened; it only shows values the earlier stages made.

pub mod compare;
pub mod csv;
pub mod json;
pub mod ladder;
pub mod mermaid;
pub mod run;
pub mod summary;
pub mod svg;
pub mod text;

use std::io::IsTerminal;

/// The output formats a user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table for the terminal (fits its width).
    Table,
    /// A Markdown table to paste into notes.
    Markdown,
    /// JSON Lines: one object per row.
    Json,
    /// Comma-separated values with a header line.
    Csv,
    /// The textbook ladder diagram in plain text.
    Ladder,
    /// A standalone SVG sequence diagram (use with -o FILE.svg).
    Svg,
    /// A Mermaid sequenceDiagram for Markdown viewers.
    Mermaid,
}

impl Format {
    /// True for the formats that draw one connection as a diagram.
    pub fn is_diagram(self) -> bool {
        matches!(self, Format::Ladder | Format::Svg | Format::Mermaid)
    }
}

/// When to colour: `auto` colours only a terminal and honours `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// Whether to colour standard output.
    pub fn resolve(self) -> bool {
        match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        }
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

    /// Colour as chosen, and the terminal's width when standard output is one.
    pub fn for_stdout(color: ColorChoice) -> Style {
        let width = if std::io::stdout().is_terminal() {
            terminal_width()
        } else {
            None
        };
        Style {
            color: color.resolve(),
            width,
        }
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
