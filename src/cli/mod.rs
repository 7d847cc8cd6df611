//! The command line: clap types and their validation, one file per subcommand. Glue only.

pub mod analyze;
pub mod run;
