//! Bounded waits on real conditions: poll a condition (asked of the kernel through `os`), letting the other
//! threads run between polls, and give up with what was awaited after [`LIMIT`]. No system call of its own.

use std::fmt;
use std::time::{Duration, Instant};

use crate::os::proc;

/// Every wait gives up after this long: far more than any step takes on loopback.
pub const LIMIT: Duration = Duration::from_secs(3);

/// How long a call running in the background may take to return: long enough for the kernel's own timers of the
/// link scenarios (a keepalive or a user timeout of a few seconds), still bounded.
pub const CALL_LIMIT: Duration = Duration::from_secs(15);

/// A scenario that could not go on, with what it was waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError(pub String);

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScenarioError {}

/// Poll `cond` until it holds; after [`LIMIT`], fail saying what we waited for.
pub fn until(
    what: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) -> Result<(), ScenarioError> {
    let start = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        if start.elapsed() > LIMIT {
            return Err(ScenarioError(format!(
                "gave up after {} s waiting for {}",
                LIMIT.as_secs(),
                what()
            )));
        }
        spins += 1;
        proc::back_off(spins);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_returns_once_true() {
        let mut n = 0;
        until(
            || "n to reach 3".into(),
            || {
                n += 1;
                n >= 3
            },
        )
        .unwrap();
        assert_eq!(n, 3);
    }
}
