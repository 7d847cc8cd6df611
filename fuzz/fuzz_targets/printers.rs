//! Any bytes as a capture, or as the strings of a saved run: nothing the file holds may reach a terminal format
//! as a control character, turn into markup or break an SVG. The first byte chooses: even, the bytes are a capture
//! file; odd, they replace the call texts, data and kernel string of captures/abrupt.pcapng (split at NUL).
//! `tests/fuzz_printers.rs` runs the same check on a few thousand mutated captures in every `cargo test`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tcp_close_watch::capfile::CaptureReader;
use tcp_close_watch::capfile::saved;
use tcp_close_watch::model::calls::Outcome;
use tcp_close_watch::model::frame::RawFrame;
use tcp_close_watch::render::TimelineFormat;
use tcp_close_watch::testing;

const ABRUPT: &[u8] = include_bytes!("../../captures/abrupt.pcapng");

/// abrupt.pcapng with its strings taken from `data`.
fn with_strings(data: &[u8]) -> Option<Vec<u8>> {
    let mut run = saved::run_in_bytes(ABRUPT.to_vec())?;
    let mut reader = CaptureReader::from_bytes(ABRUPT.to_vec()).ok()?;
    let mut frames = Vec::new();
    while let Ok(Some(f)) = reader.next_frame() {
        frames.push(RawFrame {
            ts: f.ts,
            data: f.data.to_vec(),
            orig_len: f.orig_len,
        });
    }
    let mut pieces = data.split(|&b| b == 0);
    run.kernel = String::from_utf8_lossy(pieces.next()?).into_owned();
    for c in &mut run.pair.calls {
        let Some(p) = pieces.next() else { break };
        c.call = String::from_utf8_lossy(p).into_owned();
        if let Outcome::Ok { data, .. } = &mut c.outcome {
            data.extend_from_slice(p);
        }
    }
    Some(saved::pcapng(&run.pair, &run.kernel, &frames, 1))
}

fuzz_target!(|data: &[u8]| {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let bytes = if choice % 2 == 0 {
        rest.to_vec()
    } else {
        match with_strings(rest) {
            Some(b) => b,
            None => return,
        }
    };
    let name = String::from_utf8_lossy(&rest[..rest.len().min(24)]).into_owned();
    for v in testing::every_view(&name, bytes) {
        if let Some(why) = testing::unsafe_output(v.format, &v.text, v.color) {
            panic!("{} of {}: {why}", v.format.name(), v.what);
        }
        if v.format == TimelineFormat::Svg {
            for doc in v.text.split_inclusive("</svg>\n") {
                if let Err(e) = roxmltree::Document::parse(doc) {
                    panic!("SVG of {} does not parse: {e}", v.what);
                }
            }
        }
    }
});
