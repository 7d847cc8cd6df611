//! tcp-close-watch: see how TCP connections end, side by side with the socket calls that ended them.
//!
//! Data flows through stages, each a module that knows nothing of the stages after it:
//! `demo` (socket calls of the embedded pair) and `capture` (raw frames) → `decode` (frame → [`segment::Segment`])
//! → `timeline` (calls and segments in one order) → `story` (what happened, in words) → `render` (table, markdown,
//! JSON).

pub mod analyze;
pub mod calls;
pub mod capfile;
pub mod capture;
pub mod conn;
pub mod decode;
pub mod demo;
pub mod docs;
pub mod infer;
pub mod live;
pub mod render;
pub mod saved;
pub mod segment;
pub mod story;
pub mod tcp_state;
#[doc(hidden)]
pub mod testing;
pub mod timeline;
pub mod zeek;
