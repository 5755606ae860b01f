//! One page of a collection as `list` answers it ([`Page`]), and the bounds
//! of a page's size ([`check_limit`]) — shared by both storages' listing
//! (`idb/read.rs`, `sql/read.rs`) and the JavaScript API. It reads nothing.

use crate::error::WebError;

/// Most records one page may hold.
pub const MAX_PAGE: u32 = 10_000;

/// One page of a collection.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// Live records in id order: id and JSON text.
    pub records: Vec<(String, String)>,
    /// The `after` of the next page, if there is more.
    pub next: Option<String>,
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
