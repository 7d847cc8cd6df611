//! conn.log's `conn_state`: Zeek's `conn_state` function (base/protocols/conn/main.zeek) for TCP.

use std::fmt;

use crate::track::zeek::endpoint::EndpointState::{
    Closed, Established, Inactive, Partial, Reset, SynAckSent, SynSent,
};
use crate::track::zeek::endpoint::TcpEndpoint;

/// Zeek's verdict on a connection, named by its conn.log codes (Display prints the code).
#[allow(clippy::upper_case_acronyms)] // Zeek's own codes, so they read the same in both
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnState {
    /// Connection attempt seen, no reply.
    S0,
    /// Connection established, not terminated.
    S1,
    /// Normal establishment and termination.
    SF,
    /// Connection attempt rejected.
    REJ,
    /// Established, and the originator's close attempt seen (but no reply from the responder).
    S2,
    /// Established, and the responder's close attempt seen (but no reply from the originator).
    S3,
    /// Established, the originator aborted (sent a RST).
    RSTO,
    /// Responder sent a RST.
    RSTR,
    /// Originator sent a SYN followed by a RST, never saw a SYN-ACK from the responder.
    RSTOS0,
    /// Responder sent a SYN-ACK followed by a RST, never saw a SYN from the (purported) originator.
    RSTRH,
    /// Originator sent a SYN followed by a FIN, never saw a SYN-ACK from the responder (half open).
    SH,
    /// Responder sent a SYN-ACK followed by a FIN, never saw a SYN from the originator.
    SHR,
    /// No SYN seen, just midstream traffic.
    OTH,
}

impl ConnState {
    /// The code conn.log prints.
    pub fn code(self) -> &'static str {
        match self {
            ConnState::S0 => "S0",
            ConnState::S1 => "S1",
            ConnState::SF => "SF",
            ConnState::REJ => "REJ",
            ConnState::S2 => "S2",
            ConnState::S3 => "S3",
            ConnState::RSTO => "RSTO",
            ConnState::RSTR => "RSTR",
            ConnState::RSTOS0 => "RSTOS0",
            ConnState::RSTRH => "RSTRH",
            ConnState::SH => "SH",
            ConnState::SHR => "SHR",
            ConnState::OTH => "OTH",
        }
    }
}

impl fmt::Display for ConnState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.code())
    }
}

/// Zeek's `conn_state` from the two endpoints and the history, branch for branch.
pub(super) fn conn_state(orig: &TcpEndpoint, resp: &TcpEndpoint, history: &str) -> ConnState {
    let (os, rs) = (orig.state, resp.state);
    let o_inactive = matches!(os, Inactive | Partial);
    let r_inactive = matches!(rs, Inactive | Partial);
    if rs == Reset {
        if matches!(os, SynSent | SynAckSent)
            || (os == Reset && orig.size(resp) == 0 && resp.size(orig) == 0)
        {
            ConnState::REJ
        } else if o_inactive {
            ConnState::RSTRH
        } else {
            ConnState::RSTR
        }
    } else if os == Reset {
        if r_inactive {
            if rstos0_history(history) {
                ConnState::RSTOS0
            } else {
                ConnState::OTH
            }
        } else {
            ConnState::RSTO
        }
    } else if rs == Closed && os == Closed {
        ConnState::SF
    } else if os == Closed {
        if r_inactive {
            ConnState::SH
        } else {
            ConnState::S2
        }
    } else if rs == Closed {
        if o_inactive {
            ConnState::SHR
        } else {
            ConnState::S3
        }
    } else if os == SynSent && rs == Inactive {
        ConnState::S0
    } else if os == Established && rs == Established {
        ConnState::S1
    } else {
        ConnState::OTH
    }
}

/// Zeek's pattern `/\^?S[^HAFGIQ]*R.*/`, matched against the whole history.
fn rstos0_history(h: &str) -> bool {
    let h = h.strip_prefix('^').unwrap_or(h);
    let Some(rest) = h.strip_prefix('S') else {
        return false;
    };
    for c in rest.chars() {
        if c == 'R' {
            return true;
        }
        if "HAFGIQ".contains(c) {
            return false;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_prints_zeeks_code() {
        assert_eq!(ConnState::RSTOS0.to_string(), "RSTOS0");
        assert_eq!(format!("{:<4}|", ConnState::SF), "SF  |");
        assert_eq!(ConnState::REJ.code(), "REJ");
    }

    #[test]
    fn rstos0_pattern() {
        assert!(rstos0_history("SR"));
        assert!(rstos0_history("^SdR"));
        assert!(!rstos0_history("SaFR"));
        assert!(!rstos0_history("R"));
    }
}
