//! Our private tracefs instances (`instances/tcp-close-watch-<pid>-<n>`), and their removal on every way out.
//!
//! An instance is a ring buffer of its own with its own event switches and filters, so a run never disturbs the
//! global trace or another run. It costs kernel memory until removed, so removal is arranged for each exit:
//! - normal end, error, panic unwinding: [`Instance`]'s `Drop` removes it (after the reader closed its pipe).
//! - SIGINT, SIGTERM, SIGHUP: [`install_signal_cleanup`] (called by `Tracer::start`, only for signals whose
//!   disposition is still the default) installs a handler that does nothing but write the signal number to a pipe
//!   — write(2) is async-signal-safe; no lock, no allocation, no rmdir in the handler. A thread waiting on that
//!   pipe calls [`remove_all_instances`] (stop every reader, rmdir every instance), then restores the default
//!   disposition and re-raises the signal, so the process ends as the signal meant. A program with its own
//!   handler calls [`remove_all_instances`] from its own cleanup path instead.
//! - SIGKILL, a crash, a power cut: nothing runs. The next start sweeps `tcp-close-watch-<pid>-*` whose pid is
//!   dead ([`sweep_stale`]). The kernel refuses to remove an instance whose pipe is open, so a sweep can never
//!   take the instance of a live run that is reading, even one in another pid namespace.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, Instant};

use super::error::{TraceError, io_error};

/// Every instance's name starts with this.
pub const PREFIX: &str = "tcp-close-watch-";

/// One instance of this process, as the cleanup paths see it.
struct Live {
    path: PathBuf,
    /// The stop flag of the instance's reader, so a cleanup from another thread can make it close its pipe.
    stop: Arc<AtomicBool>,
}

/// The instances this process holds now.
static LIVE: Mutex<Vec<Live>> = Mutex::new(Vec::new());
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A private instance, removed when dropped.
#[derive(Debug)]
pub struct Instance {
    pub path: PathBuf,
    /// The write end of the remover's standard input (see [`spawn_remover`]): closing it, or this process ending
    /// in any way, has the instance removed by a process that keeps the rights this one may give up.
    remover: Option<std::process::ChildStdin>,
}

/// Start a small process that waits for its standard input to close, then removes `path`. It is started while this
/// process still has the rights to remove the instance (a run gives up root once everything is open), and it
/// outlives a crash or SIGKILL of this process: the pipe closes with it. It is spawned, so it holds none of this
/// process's sockets (they are close-on-exec), only the pipe.
fn spawn_remover(path: &Path) -> Option<std::process::ChildStdin> {
    // it ignores the signals a terminal's Ctrl-C (or `timeout`, `kill -- -PGID`) sends to the whole process group:
    // it must outlive this process, not die with it
    const SCRIPT: &str = "trap '' INT TERM HUP QUIT; read -r _; i=0; while [ $i -lt 100 ]; do rmdir \"$0\" 2>/dev/null && exit 0; \
        [ -d \"$0\" ] || exit 0; sleep 0.02; i=$((i+1)); done; exit 1";
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg(path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let stdin = child.stdin.take();
    // reaped by a thread of its own; without one it stays a zombie until this process ends: harmless
    let _ = std::thread::Builder::new()
        .name("tracefs-remover".into())
        .spawn(move || child.wait());
    stdin
}

impl Instance {
    /// Make `instances/tcp-close-watch-<pid>-<n>` under `root`, registered for removal on every way out.
    pub fn create(root: &Path, stop: &Arc<AtomicBool>) -> Result<Instance, TraceError> {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = root
            .join("instances")
            .join(format!("{PREFIX}{}-{n}", std::process::id()));
        let mut made = std::fs::create_dir(&path);
        if made
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
        {
            // Not ours now (the counter never repeats), so left by an earlier process that had our pid.
            let _ = std::fs::remove_dir(&path);
            made = std::fs::create_dir(&path);
        }
        made.map_err(|e| io_error("create the trace instance", &path, e))?;
        lock_live().push(Live {
            path: path.clone(),
            stop: Arc::clone(stop),
        });
        let remover = spawn_remover(&path);
        Ok(Instance { path, remover })
    }

    /// Write `value` to the instance's file `rel` (`trace_clock`, `events/tcp/tcp_send_reset/enable`).
    pub fn write(&self, rel: &str, value: &str) -> std::io::Result<()> {
        std::fs::write(self.path.join(rel), value)
    }
}

impl Instance {
    /// Hand the removal to the remover and return at once: rmdir of an instance waits while the kernel frees its
    /// ring buffers (tens of ms). The instance's pipe must be closed already.
    pub fn remove_in_background(mut self) {
        lock_live().retain(|l| l.path != self.path);
        // closing the remover's input hands it the removal; without a remover, it is done here
        if self.remover.take().is_none() {
            let _ = remove(&self.path, Duration::from_secs(1));
        }
        std::mem::forget(self);
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        lock_live().retain(|l| l.path != self.path);
        // this process may have given up the right to remove it: then the remover, woken by the closed pipe, does
        // (and when it is gone already, the remover finds so and ends)
        let _ = remove(&self.path, Duration::from_secs(1));
        drop(self.remover.take());
    }
}

fn lock_live() -> std::sync::MutexGuard<'static, Vec<Live>> {
    // A panic while holding the lock leaves the list intact (pushes and retains are whole): keep using it.
    LIVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// rmdir `path`, retrying while the kernel says busy (a reader not yet closed its pipe); gone already is fine.
fn remove(path: &Path, patience: Duration) -> std::io::Result<()> {
    let start = Instant::now();
    loop {
        match std::fs::remove_dir(path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && start.elapsed() < patience => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

/// Stop every reader of this process and remove every instance it holds. For a program's own signal or exit path;
/// safe to call more than once and from any thread (not from a signal handler).
pub fn remove_all_instances() {
    let live: Vec<(PathBuf, Arc<AtomicBool>)> = lock_live()
        .iter()
        .map(|l| (l.path.clone(), Arc::clone(&l.stop)))
        .collect();
    for (_, stop) in &live {
        stop.store(true, Ordering::SeqCst);
    }
    for (path, _) in &live {
        let _ = remove(path, Duration::from_secs(2));
    }
}

/// The pid in an instance name of ours (`tcp-close-watch-1234-0` → 1234).
pub fn owner_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(PREFIX)?;
    let pid = rest.split('-').next()?;
    pid.parse().ok()
}

fn alive(pid: i32) -> bool {
    // SAFETY: signal 0 only asks whether the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Remove instances left by runs of ours whose process is gone; returns their names.
pub fn sweep_stale(root: &Path) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir(root.join("instances")) else {
        return Vec::new();
    };
    let me = std::process::id() as i32;
    let mut removed = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let stale = owner_pid(&name).is_some_and(|pid| pid != me && pid > 0 && !alive(pid));
        if stale && std::fs::remove_dir(entry.path()).is_ok() {
            removed.push(name);
        }
    }
    removed
}

/// The write end of the self-pipe the signal handler writes to; -1 until installed.
static SIGNAL_PIPE: AtomicI32 = AtomicI32::new(-1);
const CLEANUP_SIGNALS: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

extern "C" fn on_signal(sig: libc::c_int) {
    let fd = SIGNAL_PIPE.load(Ordering::Relaxed);
    let byte = sig as u8;
    // SAFETY: write(2) on a pipe is async-signal-safe; the byte lives on this stack frame. errno is put back as
    // the interrupted code left it.
    unsafe {
        let errno = *libc::__errno_location();
        libc::write(fd, (&byte as *const u8).cast(), 1);
        *libc::__errno_location() = errno;
    }
}

/// Remove our instances on SIGINT/SIGTERM/SIGHUP, for each of those signals whose disposition is still the
/// default (a program that handles them itself calls [`remove_all_instances`] instead). Once per process.
pub fn install_signal_cleanup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-int array we own.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return;
        }
        SIGNAL_PIPE.store(fds[1], Ordering::SeqCst);
        let reader = fds[0];
        if std::thread::Builder::new()
            .name("tracefs-signal".into())
            .spawn(move || wait_for_signal(reader))
            .is_err()
        {
            return;
        }
        for sig in CLEANUP_SIGNALS {
            set_handler_if_default(sig);
        }
    });
}

fn set_handler_if_default(sig: libc::c_int) {
    // SAFETY: sigaction with structs we own; the handler only calls write(2).
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(sig, std::ptr::null(), &mut old) != 0
            || old.sa_sigaction != libc::SIG_DFL
        {
            return;
        }
        let mut act: libc::sigaction = std::mem::zeroed();
        act.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        act.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut act.sa_mask);
        libc::sigaction(sig, &act, std::ptr::null_mut());
    }
}

fn wait_for_signal(fd: libc::c_int) {
    let mut byte = 0u8;
    loop {
        // SAFETY: reads one byte into a byte we own.
        let n = unsafe { libc::read(fd, (&mut byte as *mut u8).cast(), 1) };
        if n == 1 {
            break;
        }
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        return;
    }
    remove_all_instances();
    // SAFETY: back to the default action, then deliver the same signal to end the process as it meant to.
    unsafe {
        libc::signal(byte as libc::c_int, libc::SIG_DFL);
        libc::raise(byte as libc::c_int);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pids_come_from_our_names_only() {
        assert_eq!(owner_pid("tcp-close-watch-1234-0"), Some(1234));
        assert_eq!(owner_pid("tcp-close-watch-1234"), Some(1234));
        assert_eq!(owner_pid("tcp-close-watch-x-0"), None);
        assert_eq!(owner_pid("someone-else-1234"), None);
    }
}
