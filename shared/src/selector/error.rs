//! [`SelectorError`]: why a selector was refused, with the column where it went wrong.

/// A selector that cannot be used. Its text is one sentence fit for the `message` header of an
/// ERROR frame, e.g. `selector error at column 12: expected a value after '=', found the end of
/// the selector`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("selector error at column {column}: {kind}")]
pub struct SelectorError {
    /// 1-based column, counted in characters over the whole text (a line break is one
    /// character like any other).
    pub column: usize,
    /// What is wrong there.
    pub kind: ErrorKind,
}

/// What is wrong with a selector; each text reads on after `selector error at column N: `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// Nothing but blanks and comments.
    #[error("the selector is empty")]
    Empty,
    /// Longer than [`Limits::max_length`](super::Limits::max_length).
    #[error("the selector is longer than the maximum of {limit} bytes")]
    TooLong {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Parentheses, `NOT`s and signs nested past [`Limits::max_depth`](super::Limits::max_depth).
    #[error("the selector nests deeper than the maximum of {limit} levels")]
    TooDeep {
        /// The limit, in levels.
        limit: usize,
    },
    /// An `IN` list longer than [`Limits::max_in_list`](super::Limits::max_in_list).
    #[error("the IN list has more than the maximum of {limit} entries")]
    InListTooLong {
        /// The limit, in entries.
        limit: usize,
    },
    /// A character that starts no token.
    #[error("unexpected character {found:?}{hint}")]
    UnexpectedChar {
        /// The character.
        found: char,
        /// A hint for a common mistake (starts with `"; "`), or empty.
        hint: &'static str,
    },
    /// A `'` with no closing `'`.
    #[error("the string that starts here is not closed (a quote inside a string is written '')")]
    UnclosedString,
    /// A `/*` with no `*/`.
    #[error("the comment that starts here is not closed")]
    UnclosedComment,
    /// A number that is not well formed, e.g. `08` or `1e`.
    #[error("malformed number {text}{hint}")]
    MalformedNumber {
        /// The text of the number.
        text: String,
        /// Why (starts with `"; "`), or empty.
        hint: &'static str,
    },
    /// A number too large for its type (a 64-bit integer or a finite double).
    #[error("number {text} is out of range{hint}")]
    NumberOutOfRange {
        /// The text of the number.
        text: String,
        /// The range (starts with `"; "`).
        hint: &'static str,
    },
    /// The next token is not one that can come here.
    #[error("expected {expected}, found {found}")]
    Expected {
        /// What could come here.
        expected: String,
        /// What came, e.g. `keyword AND`, `'='`, `the end of the selector`.
        found: String,
    },
    /// A `)` with no `(` before it.
    #[error("')' has no matching '('")]
    UnmatchedClose,
    /// An operand of the wrong type, e.g. a string where `>` needs a number.
    #[error("expected {expected}, found {found}")]
    WrongType {
        /// The type needed: `a condition`, `a number` or `a string`.
        expected: &'static str,
        /// The type found: `a number`, `a string`, `a boolean`.
        found: &'static str,
    },
    /// `=` or `<>` between literals of different types, e.g. `'a' = 1` (never true).
    #[error("{left} cannot be compared with {right}")]
    Incomparable {
        /// The left operand's type.
        left: &'static str,
        /// The right operand's type.
        right: &'static str,
    },
    /// The `NULL` literal as an operand of a comparison (always UNKNOWN).
    #[error("NULL cannot be compared; write IS NULL or IS NOT NULL")]
    NullComparison,
    /// An `ESCAPE` string that is not exactly one character.
    #[error("the ESCAPE string must be exactly one character, found '{0}'")]
    BadEscape(String),
    /// A `LIKE` pattern whose escape character is not followed by `%`, `_` or itself.
    #[error(
        "in the LIKE pattern, the escape character {0:?} must be followed by '%', '_' or itself"
    )]
    BadPattern(char),
}
