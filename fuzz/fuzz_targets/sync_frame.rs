//! Sync frames and their MACs (`shoal_core::sync::codec`): length prefixes
//! against the cap, plain and sealed payloads, wrong and truncated MACs,
//! unknown tags, and — behind a correct MAC, which a fuzzer could never
//! forge — arbitrary message bodies.
//!
//! Input: byte 0 chooses the mode (its low two bits) and the layout of
//! changes (bit 3 set: grouped by record, `sync/grouped.rs`; else bit 2:
//! clear with predecessors, set protocol 2), the rest is the prefix,
//! payload or body.
//! Whatever decodes must encode again (plain and sealed) to a frame that
//! decodes to the same message, and decode → encode → decode is stable.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::sync::Message;
use shoal_core::sync::codec::{
    self, ChangeLayout, DEFAULT_MAX_FRAME, FrameError, LEN_PREFIX, Opened,
};
use shoal_fuzz::peer::{fixed_frame_keys, seal_body};

fn check(opened: Opened, layout: ChangeLayout) {
    let (key, _) = fixed_frame_keys();
    let Opened { message, .. } = opened;
    for (k, seq) in [(None, 0), (Some(key), 17)] {
        let frame = codec::encode(&message, layout, k.map(|k| (k, seq)));
        let len = codec::payload_len(frame[..LEN_PREFIX].try_into().unwrap(), usize::MAX)
            .expect("an encoded frame has a length");
        assert_eq!(len, frame.len() - LEN_PREFIX);
        let again =
            codec::decode(&frame[LEN_PREFIX..], layout, k.map(|k| (k, seq))).expect("re-decodes");
        assert_eq!(again.message, message);
        assert_eq!(again.sealed, k.is_some());
    }
    let body = postcard::to_allocvec(&message).expect("encodes");
    shoal_fuzz::stable::<Message>(&body).expect("stable");
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (key, other) = fixed_frame_keys();
    // Changes grouped by record, with their predecessors, or in the
    // protocol-2 layout.
    let layout = if mode & 8 != 0 {
        ChangeLayout::Grouped
    } else if mode & 4 == 0 {
        ChangeLayout::WithPredecessors
    } else {
        ChangeLayout::Protocol2
    };
    match mode % 4 {
        // A payload as it comes off the stream, before authentication.
        0 => {
            if let Ok(opened) = codec::decode(rest, layout, None) {
                assert!(!opened.sealed);
                check(opened, layout);
            }
        }
        // A payload after authentication: its MAC is whatever the bytes say.
        1 => {
            let seq = u64::from(rest.first().copied().unwrap_or(0));
            if let Ok(opened) = codec::decode(rest, layout, Some((key, seq))) {
                check(opened, layout);
            }
        }
        // A body behind a correct MAC: only the message decoder stands.
        2 => {
            let payload = seal_body(key, 3, rest);
            match codec::decode(&payload, layout, Some((key, 3))) {
                Ok(opened) => {
                    assert!(opened.sealed);
                    check(opened, layout);
                }
                Err(FrameError::BadMac) => panic!("a correct MAC was refused"),
                Err(_) => {}
            }
            // The same payload under the other direction's key or frame number is refused.
            assert_eq!(
                codec::decode(&payload, layout, Some((other, 3))),
                Err(FrameError::BadMac)
            );
            assert_eq!(
                codec::decode(&payload, layout, Some((key, 4))),
                Err(FrameError::BadMac)
            );
            assert_eq!(
                codec::decode(&payload, layout, None),
                Err(FrameError::BadMac)
            );
        }
        // Length prefixes against a cap.
        _ => {
            let mut prefix = [0u8; LEN_PREFIX];
            let n = rest.len().min(LEN_PREFIX);
            prefix[..n].copy_from_slice(&rest[..n]);
            let cap = match rest.get(LEN_PREFIX) {
                Some(&c) => usize::from(c) << 12,
                None => DEFAULT_MAX_FRAME,
            };
            match codec::payload_len(prefix, cap) {
                Ok(len) => assert!(len > 0 && len <= cap),
                Err(FrameError::TooLarge { len, cap: c }) => assert!(len > c && c == cap),
                Err(_) => assert_eq!(u32::from_be_bytes(prefix), 0),
            }
        }
    }
});
