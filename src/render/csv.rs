//! CSV: one quoting rule for every table, and one shape for a timeline (the JSON rows, flattened).

use crate::explain::timeline::{KernelRow, RowKind, Timeline};
use crate::model::kernel::KernelEventKind;
use crate::model::segment::preview;
use crate::render::escape;
use crate::render::json::{base64, short_result};

/// A field, its control characters escaped ([`escape::text`]: a CSV is read in terminals too), quoted when it holds
/// a comma or a quote.
pub fn field(s: &str) -> String {
    let s = escape::text(s);
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A line of fields, ending in a newline.
pub fn line<S: AsRef<str>>(cells: &[S]) -> String {
    let mut out = cells
        .iter()
        .map(|c| field(c.as_ref()))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    out
}

const TIMELINE_HEADERS: [&str; 17] = [
    "t_us",
    "kind",
    "side",
    "call",
    "t_end_us",
    "ret",
    "errno",
    "state",
    "unread_before",
    "flags",
    "seq",
    "ack",
    "len",
    "data",
    "data_base64",
    "notes",
    "warnings",
];

/// A timeline as CSV (the JSON rows' keys, snake_case ASCII; `data` is the escaped preview and `data_base64` the
/// raw bytes): a line per call (with when it returned) and per segment, in time order. For segments,
/// `state` holds the inferred states after it (`A|B`) when the timeline has them. Every line's last field holds
/// the capture's `warnings` (joined by "; "), so a line read alone still says the timeline may be incomplete.
pub fn timeline(t: &Timeline, warnings: &[String]) -> String {
    let t0 = t.t0();
    let us = |ns: i64| ((ns - t0) / 1000).to_string();
    let warned = warnings.join("; ");
    let mut out = line(&TIMELINE_HEADERS);
    for row in &t.rows {
        let cells: [String; 17] = match &row.kind {
            RowKind::Call { call: c, .. } => [
                us(c.t_start),
                "call".into(),
                c.peer.to_string(),
                c.call.clone(),
                us(c.t_end),
                c.ret().to_string(),
                short_result(c),
                c.state.map(|s| s.to_string()).unwrap_or_default(),
                c.unread_before.map(|n| n.to_string()).unwrap_or_default(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                preview(c.data(), 64),
                base64(c.data()),
                String::new(),
                warned.clone(),
            ],
            RowKind::Return { .. } => continue,
            RowKind::Segment(w) => [
                us(row.t),
                "segment".into(),
                w.from.to_string(),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
                w.states_after
                    .map(|(a, b)| format!("{a}|{b}"))
                    .unwrap_or_default(),
                String::new(),
                w.segment.flags.tcpdump(),
                w.rel_seq.to_string(),
                w.rel_ack.map(|a| a.to_string()).unwrap_or_default(),
                w.segment.len.to_string(),
                preview(&w.segment.payload, 64),
                base64(&w.segment.payload),
                w.notes.join("; "),
                warned.clone(),
            ],
            RowKind::Kernel(k) => kernel_cells(k, us(row.t), warned.clone()),
        };
        out.push_str(&line(&cells));
    }
    out
}

/// A kernel row's cells: the event's name in `call`, an error's name in `errno`, a change of state in `state`
/// (`OLD→NEW`), a reset's reason in `data`, the row's words in `notes`.
fn kernel_cells(k: &KernelRow, t_us: String, warned: String) -> [String; 17] {
    let (errno, state) = match &k.event {
        KernelEventKind::ErrorReport { errno, .. } => (
            crate::model::kernel::errno_name(*errno)
                .map_or_else(|| errno.to_string(), str::to_string),
            String::new(),
        ),
        KernelEventKind::StateChange { old, new, .. } => (String::new(), format!("{old}→{new}")),
        _ => (String::new(), String::new()),
    };
    [
        t_us,
        "kernel".into(),
        k.peer.to_string(),
        k.event.name().into(),
        String::new(),
        String::new(),
        errno,
        state,
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        k.reason().unwrap_or_default().to_string(),
        String::new(),
        k.text(),
        warned,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_when_needed() {
        assert_eq!(line(&["a", "b,c", "d\"e"]), "a,\"b,c\",\"d\"\"e\"\n");
    }
}
