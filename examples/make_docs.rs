//! `just docs`: remake the generated parts of docs/ (timelines, the comparison, SVG pictures) from captures/.
//! Run from the repository root: `cargo run --example make_docs`.

use std::path::Path;

use tcp_close_watch::model::run::Mode;
use tcp_close_watch::pipeline::docs;

fn pages(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(pages(&p));
        } else if p.extension().is_some_and(|e| e == "md") {
            out.push(p);
        }
    }
    out.sort();
    out
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let captures = root.join("captures");
    let docs_dir = root.join("docs");
    let mut changed = 0;
    for page in pages(&docs_dir) {
        let old = std::fs::read_to_string(&page).map_err(|e| format!("{}: {e}", page.display()))?;
        let new = docs::refresh(&old, &captures).map_err(|e| format!("{}: {e}", page.display()))?;
        if new != old {
            std::fs::write(&page, new).map_err(|e| format!("{}: {e}", page.display()))?;
            println!("updated {}", page.display());
            changed += 1;
        }
    }
    let img = docs_dir.join("img");
    std::fs::create_dir_all(&img).map_err(|e| e.to_string())?;
    for mode in Mode::ALL {
        let path = img.join(format!("{}.svg", mode.name()));
        let svg = docs::picture(&captures, mode)?;
        if std::fs::read_to_string(&path).ok().as_deref() != Some(svg.as_str()) {
            std::fs::write(&path, svg).map_err(|e| format!("{}: {e}", path.display()))?;
            println!("updated {}", path.display());
            changed += 1;
        }
    }
    println!("{changed} file(s) updated");
    Ok(())
}
