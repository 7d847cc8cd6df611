//! The states and notes `analyze --conn N` infers from a capture, on public corpus files and on captures recorded
//! from the real kernel (captures/analyze/): what the packets prove, one test per class of ending. Each test reads
//! the segment objects of `--format json` (`states_after`, `notes`) and asserts what RFC 9293 says the receiver
//! must do with them.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn corpus_file(name: &str) -> Option<PathBuf> {
    tcp_close_watch::testing::corpus_file(name, "infer")
}

pub fn recorded(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("captures/analyze")
        .join(name)
}

/// One segment row of a timeline: who sent it, its flags, the states after it, its notes.
#[derive(Debug)]
struct Row {
    from: String,
    flags: String,
    states: (String, String),
    notes: Vec<String>,
}

/// The segment rows of connection `conn`, and the JSON lines that are not segments (the account).
fn timeline(file: &std::path::Path, conn: &str) -> (Vec<Row>, Vec<Value>) {
    let out = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(["analyze", "--format", "json", "--conn", conn])
        .arg(file)
        .output()
        .expect("the binary runs");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = Vec::new();
    let mut other = Vec::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "segment" {
            other.push(v);
            continue;
        }
        let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
        rows.push(Row {
            from: s(&v["side"]),
            flags: s(&v["flags"]),
            states: (s(&v["states_after"][0]), s(&v["states_after"][1])),
            notes: v["notes"].as_array().unwrap().iter().map(s).collect(),
        });
    }
    (rows, other)
}

fn st(r: &Row) -> (&str, &str) {
    (r.states.0.as_str(), r.states.1.as_str())
}

/// rst-inject-rae.pcap: a RST whose ACK is the SYN's own number answered the SYN 234 ms before the real SYN-ACK.
/// It was read as "connection refused" and the client drawn CLOSE while it went on sending. In SYN-SENT a RST
/// counts only when SEG.ACK > ISS: the client keeps waiting and the handshake completes.
#[test]
fn rst_with_the_syns_own_number_as_ack_is_dropped_in_syn_sent() {
    let Some(file) = corpus_file("rst-inject-rae.pcap") else {
        return;
    };
    let (rows, _) = timeline(&file, "0");
    assert_eq!(rows[1].flags, "R.e");
    assert_eq!(st(&rows[1]).0, "SYN_SENT", "{rows:#?}");
    assert!(
        rows[1].notes[0].starts_with("RST dropped: in SYN_SENT"),
        "{rows:#?}"
    );
    assert!(
        rows.iter()
            .all(|r| !r.notes.iter().any(|n| n.contains("refused")))
    );
    // the handshake completes after it
    assert_eq!(st(&rows[3]), ("ESTABLISHED", "ESTABLISHED"));
    // the client's data after the server's real RST shows that RST had not reached it: never CLOSE while sending
    for r in rows
        .iter()
        .filter(|r| r.from == "A" && !r.flags.contains('R'))
    {
        assert_ne!(st(r).0, "CLOSE", "{r:?}");
    }
    for (i, r) in rows.iter().enumerate().filter(|(_, r)| r.from == "A") {
        if i > 0 {
            assert_ne!(
                st(&rows[i - 1]).0,
                "CLOSE",
                "shown closed before sending: {r:?}"
            );
        }
    }
    // the forged RST carries the client's own SYN window (16384), none of the server's
    let a = account_of(&file);
    assert!(a.contains("window 16384, the client's own"), "{a}");
}

/// syn-then-rst.pcap: the client's RST after its SYN was called "RST ignored … (RFC 5961: challenge ACK)". A
/// listener ignores RST, and an out-of-window RST is dropped silently: no challenge ACK either way.
#[test]
fn rst_to_a_listener_is_ignored_without_a_challenge_ack() {
    let Some(file) = corpus_file("syn-then-rst.pcap") else {
        return;
    };
    let (rows, _) = timeline(&file, "0");
    assert_eq!(st(&rows[1]), ("CLOSE", "LISTEN"));
    let note = &rows[1].notes[0];
    assert!(note.contains("LISTEN, which ignores RST"), "{note}");
    assert!(!note.contains("challenge ACK and"), "{note}");
    assert!(note.contains("no challenge ACK"), "{note}");
}

/// kerberos_tso.pcapng: a RST after the server had answered every request was explained as "RST with N bytes of
/// the client's data acknowledged but no FIN: a close() with unread data": N was every byte of the connection,
/// and the server had read and answered them. Its 7 KDC connections end: request, answer, the client's FIN, the
/// server's ACK of it, the server's RST.
#[test]
fn a_reset_after_answered_requests_is_not_called_a_close_with_unread_data() {
    let Some(file) = corpus_file("kerberos_tso.pcapng") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(["analyze", "--conn", "all", "--format", "json"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let accounts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["kind"] == "account")
        .collect();
    assert_eq!(accounts.len(), 11, "one account per connection");
    let text = |v: &Value| v["account"].to_string();
    for a in &accounts {
        assert!(
            !text(a).contains("bytes of the client's data acknowledged"),
            "{a}"
        );
        // "likely" only with the evidence: the reset's sender's window shrank after the data came
        if text(a).contains("Close with unread data, likely") {
            assert!(
                text(a).contains("sent nothing")
                    || text(a).contains("window fell")
                    || text(a).contains("no window update"),
                "{a}"
            );
        }
    }
    let abortive = accounts
        .iter()
        .filter(|a| text(a).contains("Abortive close after the client's FIN"))
        .count();
    assert_eq!(abortive, 7, "{accounts:#?}");
    for a in accounts.iter().filter(|a| text(a).contains("Abortive")) {
        assert!(!text(a).contains("unread data, likely"), "{a}");
    }
    // the states say the server took the client's FIN before its RST
    let (rows, _) = timeline(&file, "1");
    let rst = rows.iter().position(|r| r.flags.contains('R')).unwrap();
    assert_eq!(st(&rows[rst - 1]), ("FIN_WAIT2", "CLOSE_WAIT"));
}

/// The account lines of connection 0 of a recorded capture, joined.
fn account_of(file: &std::path::Path) -> String {
    let (_, other) = timeline(file, "0");
    other
        .iter()
        .filter(|v| v["kind"] == "account")
        .map(|v| v["account"].to_string())
        .collect()
}

/// Recorded: connect() to a port nothing listens on (captures/analyze/README.md says how each was made).
#[test]
fn recorded_refused_connect() {
    let f = recorded("refused.pcap");
    let (rows, _) = timeline(&f, "0");
    assert_eq!(rows.len(), 2);
    assert_eq!(st(&rows[0]), ("SYN_SENT", "CLOSE"), "nothing listens there");
    assert_eq!(st(&rows[1]), ("CLOSE", "CLOSE"));
    assert!(rows[1].notes[0].starts_with("connection refused"));
    assert!(account_of(&f).contains("Refused"));
}

/// Recorded: the server reads 1 byte of a 117-byte request and closes.
#[test]
fn recorded_close_with_unread_data() {
    let f = recorded("unread.pcap");
    let (rows, _) = timeline(&f, "0");
    let rst = rows.last().unwrap();
    assert_eq!((rst.from.as_str(), st(rst)), ("B", ("CLOSE", "CLOSE")));
    let a = account_of(&f);
    assert!(a.contains("Close with unread data, likely"), "{a}");
    assert!(a.contains("no window update"), "{a}");
    assert!(
        a.contains("In flight when the reset came: the client's 117 bytes"),
        "{a}"
    );
    assert!(
        a.contains("POST /orders HTTP/1.1\\\\r\\\\nHost: shop"),
        "escaped preview: {a}"
    );
}

/// Recorded: the server closes an idle (1.5 s) connection; the client's next request, 0.5 s later, draws RST.
#[test]
fn recorded_keepalive_race() {
    let f = recorded("keepalive-race.pcap");
    let (rows, _) = timeline(&f, "0");
    let fin = rows.iter().position(|r| r.flags.contains('F')).unwrap();
    assert_eq!(rows[fin].from, "B");
    let a = account_of(&f);
    assert!(a.contains("Keep-alive race, likely"), "{a}");
    assert!(a.contains("idle for 1.5 s"), "{a}");
    assert!(a.contains("GET /b HTTP/1.1"), "{a}");
}

/// Recorded: the server goes silent; the client's keepalive sends 3 probes a second apart and resets.
#[test]
fn recorded_dead_peer() {
    let f = recorded("dead-peer.pcap");
    let (rows, _) = timeline(&f, "0");
    let probes = rows
        .iter()
        .filter(|r| r.from == "A" && r.flags == ".")
        .count();
    assert!(probes >= 3, "{rows:#?}");
    let a = account_of(&f);
    assert!(a.contains("Dead peer, likely"), "{a}");
    assert!(a.contains("3 keepalive probes"), "{a}");
    assert!(a.contains("every 1.0 s"), "{a}");
    assert!(
        !a.contains("In flight"),
        "the answered pong was not cut short: {a}"
    );
}

/// Recorded: the server never reads; the client fills its window, waits, and aborts with SO_LINGER {1, 0}.
#[test]
fn recorded_zero_window_then_abort() {
    let f = recorded("zero-window.pcap");
    let a = account_of(&f);
    assert!(a.contains("Zero window, then abort"), "{a}");
    assert!(a.contains("the server advertised a zero window"), "{a}");
}

/// Recorded: the client's first FIN is dropped; the server sends its FIN before it has the client's.
#[test]
fn recorded_simultaneous_close() {
    let f = recorded("simultaneous-close.pcap");
    let (rows, _) = timeline(&f, "0");
    for r in &rows {
        for s in [&r.states.0, &r.states.1] {
            assert!(
                s != "CLOSE_WAIT" && s != "LAST_ACK",
                "not an ordinary close: {rows:#?}"
            );
        }
    }
    assert!(rows.iter().any(|r| r.states.0 == "CLOSING"));
    assert_eq!(st(rows.last().unwrap()), ("TIME_WAIT", "TIME_WAIT"));
    assert!(
        rows.iter()
            .any(|r| r.notes.iter().any(|n| n.starts_with("simultaneous close")))
    );
}

/// Recorded: the client's FINs are dropped for 1.5 s (the first four copies lost) before the server acknowledges one.
#[test]
fn recorded_fin_retransmitted_until_acknowledged() {
    let f = recorded("fin-retransmit.pcap");
    let (rows, _) = timeline(&f, "0");
    let first_fin = rows.iter().position(|r| r.flags.contains('F')).unwrap();
    let server_ack = rows
        .iter()
        .enumerate()
        .skip(first_fin)
        .find(|(_, r)| r.from == "B")
        .map(|(i, _)| i)
        .unwrap();
    assert!(server_ack - first_fin >= 3, "several copies: {rows:#?}");
    for r in &rows[first_fin..server_ack] {
        assert_eq!(st(r), ("FIN_WAIT1", "ESTABLISHED"), "{r:?}");
    }
    for r in &rows[first_fin + 1..server_ack] {
        assert!(
            r.notes[0].contains("ESTABLISHED if the FIN was lost, CLOSE_WAIT if only its ACK was")
        );
    }
    assert_eq!(st(&rows[server_ack]), ("FIN_WAIT2", "CLOSE_WAIT"));
}

/// Recorded: both sides connect() to each other; the server's SYN reaches the client in SYN-SENT.
#[test]
fn recorded_simultaneous_open() {
    let f = recorded("simultaneous-open.pcap");
    let (rows, _) = timeline(&f, "0");
    assert_eq!(st(&rows[1]), ("SYN_SENT", "SYN_SENT"));
    assert_eq!(rows[2].flags, "S.");
    assert_eq!(st(&rows[2]).0, "SYN_RECV");
    assert!(rows[2].notes[0].starts_with("simultaneous open"));
    assert!(
        rows.iter()
            .flat_map(|r| &r.notes)
            .all(|n| !n.contains("retransmitted"))
    );
    assert_eq!(st(&rows[3]), ("ESTABLISHED", "ESTABLISHED"), "{rows:#?}");
}

/// Recorded: a socket connected to itself. Its SYN-ACK was called "retransmitted" and the end "half-closed (no FIN
/// back)", where its own FIN came back to it and was acknowledged.
#[test]
fn recorded_self_connect() {
    let f = recorded("self-connect.pcap");
    let (rows, _) = timeline(&f, "0");
    assert!(
        rows.iter().all(|r| r.states.0 == r.states.1),
        "one socket: {rows:#?}"
    );
    assert!(
        rows.iter()
            .flat_map(|r| &r.notes)
            .all(|n| !n.contains("retransmitted"))
    );
    assert!(rows.iter().any(|r| r.states.0 == "ESTABLISHED"));
    let fin = rows.iter().position(|r| r.flags.contains('F')).unwrap();
    assert_eq!(rows[fin].states.0, "CLOSING");
    assert_eq!(rows.last().unwrap().states.0, "TIME_WAIT");
    let a = account_of(&f);
    assert!(a.contains("A socket connected to itself"), "{a}");
    assert!(!a.contains("Handshake timeout"), "{a}");
    // The summary row: the FIN and the 8 bytes reached the socket that sent them (it is both ends), so no
    // "half-closed"; conn_state and history are Zeek's, which takes every segment as the originator's.
    let s = summary_of(&f);
    assert_eq!(s["a"], s["b"]);
    assert_eq!((&s["fins"]["a"], &s["fins"]["b"]), (&1.into(), &1.into()));
    assert_eq!((&s["bytes"]["a"], &s["bytes"]["b"]), (&8.into(), &8.into()));
    let ending = s["ending"].as_str().unwrap();
    assert!(
        !ending.contains("half-closed") && ending.contains("its FIN came back"),
        "{ending}"
    );
    assert_eq!(
        (&s["conn_state"], &s["history"]),
        (&"SH".into(), &"SADF".into())
    );
}

/// The summary row (`--format json`, the `connection` object) of connection 0.
fn summary_of(file: &std::path::Path) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(["analyze", "--format", "json"])
        .arg(file)
        .output()
        .expect("the binary runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["kind"] == "connection" && v["id"] == 0)
        .expect("connection 0")
}

/// Recorded: every SYN-ACK dropped, tcp_syn_retries 1: the client's SYN sent again and again, never answered,
/// no RST. Nothing reached the server's column, which stays LISTEN; the account says timeout, not refusal.
#[test]
fn recorded_handshake_timeout() {
    let f = recorded("handshake-timeout.pcap");
    let (rows, _) = timeline(&f, "0");
    assert!(rows.len() >= 2, "{rows:#?}");
    assert!(
        rows.iter().all(|r| r.flags == "S" && r.from == "A"),
        "{rows:#?}"
    );
    assert!(
        rows.iter().all(|r| st(r) == ("SYN_SENT", "LISTEN")),
        "{rows:#?}"
    );
    assert!(
        rows[1..]
            .iter()
            .all(|r| r.notes.iter().any(|n| n.contains("retransmitted SYN")))
    );
    let a = account_of(&f);
    assert!(a.contains("Handshake timeout, likely"), "{a}");
    assert!(!a.contains("Refused") && !a.contains("reset"), "{a}");
    let s = summary_of(&f);
    assert_eq!(
        (&s["conn_state"], &s["history"]),
        (&"S0".into(), &"S".into())
    );
}

/// Recorded: the client close()s (tcp_fin_timeout 1 s in its namespace), its FIN is acknowledged, and the server
/// sends 2.5 s later: a bare RST (no ACK, seq = the server's ACK number) from a host with no socket left. Its row
/// says FIN_WAIT2 and tcp_fin_timeout; the RST's IP ID 0 (Linux's, for a RST of no socket, as in its SYN-ACK from
/// a request socket) is no evidence of forgery.
#[test]
fn recorded_bare_rst_after_fin_wait2_timeout() {
    let f = recorded("fin-wait2-timeout.pcap");
    let (rows, _) = timeline(&f, "0");
    let fin = rows.iter().position(|r| r.flags.contains('F')).unwrap();
    assert_eq!(rows[fin].from, "A");
    let acked = rows[fin + 1..].iter().position(|r| r.from == "B").unwrap() + fin + 1;
    assert_eq!(st(&rows[acked]), ("FIN_WAIT2", "CLOSE_WAIT"), "{rows:#?}");
    let rst = rows.last().unwrap();
    assert_eq!((rst.from.as_str(), rst.flags.as_str()), ("A", "R"));
    assert_eq!(st(rst), ("CLOSE", "CLOSE"));
    assert!(
        rst.notes
            .iter()
            .any(|n| n.starts_with("bare RST") && n.contains("tcp_fin_timeout")),
        "{rst:#?}"
    );
    let a = account_of(&f);
    assert!(!a.contains("looks injected"), "{a}");
    assert!(a.contains("late news"), "the data the RST refused: {a}");
}

/// Recorded: a copy of the client's SYN sent again 0.5 s after the close (client in TIME_WAIT). The listening
/// server answers with a SYN-ACK of new numbers, the TIME_WAIT its old ACK, the server in SYN_RECV a RST for that
/// ACK (and stays: it sends the SYN-ACK again), which ended the client's TIME_WAIT: the second SYN-ACK draws a
/// RST at exactly the new half-open connection's RCV.NXT, which is judged against it and not the old numbers.
#[test]
fn recorded_duplicate_syn_after_close() {
    let f = recorded("duplicate-syn.pcap");
    let (rows, _) = timeline(&f, "0");
    let d = rows
        .iter()
        .position(|r| r.notes.iter().any(|n| n.starts_with("duplicate SYN")))
        .expect("the duplicate SYN is recognised");
    assert_eq!(rows[d].flags, "S");
    assert_eq!(st(&rows[d]).0, "TIME_WAIT", "not restarted: {rows:#?}");
    assert!(rows[d].notes.iter().all(|n| !n.contains("retransmitted")));
    let synack = &rows[d + 1];
    assert_eq!(
        (synack.flags.as_str(), st(synack)),
        ("S.", ("TIME_WAIT", "SYN_RECV"))
    );
    let rsts: Vec<&Row> = rows.iter().filter(|r| r.flags == "R").collect();
    assert_eq!(rsts.len(), 2, "{rows:#?}");
    assert_eq!(rsts[0].from, "B");
    assert_eq!(
        st(rsts[0]),
        ("CLOSE", "SYN_RECV"),
        "it stays in SYN_RECV: {rows:#?}"
    );
    // the RST for the second SYN-ACK sits at the new connection's RCV.NXT: taken, not "out of the window"
    assert_eq!(rsts[1].from, "A");
    assert_eq!(st(rsts[1]), ("CLOSE", "CLOSE"), "{rows:#?}");
    assert!(
        rsts[1]
            .notes
            .iter()
            .all(|n| !n.contains("out of the window")),
        "{:#?}",
        rsts[1]
    );
    let a = account_of(&f);
    assert!(a.contains("An old duplicate SYN, likely"), "{a}");
    assert!(!a.contains("socket that no longer exists, likely"), "{a}");
}

/// A RST whose window is merely new to its sender (a Windows client's 9300, a load balancer's 8201 after 8190) is
/// how those stacks send it: not evidence of forgery. Only a window copied from the other side counts.
#[test]
fn a_rst_window_new_to_its_sender_is_not_called_injected() {
    for name in ["simpleauth.pcap", "fin_retransmission.pcap"] {
        let Some(file) = corpus_file(name) else {
            return;
        };
        let (rows, _) = timeline(&file, "0");
        let rst = rows.iter().find(|r| r.flags.starts_with('R')).unwrap();
        let others: Vec<&Row> = rows.iter().filter(|r| r.from == rst.from).collect();
        assert!(others.len() > 1, "{name}: {rows:#?}");
        let a = account_of(&file);
        assert!(!a.contains("looks injected"), "{name}: {a}");
    }
}
