//! `tcp-close-watch analyze`: the arguments, checked and turned into a `pipeline::analyze` configuration.
//!
//! Exit codes: `cli::EXIT_CODES` (set in main).

use std::net::IpAddr;

use tcp_close_watch::pipeline::analyze::Config;
use tcp_close_watch::render::{RowsPrinter, TimelineFormat, TimelinePrinter};
use tcp_close_watch::track::select::{Only, Selection};
use tcp_close_watch::wire::bpf::Bpf;

use crate::Failure;
use crate::cli::{Format, Shown};

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (.pcap, .pcapng, optionally gzip-compressed); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Print the timeline and account of connection N (Wireshark's tcp.stream N); repeatable. `all`: of every
    /// connection the filters show.
    #[arg(long = "conn", value_name = "N|all", value_parser = conn_arg)]
    pub conns: Vec<ConnArg>,
    /// Print the timeline and account of every connection the filters show (as `--conn all`).
    #[arg(long)]
    pub timeline: bool,
    /// Show only connections with a RST, with FINs and no RST, or with neither.
    #[arg(long, value_enum)]
    pub only: Option<Only>,
    /// Show only connections with this port on either side; repeatable.
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<u16>,
    /// Show only connections with this address on either side; repeatable.
    #[arg(long = "host", value_name = "IP")]
    pub hosts: Vec<IpAddr>,
    /// Show only connections with at least one frame matching this BPF expression (tcpdump syntax).
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
    /// Output format.
    #[arg(long, short, value_enum, default_value = "table")]
    pub format: Format,
    #[command(flatten)]
    pub shown: Shown,
}

impl AnalyzeArgs {
    /// The filter compiled and standard input named at most once; the output is opened after these checks.
    pub fn config(self) -> Result<Config, Failure> {
        self.shown.legend_applies(self.format)?;
        let bpf = match &self.filter {
            Some(expr) => Some(
                Bpf::new(expr).map_err(|e| Failure::usage(format!("--filter {expr:?}: {e}")))?,
            ),
            None => None,
        };
        if self.files.iter().filter(|f| *f == "-").count() > 1 {
            return Err(Failure::usage("standard input (-) can be read only once"));
        }
        let every = self.timeline || self.conns.contains(&ConnArg::All);
        let conns: Vec<u32> = self
            .conns
            .iter()
            .filter_map(|c| match c {
                ConnArg::Id(n) => Some(*n),
                ConnArg::All => None,
            })
            .collect();
        one_document(self.format, &self.files, &conns, every)?;
        if self.format.zeek().is_some() && (!self.conns.is_empty() || self.timeline) {
            return Err(Failure::usage(
                "--format zeek and zeek-json write conn.log rows, not a timeline: leave out --conn and --timeline \
                 (use --port, --host or --filter to choose connections)",
            ));
        }
        if !every {
            selection_with_conn(&self, &conns);
        }
        let format = TimelineFormat::from(self.format);
        let style = self.shown.style();
        let several = every || conns.len() * self.files.len() > 1;
        Ok(Config {
            files: self.files,
            conns,
            every,
            selection: Selection {
                only: self.only,
                ports: self.ports,
                hosts: self.hosts,
                filter: self.filter,
            },
            bpf,
            // several connections (or files) in one Mermaid output: fenced under headings
            timeline: if several {
                TimelinePrinter::new(format, style).several()
            } else {
                TimelinePrinter::new(format, style)
            }
            .flag_words(self.shown.words()),
            rows: self
                .format
                .zeek()
                .or(format.rows())
                .map(|rows| RowsPrinter::new(rows, style)),
            drop_privileges: true,
        })
    }
}

/// A `--conn` value: a connection id or `all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnArg {
    Id(u32),
    All,
}

fn conn_arg(s: &str) -> Result<ConnArg, String> {
    if s == "all" {
        return Ok(ConnArg::All);
    }
    s.parse().map(ConnArg::Id).map_err(|_| {
        format!("{s:?} is not a connection id: give a number from the summary's id column, or all")
    })
}

/// An SVG file holds one drawing: `-f svg` with more than one `--conn` (or one `--conn` over several files) would
/// write documents end to end, which no viewer opens. Refused; the rule for several is one run per connection.
fn one_document(
    format: Format,
    files: &[String],
    conns: &[u32],
    every: bool,
) -> Result<(), Failure> {
    if format == Format::Svg && (every || conns.len() > 1 || (conns.len() == 1 && files.len() > 1))
    {
        return Err(Failure::usage(
            "--format svg draws one connection of one file: give one --conn and one file, and run once per \
             connection (-o conn-N.svg); -f mermaid or markdown hold several",
        ));
    }
    Ok(())
}

/// `--only`, `--port`, `--host` and `--filter` choose the summary's rows; `--conn N` prints connection N whatever
/// they say. Said on standard error rather than ignored in silence.
fn selection_with_conn(args: &AnalyzeArgs, conns: &[u32]) {
    if conns.is_empty() {
        return;
    }
    let mut given = Vec::new();
    if args.only.is_some() {
        given.push("--only");
    }
    if !args.ports.is_empty() {
        given.push("--port");
    }
    if !args.hosts.is_empty() {
        given.push("--host");
    }
    if args.filter.is_some() {
        given.push("--filter");
    }
    if !given.is_empty() {
        eprintln!(
            "tcp-close-watch: note: {} {} the summary's rows; --conn prints the connections it names \
             whatever they say (no summary is printed with --conn)",
            given.join(", "),
            if given.len() == 1 {
                "chooses"
            } else {
                "choose"
            }
        );
    }
}
