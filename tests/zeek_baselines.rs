//! Our Zeek fields against Zeek's own published results for the corpus traces that came from Zeek's test suite
//! (`testing/btest/Baseline/…` in zeek/zeek: the outputs Zeek's CI checks). Reference values are Zeek's, not
//! ours: (file, connection id, history, conn_state, orig_bytes, resp_bytes), `None` where the baseline does not
//! print the field.

use std::collections::HashSet;
use std::path::PathBuf;

use tcp_close_watch::capfile::CaptureReader;
use tcp_close_watch::pipeline::analyze;
use tcp_close_watch::track::conn::Side;

type Expect = (
    &'static str,
    usize,
    Option<&'static str>,
    &'static str,
    Option<(u64, u64)>,
);

const ZEEK: &[Expect] = &[
    // core.pppoe-over-qinq/conn.log
    (
        "pppoe-over-qinq.pcap",
        0,
        Some("ShADdtaTTtFf"),
        "SF",
        Some((11352, 4984)),
    ),
    // scripts.base.protocols.conn.conn_state-RST-behavior/out
    ("single-rst.pcap", 0, Some("R"), "OTH", None),
    ("syn-then-rst.pcap", 0, Some("SR"), "RSTOS0", None),
    ("syn-then-stuff-then-rst.pcap", 0, Some("SaFR"), "OTH", None),
    // core.tcp.fin-retransmit/out: originator CLOSED (5), responder RESET (6), sizes 0 and 0
    ("fin_retransmission.pcap", 0, None, "RSTR", Some((0, 0))),
];

#[test]
fn zeek_fields_equal_zeeks_baselines() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pcaps");
    if !dir.exists() {
        tcp_close_watch::testing::skip(
            "corpus not found (expected ../shared/corpus next to the crate)",
        );
        return;
    }
    let mut failures = Vec::new();
    for &(file, id, history, state, bytes) in ZEEK {
        let name = dir.join(file).to_string_lossy().to_string();
        let opened = CaptureReader::open(&name).map_err(|e| e.to_string());
        let r = analyze::analyze(&name, opened, &HashSet::new(), None, &mut |_, _| {});
        let Some(c) = r.conns.get(id) else {
            failures.push(format!("{file}: no connection {id}"));
            continue;
        };
        if let Some(h) = history
            && c.history() != h
        {
            failures.push(format!("{file}: history {} (Zeek {h})", c.history()));
        }
        if c.conn_state().code() != state {
            failures.push(format!(
                "{file}: conn_state {} (Zeek {state})",
                c.conn_state()
            ));
        }
        if let Some(b) = bytes {
            let ours = (c.bytes(Side::Client), c.bytes(Side::Server));
            if ours != b {
                failures.push(format!("{file}: bytes {ours:?} (Zeek {b:?})"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
