//! The two ends of a connection: which end ([`Side`]: client or server, Zeek's orig and resp), where it is
//! ([`Endpoint`]: an address and port), and the pair of them a packet travels between ([`FlowKey`]).

use std::net::{IpAddr, SocketAddr};

/// The two ends of a connection: the client opened it (sent the first SYN), the server answered. Zeek's
/// originator and responder (`orig`/`resp`); every "which end" inside `track` is one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    Client,
    Server,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "client",
            Side::Server => "server",
        }
    }
    pub fn other(self) -> Side {
        match self {
            Side::Client => Side::Server,
            Side::Server => Side::Client,
        }
    }
    pub(crate) fn index(self) -> usize {
        match self {
            Side::Client => 0,
            Side::Server => 1,
        }
    }
}

/// An address and port in 20 bytes (a `SocketAddr` takes 32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub ip: IpAddr,
    pub port: u16,
}

impl Endpoint {
    pub fn from_socket(a: SocketAddr) -> Endpoint {
        Endpoint {
            ip: a.ip(),
            port: a.port(),
        }
    }
    pub fn socket(self) -> SocketAddr {
        SocketAddr::new(self.ip, self.port)
    }
}

/// A 4-tuple. [`Conn::is_flow`] matches it in either direction; hashing puts it in a canonical order first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FlowKey(pub(crate) Endpoint, pub(crate) Endpoint);
