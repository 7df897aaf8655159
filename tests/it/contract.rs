//! One test per rule of the data contract, through the real executable.

use crate::harness::{vote, votes, Env};

#[test]
fn blank_lines_are_skipped_and_counted() {
    let env = Env::new();
    env.write(
        "f.jsonl",
        format!(
            "{}\n\n   \n{}\n",
            vote(1, "2022-01-03"),
            vote(2, "2022-01-03")
        ),
    );
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    assert_eq!(l.counts, [4, 2, 0, 0, 0, 0, 2]);
}

#[test]
fn bad_lines_are_rejected_with_line_number_and_reason() {
    let env = Env::new();
    let lines = [
        vote(1, "2022-01-03"),
        "{not json".to_string(),
        r#"["an","array"]"#.to_string(),
        r#"{"PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03"}"#.to_string(),
        vote(2, "2022-02-30"),
        r#"{"Id":"x","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03"}"#.to_string(),
        r#"{"Id":"0","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03"}"#.to_string(),
    ];
    // Enough good lines to stay under the 50% reject threshold.
    let body = format!("{}\n{}", lines.join("\n"), votes(100, 10));
    env.write("f.jsonl", body);
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.line_for("f.jsonl").starts_with("partial"),
        "{}",
        run.stdout
    );
    let l = env.last_ledger();
    assert_eq!(l.status, "partial");
    assert_eq!(l.counts, [17, 11, 0, 0, 0, 6, 0]);
    assert!(l.error.contains("line 2: not JSON"), "{}", l.error);
    let rejects = env.rows(
        "SELECT line_number::VARCHAR, reason, raw FROM blog_analysis.rejected_votes ORDER BY line_number",
    );
    let got: Vec<(&str, &str)> = rejects
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(got[0].0, "2");
    assert!(got[0].1.starts_with("not JSON"), "{}", got[0].1);
    assert_eq!(got[1], ("3", "not a JSON object (found an array)"));
    assert_eq!(got[2], ("4", "missing Id"));
    assert_eq!(
        got[3],
        (
            "5",
            r#"bad date in CreationDate ("2022-02-30": no such calendar date)"#
        )
    );
    assert_eq!(got[4], ("6", r#"Id not an integer (found "x")"#));
    assert_eq!(got[5], ("7", "Id out of range (0; must be > 0)"));
    assert_eq!(rejects[0][2], "{not json");
}

#[test]
fn integers_as_numbers_or_strings_and_optional_fields() {
    let env = Env::new();
    env.write(
        "f.jsonl",
        concat!(
            r#"{"Id":1,"PostId":2,"VoteTypeId":8,"UserId":-1,"BountyAmount":50,"CreationDate":"2022-01-03T10:00:00+02:00"}"#,
            "\n",
            r#"{"Id":"2","PostId":"2","VoteTypeId":"2","UserId":"","BountyAmount":null,"CreationDate":"2022-01-03"}"#,
        ),
    );
    assert_eq!(env.ingest(&["f.jsonl"]).code, 0);
    let rows = env.rows(
        "SELECT id::VARCHAR, user_id::VARCHAR, bounty_amount::VARCHAR, creation_date::VARCHAR \
         FROM blog_analysis.votes ORDER BY id",
    );
    assert_eq!(
        rows,
        vec![
            vec!["1", "-1", "50", "2022-01-03 08:00:00"],
            vec!["2", "NULL", "NULL", "2022-01-03 00:00:00"],
        ]
    );
}

#[test]
fn unknown_fields_are_accepted_and_reported() {
    let env = Env::new();
    env.write(
        "f.jsonl",
        r#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03","Score":3,"Tags":["a"]}"#,
    );
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 0);
    assert!(
        run.stdout.contains("unknown fields: Score, Tags"),
        "{}",
        run.stdout
    );
    let l = env.last_ledger();
    assert_eq!(
        (l.status.as_str(), l.unknown_fields.as_str()),
        ("loaded", "Score,Tags")
    );
    assert_eq!(env.votes(), 1);
}

#[test]
fn first_occurrence_wins_within_a_file() {
    let env = Env::new();
    let body = [
        vote(5, "2022-01-03"),
        vote(3, "2022-01-03"),
        vote(5, "2022-01-03"), // exact repeat: duplicate
        vote(5, "2022-01-10"), // other values: conflicting
        vote(3, "2022-01-03"), // exact repeat: duplicate
        vote(7, "2022-01-03"),
    ]
    .join("\n");
    env.write("f.jsonl", body);
    assert_eq!(env.ingest(&["f.jsonl"]).code, 0);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    assert_eq!(l.counts, [6, 3, 2, 0, 1, 0, 0]);
    assert_eq!(
        env.rows("SELECT id::VARCHAR, creation_date::VARCHAR FROM blog_analysis.votes ORDER BY id"),
        vec![
            vec!["3", "2022-01-03 00:00:00"],
            vec!["5", "2022-01-03 00:00:00"],
            vec!["7", "2022-01-03 00:00:00"],
        ]
    );
}

#[test]
fn first_occurrence_wins_across_files() {
    let env = Env::new();
    env.write(
        "a.jsonl",
        [vote(1, "2022-01-03"), vote(2, "2022-01-03")].join("\n"),
    );
    env.write(
        "b.jsonl",
        [
            vote(1, "2022-01-03"),
            vote(2, "2023-05-05"),
            vote(3, "2022-01-03"),
        ]
        .join("\n"),
    );
    let run = env.ingest(&["a.jsonl", "b.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.counts, [3, 1, 0, 1, 1, 0, 0]);
    assert_eq!(
        env.rows("SELECT id::VARCHAR, creation_date::VARCHAR, file_id::VARCHAR FROM blog_analysis.votes ORDER BY id"),
        vec![
            vec!["1", "2022-01-03 00:00:00", "1"],
            vec!["2", "2022-01-03 00:00:00", "1"],
            vec!["3", "2022-01-03 00:00:00", "2"],
        ]
    );
}

#[test]
fn over_the_reject_share_the_file_is_rejected_whole_but_rejects_are_kept() {
    let env = Env::new();
    // 3 bad of 5 non-blank lines: 60% > 50%.
    env.write("f.jsonl", format!("{}\nbad\nbad\nbad", votes(1, 2)));
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("3 of 5 records rejected (60.0%), over the limit of 50%"),
        "{}",
        run.stdout
    );
    assert_eq!(env.votes(), 0);
    let l = env.last_ledger();
    assert_eq!(l.status, "rejected");
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes WHERE file_id = 1"),
        3
    );
}

#[test]
fn exactly_the_reject_share_is_still_loaded() {
    let env = Env::new();
    env.write("f.jsonl", format!("{}\nbad\nbad", votes(1, 2)));
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(env.last_ledger().status, "partial");
    assert_eq!(env.votes(), 2);
}

#[test]
fn the_reject_share_comes_from_the_config() {
    let env = Env::new();
    env.write("strict.toml", "[ingest]\nmax_reject_share = 0.1\n");
    env.write("f.jsonl", format!("{}\nbad", votes(1, 5)));
    let run = env.run(&["ingest", "--config", "strict.toml", "f.jsonl"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(env.last_ledger().status, "rejected");
    assert_eq!(env.votes(), 0);
}

/// Routing (straight in, or staged), folding of exact repeats and the SQL resolution against a
/// plain model of the contract: random files whose Ids repeat inside and across files, in any
/// order, with exact repeats and conflicting values, loaded one after the other. The warehouse
/// and every ledger counter must equal what the model says, file by file.
#[test]
fn resolution_matches_a_plain_model_of_first_wins() {
    use std::collections::HashMap;
    let env = Env::new();
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    // The model: the warehouse as Id -> PostId.
    let mut warehouse: HashMap<i64, i64> = HashMap::new();
    for file in 0..7 {
        // The last file re-sends Ids the warehouse mostly has, in random order: more distinct
        // staged rows than the fold holds at once (64Ki), so it is flushed mid-file.
        let (n_rows, shared) = if file == 6 {
            (200_000, 60_000)
        } else {
            (3000, 800)
        };
        let mut rows: Vec<(i64, i64)> = Vec::new();
        for _ in 0..n_rows {
            let id = match next(4) {
                // A run of new, rising Ids (the path that skips staging).
                0 if file < 6 => 10_000 * (file + 1) + rows.len() as i64,
                // Ids shared with other files and with itself.
                _ => 1 + next(shared) as i64,
            };
            rows.push((id, 1 + next(2) as i64));
        }
        // Long runs of one exact row, to be folded.
        let (id, post) = rows[0];
        rows.extend(std::iter::repeat_n((id, post), 500));
        let body: Vec<String> = rows
            .iter()
            .map(|(id, post)| {
                format!(r#"{{"Id":"{id}","PostId":"{post}","VoteTypeId":"2","CreationDate":"2022-01-03"}}"#)
            })
            .collect();
        let name = format!("f{file}.jsonl");
        env.write(&name, body.join("\n"));

        let mut first: HashMap<i64, i64> = HashMap::new();
        let (mut inserted, mut dups, mut already, mut conflicting) = (0, 0, 0, 0);
        for &(id, post) in &rows {
            if let Some(&f) = first.get(&id) {
                if f == post {
                    dups += 1
                } else {
                    conflicting += 1
                }
                continue;
            }
            first.insert(id, post);
            match warehouse.get(&id) {
                Some(&w) if w == post => already += 1,
                Some(_) => conflicting += 1,
                None => inserted += 1,
            }
        }
        for (id, post) in first {
            warehouse.entry(id).or_insert(post);
        }
        let run = env.ingest(&[&name]);
        assert_eq!(run.code, 0, "{}", run.stdout);
        let l = env.last_ledger();
        assert_eq!(
            l.counts,
            [
                rows.len() as i64,
                inserted,
                dups,
                already,
                conflicting,
                0,
                0
            ],
            "{name}"
        );
    }
    let mut want: Vec<Vec<String>> = warehouse
        .iter()
        .map(|(id, post)| vec![id.to_string(), post.to_string()])
        .collect();
    want.sort_by_key(|r| r[0].parse::<i64>().unwrap());
    assert_eq!(
        env.rows("SELECT id::VARCHAR, post_id::VARCHAR FROM blog_analysis.votes ORDER BY id"),
        want
    );
}
