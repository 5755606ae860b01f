//! The query strings the API parses by hand: `key=value` pairs split on
//! `&`, values percent-decoded (`%XX` escapes, `+` as a space).
//!
//! Std only, and nothing from the rest of the crate, so the fuzz target
//! `fuzz/fuzz_targets/http_query.rs` includes this file as source. It must
//! not know what any parameter means: that is the handlers'.

/// The pairs of `query` in order, empty ones skipped: each key as written,
/// and its value decoded — or, if the value is not valid percent-encoded
/// UTF-8, `Err` with the whole pair as written (for the error message).
pub fn pairs(query: &str) -> impl Iterator<Item = (&str, Result<String, &str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (key, percent_decode(value).ok_or(pair))
    })
}

/// `%XX` escapes and `+` decoded; `None` if malformed or not UTF-8.
pub fn percent_decode(text: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        rest = tail;
        match b {
            b'+' => bytes.push(b' '),
            b'%' => {
                // Two hex digits exactly: `u8::from_str_radix` alone would
                // also take a sign (`%+d` as 0x0d).
                let (&[hi, lo], tail) = rest.split_first_chunk::<2>()?;
                let digit = |d: u8| (d as char).to_digit(16);
                bytes.push((digit(hi)? * 16 + digit(lo)?) as u8);
                rest = tail;
            }
            b => bytes.push(b),
        }
    }
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c").as_deref(), Some("a/b c"));
        assert_eq!(percent_decode("plain").as_deref(), Some("plain"));
        assert_eq!(percent_decode("%4"), None);
        assert_eq!(percent_decode("%ff"), None);
    }

    /// Found by the `http_query` fuzz target: `%+d` decoded as a carriage
    /// return (the sign was taken as part of the number), so a malformed
    /// escape was accepted instead of refused.
    #[test]
    fn an_escape_is_two_hex_digits_and_nothing_else() {
        for bad in ["%+d", "%+0", "%-1", "% 1", "%1", "%", "%g0", "%0g", "%é"] {
            assert_eq!(percent_decode(bad), None, "{bad:?}");
        }
        assert_eq!(percent_decode("%0D%0a").as_deref(), Some("\r\n"));
        assert_eq!(
            pairs("after=%+41").collect::<Vec<_>>(),
            vec![("after", Err("after=%+41"))]
        );
    }

    #[test]
    fn pairs_in_order_with_bad_values_named() {
        let got: Vec<_> = pairs("a=1&&b&c=%zz&d=x+y").collect();
        assert_eq!(
            got,
            vec![
                ("a", Ok("1".to_string())),
                ("b", Ok(String::new())),
                ("c", Err("c=%zz")),
                ("d", Ok("x y".to_string())),
            ]
        );
    }
}
