//! The command line: parse arguments, call the library, turn errors into one line and an exit code.

mod cli;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
}

/// Where `emit` writes when `-o FILE` was given.
static OUTPUT: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

/// Send everything `emit` writes to `path` instead of standard output.
pub fn set_output(path: &std::path::Path) -> Result<(), Failure> {
    let file = std::fs::File::create(path)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", path.display())))?;
    *OUTPUT.lock().unwrap_or_else(|p| p.into_inner()) = Some(file);
    Ok(())
}

/// Write to standard output (or the `-o` file); a closed pipe (`| head`) ends the program quietly, as it should.
pub fn emit(text: &str) -> Result<(), Failure> {
    if let Some(file) = OUTPUT.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        return file
            .write_all(text.as_bytes())
            .map_err(|e| Failure::new(format!("cannot write the output file: {e}")));
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => Err(Failure::new(format!("cannot write output: {e}"))),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::main(args),
        Command::Modes => cli::run::list_modes(),
        Command::Analyze(args) => cli::analyze::main(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tcp-close-watch: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
