use super::*;

fn parse(s: &str) -> Result<Post, RejectReason> {
    parse_post(s.as_bytes(), &mut UnknownFields::default())
}

fn reason(s: &str) -> String {
    parse(s).unwrap_err().to_string()
}

#[test]
fn a_post_of_the_export_is_typed_field_by_field() {
    let p = parse(
        r#"{"Id":"7","PostTypeId":"1","CreationDate":"2017-02-28T20:43:26.867","Score":"-3","ViewCount":"63","Body":"<p>hi</p>","OwnerUserId":"-1","LastActivityDate":"2017-03-11T20:43:26.000","Title":"<b>How</b>?","Tags":"<docker>","AnswerCount":"1","CommentCount":"0","ContentLicense":"CC BY-SA 3.0"}"#,
    )
    .unwrap();
    assert_eq!(p.id(), 7);
    assert_eq!(p.int(1), Some(1));
    assert_eq!(p.int(5), Some(-3), "a negative score is a score");
    assert_eq!(p.int(8), Some(-1), "the Community user is -1");
    assert_eq!(
        p.text(12),
        Some("<b>How</b>?"),
        "HTML in a title is kept as text"
    );
    assert_eq!(p.int(3), None, "absent ParentId");
    let created = parse_timestamp("2017-02-28T20:43:26.867").unwrap();
    assert_eq!(p.int(CREATION_DATE), Some(created));
    assert!(p.int(LAST_ACTIVITY_DATE).unwrap() > created);
}

#[test]
fn every_rule_has_its_reason() {
    let base = r#""Id":"1","PostTypeId":"2","CreationDate":"2020-01-01T00:00:00""#;
    let with = |extra: &str| format!("{{{base},{extra}}}");
    let cases = [
        (
            r#"{"PostTypeId":"1","CreationDate":"2020-01-01"}"#.to_string(),
            "missing Id",
        ),
        (
            r#"{"Id":"1","CreationDate":"2020-01-01"}"#.to_string(),
            "missing PostTypeId",
        ),
        (
            r#"{"Id":"1","PostTypeId":"1"}"#.to_string(),
            "missing CreationDate",
        ),
        (
            r#"{"Id":"0","PostTypeId":"1","CreationDate":"2020-01-01"}"#.to_string(),
            "Id out of range (0; must be > 0)",
        ),
        (
            with(r#""LastActivityDate":"2020-13-01""#),
            "bad date in LastActivityDate",
        ),
        (
            with(r#""ViewCount":"-4""#),
            "ViewCount out of range (-4; must be between 0 and 2147483647)",
        ),
        (with(r#""Score":"99999999999""#), "Score out of range"),
        (with(r#""Title":5"#), "Title not a string (found 5)"),
        (with(r#""Score":"ten""#), "Score not an integer"),
        (with(r#""Id":"2""#), "field Id appears twice"),
        ("[1]".to_string(), "not a JSON object (found an array)"),
        ("{\"Id\":".to_string(), "not JSON"),
    ];
    for (record, want) in cases {
        let got = reason(&record);
        assert!(got.starts_with(want), "{record}: {got}");
    }
}

#[test]
fn unknown_fields_are_named_and_empty_values_are_absent() {
    let mut unknown = UnknownFields::default();
    let p = parse_post(
        br#"{"Id":"3","PostTypeId":"1","CreationDate":"2020-01-01","Extra":"x","ClosedDate":"","Score":null,"Body":""}"#,
        &mut unknown,
    )
    .unwrap();
    assert_eq!(unknown.names(), vec!["Extra".to_string()]);
    assert_eq!(p.int(17), None);
    assert_eq!(p.int(5), None);
    assert_eq!(p.text(7), Some(""), "an empty body is a body");
}

#[test]
fn the_fields_are_the_exports_in_table_order() {
    assert_eq!(FIELDS[ID].name, "Id");
    assert_eq!(FIELDS[CREATION_DATE].name, "CreationDate");
    assert_eq!(FIELDS[LAST_ACTIVITY_DATE].name, "LastActivityDate");
    let names: std::collections::BTreeSet<_> = FIELDS.iter().map(|f| f.name).collect();
    assert_eq!(names.len(), FIELDS.len());
}
