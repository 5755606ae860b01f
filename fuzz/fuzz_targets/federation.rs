//! Federation requests and answers (`shoal_core::sync::federation`) as a
//! peer sends them inside sealed frames: raw postcard bodies, and typed
//! values built from the bytes. Whatever decodes is stable under decode →
//! encode → decode; typed values round-trip exactly, alone and inside a
//! `Message` (all but each change's `pred`, which is not part of a change's
//! binary encoding: the frame's layout tail carries it, see the sync_frame
//! target); every change they carry can be validated without a panic.

#![no_main]

use arbitrary::Unstructured;
use libfuzzer_sys::fuzz_target;
use shoal_core::Change;
use shoal_core::sync::Message;
use shoal_core::sync::federation::{Request, RequestId, Response, encoded_len};
use shoal_fuzz::{build, stable};

fn changes_of_request(r: &Request) -> &[Change] {
    match r {
        Request::Offer { changes, .. } => changes,
        Request::Collections
        | Request::Reconcile { .. }
        | Request::Fetch { .. }
        | Request::Level { .. }
        | Request::Filtered { .. } => &[],
    }
}

fn changes_of_response(r: &Response) -> &[Change] {
    match r {
        Response::Records { changes, .. } => changes,
        Response::Collections { .. }
        | Response::Reconcile { .. }
        | Response::Offered { .. }
        | Response::Levelling
        | Response::Filtered { .. }
        | Response::Refused(_) => &[],
    }
}

/// Clears the preds of the changes a request carries (postcard reads them
/// back as `None`).
fn without_preds_request(mut r: Request) -> Request {
    if let Request::Offer { changes, .. } = &mut r {
        changes.iter_mut().for_each(|c| c.pred = None);
    }
    r
}

/// Clears the preds of the changes a response carries.
fn without_preds_response(mut r: Response) -> Response {
    if let Response::Records { changes, .. } = &mut r {
        changes.iter_mut().for_each(|c| c.pred = None);
    }
    r
}

fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let bytes = postcard::to_allocvec(value).expect("encodes");
    assert_eq!(encoded_len(value), bytes.len() as u64);
    let back: T = postcard::from_bytes(&bytes).expect("decodes");
    assert_eq!(&back, value);
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => {
            if let Some(request) = stable::<Request>(rest) {
                for change in changes_of_request(&request) {
                    let _ = change.validate(1 << 20);
                }
                let _ = request.kind();
            }
        }
        1 => {
            if let Some(response) = stable::<Response>(rest) {
                for change in changes_of_response(&response) {
                    let _ = change.validate(1 << 20);
                }
            }
        }
        _ => {
            let mut u = Unstructured::new(rest);
            if let Ok(request) = build::request(&mut u).map(without_preds_request) {
                round_trip(&request);
                round_trip(&Message::Request {
                    id: RequestId(7),
                    body: request,
                });
            }
            if let Ok(response) = build::response(&mut u).map(without_preds_response) {
                round_trip(&response);
                round_trip(&Message::Response {
                    id: RequestId(u32::MAX),
                    body: response,
                });
            }
        }
    }
});
