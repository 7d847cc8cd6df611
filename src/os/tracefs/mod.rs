//! The kernel's own word on how connections end, read from tracefs: every RST it sends (with `enum sk_rst_reason`)
//! or receives, every TCP state change, every errno it reports to a socket. Root only, no BPF toolchain.
//!
//! ```no_run
//! # use tcp_close_watch::os::tracefs::Tracer;
//! let tracer = Tracer::start(&[8080])?; // before the scenario
//! // … play the scenario on port 8080 …
//! let trace = tracer.finish()?; // events in time order, CLOCK_REALTIME ns
//! # Ok::<(), tcp_close_watch::os::tracefs::TraceError>(())
//! ```
//!
//! Each tracer has a private instance (see [`instance`] for its removal on every way out) with the four events
//! enabled, the trace clock `mono`, and in-kernel filters on the run's ports, so parallel runs do not see each
//! other's events. `tcp_send_reset` has had no port fields since Linux 6.10 (its addresses are one sockaddr
//! blob), so it is filtered on its printed addresses by the reader instead; resets are few. Times are read as
//! `trace_pipe` text, which the kernel prints to the µs.

pub mod error;
pub mod format;
pub mod instance;
pub mod mount;
pub mod parse;
pub mod reader;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

pub use error::TraceError;
pub use instance::{install_signal_cleanup, remove_all_instances};

use crate::model::kernel::{KernelEvent, KernelTrace};
use crate::model::seen::Seen;
use error::io_error;
use format::EventFormat;
use instance::Instance;
use parse::EVENTS;
use reader::Reader;

/// A running trace of the kernel's TCP events on some ports. Dropping it stops reading and removes the instance.
pub struct Tracer {
    reader: Option<Reader>,
    offset_ns: i64,
    path: PathBuf,
    ports: Vec<u16>,
    /// Dropped last: the reader must close the pipe first. `None` once handed to a background removal.
    instance: Option<Instance>,
}

/// The per-CPU buffer of a live trace's instance, in KiB: a few tenths of a second of a busy machine's resets, so
/// a pause of the reader loses nothing.
pub const LIVE_BUFFER_KB: u32 = 8192;

impl Tracer {
    /// Start tracing every TCP event of a connection with an end on one of `ports` (every TCP event on the
    /// machine when `ports` is empty). Mounts tracefs if needed and removes instances left by dead runs first.
    pub fn start(ports: &[u16]) -> Result<Tracer, TraceError> {
        Tracer::start_with(ports, None, None)
    }

    /// [`Tracer::start`], also adding each event to `seen` as soon as it is read, for a scenario that waits on the
    /// kernel's events.
    pub fn start_into(ports: &[u16], seen: Seen) -> Result<Tracer, TraceError> {
        Tracer::start_with(ports, None, Some(seen))
    }

    /// [`Tracer::start`] for a trace that runs until stopped (`watch`): what the reader reads goes to `live` as
    /// it comes, events on CLOCK_REALTIME ([`Tracer::offset_ns`] is already added); [`Tracer::finish`] returns what
    /// was read while stopping.
    ///
    /// Without `states`, TCP state changes are not traced: most events of a busy machine, and the why of an ending
    /// needs only resets and error reports. The instance's buffer is [`LIVE_BUFFER_KB`] per CPU.
    pub fn start_live(
        ports: &[u16],
        states: bool,
        live: std::sync::mpsc::Sender<Vec<KernelEvent>>,
        lost: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Tracer, TraceError> {
        let (tx, rx) = std::sync::mpsc::channel::<reader::Harvest>();
        let offset_ns = reader::realtime_minus_mono();
        // a small thread puts the reader's batches on the realtime clock
        std::thread::Builder::new()
            .name("tracefs-live".into())
            .spawn(move || {
                for h in rx {
                    lost.fetch_add(h.lost, std::sync::atomic::Ordering::Relaxed);
                    let events: Vec<KernelEvent> = h
                        .events
                        .into_iter()
                        .map(|(clock_ns, what)| KernelEvent {
                            ts: clock_ns + offset_ns,
                            what,
                        })
                        .collect();
                    if !events.is_empty() && live.send(events).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| io_error("start the live reader of", Path::new("trace_pipe"), e))?;
        let skip: &[&str] = if states {
            &[]
        } else {
            &["sock/inet_sock_set_state"]
        };
        Tracer::start_with(ports, Some((tx, skip)), None)
    }

    fn start_with(
        ports: &[u16],
        live: Option<(std::sync::mpsc::Sender<reader::Harvest>, &[&str])>,
        seen: Option<Seen>,
    ) -> Result<Tracer, TraceError> {
        let root = mount::tracefs_root()?;
        let formats = check_events(&root)?;
        instance::sweep_stale(&root);
        install_signal_cleanup();
        let stop = Arc::new(AtomicBool::new(false));
        let instance = Instance::create(&root, &stop)?;
        let (live, skip) = match live {
            Some((tx, skip)) => {
                let kb = LIVE_BUFFER_KB.to_string();
                instance
                    .write("buffer_size_kb", &kb)
                    .map_err(|e| io_error("size the buffer of", &instance.path, e))?;
                (Some(tx), skip)
            }
            None => (None, &[][..]),
        };
        let formats: Vec<_> = formats
            .into_iter()
            .filter(|(e, _)| !skip.contains(e))
            .collect();
        set_up(&instance, &formats, ports)?;
        let pipe_path = instance.path.join("trace_pipe");
        let pipe = open_nonblocking(&pipe_path)?;
        let offset_ns = reader::realtime_minus_mono();
        let reader = Reader::spawn(pipe, ports.to_vec(), stop, live, seen)
            .map_err(|e| io_error("start the reader of", &pipe_path, e))?;
        Ok(Tracer {
            reader: Some(reader),
            offset_ns,
            path: instance.path.clone(),
            ports: ports.to_vec(),
            instance: Some(instance),
        })
    }

    /// Events the kernel overwrote or dropped so far in this trace's buffer (it was full): the trace has gaps.
    pub fn overruns(&self) -> u64 {
        overruns(&self.path)
    }

    /// The per-CPU `stats` files of the instance, opened now (while tracefs may still be read) so that
    /// [`overruns_of`] can read them after privileges are gone.
    pub fn open_stats(&self) -> Vec<File> {
        let Ok(cpus) = std::fs::read_dir(self.path.join("per_cpu")) else {
            return Vec::new();
        };
        cpus.flatten()
            .filter_map(|cpu| File::open(cpu.path().join("stats")).ok())
            .collect()
    }

    /// The instance's directory under tracefs.
    pub fn instance_path(&self) -> &Path {
        &self.path
    }

    /// Stop, read what is left, remove the instance, and return the events in time order.
    pub fn finish(self) -> Result<KernelTrace, TraceError> {
        self.finish_with(false)
    }

    /// [`Tracer::finish`], leaving the instance's removal (tens of ms while the kernel frees its buffers) to a
    /// detached process: see [`Instance::remove_in_background`]. For a program that has its answer and should not
    /// wait; the instance is gone shortly after.
    pub fn finish_in_background(self) -> Result<KernelTrace, TraceError> {
        self.finish_with(true)
    }

    fn finish_with(mut self, background: bool) -> Result<KernelTrace, TraceError> {
        let Some(reader) = self.reader.take() else {
            return Ok(KernelTrace::default());
        };
        let mut read = reader.finish();
        // Under load, events can still sit in the buffer after the pipe said it was empty: the `trace` file shows
        // what the pipe did not consume.
        if let Ok(rest) = std::fs::read_to_string(self.path.join("trace")) {
            reader::take_leftovers(&rest, &self.ports, &mut read);
        }
        let lost_events = read.lost.max(overruns(&self.path));
        if background && let Some(instance) = self.instance.take() {
            instance.remove_in_background();
        }
        if let Some(e) = read.error {
            return Err(io_error("read", &self.path.join("trace_pipe"), e));
        }
        let mut events: Vec<KernelEvent> = read
            .events
            .into_iter()
            .map(|(clock_ns, what)| KernelEvent {
                ts: clock_ns + self.offset_ns,
                what,
            })
            .collect();
        events.sort_by_key(|e| e.ts);
        Ok(KernelTrace {
            events,
            lost_events,
            unreadable: read.unreadable,
        })
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        if let Some(reader) = self.reader.take() {
            reader.finish();
        }
    }
}

/// The formats of the four events, or what is missing: an event, the permission to read it, the reset reason.
fn check_events(root: &Path) -> Result<Vec<(&'static str, EventFormat)>, TraceError> {
    let mut out = Vec::new();
    for event in EVENTS {
        let path = root.join("events").join(event).join("format");
        let text = std::fs::read_to_string(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TraceError::MissingEvent {
                event: event.replace('/', ":"),
            },
            _ => io_error("read", &path, e),
        })?;
        out.push((event, EventFormat::parse(&text)));
    }
    let send_reset = out.iter().find(|(e, _)| *e == "tcp/tcp_send_reset");
    if send_reset.is_some_and(|(_, f)| f.field("reason").is_none()) {
        return Err(TraceError::NoResetReason {
            kernel: super::kernel_release(),
        });
    }
    Ok(out)
}

/// Trace clock, filters, switches.
fn set_up(
    instance: &Instance,
    formats: &[(&'static str, EventFormat)],
    ports: &[u16],
) -> Result<(), TraceError> {
    let write = |rel: String, value: &str| {
        instance
            .write(&rel, value)
            .map_err(|e| (instance.path.join(rel), e))
    };
    write("trace_clock".into(), "mono")
        .map_err(|(p, e)| io_error("set the trace clock in", &p, e))?;
    for (event, format) in formats {
        if let Some(filter) = format.port_filter(ports) {
            write(format!("events/{event}/filter"), &filter).map_err(|(p, e)| {
                match e.raw_os_error() {
                    Some(libc::EINVAL) => TraceError::FilterRefused {
                        event: event.replace('/', ":"),
                        filter: filter.clone(),
                    },
                    _ => io_error("write", &p, e),
                }
            })?;
        }
        write(format!("events/{event}/enable"), "1").map_err(|(p, e)| io_error("enable", &p, e))?;
    }
    Ok(())
}

fn open_nonblocking(path: &Path) -> Result<File, TraceError> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| io_error("open", path, e))
}

/// Events overwritten or dropped, summed over `stats` files opened by [`Tracer::open_stats`] (read from their start).
pub fn overruns_of(stats: &[File]) -> u64 {
    use std::os::unix::fs::FileExt;
    stats
        .iter()
        .filter_map(|f| {
            let mut buf = vec![0u8; 4096];
            let n = f.read_at(&mut buf, 0).ok()?;
            Some(overruns_in(&String::from_utf8_lossy(&buf[..n])))
        })
        .sum()
}

fn overruns_in(stats: &str) -> u64 {
    stats
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            matches!(k.trim(), "overrun" | "dropped events")
                .then(|| v.trim().parse::<u64>().ok())?
        })
        .sum()
}

/// Events the kernel overwrote or dropped, summed over the CPUs' `stats` files.
fn overruns(instance: &Path) -> u64 {
    let Ok(cpus) = std::fs::read_dir(instance.join("per_cpu")) else {
        return 0;
    };
    cpus.flatten()
        .filter_map(|cpu| std::fs::read_to_string(cpu.path().join("stats")).ok())
        .map(|stats| {
            stats
                .lines()
                .filter_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    matches!(k.trim(), "overrun" | "dropped events")
                        .then(|| v.trim().parse::<u64>().ok())?
                })
                .sum::<u64>()
        })
        .sum()
}

/// The reset reasons this kernel can give, in its own order, read from `tcp:tcp_send_reset`'s format file.
pub fn reset_reasons() -> Result<Vec<String>, TraceError> {
    let root = mount::tracefs_root()?;
    let formats = check_events(&root)?;
    Ok(formats
        .iter()
        .find(|(e, _)| *e == "tcp/tcp_send_reset")
        .map(|(_, f)| {
            f.symbols("reason")
                .into_iter()
                .map(|(_, name)| name)
                .collect()
        })
        .unwrap_or_default())
}

/// Where the instances of this machine's runs live (for tests and diagnostics).
pub fn instances_dir() -> Result<PathBuf, TraceError> {
    Ok(mount::tracefs_root()?.join("instances"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake tracefs holding the four format files, `send_reset` as given.
    fn fake_root(send_reset: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for event in EVENTS {
            let d = dir.path().join("events").join(event);
            std::fs::create_dir_all(&d).unwrap();
            let text = if event == "tcp/tcp_send_reset" {
                send_reset
            } else {
                "format:\n\tfield:__u16 sport;\toffset:0;\tsize:2;\tsigned:0;\n"
            };
            std::fs::write(d.join("format"), text).unwrap();
        }
        dir
    }

    #[test]
    fn a_kernel_before_6_10_is_told_it_has_no_reset_reason() {
        // The 5.x–6.9 layout: ports and addresses, no reason.
        let old = "format:\n\tfield:int state;\toffset:24;\tsize:4;\tsigned:1;\n\
                   \tfield:__u16 sport;\toffset:28;\tsize:2;\tsigned:0;\n\
                   \tfield:__u16 dport;\toffset:30;\tsize:2;\tsigned:0;\n";
        let root = fake_root(old);
        let err = check_events(root.path()).unwrap_err();
        assert!(matches!(err, TraceError::NoResetReason { .. }), "{err}");
        assert!(err.to_string().contains("6.10"));
    }

    #[test]
    fn a_kernel_without_a_tracepoint_is_told_which() {
        let root = fake_root(
            "format:\n\tfield:enum sk_rst_reason reason;\toffset:28;\tsize:4;\tsigned:0;\n",
        );
        assert!(check_events(root.path()).is_ok());
        std::fs::remove_dir_all(root.path().join("events/sock/inet_sk_error_report")).unwrap();
        let err = check_events(root.path()).unwrap_err();
        assert!(
            err.to_string().contains("sock:inet_sk_error_report"),
            "{err}"
        );
    }
}
