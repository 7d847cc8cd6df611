//! `tcp-close-watch watch`: the arguments, checked and turned into a `pipeline::watch` configuration. What can be
//! checked before anything opens is checked here (formats, the BPF filter, the user); the device and pid are
//! checked by the pipeline before it opens them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use tcp_close_watch::os::privilege;
use tcp_close_watch::pipeline::watch::Config;
use tcp_close_watch::render::watch::WatchPrinter;
use tcp_close_watch::render::{TimelineFormat, TimelinePrinter};
use tcp_close_watch::track::select::{Only, Selection};
use tcp_close_watch::wire::bpf::Bpf;

use crate::Failure;
use crate::cli::{ColorChoice, Format};

/// Shown after `watch --help`.
pub const WATCH_HELP: &str = "Privileges: capture and the kernel's tracepoints need root. Started through sudo, \
watch opens the capture and its tracefs instance, then gives up root and every capability on every thread (to the \
user who ran sudo, or --user NAME; nobody otherwise), like tcpdump -Z. It keeps only what it opened: the capture's \
descriptor and the trace pipe. Finding the process that holds a socket means reading other users' /proc/PID/fd, \
which needs root: a small helper (tcw-procmap) forked before the drop keeps root for that alone; it reads socket \
inodes on a pipe and answers with a pid and a command name. --write goes to a temporary file, renamed into place \
by a helper when the watch ends.\n\nStop with Ctrl-C (or SIGTERM): the connections still open are listed as open, \
then totals (endings, resets by the kernel's reason, libpcap drops, trace-buffer losses). Exit codes: 0; 3 when \
libpcap dropped packets (some lines may be wrong); 1 an error; 2 bad arguments.";

#[derive(clap::Args)]
#[command(after_help = WATCH_HELP)]
pub struct WatchArgs {
    /// The device to capture on (`any` for every one).
    #[arg(
        long = "interface",
        short = 'i',
        default_value = "lo",
        value_name = "DEVICE"
    )]
    pub interface: String,
    /// Show only connections with a RST, with FINs and no RST, or with neither.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Watch only connections with this port on either side; repeatable.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Watch only connections with this address on either side; repeatable.
    #[arg(long = "host", value_name = "IP")]
    pub hosts: Vec<IpAddr>,
    /// Watch only segments matching this BPF expression (tcpdump syntax; applied in the kernel to each frame:
    /// unlike analyze, a connection is built only from the frames that match — see docs/watch.md).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Only connections with an end held by this process (or one of its children).
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Also print the timeline (segments and the kernel's rows) of each connection that ended with a RST.
    #[arg(long)]
    pub timeline: bool,
    /// Do not read the kernel's tracepoints (reset reasons, errnos).
    #[arg(long)]
    pub no_kernel: bool,
    /// Report a connection with no segment for this many seconds as expired, and forget it.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub idle_timeout: u64,
    /// Save every frame the capture filter selected to this pcapng file (also with --pid or a PROGRAM, which
    /// choose the lines printed, not the frames written).
    #[arg(long, short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Become this user once the capture and trace are open (default: the user who ran sudo, else nobody).
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
    /// Output format (table, markdown, json, csv).
    #[arg(long, short, value_enum, default_value = "table")]
    pub format: Format,
    /// When to colour the lines.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Fit --timeline's tables into N columns (0: no limit); by default the terminal's width, or COLUMNS when piped.
    #[arg(long, value_name = "N")]
    pub width: Option<u16>,
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Before the first line, explain each field of the line and every conn_state code (table format only).
    #[arg(long)]
    pub legend: bool,
    /// Start this program (and its arguments, after `--`) and watch only its sockets; the watch ends with it.
    #[arg(last = true, value_name = "PROGRAM")]
    pub program: Vec<String>,
}

impl WatchArgs {
    /// `--legend`'s text, fitted to the width, when it was asked for.
    pub fn legend(&self) -> Option<String> {
        let room = self.color.style(self.width).room();
        self.legend
            .then(|| tcp_close_watch::render::legend::watch_legend(room))
    }

    pub fn config(&self) -> Result<Config, Failure> {
        if let Some(expr) = &self.filter {
            Bpf::new(expr).map_err(|e| Failure::usage(format!("--filter {expr:?}: {e}")))?;
        }
        let format = TimelineFormat::from(self.format);
        let rows = self.format.zeek().or(format.rows()).ok_or_else(|| {
            Failure::usage(format!(
                "--format {}: watch prints table, markdown, json, csv, zeek or zeek-json",
                format.name()
            ))
        })?;
        if self.legend && self.format != Format::Table {
            return Err(Failure::usage(format!(
                "--legend explains the table's lines; the fields of --format {} are in docs/output.md",
                format.name()
            )));
        }
        if self.idle_timeout == 0 {
            return Err(Failure::usage("--idle-timeout must be at least 1 second"));
        }
        if self.pid.is_some() && !self.program.is_empty() {
            return Err(Failure::usage(
                "--pid and -- PROGRAM both name the process to watch: give one",
            ));
        }
        let user = match &self.user {
            Some(name) => Some(
                privilege::user_named(name)
                    .ok_or_else(|| Failure::new(format!("--user {name}: no such user")))?,
            ),
            None => std::env::var("SUDO_UID")
                .ok()
                .and_then(|u| u.parse().ok())
                .filter(|&uid: &u32| uid != 0)
                .and_then(privilege::user_with_id),
        };
        if user.as_ref().is_some_and(|(_, uid, _)| *uid == 0) {
            return Err(Failure::new(
                "--user: watch does not stay root; name an ordinary user",
            ));
        }
        let style = self.color.style(self.width);
        Ok(Config {
            device: self.interface.clone(),
            filter: self.filter.clone(),
            selection: Selection {
                only: self.only,
                ports: self.ports.clone(),
                hosts: self.hosts.clone(),
                filter: None,
            },
            kernel: !self.no_kernel,
            pid: self.pid,
            program: self.program.clone(),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            timeline: self.timeline.then(|| TimelinePrinter::new(format, style)),
            rows: WatchPrinter::new(rows, style),
            write: None,
            user,
            drop_privileges: true,
        })
    }
}
