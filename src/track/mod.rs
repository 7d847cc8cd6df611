//! Connection tracking: segments grouped into connections in Wireshark's order, with Zeek's judgement of each.
//!
//! [`packet`] is what the tracker reads of a segment; [`tracker`] finds each packet's connection; [`conn`] is the
//! connection record and how one packet changes it; [`zeek`] is Zeek's state machine inside it; [`select`] and
//! [`report`] are what the later stages read.

pub mod conn;
pub mod ends;
pub mod live;
pub mod packet;
pub mod report;
pub mod select;
pub mod tracker;
pub mod zeek;
