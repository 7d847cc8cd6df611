//! The stages joined into the commands: `run` (play the pair live, or every mode, and print or save it), `analyze`
//! (read captures, track their connections, print a summary, timelines or saved runs), and the generated parts of
//! docs/. Sources → decode → tracking → explanation → printer; the binary only validates arguments and calls in.

pub mod analyze;
pub mod docs;
pub mod live;
pub mod replay;
pub mod run;
pub mod watch;

use crate::explain::story::{self, ComparisonRow};
use crate::explain::timeline::Timeline;
use crate::model::run::PairRun;

/// What a command tells its user on the side while it works, apart from its output: lines about inputs and runs
/// (the binary writes them to standard error, after its name) and progress through each input.
pub trait Feedback {
    /// A line such as `NAME: why nothing could be read` or `warning: …`.
    fn note(&mut self, line: &str);
    /// Reading of the input `name` starts.
    fn reading(&mut self, _name: &str) {}
    /// Bytes of the input read so far, of how many.
    fn progress(&mut self, _done: u64, _total: u64) {}
    /// Reading of the input ended.
    fn read(&mut self) {}
}

/// What `explain` makes of a run, for its printers: the account of what happened, and its comparison row.
pub struct Told {
    pub account: Vec<String>,
    pub outcome: ComparisonRow,
}

/// Tell a run's story.
pub fn tell(pair: &PairRun, t: &Timeline, kernel: &str) -> Told {
    let end = Some((pair.end_states.a, pair.end_states.b));
    Told {
        account: story::account(t, end, kernel),
        outcome: story::comparison_row(pair, t, kernel),
    }
}
