//! Bounded waits on real conditions.

use std::fmt;
use std::time::{Duration, Instant};

/// Every wait gives up after this long: far more than any step takes on loopback.
pub const LIMIT: Duration = Duration::from_secs(3);

/// A scenario that could not go on, with what it was waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Poll `cond` until it holds; after [`LIMIT`], fail saying what we waited for.
pub fn until(
    what: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) -> Result<(), ScenarioError> {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        if start.elapsed() > LIMIT {
            return Err(ScenarioError(format!(
                "gave up after {} s waiting for {}",
                LIMIT.as_secs(),
                what()
            )));
        }
        // Yield a few times (steps on loopback take microseconds), then sleep briefly: a sleeping poller leaves the
        // CPU to the thread it waits for, where yielding may not.
        spins += 1;
        if spins < 20 {
            std::thread::yield_now();
        } else {
            std::thread::sleep(Duration::from_micros(20));
        }
    }
    Ok(())
}

/// The Linux id of the calling thread.
pub fn thread_id() -> i32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() }
}

/// True when thread `tid` of this process is asleep inside recv() (recvfrom(2) in the kernel): the state a
/// peer's segment will wake it from. Call it only once the thread is about to call recv().
///
/// /proc/self/task/TID/syscall names the system call; when it cannot be read — a binary given capabilities with
/// setcap is not "dumpable", which makes that file root's — the thread's state being S (asleep) is enough, since
/// recv() is the only thing the thread can sleep in by then.
pub fn blocked_in_recv(tid: i32) -> bool {
    let asleep = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| {
            // the state is the field after the parenthesised command name
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s == "S"))
        })
        .unwrap_or(false);
    if !asleep {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) {
        Ok(syscall) => {
            let number = syscall
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<i64>().ok());
            number == Some(libc::SYS_recvfrom)
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_returns_once_true() {
        let mut n = 0;
        until(
            || "n to reach 3".into(),
            || {
                n += 1;
                n >= 3
            },
        )
        .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn a_thread_sleeping_in_recv_is_seen_blocked() {
        // A connected socket pair with nothing to read: recv() sleeps until we write.
        let (l, r) = std::os::unix::net::UnixStream::pair().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let h = std::thread::spawn(move || {
            tx.send(thread_id()).unwrap();
            let mut b = [0u8; 1];
            // SAFETY: recv into a 1-byte buffer we own.
            unsafe {
                libc::recv(
                    std::os::fd::AsRawFd::as_raw_fd(&r),
                    b.as_mut_ptr().cast(),
                    1,
                    0,
                )
            }
        });
        let tid = rx.recv().unwrap();
        until(|| "the thread to block".into(), || blocked_in_recv(tid)).unwrap();
        std::io::Write::write_all(&mut &l, b"x").unwrap();
        assert_eq!(h.join().unwrap(), 1);
        assert!(!blocked_in_recv(tid));
    }
}
