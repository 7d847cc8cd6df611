//! The command line: clap types and their validation, one file per subcommand. Glue only: arguments become a
//! validated configuration of a `pipeline` command, and what the command says on the side goes to standard error.

pub mod analyze;
pub mod output;
pub mod run;
pub mod watch;

use std::fs::File;
use std::io::{self, IsTerminal, StdoutLock, Write};

use tcp_close_watch::pipeline::Feedback;
use tcp_close_watch::render::{RowsFormat, Style, TimelineFormat, escape};

use crate::Failure;

/// The exit codes of every subcommand, shown after each `--help` (README and docs/output.md say the same).
pub const EXIT_CODES: &str = "Exit codes (every subcommand): 0 everything was shown; 1 an error, said in one line \
on standard error, with nothing printed (or, for a failed write, not all); 2 the command line is wrong (an unknown \
option or value, options that exclude each other, a bad --filter); 3 everything was printed but may not be whole: \
run's capture may be missing segments (run again), or analyze met damaged or unreadable input (the results cover \
what was read); 4 run --check printed the run but the kernel did not meet an expectation of the scenario (each one \
named on standard error).";

/// Where the documentation is, shown after each `--help`.
pub const DOCS: &str = "Documentation: `man tcp-close-watch` once installed (`just install`); docs/index.md in \
the source; docs/reading-the-timeline.md explains every \
code on the screen ([S.], seq 1:35, CLOSE (gone), conn_state, history, first close, FIN c/s), docs/output.md the \
JSON, CSV and Zeek fields and the exit codes; --legend explains the codes under a table or ladder.";

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
    /// analyze: Zeek's conn.log (TSV with its header lines), for zeek-cut and Zeek log readers.
    Zeek,
    /// analyze: Zeek's conn.log as Zeek's JSON writer prints it.
    ZeekJson,
}

impl Format {
    /// The Zeek formats' view: a capture's connections (`None` for the others).
    pub fn zeek(self) -> Option<RowsFormat> {
        match self {
            Format::Zeek => Some(RowsFormat::Zeek),
            Format::ZeekJson => Some(RowsFormat::ZeekJson),
            _ => None,
        }
    }
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
            // a conn.log draws no timeline; `--conn` and `run` refuse it before a printer is made
            Format::Zeek | Format::ZeekJson => TimelineFormat::Table,
        }
    }
}

/// `--flags`: how the table and the ladder write a segment's TCP flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FlagStyle {
    /// tcpdump's letters: [S], [S.], [.], [P.], [F.], [R.]
    Letters,
    /// Words for beginners: [SYN], [SYN-ACK], [ACK], [PSH-ACK], [FIN-ACK], [RST-ACK]
    Words,
}

/// `--color`: when to colour; `auto` colours only a terminal and honours `NO_COLOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

impl ColorChoice {
    /// The style of standard output: colour as chosen, and the width to fit (`--width`, the terminal's, or
    /// `COLUMNS`).
    pub fn style(self, width: Option<u16>) -> Style {
        let color = match self {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::stdout().is_terminal()
            }
        };
        Style::for_stdout(color, width)
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

/// Standard output or the `-o` file, keeping the start of what went through (for `--legend`, which explains the
/// codes the output showed).
pub struct Recorded<'a> {
    pub out: &'a mut Output,
    pub seen: Vec<u8>,
}

/// How much of the output `--legend` looks at: a summary of a million rows shows its codes early.
const RECORD_LIMIT: usize = 4 << 20;

impl Write for Recorded<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.out.write(buf)?;
        let room = RECORD_LIMIT.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&buf[..n.min(room)]);
        Ok(n)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)?;
        let room = RECORD_LIMIT.saturating_sub(self.seen.len());
        self.seen.extend_from_slice(&buf[..buf.len().min(room)]);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// How `run` and `analyze` show what they found: where, how wide, in colour or not, flags as letters or words, and
/// whether a legend follows. One set of options, declared once, so the two commands cannot drift apart.
#[derive(clap::Args)]
pub struct Shown {
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    /// How the table and the ladder write TCP flags: tcpdump's letters ([S.]) or words ([SYN-ACK]).
    #[arg(long, value_enum, default_value = "letters")]
    pub flags: FlagStyle,
    /// After a table or ladder, explain every code it shows ([S.], seq 1:35, RSTR, history letters, …).
    #[arg(long)]
    pub legend: bool,
    /// Fit text output into N columns (0: no limit); by default the terminal's width, or COLUMNS when piped.
    #[arg(long, value_name = "N")]
    pub width: Option<u16>,
    /// Colour RST and FIN rows: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

impl Shown {
    /// The style of standard output (colour and width).
    pub fn style(&self) -> Style {
        self.color.style(self.width)
    }

    /// Flags written as words for beginners.
    pub fn words(&self) -> bool {
        self.flags == FlagStyle::Words
    }

    /// `--legend` with a format it explains; refused (usage error) with one it does not.
    pub fn legend_applies(&self, format: Format) -> Result<(), Failure> {
        legend_applies(self.legend, format)
    }

    /// What `legend_for` needs after the output, when `--legend` was given.
    pub fn legend(&self, format: Format) -> Option<(Format, Style)> {
        self.legend.then(|| (format, self.style()))
    }
}

/// `--legend`'s text for what `seen` showed, when the format is one a person reads (table, ladder).
/// `--legend` explains the codes of the table and the ladder; with another format it would be ignored in silence,
/// so it is refused, saying where those formats' fields are explained.
pub fn legend_applies(legend: bool, format: Format) -> Result<(), Failure> {
    if legend && !matches!(format, Format::Table | Format::Ladder) {
        return Err(Failure::usage(format!(
            "--legend explains the table's and the ladder's codes; the fields of --format {} are in \
             docs/output.md",
            TimelineFormat::from(format).name()
        )));
    }
    Ok(())
}

pub fn legend_for(format: Format, seen: &[u8], style: Style) -> Option<String> {
    matches!(format, Format::Table | Format::Ladder).then(|| {
        tcp_close_watch::render::legend::legend(&String::from_utf8_lossy(seen), style.room())
    })
}
