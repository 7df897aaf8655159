//! The data contract's unit tests: every reason, both parsers agreeing, timestamps.

use super::timestamp::{days_from_civil, END_MICROS, FIRST_MICROS, MICROS_PER_SECOND};
use super::*;

fn ts(s: &str) -> i64 {
    parse_timestamp(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

#[test]
fn timestamps_in_every_accepted_form() {
    // 2022-01-02T00:00:00Z
    let midnight = 1_641_081_600 * MICROS_PER_SECOND;
    let cases = [
        ("2022-01-02", midnight),
        ("2022-01-02T00:00:00.000", midnight),
        ("2022-01-02T00:00:00", midnight),
        ("2022-01-02T00:00", midnight),
        ("2022-01-02 00:00:00Z", midnight),
        ("2022-01-02T01:30:00+01:30", midnight),
        ("2022-01-01T23:00:00-0100", midnight),
        ("2022-01-02T05:00:00+05", midnight),
        ("2022-01-02T00:00:00.123456789Z", midnight + 123_456),
        // Digits beyond microseconds are cut, however many there are.
        ("2022-01-02T00:00:00.1234567891234Z", midnight + 123_456),
        ("2022-01-02T00:00:00,5", midnight + 500_000),
        ("2022-01-02T00:00:01.5", midnight + 1_500_000),
        ("1970-01-01T00:00:00Z", 0),
        ("0001-01-01T00:00:00Z", FIRST_MICROS),
        ("9999-12-31T23:59:59.999999Z", END_MICROS - 1),
        (
            "0001-01-01T00:30:00-01:00",
            FIRST_MICROS + 5_400 * MICROS_PER_SECOND,
        ),
    ];
    for (input, want) in cases {
        assert_eq!(ts(input), want, "{input}");
    }
}

#[test]
fn calendar_arithmetic_matches_chrono() {
    use chrono::{Datelike, NaiveDate};
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    for year in [
        0, 1, 1600, 1899, 1900, 1969, 1970, 2000, 2017, 2024, 2100, 9999,
    ] {
        for month in 0..=13u16 {
            for day in 0..=32u16 {
                let want = NaiveDate::from_ymd_opt(year as i32, month.into(), day.into())
                    .map(|d| (d - epoch).num_days());
                assert_eq!(
                    days_from_civil(year, month, day),
                    want,
                    "{year}-{month}-{day}"
                );
            }
        }
    }
    assert_eq!(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().day(), 29);
}

#[test]
fn impossible_or_malformed_timestamps_are_refused() {
    let cases = [
        ("2022-02-30", "no such calendar date"),
        ("2021-02-29T00:00:00", "no such calendar date"),
        ("2022-13-01", "no such calendar date"),
        ("2022-1-02", "expected YYYY-MM-DD"),
        ("02/01/2022", "expected YYYY-MM-DD"),
        ("2022-01-02T24:00:00", "time of day out of range"),
        ("2022-01-02T10:61", "time of day out of range"),
        (
            "2022-01-02T10:00:00.",
            "expected digits after the decimal sign",
        ),
        (
            "2022-01-02T10:30.5",
            "a fraction of a minute (HH:MM.f); write HH:MM:SS.f",
        ),
        (
            "2016-12-31T23:59:60Z",
            "a leap second (23:59:60) cannot be stored",
        ),
        ("2016-12-31T12:00:60Z", "time of day out of range"),
        ("0000-06-01", "outside the years 0001 to 9999 (in UTC)"),
        (
            "0001-01-01T00:30:00+01:00",
            "outside the years 0001 to 9999 (in UTC)",
        ),
        (
            "9999-12-31T23:30:00-01:00",
            "outside the years 0001 to 9999 (in UTC)",
        ),
        (
            "2022-01-02T10:00:00+5",
            "expected zone as Z, ±HH, ±HHMM or ±HH:MM",
        ),
        ("2022-01-02T10:00:00 junk", "unexpected text after the time"),
        ("2022-01-02X10:00", "expected T between date and time"),
    ];
    for (input, want) in cases {
        assert_eq!(parse_timestamp(input), Err(want), "{input}");
    }
}

fn parse(line: &str) -> Result<Vote, String> {
    parse_vote(line.as_bytes(), &mut UnknownFields::default()).map_err(|e| e.to_string())
}

#[test]
fn real_data_line_parses() {
    let v = parse(r#"{"Id":"6364","UserId":"14","PostId":"742","VoteTypeId":"8","BountyAmount":"50","CreationDate":"2017-05-21T00:00:00.000"}"#).unwrap();
    assert_eq!(
        v,
        Vote {
            id: 6364,
            post_id: 742,
            vote_type_id: 8,
            user_id: Some(14),
            bounty_amount: Some(50),
            creation_date: ts("2017-05-21"),
        }
    );
}

#[test]
fn numbers_strings_and_absent_optionals() {
    let v = parse(r#"{"Id":7,"PostId":3,"VoteTypeId":2,"UserId":-1,"BountyAmount":"","CreationDate":"2022-01-16"}"#).unwrap();
    assert_eq!((v.id, v.user_id, v.bounty_amount), (7, Some(-1), None));
    let v = parse(
        r#"{"Id":"7","PostId":"3","VoteTypeId":"2","UserId":null,"CreationDate":"2022-01-16"}"#,
    )
    .unwrap();
    assert_eq!(v.user_id, None);
}

#[test]
fn each_broken_rule_has_its_own_reason() {
    let cases = [
        ("not json", "not JSON: expected ident at line 1 column 2"),
        ("[1,2]", "not a JSON object (found an array)"),
        ("42", "not a JSON object (found a number)"),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2""#,
            "not JSON: EOF while parsing an object at line 1 column 39",
        ),
        (
            r#"{"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "missing Id",
        ),
        (
            r#"{"Id":null,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "missing Id",
        ),
        (
            r#"{"Id":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "missing PostId",
        ),
        (
            r#"{"Id":"1","PostId":"1","CreationDate":"2022-01-01"}"#,
            "missing VoteTypeId",
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2"}"#,
            "missing CreationDate",
        ),
        (
            r#"{"Id":"x1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            r#"Id not an integer (found "x1")"#,
        ),
        (
            r#"{"Id":1.5,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "Id not an integer (found 1.5)",
        ),
        (
            r#"{"Id":"","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            r#"Id not an integer (found "")"#,
        ),
        (
            r#"{"Id":"0","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "Id out of range (0; must be > 0)",
        ),
        (
            r#"{"Id":"1","PostId":-4,"VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "PostId out of range (-4; must be > 0)",
        ),
        (
            r#"{"Id":"99999999999999999999","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            r#"Id out of range ("99999999999999999999"; must fit a 64-bit integer)"#,
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"40000","CreationDate":"2022-01-01"}"#,
            "VoteTypeId out of range (40000; must be at most 32767)",
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"abc","CreationDate":"2022-01-01"}"#,
            r#"UserId not an integer (found "abc")"#,
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","BountyAmount":true,"CreationDate":"2022-01-01"}"#,
            "BountyAmount not an integer (found true)",
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-02-30"}"#,
            r#"bad date in CreationDate ("2022-02-30": no such calendar date)"#,
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":20220101}"#,
            "CreationDate not a string (found 20220101)",
        ),
        (
            r#"{"Id":"1","Id":"2","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "field Id appears twice",
        ),
        ("{\"Id\":\"1\"\u{0}}", "binary data (NUL byte at byte 9)"),
        // Numbers are reported as written, with the field they were given for.
        (
            r#"{"Id":18446744073709551616,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "Id out of range (18446744073709551616; must fit a 64-bit integer)",
        ),
        (
            r#"{"Id":"1","PostId":1e400,"VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "PostId not an integer (found 1e400)",
        ),
        (
            r#"{"Id":"1","PostId":"1","VoteTypeId":-0.0,"CreationDate":"2022-01-01"}"#,
            "VoteTypeId not an integer (found -0.0)",
        ),
        (
            r#"{"Id":-0,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#,
            "Id out of range (0; must be > 0)",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse(input), Err(want.to_string()), "{input}");
    }
}

#[test]
fn invalid_utf8_names_the_offset() {
    let mut unknown = UnknownFields::default();
    let err = parse_vote(b"{\"Id\":\"\xff\"}", &mut unknown).unwrap_err();
    assert_eq!(err, RejectReason::InvalidUtf8 { offset: 7 });
}

#[test]
fn unknown_fields_are_accepted_and_named() {
    let mut unknown = UnknownFields::default();
    let v = parse_vote(
        br#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01","Extra":{"a":[1]},"Note":"x"}"#,
        &mut unknown,
    );
    assert!(v.is_ok());
    assert_eq!(
        unknown.names(),
        vec!["Extra".to_string(), "Note".to_string()]
    );
}

/// Both parsers must accept exactly the same votes: every input here is checked against
/// the full parser alone.
#[test]
fn the_fast_path_agrees_with_the_full_parser() {
    let mut inputs: Vec<String> = vec![
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
        r#" { "Id" : 1 , "PostId":2,"VoteTypeId":3,"CreationDate":"2022-01-01T10:00:00Z" } "#.into(),
        r#"{"Id":"007","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":007,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":-0,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":1e3,"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"","BountyAmount":"","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"-1","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"- 1","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":"-","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","BountyAmount":"3000000000","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"9223372036854775807","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01",}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"} x"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01""#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":2022}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"0","CreationDate":"2022-01-01"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01","Id":"1"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01","X":"1"}"#.into(),
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01A"}"#.into(),
        r#"{}"#.into(),
        "{\"Id\":\"1\",\"PostId\":\"1\",\"VoteTypeId\":\"2\",\"CreationDate\":\"2022-01-01\u{e9}\"}".into(),
    ];
    let mut gen = Vec::new();
    crate::testing::synth::write_votes(
        &mut gen,
        crate::testing::synth::Spec {
            rows: 2000,
            seed: 1,
            first_id: 0,
            repeat_share: 0.0,
        },
    )
    .unwrap();
    inputs.extend(String::from_utf8(gen).unwrap().lines().map(String::from));
    let mut fast_hits = 0;
    for input in &inputs {
        let mut full_unknown = UnknownFields::default();
        let full = parse_full(input.as_bytes(), &mut full_unknown);
        let mut fast_unknown = UnknownFields::default();
        if let Some(fast) = parse_plain(input.as_bytes(), &mut fast_unknown) {
            fast_hits += 1;
            assert_eq!(Ok(fast), full, "{input}");
            assert_eq!(fast_unknown.names(), full_unknown.names(), "{input}");
        }
        assert_eq!(
            parse_vote(input.as_bytes(), &mut UnknownFields::default()),
            full,
            "{input}"
        );
    }
    assert!(
        fast_hits >= 2000,
        "the fast path took only {fast_hits} inputs"
    );
}

/// `-0` is 0 whichever parser reads the record (an unknown field sends it to the full one).
#[test]
fn negative_zero_means_zero_on_both_paths() {
    let plain =
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":-0,"CreationDate":"2022-01-01"}"#;
    let with_extra =
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","UserId":-0,"CreationDate":"2022-01-01","X":1}"#;
    assert_eq!(parse(plain).unwrap().user_id, Some(0));
    assert_eq!(parse(with_extra).unwrap().user_id, Some(0));
}

/// A small deterministic generator (xorshift), so the property test needs no crate and
/// fails the same way every run.
struct Rng(u64);

impl Rng {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from[(self.0 % from.len() as u64) as usize]
    }
}

/// Hostile records built from numbers, keys and escapes at the edges of the contract: the
/// fast path, when it answers, agrees with the full parser, and `parse_vote` always does.
#[test]
fn the_fast_path_agrees_with_the_full_parser_on_generated_hostile_records() {
    let numbers = [
        "0",
        "-0",
        "1",
        "-1",
        "007",
        "-007",
        "1.0",
        "-0.0",
        "1e3",
        "1E+2",
        "2e-1",
        "32767",
        "32768",
        "-32768",
        "2147483647",
        "2147483648",
        "999999999999999999",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551616",
        "1e400",
        "-",
        "+1",
        "0x1",
        ".5",
        "\"1\"",
        "\"-0\"",
        "\"007\"",
        "\"\"",
        "\" 1\"",
        "\"1 \"",
        "\"+1\"",
        "\"1e3\"",
        "\"\\u0031\"",
        "\"9223372036854775808\"",
        "null",
        "true",
        "[]",
        "{}",
        "\"\u{e9}\"",
    ];
    let dates = [
        "\"2022-01-01\"",
        "\"2022-01-01T10:30\"",
        "\"2022-01-01T10:30.5\"",
        "\"2022-01-01T10:30:00.1234567891\"",
        "\"2016-12-31T23:59:60Z\"",
        "\"0000-01-01\"",
        "\"0001-01-01T00:00:00+00:01\"",
        "\"9999-12-31T23:59:59-00:01\"",
        "\"2022-01-01T10:30:00\\u002B01:00\"",
        "\"2022-02-29\"",
        "\"2022-01-01t10:30z\"",
        "\"2022-01-01 10:30:00,5+0530\"",
        "20220101",
        "null",
        "\"\"",
    ];
    let keys = [
        "Id",
        "PostId",
        "VoteTypeId",
        "UserId",
        "BountyAmount",
        "CreationDate",
        "\\u0049d",
        "Post\\u0049d",
        "id",
        "Id ",
        "Extra",
        "",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut fast_hits = 0;
    for _ in 0..20_000 {
        let mut fields = vec![
            format!("\"Id\":{}", rng.pick(&numbers)),
            format!("\"PostId\":{}", rng.pick(&numbers)),
            format!("\"VoteTypeId\":{}", rng.pick(&numbers)),
            format!("\"CreationDate\":{}", rng.pick(&dates)),
        ];
        if rng.pick(&["a", "b"]) == "a" {
            fields.push(format!("\"UserId\":{}", rng.pick(&numbers)));
        }
        if rng.pick(&["a", "b", "c"]) == "a" {
            fields.push(format!("\"BountyAmount\":{}", rng.pick(&numbers)));
        }
        if rng.pick(&["a", "b", "c"]) == "a" {
            let value = rng.pick(&numbers);
            fields.push(format!("\"{}\":{value}", rng.pick(&keys)));
        }
        // Valid values often enough that acceptance is tested too.
        if rng.pick(&["a", "b"]) == "a" {
            fields[0] = "\"Id\":\"42\"".into();
            fields[1] = "\"PostId\":7".into();
            fields[2] = "\"VoteTypeId\":\"2\"".into();
        }
        let record = format!("{{{}}}", fields.join(","));
        let mut full_unknown = UnknownFields::default();
        let full = parse_full(record.as_bytes(), &mut full_unknown);
        let mut fast_unknown = UnknownFields::default();
        if let Some(fast) = parse_plain(record.as_bytes(), &mut fast_unknown) {
            fast_hits += 1;
            assert_eq!(Ok(fast), full, "{record}");
            assert_eq!(fast_unknown.names(), full_unknown.names(), "{record}");
        }
        assert_eq!(
            parse_vote(record.as_bytes(), &mut UnknownFields::default()),
            full,
            "{record}"
        );
    }
    assert!(
        fast_hits > 1000,
        "the fast path took only {fast_hits} records"
    );
}

#[test]
fn escaped_keys_and_values_are_understood() {
    let v =
        parse(r#"{"\u0049d":"1","PostId":"\u0031","VoteTypeId":"2","CreationDate":"2022-01-01"}"#)
            .unwrap();
    assert_eq!((v.id, v.post_id), (1, 1));
}

/// Unknown fields with plain values no longer send a record down the full parser: the fast
/// path takes it and reports the names as the full parser does; a nested value, an escaped
/// name or a repeated unknown name still goes to the full parser.
#[test]
fn unknown_fields_with_plain_values_take_the_fast_path() {
    let base = r#""Id":"5","PostId":"9","VoteTypeId":"2","CreationDate":"2022-01-03T00:00:00.000""#;
    for extra in [
        r#""Extra":"x""#,
        r#""Score":12,"Note":null"#,
        r#""Flag":true,"Other":false"#,
    ] {
        let record = format!("{{{extra},{base}}}");
        let mut fast = UnknownFields::default();
        let vote = parse_plain(record.as_bytes(), &mut fast);
        assert!(vote.is_some(), "{record}");
        let mut full = UnknownFields::default();
        assert_eq!(Ok(vote.unwrap()), parse_full(record.as_bytes(), &mut full));
        assert_eq!(fast.names(), full.names(), "{record}");
        assert!(!fast.names().is_empty());
    }
    for extra in [
        r#""Extra":{"a":1}"#,
        r#""Extra":[1]"#,
        r#""Extra":1.5"#,
        r#""Ex\u0074ra":"x""#,
        r#""Extra":"x","Extra":"y""#,
        r#""Extra":tru"#,
    ] {
        let record = format!("{{{extra},{base}}}");
        let mut fast = UnknownFields::default();
        assert!(
            parse_plain(record.as_bytes(), &mut fast).is_none(),
            "{record}"
        );
        assert!(fast.names().is_empty(), "{record}");
    }
}
