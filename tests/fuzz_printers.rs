//! Nothing a capture file holds may drive the reader's terminal or turn into markup: crafted saved runs (ESC
//! sequences, HTML, Markdown and Mermaid syntax in the call text, the kernel string, the payloads and the file's
//! name) and a few thousand mutated captures go through `analyze` and every printer, in process. What each format
//! must be:
//! - table, markdown, CSV, ladder, Mermaid: no control character but `\n` (and, with colour, our own SGR codes);
//! - markdown: no `<` but our `<br>`; Mermaid: its syntax only where we put it;
//! - SVG: well-formed XML of our own elements only; JSON: a value per line, the data exact.
//!
//! `TCW_FUZZ_CASES` (default 2000) and `TCW_FUZZ_SEED` set the mutation run; a failing case is written to
//! `target/fuzz-failures/`. Longer runs: `just fuzz` (cargo-fuzz, target `printers`).

use std::path::{Path, PathBuf};
use std::time::Instant;

use tcp_close_watch::capfile::CaptureReader;
use tcp_close_watch::capfile::saved::{self, SavedRun};
use tcp_close_watch::model::calls::Outcome;
use tcp_close_watch::model::frame::RawFrame;
use tcp_close_watch::pipeline::{Feedback, analyze};
use tcp_close_watch::render::{RowsPrinter, Style, TimelineFormat, TimelinePrinter};
use tcp_close_watch::testing::{self, FORMATS};
use tcp_close_watch::track::select::Selection;

/// What a crafted capture carries: terminal control, HTML, XML, Markdown and Mermaid syntax.
const HOSTILE: [&str; 14] = [
    "\x1b]0;pwned\x07",
    "\x1b[2J\x1b[H",
    "\x1b[31mRED",
    "\u{9b}31m",
    "\x7f\x08\r",
    "<script>alert(1)</script>",
    "]]><![CDATA[",
    "| **bold** | _it_ `code` ~~s~~",
    "[link](http://x) ![i](y) &lt;b&gt;",
    "a;b#c %%{init: {}}%% -->",
    "\nNote left of A: injected\nA->>B: forged",
    "\u{202e}fdp.exe",
    "\u{fffe}\u{0}",
    "\t\x1bP+q\x1b\\",
];

fn captures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// Notes are the binary's to escape where it writes them to standard error (checked on the binary below): dropped
/// here.
struct Quiet;

impl Feedback for Quiet {
    fn note(&mut self, _line: &str) {}
}

/// What `analyze FILES [--conn …] --format F` prints (an error ends the output; it is not what is tested).
fn printed(files: &[&Path], format: TimelineFormat, conns: &[u32], color: bool) -> String {
    let style = Style {
        color,
        width: color.then_some(120),
    };
    let config = analyze::Config {
        files: files
            .iter()
            .map(|p| p.to_str().expect("names are UTF-8").to_string())
            .collect(),
        conns: conns.to_vec(),
        every: false,
        selection: Selection::default(),
        bpf: None,
        timeline: TimelinePrinter::new(format, style),
        rows: format.rows().map(|r| RowsPrinter::new(r, style)),
        drop_privileges: false,
    };
    let mut out = Vec::new();
    let _ = analyze::run(config, &mut out, &mut Quiet);
    String::from_utf8(out).expect("printers write UTF-8")
}

/// Every format of `analyze` for `files` (the real command, reading the files from disk): the files as a whole,
/// connection 0 and 1 of the first, and the table in colour. The first unsafe output found, with what was asked.
fn check_every_printer(files: &[&Path]) -> Option<String> {
    let asks: [(&[u32], bool); 3] = [(&[], false), (&[0], false), (&[1], false)];
    for format in FORMATS {
        for (conns, color) in asks {
            let text = printed(files, format, conns, color);
            if let Some(why) = unsafe_output(format, &text, color) {
                return Some(format!("{} --conn {conns:?}: {why}", format.name()));
            }
        }
    }
    let text = printed(files, TimelineFormat::Table, &[], true);
    unsafe_output(TimelineFormat::Table, &text, true).map(|why| format!("table in colour: {why}"))
}

/// Why `text` is not safe where `format` goes ([`testing::unsafe_output`], and every SVG must parse, with our own
/// elements only), or `None`.
fn unsafe_output(format: TimelineFormat, text: &str, color: bool) -> Option<String> {
    testing::unsafe_output(format, text, color).or_else(|| {
        if format != TimelineFormat::Svg {
            return None;
        }
        // a picture per connection asked for, one after the other
        text.split_inclusive("</svg>\n")
            .find_map(|doc| match roxmltree::Document::parse(doc) {
                Err(e) => Some(format!("SVG does not parse: {e}")),
                Ok(doc) => doc
                    .descendants()
                    .filter(|n| n.is_element())
                    .map(|n| n.tag_name().name())
                    .find(|t| {
                        !["svg", "defs", "marker", "path", "rect", "text", "line"].contains(t)
                    })
                    .map(|t| format!("SVG has an element of the data's: <{t}>")),
            })
    })
}

/// The views of [`check_every_printer`], made in memory ([`testing::every_view`]), so that thousands of inputs
/// cost seconds (reading a file from disk sets up buffers for gigabytes).
fn check_every_printer_in_memory(name: &str, bytes: Vec<u8>) -> Option<String> {
    testing::every_view(name, bytes).into_iter().find_map(|v| {
        unsafe_output(v.format, &v.text, v.color).map(|why| {
            format!(
                "{} of {} (colour {}): {why}",
                v.format.name(),
                v.what,
                v.color
            )
        })
    })
}

/// A saved run's parts: the run and its frames (with their link type), to be changed and written again.
struct Parts {
    run: SavedRun,
    frames: Vec<RawFrame>,
    link: u32,
}

fn parts(bytes: &[u8]) -> Option<Parts> {
    let run = saved::run_in_bytes(bytes.to_vec())?;
    let mut reader = CaptureReader::from_bytes(bytes.to_vec()).ok()?;
    let mut frames = Vec::new();
    let mut link = 1;
    while let Ok(Some(f)) = reader.next_frame() {
        link = f.link.map_or_else(|n| n, |l| l.number());
        frames.push(RawFrame {
            ts: f.ts,
            data: f.data.to_vec(),
            orig_len: f.orig_len,
        });
    }
    Some(Parts { run, frames, link })
}

fn write(p: &Parts) -> Vec<u8> {
    saved::pcapng(&p.run.pair, &p.run.kernel, &p.frames, p.link)
}

/// Replace every occurrence of `from` in the frames' bytes by `to` (the same length).
fn replace_in_frames(frames: &mut [RawFrame], from: &[u8], to: &[u8]) {
    assert_eq!(from.len(), to.len());
    for f in frames {
        let mut i = 0;
        while i + from.len() <= f.data.len() {
            if &f.data[i..i + from.len()] == from {
                f.data[i..i + from.len()].copy_from_slice(to);
                i += from.len();
            } else {
                i += 1;
            }
        }
    }
}

/// captures/abrupt.pcapng with every string it carries made hostile: the kernel, each call's text and data, the
/// payload on the wire.
fn crafted() -> Vec<u8> {
    let bytes = std::fs::read(captures().join("abrupt.pcapng")).unwrap();
    let mut p = parts(&bytes).expect("abrupt.pcapng is a saved run");
    p.run.kernel = format!("Linux 6.18 {}", HOSTILE.concat());
    for (i, c) in p.run.pair.calls.iter_mut().enumerate() {
        c.call = format!("{}{}", c.call, HOSTILE[i % HOSTILE.len()]);
        if let Outcome::Ok { data, .. } = &mut c.outcome {
            data.extend_from_slice(HOSTILE[(i + 5) % HOSTILE.len()].as_bytes());
        }
    }
    let hello = b"Hello B! Please read all of this.\n";
    let evil = b"<b>|**\x1b]0;x\x07`_~[a](b)\x1b[2J;#%<>&\x9b\x7f\n";
    assert_eq!(hello.len(), evil.len());
    replace_in_frames(&mut p.frames, hello, evil);
    write(&p)
}

/// A file name as hostile as a name can be on Linux (anything but `/` and NUL).
const HOSTILE_NAME: &str = "run\x1b]0;pwned\x07\x1b[2J<b>|*_`;#%\u{9b}\u{202e}.pcapng";

#[test]
fn crafted_saved_runs_reach_no_terminal_and_make_no_markup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(HOSTILE_NAME);
    std::fs::write(&path, crafted()).unwrap();
    let other = dir.path().join("drain\x1b[31m.pcapng");
    std::fs::copy(captures().join("drain.pcapng"), &other).unwrap();
    // the crafted run reads back: the strings reach the printers
    let table = printed(&[&path], TimelineFormat::Table, &[], false);
    assert!(table.contains("\\x1b]0;pwned\\x07"), "{table}");
    assert!(table.contains("a tcp-close-watch run"), "{table}");
    for files in [vec![path.as_path()], vec![path.as_path(), other.as_path()]] {
        if let Some(why) = check_every_printer(&files) {
            panic!("{why}");
        }
    }
    // JSON is escaped by serde_json, and carries the data exactly
    let json = printed(&[&path], TimelineFormat::Json, &[], false);
    let calls: Vec<String> = json
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["call"].as_str().map(str::to_string))
        .collect();
    assert!(calls.iter().any(|c| c.ends_with(HOSTILE[0])), "{calls:?}");
}

/// A small deterministic PRNG (xorshift64*), so every CI run fuzzes the same cases unless told a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// A string of hostile pieces and random characters (controls, C1, bidi, Mermaid and Markdown syntax).
fn hostile_string(rng: &mut Rng, base: &str) -> String {
    let mut s = if rng.chance(50) {
        base.to_string()
    } else {
        String::new()
    };
    for _ in 0..=rng.below(4) {
        if rng.chance(50) {
            s.push_str(HOSTILE[rng.below(HOSTILE.len())]);
        } else {
            const POOLS: [(u32, u32); 5] = [
                (0, 0x20),
                (0x7f, 0xa0),
                (0x20, 0x7f),
                (0x2028, 0x202f),
                (0x2060, 0x2070),
            ];
            let (lo, hi) = POOLS[rng.below(POOLS.len())];
            for _ in 0..=rng.below(6) {
                let c = lo + rng.below((hi - lo) as usize) as u32;
                s.extend(char::from_u32(c));
            }
        }
    }
    s
}

/// Change a saved run's strings and data (what its comment carries) and write it again.
fn mutate_run(rng: &mut Rng, p: &mut Parts) -> Vec<u8> {
    if rng.chance(50) {
        p.run.kernel = hostile_string(rng, &p.run.kernel);
    }
    let n = p.run.pair.calls.len();
    for _ in 0..=rng.below(3) {
        let Some(c) = p.run.pair.calls.get_mut(rng.below(n)) else {
            break;
        };
        c.call = hostile_string(rng, &c.call);
        if let Outcome::Ok { data, .. } = &mut c.outcome
            && rng.chance(50)
        {
            data.extend_from_slice(hostile_string(rng, "").as_bytes());
        }
    }
    // the payload on the wire: a byte or a few of a frame's last bytes
    let k = rng.below(p.frames.len());
    if let Some(f) = p.frames.get_mut(k) {
        let len = f.data.len();
        for _ in 0..rng.below(4) {
            if len > 54 {
                let at = 54 + rng.below(len - 54);
                const BYTES: &[u8] = b"\x1b\x07\x9b<|*;#\n\x00";
                f.data[at] = BYTES[rng.below(BYTES.len())];
            }
        }
    }
    write(p)
}

/// Bytes as a fuzzer mutates them: bit flips, inserted and overwritten interesting bytes, a cut.
fn mutate_bytes(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    const INTERESTING: &[u8] = b"\x00\x01\x07\x1b\x7f\x80\x9b\xff<>|*;#%\"\\\n";
    for _ in 0..=rng.below(6) {
        if b.is_empty() {
            break;
        }
        let at = rng.below(b.len());
        match rng.below(5) {
            0 => b[at] ^= 1 << rng.below(8),
            1 => b[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 => b.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            3 => {
                let v = (rng.next() as u32).to_le_bytes();
                let end = (at + 4).min(b.len());
                b[at..end].copy_from_slice(&v[..end - at]);
            }
            _ => b.truncate(at.max(1)),
        }
    }
    b
}

/// The corpus of the mutation run: every saved run in captures/, and the smaller public captures of
/// ../shared/corpus when it is there.
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |dir: &Path, max: u64| {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.metadata().is_ok_and(|m| m.len() <= max))
            .filter(|p| {
                let name = p.to_string_lossy();
                name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".cap")
            })
            .collect();
        paths.sort();
        for p in paths {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    };
    add(&captures(), u64::MAX);
    add(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus/pcaps"),
        16 * 1024,
    );
    out
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn mutated_captures_through_every_printer() {
    let cases = env_number("TCW_FUZZ_CASES", 2000);
    let seed = env_number("TCW_FUZZ_SEED", 0x7463_772d_6573_6361);
    let seeds = seeds();
    let saved: Vec<Parts> = seeds.iter().filter_map(|(_, b)| parts(b)).collect();
    assert!(
        saved.len() >= 10,
        "captures/ holds a saved run of every mode"
    );
    let started = Instant::now();
    let mut rng = Rng(seed | 1);
    let (mut as_runs, mut as_runs_read) = (0, 0);
    for case in 0..cases {
        // half the cases change a saved run's strings (what reaches the printers), the rest any file's bytes
        let (origin, input) = if rng.chance(50) {
            let k = rng.below(saved.len());
            let mut p = Parts {
                run: saved[k].run.clone(),
                frames: saved[k].frames.clone(),
                link: saved[k].link,
            };
            let mut b = mutate_run(&mut rng, &mut p);
            if rng.chance(20) {
                b = mutate_bytes(&mut rng, b);
            }
            as_runs += 1;
            (format!("saved run {k}"), b)
        } else {
            let (name, b) = &seeds[rng.below(seeds.len())];
            (name.clone(), mutate_bytes(&mut rng, b.clone()))
        };
        as_runs_read += usize::from(saved::run_in_bytes(input.clone()).is_some());
        let name = if rng.chance(10) {
            HOSTILE_NAME.to_string()
        } else {
            format!("case-{case}.pcapng")
        };
        let outcome =
            std::panic::catch_unwind(|| check_every_printer_in_memory(&name, input.clone()));
        let failure = match outcome {
            Ok(None) => None,
            Ok(Some(why)) => Some(why),
            Err(_) => Some("a panic (above)".to_string()),
        };
        if let Some(why) = failure {
            let keep = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/fuzz-failures");
            let _ = std::fs::create_dir_all(&keep);
            let kept = keep.join(format!("case-{case}.pcapng"));
            let _ = std::fs::write(&kept, &input);
            panic!(
                "case {case} (seed {seed}, from {origin}, kept as {}): {why}",
                kept.display()
            );
        }
    }
    eprintln!(
        "fuzzed {cases} cases ({as_runs} mutated saved runs, {as_runs_read} of all cases read back as runs) from {} \
         seeds in {:.1} s",
        seeds.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        cases < 20 || as_runs_read * 4 > cases as usize,
        "most mutated saved runs must still read back as runs, or the printers of a run are not fuzzed"
    );
}

#[test]
fn the_binary_escapes_file_names_in_its_notes_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(HOSTILE_NAME);
    std::fs::write(&path, crafted()).unwrap();
    let missing = dir.path().join("gone\x1b]0;pwned\x07.pcap");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .arg("analyze")
        .arg(&path)
        .arg(&missing)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("gone\\x1b]0;pwned\\x07.pcap"), "{stderr}");
    for text in [&stdout, &stderr] {
        assert_eq!(
            unsafe_output(TimelineFormat::Table, text, false),
            None,
            "{text}"
        );
    }
}
