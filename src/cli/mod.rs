//! The command line: clap types and their validation, one file per subcommand. Glue only: arguments become a
//! validated configuration of a `pipeline` command, and what the command says on the side goes to standard error.

pub mod analyze;
pub mod output;
pub mod run;
pub mod watch;

use std::fs::File;
use std::io::{self, IsTerminal, StdoutLock, Write};

use tcp_close_watch::pipeline::Feedback;
use tcp_close_watch::render::{Style, TimelineFormat, escape};

use crate::Failure;

/// `--format`: the output formats a user can ask for.
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

impl From<Format> for TimelineFormat {
    fn from(f: Format) -> TimelineFormat {
        match f {
            Format::Table => TimelineFormat::Table,
            Format::Markdown => TimelineFormat::Markdown,
            Format::Json => TimelineFormat::Json,
            Format::Csv => TimelineFormat::Csv,
            Format::Ladder => TimelineFormat::Ladder,
            Format::Svg => TimelineFormat::Svg,
            Format::Mermaid => TimelineFormat::Mermaid,
        }
    }
}

/// `--color`: when to colour; `auto` colours only a terminal and honours `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// The style of standard output: colour as chosen, and the terminal's width when it is one.
    pub fn style(self) -> Style {
        let color = match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        Style::for_stdout(color)
    }
}

/// Where the output goes: standard output, or the file of `-o`.
pub enum Output {
    Stdout(StdoutLock<'static>),
    File(File),
}

impl Output {
    /// The `-o` file (see `output`), or standard output.
    pub fn to(file: Option<File>) -> Output {
        match file {
            Some(f) => Output::File(f),
            None => Output::Stdout(io::stdout().lock()),
        }
    }

    /// Why writing failed, for the user; `None` for a closed pipe (`| head`), which ends the program quietly.
    pub fn failure(&self, e: &io::Error) -> Option<Failure> {
        match self {
            Output::File(_) => Some(Failure::new(format!("cannot write the output file: {e}"))),
            Output::Stdout(_) if e.kind() == io::ErrorKind::BrokenPipe => None,
            Output::Stdout(_) => Some(Failure::new(format!("cannot write output: {e}"))),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(s) => s.write(buf),
            Output::File(f) => f.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            // each piece of output goes out whole, as it is written
            Output::Stdout(s) => s.write_all(buf).and_then(|()| s.flush()),
            Output::File(f) => f.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(s) => s.flush(),
            Output::File(f) => f.flush(),
        }
    }
}

/// A command's notes on standard error, after the program's name; a progress bar for each file read, when standard
/// error is a terminal (not for standard input, whose length is not known).
pub struct Stderr {
    progress: bool,
    bar: Option<indicatif::ProgressBar>,
}

impl Stderr {
    pub fn new() -> Stderr {
        Stderr {
            progress: std::io::stderr().is_terminal(),
            bar: None,
        }
    }
}

impl Feedback for Stderr {
    fn note(&mut self, line: &str) {
        // notes quote file names and what files hold: no control character reaches the terminal
        eprintln!("tcp-close-watch: {}", escape::text(line));
    }

    fn reading(&mut self, name: &str) {
        self.bar = (self.progress && name != "-").then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(escape::text(name).into_owned());
            b
        });
    }

    fn progress(&mut self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(done);
        }
    }

    fn read(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}
