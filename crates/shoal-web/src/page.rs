//! One page of a collection as `list` answers it ([`Page`]): the key range a
//! listing reads ([`listing_range`], with the bounds of a page's size) and
//! the page made from the rows read ([`Page::from_rows`]) — shared by both
//! storages' listing (`idb/read.rs`, `sql/read.rs`) and the JavaScript API.
//! It reads nothing.

use crate::error::WebError;
use crate::keys::{page_range, range_is_empty};
use crate::row::decode_state;
use shoal_core::{CollectionName, RecordId};

/// Most records one page may hold.
pub const MAX_PAGE: u32 = 10_000;

/// One page of a collection.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Live records in id order: id and JSON text.
    pub records: Vec<(String, String)>,
    /// The `after` of the next page, if there is more.
    pub next: Option<String>,
}

impl Page {
    /// The page of `rows` — up to `limit + 1` rows in id order, id and
    /// state text — that a listing of at most `limit` read: deleted records
    /// (tombstones) are skipped but count toward the rows read, so a page
    /// may hold fewer than `limit` records while `next` is set.
    pub fn from_rows(
        rows: impl IntoIterator<Item = (String, String)>,
        limit: u32,
    ) -> Result<Page, WebError> {
        let mut records = Vec::new();
        let mut last = None;
        let mut more = false;
        for (read, (id, state)) in rows.into_iter().enumerate() {
            if read == limit as usize {
                more = true;
                break;
            }
            if let Some(json) = decode_state(&state)?.render_json() {
                records.push((id.clone(), json));
            }
            last = Some(id);
        }
        Ok(Page {
            records,
            next: if more { last } else { None },
        })
    }
}

/// The key range a listing of at most `limit` records of `collection`
/// reads (`keys::page_range`: ids starting with `prefix`, after `after`),
/// as `(lower, lower_open, upper)`; `None` when it holds no key (then the
/// page is empty). A `limit` outside 1 to [`MAX_PAGE`] is refused.
pub fn listing_range(
    collection: &CollectionName,
    prefix: &str,
    after: Option<&RecordId>,
    limit: u32,
) -> Result<Option<(String, bool, String)>, WebError> {
    check_limit(limit)?;
    let (lower, lower_open, upper) = page_range(collection, prefix, after);
    Ok((!range_is_empty((&lower, lower_open, &upper))).then_some((lower, lower_open, upper)))
}

/// Refuses a page size outside 1 to [`MAX_PAGE`].
fn check_limit(limit: u32) -> Result<(), WebError> {
    if limit == 0 || limit > MAX_PAGE {
        return Err(WebError::BadRequest(format!(
            "limit must be 1 to {MAX_PAGE}, got {limit}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::NodeMeta;
    use crate::row::StoredRecord;
    use crate::write::local_write;
    use shoal_core::Intent;

    /// The stored state text of a live record `{"n": n}`, and of one deleted.
    fn states() -> (String, String) {
        let meta = NodeMeta::new([9; 32]);
        let put = Intent::Put(serde_json::json!({"n": 1}).as_object().unwrap().clone());
        let live = local_write(&meta, &StoredRecord::default(), &put, 1)
            .unwrap()
            .unwrap();
        let gone = local_write(&live.meta, &live.record, &Intent::Delete, 2)
            .unwrap()
            .unwrap();
        (live.encoded, gone.encoded)
    }

    #[test]
    fn a_page_skips_tombstones_counts_them_and_says_where_to_go_on() {
        let (live, gone) = states();
        let row = |id: &str, state: &String| (id.to_string(), state.clone());
        // Three rows read for a limit of 2: there is more, after the second.
        let page = Page::from_rows([row("a", &live), row("b", &gone), row("c", &live)], 2).unwrap();
        assert_eq!(page.records, [("a".to_string(), r#"{"n":1}"#.to_string())]);
        assert_eq!(page.next.as_deref(), Some("b"));
        // As many rows as the limit: the end.
        let page = Page::from_rows([row("a", &live), row("c", &live)], 2).unwrap();
        assert_eq!(page.records.len(), 2);
        assert_eq!(page.next, None);
        assert!(matches!(
            Page::from_rows([row("a", &"[{".to_string())], 2),
            Err(WebError::Corrupt(_))
        ));
        assert_eq!(check_limit(0).unwrap_err().code(), "bad-request");
        assert!(check_limit(MAX_PAGE).is_ok() && check_limit(MAX_PAGE + 1).is_err());
    }

    #[test]
    fn a_listing_past_its_prefix_reads_nothing_and_a_bad_limit_is_refused() {
        let tasks = CollectionName::new("tasks").unwrap();
        let z = RecordId::new("z").unwrap();
        assert_eq!(listing_range(&tasks, "a", Some(&z), 5).unwrap(), None);
        let range = listing_range(&tasks, "a", None, 5).unwrap().unwrap();
        assert_eq!(range, ("tasks/a".to_string(), false, "tasks/b".to_string()));
        assert_eq!(
            listing_range(&tasks, "", None, 0).unwrap_err().code(),
            "bad-request"
        );
    }
}
