//! The partial-replica filter language's parser: text in, a [`Filter`] tree
//! or a [`FilterError`] naming the byte where the text went wrong.
//!
//! Grammar (keywords are lower case; whitespace between tokens is free):
//!
//! ```text
//! filter  := or
//! or      := and ("or" and)*
//! and     := unary ("and" unary)*
//! unary   := "not" unary | "(" or ")" | FIELD "exists" | FIELD OP VALUE
//! OP      := "=" | "!=" | "<" | "<=" | ">" | ">="
//! VALUE   := STRING | NUMBER | "true" | "false" | "null"
//!          | "now" [("+" | "-") DIGITS ("s" | "m" | "h" | "d")]
//! FIELD   := [A-Za-z_][A-Za-z0-9_.-]*  |  "`" any text but "`" "`"
//! STRING  := '"' JSON string body '"'
//! ```
//!
//! This module owns only the text → tree step and its limits; what a tree
//! means for a record is `eval.rs`'s.

use super::{Cmp, Filter, Literal, Op};
use std::fmt;

/// Longest filter text accepted, in bytes.
pub const MAX_FILTER_LEN: usize = 1024;
/// Deepest nesting of `not` and parentheses accepted.
pub const MAX_FILTER_DEPTH: usize = 32;

/// Why a filter's text was refused: what was wrong and at which byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FilterError {
    /// Byte offset in the text where the problem was found.
    pub at: usize,
    /// What was wrong, worded for the person who typed it.
    pub reason: String,
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad filter at byte {}: {}", self.at, self.reason)
    }
}

/// One token and where it starts.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Str(String),
    Num(f64),
    Op(Op),
    Open,
    Close,
    Sign(i64),
}

fn err<T>(at: usize, reason: impl Into<String>) -> Result<T, FilterError> {
    Err(FilterError {
        at,
        reason: reason.into(),
    })
}

fn tokenize(text: &str) -> Result<Vec<(usize, Token)>, FilterError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        match c {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                out.push((start, Token::Open));
                i += 1;
            }
            b')' => {
                out.push((start, Token::Close));
                i += 1;
            }
            b'=' => {
                out.push((start, Token::Op(Op::Eq)));
                i += 1;
            }
            b'!' if bytes.get(i + 1) == Some(&b'=') => {
                out.push((start, Token::Op(Op::Ne)));
                i += 2;
            }
            b'<' | b'>' => {
                let eq = bytes.get(i + 1) == Some(&b'=');
                let op = match (c, eq) {
                    (b'<', false) => Op::Lt,
                    (b'<', true) => Op::Le,
                    (_, false) => Op::Gt,
                    (_, true) => Op::Ge,
                };
                out.push((start, Token::Op(op)));
                i += 1 + usize::from(eq);
            }
            b'+' => {
                out.push((start, Token::Sign(1)));
                i += 1;
            }
            b'-' if !bytes.get(i + 1).is_some_and(u8::is_ascii_digit)
                || matches!(out.last(), Some((_, Token::Word(w))) if w == "now") =>
            {
                out.push((start, Token::Sign(-1)));
                i += 1;
            }
            b'"' => {
                // A JSON string: find its closing quote, skipping escapes.
                let mut j = i + 1;
                loop {
                    match bytes.get(j) {
                        None => return err(start, "string not closed (missing '\"')"),
                        Some(b'\\') => j += 2,
                        Some(b'"') => break,
                        Some(_) => j += 1,
                    }
                }
                let literal = &text[i..=j];
                match serde_json::from_str::<String>(literal) {
                    Ok(s) => out.push((start, Token::Str(s))),
                    Err(e) => return err(start, format!("bad string {literal}: {e}")),
                }
                i = j + 1;
            }
            b'`' => {
                let Some(len) = text[i + 1..].find('`') else {
                    return err(start, "field name not closed (missing '`')");
                };
                let name = &text[i + 1..i + 1 + len];
                out.push((start, Token::Quoted(name.to_string())));
                i += len + 2;
            }
            b'-' | b'0'..=b'9' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_digit()
                        || matches!(bytes[j], b'.' | b'e' | b'E')
                        || (matches!(bytes[j], b'+' | b'-') && matches!(bytes[j - 1], b'e' | b'E')))
                {
                    j += 1;
                }
                let literal = &text[i..j];
                match literal.parse::<f64>() {
                    Ok(n) if n.is_finite() => out.push((start, Token::Num(n))),
                    _ => return err(start, format!("bad number {literal:?}")),
                }
                i = j;
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let mut j = i + 1;
                while j < bytes.len()
                    && (bytes[j].is_ascii_alphanumeric() || matches!(bytes[j], b'_' | b'.' | b'-'))
                {
                    // `now-30d`: the word `now` ends before its offset.
                    if bytes[j] == b'-' && &text[i..j] == "now" {
                        break;
                    }
                    j += 1;
                }
                out.push((start, Token::Word(text[i..j].to_string())));
                i = j;
            }
            _ => {
                let ch = text[i..].chars().next().unwrap_or('?');
                return err(start, format!("unexpected character {ch:?}"));
            }
        }
    }
    Ok(out)
}

/// Parses a filter's text. See the module docs for the grammar.
pub(super) fn parse(text: &str) -> Result<Filter, FilterError> {
    if text.len() > MAX_FILTER_LEN {
        return err(
            MAX_FILTER_LEN,
            format!("longer than {MAX_FILTER_LEN} bytes ({})", text.len()),
        );
    }
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        next: 0,
        end: text.len(),
    };
    if parser.tokens.is_empty() {
        return err(0, "empty filter (expected e.g. owner = \"bo\")");
    }
    let filter = parser.or(0)?;
    if let Some((at, token)) = parser.tokens.get(parser.next) {
        return err(
            *at,
            format!("unexpected {} after a complete filter", describe(token)),
        );
    }
    // The canonical text (spaces around operators, numbers in full) can be
    // longer than what was typed; refusing past the limit keeps every
    // accepted filter printable as a text that parses back.
    let canonical = filter.to_string().len();
    if canonical > MAX_FILTER_LEN {
        return err(
            text.len(),
            format!(
                "longer than {MAX_FILTER_LEN} bytes when written out in full ({canonical} bytes, with spaces around operators and numbers as decimals)"
            ),
        );
    }
    Ok(filter)
}

fn describe(token: &Token) -> String {
    match token {
        Token::Word(w) => format!("word {w:?}"),
        Token::Quoted(w) => format!("field `{w}`"),
        Token::Str(s) => format!("string {s:?}"),
        Token::Num(n) => format!("number {n}"),
        Token::Op(op) => format!("operator {}", op.as_str()),
        Token::Open => "'('".into(),
        Token::Close => "')'".into(),
        Token::Sign(1) => "'+'".into(),
        Token::Sign(_) => "'-'".into(),
    }
}

struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn at(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(at, _)| *at)
    }

    fn bump(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(_, t)| t.clone());
        self.next += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w == word) {
            self.next += 1;
            return true;
        }
        false
    }

    fn or(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut parts = vec![self.and(depth)?];
        while self.keyword("or") {
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Filter, FilterError> {
        let mut parts = vec![self.unary(depth)?];
        while self.keyword("and") {
            parts.push(self.unary(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Filter::And(parts)
        })
    }

    fn unary(&mut self, depth: usize) -> Result<Filter, FilterError> {
        if depth >= MAX_FILTER_DEPTH {
            return err(self.at(), format!("nested deeper than {MAX_FILTER_DEPTH}"));
        }
        let at = self.at();
        match self.bump() {
            Some(Token::Word(w)) if w == "not" => Ok(Filter::Not(Box::new(self.unary(depth + 1)?))),
            Some(Token::Open) => {
                let inner = self.or(depth + 1)?;
                match self.bump() {
                    Some(Token::Close) => Ok(inner),
                    _ => err(at, "'(' not closed (missing ')')"),
                }
            }
            Some(Token::Word(w)) if is_keyword(&w) => {
                err(at, format!("expected a field name, found keyword {w:?}"))
            }
            Some(Token::Word(field)) | Some(Token::Quoted(field)) => self.comparison(at, field),
            Some(other) => err(
                at,
                format!("expected a field name, found {}", describe(&other)),
            ),
            None => err(at, "filter ends early: expected a field name"),
        }
    }

    fn comparison(&mut self, at: usize, field: String) -> Result<Filter, FilterError> {
        let field = shoal_field(at, field)?;
        if self.keyword("exists") {
            return Ok(Filter::Exists(field));
        }
        let op_at = self.at();
        let op = match self.bump() {
            Some(Token::Op(op)) => op,
            Some(other) => {
                return err(
                    op_at,
                    format!(
                        "expected an operator (= != < <= > >=) or 'exists' after {:?}, found {}",
                        field.as_str(),
                        describe(&other)
                    ),
                );
            }
            None => return err(op_at, "filter ends early: expected an operator"),
        };
        let value_at = self.at();
        let value = match self.bump() {
            Some(Token::Str(s)) => Literal::Str(s),
            Some(Token::Num(n)) => Literal::Num(n),
            Some(Token::Word(w)) => match w.as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                "now" => Literal::Now(self.offset()?),
                other => {
                    return err(
                        value_at,
                        format!(
                            "expected a value (\"text\", number, true, false, null, now-30d), found {other:?} (quote text values)"
                        ),
                    );
                }
            },
            Some(other) => {
                return err(
                    value_at,
                    format!("expected a value, found {}", describe(&other)),
                );
            }
            None => return err(value_at, "filter ends early: expected a value"),
        };
        Ok(Filter::Cmp(Cmp { field, op, value }))
    }

    /// The `+30d` / `-2h` after `now`, in milliseconds (0 without one).
    fn offset(&mut self) -> Result<i64, FilterError> {
        let Some(Token::Sign(sign)) = self.peek().cloned() else {
            return Ok(0);
        };
        self.next += 1;
        let at = self.at();
        // `30d` tokenizes as the number 30 then the word `d`.
        let (Some(Token::Num(n)), Some(Token::Word(unit))) = (self.bump(), self.bump()) else {
            return err(
                at,
                "expected an offset like 30d, 12h, 15m or 90s after now+/now-",
            );
        };
        let unit_ms: i64 = match unit.as_str() {
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            other => {
                return err(
                    at,
                    format!("unknown time unit {other:?} (use s, m, h or d)"),
                );
            }
        };
        if n.fract() != 0.0 || !(0.0..=1e9).contains(&n) {
            return err(at, "the offset must be a whole number up to 1000000000");
        }
        Ok(sign * n as i64 * unit_ms)
    }
}

/// Whether `name` reads back as the field `name` without backquotes.
pub(super) fn is_bare_field(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && bytes.all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
        && !is_keyword(name)
        && !name.starts_with("now-")
}

fn is_keyword(word: &str) -> bool {
    matches!(
        word,
        "and" | "or" | "not" | "exists" | "true" | "false" | "null" | "now"
    )
}

fn shoal_field(at: usize, name: String) -> Result<crate::FieldName, FilterError> {
    crate::FieldName::new(name).or_else(|e| err(at, e.to_string()))
}
