//! The byte format of an op stream, as the session target reads it and the
//! seed recorder (`crates/shoal/tests/it/fuzz_seeds.rs`) writes it: a sequence
//! of `op (1 byte) ‖ length (2 bytes, big-endian) ‖ data (length bytes)`.
//! A stream cut short ends with a last op holding what is left.
//!
//! Being this simple is the point: real traffic (a recorded message body
//! behind op 0) is a valid input, and the fuzzer's mutations keep the shape.

/// Iterates the ops of a stream as `(op, data)`.
#[derive(Debug, Clone)]
pub struct Ops<'a> {
    rest: &'a [u8],
}

impl<'a> Ops<'a> {
    /// Reads `bytes` as an op stream.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }
}

impl<'a> Iterator for Ops<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&op, rest) = self.rest.split_first()?;
        let (len, rest) = match rest.split_first_chunk::<2>() {
            Some((len, rest)) => (usize::from(u16::from_be_bytes(*len)), rest),
            None => (rest.len(), rest),
        };
        let (data, rest) = rest.split_at(len.min(rest.len()));
        self.rest = rest;
        Some((op, data))
    }
}
