//! TCP connection states (RFC 9293 §3.3.2), as one enum like smoltcp's `State`.
//!
//! Used both for what the kernel reports (TCP_INFO, sock_diag, /proc/net/tcp) and for what a capture lets us
//! infer, so the two can be set side by side. `Display` prints the name Linux and `ss` use (`FIN_WAIT2`, `CLOSE`):
//! every table, CSV, JSON and saved file writes that one. [`TcpState::rfc_name`] is for prose (`FIN-WAIT-2`).
//! A number or name the kernel gives that we do not know is `None`, never a panic.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TcpState {
    /// Both directions open: data flows.
    Established,
    /// Sent a SYN, waiting for the SYN-ACK.
    SynSent,
    /// Got a SYN and answered it, waiting for the ACK of its SYN-ACK.
    SynReceived,
    /// Sent its FIN, not yet acknowledged.
    FinWait1,
    /// Its FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// Both FINs acknowledged; waits 2×MSL so old segments die out before the 4-tuple is used again.
    TimeWait,
    /// No connection (Linux: `CLOSE`).
    Closed,
    /// Got the peer's FIN; the application has not closed yet.
    CloseWait,
    /// Got the peer's FIN, then sent its own; waiting for its ACK.
    LastAck,
    /// Waiting for a SYN.
    Listen,
    /// Both sides sent FIN at once; waiting for the ACK of its own.
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
        TcpState::ALL.into_iter().find(|s| s.linux_name() == name)
    }

    /// Every state, in Linux's numbering order (`TCP_ESTABLISHED` = 1 … `TCP_CLOSING` = 11).
    pub const ALL: [TcpState; 11] = [
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynReceived,
        TcpState::FinWait1,
        TcpState::FinWait2,
        TcpState::TimeWait,
        TcpState::Closed,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::Closing,
    ];

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

    #[test]
    fn display_is_the_linux_name_and_names_round_trip() {
        for (n, s) in (1..).zip(TcpState::ALL) {
            assert_eq!(TcpState::from_linux(n), Some(s), "ALL is in Linux's order");
            assert_eq!(s.to_string(), s.linux_name());
            assert_eq!(TcpState::from_linux_name(&s.to_string()), Some(s));
        }
        assert_eq!(TcpState::Closed.to_string(), "CLOSE");
        assert_eq!(TcpState::SynReceived.to_string(), "SYN_RECV");
        assert_eq!(TcpState::FinWait1.rfc_name(), "FIN-WAIT-1");
        assert_eq!(
            TcpState::from_linux(12),
            Some(TcpState::SynReceived),
            "NEW_SYN_RECV reads as SYN_RECV"
        );
    }
}
