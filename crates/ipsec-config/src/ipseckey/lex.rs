//! Splits ipseckey text into commands of tokens, with the 1-based line and column (in
//! characters) of every token.
//!
//! Rules (Solaris `create_argv` and `do_interactive`, with the decisions noted in the module
//! documentation of [`super`]):
//! * tokens are separated by whitespace (`char::is_whitespace`);
//! * a command ends at a line end; a `\` immediately before the line end (`\n` or `\r\n`)
//!   joins the next line to the command;
//! * `#` at the start of a token begins a comment that runs to the end of the physical line
//!   (a `\` inside a comment does not continue the command);
//! * a `"` toggles quoting and is dropped; inside quotes whitespace and `#` are ordinary
//!   characters; a quote may not run past the end of its line.

use super::ParseError;

/// One token of a command.
#[derive(Debug, Clone)]
pub(crate) struct Token {
    /// The text after quote removal.
    pub text: String,
    /// 1-based line of the first character.
    pub line: usize,
    /// 1-based column (in characters) of the first character.
    pub col: usize,
}

/// One command: its tokens and where it ends.
#[derive(Debug, Clone)]
pub(crate) struct RawCommand {
    pub tokens: Vec<Token>,
    /// Position of the line end (or end of input) that terminated the command.
    pub end_line: usize,
    pub end_col: usize,
    /// True when the command was terminated by the end of the input rather than a line end.
    pub at_eof: bool,
}

impl RawCommand {
    /// The description of the end of this command, used as the token of "missing value" errors.
    pub fn end_token(&self) -> &'static str {
        if self.at_eof {
            "end of input"
        } else {
            "end of line"
        }
    }
}

struct Builder {
    text: String,
    started: bool,
    line: usize,
    col: usize,
}

/// Tokenizes `text` into commands.
pub(crate) fn lex(text: &str, file: &str) -> Result<Vec<RawCommand>, ParseError> {
    let mut out = Vec::new();
    let mut tokens: Vec<Token> = Vec::new();
    let mut cur = Builder {
        text: String::new(),
        started: false,
        line: 1,
        col: 1,
    };
    let mut in_quotes = false;
    let (mut quote_line, mut quote_col) = (1, 1);
    let mut line = 1usize;
    let mut col = 1usize;
    let mut chars = text.chars().peekable();

    fn finish(cur: &mut Builder, tokens: &mut Vec<Token>) {
        if cur.started {
            tokens.push(Token {
                text: std::mem::take(&mut cur.text),
                line: cur.line,
                col: cur.col,
            });
            cur.started = false;
        }
    }
    // An unterminated quote is reported where it opened.
    let unterminated = |cur: &Builder, ql: usize, qc: usize| ParseError {
        file: file.to_string(),
        line: ql,
        column: qc,
        token: format!("\"{}", cur.text),
        expected: "a closing `\"` before the end of the line".to_string(),
    };

    while let Some(c) = chars.next() {
        match c {
            '\n' => {
                if in_quotes {
                    return Err(unterminated(&cur, quote_line, quote_col));
                }
                finish(&mut cur, &mut tokens);
                if !tokens.is_empty() {
                    out.push(RawCommand {
                        tokens: std::mem::take(&mut tokens),
                        end_line: line,
                        end_col: col,
                        at_eof: false,
                    });
                }
                line += 1;
                col = 1;
            }
            '\\' if matches!(chars.peek(), Some('\n') | None)
                || (chars.peek() == Some(&'\r') && {
                    let mut ahead = chars.clone();
                    ahead.next();
                    ahead.peek() == Some(&'\n')
                }) =>
            {
                if in_quotes {
                    return Err(unterminated(&cur, quote_line, quote_col));
                }
                // Continuation: the backslash and the line end act as whitespace (a backslash
                // at the very end of the input just ends the command).
                finish(&mut cur, &mut tokens);
                if chars.peek().is_none() {
                    col += 1;
                    continue;
                }
                if chars.peek() == Some(&'\r') {
                    chars.next();
                }
                chars.next();
                line += 1;
                col = 1;
            }
            '#' if !in_quotes && !cur.started => {
                // Comment to the end of the physical line; the '\n' itself ends the command.
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    chars.next();
                    col += 1;
                }
                col += 1;
            }
            '"' => {
                if !cur.started {
                    cur.started = true;
                    cur.line = line;
                    cur.col = col;
                }
                if !in_quotes {
                    quote_line = line;
                    quote_col = col;
                }
                in_quotes = !in_quotes;
                col += 1;
            }
            c if c.is_whitespace() && !in_quotes => {
                finish(&mut cur, &mut tokens);
                col += 1;
            }
            c => {
                if !cur.started {
                    cur.started = true;
                    cur.line = line;
                    cur.col = col;
                }
                cur.text.push(c);
                col += 1;
            }
        }
    }
    if in_quotes {
        return Err(unterminated(&cur, quote_line, quote_col));
    }
    finish(&mut cur, &mut tokens);
    if !tokens.is_empty() {
        out.push(RawCommand {
            tokens,
            end_line: line,
            end_col: col,
            at_eof: true,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn words(text: &str) -> Vec<Vec<(String, usize, usize)>> {
        lex(text, "t")
            .unwrap()
            .into_iter()
            .map(|c| {
                c.tokens
                    .into_iter()
                    .map(|t| (t.text, t.line, t.col))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn positions_comments_continuations_quotes() {
        let w = words("# c\n  flush esp # x\nadd \\\n esp\t\"a b\"c\n\n");
        assert_eq!(
            w,
            vec![
                vec![("flush".into(), 2, 3), ("esp".into(), 2, 9)],
                vec![
                    ("add".into(), 3, 1),
                    ("esp".into(), 4, 2),
                    ("a bc".into(), 4, 6)
                ],
            ]
        );
    }

    #[test]
    fn crlf_and_eof() {
        let cmds = lex("dump ah\r\nflush \\\r\n all", "t").unwrap();
        assert_eq!(cmds.len(), 2);
        assert!(!cmds[0].at_eof);
        assert!(cmds[1].at_eof);
        assert_eq!(cmds[1].tokens[1].text, "all");
        assert_eq!((cmds[1].tokens[1].line, cmds[1].tokens[1].col), (3, 2));
        assert_eq!((cmds[1].end_line, cmds[1].end_col), (3, 5));
    }

    #[test]
    fn backslash_at_end_of_input_ends_the_command() {
        let cmds = lex("flush esp \\", "t").unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(cmds[0].tokens.len(), 2);
        assert!(cmds[0].at_eof);
        assert_eq!((cmds[0].end_line, cmds[0].end_col), (1, 12));
    }

    #[test]
    fn hash_inside_token_is_literal_and_empty_quotes_make_a_token() {
        let w = words("a#b \"\" \"#\"");
        assert_eq!(
            w[0].iter().map(|t| t.0.as_str()).collect::<Vec<_>>(),
            vec!["a#b", "", "#"]
        );
    }

    #[test]
    fn unterminated_quote() {
        let e = lex("add esp \"abc\nx", "f").unwrap_err();
        assert_eq!((e.line, e.column), (1, 9));
        assert_eq!(e.token, "\"abc");
        let e = lex("x \"", "f").unwrap_err();
        assert_eq!((e.line, e.column), (1, 3));
    }
}
