//! The byte order a capture file was written in: pcap and pcapng files say it with their magic number, and
//! every field after it follows.
//!
//! Contract: the readers take a slice that holds at least the field's bytes (2, 4 or 8) and panic otherwise;
//! callers check lengths first. The writers append and never fail.

/// Little- or big-endian, as a capture file's magic number says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    Little,
    Big,
}

impl Endian {
    /// The first 2 bytes of `b` as a number. Panics when `b` is shorter.
    pub fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }

    /// The first 4 bytes of `b` as a number. Panics when `b` is shorter.
    pub fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }

    /// The first 8 bytes of `b` as a number. Panics when `b` is shorter.
    pub fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }

    /// `v` as 2 bytes in this order.
    pub fn bytes16(self, v: u16) -> [u8; 2] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }

    /// `v` as 4 bytes in this order.
    pub fn bytes32(self, v: u32) -> [u8; 4] {
        match self {
            Endian::Little => v.to_le_bytes(),
            Endian::Big => v.to_be_bytes(),
        }
    }
}
