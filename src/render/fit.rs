//! Fitting text into the width of the terminal (or `--width`, or `COLUMNS`): lines are broken only at spaces, and
//! a word is never cut, but for a path wider than the whole room, which breaks after a `/`. A word wider than
//! the whole room stays whole on a line of its own (the only way a line outgrows the width); the tables avoid
//! that by dropping columns first, in an order each table states.

use unicode_width::UnicodeWidthStr;

/// Printed width of `s` in terminal columns.
pub fn width(s: &str) -> usize {
    UnicodeWidthStr::width(s)
}

/// Width of the widest word of `s` (words are separated by spaces and line breaks).
pub fn longest_word(s: &str) -> usize {
    s.split([' ', '\n']).map(width).max().unwrap_or(0)
}

/// Width of the widest line of `s`.
pub fn widest_line(s: &str) -> usize {
    s.lines().map(width).max().unwrap_or(0)
}

/// `text` broken into lines of at most `room` columns at its spaces, `first` before the first line and `rest`
/// before the others (a hanging indent); each line ends with `\n`. Line breaks in `text` are kept. With no room
/// (`None`), the text stays on one line.
pub fn wrap(text: &str, room: Option<usize>, first: &str, rest: &str) -> String {
    let mut out = String::new();
    let mut prefix = first;
    for para in text.split('\n') {
        let Some(room) = room else {
            out.push_str(prefix);
            out.push_str(para);
            out.push('\n');
            prefix = rest;
            continue;
        };
        let mut line = String::from(prefix);
        let mut used = width(prefix);
        let mut empty = true;
        for (word, glued) in pieces(para, room.saturating_sub(width(rest))) {
            let w = width(word);
            if empty {
                if word.is_empty() {
                    continue;
                }
            } else if used + usize::from(!glued) + w > room && !word.is_empty() {
                out.push_str(line.trim_end());
                out.push('\n');
                line = String::from(rest);
                used = width(rest);
                line.push_str(word);
                used += w;
                continue;
            } else if !glued {
                line.push(' ');
                used += 1;
            }
            line.push_str(word);
            used += w;
            empty = false;
        }
        out.push_str(line.trim_end());
        out.push('\n');
        prefix = rest;
    }
    out
}

/// The words of `para` (split at spaces), each with whether it is glued to the one before (no space between).
/// A word wider than `room` that is a path is cut after its `/`s, so that a long file name breaks where a path
/// does rather than running past the edge.
fn pieces(para: &str, room: usize) -> Vec<(&str, bool)> {
    let mut out = Vec::new();
    for word in para.split(' ') {
        if width(word) <= room || !word.contains('/') {
            out.push((word, false));
            continue;
        }
        let mut glued = false;
        for piece in word.split_inclusive('/') {
            out.push((piece, glued));
            glued = true;
        }
    }
    out
}

/// Which columns to show: drop columns in `drop_order` (indices, least useful first) until the widths of the
/// shown ones, plus `sep` columns between neighbours and `frame` around them, fit in `room`. `widths` are the
/// widths each column needs not to cut a word. `None` for room keeps every column.
pub fn shown_columns(
    widths: &[usize],
    drop_order: &[usize],
    sep: usize,
    frame: usize,
    room: Option<usize>,
) -> Vec<bool> {
    let mut shown = vec![true; widths.len()];
    let Some(room) = room else {
        return shown;
    };
    let need = |shown: &[bool]| {
        let n = shown.iter().filter(|s| **s).count();
        let cells: usize = widths
            .iter()
            .zip(shown)
            .filter(|(_, s)| **s)
            .map(|(w, _)| w)
            .sum();
        cells + sep * n.saturating_sub(1) + frame
    };
    for &i in drop_order {
        if need(&shown) <= room {
            break;
        }
        shown[i] = false;
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_breaks_at_spaces_and_never_cuts_a_word() {
        let text = "B closed its socket while received data was still unread: connect(127.0.0.1:58497) failed";
        for room in 20..60 {
            let out = wrap(text, Some(room), "  • ", "    ");
            for line in out.lines() {
                assert!(
                    width(line) <= room.max(4 + "connect(127.0.0.1:58497)".len()),
                    "{line:?}"
                );
            }
            let words: Vec<&str> = out.split_whitespace().filter(|w| *w != "•").collect();
            assert_eq!(words, text.split_whitespace().collect::<Vec<_>>());
        }
    }

    #[test]
    fn wrap_keeps_line_breaks_and_double_spaces_inside_a_line() {
        let out = wrap("a  [X]\nb", Some(40), "", "  ");
        assert_eq!(out, "a  [X]\n  b\n");
        assert_eq!(wrap("one two", None, "> ", ""), "> one two\n");
    }

    #[test]
    fn columns_drop_in_the_stated_order_until_they_fit() {
        let widths = [2, 10, 10, 10];
        assert_eq!(
            shown_columns(&widths, &[3, 1], 2, 0, Some(40)),
            vec![true; 4]
        );
        assert_eq!(
            shown_columns(&widths, &[3, 1], 2, 0, Some(30)),
            [true, true, true, false]
        );
        assert_eq!(
            shown_columns(&widths, &[3, 1], 2, 0, Some(20)),
            [true, false, true, false]
        );
        // nothing more to drop: the rest is shown anyway
        assert_eq!(
            shown_columns(&widths, &[3, 1], 2, 0, Some(5)),
            [true, false, true, false]
        );
    }
}
