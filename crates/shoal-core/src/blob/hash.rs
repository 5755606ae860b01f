//! Blob identity: the [`BlobHash`] newtype (standard BLAKE3 of the whole
//! content), the typed [`BlobRef`] a record field holds, and [`refs_in`], which
//! finds every reference in a record's JSON.
//!
//! This file owns the text and JSON forms of hashes and references. It must not
//! decide whether a blob is present, wanted or too large to fetch: a reference
//! to a huge blob is still a well-formed reference.

use super::error::BlobError;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Most distinct blobs one record may reference.
pub const MAX_REFS_PER_RECORD: usize = 1024;
/// Longest media type in a reference, in bytes.
pub const MAX_MIME_LEN: usize = 255;

const KEY_BLOB: &str = "$blob";
const KEY_SIZE: &str = "size";
const KEY_TYPE: &str = "type";

/// The standard BLAKE3 hash of a blob's whole content.
///
/// Text form: 64 lowercase hex digits (what `b3sum` prints). Serialized as the
/// hex text in human-readable formats (JSON) and as 32 raw bytes otherwise
/// (postcard).
///
/// ```
/// use shoal_core::blob::BlobHash;
/// let h = BlobHash::of(b"hello");
/// assert_eq!(h.to_hex(), blake3::hash(b"hello").to_hex().as_str());
/// assert_eq!(h.to_hex().parse::<BlobHash>().unwrap(), h);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobHash([u8; 32]);

impl BlobHash {
    /// Wraps 32 hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Hashes a whole blob held in memory.
    pub fn of(content: &[u8]) -> Self {
        Self(*blake3::hash(content).as_bytes())
    }

    /// The 32 hash bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 lowercase hex digits. Uppercase, whitespace, a `0x` prefix or
    /// any other length is refused with [`BlobError::BadHash`].
    pub fn from_hex(text: &str) -> Result<Self, BlobError> {
        if text.len() != 64 {
            return Err(BlobError::BadHash(format!(
                "expected 64 hex digits, got {} bytes",
                text.len()
            )));
        }
        let mut bytes = [0u8; 32];
        for (i, (pair, byte)) in text.as_bytes().chunks_exact(2).zip(&mut bytes).enumerate() {
            match hex_byte(pair) {
                Some(value) => *byte = value,
                None => {
                    return Err(BlobError::BadHash(format!(
                        "not a lowercase hex digit near position {}",
                        2 * i
                    )));
                }
            }
        }
        Ok(Self(bytes))
    }

    /// The hash as 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    match pair {
        [hi, lo] => Some((hex_digit(*hi)? << 4) | hex_digit(*lo)?),
        _ => None,
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

impl From<blake3::Hash> for BlobHash {
    fn from(hash: blake3::Hash) -> Self {
        Self(*hash.as_bytes())
    }
}

impl fmt::Display for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for BlobHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BlobHash({})", self.to_hex())
    }
}

impl FromStr for BlobHash {
    type Err = BlobError;
    fn from_str(text: &str) -> Result<Self, BlobError> {
        Self::from_hex(text)
    }
}

impl Serialize for BlobHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for BlobHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Self::from_hex(&text).map_err(serde::de::Error::custom)
        } else {
            <[u8; 32]>::deserialize(deserializer).map(Self)
        }
    }
}

/// A typed reference to a blob, as a record field holds it.
///
/// JSON form: `{"$blob": "<64 hex>", "size": N, "type": "image/png"}`, with
/// `"type"` optional and no other keys.
///
/// ```
/// use shoal_core::blob::{BlobHash, BlobRef};
/// let r = BlobRef { hash: BlobHash::of(b"png"), size: 3, mime: Some("image/png".into()) };
/// assert_eq!(BlobRef::from_json(&r.to_json()).unwrap(), Some(r));
/// assert_eq!(BlobRef::from_json(&serde_json::json!({"name": "x"})).unwrap(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// The blob's hash.
    pub hash: BlobHash,
    /// The blob's size in bytes.
    pub size: u64,
    /// The media type, at most [`MAX_MIME_LEN`] bytes, if the writer gave one.
    pub mime: Option<String>,
}

impl BlobRef {
    /// Reads a reference from a JSON value.
    ///
    /// `Ok(None)` if the value is not an object with a `"$blob"` key. An object
    /// with `"$blob"` must be a well-formed reference, otherwise the error names
    /// the part that is wrong.
    pub fn from_json(value: &Value) -> Result<Option<BlobRef>, BlobError> {
        match value {
            Value::Object(map) if map.contains_key(KEY_BLOB) => Self::from_map(map).map(Some),
            _ => Ok(None),
        }
    }

    fn from_map(map: &Map<String, Value>) -> Result<BlobRef, BlobError> {
        if let Some(key) = map
            .keys()
            .find(|k| ![KEY_BLOB, KEY_SIZE, KEY_TYPE].contains(&k.as_str()))
        {
            return Err(BlobError::BadRef(format!("unknown key {key:?}")));
        }
        let hash = match map.get(KEY_BLOB) {
            Some(Value::String(text)) => BlobHash::from_hex(text)
                .map_err(|e| BlobError::BadRef(format!("\"$blob\": {e}")))?,
            _ => {
                return Err(BlobError::BadRef(
                    "\"$blob\" must be a string of 64 hex digits".into(),
                ));
            }
        };
        let size = match map.get(KEY_SIZE) {
            None => return Err(BlobError::BadRef("missing \"size\"".into())),
            Some(v) => v.as_u64().ok_or_else(|| {
                BlobError::BadRef(format!("\"size\" must be a non-negative integer, got {v}"))
            })?,
        };
        let mime = match map.get(KEY_TYPE) {
            None => None,
            Some(Value::String(text)) if text.len() <= MAX_MIME_LEN => Some(text.clone()),
            Some(Value::String(text)) => {
                return Err(BlobError::BadRef(format!(
                    "\"type\" of {} bytes is longer than {MAX_MIME_LEN} bytes",
                    text.len()
                )));
            }
            Some(_) => return Err(BlobError::BadRef("\"type\" must be a string".into())),
        };
        Ok(BlobRef { hash, size, mime })
    }

    /// The JSON form (`"type"` only when there is one).
    pub fn to_json(&self) -> Value {
        let mut map = Map::new();
        map.insert(KEY_BLOB.into(), Value::String(self.hash.to_hex()));
        map.insert(KEY_SIZE.into(), Value::from(self.size));
        if let Some(mime) = &self.mime {
            map.insert(KEY_TYPE.into(), Value::String(mime.clone()));
        }
        Value::Object(map)
    }
}

/// Every blob reference anywhere in a JSON value, recursing into objects and
/// arrays (a `"$blob"` object is a leaf), deduplicated by hash and sorted by
/// hash.
///
/// When one hash is referenced twice, the first occurrence's media type is
/// kept; two references to one hash with different sizes are an error (one of
/// them is wrong). More than [`MAX_REFS_PER_RECORD`] distinct blobs is an
/// error. The walk uses an explicit stack, so deep values cannot overflow the
/// call stack.
pub fn refs_in(value: &Value) -> Result<Vec<BlobRef>, BlobError> {
    let mut found: BTreeMap<BlobHash, BlobRef> = BTreeMap::new();
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) if map.contains_key(KEY_BLOB) => {
                let r = BlobRef::from_map(map)?;
                match found.get(&r.hash) {
                    Some(seen) if seen.size != r.size => {
                        return Err(BlobError::BadRef(format!(
                            "blob {} referenced with sizes {} and {}",
                            r.hash, seen.size, r.size
                        )));
                    }
                    Some(_) => {}
                    None => {
                        if found.len() >= MAX_REFS_PER_RECORD {
                            return Err(BlobError::TooManyRefs {
                                limit: MAX_REFS_PER_RECORD,
                            });
                        }
                        found.insert(r.hash, r);
                    }
                }
            }
            // Reverse, so the walk visits children in document order.
            Value::Object(map) => stack.extend(map.values().rev()),
            Value::Array(items) => stack.extend(items.iter().rev()),
            _ => {}
        }
    }
    Ok(found.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn h(n: u8) -> BlobHash {
        BlobHash::of(&[n])
    }

    #[test]
    fn hex_round_trip_and_b3sum_agreement() {
        // b3sum of the empty input.
        let empty = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
        assert_eq!(BlobHash::of(b"").to_hex(), empty);
        assert_eq!(BlobHash::from_hex(empty).unwrap(), BlobHash::of(b""));
        let x = h(7);
        assert_eq!(x.to_string().parse::<BlobHash>().unwrap(), x);
        assert_eq!(BlobHash::from(blake3::hash(&[7])), x);
    }

    #[test]
    fn bad_hex_is_refused() {
        let good = h(1).to_hex();
        for bad in [
            String::new(),
            good[..63].to_string(),
            format!("{good}0"),
            good.to_uppercase(),
            format!("g{}", &good[1..]),
            format!(" {}", &good[1..]),
            format!("{}é", &good[..62]),
        ] {
            assert!(
                matches!(BlobHash::from_hex(&bad), Err(BlobError::BadHash(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_is_bytes_in_postcard_and_hex_in_json() {
        let x = h(3);
        let bin = postcard::to_allocvec(&x).unwrap();
        assert_eq!(bin.as_slice(), x.as_bytes());
        assert_eq!(postcard::from_bytes::<BlobHash>(&bin).unwrap(), x);
        let text = serde_json::to_string(&x).unwrap();
        assert_eq!(text, format!("\"{x}\""));
        assert_eq!(serde_json::from_str::<BlobHash>(&text).unwrap(), x);
        assert!(serde_json::from_str::<BlobHash>("\"zz\"").is_err());
    }

    #[test]
    fn blob_ref_json_round_trip() {
        for mime in [None, Some("image/png".to_string())] {
            let r = BlobRef {
                hash: h(2),
                size: 1 << 40,
                mime,
            };
            assert_eq!(BlobRef::from_json(&r.to_json()).unwrap(), Some(r));
        }
        let r = BlobRef::from_json(&json!({"$blob": h(2).to_hex(), "size": 0}))
            .unwrap()
            .unwrap();
        assert_eq!(r.mime, None);
    }

    #[test]
    fn non_refs_are_none() {
        for v in [
            json!(null),
            json!(1),
            json!("$blob"),
            json!([{"$blob": h(1).to_hex(), "size": 1}]),
            json!({"blob": h(1).to_hex(), "size": 1}),
        ] {
            assert_eq!(BlobRef::from_json(&v).unwrap(), None, "{v}");
        }
    }

    #[test]
    fn malformed_refs_name_the_problem() {
        let hex = h(1).to_hex();
        let cases = [
            (json!({"$blob": "abc", "size": 1}), "$blob"),
            (json!({"$blob": 5, "size": 1}), "$blob"),
            (json!({"$blob": hex}), "size"),
            (json!({"$blob": hex, "size": -1}), "size"),
            (json!({"$blob": hex, "size": 1.5}), "size"),
            (json!({"$blob": hex, "size": "1"}), "size"),
            (json!({"$blob": hex, "size": 1, "type": 3}), "type"),
            (
                json!({"$blob": hex, "size": 1, "type": "a".repeat(256)}),
                "type",
            ),
            (json!({"$blob": hex, "size": 1, "name": "x"}), "name"),
        ];
        for (v, needle) in cases {
            match BlobRef::from_json(&v) {
                Err(BlobError::BadRef(text)) => assert!(text.contains(needle), "{text} / {v}"),
                other => panic!("{v}: {other:?}"),
            }
        }
        let max_type = json!({"$blob": hex, "size": 1, "type": "a".repeat(255)});
        assert!(BlobRef::from_json(&max_type).unwrap().is_some());
    }

    #[test]
    fn refs_in_finds_nested_refs_sorted_and_deduplicated() {
        let a = BlobRef {
            hash: h(1),
            size: 10,
            mime: Some("image/png".into()),
        };
        let b = BlobRef {
            hash: h(2),
            size: 20,
            mime: None,
        };
        let doc = json!({
            "title": "x",
            "cover": a.to_json(),
            "pages": [[b.to_json()], {"deep": {"again": a.to_json()}}],
            "n": 3,
        });
        let mut want = vec![a, b];
        want.sort_by_key(|r| r.hash);
        assert_eq!(refs_in(&doc).unwrap(), want);
        assert_eq!(refs_in(&json!({"plain": [1, 2]})).unwrap(), vec![]);
    }

    #[test]
    fn refs_in_refuses_malformed_conflicting_and_too_many() {
        assert!(refs_in(&json!({"x": [{"$blob": "nope", "size": 1}]})).is_err());
        let hex = h(1).to_hex();
        let conflict = json!([{"$blob": hex, "size": 1}, {"$blob": hex, "size": 2}]);
        assert!(matches!(refs_in(&conflict), Err(BlobError::BadRef(_))));
        let many = |n: u32| {
            Value::Array(
                (0..n)
                    .map(|i| {
                        BlobRef {
                            hash: BlobHash::of(&i.to_le_bytes()),
                            size: 1,
                            mime: None,
                        }
                        .to_json()
                    })
                    .collect(),
            )
        };
        assert_eq!(refs_in(&many(1024)).unwrap().len(), 1024);
        assert_eq!(
            refs_in(&many(1025)),
            Err(BlobError::TooManyRefs { limit: 1024 })
        );
    }

    #[test]
    fn refs_in_survives_deep_nesting() {
        let mut v = BlobRef {
            hash: h(9),
            size: 1,
            mime: None,
        }
        .to_json();
        for _ in 0..100_000 {
            v = Value::Array(vec![v]);
        }
        assert_eq!(refs_in(&v).unwrap().len(), 1);
        // Dropping a deeply nested Value recurses; leak it instead of
        // overflowing the test thread's stack.
        std::mem::forget(v);
    }
}
