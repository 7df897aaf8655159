//! Exactly once: content seen before is not loaded again, a reused name with new content
//! is, and a crash at any moment leaves all of a file or none.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use crate::harness::{votes, BoundedOutput, Env, Lines, Run, PROCESS_LIMIT};

#[test]
fn same_content_under_another_name_is_a_duplicate_file() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 10));
    env.write("b.jsonl", votes(1, 10));
    let run = env.ingest(&["a.jsonl", "b.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(run.line_for("b.jsonl").starts_with("duplicate_file"));
    assert!(
        run.stdout.contains("was loaded before as ledger row 1"),
        "{}",
        run.stdout
    );
    let l = env.last_ledger();
    assert_eq!(
        (l.status.as_str(), l.duplicate_of),
        ("duplicate_file", Some(1))
    );
    assert_eq!(env.votes(), 10);
}

/// Issue 24: a large file (16 MiB or more) whose size matches a loaded arrival is hashed
/// before it is read; a re-sent copy is recorded as a duplicate without being parsed or
/// staged, with the ledger row the full read would have given it (records read, format,
/// unknown fields, the same reason).
#[test]
fn a_large_re_sent_file_is_recognised_before_it_is_read() {
    let env = Env::new();
    let lines: Vec<String> = (1..=200_000)
        .map(|i| {
            format!(
                r#"{{"Id":"{i}","PostId":"7","VoteTypeId":"2","Note":"x","CreationDate":"2022-01-03T00:00:00.000"}}"#
            )
        })
        .collect();
    let body = lines.join("\n");
    assert!(body.len() >= 16 << 20, "{}", body.len());
    env.write("big.jsonl", &body);
    env.write("again.jsonl", &body);
    // The same size, other content: read whole, and loaded (its Ids are new).
    env.write("other.jsonl", body.replace("\"Id\":\"1", "\"Id\":\"9"));
    let ingest = |files: &[&str]| {
        let out = env
            .command()
            .env("VOTEWATCH_LOG", "info")
            .arg("ingest")
            .args(files)
            .bounded_output()
            .expect("run votewatch");
        crate::harness::Run::from(out)
    };
    let first = ingest(&["big.jsonl"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stderr.contains("before reading"), "{}", first.stderr);
    let again = ingest(&["again.jsonl", "other.jsonl"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("recognised by its SHA-256 before reading"),
        "{}",
        again.stderr
    );
    assert_eq!(
        again.stderr.matches("before reading").count(),
        1,
        "{}",
        again.stderr
    );
    let ledger = env.rows(
        "SELECT file_name, status, coalesce(duplicate_of, 0)::VARCHAR, lines_read::VARCHAR, \
         format, unknown_fields::VARCHAR, coalesce(error, ''), sha256 \
         FROM blog_analysis.ingested_files ORDER BY id",
    );
    assert_eq!(
        ledger[0][..7],
        ["big.jsonl", "loaded", "0", "200000", "jsonl", "[Note]", ""]
    );
    let reason = format!(
        "same content (SHA-256 {}) was loaded before as ledger row 1",
        &ledger[0][7][..12]
    );
    assert_eq!(
        ledger[1][..7],
        [
            "again.jsonl",
            "duplicate_file",
            "1",
            "200000",
            "jsonl",
            "[Note]",
            reason.as_str()
        ]
    );
    assert_eq!(
        env.rows("SELECT file_name, status FROM blog_analysis.ingested_files WHERE id = 3"),
        [["other.jsonl", "loaded"]]
    );
}

#[test]
fn a_reused_name_with_new_content_is_a_new_file() {
    let env = Env::new();
    env.write("daily.jsonl", votes(1, 10));
    assert_eq!(env.ingest(&["daily.jsonl"]).code, 0);
    env.write("daily.jsonl", votes(11, 5));
    let run = env.ingest(&["daily.jsonl"]);
    assert_eq!(run.code, 0);
    assert!(
        run.line_for("daily.jsonl").starts_with("loaded"),
        "{}",
        run.stdout
    );
    assert_eq!(env.votes(), 15);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
        2
    );
}

#[test]
fn force_loads_seen_content_again_and_dedupes_rows() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 10));
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    let run = env.run(&["ingest", "--force", "a.jsonl"]);
    assert_eq!(run.code, 0);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    assert_eq!(l.counts, [10, 0, 0, 10, 0, 0, 0]);
    assert_eq!(env.votes(), 10);
}

#[test]
fn a_rejected_content_is_judged_again_when_it_returns() {
    let env = Env::new();
    env.write("f.jsonl", "bad\nbad\n");
    assert_eq!(env.ingest(&["f.jsonl"]).code, 1);
    assert_eq!(env.ingest(&["f.jsonl"]).code, 1);
    assert_eq!(env.last_ledger().status, "rejected");
}

#[test]
fn a_crash_just_before_commit_leaves_nothing_and_a_rerun_loads_all() {
    let env = Env::new();
    env.write("f.jsonl", format!("{}\nbad", votes(1, 1000)));
    let out = env
        .command()
        .env(votewatch::testing::failpoint::ENV, "before_commit")
        .args(["ingest", "f.jsonl"])
        .bounded_output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("failpoint before_commit"));
    assert_eq!(env.votes(), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
        0
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes"),
        0
    );
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(env.votes(), 1000);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes"),
        1
    );
}

/// kill -9 in the middle of a large load, at a moment the load itself announces (a failpoint
/// that stalls after the first chunk was staged), then at several later moments: each time the
/// warehouse holds all of the file or none of it, and a final run completes it exactly once.
#[test]
fn kill_9_mid_load_leaves_all_or_nothing() {
    let env = Env::new();
    let rows = 1_500_000u64;
    let mut out = std::io::BufWriter::new(std::fs::File::create(env.path("big.jsonl")).unwrap());
    votewatch::testing::synth::write_votes(
        &mut out,
        votewatch::testing::synth::Spec {
            rows,
            seed: 11,
            first_id: 0,
            repeat_share: 0.0,
        },
    )
    .unwrap();
    out.flush().unwrap();
    drop(out);

    // Killed while the load is certainly in flight: rows appended, nothing committed.
    let mut child = env
        .command()
        .env(votewatch::testing::failpoint::ENV, "mid_load")
        .args(["ingest", "big.jsonl"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = Lines::new(child.stderr.take().unwrap());
    stderr.wait_for("failpoint mid_load reached", PROCESS_LIMIT);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    assert_eq!(
        env.votes_if_any(),
        0,
        "rows of an uncommitted load are visible"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
        0
    );

    // Killed at other moments (whatever the load reached by then): all or nothing each time.
    for delay_ms in [50u64, 300, 700, 1200] {
        let mut child = env
            .command()
            .args(["ingest", "--force", "big.jsonl"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        if !env.warehouse().exists() {
            continue;
        }
        let votes = env.votes_if_any();
        assert!(
            votes == 0 || votes == rows as i64,
            "partial load after kill at {delay_ms} ms: {votes}"
        );
        if votes > 0 {
            let by_file = env.count("SELECT count(*) FROM blog_analysis.votes WHERE file_id NOT IN (SELECT id FROM blog_analysis.ingested_files WHERE status = 'loaded')");
            assert_eq!(by_file, 0, "votes without a loaded ledger row");
        }
    }
    let run = env.run(&["ingest", "big.jsonl"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(env.votes(), rows as i64);
    assert_eq!(
        env.count("SELECT count(DISTINCT id) FROM blog_analysis.votes"),
        rows as i64
    );
}

/// The warehouse's highest Id comes from the ledger (no scan of votes), but rows written by
/// something else above it are still seen: a later file carrying such an Id does not insert it
/// a second time.
#[test]
fn an_id_written_outside_votewatch_above_the_recorded_maximum_is_not_doubled() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 10));
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    env.with_db(|c| {
        c.execute_batch(
            "INSERT INTO blog_analysis.votes VALUES (500, 1, 2, NULL, NULL, TIMESTAMP '2022-01-03', 0)",
        )
        .unwrap()
    });
    env.write("b.jsonl", votes(495, 10));
    let run = env.ingest(&["b.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.votes WHERE id = 500"),
        1
    );
    assert_eq!(env.votes(), 20);
    let recorded = env.count("SELECT max(max_vote_id) FROM blog_analysis.ingested_files");
    assert_eq!(recorded, 504);
}

/// A file whose new rows are interleaved with many repeats of rows the warehouse holds and
/// many rejects: its new rows reach `votes` in several segments (each fold of staged rows and
/// each batch of held-back rejects ends one), and the outcome is the one computed from the
/// lines: every new row once, every repeat counted, every reject stored.
#[test]
fn new_rows_between_many_repeats_and_rejects_load_whole() {
    let env = Env::new();
    env.write("old.jsonl", votes(1, 100_000));
    let mut lines = Vec::new();
    for k in 0..100_000i64 {
        lines.push(crate::harness::vote(200_000 + k, "2023-05-01T00:00:00"));
        lines.push(crate::harness::vote(k + 1, "2022-01-03T00:00:00.000"));
        if k % 10 == 0 {
            lines.push(format!(r#"{{"Id":"bad{k}"}}"#));
        }
    }
    env.write("mixed.jsonl", lines.join("\n"));
    let run = env.ingest(&["old.jsonl", "mixed.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.status, "partial");
    // [lines, inserted, duplicates, already, conflicting, rejected, blank]
    assert_eq!(l.counts, [210_000, 100_000, 0, 100_000, 0, 10_000, 0]);
    assert_eq!(env.votes(), 200_000);
    assert_eq!(
        env.count("SELECT count(DISTINCT id) FROM blog_analysis.votes WHERE id >= 200000"),
        100_000
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes"),
        10_000
    );
    assert_eq!(
        env.count("SELECT sum(vote_count) FROM blog_analysis.weekly_votes"),
        200_000
    );
}

/// DuckDB failing in the middle of a segment (the statement that reads the router's rows)
/// ends the load cleanly: the router, blocked on a full channel, is released, the process
/// ends within its limit, the file is recorded as not loaded and no row of it stays.
#[test]
fn a_segment_that_fails_mid_stream_ends_the_load_without_a_hang() {
    let env = Env::new();
    env.write("big.jsonl", votes(1, 300_000));
    let run = Run::from(
        env.command()
            .args(["ingest", "big.jsonl"])
            .env("VOTEWATCH_FAILPOINT", "stream_error")
            .bounded_output()
            .expect("run votewatch"),
    );
    assert_ne!(run.code, 0, "{}", run.stdout);
    assert!(
        format!("{}{}", run.stdout, run.stderr).contains("stream_error"),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(env.votes_if_any(), 0);
    // The warehouse is whole: the same file loads afterwards.
    let again = env.ingest(&["big.jsonl"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert_eq!(env.votes(), 300_000);
}
