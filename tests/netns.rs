//! The private network namespaces of the link scenarios (os/netns.rs): made, changed and always removed — after a
//! normal end, after the owner is killed with SIGINT or SIGKILL (its keeper, or the next run's sweep, removes
//! them) — and the two link scenarios played for real with `--check`, leaving nothing behind either. Root and
//! real: `ip netns list` and `ip link` are read after each.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use tcp_close_watch::os::netns::{self, Link, Pair};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Names of ours that `ip netns list` and `ip link` (of the host) still show for `pid`.
fn left_by(pid: u32) -> Vec<String> {
    let ns = format!("tcw-{pid}-");
    let veth = format!("tcw{pid}");
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout).into_owned();
    netns::list()
        .into_iter()
        .filter(|n| n.starts_with(&ns))
        .chain(
            links
                .lines()
                .filter(|l| l.contains(&veth))
                .map(str::to_string),
        )
        .collect()
}

/// Wait (bounded) until nothing of `pid` is left.
fn gone(pid: u32) -> Vec<String> {
    let t0 = Instant::now();
    loop {
        let left = left_by(pid);
        if left.is_empty() || t0.elapsed() > Duration::from_secs(5) {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_pair_carries_a_connection_and_is_removed_when_dropped() {
    if !is_root() {
        tcp_close_watch::testing::skip("network namespaces need root");
        return;
    }
    let mut pair = Pair::create().expect("pair");
    let listener = {
        let _in_b = pair.enter(false).unwrap();
        TcpListener::bind(SocketAddr::new(pair.addr_b.into(), 0)).unwrap()
    };
    let to = listener.local_addr().unwrap();
    let a = {
        let _in_a = pair.enter(true).unwrap();
        TcpStream::connect_timeout(&to, Duration::from_secs(2)).expect("A reaches B over the veth")
    };
    // the socket stays in A's namespace: from the host, B's address is not even routed to
    assert!(TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_err());
    let (_b, from) = listener.accept().unwrap();
    assert_eq!(from.ip(), std::net::IpAddr::from(pair.addr_a));
    pair.link(&Link::Rate("1mbit".into())).expect("tbf works");
    pair.link(&Link::Blackhole).expect("a blackhole route");
    match pair.link(&Link::Delay(100)) {
        Ok(()) => {}
        Err(e) => assert!(e.0.contains("netem"), "{e}"),
    }
    drop(a);
    let names = [pair.ns_a.clone(), pair.ns_b.clone(), pair.veth_a.clone()];
    drop(pair);
    // other tests of this process make pairs at the same time: look for this one's names
    let left: Vec<String> = left_by(std::process::id())
        .into_iter()
        .filter(|l| names.iter().any(|n| l.contains(n.as_str())))
        .collect();
    assert_eq!(left, Vec::<String>::new());
}

/// A child process that makes a pair and waits; killed with `sig`. With SIGINT its keeper removes the pair at
/// once; with SIGKILL too (the pipe closes), and a pair left anyway is swept by the next `Pair::create`.
fn killed_owner_leaves_nothing(sig: libc::c_int) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hold_a_pair", "--nocapture", "--ignored"])
        .env("TCW_HOLD_PAIR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    kill_once_paired(&mut child, sig, Duration::ZERO);
}

/// Once `child` has made its pair (and `settle` later), kill it with `sig`: nothing of its may be left once its
/// keeper has seen the pipe close, and surely nothing after the next `Pair::create` has swept.
fn kill_once_paired(child: &mut std::process::Child, sig: libc::c_int, settle: Duration) {
    let pid = child.id();
    let t0 = Instant::now();
    while left_by(pid).len() < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the child made no pair"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(settle);
    // SAFETY: kill of our own child.
    unsafe { libc::kill(pid as i32, sig) };
    let _ = child.wait();
    let left = gone(pid);
    drop(Pair::create().expect("the next pair, which sweeps"));
    assert_eq!(left, Vec::<String>::new(), "after signal {sig}");
    assert_eq!(
        left_by(pid),
        Vec::<String>::new(),
        "after signal {sig} and a sweep"
    );
}

#[test]
fn a_pair_is_removed_when_its_owner_is_interrupted() {
    if !is_root() {
        tcp_close_watch::testing::skip("network namespaces need root");
        return;
    }
    killed_owner_leaves_nothing(libc::SIGINT);
}

#[test]
fn a_pair_is_removed_when_its_owner_is_killed() {
    if !is_root() {
        tcp_close_watch::testing::skip("network namespaces need root");
        return;
    }
    killed_owner_leaves_nothing(libc::SIGKILL);
}

/// Not a test of its own: the process the tests above kill.
#[test]
#[ignore = "run by the kill tests as a child process"]
fn hold_a_pair() {
    if std::env::var_os("TCW_HOLD_PAIR").is_none() {
        return;
    }
    let _pair = Pair::create().expect("pair");
    std::thread::sleep(Duration::from_secs(30));
}

#[test]
fn a_dead_runs_pair_is_swept() {
    if !is_root() {
        tcp_close_watch::testing::skip("network namespaces need root");
        return;
    }
    // a name of a pid that cannot be alive (above pid_max), as a crashed run whose keeper was killed would leave
    let stale = "tcw-99999999-0-a";
    let made = std::process::Command::new("ip")
        .args(["netns", "add", stale])
        .status()
        .unwrap();
    assert!(made.success());
    // (a pair made by another test at the same time may sweep it first: either way it is gone)
    netns::sweep_stale();
    assert!(!netns::list().contains(&stale.to_string()));
}

fn tcw(args: &[&str]) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Each link scenario meets its expectations on this kernel, and its namespaces are gone once `run` ends.
#[test]
fn the_link_scenarios_meet_their_expectations_and_leave_nothing() {
    if !is_root() {
        tcp_close_watch::testing::skip("the link scenarios need root (namespaces, capture)");
        return;
    }
    for mode in ["keepalive-dead-peer", "user-timeout"] {
        let child = tcw(&["run", "--mode", mode, "--check"]);
        let pid = child.id();
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{mode}: {err}");
        assert!(err.contains(&format!("check: mode {mode}: ")), "{err}");
        assert_eq!(gone(pid), Vec::<String>::new(), "{mode}");
    }
}

/// `run` of a link scenario killed with `sig` while it plays (its pair made, A waiting on the kernel's timer)
/// leaves nothing; after SIGKILL, the next run's sweep would take what the keeper had not.
fn killed_run_leaves_nothing(sig: libc::c_int) {
    let mut child = tcw(&["run", "--mode", "keepalive-dead-peer"]);
    // A is by then waiting on the kernel's keepalive timer
    kill_once_paired(&mut child, sig, Duration::from_millis(300));
}

#[test]
fn an_interrupted_link_run_leaves_nothing() {
    if !is_root() {
        tcp_close_watch::testing::skip("the link scenarios need root");
        return;
    }
    killed_run_leaves_nothing(libc::SIGINT);
}

#[test]
fn a_killed_link_run_leaves_nothing() {
    if !is_root() {
        tcp_close_watch::testing::skip("the link scenarios need root");
        return;
    }
    killed_run_leaves_nothing(libc::SIGKILL);
}

/// A file played by `run --scenario` as a child (to learn its pid), with its standard error.
fn play_file(name: &str, text: &str, args: &[&str]) -> (u32, std::process::Output) {
    let dir = std::env::temp_dir().join(format!("tcw-netns-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.scenario"));
    std::fs::write(&file, text).unwrap();
    let mut all = vec!["run", "--scenario", file.to_str().unwrap()];
    all.extend(args);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .args(&all)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let o = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (pid, o)
}

/// `link down`: nothing A sends afterwards reaches the wire (its send() still succeeds: the bytes are queued),
/// and the run ends whole, although its end-of-capture marker cannot leave a down link either.
#[test]
fn a_link_set_down_carries_nothing_more_and_the_run_ends_whole() {
    if !is_root() {
        tcp_close_watch::testing::skip("the link scenarios need root (namespaces, capture)");
        return;
    }
    let (pid, o) = play_file(
        "down",
        "scenario down\nsummary the link goes down\nA connect\nB accept\nA send \"up\"\nwait B unread 2\n\
         link down\nA send \"down\"\nsleep 50 ms\nA close\nB close\n",
        &["-f", "json"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!err.contains("warning"), "{err}");
    let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let data = |len: u64| {
        rows.iter()
            .any(|r| r["kind"] == "segment" && r["side"] == "A" && r["len"] == len)
    };
    let sent = |text: &str| {
        rows.iter()
            .any(|r| r["kind"] == "call" && r["side"] == "A" && r["data"] == text)
    };
    assert!(sent("up") && sent("down"), "both send()s succeed");
    assert!(data(2), "the bytes sent before are on the wire");
    assert!(!data(4), "nothing leaves a link that is down");
    assert_eq!(gone(pid), Vec::<String>::new());
}

/// A link run that fails (a wait that is never met) leaves nothing either.
#[test]
fn a_failed_link_run_leaves_nothing() {
    if !is_root() {
        tcp_close_watch::testing::skip("the link scenarios need root (namespaces, capture)");
        return;
    }
    let (pid, o) = play_file(
        "fails",
        "scenario fails\nsummary waits for what never comes\nA connect\nB accept\nlink blackhole\n\
         wait B sends FIN\nA close\nB close\n",
        &[],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("line 6 (wait B sends FIN): gave up after 3 s"),
        "{err}"
    );
    assert_eq!(gone(pid), Vec::<String>::new());
}

/// `link rate`: tbf on A's end of the veth paces what A sends. 20000 bytes at 80 kbit/s (10 kB/s, a 4 kB burst)
/// take about 1.6 s to leave; without the limit, a few ms. Measured on the wire (A's veth, after the qdisc): from
/// A's send() to its last data segment.
#[test]
fn a_rate_limit_paces_what_a_sends() {
    if !is_root() {
        tcp_close_watch::testing::skip("the link scenarios need root (namespaces, capture)");
        return;
    }
    let spread = |link: &str| {
        let (_, o) = play_file(
            "rate",
            &format!(
                "scenario rate\nsummary a rate limit\nA connect\nB accept\n{link}\nA send 20000 bytes\n\
                 wait A acked\nA close\nB close\n"
            ),
            &["-f", "json"],
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let rows: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let t = |r: &serde_json::Value| r["t_us"].as_i64().unwrap();
        let send = rows
            .iter()
            .find(|r| r["kind"] == "call" && r["call"] == "send(20000 bytes)")
            .map(t)
            .unwrap();
        let last = rows
            .iter()
            .filter(|r| r["kind"] == "segment" && r["side"] == "A" && r["len"].as_u64() > Some(0))
            .map(t)
            .max()
            .unwrap();
        last - send
    };
    let paced = spread("link rate 80kbit");
    assert!(
        paced > 1_000_000,
        "20000 bytes left in {paced} µs at 80 kbit/s"
    );
    // the same veth with a limit far above what is sent
    let free = spread("link rate 1gbit");
    assert!(free < 500_000, "{free} µs at 1 gbit/s");
}
