//! Turning measurements into output: rates, medians, number formatting, and
//! the JSON object every scenario prints as its last stdout line.

use serde::Serialize;
use std::time::Duration;

/// The median of `values` (the mean of the two middle ones for an even count).
///
/// Panics if `values` is empty or holds a NaN.
pub fn median(values: &[f64]) -> f64 {
    assert!(!values.is_empty(), "median of no values");
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).expect("NaN in measurements"));
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// Operations per second for `count` operations done in `elapsed`.
pub fn per_second(count: u64, elapsed: Duration) -> f64 {
    count as f64 / elapsed.as_secs_f64().max(f64::MIN_POSITIVE)
}

/// A rate as a whole number with thousands separators: `123,456/s`.
pub fn rate(per_s: f64) -> String {
    let whole = per_s.round() as u64;
    let digits = whole.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 2);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out.push_str("/s");
    out
}

/// Microseconds per operation at `per_s` operations per second.
pub fn micros_per_op(per_s: f64) -> f64 {
    1e6 / per_s
}

/// Rounds to `places` decimal places (for the JSON line).
pub fn round_to(value: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    (value * scale).round() / scale
}

/// "met" or "NOT met", for target lines.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "NOT met" }
}

/// Prints `result` as one JSON line on stdout. Call it last: scripts read the
/// final line. Fields appear in the struct's declaration order.
pub fn print_json_last(result: &impl Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string(result)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(&[7.0]), 7.0);
    }

    #[test]
    fn rate_groups_thousands() {
        assert_eq!(rate(0.4), "0/s");
        assert_eq!(rate(999.0), "999/s");
        assert_eq!(rate(1000.0), "1,000/s");
        assert_eq!(rate(1_234_567.0), "1,234,567/s");
    }

    #[test]
    fn per_second_counts_operations_over_time() {
        assert_eq!(per_second(500, Duration::from_millis(250)), 2000.0);
    }

    #[test]
    fn json_line_keeps_field_order() {
        #[derive(Serialize)]
        struct R {
            scenario: &'static str,
            b: u32,
            a: f64,
        }
        let line = serde_json::to_string(&R {
            scenario: "x",
            b: 1,
            a: 0.5,
        })
        .unwrap();
        assert_eq!(line, r#"{"scenario":"x","b":1,"a":0.5}"#);
    }
}
