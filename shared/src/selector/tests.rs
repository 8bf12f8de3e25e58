//! The selector's behaviour as a table of (selector, headers, result), its errors with their
//! columns, its limits, and two properties: printing then parsing gives the same selector, and
//! no input makes the parser panic.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;

use super::ast::{ArithOp, CmpOp, Expr, Field, InList, Literal, Sign};
use super::lexer::Keyword;
use super::like::LikePattern;
use super::*;

/// Three-valued results, as [`Selector::evaluate`] gives them.
const T: Option<bool> = Some(true);
const F: Option<bool> = Some(false);
const U: Option<bool> = None;

/// The headers most cases run against.
const HEADERS: &[(&str, &str)] = &[
    ("type", "order"),
    ("amount", "250"),
    ("region", "eu"),
    ("name", "O'Brien"),
    ("price", "9.5"),
    ("flag", "true"),
    ("upper", "TRUE"),
    ("neg", "-3"),
    ("big", "9223372036854775807"),
    ("text", "abc"),
    ("empty", ""),
    ("pct", "100%"),
    ("under", "a_b"),
    ("$x", "1"),
    ("_a", "y"),
    ("héllo", "w"),
    ("nullable", "n"),
    ("android", "5"),
    ("other", "250"),
];

fn eval(selector: &str, headers: &[(&str, &str)]) -> Option<bool> {
    match Selector::parse(selector) {
        Ok(s) => s.evaluate(headers),
        Err(e) => panic!("{selector:?} should parse: {e}"),
    }
}

fn check(cases: &[(&str, Option<bool>)], headers: &[(&str, &str)]) {
    let mut failures = Vec::new();
    for (selector, want) in cases {
        let got = eval(selector, headers);
        if got != *want {
            failures.push(format!("{selector:?}: got {got:?}, want {want:?}"));
        }
        // The normalised form means the same.
        let normal = Selector::parse(selector).unwrap().to_string();
        assert_eq!(
            eval(&normal, headers),
            got,
            "{selector:?} printed as {normal:?}"
        );
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn comparisons() {
    check(
        &[
            ("type = 'order'", T),
            ("type = 'Order'", F),
            ("type <> 'order'", F),
            ("type <> 'x'", T),
            ("missing = 'x'", U),
            ("missing <> 'x'", U),
            ("'x' = missing", U),
            ("1 = 1", T),
            ("1 = 1.0", T),
            ("1 <> 2", T),
            ("'a' = 'a'", T),
            ("'a' <> 'b'", T),
            ("TRUE = TRUE", T),
            ("TRUE <> FALSE", T),
            ("amount > 100", T),
            ("amount < 100", F),
            ("amount >= 250", T),
            ("amount <= 249", F),
            ("amount > 250", F),
            ("amount < 250.5", T),
            ("price > 9", T),
            ("price = 9.5", T),
            ("price < 9.25", F),
            ("missing > 1", U),
            ("1 < missing", U),
            ("neg = -3", T),
            ("neg = - 3", T),
            ("neg < 0", T),
            ("neg > -4", T),
            ("other = amount", T),
            ("other <> amount", F),
            // Ordering reads both headers as numbers: 250 < 9.5 is false.
            ("amount < price", F),
            ("amount > price", T),
            ("type < amount", F),
        ],
        HEADERS,
    );
}

#[test]
fn header_text_takes_the_type_it_meets() {
    check(
        &[
            // Next to a number, text spelled as a number is that number.
            ("amount = 250", T),
            ("amount = 250.0", T),
            ("amount = 2.5e2", T),
            ("amount <> 250", F),
            ("amount = 0xFA", T),
            // Next to a string, it is the text.
            ("amount = '250'", T),
            ("amount = '250.0'", F),
            ("amount LIKE '2%'", T),
            ("amount IN ('250')", T),
            // Text that is not a number does not compare with one: FALSE, not UNKNOWN.
            ("text = 1", F),
            ("text <> 1", T),
            ("text > 1", F),
            ("NOT text > 1", T),
            ("text BETWEEN 1 AND 2", F),
            ("NOT text BETWEEN 1 AND 2", T),
            ("empty = 0", F),
            // ... and arithmetic on it is NULL.
            ("text + 1 = 2", U),
            ("text + 1 IS NULL", T),
            ("flag + 1 = 2", U),
            // Next to a boolean, or as a condition, `true` and `false` in any case.
            ("flag", T),
            ("upper", T),
            ("NOT flag", F),
            ("flag = TRUE", T),
            ("flag = FALSE", F),
            ("flag <> FALSE", T),
            ("upper = TRUE", T),
            ("flag = 'true'", T),
            ("upper = 'true'", F),
            ("flag AND type = 'order'", T),
            ("text", F),
            ("NOT text", T),
            ("text = TRUE", F),
            ("text <> TRUE", T),
            ("missing", U),
            ("NOT missing", U),
            // Header values with blanks, hex or suffixes are not numbers.
            ("hex = 16", F),
            ("spaced = 5", F),
            ("suffixed = 5", F),
            ("plus = 7", T),
            ("half = 0.5", T),
            ("huge > 1e20", T),
        ],
        &[
            ("type", "order"),
            ("amount", "250"),
            ("text", "abc"),
            ("empty", ""),
            ("flag", "true"),
            ("upper", "TRUE"),
            ("hex", "0x10"),
            ("spaced", " 5"),
            ("suffixed", "5L"),
            ("plus", "+7"),
            ("half", ".5"),
            ("huge", "123456789012345678901234"),
        ],
    );
}

#[test]
fn typed_values_do_not_convert() {
    check(
        &[
            // JMSPriority is a number and JMSDeliveryMode a string, whatever the literal.
            ("JMSPriority = 7", T),
            ("JMSPriority = '7'", F),
            ("JMSPriority <> '7'", T),
            ("JMSPriority IN ('7')", F),
            ("JMSPriority NOT IN ('7')", T),
            ("JMSPriority LIKE '7'", F),
            ("JMSPriority", F),
            ("JMSDeliveryMode = 'PERSISTENT'", T),
            ("JMSDeliveryMode = 1", F),
            ("JMSDeliveryMode = TRUE", F),
            ("JMSDeliveryMode + 1 IS NULL", T),
            ("JMSDeliveryMode > 1", F),
        ],
        &[("priority", "7"), ("persistent", "true")],
    );
}

#[test]
fn arithmetic() {
    check(
        &[
            ("amount + 1 = 251", T),
            ("amount - 50 = 200", T),
            ("amount * 2 = 500", T),
            ("amount / 2 = 125", T),
            ("7 / 2 = 3.5", T),
            ("6 / 3 = 2", T),
            ("2 + 3 * 4 = 14", T),
            ("(2 + 3) * 4 = 20", T),
            ("10 - 2 - 3 = 5", T),
            ("10 - (2 - 3) = 11", T),
            ("2 * 3 / 4 = 1.5", T),
            ("12 / 2 / 3 = 2", T),
            ("-2 * -3 = 6", T),
            ("- (2 + 3) = -5", T),
            ("-amount = -250", T),
            ("- -amount = 250", T),
            ("+amount = 250", T),
            ("+ +5 = 5", T),
            ("price * 2 = 19", T),
            ("1.5 + 1 = 2.5", T),
            ("missing + 1 = 2", U),
            ("1 - missing = 2", U),
            ("-missing = 1", U),
            ("NULL + 1 IS NULL", T),
            ("1 / 0 > 1000000", T),
            ("0 / 0 = 0", F),
            ("0 / 0 <> 0", T),
            // Integer overflow becomes a double instead of wrapping.
            ("9223372036854775807 + 1 > 9223372036854775807", T),
            ("-9223372036854775808 - 1 < -9223372036854775807", T),
            ("9223372036854775807 * 2 > 0", T),
            ("-(-9223372036854775808) > 0", T),
            ("big + 0 = 9223372036854775807", T),
            // Integers and doubles compare by value, not after rounding.
            ("big < 9223372036854775807.0", T),
            ("big = 9223372036854775807.0", F),
            ("9007199254740993 > 9007199254740992.0", T),
            ("9007199254740993 = 9007199254740992.0", F),
        ],
        HEADERS,
    );
}

#[test]
fn three_valued_logic() {
    check(
        &[
            ("TRUE AND TRUE", T),
            ("TRUE AND FALSE", F),
            ("FALSE AND TRUE", F),
            ("missing = 1 AND FALSE", F),
            ("FALSE AND missing = 1", F),
            ("missing = 1 AND TRUE", U),
            ("missing = 1 AND missing = 2", U),
            ("TRUE OR FALSE", T),
            ("FALSE OR FALSE", F),
            ("missing = 1 OR TRUE", T),
            ("TRUE OR missing = 1", T),
            ("missing = 1 OR FALSE", U),
            ("missing = 1 OR missing = 2", U),
            ("NOT TRUE", F),
            ("NOT FALSE", T),
            ("NOT (missing = 1)", U),
            ("NOT NOT TRUE", T),
            ("NULL", U),
            ("NOT NULL", U),
            ("NULL OR TRUE", T),
            ("NULL AND FALSE", F),
            ("NULL AND TRUE", U),
            ("TRUE", T),
            ("FALSE", F),
            ("(missing = 1) = TRUE", U),
            ("(type = 'order') = TRUE", T),
            ("(type = 'order') <> (amount > 1000)", T),
        ],
        HEADERS,
    );
}

#[test]
fn precedence() {
    check(
        &[
            // NOT binds looser than a comparison (SQL-92): NOT (type = 'order').
            ("NOT type = 'order'", F),
            ("NOT type = 'x'", T),
            ("NOT amount > 100", F),
            ("NOT region IN ('eu')", F),
            // AND binds tighter than OR.
            ("TRUE OR TRUE AND FALSE", T),
            ("(TRUE OR TRUE) AND FALSE", F),
            ("FALSE AND FALSE OR TRUE", T),
            ("FALSE AND (FALSE OR TRUE)", F),
            ("NOT FALSE AND FALSE", F),
            ("NOT (FALSE AND FALSE)", T),
            ("amount > 100 AND region = 'eu' OR type = 'x'", T),
            ("type = 'x' OR amount > 100 AND region = 'eu'", T),
            ("type = 'x' OR amount > 100 AND region = 'us'", F),
            // Arithmetic binds tighter than comparison.
            ("amount - 200 > 40 + 5", T),
            ("amount BETWEEN 200 + 40 AND 250 * 1", T),
        ],
        HEADERS,
    );
}

#[test]
fn between() {
    check(
        &[
            ("amount BETWEEN 100 AND 300", T),
            ("amount BETWEEN 250 AND 250", T),
            ("amount BETWEEN 251 AND 300", F),
            ("amount BETWEEN 300 AND 100", F),
            ("amount NOT BETWEEN 251 AND 300", T),
            ("amount NOT BETWEEN 100 AND 300", F),
            ("price BETWEEN 9 AND 10", T),
            ("2 + 3 BETWEEN 5 AND 5", T),
            ("missing BETWEEN 1 AND 2", U),
            ("missing NOT BETWEEN 1 AND 2", U),
            ("amount BETWEEN missing AND 100", F),
            ("amount BETWEEN missing AND 300", U),
            ("amount NOT BETWEEN missing AND 100", T),
            ("amount BETWEEN 300 AND missing", F),
            ("amount BETWEEN 100 AND 300 AND type = 'order'", T),
            ("amount BETWEEN 100 AND 200 OR type = 'order'", T),
        ],
        HEADERS,
    );
}

#[test]
fn in_lists() {
    check(
        &[
            ("region IN ('eu', 'us')", T),
            ("region IN ('eu')", T),
            ("region IN ('us')", F),
            ("region IN ('EU')", F),
            ("region NOT IN ('us')", T),
            ("region NOT IN ('us', 'eu')", F),
            ("missing IN ('a')", U),
            ("missing NOT IN ('a')", U),
            ("name IN ('O''Brien')", T),
            ("empty IN ('')", T),
            // Long lists are searched in a sorted copy: same answers.
            (
                "region IN ('k', 'j', 'i', 'h', 'g', 'f', 'e', 'd', 'c', 'b', 'eu')",
                T,
            ),
            (
                "region IN ('k', 'j', 'i', 'h', 'g', 'f', 'e', 'd', 'c', 'b', 'a')",
                F,
            ),
            (
                "region NOT IN ('k', 'j', 'i', 'h', 'g', 'f', 'e', 'd', 'c', 'eu', 'eu')",
                F,
            ),
        ],
        HEADERS,
    );
}

#[test]
fn like() {
    check(
        &[
            ("type LIKE 'order'", T),
            ("type LIKE 'ord%'", T),
            ("type LIKE '%der'", T),
            ("type LIKE '%rd%'", T),
            ("type LIKE '_rder'", T),
            ("type LIKE 'o_d_r'", T),
            ("type LIKE 'order_'", F),
            ("type LIKE 'ORDER'", F),
            ("type LIKE '%'", T),
            ("type NOT LIKE 'x%'", T),
            ("type NOT LIKE 'o%'", F),
            ("name LIKE 'O''%'", T),
            ("empty LIKE ''", T),
            ("empty LIKE '%'", T),
            ("empty LIKE '_'", F),
            ("héllo LIKE '_'", T),
            ("missing LIKE '%'", U),
            ("missing NOT LIKE '%'", U),
            ("pct LIKE '100\\%' ESCAPE '\\'", T),
            ("amount LIKE '25\\%' ESCAPE '\\'", F),
            ("pct LIKE '100!%' ESCAPE '!'", T),
            ("pct LIKE '%!%' ESCAPE '!'", T),
            ("type LIKE '%!%' ESCAPE '!'", F),
            ("under LIKE 'a!_b' ESCAPE '!'", T),
            ("type LIKE 'o!_der' ESCAPE '!'", F),
            ("name LIKE '%''%' ESCAPE ''''", F),
            ("name LIKE '%''''%' ESCAPE ''''", T),
        ],
        HEADERS,
    );
}

#[test]
fn is_null() {
    check(
        &[
            ("missing IS NULL", T),
            ("missing IS NOT NULL", F),
            ("type IS NULL", F),
            ("type IS NOT NULL", T),
            ("empty IS NULL", F),
            ("(missing = 1) IS NULL", T),
            ("(type = 'order') IS NULL", F),
            ("missing + 1 IS NULL", T),
            ("NOT missing IS NULL", F),
            ("NULL IS NULL", T),
            ("missing IS NULL AND type IS NOT NULL", T),
        ],
        HEADERS,
    );
}

#[test]
fn keywords_and_identifiers() {
    check(
        &[
            // Keywords in any case.
            ("type = 'order' and amount > 100", T),
            ("type = 'x' Or amount > 100", T),
            ("NoT type = 'x'", T),
            ("amount between 1 and 300", T),
            ("amount not between 1 and 300", F),
            ("region in ('eu')", T),
            ("type like 'o%' escape '!'", T),
            ("missing is null", T),
            ("missing is not null", F),
            ("true", T),
            ("True And false", F),
            ("null", U),
            // Identifiers are case-sensitive.
            ("Type = 'order'", U),
            ("TYPE IS NULL", T),
            // Java identifier rules; a keyword inside a name is only a name.
            ("$x = 1", T),
            ("_a = 'y'", T),
            ("héllo = 'w'", T),
            ("nullable = 'n'", T),
            ("android = 5", T),
            ("isnot IS NULL", T),
            ("NOTtype IS NULL", T),
        ],
        HEADERS,
    );
}

#[test]
fn literals() {
    check(
        &[
            ("0x1F = 31", T),
            ("0X1f = 31", T),
            ("017 = 15", T),
            ("0 = 0", T),
            ("00 = 0", T),
            ("5L = 5", T),
            ("5l = 5", T),
            ("0x10L = 16", T),
            ("1.5D = 1.5", T),
            ("1.5f = 1.5", T),
            ("5D = 5.0", T),
            ("1e3 = 1000", T),
            ("1E+3 = 1000", T),
            ("15e-1 = 1.5", T),
            (".5 = 0.5", T),
            ("5. = 5", T),
            ("5.e1 = 50", T),
            ("09.5 = 9.5", T),
            ("-9223372036854775808 < 0", T),
            ("9223372036854775807 > 0", T),
            ("'it''s' = 'it''s'", T),
            ("'' = ''", T),
            ("'a''' <> 'a'", T),
            ("'línea\nnueva' LIKE 'l%a'", T),
            ("TRUE = true", T),
        ],
        &[],
    );
}

#[test]
fn comments_and_blanks() {
    check(
        &[
            ("type = 'order' -- the rest is a comment", T),
            ("type = 'order' -- comment\nAND amount > 100", T),
            ("type = 'order' -- comment\r\nAND amount > 1000", F),
            ("/* lead */ type /* mid */ = 'order'", T),
            ("type\t=\n'order'\r\u{c}", T),
            // `--` is a comment even where a minus and a negative number were meant.
            ("amount > 300--5", F),
            ("amount - -5 = 255", T),
        ],
        HEADERS,
    );
}

#[test]
fn jms_names() {
    let all: &[(&str, &str)] = &[
        ("priority", "7"),
        ("type", "order"),
        ("correlation-id", "c1"),
        ("message-id", "ID:node-1"),
        ("timestamp", "1700000000000"),
        ("persistent", "true"),
        ("JMSXGroupID", "g1"),
        ("expires", "1800000000000"),
    ];
    check(
        &[
            ("JMSPriority = 7", T),
            ("JMSPriority > 5", T),
            ("JMSPriority BETWEEN 5 AND 9", T),
            ("JMSType = 'order'", T),
            ("JMSCorrelationID = 'c1'", T),
            ("JMSMessageID LIKE 'ID:%'", T),
            ("JMSTimestamp > 1600000000000", T),
            ("JMSTimestamp = 1700000000000", T),
            ("JMSDeliveryMode = 'PERSISTENT'", T),
            ("JMSXGroupID = 'g1'", T),
            ("JMSExpiration = 1800000000000", T),
            ("JMSExpiration > 0", T),
            // JMS names are case-sensitive like any identifier.
            ("jmspriority IS NULL", T),
            ("JMSTYPE IS NULL", T),
        ],
        all,
    );
    check(
        &[
            ("JMSPriority = 4", T),
            ("JMSType IS NULL", T),
            ("JMSCorrelationID IS NULL", T),
            ("JMSMessageID IS NULL", T),
            ("JMSTimestamp IS NULL", T),
            ("JMSTimestamp > 0", U),
            ("JMSDeliveryMode = 'NON_PERSISTENT'", T),
            ("JMSXGroupID IS NULL", T),
            ("JMSExpiration = 0", T),
        ],
        &[],
    );
    check(
        &[
            ("JMSPriority = 4", T),
            ("JMSDeliveryMode = 'NON_PERSISTENT'", T),
            ("JMSTimestamp IS NULL", T),
            ("JMSExpiration = 0", T),
        ],
        &[
            ("priority", "high"),
            ("persistent", "false"),
            ("timestamp", "soon"),
            ("expires", "never"),
        ],
    );
}

/// A broker keeps some values in typed fields and overrides the trait's readers.
#[test]
fn properties_can_supply_typed_fields() {
    struct Stored {
        headers: Vec<(String, String)>,
        id: String,
        timestamp: u64,
        persistent: bool,
    }
    impl Properties for Stored {
        fn get(&self, name: &str) -> Option<&str> {
            match name {
                "message-id" => Some(&self.id),
                _ => self.headers.get(name),
            }
        }
        fn persistent(&self) -> bool {
            self.persistent
        }
        fn timestamp(&self) -> Option<i64> {
            i64::try_from(self.timestamp).ok()
        }
    }
    let m = Stored {
        headers: vec![
            ("color".into(), "red".into()),
            ("color".into(), "blue".into()),
        ],
        id: "ID:1".into(),
        timestamp: 42,
        persistent: true,
    };
    let s = Selector::parse(
        "JMSMessageID = 'ID:1' AND JMSTimestamp = 42 AND JMSDeliveryMode = 'PERSISTENT' \
         AND color = 'red'",
    )
    .unwrap();
    assert!(s.matches(&m));
    let map: std::collections::HashMap<String, String> =
        [("color".to_owned(), "red".to_owned())].into();
    assert!(Selector::parse("color = 'red'").unwrap().matches(&map));
    assert!(!Selector::parse("color = 'blue'").unwrap().matches(&map));
}

#[test]
fn matches_only_when_true() {
    let s = Selector::parse("amount > 100").unwrap();
    assert!(s.matches(&[("amount", "101")][..]));
    assert!(!s.matches(&[("amount", "100")][..]));
    assert!(!s.matches(&[("other", "1")][..]));
    assert_eq!(s.evaluate(&[("other", "1")][..]), None);
    let s: Selector = "NOT amount > 100".parse().unwrap();
    assert!(!s.matches(&[("other", "1")][..]));
}

fn error(selector: &str) -> String {
    match Selector::parse(selector) {
        Ok(s) => panic!("{selector:?} should not parse, got {s}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn errors_name_the_column_and_what_was_expected() {
    let cases: &[(&str, &str)] = &[
        ("", "column 1: the selector is empty"),
        ("  \n ", "column 1: the selector is empty"),
        ("-- only a comment", "column 1: the selector is empty"),
        (
            "a =",
            "column 4: expected a value after '=', found the end of the selector",
        ),
        (
            "a = AND",
            "column 5: expected a value after '=', found keyword AND",
        ),
        (
            "a = 1 AND",
            "column 10: expected a value after AND, found the end of the selector",
        ),
        ("in = 1", "column 1: expected a value, found keyword IN"),
        ("a = ()", "column 6: expected a value after '(', found ')'"),
        (
            "a = 'x",
            "column 5: the string that starts here is not closed (a quote inside a string is written '')",
        ),
        (
            "a = 'it's'",
            "column 10: the string that starts here is not closed (a quote inside a string is written '')",
        ),
        (
            "a != 1",
            "column 3: unexpected character '!'; write <> for not equal",
        ),
        (
            "a = \"x\"",
            "column 5: unexpected character '\"'; strings are written in single quotes",
        ),
        (
            "a % 2 = 0",
            "column 3: unexpected character '%'; % is a wildcard inside LIKE patterns, not an operator",
        ),
        ("a = 1 ^ 2", "column 7: unexpected character '^'"),
        ("a = \u{a0}1", "column 5: unexpected character '\\u{a0}'"),
        (
            "a /* open",
            "column 3: the comment that starts here is not closed",
        ),
        ("a = 1)", "column 6: ')' has no matching '('"),
        (
            "(a = 1",
            "column 7: expected an operator or ')' to close the '(' at column 1, found the end of the selector",
        ),
        (
            "((a = 1) OR b",
            "column 14: expected an operator or ')' to close the '(' at column 1, found the end of the selector",
        ),
        (
            "a = 1 b",
            "column 7: expected an operator or the end of the selector, found identifier b",
        ),
        (
            "a = 1 'b'",
            "column 7: expected an operator or the end of the selector, found string 'b'",
        ),
        (
            "a b",
            "column 3: expected an operator or the end of the selector, found identifier b",
        ),
        (
            "a = b = c",
            "column 7: expected AND, OR or the end of the selector, found '='",
        ),
        (
            "(a < b = c)",
            "column 8: expected AND, OR or ')' to close the '(' at column 1, found '='",
        ),
        (
            "a IS NULL IS NULL",
            "column 11: expected AND, OR or the end of the selector, found keyword IS",
        ),
        (
            "a = 1 NOT LIKE 'x'",
            "column 7: expected AND, OR or the end of the selector, found keyword NOT",
        ),
        (
            "a NOT = 1",
            "column 7: expected BETWEEN, IN or LIKE after NOT, found '='",
        ),
        (
            "a IS 1",
            "column 6: expected NULL or NOT NULL after IS, found number 1",
        ),
        (
            "a IS NOT 1",
            "column 10: expected NULL after IS NOT, found number 1",
        ),
        (
            "a IN 'x'",
            "column 6: expected '(' after IN, found string 'x'",
        ),
        (
            "a IN (1)",
            "column 7: expected a string literal in the IN list, found number 1",
        ),
        (
            "a IN ()",
            "column 7: expected a string literal in the IN list, found ')'",
        ),
        (
            "a IN ('x' 'y')",
            "column 11: expected ',' or ')' in the IN list, found string 'y'",
        ),
        (
            "a IN ('x',)",
            "column 11: expected a string literal in the IN list, found ')'",
        ),
        (
            "a LIKE 5",
            "column 8: expected a string literal after LIKE, found number 5",
        ),
        (
            "a LIKE b",
            "column 8: expected a string literal after LIKE, found identifier b",
        ),
        (
            "a LIKE 'x' ESCAPE",
            "column 18: expected a string literal after ESCAPE, found the end of the selector",
        ),
        (
            "a LIKE 'x' ESCAPE 'ab'",
            "column 19: the ESCAPE string must be exactly one character, found 'ab'",
        ),
        (
            "a LIKE 'x' ESCAPE ''",
            "column 19: the ESCAPE string must be exactly one character, found ''",
        ),
        (
            "a LIKE 'x!' ESCAPE '!'",
            "column 8: in the LIKE pattern, the escape character '!' must be followed by '%', '_' or itself",
        ),
        (
            "a LIKE '!x' ESCAPE '!'",
            "column 8: in the LIKE pattern, the escape character '!' must be followed by '%', '_' or itself",
        ),
        (
            "a BETWEEN 1 OR 2",
            "column 13: expected AND after the lower bound of BETWEEN, found keyword OR",
        ),
        (
            "a BETWEEN 1",
            "column 12: expected AND after the lower bound of BETWEEN, found the end of the selector",
        ),
        // Types known when parsing.
        ("a > 'x'", "column 5: expected a number, found a string"),
        ("'x' > a", "column 1: expected a number, found a string"),
        ("a > TRUE", "column 5: expected a number, found a boolean"),
        ("a + 'x' = 1", "column 5: expected a number, found a string"),
        ("'x' + a = 1", "column 1: expected a number, found a string"),
        ("-'x' = a", "column 2: expected a number, found a string"),
        (
            "(a = 1) * 2 = 2",
            "column 1: expected a number, found a boolean",
        ),
        (
            "a BETWEEN 'x' AND 2",
            "column 11: expected a number, found a string",
        ),
        ("1 AND a", "column 1: expected a condition, found a number"),
        (
            "a AND 'x'",
            "column 7: expected a condition, found a string",
        ),
        ("a OR 1", "column 6: expected a condition, found a number"),
        ("NOT 1", "column 5: expected a condition, found a number"),
        ("a + 1", "column 1: expected a condition, found a number"),
        ("'x'", "column 1: expected a condition, found a string"),
        ("(a + 1)", "column 1: expected a condition, found a number"),
        (
            "'a' = 1",
            "column 5: a string cannot be compared with a number",
        ),
        (
            "TRUE = 1",
            "column 6: a boolean cannot be compared with a number",
        ),
        (
            "(a = 1) = 'x'",
            "column 9: a boolean cannot be compared with a string",
        ),
        (
            "a = NULL",
            "column 5: NULL cannot be compared; write IS NULL or IS NOT NULL",
        ),
        (
            "NULL <> a",
            "column 1: NULL cannot be compared; write IS NULL or IS NOT NULL",
        ),
        (
            "a > NULL",
            "column 5: NULL cannot be compared; write IS NULL or IS NOT NULL",
        ),
        (
            "a BETWEEN NULL AND 1",
            "column 11: NULL cannot be compared; write IS NULL or IS NOT NULL",
        ),
        (
            "NULL LIKE 'x'",
            "column 1: NULL cannot be compared; write IS NULL or IS NOT NULL",
        ),
        (
            "NULL IN ('x')",
            "column 1: NULL cannot be compared; write IS NULL or IS NOT NULL",
        ),
        ("1 LIKE 'x'", "column 1: expected a string, found a number"),
        (
            "TRUE IN ('x')",
            "column 1: expected a string, found a boolean",
        ),
        // Numbers.
        (
            "a = 9223372036854775808",
            "column 5: number 9223372036854775808 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = +9223372036854775808",
            "column 6: number 9223372036854775808 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = -9223372036854775809",
            "column 6: number 9223372036854775809 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = -(9223372036854775808)",
            "column 7: number 9223372036854775808 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = 99999999999999999999",
            "column 5: number 99999999999999999999 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = 0x8000000000000000",
            "column 5: number 0x8000000000000000 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = 0x10000000000000000",
            "column 5: number 0x10000000000000000 is out of range; exact numbers are 64-bit integers",
        ),
        (
            "a = 1e999",
            "column 5: number 1e999 is out of range; approximate numbers are 64-bit doubles",
        ),
        (
            "a = 08",
            "column 5: malformed number 08; a leading 0 makes an octal number, with digits 0 to 7",
        ),
        (
            "a = 0x",
            "column 5: malformed number 0x; 0x must be followed by hexadecimal digits",
        ),
        (
            "a = 0xg",
            "column 5: malformed number 0x; 0x must be followed by hexadecimal digits",
        ),
        ("a = 5abc", "column 5: malformed number 5abc"),
        ("a = 1e", "column 5: malformed number 1e"),
        ("a = 1.5x", "column 5: malformed number 1.5x"),
        ("a = 0x1G", "column 5: malformed number 0x1G"),
        ("a = 5LL", "column 5: malformed number 5LL"),
        // Columns count characters, not bytes.
        (
            "héllo = ",
            "column 9: expected a value after '=', found the end of the selector",
        ),
    ];
    let mut failures = Vec::new();
    for (selector, want) in cases {
        let got = error(selector);
        let want = format!("selector error at {want}");
        if got != want {
            failures.push(format!("{selector:?}:\n   got  {got}\n   want {want}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn error_fields() {
    let e = Selector::parse("a = 'x").unwrap_err();
    assert_eq!(e.column, 5);
    assert_eq!(e.kind, ErrorKind::UnclosedString);
}

#[test]
fn length_limit() {
    let limits = Limits {
        max_length: 10,
        ..Limits::default()
    };
    assert!(Selector::parse_with("a = 'abcd'", &limits).is_ok());
    let e = Selector::parse_with("a = 'abcde'", &limits).unwrap_err();
    assert_eq!(
        e.to_string(),
        "selector error at column 11: the selector is longer than the maximum of 10 bytes"
    );
    // The column counts characters even when the limit falls inside one.
    let e = Selector::parse_with("é = 'abcdefg'", &limits).unwrap_err();
    assert_eq!(e.column, 10);
    let long = format!("a = '{}'", "x".repeat(MAX_LENGTH));
    assert!(matches!(
        Selector::parse(&long).unwrap_err().kind,
        ErrorKind::TooLong { limit: MAX_LENGTH }
    ));
}

#[test]
fn depth_limit() {
    let nested = |n: usize| format!("{}a{}", "(".repeat(n), ")".repeat(n));
    assert!(Selector::parse(&nested(MAX_DEPTH - 1)).is_ok());
    let e = Selector::parse(&nested(MAX_DEPTH)).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "selector error at column {MAX_DEPTH}: the selector nests deeper than the maximum of {MAX_DEPTH} levels"
        )
    );
    let nots = |n: usize| format!("{}a", "NOT ".repeat(n));
    assert!(Selector::parse(&nots(MAX_DEPTH - 1)).is_ok());
    let e = Selector::parse(&nots(MAX_DEPTH)).unwrap_err();
    assert_eq!(e.column, 4 * (MAX_DEPTH - 1) + 1);
    let signs = |n: usize| format!("{}a = 1", "- ".repeat(n));
    assert!(Selector::parse(&signs(MAX_DEPTH - 1)).is_ok());
    assert_eq!(
        Selector::parse(&signs(MAX_DEPTH)).unwrap_err().column,
        2 * (MAX_DEPTH - 1) + 1
    );
    // Mixed: each kind counts.
    let mixed = "(NOT -a = 1)";
    assert!(
        Selector::parse_with(
            mixed,
            &Limits {
                max_depth: 4,
                ..Limits::default()
            }
        )
        .is_ok()
    );
    assert!(
        Selector::parse_with(
            mixed,
            &Limits {
                max_depth: 3,
                ..Limits::default()
            }
        )
        .is_err()
    );
    // Hostile input at the length limit fails cleanly, without exhausting the stack.
    let hostile = "(".repeat(MAX_LENGTH);
    assert!(matches!(
        Selector::parse(&hostile).unwrap_err().kind,
        ErrorKind::TooDeep { .. }
    ));
}

/// The deepest selectors allowed parse, print and evaluate within the stack of a tokio
/// worker thread (2 MiB), even in a debug build (which uses about 16 KiB of stack per level of
/// parentheses while parsing; a release build about 3 KiB).
#[test]
fn deepest_selectors_fit_a_worker_stack() {
    let deep = [
        format!(
            "{}a = 1{}",
            "(".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
        format!("{}a", "NOT ".repeat(MAX_DEPTH - 1)),
        format!("{}a = -1", "- ".repeat(MAX_DEPTH - 1)),
        format!("{}a", "(NOT ".repeat((MAX_DEPTH - 1) / 2)) + &")".repeat((MAX_DEPTH - 1) / 2),
        format!(
            "{}1{} = a",
            "(a + ".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
        format!(
            "{}a{}",
            "(b = 1 OR ".repeat(MAX_DEPTH - 1),
            ")".repeat(MAX_DEPTH - 1)
        ),
    ];
    let run = move || {
        for text in &deep {
            let s = Selector::parse(text).unwrap();
            let printed = s.to_string();
            assert_eq!(Selector::parse(&printed).unwrap(), s);
            let _ = s.matches(&[("a", "1"), ("b", "2")][..]);
        }
    };
    std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(run)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn long_flat_chains_are_not_nesting() {
    let ors = vec!["id = 'x'"; 1000].join(" OR ") + " OR id = 'hit'";
    let s = Selector::parse(&ors).unwrap();
    assert!(s.matches(&[("id", "hit")][..]));
    let sum = format!("{}1 = 1001", "1 + ".repeat(1000));
    assert!(Selector::parse(&sum).unwrap().matches(&[("x", "")][..]));
    assert_eq!(Selector::parse(&s.to_string()).unwrap(), s);
}

#[test]
fn in_list_limit() {
    let limits = Limits {
        max_in_list: 3,
        ..Limits::default()
    };
    assert!(Selector::parse_with("a IN ('1','2','3')", &limits).is_ok());
    let e = Selector::parse_with("a IN ('1','2','3','4')", &limits).unwrap_err();
    assert_eq!(
        e.to_string(),
        "selector error at column 19: the IN list has more than the maximum of 3 entries"
    );
}

#[test]
fn display_normalises() {
    let cases: &[(&str, &str)] = &[
        (
            "type='order'and amount>100",
            "type = 'order' AND amount > 100",
        ),
        ("not a=1", "NOT a = 1"),
        ("(a = 1)", "a = 1"),
        ("((a)) or (b and c)", "a OR b AND c"),
        ("(a or b) and c", "(a OR b) AND c"),
        ("a and (b and c)", "a AND (b AND c)"),
        ("(a and b) and c", "(a AND b) AND c"),
        ("not (a and b)", "NOT (a AND b)"),
        ("x in ('it''s','b')", "x IN ('it''s', 'b')"),
        (
            "x not like 'a\\%' escape '\\'",
            "x NOT LIKE 'a\\%' ESCAPE '\\'",
        ),
        ("x not between -1 and 0x10", "x NOT BETWEEN -1 AND 16"),
        ("x is not null", "x IS NOT NULL"),
        (
            "x = 017 + 5L + 1.5D + 1e3 + .5",
            "x = 15 + 5 + 1.5 + 1000.0 + 0.5",
        ),
        (
            "x = - 5 - -(5) - -x - - -x - -(-(x))",
            "x = -5 - -5 - -x - - -x - - -x",
        ),
        (
            "x = (1 + 2) * (3 - 4) / -(5) + - -5 + +(+5)",
            "x = (1 + 2) * (3 - 4) / -5 + 5 + 5",
        ),
        ("x = -(-9223372036854775808)", "x = - -9223372036854775808"),
        ("x = -(-(1.5))", "x = 1.5"),
        ("x = 1 - (2 - 3) - (4 + 5)", "x = 1 - (2 - 3) - (4 + 5)"),
        ("x = (1 - 2) - 3", "x = (1 - 2) - 3"),
        ("x = 1 + 2 * 3", "x = 1 + 2 * 3"),
        ("(x = 1) = (y = 2)", "(x = 1) = (y = 2)"),
        ("(not x) = true", "(NOT x) = TRUE"),
        ("x = 1 -- comment", "x = 1"),
        ("JMSPriority>4", "JMSPriority > 4"),
        ("x = 1e300 * 1e-300", "x = 1e300 * 1e-300"),
        ("x = -9223372036854775808", "x = -9223372036854775808"),
    ];
    for (text, want) in cases {
        let s = Selector::parse(text).unwrap();
        assert_eq!(s.to_string(), *want, "{text:?}");
        assert_eq!(Selector::parse(want).unwrap(), s, "{want:?}");
    }
}

// ---- properties ----------------------------------------------------------------------

fn header_name() -> impl Strategy<Value = Expr> {
    "[a-zA-Z_$][a-zA-Z0-9_$é]{0,6}"
        .prop_filter("a keyword or a JMS name", |s| {
            Keyword::lookup(s).is_none() && matches!(Field::named(s), Field::Header(_))
        })
        .prop_map(|s| Expr::Field(Field::Header(s.into())))
}

fn field() -> impl Strategy<Value = Expr> {
    prop_oneof![
        4 => header_name(),
        1 => prop_oneof![
            Just(Field::Priority),
            Just(Field::Type),
            Just(Field::CorrelationId),
            Just(Field::MessageId),
            Just(Field::Timestamp),
            Just(Field::DeliveryMode),
            Just(Field::GroupId),
            Just(Field::Expiration),
        ]
        .prop_map(Expr::Field),
    ]
}

fn string() -> impl Strategy<Value = Box<str>> {
    "[a-z'%_ é\n]{0,6}".prop_map(Into::into)
}

fn number() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| Expr::Literal(Literal::Long(n))),
        any::<f64>()
            .prop_filter("finite", |d| d.is_finite())
            .prop_map(|d| Expr::Literal(Literal::Double(d))),
        field(),
    ];
    leaf.prop_recursive(3, 12, 3, |inner| {
        let additive = prop_oneof![Just(ArithOp::Add), Just(ArithOp::Sub)];
        let multiplicative = prop_oneof![Just(ArithOp::Mul), Just(ArithOp::Div)];
        prop_oneof![
            // The parser folds a sign into a number, unless it overflows.
            (
                prop_oneof![Just(Sign::Plus), Just(Sign::Minus)],
                inner.clone()
            )
                .prop_filter("a sign of a number", |(s, e)| match e {
                    Expr::Literal(Literal::Long(n)) => *s == Sign::Minus && *n == i64::MIN,
                    Expr::Literal(Literal::Double(_)) => false,
                    _ => true,
                })
                .prop_map(|(s, e)| Expr::Unary(s, Box::new(e))),
            (
                inner.clone(),
                proptest::collection::vec((additive, inner.clone()), 1..3)
            )
                .prop_map(|(first, rest)| Expr::Arith(Box::new(first), rest)),
            (
                inner.clone(),
                proptest::collection::vec((multiplicative, inner), 1..3)
            )
                .prop_map(|(first, rest)| Expr::Arith(Box::new(first), rest)),
        ]
    })
}

fn text_operand() -> impl Strategy<Value = Expr> {
    prop_oneof![
        2 => field(),
        1 => string().prop_map(|s| Expr::Literal(Literal::Str(s))),
    ]
}

fn like_pattern() -> impl Strategy<Value = LikePattern> {
    (
        "[ab%_!é']{0,6}",
        proptest::option::of(prop_oneof![Just('!'), Just('%'), Just('\'')]),
    )
        .prop_filter_map("a bad escape", |(p, e)| LikePattern::new(&p, e).ok())
}

fn condition() -> impl Strategy<Value = Expr> {
    let compare = prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
    ];
    let equality = prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)];
    let leaf =
        prop_oneof![
            any::<bool>().prop_map(|b| Expr::Literal(Literal::Bool(b))),
            field(),
            (compare, number(), number()).prop_map(|(op, l, r)| Expr::Compare(
                op,
                Box::new(l),
                Box::new(r)
            )),
            (equality.clone(), text_operand(), text_operand())
                .prop_map(|(op, l, r)| Expr::Compare(op, Box::new(l), Box::new(r))),
            (any::<bool>(), number(), number(), number()).prop_map(|(negated, v, low, high)| {
                Expr::Between {
                    negated,
                    value: Box::new(v),
                    low: Box::new(low),
                    high: Box::new(high),
                }
            }),
            (
                any::<bool>(),
                text_operand(),
                proptest::collection::vec(string(), 1..12)
            )
                .prop_map(|(negated, v, list)| Expr::In {
                    negated,
                    value: Box::new(v),
                    list: InList::new(list)
                }),
            (any::<bool>(), text_operand(), like_pattern()).prop_map(|(negated, v, pattern)| {
                Expr::Like {
                    negated,
                    value: Box::new(v),
                    pattern,
                }
            }),
            (
                any::<bool>(),
                prop_oneof![number(), text_operand(), Just(Expr::Literal(Literal::Null))]
            )
                .prop_map(|(negated, v)| Expr::IsNull {
                    negated,
                    value: Box::new(v)
                }),
        ];
    leaf.prop_recursive(4, 24, 4, move |inner| {
        let operand = prop_oneof![9 => inner.clone(), 1 => Just(Expr::Literal(Literal::Null))];
        prop_oneof![
            operand.clone().prop_map(|e| Expr::Not(Box::new(e))),
            proptest::collection::vec(operand.clone(), 2..4).prop_map(Expr::And),
            proptest::collection::vec(operand, 2..4).prop_map(Expr::Or),
            (equality.clone(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Compare(
                op,
                Box::new(l),
                Box::new(r)
            )),
            (any::<bool>(), inner).prop_map(|(negated, v)| Expr::IsNull {
                negated,
                value: Box::new(v)
            }),
        ]
    })
}

/// Pieces of selectors, good and bad, to glue together.
const SOUP: &[&str] = &[
    "a",
    "b",
    "JMSPriority",
    "JMSDeliveryMode",
    "'x'",
    "'it''s'",
    "''",
    "1",
    "0",
    "0x1F",
    "017",
    "08",
    "1.5",
    "1e3",
    ".5",
    "5L",
    "2D",
    "9223372036854775808",
    "(",
    ")",
    ",",
    "=",
    "<>",
    "<",
    "<=",
    ">",
    ">=",
    "+",
    "-",
    "*",
    "/",
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "LIKE",
    "ESCAPE",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "%",
    "_",
    "!",
    "--",
    "/*",
    "*/",
    "'",
    "\n",
    "é",
    "$",
];

fn soup() -> impl Strategy<Value = String> {
    proptest::collection::vec((proptest::sample::select(SOUP), any::<bool>()), 0..24).prop_map(
        |pieces| {
            pieces
                .into_iter()
                .map(|(p, space)| if space { format!("{p} ") } else { p.to_owned() })
                .collect()
        },
    )
}

/// The text of a valid selector with a few pieces inserted or characters removed: mostly
/// near misses, some still valid (and then printed differently from their text).
fn mutated() -> impl Strategy<Value = String> {
    let edit = (
        any::<proptest::sample::Index>(),
        proptest::sample::select(SOUP),
        0usize..3,
    );
    (condition(), proptest::collection::vec(edit, 1..4)).prop_map(|(expr, edits)| {
        let mut chars: Vec<char> = Selector { expr }.to_string().chars().collect();
        for (at, piece, remove) in edits {
            let at = at.index(chars.len() + 1);
            let end = (at + remove).min(chars.len());
            chars.splice(at..end, format!(" {piece} ").chars());
        }
        chars.into_iter().collect()
    })
}

const SAMPLE: &[(&str, &str)] = &[
    ("a", "1"),
    ("b", "x"),
    ("priority", "7"),
    ("persistent", "true"),
];

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_same_selector(expr in condition()) {
        let s = Selector { expr };
        let text = s.to_string();
        let back = Selector::parse(&text);
        prop_assert_eq!(back.as_ref(), Ok(&s), "printed as {}", text);
        prop_assert_eq!(back.unwrap().evaluate(SAMPLE), s.evaluate(SAMPLE));
    }

    #[test]
    fn any_text_parses_or_fails_without_panicking(text in "\\PC{0,80}") {
        if let Ok(s) = Selector::parse(&text) {
            let _ = s.evaluate(SAMPLE);
        }
    }

    #[test]
    fn near_misses_parse_or_fail_and_what_parses_round_trips(text in prop_oneof![soup(), mutated()]) {
        match Selector::parse(&text) {
            Ok(s) => {
                let printed = s.to_string();
                let back = Selector::parse(&printed);
                prop_assert_eq!(back.as_ref(), Ok(&s), "{:?} printed as {:?}", text, printed);
                prop_assert_eq!(s.evaluate(SAMPLE), back.unwrap().evaluate(SAMPLE));
            }
            Err(e) => {
                // Every error points inside the text or just after it.
                prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{}", e);
            }
        }
    }
}
