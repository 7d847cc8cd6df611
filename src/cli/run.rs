//! `tcp-close-watch run` and `modes`: glue between the arguments and `live`.

use tcp_close_watch::explain::story;
use tcp_close_watch::model::run::Mode;
use tcp_close_watch::pipeline::live::{self as live, LiveRun, Options};
use tcp_close_watch::render::{ColorChoice, Format, Style, compare, run};

use crate::{Failure, emit};

/// The line above the comparison of every mode.
const ALL_HEADING: &str = "Every mode, as this kernel played it";

fn mode_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Mode::ALL.iter().map(|m| m.name()).collect();
    names.push("all");
    names
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// The scenario to play (`tcp-close-watch modes` lists them); `all` plays every one and compares them.
    #[arg(long, short, default_value = "abrupt", value_parser = clap::builder::PossibleValuesParser::new(mode_names()))]
    pub mode: String,
    /// Use ::1 instead of 127.0.0.1.
    #[arg(long)]
    pub ipv6: bool,
    /// Do not capture (no privileges needed): show the socket calls alone.
    #[arg(long)]
    pub no_capture: bool,
    /// Do not read the kernel's own events (reset reasons, state changes, errors; needs root for tracefs).
    #[arg(long)]
    pub no_kernel: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Save the run: FILE.pcapng keeps the segments and A's and B's socket calls (as packet comments, and for
    /// `analyze`); FILE.pcap keeps the segments alone.
    #[arg(long, short = 'w', value_name = "FILE")]
    pub write: Option<std::path::PathBuf>,
    /// Write the output to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<std::path::PathBuf>,
    /// Colour RST and FIN rows: auto (a terminal, unless NO_COLOR is set), always, never.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

pub fn list_modes() -> Result<(), Failure> {
    let width = Mode::ALL.iter().map(|m| m.name().len()).max().unwrap_or(0);
    let mut out = String::new();
    for m in Mode::ALL {
        out.push_str(&format!("{:width$}  {}\n", m.name(), m.summary()));
    }
    out.push_str(&format!(
        "{:width$}  every mode above, then one comparison table\n",
        "all"
    ));
    emit(&out)
}

fn play(mode: Mode, args: &RunArgs) -> Result<LiveRun, Failure> {
    let opts = Options {
        ipv6: args.ipv6,
        capture: !args.no_capture,
        kernel: !args.no_kernel,
    };
    live::run(mode, opts).map_err(|e| Failure::new(e.to_string()))
}

fn warn(run: &LiveRun) {
    if let Some(missing) = &run.kernel_missing {
        eprintln!("tcp-close-watch: note: {missing}");
    }
    for w in run.warnings() {
        eprintln!("tcp-close-watch: warning: {w}");
    }
}

fn render_one(run: &LiveRun, args: &RunArgs) -> String {
    run::run_view(
        &run.pair,
        &run.timeline,
        &run.kernel,
        &run.warnings(),
        args.format,
        Style::for_stdout(args.color),
    )
}

pub fn main(args: RunArgs) -> Result<(), Failure> {
    if let Some(path) = &args.output {
        crate::set_output(path)?;
    }
    if args.mode != "all" {
        let mode = Mode::from_name(&args.mode)
            .ok_or_else(|| Failure::new(format!("unknown mode {}", args.mode)))?;
        let run = play(mode, &args)?;
        warn(&run);
        if let Some(path) = &args.write {
            save(&run, path)?;
        }
        return emit(&render_one(&run, &args));
    }
    if args.write.is_some() {
        return Err(Failure::new(
            "--write saves one run: pick a mode instead of all",
        ));
    }
    if args.format == Format::Svg {
        return Err(Failure::new(
            "--format svg draws one connection: pick a mode (tcp-close-watch modes lists them), or use \
             --format table, markdown, json or csv for the comparison of all",
        ));
    }
    if args.format.is_diagram() {
        let mut out = String::new();
        for mode in Mode::ALL {
            let run = play(mode, &args)?;
            warn(&run);
            out.push_str(&render_one(&run, &args));
            out.push('\n');
        }
        return emit(&out);
    }
    let mut rows = Vec::new();
    for mode in Mode::ALL {
        let run = play(mode, &args)?;
        warn(&run);
        rows.push(story::comparison_row(&run.pair, &run.timeline, &run.kernel));
    }
    let out = match args.format {
        Format::Table => format!(
            "{}\n{}\n",
            compare::kernels_line(&rows, ALL_HEADING),
            compare::table(&rows, Style::for_stdout(args.color))
        ),
        Format::Markdown => compare::markdown(&rows, ALL_HEADING),
        Format::Json => compare::json(&rows),
        Format::Csv => compare::csv(&rows),
        Format::Ladder | Format::Svg | Format::Mermaid => unreachable!("diagrams handled above"),
    };
    emit(&out)
}

/// Save a run as pcapng (with its calls) or classic pcap (segments only), by the file's extension.
fn save(run: &LiveRun, path: &std::path::Path) -> Result<(), Failure> {
    use tcp_close_watch::capfile::saved;
    let (frames, linktype) = match &run.captured {
        Some(c) => (c.frames.as_slice(), c.linktype),
        None => (&[][..], 1),
    };
    let classic = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pcap"));
    let bytes = if classic {
        if run.captured.is_none() {
            return Err(Failure::new(
                "--write FILE.pcap holds captured segments, and --no-capture captured none: use FILE.pcapng to save \
                 the socket calls",
            ));
        }
        saved::pcap(frames, linktype)
    } else {
        saved::pcapng_with_kernel(&run.pair, &run.kernel, run.trace.as_ref(), frames, linktype)
    };
    std::fs::write(path, bytes)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    let what = if classic {
        format!(
            "{} segments (classic pcap holds no socket calls: use .pcapng to keep them)",
            frames.len()
        )
    } else if run.captured.is_none() {
        format!(
            "{} socket calls and no segments (--no-capture)",
            run.pair.calls.len()
        )
    } else {
        format!(
            "{} segments and {} socket calls",
            frames.len(),
            run.pair.calls.len()
        )
    };
    eprintln!("tcp-close-watch: wrote {what} to {}", path.display());
    Ok(())
}
