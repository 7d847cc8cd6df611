//! JSON Lines: one object per timeline row, with stable keys.

use serde_json::{Value, json};

use crate::explain::timeline::{RowKind, Timeline};
use crate::model::calls::SocketCall;
use crate::model::calls::errno_name;
use crate::model::kernel::{KernelEventKind, reset_reason_meaning};
use crate::model::segment::preview;

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
        "t_us": us(call.t_start - t0),
        "kind": "call",
        "peer": call.peer.to_string(),
        "call": call.call,
        "t_end_us": us(call.t_end - t0),
        "ret": call.ret(),
        "errno": call.errno().map(errno_name),
        "bytes": call.data().len(),
        "data": preview(call.data(), 64),
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
                    "t_us": us(row.t - t0),
                    "kind": "segment",
                    "from": w.from.to_string(),
                    "src": s.src.to_string(),
                    "dst": s.dst.to_string(),
                    "flags": s.flags.tcpdump(),
                    "seq": w.rel_seq,
                    "ack": w.rel_ack,
                    "win": s.window,
                    "len": s.len,
                    "payload": preview(&s.payload, 64),
                    "states_after": w.states_after.map(|(a, b)| [a.to_string(), b.to_string()]),
                    "notes": w.notes,
                })
            }
            RowKind::Kernel(k) => {
                let mut v = json!({
                    "t_us": us(row.t - t0),
                    "kind": "kernel",
                    "peer": k.peer.to_string(),
                    "event": k.event.name(),
                    "text": k.text(),
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
