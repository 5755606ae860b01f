//! One page of a collection as `list` answers it ([`Page`]), made from the
//! rows a storage read ([`Page::from_rows`]), and the bounds of a page's
//! size ([`check_limit`]) — shared by both storages' listing
//! (`idb/read.rs`, `sql/read.rs`) and the JavaScript API. It reads nothing.

use crate::error::WebError;
use crate::row::decode_state;

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

/// Refuses a page size outside 1 to [`MAX_PAGE`].
pub fn check_limit(limit: u32) -> Result<(), WebError> {
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
}
