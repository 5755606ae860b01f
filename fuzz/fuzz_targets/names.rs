//! Names and small values users and peers type: record ids, collection and
//! field names, derived ids, blob hashes, share modes, canonical JSON text,
//! and the same ids inside JSON (serde validates through the constructors).
//!
//! Checked against the documented rules (an independent oracle), and that
//! what is accepted prints back as the input.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::blob::BlobHash;
use shoal_core::{CanonicalJson, CollectionName, FieldName, RecordId, ShareMode, derive_id};

fn id_rule(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

fn collection_rule(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.as_bytes()[0].is_ascii_alphabetic()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn field_rule(s: &str) -> bool {
    (1..=128).contains(&s.len()) && !s.chars().any(char::is_control)
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let id = RecordId::new(text);
    assert_eq!(id.is_ok(), id_rule(text), "record id {text:?}");
    if let Ok(id) = &id {
        assert_eq!(id.as_str(), text);
        assert_eq!(id.to_string().parse::<RecordId>().as_ref(), Ok(id));
    }
    let collection = CollectionName::new(text);
    assert_eq!(
        collection.is_ok(),
        collection_rule(text),
        "collection {text:?}"
    );
    let field = FieldName::new(text);
    assert_eq!(field.is_ok(), field_rule(text), "field {text:?}");
    // The same through serde (a JSON string of the text).
    let quoted = serde_json::to_string(text).expect("a string encodes");
    assert_eq!(
        serde_json::from_str::<RecordId>(&quoted).is_ok(),
        id.is_ok()
    );
    assert_eq!(
        serde_json::from_str::<FieldName>(&quoted).is_ok(),
        field.is_ok()
    );
    assert_eq!(
        serde_json::from_str::<CollectionName>(&quoted).is_ok(),
        collection.is_ok()
    );
    // Derived ids: valid exactly when the prefix is an id's start.
    let (prefix, owner) = text.split_once('|').unwrap_or((text, ""));
    if let Ok(derived) = derive_id(prefix, owner) {
        assert!(derived.as_str().starts_with(prefix));
        assert_eq!(derive_id(prefix, owner).as_ref(), Ok(&derived));
    }
    if let Ok(hash) = BlobHash::from_hex(text) {
        assert_eq!(BlobHash::from_hex(&hash.to_hex()), Ok(hash));
        assert_eq!(text, hash.to_hex());
    }
    if let Ok(mode) = text.parse::<ShareMode>() {
        assert_eq!(mode.as_str().parse::<ShareMode>().ok(), Some(mode));
    }
    // Canonical JSON: parsing is idempotent, and only the canonical text is
    // accepted as such.
    if let Ok(canonical) = CanonicalJson::parse(text, 1 << 16) {
        let again =
            CanonicalJson::parse(canonical.as_str(), 1 << 16).expect("canonical text parses");
        assert_eq!(again, canonical);
        assert_eq!(
            CanonicalJson::try_from(canonical.as_str().to_string()).as_ref(),
            Ok(&canonical)
        );
        assert_eq!(CanonicalJson::from_value(&canonical.to_value()), canonical);
    }
    if let Ok(canonical) = CanonicalJson::try_from(text.to_string()) {
        assert_eq!(canonical.as_str(), text);
    }
});
