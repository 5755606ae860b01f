//! Unit and property tests of the filter language: parsing, errors,
//! evaluation and the canonical text round trip.

use super::*;
use proptest::prelude::*;
use serde_json::json;

fn rec(v: serde_json::Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn f(text: &str) -> Filter {
    Filter::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

const DAY: u64 = 86_400_000;

#[test]
fn comparisons_follow_the_documented_rules() {
    let r = rec(json!({"owner": "bo", "n": 5, "done": false, "gone": null, "date": 10 * DAY}));
    assert!(f(r#"owner = "bo""#).matches(&r, 0));
    assert!(!f(r#"owner = "al""#).matches(&r, 0));
    assert!(f(r#"owner != "al""#).matches(&r, 0));
    assert!(f("n >= 5 and n <= 5 and n > 4.5 and n < 6").matches(&r, 0));
    assert!(f("n > -1").matches(&r, 0));
    assert!(f("done = false and not done = true").matches(&r, 0));
    assert!(!f("done < true").matches(&r, 0), "booleans have no order");
    assert!(f("gone = null and gone exists").matches(&r, 0));
    // A missing field or another type: every comparison is false.
    assert!(!f("missing != 1").matches(&r, 0));
    assert!(!f(r#"n = "5""#).matches(&r, 0));
    assert!(f("not missing exists").matches(&r, 0));
    // now-30d against milliseconds.
    assert!(f("date >= now-30d").matches(&r, 39 * DAY));
    assert!(!f("date >= now-30d").matches(&r, 41 * DAY));
    assert!(f("date < now+1h").matches(&r, 10 * DAY));
    // ... and against RFC 3339 text.
    let t = rec(json!({"date": "2026-12-01T10:00:00Z"}));
    let dec2 = 1_796_169_600_000; // 2026-12-02T00:00:00Z
    assert!(f("date >= now-2d").matches(&t, dec2));
    assert!(!f("date >= now-12h").matches(&t, dec2));
    assert!(f("(owner = \"x\" or n = 5) and `n` exists").matches(&r, 0));
}

#[test]
fn time_text_is_rfc3339_utc() {
    assert_eq!(eval::rfc3339_utc(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        eval::rfc3339_utc(1_796_169_600_000),
        "2026-12-02T00:00:00.000Z"
    );
    assert_eq!(
        eval::rfc3339_utc(951_782_400_000 + 1),
        "2000-02-29T00:00:00.001Z"
    );
    assert_eq!(eval::rfc3339_utc(-1), "1969-12-31T23:59:59.999Z");
}

#[test]
fn bad_input_names_the_byte_and_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        ("", 0, "empty filter"),
        ("owner = bo", 8, "quote text values"),
        ("owner", 5, "ends early"),
        ("owner ~ 1", 6, "unexpected character"),
        ("owner = \"bo", 8, "not closed"),
        ("(a = 1", 0, "not closed"),
        ("a = 1 b = 2", 6, "after a complete filter"),
        ("a = 1 and", 9, "ends early"),
        ("and = 1", 0, "keyword"),
        ("date > now-30y", 11, "unknown time unit"),
        ("date > now-", 11, "offset"),
        ("n = 1e999", 4, "bad number"),
        ("`x = 1", 0, "not closed"),
        ("`` = 1", 0, "must not be empty"),
    ];
    for (text, at, words) in cases {
        let e = Filter::parse(text).unwrap_err();
        assert_eq!(e.at, *at, "{text:?}: {e}");
        assert!(e.to_string().contains(words), "{text:?}: {e}");
    }
    let deep = "not ".repeat(MAX_FILTER_DEPTH + 1) + "a = 1";
    assert!(Filter::parse(&deep).unwrap_err().reason.contains("nested"));
    let long = format!("a = \"{}\"", "x".repeat(MAX_FILTER_LEN));
    assert!(Filter::parse(&long).unwrap_err().reason.contains("longer"));
}

/// A large offset in a large unit prints in the largest unit dividing it,
/// so the canonical text stays within the offset bound and parses back
/// (found by the partial_filter fuzz target: `now+7777712h` printed as
/// seconds, past the bound).
#[test]
fn large_offsets_print_in_the_largest_unit_and_parse_back() {
    for (text, canonical) in [
        ("date < now+7777712h", "now+7777712h"),
        ("date < now-1000000000d", "now-1000000000d"),
        ("date < now-86400s", "now-1d"),
        ("date < now+90s", "now+90s"),
        ("date < now-120m", "now-2h"),
    ] {
        let filter = Filter::parse(text).unwrap();
        let printed = filter.to_string();
        assert!(printed.contains(canonical), "{text}: {printed}");
        assert_eq!(Filter::parse(&printed).unwrap(), filter, "{printed}");
    }
}

/// The canonical text parenthesizes only what the tree needs and leaves
/// plain field names bare, so it reads like what a person types.
#[test]
fn canonical_text_is_minimal() {
    for (text, canonical) in [
        (
            "owner = \"bo\" and date >= now-30d",
            "owner = \"bo\" and date >= now-30d",
        ),
        ("(a=1) and (not (b exists))", "a = 1.0 and not b exists"),
        (
            "not (a = 1 or b = 2) and c = 3",
            "not (a = 1.0 or b = 2.0) and c = 3.0",
        ),
        (
            "(a = 1 and b = 2) or c = 3",
            "a = 1.0 and b = 2.0 or c = 3.0",
        ),
        (
            "(a = 1 or b = 2) or c = 3",
            "(a = 1.0 or b = 2.0) or c = 3.0",
        ),
        (
            "`and` = 1 and `now-1d` exists",
            "`and` = 1.0 and `now-1d` exists",
        ),
        ("`odd name` = true", "`odd name` = true"),
    ] {
        let filter = Filter::parse(text).unwrap();
        assert_eq!(filter.to_string(), canonical, "{text}");
        assert_eq!(Filter::parse(canonical).unwrap(), filter, "{canonical}");
    }
}

/// A chain of `not`s as deep as the limit allows prints as deep as it was
/// typed (found by the partial_filter fuzz target: the printer wrapped each
/// `not`'s operand in parentheses, doubling the nesting past the limit, so
/// the canonical text of an accepted filter was refused).
#[test]
fn deepest_accepted_filter_prints_within_the_depth_limit() {
    let text = format!("{}a = 1", "not ".repeat(MAX_FILTER_DEPTH - 1));
    let filter = Filter::parse(&text).unwrap();
    let printed = filter.to_string();
    assert_eq!(Filter::parse(&printed).unwrap(), filter, "{printed}");
    let nested = format!(
        "{}a = 1 and b = 2{}",
        "(".repeat(MAX_FILTER_DEPTH - 1),
        ")".repeat(MAX_FILTER_DEPTH - 1)
    );
    let filter = Filter::parse(&nested).unwrap();
    assert_eq!(Filter::parse(&filter.to_string()).unwrap(), filter);
}

/// A filter within the byte limit as typed but not when written out in
/// full (spaces around operators, numbers as decimals) is refused, naming
/// why, so every accepted filter's canonical text parses back.
#[test]
fn filters_too_long_written_out_in_full_are_refused() {
    let parts = vec!["a=1"; 128].join(" and ");
    assert!(parts.len() <= MAX_FILTER_LEN);
    let e = Filter::parse(&parts).unwrap_err();
    assert!(e.reason.contains("written out in full"), "{e}");
    assert!(e.at <= parts.len());
    let fits = vec!["a=1"; 80].join(" and ");
    let filter = Filter::parse(&fits).unwrap();
    assert_eq!(Filter::parse(&filter.to_string()).unwrap(), filter);
}

#[test]
fn filter_sets_refuse_duplicates_and_bad_filters_and_admit_by_rule() {
    let notes = CollectionName::new("notes").unwrap();
    let other = CollectionName::new("other").unwrap();
    let set = PartialFilters::from_texts(&[(notes.clone(), r#"owner = "bo""#.into())]).unwrap();
    let bo = rec(json!({"owner": "bo"}));
    let al = rec(json!({"owner": "al"}));
    assert!(set.admits(&notes, Some(&bo), 0));
    assert!(!set.admits(&notes, Some(&al), 0));
    assert!(
        !set.admits(&notes, None, 0),
        "a deleted record matches no filter"
    );
    assert!(set.admits(&other, Some(&al), 0) && set.admits(&other, None, 0));
    let twice = [
        (notes.clone(), "a = 1".into()),
        (notes.clone(), "a = 2".into()),
    ];
    assert!(matches!(
        PartialFilters::from_texts(&twice),
        Err(FiltersError::Duplicate(_))
    ));
    let bad = [(notes, "a =".into())];
    assert!(matches!(
        PartialFilters::from_texts(&bad),
        Err(FiltersError::Bad { .. })
    ));
}

fn literal() -> impl Strategy<Value = Literal> {
    prop_oneof![
        "[a-z\"\\\\ é]{0,6}".prop_map(Literal::Str),
        (-1000i32..1000).prop_map(|n| Literal::Num(f64::from(n) / 4.0)),
        any::<bool>().prop_map(Literal::Bool),
        Just(Literal::Null),
        (-400i64..400).prop_map(|h| Literal::Now(h * 3_600_000)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        Just(Op::Eq),
        Just(Op::Ne),
        Just(Op::Lt),
        Just(Op::Le),
        Just(Op::Gt),
        Just(Op::Ge)
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let field = prop_oneof![
        Just("a"),
        Just("b"),
        Just("odd name"),
        Just("now-x"),
        Just("or")
    ]
    .prop_map(|n| FieldName::new(n).unwrap());
    let leaf = prop_oneof![
        field.clone().prop_map(Filter::Exists),
        (field, op(), literal()).prop_map(|(field, op, value)| Filter::Cmp(Cmp {
            field,
            op,
            value
        })),
    ];
    leaf.prop_recursive(4, 24, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Filter::Or),
            inner.prop_map(|f| Filter::Not(Box::new(f))),
        ]
    })
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z\"]{0,3}".prop_map(Value::from),
        (-1000i32..1000).prop_map(|n| Value::from(f64::from(n) / 4.0)),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ]
}

#[test]
fn uses_now_finds_now_at_any_depth() {
    for text in [
        "date >= now-30d",
        "date <= now",
        "a = 1 and (b = 2 or not date > now+1h)",
        "not (x exists and `odd name` < now-3s)",
    ] {
        assert!(f(text).uses_now(), "{text}");
    }
    for text in [
        r#"owner = "bo""#,
        r#"a = 1 and (b = 2 or not c exists) and d = "now""#,
        "`now` = 1",
    ] {
        assert!(!f(text).uses_now(), "{text}");
    }
}

fn record() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        prop_oneof![Just("a"), Just("b"), Just("odd name")],
        value(),
        0..3,
    )
    .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

proptest! {
    /// The canonical text parses back to the same tree, and so evaluates alike.
    #[test]
    fn canonical_text_round_trips(filter in filter(), record in record(), now in 0u64..4_000_000_000_000) {
        let text = filter.to_string();
        let back = Filter::parse(&text).map_err(|e| TestCaseError::fail(format!("{text}: {e}")))?;
        prop_assert_eq!(&back, &filter);
        prop_assert_eq!(back.matches(&record, now), filter.matches(&record, now));
    }

    /// `not` is exact negation, `and`/`or` are all/any, `!=` on a present
    /// field of the literal's type is the negation of `=`.
    #[test]
    fn evaluation_is_boolean_algebra(a in filter(), b in filter(), record in record(), now in 0u64..4_000_000_000_000) {
        let (ra, rb) = (a.matches(&record, now), b.matches(&record, now));
        prop_assert_eq!(Filter::Not(Box::new(a.clone())).matches(&record, now), !ra);
        prop_assert_eq!(Filter::And(vec![a.clone(), b.clone()]).matches(&record, now), ra && rb);
        prop_assert_eq!(Filter::Or(vec![a, b]).matches(&record, now), ra || rb);
    }

    /// Any text either parses or gets an error pointing inside it.
    #[test]
    fn any_text_parses_or_names_a_byte_inside_it(text in "[a-z0-9 =<>!()\"`.+-]{0,40}") {
        if let Err(e) = Filter::parse(&text) {
            prop_assert!(e.at <= text.len());
        }
    }
}
