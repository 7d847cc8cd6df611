//! Scenario files: the shipped ones match the modes they replace, a broken file is told with its line, column and
//! what was expected (one test per kind of mistake), a teacher's file plays, is checked and saved with its text,
//! and every shipped scenario meets its expectations on this kernel (`run --mode all --check`, repeated).

use std::process::{Command, Output};

use tcp_close_watch::model::run::Mode;
use tcp_close_watch::scenario::{self, ParseError};

fn tcw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn every_shipped_file_parses_and_names_its_mode() {
    for mode in Mode::ALL {
        let s = scenario::script(mode).unwrap_or_else(|e| panic!("{mode}: {e}"));
        assert_eq!(s.name, mode.name());
        assert_eq!(
            s.summary,
            mode.summary(),
            "{mode}: summary differs from modes"
        );
        assert!(!s.expects.is_empty(), "{mode} has no expectation");
        assert!(!s.teach.is_empty(), "{mode} has no teaching text");
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("scenarios")
            .join(format!("{mode}.scenario"));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            scenario::text(mode),
            "the binary carries scenarios/{mode}.scenario"
        );
    }
}

const HEAD: &str = "scenario t\nsummary a test\n";

/// The error of `body` after a good header (so its first line is line 3).
fn error(body: &str) -> ParseError {
    match scenario::parse(&format!("{HEAD}{body}")) {
        Ok(s) => panic!("{body:?} parsed: {s:?}"),
        Err(e) => e,
    }
}

fn assert_error(body: &str, line: usize, col: usize, expected: &str) {
    let e = error(body);
    assert_eq!((e.line, e.col), (line, col), "{body:?}: {e}");
    assert!(
        e.expected.contains(expected),
        "{body:?}: expected {expected:?} in {e}"
    );
}

#[test]
fn a_good_file_reads_whole() {
    let s = scenario::parse(
        "# a comment\nscenario my-lab\nsummary  what it shows\nteach one\nteach two\n\
         A connect\nB accept\nA send \"hi # not a comment\\n\"  # a comment\nA send 100 bytes\n\
         wait B unread 3\nA recv 64 &\nB setsockopt TCP_LINGER2 -1\nB shutdown RDWR\nB close\n\
         wait A returns\nwait A state CLOSE|CLOSE_WAIT if B state CLOSE\nsleep 10 ms\nA recv until end\n\
         expect B sends RST reason TCP_ABORT_ON_CLOSE|TCP_STATE\nexpect A recv#1 = ECONNRESET|EPIPE\n\
         expect A send > 0\nexpect A close ok\nexpect A send#2 = 100\nexpect B sends no FIN\n",
    )
    .unwrap();
    assert_eq!(s.name, "my-lab");
    assert_eq!(s.teach, ["one", "two"]);
    assert_eq!(s.steps.len(), 13);
    assert_eq!(s.expects.len(), 6);
    assert_eq!(s.steps[2].line, 8);
    assert_eq!(s.steps[2].text, "A send \"hi # not a comment\\n\"");
    match &s.steps[2].item {
        scenario::Step::Call {
            call: scenario::Call::Send(d),
            ..
        } => assert_eq!(d, b"hi # not a comment\n"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_unknown_keyword_is_named() {
    assert_error("C connect\n", 3, 1, "A, B, wait");
}

#[test]
fn an_unknown_call_is_named() {
    assert_error("A listen\n", 3, 3, "connect, accept");
}

#[test]
fn a_call_of_the_other_peer_is_refused() {
    assert_error("B connect\n", 3, 3, "a call B can make");
    assert_error("A accept\n", 3, 3, "a call A can make");
}

#[test]
fn a_bad_number_is_named() {
    assert_error(
        "A connect\nwait B unread lots\n",
        4,
        15,
        "a number of bytes",
    );
}

#[test]
fn an_unterminated_string_points_at_its_quote() {
    assert_error("A send \"hello\n", 3, 8, "a closing \"");
}

#[test]
fn an_unknown_escape_points_at_it() {
    assert_error("A send \"a\\qb\"\n", 3, 10, "an escape");
}

#[test]
fn an_unknown_socket_option_is_named() {
    assert_error("A setsockopt SO_REUSEPORT 1\n", 3, 14, "SO_LINGER");
}

#[test]
fn an_unknown_state_is_named() {
    assert_error("wait A state CLOSED\n", 3, 14, "a state as ss names it");
    // in a list, the column of the wrong one
    assert_error("wait A state CLOSE|FINWAIT\n", 3, 20, "a state");
}

#[test]
fn an_unknown_errno_is_named() {
    assert_error(
        "A connect\nexpect A recv = ECONNRESTE\n",
        4,
        17,
        "an errno name",
    );
}

#[test]
fn a_missing_word_is_found_at_the_end_of_the_line() {
    assert_error("A shutdown\n", 3, 11, "RD, WR or RDWR");
}

#[test]
fn words_after_a_step_are_refused() {
    assert_error("A close now\n", 3, 9, "the end of the line");
}

#[test]
fn only_a_recv_runs_in_the_background() {
    assert_error("A send \"x\" &\n", 3, 12, "only a single recv");
}

#[test]
fn a_blocked_peer_cannot_act() {
    assert_error(
        "A connect\nB accept\nA recv &\nA close\n",
        6,
        1,
        "A is blocked since line 5",
    );
}

#[test]
fn a_blocked_peer_cannot_be_destroyed() {
    // its socket is in use by the call it sleeps in: destroy it before, or after `wait A returns`
    assert_error(
        "A connect\nB accept\nA recv &\ndestroy A\n",
        6,
        1,
        "A is blocked since line 5",
    );
    assert_error("destroy C\n", 3, 9, "a peer, A or B");
}

#[test]
fn an_unknown_link_condition_is_named() {
    assert_error(
        "link sideways\n",
        3,
        6,
        "blackhole, down, rate RATE or delay N ms",
    );
    assert_error("link rate fast\n", 3, 11, "a rate, as 1mbit");
    assert_error("link delay 100 s\n", 3, 16, "ms");
    // a good one parses, and marks the scenario as played in namespaces of its own
    let s = scenario::parse(&format!("{HEAD}A connect\nlink rate 500kbit\n")).unwrap();
    assert!(s.links());
}

#[test]
fn one_background_call_at_a_time() {
    assert_error(
        "A connect\nB accept\nA recv &\nB recv &\n",
        6,
        1,
        "one background call at a time",
    );
}

#[test]
fn a_wait_for_a_call_not_running_is_refused() {
    assert_error("A connect\nwait A returns\n", 4, 1, "no call of A runs");
}

#[test]
fn a_background_call_never_waited_for_is_refused() {
    assert_error(
        "A connect\nB accept\nA recv 64 &\nB close\n",
        5,
        1,
        "wait A returns",
    );
}

#[test]
fn the_header_lines_are_required() {
    let e = scenario::parse("summary x\nA connect\n").unwrap_err();
    assert!(e.expected.contains("scenario NAME"), "{e}");
    let e = scenario::parse("scenario x\nA connect\n").unwrap_err();
    assert!(e.expected.contains("summary"), "{e}");
    let e = scenario::parse("scenario x\nsummary y\n").unwrap_err();
    assert!(e.expected.contains("step"), "{e}");
    let e = scenario::parse("scenario x\nscenario y\n").unwrap_err();
    assert_eq!((e.line, e.col), (2, 1), "{e}");
    let e = scenario::parse("scenario My_Lab\n").unwrap_err();
    assert_eq!((e.line, e.col), (1, 10), "{e}");
}

#[test]
fn a_broken_file_is_one_line_naming_file_line_and_column() {
    let dir = std::env::temp_dir().join(format!("tcw-scn-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.scenario");
    std::fs::write(&file, format!("{HEAD}A connect\nB recv sixty\n")).unwrap();
    let o = tcw(&["run", "--no-capture", "--scenario", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(o.stdout.is_empty());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("{}:4:8: expected", file.display())),
        "{err}"
    );
    let o = tcw(&["run", "--scenario", dir.join("missing").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("cannot read scenario"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A teacher's own: B shuts down reading, A sends more; played without privileges (no capture), saved, and read
/// back without the file.
#[test]
fn a_saved_run_of_a_file_carries_its_text() {
    let dir = std::env::temp_dir().join(format!("tcw-scn-saved-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lab.scenario");
    let text = "scenario lab-one\nsummary B shuts down reading first\nA connect\nB accept\n\
                B shutdown RD\nA send \"after\\n\"\nwait B unread 6\nB recv 64\nB close\nA close\n\
                expect B recv = 6\n";
    std::fs::write(&file, text).unwrap();
    let saved = dir.join("lab.pcapng");
    let o = tcw(&[
        "run",
        "--no-capture",
        "--no-kernel",
        "--check",
        "--scenario",
        file.to_str().unwrap(),
        "-w",
        saved.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(&file).unwrap();
    let o = tcw(&["analyze", saved.to_str().unwrap(), "-f", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("\"mode\":\"lab-one\""), "{out}");
    let bytes = std::fs::read(&saved).unwrap();
    let inside = String::from_utf8_lossy(&bytes);
    assert!(
        inside.contains("B shutdown RD"),
        "the scenario's text is in the saved run"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--check` fails, exit 4, naming the line of an expectation the kernel did not meet.
#[test]
fn an_unmet_expectation_is_named_with_exit_4() {
    let dir = std::env::temp_dir().join(format!("tcw-scn-unmet-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("wrong.scenario");
    // a wrong belief: that the peer's close() makes A's send fail at once
    std::fs::write(
        &file,
        "scenario wrong\nsummary a wrong belief\nA connect\nB accept\nB close\nwait A state CLOSE_WAIT\n\
         A send \"x\"\nA close\nexpect A send = EPIPE\n",
    )
    .unwrap();
    let o = tcw(&[
        "run",
        "--no-capture",
        "--no-kernel",
        "--check",
        "--scenario",
        file.to_str().unwrap(),
    ]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(o.status.code(), Some(4), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(
            "not met: mode wrong, line 9: expected A send = EPIPE; seen: A's send(1 bytes) = 1"
        ),
        "{err}"
    );
    assert!(!o.stdout.is_empty(), "the run is printed all the same");
}

/// Every shipped scenario, played live with capture and the kernel's events, meets its expectations; three times.
#[test]
fn every_mode_meets_its_expectations_on_this_kernel() {
    if !is_root() {
        tcp_close_watch::testing::skip("run --mode all --check needs root (capture and tracefs)");
        return;
    }
    for round in 0..3 {
        let o = tcw(&["run", "--mode", "all", "--check", "-f", "json"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(0), "round {round}:\n{err}");
        for mode in Mode::ALL {
            assert!(
                err.contains(&format!("check: mode {mode}: ")),
                "round {round}: {mode} not checked:\n{err}"
            );
        }
    }
}

/// `--predict` with answers piped in, as a class would: each answer is set against what the run showed.
#[test]
fn predictions_are_set_against_the_run() {
    let dir = std::env::temp_dir().join(format!("tcw-scn-predict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("lab.scenario");
    std::fs::write(
        &file,
        "scenario lab\nsummary B closes with bytes unread\nA connect\nB accept\nA send \"12345\"\n\
         wait B unread 5\nB recv 2\nA recv &\nB close\nwait A returns\nA close\n\
         expect B sends RST\nexpect A recv = ECONNRESET\n",
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args([
            "run",
            "--no-capture",
            "--no-kernel",
            "--predict",
            "--scenario",
        ])
        .arg(&file)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"B\n-1 econnreset\n0\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("question 2: What does A's last recv() return"),
        "{err}"
    );
    // no capture: who resets cannot be told; the recv was predicted; 3 bytes were thrown away, not 0
    assert!(err.contains("the run cannot tell"), "{err}");
    assert!(err.contains("observed ECONNRESET: right"), "{err}");
    assert!(err.contains("observed 3: not what you said"), "{err}");
    assert!(err.contains("predict: 1 of 3 predictions right"), "{err}");
}

#[test]
fn a_pause_is_bounded() {
    assert_error("sleep 31 s\n", 3, 7, "at most 30 s");
    assert_error("sleep 2 minutes\n", 3, 9, "ms or s");
}

#[test]
fn waits_on_the_wire_and_the_kernel_read_whole() {
    use scenario::{Flag, KernelWait, Step, Wait};
    use tcp_close_watch::model::calls::Peer;
    use tcp_close_watch::model::tcp_state::TcpState;
    let s = scenario::parse(&format!(
        "{HEAD}A connect\nwait B sends FIN|RST\nwait A kernel sends RST\nwait B sends window 0\n\
         wait B kernel sends RST reason TCP_ABORT_ON_CLOSE|TCP_STATE\nwait A kernel receives RST\n\
         wait A kernel state CLOSE_WAIT|CLOSE\nwait A kernel reports ECONNRESET|EPIPE\n"
    ))
    .unwrap();
    let waits: Vec<&Wait> = s
        .steps
        .iter()
        .filter_map(|s| match &s.item {
            Step::Wait(w) => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(
        waits,
        [
            &Wait::Sends {
                peer: Peer::B,
                flags: vec![Flag::Fin, Flag::Rst]
            },
            &Wait::Kernel {
                peer: Peer::A,
                event: KernelWait::SendsReset { reasons: vec![] }
            },
            &Wait::ZeroWindow { peer: Peer::B },
            &Wait::Kernel {
                peer: Peer::B,
                event: KernelWait::SendsReset {
                    reasons: vec!["TCP_ABORT_ON_CLOSE".into(), "TCP_STATE".into()]
                }
            },
            &Wait::Kernel {
                peer: Peer::A,
                event: KernelWait::ReceivesReset
            },
            &Wait::Kernel {
                peer: Peer::A,
                event: KernelWait::State(vec![TcpState::CloseWait, TcpState::Closed])
            },
            &Wait::Kernel {
                peer: Peer::A,
                event: KernelWait::Reports(vec![libc::ECONNRESET, libc::EPIPE])
            },
        ]
    );
    assert_eq!(s.wire_wait().map(|w| w.line), Some(4));
    assert_eq!(s.kernel_wait().map(|w| w.line), Some(5));
}

#[test]
fn an_unknown_wait_is_named() {
    assert_error(
        "wait A sent FIN\n",
        3,
        8,
        "unread, acked, state, returns, sends or kernel",
    );
}

#[test]
fn a_wait_for_a_flag_names_the_flags() {
    assert_error("wait B sends ACK\n", 3, 14, "SYN, FIN, RST or window 0");
    assert_error("wait B sends FIN|PSH\n", 3, 18, "SYN, FIN, RST or window 0");
}

#[test]
fn a_wait_for_a_window_waits_for_a_zero_one() {
    assert_error("wait B sends window 100\n", 3, 21, "0 (a zero window)");
}

#[test]
fn an_unknown_kernel_event_is_named() {
    assert_error(
        "wait A kernel knows\n",
        3,
        15,
        "sends RST, receives RST, state S or reports ERRNO",
    );
}

#[test]
fn the_kernel_traces_resets_only() {
    assert_error("wait A kernel sends FIN\n", 3, 21, "RST");
    assert_error("wait A kernel receives SYN\n", 3, 24, "RST");
}

#[test]
fn a_bad_reset_reason_is_named() {
    assert_error(
        "wait B kernel sends RST reason abort_on_close\n",
        3,
        32,
        "the kernel's reset reason",
    );
}

#[test]
fn a_wait_for_an_unknown_state_or_errno_is_named() {
    assert_error(
        "wait A kernel state CLOSING|GONE\n",
        3,
        29,
        "a state as ss names it",
    );
    assert_error("wait A kernel reports ECONNRESTE\n", 3, 23, "an errno name");
}

/// A file in a directory of its own, played with `args`; the directory is removed.
fn play_file(name: &str, text: &str, args: &[&str]) -> Output {
    // tests run at once: a directory per call
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tcw-scn-{name}-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.scenario"));
    std::fs::write(&file, text).unwrap();
    let mut all = vec!["run", "--scenario", file.to_str().unwrap()];
    all.extend(args);
    let o = tcw(&all);
    std::fs::remove_dir_all(&dir).unwrap();
    o
}

/// A's keepalive gives up on a peer whose answers are blackholed: A's kernel sends RST (TCP_KEEPALIVE_TIMEOUT) on
/// a timer about 2 s after the link went, with nothing of the scenario's doing at that moment. `wait_line` waits
/// for one trace of that; A's close() after it must come after what it waits for, on the run's one clock.
fn a_wait_holds_the_next_step_until_the_kernel_timer_fires(
    wait_line: &str,
    awaited: impl Fn(&serde_json::Value) -> bool,
) {
    if !is_root() {
        tcp_close_watch::testing::skip(
            "a wait on the wire or the kernel's events needs root (namespaces, capture, tracefs)",
        );
        return;
    }
    let name = "keepalive-wait";
    let text = format!(
        "scenario {name}\nsummary a wait on a kernel timer\nA connect\nB accept\n\
         A setsockopt SO_KEEPALIVE on\nA setsockopt TCP_KEEPIDLE 1\nA setsockopt TCP_KEEPINTVL 1\n\
         A setsockopt TCP_KEEPCNT 1\nlink blackhole\n{wait_line}\nA close\nB close\n"
    );
    let o = play_file(name, &text, &["-f", "json"]);
    assert!(o.status.success(), "{wait_line}: {}", stderr(&o));
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let t = |r: &serde_json::Value| r["t_us"].as_i64().unwrap();
    let seen = rows
        .iter()
        .find(|r| awaited(r))
        .unwrap_or_else(|| panic!("{wait_line}: the run shows no such row"));
    let close = rows
        .iter()
        .find(|r| r["kind"] == "call" && r["side"] == "A" && r["call"] == "close()")
        .expect("A's close()");
    // the timer fires a second or more after the link went: a wait that did not hold would close long before
    assert!(t(seen) > 900_000, "{wait_line}: at {} µs", t(seen));
    assert!(
        t(close) >= t(seen),
        "{wait_line}: A closed at {} µs, before what it waited for at {} µs",
        t(close),
        t(seen)
    );
}

#[test]
fn a_wait_for_a_captured_segment_holds_until_it_is_on_the_wire() {
    a_wait_holds_the_next_step_until_the_kernel_timer_fires("wait A sends RST", |r| {
        r["kind"] == "segment" && r["side"] == "A" && r["flags"].as_str().unwrap().contains('R')
    });
}

#[test]
fn a_wait_for_a_reset_the_kernel_sends_holds_until_it_is_traced() {
    a_wait_holds_the_next_step_until_the_kernel_timer_fires(
        "wait A kernel sends RST reason TCP_KEEPALIVE_TIMEOUT",
        |r| {
            r["event"] == "send_reset" && r["side"] == "A" && r["reason"] == "TCP_KEEPALIVE_TIMEOUT"
        },
    );
}

#[test]
fn a_wait_for_a_reset_the_kernel_receives_holds_until_it_is_traced() {
    // A's RST reaches B (only B's answers are blackholed)
    a_wait_holds_the_next_step_until_the_kernel_timer_fires("wait B kernel receives RST", |r| {
        r["event"] == "receive_reset" && r["side"] == "B"
    });
}

#[test]
fn a_wait_for_a_state_the_kernel_traces_holds_until_it_is_traced() {
    a_wait_holds_the_next_step_until_the_kernel_timer_fires("wait A kernel state CLOSE", |r| {
        r["event"] == "state" && r["side"] == "A" && r["new"] == "CLOSE"
    });
}

#[test]
fn a_wait_for_an_error_the_kernel_reports_holds_until_it_is_traced() {
    a_wait_holds_the_next_step_until_the_kernel_timer_fires(
        "wait A kernel reports ETIMEDOUT",
        |r| r["event"] == "error_report" && r["side"] == "A" && r["errno"] == "ETIMEDOUT",
    );
}

/// A wait for what never comes gives up after its bound, naming its line and what was seen instead.
#[test]
fn a_wait_never_met_gives_up_naming_its_line() {
    if !is_root() {
        tcp_close_watch::testing::skip("a wait on the wire or the kernel's events needs root");
        return;
    }
    for (line, says) in [
        (
            "wait B sends RST",
            "a segment from B with RST to be captured (captured from B so far: S. ",
        ),
        (
            "wait B kernel sends RST",
            "B's kernel to send RST (its events so far: B's socket: LISTEN → SYN_RECV",
        ),
    ] {
        let text = format!(
            "scenario never\nsummary a clean ending\nA connect\nB accept\nB close\nA close\n{line}\n"
        );
        let start = std::time::Instant::now();
        let o = play_file("never", &text, &[]);
        let took = start.elapsed();
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(
            err.contains(&format!(
                "line 7 ({line}): gave up after 3 s waiting for {says}"
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(took < std::time::Duration::from_secs(8), "{took:?}");
    }
}

/// The rows of a JSON run.
fn json_rows(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// SO_RCVBUF as the kernel applies it: B asks for 2048 bytes (Linux doubles it and keeps at least 4608) after
/// the handshake. A's first 20000 bytes are taken all the same (a socket with nothing queued accepts a segment
/// whatever its size), its next 20000 find the buffer full: B's kernel drops them and advertises a zero window,
/// and B's close() finds only the first 20000 unread. Without the option the window stays open and all 40000
/// bytes are queued. Deterministic on loopback: B's kernel takes each segment inside A's send().
#[test]
fn a_small_receive_buffer_shows_a_zero_window_on_the_wire() {
    if !is_root() {
        tcp_close_watch::testing::skip("the window on the wire needs a capture (root)");
        return;
    }
    let play = |rcvbuf: &str| {
        let text = format!(
            "scenario rcvbuf\nsummary a small receive buffer\nA connect\nB accept\n{rcvbuf}\n\
             A send 20000 bytes\nwait B unread 20000\nA send 20000 bytes\nsleep 20 ms\nB close\nA close\n"
        );
        let o = play_file("rcvbuf", &text, &["-f", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let rows = json_rows(&o);
        let zero = rows
            .iter()
            .any(|r| r["kind"] == "segment" && r["side"] == "B" && r["win"] == 0);
        let unread = rows
            .iter()
            .find(|r| r["kind"] == "call" && r["side"] == "B" && r["call"] == "close()")
            .and_then(|r| r["unread_before"].as_i64())
            .expect("B's close() with its unread bytes");
        (zero, unread)
    };
    assert_eq!(play("B setsockopt SO_RCVBUF 2048"), (true, 20000));
    assert_eq!(play(""), (false, 40000));
}

/// TCP_NODELAY as the kernel applies it. Nagle's algorithm holds a small segment back while an earlier small one
/// is unacknowledged; on loopback B's kernel acknowledges inside A's send(), so nothing is ever in flight and the
/// two behave alike. Over the veth with B's answers blackholed, A's first one-byte segment stays unacknowledged:
/// with TCP_NODELAY the second byte leaves at once as a segment of its own, without it (Nagle) it waits. Counted:
/// the sequence numbers of A's one-byte segments before its close() (close pushes what was held). A tail loss
/// probe re-sends the last segment some ms later (seen with TCP_NODELAY), a copy of a sequence number already
/// counted; Nagle's held byte waited past the 50 ms in every run here (the retransmission timer is 200 ms at least).
#[test]
fn nodelay_sends_a_second_small_segment_that_nagle_holds_back() {
    if !is_root() {
        tcp_close_watch::testing::skip(
            "Nagle over a blackholed veth needs root (namespaces, capture)",
        );
        return;
    }
    let play = |nodelay: &str| {
        let text = format!(
            "scenario nagle\nsummary two small sends\nA connect\nB accept\n\
             A setsockopt TCP_NODELAY {nodelay}\nlink blackhole\nA send \"a\"\nA send \"b\"\nsleep 50 ms\n\
             A close\nB close\n"
        );
        let o = play_file("nagle", &text, &["-f", "json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        let rows = json_rows(&o);
        let t = |r: &serde_json::Value| r["t_us"].as_i64().unwrap();
        let close = rows
            .iter()
            .find(|r| r["kind"] == "call" && r["side"] == "A" && r["call"] == "close()")
            .map(t)
            .expect("A's close()");
        let seqs: std::collections::BTreeSet<i64> = rows
            .iter()
            .filter(|r| r["kind"] == "segment" && r["side"] == "A" && r["len"] == 1 && t(r) < close)
            .map(|r| r["seq"].as_i64().unwrap())
            .collect();
        seqs.len()
    };
    assert_eq!(play("on"), 2, "TCP_NODELAY: both bytes leave at once");
    assert_eq!(
        play("off"),
        1,
        "Nagle: the second byte waits for the first's ACK"
    );
}
