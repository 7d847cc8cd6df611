//! A live run: bind B's port, open the capture on it, play the scenario, end the capture, and merge the socket
//! calls and the segments into one timeline; the binary calls [`run`].
//!
//! Everything this asks of the operating system goes through one [`Door`], taken as a parameter by [`run_with`]:
//! [`Kernel`] is the real one (sockets on loopback, libpcap on `lo`), and `pipeline::replay::Replay` plays a saved
//! run back through the same code, so the orchestration — what is asked in which order, the warnings, how each
//! failure becomes a [`RunError`] — is tested without privileges. Nothing here touches the kernel itself.

use std::fmt;
use std::net::SocketAddr;

use crate::explain::timeline::{self, Sides, States, Timeline};
use crate::model::run::{Mode, PairRun};
use crate::os::capture::{self, CaptureError, Captured, FinishError, LiveCapture};
use crate::os::privilege::{self, PrivilegeError};
use crate::scenario::{ScenarioError, Stage};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    pub ipv6: bool,
    /// Capture the wire (needs CAP_NET_RAW); false shows the socket calls alone.
    pub capture: bool,
}

/// One finished run.
#[derive(Debug, Clone)]
pub struct LiveRun {
    pub pair: PairRun,
    pub captured: Option<Captured>,
    pub timeline: Timeline,
    pub kernel: String,
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
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(e) => write!(f, "cannot bind a loopback port for B: {e}"),
            RunError::Capture(e) => write!(f, "{e}"),
            RunError::Scenario(e) => write!(f, "the scenario could not finish: {e}"),
            RunError::CaptureRead(e) => write!(f, "{e}"),
            RunError::Privileges(e) => write!(f, "{e}; nothing was played"),
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
        }
    }
}

/// Everything a live run asks of the operating system, in the order [`run_with`] asks it: bind B's port, start
/// the capture on it (unless told not to), play the scenario, finish the capture, name the kernel. Socket calls and
/// captured frames are stamped by one clock (CLOCK_REALTIME for the real door), so they merge into one timeline.
///
/// `Stage` and `Capture` are the door's own handles: what `bind` and `start_capture` opened, handed back when it is
/// played or finished, so neither can happen twice or before it was opened.
pub trait Door {
    /// B's port, bound and waiting for the scenario.
    type Stage;
    /// A capture running on B's port.
    type Capture;

    /// Bind B's port for `mode` on 127.0.0.1 (::1 with `ipv6`); nothing is sent yet. B's address is what the
    /// capture filters on.
    fn bind(&mut self, mode: Mode, ipv6: bool) -> std::io::Result<(Self::Stage, SocketAddr)>;

    /// Start capturing what goes to and from `b`; returns once nothing sent afterwards can be missed.
    fn start_capture(&mut self, b: SocketAddr) -> Result<Self::Capture, CaptureError>;

    /// Give up root and every capability, once every port, capture and trace of the runs is open and before any
    /// scenario is played (tcpdump's `-Z`): the one point of a live run where privileges end.
    fn drop_privileges(&mut self) -> Result<(), PrivilegeError>;

    /// Play the scenario on the bound port: A's and B's socket calls, as the kernel answered them.
    fn play(&mut self, stage: Self::Stage) -> Result<PairRun, ScenarioError>;

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

    fn bind(&mut self, mode: Mode, ipv6: bool) -> std::io::Result<(Stage, SocketAddr)> {
        let stage = Stage::bind(mode, ipv6)?;
        let b = stage.addr();
        Ok((stage, b))
    }

    fn start_capture(&mut self, b: SocketAddr) -> Result<LiveCapture, CaptureError> {
        capture::start(b)
    }

    fn drop_privileges(&mut self) -> Result<(), PrivilegeError> {
        if self.drop_privileges {
            privilege::drop_privileges()?;
        }
        Ok(())
    }

    fn play(&mut self, stage: Stage) -> Result<PairRun, ScenarioError> {
        stage.play()
    }

    fn finish_capture(&mut self, capture: LiveCapture) -> Result<Captured, FinishError> {
        capture.finish()
    }

    fn kernel_release(&mut self) -> String {
        crate::os::kernel_release()
    }
}

/// Play `mode` once on this kernel, capturing it unless told not to; this process keeps its privileges.
pub fn run(mode: Mode, opts: Options) -> Result<LiveRun, RunError> {
    run_with(&mut Kernel::default(), mode, opts)
}

/// Play `mode` once through `door`, capturing it unless told not to.
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
    let mut opened = Vec::with_capacity(modes.len());
    for &mode in modes {
        opened.push(open(door, mode, opts)?);
    }
    door.drop_privileges().map_err(RunError::Privileges)?;
    opened.into_iter().map(|o| play(door, o)).collect()
}

/// A run made ready: B's port bound, its capture running; nothing sent yet.
struct Opened<D: Door> {
    stage: D::Stage,
    capture: Option<D::Capture>,
}

fn open<D: Door>(door: &mut D, mode: Mode, opts: Options) -> Result<Opened<D>, RunError> {
    let (stage, b_addr) = door.bind(mode, opts.ipv6).map_err(RunError::Bind)?;
    let capture = if opts.capture {
        Some(door.start_capture(b_addr).map_err(RunError::Capture)?)
    } else {
        None
    };
    Ok(Opened { stage, capture })
}

fn play<D: Door>(door: &mut D, opened: Opened<D>) -> Result<LiveRun, RunError> {
    let pair = door.play(opened.stage).map_err(RunError::Scenario)?;
    let captured = match opened.capture {
        Some(live) => Some(door.finish_capture(live).map_err(RunError::CaptureRead)?),
        None => None,
    };
    let segments = captured
        .as_ref()
        .map(|c| c.segments.as_slice())
        .unwrap_or(&[]);
    let timeline = timeline::build(
        Sides::for_pair(&pair),
        &pair.calls,
        segments,
        States::Recorded,
    );
    Ok(LiveRun {
        pair,
        captured,
        timeline,
        kernel: door.kernel_release(),
    })
}
