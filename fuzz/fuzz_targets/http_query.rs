//! The HTTP query strings the API parses by hand (`GET
//! /api/peers/{peer}/diff?collection=…&after=…&limit=…`): the pair splitter
//! and the percent-decoder of `crates/shoal-server/src/http/query_string.rs`,
//! included here as source (the CLI is a binary crate; the file is std-only
//! so it compiles alone). If that file moves, move the `#[path]` with it.
//!
//! Checked against an independent strict decoder: `%` must be followed by
//! two hex digits, `+` is a space, the result must be UTF-8; every pair of
//! the query comes out once, in order, with its key as written.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../crates/shoal-server/src/http/query_string.rs"]
#[allow(dead_code)]
mod query_string;

fn strict(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hi = (*b.get(i + 1)? as char).to_digit(16)?;
                let lo = (*b.get(i + 2)? as char).to_digit(16)?;
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fuzz_target!(|data: &[u8]| {
    let Ok(query) = std::str::from_utf8(data) else {
        return;
    };
    assert_eq!(
        query_string::percent_decode(query),
        strict(query),
        "{query:?}"
    );
    let expected: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    let pairs: Vec<_> = query_string::pairs(query).collect();
    assert_eq!(pairs.len(), expected.len());
    for ((key, value), pair) in pairs.iter().zip(expected) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        assert_eq!(*key, k);
        match value {
            Ok(decoded) => assert_eq!(Some(decoded.clone()), strict(v)),
            Err(raw) => {
                assert_eq!(*raw, pair);
                assert_eq!(strict(v), None);
            }
        }
    }
});
