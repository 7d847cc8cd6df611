//! `analyze`: how every TCP connection in saved captures ended. [`run`] is the command: each file read (by
//! [`analyze`], in `read`), checked, and printed as its summary, the timelines of the connections asked for, or the
//! run it saved; several saved runs make one comparison.

mod many;
mod read;

pub use read::{BYTES_PER_CONNECTION, MANY_CONNECTIONS, analyze, analyze_with, saved_timeline};

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::io::{self, Write};

use crate::capfile::{CaptureReader, Source};
use crate::explain::account;
use crate::explain::timeline::{self, Sides, States, Timeline};
use crate::os::privilege::{self, PrivilegeError};
use crate::pipeline::{Feedback, tell};
use crate::render::printer::ConnView;
use crate::render::run::RunView;
use crate::render::summary::Shown;
use crate::render::{RowsPrinter, TimelinePrinter};
use crate::track::report::FileReport;
use crate::track::report::IpFacts;
use crate::track::select::Selection;
use crate::wire::bpf::Bpf;

/// The line above the comparison of several saved runs.
const SAVED_HEADING: &str = "Saved runs";

/// A validated `analyze`.
pub struct Config {
    /// Capture files; `-` is standard input.
    pub files: Vec<String>,
    /// Connections whose timelines to print (`--conn`), in the order asked; none prints summaries.
    pub conns: Vec<u32>,
    /// The timeline and account of every connection the selection shows (`--conn all`, `--timeline`).
    pub every: bool,
    /// Which connections the summaries show.
    pub selection: Selection,
    /// The selection's `--filter`, compiled.
    pub bpf: Option<Bpf>,
    pub timeline: TimelinePrinter,
    /// `None` when the format is a diagram, which summaries and comparisons are not drawn in.
    pub rows: Option<RowsPrinter>,
    /// Give up root and every capability (`os::privilege`) once every input is open, before reading any: what the
    /// command does. Tests that run in-process keep theirs.
    pub drop_privileges: bool,
}

#[derive(Debug)]
pub enum Error {
    /// The output could not be written.
    Output(io::Error),
    /// Privileges could not be given up: nothing was read.
    Privileges(PrivilegeError),
    /// A capture's summary was asked for in a diagram format (the format's name).
    DiagramOfSummary(&'static str),
    /// Several saved runs were to be compared in a diagram format.
    DiagramOfRuns(&'static str),
    /// No input could be read at all.
    NothingRead { inputs: usize },
    /// Some inputs could not be read to the end; results were printed for what was read.
    Incomplete { failed: usize, inputs: usize },
    /// `--conn N` names a connection the file does not have.
    NoSuchConnection { file: String, id: u32, count: usize },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::Privileges(e) => write!(f, "{e}; nothing was read"),
            Error::DiagramOfSummary(format) => write!(
                f,
                "--format {format} draws one connection: add --conn N (the summary's id column)"
            ),
            Error::DiagramOfRuns(format) => write!(
                f,
                "--format {format} draws one connection: give one file, or add --conn n"
            ),
            Error::NothingRead { inputs: 1 } => f.write_str("nothing could be read from the input"),
            Error::NothingRead { inputs } => {
                write!(f, "nothing could be read from any of the {inputs} inputs")
            }
            Error::NoSuchConnection { file, id, count: 0 } => {
                write!(f, "{file}: no connection {id}: it has no TCP connection")
            }
            Error::NoSuchConnection { file, id, count } => write!(
                f,
                "{file}: no connection {id}: it has {count} (0 to {}); run analyze without --conn to list them",
                count - 1
            ),
            Error::Incomplete { failed, inputs } => write!(
                f,
                "{failed} of {inputs} input{} could not be read to the end; results above cover what was read",
                if *inputs == 1 { "" } else { "s" }
            ),
        }
    }
}

impl Error {
    /// True when the error adds nothing to the lines already noted: one input, whose failure was noted as it was
    /// read. Several inputs end with the count of those that failed.
    pub fn already_noted(&self) -> bool {
        matches!(
            self,
            Error::NothingRead { inputs: 1 } | Error::Incomplete { inputs: 1, .. }
        )
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Output(e) => Some(e),
            _ => None,
        }
    }
}

/// One filter per thread reading `files` files, a thread per core (a compiled BPF program is not shared between
/// threads): `--filter`'s expression compiled again for each, or none without one. `None` when one thread is all
/// there is or the filters cannot be had (a compiled filter without its expression): the files are then read one by
/// one.
fn worker_filters(config: &Config, files: usize) -> Option<Vec<Option<Bpf>>> {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = cores.min(files);
    if workers < 2 {
        return None;
    }
    match (&config.bpf, &config.selection.filter) {
        (None, _) => Some((0..workers).map(|_| None).collect()),
        (Some(_), Some(expr)) => (0..workers)
            .map(|_| Bpf::new(expr).ok().map(Some))
            .collect(),
        (Some(_), None) => None,
    }
}

/// Read every file and print what `config` asks for, to `out`. Files that cannot be read are noted and skipped;
/// the error at the end says how many (after the results of the others).
pub fn run(
    mut config: Config,
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<(), Error> {
    let keep: HashSet<u32> = config.conns.iter().copied().collect();
    // the files are taken out, to be read one by one while the rest of the configuration prints them
    let files = std::mem::take(&mut config.files);
    let timelines = !config.conns.is_empty() || config.every;
    let compare_runs = compares_runs(&config, files.len());
    let mut runs = Vec::new();
    let (mut unreadable, mut damaged) = (0, 0);
    // every input opened while the process may still read what its user may, then no privilege left to read with
    let sources: Vec<_> = files.iter().map(|name| Source::open(name)).collect();
    if config.drop_privileges {
        privilege::drop_privileges().map_err(Error::Privileges)?;
    }
    let shown = (!timelines).then_some(config.selection.clone());
    let mut handle = |report: FileReport,
                      notes: Vec<String>,
                      config: &mut Config,
                      feedback: &mut dyn Feedback|
     -> Result<(), Error> {
        for n in notes {
            feedback.note(&n);
        }
        let health = check(&report, feedback);
        damaged += usize::from(health.damaged);
        if !health.readable {
            unreadable += 1;
            return Ok(());
        }
        match (&report.saved_run, compare_runs) {
            (Some(saved), true) => {
                let t = saved_timeline(&report).expect("the report carries a saved run");
                runs.push(tell(&saved.pair, &t, &saved.kernel).outcome.into());
                Ok(())
            }
            _ => print_report(&report, config, out, feedback),
        }
    };
    if let Some(filters) = worker_filters(&config, files.len()) {
        // several files: a core each (with a --filter compiled for each), printed in the order given
        let keep = many::Keep {
            conns: &keep,
            every: config.every,
            shown: shown.as_ref(),
        };
        let inputs = files.iter().cloned().zip(sources).collect();
        many::in_order(inputs, &keep, filters, |report, notes| {
            handle(report, notes, &mut config, feedback)
        })?;
    } else {
        for (name, source) in files.iter().zip(sources) {
            feedback.reading(name);
            let report = analyze_with(
                name,
                source.and_then(CaptureReader::read_from),
                &keep,
                config.every,
                config.bpf.as_mut(),
                // --conn prints connections whatever the selection: then every one is kept
                shown.as_ref(),
                feedback,
            );
            feedback.read();
            handle(report, Vec::new(), &mut config, feedback)?;
        }
    }
    if !runs.is_empty() {
        let format = config.timeline.format().name();
        let printer = config.rows.as_mut().ok_or(Error::DiagramOfRuns(format))?;
        printer
            .comparison(out, &runs, SAVED_HEADING)
            .map_err(Error::Output)?;
    }
    tally(files.len(), unreadable, damaged)
}

/// Several saved runs (run --write), no --conn and no per-connection format (Zeek's logs): one comparison row
/// each, as `run --mode all` prints.
fn compares_runs(config: &Config, files: usize) -> bool {
    let timelines = !config.conns.is_empty() || config.every;
    let per_connection = config.rows.as_ref().is_some_and(|r| r.per_connection());
    !timelines && files > 1 && !per_connection
}

/// The command's end: an error when some input (or every one) could not be read whole.
fn tally(inputs: usize, unreadable: usize, damaged: usize) -> Result<(), Error> {
    if unreadable == inputs {
        return Err(Error::NothingRead { inputs });
    }
    if unreadable + damaged > 0 {
        return Err(Error::Incomplete {
            failed: unreadable + damaged,
            inputs,
        });
    }
    Ok(())
}

/// What reading a file came to.
struct Health {
    /// Something of it can be shown.
    readable: bool,
    /// Reading stopped before its end.
    damaged: bool,
}

/// Tell the user what kept a file from being read whole, or gave no TCP from it.
fn check(r: &FileReport, feedback: &mut dyn Feedback) -> Health {
    let name = &r.name;
    let mut health = Health {
        readable: true,
        damaged: false,
    };
    if let Some(e) = &r.open_error {
        feedback.note(&format!("{name}: {e}; nothing analysed"));
        health.readable = false;
        return health;
    }
    if let Some(e) = &r.read_error {
        if r.counts.frames == 0 {
            feedback.note(&format!("{name}: {e}; nothing analysed"));
            health.readable = false;
            return health;
        }
        feedback.note(&format!("{name}: {e}"));
        health.damaged = true;
    }
    let link_frames: u64 = r.unknown_links.values().sum();
    if link_frames > 0 {
        let links: Vec<String> = r.unknown_links.keys().map(|l| l.to_string()).collect();
        feedback.note(&format!(
            "{name}: link type {} is not one we decode (we read Ethernet, Linux cooked v1/v2, BSD loopback, raw IP, \
             IPv4, IPv6, PPP, FDDI, NFLOG, IPoIB); {link_frames} of {} frames skipped",
            links.join(", "),
            r.counts.frames
        ));
        health.readable = link_frames != r.counts.frames;
    } else if r.counts.frames > 0 && r.counts.tcp_segments == 0 {
        let why: Vec<String> = r.skipped.iter().map(|(k, n)| format!("{n} {k}")).collect();
        feedback.note(&format!(
            "{name}: no TCP segment in {} frame{} ({})",
            r.counts.frames,
            if r.counts.frames == 1 { "" } else { "s" },
            why.join(", ")
        ));
    }
    health
}

/// One file's results: the run it saved, the timelines of the connections asked for, or its summary.
fn print_report(
    r: &FileReport,
    config: &mut Config,
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<(), Error> {
    let timelines = !config.conns.is_empty() || config.every;
    let per_connection = config.rows.as_ref().is_some_and(|r| r.per_connection());
    if let (Some(saved), true) = (&r.saved_run, !timelines && !per_connection) {
        // A file saved by `run --write`: print the run as the live run did, socket calls included.
        let t = saved_timeline(r).expect("the report carries a saved run");
        let told = tell(&saved.pair, &t, &saved.kernel);
        let view = RunView {
            pair: &saved.pair,
            timeline: &t,
            kernel: &saved.kernel,
            warnings: &[],
            account: &told.account,
            outcome: &told.outcome,
            saved_in: Some(&r.name),
        };
        return config.timeline.run(out, &view).map_err(Error::Output);
    }
    if !timelines {
        let format = config.timeline.format().name();
        let printer = config
            .rows
            .as_mut()
            .ok_or(Error::DiagramOfSummary(format))?;
        return printer
            .summary(out, &shown(r, &config.selection))
            .map_err(Error::Output);
    }
    let _ = feedback;
    // every id is checked before any is printed: a wrong one is an error, not a note beside results
    if let Some(&id) = config
        .conns
        .iter()
        .find(|&&id| id as usize >= r.conns.len())
    {
        return Err(Error::NoSuchConnection {
            file: r.name.clone(),
            id,
            count: r.conns.len(),
        });
    }
    let ids: Vec<u32> = if config.every {
        r.conns
            .iter()
            .filter(|c| config.selection.shows(c))
            .map(|c| c.id)
            .collect()
    } else {
        config.conns.clone()
    };
    for id in ids {
        let conn = &r.conns[id as usize];
        let t = conn_timeline(r, id);
        let account = account::account(&t, &ip_facts_of(r, id, &t));
        let view = ConnView {
            file: &r.name,
            conn,
            timeline: &t,
            account: &account,
        };
        config
            .timeline
            .connection(out, &view)
            .map_err(Error::Output)?;
    }
    Ok(())
}

/// The connections of a report that `sel` shows, once for every printer of its summary, and their endings.
pub fn shown<'a>(r: &'a FileReport, sel: &Selection) -> Shown<'a> {
    Shown {
        report: r,
        conns: r.conns.iter().filter(|c| sel.shows(c)).collect(),
        endings: r.endings(sel),
    }
}

/// The IP facts of a timeline's segments, in the timeline's order (it sorts the kept segments by time).
fn ip_facts_of(r: &FileReport, id: u32, t: &Timeline) -> Vec<Option<IpFacts>> {
    let (Some(segs), Some(ip)) = (r.kept.get(&id), r.kept_ip.get(&id)) else {
        return Vec::new();
    };
    let mut by_segment: HashMap<_, Vec<Option<IpFacts>>> = HashMap::new();
    for (s, f) in segs.iter().zip(ip).rev() {
        by_segment
            .entry((s.ts, s.seq, s.ack, s.flags, s.len))
            .or_default()
            .push(*f);
    }
    t.segments()
        .map(|w| {
            let s = &w.segment;
            by_segment
                .get_mut(&(s.ts, s.seq, s.ack, s.flags, s.len))
                .and_then(Vec::pop)
                .flatten()
        })
        .collect()
}

/// The timeline of connection `id` of a report, its states inferred; a saved run's own connection with the run's
/// socket calls.
fn conn_timeline(r: &FileReport, id: u32) -> Timeline {
    let c = &r.conns[id as usize];
    let sides = Sides {
        a: c.client.socket(),
        b: c.server.socket(),
        a_label: format!("client {}", c.client.socket()),
        b_label: format!("server {}", c.server.socket()),
    };
    let segs = r.kept.get(&id).map(Vec::as_slice).unwrap_or(&[]);
    let saved = r
        .saved_run
        .as_ref()
        .filter(|s| (s.pair.a, s.pair.b) == (sides.a, sides.b));
    match saved {
        Some(s) => timeline::build(
            Sides::for_pair(&s.pair),
            &s.pair.calls,
            segs,
            States::Inferred,
        ),
        None => timeline::build(sides, &[], segs, States::Inferred),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::{Style, TimelineFormat};

    use crate::testing::Notes;

    fn config(files: &[&str], format: TimelineFormat) -> Config {
        Config {
            files: files.iter().map(|f| f.to_string()).collect(),
            conns: Vec::new(),
            every: false,
            selection: Selection::default(),
            bpf: None,
            timeline: TimelinePrinter::new(format, Style::PLAIN),
            rows: format.rows().map(|r| RowsPrinter::new(r, Style::PLAIN)),
            drop_privileges: false,
        }
    }

    #[test]
    fn saved_runs_compare_and_a_missing_file_is_noted_after_them() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures");
        let abrupt = format!("{dir}/abrupt.pcapng");
        let drain = format!("{dir}/drain.pcapng");
        let files = [abrupt.as_str(), "/no/such.pcap", drain.as_str()];
        let mut out = Vec::new();
        let mut notes = Notes::default();
        let e = run(config(&files, TimelineFormat::Csv), &mut out, &mut notes).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Incomplete {
                    failed: 1,
                    inputs: 3
                }
            ),
            "{e}"
        );
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text.lines().count(),
            3,
            "a header and a row per run:\n{text}"
        );
        assert!(
            text.lines().nth(1).unwrap().starts_with("abrupt,"),
            "{text}"
        );
        assert_eq!(notes.0.len(), 1);
        assert!(notes.0[0].starts_with("/no/such.pcap: "), "{:?}", notes.0);
    }

    #[test]
    fn a_diagram_of_runs_is_refused_after_reading_them() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/captures");
        let files = [
            format!("{dir}/abrupt.pcapng"),
            format!("{dir}/drain.pcapng"),
        ];
        let files: Vec<&str> = files.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        let e = run(
            config(&files, TimelineFormat::Ladder),
            &mut out,
            &mut Notes::default(),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--format ladder draws one connection: give one file, or add --conn n"
        );
        assert!(out.is_empty());
    }
}
