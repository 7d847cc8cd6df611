//! Zeek's sequence arithmetic: 32-bit wrap-around distances, and the jump it stops trusting.

use crate::model::segment::SeqNumber;

/// Zeek rejects sequence jumps larger than this for SYN/RST packets (`TOO_LARGE_SEQ_DELTA`).
pub(super) const TOO_LARGE_SEQ_DELTA: i32 = 1_048_576;

/// Zeek's `seq_delta`: the signed distance from `b` to `a` on the 32-bit circle (negative: `a` is behind).
#[inline]
pub(super) fn seq_delta(a: SeqNumber, b: SeqNumber) -> i32 {
    a.since(b) as i32
}

/// A jump, in either direction, that Zeek does not trust when a SYN or RST makes it.
#[inline]
pub(super) fn is_too_large(delta: i32) -> bool {
    !(-TOO_LARGE_SEQ_DELTA..=TOO_LARGE_SEQ_DELTA).contains(&delta)
}

/// The sequence number just before `s`: where Zeek starts numbering a side as though its SYN had been seen.
#[inline]
pub(super) fn one_before(s: SeqNumber) -> SeqNumber {
    SeqNumber(s.0.wrapping_sub(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_wrap_around() {
        assert_eq!(seq_delta(SeqNumber(5), SeqNumber(u32::MAX)), 6);
        assert_eq!(seq_delta(SeqNumber(u32::MAX), SeqNumber(5)), -6);
        assert_eq!(one_before(SeqNumber(0)), SeqNumber(u32::MAX));
        assert!(!is_too_large(TOO_LARGE_SEQ_DELTA));
        assert!(!is_too_large(-TOO_LARGE_SEQ_DELTA));
        assert!(is_too_large(TOO_LARGE_SEQ_DELTA + 1));
        assert!(is_too_large(-TOO_LARGE_SEQ_DELTA - 1));
    }
}
