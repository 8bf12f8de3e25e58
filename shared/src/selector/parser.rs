//! Recursive descent over the tokens, with the types checked as the tree is built and the
//! nesting depth counted against the limit.
//!
//! Only a parenthesis recurses (`primary` calls `or` again); `AND`/`OR` share one loop, and
//! `NOT`s, signs and operator chains are loops too, so each level of parentheses costs seven
//! stack frames. `NOT`s and signs still count as levels: each one nests the tree one deeper.

use super::Limits;
use super::ast::{ArithOp, CmpOp, Expr, Field, InList, Literal, Sign};
use super::error::{ErrorKind, SelectorError};
use super::lexer::{Keyword, MAX_MAGNITUDE, Tok, Token};
use super::like::LikePattern;

/// What the parser knows of an expression's type before any message is seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Bool,
    Num,
    Str,
    Null,
    /// A header: its type is only known from its value.
    Any,
}

impl Ty {
    fn noun(self) -> &'static str {
        match self {
            Ty::Bool => "a boolean",
            Ty::Num => "a number",
            Ty::Str => "a string",
            Ty::Null => "NULL",
            Ty::Any => "a header",
        }
    }
}

/// A parsed expression, its type and the column where it starts.
struct Parsed {
    expr: Expr,
    ty: Ty,
    column: usize,
}

impl Parsed {
    fn new(expr: Expr, ty: Ty, column: usize) -> Parsed {
        Parsed { expr, ty, column }
    }
}

type Result<T> = std::result::Result<T, SelectorError>;

fn error(column: usize, kind: ErrorKind) -> SelectorError {
    SelectorError { column, kind }
}

/// Parses `tokens` (ending with [`Tok::End`]) into a condition.
pub(super) fn parse(tokens: &[Token], limits: &Limits) -> Result<Expr> {
    let mut p = Parser {
        tokens,
        pos: 0,
        depth: 1,
        open: Vec::new(),
        limits,
    };
    if p.peek().tok == Tok::End {
        return Err(error(1, ErrorKind::Empty));
    }
    let top = p.or()?;
    match &p.peek().tok {
        Tok::End => {}
        Tok::RParen => return Err(error(p.peek().column, ErrorKind::UnmatchedClose)),
        _ => return Err(p.expected("an operator or the end of the selector")),
    }
    condition(&top)?;
    Ok(top.expr)
}

struct Parser<'t> {
    tokens: &'t [Token],
    pos: usize,
    /// Current nesting: 1, plus the parentheses, `NOT`s and signs around the next token.
    depth: usize,
    /// Columns of the `(`s not yet closed.
    open: Vec<usize>,
    limits: &'t Limits,
}

impl<'t> Parser<'t> {
    fn peek(&self) -> &'t Token {
        // The last token is End and is never consumed.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn bump(&mut self) -> &'t Token {
        let t = self.peek();
        if t.tok != Tok::End {
            self.pos += 1;
        }
        t
    }

    fn at_keyword(&self, k: Keyword) -> bool {
        self.peek().tok == Tok::Keyword(k)
    }

    // The error builders are kept out of line: the parser recurses once per level of
    // parentheses, and their temporaries would otherwise widen every frame.

    /// An error at the next token: `expected …, found <it>`.
    #[cold]
    #[inline(never)]
    fn expected(&self, expected: &str) -> SelectorError {
        let t = self.peek();
        error(
            t.column,
            ErrorKind::Expected {
                expected: expected.to_owned(),
                found: t.tok.found(),
            },
        )
    }

    /// `expected <what> <the end, or the innermost ')'>, found <it>`.
    #[cold]
    #[inline(never)]
    fn expected_closer(&self, what: &str) -> SelectorError {
        self.expected(&match self.open.last() {
            None => format!("{what} the end of the selector"),
            Some(c) => format!("{what} ')' to close the '(' at column {c}"),
        })
    }

    /// `expected a value after <the previous token>, found <it>`.
    #[cold]
    #[inline(never)]
    fn expected_value(&self) -> SelectorError {
        self.expected(
            &match self.pos.checked_sub(1).map(|i| &self.tokens[i].tok) {
                Some(prev @ Tok::Keyword(_)) => format!("a value after {prev}"),
                Some(prev) => format!("a value after '{prev}'"),
                None => "a value".to_owned(),
            },
        )
    }

    /// One level deeper, for the `(`, `NOT` or sign at `column`.
    fn enter(&mut self, column: usize) -> Result<()> {
        self.depth += 1;
        if self.depth > self.limits.max_depth {
            return Err(error(
                column,
                ErrorKind::TooDeep {
                    limit: self.limits.max_depth,
                },
            ));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// `or = and { OR and }` and `and = not { AND not }`, in one loop (one stack frame per
    /// level of parentheses, not two).
    fn or(&mut self) -> Result<Parsed> {
        let first = self.not()?;
        if !matches!(self.peek().tok, Tok::Keyword(Keyword::And | Keyword::Or)) {
            return Ok(first);
        }
        let column = first.column;
        condition(&first)?;
        let mut ors = Vec::new();
        let mut ands = vec![first.expr];
        loop {
            let or = match self.peek().tok {
                Tok::Keyword(Keyword::And) => false,
                Tok::Keyword(Keyword::Or) => true,
                _ => break,
            };
            self.bump();
            let next = self.not()?;
            condition(&next)?;
            if or {
                ors.push(conjunction(std::mem::take(&mut ands)));
            }
            ands.push(next.expr);
        }
        let last = conjunction(ands);
        let expr = if ors.is_empty() {
            last
        } else {
            ors.push(last);
            Expr::Or(ors)
        };
        Ok(Parsed::new(expr, Ty::Bool, column))
    }

    /// `not = { NOT } predicate`, the `NOT`s counted as levels.
    fn not(&mut self) -> Result<Parsed> {
        let mut nots = 0;
        let column = self.peek().column;
        while self.at_keyword(Keyword::Not) {
            let t = self.bump();
            self.enter(t.column)?;
            nots += 1;
        }
        let mut operand = self.predicate()?;
        if nots == 0 {
            return Ok(operand);
        }
        condition(&operand)?;
        for _ in 0..nots {
            operand.expr = Expr::Not(Box::new(operand.expr));
            self.leave();
        }
        operand.ty = Ty::Bool;
        operand.column = column;
        Ok(operand)
    }

    /// `predicate = sum [ cmp sum | [NOT] BETWEEN … | [NOT] IN … | [NOT] LIKE … | IS [NOT] NULL ]`
    fn predicate(&mut self) -> Result<Parsed> {
        let left = self.sum()?;
        let op = match self.peek().tok {
            Tok::Eq => Some(CmpOp::Eq),
            Tok::Ne => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            _ => None,
        };
        let column = left.column;
        let expr = if let Some(op) = op {
            let op_column = self.bump().column;
            let right = self.sum()?;
            if matches!(op, CmpOp::Eq | CmpOp::Ne) {
                comparable(&left, &right, op_column)?;
            } else {
                numeric_operand(&left)?;
                numeric_operand(&right)?;
            }
            Expr::Compare(op, Box::new(left.expr), Box::new(right.expr))
        } else {
            let negated = if self.at_keyword(Keyword::Not) {
                self.bump();
                if !matches!(
                    self.peek().tok,
                    Tok::Keyword(Keyword::Between | Keyword::In | Keyword::Like)
                ) {
                    return Err(self.expected("BETWEEN, IN or LIKE after NOT"));
                }
                true
            } else {
                false
            };
            match self.peek().tok {
                Tok::Keyword(Keyword::Between) => self.between(left, negated)?,
                Tok::Keyword(Keyword::In) => self.in_list(left, negated)?,
                Tok::Keyword(Keyword::Like) => self.like(left, negated)?,
                Tok::Keyword(Keyword::Is) => self.is_null(left)?,
                _ => return Ok(left),
            }
        };
        // Predicates do not chain (`a = b = c`): the next token must end this one.
        if matches!(
            self.peek().tok,
            Tok::Eq
                | Tok::Ne
                | Tok::Lt
                | Tok::Le
                | Tok::Gt
                | Tok::Ge
                | Tok::Keyword(
                    Keyword::Not | Keyword::Between | Keyword::In | Keyword::Like | Keyword::Is
                )
        ) {
            return Err(self.expected_closer("AND, OR or"));
        }
        Ok(Parsed::new(expr, Ty::Bool, column))
    }

    fn between(&mut self, value: Parsed, negated: bool) -> Result<Expr> {
        self.bump();
        let low = self.sum()?;
        if !self.at_keyword(Keyword::And) {
            return Err(self.expected("AND after the lower bound of BETWEEN"));
        }
        self.bump();
        let high = self.sum()?;
        for operand in [&value, &low, &high] {
            numeric_operand(operand)?;
        }
        Ok(Expr::Between {
            negated,
            value: Box::new(value.expr),
            low: Box::new(low.expr),
            high: Box::new(high.expr),
        })
    }

    fn in_list(&mut self, value: Parsed, negated: bool) -> Result<Expr> {
        string_operand(&value)?;
        self.bump();
        if self.peek().tok != Tok::LParen {
            return Err(self.expected("'(' after IN"));
        }
        self.bump();
        let mut list = Vec::new();
        loop {
            let t = self.peek();
            let Tok::Str(s) = &t.tok else {
                return Err(self.expected("a string literal in the IN list"));
            };
            if list.len() == self.limits.max_in_list {
                return Err(error(
                    t.column,
                    ErrorKind::InListTooLong {
                        limit: self.limits.max_in_list,
                    },
                ));
            }
            list.push(s.as_str().into());
            self.bump();
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    break;
                }
                _ => return Err(self.expected("',' or ')' in the IN list")),
            }
        }
        Ok(Expr::In {
            negated,
            value: Box::new(value.expr),
            list: InList::new(list),
        })
    }

    fn like(&mut self, value: Parsed, negated: bool) -> Result<Expr> {
        string_operand(&value)?;
        self.bump();
        let pattern = self.peek();
        let Tok::Str(text) = &pattern.tok else {
            return Err(self.expected("a string literal after LIKE"));
        };
        self.bump();
        let mut escape = None;
        if self.at_keyword(Keyword::Escape) {
            self.bump();
            let t = self.peek();
            let Tok::Str(e) = &t.tok else {
                return Err(self.expected("a string literal after ESCAPE"));
            };
            let mut chars = e.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => escape = Some(c),
                _ => return Err(error(t.column, ErrorKind::BadEscape(e.clone()))),
            }
            self.bump();
        }
        let pattern = LikePattern::new(text, escape).map_err(|kind| error(pattern.column, kind))?;
        Ok(Expr::Like {
            negated,
            value: Box::new(value.expr),
            pattern,
        })
    }

    fn is_null(&mut self, value: Parsed) -> Result<Expr> {
        self.bump();
        let negated = self.at_keyword(Keyword::Not);
        if negated {
            self.bump();
        }
        if !self.at_keyword(Keyword::Null) {
            let after = if negated { "IS NOT" } else { "IS" };
            let or_not = if negated { "" } else { " or NOT NULL" };
            return Err(self.expected(&format!("NULL{or_not} after {after}")));
        }
        self.bump();
        Ok(Expr::IsNull {
            negated,
            value: Box::new(value.expr),
        })
    }

    /// `sum = product { ( + | - ) product }`
    fn sum(&mut self) -> Result<Parsed> {
        let first = self.product()?;
        let mut rest = Vec::new();
        while let Some(op) = match self.peek().tok {
            Tok::Plus => Some(ArithOp::Add),
            Tok::Minus => Some(ArithOp::Sub),
            _ => None,
        } {
            self.bump();
            let next = self.product()?;
            arithmetic_operand(&next)?;
            rest.push((op, next.expr));
        }
        arithmetic(first, rest)
    }

    /// `product = unary { ( * | / ) unary }`
    fn product(&mut self) -> Result<Parsed> {
        let first = self.unary()?;
        let mut rest = Vec::new();
        while let Some(op) = match self.peek().tok {
            Tok::Star => Some(ArithOp::Mul),
            Tok::Slash => Some(ArithOp::Div),
            _ => None,
        } {
            self.bump();
            let next = self.unary()?;
            arithmetic_operand(&next)?;
            rest.push((op, next.expr));
        }
        arithmetic(first, rest)
    }

    /// `unary = { + | - } primary`, the signs counted as levels. A sign straight before a
    /// number is part of it, and a sign of a number (`-(5)`, `- -5`) is folded into it too,
    /// unless that overflows.
    fn unary(&mut self) -> Result<Parsed> {
        let column = self.peek().column;
        let mut signs = Vec::new();
        while let Some(sign) = match self.peek().tok {
            Tok::Plus => Some(Sign::Plus),
            Tok::Minus => Some(Sign::Minus),
            _ => None,
        } {
            let t = self.bump();
            self.enter(t.column)?;
            signs.push(sign);
        }
        let literal = match (&self.peek().tok, signs.last()) {
            (Tok::Exact(magnitude, text), Some(sign)) => {
                let at = self.peek().column;
                Some(Literal::Long(match sign {
                    Sign::Minus if *magnitude == MAX_MAGNITUDE => i64::MIN,
                    Sign::Minus => -exact(*magnitude, text, at)?,
                    Sign::Plus => exact(*magnitude, text, at)?,
                }))
            }
            (Tok::Approx(d), Some(sign)) => {
                Some(Literal::Double(if *sign == Sign::Minus { -d } else { *d }))
            }
            _ => None,
        };
        let mut operand = match literal {
            Some(literal) => {
                self.bump();
                self.leave();
                signs.pop();
                Parsed::new(Expr::Literal(literal), Ty::Num, column)
            }
            None => self.primary()?,
        };
        if signs.is_empty() {
            operand.column = column;
            return Ok(operand);
        }
        arithmetic_operand(&operand)?;
        while let Some(sign) = signs.pop() {
            operand.expr = match (sign, operand.expr) {
                (Sign::Plus, Expr::Literal(l @ (Literal::Long(_) | Literal::Double(_)))) => {
                    Expr::Literal(l)
                }
                (Sign::Minus, Expr::Literal(Literal::Long(n))) if n != i64::MIN => {
                    Expr::Literal(Literal::Long(-n))
                }
                (Sign::Minus, Expr::Literal(Literal::Double(d))) => {
                    Expr::Literal(Literal::Double(-d))
                }
                (sign, operand) => Expr::Unary(sign, Box::new(operand)),
            };
            self.leave();
        }
        Ok(Parsed::new(operand.expr, Ty::Num, column))
    }

    /// `primary = literal | identifier | ( or )`
    fn primary(&mut self) -> Result<Parsed> {
        let t = self.peek();
        let (expr, ty) = match &t.tok {
            Tok::Str(s) => (Expr::Literal(Literal::Str(s.as_str().into())), Ty::Str),
            Tok::Exact(magnitude, text) => (
                Expr::Literal(Literal::Long(exact(*magnitude, text, t.column)?)),
                Ty::Num,
            ),
            Tok::Approx(d) => (Expr::Literal(Literal::Double(*d)), Ty::Num),
            Tok::Keyword(Keyword::True) => (Expr::Literal(Literal::Bool(true)), Ty::Bool),
            Tok::Keyword(Keyword::False) => (Expr::Literal(Literal::Bool(false)), Ty::Bool),
            Tok::Keyword(Keyword::Null) => (Expr::Literal(Literal::Null), Ty::Null),
            Tok::Ident(name) => (Expr::Field(Field::named(name)), Ty::Any),
            Tok::LParen => {
                self.bump();
                self.enter(t.column)?;
                self.open.push(t.column);
                let inner = self.or()?;
                if self.peek().tok != Tok::RParen {
                    return Err(self.expected_closer("an operator or"));
                }
                self.open.pop();
                self.leave();
                self.bump();
                return Ok(Parsed::new(inner.expr, inner.ty, t.column));
            }
            _ => return Err(self.expected_value()),
        };
        self.bump();
        Ok(Parsed::new(expr, ty, t.column))
    }
}

/// `first` alone, or the chain it starts.
fn arithmetic(first: Parsed, rest: Vec<(ArithOp, Expr)>) -> Result<Parsed> {
    if rest.is_empty() {
        return Ok(first);
    }
    arithmetic_operand(&first)?;
    Ok(Parsed::new(
        Expr::Arith(Box::new(first.expr), rest),
        Ty::Num,
        first.column,
    ))
}

/// One `AND` operand alone, or their conjunction.
fn conjunction(mut operands: Vec<Expr>) -> Expr {
    if operands.len() == 1 {
        operands.remove(0)
    } else {
        Expr::And(operands)
    }
}

/// An exact literal without a minus sign: at most `i64::MAX`.
fn exact(magnitude: u64, text: &str, column: usize) -> Result<i64> {
    i64::try_from(magnitude).map_err(|_| {
        error(
            column,
            ErrorKind::NumberOutOfRange {
                text: text.to_owned(),
                hint: "; exact numbers are 64-bit integers",
            },
        )
    })
}

fn wrong(p: &Parsed, expected: &'static str) -> SelectorError {
    error(
        p.column,
        ErrorKind::WrongType {
            expected,
            found: p.ty.noun(),
        },
    )
}

/// An operand of `AND`, `OR`, `NOT`, or the whole selector.
fn condition(p: &Parsed) -> Result<()> {
    match p.ty {
        Ty::Bool | Ty::Any | Ty::Null => Ok(()),
        Ty::Num | Ty::Str => Err(wrong(p, "a condition")),
    }
}

/// An operand of `+ - * /` or a sign (NULL gives NULL).
fn arithmetic_operand(p: &Parsed) -> Result<()> {
    match p.ty {
        Ty::Num | Ty::Any | Ty::Null => Ok(()),
        Ty::Bool | Ty::Str => Err(wrong(p, "a number")),
    }
}

/// An operand of `<`, `<=`, `>`, `>=` or of `BETWEEN`.
fn numeric_operand(p: &Parsed) -> Result<()> {
    match p.ty {
        Ty::Null => Err(error(p.column, ErrorKind::NullComparison)),
        _ => arithmetic_operand(p),
    }
}

/// The subject of `LIKE` or `IN`.
fn string_operand(p: &Parsed) -> Result<()> {
    match p.ty {
        Ty::Str | Ty::Any => Ok(()),
        Ty::Null => Err(error(p.column, ErrorKind::NullComparison)),
        Ty::Bool | Ty::Num => Err(wrong(p, "a string")),
    }
}

/// The operands of `=` or `<>`: not NULL, and not literals of two different types.
fn comparable(left: &Parsed, right: &Parsed, op_column: usize) -> Result<()> {
    for side in [left, right] {
        if side.ty == Ty::Null {
            return Err(error(side.column, ErrorKind::NullComparison));
        }
    }
    if left.ty != right.ty && left.ty != Ty::Any && right.ty != Ty::Any {
        return Err(error(
            op_column,
            ErrorKind::Incomparable {
                left: left.ty.noun(),
                right: right.ty.noun(),
            },
        ));
    }
    Ok(())
}
