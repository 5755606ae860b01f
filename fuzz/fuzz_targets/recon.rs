//! Reconciliation steps (`shoal_core::recon`) from a peer: entry lists as
//! a request (answered by the stateless `respond`) and as replies to our
//! walk (taken by `Reconciler::receive`), against a small in-memory replica.
//!
//! Input: byte 0 is the mode — bit 0: walk (else respond); bit 1: raw
//! postcard (else typed values built from the bytes); bit 2: blind walk;
//! bit 3: a walk that keeps every difference; bits 4–7: the replica's size
//! and `list_below`. Raw: a request is the rest as a postcard entry list;
//! a walk's replies are an op stream (`shoal_fuzz::ops`), each op's data one
//! reply and its op byte how many entries it claims to answer.
//!
//! Checked: decoding is stable; `respond` answers at least one and at most
//! all entries of a non-empty request, within its byte budget plus one
//! entry's answer; a walk fed any replies ends (finished, an error, or the
//! round-trip bound) and keeps at most `max_differences` differences.

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shoal_core::RecordId;
use shoal_core::recon::{Entry, ItemFlags, ReconError, ReconLimits, Reconciler, respond};
use shoal_fuzz::memview::MemView;
use shoal_fuzz::ops::Ops;
use shoal_fuzz::{build, stable};

/// A replica of `n` records, some of them the ids real seeds name.
fn fixed_view(n: u8) -> MemView {
    let mut view = MemView::default();
    let named = ["n1", "n2", "n3", "m1", "b1", "r0", "task:42"];
    for i in 0..usize::from(n) * 3 {
        let id = match named.get(i) {
            Some(name) => RecordId::new(*name),
            None => RecordId::new(format!("r{i}")),
        };
        let flags = ItemFlags {
            alive: i % 5 != 4,
            assets_missing: i % 7 == 6,
        };
        view.put(&id.expect("valid"), (i % 3) as u8, flags);
    }
    view
}

fn view(u: &mut Unstructured) -> MemView {
    let mut view = MemView::default();
    for _ in 0..u.int_in_range(0..=40usize).unwrap_or(0) {
        let Ok(id) = build::record_id(u) else { break };
        let flags = ItemFlags {
            alive: u.arbitrary().unwrap_or(true),
            assets_missing: u.arbitrary().unwrap_or(false),
        };
        view.put(&id, u.arbitrary().unwrap_or(0), flags);
    }
    view
}

fn typed(u: &mut Unstructured) -> Vec<Entry> {
    let n = u.int_in_range(0..=6usize).unwrap_or(0);
    (0..n).filter_map(|_| build::entry(u).ok()).collect()
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let raw = mode & 2 != 0;
    let limits = ReconLimits {
        list_below: u64::from(mode >> 4) + 1,
        answer_list_below: 8,
        max_message_bytes: 2048,
        max_differences: 16,
        max_round_trips: 32,
    };
    let mut u = Unstructured::new(rest);
    let mut local = if raw {
        fixed_view(mode >> 4)
    } else {
        view(&mut u)
    };
    if mode & 1 == 0 {
        // A peer's request, answered.
        let request = if raw {
            stable::<Vec<Entry>>(rest).unwrap_or_default()
        } else {
            typed(&mut u)
        };
        let (answer, answered) = respond(&mut local, &request, &limits).expect("infallible view");
        if request.is_empty() {
            assert_eq!((answer.len(), answered), (0, 0));
        } else {
            assert!((1..=request.len()).contains(&answered));
        }
        let bytes: usize = answer.iter().map(Entry::wire_size).sum();
        // One entry's answer: 16 lists of at most every record, or 16 splits.
        let one = 16 * (12 + 45 * (12 + 128)) + 16 * 140;
        assert!(
            bytes <= limits.max_message_bytes + one,
            "{bytes} bytes answered"
        );
        return;
    }
    // Our walk, fed the peer's replies.
    let mut walk = if mode & 4 != 0 {
        Reconciler::blind(limits)
    } else {
        Reconciler::start(&mut local, limits).expect("infallible view")
    };
    let keep_all = mode & 8 != 0;
    if keep_all {
        walk.keep_every_difference();
    }
    let mut replies = Ops::new(if raw { rest } else { &[] });
    let mut steps = 0;
    while let Some(asked) = walk.next_request() {
        steps += 1;
        assert!(
            steps <= limits.max_round_trips as usize + 1,
            "the walk did not end"
        );
        let (claim, reply) = if raw {
            let Some((claim, data)) = replies.next() else {
                break;
            };
            (claim, stable::<Vec<Entry>>(data).unwrap_or_default())
        } else {
            if u.is_empty() {
                break;
            }
            (u.arbitrary().unwrap_or(0), typed(&mut u))
        };
        let answered = match claim % 4 {
            0 => asked.len(),
            1 => usize::from(claim >> 2) % (asked.len() + 2),
            _ => 1.min(asked.len()),
        };
        match walk.receive(&mut local, reply, answered) {
            Ok(()) => {}
            Err(ReconError::BadAnswer) => {
                assert!(answered > asked.len() || (answered == 0 && !asked.is_empty()));
                break;
            }
            Err(ReconError::TooManyRounds(n)) => {
                assert!(n >= limits.max_round_trips);
                break;
            }
            Err(ReconError::Local(never)) => match never {},
        }
        if keep_all {
            let _ = walk.take_differences();
        } else {
            assert!(walk.outcome().differences.len() <= limits.max_differences);
        }
    }
});
