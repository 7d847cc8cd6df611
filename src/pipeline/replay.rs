//! A fake [`Door`]: a run saved by `run --write` (pcapng: the frames, and the pair's socket calls in a comment)
//! played back through `live::run_with` as if this kernel had just played it. It touches no socket and needs no
//! privilege, so the live run's orchestration is tested anywhere: what is asked in which order ([`Replay::asked`]),
//! the warnings a capture brings (drops, a lost end marker, undecoded frames), and which [`RunError`] each failure
//! becomes.
//!
//! The kernel's events come back as the file saved them (none for a run saved without them).
//!
//! It serves the view a live run's scenario waits on (`wait B sends FIN`, `wait A kernel receives RST`) the same
//! way: the saved segments as the capture starts, the saved events once the trace is ready; and its `play` holds
//! each such wait of the mode's scenario against that view, failing as the player would when the run never
//! showed what it waits for.
//!
//! The replay answers what the file holds unless told otherwise: the builder methods change the capture's report
//! or make one step fail, once. It refuses (with an error from `bind`) to play a mode or address family other than
//! the saved one, rather than hand back a run that is not what was asked.
//!
//! [`RunError`]: crate::pipeline::live::RunError

use std::fmt;
use std::io;
use std::net::SocketAddr;

use crate::capfile::CaptureReader;
use crate::capfile::saved::{self, SavedRun};
use crate::model::frame::RawFrame;
use crate::model::kernel::KernelTrace;
use crate::model::run::{Mode, PairRun};
use crate::model::seen::Seen;
use crate::os::capture::{CaptureError, Captured, FinishError};
use crate::os::privilege::PrivilegeError;
use crate::os::tracefs::TraceError;
use crate::pipeline::live::Door;
use crate::scenario::{self, Addrs, ScenarioError, Step};
use crate::wire::decode::{self, Skip};

/// What a run asked of the door, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Asked {
    Bind { mode: Mode, ipv6: bool },
    StartCapture(SocketAddr),
    DropPrivileges,
    StartTrace(SocketAddr),
    TraceReady,
    Play,
    FinishCapture,
    FinishTrace,
    KernelRelease,
}

/// A saved run, ready to be played back through [`crate::pipeline::live::run_with`].
#[derive(Debug)]
pub struct Replay {
    saved: SavedRun,
    captured: Captured,
    fail_bind: Option<io::Error>,
    fail_capture: Option<CaptureError>,
    fail_scenario: Option<ScenarioError>,
    fail_finish: Option<FinishError>,
    fail_trace: Option<TraceError>,
    fail_trace_finish: Option<TraceError>,
    /// The view the trace fills once it is ready.
    trace_view: Option<Seen>,
    /// Everything asked so far, in order.
    pub asked: Vec<Asked>,
}

/// A saved run that cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The file could not be opened or read as a capture.
    Unreadable { path: String, detail: String },
    /// The file holds no run: it was not written by `run --write` as pcapng.
    NoSavedRun { path: String },
    /// A frame of a link type the live capture would not have decoded.
    UnknownLink { path: String, link: u32 },
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Unreadable { path, detail } => write!(f, "{path}: {detail}"),
            ReplayError::NoSavedRun { path } => write!(f, "{path} carries no saved run"),
            ReplayError::UnknownLink { path, link } => {
                write!(f, "{path}: link type {link} is not decoded")
            }
        }
    }
}

impl std::error::Error for ReplayError {}

/// The capture a saved file holds: its frames, decoded as the live capture decodes them.
fn captured_in(path: &str) -> Result<Captured, ReplayError> {
    let unreadable = |detail: String| ReplayError::Unreadable {
        path: path.to_string(),
        detail,
    };
    let mut reader = CaptureReader::open(path).map_err(|e| unreadable(e.to_string()))?;
    let mut captured = Captured {
        segments: Vec::new(),
        frames: Vec::new(),
        linktype: 1,
        undecoded: Vec::new(),
        dropped: 0,
        complete: true,
        nanosecond: true,
    };
    while let Some(frame) = reader.next_frame().map_err(|e| unreadable(e.to_string()))? {
        let link = frame.link.map_err(|link| ReplayError::UnknownLink {
            path: path.to_string(),
            link,
        })?;
        captured.linktype = link.number();
        match decode::decode(link, frame.ts, frame.data) {
            Ok(seg) => {
                captured.segments.push(seg);
                captured.frames.push(RawFrame {
                    ts: frame.ts,
                    data: frame.data.to_vec(),
                    orig_len: frame.orig_len,
                });
            }
            Err(skip) => captured.undecoded.push(skip),
        }
    }
    Ok(captured)
}

impl Replay {
    /// The run saved in `path`, with the capture it holds: complete, nothing dropped.
    pub fn open(path: &str) -> Result<Replay, ReplayError> {
        let captured = captured_in(path)?;
        let saved = saved::read_run(path).ok_or_else(|| ReplayError::NoSavedRun {
            path: path.to_string(),
        })?;
        Ok(Replay::new(saved, captured))
    }

    /// A run and the capture to answer with.
    pub fn new(saved: SavedRun, captured: Captured) -> Replay {
        Replay {
            saved,
            captured,
            fail_bind: None,
            fail_capture: None,
            fail_scenario: None,
            fail_finish: None,
            fail_trace: None,
            fail_trace_finish: None,
            trace_view: None,
            asked: Vec::new(),
        }
    }

    /// The run being replayed.
    pub fn pair(&self) -> &PairRun {
        &self.saved.pair
    }

    /// The capture reports `n` packets dropped by the kernel.
    pub fn dropping(mut self, n: u32) -> Replay {
        self.captured.dropped = n;
        self
    }

    /// The capture's end marker never arrives: the capture ends incomplete.
    pub fn losing_the_marker(mut self) -> Replay {
        self.captured.complete = false;
        self
    }

    /// The capture also saw these frames it could not decode as TCP.
    pub fn with_undecoded(mut self, skips: Vec<Skip>) -> Replay {
        self.captured.undecoded.extend(skips);
        self
    }

    /// Binding B's port fails with `e`.
    pub fn failing_bind(mut self, e: io::Error) -> Replay {
        self.fail_bind = Some(e);
        self
    }

    /// Opening the capture fails with `e`.
    pub fn failing_capture(mut self, e: CaptureError) -> Replay {
        self.fail_capture = Some(e);
        self
    }

    /// The scenario fails with `e`.
    pub fn failing_scenario(mut self, e: ScenarioError) -> Replay {
        self.fail_scenario = Some(e);
        self
    }

    /// Finishing the capture fails with `e`.
    pub fn failing_finish(mut self, e: FinishError) -> Replay {
        self.fail_finish = Some(e);
        self
    }

    /// Starting the kernel's trace fails with `e` (no rights, no tracefs, an old kernel).
    pub fn failing_trace(mut self, e: TraceError) -> Replay {
        self.fail_trace = Some(e);
        self
    }

    /// Finishing the kernel's trace fails with `e`.
    pub fn failing_trace_finish(mut self, e: TraceError) -> Replay {
        self.fail_trace_finish = Some(e);
        self
    }

    /// The trace answers with these events instead of the saved ones.
    pub fn with_trace(mut self, trace: Option<KernelTrace>) -> Replay {
        self.saved.trace = trace;
        self
    }
}

impl Door for Replay {
    /// The replay holds everything itself: its handles carry nothing.
    type Stage = ();
    type Capture = ();
    type PendingTrace = ();
    type Trace = ();

    fn bind(&mut self, mode: Mode, ipv6: bool) -> io::Result<((), SocketAddr)> {
        self.asked.push(Asked::Bind { mode, ipv6 });
        if let Some(e) = self.fail_bind.take() {
            return Err(e);
        }
        let pair = &self.saved.pair;
        if mode != pair.mode || ipv6 != pair.b.is_ipv6() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "this replay holds mode {} on {}, not mode {mode} on {}",
                    pair.mode,
                    if pair.b.is_ipv6() { "IPv6" } else { "IPv4" },
                    if ipv6 { "IPv6" } else { "IPv4" }
                ),
            ));
        }
        Ok(((), pair.b))
    }

    /// The saved segments are what the capture "reads" at once.
    fn start_capture(&mut self, b: SocketAddr, seen: &Seen) -> Result<(), CaptureError> {
        self.asked.push(Asked::StartCapture(b));
        if let Some(e) = self.fail_capture.take() {
            return Err(e);
        }
        for seg in &self.captured.segments {
            seen.add_segment(seg);
        }
        Ok(())
    }

    /// The replay holds no privilege: it notes the point where the live run gives them up.
    fn drop_privileges(&mut self) -> Result<(), PrivilegeError> {
        self.asked.push(Asked::DropPrivileges);
        Ok(())
    }

    /// The saved calls; each wait of the scenario on the wire or the kernel's events is held against `seen`.
    fn play(&mut self, (): (), seen: &Seen) -> Result<PairRun, ScenarioError> {
        self.asked.push(Asked::Play);
        if let Some(e) = self.fail_scenario.take() {
            return Err(e);
        }
        let pair = &self.saved.pair;
        let script = scenario::script(pair.mode).map_err(|e| ScenarioError(e.to_string()))?;
        let addrs = Addrs {
            a: Some(pair.a),
            b: pair.b,
        };
        for s in &script.steps {
            let Step::Wait(w) = &s.item else { continue };
            if scenario::seen_now(w, seen, addrs) == Some(false) {
                return Err(ScenarioError(format!(
                    "mode {}, line {} ({}): the replayed run never showed {}",
                    pair.mode,
                    s.line,
                    s.text,
                    scenario::awaited(w, seen, addrs)
                )));
            }
        }
        Ok(pair.clone())
    }

    fn finish_capture(&mut self, (): ()) -> Result<Captured, FinishError> {
        self.asked.push(Asked::FinishCapture);
        match self.fail_finish.take() {
            Some(e) => Err(e),
            None => Ok(self.captured.clone()),
        }
    }

    fn start_trace(&mut self, b: SocketAddr, seen: &Seen) {
        self.asked.push(Asked::StartTrace(b));
        self.trace_view = Some(seen.clone());
    }

    /// Once ready, the trace "reads" the saved events at once.
    fn trace_ready(&mut self, (): ()) -> Result<(), TraceError> {
        self.asked.push(Asked::TraceReady);
        if let Some(e) = self.fail_trace.take() {
            return Err(e);
        }
        if let (Some(seen), Some(trace)) = (self.trace_view.take(), &self.saved.trace) {
            seen.add_events(trace.events.iter().map(|e| &e.what));
        }
        Ok(())
    }

    /// The saved run's kernel events; none for a run saved without them.
    fn finish_trace(&mut self, (): ()) -> Result<KernelTrace, TraceError> {
        self.asked.push(Asked::FinishTrace);
        match self.fail_trace_finish.take() {
            Some(e) => Err(e),
            None => Ok(self.saved.trace.clone().unwrap_or_default()),
        }
    }

    fn kernel_release(&mut self) -> String {
        self.asked.push(Asked::KernelRelease);
        self.saved.kernel.clone()
    }
}
