//! docs/ shows what the tool prints for the committed captures: every generated block of every page, and every
//! picture, must equal what `just docs` would make now. (No privileges needed.)

use std::path::{Path, PathBuf};

use tcp_close_watch::model::run::Mode;
use tcp_close_watch::pipeline::docs;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pages(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(pages(&p));
        } else if p.extension().is_some_and(|e| e == "md") {
            out.push(p);
        }
    }
    out
}

#[test]
fn generated_blocks_match_the_captures() {
    let captures = root().join("captures");
    let mut generated = 0;
    for page in pages(&root().join("docs")) {
        let text = std::fs::read_to_string(&page).unwrap();
        generated += text.matches("<!-- BEGIN GENERATED").count();
        let fresh =
            docs::refresh(&text, &captures).unwrap_or_else(|e| panic!("{}: {e}", page.display()));
        assert!(
            fresh == text,
            "{} is out of date with captures/: run `just docs`",
            page.display()
        );
    }
    assert!(
        generated > Mode::ALL.len(),
        "every mode page and the index have generated parts ({generated})"
    );
}

#[test]
fn pictures_match_the_captures() {
    let captures = root().join("captures");
    for mode in Mode::ALL {
        let path = root().join("docs/img").join(format!("{}.svg", mode.name()));
        let committed =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            committed == docs::picture(&captures, mode).unwrap(),
            "{} is out of date: run `just docs`",
            path.display()
        );
    }
}
