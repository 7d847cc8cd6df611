//! A scenario's expectations checked against what a run showed: the socket calls, the captured segments and the
//! kernel's events. Pure: it reads values, so it is tested on runs built in the test.

use std::net::SocketAddr;

use crate::model::calls::{Peer, SocketCall};
use crate::model::kernel::{KernelEvent, KernelEventKind};
use crate::model::run::PairRun;
use crate::model::segment::Segment;
use crate::scenario::script::{At, Expect, Flag, Script, Want};

/// One expectation, and whether the run met it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Its line in the scenario file.
    pub line: usize,
    /// The expectation as written, without `expect`.
    pub expected: String,
    pub met: bool,
    /// What the run showed instead (or as well).
    pub seen: String,
}

/// What a run showed; `None` for evidence that was not gathered (`--no-capture`, `--no-kernel`, or no rights).
pub struct Evidence<'a> {
    pub pair: &'a PairRun,
    pub segments: Option<&'a [Segment]>,
    pub events: Option<&'a [KernelEvent]>,
}

/// Every expectation of `script`, judged on `ev`, in the file's order.
pub fn check(script: &Script, ev: &Evidence) -> Vec<Verdict> {
    script.expects.iter().map(|e| judge(e, ev)).collect()
}

fn judge(e: &At<Expect>, ev: &Evidence) -> Verdict {
    let (met, seen) = match &e.item {
        Expect::Sends {
            peer,
            flag,
            none,
            reasons,
        } => sends(ev, *peer, *flag, *none, reasons),
        Expect::Returns {
            peer,
            kind,
            nth,
            want,
        } => {
            let calls: Vec<&SocketCall> = ev
                .pair
                .calls
                .iter()
                .filter(|c| c.peer == *peer && c.kind == *kind)
                .collect();
            let picked = match nth {
                Some(n) => calls.get(n - 1).copied(),
                None => calls.last().copied(),
            };
            match picked {
                None => (
                    false,
                    format!("{peer} made {} {} call(s)", calls.len(), kind.name()),
                ),
                Some(c) => (
                    returned(c, want),
                    format!("{peer}'s {} {}", c.call, c.result_text()),
                ),
            }
        }
    };
    Verdict {
        line: e.line,
        expected: e.text.trim_start_matches("expect").trim().to_string(),
        met,
        seen,
    }
}

fn returned(c: &SocketCall, want: &Want) -> bool {
    match want {
        Want::Errno(list) => c.errno().is_some_and(|e| list.contains(&e)),
        Want::Ret(n) => c.ret() == *n,
        Want::Positive => c.ret() > 0,
        Want::Ok => c.errno().is_none(),
    }
}

fn address(pair: &PairRun, peer: Peer) -> SocketAddr {
    match peer {
        Peer::A => pair.a,
        Peer::B => pair.b,
    }
}

fn sends(ev: &Evidence, peer: Peer, flag: Flag, none: bool, reasons: &[String]) -> (bool, String) {
    let Some(segments) = ev.segments else {
        return (
            false,
            "nothing was captured, so the wire cannot say (run without --no-capture, with the rights to capture)"
                .into(),
        );
    };
    let from = address(ev.pair, peer);
    let n = segments
        .iter()
        .filter(|s| s.src == from && s.dst.port() == address(ev.pair, peer.other()).port())
        .filter(|s| match flag {
            Flag::Fin => s.flags.fin(),
            Flag::Rst => s.flags.rst(),
        })
        .count();
    let on_wire = format!("{peer} sent {n} {} segment(s)", flag.name());
    if none || n == 0 {
        return (none == (n == 0), on_wire);
    }
    if reasons.is_empty() {
        return (true, on_wire);
    }
    let Some(events) = ev.events else {
        return (
            false,
            format!("{on_wire}, but the kernel's events were not read, so its reason is unknown"),
        );
    };
    let given: Vec<&str> = events
        .iter()
        .filter_map(|e| match &e.what {
            KernelEventKind::SendReset { reason, src, .. } if *src == from => Some(reason.as_str()),
            _ => None,
        })
        .collect();
    let met = given.iter().any(|g| reasons.iter().any(|r| r == g));
    let said = if given.is_empty() {
        "no reason traced".to_string()
    } else {
        format!("reason {}", given.join(", "))
    };
    (met, format!("{on_wire}, {said}"))
}
