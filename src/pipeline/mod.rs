//! The stages joined: sources → decode → tracking → explanation → printer, for `run` and `analyze`.

pub mod analyze;
pub mod docs;
pub mod live;
pub mod replay;
