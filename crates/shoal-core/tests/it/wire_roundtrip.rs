//! Round trips of every message a peer sends, over the real encoders and
//! decoders: sync messages (handshake, catch-up, chunks, pushes, acks,
//! federation requests and answers with their reconciliation entries) as
//! plain and sealed frames, in both layouts of changes (with their
//! predecessors, and the protocol-2 layout without), and blob requests and responses as sealed
//! frames. Encode → decode is the identity; decode → encode → decode is
//! stable for whatever a mutated encoding still decodes to; a mutated
//! sealed frame never passes its MAC. The fuzz targets (`fuzz/`) push the same
//! properties further; these keep them in the ordinary suite.

use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;
use serde_json::json;
use shoal_core::blob::{
    BlobHash, BlobRefusal, BlobRequest, BlobResponse, Incoming, Outline, OutlineBuilder,
    decode_request, decode_response, encode_request, encode_response,
};
use shoal_core::conflict::UNKNOWN_PRED;
use shoal_core::recon::{
    Entry, FANOUT, Item, ItemFlags, Node, ShortDigest, ShortFingerprint, StateDigest,
};
use shoal_core::sync::auth::{FrameKey, Pake, Role, Transcript};
use shoal_core::sync::codec::{self, ChangeLayout, FrameError, LEN_PREFIX};
use shoal_core::sync::federation::{RecordCut, Refusal, Request, RequestId, Response};
use shoal_core::sync::version::HelloTail;
use shoal_core::sync::{Batch, FeatureSet, GroupKey, Message, Offer, Rejection, SharedCollection};
use shoal_core::{
    CanonicalJson, Change, Clock, CollectionName, DbVersion, FieldName, Hlc, Life, LogPosition,
    RecordId, SiteId, Slot, SyncCursor,
};
use std::sync::OnceLock;

/// The layout of changes with predecessors, between current nodes that do
/// not both offer grouped changes.
const PREDS: ChangeLayout = ChangeLayout::WithPredecessors;
/// The layout of changes between two current nodes: grouped by record.
const GROUPED: ChangeLayout = ChangeLayout::Grouped;

/// Whether `message` is of a kind that carries changes (even none).
fn carries_changes(message: &Message) -> bool {
    matches!(
        message,
        Message::Chunk(_)
            | Message::Push(_)
            | Message::Request {
                body: Request::Offer { .. },
                ..
            }
            | Message::Response {
                body: Response::Records { .. },
                ..
            }
    )
}

/// The changes `message` carries.
fn changes_of(message: &Message) -> Vec<&Change> {
    match message {
        Message::Chunk(batch) | Message::Push(batch) => batch.changes.iter().collect(),
        Message::Request {
            body: Request::Offer { changes, .. },
            ..
        }
        | Message::Response {
            body: Response::Records { changes, .. },
            ..
        } => changes.iter().collect(),
        _ => Vec::new(),
    }
}

fn frame_key() -> &'static FrameKey {
    static KEY: OnceLock<FrameKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let key = GroupKey::from_random([3; 32]);
        let (a, b) = (b"a".as_slice(), b"b".as_slice());
        let d = Pake::start(&key, Role::Dialer, a, b, &[1; 32]);
        let l = Pake::start(&key, Role::Listener, a, b, &[2; 32]);
        let t = Transcript {
            dialer: a.to_vec(),
            listener: b.to_vec(),
            dialer_nonce: [1; 32],
            listener_nonce: [2; 32],
            dialer_pake: d.message().to_vec(),
            listener_pake: l.message().to_vec(),
        };
        let lm = l.message().to_vec();
        d.finish(&lm, &t).expect("exchange").frame_key(Role::Dialer)
    })
}

fn record_id() -> impl Strategy<Value = RecordId> {
    "[A-Za-z0-9._:-]{1,24}".prop_map(|s| RecordId::new(s).expect("matches the id rule"))
}

fn collection() -> impl Strategy<Value = CollectionName> {
    "[a-z][a-z0-9_-]{0,12}".prop_map(|s| CollectionName::new(s).expect("valid"))
}

fn field() -> impl Strategy<Value = FieldName> {
    "[^\\p{Cc}]{1,16}".prop_map(|s| FieldName::new(s).expect("no control characters"))
}

fn value() -> impl Strategy<Value = CanonicalJson> {
    prop_oneof![
        any::<i64>().prop_map(|n| json!(n)),
        any::<bool>().prop_map(|b| json!(b)),
        ".{0,12}".prop_map(|s| json!(s)),
        (any::<u32>(), ".{0,6}").prop_map(|(n, s)| json!({"n": n, "s": [s, null]})),
        (-1e300f64..1e300).prop_map(|f| json!(f)),
    ]
    .prop_map(|v| CanonicalJson::from_value(&v))
}

fn position() -> impl Strategy<Value = LogPosition> {
    (any::<u64>(), any::<u32>()).prop_map(|(v, seq)| LogPosition {
        version: DbVersion(v),
        seq,
    })
}

fn cursor() -> impl Strategy<Value = SyncCursor> {
    (any::<u64>(), position(), any::<Option<u32>>()).prop_map(|(base, position, partial)| {
        SyncCursor {
            base: DbVersion(base),
            position,
            partial,
        }
    })
}

fn slot() -> impl Strategy<Value = Slot> {
    prop_oneof![
        Just(Slot::Life),
        field().prop_map(Slot::Field),
        (field(), ".{0,12}").prop_map(|(f, k)| Slot::Entry(f, k)),
    ]
}

fn change() -> impl Strategy<Value = Change> {
    (
        collection(),
        record_id(),
        slot(),
        proptest::option::of(value()),
        (any::<u64>(), any::<u64>()),
        any::<u64>(),
        position(),
        proptest::option::of((any::<u64>(), any::<u64>())),
    )
        .prop_map(
            |(collection, id, slot, value, (hlc, site), life, position, pred)| Change {
                collection,
                id,
                slot,
                value,
                clock: Clock {
                    hlc: Hlc::from_packed(hlc),
                    site: SiteId(site),
                },
                life: Life(life),
                position,
                pred: pred.map(|(hlc, site)| Clock {
                    hlc: Hlc::from_packed(hlc),
                    site: SiteId(site),
                }),
            },
        )
}

/// More slot versions of `first`'s record at its position: each with its
/// own slot and value, and the clock of the slot before it or another.
fn record_changes() -> impl Strategy<Value = Vec<Change>> {
    (
        change(),
        proptest::collection::vec(
            (
                slot(),
                proptest::option::of(value()),
                proptest::option::of((any::<u64>(), 0u64..3)),
                0u64..4,
            ),
            0..4,
        ),
    )
        .prop_map(|(first, more)| {
            let mut out = vec![first];
            for (slot, value, clock, life) in more {
                let before = out.last().expect("one at least").clone();
                let clock = clock.map_or(before.clock, |(hlc, site)| Clock {
                    hlc: Hlc::from_packed(hlc),
                    site: SiteId(site),
                });
                out.push(Change {
                    slot,
                    value,
                    clock,
                    life: Life(before.life.0.wrapping_add(life)),
                    pred: before.pred.map(|_| before.clock),
                    ..before
                });
            }
            out
        })
}

fn changes() -> impl Strategy<Value = Vec<Change>> {
    proptest::collection::vec(record_changes(), 0..3)
        .prop_map(|records| records.into_iter().flatten().collect())
}

fn node() -> impl Strategy<Value = Node> {
    (0u8..=16, any::<u64>()).prop_map(|(level, prefix)| {
        let bits = u32::from(level) * 4;
        let prefix = if bits == 64 {
            prefix
        } else {
            prefix & ((1 << bits) - 1)
        };
        Node::new(level, prefix).expect("masked")
    })
}

fn item() -> impl Strategy<Value = Item> {
    (record_id(), any::<[u8; 8]>(), any::<(bool, bool)>()).prop_map(
        |(id, digest, (alive, assets_missing))| Item {
            id,
            digest: ShortDigest(digest),
            flags: ItemFlags {
                alive,
                assets_missing,
            },
        },
    )
}

fn entry() -> impl Strategy<Value = Entry> {
    let item = item();
    prop_oneof![
        (node(), any::<[[u8; 8]; FANOUT]>()).prop_map(|(node, c)| Entry::Split {
            node,
            children: c.map(ShortFingerprint),
        }),
        (node(), proptest::collection::vec(item, 0..4))
            .prop_map(|(node, items)| Entry::Items { node, items }),
    ]
}

fn cut() -> impl Strategy<Value = Option<RecordCut>> {
    proptest::option::of(
        (position(), any::<u32>()).prop_map(|(position, slots)| RecordCut { position, slots }),
    )
}

fn request() -> impl Strategy<Value = Request> {
    prop_oneof![
        Just(Request::Collections),
        (collection(), proptest::collection::vec(entry(), 0..3)).prop_map(
            |(collection, entries)| Request::Reconcile {
                collection,
                entries
            }
        ),
        (
            collection(),
            proptest::collection::vec(record_id(), 0..4),
            cut()
        )
            .prop_map(|(collection, ids, resume)| Request::Fetch {
                collection,
                ids,
                resume
            }),
        (
            collection(),
            record_id(),
            changes(),
            any::<Option<[u8; 16]>>()
        )
            .prop_map(|(collection, id, changes, whole)| Request::Offer {
                collection,
                id,
                changes,
                whole: whole.map(StateDigest),
            }),
        collection().prop_map(|collection| Request::Level { collection }),
        (collection(), proptest::option::of(record_id()))
            .prop_map(|(collection, after)| Request::Filtered { collection, after }),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    let shared =
        (collection(), any::<[u8; 8]>(), any::<u64>()).prop_map(|(name, root, records)| {
            SharedCollection {
                name,
                root: ShortFingerprint(root),
                records,
            }
        });
    prop_oneof![
        (cursor(), proptest::collection::vec(shared, 0..3))
            .prop_map(|(head, collections)| Response::Collections { head, collections }),
        (proptest::collection::vec(entry(), 0..3), any::<u32>())
            .prop_map(|(entries, answered)| Response::Reconcile { entries, answered }),
        (
            changes(),
            proptest::collection::vec(record_id(), 0..3),
            cut()
        )
            .prop_map(|(changes, missing, cut)| Response::Records {
                changes,
                missing,
                cut
            }),
        any::<(bool, bool)>().prop_map(|(changed, in_sync)| Response::Offered { changed, in_sync }),
        Just(Response::Levelling),
        (
            proptest::collection::vec(item(), 0..4),
            proptest::option::of(record_id())
        )
            .prop_map(|(items, next)| Response::Filtered { items, next }),
        prop_oneof![
            Just(Refusal::NotShared),
            Just(Refusal::BadRequest),
            Just(Refusal::Failed)
        ]
        .prop_map(Response::Refused),
    ]
}

fn rejection() -> impl Strategy<Value = Rejection> {
    prop_oneof![
        Just(Rejection::WrongSecret),
        Just(Rejection::BadMac),
        Just(Rejection::UnsupportedVersion),
        Just(Rejection::ProtocolViolation),
        Just(Rejection::Garbage),
        Just(Rejection::TooLarge),
        Just(Rejection::Timeout),
        Just(Rejection::Unapplicable),
        Just(Rejection::NotAdmitted),
        Just(Rejection::Revoked),
    ]
}

fn batch() -> impl Strategy<Value = Batch> {
    (
        cursor(),
        changes(),
        position(),
        any::<Option<u32>>(),
        any::<bool>(),
    )
        .prop_map(|(after, changes, upto, partial, more)| Batch {
            after,
            changes,
            upto,
            partial,
            more,
        })
}

/// Every sync message, each variant reachable.
fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u32>(),
            any::<[u8; 32]>(),
            proptest::option::of((any::<u32>(), any::<u32>(), any::<u64>()))
        )
            .prop_map(|(version, nonce, offer)| Message::Hello {
                version,
                nonce,
                tail: HelloTail(offer.map(|(version, oldest, bits)| Offer {
                    version,
                    oldest,
                    features: FeatureSet::from_bits(bits),
                })),
            }),
        ".{0,80}".prop_map(|software| Message::About { software }),
        proptest::collection::vec(("[a-z]{1,8}", ".{0,40}"), 0..3).prop_map(|f| Message::Filters {
            filters: f
                .into_iter()
                .map(|(c, t)| (CollectionName::new(c).unwrap(), t))
                .collect()
        }),
        proptest::collection::vec(("[a-z]{1,8}", "[a-z0-9]{1,8}"), 0..3).prop_map(|r| {
            Message::Leave {
                records: r
                    .into_iter()
                    .map(|(c, i)| (CollectionName::new(c).unwrap(), RecordId::new(i).unwrap()))
                    .collect(),
            }
        }),
        proptest::collection::vec(any::<u8>(), 0..40).prop_map(|message| Message::Pake { message }),
        any::<[u8; 32]>().prop_map(|mac| Message::Proof { mac }),
        rejection().prop_map(|reason| Message::Rejected { reason }),
        (cursor(), any::<u32>(), any::<u32>()).prop_map(|(after, max_changes, max_bytes)| {
            Message::CatchUp {
                after,
                max_changes,
                max_bytes,
            }
        }),
        batch().prop_map(Message::Chunk),
        batch().prop_map(Message::Push),
        cursor().prop_map(|cursor| Message::Ack { cursor }),
        (any::<u32>(), request()).prop_map(|(id, body)| Message::Request {
            id: RequestId(id),
            body
        }),
        (any::<u32>(), response()).prop_map(|(id, body)| Message::Response {
            id: RequestId(id),
            body
        }),
    ]
}

fn blob_hash() -> impl Strategy<Value = BlobHash> {
    any::<[u8; 32]>().prop_map(BlobHash::from_bytes)
}

fn blob_request() -> impl Strategy<Value = BlobRequest> {
    prop_oneof![
        blob_hash().prop_map(|hash| BlobRequest::Outline { hash }),
        (blob_hash(), any::<u64>(), any::<u32>())
            .prop_map(|(hash, from, count)| BlobRequest::Pieces { hash, from, count }),
    ]
}

fn blob_response() -> impl Strategy<Value = BlobResponse> {
    prop_oneof![
        (
            blob_hash(),
            any::<u64>(),
            proptest::collection::vec(any::<[u8; 32]>(), 0..5)
        )
            .prop_map(|(hash, size, cvs)| BlobResponse::Outline(Outline {
                hash,
                size,
                cvs
            })),
        prop_oneof![
            Just(BlobRefusal::NotFound),
            Just(BlobRefusal::NotShared),
            Just(BlobRefusal::TooLarge),
            Just(BlobRefusal::Busy),
            Just(BlobRefusal::BadRequest),
        ]
        .prop_map(BlobResponse::Refused),
    ]
}

/// A mutation of an encoding: flip, drop or insert one byte, or cut it short.
#[derive(Debug, Clone)]
enum Mutation {
    Flip(prop::sample::Index, u8),
    Drop(prop::sample::Index),
    Insert(prop::sample::Index, u8),
    Cut(prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..).prop_map(|(i, x)| Mutation::Flip(i, x)),
        any::<prop::sample::Index>().prop_map(Mutation::Drop),
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<prop::sample::Index>().prop_map(Mutation::Cut),
    ]
}

fn mutate(bytes: &[u8], m: &Mutation) -> Vec<u8> {
    let mut out = bytes.to_vec();
    match m {
        Mutation::Flip(i, x) if !out.is_empty() => {
            let i = i.index(out.len());
            out[i] ^= x;
        }
        Mutation::Drop(i) if !out.is_empty() => {
            out.remove(i.index(out.len()));
        }
        Mutation::Insert(i, b) => out.insert(i.index(out.len() + 1), *b),
        Mutation::Cut(i) => out.truncate(i.index(out.len() + 1)),
        _ => {}
    }
    out
}

/// Whatever `bytes` decode to encodes to bytes that decode to it again.
fn stable<T>(bytes: &[u8]) -> Result<(), TestCaseError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    if let Ok(value) = postcard::from_bytes::<T>(bytes) {
        let again = postcard::to_allocvec(&value).expect("encodes");
        prop_assert_eq!(postcard::from_bytes::<T>(&again).expect("decodes"), value);
    }
    Ok(())
}

proptest! {
    // Its seeds by path from the crate: proptest's default looks for them
    // beside the nearest main.rs, which moves with the test binary's layout.
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/wire_roundtrip.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn every_message_round_trips_plain_and_sealed(message in message(), seq in any::<u64>()) {
        let key = frame_key();
        for layout in [PREDS, GROUPED] {
            for sealing in [None, Some((key, seq))] {
                let frame = codec::encode(&message, layout, sealing);
                let len = codec::payload_len(frame[..LEN_PREFIX].try_into().unwrap(), usize::MAX).unwrap();
                prop_assert_eq!(len, frame.len() - LEN_PREFIX);
                let opened = codec::decode(&frame[LEN_PREFIX..], layout, sealing).unwrap();
                prop_assert_eq!(&opened.message, &message);
                prop_assert_eq!(opened.sealed, sealing.is_some());
            }
        }
    }

    #[test]
    fn grouped_changes_round_trip_and_a_mutation_decodes_stably_or_is_refused(
        message in message(),
        m in mutation(),
    ) {
        // Grouped, a message carrying changes sends none in its own body;
        // every other message is sent exactly as in the other layouts.
        let body = codec::body(&message, GROUPED);
        let plain = codec::body(&message, PREDS);
        if !carries_changes(&message) {
            prop_assert_eq!(&body, &plain);
        }
        let slots = changes_of(&message).len();
        // Whatever a mutated body decodes to re-encodes to itself.
        let mutated = mutate(&body, &m);
        let mut payload = vec![0u8];
        payload.extend_from_slice(&mutated);
        if let Ok(opened) = codec::decode(&payload, GROUPED, None) {
            let again = codec::body(&opened.message, GROUPED);
            let mut payload = vec![0u8];
            payload.extend_from_slice(&again);
            prop_assert_eq!(codec::decode(&payload, GROUPED, None).unwrap().message, opened.message);
        }
        // A grouped body read in the layout with predecessors (or the
        // reverse) is refused or, without changes, read alike.
        let mut payload = vec![0u8];
        payload.extend_from_slice(&body);
        match codec::decode(&payload, PREDS, None) {
            Ok(read) => prop_assert!(slots == 0 || read.message != message),
            Err(e) => prop_assert!(matches!(e, FrameError::Garbage(_))),
        }
    }

    #[test]
    fn the_protocol_2_layout_is_what_a_protocol_2_build_reads_and_sends(
        message in message(),
        seq in any::<u64>(),
    ) {
        // Its body is the message's own encoding, nothing after it: what a
        // protocol-2 build (whose changes had no `pred`) encodes and decodes.
        let body = codec::body(&message, ChangeLayout::Protocol2);
        prop_assert_eq!(&body, &postcard::to_allocvec(&message).unwrap());
        let key = frame_key();
        for sealing in [None, Some((key, seq))] {
            let frame = codec::encode(&message, ChangeLayout::Protocol2, sealing);
            let opened = codec::decode(&frame[LEN_PREFIX..], ChangeLayout::Protocol2, sealing)
                .unwrap();
            // Everything but `pred` arrives; every `pred` is unknown.
            prop_assert_eq!(codec::body(&opened.message, ChangeLayout::Protocol2), body.clone());
            prop_assert_eq!(changes_of(&opened.message).len(), changes_of(&message).len());
            for change in changes_of(&opened.message) {
                prop_assert_eq!(change.pred, Some(UNKNOWN_PRED));
            }
            // A frame without the tail, read as one with it, is refused if
            // it carries changes (and read alike if not).
            let strict = codec::decode(&frame[LEN_PREFIX..], PREDS, sealing);
            match !carries_changes(&message) {
                true => prop_assert_eq!(strict.unwrap().message, message.clone()),
                false => prop_assert!(matches!(strict, Err(FrameError::Garbage(_)))),
            }
        }
        // A tail after the message is ignored in the protocol-2 layout, as
        // a protocol-2 build ignores it.
        let with = codec::encode(&message, PREDS, None);
        let read = codec::decode(&with[LEN_PREFIX..], ChangeLayout::Protocol2, None).unwrap();
        prop_assert_eq!(codec::body(&read.message, ChangeLayout::Protocol2), body);
    }

    #[test]
    fn a_mutated_message_decodes_stably_and_a_mutated_sealed_frame_is_refused(
        message in message(),
        m in mutation(),
    ) {
        let body = postcard::to_allocvec(&message).unwrap();
        let mutated = mutate(&body, &m);
        stable::<Message>(&mutated)?;
        let key = frame_key();
        let frame = codec::encode(&message, PREDS, Some((key, 9)));
        let payload = mutate(&frame[LEN_PREFIX..], &m);
        // Refused, or (a tag flipped to plain) not sealed, which an
        // authenticated session refuses.
        if payload != frame[LEN_PREFIX..] {
            let opened = codec::decode(&payload, PREDS, Some((key, 9)));
            prop_assert!(!matches!(opened, Ok(o) if o.sealed), "a mutated frame passed its MAC");
        }
    }

    #[test]
    fn federation_bodies_round_trip_and_mutations_decode_stably(
        request in request(),
        response in response(),
        m in mutation(),
    ) {
        // A body alone leaves out its changes' `pred`s (they follow the
        // message, `ChangeLayout`): it re-encodes to itself, and within a
        // message the whole body round trips.
        let r = postcard::to_allocvec(&request).unwrap();
        let back = postcard::from_bytes::<Request>(&r).unwrap();
        prop_assert_eq!(postcard::to_allocvec(&back).unwrap(), r.clone());
        stable::<Request>(&mutate(&r, &m))?;
        let a = postcard::to_allocvec(&response).unwrap();
        let back = postcard::from_bytes::<Response>(&a).unwrap();
        prop_assert_eq!(postcard::to_allocvec(&back).unwrap(), a.clone());
        stable::<Response>(&mutate(&a, &m))?;
        for message in [
            Message::Request { id: RequestId(1), body: request },
            Message::Response { id: RequestId(1), body: response },
        ] {
            let frame = codec::encode(&message, PREDS, None);
            prop_assert_eq!(codec::decode(&frame[LEN_PREFIX..], PREDS, None).unwrap().message, message);
        }
    }

    #[test]
    fn reconciliation_steps_round_trip(entries in proptest::collection::vec(entry(), 0..5), m in mutation()) {
        let bytes = postcard::to_allocvec(&entries).unwrap();
        prop_assert_eq!(postcard::from_bytes::<Vec<Entry>>(&bytes).unwrap(), entries);
        stable::<Vec<Entry>>(&mutate(&bytes, &m))?;
    }

    #[test]
    fn blob_messages_round_trip_sealed(
        request in blob_request(),
        response in blob_response(),
        seq in any::<u64>(),
        m in mutation(),
    ) {
        let key = GroupKey::from_random([4; 32]).blob_key(b"req", b"resp");
        let frame = encode_request(&request, &key, seq);
        prop_assert_eq!(decode_request(&frame[LEN_PREFIX..], &key, seq).unwrap(), request);
        let mutated = mutate(&frame[LEN_PREFIX..], &m);
        if mutated != frame[LEN_PREFIX..] {
            prop_assert!(decode_request(&mutated, &key, seq).is_err());
        }
        let frame = encode_response(&response, &key, seq);
        prop_assert_eq!(
            decode_response(&frame[LEN_PREFIX..], &key, seq).unwrap(),
            Incoming::Response(response.clone())
        );
        let body = postcard::to_allocvec(&response).unwrap();
        stable::<BlobResponse>(&mutate(&body, &m))?;
    }
}

/// A catch-up chunk of the records `shoal-bench catchup` writes (three
/// fields, one put each), as a store reads them: grouped, it takes well
/// under two thirds of the bytes it takes with predecessors, and comes back
/// exactly.
#[test]
fn grouped_changes_are_smaller_for_real_records() {
    let collection = CollectionName::new("bench").unwrap();
    let site = SiteId(0x9e37_79b9_7f4a_7c15);
    let mut changes = Vec::new();
    for i in 0..1000u64 {
        let id = RecordId::new(format!("r{i:07}")).unwrap();
        let clock = Clock {
            hlc: Hlc::new(1_764_676_712_345 + i / 7, (i % 7) as u16),
            site,
        };
        let position = LogPosition {
            version: DbVersion(1 + i / 100),
            seq: (i % 100) as u32 + 1,
        };
        let base = Change {
            collection: collection.clone(),
            id,
            slot: Slot::Life,
            value: None,
            clock,
            life: Life(1),
            position,
            pred: None,
        };
        changes.push(base.clone());
        for (field, value) in [
            ("title", json!(format!("title {i}"))),
            ("body", json!("some text of a note")),
            ("done", json!(i % 2 == 0)),
        ] {
            changes.push(Change {
                slot: Slot::Field(FieldName::new(field).unwrap()),
                value: Some(CanonicalJson::from_value(&value)),
                ..base.clone()
            });
        }
    }
    let message = Message::Chunk(Batch {
        after: SyncCursor::default(),
        changes,
        upto: LogPosition::after_version(DbVersion(10)),
        partial: None,
        more: false,
    });
    let grouped = codec::body(&message, GROUPED);
    let preds = codec::body(&message, PREDS);
    assert!(
        grouped.len() * 3 < preds.len() * 2,
        "grouped {} bytes, with predecessors {}",
        grouped.len(),
        preds.len()
    );
    let frame = codec::encode(&message, GROUPED, Some((frame_key(), 5)));
    assert_eq!(
        codec::decode(&frame[LEN_PREFIX..], GROUPED, Some((frame_key(), 5)))
            .unwrap()
            .message,
        message
    );
}

#[test]
fn a_grouped_record_naming_a_missing_table_entry_is_refused() {
    let message = Message::Push(Batch {
        after: SyncCursor::default(),
        changes: vec![Change {
            collection: CollectionName::new("c").unwrap(),
            id: RecordId::new("r").unwrap(),
            slot: Slot::Field(FieldName::new("f").unwrap()),
            value: None,
            clock: Clock {
                hlc: Hlc::from_packed(9),
                site: SiteId(3),
            },
            life: Life(1),
            position: LogPosition::default(),
            pred: None,
        }],
        upto: LogPosition::default(),
        partial: None,
        more: false,
    });
    let body = codec::body(&message, GROUPED);
    // The body ends with the grouped changes: tables of one collection
    // ("c"), one field ("f") and one site (3), then one group. Point the
    // group's collection index past its table.
    let hollow = codec::body(
        &Message::Push(Batch {
            changes: Vec::new(),
            ..match &message {
                Message::Push(b) => b.clone(),
                _ => unreachable!(),
            }
        }),
        PREDS,
    );
    let tables = [1, 1, b'c', 1, 1, b'f', 1, 3, 1];
    let start = hollow.len() - 1; // without the empty pred tail
    assert_eq!(&body[start..start + tables.len()], &tables);
    let mut bad = body.clone();
    bad[start + tables.len()] = 1;
    let mut payload = vec![0u8];
    payload.extend_from_slice(&bad);
    match codec::decode(&payload, GROUPED, None) {
        Err(FrameError::Garbage(why)) => assert!(why.contains("collection 1 of 1"), "{why}"),
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn a_real_outline_round_trips() {
    let mut b = OutlineBuilder::new();
    b.update(&vec![9u8; 3 << 20]);
    let outline = b.finish();
    let key = GroupKey::from_random([4; 32]).blob_key(b"req", b"resp");
    let frame = encode_response(&BlobResponse::Outline(outline.clone()), &key, 0);
    let Ok(Incoming::Response(BlobResponse::Outline(back))) =
        decode_response(&frame[LEN_PREFIX..], &key, 0)
    else {
        panic!("the outline did not decode");
    };
    assert_eq!(back, outline);
    assert!(back.check().is_ok());
}

#[test]
fn a_sealed_frame_under_another_key_or_number_is_refused() {
    let message = Message::Ack {
        cursor: SyncCursor::default(),
    };
    let frame = codec::encode(&message, PREDS, Some((frame_key(), 1)));
    assert_eq!(
        codec::decode(&frame[LEN_PREFIX..], PREDS, Some((frame_key(), 2))),
        Err(FrameError::BadMac)
    );
    assert_eq!(
        codec::decode(&frame[LEN_PREFIX..], PREDS, None),
        Err(FrameError::BadMac)
    );
}
