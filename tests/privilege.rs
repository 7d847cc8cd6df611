//! Least privilege, seen from outside: the real binary is started (as root, or as a setcap'd copy run by nobody) and
//! its threads' credentials are read from /proc/PID/task/*/status while it works — `analyze` blocked reading a FIFO
//! nobody has written to yet, `run` paused by its test seam (`TCW_TEST_PAUSE_AFTER_DROP`) after the drop. Also the
//! output files: made through a temporary file, never the input, left alone by a failed command.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tcp-close-watch");
const PAUSE: &str = tcp_close_watch::os::privilege::PAUSE_FOR_TESTS;

fn capture(mode: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(format!("{mode}.pcapng"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Each thread's credential lines (`Uid`, `CapEff`, …) of process `pid`.
fn threads_of(pid: u32) -> Vec<Vec<(String, String)>> {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    dir.filter_map(|t| {
        let text = std::fs::read_to_string(t.ok()?.path().join("status")).ok()?;
        Some(
            text.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.to_string(), v.trim().to_string()))
                .collect(),
        )
    })
    .collect()
}

fn field<'a>(status: &'a [(String, String)], name: &str) -> &'a str {
    status
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Wait until every thread of `pid` runs as `uid` with no capability left, then check all of it on each thread.
/// Returns how many threads there were.
fn wait_until_unprivileged(child: &mut Child, uid: u32, bounding_empty: bool) -> usize {
    let pid = child.id();
    let start = Instant::now();
    let done = |threads: &[Vec<(String, String)>]| {
        !threads.is_empty()
            && threads.iter().all(|s| {
                field(s, "Uid")
                    .split_whitespace()
                    .all(|u| u == uid.to_string())
                    && field(s, "CapEff").trim_matches('0').is_empty()
                    && field(s, "NoNewPrivs") == "1"
            })
    };
    let mut threads = threads_of(pid);
    while !done(&threads) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the process ended ({status}) before it was seen unprivileged");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still privileged after 20 s: {threads:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
        threads = threads_of(pid);
    }
    for s in &threads {
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            assert!(field(s, set).trim_matches('0').is_empty(), "{set}: {s:?}");
        }
        if bounding_empty {
            assert!(field(s, "CapBnd").trim_matches('0').is_empty(), "{s:?}");
        }
        for id in ["Uid", "Gid"] {
            assert!(
                field(s, id)
                    .split_whitespace()
                    .all(|u| u == uid.to_string()),
                "{id}: {s:?}"
            );
        }
        assert_eq!(field(s, "Groups"), "", "{s:?}");
    }
    threads.len()
}

fn nobody() -> u32 {
    65534
}

/// `sudo tcp-close-watch analyze FIFO /root-only/x.pcapng`: the inputs are opened as root (a file only root may
/// read is still read), then root and every capability are gone before the first byte is read — the FIFO stays
/// empty until the test has seen that.
#[test]
fn analyze_gives_up_root_before_reading_a_byte() {
    if !is_root() {
        return tcp_close_watch::testing::skip("privilege test needs root");
    }
    let dir = tempfile::tempdir().unwrap(); // 0700, root's: nobody could not open what is inside
    let fifo = dir.path().join("in.pcapng");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a path we own.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let private = dir.path().join("drain.pcapng");
    std::fs::copy(capture("drain"), &private).unwrap();
    let out = dir.path().join("out.csv");
    let mut child = Command::new(BIN)
        .args(["analyze", "--format", "csv", "-o"])
        .args([&out, &fifo, &private])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // opening for writing waits for the reader to open: from now on the process may read, and nothing is there
    let mut writer = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    wait_until_unprivileged(&mut child, nobody(), true);
    writer
        .write_all(&std::fs::read(capture("abrupt")).unwrap())
        .unwrap();
    drop(writer);
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let text = std::fs::read_to_string(&out).unwrap();
    assert!(
        text.lines().any(|l| l.starts_with("abrupt,"))
            && text.lines().any(|l| l.starts_with("drain,")),
        "both saved runs, the FIFO's and the one only root may read:\n{text}"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "no temporary file left: {names:?}");
}

/// `run` as root: every thread (the capture's too) is nobody with no capability while the pair plays, and the
/// -o and --write files still land in a folder only root may write.
#[test]
fn run_plays_as_nobody_on_every_thread_and_still_writes_its_files() {
    if !is_root() {
        return tcp_close_watch::testing::skip("privilege test needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.json");
    let saved = dir.path().join("run.pcapng");
    let mut child = Command::new(BIN)
        .args(["run", "--mode", "abrupt", "--format", "json", "-o"])
        .arg(&out)
        .arg("--write")
        .arg(&saved)
        .env(PAUSE, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let threads = wait_until_unprivileged(&mut child, nobody(), true);
    assert!(threads >= 2, "the capture's thread was open too: {threads}");
    drop(child.stdin.take());
    let o = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let json = std::fs::read_to_string(&out).unwrap();
    assert!(
        json.contains(r#""flags":"R.""#),
        "the RST was captured: {json}"
    );
    assert!(
        tcp_close_watch::capfile::saved::read_run(saved.to_str().unwrap()).is_some(),
        "the run was saved"
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["out.json", "run.pcapng"], "no temporary file left");
}

/// The README's setcap route, run by nobody: the file's cap_net_raw opens the capture and is then given up on
/// every thread; analyze gives it up before reading.
#[test]
fn a_setcap_binary_gives_up_its_capability() {
    if !is_root() {
        return tcp_close_watch::testing::skip("privilege test needs root (to setcap a copy)");
    }
    let dir = tempfile::tempdir().unwrap();
    let bin = tcp_close_watch::testing::setcap_copy(BIN.as_ref(), dir.path());
    // nobody reads the capture from the copy's folder: the checkout may be one only its owner enters (mktemp -d)
    let abrupt = dir.path().join("abrupt.pcapng");
    std::fs::copy(capture("abrupt"), &abrupt).expect("the capture can be copied");
    std::fs::set_permissions(&abrupt, std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .expect("chmod the capture");
    let commands: [&[&str]; 2] = [
        &["run", "--mode", "abrupt", "--format", "json"],
        &["analyze", abrupt.to_str().unwrap(), "--format", "json"],
    ];
    for args in commands {
        let mut child = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&bin)
            .args(args)
            .env(PAUSE, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("setpriv (util-linux) runs");
        // setpriv execs the binary in the same process
        wait_until_unprivileged(&mut child, nobody(), false);
        drop(child.stdin.take());
        let o = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {err}");
        assert!(
            String::from_utf8_lossy(&o.stdout).contains(r#""flags":"R.""#),
            "{args:?}: {err}"
        );
    }
}

fn tcw(args: &[&str], cwd: &Path) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

/// Issue 12: a failed command leaves an existing -o file as it was and creates none; no temporary file stays.
#[test]
fn a_failed_command_touches_no_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let notes = dir.path().join("notes.md");
    std::fs::write(&notes, "my notes\n").unwrap();
    let o = tcw(
        &[
            "analyze",
            "nonexist.pcap",
            "-f",
            "markdown",
            "-o",
            "notes.md",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    std::fs::write(dir.path().join("junk.pcap"), "not a capture").unwrap();
    let o = tcw(&["analyze", "junk.pcap", "-o", "new.txt"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    // a run whose --write cannot be made fails before it plays, and its -o is not made either
    let o = tcw(
        &[
            "run",
            "--no-capture",
            "-o",
            "out.txt",
            "--write",
            "no/such/dir/x.pcapng",
        ],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--write no/such/dir/x.pcapng"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["junk.pcap", "notes.md"]);
}

/// `analyze F -o F` (or through a link to F, or F as standard input) is refused in one line, and F is untouched.
#[test]
fn the_output_may_not_be_an_input() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("abrupt.pcapng");
    std::fs::copy(capture("abrupt"), &f).unwrap();
    std::os::unix::fs::symlink(&f, dir.path().join("link.pcapng")).unwrap();
    let before = std::fs::read(&f).unwrap();
    for out in ["abrupt.pcapng", "link.pcapng"] {
        let o = tcw(&["analyze", "abrupt.pcapng", "-o", out], dir.path());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("is the input abrupt.pcapng"), "{err}");
    }
    let o = Command::new(BIN)
        .args(["analyze", "-", "-o", "abrupt.pcapng"])
        .current_dir(dir.path())
        .stdin(std::fs::File::open(&f).unwrap())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is the input -"));
    assert_eq!(std::fs::read(&f).unwrap(), before);
    assert!(
        std::fs::symlink_metadata(dir.path().join("link.pcapng"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

/// A successful -o replaces the file (keeping its mode) through a link without replacing the link, and writes
/// straight into what is no regular file (/dev/null).
#[test]
fn the_output_replaces_the_file_a_link_points_to() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.md");
    std::fs::write(&real, "old\n").unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::symlink("real.md", dir.path().join("link.md")).unwrap();
    let abrupt = capture("abrupt");
    let o = tcw(
        &[
            "analyze",
            abrupt.to_str().unwrap(),
            "-f",
            "markdown",
            "-o",
            "link.md",
        ],
        dir.path(),
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        std::fs::read_to_string(&real)
            .unwrap()
            .starts_with("### mode abrupt")
    );
    assert_eq!(
        std::fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o640
    );
    assert!(
        std::fs::symlink_metadata(dir.path().join("link.md"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let o = tcw(
        &["analyze", abrupt.to_str().unwrap(), "-o", "/dev/null"],
        dir.path(),
    );
    assert_eq!(o.status.code(), Some(0));
    // -o /dev/stdout into a file the shell opened: that very file is written, not replaced
    let shell = dir.path().join("shell.txt");
    let opened = std::fs::File::create(&shell).unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
    let before = inode(&shell);
    let o = Command::new(BIN)
        .args([
            "analyze",
            abrupt.to_str().unwrap(),
            "-f",
            "csv",
            "-o",
            "/dev/stdout",
        ])
        .stdout(opened)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(inode(&shell), before);
    assert!(
        std::fs::read_to_string(&shell)
            .unwrap()
            .starts_with("t_us,")
    );
    let names = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(
        names, 3,
        "real.md, link.md, shell.txt and no temporary file"
    );
    assert!(std::os::unix::fs::FileTypeExt::is_char_device(
        &Path::new("/dev/null").metadata().unwrap().file_type()
    ));
}

/// A root without the rights to change user (a locked-down container) cannot become nobody: it reads nothing and
/// says in one line what to do, rather than parse the file as root.
#[test]
fn root_that_cannot_change_user_reads_nothing() {
    if !is_root() {
        return tcp_close_watch::testing::skip("privilege test needs root");
    }
    let dir = tempfile::tempdir().unwrap();
    let abrupt = capture("abrupt");
    let o = Command::new("setpriv")
        .args(["--bounding-set=-all", "--inh-caps=-all"])
        .arg(BIN)
        .args(["analyze", abrupt.to_str().unwrap(), "-o", "out.txt"])
        .current_dir(dir.path())
        .output()
        .expect("setpriv (util-linux) runs");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot give up privileges") && err.contains("run it as an ordinary user"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no file made"
    );
}
