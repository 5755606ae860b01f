//! The app-facing side of data versions: declaring a collection's data
//! version and JSON Schema on this node, reading it back, and telling which
//! records a newer app wrote. The rules (validation, stamps, refusals) are
//! the store's (`shoal_store::data_versions`); this file only exposes them
//! on [`Collection`].

use crate::{Collection, Error};
use serde_json::{Map, Value};
use shoal_store::{CollectionSchema, DataVersionCheck};

impl Collection {
    /// Declares this collection's data version and JSON Schema on this
    /// node. From then on a local write that would leave a record not
    /// validating is refused with the schema's message, every local write
    /// stamps the record's [`crate::DATA_VERSION_FIELD`] with `version`, and
    /// a record stamped with a newer version (a newer app wrote it) is
    /// flagged and kept, and may not be changed here until the app
    /// declares that version. The declaration is local to this node.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = shoal::Store::open(dir.path().join("app.db"))?;
    /// let tasks = store.collection("tasks")?;
    /// let schema = serde_json::json!({"type": "object", "required": ["title"]});
    /// tasks.set_schema(1, &schema)?;
    /// assert!(tasks.put("t1", serde_json::json!({"done": false})).is_err());
    /// tasks.put("t2", serde_json::json!({"title": "ok"}))?;
    /// assert_eq!(tasks.get("t2")?.unwrap()["$data_version"], 1);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_schema(&self, version: u32, schema: &Value) -> Result<(), Error> {
        self.store
            .with_db(|db| db.set_collection_schema(&self.name, version, schema))
    }

    /// This collection's declaration on this node, if any.
    pub fn schema(&self) -> Result<Option<CollectionSchema>, Error> {
        self.store.with_db(|db| db.collection_schema(&self.name))
    }

    /// Removes this collection's declaration; returns whether there was one.
    pub fn remove_schema(&self) -> Result<bool, Error> {
        self.store
            .with_db(|db| db.remove_collection_schema(&self.name))
    }

    /// What flags this collection's records written by a newer app; see
    /// [`DataVersionCheck::newer`].
    pub fn data_version_check(&self) -> Result<DataVersionCheck, Error> {
        self.store.with_db(|db| db.data_version_check(&self.name))
    }

    /// The data version of `record` if a newer app than this node's wrote it.
    pub fn newer_data_version(&self, record: &Map<String, Value>) -> Result<Option<u64>, Error> {
        Ok(self.data_version_check()?.newer(record))
    }
}
