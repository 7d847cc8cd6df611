//! TCP connection states (RFC 9293 §3.3.2), printed with their RFC names.
//!
//! Used both for what the kernel reports (TCP_INFO, /proc/net/tcp) and for what a capture lets us infer.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TcpState {
    Established,
    SynSent,
    SynReceived,
    FinWait1,
    FinWait2,
    TimeWait,
    Closed,
    CloseWait,
    LastAck,
    Listen,
    Closing,
}

impl TcpState {
    /// The state for a Linux `tcp_state` number (include/net/tcp_states.h), as TCP_INFO and /proc/net/tcp give it.
    pub fn from_linux(n: u8) -> Option<TcpState> {
        Some(match n {
            1 => TcpState::Established,
            2 => TcpState::SynSent,
            3 => TcpState::SynReceived,
            4 => TcpState::FinWait1,
            5 => TcpState::FinWait2,
            6 => TcpState::TimeWait,
            7 => TcpState::Closed,
            8 => TcpState::CloseWait,
            9 => TcpState::LastAck,
            10 => TcpState::Listen,
            11 => TcpState::Closing,
            // 12 is TCP_NEW_SYN_RECV, a request socket not yet a full one
            12 => TcpState::SynReceived,
            _ => return None,
        })
    }

    /// The RFC name, as people write it (`FIN-WAIT-2`); Linux tools write `FIN_WAIT2`, see [`TcpState::linux_name`].
    pub fn rfc_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN-SENT",
            TcpState::SynReceived => "SYN-RECEIVED",
            TcpState::FinWait1 => "FIN-WAIT-1",
            TcpState::FinWait2 => "FIN-WAIT-2",
            TcpState::TimeWait => "TIME-WAIT",
            TcpState::Closed => "CLOSED",
            TcpState::CloseWait => "CLOSE-WAIT",
            TcpState::LastAck => "LAST-ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }

    /// The state whose [`TcpState::linux_name`] is `name`.
    pub fn from_linux_name(name: &str) -> Option<TcpState> {
        (1..=11)
            .filter_map(TcpState::from_linux)
            .find(|s| s.linux_name() == name)
    }

    /// The name `ss` and the kernel use (`FIN_WAIT2`, `CLOSE`).
    pub fn linux_name(self) -> &'static str {
        match self {
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynReceived => "SYN_RECV",
            TcpState::FinWait1 => "FIN_WAIT1",
            TcpState::FinWait2 => "FIN_WAIT2",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Closed => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::Closing => "CLOSING",
        }
    }
}

impl fmt::Display for TcpState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.linux_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_numbers_map_to_states() {
        assert_eq!(TcpState::from_linux(1), Some(TcpState::Established));
        assert_eq!(TcpState::from_linux(8), Some(TcpState::CloseWait));
        assert_eq!(TcpState::from_linux(6).unwrap().to_string(), "TIME_WAIT");
        assert_eq!(TcpState::from_linux(5).unwrap().rfc_name(), "FIN-WAIT-2");
        assert_eq!(TcpState::from_linux(0), None);
        assert_eq!(TcpState::from_linux(13), None);
        assert_eq!(
            TcpState::from_linux_name("FIN_WAIT2"),
            Some(TcpState::FinWait2)
        );
        assert_eq!(TcpState::from_linux_name("nonsense"), None);
    }
}
