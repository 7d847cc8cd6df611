//! Zeek's view of a TCP connection: the endpoint state machine of its TCP analyzer, the `history` letters and the
//! `conn_state` verdict of conn.log, computed the way Zeek computes them so a Zeek user reads ours at a glance.
//!
//! Followed from Zeek's `TCPSessionAdapter::Process` (packet_analysis/protocol/tcp) and `Conn::conn_state`
//! (base/protocols/conn/main.zeek). Left out, on purpose: checksum validation ('C': like tshark we count frames
//! with bad checksums, Zeek drops them), content gaps ('G', needs reassembly), Zeek's port-based role flip for
//! connections that start mid-stream (we keep the first sender as originator, as the issue defines the client).
//! Every field is fixed-size: a finished connection costs the same few dozen bytes whatever its packet count.

use crate::model::segment::{SeqNumber, TcpFlags};

/// Zeek's endpoint states (`TCP_INACTIVE` … `TCP_RESET`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointState {
    #[default]
    Inactive,
    SynSent,
    SynAckSent,
    Partial,
    Established,
    Closed,
    Reset,
}

/// Zeek rejects sequence jumps larger than this for SYN/RST packets (TOO_LARGE_SEQ_DELTA).
const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

fn seq_delta(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// One side of a connection as Zeek tracks it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Endpoint {
    pub state: EndpointState,
    pub prev_state: EndpointState,
    start_seq: u32,
    last_seq: u32,
    ack_seq: u32,
    hist_last_syn: u32,
    hist_last_fin: u32,
    hist_last_rst: u32,
    /// Retransmitted data packets, and zero-window advertisements: letters 'T'/'W' are logged at 1, 10, 100 …
    rxmit: u32,
    zero_win: u32,
    pub fin_cnt: u16,
    pub rst_cnt: u16,
    pub did_close: bool,
}

impl Endpoint {
    fn set_state(&mut self, s: EndpointState) {
        if s != self.state {
            self.prev_state = self.state;
            self.state = s;
        }
    }

    fn init_seqs(&mut self, start: u32, last: u32) {
        self.start_seq = start;
        self.ack_seq = start;
        self.last_seq = last;
    }

    /// Zeek's `TCP_Endpoint::Size()`: payload bytes by sequence numbers (so retransmissions count once).
    pub fn size(&self, peer: &Endpoint) -> u64 {
        if self.prev_state == EndpointState::SynSent
            && self.state == EndpointState::Reset
            && peer.state == EndpointState::Inactive
            && self.ack_seq != self.start_seq
        {
            return 0;
        }
        let last = self.last_seq.wrapping_sub(self.start_seq);
        let ack = self.ack_seq.wrapping_sub(self.start_seq);
        // Both are ahead of start; a negative distance (bogus ack) reads as huge, so take it only when sane.
        let mut size = u64::from(if (ack as i32) > (last as i32) {
            ack
        } else {
            last
        });
        if (size as u32 as i32) < 0 {
            size = 0;
        }
        size = size.saturating_sub(1);
        if self.fin_cnt > 0 && size != 0 {
            size -= 1;
        }
        size
    }
}

/// Which history letters were already logged once (Zeek's `hist_seen` bits), per direction.
mod mask {
    pub const SYN: u32 = 1 << 0;
    pub const FIN: u32 = 1 << 1;
    pub const RST: u32 = 1 << 2;
    pub const FIN_RST: u32 = 1 << 3;
    pub const DATA: u32 = 1 << 4;
    pub const ACK: u32 = 1 << 5;
    pub const MULTI: u32 = 1 << 6;
}

/// The history string, kept inline: Zeek logs each letter once per direction except the logarithmic ones, so
/// real histories are short. Past the inline room a `+` marks that more happened (documented in docs/analyze.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    buf: [u8; 30],
    len: u8,
}

impl History {
    fn push(&mut self, c: u8) {
        let n = self.len as usize;
        if n < self.buf.len() - 1 {
            self.buf[n] = c;
            self.len += 1;
        } else if n == self.buf.len() - 1 {
            self.buf[n] = b'+';
            self.len += 1;
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.buf[..self.len as usize]).unwrap_or("")
    }
}

/// Zeek's per-connection TCP state: two endpoints, the history, and whether the roles were flipped.
#[derive(Debug, Clone, Copy, Default)]
pub struct ZeekConn {
    /// [originator, responder]
    pub ep: [Endpoint; 2],
    pub history: History,
    hist_seen: u32,
}

/// What one packet carries, as far as Zeek's state machine cares.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub flags: TcpFlags,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub window: u16,
    /// Payload length from the IP header.
    pub len: u32,
}

impl ZeekConn {
    /// A connection whose roles Zeek flipped on its first packet (a SYN-ACK): history starts with `^`.
    pub fn flipped() -> ZeekConn {
        let mut z = ZeekConn::default();
        z.history.push(b'^');
        z
    }

    fn add_history(&mut self, is_orig: bool, code: u8) {
        self.history.push(if is_orig {
            code
        } else {
            code.to_ascii_lowercase()
        });
    }

    /// Zeek's `CheckHistory`: log the letter the first time, and say whether it had been seen before.
    fn check_history(&mut self, is_orig: bool, bit: u32, code: u8) -> bool {
        let bit = if is_orig { bit } else { bit << 16 };
        if self.hist_seen & bit == 0 {
            self.hist_seen |= bit;
            self.add_history(is_orig, code);
            false
        } else {
            true
        }
    }

    /// Zeek's `ScaledHistoryEntry` with base 10: the letter again at the 1st, 10th, 100th … occurrence.
    fn scaled(&mut self, is_orig: bool, which: fn(&mut Endpoint) -> &mut u32, code: u8) {
        let e = &mut self.ep[usize::from(!is_orig)];
        let counter = which(e);
        *counter = counter.saturating_add(1);
        let n = *counter;
        let mut threshold = 1u32;
        while threshold < n {
            match threshold.checked_mul(10) {
                Some(t) => threshold = t,
                None => return,
            }
        }
        if threshold == n {
            self.add_history(is_orig, code);
        }
    }

    /// Feed one packet from the originator (`is_orig`) or the responder.
    pub fn packet(&mut self, is_orig: bool, p: &Packet) {
        let (me, other) = if is_orig { (0, 1) } else { (1, 0) };
        let flags = p.flags;
        let base_seq = p.seq.0;
        let ack_seq = p.ack.0;
        let len = p.len;
        let mut seg_len = len
            .wrapping_add(u32::from(flags.syn()))
            .wrapping_add(u32::from(flags.fin()));
        if flags.rst() {
            // RST payload is a diagnostic, not stream data.
            seg_len = seg_len.wrapping_sub(len);
        }
        let past = base_seq.wrapping_add(seg_len);

        // init_endpoint
        {
            let e = &mut self.ep[me];
            match e.state {
                EndpointState::Inactive => {
                    if flags.syn() {
                        e.init_seqs(base_seq, past);
                    } else {
                        // As though a SYN came before; and so the first packet is not a retransmission.
                        e.init_seqs(base_seq.wrapping_sub(1), base_seq);
                    }
                }
                EndpointState::SynSent | EndpointState::SynAckSent => {
                    if flags.syn() && base_seq != e.start_seq {
                        e.init_seqs(base_seq, past);
                    }
                }
                EndpointState::Established | EndpointState::Partial => {
                    if flags.syn() {
                        e.init_seqs(base_seq, past);
                    }
                }
                EndpointState::Reset => {
                    if flags.syn() && e.prev_state == EndpointState::Inactive {
                        e.init_seqs(base_seq, past);
                    }
                }
                EndpointState::Closed => {}
            }
        }
        let rel_seq = base_seq.wrapping_sub(self.ep[me].start_seq);

        // update_history
        let bits = u8::from(flags.syn()) + u8::from(flags.fin()) + u8::from(flags.rst());
        if bits > 1 {
            if flags.fin() && flags.rst() {
                self.check_history(is_orig, mask::FIN_RST, b'I');
            } else {
                self.check_history(is_orig, mask::MULTI, b'Q');
            }
        } else if bits == 1 {
            if flags.syn() {
                let code = if flags.ack() { b'H' } else { b'S' };
                if self.check_history(is_orig, mask::SYN, code)
                    && rel_seq != self.ep[me].hist_last_syn
                {
                    self.add_history(is_orig, code);
                }
                self.ep[me].hist_last_syn = rel_seq;
            }
            if flags.fin() {
                let end = rel_seq.wrapping_add(len);
                if self.check_history(is_orig, mask::FIN, b'F') && end != self.ep[me].hist_last_fin
                {
                    self.add_history(is_orig, b'F');
                }
                self.ep[me].hist_last_fin = end;
            }
            if flags.rst() {
                if self.check_history(is_orig, mask::RST, b'R')
                    && rel_seq != self.ep[me].hist_last_rst
                {
                    self.add_history(is_orig, b'R');
                }
                self.ep[me].hist_last_rst = rel_seq;
            }
        } else if len > 0 {
            self.check_history(is_orig, mask::DATA, b'D');
        } else if flags.ack() {
            self.check_history(is_orig, mask::ACK, b'A');
        }

        // update_window: a zero window matters unless it comes with or after a RST, or after the peer's FIN.
        if p.window == 0
            && !flags.rst()
            && self.ep[other].state != EndpointState::Closed
            && self.ep[me].state != EndpointState::Reset
        {
            self.scaled(is_orig, |e| &mut e.zero_win, b'W');
        }

        if flags.fin() {
            self.ep[me].fin_cnt = self.ep[me].fin_cnt.saturating_add(1);
        }
        if flags.rst() {
            self.ep[me].rst_cnt = self.ep[me].rst_cnt.saturating_add(1);
        }

        if flags.ack() {
            let peer = &mut self.ep[other];
            if peer.state == EndpointState::Inactive {
                // init_peer: number the peer's bytes as though its SYN had been seen.
                let s = ack_seq.wrapping_sub(1);
                peer.init_seqs(s, s);
            } else if seq_delta(ack_seq, peer.start_seq) >= 0 && !flags.rst() {
                // update_ack_seq; acks in RSTs are not trusted.
                let d = seq_delta(ack_seq, peer.ack_seq);
                if !(ack_seq == 0 && d > TOO_LARGE_SEQ_DELTA) && d > 0 {
                    peer.ack_seq = ack_seq;
                }
            }
        }

        // update_last_seq
        let e = &mut self.ep[me];
        let delta_last = seq_delta(past, e.last_seq);
        let wild = (flags.syn() || flags.rst())
            && !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta_last);
        // Sequence numbers of wild SYN/RSTs, or of anything after a RST, are not trusted.
        let advance = !wild
            && ((flags.fin() && e.last_seq == e.start_seq.wrapping_add(1))
                || (e.state != EndpointState::Reset && delta_last > 0));
        let rxmit = !wild && !advance && e.state != EndpointState::Reset && len > 0;
        if advance {
            e.last_seq = past;
        }
        if rxmit {
            self.scaled(is_orig, |e| &mut e.rxmit, b'T');
        }

        let do_close = self.update_state_machine(is_orig, base_seq, len, delta_last, flags);
        if do_close {
            self.ep[me].did_close = true;
        }
    }

    fn update_state_machine(
        &mut self,
        is_orig: bool,
        base_seq: u32,
        len: u32,
        _delta_last: i32,
        flags: TcpFlags,
    ) -> bool {
        use EndpointState::*;
        let (me, other) = if is_orig { (0, 1) } else { (1, 0) };
        let mut do_close = false;
        match self.ep[me].state {
            Inactive => {
                if flags.syn() {
                    if is_orig {
                        self.ep[me].set_state(if flags.ack() { SynAckSent } else { SynSent });
                    } else {
                        if !flags.ack()
                            && self.ep[other].state == SynAckSent
                            && base_seq == self.ep[me].start_seq
                        {
                            // SYN/SYN-ACK reversal: Zeek flips the roles; we keep them and establish.
                            self.ep[other].set_state(Established);
                        }
                        if self.ep[other].state == SynSent {
                            self.ep[other].set_state(Established);
                        }
                        self.ep[me].set_state(Established);
                    }
                }
                if flags.fin() {
                    self.ep[me].set_state(Closed);
                    do_close = true;
                }
                if flags.rst() {
                    self.ep[me].set_state(Reset);
                    do_close = true;
                }
                if self.ep[me].state == Inactive {
                    if !is_orig && len == 0 && self.ep[0].state == SynSent {
                        // Some stacks ack a SYN before answering it: not a partial connection.
                    } else if flags.ack() && self.ep[other].state == Established {
                        self.ep[me].set_state(Established);
                    } else {
                        self.ep[me].set_state(Partial);
                    }
                }
            }
            SynSent | SynAckSent => {
                if flags.fin() {
                    self.ep[me].set_state(Closed);
                    do_close = true;
                }
                if flags.rst() {
                    self.ep[me].set_state(Reset);
                    do_close = true;
                }
            }
            Established | Partial => {
                if flags.syn()
                    && self.ep[me].state == Partial
                    && self.ep[other].state == Inactive
                    && !flags.ack()
                {
                    self.ep[me].set_state(SynSent);
                }
                if flags.fin() && !flags.rst() {
                    self.ep[me].set_state(Closed);
                    if self.ep[other].state == Reset && self.ep[other].prev_state == Closed {
                        // A FIN then a RST from the peer was a normal close after all.
                        self.ep[other].set_state(Closed);
                    }
                    do_close = true;
                }
                if flags.rst() {
                    self.ep[me].set_state(Reset);
                    do_close = true;
                }
            }
            Closed => {
                if flags.rst() && self.ep[other].state != Closed {
                    self.ep[me].set_state(Reset);
                    if !self.ep[me].did_close {
                        do_close = true;
                    }
                }
            }
            Reset => {}
        }
        do_close
    }

    /// conn.log's `conn_state`, exactly as Zeek's `Conn::conn_state` decides it.
    pub fn conn_state(&self) -> &'static str {
        use EndpointState::*;
        let (o, r) = (&self.ep[0], &self.ep[1]);
        let (os, rs) = (o.state, r.state);
        let o_inactive = matches!(os, Inactive | Partial);
        let r_inactive = matches!(rs, Inactive | Partial);
        if rs == Reset {
            if matches!(os, SynSent | SynAckSent)
                || (os == Reset && o.size(r) == 0 && r.size(o) == 0)
            {
                "REJ"
            } else if o_inactive {
                "RSTRH"
            } else {
                "RSTR"
            }
        } else if os == Reset {
            if r_inactive {
                if rstos0_history(self.history.as_str()) {
                    "RSTOS0"
                } else {
                    "OTH"
                }
            } else {
                "RSTO"
            }
        } else if rs == Closed && os == Closed {
            "SF"
        } else if os == Closed {
            if r_inactive { "SH" } else { "S2" }
        } else if rs == Closed {
            if o_inactive { "SHR" } else { "S3" }
        } else if os == SynSent && rs == Inactive {
            "S0"
        } else if os == Established && rs == Established {
            "S1"
        } else {
            "OTH"
        }
    }

    /// (originator bytes, responder bytes) as conn.log's `orig_bytes`/`resp_bytes`.
    pub fn sizes(&self) -> (u64, u64) {
        (self.ep[0].size(&self.ep[1]), self.ep[1].size(&self.ep[0]))
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

    const S: u16 = TcpFlags::SYN;
    const A: u16 = TcpFlags::ACK;
    const F: u16 = TcpFlags::FIN;
    const R: u16 = TcpFlags::RST;
    const P: u16 = TcpFlags::PSH;

    /// Run packets (is_orig, flags, seq, ack, len) and give (conn_state, history).
    fn run(packets: &[(bool, u16, u32, u32, u32)]) -> (String, String) {
        let mut z = ZeekConn::default();
        for &(o, f, seq, ack, len) in packets {
            z.packet(
                o,
                &Packet {
                    flags: TcpFlags(f),
                    seq: SeqNumber(seq),
                    ack: SeqNumber(ack),
                    window: 1000,
                    len,
                },
            );
        }
        (z.conn_state().to_string(), z.history.as_str().to_string())
    }

    const C: bool = true;
    const SV: bool = false;

    fn handshake() -> Vec<(bool, u16, u32, u32, u32)> {
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
        z.packet(
            true,
            &Packet {
                flags: TcpFlags(A),
                seq: SeqNumber(1),
                ack: SeqNumber(1),
                window: 0,
                len: 0,
            },
        );
        // Zeek logs the packet kind first, then looks at the window.
        assert_eq!(z.history.as_str(), "AW");
    }

    #[test]
    fn sizes_count_sequence_space() {
        let mut z = ZeekConn::default();
        for &(o, f, seq, ack, len) in &[
            (C, S, 100u32, 0u32, 0u32),
            (SV, S | A, 500, 101, 0),
            (C, A | P, 101, 501, 20),
            (C, A | P, 101, 501, 20),
            (SV, A | P, 501, 121, 7),
            (C, F | A, 121, 508, 0),
        ] {
            z.packet(
                o,
                &Packet {
                    flags: TcpFlags(f),
                    seq: SeqNumber(seq),
                    ack: SeqNumber(ack),
                    window: 100,
                    len,
                },
            );
        }
        assert_eq!(z.sizes(), (20, 7));
    }

    #[test]
    fn history_overflow_is_marked() {
        let mut h = History::default();
        for _ in 0..40 {
            h.push(b'x');
        }
        assert_eq!(h.as_str().len(), 30);
        assert!(h.as_str().ends_with('+'));
    }
}
