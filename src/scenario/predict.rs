//! `--predict`: two or three questions drawn from a scenario's expectations, asked before it is played, and each
//! answer set against what the run showed (never against the expectation: the kernel has the last word).

use crate::model::calls::{CallKind, Peer, SocketCall, errno_name};
use crate::scenario::expect::Evidence;
use crate::scenario::script::{Expect, Flag, Script};

/// A question a student answers before the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// Who sends RST: A, B, both or none.
    WhoResets,
    /// What a named call returns (its `nth`, 1-based; `None` the last).
    Returns {
        peer: Peer,
        kind: CallKind,
        nth: Option<usize>,
    },
    /// How many received bytes close() throws away unread, both sides together.
    Discarded,
}

/// The questions for `script`: who resets (when an expectation speaks of RST), what the first call named in an
/// expectation returns, and how many bytes are thrown away (when a close is among the steps).
pub fn questions(script: &Script) -> Vec<Question> {
    let mut q = Vec::new();
    let expects = || script.expects.iter().map(|e| &e.item);
    if expects().any(|e| {
        matches!(
            e,
            Expect::Sends {
                flag: Flag::Rst,
                ..
            }
        )
    }) {
        q.push(Question::WhoResets);
    }
    if let Some(Expect::Returns {
        peer, kind, nth, ..
    }) = expects().find(|e| matches!(e, Expect::Returns { .. }))
    {
        q.push(Question::Returns {
            peer: *peer,
            kind: *kind,
            nth: *nth,
        });
    }
    if script
        .calls()
        .any(|(_, c)| matches!(c, crate::scenario::script::Call::Close))
    {
        q.push(Question::Discarded);
    }
    q
}

impl Question {
    pub fn text(&self) -> String {
        match self {
            Question::WhoResets => "Who sends a RST: A, B, both or none?".into(),
            Question::Returns { peer, kind, nth } => {
                let which = match nth {
                    Some(1) => format!("first {}()", kind.name()),
                    Some(2) => format!("second {}()", kind.name()),
                    Some(3) => format!("third {}()", kind.name()),
                    Some(n) => format!("{}() number {n}", kind.name()),
                    None => format!("last {}()", kind.name()),
                };
                format!(
                    "What does {peer}'s {which} return: a number, or an errno such as ECONNRESET?"
                )
            }
            Question::Discarded => {
                "How many received bytes are thrown away unread when the sockets are closed?".into()
            }
        }
    }

    /// What the run showed, as an answer would say it; `None` when the run cannot tell.
    pub fn observed(&self, ev: &Evidence) -> Option<String> {
        match self {
            Question::WhoResets => {
                let segs = ev.segments?;
                let from = |p: Peer| {
                    let addr = match p {
                        Peer::A => ev.pair.a,
                        Peer::B => ev.pair.b,
                    };
                    segs.iter().any(|s| s.src == addr && s.flags.rst())
                };
                Some(
                    match (from(Peer::A), from(Peer::B)) {
                        (true, true) => "both",
                        (true, false) => "A",
                        (false, true) => "B",
                        (false, false) => "none",
                    }
                    .into(),
                )
            }
            Question::Returns { peer, kind, nth } => {
                let calls: Vec<&SocketCall> = ev
                    .pair
                    .calls
                    .iter()
                    .filter(|c| c.peer == *peer && c.kind == *kind)
                    .collect();
                let c = match nth {
                    Some(n) => calls.get(n - 1)?,
                    None => calls.last()?,
                };
                Some(match c.errno() {
                    Some(e) => errno_name(e),
                    None => c.ret().to_string(),
                })
            }
            Question::Discarded => Some(
                ev.pair
                    .calls
                    .iter()
                    .filter_map(|c| c.unread_before)
                    .map(u64::from)
                    .sum::<u64>()
                    .to_string(),
            ),
        }
    }
}

/// True when `answer` says what was `observed` (case, spaces and a leading `-1` ignored; `nobody` is `none`).
pub fn agrees(answer: &str, observed: &str) -> bool {
    let norm = |s: &str| {
        let s = s.trim().to_ascii_uppercase();
        let s = s.strip_prefix("-1 ").unwrap_or(&s).trim().to_string();
        match s.as_str() {
            "NOBODY" | "NO ONE" | "NEITHER" | "NO" => "NONE".to_string(),
            _ => s,
        }
    };
    !answer.trim().is_empty() && norm(answer) == norm(observed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_leniently_but_not_guessed() {
        assert!(agrees(" b ", "B"));
        assert!(agrees("nobody", "none"));
        assert!(agrees("-1 econnreset", "ECONNRESET"));
        assert!(agrees("0", "0"));
        assert!(!agrees("", "0"));
        assert!(!agrees("A", "B"));
        assert!(!agrees("EPIPE", "ECONNRESET"));
    }

    #[test]
    fn questions_follow_the_expectations() {
        let s = crate::scenario::parse(
            "scenario t\nsummary s\nA connect\nB accept\nB close\nA close\n\
             expect B sends RST\nexpect A recv#2 = ECONNRESET\nexpect A send = EPIPE\n",
        )
        .unwrap();
        assert_eq!(
            questions(&s),
            [
                Question::WhoResets,
                Question::Returns {
                    peer: Peer::A,
                    kind: CallKind::Recv,
                    nth: Some(2)
                },
                Question::Discarded
            ]
        );
        let s = crate::scenario::parse("scenario t\nsummary s\nA connect\n").unwrap();
        assert!(questions(&s).is_empty());
    }
}
