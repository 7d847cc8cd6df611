//! The command line: arguments → a validated configuration → one call into the library; errors → one line on
//! standard error and the exit code (a closed output pipe is not an error: it ends the program quietly, with 0).

mod cli;

use std::fmt;
use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tcp_close_watch::pipeline::{analyze, run};

use crate::cli::{Output, Stderr};

#[derive(Parser)]
#[command(
    name = "tcp-close-watch",
    version,
    about = "See how TCP connections end: socket calls and FIN/RST segments, side by side"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the embedded client (A) and server (B) on loopback, capture them, print one timeline.
    Run(cli::run::RunArgs),
    /// List the modes of `run`, one line each.
    Modes,
    /// How every TCP connection in saved .pcap/.pcapng files ended.
    Analyze(cli::analyze::AnalyzeArgs),
}

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

/// `run` printed everything, but a timeline may be missing segments (README, "Exit codes"). Not 1 (nothing or
/// not all printed) nor 2 (clap's usage errors, and analyze's damaged input).
const EXIT_INCOMPLETE: u8 = 3;

/// How a command ended: `Ok`, or a failure to tell — `None` when the output pipe was closed (`| head`).
type Ended = Result<(), Option<Failure>>;

fn main() -> ExitCode {
    let ended = match Cli::parse().command {
        Command::Run(args) => run_command(args),
        Command::Modes => modes(),
        Command::Analyze(args) => analyze_command(args),
    };
    match ended {
        Ok(()) | Err(None) => ExitCode::SUCCESS,
        Err(Some(f)) => {
            if !f.message.is_empty() {
                eprintln!("tcp-close-watch: {}", f.message);
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
    let mut out = Output::open(None)?;
    let result = run::list_modes(&mut out);
    written(&mut out, result)
}

fn run_command(args: cli::run::RunArgs) -> Ended {
    let mut out = Output::open(args.output.as_deref())?;
    let config = args.config()?;
    match run::run(config, &mut out, &mut Stderr::new()) {
        Ok(()) => written(&mut out, Ok(())),
        Err(run::Error::Output(e)) => written(&mut out, Err(e)),
        Err(e @ run::Error::Incomplete(_)) => {
            written(&mut out, Ok(()))?;
            Err(Some(Failure {
                message: e.to_string(),
                code: EXIT_INCOMPLETE,
            }))
        }
        Err(e) => Err(Some(Failure::new(e.to_string()))),
    }
}

fn analyze_command(args: cli::analyze::AnalyzeArgs) -> Ended {
    let output = args.output.clone();
    let config = args.config()?;
    let mut out = Output::open(output.as_deref())?;
    match analyze::run(config, &mut out, &mut Stderr::new()) {
        Ok(()) => written(&mut out, Ok(())),
        Err(analyze::Error::Output(e)) => written(&mut out, Err(e)),
        Err(e) => {
            written(&mut out, Ok(()))?;
            let code = match e {
                analyze::Error::Incomplete { .. } => 2,
                _ => 1,
            };
            if e.already_noted() {
                Err(Some(Failure::told(code)))
            } else {
                Err(Some(Failure {
                    message: e.to_string(),
                    code,
                }))
            }
        }
    }
}
