//! The partial-replica filter language (`shoal_core::partial`): any text
//! either parses or is refused with an error pointing inside it (never a
//! panic, never unbounded recursion); what parses prints as a canonical
//! text that parses back to the same tree, and evaluates alike on a few
//! records; the wire form of a set of filters round-trips.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::CollectionName;
use shoal_core::partial::{Filter, PartialFilters};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let filter = match Filter::parse(text) {
        Ok(filter) => filter,
        Err(e) => {
            assert!(e.at <= text.len().max(shoal_core::partial::MAX_FILTER_LEN), "{e}");
            assert!(!e.reason.is_empty());
            return;
        }
    };
    let canonical = filter.to_string();
    let back = Filter::parse(&canonical).expect("canonical text parses");
    assert_eq!(back, filter, "{text:?} -> {canonical:?}");
    let records = [
        serde_json::json!({}),
        serde_json::json!({"owner": "bo", "n": 5, "date": "2026-12-01T00:00:00Z"}),
        serde_json::json!({"a": null, "b": true, "n": -1.5, "x": [1]}),
    ];
    for record in &records {
        let fields = record.as_object().expect("object");
        for now in [0, 1_796_169_600_000] {
            assert_eq!(back.matches(fields, now), filter.matches(fields, now));
        }
    }
    let notes = CollectionName::new("notes").expect("name");
    let set = PartialFilters::from_texts(&[(notes, text.to_string())]).expect("parsed once");
    assert_eq!(PartialFilters::from_texts(&set.to_texts()).as_ref(), Ok(&set));
});
