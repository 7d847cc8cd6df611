//! A live run's orchestration, played through the fake door (`pipeline::replay::Replay`) from the saved runs in
//! captures/: what the run asks of the OS and in which order, the timeline it builds, the warnings a capture
//! brings, and which RunError each failure becomes. No privilege needed; tests/live.rs plays the real door.

use std::collections::HashSet;
use std::error::Error;
use std::net::SocketAddr;
use std::path::Path;

use tcp_close_watch::capfile::CaptureReader;
use tcp_close_watch::model::run::Mode;
use tcp_close_watch::os::capture::{CaptureError, FinishError};
use tcp_close_watch::os::tracefs::TraceError;
use tcp_close_watch::pipeline::analyze;
use tcp_close_watch::pipeline::live::{self, LiveRun, Options, RunError};
use tcp_close_watch::pipeline::replay::{Asked, Replay, ReplayError};
use tcp_close_watch::render::{Style, TimelineFormat, TimelinePrinter};
use tcp_close_watch::scenario::ScenarioError;
use tcp_close_watch::wire::decode::Skip;

fn capture_file(mode: Mode) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(format!("{}.pcapng", mode.name()))
        .to_string_lossy()
        .into_owned()
}

fn replay(mode: Mode) -> Replay {
    Replay::open(&capture_file(mode)).expect("a saved run")
}

const CAPTURE: Options = Options {
    ipv6: false,
    capture: true,
    kernel: true,
};

fn run(door: &mut Replay, opts: Options) -> Result<LiveRun, RunError> {
    live::run_with(door, Mode::Abrupt, opts)
}

fn b_of(door: &Replay) -> SocketAddr {
    door.pair().b
}

#[test]
fn every_saved_run_replays_to_the_timeline_analyze_shows() {
    for mode in Mode::ALL {
        let path = capture_file(mode);
        let mut door = replay(mode);
        let run = live::run_with(&mut door, mode, CAPTURE).unwrap();
        let report = analyze::analyze(
            &path,
            CaptureReader::open(&path).map_err(|e| e.to_string()),
            &HashSet::new(),
            None,
            &mut |_, _| {},
        );
        let saved = report.saved_run.as_ref().unwrap();
        assert_eq!(
            Some(&run.timeline),
            analyze::saved_timeline(&report).as_ref(),
            "{mode}"
        );
        assert_eq!(run.pair, saved.pair, "{mode}");
        assert_eq!(run.kernel, saved.kernel, "{mode}");
        assert!(run.warnings().is_empty(), "{mode}: {:?}", run.warnings());
        assert!(run.timeline.segments().next().is_some(), "{mode}");
    }
}

/// What a run with a capture and the kernel's trace asks of the door, in order: the trace and the capture open on
/// B's port, privileges end, then the scenario plays and both are finished.
fn every_run_asks(mode: Mode, b: SocketAddr) -> Vec<Asked> {
    vec![
        Asked::Bind { mode, ipv6: false },
        Asked::StartTrace(b),
        Asked::StartCapture(b),
        Asked::TraceReady,
        Asked::DropPrivileges,
        Asked::Play,
        Asked::FinishCapture,
        Asked::FinishTrace,
        Asked::KernelRelease,
    ]
}

#[test]
fn the_capture_opens_on_bs_port_before_the_scenario_and_ends_after_it() {
    // privileges end between the capture's start and the scenario: nothing is played with them
    let mut door = replay(Mode::Abrupt);
    run(&mut door, CAPTURE).unwrap();
    assert_eq!(door.asked, every_run_asks(Mode::Abrupt, b_of(&door)));
}

#[test]
fn without_capture_nothing_is_captured_and_the_reader_is_told() {
    let mut door = replay(Mode::Abrupt);
    let run = run(
        &mut door,
        Options {
            ipv6: false,
            capture: false,
            kernel: false,
        },
    )
    .unwrap();
    assert_eq!(
        door.asked,
        [
            Asked::Bind {
                mode: Mode::Abrupt,
                ipv6: false
            },
            Asked::DropPrivileges,
            Asked::Play,
            Asked::KernelRelease,
        ]
    );
    assert!(run.captured.is_none());
    assert!(run.timeline.segments().next().is_none());
    assert_eq!(run.timeline.calls().count(), door.pair().calls.len());
    assert_eq!(
        run.warnings(),
        ["the wire column is empty: --no-capture was given, so no segment was captured"]
    );
}

#[test]
fn drops_reported_by_libpcap_are_a_warning() {
    let run = run(&mut replay(Mode::Abrupt).dropping(3), CAPTURE).unwrap();
    assert_eq!(
        run.warnings(),
        ["libpcap reports 3 dropped packet(s): the wire column may be missing segments; run again"]
    );
}

#[test]
fn a_lost_end_marker_marks_the_capture_incomplete() {
    let run = run(&mut replay(Mode::Abrupt).losing_the_marker(), CAPTURE).unwrap();
    assert_eq!(
        run.warnings(),
        [
            "the end-of-capture marker never arrived: the wire column may be missing the last segments"
        ]
    );
}

#[test]
fn a_run_is_incomplete_when_its_capture_dropped_or_lost_the_marker() {
    assert!(
        !run(&mut replay(Mode::Abrupt), CAPTURE)
            .unwrap()
            .incomplete()
    );
    assert!(
        run(&mut replay(Mode::Abrupt).dropping(1), CAPTURE)
            .unwrap()
            .incomplete()
    );
    assert!(
        run(&mut replay(Mode::Abrupt).losing_the_marker(), CAPTURE)
            .unwrap()
            .incomplete()
    );
    // a stranger's frame is counted, but loses nothing of ours
    let mut door = replay(Mode::Abrupt).with_undecoded(vec![Skip::NotTcp]);
    assert!(!run(&mut door, CAPTURE).unwrap().incomplete());
    let no_capture = Options {
        ipv6: false,
        capture: false,
        kernel: false,
    };
    assert!(
        !run(&mut replay(Mode::Abrupt), no_capture)
            .unwrap()
            .incomplete()
    );
}

/// The run printed as the binary prints it.
fn printed(run: &LiveRun, format: TimelineFormat) -> String {
    let mut out = Vec::new();
    tcp_close_watch::pipeline::run::print_run(
        &TimelinePrinter::new(format, Style::PLAIN),
        run,
        &mut out,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn an_incomplete_runs_warning_is_on_every_json_and_csv_row_and_in_the_table() {
    let whole = run(&mut replay(Mode::Abrupt), CAPTURE).unwrap();
    let dropped = run(&mut replay(Mode::Abrupt).dropping(2), CAPTURE).unwrap();
    let warning = dropped.warnings()[0].clone();
    assert!(warning.starts_with("libpcap reports 2 dropped"));
    let json = printed(&dropped, TimelineFormat::Json);
    for line in json.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["warnings"], serde_json::json!([warning]), "{line}");
    }
    let csv = printed(&dropped, TimelineFormat::Csv);
    assert!(csv.lines().next().unwrap().ends_with(",warnings"));
    assert!(csv.lines().count() > 5);
    for line in csv.lines().skip(1) {
        assert!(line.ends_with(&format!(",{warning}")), "{line}");
    }
    let table = printed(&dropped, TimelineFormat::Table);
    assert!(table.contains(&format!("WARNING: {warning}")));
    // a whole run's rows carry an empty list
    let json = printed(&whole, TimelineFormat::Json);
    assert!(json.lines().all(|l| l.contains("\"warnings\":[]")));
}

#[test]
fn undecoded_frames_are_counted_in_a_warning() {
    let mut door = replay(Mode::Abrupt).with_undecoded(vec![Skip::BadTcp, Skip::NotIp]);
    let run = run(&mut door, CAPTURE).unwrap();
    assert_eq!(
        run.warnings(),
        ["2 captured frame(s) could not be decoded as TCP"]
    );
}

#[test]
fn every_warning_at_once_in_a_fixed_order() {
    let mut door = replay(Mode::Abrupt)
        .with_undecoded(vec![Skip::Fragment])
        .losing_the_marker()
        .dropping(1);
    let warnings = run(&mut door, CAPTURE).unwrap().warnings();
    assert_eq!(warnings.len(), 3);
    assert!(warnings[0].starts_with("libpcap reports 1 dropped"));
    assert!(warnings[1].starts_with("the end-of-capture marker never arrived"));
    assert!(warnings[2].starts_with("1 captured frame(s)"));
}

#[test]
fn a_port_that_cannot_be_bound_is_a_bind_error_and_nothing_else_is_asked() {
    let mut door =
        replay(Mode::Abrupt).failing_bind(std::io::Error::from_raw_os_error(libc::EADDRINUSE));
    let err = run(&mut door, CAPTURE).unwrap_err();
    assert!(
        matches!(&err, RunError::Bind(e) if e.raw_os_error() == Some(libc::EADDRINUSE)),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("cannot bind a loopback port for B: ")
    );
    let cause = err.source().unwrap().downcast_ref::<std::io::Error>();
    assert_eq!(cause.unwrap().raw_os_error(), Some(libc::EADDRINUSE));
    assert_eq!(door.asked.len(), 1);
}

#[test]
fn a_capture_that_cannot_open_stops_the_run_before_the_scenario() {
    let mut door = replay(Mode::Abrupt).failing_capture(CaptureError::NoPermission("EPERM".into()));
    let err = run(&mut door, CAPTURE).unwrap_err();
    assert!(
        matches!(&err, RunError::Capture(CaptureError::NoPermission(d)) if d == "EPERM"),
        "{err:?}"
    );
    assert!(err.to_string().starts_with(
        "capturing on the loopback device needs CAP_NET_RAW (EPERM): run it with sudo"
    ));
    assert_eq!(door.asked.last(), Some(&Asked::StartCapture(b_of(&door))));
    assert!(!door.asked.contains(&Asked::Play));
}

#[test]
fn a_scenario_that_cannot_finish_is_a_scenario_error() {
    let mut door = replay(Mode::Abrupt).failing_scenario(ScenarioError(
        "mode abrupt: gave up after 3 s waiting for A to block in recv()".into(),
    ));
    let err = run(&mut door, CAPTURE).unwrap_err();
    assert!(matches!(err, RunError::Scenario(_)), "{err:?}");
    assert_eq!(
        err.to_string(),
        "the scenario could not finish: mode abrupt: gave up after 3 s waiting for A to block in recv()"
    );
    assert_eq!(door.asked.last(), Some(&Asked::Play));
}

#[test]
fn a_capture_that_cannot_finish_is_a_capture_read_error() {
    let mut door = replay(Mode::Abrupt).failing_finish(FinishError::Marker(
        std::io::Error::from_raw_os_error(libc::ENETUNREACH),
    ));
    let err = run(&mut door, CAPTURE).unwrap_err();
    assert!(
        matches!(&err, RunError::CaptureRead(FinishError::Marker(_))),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("could not send the end-of-capture marker: ")
    );
    assert_eq!(door.asked.last(), Some(&Asked::FinishCapture));
    // the run's message is the capture's own: its cause is the capture's cause, not the capture error again
    let cause = err.source().unwrap().downcast_ref::<std::io::Error>();
    assert_eq!(cause.unwrap().raw_os_error(), Some(libc::ENETUNREACH));
    let mut door = replay(Mode::Abrupt).failing_finish(FinishError::Panicked);
    let err = run(&mut door, CAPTURE).unwrap_err();
    assert_eq!(err.to_string(), "the capture thread panicked");
}

#[test]
fn a_file_without_a_saved_run_cannot_be_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("frames-only.pcap");
    std::fs::write(&path, tcp_close_watch::capfile::saved::pcap(&[], 1)).unwrap();
    let path = path.to_string_lossy().into_owned();
    assert_eq!(
        Replay::open(&path).unwrap_err(),
        ReplayError::NoSavedRun { path: path.clone() }
    );
    let missing = format!("{path}.missing");
    assert!(matches!(
        Replay::open(&missing),
        Err(ReplayError::Unreadable { .. })
    ));
}

#[test]
fn a_replay_refuses_a_mode_it_does_not_hold() {
    let mut door = replay(Mode::Abrupt);
    let err = live::run_with(&mut door, Mode::Drain, CAPTURE).unwrap_err();
    assert!(
        matches!(&err, RunError::Bind(e) if e.kind() == std::io::ErrorKind::InvalidInput),
        "{err:?}"
    );
    let err = run(
        &mut replay(Mode::Abrupt),
        Options {
            ipv6: true,
            capture: true,
            kernel: true,
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("not mode abrupt on IPv6"), "{err}");
}

#[test]
fn a_trace_that_cannot_start_costs_the_kernel_rows_not_the_run() {
    let mut door = replay(Mode::Abrupt).failing_trace(TraceError::NotPermitted {
        path: "/sys/kernel/tracing/instances".into(),
    });
    let run = run(&mut door, CAPTURE).unwrap();
    let missing = run.kernel_missing.as_deref().unwrap();
    assert!(missing.contains("root"), "{missing}");
    assert!(missing.contains("no kernel events"), "{missing}");
    assert!(run.trace.is_none());
    assert_eq!(run.timeline.kernel_rows().count(), 0);
    assert!(
        run.timeline.segments().next().is_some(),
        "the wire is still there"
    );
    assert!(
        run.warnings().is_empty(),
        "the note is not a warning of the output"
    );
    assert!(!door.asked.contains(&Asked::FinishTrace));
    assert!(door.asked.contains(&Asked::Play));
}

#[test]
fn a_trace_that_cannot_finish_costs_the_kernel_rows_not_the_run() {
    let mut door = replay(Mode::Abrupt).failing_trace_finish(TraceError::NoResetReason {
        kernel: "Linux 6.1".into(),
    });
    let run = run(&mut door, CAPTURE).unwrap();
    assert!(run.kernel_missing.as_deref().unwrap().contains("6.10"));
    assert_eq!(run.timeline.kernel_rows().count(), 0);
}

#[test]
fn without_the_kernel_nothing_is_traced_and_nothing_is_said() {
    let mut door = replay(Mode::Abrupt);
    let run = run(
        &mut door,
        Options {
            kernel: false,
            ..CAPTURE
        },
    )
    .unwrap();
    assert!(!door.asked.contains(&Asked::StartTrace(b_of(&door))));
    assert!(run.kernel_missing.is_none() && run.trace.is_none());
}

/// A scenario's waits on the wire and on the kernel's events (`wait B sends RST`, `wait A kernel receives RST` in
/// sock-destroy) look at a view the capture and the trace fill as they read: the replay fills it from the saved
/// run the same way, and its play holds each such wait against it.
#[test]
fn waits_on_the_wire_and_the_kernel_are_held_against_what_the_run_saw() {
    let script = tcp_close_watch::scenario::script(Mode::SockDestroy).unwrap();
    let (wire, kernel) = (script.wire_wait().unwrap(), script.kernel_wait().unwrap());
    let mut door = replay(Mode::SockDestroy);
    let run = live::run_with(&mut door, Mode::SockDestroy, CAPTURE).unwrap();
    assert!(run.trace.is_some());
    // the same order as every run: the view needs nothing asked of its own
    assert_eq!(door.asked, every_run_asks(Mode::SockDestroy, run.pair.b));

    // a run whose kernel never showed A's socket reset: the wait on it is not met, and says which line
    let saved = replay(Mode::SockDestroy);
    let mut trace = live::run_with(&mut replay(Mode::SockDestroy), Mode::SockDestroy, CAPTURE)
        .unwrap()
        .trace
        .unwrap();
    trace.events.retain(|e| e.what.name() != "receive_reset");
    let mut door = saved.with_trace(Some(trace));
    let err = live::run_with(&mut door, Mode::SockDestroy, CAPTURE).unwrap_err();
    let RunError::Scenario(e) = &err else {
        panic!("{err:?}")
    };
    assert!(
        e.0.contains(&format!("line {} ({})", kernel.line, kernel.text)),
        "{e}"
    );
    assert!(e.0.contains("A's kernel to receive RST"), "{e}");
    assert!(!door.asked.contains(&Asked::FinishCapture));

    // the same for the wire: a capture without B's RST
    let mut stripped = replay(Mode::SockDestroy);
    let mut captured = live::run_with(&mut stripped, Mode::SockDestroy, CAPTURE)
        .unwrap()
        .captured
        .unwrap();
    captured.segments.retain(|s| !s.flags.rst());
    let mut door = Replay::new(
        tcp_close_watch::capfile::saved::read_run(&capture_file(Mode::SockDestroy)).unwrap(),
        captured,
    );
    let err = live::run_with(&mut door, Mode::SockDestroy, CAPTURE).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("line {} ({})", wire.line, wire.text)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("a segment from B with RST to be captured"),
        "{err}"
    );
}

/// A scenario that waits on what the run cannot see is refused before anything is played, with its line: with
/// --no-capture before anything is opened, without the kernel's trace once it is known not to start.
#[test]
fn a_wait_the_run_cannot_see_is_refused_before_anything_is_played() {
    let mut door = replay(Mode::SockDestroy);
    let err = live::run_with(
        &mut door,
        Mode::SockDestroy,
        Options {
            capture: false,
            ..CAPTURE
        },
    )
    .unwrap_err();
    assert!(matches!(err, RunError::Unseeable(_)), "{err:?}");
    assert!(err.to_string().contains("--no-capture was given"), "{err}");
    assert!(err.to_string().contains("wait B sends RST"), "{err}");
    assert!(door.asked.is_empty(), "{:?}", door.asked);

    let mut door = replay(Mode::SockDestroy);
    let err = live::run_with(
        &mut door,
        Mode::SockDestroy,
        Options {
            kernel: false,
            ..CAPTURE
        },
    )
    .unwrap_err();
    assert!(err.to_string().contains("--no-kernel was given"), "{err}");
    assert!(door.asked.is_empty(), "{:?}", door.asked);

    let mut door = replay(Mode::SockDestroy).failing_trace(TraceError::NotPermitted {
        path: "/sys/kernel/tracing/instances".into(),
    });
    let err = live::run_with(&mut door, Mode::SockDestroy, CAPTURE).unwrap_err();
    assert!(matches!(err, RunError::Unseeable(_)), "{err:?}");
    assert!(
        err.to_string()
            .contains("waits on the kernel's events: cannot read the kernel's TCP events"),
        "{err}"
    );
    assert_eq!(err.to_string().lines().count(), 1);
    // what the events would cost a timeline is beside the point: there is no timeline
    assert!(!err.to_string().contains("the timeline"), "{err}");
    assert!(door.asked.contains(&Asked::TraceReady));
    assert!(!door.asked.contains(&Asked::DropPrivileges));
    assert!(!door.asked.contains(&Asked::Play));
}
