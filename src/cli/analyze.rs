//! `tcp-close-watch analyze`: how every TCP connection in saved captures ended. Glue only: arguments → library
//! (`capfile`, `analyze`, `conn`, `infer`) → printers, and errors → one line each and an exit code.
//!
//! Exit codes: 0 everything read; 2 results printed but some input was damaged or unreadable; 1 nothing could be
//! read (or bad arguments).

use std::collections::HashSet;
use std::io::IsTerminal;
use std::net::IpAddr;

use tcp_close_watch::capfile::CaptureReader;
use tcp_close_watch::explain::story;
use tcp_close_watch::explain::timeline::{self, Sides, States};
use tcp_close_watch::pipeline::analyze;
use tcp_close_watch::render::{self, ColorChoice, Format, Style, summary};
use tcp_close_watch::track::report::FileReport;
use tcp_close_watch::track::select::{Only, Selection};
use tcp_close_watch::wire::bpf::Bpf;

use crate::{Failure, emit};

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (.pcap, .pcapng, optionally gzip-compressed); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
    /// Print the timeline of connection N (Wireshark's tcp.stream N); repeatable.
    #[arg(long = "conn", value_name = "N")]
    pub conns: Vec<u32>,
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
    /// When to colour the timeline tables.
    #[arg(long, value_enum, default_value = "auto")]
    pub color: ColorChoice,
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
}

/// The line above the comparison of several saved runs.
const SAVED_HEADING: &str = "Saved runs";

pub fn main(args: AnalyzeArgs) -> Result<(), Failure> {
    let sel = Selection {
        only: args.only,
        ports: args.ports.clone(),
        hosts: args.hosts.clone(),
        filter: args.filter.clone(),
    };
    let mut bpf = match &args.filter {
        Some(expr) => {
            Some(Bpf::new(expr).map_err(|e| Failure::new(format!("--filter {expr:?}: {e}")))?)
        }
        None => None,
    };
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(Failure::new("standard input (-) can be read only once"));
    }
    if let Some(path) = &args.output {
        crate::set_output(path)?;
    }
    let keep: HashSet<u32> = args.conns.iter().copied().collect();
    // several saved runs (run --write) and no --conn: one comparison row each, as `run --mode all` prints
    let compare_runs = args.conns.is_empty() && args.files.len() > 1;
    let mut run_rows = Vec::new();
    let style = Style::for_stdout(args.color);
    let show_progress = std::io::stderr().is_terminal();

    let mut unreadable = 0usize;
    let mut damaged = 0usize;
    for name in &args.files {
        // Standard input has no known length: no bar for it.
        let bar = (show_progress && name != "-").then(|| {
            let b = indicatif::ProgressBar::new(0);
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{msg} [{bar:30}] {bytes}/{total_bytes} {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            b.set_message(name.clone());
            b
        });
        let opened = CaptureReader::open(name).map_err(|e| e.to_string());
        let report = analyze::analyze(name, opened, &keep, bpf.as_mut(), &mut |done, total| {
            if let Some(b) = &bar {
                b.set_length(total);
                b.set_position(done);
            }
        });
        if let Some(b) = bar {
            b.finish_and_clear();
        }
        if let Some(e) = &report.open_error {
            eprintln!("tcp-close-watch: {name}: {e}; nothing analysed");
            unreadable += 1;
            continue;
        }
        if let Some(e) = &report.read_error {
            if report.counts.frames == 0 {
                eprintln!("tcp-close-watch: {name}: {e}; nothing analysed");
                unreadable += 1;
                continue;
            }
            eprintln!("tcp-close-watch: {name}: {e}");
            damaged += 1;
        }
        let link_frames: u64 = report.unknown_links.values().sum();
        if link_frames > 0 {
            let links: Vec<String> = report.unknown_links.keys().map(|l| l.to_string()).collect();
            eprintln!(
                "tcp-close-watch: {name}: link type {} is not one we decode (we read Ethernet, Linux cooked v1/v2, \
                 BSD loopback, raw IP, IPv4, IPv6, PPP, FDDI, NFLOG, IPoIB); {link_frames} of {} frames skipped",
                links.join(", "),
                report.counts.frames
            );
            if link_frames == report.counts.frames {
                unreadable += 1;
                continue;
            }
        } else if report.counts.frames > 0 && report.counts.tcp_segments == 0 {
            let why: Vec<String> = report
                .skipped
                .iter()
                .map(|(k, n)| format!("{n} {k}"))
                .collect();
            eprintln!(
                "tcp-close-watch: {name}: no TCP segment in {} frame{} ({})",
                report.counts.frames,
                if report.counts.frames == 1 { "" } else { "s" },
                why.join(", ")
            );
        }
        match (&report.saved_run, compare_runs) {
            (Some(saved), true) => {
                let t = analyze::saved_timeline(&report).expect("the report carries a saved run");
                run_rows.push(story::comparison_row(&saved.pair, &t, &saved.kernel));
            }
            _ => print_report(&report, &sel, &args, style)?,
        }
    }
    if !run_rows.is_empty() {
        emit(&match args.format {
            Format::Table => format!(
                "{}\n{}\n",
                render::compare::kernels_line(&run_rows, SAVED_HEADING),
                render::compare::table(&run_rows, style)
            ),
            Format::Markdown => render::compare::markdown(&run_rows, SAVED_HEADING),
            Format::Json => render::compare::json(&run_rows),
            Format::Csv => render::compare::csv(&run_rows),
            Format::Ladder | Format::Svg | Format::Mermaid => {
                return Err(Failure::new(
                    format!(
                        "--format {:?} draws one connection: give one file, or add --conn N",
                        args.format
                    )
                    .to_lowercase(),
                ));
            }
        })?;
    }
    let total = args.files.len();
    if unreadable == total {
        return Err(Failure::new(format!(
            "nothing could be read from {}",
            if total == 1 {
                "the input".to_string()
            } else {
                format!("any of the {total} inputs")
            }
        )));
    }
    if unreadable + damaged > 0 {
        return Err(Failure {
            message: format!(
                "{} of {total} input{} could not be read to the end; results above cover what was read",
                unreadable + damaged,
                if total == 1 { "" } else { "s" }
            ),
            code: 2,
        });
    }
    Ok(())
}

fn print_report(
    r: &FileReport,
    sel: &Selection,
    args: &AnalyzeArgs,
    style: Style,
) -> Result<(), Failure> {
    if let (Some(saved), true) = (&r.saved_run, args.conns.is_empty()) {
        // A file saved by `run --write`: print the run as the live run did, socket calls included.
        let t = analyze::saved_timeline(r).expect("the report carries a saved run");
        let mut out =
            render::run::run_view(&saved.pair, &t, &saved.kernel, &[], args.format, style);
        if args.format == Format::Table {
            out = format!(
                "{}: a tcp-close-watch run, socket calls included\n{out}",
                r.name
            );
        }
        return emit(&out);
    }
    if args.format.is_diagram() && args.conns.is_empty() {
        return Err(Failure::new(format!(
            "--format {} draws one connection: add --conn N (the summary's id column)",
            format!("{:?}", args.format).to_lowercase()
        )));
    }
    if !args.conns.is_empty() {
        for &id in &args.conns {
            let Some(c) = r.conns.get(id as usize) else {
                eprintln!(
                    "tcp-close-watch: {}: no connection {id} (it has {}: 0 to {})",
                    r.name,
                    r.conns.len(),
                    r.conns.len().saturating_sub(1)
                );
                continue;
            };
            let sides = Sides {
                a: c.client.socket(),
                b: c.server.socket(),
                a_label: format!("client {}", c.client.socket()),
                b_label: format!("server {}", c.server.socket()),
            };
            let segs = r.kept.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            // a saved run's own connection is shown with its socket calls
            let saved = r
                .saved_run
                .as_ref()
                .filter(|s| (s.pair.a, s.pair.b) == (sides.a, sides.b));
            let t = match saved {
                Some(s) => timeline::build(
                    timeline::Sides::for_pair(&s.pair),
                    &s.pair.calls,
                    segs,
                    States::Inferred,
                ),
                None => timeline::build(sides, &[], segs, States::Inferred),
            };
            let head = format!(
                "{} connection {id}: {} → {}, {}, conn_state {} history {}\n",
                r.name,
                c.client.socket(),
                c.server.socket(),
                c.ending().describe(),
                c.conn_state(),
                c.history()
            );
            match args.format {
                Format::Table => {
                    emit(&head)?;
                    emit(&render::text::timeline_table(&t, style))?;
                    emit("\n")?;
                }
                Format::Markdown => {
                    emit(&format!("### {head}\n"))?;
                    emit(&render::text::timeline_markdown(&t))?;
                    emit("\n")?;
                }
                Format::Csv => emit(&render::csv::timeline(&t))?,
                Format::Json => emit(&render::json::timeline_json(&t))?,
                Format::Ladder => emit(&format!("{head}\n{}", render::ladder::ladder(&t)))?,
                Format::Svg => emit(&render::svg::svg(&t, head.trim_end()))?,
                Format::Mermaid => emit(&render::mermaid::mermaid(&t))?,
            }
        }
        return Ok(());
    }
    match args.format {
        Format::Table => {
            summary::write_summary_table(r, sel, &mut chunk).map_err(Failure::new)?;
            emit(&summary::totals_text(r, sel))?;
        }
        Format::Markdown => {
            emit(&format!("### {}\n\n", r.name))?;
            summary::write_summary_markdown(r, sel, &mut chunk).map_err(Failure::new)?;
            emit("\n")?;
            emit(&summary::totals_text(r, sel))?;
        }
        Format::Csv => {
            // one header for all files' rows (a `file` column tells them apart)
            static HEADER_DONE: std::sync::atomic::AtomicBool =
                std::sync::atomic::AtomicBool::new(false);
            if !HEADER_DONE.swap(true, std::sync::atomic::Ordering::Relaxed) {
                emit(&summary::summary_csv_header())?;
            }
            summary::write_summary_csv(r, sel, &mut chunk).map_err(Failure::new)?
        }
        Format::Json => summary::write_summary_json(r, sel, &mut chunk).map_err(Failure::new)?,
        Format::Ladder | Format::Svg | Format::Mermaid => unreachable!("refused above"),
    }
    Ok(())
}

/// `emit` for the streaming printers.
fn chunk(s: &str) -> Result<(), String> {
    emit(s).map_err(|f| f.message)
}
