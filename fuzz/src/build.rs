//! Well-formed protocol values built from fuzz bytes with `arbitrary`'s
//! [`Unstructured`]: ids, clocks, cursors, changes, reconciliation entries,
//! federation requests and answers, whole sync messages and blob messages.
//!
//! The targets use these where raw bytes would rarely get past the decoder
//! (a typed input reaches the logic behind it); names come from a small pool
//! or from the bytes when they happen to validate. Nothing here is checked
//! against the protocol's rules — that is the code under test's job.

use arbitrary::{Result, Unstructured};
use serde_json::{Map, Value};
use shoal_core::blob::{BlobHash, BlobRefusal, BlobRequest, BlobResponse, Outline};
use shoal_core::recon::{Entry, FANOUT, Item, ItemFlags, Node, ShortDigest, ShortFingerprint};
use shoal_core::sync::federation::{RecordCut, Refusal, Request, RequestId, Response};
use shoal_core::sync::version::HelloTail;
use shoal_core::sync::{Batch, FeatureSet, Message, Offer, Rejection, SharedCollection};
use shoal_core::{
    CanonicalJson, Change, Clock, CollectionName, DbVersion, FieldName, Hlc, Life, LogPosition,
    RecordId, SiteId, Slot, SyncCursor,
};

/// Most items a built list holds (keeps one input's work small).
const MAX_LIST: usize = 8;

fn list<T>(
    u: &mut Unstructured,
    mut one: impl FnMut(&mut Unstructured) -> Result<T>,
) -> Result<Vec<T>> {
    let n = u.int_in_range(0..=MAX_LIST)?;
    (0..n).map(|_| one(u)).collect()
}

/// A record id: one of a few, or the bytes' own if they validate.
pub fn record_id(u: &mut Unstructured) -> Result<RecordId> {
    const POOL: [&str; 6] = ["r0", "r1", "r2", "task:42", "a.b_c-d", "zz"];
    if u.ratio(1, 4)? {
        let text: &str = u.arbitrary()?;
        if let Ok(id) = RecordId::new(text) {
            return Ok(id);
        }
    }
    Ok(RecordId::new(*u.choose(&POOL)?).expect("pool ids are valid"))
}

/// A collection name from a few.
pub fn collection(u: &mut Unstructured) -> Result<CollectionName> {
    const POOL: [&str; 3] = ["notes", "tasks", "c"];
    Ok(CollectionName::new(*u.choose(&POOL)?).expect("pool names are valid"))
}

/// A field name: one of a few, or the bytes' own if they validate.
pub fn field(u: &mut Unstructured) -> Result<FieldName> {
    const POOL: [&str; 4] = ["title", "tags", "body", "é"];
    if u.ratio(1, 4)? {
        let text: &str = u.arbitrary()?;
        if let Ok(name) = FieldName::new(text) {
            return Ok(name);
        }
    }
    Ok(FieldName::new(*u.choose(&POOL)?).expect("pool names are valid"))
}

/// A small JSON value (depth bounded).
pub fn json(u: &mut Unstructured, depth: u8) -> Result<Value> {
    let pick = u.int_in_range(0..=if depth == 0 { 4 } else { 6 })?;
    Ok(match pick {
        0 => Value::Null,
        1 => Value::Bool(u.arbitrary()?),
        2 => Value::from(u.arbitrary::<i64>()?),
        3 => serde_json::Number::from_f64(u.arbitrary()?).map_or(Value::Null, Value::Number),
        4 => Value::String(u.arbitrary()?),
        5 => Value::Array(list(u, |u| json(u, depth - 1))?),
        _ => {
            let mut map = Map::new();
            for _ in 0..u.int_in_range(0..=4)? {
                map.insert(u.arbitrary()?, json(u, depth - 1)?);
            }
            Value::Object(map)
        }
    })
}

/// A clock.
pub fn clock(u: &mut Unstructured) -> Result<Clock> {
    Ok(Clock {
        hlc: Hlc::from_packed(u.arbitrary()?),
        site: SiteId(u.arbitrary()?),
    })
}

/// A log position.
pub fn position(u: &mut Unstructured) -> Result<LogPosition> {
    Ok(LogPosition {
        version: DbVersion(u.int_in_range(0..=64)?),
        seq: if u.ratio(1, 8)? {
            u32::MAX
        } else {
            u.int_in_range(0..=8)?
        },
    })
}

/// A sync cursor.
pub fn cursor(u: &mut Unstructured) -> Result<SyncCursor> {
    Ok(SyncCursor {
        base: DbVersion(u.int_in_range(0..=64)?),
        position: position(u)?,
        partial: if u.arbitrary()? {
            Some(u.int_in_range(0..=4)?)
        } else {
            None
        },
    })
}

/// A slot.
pub fn slot(u: &mut Unstructured) -> Result<Slot> {
    Ok(match u.int_in_range(0..=2)? {
        0 => Slot::Life,
        1 => Slot::Field(field(u)?),
        _ => Slot::Entry(field(u)?, u.arbitrary()?),
    })
}

/// One change of record `id` (or an arbitrary one) at `position`.
pub fn change_at(
    u: &mut Unstructured,
    id: Option<&RecordId>,
    position: LogPosition,
) -> Result<Change> {
    let slot = slot(u)?;
    let value = match slot {
        Slot::Life if u.ratio(7, 8)? => None,
        _ if u.ratio(1, 4)? => None,
        _ => Some(CanonicalJson::from_value(&json(u, 2)?)),
    };
    Ok(Change {
        collection: collection(u)?,
        id: match id {
            Some(id) => id.clone(),
            None => record_id(u)?,
        },
        slot,
        value,
        clock: clock(u)?,
        life: Life(if u.ratio(1, 16)? {
            u.arbitrary()?
        } else {
            u.int_in_range(0..=4)?
        }),
        position,
        pred: if u.arbitrary()? { Some(clock(u)?) } else { None },
    })
}

/// A change.
pub fn change(u: &mut Unstructured) -> Result<Change> {
    let at = position(u)?;
    change_at(u, None, at)
}

/// A batch of changes.
pub fn batch(u: &mut Unstructured) -> Result<Batch> {
    Ok(Batch {
        after: cursor(u)?,
        changes: list(u, change)?,
        upto: position(u)?,
        partial: if u.arbitrary()? {
            Some(u.int_in_range(0..=4)?)
        } else {
            None
        },
        more: u.arbitrary()?,
    })
}

/// A reconciliation tree node (valid: the wire refuses others).
pub fn node(u: &mut Unstructured) -> Result<Node> {
    let level = u.int_in_range(0..=shoal_core::recon::MAX_LEVEL)?;
    let prefix: u64 = u.arbitrary()?;
    let bits = u32::from(level) * 4;
    let prefix = if bits == 64 {
        prefix
    } else {
        prefix & ((1u64 << bits) - 1)
    };
    Ok(Node::new(level, prefix).expect("masked to the level"))
}

/// A reconciliation entry.
pub fn entry(u: &mut Unstructured) -> Result<Entry> {
    Ok(if u.arbitrary()? {
        let mut children = [ShortFingerprint::default(); FANOUT];
        for child in &mut children {
            if u.ratio(1, 3)? {
                *child = ShortFingerprint(u.arbitrary()?);
            }
        }
        Entry::Split {
            node: node(u)?,
            children,
        }
    } else {
        Entry::Items {
            node: node(u)?,
            items: list(u, item)?,
        }
    })
}

/// A record as reconciliation and the filtered listing carry it.
pub fn item(u: &mut Unstructured) -> Result<Item> {
    Ok(Item {
        id: record_id(u)?,
        digest: ShortDigest(u.arbitrary()?),
        flags: ItemFlags {
            alive: u.arbitrary()?,
            assets_missing: u.arbitrary()?,
        },
    })
}

/// A federation request.
pub fn request(u: &mut Unstructured) -> Result<Request> {
    Ok(match u.int_in_range(0..=5)? {
        0 => Request::Collections,
        1 => Request::Reconcile {
            collection: collection(u)?,
            entries: list(u, entry)?,
        },
        2 => Request::Fetch {
            collection: collection(u)?,
            ids: list(u, record_id)?,
            resume: if u.arbitrary()? {
                Some(RecordCut {
                    position: position(u)?,
                    slots: u.int_in_range(0..=4)?,
                })
            } else {
                None
            },
        },
        3 => Request::Offer {
            collection: collection(u)?,
            id: record_id(u)?,
            changes: list(u, change)?,
            whole: if u.arbitrary()? {
                Some(shoal_core::recon::StateDigest(u.arbitrary()?))
            } else {
                None
            },
        },
        4 => Request::Level {
            collection: collection(u)?,
        },
        _ => Request::Filtered {
            collection: collection(u)?,
            after: if u.arbitrary()? {
                Some(record_id(u)?)
            } else {
                None
            },
        },
    })
}

/// A federation answer.
pub fn response(u: &mut Unstructured) -> Result<Response> {
    Ok(match u.int_in_range(0..=6)? {
        0 => Response::Collections {
            head: cursor(u)?,
            collections: list(u, |u| {
                Ok(SharedCollection {
                    name: collection(u)?,
                    root: ShortFingerprint(u.arbitrary()?),
                    records: u.arbitrary()?,
                })
            })?,
        },
        1 => Response::Reconcile {
            entries: list(u, entry)?,
            answered: u.int_in_range(0..=9)?,
        },
        2 => Response::Records {
            changes: list(u, change)?,
            missing: list(u, record_id)?,
            cut: if u.arbitrary()? {
                Some(RecordCut {
                    position: position(u)?,
                    slots: u.int_in_range(0..=4)?,
                })
            } else {
                None
            },
        },
        3 => Response::Offered {
            changed: u.arbitrary()?,
            in_sync: u.arbitrary()?,
        },
        4 => Response::Levelling,
        5 => Response::Filtered {
            items: list(u, item)?,
            next: if u.arbitrary()? {
                Some(record_id(u)?)
            } else {
                None
            },
        },
        _ => Response::Refused(*u.choose(&[
            Refusal::NotShared,
            Refusal::BadRequest,
            Refusal::Failed,
        ])?),
    })
}

/// A rejection reason.
pub fn rejection(u: &mut Unstructured) -> Result<Rejection> {
    Ok(*u.choose(&[
        Rejection::WrongSecret,
        Rejection::BadMac,
        Rejection::UnsupportedVersion,
        Rejection::ProtocolViolation,
        Rejection::Garbage,
        Rejection::TooLarge,
        Rejection::Timeout,
        Rejection::Unapplicable,
    ])?)
}

/// Any sync message.
pub fn message(u: &mut Unstructured) -> Result<Message> {
    Ok(match u.int_in_range(0..=12)? {
        0 => Message::Hello {
            version: u.arbitrary()?,
            nonce: u.arbitrary()?,
            tail: HelloTail(if u.arbitrary()? {
                Some(Offer {
                    version: u.arbitrary()?,
                    oldest: u.arbitrary()?,
                    features: FeatureSet::from_bits(u.arbitrary()?),
                })
            } else {
                None
            }),
        },
        10 => Message::About {
            software: u.arbitrary()?,
        },
        11 => Message::Filters {
            filters: (0..u.int_in_range(0..=3)?)
                .map(|_| Ok((collection(u)?, filter_text(u)?)))
                .collect::<Result<_>>()?,
        },
        12 => Message::Leave {
            records: (0..u.int_in_range(0..=3)?)
                .map(|_| Ok((collection(u)?, record_id(u)?)))
                .collect::<Result<_>>()?,
        },
        1 => Message::Pake {
            message: u.arbitrary()?,
        },
        2 => Message::Proof {
            mac: u.arbitrary()?,
        },
        3 => Message::Rejected {
            reason: rejection(u)?,
        },
        4 => Message::CatchUp {
            after: cursor(u)?,
            max_changes: u.arbitrary()?,
            max_bytes: u.arbitrary()?,
        },
        5 => Message::Chunk(batch(u)?),
        6 => Message::Push(batch(u)?),
        7 => Message::Ack { cursor: cursor(u)? },
        8 => Message::Request {
            id: RequestId(u.int_in_range(0..=8)?),
            body: request(u)?,
        },
        _ => Message::Response {
            id: RequestId(u.int_in_range(0..=8)?),
            body: response(u)?,
        },
    })
}

/// A partial-replica filter's text: a valid one, or arbitrary text.
pub fn filter_text(u: &mut Unstructured) -> Result<String> {
    Ok(if u.arbitrary()? {
        u.choose(&["owner = \"bo\"", "date >= now-30d", "not (n < 1 or x exists)"])?
            .to_string()
    } else {
        u.arbitrary()?
    })
}

/// A blob hash: of one of a few contents, or arbitrary.
pub fn blob_hash(u: &mut Unstructured) -> Result<BlobHash> {
    Ok(if u.arbitrary()? {
        BlobHash::of(u.choose(&[&b""[..], &b"x"[..], &b"hello"[..]])?)
    } else {
        BlobHash::from(blake3::Hash::from_bytes(u.arbitrary()?))
    })
}

/// A blob request.
pub fn blob_request(u: &mut Unstructured) -> Result<BlobRequest> {
    Ok(if u.arbitrary()? {
        BlobRequest::Outline {
            hash: blob_hash(u)?,
        }
    } else {
        BlobRequest::Pieces {
            hash: blob_hash(u)?,
            from: u.arbitrary()?,
            count: u.arbitrary()?,
        }
    })
}

/// A blob response (outlines with a handful of CVs at most).
pub fn blob_response(u: &mut Unstructured) -> Result<BlobResponse> {
    Ok(if u.arbitrary()? {
        BlobResponse::Outline(Outline {
            hash: blob_hash(u)?,
            size: u.arbitrary()?,
            cvs: list(u, |u| u.arbitrary())?,
        })
    } else {
        BlobResponse::Refused(*u.choose(&[
            BlobRefusal::NotFound,
            BlobRefusal::NotShared,
            BlobRefusal::TooLarge,
            BlobRefusal::Busy,
            BlobRefusal::BadRequest,
        ])?)
    })
}
