//! Canonical JSON: the one byte encoding of a value, used everywhere a value is
//! stored, hashed, compared or sent.
//!
//! Keys are sorted, there is no insignificant whitespace, and numbers keep the
//! form serde_json prints for them, so the same value has the same bytes on every
//! path (the `true` vs `1` class of bug cannot happen). This module owns the
//! encoding only, not size policy beyond the explicit cap argument.

use crate::error::CoreError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// How deep a value may nest arrays and objects. A record's JSON wraps its
/// values in one object (two levels for a map entry), and every record must
/// parse again where it is read, its blob references found, or a peer
/// receives it — serde_json refuses more than 128 levels. Without this
/// bound, a value a little under that limit was accepted, and the record
/// holding it could not be read back.
pub const MAX_DEPTH: usize = 100;

/// The deepest nesting of arrays and objects in JSON `text`.
fn nesting(text: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &b in text.as_bytes() {
        match (in_string, escaped, b) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (true, false, b'"') => in_string = false,
            (true, false, _) => {}
            (false, _, b'"') => in_string = true,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            (false, _, _) => {}
        }
    }
    deepest
}

/// A JSON value in its canonical text encoding.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CanonicalJson(String);

impl CanonicalJson {
    /// Encodes a parsed value canonically.
    pub fn from_value(value: &Value) -> Self {
        // serde_json's default `Map` is a BTreeMap, so keys come out sorted and
        // `to_string` emits no whitespace: that is the canonical form.
        // `serde_json::to_string` writes into its buffer directly, where
        // `Display` goes through a formatter adapter; a `Value`, whose keys
        // are strings, cannot fail to serialise.
        Self(serde_json::to_string(value).unwrap_or_default())
    }

    /// Parses JSON text and re-encodes it canonically, refusing it if the
    /// canonical form is longer than `cap` bytes or nests deeper than
    /// [`MAX_DEPTH`].
    pub fn parse(text: &str, cap: usize) -> Result<Self, CoreError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| CoreError::InvalidJson(e.to_string()))?;
        let canonical = Self::from_value(&value);
        canonical.check_limits(cap)?;
        Ok(canonical)
    }

    /// Refuses the value if its encoding is longer than `cap` bytes
    /// ([`CoreError::ValueTooLarge`]) or it nests arrays and objects deeper
    /// than [`MAX_DEPTH`] ([`CoreError::InvalidJson`]).
    pub fn check_limits(&self, cap: usize) -> Result<(), CoreError> {
        if self.0.len() > cap {
            return Err(CoreError::ValueTooLarge {
                size: self.0.len(),
                cap,
            });
        }
        // Each level opens with a bracket: a value with no more than
        // MAX_DEPTH of them cannot be too deep, and counting them (a loop the
        // compiler vectorises) costs far less than following its strings —
        // the full scan was 6 % of merging a catch-up of short values.
        let openers = self.0.bytes().filter(|b| matches!(b, b'[' | b'{')).count();
        if openers <= MAX_DEPTH {
            return Ok(());
        }
        let depth = nesting(&self.0);
        if depth > MAX_DEPTH {
            return Err(CoreError::InvalidJson(format!(
                "value nests {depth} levels deep; at most {MAX_DEPTH} are allowed"
            )));
        }
        Ok(())
    }

    /// Wraps text this crate encoded earlier (e.g. read back from the store's
    /// own file) without re-parsing it. Never use it for input from a peer or a user.
    pub fn from_trusted(text: String) -> Self {
        Self(text)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Decodes the value.
    pub fn to_value(&self) -> Value {
        // The text was produced by serde_json or validated by `parse`, so
        // decoding cannot fail; fall back to null rather than panic regardless.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }
}

/// Whether `text` is a JSON scalar whose canonical form is itself, decided
/// without parsing: `true`, `false`, `null`, a string with nothing to escape
/// (serde_json escapes only `"`, `\\` and control characters), or an integer
/// of at most 18 digits without a leading zero (never `-0`, which parses as a
/// float). Anything else goes through the parser.
fn plainly_canonical(text: &str) -> bool {
    match text.as_bytes() {
        b"true" | b"false" | b"null" | b"0" => true,
        [b'"', inner @ .., b'"'] => inner.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\'),
        [b'-', digits @ ..] | digits => {
            matches!(digits.first(), Some(b'1'..=b'9'))
                && digits.len() <= 18
                && digits.iter().all(u8::is_ascii_digit)
        }
    }
}

impl TryFrom<String> for CanonicalJson {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Self, CoreError> {
        if plainly_canonical(&s) {
            return Ok(Self(s));
        }
        let canonical = Self::parse(&s, usize::MAX)?;
        if canonical.0 != s {
            return Err(CoreError::InvalidJson(
                "value is not in canonical form".into(),
            ));
        }
        Ok(canonical)
    }
}

impl From<CanonicalJson> for String {
    fn from(v: CanonicalJson) -> String {
        v.0
    }
}

impl fmt::Display for CanonicalJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!("{}\"$blob\"{}", "[".repeat(levels), "]".repeat(levels))
    }

    #[test]
    fn a_value_nested_past_the_bound_is_refused_wherever_it_comes_from() {
        assert!(CanonicalJson::parse(&nested(MAX_DEPTH), usize::MAX).is_ok());
        // 127 levels parse in serde_json; a record holding them did not
        // parse again (its object adds a level), so it could not be read
        // back nor its blob references found. Now the value is refused.
        for levels in [MAX_DEPTH + 1, 127] {
            let text = nested(levels);
            assert!(matches!(
                CanonicalJson::parse(&text, usize::MAX),
                Err(CoreError::InvalidJson(_))
            ));
            // From a peer (the wire's decoding) ...
            assert!(CanonicalJson::try_from(text.clone()).is_err());
            // ... and from a local write, which builds values from parsed JSON.
            let value: Value = serde_json::from_str(&text).unwrap();
            assert!(
                CanonicalJson::from_value(&value)
                    .check_limits(usize::MAX)
                    .is_err()
            );
        }
    }

    #[test]
    fn many_brackets_that_do_not_nest_deep_pass() {
        // More openers than MAX_DEPTH, but shallow: the count alone must not refuse.
        let wide = format!("[{}[]]", "[],".repeat(3 * MAX_DEPTH));
        let in_a_string = format!("\"{}\"", "[{".repeat(MAX_DEPTH));
        for text in [wide, in_a_string] {
            let value = CanonicalJson::parse(&text, usize::MAX).expect("parses");
            assert!(value.check_limits(usize::MAX).is_ok(), "{text}");
        }
    }

    #[test]
    fn brackets_inside_strings_do_not_count_as_nesting() {
        assert_eq!(nesting(r#"{"a":"[[[{{{","b":["\"]]]"]}"#), 2);
        assert_eq!(nesting("\"plain\""), 0);
        assert_eq!(nesting("[[],[[]]]"), 3);
    }

    #[test]
    fn same_value_same_bytes() {
        let a = CanonicalJson::parse(r#"{ "b": 1, "a": [true, null] }"#, 100).unwrap();
        let b = CanonicalJson::parse(r#"{"a":[true,null],"b":1}"#, 100).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.as_str(), r#"{"a":[true,null],"b":1}"#);
        assert_ne!(
            CanonicalJson::parse("true", 10).unwrap(),
            CanonicalJson::parse("1", 10).unwrap()
        );
    }

    /// What the slow path (parse, encode, compare) says of `text`.
    fn canonical_by_parsing(text: &str) -> bool {
        CanonicalJson::parse(text, usize::MAX).is_ok_and(|c| c.0 == text)
    }

    #[test]
    fn the_fast_check_agrees_with_parsing() {
        let samples = [
            "true",
            "false",
            "null",
            "0",
            "-0",
            "00",
            "01",
            "-01",
            "7",
            "-7",
            "123456789012345678",
            "1234567890123456789",
            "18446744073709551616",
            "1.0",
            "1e5",
            "\"\"",
            "\"plain é\"",
            "\"tab\there\"",
            "\"a\\\"b\"",
            "\"a\\\\b\"",
            "\"\\u00e9\"",
            "\"",
            "\"\u{7f}\"",
            "-",
            "",
            " 1",
            "1 ",
            "tru",
            "\"\n\"",
            "[1]",
            "{}",
        ];
        for text in samples {
            if plainly_canonical(text) {
                assert!(canonical_by_parsing(text), "{text:?} taken as canonical");
            }
            let fast = CanonicalJson::try_from(text.to_string()).is_ok();
            assert_eq!(fast, canonical_by_parsing(text), "{text:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_fast_check_never_takes_what_parsing_refuses(text in "[-0-9\"a\\\\ \t.e]{0,22}") {
            if plainly_canonical(&text) {
                proptest::prop_assert!(canonical_by_parsing(&text), "{:?}", text);
            }
        }
    }

    /// Found by the wire round-trip proptests: a big float's canonical text
    /// parsed back to a neighbouring float (serde_json's fast float parsing
    /// is not exact), printed differently, and so a value this replica wrote
    /// was refused as "not in canonical form" when a peer decoded it.
    #[test]
    fn canonical_text_is_a_fixed_point_for_every_float() {
        for f in [
            5.265691809159281e299,
            -3.3014781767031133e299,
            1.7976931348623157e308,
            2.2250738585072014e-308,
            5e-324,
            0.1,
            123456789.12345679,
        ] {
            let written = CanonicalJson::from_value(&serde_json::json!(f));
            let decoded = CanonicalJson::try_from(written.as_str().to_string());
            assert_eq!(decoded.as_ref(), Ok(&written), "{f:e}");
            assert_eq!(CanonicalJson::parse(written.as_str(), 64).unwrap(), written);
            assert_eq!(written.to_value().as_f64(), Some(f), "{f:e} kept exactly");
        }
    }

    #[test]
    fn cap_and_garbage_refused() {
        assert!(matches!(
            CanonicalJson::parse("\"aaaaaaaaaa\"", 5),
            Err(CoreError::ValueTooLarge { size: 12, cap: 5 })
        ));
        assert!(matches!(
            CanonicalJson::parse("{", 5),
            Err(CoreError::InvalidJson(_))
        ));
        assert!(CanonicalJson::try_from("{ }".to_string()).is_err());
    }
}
