//! The command line: arguments → a validated configuration → one call into the library; errors → one line on
//! standard error and the exit code (a closed output pipe is not an error: it ends the program quietly, with 0).

mod cli;

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tcp_close_watch::pipeline::{analyze, run, watch};
use tcp_close_watch::render::escape;

use crate::cli::output::Outputs;
use crate::cli::{Output, Stderr};

#[derive(Parser)]
#[command(
    name = "tcp-close-watch",
    version,
    about = "See how TCP connections end: socket calls and FIN/RST segments, side by side",
    after_help = format!("{}\n\n{}", cli::EXIT_CODES, cli::DOCS)
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded client (A) and server (B) on loopback, capture them, print one timeline.
    #[command(after_help = format!("{RUN_PRIVILEGES}\n\n{}\n\n{}", cli::EXIT_CODES, cli::DOCS))]
    Run(cli::run::RunArgs),
    /// List the modes of `run`, one line each.
    #[command(after_help = format!("{}\n\n{}", cli::EXIT_CODES, cli::DOCS))]
    Modes,
    /// How every TCP connection in saved .pcap/.pcapng files ended.
    #[command(after_help = format!("{ANALYZE_PRIVILEGES}\n\n{}\n\n{}", cli::EXIT_CODES, cli::DOCS))]
    Analyze(cli::analyze::AnalyzeArgs),
    /// Watch live traffic: a line per connection as it ends — who closed, how, the process on each end, and why.
    #[command(after_help = format!("{}\n\n{}", cli::EXIT_CODES, cli::DOCS))]
    Watch(cli::watch::WatchArgs),
    /// Write the man page or a shell's completions to standard output (`just install` puts them in place).
    #[command(hide = true)]
    Generate {
        #[arg(value_enum)]
        what: Generated,
        /// With `man`: write every page (tcp-close-watch.1, tcp-close-watch-run.1, …) into this folder.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// What `generate` writes.
#[derive(Clone, Copy, clap::ValueEnum)]
enum Generated {
    /// The man page, tcp-close-watch.1 (roff), from the same definitions as --help.
    Man,
    Bash,
    Zsh,
    Fish,
}

/// The man page or completions, made by clap_mangen and clap_complete from the command's own definitions.
fn generate(what: Generated, dir: Option<std::path::PathBuf>) -> Ended {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let mut out = Output::to(None);
    let result = match (what, dir) {
        (Generated::Man, Some(dir)) => {
            return clap_mangen::generate_to(cmd, &dir).map_err(|e| {
                Some(Failure::new(format!(
                    "generate man --dir {}: {e}",
                    dir.display()
                )))
            });
        }
        (Generated::Man, None) => clap_mangen::Man::new(cmd).render(&mut out),
        (_, Some(_)) => return Err(Some(Failure::usage("--dir goes with man only"))),
        (shell, None) => {
            let shell = match shell {
                Generated::Bash => clap_complete::Shell::Bash,
                Generated::Zsh => clap_complete::Shell::Zsh,
                _ => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut cmd, "tcp-close-watch", &mut out);
            Ok(())
        }
    };
    written(&mut out, result)
}

const RUN_PRIVILEGES: &str = "Privileges: capturing needs CAP_NET_RAW alone (sudo, or `sudo setcap cap_net_raw=eip` \
on the binary). Once the ports and captures are open, before A and B play, every capability is given up on every \
thread and, when started as root, the process becomes nobody. -o and --write are written to a temporary file and \
renamed into place only when the run succeeds.";

const ANALYZE_PRIVILEGES: &str = "Privileges: none needed. Every input is opened first (a file only root may read \
works under sudo), then every capability is given up and, when started as root, the process becomes nobody, \
before a byte is read. -o is written to a temporary file and renamed into place only on success; -o naming an \
input is refused.";

/// An error for the user: one line, and the exit code to leave with.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    pub fn new(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: 1,
        }
    }

    /// A command line that cannot work (options that exclude each other, a value we refuse): exit code 2, as
    /// clap's own usage errors.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            message: message.into(),
            code: EXIT_USAGE,
        }
    }

    /// Leave with `code`, saying nothing more: what failed was already told, a line per failure.
    pub fn told(code: u8) -> Failure {
        Failure {
            message: String::new(),
            code,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

/// The command line was wrong (clap's own code for its usage errors; `cli::EXIT_CODES` has the table).
const EXIT_USAGE: u8 = 2;

/// Everything was printed, but it may not be whole: `run`'s capture may be missing segments, or `analyze` read
/// damaged or unreadable input (`cli::EXIT_CODES`).
const EXIT_INCOMPLETE: u8 = 3;

/// `run --check` printed everything, but the kernel did not meet an expectation of the scenario (README).
const EXIT_UNMET: u8 = 4;

/// How a command ended: `Ok`, or a failure to tell — `None` when the output pipe was closed (`| head`).
type Ended = Result<(), Option<Failure>>;

fn main() -> ExitCode {
    let ended = match Cli::parse().command {
        Command::Run(args) => run_command(args),
        Command::Modes => modes(),
        Command::Analyze(args) => analyze_command(args),
        Command::Generate { what, dir } => generate(what, dir),
        Command::Watch(args) => watch_command(args),
    };
    match ended {
        Ok(()) | Err(None) => ExitCode::SUCCESS,
        Err(Some(f)) => {
            if !f.message.is_empty() {
                eprintln!("tcp-close-watch: {}", escape::text(&f.message));
            }
            ExitCode::from(f.code)
        }
    }
}

/// What failed writing `out`, for the user (`None` for a closed pipe).
fn written(out: &mut Output, result: std::io::Result<()>) -> Ended {
    result
        .and_then(|()| out.flush())
        .map_err(|e| out.failure(&e))
}

fn modes() -> Ended {
    let mut out = Output::to(None);
    let result = run::list_modes(&mut out);
    written(&mut out, result)
}

fn run_command(args: cli::run::RunArgs) -> Ended {
    let mut config = args.config()?;
    if args.predict {
        cli::run::ask(&mut config)?;
    }
    let mut outputs = Outputs::default();
    let file = match &args.shown.output {
        Some(path) => Some(outputs.create(path, "-o", &[])?),
        None => None,
    };
    if let Some(save) = &mut config.write {
        save.file = Some(Box::new(outputs.create(&save.path, "--write", &[])?));
    }
    outputs.ready()?;
    let mut out = Output::to(file);
    let legend = args.shown.legend(args.format);
    let mut rec = cli::Recorded {
        out: &mut out,
        seen: Vec::new(),
    };
    let result = run::run(config, &mut rec, &mut Stderr::new());
    let seen = std::mem::take(&mut rec.seen);
    if let Err(e) = legend_under(&mut out, result.is_ok(), legend, &seen) {
        return written(&mut out, Err(e));
    }
    let ended = match result {
        Ok(()) => written(&mut out, Ok(())),
        Err(run::Error::Output(e)) => written(&mut out, Err(e)),
        Err(e @ run::Error::Incomplete(_)) => {
            // the timeline was printed, with its warnings: it is kept, and the exit code says it may lack segments
            written(&mut out, Ok(()))?;
            return finish(outputs, Ok(())).and(Err(Some(Failure {
                message: e.to_string(),
                code: EXIT_INCOMPLETE,
            })));
        }
        Err(e @ run::Error::Unmet(_)) => {
            written(&mut out, Ok(()))?;
            return finish(outputs, Ok(())).and(Err(Some(Failure {
                message: e.to_string(),
                code: EXIT_UNMET,
            })));
        }
        Err(e) => Err(Some(Failure::new(e.to_string()))),
    };
    finish(outputs, ended)
}

/// `--legend`: after a whole output, what the codes it showed mean (only the table and the ladder have codes).
fn legend_under(
    out: &mut Output,
    printed: bool,
    legend: Option<(cli::Format, tcp_close_watch::render::Style)>,
    seen: &[u8],
) -> std::io::Result<()> {
    match legend.filter(|_| printed) {
        Some((format, style)) => match cli::legend_for(format, seen, style) {
            Some(text) => out.write_all(text.as_bytes()),
            None => Ok(()),
        },
        None => Ok(()),
    }
}

fn analyze_command(args: cli::analyze::AnalyzeArgs) -> Ended {
    let output = args.shown.output.clone();
    let legend = args.shown.legend(args.format);
    let config = args.config()?;
    let mut outputs = Outputs::default();
    let file = match &output {
        Some(path) => Some(outputs.create(path, "-o", &config.files)?),
        None => None,
    };
    outputs.ready()?;
    let mut out = Output::to(file);
    let mut rec = cli::Recorded {
        out: &mut out,
        seen: Vec::new(),
    };
    let result = analyze::run(config, &mut rec, &mut Stderr::new());
    let seen = std::mem::take(&mut rec.seen);
    if let Err(e) = legend_under(&mut out, result.is_ok(), legend, &seen) {
        return written(&mut out, Err(e));
    }
    let ended = match result {
        Ok(()) => written(&mut out, Ok(())),
        Err(analyze::Error::Output(e)) => written(&mut out, Err(e)),
        Err(e) => {
            written(&mut out, Ok(()))?;
            let code = match e {
                analyze::Error::Incomplete { .. } => EXIT_INCOMPLETE,
                _ => 1,
            };
            let failure = if e.already_noted() {
                Failure::told(code)
            } else {
                Failure {
                    message: e.to_string(),
                    code,
                }
            };
            if code == EXIT_INCOMPLETE {
                // results were printed for what could be read: they are kept
                return finish(outputs, Ok(())).and(Err(Some(failure)));
            }
            Err(Some(failure))
        }
    };
    finish(outputs, ended)
}

fn watch_command(args: cli::watch::WatchArgs) -> Ended {
    let mut config = args.config()?;
    let mut outputs = Outputs::default();
    let file = match &args.output {
        Some(path) => Some(outputs.create(path, "-o", &[])?),
        None => None,
    };
    if let Some(path) = &args.write {
        config.write = Some(Box::new(outputs.create(path, "--write", &[])?));
    }
    outputs.ready()?;
    let mut out = Output::to(file);
    if let Some(legend) = args.legend() {
        let wrote = out.write_all(legend.as_bytes());
        written(&mut out, wrote)?;
    }
    let ended = match watch::run(config, &mut out, &mut Stderr::new()) {
        Ok(end) => {
            written(&mut out, Ok(()))?;
            finish(outputs, Ok(()))?;
            if end.dropped {
                return Err(Some(Failure {
                    message: "libpcap dropped packets: some connections may be missing segments"
                        .into(),
                    code: EXIT_INCOMPLETE,
                }));
            }
            return Ok(());
        }
        Err(watch::Error::Output(e)) => written(&mut out, Err(e)),
        Err(e) => Err(Some(Failure::new(e.to_string()))),
    };
    finish(outputs, ended)
}

/// Put the output files in place when the command succeeded; otherwise they are removed (when `outputs` drops),
/// and what was there before stays.
fn finish(outputs: Outputs, ended: Ended) -> Ended {
    match ended {
        Ok(()) => outputs.commit().map_err(Some),
        Err(e) => Err(e),
    }
}
