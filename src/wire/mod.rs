//! Bytes on the wire → values: link types and frame decoding. Pure functions over bytes; every source may use
//! them to read what it captured or loaded.

pub mod bpf;
pub mod decode;
pub mod link;
