//! Connection tracking: segments grouped into connections in Wireshark's order, with Zeek's judgement of each.

pub mod conn;
pub mod report;
pub mod select;
pub mod zeek;
