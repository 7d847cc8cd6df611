//! One run of the pair — live, or read back from a saved capture — as the printers are given it: the run, its
//! timeline, and what `explain` made of it. Live and saved runs print through one [`TimelinePrinter::run`], so
//! they print alike.
//!
//! [`TimelinePrinter::run`]: crate::render::TimelinePrinter::run

use crate::explain::story::ComparisonRow;
use crate::explain::timeline::Timeline;
use crate::model::run::PairRun;

/// One run, ready to print.
pub struct RunView<'a> {
    pub pair: &'a PairRun,
    pub timeline: &'a Timeline,
    /// The kernel the run was recorded on.
    pub kernel: &'a str,
    /// Shown with the account (and in JSON's summary object).
    pub warnings: &'a [String],
    /// What happened, a line each (`explain::story::account`).
    pub account: &'a [String],
    /// The run's outcome as the comparison of modes has it (JSON's summary object carries it).
    pub outcome: &'a ComparisonRow,
    /// The file the run was read back from, named above the table.
    pub saved_in: Option<&'a str>,
}

/// Title line of a run.
pub fn title(pair: &PairRun, kernel: &str) -> String {
    format!(
        "mode {} — {} ({kernel}, B on {})",
        pair.mode,
        pair.mode.summary(),
        pair.b
    )
}
