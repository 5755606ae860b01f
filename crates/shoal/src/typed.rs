//! [`TypedCollection`]: a collection whose records are a Rust type, converted
//! through serde at the edge, handed out by [`Store::typed`].
//!
//! It owns only the conversion; every operation is the untyped [`Collection`]'s.

use crate::collection::{Collection, ListOptions};
use crate::error::Error;
use crate::store::Store;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use shoal_core::{DbVersion, RecordId};
use shoal_store::Query;
use std::marker::PhantomData;

/// A page of typed records in id order.
#[derive(Debug, Clone, PartialEq)]
pub struct TypedPage<T> {
    /// The records, decoded.
    pub records: Vec<(RecordId, T)>,
    /// Pass as `after` to get the next page; `None` on the last page.
    pub next: Option<RecordId>,
}

/// A collection of `T` records; see [`Store::typed`](crate::Store::typed).
#[derive(Debug)]
pub struct TypedCollection<T> {
    inner: Collection,
    _type: PhantomData<fn() -> T>,
}

impl<T> Clone for TypedCollection<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            _type: PhantomData,
        }
    }
}

impl Store {
    /// A handle on the collection `name` whose records are `T` through serde.
    ///
    /// ```
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct Task { title: String, done: bool }
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = shoal::Store::open(dir.path().join("shoal.db"))?;
    /// let tasks = store.typed::<Task>("tasks")?;
    /// tasks.put("t1", &Task { title: "ship".into(), done: false })?;
    /// assert_eq!(tasks.get("t1")?, Some(Task { title: "ship".into(), done: false }));
    /// # Ok::<(), shoal::Error>(())
    /// ```
    pub fn typed<T>(&self, name: &str) -> Result<TypedCollection<T>, Error> {
        Ok(TypedCollection::new(self.collection(name)?))
    }
}

impl<T> TypedCollection<T> {
    pub(crate) fn new(inner: Collection) -> Self {
        Self {
            inner,
            _type: PhantomData,
        }
    }

    /// The untyped collection underneath.
    pub fn untyped(&self) -> &Collection {
        &self.inner
    }
}

impl<T: Serialize + DeserializeOwned> TypedCollection<T> {
    fn decode(&self, id: &str, map: Map<String, Value>) -> Result<T, Error> {
        serde_json::from_value(Value::Object(map)).map_err(|source| Error::Serde {
            collection: self.inner.name().clone(),
            id: id.to_string(),
            source,
        })
    }

    /// Puts `value` (which must serialize to a JSON object) at `id`.
    pub fn put(&self, id: &str, value: &T) -> Result<Option<DbVersion>, Error> {
        self.inner.put(id, self.encode(id, value)?)
    }

    /// Creates `value` at `id` only if no live record has that id; see
    /// [`Collection::create`].
    pub fn create(&self, id: &str, value: &T) -> Result<Option<DbVersion>, Error> {
        self.inner.create(id, self.encode(id, value)?)
    }

    fn encode(&self, id: &str, value: &T) -> Result<Value, Error> {
        serde_json::to_value(value).map_err(|source| Error::Serde {
            collection: self.inner.name().clone(),
            id: id.to_string(),
            source,
        })
    }

    /// The record at `id`, decoded, or `None`.
    pub fn get(&self, id: &str) -> Result<Option<T>, Error> {
        self.inner
            .get(id)?
            .map(|map| self.decode(id, map))
            .transpose()
    }

    /// Deletes the record at `id`.
    pub fn delete(&self, id: &str) -> Result<Option<DbVersion>, Error> {
        self.inner.delete(id)
    }

    /// A page of records, decoded, with the id to continue after.
    pub fn list(&self, options: &ListOptions) -> Result<TypedPage<T>, Error> {
        let page = self.inner.list(options)?;
        let records = page
            .records
            .into_iter()
            .map(|(id, map)| Ok((id.clone(), self.decode(id.as_str(), map)?)))
            .collect::<Result<_, Error>>()?;
        Ok(TypedPage {
            records,
            next: page.next,
        })
    }

    /// Runs a query, decoding the results.
    pub fn query(&self, query: &Query) -> Result<Vec<(RecordId, T)>, Error> {
        self.inner
            .query(query)?
            .into_iter()
            .map(|(id, map)| Ok((id.clone(), self.decode(id.as_str(), map)?)))
            .collect()
    }
}
