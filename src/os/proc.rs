//! This process's threads as the kernel sees them: which thread is which, and whether one is asleep in recv().
//! Read from /proc/self/task, so the scenario can wait for "A is blocked in recv()" without a fixed sleep.
//!
//! Nothing here blocks or panics; a file that cannot be read answers "not (yet) blocked".

use std::time::Duration;

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

/// Let the thread being waited for run, before poll number `attempt` (1, 2, …) of a condition: yield a few times
/// (steps on loopback take microseconds), then sleep briefly — a sleeping poller leaves the CPU to the thread it
/// waits for, where yielding may not.
pub fn back_off(attempt: u32) {
    if attempt < 20 {
        std::thread::yield_now();
    } else {
        std::thread::sleep(Duration::from_micros(20));
    }
}

/// Sleep this thread for `d`: a scenario's `sleep` step, where time itself is the lesson.
pub fn pause(d: Duration) {
    std::thread::sleep(d);
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let start = std::time::Instant::now();
        let mut attempt = 0;
        while !blocked_in_recv(tid) {
            assert!(start.elapsed().as_secs() < 3, "the thread never blocked");
            attempt += 1;
            back_off(attempt);
        }
        std::io::Write::write_all(&mut &l, b"x").unwrap();
        assert_eq!(h.join().unwrap(), 1);
        assert!(!blocked_in_recv(tid));
    }
}
