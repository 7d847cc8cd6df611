//! Any bytes as a frame of any link type: decode must never panic, and its plain-IPv4 fast path must agree with
//! the general (etherparse) path on every input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcp_close_watch::wire::decode::{decode, decode_parts, decode_parts_general};
use tcp_close_watch::wire::link::LinkType;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, frame)) = data.split_first() else {
        return;
    };
    const LINKS: [u32; 14] = [0, 1, 9, 10, 12, 101, 108, 113, 228, 229, 239, 242, 276, 50];
    let number = LINKS[usize::from(selector) % LINKS.len()];
    if let Some(link) = LinkType::from_number(number) {
        let _ = decode(link, 0, frame);
        assert_eq!(decode_parts(link, 0, frame), decode_parts_general(link, 0, frame));
    }
});
