//! The embedded pair: A (client) and B (server) on loopback, real sockets in this process, playing one scenario
//! per mode. Produces socket calls; knows nothing of capture or drawing.
//!
//! Steps wait for real conditions (bytes queued, a thread blocked in recv(), a state reached), never for fixed
//! sleeps, and every wait is bounded, so a run is fast, gives the same story each time, and cannot hang.
//!
//! Makes no system call of its own: sockets, socket states and threads' states are asked of `os`. A step that
//! cannot go on ends the run with a [`ScenarioError`] saying what it waited for, never a panic.

mod modes;
mod wait;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::model::run::{Mode, PairRun};
use crate::os::socket;

pub use wait::ScenarioError;

/// A scenario ready to play: B's port is bound (so a capture can filter on it) and nothing has been sent yet.
pub struct Stage {
    mode: Mode,
    listener: socket::Listener,
}

impl Stage {
    /// Bind B's port on 127.0.0.1 (or ::1), a port the kernel picks so that several runs can go on at once.
    pub fn bind(mode: Mode, ipv6: bool) -> std::io::Result<Stage> {
        let ip = if ipv6 {
            IpAddr::V6(Ipv6Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        };
        // `refused` needs a port nobody listens on: bound but not listening, so no one else takes it meanwhile.
        let listener = socket::Listener::bind(ip, mode != Mode::Refused)?;
        Ok(Stage { mode, listener })
    }

    /// B's address.
    pub fn addr(&self) -> SocketAddr {
        self.listener.addr
    }

    /// Play the scenario.
    pub fn play(self) -> Result<PairRun, ScenarioError> {
        modes::play(self.mode, self.listener)
    }
}
