//! One connection as a JSON object (`kind` "connection", or "watched" with `watch`'s keys; docs/output.md): the
//! serde_json value, the slow oracle, and the writer that prints the same bytes without building it (the summary
//! and `watch` write one per connection, so the writer is the one they use).

use std::fmt::Write as _;
use std::net::IpAddr;

use serde_json::{Value, json};

use crate::model::time::{iso_time, push_iso_time, push_u64};
use crate::render::json;
use crate::track::conn::{Conn, Endpoint, Side};

/// `ip:port` as `SocketAddr` prints it (`[v6]:port`), without an intermediate String for IPv4.
pub(super) fn push_endpoint(out: &mut String, e: &Endpoint) {
    match e.ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            let mut ib = itoa::Buffer::new();
            out.push_str(ib.format(o[0]));
            for x in &o[1..] {
                out.push('.');
                out.push_str(ib.format(*x));
            }
            out.push(':');
            out.push_str(ib.format(e.port));
        }
        IpAddr::V6(_) => {
            let _ = write!(out, "{}", e.socket());
        }
    }
}

/// Who closed first as the JSON says it: the side ("A" the client, "B" the server) and the flag.
pub(super) fn first_close_json(c: &Conn) -> (Option<&'static str>, Option<&'static str>) {
    match c.first_close {
        Some((side, kind)) => (Some(side_letter(side)), Some(kind.name())),
        None => (None, None),
    }
}

/// A side as the JSON and CSV name it: A is the client (it sent the first SYN), B the server.
pub(super) fn side_letter(s: Side) -> &'static str {
    match s {
        Side::Client => "A",
        Side::Server => "B",
    }
}

/// One JSON object per connection (`kind` "connection", docs/output.md has its keys).
pub fn conn_json(file: &str, c: &Conn) -> Value {
    let (by, flag) = first_close_json(c);
    json!({
        "schema": json::SCHEMA,
        "kind": "connection",
        "file": file,
        "id": c.id,
        "a": c.client.socket().to_string(),
        "b": c.server.socket().to_string(),
        "conn_state": c.conn_state().code(),
        "history": c.history(),
        "fins": {"a": c.fins(Side::Client), "b": c.fins(Side::Server)},
        "rsts": {"a": c.rsts(Side::Client), "b": c.rsts(Side::Server)},
        "first_close": {"by": by, "flag": flag},
        "bytes": {"a": c.bytes(Side::Client), "b": c.bytes(Side::Server)},
        "packets": c.packets(),
        "start": iso_time(c.start),
        "duration": c.duration() as f64 / 1e9,
        "ending": c.ending().describe(),
    })
}

/// A JSON string literal, escaped by serde_json itself.
pub fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("null"),
    }
}

/// A JSON string of text that needs no escaping (digits, dots, colons, letters): quoted as is.
fn push_json_plain(out: &mut String, s: &str) {
    if s.bytes()
        .all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x7f)
    {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        push_json_str(out, s);
    }
}

/// A number as serde_json prints an f64 (its own shortest round-trip form; `null` when not finite).
fn push_json_f64(out: &mut String, x: f64) {
    let mut b = [0u8; 40];
    let mut w = &mut b[..];
    let n = match serde_json::to_writer(&mut w, &x) {
        Ok(()) => 40 - w.len(),
        Err(_) => 0,
    };
    match std::str::from_utf8(&b[..n]) {
        Ok(t) if n > 0 => out.push_str(t),
        _ => out.push_str("null"),
    }
}

/// `{"a":a,"b":b}`
fn push_json_sides(out: &mut String, a: u64, b: u64) {
    let mut ib = itoa::Buffer::new();
    out.push_str("{\"a\":");
    out.push_str(ib.format(a));
    out.push_str(",\"b\":");
    out.push_str(ib.format(b));
    out.push('}');
}

/// What `watch` adds to a connection's object (its `kind` is "watched"; docs/output.md).
pub struct WatchedKeys<'a> {
    /// Why it left the watch: `ended`, `expired (idle)`, `open`.
    pub left: &'a str,
    /// The process on the client's and on the server's end, when found.
    pub processes: &'a [Option<String>; 2],
    pub why: &'a [String],
}

/// [`conn_json`] written straight into `out`, byte for byte what serde_json prints for that value (keys in
/// sorted order, as its map keeps them), without building the value. `file` is the file name already quoted.
/// With `watched`, the object `watch` prints: its keys added in their sorted places, and `kind` "watched".
pub fn push_conn_json(out: &mut String, file: &str, c: &Conn, watched: Option<&WatchedKeys>) {
    let (by, flag) = first_close_json(c);
    // addresses and ports are digits, dots, colons, hex and brackets: nothing to escape
    out.push_str("{\"a\":\"");
    push_endpoint(out, &c.client);
    out.push_str("\",\"b\":\"");
    push_endpoint(out, &c.server);
    out.push_str("\",\"bytes\":");
    push_json_sides(out, c.bytes(Side::Client), c.bytes(Side::Server));
    out.push_str(",\"conn_state\":");
    push_json_plain(out, c.conn_state().code());
    out.push_str(",\"duration\":");
    push_json_f64(out, c.duration() as f64 / 1e9);
    if watched.is_some() {
        out.push_str(",\"end\":\"");
        push_iso_time(out, c.end);
        out.push('"');
    }
    out.push_str(",\"ending\":");
    push_json_plain(out, c.ending().text());
    out.push_str(",\"file\":");
    out.push_str(file);
    out.push_str(",\"fins\":");
    push_json_sides(
        out,
        u64::from(c.fins(Side::Client)),
        u64::from(c.fins(Side::Server)),
    );
    out.push_str(",\"first_close\":{\"by\":");
    push_json_opt(out, by);
    out.push_str(",\"flag\":");
    push_json_opt(out, flag);
    out.push_str("},\"history\":");
    push_json_plain(out, c.history());
    out.push_str(",\"id\":");
    push_u64(out, u64::from(c.id));
    match watched {
        None => out.push_str(",\"kind\":\"connection\""),
        Some(w) => {
            out.push_str(",\"kind\":\"watched\",\"left\":");
            push_json_plain(out, w.left);
        }
    }
    out.push_str(",\"packets\":");
    push_u64(out, c.packets());
    if let Some(w) = watched {
        out.push_str(",\"processes\":{\"a\":");
        push_json_opt(out, w.processes[0].as_deref());
        out.push_str(",\"b\":");
        push_json_opt(out, w.processes[1].as_deref());
        out.push('}');
    }
    out.push_str(",\"rsts\":");
    push_json_sides(
        out,
        u64::from(c.rsts(Side::Client)),
        u64::from(c.rsts(Side::Server)),
    );
    out.push_str(",\"schema\":");
    push_u64(out, u64::from(json::SCHEMA));
    out.push_str(",\"start\":\"");
    push_iso_time(out, c.start);
    out.push('"');
    if let Some(w) = watched {
        out.push_str(",\"why\":");
        push_json_strs(out, w.why);
    }
    out.push('}');
}

/// A JSON array of strings.
fn push_json_strs(out: &mut String, v: &[String]) {
    out.push('[');
    for (i, line) in v.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(out, line);
    }
    out.push(']');
}

/// A JSON string, or `null`.
fn push_json_opt(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => push_json_plain(out, s),
        None => out.push_str("null"),
    }
}
