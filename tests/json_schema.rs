//! Every JSON row `run` and `analyze` write has exactly the keys docs/output.md lists for its `kind` (closed key
//! sets), the documented `schema`, and raw bytes in base64 that match the escaped preview beside them.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use tcp_close_watch::capfile::write::PcapWriter;
use tcp_close_watch::capfile::{CaptureReader, Endian};

/// `kind` → its keys, as docs/output.md lists them; `watch`'s own kinds are checked by tests/watch.rs (root).
fn documented() -> BTreeMap<String, BTreeSet<String>> {
    let mut kinds = tcp_close_watch::testing::documented_json_keys();
    kinds.retain(|k, _| !k.starts_with("watch"));
    kinds
}

fn json_rows(args: &[&str]) -> Vec<serde_json::Value> {
    let o = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(args)
        .args(["--format", "json"])
        .output()
        .expect("binary runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{args:?}: {e}: {l}")))
        .collect()
}

fn captures(name: &str) -> String {
    format!("{}/captures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A saved run's frames without the pair's calls: a capture like any other.
fn plain_capture(dir: &std::path::Path) -> String {
    let mut reader = CaptureReader::open(&captures("shutdown.pcapng")).unwrap();
    let mut w = PcapWriter::new(Endian::Little, true, 65535, 1);
    while let Some(f) = reader.next_frame().unwrap() {
        w.record(f.ts, f.data, f.orig_len);
    }
    let path = dir.join("plain.pcap");
    std::fs::write(&path, w.into_bytes()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn every_json_row_has_exactly_the_documented_keys_of_its_kind() {
    let doc = documented();
    assert_eq!(
        doc.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "account",
            "call",
            "comparison",
            "connection",
            "kernel",
            "run",
            "segment",
            "totals"
        ]
    );
    let dir = tempfile::tempdir().unwrap();
    let plain = plain_capture(dir.path());
    let all: Vec<String> = tcp_close_watch::model::run::Mode::ALL
        .iter()
        .map(|m| captures(&format!("{}.pcapng", m.name())))
        .collect();
    let mut asks: Vec<Vec<String>> = all
        .iter()
        .flat_map(|c| {
            [
                vec!["analyze".to_string(), c.clone()],
                vec!["analyze".into(), c.clone(), "--conn".into(), "0".into()],
            ]
        })
        .collect();
    asks.push([vec!["analyze".to_string()], all.clone()].concat());
    asks.push(vec!["analyze".into(), plain.clone()]);
    asks.push(vec!["analyze".into(), plain, "--conn".into(), "0".into()]);
    asks.push(vec!["run".into(), "--no-capture".into()]);
    // a recorded refused connect: its timeline ends with an account
    asks.push(vec![
        "analyze".into(),
        concat!(env!("CARGO_MANIFEST_DIR"), "/captures/analyze/refused.pcap").into(),
        "--conn".into(),
        "0".into(),
    ]);
    let mut seen = BTreeSet::new();
    for args in &asks {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        for row in json_rows(&args) {
            let kind = row["kind"]
                .as_str()
                .unwrap_or_else(|| panic!("no kind: {row}"));
            let keys: BTreeSet<String> = row.as_object().unwrap().keys().cloned().collect();
            let want = doc
                .get(kind)
                .unwrap_or_else(|| panic!("{kind} is not documented"));
            assert_eq!(&keys, want, "{args:?}: a {kind} row's keys\n{row}");
            assert_eq!(row["schema"], 1, "{row}");
            for (raw, preview) in [("data_base64", "data"), ("payload_base64", "payload")] {
                if let Some(b64) = row.get(raw) {
                    let empty = b64.as_str().unwrap().is_empty();
                    assert_eq!(empty, row[preview].as_str().unwrap().is_empty(), "{row}");
                }
            }
            seen.insert(kind.to_string());
        }
    }
    assert_eq!(
        seen,
        doc.keys().cloned().collect(),
        "every documented kind was checked"
    );
}

#[test]
fn base64_payload_is_the_segment_itself() {
    let rows = json_rows(&["analyze", &captures("abrupt.pcapng")]);
    let data = rows
        .iter()
        .find(|r| r["kind"] == "segment" && r["len"].as_u64() > Some(0))
        .expect("a segment with data");
    let b64 = data["payload_base64"].as_str().unwrap();
    // 34 bytes: "Hello B! Please …" — decode by hand (standard alphabet, padded)
    let abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut raw = Vec::new();
    for c in b64.chars().filter(|c| *c != '=') {
        bits = (bits << 6) | abc.find(c).unwrap() as u32;
        n += 6;
        if n >= 8 {
            n -= 8;
            raw.push((bits >> n) as u8);
        }
    }
    assert_eq!(raw.len() as u64, data["len"].as_u64().unwrap());
    assert!(raw.starts_with(b"Hello B!"), "{raw:?}");
}
