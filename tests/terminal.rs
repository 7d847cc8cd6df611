//! What a terminal shows. Every text output fits the width it is given (`--width N`, or `COLUMNS` when piped) and
//! breaks lines only between words: properties checked at 80 and 120 columns on the saved runs and a plain capture,
//! not frozen text. Colours are ones that read on white and on black (scripts/screenshots.sh renders both).

use std::collections::BTreeSet;
use std::process::{Command, Output};

use tcp_close_watch::capfile::write::PcapWriter;
use tcp_close_watch::capfile::{CaptureReader, Endian};
use tcp_close_watch::wire::link::LinkType;
use unicode_width::UnicodeWidthStr;

fn tcw(args: &[&str], columns: Option<&str>) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"));
    c.args(args).env_remove("COLUMNS");
    if let Some(cols) = columns {
        c.env("COLUMNS", cols);
    }
    let o = c.output().expect("binary runs");
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn text(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("UTF-8")
}

/// The words of a text output, without the table's frame and the ladder's arrows.
fn words(s: &str) -> BTreeSet<String> {
    let frame = |c: char| "│┆┌┐└┘├┤╞╪╡═─┬┴┼|-=.`'<>".contains(c);
    s.split_whitespace()
        .map(|w| w.trim_matches(frame).to_string())
        .filter(|w| !w.is_empty())
        .collect()
}

/// Words a fitted layout adds: the narrow table's column names, and the line saying which columns were left out.
fn layout_words(width: usize) -> BTreeSet<String> {
    let note = format!(
        "at what (left out to fit {width} columns: --width 0, -f markdown or -f csv shows all) ;"
    );
    let mut w = words(&note);
    for h in tcp_close_watch::render::summary::HEADERS {
        w.extend(words(&format!("{h},")));
        w.extend(words(&format!("{h};")));
        w.extend(words(h));
    }
    for h in tcp_close_watch::render::compare::DROP_ORDER {
        w.extend(words(&format!("{h},")));
        w.extend(words(&format!("{h};")));
    }
    w
}

/// `narrow` fits `width` columns, and each of its words is a word of `wide` (the same output without a limit): no
/// word was cut in two.
fn fits(what: &str, narrow: &str, wide: &str, width: usize) {
    for line in narrow.lines() {
        assert!(
            line.width() <= width,
            "{what} at {width}: a line of {} columns:\n{line}\n\n{narrow}",
            line.width()
        );
    }
    let wide = words(wide);
    let allowed = layout_words(width);
    for w in words(narrow) {
        assert!(
            wide.contains(&w) || allowed.contains(&w),
            "{what} at {width}: {w:?} is not a word of the unlimited output (cut?)\n{narrow}"
        );
    }
}

fn captures(name: &str) -> String {
    format!("{}/captures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// The outputs checked: a saved run, the comparison of every saved run, one connection as a table and as a
/// ladder, and the summary of a plain capture (made here: the saved runs without their comments are not at hand).
fn cases() -> Vec<(&'static str, Vec<String>)> {
    let all: Vec<String> = std::fs::read_dir(format!("{}/captures", env!("CARGO_MANIFEST_DIR")))
        .expect("captures/")
        .filter_map(|e| e.ok())
        .map(|e| e.path().to_string_lossy().into_owned())
        .filter(|p| p.ends_with(".pcapng"))
        .collect();
    let one = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut comparison = vec!["analyze".to_string()];
    comparison.extend(all);
    vec![
        (
            "a saved run",
            one(&["analyze", &captures("shutdown.pcapng")]),
        ),
        ("the comparison", comparison),
        (
            "a connection's table",
            one(&["analyze", &captures("abrupt.pcapng"), "--conn", "0"]),
        ),
        (
            "a connection's ladder",
            one(&[
                "analyze",
                &captures("write-after-close.pcapng"),
                "--conn",
                "0",
                "-f",
                "ladder",
            ]),
        ),
        (
            "a legend",
            one(&[
                "analyze",
                &captures("abrupt.pcapng"),
                "--conn",
                "0",
                "--legend",
            ]),
        ),
        (
            "a run's ladder",
            one(&["analyze", &captures("primes-bad.pcapng"), "-f", "ladder"]),
        ),
    ]
}

#[test]
fn every_text_output_fits_80_and_120_columns_without_cutting_a_word() {
    for (what, args) in cases() {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let wide = text(&tcw(&[&args[..], &["--width", "0"]].concat(), None));
        for width in [80, 120] {
            let w = width.to_string();
            let narrow = text(&tcw(&[&args[..], &["--width", &w]].concat(), None));
            fits(what, &narrow, &wide, width);
        }
    }
}

#[test]
fn a_pipe_follows_columns_and_width_0_has_no_limit() {
    let args = ["analyze", &captures("abrupt.pcapng"), "--conn", "0"];
    let piped = text(&tcw(&args, Some("80")));
    let asked = text(&tcw(&[&args[..], &["--width", "80"]].concat(), None));
    assert_eq!(piped, asked, "COLUMNS=80 when piped is --width 80");
    let unlimited = text(&tcw(&args, None));
    assert!(
        unlimited.lines().any(|l| l.width() > 120),
        "without COLUMNS or --width, a pipe gets whole lines"
    );
    // --width wins over COLUMNS
    let both = text(&tcw(&[&args[..], &["--width", "0"]].concat(), Some("80")));
    assert_eq!(both, unlimited);
}

#[test]
fn a_plain_capture_has_no_empty_call_columns_and_its_summary_fits() {
    // a saved run read as a plain capture: its frames without the pair's calls
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.pcap");
    let mut reader = CaptureReader::open(&captures("abrupt.pcapng")).unwrap();
    let mut writer: Option<PcapWriter> = None;
    while let Some(f) = reader.next_frame().unwrap() {
        // saved runs are captured on lo, as Ethernet (LINKTYPE 1)
        let link = 1;
        assert_eq!(f.link.ok(), LinkType::from_number(link));
        writer
            .get_or_insert_with(|| PcapWriter::new(Endian::Little, true, 65535, link))
            .record(f.ts, f.data, f.orig_len);
    }
    std::fs::write(&plain, writer.unwrap().into_bytes()).unwrap();
    let p = plain.to_string_lossy().into_owned();
    let wide_summary = text(&tcw(&["analyze", &p, "--width", "0"], None));
    for width in [80usize, 120] {
        let w = width.to_string();
        let narrow = text(&tcw(&["analyze", &p, "--width", &w], None));
        fits("a plain capture's summary", &narrow, &wide_summary, width);
    }
    let conn = text(&tcw(&["analyze", &p, "--conn", "0", "--width", "0"], None));
    let header = conn.lines().nth(2).expect("a table header");
    assert!(header.contains("wire"), "{conn}");
    assert!(
        !header.contains("A (") && !header.contains("B ("),
        "no column for calls a plain capture cannot have:\n{conn}"
    );
}

#[test]
fn fin_and_rst_rows_use_colours_that_read_on_white_and_on_black() {
    let o = tcw(
        &[
            "analyze",
            &captures("shutdown.pcapng"),
            "--color",
            "always",
            "--width",
            "0",
        ],
        None,
    );
    let t = text(&o);
    let fin = t.lines().find(|l| l.contains("[F.]")).expect("the FIN row");
    let rst = t.lines().find(|l| l.contains("[R.]")).expect("the RST row");
    // xterm 30 (#008787) and 160 (#d70000): about 4.5:1 on both backgrounds; never a bright named colour, which
    // the terminal's palette decides (bright cyan, 14 or 96, vanishes on white)
    assert!(fin.contains("38;5;30"), "{fin:?}");
    assert!(rst.contains("38;5;160"), "{rst:?}");
    for bright in ["38;5;14m", "[96m", "[36m", "[91m", "38;5;9m"] {
        assert!(!t.contains(bright), "{bright} in\n{t}");
    }
}

/// The output of `analyze ARGS` whatever its exit code (damaged corpus files end with 3, files without TCP
/// with 1 and no output).
fn analyze_any(args: &[&str]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_tcp-close-watch"))
        .arg("analyze")
        .args(args)
        .env_remove("COLUMNS")
        .output()
        .expect("binary runs");
    String::from_utf8(o.stdout).expect("UTF-8")
}

/// Every public corpus file and every saved run, summarised and as its first connection, fits 80 and 120
/// columns; no word is cut but a path, after a `/` (docs/output.md); and every client and server address is
/// printed whole, however long (IPv6), never shortened.
#[test]
fn every_corpus_file_and_capture_fits_80_and_120_columns_with_its_addresses_whole() {
    let mut files: Vec<String> = Vec::new();
    let corpus = format!("{}/../shared/corpus/pcaps", env!("CARGO_MANIFEST_DIR"));
    match std::fs::read_dir(&corpus) {
        Ok(dir) => files.extend(
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().display().to_string()),
        ),
        Err(_) => tcp_close_watch::testing::skip(&format!("{corpus} is missing")),
    }
    let captures = format!("{}/captures", env!("CARGO_MANIFEST_DIR"));
    files.extend(
        std::fs::read_dir(&captures)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path().display().to_string())
            .filter(|p| p.ends_with(".pcapng")),
    );
    files.sort();
    let mut ipv6_rows = 0;
    for file in &files {
        let csv = analyze_any(&[file, "-f", "csv"]);
        // the summary's CSV (a saved run's is its timeline): file,id,a,b,…
        let summary = csv.starts_with("file,id,a,b,");
        let addresses: BTreeSet<String> = csv
            .lines()
            .filter(|l| summary && !l.starts_with("file,"))
            .flat_map(|l| {
                l.split(',')
                    .skip(2)
                    .take(2)
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        ipv6_rows += addresses.iter().filter(|a| a.starts_with('[')).count();
        for extra in [&[][..], &["--conn", "0"][..]] {
            let wide = analyze_any(&[&[file.as_str(), "--width", "0"][..], extra].concat());
            if wide.is_empty() {
                continue;
            }
            let wide_words = words(&wide);
            // a path broken after a '/': its start up to a '/', or its end from one
            let path_piece = |word: &str| {
                wide_words.iter().any(|w| {
                    (w.starts_with(word) && word.ends_with('/'))
                        || (w.ends_with(word) && w[..w.len() - word.len()].ends_with('/'))
                })
            };
            for width in [80, 120] {
                let w = width.to_string();
                let narrow = analyze_any(&[&[file.as_str(), "--width", &w][..], extra].concat());
                for line in narrow.lines() {
                    assert!(
                        line.width() <= width,
                        "{file} {extra:?} at {width}: a line of {} columns:\n{line}\n\n{narrow}",
                        line.width()
                    );
                }
                let allowed = layout_words(width);
                let narrow_words = words(&narrow);
                for word in &narrow_words {
                    assert!(
                        wide_words.contains(word) || allowed.contains(word) || path_piece(word),
                        "{file} {extra:?} at {width}: {word:?} is cut\n{narrow}"
                    );
                }
                if extra.is_empty() {
                    for a in &addresses {
                        assert!(
                            narrow_words.contains(a),
                            "{file} at {width}: {a} is not printed whole\n{narrow}"
                        );
                    }
                }
            }
        }
    }
    assert!(ipv6_rows > 0, "no IPv6 connection among the files checked");
}
