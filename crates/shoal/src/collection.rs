//! [`Collection`]: the JSON record operations on one collection — put, patch,
//! get, delete, map entries, list, query, indexes, subscribe — and
//! [`Store::collection`], which hands one out.
//!
//! It validates names and shapes at the edge and turns each call into one
//! store transaction; it holds no state of its own beyond its name.

use crate::edit::{Edit, Written, object};
use crate::error::Error;
use crate::events::Subscription;
use crate::store::Store;
use serde_json::{Map, Value};
use shoal_core::{CollectionName, CoreError, DbVersion, Intent, RecordId};
use shoal_store::{Page, Query, Record, WriteOp};

/// Which records [`Collection::list`] returns.
#[derive(Debug, Clone)]
pub struct ListOptions {
    /// Only ids starting with this prefix.
    pub prefix: String,
    /// Only ids after this one (the previous page's `next`).
    pub after: Option<RecordId>,
    /// At most this many records (default 100).
    pub limit: usize,
}

impl Default for ListOptions {
    fn default() -> Self {
        Self {
            prefix: String::new(),
            after: None,
            limit: 100,
        }
    }
}

/// A handle on one collection of JSON records. Cheap to clone.
///
/// ```
/// use serde_json::json;
/// let dir = tempfile::tempdir().unwrap();
/// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
/// let notes = store.collection("notes")?;
/// notes.put("n1", json!({"text": "hello", "pinned": true}))?;
/// notes.map_set("n1", "tags", "work", json!(true))?;
/// notes.map_set("n1", "tags", "idea", json!(true))?;
/// notes.map_remove("n1", "tags", "work")?;
/// assert_eq!(notes.get("n1")?.unwrap()["tags"], json!({"idea": true}));
/// # Ok::<(), shoal::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Collection {
    pub(crate) store: Store,
    pub(crate) name: CollectionName,
}

impl Store {
    /// A handle on the collection `name` (created on first write).
    pub fn collection(&self, name: &str) -> Result<Collection, Error> {
        Ok(Collection::new(self.clone(), CollectionName::new(name)?))
    }
}

impl Collection {
    pub(crate) fn new(store: Store, name: CollectionName) -> Self {
        Self { store, name }
    }

    /// The collection's name.
    pub fn name(&self) -> &CollectionName {
        &self.name
    }

    /// Commits one edit of record `id` (one transaction) and reports its
    /// db_version and clock; `None` if nothing changed. Each of the methods
    /// below is this with its own [`Edit`].
    ///
    /// ```
    /// use serde_json::json;
    /// use shoal::Edit;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let notes = store.collection("notes")?;
    /// let written = notes.write("n1", Edit::Put(json!({"text": "hi"})))?.unwrap();
    /// assert_eq!(written.version, store.db_version());
    /// assert_eq!(written.clock.site, store.site_id());
    /// assert!(notes.write("n1", Edit::Put(json!({"text": "hi"})))?.is_none(), "nothing changed");
    /// # Ok::<(), shoal::Error>(())
    /// ```
    pub fn write(&self, id: &str, edit: Edit) -> Result<Option<Written>, Error> {
        let id = RecordId::new(id)?;
        let intent = edit.into_intent()?;
        self.run(id, intent)
    }

    fn run(&self, id: RecordId, intent: Intent) -> Result<Option<Written>, Error> {
        let op = WriteOp {
            collection: self.name.clone(),
            id: id.clone(),
            intent,
        };
        self.store.write(vec![op]).map_err(|e| match e {
            Error::Invalid(CoreError::RecordNotFound) => Error::NotFound {
                collection: self.name.clone(),
                id,
            },
            Error::Invalid(CoreError::RecordExists) => Error::Exists {
                collection: self.name.clone(),
                id,
            },
            other => other,
        })
    }

    /// Makes record `id` exactly `value` (a JSON object): creates it, starts a
    /// new life of a deleted one, or replaces its fields (removing those not
    /// given). Returns the db_version written, `None` if nothing changed.
    pub fn put(&self, id: &str, value: Value) -> Result<Option<DbVersion>, Error> {
        self.write(id, Edit::Put(value)).map(Written::version)
    }

    /// Creates record `id` as `value` (a JSON object) only if no live record
    /// has that id (a deleted one starts a new life); otherwise
    /// [`Error::Exists`] and nothing changes. The check is made inside the
    /// write, so of two racing creates — or a create and a put, or a peer's
    /// change merged meanwhile — exactly one finds the record absent.
    /// Returns the db_version written.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = shoal::Store::open(dir.path().join("db"))?;
    /// let notes = store.collection("notes")?;
    /// notes.create("n1", serde_json::json!({"text": "first"}))?;
    /// assert!(matches!(
    ///     notes.create("n1", serde_json::json!({"text": "again"})),
    ///     Err(shoal::Error::Exists { .. })
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(&self, id: &str, value: Value) -> Result<Option<DbVersion>, Error> {
        self.write(id, Edit::Create(value)).map(Written::version)
    }

    /// Puts many records in one transaction: all or none. Returns the
    /// db_version written, `None` if nothing changed.
    ///
    /// The records are taken from `records` as the write goes, a few
    /// hundred at a time, so a large batch made by an iterator is never all
    /// in memory at once. The write holds the store meanwhile, and the
    /// database file's write lock (another process's write waits): the
    /// iterator must not use this store (a call into it from the
    /// iterator's thread panics rather than wait for itself forever), and
    /// should not be slow; read what it needs first. An invalid id or a
    /// value that is not an object, wherever it comes, fails the whole
    /// batch when the write reaches it (a refusal of an earlier record
    /// comes first).
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let store = shoal::Store::open(dir.path().join("db"))?;
    /// let notes = store.collection("notes")?;
    /// let version = notes.put_many(
    ///     (0..1_000).map(|i| (format!("n{i:04}"), serde_json::json!({"n": i}))),
    /// )?;
    /// assert_eq!(version, Some(store.db_version()));
    /// assert_eq!(notes.get("n0999")?.unwrap()["n"], 999);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn put_many<I, S>(&self, records: I) -> Result<Option<DbVersion>, Error>
    where
        I: IntoIterator<Item = (S, Value)>,
        S: AsRef<str>,
    {
        let ops = records.into_iter().map(|(id, value)| {
            Ok(WriteOp {
                collection: self.name.clone(),
                id: RecordId::new(id.as_ref())?,
                intent: Intent::Put(object(value)?),
            })
        });
        self.store.write_from(ops).map(Written::version)
    }

    /// Changes only the given fields of a live record; a `null` field removes it.
    pub fn patch(&self, id: &str, fields: Value) -> Result<Option<DbVersion>, Error> {
        self.write(id, Edit::Patch(fields)).map(Written::version)
    }

    /// Deletes a live record. Its id stays known, so a stale edit from a peer
    /// cannot bring it back; a later `put` starts a new life.
    pub fn delete(&self, id: &str) -> Result<Option<DbVersion>, Error> {
        self.write(id, Edit::Delete).map(Written::version)
    }

    /// Sets entry `key` of map field `field` (creating the record if needed).
    /// Entries merge one by one, so concurrent adds on two replicas both survive.
    pub fn map_set(
        &self,
        id: &str,
        field: &str,
        key: &str,
        value: Value,
    ) -> Result<Option<DbVersion>, Error> {
        let edit = Edit::MapSet {
            field: field.to_string(),
            key: key.to_string(),
            value,
        };
        self.write(id, edit).map(Written::version)
    }

    /// Removes entry `key` of map field `field` (a tombstone, so a replica that
    /// still holds the entry cannot bring it back by merging).
    pub fn map_remove(&self, id: &str, field: &str, key: &str) -> Result<Option<DbVersion>, Error> {
        let edit = Edit::MapRemove {
            field: field.to_string(),
            key: key.to_string(),
        };
        self.write(id, edit).map(Written::version)
    }

    /// The fields of a live record, or `None`.
    pub fn get(&self, id: &str) -> Result<Option<Map<String, Value>>, Error> {
        let id = RecordId::new(id)?;
        self.store.with_db(|db| db.get(&self.name, &id))
    }

    /// A page of live records in id order.
    pub fn list(&self, options: &ListOptions) -> Result<Page, Error> {
        self.store.with_db(|db| {
            db.list(
                &self.name,
                &options.prefix,
                options.after.as_ref(),
                options.limit,
            )
        })
    }

    /// Runs a query over the live records.
    ///
    /// ```
    /// use serde_json::json;
    /// use shoal::{Order, Query};
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let tasks = store.collection("tasks")?;
    /// tasks.create_index("due")?;
    /// for (id, due, done) in [("a", 3, false), ("b", 1, true), ("c", 2, false)] {
    ///     tasks.put(id, json!({"due": due, "done": done}))?;
    /// }
    /// let open = tasks.query(&Query::new().eq("done", json!(false)).order_by("due", Order::Asc))?;
    /// let ids: Vec<_> = open.iter().map(|(id, _)| id.as_str()).collect();
    /// assert_eq!(ids, ["c", "a"]);
    /// # Ok::<(), shoal::Error>(())
    /// ```
    pub fn query(&self, query: &Query) -> Result<Vec<Record>, Error> {
        self.store.with_db(|db| db.query(&self.name, query))
    }

    /// Declares an index on a field so queries filtering or ordering on it are fast.
    pub fn create_index(&self, field: &str) -> Result<(), Error> {
        self.store.with_db(|db| db.create_index(&self.name, field))
    }

    /// Subscribes to changes of this collection only.
    pub fn subscribe(&self) -> Subscription {
        self.store.subscribe_collection(self.name.clone())
    }
}
