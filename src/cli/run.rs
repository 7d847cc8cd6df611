//! `tcp-close-watch run` and `modes`: the arguments, checked and turned into a `pipeline::run` plan.

use std::path::PathBuf;

use tcp_close_watch::model::run::Mode;
use tcp_close_watch::pipeline::live::Options;
use tcp_close_watch::pipeline::run::{Config, Error, Plan, Save};
use tcp_close_watch::render::{RowsPrinter, TimelineFormat, TimelinePrinter};

use crate::Failure;
use crate::cli::{Format, Shown};

fn mode_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Mode::ALL.iter().map(|m| m.name()).collect();
    names.push("all");
    names
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The scenario to play (`tcp-close-watch modes` lists them); `all` plays every one and compares them.
    #[arg(long, short, default_value = "abrupt", value_parser = clap::builder::PossibleValuesParser::new(mode_names()))]
    pub mode: String,
    /// Play a scenario file of your own instead of a shipped mode (the format: docs/scenarios.md).
    #[arg(long, value_name = "FILE", conflicts_with = "mode")]
    pub scenario: Option<PathBuf>,
    /// Judge the run against the scenario's `expect` lines; exit 4 naming each one the kernel did not meet.
    #[arg(long)]
    pub check: bool,
    /// Before playing, ask two or three questions drawn from the scenario's expectations (answers a line each on
    /// standard input, so they can be piped), then show each prediction against what the run showed.
    #[arg(long)]
    pub predict: bool,
    /// Use ::1 instead of 127.0.0.1.
    #[arg(long)]
    pub ipv6: bool,
    /// Do not capture (no privileges needed): show the socket calls alone.
    #[arg(long)]
    pub no_capture: bool,
    /// Do not read the kernel's own events (reset reasons, state changes, errors; needs root for tracefs).
    #[arg(long)]
    pub no_kernel: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Save the run: FILE.pcapng keeps the segments and A's and B's socket calls (as packet comments, and for
    /// `analyze`); FILE.pcap keeps the segments alone.
    #[arg(long, short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,
    #[command(flatten)]
    pub shown: Shown,
}

impl RunArgs {
    /// What to play and how to show it; `--write` and `--format svg` are refused for every mode at once.
    pub fn config(&self) -> Result<Config, Failure> {
        self.shown.legend_applies(self.format)?;
        if let Some(path) = &self.write {
            save_kind(path)?;
        }
        if self.format.zeek().is_some() {
            return Err(Failure::usage(
                "--format zeek and zeek-json describe a capture's connections: save the run with --write \
                 RUN.pcapng and give it to analyze -f zeek",
            ));
        }
        let format = TimelineFormat::from(self.format);
        let style = self.shown.style();
        let words = self.shown.words();
        let options = Options {
            ipv6: self.ipv6,
            capture: !self.no_capture,
            kernel: !self.no_kernel,
        };
        if self.no_capture
            && self
                .write
                .as_ref()
                .and_then(|w| w.extension())
                .is_some_and(|e| e.eq_ignore_ascii_case("pcap"))
        {
            return Err(Failure::usage(Error::NothingToSave.to_string()));
        }
        if self.predict && self.scenario.is_none() && self.mode == "all" {
            return Err(Failure::new(
                "--predict asks about one scenario: pick a mode or --scenario FILE",
            ));
        }
        let plan = if let Some(path) = &self.scenario {
            Plan::One(
                load(path)?,
                TimelinePrinter::new(format, style).flag_words(words),
            )
        } else if self.mode != "all" {
            let mode = Mode::from_name(&self.mode)
                .ok_or_else(|| Failure::usage(format!("unknown mode {}", self.mode)))?;
            Plan::One(mode, TimelinePrinter::new(format, style).flag_words(words))
        } else if self.write.is_some() {
            return Err(Failure::usage(
                "--write saves one run: pick a mode instead of all",
            ));
        } else if let Some(rows) = format.rows() {
            Plan::Compare(RowsPrinter::new(rows, style))
        } else if format == TimelineFormat::Svg {
            return Err(Failure::usage(
                "--format svg draws one connection: pick a mode (tcp-close-watch modes lists them), or use \
                 --format table, markdown, json or csv for the comparison of all",
            ));
        } else {
            Plan::EachMode(
                TimelinePrinter::new(format, style)
                    .several()
                    .flag_words(words),
            )
        };
        Ok(Config {
            plan,
            options,
            write: self.write.clone().map(|path| Save { path, file: None }),
            drop_privileges: true,
            check: self.check,
            predict: None,
        })
    }
}

/// A scenario file, read and parsed before anything is opened: a mistake is one line naming the file, line and
/// column.
fn load(path: &std::path::Path) -> Result<Mode, Failure> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read scenario {}: {e}", path.display())))?;
    tcp_close_watch::scenario::load(&text).map_err(|e| {
        Failure::new(format!(
            "{}:{}:{}: expected {}, found {}",
            path.display(),
            e.line,
            e.col,
            e.expected,
            e.found
        ))
    })
}

/// `--predict`: ask the questions of the scenario `plan` plays on standard error, and read an answer a line each
/// from standard input (piped answers work; a missing line is no answer).
pub fn ask(config: &mut Config) -> Result<(), Failure> {
    let Plan::One(mode, _) = &config.plan else {
        return Ok(());
    };
    let script = tcp_close_watch::scenario::script(*mode)
        .map_err(|e| Failure::new(format!("scenario {mode}: {e}")))?;
    let questions = tcp_close_watch::scenario::questions(&script);
    if questions.is_empty() {
        return Err(Failure::new(format!(
            "--predict: scenario {mode} has no expectation to ask about"
        )));
    }
    let mut answers = Vec::new();
    let stdin = std::io::stdin();
    // piped answers are not echoed by a terminal: say them after each question, so the record reads whole
    let piped = !std::io::IsTerminal::is_terminal(&stdin);
    for (i, q) in questions.iter().enumerate() {
        eprint!("question {}: {} ", i + 1, q.text());
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut stdin.lock(), &mut line);
        let answer = line.trim().to_string();
        if piped {
            eprintln!("{answer}");
        }
        answers.push(answer);
    }
    config.predict = Some(answers);
    Ok(())
}

/// `--write FILE` is saved as what its name says: pcapng (segments and calls) or pcap (segments alone); any other
/// name is refused rather than written as pcapng under a name that says otherwise.
fn save_kind(path: &std::path::Path) -> Result<(), Failure> {
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("pcapng") | Some("pcap") => Ok(()),
        _ => Err(Failure::usage(format!(
            "--write {}: name the file .pcapng (segments and socket calls) or .pcap (segments alone)",
            path.display()
        ))),
    }
}
