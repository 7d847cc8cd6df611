//! Saved runs: pcapng files that carry the socket calls must stay ordinary captures for every other reader.

use std::path::{Path, PathBuf};
use std::process::Command;

use tcp_close_watch::model::run::Mode;

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        tcp_close_watch::testing::skip("tshark is not installed (scripts/test.sh installs it)");
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
        let saved = tcp_close_watch::capfile::saved::run_in_bytes(bytes)
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
    // the flags column, not the comments (which now name states such as SYN_RECV)
    let rst = rows
        .iter()
        .find(|r| r.split('|').nth(1).is_some_and(|f| f.contains('R')))
        .expect("an RST frame");
    assert!(rst.contains("B: close() with 33 bytes unread"), "{rst}");
    assert!(rst.contains("ECONNRESET"), "{rst}");
    assert!(
        rst.contains("B's kernel sends RST — reason TCP_ABORT_ON_CLOSE"),
        "the kernel's reason beside its RST: {rst}"
    );
    // the section header says what was recorded, on which kernel, when
    let info = Command::new("capinfos").arg(&file).output().unwrap();
    let info = String::from_utf8_lossy(&info.stdout);
    assert!(
        info.contains("tcp-close-watch run --mode abrupt") && info.contains("Recorded on Linux"),
        "{info}"
    );
}

fn analyze_json(file: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .arg("analyze")
        .arg(file)
        .args(["--format", "json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each saved capture, analysed without any privilege, tells the story of its mode: checked on the rows read
/// back from the file (segments and calls), not on the account's wording.
#[test]
fn each_capture_tells_its_modes_story() {
    for mode in Mode::ALL {
        let rows = analyze_json(&captures().join(format!("{}.pcapng", mode.name())));
        let seg = |from: &str, flag: char| {
            rows.iter().any(|r| {
                r["kind"] == "segment"
                    && r["side"] == from
                    && r["flags"].as_str().unwrap().contains(flag)
            })
        };
        let calls = |peer: &str, name: &str| -> Vec<&serde_json::Value> {
            rows.iter()
                .filter(|r| {
                    r["kind"] == "call"
                        && r["side"] == peer
                        && r["call"].as_str().unwrap().starts_with(name)
                })
                .collect()
        };
        let summary = rows.last().unwrap();
        assert_eq!(summary["kind"], "run");
        assert_eq!(summary["mode"], mode.name());
        let a_recv_errno = calls("A", "recv").last().map(|c| c["errno"].clone());
        let b_close_unread = calls("B", "close")
            .first()
            // (B's close of its listener, in accept-queue-reset, has no unread count)
            .and_then(|c| c["unread_before"].as_u64());
        match mode {
            Mode::Abrupt | Mode::PrimesBad | Mode::PrimesSix => {
                assert!(
                    seg("B", 'R') && !seg("B", 'F'),
                    "{mode}: RST from B, no FIN"
                );
                assert_eq!(a_recv_errno, Some("ECONNRESET".into()), "{mode}");
                assert!(b_close_unread.unwrap() > 0, "{mode}");
            }
            Mode::Shutdown => {
                assert!(seg("B", 'F') && seg("B", 'R'), "FIN and then still RST");
                assert_eq!(calls("A", "recv")[0]["ret"], 0);
            }
            Mode::Drain | Mode::HalfClose | Mode::PrimesOk => {
                assert!(seg("A", 'F') && seg("B", 'F'), "{mode}: FIN both ways");
                assert!(!seg("A", 'R') && !seg("B", 'R'), "{mode}: no RST");
            }
            Mode::Linger0 => {
                assert!(seg("B", 'R'));
                assert_eq!(b_close_unread, Some(0));
                assert_eq!(
                    summary["end_b"],
                    serde_json::Value::Null,
                    "no TIME_WAIT: B's socket is gone"
                );
            }
            Mode::WriteAfterClose => {
                assert!(seg("B", 'F') && seg("B", 'R'));
                assert_eq!(calls("A", "send").last().unwrap()["errno"], "EPIPE");
            }
            Mode::Refused => {
                assert!(seg("A", 'S') && seg("B", 'R'));
                assert_eq!(calls("A", "connect")[0]["errno"], "ECONNREFUSED");
            }
            Mode::Linger2Abort => {
                assert!(seg("B", 'F') && seg("B", 'R'), "FIN, then RST in FIN_WAIT2");
                assert_eq!(calls("A", "send").last().unwrap()["errno"], "EPIPE");
            }
            Mode::ShutdownRead => {
                assert!(seg("B", 'R') && !seg("B", 'F'), "no FIN from SHUT_RD");
                assert_eq!(calls("B", "recv")[1]["ret"], 0);
                assert!(b_close_unread.unwrap() > 0);
            }
            Mode::AcceptQueueReset => {
                assert!(seg("B", 'R') && !seg("B", 'F'));
                assert_eq!(a_recv_errno, Some("ECONNRESET".into()));
            }
            Mode::SelfConnect => {
                // one socket: every segment is A's, and its own SYN is answered by itself
                assert!(!seg("B", 'S') && !seg("A", 'R') && seg("A", 'F'));
                assert_eq!(calls("A", "connect")[0]["ret"], 0);
                assert_eq!(calls("A", "recv")[0]["ret"], 9);
            }
            Mode::SockDestroy => {
                // destroyed from outside: B's kernel resets, B's own recv() fails ECONNABORTED, A's ECONNRESET
                assert!(seg("B", 'R') && !seg("B", 'F'));
                assert_eq!(calls("B", "SOCK_DESTROY")[0]["ret"], 1);
                assert_eq!(calls("B", "recv")[0]["errno"], "ECONNABORTED");
                assert_eq!(a_recv_errno, Some("ECONNRESET".into()));
            }
            Mode::KeepaliveDeadPeer => {
                // captured on A's veth: A's probes, then A's RST; B never answers
                assert!(seg("A", 'R') && !seg("A", 'F'));
                assert_eq!(a_recv_errno, Some("ETIMEDOUT".into()));
            }
            Mode::UserTimeout => {
                // retransmissions of A's bytes, then a quiet end: no RST at all
                let data_from_a = rows
                    .iter()
                    .filter(|r| {
                        r["kind"] == "segment" && r["side"] == "A" && r["len"].as_u64() > Some(0)
                    })
                    .count();
                assert!(data_from_a >= 3, "retransmitted: {data_from_a}");
                assert!(!seg("A", 'R') && !seg("B", 'R'));
                assert_eq!(a_recv_errno, Some("ETIMEDOUT".into()));
            }
            Mode::ZeroWindow => {
                // B's buffer full: a zero window from B, its close() throws 10000 bytes away with RST
                let zero = rows.iter().any(|r| {
                    r["kind"] == "segment" && r["side"] == "B" && r["win"] == 0 && r["flags"] == "."
                });
                assert!(zero && seg("B", 'R') && !seg("B", 'F'));
                assert_eq!(b_close_unread, Some(10000));
                assert_eq!(a_recv_errno, Some("ECONNRESET".into()));
            }
            Mode::File(_) => unreachable!("the captures are of shipped modes"),
        }
    }
}
