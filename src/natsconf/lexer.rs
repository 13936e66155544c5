//! Scanning of the nats-server config format (nats-server `conf/lex.go` is the reference).
//!
//! The format is context sensitive: the same characters read as a key, an include path or a
//! value depending on where they stand, so the parser asks for the token it expects
//! ([`Lexer::key`], [`Lexer::include_path`], [`Lexer::scalar`]) instead of pulling a flat
//! token stream. Rules kept from the server's lexer:
//! - keys end at whitespace, `=` or `:`; values end at a new line, `,`, `;`, `]`, `}`, space
//!   or tab (so `nats://host:6222` needs no quotes and `#` inside an unquoted value is text);
//! - a value starting with a digit is an integer (`1GB`, `10Gi`, `2m` = 2 million), a float,
//!   an IP-like string (`127.0.0.1:4222`), an ISO8601 Zulu datetime, or, once a character no
//!   number can hold shows up, an unquoted string (`10s`);
//! - `true/false/yes/no/on/off` unquoted are booleans; `$NAME` unquoted is a variable, except
//!   a bcrypt hash `$2a$…`, which stays a string.

use super::span::Span;

/// A scanning failure at byte `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LexError {
    pub offset: usize,
    pub message: String,
}

/// How a string value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quote {
    /// `"…"` (escapes `\t \n \r \" \\ \xHH`)
    Double,
    /// `'…'` (no escapes)
    Single,
    /// bare text
    None,
    /// `( … )` block: text up to a `)` alone on its line
    Block,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TokenKind {
    Key(String),
    Include(String),
    Str { value: String, quote: Quote },
    Integer(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Variable(String),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    pub pos: usize,
}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_nl(c: char) -> bool {
    c == '\n' || c == '\r'
}

/// Characters that end an unquoted value.
fn ends_bare_value(c: char) -> bool {
    is_nl(c) || is_blank(c) || matches!(c, ';' | ',' | ']' | '}')
}

/// Characters after digits (or a size suffix) that make them a finished integer.
fn ends_number(c: Option<char>) -> bool {
    match c {
        None => true,
        Some(c) => is_nl(c) || is_blank(c) || matches!(c, '}' | ';' | ','),
    }
}

fn is_size_suffix(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'k' | 'm' | 'g' | 't' | 'p' | 'e')
}

/// Multiplier for a size suffix as the server reads it (`k` = 1000, `kb`/`ki`/`kib` = 1024…).
fn suffix_factor(suffix: &str) -> Option<i64> {
    let s = suffix.to_ascii_lowercase();
    if s.is_empty() {
        return Some(1);
    }
    let (unit, rest) = s.split_at(1);
    let exp = match unit {
        "k" => 1,
        "m" => 2,
        "g" => 3,
        "t" => 4,
        "p" => 5,
        "e" => 6,
        _ => return None,
    };
    let base: i64 = match rest {
        "" => 1000,
        "b" | "i" | "ib" => 1024,
        _ => return None,
    };
    base.checked_pow(exp)
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str) -> Lexer<'a> {
        Lexer { src, pos: 0 }
    }

    pub fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    pub fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn err<T>(&self, offset: usize, message: impl Into<String>) -> Result<T, LexError> {
        Err(LexError {
            offset,
            message: message.into(),
        })
    }

    /// At `#` or `//`.
    pub fn at_comment(&self) -> bool {
        let rest = &self.src[self.pos..];
        rest.starts_with('#') || rest.starts_with("//")
    }

    /// Skips a comment up to (not including) the line break.
    pub fn skip_comment(&mut self) {
        let rest = &self.src[self.pos..];
        self.pos += rest.find(['\n', '\r']).unwrap_or(rest.len());
    }

    /// Skips spaces and tabs.
    pub fn skip_blank(&mut self) {
        while self.peek().is_some_and(is_blank) {
            self.pos += 1;
        }
    }

    /// Skips all whitespace, line breaks included.
    pub fn skip_space(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    /// Skips whitespace, line breaks and comments.
    pub fn skip_trivia(&mut self) {
        loop {
            self.skip_space();
            if self.at_comment() {
                self.skip_comment();
            } else {
                return;
            }
        }
    }

    /// A key: `"…"`, `'…'` or bare text up to whitespace, `=` or `:`. A bare `include`
    /// followed by whitespace is returned as [`TokenKind::Include`] with its path.
    pub fn key(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        match self.peek() {
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let body = self.pos;
                let Some(len) = self.src[body..].find(q) else {
                    return self.err(start, format!("unterminated quoted key (no closing {q})"));
                };
                self.pos = body + len + 1;
                Ok(Token {
                    kind: TokenKind::Key(self.src[body..body + len].to_string()),
                    span: Span::new(start, self.pos),
                })
            }
            Some(c @ ('=' | ':')) => self.err(start, format!("expected a key, found '{c}'")),
            _ => {
                while let Some(c) = self.peek() {
                    if c.is_whitespace() || c == '=' || c == ':' {
                        break;
                    }
                    self.bump();
                }
                let text = &self.src[start..self.pos];
                if text.eq_ignore_ascii_case("include")
                    && self.peek().is_some_and(char::is_whitespace)
                {
                    return self.include_path(start);
                }
                Ok(Token {
                    kind: TokenKind::Key(text.to_string()),
                    span: Span::new(start, self.pos),
                })
            }
        }
    }

    /// The path after `include`: quoted, or bare up to whitespace, `;` or `}`.
    fn include_path(&mut self, keyword: usize) -> Result<Token, LexError> {
        self.skip_blank();
        let start = self.pos;
        let path = match self.peek() {
            None => {
                return self.err(
                    start,
                    "expected a file name after `include`, found end of file",
                )
            }
            Some(c) if is_nl(c) => {
                return self.err(
                    start,
                    "expected a file name after `include`, found a new line",
                )
            }
            Some(q @ ('"' | '\'')) => {
                self.bump();
                let body = self.pos;
                let Some(len) = self.src[body..].find(q) else {
                    return self.err(start, format!("unterminated include path (no closing {q})"));
                };
                self.pos = body + len + 1;
                self.src[body..body + len].to_string()
            }
            Some(c) if matches!(c, '[' | '{' | '(' | '-' | '\\') || c.is_ascii_digit() => {
                return self.err(
                    start,
                    format!("expected a file name after `include`, found '{c}'"),
                )
            }
            Some(_) => {
                while let Some(c) = self.peek() {
                    if is_nl(c) || is_blank(c) || c == ';' || c == '}' {
                        break;
                    }
                    if c == '\'' {
                        self.bump();
                        break;
                    }
                    self.bump();
                }
                self.src[start..self.pos].trim_end_matches('\'').to_string()
            }
        };
        Ok(Token {
            kind: TokenKind::Include(path),
            span: Span::new(keyword, self.pos),
        })
    }

    /// A scalar value at the cursor (the parser handles `[` and `{`).
    pub fn scalar(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        match self.peek() {
            None => self.err(start, "expected a value, found end of file"),
            Some(c) if is_nl(c) => self.err(start, "expected a value, found a new line"),
            Some(c @ (',' | ';' | ']' | '}')) => {
                self.err(start, format!("expected a value, found '{c}'"))
            }
            Some('"') => self.double_quoted(),
            Some('\'') => self.single_quoted(),
            Some('(') => self.block(),
            Some('.') => self.err(start, "floats must start with a digit, not '.'"),
            Some('-') => self.negative_number(),
            Some(c) if c.is_ascii_digit() => self.number(),
            Some(_) => self.bare(start),
        }
    }

    fn single_quoted(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        self.bump();
        let body = self.pos;
        let Some(len) = self.src[body..].find('\'') else {
            return self.err(start, "unterminated string (no closing ')");
        };
        self.pos = body + len + 1;
        Ok(Token {
            kind: TokenKind::Str {
                value: self.src[body..body + len].to_string(),
                quote: Quote::Single,
            },
            span: Span::new(start, self.pos),
        })
    }

    fn double_quoted(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        self.bump();
        let mut value = String::new();
        loop {
            match self.bump() {
                None => return self.err(start, "unterminated string (no closing \")"),
                Some('"') => break,
                Some('\\') => self.escape(&mut value)?,
                Some(c) => value.push(c),
            }
        }
        Ok(Token {
            kind: TokenKind::Str {
                value,
                quote: Quote::Double,
            },
            span: Span::new(start, self.pos),
        })
    }

    /// After a `\`: the escapes the server knows.
    fn escape(&mut self, out: &mut String) -> Result<(), LexError> {
        let at = self.pos - 1;
        match self.bump() {
            Some('t') => out.push('\t'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('"') => out.push('"'),
            Some('\\') => out.push('\\'),
            Some('x') => {
                let hex = self.src.get(self.pos..self.pos + 2).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) if hex.len() == 2 => {
                        self.pos += 2;
                        out.push(char::from(b));
                    }
                    _ => return self.err(at, "expected two hexadecimal digits after '\\x'"),
                }
            }
            other => {
                let shown = other.map_or("end of file".to_string(), |c| format!("'{c}'"));
                return self.err(
                    at,
                    format!(
                        "invalid escape {shown}; only \\xXX, \\t, \\n, \\r, \\\" and \\\\ are allowed"
                    ),
                );
            }
        }
        Ok(())
    }

    /// `( … )` with the closing `)` alone on its line.
    fn block(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        let body = start + 1;
        let mut search = body;
        loop {
            let Some(i) = self.src[search..].find("\n)") else {
                return self.err(start, "unterminated block: no ')' alone on a line");
            };
            let close = search + i + 1;
            let after = self.src[close + 1..].chars().next();
            if after.is_none() || after == Some('\n') || after == Some('\r') {
                self.pos = close + 1;
                return Ok(Token {
                    kind: TokenKind::Str {
                        value: self.src[body..close - 1].to_string(),
                        quote: Quote::Block,
                    },
                    span: Span::new(start, self.pos),
                });
            }
            search = close;
        }
    }

    /// Bare text from `start` (the cursor may already be past `start`).
    fn bare(&mut self, start: usize) -> Result<Token, LexError> {
        let mut value = self.src[start..self.pos].to_string();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if ends_bare_value(c) {
                break;
            }
            self.bump();
            match c {
                '\\' => {
                    escaped = true;
                    self.escape(&mut value)?;
                }
                // The server ends a bare value at a quote and drops the quote.
                '\'' => break,
                c => value.push(c),
            }
        }
        let span = Span::new(start, self.pos);
        let lower = value.to_ascii_lowercase();
        let kind = if escaped {
            TokenKind::Str {
                value,
                quote: Quote::None,
            }
        } else if matches!(lower.as_str(), "true" | "yes" | "on") {
            TokenKind::Bool(true)
        } else if matches!(lower.as_str(), "false" | "no" | "off") {
            TokenKind::Bool(false)
        } else if let Some(name) = value.strip_prefix('$').filter(|n| !n.starts_with("2a$")) {
            TokenKind::Variable(name.to_string())
        } else {
            TokenKind::Str {
                value,
                quote: Quote::None,
            }
        };
        Ok(Token { kind, span })
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
    }

    /// A value starting with a digit.
    fn number(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        self.digits();
        match self.peek() {
            Some('-') if self.pos - start == 4 => self.datetime(start),
            Some('-') => self.err(
                start,
                "dates must be in full ISO8601 Zulu form (YYYY-MM-DDTHH:MM:SSZ)",
            ),
            Some('.') => self.float_or_ip(start),
            Some(c) if is_size_suffix(c) => self.sized(start),
            c if ends_number(c) => self.integer(start),
            // Anything else (`10s`, `3secret`, a `]` right after digits): the server reads text.
            _ => self.bare(start),
        }
    }

    fn negative_number(&mut self) -> Result<Token, LexError> {
        let start = self.pos;
        self.bump();
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return self.err(start, "expected a digit after '-'");
        }
        self.digits();
        match self.peek() {
            Some('.') => self.float_or_ip(start),
            Some(c) if is_size_suffix(c) => self.sized(start),
            _ => self.integer(start),
        }
    }

    /// Digits then a size suffix (`k`, `MB`, `Gi`…).
    fn sized(&mut self, start: usize) -> Result<Token, LexError> {
        self.bump();
        while self
            .peek()
            .is_some_and(|c| matches!(c, 'b' | 'B' | 'i' | 'I'))
        {
            self.bump();
        }
        let next = self.peek();
        if ends_number(next) || next.is_some_and(|c| c.is_ascii_digit()) {
            self.integer(start)
        } else {
            self.bare(start)
        }
    }

    fn integer(&mut self, start: usize) -> Result<Token, LexError> {
        let raw = &self.src[start..self.pos];
        let digits_end = raw
            .char_indices()
            .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
            .map_or(raw.len(), |(i, _)| i);
        let (digits, suffix) = raw.split_at(digits_end);
        let num: i64 = digits
            .parse()
            .or_else(|_| self.err(start, format!("integer '{raw}' is out of range")))?;
        let Some(factor) = suffix_factor(suffix) else {
            return self.err(start, format!("unknown size suffix in '{raw}'"));
        };
        let value = num.checked_mul(factor).map_or_else(
            || self.err(start, format!("integer '{raw}' is out of range")),
            Ok,
        )?;
        Ok(Token {
            kind: TokenKind::Integer(value),
            span: Span::new(start, self.pos),
        })
    }

    /// After digits and a `.`: a float, or with a second `.` an address such as `10.0.0.1:4222`.
    fn float_or_ip(&mut self, start: usize) -> Result<Token, LexError> {
        self.bump();
        if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
            return self.err(self.pos, "floats must have a digit after the '.'");
        }
        self.digits();
        if self.peek() == Some('.') {
            while self
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || matches!(c, '.' | ':' | '-'))
            {
                self.bump();
            }
            return Ok(Token {
                kind: TokenKind::Str {
                    value: self.src[start..self.pos].to_string(),
                    quote: Quote::None,
                },
                span: Span::new(start, self.pos),
            });
        }
        let raw = &self.src[start..self.pos];
        let value: f64 = raw
            .parse()
            .or_else(|_| self.err(start, format!("expected a float, found '{raw}'")))?;
        Ok(Token {
            kind: TokenKind::Float(value),
            span: Span::new(start, self.pos),
        })
    }

    /// `YYYY-MM-DDTHH:MM:SSZ`, the year already consumed.
    fn datetime(&mut self, start: usize) -> Result<Token, LexError> {
        const SHAPE: &str = "-00-00T00:00:00Z";
        for want in SHAPE.chars() {
            let at = self.pos;
            let got = self.bump();
            let ok = match (want, got) {
                ('0', Some(c)) => c.is_ascii_digit(),
                (w, Some(c)) => w == c,
                (_, None) => false,
            };
            if !ok {
                return self.err(
                    at,
                    "dates must be in full ISO8601 Zulu form (YYYY-MM-DDTHH:MM:SSZ)",
                );
            }
        }
        Ok(Token {
            kind: TokenKind::Datetime(self.src[start..self.pos].to_string()),
            span: Span::new(start, self.pos),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(s: &str) -> TokenKind {
        Lexer::new(s).scalar().unwrap().kind
    }

    fn str_(s: &str, quote: Quote) -> TokenKind {
        TokenKind::Str {
            value: s.into(),
            quote,
        }
    }

    #[test]
    fn numbers_sizes_and_number_like_strings() {
        assert_eq!(scalar("4222\n"), TokenKind::Integer(4222));
        assert_eq!(scalar("-1,"), TokenKind::Integer(-1));
        assert_eq!(scalar("1GB"), TokenKind::Integer(1 << 30));
        assert_eq!(scalar("10Gi }"), TokenKind::Integer(10 << 30));
        assert_eq!(scalar("2k"), TokenKind::Integer(2000));
        // unquoted "2m" is two million, not two minutes: durations must be quoted
        assert_eq!(scalar("2m"), TokenKind::Integer(2_000_000));
        assert_eq!(scalar("10s"), str_("10s", Quote::None));
        assert_eq!(scalar("0.5"), TokenKind::Float(0.5));
        assert_eq!(
            scalar("127.0.0.1:4222 "),
            str_("127.0.0.1:4222", Quote::None)
        );
        assert_eq!(scalar("3secret"), str_("3secret", Quote::None));
        assert_eq!(
            scalar("2016-05-04T18:53:41Z"),
            TokenKind::Datetime("2016-05-04T18:53:41Z".into())
        );
        assert!(Lexer::new("1.x").scalar().is_err());
        assert!(Lexer::new("99999999999999999999").scalar().is_err());
    }

    #[test]
    fn strings_bools_variables() {
        assert_eq!(
            scalar("nats://a:6222, x"),
            str_("nats://a:6222", Quote::None)
        );
        assert_eq!(scalar("a#b c"), str_("a#b", Quote::None));
        assert_eq!(scalar("\"a\\\"b\\x41\\n\""), str_("a\"bA\n", Quote::Double));
        assert_eq!(scalar("'a\\b'"), str_("a\\b", Quote::Single));
        assert_eq!(scalar("Yes"), TokenKind::Bool(true));
        assert_eq!(scalar("off;"), TokenKind::Bool(false));
        assert_eq!(scalar("\"true\""), str_("true", Quote::Double));
        assert_eq!(
            scalar("$SERVER_NAME,"),
            TokenKind::Variable("SERVER_NAME".into())
        );
        assert_eq!(scalar("$2a$11$abc"), str_("$2a$11$abc", Quote::None));
        assert_eq!(scalar("(\nline\n)\n"), str_("\nline", Quote::Block));
        let e = Lexer::new("\"abc").scalar().unwrap_err();
        assert_eq!(e.offset, 0);
        assert!(e.message.contains("unterminated"));
        assert!(Lexer::new("\"a\\qb\"").scalar().is_err());
    }

    #[test]
    fn keys_and_includes() {
        let mut lx = Lexer::new("port: 1");
        assert_eq!(lx.key().unwrap().kind, TokenKind::Key("port".into()));
        let mut lx = Lexer::new("\"cluster\": {");
        let t = lx.key().unwrap();
        assert_eq!(t.kind, TokenKind::Key("cluster".into()));
        assert_eq!(t.span, Span::new(0, 9));
        let mut lx = Lexer::new("include ./auth.conf # c");
        let t = lx.key().unwrap();
        assert_eq!(t.kind, TokenKind::Include("./auth.conf".into()));
        assert_eq!(t.span, Span::new(0, 19));
        let mut lx = Lexer::new("include 'a b.conf'");
        assert_eq!(
            lx.key().unwrap().kind,
            TokenKind::Include("a b.conf".into())
        );
        // `include:` is an ordinary key
        let mut lx = Lexer::new("include: 1");
        assert_eq!(lx.key().unwrap().kind, TokenKind::Key("include".into()));
        assert!(Lexer::new("include 42").key().is_err());
    }
}
