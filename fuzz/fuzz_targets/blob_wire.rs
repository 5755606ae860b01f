//! Blob outlines and pieces (`shoal_core::blob`): request and response
//! frames as a peer sends them (raw, and arbitrary bodies behind a correct
//! MAC), outlines checked against their hash, pieces verified against an
//! outline, the range a piece request asks for, and the fetch state machine
//! fed an outline and pieces in any order.
//!
//! Checked: no panic; what decodes round-trips; an outline that checks
//! merges to its hash; a piece is accepted only if it is the blob's own
//! bytes; a fetch completes only with the whole blob, verified.

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shoal_core::blob::{
    BlobKey, BlobRequest, BlobResponse, Fetch, Incoming, Outline, OutlineBuilder, PIECE_LEN,
    PieceVerdict, decode_request, decode_response, encode_request, encode_response,
    seal_request_body, seal_response_body, serve_range,
};
use shoal_fuzz::build;
use std::sync::OnceLock;

/// A blob of three pieces and a bit, its outline, and a tiny one.
fn blobs() -> &'static [(Vec<u8>, Outline); 2] {
    static BLOBS: OnceLock<[(Vec<u8>, Outline); 2]> = OnceLock::new();
    BLOBS.get_or_init(|| {
        let make = |content: Vec<u8>| {
            let mut b = OutlineBuilder::new();
            b.update(&content);
            let outline = b.finish();
            (content, outline)
        };
        let big: Vec<u8> = (0..3 * PIECE_LEN + 5).map(|i| (i % 251) as u8).collect();
        [make(big), make(b"tiny blob".to_vec())]
    })
}

fn key() -> BlobKey {
    shoal_fuzz::group_key().blob_key(b"requester", b"responder")
}

fn outline_checked(outline: &Outline) {
    if outline.check().is_ok() {
        let (_, real) = &blobs()[0];
        if outline.hash == real.hash {
            assert_eq!(outline.size / PIECE_LEN, real.size / PIECE_LEN);
        }
        for index in 0..outline.piece_count().min(4) {
            let range = outline.piece_range(index);
            assert!(range.end - range.start <= PIECE_LEN);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let key = key();
    let seq = u64::from(mode >> 3);
    match mode % 6 {
        0 => {
            if let Ok(request) = decode_request(rest, &key, seq) {
                let frame = encode_request(&request, &key, seq);
                assert_eq!(
                    decode_request(&frame[4..], &key, seq).as_ref(),
                    Ok(&request)
                );
            }
        }
        1 => {
            let frame = seal_request_body(rest, &key, seq);
            if let Ok(request) = decode_request(&frame[4..], &key, seq) {
                let again = encode_request(&request, &key, seq);
                assert_eq!(
                    decode_request(&again[4..], &key, seq).as_ref(),
                    Ok(&request)
                );
                if let BlobRequest::Pieces { from, count, .. } = request {
                    for (_, outline) in blobs() {
                        if let Ok(range) = serve_range(outline, from, count) {
                            assert!(range.end <= outline.piece_count() && range.start < range.end);
                        }
                    }
                }
            }
        }
        2 => match decode_response(rest, &key, seq) {
            Ok(Incoming::Piece { index, bytes }) => {
                for (content, outline) in blobs() {
                    if outline.verify_piece(index, bytes).is_ok() {
                        let range = outline.piece_range(index);
                        assert_eq!(bytes, &content[range.start as usize..range.end as usize]);
                    }
                }
            }
            Ok(Incoming::Response(response)) => {
                let frame = encode_response(&response, &key, seq);
                assert!(decode_response(&frame[4..], &key, seq).is_ok());
            }
            Err(_) => {}
        },
        3 => {
            let frame = seal_response_body(rest, &key, seq);
            if let Ok(Incoming::Response(response)) = decode_response(&frame[4..], &key, seq) {
                let again = encode_response(&response, &key, seq);
                assert_eq!(
                    decode_response(&again[4..], &key, seq),
                    Ok(Incoming::Response(response.clone()))
                );
                if let BlobResponse::Outline(outline) = &response {
                    outline_checked(outline);
                }
            }
        }
        4 => {
            let mut u = Unstructured::new(rest);
            if let Ok(request) = build::blob_request(&mut u) {
                let frame = encode_request(&request, &key, seq);
                assert_eq!(decode_request(&frame[4..], &key, seq), Ok(request));
            }
            if let Ok(response) = build::blob_response(&mut u) {
                let frame = encode_response(&response, &key, seq);
                assert_eq!(
                    decode_response(&frame[4..], &key, seq),
                    Ok(Incoming::Response(response.clone()))
                );
                if let BlobResponse::Outline(outline) = &response {
                    outline_checked(outline);
                }
            }
        }
        _ => {
            // A fetch of one of the blobs, fed an outline and pieces.
            let mut u = Unstructured::new(rest);
            let which = usize::from(u.arbitrary::<bool>().unwrap_or(false));
            let (content, real) = &blobs()[which];
            let verified = u.int_in_range(0..=4u64).unwrap_or(0);
            let Ok(mut fetch) = Fetch::new(
                real.hash,
                real.size,
                u.arbitrary().unwrap_or(u64::MAX),
                verified,
            ) else {
                return;
            };
            fetch = fetch.with_window(u.int_in_range(0..=3u32).unwrap_or(1));
            let mut written = vec![false; real.piece_count() as usize];
            (0..verified.min(real.piece_count())).for_each(|i| written[i as usize] = true);
            for _ in 0..12 {
                let _ = fetch.next_request();
                let step = u.int_in_range(0..=5u8).unwrap_or(0);
                let result = match step {
                    0 => fetch.on_outline(real.clone()).map(|()| None),
                    1 => {
                        let mut outline = real.clone();
                        outline.size = u.arbitrary().unwrap_or(0);
                        fetch.on_outline(outline).map(|()| None)
                    }
                    2 => {
                        let index = fetch.verified_pieces();
                        let range = real.piece_range(index);
                        let bytes = &content[range.start as usize..range.end as usize];
                        fetch.on_piece(index, bytes).map(|v| Some((index, v)))
                    }
                    3 => {
                        let index = u.int_in_range(0..=4u64).unwrap_or(0);
                        let len = u.int_in_range(0..=64usize).unwrap_or(0);
                        let bytes = u.bytes(len.min(u.len())).unwrap_or(&[]).to_vec();
                        fetch.on_piece(index, &bytes).map(|v| Some((index, v)))
                    }
                    4 => Err(fetch.on_refused(shoal_core::blob::BlobRefusal::Busy)),
                    _ => Ok(None),
                };
                if let Ok(Some((index, verdict))) = result {
                    let offset = match verdict {
                        PieceVerdict::Write { offset } | PieceVerdict::Complete { offset } => {
                            offset
                        }
                    };
                    assert_eq!(offset, real.piece_range(index).start);
                    written[index as usize] = true;
                }
                if fetch.is_done() {
                    assert!(written.iter().all(|&w| w), "done with pieces missing");
                    break;
                }
            }
        }
    }
});
