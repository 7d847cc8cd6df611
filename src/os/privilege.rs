//! Giving up privileges once everything that needs them is open, as tcpdump's `-Z` and sniffglue do.
//!
//! [`drop_privileges`] leaves the process, on every one of its threads, with no capability in any set (effective,
//! permitted, inheritable, ambient; the bounding set too when it may), `no_new_privs` set, and — when it was root —
//! the user [`UNPRIVILEGED_USER`] (`nobody`) with its group and no supplementary groups. It then checks its work
//! from /proc/self/task/*/status and by trying to become root again, and fails (so the command stops) when any of
//! that did not hold.
//!
//! Capabilities and `no_new_privs` belong to each thread, not to the process: the calling thread changes its own,
//! and every other thread is asked to change its own by a real-time signal whose handler makes only raw system
//! calls (async-signal-safe). The user and groups are changed by glibc's `setresuid`/`setresgid`/`setgroups`,
//! which apply to every thread.
//!
//! Files the process writes after dropping root (`-o`, `--write`) are made as temporary files beforehand and put
//! in place at the end by a [`Finisher`]: a small process forked while still root that holds nothing but a pipe,
//! reads no input, and does one thing — rename the temporary files over their targets when told the command
//! succeeded, or remove them otherwise (also when the command dies).

use std::ffi::CString;
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whom a process started as root becomes.
pub const UNPRIVILEGED_USER: &str = "nobody";
/// Its ids when the system has no such user.
const FALLBACK_ID: u32 = 65534;

/// Set (to anything) by tests: after giving up its privileges the process says so on standard error and waits
/// until its standard input is closed, so the test can read its /proc/PID/status at a point where it is known to
/// have dropped them and not yet finished. Not part of the tool's interface.
pub const PAUSE_FOR_TESTS: &str = "TCW_TEST_PAUSE_AFTER_DROP";

/// Why privileges could not be given up, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrivilegeError(pub String);

impl fmt::Display for PrivilegeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot give up privileges: {}", self.0)
    }
}

impl std::error::Error for PrivilegeError {}

fn os_error(what: &str) -> PrivilegeError {
    PrivilegeError(format!("{what}: {}", std::io::Error::last_os_error()))
}

/// What the process gave up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// The user (name, uid, gid) it switched to, when it was root.
    pub user: Option<(String, u32, u32)>,
}

/// True when any of the real, effective or saved user ids is root's.
pub fn is_root() -> bool {
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid fills three ints we own.
    if unsafe { libc::getresuid(&mut r, &mut e, &mut s) } != 0 {
        return true;
    }
    r == 0 || e == 0 || s == 0
}

/// Give up every capability on every thread, set `no_new_privs`, and when root become [`UNPRIVILEGED_USER`]; then
/// check that it all holds. Call it once everything that needs privileges is open.
pub fn drop_privileges() -> Result<Dropped, PrivilegeError> {
    drop_privileges_to(None)
}

/// [`drop_privileges`], becoming `user` (name, uid, gid) instead of [`UNPRIVILEGED_USER`] when root (`watch`: the
/// user who ran sudo, or `--user NAME`). A user id of 0 is refused.
pub fn drop_privileges_to(user: Option<(String, u32, u32)>) -> Result<Dropped, PrivilegeError> {
    if user.as_ref().is_some_and(|(_, uid, _)| *uid == 0) {
        return Err(PrivilegeError("refusing to stay root (user id 0)".into()));
    }
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    LAST_CAP.store(last_cap(), Ordering::SeqCst);
    let user = if is_root() {
        let (name, uid, gid) = user.unwrap_or_else(unprivileged_user);
        // a root without the rights to change user (a locked-down container) cannot become nobody: say what to do
        let stuck = |e: PrivilegeError| {
            PrivilegeError(format!(
                "{} (root without CAP_SETUID/CAP_SETGID cannot become {name}: run it as an ordinary user)",
                e.0
            ))
        };
        // the bounding set can only shrink while CAP_SETPCAP is held, so before the user changes
        every_thread(Step::Bounding).map_err(stuck)?;
        // SAFETY: plain system calls on values we own; glibc applies each to every thread.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0 {
                return Err(stuck(os_error("setgroups")));
            }
            if libc::setresgid(gid, gid, gid) != 0 {
                return Err(stuck(os_error(&format!(
                    "setresgid to {name}'s group {gid}"
                ))));
            }
            if libc::setresuid(uid, uid, uid) != 0 {
                return Err(stuck(os_error(&format!("setresuid to {name} ({uid})"))));
            }
        }
        Some((name, uid, gid))
    } else {
        None
    };
    every_thread(Step::Clear)?;
    verify(user.as_ref().map(|(_, u, g)| (*u, *g)))?;
    pause_for_tests();
    Ok(Dropped { user })
}

/// A user of the user database by name (`--user`), or by id (SUDO_UID): (name, uid, gid).
pub fn user_named(name: &str) -> Option<(String, u32, u32)> {
    let c = CString::new(name).ok()?;
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r writes into the passwd struct and the buffer we own.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwnam_r(c.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut found);
        (r == 0 && !found.is_null()).then(|| (name.to_string(), pw.pw_uid, pw.pw_gid))
    }
}

/// The user with id `uid`: (name, uid, gid).
pub fn user_with_id(uid: u32) -> Option<(String, u32, u32)> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwuid_r writes into the passwd struct and the buffer we own; the name is copied out of it.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut found);
        if r != 0 || found.is_null() {
            return None;
        }
        let name = std::ffi::CStr::from_ptr(pw.pw_name)
            .to_string_lossy()
            .into_owned();
        Some((name, pw.pw_uid, pw.pw_gid))
    }
}

/// The user to become: `nobody` from the user database, or 65534:65534.
fn unprivileged_user() -> (String, u32, u32) {
    let name = CString::new(UNPRIVILEGED_USER).expect("no NUL in the name");
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: getpwnam_r writes into the passwd struct and the buffer we own, and sets `found` to one of them.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut found: *mut libc::passwd = std::ptr::null_mut();
        let r = libc::getpwnam_r(
            name.as_ptr(),
            &mut pw,
            buf.as_mut_ptr(),
            buf.len(),
            &mut found,
        );
        if r == 0 && !found.is_null() && pw.pw_uid != 0 {
            return (UNPRIVILEGED_USER.into(), pw.pw_uid, pw.pw_gid);
        }
    }
    (UNPRIVILEGED_USER.into(), FALLBACK_ID, FALLBACK_ID)
}

/// The highest capability number this kernel knows.
fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(63)
}

#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
enum Step {
    /// Empty the bounding set.
    Bounding = 1,
    /// Empty the ambient, effective, permitted and inheritable sets; set no_new_privs.
    Clear = 2,
}

static STEP: AtomicU32 = AtomicU32::new(0);
static LAST_CAP: AtomicU32 = AtomicU32::new(63);
static ANSWERED: AtomicUsize = AtomicUsize::new(0);
/// Which threads answered, by id, in the order they did (the first [`MAX_ANSWERS`]).
static ANSWERED_BY: [AtomicI32; MAX_ANSWERS] = [const { AtomicI32::new(0) }; MAX_ANSWERS];
const MAX_ANSWERS: usize = 1024;
/// The errno of the first thread that failed its step, 0 when none did.
static FAILED: AtomicI32 = AtomicI32::new(0);

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Do `step` on the calling thread, with raw system calls only (it runs in a signal handler); 0 or an errno.
fn apply(step: u32) -> libc::c_int {
    let errno = || {
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EPERM)
    };
    // SAFETY: prctl and capset with arguments we own; none of them allocates or takes a lock.
    unsafe {
        if step == Step::Bounding as u32 {
            // best effort: without CAP_SETPCAP (EPERM) the set stays, and no_new_privs makes it moot anyway
            for cap in 0..=LAST_CAP.load(Ordering::SeqCst) {
                if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0 {
                    match errno() {
                        libc::EINVAL => {}
                        libc::EPERM => return 0,
                        e => return e,
                    }
                }
            }
            return 0;
        }
        // EINVAL: a kernel without ambient capabilities has none to clear
        if libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
            && errno() != libc::EINVAL
        {
            return errno();
        }
        let header = CapHeader {
            version: CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [CapData {
            effective: 0,
            permitted: 0,
            inheritable: 0,
        }; 2];
        if libc::syscall(libc::SYS_capset, &header, data.as_ptr()) != 0 {
            return errno();
        }
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return errno();
        }
    }
    0
}

extern "C" fn on_signal(_: libc::c_int) {
    // SAFETY: errno is put back as the interrupted code left it.
    unsafe {
        let saved = *libc::__errno_location();
        let r = apply(STEP.load(Ordering::SeqCst));
        if r != 0 {
            let _ = FAILED.compare_exchange(0, r, Ordering::SeqCst, Ordering::SeqCst);
        }
        let i = ANSWERED.fetch_add(1, Ordering::SeqCst);
        if i < MAX_ANSWERS {
            ANSWERED_BY[i].store(libc::gettid(), Ordering::SeqCst);
        }
        *libc::__errno_location() = saved;
    }
}

/// The signal that asks the other threads to do a step: a real-time one no one else here uses.
fn signal() -> libc::c_int {
    libc::SIGRTMIN() + 5
}

/// Do `step` on every thread of the process: this one directly, the others from the signal's handler, waiting (a
/// bounded time) until each has answered.
fn every_thread(step: Step) -> Result<(), PrivilegeError> {
    STEP.store(step as u32, Ordering::SeqCst);
    ANSWERED.store(0, Ordering::SeqCst);
    for slot in &ANSWERED_BY {
        slot.store(0, Ordering::SeqCst);
    }
    FAILED.store(0, Ordering::SeqCst);
    let sig = signal();
    // SAFETY: sigaction with structs we own; the handler makes raw system calls and touches atomics only. It stays
    // installed afterwards, so a late signal can never take the default action (ending the process).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0 {
            return Err(os_error("sigaction"));
        }
        let ours = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != ours {
            return Err(PrivilegeError(format!(
                "signal {sig} has a handler already"
            )));
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = ours;
        act.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        if libc::sigaction(sig, &act, std::ptr::null_mut()) != 0 {
            return Err(os_error("sigaction"));
        }
    }
    // SAFETY: getpid and gettid have no preconditions.
    let (pid, me) = unsafe { (libc::getpid(), libc::gettid()) };
    let mut asked = Vec::new();
    for tid in threads() {
        if tid == me {
            continue;
        }
        // SAFETY: tgkill to a thread of our own process.
        if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) } == 0 {
            asked.push(tid);
        } else if std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH) {
            return Err(os_error(&format!("signal thread {tid}")));
        }
    }
    let r = apply(step as u32);
    if r != 0 {
        return Err(PrivilegeError(format!(
            "{}",
            std::io::Error::from_raw_os_error(r)
        )));
    }
    wait_for_answers(&asked)?;
    match FAILED.load(Ordering::SeqCst) {
        0 => Ok(()),
        e => Err(PrivilegeError(format!(
            "a thread: {}",
            std::io::Error::from_raw_os_error(e)
        ))),
    }
}

/// Wait (a bounded time) until every thread in `asked` has answered or is gone: one that ended before its handler
/// ran (a helper thread finishing its work just then) holds no privileges any more.
fn wait_for_answers(asked: &[i32]) -> Result<(), PrivilegeError> {
    let start = Instant::now();
    loop {
        let answered = ANSWERED.load(Ordering::SeqCst).min(MAX_ANSWERS);
        let by: Vec<i32> = ANSWERED_BY[..answered]
            .iter()
            .map(|t| t.load(Ordering::SeqCst))
            .collect();
        let waiting = asked
            .iter()
            .filter(|tid| !by.contains(tid))
            .filter(|tid| Path::new(&format!("/proc/self/task/{tid}")).exists())
            .count();
        if waiting == 0 {
            break;
        }
        if start.elapsed() > Duration::from_secs(5) {
            return Err(PrivilegeError(format!(
                "{waiting} of {} threads did not answer",
                asked.len()
            )));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    Ok(())
}

/// The ids of this process's threads.
fn threads() -> Vec<i32> {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// What /proc says of a thread's credentials: each line's name and value.
fn status_of(tid: i32) -> Option<Vec<(String, String)>> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).ok()?;
    Some(
        text.lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.to_string(), v.trim().to_string()))
            .collect(),
    )
}

/// Check on every thread that no capability is left, no_new_privs is set and (when it was root) every user and
/// group id is `user`'s; then that root cannot be taken back.
fn verify(user: Option<(u32, u32)>) -> Result<(), PrivilegeError> {
    let tids = threads();
    if tids.is_empty() {
        return Err(PrivilegeError("cannot list /proc/self/task".into()));
    }
    for tid in tids {
        let Some(status) = status_of(tid) else {
            continue; // the thread has ended
        };
        let field = |k: &str| status.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let bad = |what: &str| PrivilegeError(format!("thread {tid} still has {what}"));
        for set in ["CapInh", "CapPrm", "CapEff", "CapAmb"] {
            if field(set).is_some_and(|v| v.chars().any(|c| c != '0')) {
                return Err(bad(&format!("{set} {}", field(set).unwrap_or(""))));
            }
        }
        if field("NoNewPrivs") != Some("1") {
            return Err(bad("no_new_privs unset"));
        }
        if let Some((uid, gid)) = user {
            let all = |k: &str, id: u32| {
                field(k).is_some_and(|v| v.split_whitespace().all(|x| x == id.to_string()))
            };
            if !all("Uid", uid) || !all("Gid", gid) || field("Groups") != Some("") {
                return Err(bad("another user or group"));
            }
        }
    }
    // SAFETY: setresuid and setuid to root must fail now; they change nothing when they do.
    let regained = unsafe { libc::setresuid(u32::MAX, 0, u32::MAX) == 0 || libc::setuid(0) == 0 };
    if regained {
        return Err(PrivilegeError("root could be taken back".into()));
    }
    Ok(())
}

/// The seam for tests ([`PAUSE_FOR_TESTS`]).
fn pause_for_tests() {
    if std::env::var_os(PAUSE_FOR_TESTS).is_none() {
        return;
    }
    eprintln!("tcp-close-watch: privileges dropped; paused until standard input closes");
    let mut sink = Vec::new();
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
}

/// A process that keeps root's rights only to put the output files in place after the command gave them up: it
/// holds a pipe and nothing else, reads no input, and on one byte renames each temporary file over its target
/// (`commit`) or removes them (anything else, or the pipe closing because the command died).
#[derive(Debug)]
pub struct Finisher {
    pid: libc::pid_t,
    pipe: libc::c_int,
}

impl Finisher {
    /// Fork the finisher for `files`: (temporary file, target) pairs, both absolute.
    pub fn start(files: &[(PathBuf, PathBuf)]) -> Result<Finisher, PrivilegeError> {
        let c = |p: &PathBuf| CString::new(p.as_os_str().as_bytes()).ok();
        let pairs: Vec<(CString, CString)> = files
            .iter()
            .map(|(t, f)| Some((c(t)?, c(f)?)))
            .collect::<Option<_>>()
            .ok_or_else(|| PrivilegeError("a file name holds a NUL byte".into()))?;
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(os_error("pipe"));
        }
        // SAFETY: the child makes only async-signal-safe system calls on memory prepared before the fork, and
        // leaves with _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(os_error("fork"));
        }
        if pid == 0 {
            // SAFETY: see above.
            unsafe { finish_in_child(fds[0], &pairs) }
        }
        // SAFETY: closing the read end, which the child holds.
        unsafe { libc::close(fds[0]) };
        Ok(Finisher { pid, pipe: fds[1] })
    }

    /// Rename every temporary file over its target; the first failure, if any.
    pub fn commit(mut self) -> std::io::Result<()> {
        self.end(b'c')
    }

    /// Remove the temporary files; nothing else is touched.
    pub fn abort(mut self) {
        let _ = self.end(b'a');
    }

    fn end(&mut self, byte: u8) -> std::io::Result<()> {
        if self.pipe < 0 {
            return Ok(());
        }
        // SAFETY: one byte from our stack to our pipe, then closed; waitpid on our own child.
        let status = unsafe {
            libc::write(self.pipe, (&byte as *const u8).cast(), 1);
            libc::close(self.pipe);
            self.pipe = -1;
            let mut status = 0;
            while libc::waitpid(self.pid, &mut status, 0) < 0 {
                if std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                    return Err(std::io::Error::last_os_error());
                }
            }
            status
        };
        match (libc::WIFEXITED(status), libc::WEXITSTATUS(status)) {
            (true, 0) => Ok(()),
            (true, errno) => Err(std::io::Error::from_raw_os_error(errno)),
            _ => Err(std::io::Error::other("the finishing process was killed")),
        }
    }
}

impl Drop for Finisher {
    fn drop(&mut self) {
        let _ = self.end(b'a');
    }
}

/// The finisher's whole life (see [`Finisher`]).
unsafe fn finish_in_child(pipe: libc::c_int, pairs: &[(CString, CString)]) -> ! {
    unsafe {
        for sig in [
            libc::SIGINT,
            libc::SIGTERM,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // keep the pipe alone: as descriptor 0, everything else closed
        if libc::dup2(pipe, 0) < 0 {
            libc::_exit(libc::EBADF);
        }
        libc::syscall(libc::SYS_close_range, 1u32, u32::MAX, 0u32);
        libc::prctl(
            libc::PR_SET_NAME,
            c"tcw-finisher".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        let mut byte = 0u8;
        let n = loop {
            let n = libc::read(0, (&mut byte as *mut u8).cast(), 1);
            if n >= 0 || *libc::__errno_location() != libc::EINTR {
                break n;
            }
        };
        let mut first_error = 0;
        for (temp, target) in pairs {
            if n == 1 && byte == b'c' && first_error == 0 {
                if libc::rename(temp.as_ptr(), target.as_ptr()) != 0 {
                    first_error = *libc::__errno_location();
                    libc::unlink(temp.as_ptr());
                }
            } else {
                libc::unlink(temp.as_ptr());
            }
        }
        libc::_exit(first_error.clamp(0, 255))
    }
}
