//! TCP segments as the rest of the program sees them: a small owned value made once from a decoded frame.
//!
//! Nothing here touches bytes on the wire; `decode` builds these values and every later stage reads them.
//! Sequence numbers wrap: compare them only through [`SeqNumber`]'s methods, never as `u32`s. Flags come as bits
//! ([`TcpFlags`]) and, for a state machine, as one [`Control`] value that names every SYN/FIN/RST combination.

use std::cmp::Ordering;
use std::fmt;
use std::net::SocketAddr;

/// A TCP sequence number. Comparisons wrap around modulo 2^32 (RFC 9293 §3.4), so never compare the raw `u32`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Distance from `base` to `self`, going forward around the circle.
    pub fn since(self, base: SeqNumber) -> u32 {
        self.0.wrapping_sub(base.0)
    }

    /// `self` is `other` or lies less than half the number space (2^31) ahead of it.
    pub fn is_at_or_after(self, other: SeqNumber) -> bool {
        self.since(other) < 1 << 31
    }

    /// As an acknowledgment number, `self` covers `seq`: it lies past `seq`, less than half the number space
    /// ahead (an ACK of `seq` itself names the next number it expects, `seq + 1`).
    pub fn acknowledges(self, seq: SeqNumber) -> bool {
        (1..1 << 31).contains(&self.since(seq))
    }

    /// The later of two sequence numbers. Exactly half the number space apart neither is later; then `other`.
    pub fn latest(self, other: SeqNumber) -> SeqNumber {
        if self.is_at_or_after(other) {
            self
        } else {
            other
        }
    }

    /// Signed distance from `base` to `self`: negative when `self` lies behind `base`.
    pub fn offset_from(self, base: SeqNumber) -> i32 {
        self.since(base) as i32
    }
}

impl std::ops::Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n))
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        // Serial number arithmetic: a < b when b is less than 2^31 ahead.
        let diff = self.0.wrapping_sub(other.0) as i32;
        Some(diff.cmp(&0))
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The TCP flag bits of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u16);

impl TcpFlags {
    pub const FIN: u16 = 0x001;
    pub const SYN: u16 = 0x002;
    pub const RST: u16 = 0x004;
    pub const PSH: u16 = 0x008;
    pub const ACK: u16 = 0x010;
    pub const URG: u16 = 0x020;
    pub const ECE: u16 = 0x040;
    pub const CWR: u16 = 0x080;
    /// AE (formerly NS), the bit AccECN uses.
    pub const AE: u16 = 0x100;

    pub fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }
    pub fn fin(self) -> bool {
        self.has(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.has(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.has(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.has(Self::ACK)
    }
    pub fn psh(self) -> bool {
        self.has(Self::PSH)
    }

    /// What the SYN, FIN and RST bits ask of the receiver, every combination named (ACK is read apart, as
    /// [`TcpFlags::ack`]).
    pub fn control(self) -> Control {
        match (self.syn(), self.fin(), self.rst(), self.ack()) {
            // RFC 9293 §3.10.7.4 checks RST before SYN and FIN: a reset means the same whatever rides with it.
            (_, _, true, _) => Control::Rst,
            (true, true, false, _) => Control::SynFin,
            (true, false, false, false) => Control::Syn,
            (true, false, false, true) => Control::SynAck,
            (false, true, false, _) => Control::Fin,
            (false, false, false, _) => Control::None,
        }
    }

    /// Flags in tcpdump's letters and order (`S.`, `F.`, `R.`, `P.`, `FP.`); `none` when no bit is set.
    pub fn tcpdump(self) -> String {
        // tcpdump prints in this order: F S R P . U E W e
        const LETTERS: [(u16, char); 9] = [
            (TcpFlags::FIN, 'F'),
            (TcpFlags::SYN, 'S'),
            (TcpFlags::RST, 'R'),
            (TcpFlags::PSH, 'P'),
            (TcpFlags::ACK, '.'),
            (TcpFlags::URG, 'U'),
            (TcpFlags::ECE, 'E'),
            (TcpFlags::CWR, 'W'),
            (TcpFlags::AE, 'e'),
        ];
        let s: String = LETTERS
            .iter()
            .filter(|(bit, _)| self.has(*bit))
            .map(|(_, c)| *c)
            .collect();
        if s.is_empty() { "none".to_string() } else { s }
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.tcpdump())
    }
}

/// A segment's control flags as one value, like smoltcp's `TcpControl`: SYN, FIN and RST combine in few ways that
/// mean something, and the ones that do not are named too, so a state machine matching on this misses none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Control {
    /// SYN without ACK: opens a connection.
    Syn,
    /// SYN with ACK: answers a SYN.
    SynAck,
    /// FIN (with ACK or not, with data or not), no SYN or RST: the sender has nothing more to send.
    Fin,
    /// RST, whatever else is set: aborts the connection.
    Rst,
    /// SYN and FIN together (with ACK or not), no RST. No TCP stack sends this, scanners do; read as the SYN, then
    /// the FIN.
    SynFin,
    /// None of SYN, FIN, RST: a plain ACK, or data.
    None,
}

impl Control {
    /// The control with its FIN taken away: a [`Control::SynFin`]'s SYN part (`SynAck` when ACK is set too),
    /// `None` for a `Fin`; the others as they are. (For a FIN that changes nothing, e.g. one sent again.)
    pub fn without_fin(self, ack: bool) -> Control {
        match self {
            Control::SynFin if ack => Control::SynAck,
            Control::SynFin => Control::Syn,
            Control::Fin => Control::None,
            other => other,
        }
    }
}

/// Nanoseconds since the Unix epoch (CLOCK_REALTIME), the clock both libpcap and our socket calls use.
pub type TimestampNs = i64;

/// How many bytes of a segment's payload a timeline keeps: a preview, the same for a live run and for `analyze`, so
/// that a saved run analysed prints what the live run printed.
pub const PAYLOAD_KEPT: usize = 64;

/// One captured TCP segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub ts: TimestampNs,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub flags: TcpFlags,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub window: u16,
    /// Payload length as the IP header declares it, even when the capture cut the bytes short.
    pub len: u32,
    /// The payload bytes that were captured (at most `len`).
    pub payload: Vec<u8>,
    /// The IP packet's length as its header declares it, headers included: IPv4's total length, IPv6's payload
    /// length + 40 (Zeek's `IP_Hdr::TotalLen`, which its conn.log sums into `orig_ip_bytes`/`resp_ip_bytes`).
    pub ip_len: u32,
}

impl Segment {
    /// How much sequence space this segment occupies: payload plus one for SYN and one for FIN.
    pub fn seq_len(&self) -> u32 {
        self.len + u32::from(self.flags.syn()) + u32::from(self.flags.fin())
    }
}

/// A short, escaped, single-line preview of payload bytes (`hello\n…`), at most `max` characters of content.
pub fn preview(bytes: &[u8], max: usize) -> String {
    let mut out = String::new();
    let mut shown = 0;
    for &b in bytes {
        let piece = match b {
            b'\n' => "\\n".to_string(),
            b'\r' => "\\r".to_string(),
            b'\t' => "\\t".to_string(),
            b'\\' => "\\\\".to_string(),
            b'"' => "\\\"".to_string(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\x{b:02x}"),
        };
        if shown + piece.len() > max {
            out.push('…');
            return out;
        }
        shown += piece.len();
        out.push_str(&piece);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_in_tcpdump_order() {
        let f = |bits: u16| TcpFlags(bits).tcpdump();
        assert_eq!(f(TcpFlags::SYN), "S");
        assert_eq!(f(TcpFlags::SYN | TcpFlags::ACK), "S.");
        assert_eq!(f(TcpFlags::FIN | TcpFlags::ACK), "F.");
        assert_eq!(f(TcpFlags::FIN | TcpFlags::PSH | TcpFlags::ACK), "FP.");
        assert_eq!(f(TcpFlags::RST), "R");
        assert_eq!(f(TcpFlags::RST | TcpFlags::ACK), "R.");
        assert_eq!(f(TcpFlags::PSH | TcpFlags::ACK), "P.");
        assert_eq!(f(TcpFlags::ACK), ".");
        assert_eq!(f(0), "none");
        assert_eq!(
            format!(
                "{}",
                TcpFlags(TcpFlags::ACK | TcpFlags::ECE | TcpFlags::CWR)
            ),
            "[.EW]"
        );
    }

    #[test]
    fn seq_compare_wraps() {
        assert!(SeqNumber(u32::MAX) < SeqNumber(5));
        assert!(SeqNumber(10) > SeqNumber(u32::MAX - 3));
        assert_eq!(SeqNumber(3).since(SeqNumber(u32::MAX)), 4);
        assert_eq!(SeqNumber(u32::MAX) + 2, SeqNumber(1));
    }

    #[test]
    fn at_or_after_wraps() {
        let top = SeqNumber(u32::MAX);
        assert!(top.is_at_or_after(top));
        assert!(SeqNumber(2).is_at_or_after(top), "past the wrap is after");
        assert!(!top.is_at_or_after(SeqNumber(2)));
        assert!(SeqNumber(5).is_at_or_after(SeqNumber(5 + (1 << 31) + 1)));
        assert!(
            !SeqNumber(1 << 31).is_at_or_after(SeqNumber(0)),
            "half the space ahead is not after"
        );
    }

    #[test]
    fn acknowledges_wraps() {
        let fin = SeqNumber(u32::MAX);
        assert!(
            SeqNumber(0).acknowledges(fin),
            "FIN at the top, ACK wraps to 0"
        );
        assert!(
            !fin.acknowledges(fin),
            "an ACK of the FIN's own number expects it still"
        );
        assert!(!SeqNumber(u32::MAX - 1).acknowledges(fin));
        assert!(SeqNumber(5).acknowledges(SeqNumber(u32::MAX - 10)));
        assert!(!SeqNumber(1 << 31).acknowledges(SeqNumber(0)));
    }

    #[test]
    fn latest_wraps() {
        let top = SeqNumber(u32::MAX);
        assert_eq!(top.latest(SeqNumber(3)), SeqNumber(3));
        assert_eq!(SeqNumber(3).latest(top), SeqNumber(3));
        assert_eq!(SeqNumber(7).latest(SeqNumber(7)), SeqNumber(7));
        assert_eq!(
            SeqNumber(0).latest(SeqNumber(1 << 31)),
            SeqNumber(1 << 31),
            "half the space apart: the other one"
        );
    }

    #[test]
    fn offset_from_is_signed_across_the_wrap() {
        assert_eq!(SeqNumber(2).offset_from(SeqNumber(u32::MAX)), 3);
        assert_eq!(SeqNumber(u32::MAX).offset_from(SeqNumber(2)), -3);
        assert_eq!(SeqNumber(9_999).offset_from(SeqNumber(501)), 9_498);
    }

    #[test]
    fn control_names_every_flag_combination() {
        let c = |bits: u16| TcpFlags(bits).control();
        let (s, a, f, r, p) = (
            TcpFlags::SYN,
            TcpFlags::ACK,
            TcpFlags::FIN,
            TcpFlags::RST,
            TcpFlags::PSH,
        );
        assert_eq!(c(s), Control::Syn);
        assert_eq!(c(s | a), Control::SynAck);
        assert_eq!(c(f | a), Control::Fin);
        assert_eq!(c(f | p | a), Control::Fin);
        assert_eq!(c(f), Control::Fin);
        assert_eq!(c(r), Control::Rst);
        assert_eq!(c(r | a), Control::Rst);
        assert_eq!(c(s | r), Control::Rst, "RST wins");
        assert_eq!(c(f | r | a), Control::Rst);
        assert_eq!(c(s | f), Control::SynFin);
        assert_eq!(c(s | f | a), Control::SynFin);
        assert_eq!(c(a), Control::None);
        assert_eq!(c(p | a), Control::None);
        assert_eq!(c(0), Control::None);
        assert_eq!(Control::SynFin.without_fin(true), Control::SynAck);
        assert_eq!(Control::SynFin.without_fin(false), Control::Syn);
        assert_eq!(Control::Fin.without_fin(true), Control::None);
        assert_eq!(Control::Rst.without_fin(true), Control::Rst);
    }

    #[test]
    fn preview_escapes_and_truncates() {
        assert_eq!(preview(b"hi\n\x00", 20), "hi\\n\\x00");
        assert_eq!(preview(b"abcdefghij", 4), "abcd…");
        assert_eq!(preview(b"", 4), "");
    }

    #[test]
    fn seq_len_counts_syn_and_fin() {
        let s = Segment {
            ts: 0,
            src: "127.0.0.1:1".parse().unwrap(),
            dst: "127.0.0.1:2".parse().unwrap(),
            flags: TcpFlags(TcpFlags::FIN | TcpFlags::ACK),
            seq: SeqNumber(1),
            ack: SeqNumber(1),
            window: 0,
            len: 5,
            payload: b"hello".to_vec(),
            ip_len: 45,
        };
        assert_eq!(s.seq_len(), 6);
    }
}
