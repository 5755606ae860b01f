//! Keys of the records store (IndexedDB's `records`, SQLite's `records.k`):
//! `collection/id`, and the key ranges that list one collection a page at
//! a time.
//!
//! `/` is in neither a collection name's alphabet (`[A-Za-z0-9_-]`) nor a
//! record id's (`[A-Za-z0-9._:-]`), so the key splits back unambiguously, and
//! `0` (the byte after `/`) bounds a collection's range from above. Both
//! alphabets are ASCII, so IndexedDB's UTF-16 key order is the byte order
//! SQLite's and the native store's pages follow. This module owns the key
//! format and nothing else.

use shoal_core::{CollectionName, RecordId};

/// The key of one record.
pub fn record_key(collection: &CollectionName, id: &RecordId) -> String {
    format!("{}/{}", collection.as_str(), id.as_str())
}

/// The record id part of a key made by [`record_key`].
pub fn id_of_key(key: &str) -> Option<&str> {
    key.split_once('/').map(|(_, id)| id)
}

/// The half-open key range `[lower, upper)` of a collection's records whose
/// id starts with `prefix` and comes after `after` (exclusive), as
/// `(lower, lower_open, upper)`.
pub fn page_range(
    collection: &CollectionName,
    prefix: &str,
    after: Option<&RecordId>,
) -> (String, bool, String) {
    let start = format!("{}/{}", collection.as_str(), prefix);
    let upper = match prefix_successor(&start) {
        Some(upper) => upper,
        None => format!("{}0", collection.as_str()),
    };
    match after {
        Some(after) if record_key(collection, after) >= start => {
            (record_key(collection, after), true, upper)
        }
        _ => (start, false, upper),
    }
}

/// Whether a range from [`page_range`] holds no key: an `after` at or past
/// the end of the prefix's keys leaves nothing to list (IndexedDB refuses
/// such a range outright, so both storages answer an empty page instead).
pub fn range_is_empty((lower, _, upper): (&str, bool, &str)) -> bool {
    // The range stops short of `upper`, whether or not `lower` is in it.
    lower >= upper
}

/// The least string greater than every string starting with `prefix`
/// (its last character moved one up), or `None` for an empty prefix.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    let last = chars.pop()?;
    let next = char::from_u32(last as u32 + 1)?;
    chars.push(next);
    Some(chars.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(name: &str) -> CollectionName {
        CollectionName::new(name).unwrap()
    }

    #[test]
    fn a_key_splits_back_and_ranges_bound_one_collection() {
        let id = RecordId::new("a.b:c").unwrap();
        let key = record_key(&c("tasks"), &id);
        assert_eq!(key, "tasks/a.b:c");
        assert_eq!(id_of_key(&key), Some("a.b:c"));

        let (lower, open, upper) = page_range(&c("tasks"), "", None);
        assert_eq!(
            (lower.as_str(), open, upper.as_str()),
            ("tasks/", false, "tasks0")
        );
        // A longer collection name sharing the prefix sorts outside the range.
        assert!("tasks2/x" >= upper.as_str());
        assert!("tasks-x/a" < lower.as_str());

        let (lower, open, upper) =
            page_range(&c("tasks"), "t1", Some(&RecordId::new("t10").unwrap()));
        assert_eq!(
            (lower.as_str(), open, upper.as_str()),
            ("tasks/t10", true, "tasks/t2")
        );
        // An `after` before the prefix starts at the prefix.
        let (lower, open, upper) = page_range(&c("tasks"), "t", Some(&RecordId::new("a").unwrap()));
        assert_eq!((lower.as_str(), open), ("tasks/t", false));
        assert!(!range_is_empty((&lower, open, &upper)));
        // An `after` at or past the prefix's end leaves nothing.
        for after in ["u", "z"] {
            let (lower, open, upper) =
                page_range(&c("tasks"), "t", Some(&RecordId::new(after).unwrap()));
            assert!(range_is_empty((&lower, open, &upper)), "{after}");
        }
    }
}
