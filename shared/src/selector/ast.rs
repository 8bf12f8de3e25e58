//! The parsed selector: a tree of expressions, and its normalised text ([`fmt::Display`]).
//!
//! The tree is shallow by construction: chains of `AND`, `OR`, `+ -` and `* /` are one node
//! with a list of operands, so only parentheses, `NOT` and signs (which the parser counts
//! against its depth limit) make it deeper.

use std::fmt::{self, Write as _};

use super::like::LikePattern;

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Literal {
    Null,
    Bool(bool),
    Long(i64),
    Double(f64),
    Str(Box<str>),
}

/// What an identifier reads: a header of the message, or one of the JMS names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Field {
    /// A header of that exact name (case-sensitive).
    Header(Box<str>),
    /// `JMSPriority`: [`Properties::priority`](super::Properties::priority).
    Priority,
    /// `JMSType`: header `type`.
    Type,
    /// `JMSCorrelationID`: header `correlation-id`.
    CorrelationId,
    /// `JMSMessageID`: header `message-id`.
    MessageId,
    /// `JMSTimestamp`: [`Properties::timestamp`](super::Properties::timestamp).
    Timestamp,
    /// `JMSDeliveryMode`: `'PERSISTENT'` or `'NON_PERSISTENT'`.
    DeliveryMode,
    /// `JMSXGroupID`: header `JMSXGroupID`.
    GroupId,
    /// `JMSExpiration`: [`Properties::expiration`](super::Properties::expiration).
    Expiration,
}

/// The JMS names and the fields they read.
const JMS_NAMES: [(&str, Field); 8] = [
    ("JMSPriority", Field::Priority),
    ("JMSType", Field::Type),
    ("JMSCorrelationID", Field::CorrelationId),
    ("JMSMessageID", Field::MessageId),
    ("JMSTimestamp", Field::Timestamp),
    ("JMSDeliveryMode", Field::DeliveryMode),
    ("JMSXGroupID", Field::GroupId),
    ("JMSExpiration", Field::Expiration),
];

impl Field {
    /// The field an identifier names (JMS names are case-sensitive, like every identifier).
    pub(super) fn named(name: &str) -> Field {
        super::value_named(&JMS_NAMES, |n| n == name)
            .map_or_else(|| Field::Header(name.into()), Field::clone)
    }

    fn name(&self) -> &str {
        match self {
            Field::Header(name) => name,
            jms => super::name_of(&JMS_NAMES, jms),
        }
    }
}

/// `+` or `-` in front of an operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sign {
    Plus,
    Minus,
}

/// A binary arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl ArithOp {
    fn is_additive(self) -> bool {
        matches!(self, ArithOp::Add | ArithOp::Sub)
    }

    fn as_str(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "<>",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// The strings of an `IN` list: as written, and sorted for a binary search when long.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct InList {
    written: Vec<Box<str>>,
    sorted: Option<Vec<Box<str>>>,
}

/// Lists longer than this are searched in a sorted copy.
const LINEAR_IN_LIST: usize = 8;

impl InList {
    pub(super) fn new(written: Vec<Box<str>>) -> InList {
        let sorted = (written.len() > LINEAR_IN_LIST).then(|| {
            let mut s = written.clone();
            s.sort_unstable();
            s.dedup();
            s
        });
        InList { written, sorted }
    }

    pub(super) fn contains(&self, value: &str) -> bool {
        match &self.sorted {
            Some(sorted) => sorted.binary_search_by(|e| (**e).cmp(value)).is_ok(),
            None => self.written.iter().any(|e| **e == *value),
        }
    }
}

/// An expression. Chains hold at least two operands; `Arith`'s operators are all additive
/// or all multiplicative.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    Literal(Literal),
    Field(Field),
    Unary(Sign, Box<Expr>),
    Arith(Box<Expr>, Vec<(ArithOp, Expr)>),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Compare(CmpOp, Box<Expr>, Box<Expr>),
    Between {
        negated: bool,
        value: Box<Expr>,
        low: Box<Expr>,
        high: Box<Expr>,
    },
    In {
        negated: bool,
        value: Box<Expr>,
        list: InList,
    },
    Like {
        negated: bool,
        value: Box<Expr>,
        pattern: LikePattern,
    },
    IsNull {
        negated: bool,
        value: Box<Expr>,
    },
}

// Binding strength, loosest first; an operand looser than its place needs parentheses.
const OR: u8 = 1;
const AND: u8 = 2;
const NOT: u8 = 3;
const PREDICATE: u8 = 4;
const ADDITIVE: u8 = 5;
const MULTIPLICATIVE: u8 = 6;
const UNARY: u8 = 7;
const PRIMARY: u8 = 8;

impl Expr {
    fn strength(&self) -> u8 {
        match self {
            Expr::Or(_) => OR,
            Expr::And(_) => AND,
            Expr::Not(_) => NOT,
            Expr::Compare(..)
            | Expr::Between { .. }
            | Expr::In { .. }
            | Expr::Like { .. }
            | Expr::IsNull { .. } => PREDICATE,
            Expr::Arith(_, rest) if rest.first().is_some_and(|(op, _)| op.is_additive()) => {
                ADDITIVE
            }
            Expr::Arith(..) => MULTIPLICATIVE,
            Expr::Unary(..) => UNARY,
            Expr::Literal(_) | Expr::Field(_) => PRIMARY,
        }
    }

    /// Writes `self` where an operand must bind at least as tightly as `place`.
    fn write(&self, f: &mut fmt::Formatter<'_>, place: u8) -> fmt::Result {
        if self.strength() < place {
            f.write_char('(')?;
            self.write_bare(f)?;
            f.write_char(')')
        } else {
            self.write_bare(f)
        }
    }

    fn write_bare(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let not = |negated: bool| if negated { " NOT" } else { "" };
        match self {
            Expr::Literal(l) => write_literal(f, l),
            Expr::Field(field) => f.write_str(field.name()),
            Expr::Unary(sign, operand) => {
                f.write_char(if *sign == Sign::Minus { '-' } else { '+' })?;
                // A sign of a sign, or of a negative number (`- -5`): a space, since `--`
                // starts a comment. (The parser folds a sign into a non-negative number.)
                let signed = match &**operand {
                    Expr::Unary(..) => true,
                    Expr::Literal(Literal::Long(n)) => *n < 0,
                    Expr::Literal(Literal::Double(d)) => d.is_sign_negative(),
                    _ => false,
                };
                if signed {
                    f.write_char(' ')?;
                }
                operand.write(f, if signed { UNARY } else { PRIMARY })
            }
            Expr::Arith(first, rest) => {
                // A chain of the same strength as an operand was written in parentheses.
                let place = self.strength() + 1;
                first.write(f, place)?;
                for (op, operand) in rest {
                    write!(f, " {} ", op.as_str())?;
                    operand.write(f, place)?;
                }
                Ok(())
            }
            Expr::Not(operand) => {
                f.write_str("NOT ")?;
                operand.write(f, NOT)
            }
            Expr::And(operands) | Expr::Or(operands) => {
                let (sep, place) = match self {
                    Expr::And(_) => (" AND ", NOT),
                    _ => (" OR ", AND),
                };
                for (i, operand) in operands.iter().enumerate() {
                    if i > 0 {
                        f.write_str(sep)?;
                    }
                    operand.write(f, place)?;
                }
                Ok(())
            }
            Expr::Compare(op, left, right) => {
                left.write(f, ADDITIVE)?;
                write!(f, " {} ", op.as_str())?;
                right.write(f, ADDITIVE)
            }
            Expr::Between {
                negated,
                value,
                low,
                high,
            } => {
                value.write(f, ADDITIVE)?;
                write!(f, "{} BETWEEN ", not(*negated))?;
                low.write(f, ADDITIVE)?;
                f.write_str(" AND ")?;
                high.write(f, ADDITIVE)
            }
            Expr::In {
                negated,
                value,
                list,
            } => {
                value.write(f, ADDITIVE)?;
                write!(f, "{} IN (", not(*negated))?;
                for (i, s) in list.written.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write_string(f, s)?;
                }
                f.write_char(')')
            }
            Expr::Like {
                negated,
                value,
                pattern,
            } => {
                value.write(f, ADDITIVE)?;
                write!(f, "{} LIKE ", not(*negated))?;
                write_string(f, pattern.source())?;
                if let Some(c) = pattern.escape() {
                    f.write_str(" ESCAPE ")?;
                    write_string(f, c.encode_utf8(&mut [0; 4]))?;
                }
                Ok(())
            }
            Expr::IsNull { negated, value } => {
                value.write(f, ADDITIVE)?;
                f.write_str(if *negated { " IS NOT NULL" } else { " IS NULL" })
            }
        }
    }
}

fn write_literal(f: &mut fmt::Formatter<'_>, l: &Literal) -> fmt::Result {
    match l {
        Literal::Null => f.write_str("NULL"),
        Literal::Bool(true) => f.write_str("TRUE"),
        Literal::Bool(false) => f.write_str("FALSE"),
        Literal::Long(n) => write!(f, "{n}"),
        // Debug always writes a `.` or an exponent, and the shortest text that reads back
        // as the same double.
        Literal::Double(d) => write!(f, "{d:?}"),
        Literal::Str(s) => write_string(f, s),
    }
}

fn write_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('\'')?;
    for part in s.split_inclusive('\'') {
        f.write_str(part)?;
        if part.ends_with('\'') {
            f.write_char('\'')?;
        }
    }
    f.write_char('\'')
}

/// The normalised form: keywords in capitals, one space around operators, parentheses only
/// where the precedence needs them, numbers in decimal.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, OR)
    }
}
