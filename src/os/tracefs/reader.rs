//! The thread that empties `trace_pipe` while the scenario plays (an unread ring buffer overwrites its oldest
//! events), and the offset that puts the trace clock on CLOCK_REALTIME.
//!
//! The pipe is opened O_NONBLOCK and waited on with poll(2) and a short timeout, so a stop request is seen within
//! [`POLL_MS`] even when the kernel has nothing to say; on stop the thread drains what is left, then closes the
//! pipe (the instance cannot be removed while it is open).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use super::parse::{Line, parse_line};
use crate::model::kernel::KernelEventKind;
use crate::model::seen::Seen;

/// How long one wait for the kernel lasts before the stop flag is looked at again.
pub const POLL_MS: i32 = 50;

/// How long the final drain waits for stragglers before the pipe is closed.
const FINAL_WAIT_MS: i32 = 2;

/// What the thread read: events on the trace clock, lost-event counts, lines it could not read.
#[derive(Debug, Default)]
pub struct Harvest {
    pub events: Vec<(i64, KernelEventKind)>,
    pub lost: u64,
    pub unreadable: Vec<String>,
    /// The read error that ended the thread early, if any.
    pub error: Option<std::io::Error>,
}

/// A running reader of one instance's `trace_pipe`.
pub struct Reader {
    pub stop: Arc<AtomicBool>,
    handle: JoinHandle<Harvest>,
    /// Written to on finish, so the thread's wait ends at once instead of at its timeout.
    wake: Option<File>,
}

impl Reader {
    /// Read `pipe` (opened O_NONBLOCK) until `stop` is set, keeping only events that touch one of `ports` (all of
    /// them when `ports` is empty). With `live` (`watch`), what it reads is handed on after every read instead of
    /// kept: each message holds the events and losses read since the last one, and what is read while stopping is
    /// kept. With `seen`, each event is also added there as soon as it is read (a scenario's waits on the kernel's
    /// events).
    pub fn spawn(
        pipe: File,
        ports: Vec<u16>,
        stop: Arc<AtomicBool>,
        live: Option<std::sync::mpsc::Sender<Harvest>>,
        seen: Option<Seen>,
    ) -> std::io::Result<Reader> {
        let flag = Arc::clone(&stop);
        let (woken, wake) = match wake_pipe() {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        let handle = std::thread::Builder::new()
            .name("tracefs-reader".into())
            .spawn(move || {
                let to = To {
                    live: live.as_ref(),
                    seen: seen.as_ref(),
                };
                read_until_stopped(pipe, woken, &ports, &flag, to)
            })?;
        Ok(Reader { stop, handle, wake })
    }

    /// Stop, drain, close the pipe, and hand back what was read.
    pub fn finish(self) -> Harvest {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(mut wake) = self.wake.as_ref() {
            use std::io::Write;
            let _ = wake.write(&[1]);
        }
        self.handle.join().unwrap_or_else(|_| Harvest {
            error: Some(std::io::Error::other("the trace reader panicked")),
            ..Harvest::default()
        })
    }
}

/// A pipe whose write end wakes the reader's wait; `None` if the kernel gives none (the wait then times out).
fn wake_pipe() -> Option<(File, File)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-int array we own; each fd is then owned by exactly one File.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return None;
    }
    Some(unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) })
}

/// Where the reader hands what it reads as it goes, besides keeping it.
struct To<'a> {
    live: Option<&'a std::sync::mpsc::Sender<Harvest>>,
    seen: Option<&'a Seen>,
}

fn read_until_stopped(
    mut pipe: File,
    woken: Option<File>,
    ports: &[u16],
    stop: &AtomicBool,
    to: To,
) -> Harvest {
    let live = to.live;
    let mut out = Harvest::default();
    // how many of `out.events` the view has been shown
    let mut shown = 0;
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Look at the flag before the final drain, so nothing written before the stop request is missed.
        let stopping = stop.load(Ordering::SeqCst);
        if let Err(e) = drain(&mut pipe, &mut buf, &mut pending, ports, &mut out) {
            out.error = Some(e);
            break;
        }
        if let Some(seen) = to.seen {
            seen.add_events(out.events[shown..].iter().map(|(_, kind)| kind));
            shown = out.events.len();
        }
        if stopping {
            // Once more after a moment: what another CPU wrote just before the stop request can reach the pipe
            // a little after it, and the read above may have ended on an empty moment.
            wait_readable(&pipe, None, FINAL_WAIT_MS);
            if let Err(e) = drain(&mut pipe, &mut buf, &mut pending, ports, &mut out) {
                out.error = Some(e);
            }
            break;
        }
        if let Some(tx) = live
            && (!out.events.is_empty() || out.lost > 0)
        {
            let batch = Harvest {
                events: std::mem::take(&mut out.events),
                lost: std::mem::take(&mut out.lost),
                ..Harvest::default()
            };
            // a reader nobody listens to any more keeps what it reads, for finish
            if let Err(back) = tx.send(batch) {
                out.events = back.0.events;
                out.lost += back.0.lost;
            }
            shown = out.events.len();
        }
        wait_readable(&pipe, woken.as_ref(), POLL_MS);
    }
    out
}

/// Read until the kernel has nothing more (EAGAIN), handing each complete line to [`take_line`].
fn drain(
    pipe: &mut File,
    buf: &mut [u8],
    pending: &mut Vec<u8>,
    ports: &[u16],
    out: &mut Harvest,
) -> std::io::Result<()> {
    loop {
        match pipe.read(buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                pending.extend_from_slice(&buf[..n]);
                while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=nl).collect();
                    take_line(&String::from_utf8_lossy(&line[..nl]), ports, out);
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Lines of the instance's `trace` file (what is still in the buffer, unconsumed): `#` header lines skipped.
pub fn take_leftovers(text: &str, ports: &[u16], out: &mut Harvest) {
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        take_line(line, ports, out);
    }
}

fn take_line(line: &str, ports: &[u16], out: &mut Harvest) {
    match parse_line(line) {
        Line::Event { clock_ns, kind } => {
            // The kernel filters on ports where the layout allows; this catches the events it cannot filter.
            if ports.is_empty() || ports.iter().any(|&p| kind.touches_port(p)) {
                out.events.push((clock_ns, kind));
            }
        }
        Line::Lost(n) => out.lost += n,
        Line::Skip => {}
        Line::Unreadable => out.unreadable.push(line.to_string()),
    }
}

/// Wait until the kernel has something, `woken` is written to, or `timeout_ms` passed.
fn wait_readable(pipe: &File, woken: Option<&File>, timeout_ms: i32) {
    let fd = |f: &File| libc::pollfd {
        fd: f.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let mut pfds = [fd(pipe), woken.map_or(fd(pipe), fd)];
    let n = if woken.is_some() { 2 } else { 1 };
    // SAFETY: pollfds we own, for fds that stay open for the call. A failure or timeout just means read again.
    unsafe { libc::poll(pfds.as_mut_ptr(), n, timeout_ms) };
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills a timespec we own.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// CLOCK_REALTIME − CLOCK_MONOTONIC in ns (the trace clock `mono`), from the tightest of several monotonic-realtime-
/// monotonic read triples: the realtime read is taken to sit midway between its two monotonic neighbours.
pub fn realtime_minus_mono() -> i64 {
    let mut best = (i64::MAX, 0);
    for _ in 0..32 {
        let m1 = clock_ns(libc::CLOCK_MONOTONIC);
        let r = clock_ns(libc::CLOCK_REALTIME);
        let m2 = clock_ns(libc::CLOCK_MONOTONIC);
        if m2 - m1 < best.0 {
            best = (m2 - m1, r - (m1 + (m2 - m1) / 2));
        }
    }
    best.1
}

/// CLOCK_REALTIME now, in ns.
pub fn realtime_ns() -> i64 {
    clock_ns(libc::CLOCK_REALTIME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_maps_monotonic_onto_realtime() {
        let off = realtime_minus_mono();
        let mono = clock_ns(libc::CLOCK_MONOTONIC);
        let real = realtime_ns();
        assert!(
            (mono + off - real).abs() < 1_000_000,
            "mono+offset is {} ns from realtime",
            mono + off - real
        );
    }

    #[test]
    fn lines_off_our_ports_are_dropped_and_losses_counted() {
        let mut out = Harvest::default();
        let line = |sport: u16| {
            format!(
                "x-1 [000] ..... 5.000001: tcp_send_reset: skbaddr=0 skaddr=0 src=127.0.0.1:{sport} \
                 dest=127.0.0.1:40000 state=UNKNOWN reason=NO_SOCKET"
            )
        };
        take_line(&line(8080), &[8080], &mut out);
        take_line(&line(9090), &[8080], &mut out);
        take_line("CPU:0 [LOST 3 EVENTS]", &[8080], &mut out);
        take_line("nonsense", &[8080], &mut out);
        assert_eq!(out.events.len(), 1);
        assert_eq!(out.lost, 3);
        assert_eq!(out.unreadable, ["nonsense"]);
    }
}
