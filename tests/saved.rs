//! Saved runs: pcapng files that carry the socket calls must stay ordinary captures for every other reader.

use std::path::{Path, PathBuf};
use std::process::Command;

use tcp_close_watch::demo::Mode;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var_os("TCW_REQUIRE_CAPTURE").is_some() {
            panic!("tshark is needed for this test in CI (scripts/test.sh installs it)");
        }
        eprintln!("SKIPPED: tshark is not installed");
    }
    ok
}

/// `tshark -T fields` of one file, one line per frame.
fn tshark_fields(file: &Path, fields: &[&str]) -> Vec<String> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd.output().expect("tshark runs");
    assert!(
        out.status.success(),
        "tshark failed on {}: {}",
        file.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// Every frame an ordinary libpcap reader gets from the file.
fn libpcap_frames(file: &Path) -> usize {
    let mut cap = pcap::Capture::from_file(file).expect("libpcap opens it");
    let mut n = 0;
    while cap.next_packet().is_ok() {
        n += 1;
    }
    n
}

#[test]
fn every_mode_has_a_capture_that_libpcap_reads_whole() {
    for mode in Mode::ALL {
        let file = captures().join(format!("{}.pcapng", mode.name()));
        assert!(
            file.exists(),
            "{} is missing: run `just captures`",
            file.display()
        );
        let bytes = std::fs::read(&file).unwrap();
        let saved = tcp_close_watch::saved::pcapng_run(&bytes)
            .unwrap_or_else(|| panic!("{mode}: carries its run"));
        assert_eq!(saved.pair.mode, mode);
        let frames = libpcap_frames(&file);
        assert!(frames >= 2, "{mode}: {frames} frames");
    }
}

#[test]
fn tshark_shows_the_calls_as_packet_comments() {
    if !tshark_available() {
        return;
    }
    let file = captures().join("abrupt.pcapng");
    let rows = tshark_fields(&file, &["frame.number", "tcp.flags.str", "frame.comment"]);
    assert_eq!(
        rows.len(),
        libpcap_frames(&file),
        "tshark reads every packet and nothing else"
    );
    let rst = rows.iter().find(|r| r.contains('R')).expect("an RST frame");
    assert!(rst.contains("B: close() with 33 bytes unread"), "{rst}");
    assert!(rst.contains("ECONNRESET"), "{rst}");
    // the section header says what was recorded, on which kernel, when
    let info = Command::new("capinfos").arg(&file).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("tcp-close-watch run --mode abrupt") && info.contains("Recorded on Linux"),
        "{info}"
    );
}
