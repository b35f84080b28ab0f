//! The query language (docs/ARCHITECTURE.md §13): `label:scratch AND (model:sdxl OR NOT
//! source:generated) AND area>200 AND created>=2026-11-01`.
//!
//! - `key:value` matches a tag (`key:"a value"` quoted; `key:*` any value of the key); a bare
//!   word or `"quoted words"` matches a manual tag. Tags are matched case-insensitively.
//! - `field OP value` compares a numeric field (`< <= > >= = !=`); the value is a number or a
//!   date `YYYY-MM-DD` (UTC; `created` is a date field: `created=2026-11-01` is that day). An
//!   item without the field matches no comparison.
//! - `NOT` (also `!`, `-`), `AND` (also `&&`, or nothing: terms side by side), `OR` (also
//!   `||`), parentheses; NOT binds tighter than AND, AND tighter than OR. Keywords are
//!   case-insensitive; quote a tag named like one (`"and"`).
//!
//! [`Query::parse`] gives an [`Expr`]; a parse error names the character position and what was
//! expected. [`Expr::matches`] evaluates it on one record (the reference the indexes are tested
//! against); [`super::Index`] evaluates it over the whole catalogue. `Display` prints an
//! expression back as text that parses to the same expression.

use std::fmt;

use super::{norm_tag, ItemRecord};
use crate::error::{EngineError, Result};

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    pub const ALL: [CmpOp; 6] = [
        CmpOp::Lt,
        CmpOp::Le,
        CmpOp::Gt,
        CmpOp::Ge,
        CmpOp::Eq,
        CmpOp::Ne,
    ];

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scalar {
    Number(f64),
    /// A day (UTC), compared as the interval of milliseconds it spans.
    Date {
        year: i32,
        month: u32,
        day: u32,
    },
}

const DAY_MS: f64 = 86_400_000.0;

impl Scalar {
    /// The half-open interval `[lo, hi)` the value stands for (a number: `[x, x]`, closed).
    fn span(self) -> (f64, f64, bool) {
        match self {
            Scalar::Number(x) => (x, x, true),
            Scalar::Date { year, month, day } => {
                let lo = days_from_civil(year, month, day) as f64 * DAY_MS;
                (lo, lo + DAY_MS, false)
            }
        }
    }
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Which values of a field a comparison accepts: `lo ≤ v < hi` style bounds, or everything
/// outside them (`!=`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range {
    /// Lower bound and whether it is inclusive.
    pub lo: (f64, bool),
    /// Upper bound and whether it is inclusive.
    pub hi: (f64, bool),
    /// Accept the values outside `[lo, hi]` instead (`!=`).
    pub outside: bool,
}

impl Range {
    pub fn new(op: CmpOp, value: Scalar) -> Range {
        let (a, b, closed) = value.span();
        let inf = f64::INFINITY;
        // For a number a == b and the interval is [a, a]; for a day it is [a, b).
        let (lo, hi) = ((a, true), (b, closed));
        match op {
            CmpOp::Lt => Range::within((-inf, true), (a, false)),
            CmpOp::Le => Range::within((-inf, true), hi),
            CmpOp::Gt => Range::within((b, !closed), (inf, true)),
            CmpOp::Ge => Range::within(lo, (inf, true)),
            CmpOp::Eq => Range::within(lo, hi),
            CmpOp::Ne => Range {
                lo,
                hi,
                outside: true,
            },
        }
    }

    fn within(lo: (f64, bool), hi: (f64, bool)) -> Range {
        Range {
            lo,
            hi,
            outside: false,
        }
    }

    /// Whether `v` is inside `[lo, hi]` (bounds as given), ignoring `outside`.
    pub fn inside(&self, v: f64) -> bool {
        let above = if self.lo.1 {
            v >= self.lo.0
        } else {
            v > self.lo.0
        };
        let below = if self.hi.1 {
            v <= self.hi.0
        } else {
            v < self.hi.0
        };
        above && below
    }

    pub fn contains(&self, v: f64) -> bool {
        self.inside(v) != self.outside
    }
}

/// A parsed query.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `key:value`: an item carrying that tag (both stored lowercased).
    Tag {
        key: String,
        value: String,
    },
    /// `key:*`: an item with any tag of that key.
    AnyValue {
        key: String,
    },
    /// A bare word: an item carrying that tag (a manual tag, or a `key:value` one when quoted).
    Word(String),
    /// `field OP value`.
    Cmp {
        field: String,
        op: CmpOp,
        value: Scalar,
    },
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
}

/// The query parser's entry point.
pub struct Query;

impl Query {
    /// Parses a query; the error names the character position and what was expected.
    pub fn parse(text: &str) -> Result<Expr> {
        let tokens = lex(text)?;
        let mut p = Parser { tokens, at: 0 };
        if p.peek().kind == Tok::End {
            return Err(p.error("an empty query: expected a tag, a word or a comparison"));
        }
        let e = p.or()?;
        match &p.peek().kind {
            Tok::End => Ok(e),
            Tok::RParen => Err(p.error("a ')' without its '('")),
            _ => Err(p.error("expected AND, OR or the end of the query")),
        }
    }
}

impl Expr {
    /// Evaluates the expression on one record, without any index (the reference for
    /// [`super::Index`]).
    pub fn matches(&self, item: &ItemRecord) -> bool {
        match self {
            Expr::Tag { key, value } => {
                let want = format!("{key}:{value}");
                item.all_tags().any(|t| norm_tag(t) == want)
            }
            Expr::AnyValue { key } => item.all_tags().any(|t| {
                norm_tag(t)
                    .split_once(':')
                    .is_some_and(|(k, _)| k == key.as_str())
            }),
            Expr::Word(w) => item.all_tags().any(|t| norm_tag(t) == *w),
            Expr::Cmp { field, op, value } => item
                .field(field)
                .is_some_and(|v| Range::new(*op, *value).contains(v)),
            Expr::Not(e) => !e.matches(item),
            Expr::And(a, b) => a.matches(item) && b.matches(item),
            Expr::Or(a, b) => a.matches(item) || b.matches(item),
        }
    }
}

// ---- printing ----

/// Whether a word must be quoted to read back as the same word.
fn needs_quotes(w: &str) -> bool {
    w.is_empty()
        || w.starts_with(['-', '!'])
        || ["and", "or", "not"].contains(&w.to_lowercase().as_str())
        || w.chars()
            .any(|c| c.is_whitespace() || "()\"<>=!:".contains(c))
        || w.contains("&&")
        || w.contains("||")
}

fn quoted(w: &str) -> String {
    let mut s = String::from("\"");
    for c in w.chars() {
        if c == '"' || c == '\\' {
            s.push('\\');
        }
        s.push(c);
    }
    s.push('"');
    s
}

fn word(w: &str) -> String {
    if needs_quotes(w) {
        quoted(w)
    } else {
        w.to_string()
    }
}

impl fmt::Display for Scalar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Scalar::Number(x) => write!(f, "{x}"),
            Scalar::Date { year, month, day } => write!(f, "{year:04}-{month:02}-{day:02}"),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = |e: &Expr| match e {
            Expr::And(..) | Expr::Or(..) => format!("({e})"),
            _ => e.to_string(),
        };
        match self {
            Expr::Tag { key, value } => {
                let v = if value == "*" || needs_quotes(value) {
                    quoted(value)
                } else {
                    value.clone()
                };
                write!(f, "{key}:{v}")
            }
            Expr::AnyValue { key } => write!(f, "{key}:*"),
            Expr::Word(w) => f.write_str(&word(w)),
            Expr::Cmp { field, op, value } => write!(f, "{field}{}{value}", op.symbol()),
            Expr::Not(e) => write!(f, "NOT {}", group(e)),
            Expr::And(a, b) => write!(f, "{} AND {}", group(a), group(b)),
            Expr::Or(a, b) => write!(f, "{} OR {}", group(a), group(b)),
        }
    }
}

// ---- lexing ----

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    /// A term: a tag, a word or a comparison.
    Term(Expr),
    End,
}

#[derive(Clone, Debug)]
struct Token {
    kind: Tok,
    pos: usize,
}

fn err(pos: usize, message: impl Into<String>) -> EngineError {
    EngineError::Query {
        pos,
        message: message.into(),
    }
}

/// Characters that end a bare word.
fn ends_word(c: char) -> bool {
    c.is_whitespace() || "()\"<>=!".contains(c)
}

struct Lexer<'a> {
    chars: Vec<(usize, char)>,
    at: usize,
    text: &'a str,
}

impl Lexer<'_> {
    fn pos(&self) -> usize {
        self.chars.get(self.at).map_or(self.text.len(), |c| c.0)
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).map(|c| c.1)
    }
    fn peek2(&self) -> Option<char> {
        self.chars.get(self.at + 1).map(|c| c.1)
    }
    fn skip_space(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.at += 1;
        }
    }
    /// A bare word (stops at `&&` and `||` too).
    fn bare(&mut self) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek() {
            if ends_word(c) || (c == '&' || c == '|') && self.peek2() == Some(c) {
                break;
            }
            s.push(c);
            self.at += 1;
        }
        s
    }
    /// A quoted string, the opening quote at the cursor; `\"` and `\\` escape.
    fn quoted(&mut self) -> Result<String> {
        let start = self.pos();
        self.at += 1;
        let mut s = String::new();
        loop {
            match self.peek() {
                None => return Err(err(start, "a quote '\"' that is never closed")),
                Some('"') => {
                    self.at += 1;
                    return Ok(s);
                }
                Some('\\') if matches!(self.peek2(), Some('"' | '\\')) => {
                    s.push(self.peek2().unwrap_or('\\'));
                    self.at += 2;
                }
                Some(c) => {
                    s.push(c);
                    self.at += 1;
                }
            }
        }
    }
    fn op(&mut self) -> Option<CmpOp> {
        let (a, b) = (self.peek()?, self.peek2());
        let (op, len) = match (a, b) {
            ('<', Some('=')) => (CmpOp::Le, 2),
            ('>', Some('=')) => (CmpOp::Ge, 2),
            ('!', Some('=')) => (CmpOp::Ne, 2),
            ('=', Some('=')) => (CmpOp::Eq, 2),
            ('<', _) => (CmpOp::Lt, 1),
            ('>', _) => (CmpOp::Gt, 1),
            ('=', _) => (CmpOp::Eq, 1),
            _ => return None,
        };
        self.at += len;
        Some(op)
    }
}

/// A comparison's value: a number or a date `YYYY-MM-DD`.
fn scalar(text: &str) -> Option<Scalar> {
    let parts: Vec<&str> = text.split('-').collect();
    if parts.len() == 3 && parts.iter().all(|p| !p.is_empty()) && parts[0].len() == 4 {
        let (y, m, d) = (
            parts[0].parse::<i32>().ok()?,
            parts[1].parse::<u32>().ok()?,
            parts[2].parse::<u32>().ok()?,
        );
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let days = [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        if !(1..=12).contains(&m) || d == 0 || d > days[m as usize - 1] {
            return None;
        }
        return Some(Scalar::Date {
            year: y,
            month: m,
            day: d,
        });
    }
    let x: f64 = text.parse().ok()?;
    x.is_finite().then_some(Scalar::Number(x))
}

fn lex(text: &str) -> Result<Vec<Token>> {
    let mut lx = Lexer {
        chars: text.char_indices().collect(),
        at: 0,
        text,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_space();
        let pos = lx.pos();
        let Some(c) = lx.peek() else {
            out.push(Token {
                kind: Tok::End,
                pos,
            });
            return Ok(out);
        };
        let single = |k| Token { kind: k, pos };
        match c {
            '(' => {
                lx.at += 1;
                out.push(single(Tok::LParen));
            }
            ')' => {
                lx.at += 1;
                out.push(single(Tok::RParen));
            }
            '&' if lx.peek2() == Some('&') => {
                lx.at += 2;
                out.push(single(Tok::And));
            }
            '|' if lx.peek2() == Some('|') => {
                lx.at += 2;
                out.push(single(Tok::Or));
            }
            '!' if lx.peek2() != Some('=') => {
                lx.at += 1;
                out.push(single(Tok::Not));
            }
            '-' => {
                lx.at += 1;
                out.push(single(Tok::Not));
            }
            '"' => {
                let w = lx.quoted()?;
                out.push(single(Tok::Term(Expr::Word(norm_tag(&w)))));
            }
            _ => {
                let w = lx.bare();
                if w.is_empty() {
                    return Err(err(
                        pos,
                        format!("expected a tag, a word or a comparison, found '{c}'"),
                    ));
                }
                let kind = term(&mut lx, &w, pos)?;
                out.push(single(kind));
            }
        }
    }
}

/// What follows a bare word `w` (at `pos`): `:value`, a comparison, or nothing.
fn term(lx: &mut Lexer, w: &str, pos: usize) -> Result<Tok> {
    match w.to_lowercase().as_str() {
        "and" => return Ok(Tok::And),
        "or" => return Ok(Tok::Or),
        "not" => return Ok(Tok::Not),
        _ => {}
    }
    if let Some((key, value)) = w.split_once(':') {
        if key.is_empty() {
            return Err(err(pos, format!("expected a key before ':' in \"{w}\"")));
        }
        let key = norm_tag(key);
        if value.is_empty() {
            if lx.peek() == Some('"') {
                let v = lx.quoted()?;
                if v.trim().is_empty() {
                    return Err(err(pos, format!("expected a value after \"{key}:\"")));
                }
                return Ok(Tok::Term(Expr::Tag {
                    key,
                    value: norm_tag(&v),
                }));
            }
            return Err(err(
                lx.pos(),
                format!("expected a value after \"{key}:\" (a word, \"quoted text\" or *)"),
            ));
        }
        if value == "*" {
            return Ok(Tok::Term(Expr::AnyValue { key }));
        }
        return Ok(Tok::Term(Expr::Tag {
            key,
            value: norm_tag(value),
        }));
    }
    let save = lx.at;
    lx.skip_space();
    if let Some(op) = lx.op() {
        lx.skip_space();
        let vpos = lx.pos();
        let mut v = String::new();
        if lx.peek() == Some('-') {
            v.push('-');
            lx.at += 1;
        }
        v.push_str(&lx.bare());
        let value = scalar(&v).ok_or_else(|| {
            err(
                vpos,
                format!(
                    "expected a number or a date YYYY-MM-DD after \"{w}{}\"",
                    op.symbol()
                ),
            )
        })?;
        return Ok(Tok::Term(Expr::Cmp {
            field: norm_tag(w),
            op,
            value,
        }));
    }
    lx.at = save;
    Ok(Tok::Term(Expr::Word(norm_tag(w))))
}

// ---- parsing ----

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.tokens[self.at.min(self.tokens.len() - 1)]
    }
    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.at < self.tokens.len() - 1 {
            self.at += 1;
        }
        t
    }
    fn error(&self, message: &str) -> EngineError {
        err(self.peek().pos, message)
    }
    fn or(&mut self) -> Result<Expr> {
        let mut e = self.and()?;
        while self.peek().kind == Tok::Or {
            self.bump();
            let r = self.and()?;
            e = Expr::Or(Box::new(e), Box::new(r));
        }
        Ok(e)
    }
    fn and(&mut self) -> Result<Expr> {
        let mut e = self.unary()?;
        loop {
            match self.peek().kind {
                Tok::And => {
                    self.bump();
                }
                // Terms side by side: an implicit AND.
                Tok::Not | Tok::LParen | Tok::Term(_) => {}
                _ => return Ok(e),
            }
            let r = self.unary()?;
            e = Expr::And(Box::new(e), Box::new(r));
        }
    }
    fn unary(&mut self) -> Result<Expr> {
        match self.peek().kind {
            Tok::Not => {
                self.bump();
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            _ => self.atom(),
        }
    }
    fn atom(&mut self) -> Result<Expr> {
        let t = self.bump();
        match t.kind {
            Tok::Term(e) => Ok(e),
            Tok::LParen => {
                if self.peek().kind == Tok::RParen {
                    return Err(self.error("empty parentheses: expected a term"));
                }
                let e = self.or()?;
                if self.peek().kind != Tok::RParen {
                    return Err(self.error("expected ')'"));
                }
                self.bump();
                Ok(e)
            }
            Tok::End => Err(err(
                t.pos,
                "the query ends early: expected a tag, a word or a comparison",
            )),
            Tok::RParen => Err(err(t.pos, "expected a term before ')'")),
            Tok::And | Tok::Or => Err(err(
                t.pos,
                "expected a tag, a word or a comparison before AND/OR",
            )),
            Tok::Not => Err(err(t.pos, "expected a term")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(k: &str, v: &str) -> Expr {
        Expr::Tag {
            key: k.into(),
            value: v.into(),
        }
    }

    #[test]
    fn the_example_parses_with_precedence() {
        let e = Query::parse(
            "label:scratch AND (model:sdxl OR NOT source:generated) AND area>200 AND created>=2026-11-01",
        )
        .unwrap();
        let expect = Expr::And(
            Box::new(Expr::And(
                Box::new(Expr::And(
                    Box::new(tag("label", "scratch")),
                    Box::new(Expr::Or(
                        Box::new(tag("model", "sdxl")),
                        Box::new(Expr::Not(Box::new(tag("source", "generated")))),
                    )),
                )),
                Box::new(Expr::Cmp {
                    field: "area".into(),
                    op: CmpOp::Gt,
                    value: Scalar::Number(200.0),
                }),
            )),
            Box::new(Expr::Cmp {
                field: "created".into(),
                op: CmpOp::Ge,
                value: Scalar::Date {
                    year: 2026,
                    month: 11,
                    day: 1,
                },
            }),
        );
        assert_eq!(e, expect);
        assert_eq!(Query::parse(&e.to_string()).unwrap(), e);
    }

    #[test]
    fn operators_have_symbols_and_implicit_and() {
        let a = Query::parse("a b || !c && -Label:\"Big One\" key:*").unwrap();
        let b =
            Query::parse("(a AND b) OR ((NOT c) AND (NOT label:\"big one\") AND key:*)").unwrap();
        assert_eq!(a, b);
        assert_eq!(
            Query::parse("area != -3.5").unwrap(),
            Expr::Cmp {
                field: "area".into(),
                op: CmpOp::Ne,
                value: Scalar::Number(-3.5)
            }
        );
    }

    #[test]
    fn errors_name_the_position() {
        let e = |q: &str| match Query::parse(q) {
            Err(EngineError::Query { pos, message }) => (pos, message),
            other => panic!("{q}: {other:?}"),
        };
        assert_eq!(e("a AND").0, 5);
        assert_eq!(e("(a OR b").0, 7);
        assert!(e("area > big").1.contains("number or a date"));
        assert_eq!(e("area > big").0, 7);
        assert_eq!(e("x:").0, 2);
        assert!(e("label:\"open").1.contains("never closed"));
        assert_eq!(e("a ) b").0, 2);
        assert!(e("created>=2026-02-30").1.contains("date"));
        assert_eq!(e("").0, 0);
    }

    #[test]
    fn dates_are_days() {
        let day = days_from_civil(2026, 11, 1) as f64 * DAY_MS;
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        let d = Scalar::Date {
            year: 2026,
            month: 11,
            day: 1,
        };
        assert!(Range::new(CmpOp::Eq, d).contains(day + 5.0));
        assert!(!Range::new(CmpOp::Eq, d).contains(day + DAY_MS));
        assert!(Range::new(CmpOp::Gt, d).contains(day + DAY_MS));
        assert!(!Range::new(CmpOp::Gt, d).contains(day + 1.0));
        assert!(Range::new(CmpOp::Le, d).contains(day + 1.0));
        assert!(Range::new(CmpOp::Lt, d).contains(day - 1.0));
        assert!(!Range::new(CmpOp::Lt, d).contains(day));
        assert!(Range::new(CmpOp::Ne, d).contains(day - 1.0));
        let n = Scalar::Number(3.0);
        assert!(Range::new(CmpOp::Le, n).contains(3.0));
        assert!(!Range::new(CmpOp::Lt, n).contains(3.0));
        assert!(!Range::new(CmpOp::Gt, n).contains(3.0));
        assert!(Range::new(CmpOp::Ge, n).contains(3.0));
        assert!(!Range::new(CmpOp::Ne, n).contains(3.0));
    }
}
