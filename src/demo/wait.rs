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
/// peer's segment will wake it from.
pub fn blocked_in_recv(tid: i32) -> bool {
    let Ok(syscall) = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")) else {
        return false;
    };
    let number = syscall
        .split_whitespace()
        .next()
        .and_then(|n| n.parse::<i64>().ok());
    if number != Some(libc::SYS_recvfrom) {
        return false;
    }
    // state is the field after the parenthesised command name
    std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next().map(|s| s == "S"))
        })
        .unwrap_or(false)
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
