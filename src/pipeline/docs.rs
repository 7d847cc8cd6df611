//! The generated parts of docs/: timelines, comparison tables and SVG pictures, made from the saved runs in
//! captures/. A page marks each generated part with
//! `<!-- BEGIN GENERATED: timeline abrupt -->` … `<!-- END GENERATED -->` (or `comparison` for every mode);
//! [`refresh`] rewrites what lies between, and the docs test fails when a committed page differs from it.

use std::path::{Path, PathBuf};

use crate::capfile::CaptureReader;
use crate::capfile::saved::SavedRun;
use crate::explain::story;
use crate::explain::timeline::Timeline;
use crate::model::run::Mode;
use crate::pipeline::analyze;
use crate::render::{Format, Style, compare, run, svg};

const BEGIN: &str = "<!-- BEGIN GENERATED: ";
const END: &str = "<!-- END GENERATED -->";

/// The capture of `mode` in `captures`.
pub fn capture_path(captures: &Path, mode: Mode) -> PathBuf {
    captures.join(format!("{}.pcapng", mode.name()))
}

/// Read a saved run and its timeline back from its capture, as `analyze` does.
pub fn load(path: &Path) -> Result<(SavedRun, Timeline), String> {
    let name = path.display().to_string();
    let report = analyze::analyze(
        &name,
        CaptureReader::open(&name).map_err(|e| e.to_string()),
        &Default::default(),
        None,
        &mut |_, _| {},
    );
    if let Some(e) = report.open_error.as_ref().or(report.read_error.as_ref()) {
        return Err(format!("{name}: {e}"));
    }
    let not_saved = || format!("{name}: not a saved run (make it with `just captures`)");
    let t = crate::pipeline::analyze::saved_timeline(&report).ok_or_else(not_saved)?;
    Ok((report.saved_run.ok_or_else(not_saved)?, t))
}

/// What a generated block holds: `timeline MODE` (the run as `analyze --format markdown` prints it),
/// `comparison` (every mode, as `run --mode all --format markdown` prints it), or the JSON of one run:
/// `json-summary MODE` (its summary line) and `json-comparison MODE` (its comparison row).
pub fn block(spec: &str, captures: &Path) -> Result<String, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    match words.as_slice() {
        ["timeline", mode] => {
            let mode = Mode::from_name(mode)
                .ok_or_else(|| format!("unknown mode {mode} in a generated block"))?;
            let (saved, t) = load(&capture_path(captures, mode))?;
            Ok(run::run_view(
                &saved.pair,
                &t,
                &saved.kernel,
                &[],
                Format::Markdown,
                Style::PLAIN,
            ))
        }
        ["json-summary", mode] => {
            let (saved, t) = load(&capture_path(captures, mode_named(mode)?))?;
            let json = run::run_view(
                &saved.pair,
                &t,
                &saved.kernel,
                &[],
                Format::Json,
                Style::PLAIN,
            );
            Ok(format!(
                "```\n{}\n```",
                json.lines().last().unwrap_or_default()
            ))
        }
        ["json-comparison", mode] => {
            let (saved, t) = load(&capture_path(captures, mode_named(mode)?))?;
            let row = story::comparison_row(&saved.pair, &t, &saved.kernel);
            Ok(format!("```\n{}```", compare::json(&[row])))
        }
        ["comparison"] => {
            let mut rows = Vec::new();
            for mode in Mode::ALL {
                let (saved, t) = load(&capture_path(captures, mode))?;
                rows.push(story::comparison_row(&saved.pair, &t, &saved.kernel));
            }
            Ok(compare::markdown(&rows, "Every mode"))
        }
        _ => Err(format!("unknown generated block `{spec}`")),
    }
}

fn mode_named(name: &str) -> Result<Mode, String> {
    Mode::from_name(name).ok_or_else(|| format!("unknown mode {name} in a generated block"))
}

/// The page with every generated block made anew from `captures`.
pub fn refresh(page: &str, captures: &Path) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = page;
    while let Some(start) = rest.find(BEGIN) {
        let line_end = rest[start..]
            .find("-->")
            .ok_or("unterminated BEGIN GENERATED marker")?
            + start
            + 3;
        let spec = rest[start + BEGIN.len()..line_end - 3].trim();
        let end = rest[line_end..]
            .find(END)
            .ok_or_else(|| format!("no END GENERATED after `{spec}`"))?
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
pub fn picture(captures: &Path, mode: Mode) -> Result<String, String> {
    let (saved, t) = load(&capture_path(captures, mode))?;
    Ok(svg::svg(&t, &run::title(&saved.pair, &saved.kernel)))
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
