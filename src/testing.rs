//! Builders for tests: a pair of addresses, segments between them and socket calls, so tests state only what
//! they are about. Not part of the tool's interface.

use std::net::SocketAddr;

use crate::explain::timeline::Sides;
use crate::model::calls::{CallKind, Outcome, Peer, SocketCall};
use crate::model::segment::{Segment, SeqNumber, TcpFlags, TimestampNs};

/// A on 127.0.0.1:40000, B on 127.0.0.1:8080.
pub fn sides() -> Sides {
    Sides {
        a: "127.0.0.1:40000".parse().expect("literal address"),
        b: "127.0.0.1:8080".parse().expect("literal address"),
        a_label: "A".into(),
        b_label: "B".into(),
    }
}

fn addrs(from: Peer) -> (SocketAddr, SocketAddr) {
    let s = sides();
    match from {
        Peer::A => (s.a, s.b),
        Peer::B => (s.b, s.a),
    }
}

/// A segment from `from` to the other side of [`sides`].
pub fn seg(ts: TimestampNs, from: Peer, flags: u16, seq: u32, ack: u32, payload: &[u8]) -> Segment {
    let (src, dst) = addrs(from);
    Segment {
        ts,
        src,
        dst,
        flags: TcpFlags(flags),
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        window: 100,
        len: payload.len() as u32,
        payload: payload.to_vec(),
    }
}

/// A segment between two addresses written as text, with `len` payload bytes declared and none captured.
pub fn segment(
    ts: TimestampNs,
    src: &str,
    dst: &str,
    flags: u16,
    seq: u32,
    ack: u32,
    len: u32,
) -> Segment {
    Segment {
        ts,
        src: src.parse().expect("test address"),
        dst: dst.parse().expect("test address"),
        flags: TcpFlags(flags),
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        window: 100,
        len,
        payload: Vec::new(),
    }
}

/// A call `name()` of `kind` made at `t.0` that returned at `t.1`.
pub fn call(
    peer: Peer,
    kind: CallKind,
    t: (TimestampNs, TimestampNs),
    outcome: Outcome,
) -> SocketCall {
    SocketCall {
        peer,
        kind,
        call: format!("{}()", kind.name()),
        t_start: t.0,
        t_end: t.1,
        outcome,
        state: None,
        unread_before: None,
    }
}

/// A successful call that returned 0 and moved no data.
pub fn ok() -> Outcome {
    Outcome::Ok {
        ret: 0,
        data: vec![],
    }
}

/// Say loudly that a test could not run and why — straight to standard error, past the test harness's capture, so
/// it shows even when the test passes — and fail instead when TCW_NO_SKIP is set (CI sets it: there, a test that
/// cannot run is a failure).
pub fn skip(reason: &str) {
    if std::env::var_os("TCW_NO_SKIP").is_some() {
        panic!("TCW_NO_SKIP is set, but this test cannot run: {reason}");
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}
