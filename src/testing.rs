//! Builders for tests: a pair of addresses, segments between them and socket calls, so tests state only what
//! they are about; every view of a capture the printers make, and whether it is safe where it goes (the printers'
//! fuzzing). Not part of the tool's interface.

use std::collections::HashSet;
use std::net::SocketAddr;

use crate::capfile::CaptureReader;
use crate::explain::timeline::{self, Sides, States, Timeline};
use crate::model::calls::{CallKind, Outcome, Peer, SocketCall};
use crate::model::segment::{Segment, SeqNumber, TcpFlags, TimestampNs};
use crate::pipeline::{analyze, tell};
use crate::render::printer::ConnView;
use crate::render::run::RunView;
use crate::render::{RowsPrinter, Style, TimelineFormat, TimelinePrinter, escape};
use crate::track::report::FileReport;
use crate::track::select::Selection;

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
        ip_len: plain_ip_len(src, payload.len() as u32),
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
    let mut seg = Segment {
        ts,
        src: src.parse().expect("test address"),
        dst: dst.parse().expect("test address"),
        flags: TcpFlags(flags),
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        window: 100,
        len,
        payload: Vec::new(),
        ip_len: 0,
    };
    seg.ip_len = plain_ip_len(seg.src, len);
    seg
}

/// The IP length of a test segment: IP and TCP headers without options (20 + 20 bytes, or 40 + 20 for IPv6)
/// and the payload.
fn plain_ip_len(src: SocketAddr, payload: u32) -> u32 {
    let ip_header = if src.is_ipv4() { 20 } else { 40 };
    ip_header + 20 + payload
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

/// Every timeline format, in `--format`'s order.
pub const FORMATS: [TimelineFormat; 7] = [
    TimelineFormat::Table,
    TimelineFormat::Markdown,
    TimelineFormat::Json,
    TimelineFormat::Csv,
    TimelineFormat::Ladder,
    TimelineFormat::Svg,
    TimelineFormat::Mermaid,
];

/// One thing a printer wrote, and what was asked of it.
pub struct View {
    pub format: TimelineFormat,
    pub color: bool,
    /// `run`, `summary`, `comparison` or `connection`.
    pub what: &'static str,
    pub text: String,
}

fn written(write: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    // writing to memory does not fail
    let _ = write(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A [`crate::pipeline::Feedback`] that keeps the notes a command made, for tests to read.
#[derive(Debug, Default)]
pub struct Notes(pub Vec<String>);

impl crate::pipeline::Feedback for Notes {
    fn note(&mut self, line: &str) {
        self.0.push(line.to_string());
    }
}

/// A copy of `bin` in `dir` carrying only `cap_net_raw` in its file capabilities (the README's `setcap
/// cap_net_raw=eip` route), runnable by any user: `dir` is made world-readable. Needs root and `setcap`.
pub fn setcap_copy(bin: &std::path::Path, dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).expect("the copy's folder can be made");
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the folder");
    let copy = dir.join("tcp-close-watch");
    std::fs::copy(bin, &copy).expect("the binary can be copied");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
        .expect("chmod the copy");
    let set = std::process::Command::new("setcap")
        .arg("cap_net_raw=eip")
        .arg(&copy)
        .status()
        .expect("setcap runs");
    assert!(set.success(), "setcap cap_net_raw=eip {}", copy.display());
    copy
}

/// Every view `analyze` prints of capture `bytes` named `name`, made in memory the way the command makes them:
/// the saved run (or the summary), the comparison of the run with itself, connections 0 and 1, in every format,
/// and the terminal tables in colour too. For the printers' fuzzing (tests/fuzz_printers.rs, fuzz/).
pub fn every_view(name: &str, bytes: Vec<u8>) -> Vec<View> {
    let keep: HashSet<u32> = [0, 1].into_iter().collect();
    let r = analyze::analyze(
        name,
        CaptureReader::from_bytes(bytes),
        &keep,
        None,
        &mut |_, _| {},
    );
    let run = r.saved_run.as_ref().and_then(|s| {
        let t = analyze::saved_timeline(&r)?;
        let told = tell(&s.pair, &t, &s.kernel);
        Some((s, t, told))
    });
    let timelines: Vec<(usize, Timeline)> = (0..r.conns.len().min(2))
        .map(|id| (id, conn_timeline(&r, id)))
        .collect();
    let asks = FORMATS
        .into_iter()
        .map(|f| (f, false))
        .chain([(TimelineFormat::Table, true)]);
    let mut views = Vec::new();
    for (format, color) in asks {
        let style = Style {
            color,
            width: color.then_some(120),
        };
        let mut view = |what, text| {
            views.push(View {
                format,
                color,
                what,
                text,
            })
        };
        let timeline = TimelinePrinter::new(format, style);
        if let Some((s, t, told)) = &run {
            let v = RunView {
                pair: &s.pair,
                timeline: t,
                kernel: &s.kernel,
                warnings: &[],
                account: &told.account,
                outcome: &told.outcome,
                saved_in: Some(name),
            };
            view("run", written(|o| timeline.run(o, &v)));
        }
        if let Some(rows) = format.rows() {
            let mut printer = RowsPrinter::new(rows, style);
            let shown = analyze::shown(&r, &Selection::default());
            view("summary", written(|o| printer.summary(o, &shown)));
            if let Some((_, _, told)) = &run {
                let both: [crate::render::compare::Compared; 2] =
                    [told.outcome.clone().into(), told.outcome.clone().into()];
                view(
                    "comparison",
                    written(|o| printer.comparison(o, &both, "Saved runs")),
                );
            }
        }
        for (id, t) in &timelines {
            let account = crate::explain::account::account(t, &[]);
            let v = ConnView {
                file: name,
                conn: &r.conns[*id],
                timeline: t,
                account: &account,
            };
            view("connection", written(|o| timeline.connection(o, &v)));
        }
    }
    views
}

/// Connection `id`'s timeline as `analyze --conn` makes it: states inferred, with the saved run's calls when it is
/// the run's own connection.
fn conn_timeline(r: &FileReport, id: usize) -> Timeline {
    let c = &r.conns[id];
    let sides = Sides {
        a: c.client.socket(),
        b: c.server.socket(),
        a_label: format!("client {}", c.client.socket()),
        b_label: format!("server {}", c.server.socket()),
    };
    let segs = r.kept.get(&(id as u32)).map(Vec::as_slice).unwrap_or(&[]);
    match &r.saved_run {
        Some(s) if (s.pair.a, s.pair.b) == (sides.a, sides.b) => timeline::build(
            Sides::for_pair(&s.pair),
            &s.pair.calls,
            segs,
            States::Inferred,
        ),
        _ => timeline::build(sides, &[], segs, States::Inferred),
    }
}

/// `s` without the colour codes the table printer adds itself (`ESC [ digits;… m`); any other ESC stays.
fn without_our_colours(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("\x1b[") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let n = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        if after[n..].starts_with('m') {
            rest = &after[n + 1..];
        } else {
            out.push('\x1b');
            rest = &rest[i + 1..];
        }
    }
    out.push_str(rest);
    out
}

/// Why `text`, printed in `format`, is not safe where that format goes, or `None`: a control character (but
/// `\n`, and our colour codes when `color`) in any format but JSON; a `<` in markdown but our `<br>`; in Mermaid
/// syntax we did not write; in JSON a line that does not parse. Whether an SVG parses is the caller's to check
/// (with an XML parser).
pub fn unsafe_output(format: TimelineFormat, text: &str, color: bool) -> Option<String> {
    let text = if color {
        without_our_colours(text)
    } else {
        text.to_string()
    };
    let bad_char = |s: &str| {
        s.char_indices()
            .find(|&(_, c)| c != '\n' && escape::is_unsafe(c))
            .map(|(i, c)| format!("{c:?} at {i}: {}", context(s, i)))
    };
    match format {
        TimelineFormat::Json => text.lines().find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .err()
                .map(|e| format!("not JSON ({e}): {l}"))
        }),
        TimelineFormat::Markdown => bad_char(&text).or_else(|| {
            let stripped = text.replace("<br>", "");
            stripped
                .find('<')
                .map(|i| format!("raw < in markdown: {}", context(&stripped, i)))
        }),
        TimelineFormat::Mermaid => bad_char(&text).or_else(|| mermaid_syntax(&text)),
        TimelineFormat::Table
        | TimelineFormat::Csv
        | TimelineFormat::Ladder
        | TimelineFormat::Svg => bad_char(&text),
    }
}

/// A Mermaid diagram whose every line is a statement we write, with `;`, `#`, `%` and `<` only in entity codes.
fn mermaid_syntax(text: &str) -> Option<String> {
    const OURS: [&str; 10] = [
        "sequenceDiagram",
        "    participant A as ",
        "    participant B as ",
        "    Note left of A: ",
        "    Note right of B: ",
        "    rect rgb(",
        "    end",
        "    A->>B: ",
        "    B->>A: ",
        "    A-xB: ",
    ];
    for line in text.lines() {
        let more = ["    B-xA: ", "    title ", "    Note over A,B: "];
        if !OURS.iter().chain(&more).any(|s| line.starts_with(s)) {
            return Some(format!("not one of our statements: {line:?}"));
        }
        let mut plain = line.to_string();
        for code in ["#35;", "#59;", "#37;", "#lt;", "#gt;"] {
            plain = plain.replace(code, "");
        }
        if plain.contains(['#', ';', '%', '<']) {
            return Some(format!("Mermaid syntax from the data: {line:?}"));
        }
    }
    None
}

fn context(s: &str, i: usize) -> String {
    let start = s.floor_char_boundary(i.saturating_sub(40));
    let end = s.ceil_char_boundary((i + 40).min(s.len()));
    format!("…{:?}…", &s[start..end])
}

/// `--format json`'s closed key sets, `kind` → keys, read from docs/output.md: each `### \`kind\`` heading under
/// "JSON Lines" and the backticked first cells of the table below it.
pub fn documented_json_keys()
-> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/output.md"))
        .expect("docs/output.md");
    let json = &doc[doc.find("## JSON Lines").expect("a JSON Lines section")..];
    let json = &json[..json[3..].find("\n## ").map_or(json.len(), |i| i + 3)];
    let mut kinds = std::collections::BTreeMap::new();
    let mut current: Option<String> = None;
    for line in json.lines() {
        if let Some(kind) = line.strip_prefix("### `").and_then(|l| l.strip_suffix('`')) {
            current = Some(kind.to_string());
            kinds.insert(kind.to_string(), std::collections::BTreeSet::new());
        } else if let (Some(k), Some(cell)) = (&current, line.strip_prefix("| `")) {
            let key = cell.split('`').next().unwrap_or_default().to_string();
            kinds.entry(k.clone()).or_default().insert(key);
        }
    }
    kinds
}

/// A file of the public corpus (`../shared/corpus/pcaps/NAME`), or `None` after the loud `SKIPPED` line saying
/// which test (`who`) could not run without it.
pub fn corpus_file(name: &str, who: &str) -> Option<std::path::PathBuf> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/corpus/pcaps")
        .join(name);
    if path.is_file() {
        Some(path)
    } else {
        skip(&format!("{who}: {} is missing", path.display()));
        None
    }
}

/// Runs of the pair played side by side in one process (the live tests) must take turns. A run forks helpers (the
/// tracefs instance's remover); a child holds a copy of every descriptor the process has until its exec closes
/// them, so a socket another thread close()s in that instant is not yet closed: B's close() with unread data then
/// sends no RST at once, and A's close() can overtake it (seen: shutdown's RST missing from 1 run in a few
/// hundred). The tool itself forks before any socket of the pair exists: only tests meet it.
pub fn one_run_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static PLAYING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    PLAYING.lock().unwrap_or_else(|e| e.into_inner())
}

/// A connection to listener `l` on this machine: (the connecting end, the accepted end).
pub fn accepted(l: &std::net::TcpListener) -> (std::net::TcpStream, std::net::TcpStream) {
    let client = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (server, _) = l.accept().unwrap();
    (client, server)
}
