//! `run` and `modes`: play one mode of the pair live (print it, and save it with `--write`), or play every mode and
//! print each one's diagram or one comparison of them all.

use std::fmt;
use std::io::{self, Write};
use std::path::PathBuf;

use crate::capfile::saved;
use crate::model::run::Mode;
use crate::os::privilege;
use crate::pipeline::live::{self, Kernel, LiveRun, Options, RunError};
use crate::pipeline::{Feedback, tell};
use crate::render::compare::Compared;
use crate::render::run::RunView;
use crate::render::{RowsPrinter, TimelinePrinter};
use crate::scenario::{self, Evidence};

/// The line above the comparison of every mode.
const ALL_HEADING: &str = "Every mode, as this kernel played it";

/// What to play and how to show it.
pub enum Plan {
    /// One mode, its timeline and account.
    One(Mode, TimelinePrinter),
    /// Every mode, each drawn as a diagram, one after another.
    EachMode(TimelinePrinter),
    /// Every mode, a row each in one comparison.
    Compare(RowsPrinter),
}

/// A validated `run`.
pub struct Config {
    pub plan: Plan,
    pub options: Options,
    /// Save the run (of `Plan::One`): FILE.pcap keeps its segments, any other name pcapng with its socket calls.
    pub write: Option<Save>,
    /// Give up root and every capability once the captures are open, before playing (what the command does).
    pub drop_privileges: bool,
    /// Judge every run against its scenario's expectations (`--check`): one not met is [`Error::Unmet`].
    pub check: bool,
    /// `--predict`: the student's answers to the scenario's questions (`scenario::questions`), in their order,
    /// to be set against what the run showed.
    pub predict: Option<Vec<String>>,
}

/// Where `--write` saves the run: the name the user gave (its extension says the format) and, when the caller
/// opened it already (before privileges were given up), the file to write; else the path is written at the end.
pub struct Save {
    pub path: PathBuf,
    pub file: Option<Box<dyn Write>>,
}

#[derive(Debug)]
pub enum Error {
    /// A run could not be played.
    Live(RunError),
    /// `--write FILE.pcap` of a run without a capture: nothing to save.
    NothingToSave,
    /// The run could not be saved.
    Save { path: PathBuf, error: io::Error },
    /// The output could not be written.
    Output(io::Error),
    /// Everything was printed, but the capture of these modes may be missing segments (its end marker was lost,
    /// or the kernel dropped packets): their timelines are incomplete, and their stories may be wrong.
    Incomplete(Vec<Mode>),
    /// Everything was printed, and these expectations of `--check` were not met (each told above, a line each).
    Unmet(Vec<String>),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Live(e) => write!(f, "{e}"),
            Error::NothingToSave => f.write_str(
                "--write FILE.pcap holds captured segments, and --no-capture captured none: use FILE.pcapng to save \
                 the socket calls",
            ),
            Error::Save { path, error } => write!(f, "cannot write {}: {error}", path.display()),
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::Unmet(which) => write!(
                f,
                "{} expectation(s) not met (said above): {}",
                which.len(),
                which.join(", ")
            ),
            Error::Incomplete(modes) => {
                let names: Vec<&str> = modes.iter().map(|m| m.name()).collect();
                let names = names.join(", ");
                if modes.len() == 1 {
                    write!(
                        f,
                        "the timeline of mode {names} is incomplete: the capture may be missing segments (warned \
                         above), so its story may be wrong; run again"
                    )
                } else {
                    write!(
                        f,
                        "the timelines of modes {names} are incomplete: their captures may be missing segments \
                         (warned above), so their stories may be wrong; run again"
                    )
                }
            }
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Save { error, .. } | Error::Output(error) => Some(error),
            Error::Live(_) | Error::NothingToSave | Error::Incomplete(_) | Error::Unmet(_) => None,
        }
    }
}

/// `modes`: each mode's name and what it does, a line each.
pub fn list_modes(out: &mut dyn Write) -> io::Result<()> {
    let width = Mode::ALL.iter().map(|m| m.name().len()).max().unwrap_or(0);
    let mut text = String::new();
    for m in Mode::ALL {
        text.push_str(&format!("{:width$}  {}\n", m.name(), m.summary()));
    }
    text.push_str(&format!(
        "{:width$}  every mode above, then one comparison table\n",
        "all"
    ));
    out.write_all(text.as_bytes())
}

/// Play as `config` says and print to `out`. Every mode is played before anything is printed, so a failed run
/// prints nothing. A run whose capture may be missing segments is printed with its warnings, and then the whole is
/// [`Error::Incomplete`].
pub fn run(config: Config, out: &mut dyn Write, feedback: &mut dyn Feedback) -> Result<(), Error> {
    let mut door = if config.drop_privileges {
        Kernel::dropping_privileges()
    } else {
        Kernel::default()
    };
    let modes: Vec<Mode> = match &config.plan {
        Plan::One(mode, _) => vec![*mode],
        Plan::EachMode(_) | Plan::Compare(_) => playable(config.options, feedback),
    };
    // every mode's port and capture opened, privileges given up, then each one played
    let runs = live::run_all_with(&mut door, &modes, config.options).map_err(Error::Live)?;
    let mut incomplete = Vec::new();
    // what the kernel's events cost when they cannot be read is said once, not once per mode
    if let Some(missing) = runs.iter().find_map(|r| r.kernel_missing.as_ref()) {
        feedback.note(&format!("note: {missing}"));
    }
    for run in &runs {
        let mode = run.pair.mode;
        for w in run.warnings() {
            feedback.note(&format!("warning: mode {mode}: {w}"));
        }
        if run.incomplete() {
            incomplete.push(mode);
        }
    }
    print_runs(config.plan, config.write, &runs, out, feedback)?;
    if let (Some(answers), [run]) = (&config.predict, runs.as_slice()) {
        compare_predictions(run, answers, feedback);
    }
    let unmet: Vec<String> = if config.check {
        runs.iter().flat_map(|r| check(r, feedback)).collect()
    } else {
        Vec::new()
    };
    if !unmet.is_empty() {
        Err(Error::Unmet(unmet))
    } else if incomplete.is_empty() {
        Ok(())
    } else {
        Err(Error::Incomplete(incomplete))
    }
}

/// The shipped modes `--mode all` can play here. A mode that plays in network namespaces of its own, or asks the
/// kernel to destroy a socket, needs root; link modes are IPv4 only. Those are left out with a note each, rather
/// than failing the whole comparison for a user without root (`--mode NAME` still says exactly why).
fn playable(options: Options, feedback: &mut dyn Feedback) -> Vec<Mode> {
    let root = privilege::is_root();
    Mode::ALL
        .iter()
        .copied()
        .filter(|&mode| {
            let Ok(script) = scenario::script(mode) else {
                return true;
            };
            let why = if (script.links() || script.destroys()) && !root {
                "it needs root (network namespaces of its own, or SOCK_DESTROY)"
            } else if script.kernel_wait().is_some() && !root {
                "it needs root (it waits on the kernel's events, read from tracefs)"
            } else if script.links() && options.ipv6 {
                "its private link is IPv4 only"
            } else if script.wire_wait().is_some() && !options.capture {
                "it waits on a captured segment, and --no-capture was given"
            } else if script.kernel_wait().is_some() && !options.kernel {
                "it waits on the kernel's events, and --no-kernel was given"
            } else {
                return true;
            };
            feedback.note(&format!("note: mode {mode} left out: {why}"));
            false
        })
        .collect()
}

fn print_runs(
    plan: Plan,
    write: Option<Save>,
    runs: &[LiveRun],
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<(), Error> {
    match plan {
        Plan::One(_, printer) => {
            let run = &runs[0];
            if let Some(to) = write {
                save(run, to, feedback)?;
            }
            print_run(&printer, run, out).map_err(Error::Output)
        }
        Plan::EachMode(printer) => {
            let mut text = Vec::new();
            for run in runs {
                print_run(&printer, run, &mut text).map_err(Error::Output)?;
                text.push(b'\n');
            }
            out.write_all(&text).map_err(Error::Output)
        }
        Plan::Compare(mut printer) => {
            let rows: Vec<Compared> = runs
                .iter()
                .map(|run| Compared {
                    outcome: tell(&run.pair, &run.timeline, &run.kernel).outcome,
                    warnings: run.warnings(),
                })
                .collect();
            printer
                .comparison(out, &rows, ALL_HEADING)
                .map_err(Error::Output)
        }
    }
}

/// `--check`: judge `run` against its scenario's expectations; tell each one not met (and the count met) on
/// `feedback`, and return where each unmet one is written (`mode abrupt line 16`).
fn check(run: &LiveRun, feedback: &mut dyn Feedback) -> Vec<String> {
    let mode = run.pair.mode;
    let script = match scenario::script(mode) {
        Ok(s) => s,
        Err(e) => {
            feedback.note(&format!(
                "warning: mode {mode}: its scenario cannot be read: {e}"
            ));
            return vec![format!("mode {mode}")];
        }
    };
    let verdicts = scenario::check(&script, &evidence(run));
    let mut unmet = Vec::new();
    for v in verdicts.iter().filter(|v| !v.met) {
        feedback.note(&format!(
            "not met: mode {mode}, line {}: expected {}; seen: {}",
            v.line, v.expected, v.seen
        ));
        unmet.push(format!("mode {mode} line {}", v.line));
    }
    feedback.note(&format!(
        "check: mode {mode}: {} of {} expectation(s) met",
        verdicts.len() - unmet.len(),
        verdicts.len()
    ));
    unmet
}

fn evidence(run: &LiveRun) -> Evidence<'_> {
    Evidence {
        pair: &run.pair,
        segments: run.captured.as_ref().map(|c| c.segments.as_slice()),
        events: run.trace.as_ref().map(|t| t.events.as_slice()),
    }
}

/// `--predict`: each question, the answer given before the run, and what the run showed.
fn compare_predictions(run: &LiveRun, answers: &[String], feedback: &mut dyn Feedback) {
    let Ok(script) = scenario::script(run.pair.mode) else {
        return;
    };
    let ev = evidence(run);
    let questions = scenario::questions(&script);
    let mut right = 0;
    for (i, q) in questions.iter().enumerate() {
        let answer = answers.get(i).map(String::as_str).unwrap_or("").trim();
        let verdict = match q.observed(&ev) {
            Some(seen) if scenario::agrees(answer, &seen) => {
                right += 1;
                format!("observed {seen}: right")
            }
            Some(seen) => format!("observed {seen}: not what you said"),
            None => "the run cannot tell (nothing captured)".to_string(),
        };
        let said = if answer.is_empty() {
            "(no answer)"
        } else {
            answer
        };
        feedback.note(&format!("predict: {} you said {said}; {verdict}", q.text()));
    }
    feedback.note(&format!(
        "predict: {right} of {} predictions right",
        questions.len()
    ));
}

/// One run, its account told, as `printer` draws it.
pub fn print_run(printer: &TimelinePrinter, run: &LiveRun, out: &mut dyn Write) -> io::Result<()> {
    let told = tell(&run.pair, &run.timeline, &run.kernel);
    printer.run(
        out,
        &RunView {
            pair: &run.pair,
            timeline: &run.timeline,
            kernel: &run.kernel,
            warnings: &run.warnings(),
            account: &told.account,
            outcome: &told.outcome,
            saved_in: None,
        },
    )
}

/// Save a run as pcapng (with its calls) or classic pcap (segments only), by the file's extension.
fn save(run: &LiveRun, to: Save, feedback: &mut dyn Feedback) -> Result<(), Error> {
    let path = to.path.as_path();
    let (frames, linktype) = match &run.captured {
        Some(c) => (c.frames.as_slice(), c.linktype),
        None => (&[][..], 1),
    };
    let classic = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pcap"));
    let bytes = if classic {
        if run.captured.is_none() {
            return Err(Error::NothingToSave);
        }
        saved::pcap(frames, linktype)
    } else {
        saved::pcapng_with_kernel(&run.pair, &run.kernel, run.trace.as_ref(), frames, linktype)
    };
    let written = match to.file {
        Some(mut file) => file.write_all(&bytes).and_then(|()| file.flush()),
        None => std::fs::write(path, bytes),
    };
    written.map_err(|error| Error::Save {
        path: path.to_path_buf(),
        error,
    })?;
    let what = if classic {
        format!(
            "{} segments (classic pcap holds no socket calls: use .pcapng to keep them)",
            frames.len()
        )
    } else if run.captured.is_none() {
        format!(
            "{} socket calls and no segments (--no-capture)",
            run.pair.calls.len()
        )
    } else {
        format!(
            "{} segments and {} socket calls",
            frames.len(),
            run.pair.calls.len()
        )
    };
    feedback.note(&format!("wrote {what} to {}", path.display()));
    Ok(())
}
