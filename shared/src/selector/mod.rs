//! JMS message selectors: the SQL-92 conditional expressions a SUBSCRIBE's `selector` header
//! carries, parsed once and evaluated against each message's headers. Pure: no I/O, and no
//! allocation while evaluating.
//!
//! ```
//! use mq_shared::selector::Selector;
//!
//! let s = Selector::parse("type = 'order' AND amount > 100 AND region IN ('eu', 'us')")?;
//! let headers = [("type", "order"), ("amount", "250"), ("region", "eu")];
//! assert!(s.matches(&headers[..]));
//! assert!(!s.matches(&[("type", "order")][..])); // amount and region missing: UNKNOWN
//! # Ok::<(), mq_shared::selector::SelectorError>(())
//! ```
//!
//! # Grammar
//!
//! Loosest first; keywords in any case, identifiers case-sensitive.
//!
//! ```text
//! selector   = or                                        ; must be a condition
//! or         = and { OR and }
//! and        = not { AND not }
//! not        = NOT not | predicate
//! predicate  = sum [ ( "=" | "<>" | "<" | "<=" | ">" | ">=" ) sum
//!                  | [ NOT ] BETWEEN sum AND sum
//!                  | [ NOT ] IN "(" string { "," string } ")"
//!                  | [ NOT ] LIKE string [ ESCAPE string ]    ; ESCAPE: one character
//!                  | IS [ NOT ] NULL ]                        ; predicates do not chain
//! sum        = product { ( "+" | "-" ) product }
//! product    = unary { ( "*" | "/" ) unary }
//! unary      = ( "+" | "-" ) unary | primary
//! primary    = literal | identifier | "(" or ")"
//! literal    = string | exact | approximate | TRUE | FALSE | NULL
//! string     = "'" { char | "''" } "'"                    ; '' is one quote
//! exact      = ( "1".."9" { digit } | ( "0x" | "0X" ) hex { hex } | "0" { "0".."7" } )
//!              [ "L" | "l" ]
//! approximate = digits "." [ digits ] [ exponent ] [ suffix ]   ; 1.5  1.  1.5e3
//!             | "." digits [ exponent ] [ suffix ]             ; .5
//!             | digits exponent [ suffix ] | digits suffix     ; 1e3  1D
//! exponent   = ( "e" | "E" ) [ "+" | "-" ] digits
//! suffix     = "D" | "d" | "F" | "f"                      ; tolerated, always a double
//! identifier = ( letter | "_" | "$" ) { letter | digit | "_" | "$" }, not a keyword
//! keyword    = NOT AND OR BETWEEN LIKE ESCAPE IN IS TRUE FALSE NULL
//! ```
//!
//! Blanks are space, tab, CR, LF and form feed; `-- to the end of the line` and `/* ... */`
//! are comments. Exact numbers are 64-bit integers (`-9223372036854775808` is valid: a sign
//! straight before a number is part of it); a larger one, or a double that overflows, is an
//! error. `0x1F` is hexadecimal and `017` octal (as ActiveMQ reads them); `08` is an error.
//!
//! # Evaluation
//!
//! Three-valued, as JMS specifies: a header the message does not have is NULL; arithmetic or
//! a comparison with NULL gives NULL (UNKNOWN); `NOT UNKNOWN` is UNKNOWN; `FALSE AND UNKNOWN`
//! is FALSE and `TRUE OR UNKNOWN` is TRUE; `IS [NOT] NULL` is never UNKNOWN; `x BETWEEN a AND
//! b` is `x >= a AND x <= b`. A message matches only when the whole selector is TRUE.
//!
//! Values that cannot be compared make a comparison FALSE, as JMS says ("the comparison of
//! non-like type values is false"), and `a <> b` is always `NOT (a = b)`, as in ActiveMQ:
//! so with `a:abc`, `a = 5` is FALSE and `a <> 5` TRUE. Strings compare only with `=` and `<>`
//! (`<` and the others order numbers). `LIKE` and `IN` on a number are FALSE. Division is
//! always approximate (`7 / 2 = 3.5`, as in ActiveMQ); an integer `+ - *` that overflows
//! gives a double.
//!
//! ## Header values
//!
//! STOMP headers are text, so a header's value takes its type from what it meets:
//!
//! - next to a number (the other side of `=` or `<>`), or where a number is needed
//!   (arithmetic, `< <= > >=`, `BETWEEN`), the text is a number when it is spelled as a
//!   decimal one: a 64-bit integer (`250`, `-3`, `+7`), else a double (`2.5`, `1e3`, `.5`).
//!   Text that is not (`abc`, `0x10`, ` 5`, `5L`) makes the comparison FALSE and arithmetic NULL;
//! - next to a boolean, or as a condition by itself (`urgent AND ...`), `true` and `false` in
//!   any case are booleans; other text makes the comparison FALSE, and the condition FALSE;
//! - otherwise (`=`, `<>` with a string, `LIKE`, `IN`) it is a string.
//!
//! So `amount > 100` and `amount = 100` read `amount:250` as the number 250, `amount = '250'`
//! compares the text, and `a = b` between two headers compares their texts. Only header text
//! converts: string literals and `JMSDeliveryMode` are strings, and `JMSPriority`,
//! `JMSTimestamp` and `JMSExpiration` numbers, so `JMSPriority = '7'` is FALSE as in JMS.
//!
//! ## JMS names
//!
//! | identifier | reads | when absent |
//! | --- | --- | --- |
//! | `JMSPriority` | [`Properties::priority`] (header `priority`) | 4 |
//! | `JMSType` | header `type` | NULL |
//! | `JMSCorrelationID` | header `correlation-id` | NULL |
//! | `JMSMessageID` | header `message-id` | NULL |
//! | `JMSTimestamp` | [`Properties::timestamp`] (header `timestamp`) | NULL |
//! | `JMSDeliveryMode` | `'PERSISTENT'` if [`Properties::persistent`] (`persistent:true`), else `'NON_PERSISTENT'` | `'NON_PERSISTENT'` |
//! | `JMSXGroupID` | header `JMSXGroupID` | NULL |
//! | `JMSExpiration` | [`Properties::expiration`] (header `expires`) | 0 |
//!
//! Any other identifier reads the header of that exact name. A header whose name is not an
//! identifier cannot be selected on, as in ActiveMQ: `content-type = 5` reads
//! `content - type = 5`.
//!
//! # Limits
//!
//! [`Limits`] guard against hostile selectors; past one, parsing fails with an error (never a
//! panic or a stack overflow): the text's length in bytes ([`MAX_LENGTH`]), the nesting of
//! parentheses, `NOT`s and signs ([`MAX_DEPTH`]; chains of `AND`, `OR` and arithmetic do not
//! nest, so `a = 1 OR a = 2 OR ...` is only bounded by the length), and the entries of one `IN`
//! list ([`MAX_IN_LIST`]). The tree is at most a few nodes deep per nesting level, so
//! evaluation's recursion is bounded too. At the default depth, parsing needs about 200 KiB of
//! stack in a release build and 1 MiB in a debug one, within a tokio worker's 2 MiB. `LIKE`
//! costs at most the value's length times the pattern's.
//!
//! # Errors
//!
//! [`SelectorError`] names the 1-based column (in characters) and what was expected there,
//! as one sentence fit for an ERROR frame: `selector error at column 12: expected a value
//! after '=', found the end of the selector`. Types are checked when parsing where they are
//! known: `'a' > 1`, `1 AND x`, `'a' = 1`, `x = NULL` (write `x IS NULL`) are errors.
//!
//! # Differences from ActiveMQ's parser
//!
//! - Precedence is SQL-92's: `NOT` binds looser than a comparison, so `NOT a = 1` is
//!   `NOT (a = 1)` (ActiveMQ reads `(NOT a) = 1`), and `=`, `<>` bind like `<`, `LIKE` and the
//!   others (ActiveMQ binds them looser). Predicates do not chain: `a = b = c`, which ActiveMQ
//!   reads as `(a = b) = c`, needs its parentheses here.
//! - Header text converts by the rule above. ActiveMQ's STOMP transport converts too (it
//!   prefixes every STOMP selector with `convert_string_expressions:`), but to the type of
//!   the other side with Java's `valueOf`: there `amount > 100` is FALSE for `amount:250.5`
//!   (not an `Integer`), `flag = FALSE` holds for any `flag` but `true`, string literals
//!   convert too (`JMSPriority = '7'`), two headers order as text, and a bare header is never
//!   TRUE (`urgent` alone, with `urgent:true`, is TRUE here).
//! - `+` adds numbers only (ActiveMQ also concatenates strings); there is no `%` (modulo),
//!   `XPATH` or `XQUERY`.
//! - In a `LIKE` pattern, the escape character must be followed by `%`, `_` or itself, as
//!   SQL-92 says (ActiveMQ takes it literally otherwise).
//! - Identifiers follow Java's rules (Unicode letters and digits, `_`, `$`); ActiveMQ accepts
//!   only ASCII ones. `D`/`F` suffixes and `L` on hexadecimal or octal numbers are accepted.
//! - An integer literal too large for 64 bits is an error (ActiveMQ keeps it as a decimal),
//!   and so is `=` or `<>` between literals of two types (`'a' = 1`, never TRUE), which
//!   ActiveMQ accepts. `IN` and `LIKE` take any string operand, not only a header.

mod ast;
mod error;
mod eval;
mod lexer;
mod like;
mod parser;

#[cfg(test)]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use error::{ErrorKind, SelectorError};
pub use eval::{DEFAULT_PRIORITY, Properties};

use ast::Expr;
use eval::Truth;

/// The value of the first name in `table` that `same` accepts (the keywords, the JMS names).
fn value_named<T>(
    table: &'static [(&'static str, T)],
    same: impl Fn(&str) -> bool,
) -> Option<&'static T> {
    table.iter().find(|(n, _)| same(n)).map(|(_, v)| v)
}

/// The name `table` gives `value` ("" for none).
fn name_of<T: PartialEq>(table: &'static [(&'static str, T)], value: &T) -> &'static str {
    table
        .iter()
        .find(|(_, v)| v == value)
        .map_or("", |(n, _)| n)
}

/// Longest selector accepted, in bytes (a STOMP header line is at most 10 KiB anyway).
pub const MAX_LENGTH: usize = 16 * 1024;
/// Deepest nesting of parentheses, `NOT`s and signs (the whole selector is level 1).
pub const MAX_DEPTH: usize = 64;
/// Most strings in one `IN` list.
pub const MAX_IN_LIST: usize = 1024;

/// Bounds on what a selector may ask of the parser and the evaluator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest text, in bytes.
    pub max_length: usize,
    /// Deepest nesting of parentheses, `NOT`s and signs.
    pub max_depth: usize,
    /// Most strings in one `IN` list.
    pub max_in_list: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_length: MAX_LENGTH,
            max_depth: MAX_DEPTH,
            max_in_list: MAX_IN_LIST,
        }
    }
}

/// A parsed selector, ready to test messages. [`fmt::Display`] prints its normalised form,
/// which parses back to the same selector.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    expr: Expr,
}

impl Selector {
    /// Parses `text` within the default [`Limits`].
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        Selector::parse_with(text, &Limits::default())
    }

    /// Parses `text` within `limits`.
    pub fn parse_with(text: &str, limits: &Limits) -> Result<Selector, SelectorError> {
        if text.len() > limits.max_length {
            let mut cut = limits.max_length;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return Err(SelectorError {
                column: text[..cut].chars().count() + 1,
                kind: ErrorKind::TooLong {
                    limit: limits.max_length,
                },
            });
        }
        let tokens = lexer::tokens(text)?;
        let expr = parser::parse(&tokens, limits)?;
        Ok(Selector { expr })
    }

    /// Whether the message with these headers is selected: the selector is TRUE for it.
    pub fn matches<P: Properties + ?Sized>(&self, props: &P) -> bool {
        self.evaluate(props) == Some(true)
    }

    /// The selector's three-valued result for a message: `None` is UNKNOWN.
    pub fn evaluate<P: Properties + ?Sized>(&self, props: &P) -> Option<bool> {
        match eval::truth(&self.expr, props) {
            Truth::True => Some(true),
            Truth::False => Some(false),
            Truth::Unknown => None,
        }
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Selector, SelectorError> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt(f)
    }
}
