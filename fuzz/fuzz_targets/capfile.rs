//! Any bytes as a capture file: the reader, decoder and connection tracker must never panic.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use tcp_close_watch::pipeline::analyze;
use tcp_close_watch::capfile::CaptureReader;

fuzz_target!(|data: &[u8]| {
    let opened = CaptureReader::from_bytes(data.to_vec()).map_err(|e| e.to_string());
    let keep: HashSet<u32> = [0, 1].into_iter().collect();
    let r = analyze::analyze("fuzz", opened, &keep, None, &mut |_, _| {});
    for c in &r.conns {
        let _ = (c.conn_state(), c.history(), c.ending().describe());
    }
});
