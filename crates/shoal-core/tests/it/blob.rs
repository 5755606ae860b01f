//! End-to-end blob transfer over the wire encoding (requester `Fetch` against
//! an in-memory server), and the outline builder's independence from how its
//! input is split.

use proptest::prelude::*;
use shoal_core::blob::{
    BlobError, BlobKey, BlobRefusal, BlobRequest, BlobResponse, Fetch, Incoming, Outline,
    OutlineBuilder, PIECE_LEN, PieceVerdict, decode_request, decode_response, encode_piece,
    encode_piece_header, encode_request, encode_response, request_frame_len, response_frame_len,
    serve_range,
};
use shoal_core::sync::GroupKey;

fn content(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn outline_of(data: &[u8]) -> Outline {
    let mut b = OutlineBuilder::new();
    b.update(data);
    b.finish()
}

/// Splits a byte stream into payloads, checking each length prefix first.
fn frames(stream: &[u8], len_of: fn([u8; 4]) -> Result<usize, BlobError>) -> Vec<&[u8]> {
    let mut out = vec![];
    let mut rest = stream;
    while !rest.is_empty() {
        let len = len_of(rest[..4].try_into().unwrap()).unwrap();
        out.push(&rest[4..4 + len]);
        rest = &rest[4 + len..];
    }
    out
}

/// A server holding one blob; `corrupt` flips a byte of that piece on send.
struct Server {
    data: Vec<u8>,
    outline: Outline,
    key: BlobKey,
    received: u64,
    sent: u64,
    corrupt: Option<u64>,
}

impl Server {
    fn handle(&mut self, payload: &[u8]) -> Vec<u8> {
        let request = decode_request(payload, &self.key, self.received).unwrap();
        self.received += 1;
        let mut out = vec![];
        let control = |resp: BlobResponse, sent: &mut u64| {
            let frame = encode_response(&resp, &self.key, *sent);
            *sent += 1;
            frame
        };
        match request {
            BlobRequest::Outline { hash } if hash == self.outline.hash => {
                out.extend(control(
                    BlobResponse::Outline(self.outline.clone()),
                    &mut self.sent,
                ));
            }
            BlobRequest::Outline { .. } => out.extend(control(
                BlobResponse::Refused(BlobRefusal::NotFound),
                &mut self.sent,
            )),
            BlobRequest::Pieces { from, count, .. } => {
                match serve_range(&self.outline, from, count) {
                    Ok(range) => {
                        for i in range {
                            let r = self.outline.piece_range(i);
                            let mut bytes = self.data[r.start as usize..r.end as usize].to_vec();
                            if self.corrupt == Some(i) {
                                bytes[0] ^= 1;
                            }
                            // Zero-copy style: header, then the bytes as stored.
                            out.extend_from_slice(&encode_piece_header(i, bytes.len()).unwrap());
                            out.extend_from_slice(&bytes);
                        }
                    }
                    Err(refusal) => {
                        out.extend(control(BlobResponse::Refused(refusal), &mut self.sent))
                    }
                }
            }
        }
        out
    }
}

/// Runs a fetch to completion or failure; returns the bytes written.
fn run(fetch: &mut Fetch, server: &mut Server, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
    let mut out = vec![0u8; server.data.len()];
    let (mut sent, mut received) = (0u64, 0u64);
    while let Some(request) = fetch.next_request() {
        let frame = encode_request(&request, key, sent);
        sent += 1;
        let reply = server.handle(frames(&frame, request_frame_len)[0]);
        for payload in frames(&reply, response_frame_len) {
            match decode_response(payload, key, received)? {
                Incoming::Response(BlobResponse::Outline(o)) => {
                    received += 1;
                    fetch.on_outline(o)?;
                }
                Incoming::Response(BlobResponse::Refused(r)) => {
                    return Err(fetch.on_refused(r));
                }
                Incoming::Piece { index, bytes } => {
                    let offset = match fetch.on_piece(index, bytes)? {
                        PieceVerdict::Write { offset } | PieceVerdict::Complete { offset } => {
                            offset as usize
                        }
                    };
                    out[offset..offset + bytes.len()].copy_from_slice(bytes);
                }
            }
        }
    }
    Ok(out)
}

fn setup(len: usize, corrupt: Option<u64>) -> (Server, BlobKey) {
    let key = GroupKey::from_random([1; 32]).blob_key(b"requester", b"responder");
    let data = content(len, 7);
    let outline = outline_of(&data);
    let server = Server {
        data,
        outline,
        key: key.clone(),
        received: 0,
        sent: 0,
        corrupt,
    };
    (server, key)
}

#[test]
fn transfer_over_the_wire() {
    for len in [0, 5, PIECE_LEN as usize, 3 * PIECE_LEN as usize + 5] {
        let (mut server, key) = setup(len, None);
        let o = server.outline.clone();
        let mut fetch = Fetch::new(o.hash, o.size, 1 << 30, 0)
            .unwrap()
            .with_window(2);
        let got = run(&mut fetch, &mut server, &key).unwrap();
        assert!(fetch.is_done(), "len {len}");
        assert_eq!(got, server.data);
        assert_eq!(blake3::hash(&got).as_bytes(), o.hash.as_bytes());
    }
}

#[test]
fn corrupted_piece_on_the_wire_fails_the_fetch() {
    let (mut server, key) = setup(3 * PIECE_LEN as usize + 5, Some(2));
    let o = server.outline.clone();
    let mut fetch = Fetch::new(o.hash, o.size, 1 << 30, 0).unwrap();
    assert_eq!(
        run(&mut fetch, &mut server, &key),
        Err(BlobError::BadPiece { index: 2 })
    );
    assert!(fetch.is_failed());
    assert_eq!(fetch.verified_pieces(), 2);
    // A new fetch resumes from the verified prefix, here from a good server.
    server.corrupt = None;
    server.received = 0;
    server.sent = 0;
    let mut again = Fetch::new(o.hash, o.size, 1 << 30, 2).unwrap();
    run(&mut again, &mut server, &key).unwrap();
    assert!(again.is_done());
    assert_eq!(again.bytes_received(), PIECE_LEN + 5);
}

#[test]
fn refusal_and_wrong_group_end_the_fetch() {
    let (mut server, key) = setup(10, None);
    let other = shoal_core::blob::BlobHash::of(b"unknown");
    let mut fetch = Fetch::new(other, 10, 100, 0).unwrap();
    assert_eq!(
        run(&mut fetch, &mut server, &key),
        Err(BlobError::Refused(BlobRefusal::NotFound))
    );

    let o = server.outline.clone();
    let outsider = GroupKey::from_random([2; 32]).blob_key(b"requester", b"responder");
    let frame = encode_request(&BlobRequest::Outline { hash: o.hash }, &outsider, 0);
    assert!(decode_request(&frame[4..], &server.key, 0).is_err());
    let piece = encode_piece(0, &server.data).unwrap();
    assert!(matches!(
        decode_response(&piece[4..], &outsider, 0),
        Ok(Incoming::Piece { index: 0, .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn builder_ignores_how_input_is_split(
        len in 0usize..(3 * PIECE_LEN as usize + 3000),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let data = content(len, len as u64);
        let whole = outline_of(&data);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
        // Always include the piece boundaries' neighbourhood in some cases.
        if len > PIECE_LEN as usize {
            points.push(PIECE_LEN as usize);
        }
        points.sort_unstable();
        let mut b = OutlineBuilder::new();
        let mut at = 0;
        for p in points {
            b.update(&data[at..p]);
            at = p;
        }
        b.update(&data[at..]);
        let split = b.finish();
        prop_assert_eq!(&split, &whole);
        prop_assert_eq!(*split.hash.as_bytes(), *blake3::hash(&data).as_bytes());
        prop_assert!(split.check().is_ok());
    }
}
