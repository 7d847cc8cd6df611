//! conn.log's `history`: Zeek's `update_history` (TCPSessionAdapter.cc) and the connection's `CheckHistory`,
//! `AddHistory` and `ScaledHistoryEntry` (Conn.cc). Originator letters are upper case, responder letters lower.

use crate::model::segment::TcpFlags;
use crate::track::ends::Side;

/// Which history letters were already logged once (Zeek's `HistoryMasks`); the responder's sit 16 bits higher.
const HIST_SYN_PKT: u32 = 0x1;
const HIST_FIN_PKT: u32 = 0x2;
const HIST_RST_PKT: u32 = 0x4;
const HIST_FIN_RST_PKT: u32 = 0x8;
const HIST_DATA_PKT: u32 = 0x10;
const HIST_ACK_PKT: u32 = 0x20;
const HIST_MULTI_FLAG_PKT: u32 = 0x40;

/// The history string, kept inline: Zeek logs each letter once per direction except the logarithmic ones, so
/// real histories are short. Past the inline room a `+` marks that more happened (documented in docs/analyze.md).
#[derive(Debug, Clone, Copy, Default)]
pub struct History {
    buf: [u8; 30],
    len: u8,
    /// Zeek's `hist_seen`: the letters logged once already, both directions.
    seen: u32,
}

impl History {
    /// A history that starts with `^`: Zeek flipped the roles on the first packet.
    pub(super) fn flipped() -> History {
        let mut h = History::default();
        h.push(b'^');
        h
    }

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

    /// Zeek's `AddHistory`: the letter, in lower case for the responder.
    fn add(&mut self, side: Side, code: u8) {
        self.push(match side {
            Side::Client => code,
            Side::Server => code.to_ascii_lowercase(),
        });
    }

    /// Zeek's `CheckHistory`: log the letter the first time, and say whether it had been seen before.
    fn check(&mut self, side: Side, mask: u32, code: u8) -> bool {
        let mask = match side {
            Side::Client => mask,
            Side::Server => mask << 16,
        };
        if self.seen & mask == 0 {
            self.seen |= mask;
            self.add(side, code);
            false
        } else {
            true
        }
    }

    /// Zeek's `ScaledHistoryEntry` with base 10: count one more, and log the letter again at the 1st, 10th,
    /// 100th … occurrence.
    pub(super) fn scaled_entry(&mut self, side: Side, counter: &mut u32, code: u8) {
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
            self.add(side, code);
        }
    }
}

/// Relative sequence numbers of the last SYN, FIN (its end) and RST logged in the history (Zeek's endpoint keeps
/// them as `hist_last_SYN`, `hist_last_FIN`, `hist_last_RST`).
#[derive(Debug, Clone, Copy, Default)]
pub struct LastLogged {
    pub(super) syn: u32,
    pub(super) fin: u32,
    pub(super) rst: u32,
}

/// Zeek's `update_history`: the letter of this packet's kind (`rel_seq` is its sequence number relative to the
/// side's start). A SYN, FIN or RST is logged again when it comes with a new sequence number.
pub(super) fn update_history(
    history: &mut History,
    side: Side,
    last: &mut LastLogged,
    flags: TcpFlags,
    rel_seq: u32,
    len: u32,
) {
    let bits_set = u8::from(flags.syn()) + u8::from(flags.fin()) + u8::from(flags.rst());
    if bits_set > 1 {
        if flags.fin() && flags.rst() {
            history.check(side, HIST_FIN_RST_PKT, b'I');
        } else {
            history.check(side, HIST_MULTI_FLAG_PKT, b'Q');
        }
    } else if bits_set == 1 {
        if flags.syn() {
            let code = if flags.ack() { b'H' } else { b'S' };
            if history.check(side, HIST_SYN_PKT, code) && rel_seq != last.syn {
                history.add(side, code);
            }
            last.syn = rel_seq;
        }
        if flags.fin() {
            // A FIN's sequence number comes at the end of its data, not at the start as for SYNs and RSTs.
            let end = rel_seq.wrapping_add(len);
            if history.check(side, HIST_FIN_PKT, b'F') && end != last.fin {
                history.add(side, b'F');
            }
            last.fin = end;
        }
        if flags.rst() {
            if history.check(side, HIST_RST_PKT, b'R') && rel_seq != last.rst {
                history.add(side, b'R');
            }
            last.rst = rel_seq;
        }
    } else if len > 0 {
        history.check(side, HIST_DATA_PKT, b'D');
    } else if flags.ack() {
        history.check(side, HIST_ACK_PKT, b'A');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_overflow_is_marked() {
        let mut h = History::default();
        for _ in 0..40 {
            h.push(b'x');
        }
        assert_eq!(h.as_str().len(), 30);
        assert!(h.as_str().ends_with('+'));
    }

    #[test]
    fn letters_once_per_direction_and_scaled_at_powers_of_ten() {
        let mut h = History::default();
        assert!(!h.check(Side::Client, HIST_ACK_PKT, b'A'));
        assert!(h.check(Side::Client, HIST_ACK_PKT, b'A'));
        assert!(!h.check(Side::Server, HIST_ACK_PKT, b'A'));
        let mut n = 0;
        for _ in 0..100 {
            h.scaled_entry(Side::Server, &mut n, b'T');
        }
        assert_eq!((h.as_str(), n), ("Aattt", 100));
    }
}
