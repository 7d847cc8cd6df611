//! The generated parts of docs/: timelines, comparison tables and SVG pictures, made from the saved runs in
//! captures/. A page marks each generated part with
//! `<!-- BEGIN GENERATED: timeline abrupt -->` … `<!-- END GENERATED -->` (or `comparison` for every mode);
//! [`refresh`] rewrites what lies between, and the docs test fails when a committed page differs from it.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::capfile::CaptureReader;
use crate::capfile::saved::SavedRun;
use crate::explain::timeline::Timeline;
use crate::model::run::Mode;
use crate::pipeline::{analyze, tell};
use crate::render::compare::Compared;
use crate::render::run::RunView;
use crate::render::{RowsFormat, RowsPrinter, Style, TimelineFormat, TimelinePrinter};

const BEGIN: &str = "<!-- BEGIN GENERATED: ";
const END: &str = "<!-- END GENERATED -->";

/// Why a page or a picture could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// A capture could not be read: its name and why.
    Capture(String, String),
    /// A capture holds no saved run.
    NotSaved(String),
    UnknownMode(String),
    UnknownBlock(String),
    /// A `BEGIN GENERATED` marker without its `-->`.
    Unterminated,
    /// A block without its `END GENERATED` marker.
    NoEnd(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Capture(name, e) => write!(f, "{name}: {e}"),
            Error::NotSaved(name) => {
                write!(f, "{name}: not a saved run (make it with `just captures`)")
            }
            Error::UnknownMode(mode) => write!(f, "unknown mode {mode} in a generated block"),
            Error::UnknownBlock(spec) => write!(f, "unknown generated block `{spec}`"),
            Error::Unterminated => f.write_str("unterminated BEGIN GENERATED marker"),
            Error::NoEnd(spec) => write!(f, "no END GENERATED after `{spec}`"),
        }
    }
}

impl std::error::Error for Error {}

/// The capture of `mode` in `captures`.
pub fn capture_path(captures: &Path, mode: Mode) -> PathBuf {
    captures.join(format!("{}.pcapng", mode.name()))
}

/// Read a saved run and its timeline back from its capture, as `analyze` does.
pub fn load(path: &Path) -> Result<(SavedRun, Timeline), Error> {
    let name = path.display().to_string();
    let report = analyze::analyze(
        &name,
        CaptureReader::open(&name),
        &Default::default(),
        None,
        &mut |_, _| {},
    );
    if let Some(e) = report.open_error.as_ref().or(report.read_error.as_ref()) {
        return Err(Error::Capture(name, e.clone()));
    }
    let not_saved = || Error::NotSaved(name.clone());
    let t = analyze::saved_timeline(&report).ok_or_else(not_saved)?;
    Ok((report.saved_run.ok_or_else(not_saved)?, t))
}

/// A saved run as `analyze` prints it in `format` (plain: no colour, no terminal width).
fn run_text(saved: &SavedRun, t: &Timeline, format: TimelineFormat) -> String {
    let told = tell(&saved.pair, t, &saved.kernel);
    let view = RunView {
        pair: &saved.pair,
        timeline: t,
        kernel: &saved.kernel,
        warnings: &[],
        account: &told.account,
        outcome: &told.outcome,
        saved_in: None,
    };
    let mut out = Vec::new();
    // writing to memory does not fail
    let _ = TimelinePrinter::new(format, Style::PLAIN).run(&mut out, &view);
    String::from_utf8_lossy(&out).into_owned()
}

/// The comparison of `rows` as `format` writes it.
fn comparison_text(rows: &[Compared], heading: &str, format: RowsFormat) -> String {
    let mut out = Vec::new();
    // writing to memory does not fail
    let _ = RowsPrinter::new(format, Style::PLAIN).comparison(&mut out, rows, heading);
    String::from_utf8_lossy(&out).into_owned()
}

/// What a generated block holds: `timeline MODE` (the run as `analyze --format markdown` prints it),
/// `comparison` (every mode, as `run --mode all --format markdown` prints it), or the JSON of one run:
/// `json-summary MODE` (its summary line) and `json-comparison MODE` (its comparison row).
pub fn block(spec: &str, captures: &Path) -> Result<String, Error> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    match words.as_slice() {
        ["timeline", mode] => {
            let (saved, t) = load(&capture_path(captures, mode_named(mode)?))?;
            Ok(run_text(&saved, &t, TimelineFormat::Markdown))
        }
        ["json-summary", mode] => {
            let (saved, t) = load(&capture_path(captures, mode_named(mode)?))?;
            let json = run_text(&saved, &t, TimelineFormat::Json);
            Ok(format!(
                "```\n{}\n```",
                json.lines().last().unwrap_or_default()
            ))
        }
        ["json-comparison", mode] => {
            let (saved, t) = load(&capture_path(captures, mode_named(mode)?))?;
            let row = tell(&saved.pair, &t, &saved.kernel).outcome;
            let json = comparison_text(&[row.into()], "", RowsFormat::Json);
            Ok(format!("```\n{json}```"))
        }
        ["comparison"] => {
            let mut rows = Vec::new();
            for mode in Mode::ALL {
                let (saved, t) = load(&capture_path(captures, mode))?;
                rows.push(tell(&saved.pair, &t, &saved.kernel).outcome.into());
            }
            Ok(comparison_text(&rows, "Every mode", RowsFormat::Markdown))
        }
        _ => Err(Error::UnknownBlock(spec.to_string())),
    }
}

fn mode_named(name: &str) -> Result<Mode, Error> {
    Mode::from_name(name).ok_or_else(|| Error::UnknownMode(name.to_string()))
}

/// The page with every generated block made anew from `captures`.
pub fn refresh(page: &str, captures: &Path) -> Result<String, Error> {
    let mut out = String::new();
    let mut rest = page;
    while let Some(start) = rest.find(BEGIN) {
        let line_end = rest[start..].find("-->").ok_or(Error::Unterminated)? + start + 3;
        let spec = rest[start + BEGIN.len()..line_end - 3].trim();
        let end = rest[line_end..]
            .find(END)
            .ok_or_else(|| Error::NoEnd(spec.to_string()))?
            + line_end;
        out.push_str(&rest[..line_end]);
        out.push_str("\n\n");
        out.push_str(block(spec, captures)?.trim_end());
        out.push_str("\n\n");
        rest = &rest[end..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The SVG picture of `mode`'s run, as `analyze --format svg` draws it.
pub fn picture(captures: &Path, mode: Mode) -> Result<String, Error> {
    let (saved, t) = load(&capture_path(captures, mode))?;
    Ok(run_text(&saved, &t, TimelineFormat::Svg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_replaces_only_marked_blocks() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
        let page = "# Title\n\n<!-- BEGIN GENERATED: timeline abrupt -->\nold\n<!-- END GENERATED -->\n\nprose\n";
        let new = refresh(page, &dir).unwrap();
        assert!(new.starts_with(
            "# Title\n\n<!-- BEGIN GENERATED: timeline abrupt -->\n\n### mode abrupt"
        ));
        assert!(new.ends_with("<!-- END GENERATED -->\n\nprose\n"));
        assert!(!new.contains("old"));
        assert_eq!(
            refresh(&new, &dir).unwrap(),
            new,
            "refreshing twice changes nothing"
        );
        assert!(
            refresh(
                "<!-- BEGIN GENERATED: nonsense -->\n<!-- END GENERATED -->",
                &dir
            )
            .is_err()
        );
        assert!(refresh("<!-- BEGIN GENERATED: comparison -->\n", &dir).is_err());
    }
}
