//! JSON Lines: one object per timeline row, with stable keys. Every object of every view carries `schema` (the
//! version of the key sets docs/output.md lists, [`SCHEMA`]) and `kind` (which key set it has); the two ends are
//! `side` "A" (the client, Zeek's orig) and "B" (the server, Zeek's resp).

use serde_json::{Value, json};

use crate::explain::timeline::{RowKind, Timeline};
use crate::model::calls::SocketCall;
use crate::model::calls::errno_name;
use crate::model::kernel::{KernelEventKind, reset_reason_meaning};
use crate::model::segment::preview;

/// The version of the JSON key sets (docs/output.md); it changes when a key is renamed or removed.
pub const SCHEMA: u32 = 1;

/// Bytes as standard base64 (RFC 4648, with padding): the raw payload beside its escaped preview.
pub fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * k) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn us(ns: i64) -> i64 {
    ns / 1000
}

/// A call's errno name, or empty when it succeeded.
pub fn short_result(call: &SocketCall) -> String {
    call.errno().map(errno_name).unwrap_or_default()
}

/// A call as a JSON object; times relative to `t0`.
pub fn call_json(call: &SocketCall, t0: i64) -> Value {
    json!({
        "schema": SCHEMA,
        "t_us": us(call.t_start - t0),
        "kind": "call",
        "side": call.peer.to_string(),
        "call": call.call,
        "t_end_us": us(call.t_end - t0),
        "ret": call.ret(),
        "errno": call.errno().map(errno_name),
        "bytes": call.data().len(),
        "data": preview(call.data(), 64),
        "data_base64": base64(call.data()),
        "state": call.state.map(|s| s.to_string()),
        "unread_before": call.unread_before,
    })
}

/// The timeline as JSON Lines. A blocked call is one object (it carries `t_end_us`), not two. Every object carries
/// the capture's `warnings` (an empty array when there are none), so a row read alone still says the timeline may
/// be incomplete.
pub fn timeline_json(t: &Timeline, warnings: &[String]) -> String {
    let t0 = t.t0();
    let mut out = String::new();
    for row in &t.rows {
        let mut v = match &row.kind {
            RowKind::Call { call, .. } => call_json(call, t0),
            RowKind::Return { .. } => continue,
            RowKind::Segment(w) => {
                let s = &w.segment;
                json!({
                    "schema": SCHEMA,
                    "t_us": us(row.t - t0),
                    "kind": "segment",
                    "side": w.from.to_string(),
                    "src": s.src.to_string(),
                    "dst": s.dst.to_string(),
                    "flags": s.flags.tcpdump(),
                    "seq": w.rel_seq,
                    "ack": w.rel_ack,
                    "win": s.window,
                    "len": s.len,
                    "payload": preview(&s.payload, 64),
                    "payload_base64": base64(&s.payload),
                    "states_after": w.states_after.map(|(a, b)| [a.to_string(), b.to_string()]),
                    "notes": w.notes,
                })
            }
            RowKind::Kernel(k) => {
                let mut v = json!({
                    "schema": SCHEMA,
                    "t_us": us(row.t - t0),
                    "kind": "kernel",
                    "side": k.peer.to_string(),
                    "event": k.event.name(),
                    "text": k.text(),
                    // one closed key set for every event: what an event does not have is null
                    "reason": null,
                    "meaning": null,
                    "state": null,
                    "old": null,
                    "new": null,
                    "errno": null,
                });
                match &k.event {
                    KernelEventKind::SendReset { reason, state, .. } => {
                        v["reason"] = reason.as_str().into();
                        v["meaning"] = reset_reason_meaning(reason).into();
                        v["state"] = state.map(|s| s.to_string()).into();
                    }
                    KernelEventKind::ReceiveReset { .. } => {}
                    KernelEventKind::StateChange { old, new, .. } => {
                        v["old"] = old.to_string().into();
                        v["new"] = new.to_string().into();
                    }
                    KernelEventKind::ErrorReport { errno, .. } => {
                        v["errno"] = crate::model::kernel::errno_name(*errno)
                            .map_or_else(|| errno.to_string(), str::to_string)
                            .into();
                    }
                }
                v
            }
        };
        v["warnings"] = warnings.into();
        out.push_str(&v.to_string());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_as_rfc_4648_tests_it() {
        // RFC 4648 section 10
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded);
        }
        assert_eq!(base64(&[0xff, 0x00, 0x80]), "/wCA");
    }
}
