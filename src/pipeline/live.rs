//! A live run: bind B's port, start the kernel's trace and the capture on it, play the scenario, end both, and
//! merge the socket calls, the segments and the kernel's own events into one timeline; the binary calls [`run`].
//!
//! Everything this asks of the operating system goes through one [`Door`], taken as a parameter by [`run_with`]:
//! [`Kernel`] is the real one (sockets on loopback, libpcap on `lo`), and `pipeline::replay::Replay` plays a saved
//! run back through the same code, so the orchestration — what is asked in which order, the warnings, how each
//! failure becomes a [`RunError`] — is tested without privileges. Nothing here touches the kernel itself.

use std::fmt;
use std::net::SocketAddr;

use crate::explain::timeline::{self, Sides, States, Timeline};
use crate::model::kernel::KernelTrace;
use crate::model::run::{Mode, PairRun};
use crate::model::seen::Seen;
use crate::model::segment::PAYLOAD_KEPT;
use crate::os::capture::{self, CaptureError, Captured, FinishError, LiveCapture};
use crate::os::privilege::{self, PrivilegeError};
use crate::os::tracefs::{TraceError, Tracer};
use crate::scenario::{ScenarioError, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub ipv6: bool,
    /// Capture the wire (needs CAP_NET_RAW); false shows the socket calls alone.
    pub capture: bool,
    /// Read the kernel's own events (reset reasons, state changes, errors; needs root for tracefs). When they
    /// cannot be read, the run goes on without them and [`LiveRun::kernel_missing`] says why.
    pub kernel: bool,
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct LiveRun {
    pub pair: PairRun,
    pub captured: Option<Captured>,
    pub timeline: Timeline,
    pub kernel: String,
    /// What the kernel said through its tracepoints, when it was asked and could answer.
    pub trace: Option<KernelTrace>,
    /// Why the kernel's events were asked for and are missing: one line saying what is missing and what it costs.
    pub kernel_missing: Option<String>,
}

impl LiveRun {
    /// True when the capture may be missing segments (its end marker was lost, or the kernel dropped packets):
    /// the timeline is incomplete and its story may be wrong. Without a capture there is no wire to miss.
    pub fn incomplete(&self) -> bool {
        self.captured
            .as_ref()
            .is_some_and(Captured::may_miss_segments)
    }

    /// Warnings a reader must see next to the table: a capture that may be incomplete, or none at all.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        match &self.captured {
            None => w.push(
                "the wire column is empty: --no-capture was given, so no segment was captured"
                    .to_string(),
            ),
            Some(c) => {
                if c.dropped > 0 {
                    w.push(format!(
                        "libpcap reports {} dropped packet(s): the wire column may be missing segments; run again",
                        c.dropped
                    ));
                }
                if !c.complete {
                    w.push(
                        "the end-of-capture marker never arrived: the wire column may be missing the last segments"
                            .to_string(),
                    );
                }
                if !c.undecoded.is_empty() {
                    w.push(format!(
                        "{} captured frame(s) could not be decoded as TCP",
                        c.undecoded.len()
                    ));
                }
            }
        }
        if let Some(trace) = &self.trace {
            if trace.lost_events > 0 {
                w.push(format!(
                    "the kernel lost {} trace event(s) before they were read: its rows may be missing some",
                    trace.lost_events
                ));
            }
            if !trace.unreadable.is_empty() {
                w.push(format!(
                    "{} line(s) of the kernel's trace could not be read, e.g. {:?}",
                    trace.unreadable.len(),
                    trace.unreadable[0]
                ));
            }
        }
        w
    }
}

#[derive(Debug)]
pub enum RunError {
    /// B's port could not be bound.
    Bind(std::io::Error),
    Capture(CaptureError),
    Scenario(ScenarioError),
    /// The capture failed after it had started.
    CaptureRead(FinishError),
    /// Root or a capability could not be given up once the captures were open: nothing was played.
    Privileges(PrivilegeError),
    /// The scenario waits on something this run cannot see (a captured segment with --no-capture, a kernel event
    /// without the kernel's trace): refused before anything was played, rather than timing out.
    Unseeable(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(e) => write!(f, "cannot bind a loopback port for B: {e}"),
            RunError::Capture(e) => write!(f, "{e}"),
            RunError::Scenario(e) => write!(f, "the scenario could not finish: {e}"),
            RunError::CaptureRead(e) => write!(f, "{e}"),
            RunError::Privileges(e) => write!(f, "{e}; nothing was played"),
            RunError::Unseeable(why) => write!(f, "{why}; nothing was played"),
        }
    }
}

/// The cause of a bind or scenario failure is its source; a capture failure is shown as itself (its message is the
/// run's), so its source is the capture error's own.
impl std::error::Error for RunError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RunError::Bind(e) => Some(e),
            RunError::Scenario(e) => Some(e),
            RunError::Capture(e) => e.source(),
            RunError::CaptureRead(e) => e.source(),
            RunError::Privileges(e) => Some(e),
            RunError::Unseeable(_) => None,
        }
    }
}

/// Everything a live run asks of the operating system, in the order [`run_with`] asks it: bind B's port, start
/// the kernel's trace and the capture on it (unless told not to), play the scenario, finish the capture, finish
/// the trace, name the kernel. Socket calls, captured frames and kernel events are stamped on one clock
/// (CLOCK_REALTIME for the real door), so they merge into one timeline.
///
/// `Stage`, `Capture` and `Trace` are the door's own handles: what `bind`, `start_capture` and `start_trace`
/// opened, handed back when it is played or finished, so none can happen twice or before it was opened.
pub trait Door {
    /// B's port, bound and waiting for the scenario.
    type Stage;
    /// A capture running on B's port.
    type Capture;
    /// A trace of the kernel's TCP events on B's port, being set up.
    type PendingTrace;
    /// A trace of the kernel's TCP events on B's port, reading.
    type Trace;

    /// Bind B's port for `mode` on 127.0.0.1 (::1 with `ipv6`); nothing is sent yet. B's address is what the
    /// capture filters on.
    fn bind(&mut self, mode: Mode, ipv6: bool) -> std::io::Result<(Self::Stage, SocketAddr)>;

    /// Start capturing what goes to and from `b`; returns once nothing sent afterwards can be missed. Each
    /// segment is also added to `seen` as it is read (what the scenario's `wait P sends …` looks at).
    fn start_capture(&mut self, b: SocketAddr, seen: &Seen) -> Result<Self::Capture, CaptureError>;

    /// Give up root and every capability, once every port, capture and trace of the runs is open and before any
    /// scenario is played (tcpdump's `-Z`): the one point of a live run where privileges end.
    fn drop_privileges(&mut self) -> Result<(), PrivilegeError>;

    /// Start setting up a reading of the kernel's TCP events of every connection with an end on `b`'s port (A's
    /// connection to B has B's port as its peer port, so both sockets' events are seen). The set-up may go on
    /// while the capture starts; [`Door::trace_ready`] waits for it. Each event is also added to `seen` as it is
    /// read (what the scenario's `wait P kernel …` looks at).
    fn start_trace(&mut self, b: SocketAddr, seen: &Seen) -> Self::PendingTrace;

    /// Wait until the trace reads: nothing the kernel does afterwards is missed.
    fn trace_ready(&mut self, pending: Self::PendingTrace) -> Result<Self::Trace, TraceError>;

    /// End the trace and hand back the kernel's events in time order.
    fn finish_trace(&mut self, trace: Self::Trace) -> Result<KernelTrace, TraceError>;

    /// Play the scenario on the bound port: A's and B's socket calls, as the kernel answered them. Its waits on
    /// the wire and on the kernel's events look at `seen`, as the capture and the trace fill it.
    fn play(&mut self, stage: Self::Stage, seen: &Seen) -> Result<PairRun, ScenarioError>;

    /// End the capture with its end-of-capture marker, and hand back what it saw and how complete it is.
    fn finish_capture(&mut self, capture: Self::Capture) -> Result<Captured, FinishError>;

    /// The kernel that played the run, as `Linux 6.18.…`.
    fn kernel_release(&mut self) -> String;
}

/// The real door: the demo pair's sockets on loopback, and libpcap on the loopback device. It gives up this
/// process's privileges when asked only if made with [`Kernel::dropping_privileges`] (the `run` command);
/// [`Kernel::default`] keeps them, for tests and programs that play runs in their own process.
#[derive(Debug, Default, Clone, Copy)]
pub struct Kernel {
    drop_privileges: bool,
}

impl Kernel {
    /// The door of the `run` command: privileges end at [`Door::drop_privileges`].
    pub fn dropping_privileges() -> Kernel {
        Kernel {
            drop_privileges: true,
        }
    }
}

impl Door for Kernel {
    type Stage = Stage;
    type Capture = LiveCapture;
    type PendingTrace = std::thread::JoinHandle<Result<Tracer, TraceError>>;
    type Trace = Tracer;

    fn bind(&mut self, mode: Mode, ipv6: bool) -> std::io::Result<(Stage, SocketAddr)> {
        let stage = Stage::bind(mode, ipv6)?;
        let b = stage.addr();
        Ok((stage, b))
    }

    /// On loopback; for a link scenario, on A's end of its veth, opened inside A's namespace (before privileges
    /// end, like every capture), so it sees A's wire.
    fn start_capture(&mut self, b: SocketAddr, seen: &Seen) -> Result<LiveCapture, CaptureError> {
        let seen = Some(seen.clone());
        match crate::os::netns::capture_point(b.ip()) {
            Some((ns_a, veth_a)) => {
                let _inside = crate::os::netns::enter(&ns_a)
                    .map_err(|e| CaptureError::Pcap(e.to_string()))?;
                capture::start_into(&veth_a, b, seen)
            }
            None => capture::start_into(capture::LOOPBACK, b, seen),
        }
    }

    fn drop_privileges(&mut self) -> Result<(), PrivilegeError> {
        if self.drop_privileges {
            privilege::drop_privileges()?;
        }
        Ok(())
    }

    fn play(&mut self, stage: Stage, seen: &Seen) -> Result<PairRun, ScenarioError> {
        stage.play(seen.clone())
    }

    /// A link scenario's namespaces are removed once its capture has its end marker.
    fn finish_capture(&mut self, capture: LiveCapture) -> Result<Captured, FinishError> {
        let b = capture.b();
        let captured = capture.finish();
        crate::os::netns::release(b.ip());
        captured
    }

    /// The kernel takes tens of ms to make an instance and switch its clock: done on a thread of its own while
    /// the capture opens.
    fn start_trace(&mut self, b: SocketAddr, seen: &Seen) -> Self::PendingTrace {
        let port = b.port();
        let seen = seen.clone();
        std::thread::spawn(move || Tracer::start_into(&[port], seen))
    }

    fn trace_ready(&mut self, pending: Self::PendingTrace) -> Result<Tracer, TraceError> {
        pending.join().unwrap_or_else(|_| {
            Err(TraceError::NoTracefs {
                detail: "the thread setting up the trace panicked".into(),
            })
        })
    }

    /// The instance is removed by a detached process, so the run does not wait while the kernel frees it.
    fn finish_trace(&mut self, trace: Tracer) -> Result<KernelTrace, TraceError> {
        trace.finish_in_background()
    }

    fn kernel_release(&mut self) -> String {
        crate::os::kernel_release()
    }
}

/// Play `mode` once on this kernel, capturing it unless told not to; this process keeps its privileges.
pub fn run(mode: Mode, opts: Options) -> Result<LiveRun, RunError> {
    run_with(&mut Kernel::default(), mode, opts)
}

/// Play `mode` once through `door`, capturing it and tracing the kernel unless told not to. A trace that cannot
/// start or finish costs the kernel rows, not the run: [`LiveRun::kernel_missing`] says so.
pub fn run_with<D: Door>(door: &mut D, mode: Mode, opts: Options) -> Result<LiveRun, RunError> {
    let mut runs = run_all_with(door, &[mode], opts)?;
    Ok(runs.remove(0))
}

/// Play `modes` one after another through `door`: every port bound and every capture started first, then the
/// door's privileges given up, then each mode played and its capture finished.
pub fn run_all_with<D: Door>(
    door: &mut D,
    modes: &[Mode],
    opts: Options,
) -> Result<Vec<LiveRun>, RunError> {
    for &mode in modes {
        unseeable(mode, opts.capture, opts.kernel, None)?;
    }
    // every trace's set-up goes on while the ports are bound and the captures start; then each is waited for
    let mut starting = Vec::with_capacity(modes.len());
    for &mode in modes {
        starting.push(start(door, mode, opts)?);
    }
    let opened: Vec<Opened<D>> = starting.into_iter().map(|s| ready(door, s)).collect();
    for (o, &mode) in opened.iter().zip(modes) {
        unseeable(mode, true, true, o.kernel_cause.as_deref())?;
    }
    door.drop_privileges().map_err(RunError::Privileges)?;
    opened.into_iter().map(|o| play(door, o)).collect()
}

/// Refuse, before anything is played, a scenario that waits on a captured segment when nothing is captured, or on
/// a kernel event when the kernel's trace is not read (`missing`: why it could not start).
fn unseeable(
    mode: Mode,
    capture: bool,
    kernel: bool,
    missing: Option<&str>,
) -> Result<(), RunError> {
    let Ok(script) = crate::scenario::script(mode) else {
        return Ok(());
    };
    let at = |s: &crate::scenario::At<crate::scenario::Step>| {
        format!("mode {mode}, line {} (`{}`)", s.line, s.text)
    };
    if let (false, Some(w)) = (capture, script.wire_wait()) {
        return Err(RunError::Unseeable(format!(
            "{} waits on a captured segment, and --no-capture was given: run it with the capture",
            at(w)
        )));
    }
    match (kernel, missing, script.kernel_wait()) {
        (false, _, Some(w)) => Err(RunError::Unseeable(format!(
            "{} waits on the kernel's events, and --no-kernel was given: run it with them (as root)",
            at(w)
        ))),
        (true, Some(why), Some(w)) => Err(RunError::Unseeable(format!(
            "{} waits on the kernel's events: {why}",
            at(w)
        ))),
        _ => Ok(()),
    }
}

/// A run made ready: B's port bound, its capture and the kernel's trace running; nothing sent yet.
struct Opened<D: Door> {
    stage: D::Stage,
    seen: Seen,
    capture: Option<D::Capture>,
    trace: Option<D::Trace>,
    /// Why the kernel's trace could not start, when it could not: with what it costs the timeline, and alone.
    kernel_missing: Option<String>,
    kernel_cause: Option<String>,
}

/// A run being made ready: B's port bound, its capture running, the kernel's trace being set up.
struct Starting<D: Door> {
    stage: D::Stage,
    seen: Seen,
    capture: Option<D::Capture>,
    pending: Option<D::PendingTrace>,
}

fn start<D: Door>(door: &mut D, mode: Mode, opts: Options) -> Result<Starting<D>, RunError> {
    let (stage, b_addr) = door.bind(mode, opts.ipv6).map_err(RunError::Bind)?;
    let seen = Seen::new();
    let pending = opts.kernel.then(|| door.start_trace(b_addr, &seen));
    let capture = if opts.capture {
        let c = door
            .start_capture(b_addr, &seen)
            .map_err(RunError::Capture)?;
        seen.set_wire();
        Some(c)
    } else {
        None
    };
    Ok(Starting {
        stage,
        seen,
        capture,
        pending,
    })
}

/// Wait for the trace; one that cannot start costs its rows, not the run.
fn ready<D: Door>(door: &mut D, s: Starting<D>) -> Opened<D> {
    let (trace, kernel_missing, kernel_cause) = match s.pending.map(|p| door.trace_ready(p)) {
        Some(Ok(t)) => {
            s.seen.set_kernel();
            (Some(t), None, None)
        }
        Some(Err(e)) => (None, Some(e.to_string()), Some(e.cause())),
        None => (None, None, None),
    };
    Opened {
        stage: s.stage,
        seen: s.seen,
        capture: s.capture,
        trace,
        kernel_missing,
        kernel_cause,
    }
}

fn play<D: Door>(door: &mut D, opened: Opened<D>) -> Result<LiveRun, RunError> {
    let mut kernel_missing = opened.kernel_missing;
    let tracer = opened.trace;
    let pair = door
        .play(opened.stage, &opened.seen)
        .map_err(RunError::Scenario)?;
    let mut captured = match opened.capture {
        Some(live) => Some(door.finish_capture(live).map_err(RunError::CaptureRead)?),
        None => None,
    };
    // the timeline keeps a preview of each payload, as analyze does (the frames keep what was captured)
    for s in captured.iter_mut().flat_map(|c| c.segments.iter_mut()) {
        s.payload.truncate(PAYLOAD_KEPT);
    }
    let trace = tracer.and_then(|t| {
        door.finish_trace(t)
            .map_err(|e| kernel_missing = Some(e.to_string()))
            .ok()
    });
    let segments = captured
        .as_ref()
        .map(|c| c.segments.as_slice())
        .unwrap_or(&[]);
    let events = trace.as_ref().map_or(&[][..], |t| t.events.as_slice());
    let timeline = timeline::build_with_kernel(
        Sides::for_pair(&pair),
        &pair.calls,
        segments,
        events,
        States::Recorded,
    );
    Ok(LiveRun {
        pair,
        captured,
        timeline,
        kernel: door.kernel_release(),
        trace,
        kernel_missing,
    })
}
