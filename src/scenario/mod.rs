//! The embedded pair: A (client) and B (server) on loopback, real sockets in this process, playing a scenario.
//! Produces socket calls; knows nothing of capture or drawing.
//!
//! A scenario is a file in a small line-per-step language (`parse.rs`, docs/scenarios.md): the shipped ones are
//! scenarios/*.scenario built into the binary (`shipped.rs`), a teacher's own is read by `run --scenario`. The
//! player (`play.rs`) turns its steps into calls through `os`; `expect.rs` judges a run against its expectations.
//!
//! Steps wait for real conditions (bytes queued, a thread blocked in recv(), a state reached), never for fixed
//! sleeps unless the file asks for one, and every wait is bounded, so a run is fast, gives the same story each
//! time, and cannot hang. A step that cannot go on ends the run with a [`ScenarioError`] naming its line.

mod expect;
mod lex;
mod parse;
mod play;
mod predict;
mod script;
mod shipped;
mod wait;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::model::run::{Mode, PairRun};
use crate::model::seen::Seen;
use crate::os::netns::Pair;
use crate::os::sockdestroy::Destroyer;
use crate::os::socket;

pub use expect::{Evidence, Verdict, check};
pub use parse::{ParseError, errno_named, parse};
pub use predict::{Question, agrees, questions};
pub use script::{At, Call, Expect, Flag, KernelWait, Script, Step, Wait, Want};
pub use wait::{Addrs, ScenarioError, awaited, seen_now};

/// A's message in the single-message modes: long enough that reading one byte leaves plenty unread.
pub const MESSAGE: &[u8] = b"Hello B! Please read all of this.\n";

/// The scenario `mode` plays, read from its file.
pub fn script(mode: Mode) -> Result<Script, ParseError> {
    parse(shipped::text(mode))
}

/// The text of `mode`'s scenario file (shipped, or the one a file-mode carries).
pub fn text(mode: Mode) -> &'static str {
    shipped::text(mode)
}

/// A teacher's scenario file as a mode to play: parsed (so that a mistake is told before anything is opened) and
/// kept whole, so a saved run of it carries its text.
pub fn load(text: &str) -> Result<Mode, ParseError> {
    let s = parse(text)?;
    Ok(Mode::file(s.name, s.summary, text.to_string()))
}

/// A scenario ready to play: B's port is bound (so a capture can filter on it) and nothing has been sent yet.
pub struct Stage {
    mode: Mode,
    script: Script,
    listener: socket::Listener,
    /// Started here, before the run gives up its privileges, when a step destroys a socket.
    destroyer: Option<Destroyer>,
    /// A link scenario's namespaces, with A's socket already made inside A's (both need root).
    net: Option<(Pair, socket::Sock)>,
    rec: socket::Recorder,
}

impl Stage {
    /// Bind B's port on 127.0.0.1 (or ::1), a port the kernel picks so that several runs can go on at once.
    pub fn bind(mode: Mode, ipv6: bool) -> std::io::Result<Stage> {
        let script =
            script(mode).map_err(|e| std::io::Error::other(format!("scenario {mode}: {e}")))?;
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        let rec = socket::Recorder::default();
        let (listener, net) = if script.links() {
            if ipv6 {
                return Err(std::io::Error::other(format!(
                    "scenario {mode} plays over IPv4 in namespaces of its own: leave out --ipv6"
                )));
            }
            let (listener, pair, a) = in_namespaces(&script, &rec).map_err(|e| {
                std::io::Error::other(format!(
                    "scenario {mode} plays over a veth in network namespaces of its own (run as root): {e}"
                ))
            })?;
            (listener, Some((pair, a)))
        } else {
            // `port closed` (refused) needs a port nobody listens on: bound but not listening, so no one else
            // takes it.
            (socket::Listener::bind(ip, !script.port_closed)?, None)
        };
        let destroyer = if script.destroys() {
            let d = Destroyer::start().map_err(|e| {
                std::io::Error::other(format!("cannot start the SOCK_DESTROY helper: {e}"))
            })?;
            Some(d)
        } else {
            None
        };
        Ok(Stage {
            mode,
            script,
            listener,
            destroyer,
            net,
            rec,
        })
    }

    /// B's address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    /// Play the scenario; `seen` is what the run's capture and trace see as it plays.
    pub fn play(self, seen: Seen) -> Result<PairRun, ScenarioError> {
        play::play(
            self.mode,
            &self.script,
            play::Setup {
                listener: self.listener,
                destroyer: self.destroyer,
                net: self.net,
                rec: self.rec,
                seen,
            },
        )
    }
}

/// A link scenario's stage: a pair of namespaces, B's port bound inside B's and A's socket made inside A's, while
/// this process may still enter them.
fn in_namespaces(
    script: &Script,
    rec: &socket::Recorder,
) -> Result<(socket::Listener, Pair, socket::Sock), Box<dyn std::error::Error + Send + Sync>> {
    let pair = Pair::create()?;
    let listener = {
        let _in_b = pair.enter(false)?;
        socket::Listener::bind(IpAddr::V4(pair.addr_b), !script.port_closed)?
    };
    let a = {
        let _in_a = pair.enter(true)?;
        socket::Sock::new(crate::model::calls::Peer::A, false, rec)?
    };
    Ok((listener, pair, a))
}
