//! The issue's worked example and the real export.

use crate::harness::{test_data, Env};

const OUTLIERS: &str =
    r#"SELECT "Year", "WeekNumber", "VoteCount" FROM blog_analysis.outlier_weeks"#;

#[test]
fn sample_file_gives_the_six_outlier_weeks() {
    let env = Env::new();
    let sample = test_data("sample-votes.jsonl");
    let run = env.ingest(&[sample.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.line_for("sample-votes.jsonl").starts_with("loaded"));
    let weeks: Vec<(i64, i32, i64)> = env.with_db(|c| {
        let mut s = c.prepare(OUTLIERS).unwrap();
        s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    });
    assert_eq!(
        weeks,
        vec![
            (2022, 0, 1),
            (2022, 1, 3),
            (2022, 2, 3),
            (2022, 5, 1),
            (2022, 6, 1),
            (2022, 8, 1)
        ]
    );
}

#[test]
fn outliers_command_prints_the_view() {
    let env = Env::new();
    let sample = test_data("sample-votes.jsonl");
    assert_eq!(env.ingest(&[sample.to_str().unwrap()]).code, 0);
    let run = env.run(&["outliers"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["Year", "WeekNumber", "VoteCount"]
    );
    let body: Vec<Vec<&str>> = lines[2..8]
        .iter()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(body[0], ["2022", "0", "1"]);
    assert_eq!(body[1], ["2022", "1", "3"]);
    assert_eq!(body[5], ["2022", "8", "1"]);
    assert_eq!(lines[8], "(6 rows)");
}

#[test]
fn real_file_loads_every_vote_once_and_again_adds_nothing() {
    let env = Env::new();
    // The real export, zstd-compressed in the repository (votewatch reads .zst as it is).
    let real = test_data("votes.jsonl.zst");
    let run = env.ingest(&[real.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(env.votes(), 40_299);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.outlier_weeks"),
        162
    );
    let first = env.rows(&format!("{OUTLIERS} LIMIT 1"));
    assert_eq!(first, vec![vec!["BigInt(2017)", "Int(9)", "BigInt(1561)"]]);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    assert_eq!(l.counts, [40_299, 40_299, 0, 0, 0, 0, 0]);
    // UserId -1 and absent fields are kept as they came.
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.votes WHERE user_id IS NOT NULL"),
        2576
    );

    // The same content again, under another name: a duplicate file, nothing added.
    let copy = env.path("again.jsonl.zst");
    std::fs::copy(&real, &copy).unwrap();
    let run = env.ingest(&["again.jsonl.zst"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(env.votes(), 40_299);
    let l = env.last_ledger();
    assert_eq!(
        (l.status.as_str(), l.duplicate_of),
        ("duplicate_file", Some(1))
    );

    // Forced: loaded again, every row found already in the warehouse.
    let run = env.run(&["ingest", "--force", "again.jsonl.zst"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(env.votes(), 40_299);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    assert_eq!(l.counts, [40_299, 0, 0, 40_299, 0, 0, 0]);
}
