//! The operation model of the convergence property test: the small id and
//! field space, the edits, reads and ops a case is made of, and the proptest
//! strategies that generate them.
#![allow(dead_code)]

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shoal_core::{CollectionName, FieldName, Intent, RecordId, RecordState};
use shoal_store::RecordKey;
use std::collections::BTreeMap;
use std::fmt;

pub const COLLECTIONS: [&str; 2] = ["notes", "tasks"];
pub const IDS: [&str; 3] = ["r0", "r1", "r2"];
pub const RECORDS: usize = COLLECTIONS.len() * IDS.len();
pub const FIELDS: [&str; 3] = ["a", "b", "tags"];
pub const KEYS: [&str; 3] = ["x", "y", "z"];
pub const MAX_STORES: usize = 4;

pub type Full = BTreeMap<RecordKey, RecordState>;

pub fn key_of(record: usize) -> RecordKey {
    (
        CollectionName::new(COLLECTIONS[record / IDS.len()]).unwrap(),
        RecordId::new(IDS[record % IDS.len()]).unwrap(),
    )
}

pub fn field(i: usize) -> FieldName {
    FieldName::new(FIELDS[i]).unwrap()
}

/// A local write to one record, with a compact `Debug` for failure reports.
#[derive(Clone)]
pub enum Edit {
    Put(Map<String, Value>),
    Patch(Map<String, Value>),
    Delete,
    MapSet {
        field: usize,
        key: usize,
        value: Value,
    },
    MapRemove {
        field: usize,
        key: usize,
    },
}

impl fmt::Debug for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edit::Put(m) => write!(f, "Put({})", Value::Object(m.clone())),
            Edit::Patch(m) => write!(f, "Patch({})", Value::Object(m.clone())),
            Edit::Delete => write!(f, "Delete"),
            Edit::MapSet { field, key, value } => {
                write!(f, "MapSet({}.{} = {value})", FIELDS[*field], KEYS[*key])
            }
            Edit::MapRemove { field, key } => {
                write!(f, "MapRemove({}.{})", FIELDS[*field], KEYS[*key])
            }
        }
    }
}

impl Edit {
    pub fn intent(&self) -> Intent {
        match self {
            Edit::Put(m) => Intent::Put(m.clone()),
            Edit::Patch(m) => Intent::Patch(m.clone()),
            Edit::Delete => Intent::Delete,
            Edit::MapSet {
                field: f,
                key,
                value,
            } => Intent::MapSet {
                field: field(*f),
                key: KEYS[*key].to_string(),
                value: value.clone(),
            },
            Edit::MapRemove { field: f, key } => Intent::MapRemove {
                field: field(*f),
                key: KEYS[*key].to_string(),
            },
        }
    }

    pub fn needs_live_record(&self) -> bool {
        matches!(self, Edit::Patch(_) | Edit::Delete | Edit::MapRemove { .. })
    }
}

/// How a sync reads the other store's log.
#[derive(Debug, Clone, Copy)]
pub enum Read {
    /// `read_for_peer` with a byte budget, cursor stored by `apply_from`.
    Peer { max_bytes: u32 },
    /// `changes_page` from the cursor.
    Page,
    /// `changes_since` the cursor's base (a page when the cursor is mid-pass).
    Since,
}

/// One step of a run. Store indices are taken modulo the number of stores;
/// a sync's `to` is resolved to a store other than `from` (see `Cluster::pair`).
#[derive(Clone)]
pub enum Op {
    /// One local write transaction on `store`, touching distinct records.
    Write {
        store: usize,
        edits: Vec<(usize, Edit)>,
    },
    /// `to` reads `from`'s log after the cursor it keeps for `from` (at most
    /// `limit` records, through `read`), splits the changes in chunks of
    /// `chunk`, applies them (shuffled by `shuffle` unless it is 0), and
    /// advances its cursor unless the batch was `lost` (then only some chunks
    /// arrive).
    Sync {
        from: usize,
        to: usize,
        read: Read,
        limit: usize,
        chunk: usize,
        shuffle: u64,
        lost: bool,
    },
    /// `to` receives again a chunk from `from` it already applied.
    Resend { from: usize, to: usize, pick: usize },
    /// Close and reopen a store.
    Reopen { store: usize },
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Write { store, edits } => {
                write!(f, "Write s{store}:")?;
                for (i, (record, edit)) in edits.iter().enumerate() {
                    let (c, id) = key_of(*record);
                    let sep = if i == 0 { " " } else { "; " };
                    write!(f, "{sep}{c}/{id} {edit:?}")?;
                }
                Ok(())
            }
            Op::Sync {
                from,
                to,
                read,
                limit,
                chunk,
                shuffle,
                lost,
            } => write!(
                f,
                "Sync from={from} to={to} {read:?} limit={limit} chunk={chunk} \
                 shuffle={shuffle:#x} lost={lost}"
            ),
            Op::Resend { from, to, pick } => write!(f, "Resend from={from} to={to} pick={pick}"),
            Op::Reopen { store } => write!(f, "Reopen s{store}"),
        }
    }
}

pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0i64..3).prop_map(|n| json!(n)),
        Just(json!("s")),
        Just(json!(true)),
        Just(Value::Null),
    ]
}

pub fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => scalar(),
        2 => prop::collection::btree_map(0..KEYS.len(), scalar(), 0..=3).prop_map(|m| {
            Value::Object(m.into_iter().map(|(k, v)| (KEYS[k].to_string(), v)).collect())
        }),
    ]
}

/// An object over the field names; `null` means "remove" in a patch and is a
/// stored value in a put.
pub fn body() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec(prop::option::of(field_value()), FIELDS.len()).prop_map(|values| {
        values
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (FIELDS[i].to_string(), v)))
            .collect()
    })
}

pub fn map_field() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(2usize), 1 => 0..FIELDS.len()]
}

pub fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        4 => body().prop_map(Edit::Put),
        3 => body().prop_map(Edit::Patch),
        2 => Just(Edit::Delete),
        3 => (map_field(), 0..KEYS.len(), scalar())
            .prop_map(|(field, key, value)| Edit::MapSet { field, key, value }),
        2 => (map_field(), 0..KEYS.len()).prop_map(|(field, key)| Edit::MapRemove { field, key }),
    ]
}

pub fn read() -> impl Strategy<Value = Read> {
    prop_oneof![
        2 => (40u32..600).prop_map(|max_bytes| Read::Peer { max_bytes }),
        1 => Just(Read::Page),
        1 => Just(Read::Since),
    ]
}

pub fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..MAX_STORES, prop::collection::vec((0..RECORDS, edit()), 1..=3))
            .prop_map(|(store, mut edits)| {
                let mut seen = [false; RECORDS];
                edits.retain(|(r, _)| !std::mem::replace(&mut seen[*r], true));
                Op::Write { store, edits }
            }),
        5 => (
            (0..MAX_STORES, 0..MAX_STORES, read()),
            1usize..=6,
            1usize..=5,
            prop_oneof![Just(0u64), any::<u64>()],
            prop::bool::weighted(0.15),
        )
            .prop_map(|((from, to, read), limit, chunk, shuffle, lost)| Op::Sync {
                from,
                to,
                read,
                limit,
                chunk,
                shuffle,
                lost,
            }),
        1 => (0..MAX_STORES, 0..MAX_STORES, any::<usize>())
            .prop_map(|(from, to, pick)| Op::Resend { from, to, pick }),
        1 => (0..MAX_STORES).prop_map(|store| Op::Reopen { store }),
    ]
}

/// A small deterministic shuffle (xorshift64*), so a seed reproduces an order.
pub fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut state = seed | 1;
    for i in (1..items.len()).rev() {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        items.swap(i, (r % (i as u64 + 1)) as usize);
    }
}
