//! The scenario language: a line per step, read here into a [`Script`]. A mistake is one [`ParseError`] with the
//! line and column where it is and what was expected there; nothing is guessed.
//!
//! The format is described in docs/scenarios.md; in short:
//!
//! ```text
//! scenario abrupt                        # its name
//! summary  B closes with bytes unread    # one line for `modes`
//! teach    what to notice, the fix       # as many lines as needed
//! A connect
//! B accept
//! A send "Hello B!\n"                   # or: A send 100 bytes
//! wait B unread 9
//! A recv 64 &                            # A blocks in recv() on its own thread ...
//! B close
//! wait A returns                         # ... until it returns
//! expect B sends RST reason TCP_ABORT_ON_CLOSE
//! expect A recv = ECONNRESET
//! ```

use std::time::Duration;

use crate::model::calls::{CallKind, Peer, errno_name};
use crate::model::tcp_state::TcpState;
use crate::os::socket::{Shut, SockOpt};
pub use crate::scenario::lex::ParseError;
use crate::scenario::lex::{Line, Res, Token, code_of, found, tokenize};
use crate::scenario::script::{At, Call, Expect, Flag, KernelWait, Link, Script, Step, Wait, Want};

/// What the header lines said so far.
#[derive(Default)]
struct Header {
    name: Option<String>,
    summary: Option<String>,
    teach: Vec<String>,
    port_closed: bool,
}

/// Read a scenario file.
pub fn parse(text: &str) -> Result<Script, ParseError> {
    let mut header = Header::default();
    let mut steps = Vec::new();
    let mut expects = Vec::new();
    let mut busy: Option<(Peer, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let mut line = tokenize(i + 1, raw)?;
        let Some(first) = line.peek().cloned() else {
            continue;
        };
        fn at<T>(line: usize, raw: &str, item: T) -> At<T> {
            At {
                line,
                item,
                text: code_of(raw).trim().to_string(),
            }
        }
        match first.text.as_str() {
            "scenario" | "summary" | "teach" | "port" if !first.quoted => {
                header_line(&mut header, &mut line, raw)?
            }
            "expect" if !first.quoted => {
                line.next += 1;
                expects.push(at(i + 1, raw, expect(&mut line)?));
            }
            _ => {
                let step = step(&mut line)?;
                order(&line, &step, &first, &mut busy)?;
                steps.push(at(i + 1, raw, step));
            }
        }
    }
    if let Some((peer, line)) = busy {
        return Err(ParseError {
            line,
            col: 1,
            expected: format!("a later `wait {peer} returns` for this background call"),
            found: "the end of the file".into(),
        });
    }
    let missing = |what: &str| ParseError {
        line: 1,
        col: 1,
        expected: format!("a `{what}` line"),
        found: "none in the file".into(),
    };
    let name = header.name.ok_or_else(|| missing("scenario NAME"))?;
    let summary = header.summary.ok_or_else(|| missing("summary TEXT"))?;
    if steps.is_empty() {
        return Err(missing("A … or B … step"));
    }
    Ok(Script {
        name,
        summary,
        teach: header.teach,
        port_closed: header.port_closed,
        steps,
        expects,
    })
}

/// `scenario NAME`, `summary TEXT`, `teach TEXT`, `port closed`.
fn header_line(h: &mut Header, line: &mut Line, raw: &str) -> Res<()> {
    let key = line.take("a keyword")?;
    // the rest of the line as written, for the free-text keys
    let rest = raw.trim_start()[key.text.len()..].trim().to_string();
    match key.text.as_str() {
        "scenario" => {
            let name = line.take("the scenario's name")?;
            let good = !name.quoted
                && name
                    .text
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !good {
                return Err(line.err(name.col, "a name of a-z, 0-9 and -", found(&name)));
            }
            if h.name.is_some() {
                return Err(line.err(key.col, "one `scenario` line per file", "a second one"));
            }
            line.done()?;
            h.name = Some(name.text);
        }
        "summary" => {
            if rest.is_empty() {
                return Err(line.err(line.end, "the summary's text", "the end of the line"));
            }
            h.summary = Some(rest);
        }
        "teach" => h.teach.push(rest),
        _ => {
            if !line.eat("closed") {
                let col = line.peek().map_or(line.end, |t| t.col);
                return Err(line.err(col, "`port closed`", "something else"));
            }
            line.done()?;
            h.port_closed = true;
        }
    }
    Ok(())
}

/// Background calls: while a peer is asleep in one, the other peer acts alone, until `wait P returns`.
fn order(line: &Line, step: &Step, first: &Token, busy: &mut Option<(Peer, usize)>) -> Res<()> {
    match (step, *busy) {
        (Step::Wait(Wait::Returns(p)), Some((b, _))) if *p == b => *busy = None,
        (Step::Wait(Wait::Returns(p)), _) => {
            return Err(line.err(
                first.col,
                format!("a step (no call of {p} runs in the background here)"),
                format!("`wait {p} returns`"),
            ));
        }
        (Step::Call { peer, .. } | Step::Destroy(peer), Some((b, since))) if *peer == b => {
            return Err(line.err(
                first.col,
                format!(
                    "a step of {} ({b} is blocked since line {since} until `wait {b} returns`)",
                    b.other()
                ),
                format!("a call of {b}"),
            ));
        }
        (
            Step::Call {
                background: true, ..
            },
            Some((b, since)),
        ) => {
            return Err(line.err(
                first.col,
                format!("one background call at a time ({b}'s since line {since} still runs)"),
                "a second one".to_string(),
            ));
        }
        (
            Step::Call {
                peer,
                background: true,
                ..
            },
            None,
        ) => *busy = Some((*peer, line.no)),
        _ => {}
    }
    Ok(())
}

fn step(line: &mut Line) -> Res<Step> {
    let first = line.peek().cloned().expect("a non-empty line");
    match first.text.as_str() {
        "wait" => {
            line.next += 1;
            let w = wait(line)?;
            line.done()?;
            Ok(Step::Wait(w))
        }
        "sleep" => {
            line.next += 1;
            let n: u64 = line.number("a duration, as 200 ms or 2 s")?;
            let unit = line.take("ms or s")?;
            let d = match unit.text.as_str() {
                "ms" => Duration::from_millis(n),
                "s" => Duration::from_secs(n),
                _ => return Err(line.err(unit.col, "ms or s", found(&unit))),
            };
            // a run must end: a pause is bounded like every wait
            if d > MAX_SLEEP {
                return Err(line.err(
                    line.tokens[line.next - 2].col,
                    format!("a pause of at most {} s", MAX_SLEEP.as_secs()),
                    format!("{n} {}", unit.text),
                ));
            }
            line.done()?;
            Ok(Step::Sleep(d))
        }
        "link" => {
            line.next += 1;
            let l = link(line)?;
            line.done()?;
            Ok(Step::Link(l))
        }
        "destroy" => {
            line.next += 1;
            let (peer, _) = line.peer()?;
            line.done()?;
            Ok(Step::Destroy(peer))
        }
        "A" | "B" if !first.quoted => {
            let (peer, _) = line.peer()?;
            let call = call(line, peer)?;
            let background = line.eat("&");
            if background
                && !matches!(
                    call,
                    Call::Recv {
                        until_end: false,
                        ..
                    }
                )
            {
                return Err(line.err(
                    line.tokens[line.next - 1].col,
                    "the end of the line (only a single recv can run in the background)",
                    "`&`",
                ));
            }
            line.done()?;
            Ok(Step::Call {
                peer,
                call,
                background,
            })
        }
        _ => Err(line.err(
            first.col,
            "scenario, summary, teach, port, A, B, wait, sleep, link, destroy or expect",
            found(&first),
        )),
    }
}

/// `blackhole`, `down`, `rate 1mbit`, `delay 100 ms`.
fn link(line: &mut Line) -> Res<Link> {
    const WHAT: &str = "blackhole, down, rate RATE or delay N ms";
    let t = line.take(WHAT)?;
    Ok(match t.text.as_str() {
        "blackhole" => Link::Blackhole,
        "down" => Link::Down,
        "rate" => {
            let r = line.take("a rate, as 1mbit or 500kbit")?;
            let digits = r.text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
            let unit = &r.text[digits.len()..];
            let good = !digits.is_empty()
                && digits.chars().all(|c| c.is_ascii_digit())
                && ["bit", "kbit", "mbit", "gbit"].contains(&unit);
            if !good {
                return Err(line.err(r.col, "a rate, as 1mbit or 500kbit", found(&r)));
            }
            Link::Rate(r.text)
        }
        "delay" => {
            let ms: u32 = line.number("a delay in ms")?;
            let unit = line.take("ms")?;
            if unit.text != "ms" {
                return Err(line.err(unit.col, "ms", found(&unit)));
            }
            Link::Delay(ms)
        }
        _ => return Err(line.err(t.col, WHAT, found(&t))),
    })
}

/// The longest `sleep` a scenario may ask for.
const MAX_SLEEP: Duration = Duration::from_secs(30);

const VERBS: &str = "connect, accept, send, recv, shutdown, close or setsockopt";

fn call(line: &mut Line, peer: Peer) -> Res<Call> {
    let verb = line.take(VERBS)?;
    let only = |who: Peer, what: &str| -> Res<()> {
        if peer == who {
            Ok(())
        } else {
            Err(line.err(
                verb.col,
                format!("a call {peer} can make ({what} is {who}'s)"),
                found(&verb),
            ))
        }
    };
    Ok(match verb.text.as_str() {
        "connect" => {
            only(Peer::A, "connect")?;
            if line.eat("self") {
                Call::ConnectSelf
            } else {
                Call::Connect
            }
        }
        "accept" => {
            only(Peer::B, "accept")?;
            Call::Accept
        }
        "send" => send(line)?,
        "recv" => {
            let max = match line.peek() {
                Some(t) if t.text.chars().all(|c| c.is_ascii_digit()) => {
                    line.number("a byte count")?
                }
                _ => 64,
            };
            let until_end = line.eat("until");
            if until_end && !line.eat("end") {
                let col = line.peek().map_or(line.end, |t| t.col);
                return Err(line.err(col, "`end` (recv until end)", "something else"));
            }
            Call::Recv { max, until_end }
        }
        "shutdown" => {
            let t = line.take("RD, WR or RDWR")?;
            Call::Shutdown(match t.text.trim_start_matches("SHUT_") {
                "RD" => Shut::Read,
                "WR" => Shut::Write,
                "RDWR" => Shut::Both,
                _ => return Err(line.err(t.col, "RD, WR or RDWR", found(&t))),
            })
        }
        "close" => {
            let listener = line
                .peek()
                .is_some_and(|t| t.text == "listener" && !t.quoted);
            if listener {
                only(Peer::B, "the listener")?;
                line.next += 1;
                Call::CloseListener
            } else {
                Call::Close
            }
        }
        "setsockopt" => Call::SetSockOpt(option(line)?),
        _ => return Err(line.err(verb.col, VERBS, found(&verb))),
    })
}

/// `send "text"` or `send N bytes`.
fn send(line: &mut Line) -> Res<Call> {
    let t = line.take("a \"string\" or a number of bytes")?;
    Ok(if t.quoted {
        Call::Send(t.text.into_bytes())
    } else {
        let n: usize = t
            .text
            .parse()
            .map_err(|_| line.err(t.col, "a \"string\" or a number of bytes", found(&t)))?;
        if !line.eat("bytes") {
            let col = line.peek().map_or(line.end, |t| t.col);
            return Err(line.err(
                col,
                "`bytes`",
                line.peek().map_or("the end of the line".into(), found),
            ));
        }
        Call::Send(vec![b'x'; n])
    })
}

const OPTIONS: &str = "SO_LINGER, TCP_LINGER2, SO_KEEPALIVE, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, \
                       TCP_USER_TIMEOUT, SO_RCVBUF, TCP_NODELAY or SO_REUSEADDR";

fn option(line: &mut Line) -> Res<SockOpt> {
    let t = line.take(OPTIONS)?;
    Ok(match t.text.as_str() {
        "SO_LINGER" => {
            if line.on_off()? {
                SockOpt::Linger(Some(line.number("the linger time in seconds")?))
            } else {
                SockOpt::Linger(None)
            }
        }
        "TCP_LINGER2" => SockOpt::Linger2(line.number("seconds, or -1")?),
        "SO_KEEPALIVE" => SockOpt::KeepAlive(line.on_off()?),
        "TCP_KEEPIDLE" => SockOpt::KeepIdle(line.number("seconds")?),
        "TCP_KEEPINTVL" => SockOpt::KeepIntvl(line.number("seconds")?),
        "TCP_KEEPCNT" => SockOpt::KeepCnt(line.number("a count of probes")?),
        "TCP_USER_TIMEOUT" => SockOpt::UserTimeout(line.number("milliseconds")?),
        "SO_RCVBUF" => SockOpt::RcvBuf(line.number("bytes")?),
        "TCP_NODELAY" => SockOpt::NoDelay(line.on_off()?),
        "SO_REUSEADDR" => SockOpt::ReuseAddr(line.on_off()?),
        _ => return Err(line.err(t.col, OPTIONS, found(&t))),
    })
}

fn state_named(s: &str) -> Option<TcpState> {
    TcpState::from_linux_name(s)
}

const STATES: &str =
    "a state as ss names it (ESTABLISHED, CLOSE_WAIT, CLOSE, …), or several joined by |";

const WAITS: &str = "unread, acked, state, returns, sends or kernel";

fn wait(line: &mut Line) -> Res<Wait> {
    let (peer, _) = line.peer()?;
    let what = line.take(WAITS)?;
    Ok(match what.text.as_str() {
        "unread" => Wait::Unread {
            peer,
            bytes: line.number("a number of bytes")?,
        },
        "state" => {
            let states = line.alternatives(STATES, state_named)?;
            let only_if = if line.eat("if") {
                let (p, _) = line.peer()?;
                if !line.eat("state") {
                    let col = line.peek().map_or(line.end, |t| t.col);
                    return Err(line.err(col, "`state`", "something else"));
                }
                Some((p, line.alternatives(STATES, state_named)?))
            } else {
                None
            };
            Wait::State {
                peer,
                states,
                only_if,
            }
        }
        "returns" => Wait::Returns(peer),
        "acked" => Wait::Acked { peer },
        "sends" if line.eat("window") => {
            let z = line.take("0 (a zero window)")?;
            if z.text != "0" {
                return Err(line.err(z.col, "0 (a zero window)", found(&z)));
            }
            Wait::ZeroWindow { peer }
        }
        "sends" => Wait::Sends {
            peer,
            flags: line.alternatives("SYN, FIN, RST or window 0; flags joined by |", |f| {
                [Flag::Syn, Flag::Fin, Flag::Rst]
                    .into_iter()
                    .find(|x| x.name() == f)
            })?,
        },
        "kernel" => Wait::Kernel {
            peer,
            event: kernel_wait(line)?,
        },
        _ => return Err(line.err(what.col, WAITS, found(&what))),
    })
}

const KERNEL_WAITS: &str = "sends RST, receives RST, state S or reports ERRNO";

/// What follows `wait P kernel`: `sends RST [reason R|R]`, `receives RST`, `state S|S`, `reports ERRNO|ERRNO`.
fn kernel_wait(line: &mut Line) -> Res<KernelWait> {
    let what = line.take(KERNEL_WAITS)?;
    let rst = |line: &mut Line| -> Res<()> {
        let t = line.take("RST")?;
        if t.text != "RST" {
            return Err(line.err(
                t.col,
                "RST (the kernel's trace shows the resets it sends and receives)",
                found(&t),
            ));
        }
        Ok(())
    };
    Ok(match what.text.as_str() {
        "sends" => {
            rst(line)?;
            let reasons = if line.eat("reason") {
                reasons(line)?
            } else {
                vec![]
            };
            KernelWait::SendsReset { reasons }
        }
        "receives" => {
            rst(line)?;
            KernelWait::ReceivesReset
        }
        "state" => KernelWait::State(line.alternatives(STATES, state_named)?),
        "reports" => KernelWait::Reports(line.alternatives(
            "an errno name (ECONNRESET, EPIPE, …), or several joined by |",
            errno_named,
        )?),
        _ => return Err(line.err(what.col, KERNEL_WAITS, found(&what))),
    })
}

/// `TCP_ABORT_ON_CLOSE|TCP_STATE`: the kernel's reset reasons, by name.
fn reasons(line: &mut Line) -> Res<Vec<String>> {
    line.alternatives(
        "the kernel's reset reason (TCP_ABORT_ON_CLOSE, …), or several joined by |",
        |r| {
            (!r.is_empty()
                && r.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
            .then(|| r.to_string())
        },
    )
}

/// The errno named `name` (`ECONNRESET`), as the C library numbers it here.
pub fn errno_named(name: &str) -> Option<i32> {
    (1..200).find(|&n| errno_name(n) == name)
}

fn expect(line: &mut Line) -> Res<Expect> {
    let (peer, _) = line.peer()?;
    let what = line.take("sends, or a call (connect, recv, send, …)")?;
    let e = if what.text == "sends" {
        let none = line.eat("no");
        let f = line.take("FIN or RST")?;
        let flag = match f.text.as_str() {
            "FIN" => Flag::Fin,
            "RST" => Flag::Rst,
            _ => return Err(line.err(f.col, "FIN or RST", found(&f))),
        };
        let reasons = if !none && flag == Flag::Rst && line.eat("reason") {
            reasons(line)?
        } else {
            vec![]
        };
        Expect::Sends {
            peer,
            flag,
            none,
            reasons,
        }
    } else {
        let (name, nth) = match what.text.split_once('#') {
            Some((n, k)) => {
                let k: usize = k.parse().ok().filter(|&k| k > 0).ok_or_else(|| {
                    line.err(what.col, "a call and its number, as recv#2", found(&what))
                })?;
                (n, Some(k))
            }
            None => (what.text.as_str(), None),
        };
        let kind = CallKind::from_name(name).ok_or_else(|| {
            line.err(
                what.col,
                "sends, or a call (connect, recv, send, …)",
                found(&what),
            )
        })?;
        Expect::Returns {
            peer,
            kind,
            nth,
            want: want(line)?,
        }
    };
    line.done()?;
    Ok(e)
}

/// `= 0`, `= 3`, `= ECONNRESET|EPIPE`, `> 0`, `ok`.
fn want(line: &mut Line) -> Res<Want> {
    const WHAT: &str = "= VALUE, = ERRNO (several joined by |), > 0 or ok";
    let op = line.take(WHAT)?;
    match op.text.as_str() {
        "ok" => Ok(Want::Ok),
        ">" => {
            let z = line.take("0")?;
            if z.text != "0" {
                return Err(line.err(z.col, "0", found(&z)));
            }
            Ok(Want::Positive)
        }
        "=" => {
            let v = line.peek().cloned();
            match v.as_ref().map(|t| t.text.parse::<i64>()) {
                Some(Ok(n)) => {
                    line.next += 1;
                    Ok(Want::Ret(n))
                }
                _ => Ok(Want::Errno(line.alternatives(
                    "an errno name (ECONNRESET, EPIPE, …) or a number",
                    errno_named,
                )?)),
            }
        }
        _ => Err(line.err(op.col, WHAT, found(&op))),
    }
}
