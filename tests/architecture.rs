//! The house rules of ARCHITECTURE.md, checked on the source: each folder of `src/` is a stage that may use only the
//! stages below it, and no file or function grows past what one reader can hold.
//!
//! Read as text (every `crate::<folder>` path outside a file's `#[cfg(test)]` module), so a rule broken by a new
//! `use` line fails here with the file and the line, before anyone draws the picture.

use std::path::{Path, PathBuf};

/// The stages from the bottom up. A folder may use the folders of lower levels only; folders on one level are
/// strangers to each other.
const LAYERS: &[(&str, u8)] = &[
    ("model", 0),
    ("wire", 1),
    ("capfile", 2),
    ("os", 2),
    ("scenario", 3),
    ("track", 4),
    ("explain", 5),
    ("render", 6),
    ("pipeline", 7),
];

fn level(folder: &str) -> Option<u8> {
    LAYERS.iter().find(|(f, _)| *f == folder).map(|(_, l)| *l)
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file's text before its test module: what the program itself is made of.
fn non_test_code(text: &str) -> &str {
    [
        "#[cfg(test)]\nmod ",
        "#[cfg(test)]\npub(crate) mod ",
        "#[cfg(all(test, target_endian = \"little\"))]\nmod ",
    ]
    .iter()
    .filter_map(|m| text.find(m))
    .min()
    .map_or(text, |i| &text[..i])
}

/// Every `crate::<folder>` a file names, with its line number.
fn crate_paths(code: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in code.lines().enumerate() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            found.push((n + 1, name));
            rest = after;
        }
    }
    found
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn every_stage_uses_only_the_stages_below_it() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut broken = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(src()).unwrap();
        let folder = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let Some(own) = level(&folder) else {
            continue; // lib.rs, main.rs, cli/, testing.rs sit above every stage
        };
        let text = std::fs::read_to_string(file).unwrap();
        for (line, used) in crate_paths(non_test_code(&text)) {
            if used == folder {
                continue;
            }
            match level(&used) {
                Some(l) if l < own => {}
                Some(_) => broken.push(format!(
                    "src/{}:{line}: {folder} uses crate::{used}, a stage at or above its own",
                    rel.display()
                )),
                None => broken.push(format!(
                    "src/{}:{line}: {folder} uses crate::{used}, which is not a stage",
                    rel.display()
                )),
            }
        }
    }
    assert!(
        broken.is_empty(),
        "stages that reach up or sideways (ARCHITECTURE.md):\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_folder_of_src_is_a_known_stage() {
    let known = ["cli"];
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            assert!(
                level(&name).is_some() || known.contains(&name.as_str()),
                "src/{name} is not in ARCHITECTURE.md's list of stages (and not in LAYERS here)"
            );
        }
    }
}

/// The file a `crate::a::b::c` path names: the longest prefix that is a file of `src/` (`a/b.rs` or `a/b/mod.rs`).
fn file_of(path: &[&str]) -> Option<PathBuf> {
    (1..=path.len()).rev().find_map(|n| {
        let dir = path[..n].iter().collect::<PathBuf>();
        let file = src().join(&dir).with_extension("rs");
        let module = src().join(&dir).join("mod.rs");
        [file, module].into_iter().find(|f| f.is_file())
    })
}

/// Every file a file names by a `crate::` path, outside its tests.
fn file_arrows(code: &str) -> Vec<PathBuf> {
    let mut to = Vec::new();
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let path: Vec<&str> = after
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .collect();
            to.extend(file_of(&path));
            rest = after;
        }
    }
    to
}

#[test]
fn no_file_imports_itself_back_through_others() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let arrows: Vec<(PathBuf, Vec<PathBuf>)> = files
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let mut to = file_arrows(non_test_code(&text));
            to.retain(|t| t != f);
            (f.clone(), to)
        })
        .collect();
    // depth-first search for a path back to where it started
    fn back<'a>(
        from: &'a PathBuf,
        start: &PathBuf,
        arrows: &'a [(PathBuf, Vec<PathBuf>)],
        seen: &mut Vec<&'a PathBuf>,
    ) -> bool {
        let Some((_, to)) = arrows.iter().find(|(f, _)| f == from) else {
            return false;
        };
        for t in to {
            if t == start {
                return true;
            }
            if !seen.contains(&t) {
                seen.push(t);
                if back(t, start, arrows, seen) {
                    return true;
                }
            }
        }
        false
    }
    let circles: Vec<String> = files
        .iter()
        .filter(|f| back(f, f, &arrows, &mut Vec::new()))
        .map(|f| f.strip_prefix(src()).unwrap().display().to_string())
        .collect();
    assert!(
        circles.is_empty(),
        "these files import themselves back through others: {circles:?}"
    );
}

#[test]
fn the_circle_finder_reads_paths_to_files() {
    assert_eq!(
        file_of(&["explain", "rows", "Timeline"]),
        Some(src().join("explain/rows.rs"))
    );
    assert_eq!(
        file_of(&["track", "zeek", "ConnState"]),
        Some(src().join("track/zeek/mod.rs"))
    );
    let to = file_arrows("use crate::explain::rows::{RowKind, Timeline};\n");
    assert_eq!(to, [src().join("explain/rows.rs")]);
}

/// Lines of code in a file before its tests: not blank, not a comment.
fn code_lines(code: &str) -> usize {
    code.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("//"))
        .count()
}

#[test]
fn no_file_is_too_long_to_read() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            let n = code_lines(non_test_code(&text));
            (n > 600).then(|| format!("{} has {n} lines of code", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files:\n{}", long.join("\n"));
}

/// Functions longer than this many lines, counted from `fn` to the closing brace at the same indentation.
const LONGEST_FUNCTION: usize = 80;

#[test]
fn no_function_is_too_long_to_read() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut long = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = non_test_code(&text).lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let indent = &line[..line.len() - trimmed.len()];
            let is_fn = [
                "fn ",
                "pub fn ",
                "pub(crate) fn ",
                "const fn ",
                "pub const fn ",
            ]
            .iter()
            .any(|p| trimmed.starts_with(p));
            if !is_fn || line.trim_end().ends_with(';') {
                continue;
            }
            let close = format!("{indent}}}");
            if let Some(len) = lines[i + 1..].iter().position(|l| *l == close)
                && len + 2 > LONGEST_FUNCTION
            {
                let name = trimmed.split("fn ").nth(1).unwrap_or("");
                let name = name.split(['(', '<']).next().unwrap_or("");
                long.push(format!(
                    "{}:{}: {name}, {} lines",
                    f.display(),
                    i + 1,
                    len + 2
                ));
            }
        }
    }
    assert!(
        long.is_empty(),
        "split these functions:\n{}",
        long.join("\n")
    );
}

#[test]
fn the_path_reader_sees_what_a_use_line_names() {
    let code = "use crate::track::conn::Conn;\nlet x = crate::render::summary::cells(c); // crate::os in a comment\n";
    let seen: Vec<String> = crate_paths(code).into_iter().map(|(_, n)| n).collect();
    assert_eq!(seen, ["track", "render"]);
    assert_eq!(level("render"), Some(6));
    assert!(level("explain") > level("track"));
}
