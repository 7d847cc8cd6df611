//! Zeek's `TCP_Endpoint` (analyzer/protocol/tcp/TCP_Endpoint.h and .cc): what Zeek knows of one side of a
//! connection, and `Size()`, the payload bytes it sent.

use crate::model::segment::SeqNumber;
use crate::track::ends::Side;
use crate::track::zeek::history::{History, LastLogged};

/// Zeek's endpoint states (`TCP_ENDPOINT_INACTIVE` … `TCP_ENDPOINT_RESET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointState {
    /// No SYN (or other packets) seen for this side.
    #[default]
    Inactive,
    /// SYN seen, but no ack.
    SynSent,
    /// SYN-ACK seen, no initial SYN.
    SynAckSent,
    /// Data seen, but no SYN.
    Partial,
    /// SYN-ACK seen (implicit for a SYN).
    Established,
    /// FIN seen.
    Closed,
    /// RST seen.
    Reset,
}

/// One side of a connection as Zeek tracks it (Zeek's `TCP_Endpoint`, without reassembly, windows and timers).
/// Sequence numbers are 32-bit: we do not count wraps.
#[derive(Debug, Clone, Copy, Default)]
pub struct TcpEndpoint {
    pub state: EndpointState,
    pub prev_state: EndpointState,
    pub(super) start_seq: SeqNumber,
    pub(super) last_seq: SeqNumber,
    pub(super) ack_seq: SeqNumber,
    /// The last SYN, FIN and RST logged in the history, so a repeat with a new sequence number is logged again.
    pub(super) hist_last: LastLogged,
    /// Retransmitted data packets, and zero-window advertisements: letters 'T'/'W' are logged at 1, 10, 100 …
    rxmit: u32,
    zero_win: u32,
    pub fin_cnt: u16,
    pub rst_cnt: u16,
    /// Zeek's reassembler's `last_reassem_seq` less one (so that 0, the default, is its start at 1): the bytes
    /// of this side's stream delivered or given up as a gap.
    reassembled: u32,
    /// Zeek reported this side as closing.
    pub did_close: bool,
}

impl TcpEndpoint {
    /// Zeek's `SetState`: the previous state is kept only when the state changes.
    #[inline]
    pub(super) fn set_state(&mut self, s: EndpointState) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    /// Zeek's `InitStartSeq`, `InitAckSeq` (both `start`) and `InitLastSeq` (`last`).
    #[inline]
    pub(super) fn init_seqs(&mut self, start: SeqNumber, last: SeqNumber) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    /// Zeek's `DidRxmit`: a retransmission, logged as 'T' on a logarithmic scale.
    pub(super) fn did_rxmit(&mut self, history: &mut History, side: Side) {
        history.scaled_entry(side, &mut self.rxmit, b'T');
    }

    /// Zeek's reassembler's `last_reassem_seq`: the stream is delivered (or given up) below it.
    #[inline]
    pub(super) fn last_reassem_seq(&self) -> u64 {
        u64::from(self.reassembled) + 1
    }

    /// Move `last_reassem_seq` (sequence numbers are 32-bit here: past 4 GiB it stays at the top).
    #[inline]
    pub(super) fn set_last_reassem_seq(&mut self, seq: u64) {
        self.reassembled = u32::try_from(seq - 1).unwrap_or(u32::MAX);
    }

    /// Zeek's `ZeroWindow`: a zero window advertised, logged as 'W' on a logarithmic scale.
    pub(super) fn zero_window(&mut self, history: &mut History, side: Side) {
        history.scaled_entry(side, &mut self.zero_win, b'W');
    }

    /// Zeek's `TCP_Endpoint::Size()`: payload bytes by sequence numbers (so retransmissions count once).
    pub fn size(&self, peer: &TcpEndpoint) -> u64 {
        if self.prev_state == EndpointState::SynSent
            && self.state == EndpointState::Reset
            && peer.state == EndpointState::Inactive
            && self.ack_seq != self.start_seq
        {
            return 0;
        }
        let last = self.last_seq.since(self.start_seq);
        let ack = self.ack_seq.since(self.start_seq);
        // Both are ahead of start; a negative distance (bogus ack) reads as huge, so take it only when sane.
        let mut size = u64::from(if (ack as i32) > (last as i32) {
            ack
        } else {
            last
        });
        if (size as u32 as i32) < 0 {
            size = 0;
        }
        // Neither the SYN's nor the FIN's sequence number is payload.
        size = size.saturating_sub(1);
        if self.fin_cnt > 0 && size != 0 {
            size -= 1;
        }
        size
    }
}
