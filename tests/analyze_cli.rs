//! The real `tcp-close-watch analyze` binary on captures written by the test: what a user sees on stdout and
//! stderr, and the exit code, for good input, bad input and each output format.

use std::io::Write;
use std::process::{Command, Output, Stdio};

use etherparse::PacketBuilder;
use tcp_close_watch::capfile::Endian;
use tcp_close_watch::capfile::write::PcapWriter;

const BIN: &str = env!("CARGO_BIN_EXE_tcp-close-watch");

/// (time ns, frame) → classic little-endian µs pcap bytes.
fn pcap(link: u32, frames: &[(i64, Vec<u8>)]) -> Vec<u8> {
    let mut w = PcapWriter::new(Endian::Little, false, 65535, link);
    for (ts, f) in frames {
        w.record(*ts, f, f.len() as u32);
    }
    w.into_bytes()
}

const S: u8 = 1;
const SA: u8 = 2;
const A: u8 = 3;
const F: u8 = 4;
const R: u8 = 5;
const P: u8 = 6;

/// One Ethernet/IPv4 frame from client (10.0.0.1:port) or server (10.0.0.2:80).
fn frame(port: u16, from_client: bool, kind: u8, seq: u32, ack: u32, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sp, dp) = if from_client {
        ([10, 0, 0, 1], [10, 0, 0, 2], port, 80)
    } else {
        ([10, 0, 0, 2], [10, 0, 0, 1], 80, port)
    };
    let b = PacketBuilder::ethernet2([1; 6], [2; 6])
        .ipv4(src, dst, 64)
        .tcp(sp, dp, seq, 1000);
    let b = match kind {
        S => b.syn(),
        SA => b.syn().ack(ack),
        A => b.ack(ack),
        F => b.fin().ack(ack),
        R => b.rst().ack(ack),
        _ => b.psh().ack(ack),
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).unwrap();
    out
}

/// Two connections: port 1000 closes cleanly, port 2000 is reset by the server after the client's data.
fn two_connections() -> Vec<(i64, Vec<u8>)> {
    let t0 = 1_700_000_000_000_000_000;
    let steps = [
        frame(1000, true, S, 100, 0, b""),
        frame(2000, true, S, 700, 0, b""),
        frame(1000, false, SA, 500, 101, b""),
        frame(2000, false, SA, 900, 701, b""),
        frame(1000, true, A, 101, 501, b""),
        frame(2000, true, A, 701, 901, b""),
        frame(2000, true, P, 701, 901, b"hello12345"),
        frame(2000, false, A, 901, 711, b""),
        frame(2000, false, R, 901, 711, b""),
        frame(1000, true, F, 101, 501, b""),
        frame(1000, false, F, 501, 102, b""),
        frame(1000, true, A, 102, 502, b""),
    ];
    steps
        .into_iter()
        .enumerate()
        .map(|(i, f)| (t0 + i as i64 * 1_000_000, f))
        .collect()
}

fn run(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(BIN)
        .arg("analyze")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(data) = stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).to_string()
}

fn write(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().to_string()
}

#[test]
fn summary_table_names_endings_and_zeek_states() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "two.pcap", &pcap(1, &two_connections()));
    let out = run(&[&f], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let row0 = s.lines().find(|l| l.starts_with("0 ")).unwrap();
    assert!(
        row0.contains("10.0.0.1:1000") && row0.contains("SF"),
        "{row0}"
    );
    let row1 = s.lines().find(|l| l.starts_with("1 ")).unwrap();
    assert!(
        row1.contains("RSTR") && row1.contains("reset by the server"),
        "{row1}"
    );
    assert!(
        s.contains("1 closed cleanly (client first), 1 reset by the server"),
        "{s}"
    );
}

#[test]
fn json_lines_have_the_stable_keys_and_a_totals_line() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "two.pcap", &pcap(1, &two_connections()));
    let out = run(&[&f, "--format", "json"], None);
    assert_eq!(out.status.code(), Some(0));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    for key in [
        "id",
        "a",
        "b",
        "conn_state",
        "history",
        "fins",
        "rsts",
        "first_close",
        "bytes",
        "packets",
        "start",
        "duration",
    ] {
        assert!(lines[0].get(key).is_some(), "missing {key}");
    }
    assert_eq!(lines[1]["first_close"]["by"], "B");
    assert_eq!(lines[1]["first_close"]["flag"], "RST");
    assert_eq!(lines[1]["bytes"]["a"], 10);
    assert_eq!(lines[0]["fins"]["b"], 1);
    assert_eq!(lines[0]["first_close"]["by"], "A");
    let totals = &lines[2];
    assert_eq!(totals["kind"], "totals");
    assert_eq!(totals["connections"], 2);
    assert_eq!(totals["tcp_segments"], 12);
    assert!(totals.get("skipped").is_some());
}

#[test]
fn only_resets_and_port_filters() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "two.pcap", &pcap(1, &two_connections()));
    let ids = |args: &[&str]| -> Vec<u64> {
        let mut a = vec![f.as_str(), "--format", "json"];
        a.extend(args);
        text(&run(&a, None).stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["kind"] == "connection")
            .map(|v| v["id"].as_u64().unwrap())
            .collect()
    };
    assert_eq!(ids(&["--only", "resets"]), [1]);
    assert_eq!(ids(&["--only", "fins"]), [0]);
    assert_eq!(ids(&["--port", "1000"]), [0]);
    assert_eq!(ids(&["--host", "10.0.0.9"]), Vec::<u64>::new());
    assert_eq!(ids(&["--filter", "tcp[tcpflags] & tcp-rst != 0"]), [1]);
}

#[test]
fn conn_timeline_has_client_and_server_columns_and_states() {
    let dir = tempfile::tempdir().unwrap();
    let f = write(&dir, "two.pcap", &pcap(1, &two_connections()));
    let out = run(&[&f, "--conn", "1", "--color", "never"], None);
    assert_eq!(out.status.code(), Some(0));
    let s = text(&out.stdout);
    assert!(s.contains("client 10.0.0.1:2000"), "{s}");
    assert!(s.contains("server 10.0.0.2:80"), "{s}");
    assert!(s.contains("ESTABLISHED"), "{s}");
    assert!(s.contains("the server resets the connection"), "{s}");
    // the account: the server acknowledged the client's 10 bytes, never answered them, and reset
    assert!(s.contains("What happened:"), "{s}");
    assert!(
        s.contains("Close with unread data, likely: the server reset"),
        "{s}"
    );
    assert!(s.contains("the client's 10 bytes"), "{s}");
    assert!(s.contains("\"hello12345\""), "{s}");
    let out = run(&[&f, "--conn", "0", "--format", "json"], None);
    let rows: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["kind"] == "segment")
        .collect();
    assert_eq!(rows.len(), 6);
    assert_eq!(rows.last().unwrap()["states_after"][0], "TIME_WAIT");
}

#[test]
fn stdin_and_gzip() {
    let plain = pcap(1, &two_connections());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    for input in [plain, gz] {
        let out = run(&["-", "--format", "csv"], Some(&input));
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        let s = text(&out.stdout);
        assert!(s.starts_with("file,id,a,b,"), "{s}");
        assert_eq!(s.lines().count(), 3);
    }
}

#[test]
fn bad_input_gives_one_clear_line_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(&dir, "empty.pcap", b"");
    let html = write(
        &dir,
        "page.pcap",
        b"<html><body>not a capture</body></html>",
    );
    let brcm = write(&dir, "brcm.pcap", &pcap(281, &[(0, vec![0; 40])]));
    let folder = dir.path().to_string_lossy().to_string();
    // A pcapng section header whose option claims 12336 bytes in a 36-byte block.
    let mut shb = vec![0x0a, 0x0d, 0x0d, 0x0a];
    shb.extend(36u32.to_le_bytes());
    shb.extend(0x1a2b3c4du32.to_le_bytes());
    shb.extend([1, 0, 0, 0]);
    shb.extend([0xff; 8]);
    shb.extend([1, 0, 0x30, 0x30, 0, 0, 0, 0]);
    shb.extend(36u32.to_le_bytes());
    let bad_shb = write(&dir, "shb.pcapng", &shb);
    for (path, needle) in [
        (empty.as_str(), "empty file"),
        (html.as_str(), "not a pcap or pcapng file"),
        (folder.as_str(), "is a directory"),
        (brcm.as_str(), "link type 281"),
        (bad_shb.as_str(), "longer than its block at byte 0"),
        ("/no/such/file.pcap", "cannot open"),
    ] {
        let out = run(&[path], None);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path}: {err}");
        assert!(err.contains(needle), "{path}: {err}");
        assert!(!err.contains("panicked"));
        assert_eq!(err.lines().count(), 1, "one line per failure: {err}");
    }
}

#[test]
fn one_line_per_failure_and_a_count_only_for_several_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = pcap(1, &two_connections());
    bytes.truncate(bytes.len() - 20);
    let cut = write(&dir, "cut.pcap", &bytes);
    let out = run(&[&cut], None);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cut.pcap: file cut short"), "{err}");
    let empty = write(&dir, "empty.pcap", b"");
    let out = run(&[&cut, &empty, &cut], None);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert_eq!(
        err.lines().count(),
        4,
        "three failures and the count: {err}"
    );
    assert!(
        err.lines().last().unwrap().contains("3 of 3 inputs"),
        "{err}"
    );
}

#[test]
fn a_pcapng_block_with_a_different_trailing_length_is_damaged() {
    let dir = tempfile::tempdir().unwrap();
    let saved = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/captures/abrupt.pcapng"
    ))
    .unwrap();
    let mut bytes = saved.clone();
    let last = bytes.len() - 4;
    bytes[last] ^= 4;
    let f = write(&dir, "damaged.pcapng", &bytes);
    let out = run(&[&f], None);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("ends with length"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn file_cut_mid_packet_reports_where_and_keeps_results() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = pcap(1, &two_connections());
    bytes.truncate(bytes.len() - 20);
    let f = write(&dir, "cut.pcap", &bytes);
    let out = run(&[&f, "--format", "json"], None);
    assert_eq!(out.status.code(), Some(3));
    let err = text(&out.stderr);
    assert!(
        err.contains("cut short") && err.contains("after frame 11"),
        "{err}"
    );
    let last = text(&out.stdout).lines().last().unwrap().to_string();
    let totals: serde_json::Value = serde_json::from_str(&last).unwrap();
    assert_eq!(totals["frames"], 11);
    assert!(totals["error"].as_str().unwrap().contains("cut short"));
}

#[test]
fn a_good_and_a_bad_file_exit_3_with_results_for_the_good_one() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "two.pcap", &pcap(1, &two_connections()));
    let bad = write(&dir, "empty.pcap", b"");
    let out = run(&[&good, &bad], None);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stdout).contains("2 connections"));
}

#[test]
fn bad_filter_expression_is_refused_before_reading() {
    let out = run(&["-", "--filter", "tcp port banana"], Some(b""));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--filter"));
}
