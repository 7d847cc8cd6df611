//! Zeek's view of a TCP connection: the endpoint state machine of its TCP analyzer, the `history` letters and the
//! `conn_state` verdict of conn.log, computed the way Zeek computes them so a Zeek user reads ours at a glance.
//!
//! Laid out to be read beside Zeek's sources, with Zeek's names in snake_case:
//! - here, `TCPSessionAdapter::Process` (packet_analysis/protocol/tcp/TCPSessionAdapter.cc) as
//!   [`ZeekConn::process`], and the static steps it calls in order: `get_segment_len`, `init_endpoint`,
//!   `update_history` (in `history`), `update_window`, `init_peer`, `update_ack_seq`, `update_last_seq`,
//!   `UpdateStateMachine`;
//! - `state_machine`: `UpdateStateMachine` and one `Update*State` per endpoint state;
//! - `endpoint`: `TCP_Endpoint` (analyzer/protocol/tcp/TCP_Endpoint.h) and its `Size()`;
//! - `history`: the history letters (`CheckHistory`, `AddHistory`, `ScaledHistoryEntry`);
//! - `conn_state`: `conn_state` of base/protocols/conn/main.zeek, as the [`ConnState`] enum;
//! - `seq`: Zeek's sequence arithmetic (`seq_delta`, `TOO_LARGE_SEQ_DELTA`).
//!
//! Zeek's originator is our [`Side::Client`], its responder our [`Side::Server`].
//!
//! - `reassem`: `TCP_Reassembler`, reduced to its content gaps (`missed_bytes`, 'G').
//!
//! Left out, on purpose: checksum validation ('C': like tshark we count frames with bad checksums, Zeek drops
//! them), window tracking beyond zero windows, weirds and events, sequence
//! wraps, Zeek's port-based role flip for connections that start mid-stream (we keep the first sender as
//! originator, as the issue defines the client). Every field is fixed-size but the ranges seen above a hole, kept
//! apart and only while there is one: a finished connection costs the same few dozen bytes whatever its packet
//! count.

mod conn_state;
mod endpoint;
mod history;
mod reassem;
mod seq;
mod state_machine;

use crate::model::segment::{SeqNumber, TcpFlags};
use crate::track::ends::Side;
use crate::track::packet::TcpPacket;

pub use conn_state::ConnState;
pub use endpoint::{EndpointState, TcpEndpoint};
pub use history::History;

use endpoint::EndpointState::{Closed, Established, Inactive, Partial, Reset, SynAckSent, SynSent};
use seq::{is_too_large, one_before, seq_delta};

/// Zeek's per-connection TCP state: two endpoints, the history and the content gaps.
#[derive(Debug, Clone, Default)]
pub struct ZeekConn {
    /// [originator, responder], indexed by [`Side`].
    ep: [TcpEndpoint; 2],
    pub history: History,
    /// The content gaps, for the few connections that have a hole or a gap.
    holes: reassem::Holes,
}

impl ZeekConn {
    /// A connection whose roles Zeek flipped on its first packet (a SYN-ACK): history starts with `^`.
    pub fn flipped() -> ZeekConn {
        ZeekConn {
            history: History::flipped(),
            ..ZeekConn::default()
        }
    }

    /// Zeek's endpoint of one side.
    pub fn endpoint(&self, side: Side) -> &TcpEndpoint {
        match side {
            Side::Client => &self.ep[0],
            Side::Server => &self.ep[1],
        }
    }

    /// Zeek's `TCPSessionAdapter::Process`: one packet sent by `side`.
    #[inline]
    pub fn process(&mut self, side: Side, p: &TcpPacket) {
        let [orig, resp] = &mut self.ep;
        let (endpoint, peer) = match side {
            Side::Client => (orig, resp),
            Side::Server => (resp, orig),
        };
        let history = &mut self.history;
        let flags = p.flags;
        let seq_one_past_segment = p.seq + get_segment_len(p.len, flags);

        init_endpoint(endpoint, flags, p.seq, seq_one_past_segment);
        let rel_seq = p.seq.since(endpoint.start_seq);
        let seq_underflow = (rel_seq as i32) < 0;
        history::update_history(
            history,
            side,
            &mut endpoint.hist_last,
            flags,
            rel_seq,
            p.len,
        );
        update_window(history, side, endpoint, peer, p.window, flags);

        if flags.fin() {
            endpoint.fin_cnt = endpoint.fin_cnt.saturating_add(1);
        }
        if flags.rst() {
            endpoint.rst_cnt = endpoint.rst_cnt.saturating_add(1);
        }
        // Zeek's `rel_ack`: the ack relative to the peer's start, 0 when it lies before it (`ack_underflow`)
        let mut rel_ack = 0;
        if flags.ack() {
            if peer.state == Inactive {
                rel_ack = 1;
                init_peer(peer, p.ack);
            } else {
                let delta = seq_delta(p.ack, peer.start_seq);
                rel_ack = u64::try_from(delta).unwrap_or(0);
                if delta >= 0 && !flags.rst() {
                    // acks in RSTs are not trusted
                    update_ack_seq(peer, p.ack);
                }
            }
        }
        update_last_seq(history, side, endpoint, seq_one_past_segment, flags, p.len);

        if state_machine::update_state_machine(side, endpoint, peer, p) {
            endpoint.did_close = true;
        }

        // After the state machine, so that a gap revealed by a FIN or RST is judged by the state it leaves.
        if flags.ack() {
            let (bytes, gaps) = reassem::ack_received(peer, &mut self.holes, side.other(), rel_ack);
            if bytes > 0 && reassem::clean(peer, endpoint) {
                reassem::report_gaps(&mut self.holes, history, side.other(), bytes, gaps);
            }
        }
        // Zeek's reassembler takes only whole payloads, not a RST's, and none from before the side's start.
        if p.len > 0 && p.whole && !flags.rst() && !seq_underflow {
            let data_seq = u64::from(rel_seq) + u64::from(flags.syn());
            reassem::data_sent(endpoint, &mut self.holes, side, data_seq, u64::from(p.len));
        }
    }

    /// conn.log's `conn_state`, exactly as Zeek's `conn_state` decides it.
    pub fn conn_state(&self) -> ConnState {
        conn_state::conn_state(
            self.endpoint(Side::Client),
            self.endpoint(Side::Server),
            self.history.as_str(),
        )
    }

    /// conn.log's `missed_bytes`: bytes in content gaps, both directions.
    pub fn missed_bytes(&self) -> u64 {
        reassem::missed_bytes(&self.holes)
    }

    /// Payload bytes `side` sent: conn.log's `orig_bytes` (client) or `resp_bytes` (server).
    pub fn size(&self, side: Side) -> u64 {
        self.endpoint(side).size(self.endpoint(side.other()))
    }
}

/// Zeek's `get_segment_len`: the sequence space a segment takes (a RST's payload is a diagnostic, not stream
/// data).
#[inline]
fn get_segment_len(payload_len: u32, flags: TcpFlags) -> u32 {
    let seg_len = payload_len
        .wrapping_add(u32::from(flags.syn()))
        .wrapping_add(u32::from(flags.fin()));
    if flags.rst() {
        seg_len.wrapping_sub(payload_len)
    } else {
        seg_len
    }
}

/// Zeek's `init_endpoint`: number the sender's sequence space from its SYN, or as though a SYN came just before
/// its first packet; a new SYN numbers it again.
#[inline]
fn init_endpoint(
    endpoint: &mut TcpEndpoint,
    flags: TcpFlags,
    first_seg_seq: SeqNumber,
    last_seq: SeqNumber,
) {
    match endpoint.state {
        Inactive => {
            if flags.syn() {
                endpoint.init_seqs(first_seg_seq, last_seq);
            } else {
                // A partial connection; and so its first packet is not a retransmission.
                endpoint.init_seqs(one_before(first_seg_seq), first_seg_seq);
            }
        }
        SynSent | SynAckSent => {
            if flags.syn() && first_seg_seq != endpoint.start_seq {
                endpoint.init_seqs(first_seg_seq, last_seq);
            }
        }
        Established | Partial => {
            if flags.syn() {
                // Guess that the connection did not get established and this SYN sets it up.
                endpoint.init_seqs(first_seg_seq, last_seq);
            }
        }
        Reset => {
            if flags.syn() && endpoint.prev_state == Inactive {
                // The earlier RST that numbered this side may have been spoofed.
                endpoint.init_seqs(first_seg_seq, last_seq);
            }
        }
        Closed => {}
    }
}

/// Zeek's `update_window`, of which we keep the zero window: it matters unless it comes with or after a RST,
/// or after the peer's FIN.
#[inline]
fn update_window(
    history: &mut History,
    side: Side,
    endpoint: &mut TcpEndpoint,
    peer: &TcpEndpoint,
    window: u16,
    flags: TcpFlags,
) {
    if window == 0 && !flags.rst() && peer.state != Closed && endpoint.state != Reset {
        endpoint.zero_window(history, side);
    }
}

/// Zeek's `init_peer`: number the peer's bytes as though its SYN had been seen.
#[inline]
fn init_peer(peer: &mut TcpEndpoint, ack_seq: SeqNumber) {
    let s = one_before(ack_seq);
    peer.init_seqs(s, s);
}

/// Zeek's `update_ack_seq`: the highest ack the peer's bytes got, ignoring an ack of 0 far ahead (more likely
/// broken than a large connection that lands on 0).
#[inline]
fn update_ack_seq(endpoint: &mut TcpEndpoint, ack_seq: SeqNumber) {
    let delta_ack = seq_delta(ack_seq, endpoint.ack_seq);
    if ack_seq.0 == 0 && delta_ack > seq::TOO_LARGE_SEQ_DELTA {
        // broken ack
    } else if delta_ack > 0 {
        endpoint.ack_seq = ack_seq;
    }
}

/// Zeek's `update_last_seq`: move the sender's highest sequence number on, or count a retransmission.
#[inline]
fn update_last_seq(
    history: &mut History,
    side: Side,
    endpoint: &mut TcpEndpoint,
    last_seq: SeqNumber,
    flags: TcpFlags,
    len: u32,
) {
    let delta_last = seq_delta(last_seq, endpoint.last_seq);
    if (flags.syn() || flags.rst()) && is_too_large(delta_last) {
        // Sequence numbers of wild SYNs and RSTs are not trusted.
    } else if flags.fin() && endpoint.last_seq == endpoint.start_seq + 1 {
        // Only the SYN and now the FIN seen: trust the FIN even going back (a connection over 2 GB).
        endpoint.last_seq = last_seq;
    } else if endpoint.state == Reset {
        // Sequence numbers after a RST are not trusted.
    } else if delta_last > 0 {
        endpoint.last_seq = last_seq;
    } else if len > 0 {
        endpoint.did_rxmit(history, side);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::conn::Endpoint;

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;
    const R: u16 = TcpFlags::RST;
    const P: u16 = TcpFlags::PSH;

    const C: Side = Side::Client;
    const SV: Side = Side::Server;

    /// A packet as the tracker hands it over; Zeek's state machine reads neither addresses nor times.
    fn packet(flags: u16, seq: u32, ack: u32, window: u16, len: u32) -> TcpPacket {
        let nowhere = Endpoint::from_socket("10.0.0.1:1".parse().unwrap());
        TcpPacket {
            ts: 0,
            src: nowhere,
            dst: nowhere,
            flags: TcpFlags(flags),
            seq: SeqNumber(seq),
            ack: SeqNumber(ack),
            window,
            len,
            ip_len: 40 + len,
            whole: true,
        }
    }

    /// Run packets (side, flags, seq, ack, len) and give (conn_state, history).
    fn run(packets: &[(Side, u16, u32, u32, u32)]) -> (String, String) {
        let mut z = ZeekConn::default();
        for &(side, f, seq, ack, len) in packets {
            z.process(side, &packet(f, seq, ack, 1000, len));
        }
        (z.conn_state().to_string(), z.history.as_str().to_string())
    }

    fn handshake() -> Vec<(Side, u16, u32, u32, u32)> {
        vec![
            (C, S, 100, 0, 0),
            (SV, S | A, 500, 101, 0),
            (C, A, 101, 501, 0),
        ]
    }

    #[test]
    fn clean_close_is_sf() {
        let mut p = handshake();
        p.extend([
            (C, P | A, 101, 501, 5),
            (SV, A, 501, 106, 0),
            (C, F | A, 106, 501, 0),
            (SV, F | A, 501, 107, 0),
            (C, A, 107, 502, 0),
        ]);
        assert_eq!(run(&p), ("SF".into(), "ShADaFf".into()));
    }

    #[test]
    fn unanswered_syn_is_s0_and_rejected_is_rej() {
        assert_eq!(run(&[(C, S, 1, 0, 0)]), ("S0".into(), "S".into()));
        assert_eq!(
            run(&[(C, S, 1, 0, 0), (SV, R | A, 0, 2, 0)]),
            ("REJ".into(), "Sr".into())
        );
    }

    #[test]
    fn resets_by_each_side() {
        let mut p = handshake();
        p.push((C, R | A, 101, 501, 0));
        assert_eq!(run(&p).0, "RSTO");
        let mut p = handshake();
        p.push((SV, R, 501, 0, 0));
        assert_eq!(run(&p), ("RSTR".into(), "ShAr".into()));
        // SYN then RST from the originator, no answer
        assert_eq!(
            run(&[(C, S, 1, 0, 0), (C, R, 2, 0, 0)]),
            ("RSTOS0".into(), "SR".into())
        );
    }

    #[test]
    fn half_closes() {
        let mut p = handshake();
        p.push((C, F | A, 101, 501, 0));
        assert_eq!(run(&p).0, "S2");
        let mut p = handshake();
        p.push((SV, F | A, 501, 101, 0));
        assert_eq!(run(&p).0, "S3");
        assert_eq!(
            run(&[(C, S, 1, 0, 0), (C, F, 2, 0, 0)]),
            ("SH".into(), "SF".into())
        );
        assert_eq!(run(&handshake()).0, "S1");
    }

    #[test]
    fn midstream_only_is_oth_and_responder_synack_then_rst_is_rstrh() {
        assert_eq!(
            run(&[(C, A | P, 1000, 50, 10), (SV, A, 50, 1010, 0)]),
            ("OTH".into(), "Da".into())
        );
        // responder's SYN-ACK, then its RST; no SYN from the originator
        assert_eq!(
            run(&[(SV, S | A, 500, 101, 0), (SV, R, 501, 0, 0)]).0,
            "RSTRH"
        );
        // responder's SYN-ACK, then its FIN
        assert_eq!(
            run(&[(SV, S | A, 500, 101, 0), (SV, F | A, 501, 101, 0)]).0,
            "SHR"
        );
    }

    #[test]
    fn retransmissions_log_t_at_powers_of_ten() {
        let mut p = handshake();
        p.push((C, P | A, 101, 501, 10));
        for _ in 0..10 {
            p.push((C, P | A, 101, 501, 10));
        }
        let (_, h) = run(&p);
        assert_eq!(h, "ShADTT");
    }

    #[test]
    fn repeated_fin_with_new_seq_is_logged_again_and_multiflag_is_q_or_i() {
        let mut p = handshake();
        p.push((C, F | A, 101, 501, 0));
        p.push((C, F | A, 101, 501, 0));
        assert_eq!(run(&p).1, "ShAF");
        let mut p = handshake();
        p.push((C, F | A, 101, 501, 0));
        p.push((C, F | A, 105, 501, 0));
        assert_eq!(run(&p).1, "ShAFF");
        assert_eq!(run(&[(C, S | F, 1, 0, 0)]).1, "Q");
        assert_eq!(run(&[(C, R | F, 1, 0, 0)]).1, "I");
    }

    #[test]
    fn zero_window_is_w() {
        let mut z = ZeekConn::default();
        z.process(C, &packet(A, 1, 1, 0, 0));
        // Zeek logs the packet kind first, then looks at the window.
        assert_eq!(z.history.as_str(), "AW");
    }

    #[test]
    fn sizes_count_sequence_space() {
        let mut z = ZeekConn::default();
        for &(side, f, seq, ack, len) in &[
            (C, S, 100u32, 0u32, 0u32),
            (SV, S | A, 500, 101, 0),
            (C, A | P, 101, 501, 20),
            (C, A | P, 101, 501, 20),
            (SV, A | P, 501, 121, 7),
            (C, F | A, 121, 508, 0),
        ] {
            z.process(side, &packet(f, seq, ack, 100, len));
        }
        assert_eq!((z.size(C), z.size(SV)), (20, 7));
    }
}
