//! Which tracked connections to show: `--only`, `--port`, `--host`, `--filter`. Ids stay those of the whole file.

use std::net::IpAddr;

use crate::track::conn::Conn;
use crate::track::ends::Side;

/// `--only`: which connections to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// Connections with at least one RST.
    Resets,
    /// Connections with at least one FIN and no RST.
    Fins,
    /// Connections with neither FIN nor RST: still open when the capture ended.
    Open,
}

/// Which connections to show. Ids are always those of the whole file, so `--conn 5` and Wireshark's
/// `tcp.stream eq 5` name the same connection whatever the filters.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub only: Option<Only>,
    pub ports: Vec<u16>,
    pub hosts: Vec<IpAddr>,
    /// BPF expression: a connection is shown when at least one of its frames matches.
    pub filter: Option<String>,
}

impl Selection {
    pub fn shows(&self, c: &Conn) -> bool {
        let any_rst = c.first_rst.is_some();
        let any_fin = c.fins(Side::Client) + c.fins(Side::Server) > 0;
        let only = match self.only {
            None => true,
            Some(Only::Resets) => any_rst,
            Some(Only::Fins) => any_fin && !any_rst,
            Some(Only::Open) => !any_fin && !any_rst,
        };
        let port = self.ports.is_empty()
            || self
                .ports
                .iter()
                .any(|&p| c.client.port == p || c.server.port == p);
        let host = self.hosts.is_empty()
            || self
                .hosts
                .iter()
                .any(|&h| c.client.ip == h || c.server.ip == h);
        let bpf = self.filter.is_none() || c.bpf_matched;
        only && port && host && bpf
    }
}
