//! `tcp-close-watch run` and `modes`.

use crate::Failure;

#[derive(clap::Args)]
pub struct RunArgs {}

pub fn main(_args: RunArgs) -> Result<(), Failure> {
    Err(Failure::new("run is not built yet"))
}

pub fn list_modes() -> Result<(), Failure> {
    Err(Failure::new("modes is not built yet"))
}
