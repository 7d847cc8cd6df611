//! `tcp-close-watch analyze`: owned by the analyse-captures work (issue 3).

use crate::Failure;

#[derive(clap::Args)]
pub struct AnalyzeArgs {
    /// Capture files (.pcap, .pcapng, optionally gzip-compressed); `-` reads standard input.
    #[arg(required = true)]
    pub files: Vec<String>,
}

pub fn main(_args: AnalyzeArgs) -> Result<(), Failure> {
    Err(Failure::new("analyze is not built yet"))
}
