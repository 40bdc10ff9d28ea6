//! Splits ipsecconf text into tokens with the 1-based line and column (in characters) of
//! each.
//!
//! Rules (see the module documentation of [`super`]):
//! * tokens are separated by whitespace (`char::is_whitespace`);
//! * `{` and `}` are tokens of their own;
//! * `#` begins a comment that runs to the end of the line, wherever it appears.

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `{`.
    Open,
    /// `}`.
    Close,
    /// Anything else: a maximal run of characters other than whitespace, braces and `#`.
    Word,
}

/// One token.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub kind: Kind,
    pub text: String,
    /// 1-based line of the first character.
    pub line: usize,
    /// 1-based column (in characters) of the first character.
    pub col: usize,
}

impl Token {
    pub fn is_word(&self, w: &str) -> bool {
        self.kind == Kind::Word && self.text == w
    }
}

/// The tokens of a text and the position just past its end.
#[derive(Debug, Clone)]
pub(crate) struct Lexed {
    pub tokens: Vec<Token>,
    pub end_line: usize,
    pub end_col: usize,
}

/// Tokenizes `text` (never fails).
pub(crate) fn lex(text: &str) -> Lexed {
    let mut tokens = Vec::new();
    let mut cur: Option<Token> = None;
    let (mut line, mut col) = (1usize, 1usize);
    let mut chars = text.chars();
    let finish = |cur: &mut Option<Token>, tokens: &mut Vec<Token>| {
        if let Some(t) = cur.take() {
            tokens.push(t);
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                finish(&mut cur, &mut tokens);
                line += 1;
                col = 1;
                continue;
            }
            '#' => {
                finish(&mut cur, &mut tokens);
                // The comment ends at the line end, which the loop then handles.
                let mut rest = chars.clone();
                for n in rest.by_ref() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                    col += 1;
                }
            }
            '{' | '}' => {
                finish(&mut cur, &mut tokens);
                tokens.push(Token {
                    kind: if c == '{' { Kind::Open } else { Kind::Close },
                    text: c.to_string(),
                    line,
                    col,
                });
            }
            c if c.is_whitespace() => finish(&mut cur, &mut tokens),
            c => match &mut cur {
                Some(t) => t.text.push(c),
                None => {
                    cur = Some(Token {
                        kind: Kind::Word,
                        text: c.to_string(),
                        line,
                        col,
                    })
                }
            },
        }
        col += 1;
    }
    finish(&mut cur, &mut tokens);
    Lexed {
        tokens,
        end_line: line,
        end_col: col,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn toks(text: &str) -> Vec<(String, usize, usize)> {
        lex(text)
            .tokens
            .into_iter()
            .map(|t| (t.text, t.line, t.col))
            .collect()
    }

    #[test]
    fn braces_words_positions() {
        assert_eq!(
            toks("{laddr 10.0.0.1}ipsec{\n\tencr_algs aes }"),
            vec![
                ("{".into(), 1, 1),
                ("laddr".into(), 1, 2),
                ("10.0.0.1".into(), 1, 8),
                ("}".into(), 1, 16),
                ("ipsec".into(), 1, 17),
                ("{".into(), 1, 22),
                ("encr_algs".into(), 2, 2),
                ("aes".into(), 2, 12),
                ("}".into(), 2, 16),
            ]
        );
    }

    #[test]
    fn comments_anywhere_and_end_position() {
        let l = lex("# c\n{dir#x\nout} # y\r\n");
        let t: Vec<_> = l.tokens.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(t, vec!["{", "dir", "out", "}"]);
        assert_eq!((l.tokens[2].line, l.tokens[2].col), (3, 1));
        assert_eq!((l.end_line, l.end_col), (4, 1));
        let l = lex("ab  ");
        assert_eq!((l.end_line, l.end_col), (1, 5));
        assert!(lex("").tokens.is_empty());
    }

    #[test]
    fn kinds() {
        let l = lex("{ } x");
        assert_eq!(l.tokens[0].kind, Kind::Open);
        assert_eq!(l.tokens[1].kind, Kind::Close);
        assert!(l.tokens[2].is_word("x"));
        assert!(!l.tokens[0].is_word("{"));
    }
}
