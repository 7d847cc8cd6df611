//! `watch`: live capture and the kernel's tracepoints → the live tracker → a line per connection as it ends, with the
//! process on each local end and the why; Ctrl-C or SIGTERM stops it cleanly (capture and trace instance closed,
//! open connections listed, totals, `--write` file complete).
//!
//! Order of the start, and why: the process-lookup helper is forked first (a fork copies one thread: nothing else
//! may be running yet); then the stop signals are caught (so the trace's own signal cleanup stays out of the way),
//! the capture and the trace are opened, the output file's finisher forked, and privileges given up; only then a
//! `-- PROGRAM` is started (as the unprivileged user). The loop waits on the capture at most [`TICK`] at a time.

mod conn;
mod state;

use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::os::capture::{self, CaptureError, FinishError, Stream};
use crate::os::privilege::{self, PrivilegeError};
use crate::os::procmap::{self, Lookups, Owners};
use crate::os::signal;
use crate::os::tracefs::{self, Tracer};
use crate::pipeline::Feedback;
use crate::render::TimelinePrinter;
use crate::render::watch::WatchPrinter;
use crate::track::select::Selection;

pub use state::State;

/// How long the loop waits for the capture before it looks at everything else.
pub const TICK: Duration = Duration::from_millis(50);
/// How long an ended connection waits for late evidence (kernel events, process lookups) before it is reported.
pub const SETTLE: Duration = Duration::from_millis(400);

/// A validated `watch`.
pub struct Config {
    /// The capture device (`lo`, `eth0`, `any`).
    pub device: String,
    /// The user's BPF filter (`--filter`), applied in the kernel with the ports and hosts.
    pub filter: Option<String>,
    /// `--only`, `--port`, `--host` (its `filter` is left empty: the capture applies it).
    pub selection: Selection,
    /// Read the kernel's tracepoints (reset reasons, errnos).
    pub kernel: bool,
    /// Only connections with an end held by this process or its descendants.
    pub pid: Option<u32>,
    /// `-- PROGRAM ARGS`: start it and watch only its sockets.
    pub program: Vec<String>,
    pub idle_timeout: Duration,
    /// `--timeline`: each connection that ended with a RST also as a timeline.
    pub timeline: Option<TimelinePrinter>,
    pub rows: WatchPrinter,
    /// `--write`: the pcapng file, opened already.
    pub write: Option<Box<dyn Write>>,
    /// Whom to become once everything is open, when root (else `nobody`).
    pub user: Option<(String, u32, u32)>,
    pub drop_privileges: bool,
}

#[derive(Debug)]
pub enum Error {
    NoSuchDevice { name: String, existing: Vec<String> },
    NoSuchPid(u32),
    Capture(CaptureError),
    Read(FinishError),
    Privileges(PrivilegeError),
    Program(String, io::Error),
    Output(io::Error),
    Setup(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSuchDevice { name, existing } => write!(
                f,
                "-i {name}: no such capture device; this machine has: {}",
                existing.join(", ")
            ),
            Error::NoSuchPid(pid) => write!(f, "--pid {pid}: no such process"),
            Error::Capture(CaptureError::NoPermission(detail)) => write!(
                f,
                "watching needs root (capture and the kernel's tracepoints): run it with sudo ({detail})"
            ),
            Error::Capture(e) => write!(f, "{e}"),
            Error::Read(e) => write!(f, "{e}"),
            Error::Privileges(e) => write!(f, "{e}; nothing was watched"),
            Error::Program(p, e) => write!(f, "cannot start {p}: {e}"),
            Error::Output(e) => write!(f, "cannot write output: {e}"),
            Error::Setup(e) => f.write_str(e),
        }
    }
}

impl std::error::Error for Error {}

/// What the watch ended with, for the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// libpcap dropped packets: some connections may be missing segments.
    pub dropped: bool,
}

/// The capture filter: TCP, the ports and hosts asked for, and the user's expression.
pub fn capture_filter(sel: &Selection, filter: Option<&str>) -> String {
    let mut parts = vec!["tcp".to_string()];
    if !sel.ports.is_empty() {
        let p: Vec<String> = sel.ports.iter().map(|p| format!("port {p}")).collect();
        parts.push(format!("({})", p.join(" or ")));
    }
    if !sel.hosts.is_empty() {
        let h: Vec<String> = sel.hosts.iter().map(|h| format!("host {h}")).collect();
        parts.push(format!("({})", h.join(" or ")));
    }
    if let Some(f) = filter {
        parts.push(format!("({f})"));
    }
    parts.join(" and ")
}

/// Check what can be checked before anything is opened: the device and the pid.
fn check(config: &Config) -> Result<(), Error> {
    if config.device != "any" {
        let existing = capture::device_names();
        if !existing.is_empty() && !existing.contains(&config.device) {
            return Err(Error::NoSuchDevice {
                name: config.device.clone(),
                existing,
            });
        }
    }
    if let Some(pid) = config.pid
        && !procmap::exists(pid)
    {
        return Err(Error::NoSuchPid(pid));
    }
    Ok(())
}

/// What is open while the watch runs.
struct Open {
    stream: Stream,
    tracer: Option<Tracer>,
    trace_stats: Vec<std::fs::File>,
    kernel: Option<std::sync::mpsc::Receiver<Vec<crate::model::kernel::KernelEvent>>>,
    lost: Arc<AtomicU64>,
    answers: std::sync::mpsc::Receiver<procmap::Answer>,
    lookups: Lookups,
}

/// Open the capture, the trace and the lookups (see the module's header for the order).
fn open(config: &Config, feedback: &mut dyn Feedback) -> Result<Open, Error> {
    let owners = Owners::start();
    signal::catch_stop().map_err(|e| Error::Setup(format!("cannot catch SIGINT/SIGTERM: {e}")))?;
    let filter = capture_filter(&config.selection, config.filter.as_deref());
    let stream = Stream::open(&config.device, &filter).map_err(Error::Capture)?;
    let lost = Arc::new(AtomicU64::new(0));
    let (mut tracer, mut kernel) = (None, None);
    if config.kernel {
        let (tx, rx) = std::sync::mpsc::channel();
        match Tracer::start_live(
            &config.selection.ports,
            config.timeline.is_some(),
            tx,
            Arc::clone(&lost),
        ) {
            Ok(t) => {
                tracer = Some(t);
                kernel = Some(rx);
            }
            Err(e) => feedback.note(&format!(
                "the kernel's events cannot be read ({e}): the why of each reset rests on the segments alone"
            )),
        }
    }
    let trace_stats = tracer.as_ref().map(Tracer::open_stats).unwrap_or_default();
    let (atx, answers) = std::sync::mpsc::channel();
    let lookups = Lookups::start(owners, atx)
        .map_err(|e| Error::Setup(format!("cannot start the process lookups: {e}")))?;
    Ok(Open {
        stream,
        tracer,
        trace_stats,
        kernel,
        lost,
        answers,
        lookups,
    })
}

/// Watch until SIGINT/SIGTERM (or the program's end), printing to `out`; notes go to `feedback`.
pub fn run(
    mut config: Config,
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<Ended, Error> {
    check(&config)?;
    let mut open = open(&config, feedback)?;
    let dropped_to = if config.drop_privileges {
        let d = privilege::drop_privileges_to(config.user.clone()).map_err(Error::Privileges)?;
        d.user
            .map(|(name, uid, _)| format!("; running as {name} (uid {uid})"))
    } else {
        None
    };
    let mut child = match config.program.split_first() {
        Some((prog, args)) => Some(
            std::process::Command::new(prog)
                .args(args)
                .spawn()
                .map_err(|e| Error::Program(prog.clone(), e))?,
        ),
        None => None,
    };
    let only_pid = config.pid.or(child.as_ref().map(std::process::Child::id));
    feedback.note(&format!(
        "watching {} ({}){}{}; Ctrl-C to stop",
        config.device,
        capture_filter(&config.selection, config.filter.as_deref()),
        match open.tracer {
            Some(ref t) => format!("; kernel events from {}", t.instance_path().display()),
            None => String::new(),
        },
        dropped_to.unwrap_or_default()
    ));
    let start = Instant::now();
    let mut state = State::new(&mut config, open.stream.link(), only_pid);
    // lines go out together at each tick (a write per line cost more than the line); see watch_loop
    let mut out = io::BufWriter::with_capacity(OUT_BUFFER, out);
    let stopped_by = match watch_loop(&mut open, &mut state, &mut child, &mut out) {
        Ok(by) => by,
        Err(e) => {
            // a closed output pipe (`| head`) or a failed read: a program we started does not outlive the watch
            end_program(child);
            return Err(e);
        }
    };
    stop(open, state, stopped_by, start, child, &mut out, feedback)
}

/// Bytes of lines held at most between two ticks.
const OUT_BUFFER: usize = 1 << 16;

/// The loop: read frames, kernel events and lookup answers; report what is due. Returns what stopped it.
fn watch_loop(
    open: &mut Open,
    state: &mut State,
    child: &mut Option<std::process::Child>,
    out: &mut dyn Write,
) -> Result<String, Error> {
    let mut last_tick = Instant::now();
    loop {
        if let Some(sig) = signal::stop_requested() {
            return Ok(signal::name(sig).to_string());
        }
        if let Some(c) = child
            && let Ok(Some(status)) = c.try_wait()
        {
            return Ok(format!("the end of the program ({status})"));
        }
        open.stream.wait(TICK).map_err(Error::Read)?;
        if read_all(open, state)? >= BUSY_READ {
            // busy: let frames gather for a moment rather than be woken for every few (poll and its wake-ups
            // were half of watch's CPU under load); a quiet capture is read as each frame comes
            std::thread::sleep(BUSY_PAUSE);
        }
        if last_tick.elapsed() >= TICK {
            last_tick = Instant::now();
            state
                .tick(tracefs::reader::realtime_ns(), out)
                .and_then(|()| out.flush())
                .map_err(Error::Output)?;
        }
    }
}

/// Frames read at most between two looks at the rest (kernel events, answers, the tick), so that a capture that
/// never runs dry does not hold up the reports.
const FRAMES_PER_ROUND: usize = 65_536;

/// A read of this many frames or more says the capture is busy; the loop then pauses [`BUSY_PAUSE`] before the
/// next, so that the next read takes what came meanwhile at once.
const BUSY_READ: usize = 16;
const BUSY_PAUSE: Duration = Duration::from_millis(1);

/// What is waiting: frames (up to [`FRAMES_PER_ROUND`]), kernel events, lookup answers. How many frames.
fn read_all(open: &mut Open, state: &mut State) -> Result<usize, Error> {
    let frames = open
        .stream
        .read(FRAMES_PER_ROUND, &mut |ts, data, len| {
            state.frame(ts, data, len)
        })
        .map_err(Error::Read)?;
    state.ask_due(&mut open.lookups);
    if let Some(rx) = &open.kernel {
        while let Ok(events) = rx.try_recv() {
            state.kernel(events);
        }
    }
    while let Ok(a) = open.answers.try_recv() {
        state.answer(a);
    }
    Ok(frames)
}

/// A program we started does not outlive the watch: SIGTERM, and wait for it.
fn end_program(child: Option<std::process::Child>) {
    if let Some(mut c) = child {
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let _ = c.wait();
    }
}

/// The clean stop: trace and capture closed, last evidence read, open connections listed, totals.
fn stop(
    mut open: Open,
    mut state: State,
    stopped_by: String,
    start: Instant,
    child: Option<std::process::Child>,
    out: &mut dyn Write,
    feedback: &mut dyn Feedback,
) -> Result<Ended, Error> {
    end_program(child);
    read_all(&mut open, &mut state)?;
    // the lookups still out get a moment to answer
    let until = Instant::now() + SETTLE;
    while Instant::now() < until && state.waiting_for_answers() {
        std::thread::sleep(Duration::from_millis(10));
        read_all(&mut open, &mut state)?;
    }
    let mut trace_lost = None;
    if let Some(t) = open.tracer.take() {
        let overruns = tracefs::overruns_of(&open.trace_stats);
        match t.finish() {
            Ok(rest) => {
                state.kernel(rest.events);
                trace_lost = Some(rest.lost_events + overruns);
            }
            Err(_) => trace_lost = Some(overruns),
        }
        if let Some(rx) = &open.kernel {
            while let Ok(events) = rx.try_recv() {
                state.kernel(events);
            }
        }
        trace_lost = trace_lost.map(|n| n + open.lost.load(std::sync::atomic::Ordering::Relaxed));
    }
    let drops = open.stream.dropped().map_err(Error::Read)?;
    let (_, aside) = state
        .finish(
            out,
            stopped_by,
            start.elapsed(),
            drops,
            trace_lost,
            open.lookups.refused,
        )
        .map_err(Error::Output)?;
    out.flush().map_err(Error::Output)?;
    drop(open);
    if let Some(text) = aside {
        for line in text.lines().filter(|l| !l.is_empty()) {
            feedback.note(line);
        }
    }
    Ok(Ended { dropped: drops > 0 })
}
