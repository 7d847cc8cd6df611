//! Bugs found after the code that had them was written, each pinned by a test named after it (as ripgrep's
//! tests/regression.rs does). Add one here for every bug fixed later: the name says what went wrong, the comment
//! where it was seen.

use std::path::PathBuf;
use std::process::Command;

use tcp_close_watch::testing::skip;

fn corpus_file(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/pcaps")
        .join(name);
    if path.is_file() {
        Some(path)
    } else {
        skip(&format!("regression: {} is missing", path.display()));
        None
    }
}

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .arg("analyze")
        .args(args)
        .output()
        .expect("the binary runs")
}

/// shb-option-too-long.pcapng of the corpus: the section header itself is damaged, so nothing was read; the tool
/// said "the 0 frames before it were analysed" and exited 2 ("partial results").
#[test]
fn damaged_first_block_reads_nothing_and_exits_1() {
    let Some(file) = corpus_file("shb-option-too-long.pcapng") else {
        return;
    };
    let out = analyze(&[file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("0 frames before it"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "nothing was read, so nothing is printed"
    );
}

/// qi_internet_SYNACK_curl_jsonip.pcap of the corpus: the client's first RST sits at the server's last
/// acknowledgment (the server had not taken the client's FIN in yet), which RFC 9293 accepts; it was flagged as
/// an ignored RST because the check expected it one past the FIN.
#[test]
fn rst_at_the_receivers_last_ack_is_not_called_ignored() {
    let Some(file) = corpus_file("qi_internet_SYNACK_curl_jsonip.pcap") else {
        return;
    };
    let out = analyze(&[file.to_str().unwrap(), "--conn", "0", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON Lines"))
        .collect();
    let first_rst = rows
        .iter()
        .find(|r| r["kind"] == "segment" && r["flags"].as_str().is_some_and(|f| f.contains('R')))
        .expect("the capture has an RST");
    let notes = first_rst["notes"].to_string();
    assert!(!notes.contains("ignored"), "{notes}");
    assert_eq!(
        first_rst["states_after"][1], "CLOSE",
        "the RST reset the server"
    );
}
