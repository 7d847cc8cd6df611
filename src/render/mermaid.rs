//! A Mermaid `sequenceDiagram`: renders in Markdown viewers that support Mermaid (GitHub, GitLab, many wikis).
//! Segments are messages between A and B (an RST ends in a cross and sits in a red box, a FIN in a blue one);
//! socket calls are notes beside their side.

use crate::explain::timeline::{RowKind, Timeline};
use crate::model::calls::Peer;
use crate::render::escape;
use crate::render::ladder::{segment_label, short_call};

/// Mermaid treats `;`, `#` and `%` specially and `<`/`>` as markup: [`escape::mermaid`] writes them as its entity
/// codes, and control characters (a line break would end the statement) as visible escapes.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    escape::mermaid(s)
}

/// A title as Mermaid's `title` statement takes it: the line ends at `;` or `#`, so those become `,` and a space.
fn title_text(s: &str) -> String {
    escape::text(s)
        .chars()
        .map(|c| match c {
            ';' => ',',
            '#' => ' ',
            c => c,
        })
        .collect()
}

/// The diagram, titled `title`, with `notes` (what the packets alone suggest, analyze's ⚠ lines) beside the wire.
pub fn mermaid(t: &Timeline, title: &str) -> String {
    let mut out = String::from("sequenceDiagram\n");
    out.push_str(&format!("    title {}\n", title_text(title)));
    out.push_str(&format!(
        "    participant A as {}\n",
        escape(&t.sides.a_label)
    ));
    out.push_str(&format!(
        "    participant B as {}\n",
        escape(&t.sides.b_label)
    ));
    let note = |peer: Peer, text: String| {
        let side = if peer == Peer::A {
            "left of A"
        } else {
            "right of B"
        };
        format!("    Note {side}: {}\n", escape(&text))
    };
    for row in &t.rows {
        match &row.kind {
            RowKind::Call {
                call,
                returns_later,
            } => out.push_str(&failed(
                call.errno().is_some() && !returns_later,
                note(call.peer, short_call(call, *returns_later, false)),
            )),
            RowKind::Return { call } => out.push_str(&failed(
                call.errno().is_some(),
                note(call.peer, format!("↳ {}", short_call(call, false, true))),
            )),
            RowKind::Segment(w) => {
                let (from, to) = if w.from == Peer::A {
                    ("A", "B")
                } else {
                    ("B", "A")
                };
                let label = segment_label(w);
                let label = escape(&label);
                if w.segment.flags.rst() {
                    out.push_str(&format!(
                        "    rect rgb(255, 215, 215)\n    {from}-x{to}: {label}\n    end\n"
                    ));
                } else if w.segment.flags.fin() {
                    out.push_str(&format!(
                        "    rect rgb(215, 230, 255)\n    {from}->>{to}: {label}\n    end\n"
                    ));
                } else {
                    out.push_str(&format!("    {from}->>{to}: {label}\n"));
                }
                // what the packets alone suggest (analyze --conn), as a note over the wire
                for n in &w.notes {
                    out.push_str(&format!("    Note over A,B: ⚠ {}\n", escape(n)));
                }
            }
            RowKind::Kernel(k) => out.push_str(&note(k.peer, format!("⚙ {}", k.short()))),
        }
    }
    out
}

/// A failed call's note in a red box, as RST messages are: an error, not a plain note.
fn failed(error: bool, note: String) -> String {
    if error {
        format!(
            "    rect rgb(255, 215, 215)\n    {}    end\n",
            note.trim_start()
        )
    } else {
        note
    }
}

/// Several diagrams in one output (`run --mode all -f mermaid`): each under its heading in a fenced block, which
/// Markdown viewers render and `mmdc -i FILE.md` reads; concatenated bare diagrams would not parse.
pub fn fenced(title: &str, diagram: &str) -> String {
    format!(
        "## {}\n\n```mermaid\n{diagram}```\n",
        escape::markdown(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_mermaid_would_misread() {
        assert_eq!(escape("a;b#c<d>"), "a#59;b#35;c#lt;d#gt;");
    }
}
