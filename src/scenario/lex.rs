//! The words of one line of a scenario file: plain words and "quoted strings" (escapes undone), each with its
//! column, and the small readers the parser builds on. `#` at the start of a word outside a string is a comment.

use crate::model::calls::Peer;
use std::fmt;

/// Where a file is wrong and what it should have said there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub col: usize,
    pub expected: String,
    pub found: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: expected {}, found {}",
            self.line, self.col, self.expected, self.found
        )
    }
}

impl std::error::Error for ParseError {}

/// One word of a line, or a quoted string with its escapes undone.
#[derive(Debug, Clone)]
pub(super) struct Token {
    pub(super) text: String,
    pub(super) col: usize,
    pub(super) quoted: bool,
}

/// The tokens of one line, read left to right; `end` is the column just past the line, for "found the end".
pub(super) struct Line {
    pub(super) no: usize,
    pub(super) tokens: Vec<Token>,
    pub(super) next: usize,
    pub(super) end: usize,
}

pub(super) type Res<T> = Result<T, ParseError>;

impl Line {
    pub(super) fn err(
        &self,
        col: usize,
        expected: impl Into<String>,
        found: impl Into<String>,
    ) -> ParseError {
        ParseError {
            line: self.no,
            col,
            expected: expected.into(),
            found: found.into(),
        }
    }

    pub(super) fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    /// The next token, or an error saying `expected` at the end of the line.
    pub(super) fn take(&mut self, expected: &str) -> Res<Token> {
        match self.tokens.get(self.next) {
            Some(t) => {
                self.next += 1;
                Ok(t.clone())
            }
            None => Err(self.err(self.end, expected, "the end of the line")),
        }
    }

    /// The next token if it is the word `word`.
    pub(super) fn eat(&mut self, word: &str) -> bool {
        let yes = self
            .peek()
            .is_some_and(|t| !t.quoted && t.text.eq_ignore_ascii_case(word));
        if yes {
            self.next += 1;
        }
        yes
    }

    pub(super) fn done(&self) -> Res<()> {
        match self.peek() {
            None => Ok(()),
            Some(t) => Err(self.err(t.col, "the end of the line", found(t))),
        }
    }

    pub(super) fn peer(&mut self) -> Res<(Peer, usize)> {
        let t = self.take("a peer, A or B")?;
        match t.text.as_str() {
            "A" if !t.quoted => Ok((Peer::A, t.col)),
            "B" if !t.quoted => Ok((Peer::B, t.col)),
            _ => Err(self.err(t.col, "a peer, A or B", found(&t))),
        }
    }

    pub(super) fn number<N: std::str::FromStr>(&mut self, what: &str) -> Res<N> {
        let t = self.take(what)?;
        t.text
            .parse()
            .map_err(|_| self.err(t.col, what.to_string(), found(&t)))
    }

    pub(super) fn on_off(&mut self) -> Res<bool> {
        let t = self.take("on or off")?;
        match t.text.as_str() {
            "on" => Ok(true),
            "off" => Ok(false),
            _ => Err(self.err(t.col, "on or off", found(&t))),
        }
    }

    /// `X|Y|Z`, each part checked by `one`.
    pub(super) fn alternatives<T>(
        &mut self,
        what: &str,
        one: impl Fn(&str) -> Option<T>,
    ) -> Res<Vec<T>> {
        let t = self.take(what)?;
        let mut out = Vec::new();
        let mut col = t.col;
        for part in t.text.split('|') {
            match one(part) {
                Some(v) if !t.quoted => out.push(v),
                _ => return Err(self.err(col, what.to_string(), format!("`{part}`"))),
            }
            col += part.chars().count() + 1;
        }
        Ok(out)
    }
}

pub(super) fn found(t: &Token) -> String {
    if t.quoted {
        format!("the string \"{}\"", t.text.escape_debug())
    } else {
        format!("`{}`", t.text)
    }
}

/// Split a line into tokens; `#` outside a string starts a comment.
pub(super) fn tokenize(no: usize, text: &str) -> Res<Line> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let err = |col: usize, expected: &str, found: &str| ParseError {
        line: no,
        col,
        expected: expected.into(),
        found: found.into(),
    };
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '#' {
            break;
        } else if c == '"' {
            let start = i;
            let mut s = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return Err(err(start + 1, "a closing \"", "the end of the line")),
                    Some('"') => break,
                    Some('\\') => {
                        let e = chars.get(i + 1).copied();
                        s.push(match e {
                            Some('n') => '\n',
                            Some('t') => '\t',
                            Some('r') => '\r',
                            Some('0') => '\0',
                            Some('\\') => '\\',
                            Some('"') => '"',
                            other => {
                                let f = other
                                    .map_or("the end of the line".into(), |c| format!("`\\{c}`"));
                                return Err(err(
                                    i + 1,
                                    "an escape \\n, \\t, \\r, \\0, \\\\ or \\\"",
                                    &f,
                                ));
                            }
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            tokens.push(Token {
                text: s,
                col: start + 1,
                quoted: true,
            });
            i += 1;
        } else {
            let start = i;
            while i < chars.len() && !chars[i].is_whitespace() && chars[i] != '"' {
                i += 1;
            }
            tokens.push(Token {
                text: chars[start..i].iter().collect(),
                col: start + 1,
                quoted: false,
            });
        }
    }
    Ok(Line {
        no,
        tokens,
        next: 0,
        end: chars.len() + 1,
    })
}

/// The line without its comment.
pub(super) fn code_of(raw: &str) -> &str {
    // as the tokenizer reads it: `#` starts a comment only outside a string and at the start of a word
    let mut quoted = false;
    let mut escaped = false;
    let mut word_start = true;
    for (i, c) in raw.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '#' if !quoted && word_start => return &raw[..i],
            _ => {}
        }
        word_start = !quoted && c.is_whitespace();
    }
    raw
}
