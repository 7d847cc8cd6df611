//! Why the kernel's own events could not be read: each a single line saying what is missing and what the timeline
//! loses without it.

use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum TraceError {
    /// tracefs is root-only (mode 0700): this process is not root and has no CAP_SYS_ADMIN.
    NotPermitted { path: PathBuf },
    /// No tracefs mounted and it could not be mounted (a kernel without CONFIG_TRACING, or a container).
    NoTracefs { detail: String },
    /// The kernel has no such tracepoint (`group/name`).
    MissingEvent { event: String },
    /// `tcp:tcp_send_reset` has no `reason` field: a kernel before 6.10.
    NoResetReason { kernel: String },
    /// The kernel refused the in-kernel port filter on an event.
    FilterRefused { event: String, filter: String },
    /// Any other failed file operation under tracefs.
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

const LOSS: &str = "the timeline will show no kernel events (reset reasons, state changes, errors)";

impl TraceError {
    /// The line without what the missing events cost a timeline: for a run that cannot go on without them.
    pub fn cause(&self) -> String {
        self.to_string().replace(&format!("; {LOSS}"), "")
    }
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::NotPermitted { path } => write!(
                f,
                "cannot read the kernel's TCP events: tracefs is root-only (mode 0700) and this process is not \
                 root (no CAP_SYS_ADMIN), {} refused; {LOSS} — run as root",
                path.display()
            ),
            TraceError::NoTracefs { detail } => write!(
                f,
                "cannot read the kernel's TCP events: tracefs is not mounted and could not be mounted \
                 ({detail}); {LOSS}"
            ),
            TraceError::MissingEvent { event } => write!(
                f,
                "cannot read the kernel's TCP events: this kernel has no tracepoint {event}; {LOSS}"
            ),
            TraceError::NoResetReason { kernel } => write!(
                f,
                "this kernel ({kernel}) has no reset reason in tcp:tcp_send_reset (added in Linux 6.10); \
                 the timeline cannot say why the kernel sent a RST"
            ),
            TraceError::FilterRefused { event, filter } => write!(
                f,
                "the kernel refused the port filter `{filter}` on {event}; {LOSS} (other runs' events would mix in)"
            ),
            TraceError::Io { what, path, source } => {
                write!(f, "cannot {what} {}: {source}; {LOSS}", path.display())
            }
        }
    }
}

impl std::error::Error for TraceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TraceError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// An I/O failure on `path`, as [`TraceError::NotPermitted`] when the kernel said no for lack of privilege.
pub(crate) fn io_error(
    what: &'static str,
    path: &std::path::Path,
    source: io::Error,
) -> TraceError {
    match source.kind() {
        io::ErrorKind::PermissionDenied => TraceError::NotPermitted {
            path: path.to_path_buf(),
        },
        _ => TraceError::Io {
            what,
            path: path.to_path_buf(),
            source,
        },
    }
}
