//! The kernel's own events, read live from tracefs while std::net sockets on 127.0.0.1 end connections in the ways
//! the tool explains: what the kernel says it did (reset reasons, states, errnos), that parallel runs stay apart,
//! that no instance outlives its run, and that kernel times sit on the same clock as our socket calls.
//!
//! They need root (tracefs is 0700). Without it each test says SKIPPED loudly and passes, unless TCW_NO_SKIP=1 is
//! set (CI sets it), in which case it fails.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};

use tcp_close_watch::model::kernel::{
    KernelEvent, KernelEventKind, KernelTrace, reset_reason_meaning,
};
use tcp_close_watch::model::tcp_state::TcpState;
use tcp_close_watch::os::tracefs::{self, TraceError, Tracer};

/// Held by every start (each sweeps dead runs' instances) and by the kill tests while they look at a dead child's
/// instance, so a start in a test running alongside cannot sweep it before they look.
static STARTS: Mutex<()> = Mutex::new(());

fn starts() -> MutexGuard<'static, ()> {
    STARTS.lock().unwrap_or_else(|p| p.into_inner())
}

/// A tracer on `ports`, or `None` after saying loudly why this machine cannot give one.
fn start(ports: &[u16]) -> Option<Tracer> {
    let _only_us = starts();
    match Tracer::start(ports) {
        Ok(t) => Some(t),
        Err(e @ (TraceError::NotPermitted { .. } | TraceError::NoTracefs { .. })) => {
            tcp_close_watch::testing::skip(&format!("tracefs test: {e}"));
            None
        }
        Err(e) => panic!("Tracer::start failed: {e}"),
    }
}

fn now() -> i64 {
    tracefs::reader::realtime_ns()
}

fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    (l, port)
}

/// The server reads 1 byte of 100 and closes: the kernel aborts with a RST. Returns the client's address and the
/// realtime stamps around the server's close and the client's failed read.
struct Abort {
    client: SocketAddr,
    before_close: i64,
    after_close: i64,
    after_read: i64,
}

fn abort_on_close(l: &TcpListener) -> Abort {
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut server, _) = l.accept().unwrap();
    client.write_all(&[7; 100]).unwrap();
    server.read_exact(&mut [0; 1]).unwrap();
    let before_close = now();
    drop(server);
    let after_close = now();
    let err = client.read(&mut [0; 10]).unwrap_err();
    let after_read = now();
    assert_eq!(err.kind(), ErrorKind::ConnectionReset);
    Abort {
        client: client.local_addr().unwrap(),
        before_close,
        after_close,
        after_read,
    }
}

fn resets<'a>(t: &'a KernelTrace, reason: &str) -> Vec<&'a KernelEvent> {
    t.events
        .iter()
        .filter(|e| matches!(&e.what, KernelEventKind::SendReset { reason: r, .. } if r == reason))
        .collect()
}

fn errors(t: &KernelTrace, errno: i32) -> Vec<&KernelEvent> {
    t.events
        .iter()
        .filter(|e| matches!(e.what, KernelEventKind::ErrorReport { errno: n, .. } if n == errno))
        .collect()
}

fn show(t: &KernelTrace) -> String {
    t.events
        .iter()
        .map(|e| format!("{} {}", e.ts, e.what))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn abort_on_close_is_named_by_the_kernel() {
    let (l, port) = listener();
    let Some(tracer) = start(&[port]) else { return };
    let a = abort_on_close(&l);
    let t = tracer.finish().unwrap();
    let rst = resets(&t, "TCP_ABORT_ON_CLOSE");
    assert_eq!(rst.len(), 1, "one abort RST expected:\n{}", show(&t));
    assert_eq!(rst[0].what.src().port(), port);
    assert_eq!(rst[0].what.dst(), a.client);
    let server_closed = t.events.iter().any(|e| {
        e.what
            == KernelEventKind::StateChange {
                old: TcpState::Established,
                new: TcpState::Closed,
                src: SocketAddr::from(([127, 0, 0, 1], port)),
                dst: a.client,
            }
    });
    assert!(
        server_closed,
        "server ESTABLISHED → CLOSE missing:\n{}",
        show(&t)
    );
    let reset = errors(&t, 104);
    assert_eq!(reset.len(), 1, "one ECONNRESET expected:\n{}", show(&t));
    assert_eq!(reset[0].what.src(), a.client);
    assert!(
        t.events.iter().all(|e| e.what.touches_port(port)),
        "{}",
        show(&t)
    );
    assert_eq!(t.lost_events, 0);
    assert!(t.unreadable.is_empty(), "{:?}", t.unreadable);
}

#[test]
fn abort_on_close_over_ipv6() {
    let Ok(l) = TcpListener::bind("[::1]:0") else {
        return tcp_close_watch::testing::skip("no IPv6 loopback (::1) on this machine");
    };
    let port = l.local_addr().unwrap().port();
    let Some(tracer) = start(&[port]) else { return };
    let a = abort_on_close(&l);
    let t = tracer.finish().unwrap();
    let rst = resets(&t, "TCP_ABORT_ON_CLOSE");
    assert_eq!(rst.len(), 1, "{}", show(&t));
    assert_eq!(rst[0].what.src(), l.local_addr().unwrap());
    assert_eq!(rst[0].what.dst(), a.client);
    assert_eq!(errors(&t, 104)[0].what.src(), a.client, "{}", show(&t));
}

#[test]
fn connect_to_a_closed_port_is_no_socket_and_refused() {
    let (l, port) = listener();
    drop(l);
    let Some(tracer) = start(&[port]) else { return };
    let err = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    let t = tracer.finish().unwrap();
    let rst = resets(&t, "NO_SOCKET");
    assert_eq!(rst.len(), 1, "one NO_SOCKET RST expected:\n{}", show(&t));
    assert!(matches!(
        rst[0].what,
        KernelEventKind::SendReset { state: None, src, .. } if src.port() == port
    ));
    let refused = errors(&t, 111);
    assert_eq!(refused.len(), 1, "one ECONNREFUSED expected:\n{}", show(&t));
    assert_eq!(refused[0].what.dst().port(), port);
}

#[test]
fn linger_zero_close_is_tcp_state() {
    let (l, port) = listener();
    let Some(tracer) = start(&[port]) else { return };
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: SO_LINGER with a struct we own and its true size, on a socket we own.
    let rc = unsafe {
        libc::setsockopt(
            server.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0);
    drop(server);
    assert!(client.read(&mut [0; 10]).is_err());
    let t = tracer.finish().unwrap();
    assert_eq!(resets(&t, "TCP_STATE").len(), 1, "{}", show(&t));
    // The client's socket is told ECONNRESET. (On 6.18 the aborting socket gets its own ECONNRESET report too,
    // from tcp_disconnect, with its peer already cleared: not what this test is about.)
    let client_addr = client.local_addr().unwrap();
    let told = errors(&t, 104);
    assert_eq!(
        told.iter().filter(|e| e.what.src() == client_addr).count(),
        1,
        "{}",
        show(&t)
    );
}

#[test]
fn data_after_close_is_abort_on_data() {
    let (l, port) = listener();
    let Some(tracer) = start(&[port]) else { return };
    let mut client = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    drop(server); // nothing unread: a FIN, the socket lives on as an orphan
    assert_eq!(client.read(&mut [0; 10]).unwrap(), 0);
    client.write_all(b"late").unwrap(); // data for a socket nobody can read any more
    std::thread::sleep(std::time::Duration::from_millis(20));
    let t = tracer.finish().unwrap();
    let rst = resets(&t, "TCP_ABORT_ON_DATA");
    assert_eq!(rst.len(), 1, "{}", show(&t));
    assert_eq!(rst[0].what.src().port(), port);
    // The client was in CLOSE_WAIT when the RST came: the kernel reports EPIPE there, not ECONNRESET.
    let client_addr = client.local_addr().unwrap();
    assert!(
        errors(&t, 32).iter().any(|e| e.what.src() == client_addr),
        "{}",
        show(&t)
    );
}

#[test]
fn two_tracers_at_once_see_only_their_own_ports() {
    let (l1, p1) = listener();
    let (l2, p2) = listener();
    let Some(t1) = start(&[p1]) else { return };
    let Some(t2) = start(&[p2]) else { return };
    assert_ne!(t1.instance_path(), t2.instance_path());
    abort_on_close(&l1);
    abort_on_close(&l2);
    for (tracer, own, other) in [(t1, p1, p2), (t2, p2, p1)] {
        let t = tracer.finish().unwrap();
        assert_eq!(resets(&t, "TCP_ABORT_ON_CLOSE").len(), 1, "{}", show(&t));
        assert!(
            t.events
                .iter()
                .all(|e| e.what.touches_port(own) && !e.what.touches_port(other)),
            "port {own} saw a foreign event:\n{}",
            show(&t)
        );
    }
}

#[test]
fn kernel_times_land_between_the_calls_that_caused_them() {
    const SLACK_NS: i64 = 2_000_000;
    let (l, port) = listener();
    let Some(tracer) = start(&[port]) else { return };
    let a = abort_on_close(&l);
    let t = tracer.finish().unwrap();
    let within = |e: &KernelEvent, from: i64, to: i64| {
        assert!(
            e.ts >= from - SLACK_NS && e.ts <= to + SLACK_NS,
            "{} at {} not within [{from}, {to}] ± {SLACK_NS} ns",
            e.what,
            e.ts
        )
    };
    within(
        resets(&t, "TCP_ABORT_ON_CLOSE")[0],
        a.before_close,
        a.after_close,
    );
    within(errors(&t, 104)[0], a.before_close, a.after_read);
    assert!(t.events.windows(2).all(|w| w[0].ts <= w[1].ts));
}

#[test]
fn no_instance_outlives_its_tracer() {
    let (_l, port) = listener();
    let Some(tracer) = start(&[port]) else { return };
    let path = tracer.instance_path().to_path_buf();
    assert!(path.is_dir());
    drop(tracer);
    assert!(!path.exists(), "{} left after drop", path.display());

    let tracer = start(&[port]).unwrap();
    let path = tracer.instance_path().to_path_buf();
    tracer.finish().unwrap();
    assert!(!path.exists(), "{} left after finish", path.display());

    let tracer = start(&[port]).unwrap();
    let path = tracer.instance_path().to_path_buf();
    let panicked = std::thread::spawn(move || {
        let _held = tracer;
        panic!("a scenario fails while the tracer runs");
    })
    .join();
    assert!(panicked.is_err());
    assert!(!path.exists(), "{} left after a panic", path.display());
}

/// Run [`helper_holds_a_tracer_until_killed`] in a child process; returns it and its instance's path.
fn child_with_a_tracer() -> (std::process::Child, PathBuf) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_holds_a_tracer_until_killed",
            "--ignored",
            "--nocapture",
        ])
        .env("TCW_TRACEFS_CHILD", "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let path = out
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("INSTANCE ").map(PathBuf::from))
        .expect("the child names its instance");
    assert!(path.is_dir());
    (child, path)
}

#[test]
#[ignore = "helper: a child process for the kill tests below"]
fn helper_holds_a_tracer_until_killed() {
    if std::env::var_os("TCW_TRACEFS_CHILD").is_none() {
        return;
    }
    let (_l, port) = listener();
    let tracer = Tracer::start(&[port]).unwrap();
    println!("INSTANCE {}", tracer.instance_path().display());
    std::io::stdout().flush().unwrap();
    std::thread::sleep(std::time::Duration::from_secs(60));
}

#[test]
fn the_next_start_removes_the_instance_of_a_killed_run() {
    let (_l, port) = listener();
    let Some(probe) = start(&[port]) else { return };
    drop(probe);
    let (mut child, path) = child_with_a_tracer();
    let only_us = starts();
    child.kill().unwrap(); // SIGKILL: nothing of the child runs
    child.wait().unwrap();
    assert!(path.is_dir(), "nothing should have removed it yet");
    let tracer = Tracer::start(&[port]).unwrap();
    drop(only_us);
    assert!(!path.exists(), "{} survived the next start", path.display());
    drop(tracer);
}

#[test]
fn sigterm_removes_the_instance_and_still_ends_the_process() {
    let (_l, port) = listener();
    let Some(probe) = start(&[port]) else { return };
    drop(probe);
    let (mut child, path) = child_with_a_tracer();
    let _only_us = starts();
    // SAFETY: a signal to the child we spawned and have not reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM), "{status:?}");
    assert!(!path.exists(), "{} left after SIGTERM", path.display());
}

#[test]
fn this_kernel_names_its_reset_reasons_and_we_can_say_each() {
    let reasons = match tracefs::reset_reasons() {
        Ok(r) => r,
        Err(e @ (TraceError::NotPermitted { .. } | TraceError::NoTracefs { .. })) => {
            return tcp_close_watch::testing::skip(&format!("tracefs test: {e}"));
        }
        Err(e) => panic!("{e}"),
    };
    for r in [
        "NO_SOCKET",
        "TCP_ABORT_ON_CLOSE",
        "TCP_STATE",
        "TCP_ABORT_ON_DATA",
    ] {
        assert!(reasons.iter().any(|x| x == r), "{r} not in {reasons:?}");
    }
    let unexplained: Vec<&String> = reasons
        .iter()
        .filter(|r| *r != "MAX" && reset_reason_meaning(r).is_none())
        .collect();
    assert!(unexplained.is_empty(), "no meaning for {unexplained:?}");
}
