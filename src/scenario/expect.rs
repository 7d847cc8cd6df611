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
        .filter(|s| flag.on(s.flags))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::calls::{CallKind, Outcome};
    use crate::model::kernel::KernelEvent;
    use crate::model::run::{EndStates, Mode};
    use crate::model::segment::TcpFlags;
    use crate::testing::{call, ok, seg, sides};

    fn pair(calls: Vec<SocketCall>) -> PairRun {
        let s = sides();
        PairRun {
            mode: Mode::Abrupt,
            a: s.a,
            b: s.b,
            calls,
            end_states: EndStates { a: None, b: None },
        }
    }

    fn script(expects: &str) -> Script {
        crate::scenario::parse(&format!("scenario t\nsummary s\nA connect\n{expects}")).unwrap()
    }

    fn reset_by_b(reason: &str) -> KernelEvent {
        let s = sides();
        KernelEvent {
            ts: 5,
            what: KernelEventKind::SendReset {
                reason: reason.into(),
                state: None,
                src: s.b,
                dst: s.a,
            },
        }
    }

    fn met(v: &[Verdict]) -> Vec<bool> {
        v.iter().map(|v| v.met).collect()
    }

    #[test]
    fn who_sends_what_is_read_from_the_wire_and_the_reason_from_the_kernel() {
        let p = pair(vec![]);
        let wire = [
            seg(1, Peer::A, TcpFlags::FIN | TcpFlags::ACK, 1, 1, b""),
            seg(2, Peer::B, TcpFlags::RST | TcpFlags::ACK, 1, 2, b""),
        ];
        let events = [reset_by_b("TCP_ABORT_ON_DATA")];
        let s = script(
            "expect A sends FIN\nexpect B sends no FIN\nexpect B sends RST\nexpect A sends RST\n\
             expect B sends RST reason TCP_ABORT_ON_CLOSE\n\
             expect B sends RST reason TCP_ABORT_ON_CLOSE|TCP_ABORT_ON_DATA\n",
        );
        let ev = Evidence {
            pair: &p,
            segments: Some(&wire),
            events: Some(&events),
        };
        let v = check(&s, &ev);
        assert_eq!(met(&v), [true, true, true, false, false, true]);
        assert_eq!(v[3].seen, "A sent 0 RST segment(s)");
        assert_eq!(
            v[4].seen,
            "B sent 1 RST segment(s), reason TCP_ABORT_ON_DATA"
        );
        assert_eq!(v[4].line, 8);
        assert_eq!(v[4].expected, "B sends RST reason TCP_ABORT_ON_CLOSE");
    }

    #[test]
    fn missing_evidence_is_never_a_pass() {
        let p = pair(vec![]);
        let s = script("expect B sends no RST\nexpect B sends RST reason TCP_STATE\n");
        let none = check(
            &s,
            &Evidence {
                pair: &p,
                segments: None,
                events: None,
            },
        );
        assert_eq!(met(&none), [false, false]);
        let wire = [seg(2, Peer::B, TcpFlags::RST, 1, 0, b"")];
        let no_kernel = check(
            &s,
            &Evidence {
                pair: &p,
                segments: Some(&wire),
                events: None,
            },
        );
        assert_eq!(met(&no_kernel), [false, false]);
        assert!(no_kernel[1].seen.contains("reason is unknown"));
    }

    #[test]
    fn a_named_call_is_the_nth_or_the_last_of_its_kind() {
        let got = |n: i64| Outcome::Ok {
            ret: n,
            data: vec![b'x'; n as usize],
        };
        let reset = Outcome::Err {
            errno: libc::ECONNRESET,
        };
        let p = pair(vec![
            call(Peer::A, CallKind::Recv, (1, 2), got(3)),
            call(Peer::A, CallKind::Recv, (3, 4), reset),
            call(Peer::B, CallKind::Close, (5, 6), ok()),
        ]);
        let s = script(
            "expect A recv#1 = 3\nexpect A recv#1 > 0\nexpect A recv = ECONNRESET|EPIPE\n\
             expect A recv = EPIPE\nexpect A recv#3 ok\nexpect B close ok\nexpect B close = 0\n\
             expect A send ok\nexpect A recv ok\n",
        );
        let v = check(
            &s,
            &Evidence {
                pair: &p,
                segments: None,
                events: None,
            },
        );
        assert_eq!(
            met(&v),
            [true, true, true, false, false, true, true, false, false]
        );
        assert_eq!(v[4].seen, "A made 2 recv call(s)");
        assert_eq!(
            v[3].seen,
            "A's recv() = -1 ECONNRESET (Connection reset by peer)"
        );
    }
}
