//! tcp-close-watch: see how TCP connections end, side by side with the socket calls that ended them.
//!
//! Data flows through stages, each a folder that knows nothing of the stages after it (ARCHITECTURE.md is the map):
//! `model` (the data every stage shares) and `wire` (bytes → values) underlie the sources — `os` (the one door to
//! the kernel: capture, sockets, socket table), `capfile` (saved .pcap/.pcapng, read and written) and `scenario`
//! (the demo pair) — then `track` (connections, Zeek's judgement), `explain` (timeline, inferred states, story),
//! `render` (the printers), and `pipeline`, which joins them for `run` and `analyze`.

pub mod capfile;
pub mod explain;
pub mod model;
pub mod os;
pub mod pipeline;
pub mod render;
pub mod scenario;
#[doc(hidden)]
pub mod testing;
pub mod track;
pub mod wire;
