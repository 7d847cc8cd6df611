//! A captured frame as it came from the capture or a file, kept whole so a run can be saved.

use crate::model::segment::TimestampNs;

/// One captured frame as libpcap gave it, kept so a run can be saved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    pub ts: TimestampNs,
    pub data: Vec<u8>,
    /// The frame's length on the wire (more than `data.len()` when the snap length cut it).
    pub orig_len: u32,
}
