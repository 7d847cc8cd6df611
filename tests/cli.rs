//! The real binary, as a user runs it: arguments, exit codes, error lines, output formats.

use std::process::{Command, Output};

fn tcw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(args)
        .env_remove("NO_COLOR")
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn modes_lists_every_mode_once() {
    let o = tcw(&["modes"]);
    assert!(o.status.success());
    let text = stdout(&o);
    for m in tcp_close_watch::model::run::Mode::ALL {
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with(&format!("{} ", m.name())))
                .count(),
            1,
            "{m}"
        );
    }
    assert!(text.lines().any(|l| l.starts_with("all ")));
}

#[test]
fn unknown_mode_is_a_usage_error() {
    let o = tcw(&["run", "--mode", "gentle"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("abrupt"),
        "lists the valid modes: {}",
        stderr(&o)
    );
}

#[test]
fn no_capture_shows_calls_and_says_the_wire_is_missing() {
    let o = tcw(&[
        "run",
        "--mode",
        "abrupt",
        "--no-capture",
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(rows.iter().all(|r| r["kind"] != "segment"));
    let reset = rows
        .iter()
        .find(|r| r["kind"] == "call" && r["side"] == "A" && r["errno"] == "ECONNRESET")
        .expect("A's recv failed with ECONNRESET");
    for key in ["t_us", "t_end_us", "call", "ret", "bytes", "state"] {
        assert!(reset.get(key).is_some(), "call rows carry {key}");
    }
    assert_eq!(reset["ret"], -1);
    assert!(
        stderr(&o).contains("--no-capture"),
        "warns that the wire column is missing"
    );
    let summary = rows.last().unwrap();
    assert_eq!(summary["kind"], "run");
    assert!(
        summary["warnings"][0]
            .as_str()
            .unwrap()
            .contains("no segment was captured")
    );
}

/// Without root, `--mode all --no-capture` plays every mode it can and leaves out, each with a note, the modes
/// that need root (their own network namespaces, SOCK_DESTROY): the kernel refuses those to nobody.
#[test]
fn all_modes_without_root_leave_out_the_ones_that_need_it() {
    let bin = env!("CARGO_BIN_EXE_tcp-close-watch");
    let args = [
        "run",
        "--mode",
        "all",
        "--no-capture",
        "--no-kernel",
        "-f",
        "json",
    ];
    let o = if is_root() {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(["--inh-caps=-all", "--bounding-set=-all"])
            .arg(bin)
            .args(args)
            .output()
            .expect("setpriv (util-linux) runs")
    } else {
        tcw(&args)
    };
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let played: Vec<String> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter_map(|r| r["mode"].as_str().map(str::to_string))
        .collect();
    for mode in tcp_close_watch::model::run::Mode::ALL {
        let script = tcp_close_watch::scenario::script(mode).unwrap();
        let needs_root = script.links() || script.destroys() || script.kernel_wait().is_some();
        assert_eq!(
            played.contains(&mode.name().to_string()),
            !needs_root,
            "{mode}: {played:?}\n{err}"
        );
        assert_eq!(
            err.contains(&format!("mode {mode} left out: it needs root")),
            needs_root,
            "{err}"
        );
    }
}

fn json_rows(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// With no capture the account still says why and the fix, as far as the calls (and, as root, the kernel's own
/// word) prove it — and marks it as such.
#[test]
fn no_capture_keeps_the_why_and_the_fix_the_calls_prove() {
    let mut asks = vec![vec!["--no-kernel"]];
    if is_root() {
        asks.push(vec![]);
    } else {
        tcp_close_watch::testing::skip("the kernel's word (tracefs) needs root");
    }
    for extra in asks {
        let mut args = vec!["run", "--mode", "abrupt", "--no-capture", "-f", "json"];
        args.extend(extra.iter().copied());
        let o = tcw(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        let rows = json_rows(&o);
        let call = |side: &str, name: &str| {
            rows.iter()
                .find(|r| {
                    r["kind"] == "call"
                        && r["side"] == side
                        && r["call"].as_str().unwrap().starts_with(name)
                })
                .unwrap_or_else(|| panic!("{side}'s {name}"))
        };
        // what the calls did: B closed with bytes unread, A's recv() was reset
        let close_b = call("B", "close(");
        assert!(close_b["unread_before"].as_u64().unwrap() > 0);
        assert_eq!(call("A", "recv(")["errno"], "ECONNRESET");
        let account = rows.last().unwrap()["account"].as_array().unwrap().clone();
        let text: Vec<&str> = account.iter().map(|l| l.as_str().unwrap()).collect();
        let joined = text.join("\n");
        assert!(
            text.iter()
                .any(|l| l
                    .starts_with("Why: B closed its socket while received data was still unread")),
            "{joined}"
        );
        assert!(
            text.iter().any(|l| l.starts_with("Fix: B should read")),
            "{joined}"
        );
        let reset = rows
            .iter()
            .find(|r| r["kind"] == "kernel" && r["event"] == "send_reset");
        match reset {
            // the kernel's word: its reset comes after B's close() began, and the account names its reason
            Some(r) => {
                assert!(
                    r["t_us"].as_i64() >= close_b["t_us"].as_i64(),
                    "{r} before {close_b}"
                );
                assert!(
                    joined.contains(&format!(
                        "by its own word: reason {}",
                        r["reason"].as_str().unwrap()
                    )),
                    "{joined}"
                );
            }
            None => assert!(
                joined.contains("this follows from the calls; no segment was captured"),
                "{joined}"
            ),
        }
    }
}

/// Drop to an unprivileged user (as root) so the capture is refused, and check the one-line error.
#[test]
fn missing_capture_rights_is_one_clear_line() {
    let bin = env!("CARGO_BIN_EXE_tcp-close-watch");
    let o = if is_root() {
        match Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
            ])
            .arg(bin)
            .args(["run", "--mode", "abrupt"])
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                panic!("setpriv (util-linux) is needed to test the unprivileged path as root: {e}")
            }
        }
    } else {
        tcw(&["run", "--mode", "abrupt"])
    };
    let err = stderr(&o);
    if err.contains("Permission denied") && err.contains("os error") && !err.contains("CAP_NET_RAW")
    {
        panic!(
            "the binary could not even start as nobody (is the target directory readable?): {err}"
        );
    }
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("CAP_NET_RAW")
            && err.contains("sudo")
            && err.contains("setcap cap_net_raw=eip"),
        "{err}"
    );
    assert!(stdout(&o).is_empty());
}

fn require_capture() -> bool {
    if is_root() {
        return true;
    }
    tcp_close_watch::testing::skip("capture test needs root");
    false
}

#[test]
fn json_segment_rows_have_stable_keys() {
    if !require_capture() {
        return;
    }
    let o = tcw(&["run", "--mode", "abrupt", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rst = rows
        .iter()
        .find(|r| r["kind"] == "segment" && r["flags"] == "R.")
        .expect("an RST row");
    assert_eq!(rst["side"], "B");
    for key in ["t_us", "seq", "ack", "len"] {
        assert!(rst[key].is_number(), "{key} is a number: {rst}");
    }
    let times: Vec<i64> = rows.iter().filter_map(|r| r["t_us"].as_i64()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "rows in time order");
}

#[test]
fn colour_follows_the_flag() {
    if !require_capture() {
        return;
    }
    let always = tcw(&["run", "--mode", "abrupt", "--color", "always"]);
    assert!(
        stdout(&always).contains("\x1b["),
        "--color always colours even into a pipe"
    );
    let never = tcw(&["run", "--mode", "abrupt", "--color", "never"]);
    assert!(!stdout(&never).contains("\x1b["));
    let auto = tcw(&["run", "--mode", "abrupt"]);
    assert!(
        !stdout(&auto).contains("\x1b["),
        "auto does not colour a pipe"
    );
    let no_color = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(["run", "--mode", "abrupt", "--color", "auto"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(!stdout(&no_color).contains("\x1b["));
}

#[test]
fn all_compares_every_mode_in_every_format() {
    if !require_capture() {
        return;
    }
    let o = tcw(&["run", "--mode", "all", "--format", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), tcp_close_watch::model::run::Mode::ALL.len());
    let by_mode = |m: &str| rows.iter().find(|r| r["mode"] == m).unwrap();
    assert_eq!(by_mode("abrupt")["rst_from"], serde_json::json!(["B"]));
    assert_eq!(by_mode("drain")["rst_from"], serde_json::json!([]));
    assert_eq!(by_mode("drain")["a_received"], "OK, read it all\n");
    assert!(
        rows.iter().all(
            |r| r["kind"] == "comparison" && r["kernel"].as_str().unwrap().starts_with("Linux")
        )
    );
    assert_eq!(by_mode("primes-bad")["discarded_unread"], 15);
    let md = stdout(&tcw(&["run", "--mode", "all", "--format", "markdown"]));
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        1 + rows.len()
    );
    assert!(
        md.starts_with("Every mode, as this kernel played it (recorded on Linux "),
        "{md}"
    );
    let csv = stdout(&tcw(&["run", "--mode", "all", "--format", "csv"]));
    assert_eq!(csv.lines().count(), 1 + rows.len());
}

#[test]
fn markdown_run_is_a_table_and_an_account() {
    if !require_capture() {
        return;
    }
    let md = stdout(&tcw(&["run", "--mode", "shutdown", "--format", "markdown"]));
    assert!(md.starts_with("### mode shutdown"));
    assert!(md.contains("| t (µs) |") || md.contains("| t (ms) |"));
    assert!(md.contains("**◀── [R.]"), "RST rows in bold");
    assert!(md.contains("- Textbook vs this kernel"), "{md}");
}

#[test]
fn write_saves_the_segments_and_the_calls() {
    if !require_capture() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcw-write-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ng = dir.join("abrupt.pcapng");
    let o = tcw(&[
        "run",
        "--mode",
        "abrupt",
        "--format",
        "json",
        "--write",
        ng.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let printed_calls = rows.iter().filter(|r| r["kind"] == "call").count();
    let printed_segments = rows.iter().filter(|r| r["kind"] == "segment").count();
    let saved = tcp_close_watch::capfile::saved::read_run(ng.to_str().unwrap())
        .expect("the file carries the run");
    assert_eq!(saved.pair.calls.len(), printed_calls);
    let mut cap = pcap::Capture::from_file(&ng).unwrap();
    let mut frames = 0;
    while cap.next_packet().is_ok() {
        frames += 1;
    }
    assert_eq!(
        frames, printed_segments,
        "every printed segment is in the file"
    );

    let classic = dir.join("abrupt.pcap");
    let o = tcw(&[
        "run",
        "--mode",
        "abrupt",
        "--write",
        classic.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    assert!(
        stderr(&o).contains("classic pcap holds no socket calls"),
        "{}",
        stderr(&o)
    );
    assert!(tcp_close_watch::capfile::saved::read_run(classic.to_str().unwrap()).is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A saved run, analysed, prints what the live run printed: same rows, same order, same results and states.
#[test]
fn analyze_of_a_saved_run_prints_the_live_timeline() {
    if !require_capture() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcw-same-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for mode in tcp_close_watch::model::run::Mode::ALL {
        let file = dir.join(format!("{}.pcapng", mode.name()));
        let f = file.to_str().unwrap();
        for format in ["json", "markdown"] {
            let live = tcw(&[
                "run",
                "--mode",
                mode.name(),
                "--format",
                format,
                "--write",
                f,
            ]);
            assert!(live.status.success(), "{}", stderr(&live));
            let saved = tcw(&["analyze", f, "--format", format]);
            assert!(saved.status.success(), "{}", stderr(&saved));
            assert_eq!(stdout(&live), stdout(&saved), "{mode} as {format}");
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The README's other way to capture: `setcap cap_net_raw=eip` on the binary, run by an ordinary
/// user. Such a process is not dumpable (its /proc files are root's), which once made every wait fail and the run
/// hang; it must tell the same story as root does, within a bounded time.
#[test]
fn setcap_binary_captures_as_an_ordinary_user() {
    if !require_capture() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcw-setcap-{}", std::process::id()));
    let bin =
        tcp_close_watch::testing::setcap_copy(env!("CARGO_BIN_EXE_tcp-close-watch").as_ref(), &dir);
    for mode in ["abrupt", "primes-six", "refused"] {
        let o = Command::new("timeout")
            .args([
                "30",
                "setpriv",
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
            ])
            .arg(&bin)
            .args(["run", "--mode", mode, "--format", "json"])
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(0), "{mode} as nobody: {}", stderr(&o));
        let rows: Vec<serde_json::Value> = stdout(&o)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert!(
            rows.iter()
                .any(|r| r["kind"] == "segment" && r["flags"] == "R."),
            "{mode}: an RST was captured"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// With only the capture capability (`setcap cap_net_raw=eip`) and no root, tracefs is closed: one line says what
/// is missing and what it costs, and the run goes on with the wire and the calls, without kernel rows.
#[test]
fn without_tracefs_rights_one_line_says_what_the_kernel_rows_cost() {
    if !require_capture() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("tcw-notrace-{}", std::process::id()));
    let bin =
        tcp_close_watch::testing::setcap_copy(env!("CARGO_BIN_EXE_tcp-close-watch").as_ref(), &dir);
    let o = Command::new("timeout")
        .args([
            "30",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg(&bin)
        .args(["run", "--mode", "abrupt", "--format", "json"])
        .output()
        .unwrap();
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("tracefs") && err.contains("no kernel events") && err.contains("root"),
        "{err}"
    );
    let rows: Vec<serde_json::Value> = stdout(&o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(rows.iter().all(|r| r["kind"] != "kernel"));
    assert!(
        rows.iter()
            .any(|r| r["kind"] == "segment" && r["flags"] == "R."),
        "the wire is still there"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Output that cannot be written: a closed pipe (`| head`) ends the program quietly with 0, as it should; a full
/// disk is one line and exit code 1, named for standard output or for the `-o` file.
#[test]
fn a_closed_pipe_is_quiet_and_a_full_disk_is_one_line() {
    use std::process::Stdio;
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/abrupt.pcapng");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(["analyze", capture, "--format", "json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");

    let full = || std::fs::File::options().write(true).open("/dev/full");
    let Ok(dev_full) = full() else {
        tcp_close_watch::testing::skip("no /dev/full");
        return;
    };
    let o = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(["analyze", capture])
        .stdout(dev_full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).starts_with("tcp-close-watch: cannot write output: "),
        "{}",
        stderr(&o)
    );
    let o = tcw(&["analyze", capture, "-o", "/dev/full"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).starts_with("tcp-close-watch: cannot write the output file: "),
        "{}",
        stderr(&o)
    );
}

/// A failed command never touches an existing `-o` file and leaves no other file behind: analyze of a file that is
/// not there, and a run whose `--write` cannot be made (after `-o` was prepared).
#[test]
fn a_failed_command_leaves_an_existing_output_file_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.md");
    std::fs::write(&notes, "my notes\n").unwrap();
    let n = notes.to_str().unwrap();
    let missing = dir.path().join("nonexist.pcap");
    let o = tcw(&[
        "analyze",
        missing.to_str().unwrap(),
        "-f",
        "markdown",
        "-o",
        n,
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    let save = dir.path().join("no-such-dir/run.pcapng");
    let o = tcw(&[
        "run",
        "--no-capture",
        "-o",
        n,
        "--write",
        save.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        left,
        vec![std::ffi::OsString::from("notes.md")],
        "no temporary file left"
    );
}

/// Exit code 2 is the command line's (cli::EXIT_CODES): clap's errors and the combinations we refuse, each before
/// any file is made.
#[test]
fn refused_combinations_exit_2_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/abrupt.pcapng");
    let svg = dir.path().join("two.svg");
    let txt = dir.path().join("x.txt");
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "analyze",
                capture,
                "--conn",
                "0",
                "--conn",
                "1",
                "-f",
                "svg",
                "-o",
                svg.to_str().unwrap(),
            ],
            "one connection",
        ),
        (
            vec!["run", "--no-capture", "--write", txt.to_str().unwrap()],
            ".pcapng",
        ),
        (
            vec!["analyze", capture, "--filter", "tcp port banana"],
            "--filter",
        ),
        (vec!["run", "--mode", "all", "-f", "svg"], "one connection"),
    ];
    for (args, says) in cases {
        let o = tcw(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o).lines().count(), 1, "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written"
    );
}

/// `--only` (and the other selections) do not choose what `--conn` prints: said, not ignored in silence.
#[test]
fn only_with_conn_is_said() {
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/abrupt.pcapng");
    let o = tcw(&["analyze", capture, "--conn", "0", "--only", "fins"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--only chooses the summary's rows"),
        "{}",
        stderr(&o)
    );
    assert!(
        stdout(&o).contains("connection 0"),
        "connection 0 is printed, reset as it is"
    );
}

/// Every subcommand's --help carries the one table of exit codes and says where the documentation is.
#[test]
fn every_help_has_the_exit_codes_and_the_docs() {
    for sub in [&[][..], &["run"], &["analyze"], &["modes"]] {
        let o = tcw(&[sub, &["--help"]].concat());
        assert!(o.status.success());
        let help = stdout(&o);
        for code in [
            "0 everything was shown",
            "1 an error",
            "2 the command line is wrong",
            "3 everything was printed",
        ] {
            assert!(help.contains(code), "{sub:?} --help lacks {code:?}");
        }
        assert!(help.contains("docs/reading-the-timeline.md"), "{sub:?}");
    }
}

/// `--legend` explains the codes the output shows, and only those.
#[test]
fn legend_explains_what_is_on_the_screen() {
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/abrupt.pcapng");
    let plain = stdout(&tcw(&["analyze", capture, "--conn", "0"]));
    assert!(!plain.contains("Legend"));
    let o = tcw(&["analyze", capture, "--conn", "0", "--legend"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    let legend = &text[text.find("Legend").expect("a legend")..];
    for shown in ["[S.]", "listen queue", "seq 1:35", "RSTR", "history"] {
        assert!(legend.contains(shown), "{shown} in\n{legend}");
    }
    // abrupt has no FIN: its code is not explained
    assert!(!plain.contains("[F.]"));
    assert!(!legend.contains("[F.]"), "{legend}");
}

/// The man pages and completions come from the same definitions as --help (`just install` puts them in place).
#[test]
fn man_pages_and_completions_follow_the_options() {
    let man = stdout(&tcw(&["generate", "man"]));
    assert!(man.contains(".TH tcp-close-watch 1"), "{man}");
    assert!(
        man.contains("Exit codes"),
        "the exit-code table is in the man page"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = tcw(&["generate", "man", "--dir", dir.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for page in [
        "tcp-close-watch.1",
        "tcp-close-watch-run.1",
        "tcp-close-watch-analyze.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.contains(".SH OPTIONS") || page == "tcp-close-watch.1",
            "{page}"
        );
    }
    let run = std::fs::read_to_string(dir.path().join("tcp-close-watch-run.1")).unwrap();
    assert!(run.contains("legend") && run.contains("width"), "{run}");
    for shell in ["bash", "zsh", "fish"] {
        let c = stdout(&tcw(&["generate", shell]));
        assert!(
            c.contains("legend") && c.contains("zeek-json"),
            "{shell}: {c}"
        );
    }
}

/// `--flags words` writes the flags as words in the table and the ladder, the same segments as the letters.
#[test]
fn flags_as_words_name_the_same_segments() {
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/shutdown.pcapng");
    for format in ["table", "ladder"] {
        let letters = stdout(&tcw(&["analyze", capture, "--conn", "0", "-f", format]));
        let words = stdout(&tcw(&[
            "analyze", capture, "--conn", "0", "-f", format, "--flags", "words",
        ]));
        for (letter, word) in [
            ("[S]", "[SYN]"),
            ("[S.]", "[SYN-ACK]"),
            ("[F.]", "[FIN-ACK]"),
            ("[R.]", "[RST-ACK]"),
        ] {
            assert_eq!(
                letters.matches(letter).count(),
                words.matches(word).count(),
                "{format}: {letter} vs {word}\n{words}"
            );
            assert!(
                !words.contains(letter),
                "{format}: {letter} left in\n{words}"
            );
        }
    }
}

#[test]
fn watch_legend_with_a_machine_format_is_a_usage_error_before_anything_opens() {
    let o = tcw(&["watch", "--legend", "-f", "json", "--port", "9"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--legend"), "{}", stderr(&o));
    assert!(stdout(&o).is_empty());
}

/// `--legend` explains the table's and the ladder's codes; asked with a machine format it is refused (exit 2, one
/// line), not ignored in silence.
#[test]
fn legend_with_a_machine_format_is_refused() {
    let capture = concat!(env!("CARGO_MANIFEST_DIR"), "/captures/abrupt.pcapng");
    let o = tcw(&["analyze", capture, "--legend", "-f", "json"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(o.stdout.is_empty());
    assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
    let o = tcw(&["analyze", capture, "--legend", "--width", "100"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(!o.stdout.is_empty());
}
