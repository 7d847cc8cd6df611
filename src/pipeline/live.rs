//! A live run: bind the pair, open the capture on B's port, play the scenario, end the capture, and merge.
//! The glue between `demo`, `capture` and `timeline`; the binary calls this.

use std::fmt;
use std::net::UdpSocket;

use crate::explain::timeline::{self, Sides, States, Timeline};
use crate::model::run::{Mode, PairRun};
use crate::os::capture::{self, CaptureError, Captured};
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
    /// The capture thread failed after it had started.
    CaptureRead(String),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Bind(e) => write!(f, "cannot bind a loopback port for B: {e}"),
            RunError::Capture(e) => write!(f, "{e}"),
            RunError::Scenario(e) => write!(f, "the scenario could not finish: {e}"),
            RunError::CaptureRead(e) => write!(f, "{e}"),
        }
    }
}

/// Play `mode` once, capturing it unless told not to.
pub fn run(mode: Mode, opts: Options) -> Result<LiveRun, RunError> {
    let stage = Stage::bind(mode, opts.ipv6).map_err(RunError::Bind)?;
    let b_addr = stage.addr();
    let live = if opts.capture {
        let filter = capture::filter_for_port(b_addr.port());
        Some(capture::start(capture::LOOPBACK, &filter).map_err(RunError::Capture)?)
    } else {
        None
    };
    let pair = stage.play().map_err(RunError::Scenario)?;
    let captured = match live {
        Some(live) => Some(
            live.finish(|| {
                let any = if b_addr.is_ipv6() {
                    "[::1]:0"
                } else {
                    "127.0.0.1:0"
                };
                UdpSocket::bind(any)?
                    .send_to(b"tcp-close-watch: end of capture", b_addr)
                    .map(|_| ())
            })
            .map_err(RunError::CaptureRead)?,
        ),
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
        kernel: crate::os::kernel_release(),
    })
}
