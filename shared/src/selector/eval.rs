//! Evaluation: a parsed selector against one message's headers, in three-valued logic, with
//! no allocation. Recursion follows the tree, whose depth the parser has bounded.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::hash::BuildHasher;

use super::ast::{ArithOp, CmpOp, Expr, Field, Literal, Sign};

/// `JMSPriority` of a message without a (readable) `priority` header.
pub const DEFAULT_PRIORITY: i64 = 4;

/// The headers of a message as a selector reads them. Implement [`Properties::get`]; the
/// other methods read the well-known headers and can be overridden by a broker that keeps
/// those values in typed fields (no formatting on the hot path).
pub trait Properties {
    /// The value of header `name` (the first one, if it repeats), as sent.
    fn get(&self, name: &str) -> Option<&str>;

    /// `JMSPriority`: header `priority` as an integer, else [`DEFAULT_PRIORITY`].
    fn priority(&self) -> i64 {
        self.get("priority")
            .and_then(|v| v.parse().ok())
            .unwrap_or(DEFAULT_PRIORITY)
    }

    /// `JMSDeliveryMode` is `'PERSISTENT'` when this is true: header `persistent` is `true`.
    fn persistent(&self) -> bool {
        self.get("persistent") == Some("true")
    }

    /// `JMSTimestamp`, ms since the epoch: header `timestamp`, NULL when absent or unreadable.
    fn timestamp(&self) -> Option<i64> {
        self.get("timestamp").and_then(|v| v.parse().ok())
    }

    /// `JMSExpiration`, ms since the epoch: header `expires`, else 0 (never expires, as in JMS).
    fn expiration(&self) -> i64 {
        self.get("expires")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// Headers as a list of pairs, such as a frame's: the first value of a name wins.
impl<K: AsRef<str>, V: AsRef<str>> Properties for [(K, V)] {
    fn get(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref() == name)
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> Properties for Vec<(K, V)> {
    fn get(&self, name: &str) -> Option<&str> {
        Properties::get(self.as_slice(), name)
    }
}

impl<S: BuildHasher> Properties for HashMap<String, String, S> {
    fn get(&self, name: &str) -> Option<&str> {
        HashMap::get(self, name).map(String::as_str)
    }
}

/// A truth value of SQL's three-valued logic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn negate_if(self, negated: bool) -> Truth {
        if negated { self.not() } else { self }
    }

    /// The truth of a value in a condition's place: booleans, and header text `true` or
    /// `false` in any case; NULL is UNKNOWN; anything else is not a boolean, so FALSE.
    fn of_value(v: Value<'_>) -> Truth {
        match v {
            Value::Null => Truth::Unknown,
            Value::Bool(b) => Truth::of(b),
            Value::Text(s) => parse_bool(s).map_or(Truth::False, Truth::of),
            Value::Str(_) | Value::Long(_) | Value::Double(_) => Truth::False,
        }
    }
}

/// A value during evaluation; strings borrow from the selector or the message.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<'a> {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    /// A string: a literal, or `JMSDeliveryMode`.
    Str(&'a str),
    /// A header's text, whose type depends on what it meets.
    Text(&'a str),
}

impl<'a> Value<'a> {
    fn of_truth(t: Truth) -> Value<'a> {
        match t {
            Truth::True => Value::Bool(true),
            Truth::False => Value::Bool(false),
            Truth::Unknown => Value::Null,
        }
    }

    /// The value as a number: numbers, and strings spelled as decimal numbers.
    fn number(self) -> Option<Num> {
        match self {
            Value::Long(n) => Some(Num::Long(n)),
            Value::Double(d) => Some(Num::Double(d)),
            Value::Text(s) => parse_number(s),
            Value::Null | Value::Bool(_) | Value::Str(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Long(i64),
    Double(f64),
}

impl Num {
    fn value<'a>(self) -> Value<'a> {
        match self {
            Num::Long(n) => Value::Long(n),
            Num::Double(d) => Value::Double(d),
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Long(n) => n as f64,
            Num::Double(d) => d,
        }
    }
}

/// A header's text read as a number: a 64-bit integer (`-12`, `+7`), else a decimal
/// (`1.5`, `-.5e3`); nothing else (no hex, no suffix, no blanks, no `NaN` or `inf`).
fn parse_number(s: &str) -> Option<Num> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(Num::Long(n));
    }
    let decimal = s.bytes().any(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'));
    if decimal {
        s.parse::<f64>().ok().map(Num::Double)
    } else {
        None
    }
}

/// A header's text read as a boolean: `true` or `false` in any case.
fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// Exact comparison of two numbers (an integer and a double compare by value, not after
/// rounding the integer); `None` when a NaN is involved.
fn compare_numbers(a: Num, b: Num) -> Option<Ordering> {
    match (a, b) {
        (Num::Long(x), Num::Long(y)) => Some(x.cmp(&y)),
        (Num::Double(x), Num::Double(y)) => x.partial_cmp(&y),
        (Num::Long(x), Num::Double(y)) => compare_long_double(x, y),
        (Num::Double(x), Num::Long(y)) => compare_long_double(y, x).map(Ordering::reverse),
    }
}

fn compare_long_double(x: i64, y: f64) -> Option<Ordering> {
    match (x as f64).partial_cmp(&y)? {
        // Equal after rounding `x`: `y` is then a whole number within i64's range or 2^63.
        Ordering::Equal if y >= 9_223_372_036_854_775_808.0 => Some(Ordering::Less),
        Ordering::Equal => Some(x.cmp(&(y as i64))),
        other => Some(other),
    }
}

/// `=` of two non-NULL values; `None` when their types cannot be compared.
fn equal(a: Value<'_>, b: Value<'_>) -> Option<bool> {
    match (a, b) {
        (Value::Str(x) | Value::Text(x), Value::Str(y) | Value::Text(y)) => Some(x == y),
        (Value::Bool(x), Value::Bool(y)) => Some(x == y),
        (Value::Text(s), Value::Bool(b)) | (Value::Bool(b), Value::Text(s)) => {
            parse_bool(s).map(|v| v == b)
        }
        _ => compare_numbers(a.number()?, b.number()?).map(|o| o == Ordering::Equal),
    }
}

fn compare(op: CmpOp, a: Value<'_>, b: Value<'_>) -> Truth {
    if a == Value::Null || b == Value::Null {
        return Truth::Unknown;
    }
    match op {
        CmpOp::Eq => Truth::of(equal(a, b) == Some(true)),
        CmpOp::Ne => Truth::of(equal(a, b) != Some(true)),
        _ => {
            let Some(order) = a
                .number()
                .zip(b.number())
                .and_then(|(x, y)| compare_numbers(x, y))
            else {
                return Truth::False;
            };
            Truth::of(match op {
                CmpOp::Lt => order == Ordering::Less,
                CmpOp::Le => order != Ordering::Greater,
                CmpOp::Gt => order == Ordering::Greater,
                _ => order != Ordering::Less,
            })
        }
    }
}

fn arith(op: ArithOp, a: Num, b: Num) -> Num {
    if let (Num::Long(x), Num::Long(y)) = (a, b) {
        let exact = match op {
            ArithOp::Add => x.checked_add(y),
            ArithOp::Sub => x.checked_sub(y),
            ArithOp::Mul => x.checked_mul(y),
            ArithOp::Div => None,
        };
        if let Some(n) = exact {
            return Num::Long(n);
        }
    }
    // Division is always approximate (as in ActiveMQ), and so is an integer result that
    // would overflow.
    let (x, y) = (a.as_f64(), b.as_f64());
    Num::Double(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div => x / y,
    })
}

/// The value of `field` in `props`.
fn field<'a, P: Properties + ?Sized>(field: &'a Field, props: &'a P) -> Value<'a> {
    let header = |name: &str| props.get(name).map_or(Value::Null, Value::Text);
    match field {
        Field::Header(name) => header(name),
        Field::Type => header("type"),
        Field::CorrelationId => header("correlation-id"),
        Field::MessageId => header("message-id"),
        Field::GroupId => header("JMSXGroupID"),
        Field::Priority => Value::Long(props.priority()),
        Field::Timestamp => props.timestamp().map_or(Value::Null, Value::Long),
        Field::Expiration => Value::Long(props.expiration()),
        Field::DeliveryMode => Value::Str(if props.persistent() {
            "PERSISTENT"
        } else {
            "NON_PERSISTENT"
        }),
    }
}

/// The value of `expr`; conditions give booleans, UNKNOWN gives NULL.
fn value<'a, P: Properties + ?Sized>(expr: &'a Expr, props: &'a P) -> Value<'a> {
    match expr {
        Expr::Literal(l) => match l {
            Literal::Null => Value::Null,
            Literal::Bool(b) => Value::Bool(*b),
            Literal::Long(n) => Value::Long(*n),
            Literal::Double(d) => Value::Double(*d),
            Literal::Str(s) => Value::Str(s),
        },
        Expr::Field(f) => field(f, props),
        Expr::Unary(sign, operand) => match value(operand, props).number() {
            None => Value::Null,
            Some(n) if *sign == Sign::Plus => n.value(),
            Some(Num::Long(n)) => n
                .checked_neg()
                .map_or(Value::Double(-(n as f64)), Value::Long),
            Some(Num::Double(d)) => Value::Double(-d),
        },
        Expr::Arith(first, rest) => {
            let Some(mut acc) = value(first, props).number() else {
                return Value::Null;
            };
            for (op, operand) in rest {
                let Some(n) = value(operand, props).number() else {
                    return Value::Null;
                };
                acc = arith(*op, acc, n);
            }
            acc.value()
        }
        condition => Value::of_truth(truth(condition, props)),
    }
}

/// The truth of `expr` for `props`.
pub(super) fn truth<P: Properties + ?Sized>(expr: &Expr, props: &P) -> Truth {
    match expr {
        Expr::Not(operand) => truth(operand, props).not(),
        Expr::And(operands) => {
            let mut result = Truth::True;
            for operand in operands {
                match truth(operand, props) {
                    Truth::False => return Truth::False,
                    Truth::Unknown => result = Truth::Unknown,
                    Truth::True => {}
                }
            }
            result
        }
        Expr::Or(operands) => {
            let mut result = Truth::False;
            for operand in operands {
                match truth(operand, props) {
                    Truth::True => return Truth::True,
                    Truth::Unknown => result = Truth::Unknown,
                    Truth::False => {}
                }
            }
            result
        }
        Expr::Compare(op, left, right) => compare(*op, value(left, props), value(right, props)),
        Expr::Between {
            negated,
            value: v,
            low,
            high,
        } => {
            let v = value(v, props);
            let above = compare(CmpOp::Ge, v, value(low, props));
            if above == Truth::False {
                return Truth::False.negate_if(*negated);
            }
            match (above, compare(CmpOp::Le, v, value(high, props))) {
                (_, Truth::False) => Truth::False,
                (Truth::True, Truth::True) => Truth::True,
                _ => Truth::Unknown,
            }
            .negate_if(*negated)
        }
        Expr::In {
            negated,
            value: v,
            list,
        } => match value(v, props) {
            Value::Null => Truth::Unknown,
            Value::Str(s) | Value::Text(s) => Truth::of(list.contains(s)).negate_if(*negated),
            _ => Truth::False.negate_if(*negated),
        },
        Expr::Like {
            negated,
            value: v,
            pattern,
        } => match value(v, props) {
            Value::Null => Truth::Unknown,
            Value::Str(s) | Value::Text(s) => Truth::of(pattern.matches(s)).negate_if(*negated),
            _ => Truth::False.negate_if(*negated),
        },
        Expr::IsNull { negated, value: v } => {
            Truth::of(value(v, props) == Value::Null).negate_if(*negated)
        }
        operand => Truth::of_value(value(operand, props)),
    }
}
