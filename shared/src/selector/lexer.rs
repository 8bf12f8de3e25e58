//! The selector's tokens: text in, a list of tokens with their columns out.

use std::fmt;

use super::error::{ErrorKind, SelectorError};

/// The reserved words (case-insensitive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Keyword {
    Not,
    And,
    Or,
    Between,
    Like,
    Escape,
    In,
    Is,
    True,
    False,
    Null,
}

const KEYWORDS: [(&str, Keyword); 11] = [
    ("NOT", Keyword::Not),
    ("AND", Keyword::And),
    ("OR", Keyword::Or),
    ("BETWEEN", Keyword::Between),
    ("LIKE", Keyword::Like),
    ("ESCAPE", Keyword::Escape),
    ("IN", Keyword::In),
    ("IS", Keyword::Is),
    ("TRUE", Keyword::True),
    ("FALSE", Keyword::False),
    ("NULL", Keyword::Null),
];

impl Keyword {
    /// The keyword `word` spells, in any case.
    pub(super) fn lookup(word: &str) -> Option<Keyword> {
        super::value_named(&KEYWORDS, |k| k.eq_ignore_ascii_case(word)).copied()
    }

    pub(super) fn as_str(self) -> &'static str {
        super::name_of(&KEYWORDS, &self)
    }
}

/// One token.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    LParen,
    RParen,
    Comma,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Plus,
    Minus,
    Star,
    Slash,
    /// A string literal, quotes removed and `''` undone.
    Str(String),
    /// An exact number's magnitude (at most 2^63, which only a minus sign makes valid) and
    /// its text as written.
    Exact(u64, String),
    /// An approximate number (finite).
    Approx(f64),
    Ident(String),
    Keyword(Keyword),
    End,
}

impl Tok {
    /// The token as an error names what was found, e.g. `'='`, `keyword AND`.
    pub(super) fn found(&self) -> String {
        match self {
            Tok::Str(s) => {
                let mut short: String = s.chars().take(24).collect();
                if short.len() < s.len() {
                    short.push_str("...");
                }
                format!("string '{}'", short.replace('\'', "''"))
            }
            Tok::Exact(_, text) => format!("number {text}"),
            Tok::Approx(f) => format!("number {f:?}"),
            Tok::Ident(name) => format!("identifier {name}"),
            Tok::Keyword(k) => format!("keyword {}", k.as_str()),
            Tok::End => "the end of the selector".to_owned(),
            other => format!("'{other}'"),
        }
    }
}

/// How an operator or keyword is written; values are described by [`Tok::found`].
impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::Comma => ",",
            Tok::Eq => "=",
            Tok::Ne => "<>",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Keyword(k) => k.as_str(),
            other => return f.write_str(&other.found()),
        };
        f.write_str(s)
    }
}

/// A token and the 1-based column of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) column: usize,
}

/// The largest magnitude an exact literal may have: 2^63, valid only after a minus sign.
pub(super) const MAX_MAGNITUDE: u64 = 1 << 63;

fn is_ident_start(c: char) -> bool {
    c.is_alphabetic() || c == '_' || c == '$'
}

fn is_ident_part(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\u{c}')
}

/// Splits `text` into tokens; the last one is always [`Tok::End`].
pub(super) fn tokens(text: &str) -> Result<Vec<Token>, SelectorError> {
    let chars: Vec<char> = text.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        i: 0,
    };
    let mut out = Vec::new();
    loop {
        let token = lexer.next()?;
        let end = token.tok == Tok::End;
        out.push(token);
        if end {
            return Ok(out);
        }
    }
}

struct Lexer<'a> {
    chars: &'a [char],
    i: usize,
}

impl Lexer<'_> {
    fn peek(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn error(&self, at: usize, kind: ErrorKind) -> SelectorError {
        SelectorError {
            column: at + 1,
            kind,
        }
    }

    /// Skips blanks and comments (`-- to the end of the line`, `/* ... */`).
    fn skip(&mut self) -> Result<(), SelectorError> {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if is_blank(c) => self.i += 1,
                (Some('-'), Some('-')) => {
                    while self.peek(0).is_some_and(|c| c != '\n' && c != '\r') {
                        self.i += 1;
                    }
                }
                (Some('/'), Some('*')) => {
                    let start = self.i;
                    self.i += 2;
                    loop {
                        match (self.peek(0), self.peek(1)) {
                            (Some('*'), Some('/')) => {
                                self.i += 2;
                                break;
                            }
                            (Some(_), _) => self.i += 1,
                            (None, _) => return Err(self.error(start, ErrorKind::UnclosedComment)),
                        }
                    }
                }
                _ => return Ok(()),
            }
        }
    }

    fn next(&mut self) -> Result<Token, SelectorError> {
        self.skip()?;
        let start = self.i;
        let Some(c) = self.peek(0) else {
            return Ok(Token {
                tok: Tok::End,
                column: start + 1,
            });
        };
        let two = |second: char, yes: Tok, no: Tok, lexer: &mut Self| {
            if lexer.peek(1) == Some(second) {
                lexer.i += 2;
                yes
            } else {
                lexer.i += 1;
                no
            }
        };
        let tok = match c {
            '(' | ')' | ',' | '=' | '+' | '-' | '*' | '/' => {
                self.i += 1;
                match c {
                    '(' => Tok::LParen,
                    ')' => Tok::RParen,
                    ',' => Tok::Comma,
                    '=' => Tok::Eq,
                    '+' => Tok::Plus,
                    '-' => Tok::Minus,
                    '*' => Tok::Star,
                    _ => Tok::Slash,
                }
            }
            '<' => match self.peek(1) {
                Some('>') => {
                    self.i += 2;
                    Tok::Ne
                }
                _ => two('=', Tok::Le, Tok::Lt, self),
            },
            '>' => two('=', Tok::Ge, Tok::Gt, self),
            '\'' => self.string()?,
            c if c.is_ascii_digit() => self.number()?,
            '.' if self.peek(1).is_some_and(|d| d.is_ascii_digit()) => self.number()?,
            c if is_ident_start(c) => {
                while self.peek(0).is_some_and(is_ident_part) {
                    self.i += 1;
                }
                let word: String = self.chars[start..self.i].iter().collect();
                match Keyword::lookup(&word) {
                    Some(k) => Tok::Keyword(k),
                    None => Tok::Ident(word),
                }
            }
            other => {
                let hint = match other {
                    '!' => "; write <> for not equal",
                    '"' => "; strings are written in single quotes",
                    '%' => "; % is a wildcard inside LIKE patterns, not an operator",
                    _ => "",
                };
                return Err(self.error(start, ErrorKind::UnexpectedChar { found: other, hint }));
            }
        };
        Ok(Token {
            tok,
            column: start + 1,
        })
    }

    /// A string literal from its opening quote.
    fn string(&mut self) -> Result<Tok, SelectorError> {
        let start = self.i;
        self.i += 1;
        let mut s = String::new();
        loop {
            match self.peek(0) {
                None => return Err(self.error(start, ErrorKind::UnclosedString)),
                Some('\'') if self.peek(1) == Some('\'') => {
                    s.push('\'');
                    self.i += 2;
                }
                Some('\'') => {
                    self.i += 1;
                    return Ok(Tok::Str(s));
                }
                Some(c) => {
                    s.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// A number: decimal, `0x` hexadecimal or leading-`0` octal integers with an optional
    /// `L`; decimals with a fraction or an exponent, or any decimal with `D` or `F`, are
    /// approximate.
    fn number(&mut self) -> Result<Tok, SelectorError> {
        let start = self.i;
        let digits = |lexer: &mut Self, radix: u32| {
            let from = lexer.i;
            while lexer.peek(0).is_some_and(|c| c.is_digit(radix)) {
                lexer.i += 1;
            }
            lexer.i - from
        };
        let tok = if self.peek(0) == Some('0') && matches!(self.peek(1), Some('x' | 'X')) {
            self.i += 2;
            if digits(self, 16) == 0 {
                return Err(self.malformed(start, "; 0x must be followed by hexadecimal digits"));
            }
            self.exact(start, 16)?
        } else {
            digits(self, 10);
            let mut approximate = false;
            if self.peek(0) == Some('.') {
                self.i += 1;
                digits(self, 10);
                approximate = true;
            }
            if matches!(self.peek(0), Some('e' | 'E')) {
                let sign = usize::from(matches!(self.peek(1), Some('+' | '-')));
                if self.peek(1 + sign).is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1 + sign;
                    digits(self, 10);
                    approximate = true;
                }
            }
            if matches!(self.peek(0), Some('d' | 'D' | 'f' | 'F')) {
                let text: String = self.chars[start..self.i].iter().collect();
                self.i += 1;
                self.check_end(start)?;
                return self.approx(start, &text);
            }
            if approximate {
                let text: String = self.chars[start..self.i].iter().collect();
                self.check_end(start)?;
                return self.approx(start, &text);
            }
            if self.chars[start] == '0' && self.i - start > 1 {
                if self.chars[start..self.i].iter().any(|&c| !c.is_digit(8)) {
                    self.check_end(start)?;
                    return Err(self.malformed(
                        start,
                        "; a leading 0 makes an octal number, with digits 0 to 7",
                    ));
                }
                self.exact(start, 8)?
            } else {
                self.exact(start, 10)?
            }
        };
        Ok(tok)
    }

    /// The integer from `start` (after any `0x`) to here, then its optional `L`.
    fn exact(&mut self, start: usize, radix: u32) -> Result<Tok, SelectorError> {
        let skip = if radix == 16 { 2 } else { 0 };
        let mut value: Option<u64> = Some(0);
        for c in &self.chars[start + skip..self.i] {
            let d = u64::from(c.to_digit(radix).unwrap_or(0));
            value = value
                .and_then(|v| v.checked_mul(u64::from(radix)))
                .and_then(|v| v.checked_add(d));
        }
        if matches!(self.peek(0), Some('l' | 'L')) {
            self.i += 1;
        }
        self.check_end(start)?;
        let text: String = self.chars[start..self.i].iter().collect();
        match value {
            Some(v) if v <= MAX_MAGNITUDE => Ok(Tok::Exact(v, text)),
            _ => Err(self.error(
                start,
                ErrorKind::NumberOutOfRange {
                    text,
                    hint: "; exact numbers are 64-bit integers",
                },
            )),
        }
    }

    fn approx(&self, start: usize, text: &str) -> Result<Tok, SelectorError> {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Tok::Approx(f)),
            Ok(_) => Err(self.error(
                start,
                ErrorKind::NumberOutOfRange {
                    text: text.to_owned(),
                    hint: "; approximate numbers are 64-bit doubles",
                },
            )),
            Err(_) => Err(self.malformed(start, "")),
        }
    }

    /// A number must not run into a letter or digit (`5abc`, `1e`, `0x1g`).
    fn check_end(&mut self, start: usize) -> Result<(), SelectorError> {
        if self.peek(0).is_some_and(is_ident_part) {
            while self.peek(0).is_some_and(is_ident_part) {
                self.i += 1;
            }
            return Err(self.malformed(start, ""));
        }
        Ok(())
    }

    fn malformed(&self, start: usize, hint: &'static str) -> SelectorError {
        let end = (start + 1).max(self.i).min(self.chars.len());
        let text: String = self.chars[start..end].iter().collect();
        self.error(start, ErrorKind::MalformedNumber { text, hint })
    }
}
