//! Text that came from a file, the wire or a comment, made safe for where a printer writes it. A saved run's call
//! text and kernel string, a file's name and a payload are whatever the file's author wrote: printed as they are,
//! an ESC sequence sets the terminal's title or clears it, `<b>` or `**` becomes markup, a control character makes
//! an SVG ill-formed XML, a `;` ends a Mermaid statement.
//!
//! Each printer escapes at the point where it writes a cell or a line, in its own format's rules, so every string
//! that reaches a cell is covered, whoever put it there:
//! - [`text`] — terminals, CSV and plain text: control characters (C0, DEL, C1), bidirectional overrides and line
//!   separators are written as visible escapes (`\x1b`, `\n`, `\u{202e}`); [`lines`] keeps the line breaks a
//!   printer put in a cell itself.
//! - [`markdown`] — the above, then HTML (`&lt;`) and Markdown (`\*`, `\|`, `` \` ``) escaped, line breaks as `<br>`.
//! - [`xml`] — the above (XML 1.0 has no place for most control characters), then `& < > "` as entities.
//! - [`mermaid`] — the above, then Mermaid's own `#`, `;`, `%`, `<`, `>` as its entity codes.
//!
//! Our own colour codes are not text: the table library adds them around escaped cells. JSON needs none of this
//! (serde_json escapes every control character). Escaping is idempotent on what it made, and plain text comes back
//! borrowed, unchanged.

use std::borrow::Cow;
use std::fmt::Write as _;

/// A character that must not reach a terminal or a text file as itself: a control character (C0, DEL, C1), a
/// bidirectional mark or override (which reorders what follows on screen), a line or paragraph separator, or a
/// noncharacter XML refuses.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{fffe}'
                | '\u{ffff}'
        )
}

/// Printable ASCII: the common case, checked a byte at a time.
fn plain_ascii(s: &str) -> bool {
    s.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if (c as u32) < 0x80 => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Escape every unsafe character except those `keep` allows.
fn escape_unsafe(s: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    if plain_ascii(s) || !s.chars().any(|c| is_unsafe(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if is_unsafe(c) && !keep(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// One line of text for a terminal, CSV or a text file: every unsafe character written as a visible escape
/// (`\x1b`, `\n`, `\u{9b}`).
pub fn text(s: &str) -> Cow<'_, str> {
    escape_unsafe(s, |_| false)
}

/// Text whose line breaks the printer put there itself (a table cell with a note below): as [`text`], keeping
/// `\n`.
pub fn lines(s: &str) -> Cow<'_, str> {
    escape_unsafe(s, |c| c == '\n')
}

/// What [`markdown`] writes for `c` between `prev` and `next`, when it is not `c` itself.
fn md_escape(c: char, prev: Option<char>, next: Option<char>) -> Option<&'static str> {
    let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    Some(match c {
        '&' => "&amp;",
        '<' => "&lt;",
        '>' => "&gt;",
        '|' => "\\|",
        '*' => "\\*",
        '`' => "\\`",
        '~' => "\\~",
        // inside a word `_` cannot open or close emphasis
        '_' if !(word(prev) && word(next)) => "\\_",
        // `](` and `][` make a link
        ']' if matches!(next, Some('(' | '[')) => "\\]",
        // a backslash escapes the punctuation after it
        '\\' if next.is_none_or(|n| n.is_ascii_punctuation()) => "\\\\",
        _ => return None,
    })
}

/// Each character of `s` with the one before and after it.
fn with_neighbours(s: &str) -> impl Iterator<Item = (Option<char>, char, Option<char>)> + '_ {
    let mut prev = None;
    let mut rest = s.chars().peekable();
    std::iter::from_fn(move || {
        let c = rest.next()?;
        let item = (prev, c, rest.peek().copied());
        prev = Some(c);
        Some(item)
    })
}

/// Text for a Markdown table cell or line: as [`text`] (line breaks the printer made become `<br>`), then what
/// Markdown or HTML would read as markup escaped — `&`, `<`, `>` as entities; `|`, `*`, `` ` ``, `~` with a
/// backslash; `_` unless inside a word (where it cannot emphasise: `SHUT_WR` stays); `]` before `(` or `[` (a
/// link); `\` before punctuation (an escape of its own).
pub fn markdown(s: &str) -> Cow<'_, str> {
    let changes = |s: &str| {
        s.contains('\n')
            || with_neighbours(s).any(|(p, c, n)| is_unsafe(c) || md_escape(c, p, n).is_some())
    };
    if !changes(s) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push_str("<br>");
        }
        for (p, c, n) in with_neighbours(&text(line)) {
            match md_escape(c, p, n) {
                Some(e) => out.push_str(e),
                None => out.push(c),
            }
        }
    }
    Cow::Owned(out)
}

/// Text with its own line breaks for Markdown, a line at a time: each as [`markdown`], the breaks kept.
pub fn markdown_lines(s: &str) -> String {
    s.split_inclusive('\n')
        .map(|l| match l.strip_suffix('\n') {
            Some(l) => format!("{}\n", markdown(l)),
            None => markdown(l).into_owned(),
        })
        .collect()
}

/// Text for SVG (XML) content or an attribute: as [`text`], then `& < > "` as entities.
pub fn xml(s: &str) -> Cow<'_, str> {
    let s = text(s);
    if !s.contains(['&', '<', '>', '"']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// Text for a Mermaid label or note: as [`text`], then what Mermaid reads as syntax or markup written as its
/// entity codes (`;` ends a statement, `#` starts an entity, `%%` a comment or directive, `<`/`>` HTML).
pub fn mermaid(s: &str) -> Cow<'_, str> {
    let s = text(s);
    if !s.contains(['#', ';', '%', '<', '>']) {
        return s;
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '%' => out.push_str("#37;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\u{9b}1m\u{202e}gnp.exe\x7f\r\n\t";

    fn no_unsafe(s: &str) -> bool {
        !s.chars().any(is_unsafe)
    }

    #[test]
    fn text_shows_control_characters_as_escapes() {
        assert_eq!(
            text(HOSTILE),
            "\\x1b]0;owned\\x07\\x1b[2J\\x1b[31mred\\u{9b}1m\\u{202e}gnp.exe\\x7f\\r\\n\\t"
        );
        assert!(matches!(text("recv(64) = 3 \"OK\\n\""), Cow::Borrowed(_)));
        assert!(matches!(text("A → B ⚠"), Cow::Borrowed(_)));
        assert_eq!(lines("a\x1b\nb"), "a\\x1b\nb");
        // escaping what was escaped changes nothing
        assert_eq!(text(&text(HOSTILE)), text(HOSTILE));
    }

    #[test]
    fn markdown_makes_no_markup_of_data() {
        assert_eq!(
            markdown("<b>x</b> | **y** `z` ~~s~~ & _i_"),
            "&lt;b&gt;x&lt;/b&gt; \\| \\*\\*y\\*\\* \\`z\\` \\~\\~s\\~\\~ &amp; \\_i\\_"
        );
        assert_eq!(
            markdown("[click](http://x) [ok]"),
            "[click\\](http://x) [ok]"
        );
        assert_eq!(markdown("a\\*b \\n"), "a\\\\\\*b \\n");
        assert_eq!(markdown("line\nnext\x1b"), "line<br>next\\x1b");
        // our own words stay as they are
        for ours in [
            "shutdown(SHUT_WR) = 0  [FIN_WAIT1]",
            "──▶ [P.] seq 1:35 ack 1 len 34 \"Hello B! Pleas…\"",
            "[2001:db8::1]:443",
        ] {
            assert!(matches!(markdown(ours), Cow::Borrowed(_)), "{ours}");
        }
        assert!(no_unsafe(&markdown(HOSTILE)));
        assert_eq!(
            markdown_lines("a <b>\nc|d\n"),
            "a &lt;b&gt;\nc\\|d\n".to_string()
        );
    }

    #[test]
    fn xml_parses_whatever_it_was_given() {
        let all: String = (0u32..0x300)
            .chain([0x2028, 0x202e, 0xfffe, 0xffff])
            .filter_map(char::from_u32)
            .collect();
        let doc = format!("<t a=\"{}\">{}</t>", xml(&all), xml(&all));
        let parsed = roxmltree::Document::parse(&doc).expect("well-formed");
        assert_eq!(parsed.root_element().text(), Some(&*text(&all)));
        assert_eq!(xml("]]><script>"), "]]&gt;&lt;script&gt;");
    }

    #[test]
    fn mermaid_escapes_its_syntax() {
        assert_eq!(
            mermaid("a;b#c<d>%%{init}"),
            "a#59;b#35;c#lt;d#gt;#37;#37;{init}"
        );
        assert_eq!(mermaid("x\nNote left of A: y"), "x\\nNote left of A: y");
        assert!(no_unsafe(&mermaid(HOSTILE)));
    }
}
