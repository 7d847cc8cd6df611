//! `--legend`: what every code on the screen means, printed under the output. Only the codes that the output shows
//! are explained, each once, in the order below; the words are those of docs/reading-the-timeline.md and
//! docs/analyze.md, which say more.

use crate::render::fit;

/// A code as it appears on the screen, and what it means.
struct Entry {
    /// Shown when any of these words appears in the output (split at spaces and table rules).
    words: &'static [&'static str],
    code: &'static str,
    meaning: &'static str,
}

const fn e(words: &'static [&'static str], code: &'static str, meaning: &'static str) -> Entry {
    Entry {
        words,
        code,
        meaning,
    }
}

const ENTRIES: &[Entry] = &[
    e(
        &["(µs)", "(ms)"],
        "t (µs) / t (ms)",
        "time since the first row",
    ),
    e(
        &["──▶", "◀──"],
        "──▶ / ◀──",
        "a segment from A to B / from B to A, as captured",
    ),
    e(&["[S]"], "[S]", "SYN: A asks to open the connection"),
    e(
        &["[S.]"],
        "[S.]",
        "SYN-ACK: B's kernel answers from the listen queue, before and whether or not B calls accept()",
    ),
    e(
        &["[SYN-ACK]"],
        "[SYN-ACK]",
        "B's kernel answers from the listen queue, before and whether or not B calls accept()",
    ),
    e(
        &[
            "[PSH-ACK]",
            "[FIN-ACK]",
            "[RST-ACK]",
            "[ACK]",
            "[SYN]",
            "[RST]",
        ],
        "[FIN-ACK] …",
        "the segment's TCP flags (--flags words): SYN opens, ACK acknowledges, PSH carries data, FIN finishes \
         sending, RST aborts",
    ),
    e(&["[.]"], "[.]", "ACK only: an acknowledgement without data"),
    e(&["[P.]"], "[P.]", "PSH-ACK: data"),
    e(
        &["[F.]", "[FP.]"],
        "[F.]",
        "FIN-ACK: \"I have finished sending\" (close() or shutdown(SHUT_WR))",
    ),
    e(
        &["[R.]"],
        "[R.]",
        "RST-ACK: a reset; the connection is aborted at once",
    ),
    e(
        &["[R]"],
        "[R]",
        "RST alone: a reset answering a segment for a socket that is gone",
    ),
    e(
        &["[S.E]", "[SEW]", "[.E]", "[.W]", "[R.e]", "[.e]"],
        "E W e in flags",
        "ECN letters as tcpdump prints them: E ECE, W CWR, e AE (accurate ECN)",
    ),
    e(
        &["seq"],
        "seq 1:35",
        "relative sequence numbers: this segment carries bytes 1 up to 35; a SYN is 0",
    ),
    e(
        &["ack"],
        "ack 35",
        "relative acknowledgement: everything before byte 35 arrived",
    ),
    e(&["len"], "len 34", "payload bytes in the segment"),
    e(
        &["win"],
        "win 0",
        "a zero window: the sender's receive buffer is full, its peer must stop sending (W in the history)",
    ),
    e(
        &["waiting"],
        "… waiting",
        "the call blocked; its return is the └ row further down",
    ),
    e(
        &["└"],
        "└ … returns",
        "a blocked call returned (its row above shows when it was made)",
    ),
    e(
        &["⚙"],
        "⚙",
        "the kernel's own event (tracefs): a reset sent or received, a state change, an error",
    ),
    e(
        &["⚠"],
        "⚠",
        "an inference from the packets alone, not a recorded fact",
    ),
    e(
        &[
            "[ESTABLISHED]",
            "[CLOSE]",
            "TIME_WAIT",
            "CLOSE_WAIT",
            "FIN_WAIT1",
            "SYN_SENT",
        ],
        "[CLOSE_WAIT]",
        "socket states, in the kernel's names (ss writes ESTAB, CLOSE-WAIT, FIN-WAIT-1, TIME-WAIT)",
    ),
    e(
        &["(gone)"],
        "CLOSE (gone)",
        "the kernel no longer has the socket at all",
    ),
    e(
        &[
            "(SYN_SENT |",
            "(ESTABLISHED |",
            "(CLOSE |",
            "(CLOSE_WAIT |",
            "(FIN_WAIT1 |",
        ],
        "(X | Y)",
        "analyze --conn: A's and B's states after the segment, inferred from the packets",
    ),
    e(
        &["unread"],
        "N bytes unread",
        "data the application never read when it called close()",
    ),
    e(
        &["c→s", "s→c"],
        "c→s / s→c",
        "client to server / server to client",
    ),
    e(
        &["first close"],
        "first close",
        "who closed first, and how: client/server, FIN or RST",
    ),
    e(
        &["c/s"],
        "FIN/RST c/s",
        "FIN and RST segments from the client / from the server",
    ),
    e(
        &["conn_state"],
        "conn_state",
        "Zeek's connection state (codes below)",
    ),
    e(&["S0"], "S0", "attempt seen, no reply"),
    e(&["S1"], "S1", "established, not terminated"),
    e(&["SF"], "SF", "normal establishment and termination"),
    e(&["REJ"], "REJ", "attempt rejected (RST to the SYN)"),
    e(
        &["S2"],
        "S2",
        "established, the client's close seen, no reply",
    ),
    e(
        &["S3"],
        "S3",
        "established, the server's close seen, no reply",
    ),
    e(&["RSTO"], "RSTO", "established, the client aborted (RST)"),
    e(&["RSTR"], "RSTR", "the server sent a RST"),
    e(
        &["RSTOS0"],
        "RSTOS0",
        "the client sent a SYN then a RST; no SYN-ACK",
    ),
    e(
        &["RSTRH"],
        "RSTRH",
        "the server sent a SYN-ACK then a RST; no SYN",
    ),
    e(
        &["SH"],
        "SH",
        "the client sent a SYN then a FIN; no SYN-ACK",
    ),
    e(
        &["SHR"],
        "SHR",
        "the server sent a SYN-ACK then a FIN; no SYN",
    ),
    e(&["OTH"], "OTH", "no SYN seen: midstream traffic"),
    e(
        &["history"],
        "history ShADar",
        "Zeek's letters, upper case from the client, lower from the server: s SYN, h SYN-ACK, a ACK, d data, \
         f FIN, r RST, t retransmission, g content gap (bytes never captured), w zero window, i FIN+RST, q SYN with FIN or RST, ^ roles flipped; \
         cut at 29 letters with + (ours; Zeek does not cut)",
    ),
];

/// The legend of `shown` (the output as printed, or its start), fitted to `room`; empty when nothing in it needs
/// explaining.
pub fn legend(shown: &str, room: Option<usize>) -> String {
    let rule = |c: char| c.is_whitespace() || "│┆┌┐└┘├┤╞╪╡═─┬┴┼,".contains(c) && c != '└';
    let words: std::collections::HashSet<&str> =
        shown.split(rule).filter(|w| !w.is_empty()).collect();
    // a code of letters must stand alone (RSTR is not RSTRH); one with marks may sit inside a word ([S.] in a
    // ladder's arrow)
    let plain = |w: &str| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let has = |w: &str| words.contains(w) || (!plain(w) && shown.contains(w));
    let mut out = String::new();
    for entry in ENTRIES.iter().filter(|e| e.words.iter().any(|w| has(w))) {
        let line = format!("{:<16} {}", entry.code, entry.meaning);
        out.push_str(&fit::wrap(&line, room, "  ", &" ".repeat(19)));
    }
    if out.is_empty() {
        return out;
    }
    format!("\nLegend (docs/reading-the-timeline.md and docs/analyze.md say more):\n{out}")
}

/// What each field of `watch`'s line means, in the line's order.
const WATCH_FIELDS: &[(&str, &str)] = &[
    (
        "12:00:00.123456",
        "when the connection ended (UTC), from its last segment",
    ),
    ("#0", "the connection's number in this watch"),
    (
        "A → B",
        "client (who sent the SYN) → server, each with the process that holds its socket",
    ),
    (
        "cmd[pid]",
        "the process holding that end; \"(holds the listener; inferred)\": its socket was gone, this process holds the listener of its port",
    ),
    (
        "client FIN",
        "first close: which side closed first, and how (FIN or RST)",
    ),
    (
        "11↑ 0↓ bytes",
        "payload bytes client → server ↑ and server → client ↓, by sequence numbers (Zeek's orig_bytes, resp_bytes)",
    ),
    ("0.002819 s", "from the first segment to the last"),
    (
        "[open]",
        "after the ending: the connection was still open when the watch stopped ([expired (idle)]: no segment for --idle-timeout; [ended (4-tuple reused)]: a new connection took its addresses)",
    ),
    (
        "— why",
        "the cause, from the kernel's reset reason and errno when it was traced",
    ),
];

/// `watch --legend`: its line's fields, then every conn_state code a line may show — printed before the first
/// line, since nothing is on the screen yet.
pub fn watch_legend(room: Option<usize>) -> String {
    let mut out = String::from("Legend of each line (docs/watch.md says more):\n");
    for (code, meaning) in WATCH_FIELDS {
        let line = format!("{code:<16} {meaning}");
        out.push_str(&fit::wrap(&line, room, "  ", &" ".repeat(19)));
    }
    let states = "conn_state S0 S1 SF REJ S2 S3 RSTO RSTR RSTOS0 RSTRH SH SHR OTH";
    let codes = legend(states, room);
    out.push_str(codes.split_once(":\n").map_or("", |(_, rest)| rest));
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::legend;

    #[test]
    fn explains_only_what_is_shown() {
        let l = legend(
            "│ 0 ┆ ◀── [S.] seq 0 ack 1 len 0 ┆ RSTR ShADar history",
            Some(100),
        );
        assert!(l.contains("[S.]") && l.contains("listen queue"), "{l}");
        assert!(l.contains("RSTR"), "{l}");
        assert!(!l.contains("[F.]") && !l.contains("REJ"), "{l}");
        assert_eq!(legend("nothing to explain", None), "");
    }

    #[test]
    fn watch_legend_names_every_conn_state_and_fits() {
        let l = super::watch_legend(Some(80));
        for code in [
            "S0", "SF", "REJ", "RSTO", "RSTR", "RSTOS0", "RSTRH", "SH", "SHR", "OTH", "↑", "#0",
        ] {
            assert!(
                l.split_whitespace().any(|w| w == code || w.contains(code)),
                "{code}: {l}"
            );
        }
        assert!(l.lines().all(|x| crate::render::fit::width(x) <= 80), "{l}");
    }
}
