//! One test per input kind the data contract accepts, and the clear statuses of those it
//! does not.

use std::io::Write;

use crate::harness::{gzip, vote, votes, Env};

#[test]
fn json_lines_under_every_accepted_name() {
    for name in ["a.jsonl", "b.ndjson", "c.json", "d.JSONL"] {
        let env = Env::new();
        env.write(name, votes(1, 3));
        let run = env.ingest(&[name]);
        assert_eq!(run.code, 0, "{name}: {}", run.stdout);
        let l = env.last_ledger();
        assert_eq!(
            (l.status.as_str(), l.format.as_str()),
            ("loaded", "jsonl"),
            "{name}"
        );
        assert_eq!(env.votes(), 3, "{name}");
    }
}

#[test]
fn gzip_and_zstd_files_are_decompressed_and_hashed_as_stored() {
    let env = Env::new();
    let plain = votes(1, 1000);
    let gz = gzip(plain.as_bytes());
    env.write("a.jsonl.gz", &gz);
    env.write(
        "b.jsonl.zst",
        zstd::encode_all(votes(1001, 1000).as_bytes(), 3).unwrap(),
    );
    let run = env.ingest(&["a.jsonl.gz", "b.jsonl.zst"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(env.votes(), 2000);
    let rows = env.rows("SELECT format, sha256 FROM blog_analysis.ingested_files ORDER BY id");
    assert_eq!(rows[0][0], "jsonl+gzip");
    assert_eq!(rows[1][0], "jsonl+zstd");
    use sha2::Digest;
    assert_eq!(rows[0][1], format!("{:x}", sha2::Sha256::digest(&gz)));
}

#[test]
fn crlf_bom_and_no_final_newline() {
    let env = Env::new();
    let body = format!(
        "\u{feff}{}\r\n\r\n{}",
        vote(1, "2022-01-03"),
        vote(2, "2022-01-04")
    );
    env.write("f.jsonl", body);
    let run = env.ingest(&["f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    assert_eq!(l.counts, [3, 2, 0, 0, 0, 0, 1]);
}

#[test]
fn a_json_array_is_accepted_and_its_rejects_name_the_element() {
    let env = Env::new();
    let body = format!(
        "[\n  {},\n  {},\n  {{\"Id\":\"3\"}},\n  {}\n]\n",
        vote(1, "2022-01-03"),
        vote(2, "2022-01-03"),
        vote(4, "2022-01-03")
    );
    env.write("old-dump.json", body);
    let run = env.ingest(&["old-dump.json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(
        (l.status.as_str(), l.format.as_str()),
        ("partial", "json-array")
    );
    assert_eq!(l.counts, [4, 3, 0, 0, 0, 1, 0]);
    assert!(
        l.error.contains("element 2 (line 4): missing PostId"),
        "{}",
        l.error
    );
    assert_eq!(
        env.rows("SELECT element_index::VARCHAR, line_number::VARCHAR, reason FROM blog_analysis.rejected_votes"),
        vec![vec!["2", "4", "missing PostId"]]
    );
}

#[test]
fn a_compressed_json_array_on_one_line() {
    let env = Env::new();
    let body = format!("[{},{}]", vote(1, "2022-01-03"), vote(2, "2022-01-03"));
    env.write("dump.json.gz", gzip(body.as_bytes()));
    assert_eq!(env.ingest(&["dump.json.gz"]).code, 0);
    assert_eq!(env.last_ledger().format, "json-array+gzip");
    assert_eq!(env.votes(), 2);
}

#[test]
fn an_empty_file_is_rejected_with_a_clear_reason() {
    let env = Env::new();
    env.write("empty.jsonl", "");
    env.write("blank.jsonl", "\n\n  \n");
    let run = env.ingest(&["empty.jsonl", "blank.jsonl"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout.contains("empty.jsonl: empty file (0 bytes)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("blank.jsonl: no records"),
        "{}",
        run.stdout
    );
    assert_eq!(env.last_ledger().status, "rejected");
}

#[test]
fn a_binary_file_is_rejected_not_a_crash() {
    let env = Env::new();
    let noise: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    env.write("image.json", noise);
    let run = env.ingest(&["image.json"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let l = env.last_ledger();
    assert_eq!(l.status, "rejected");
    assert!(l.error.contains("records rejected"), "{}", l.error);
    assert_eq!(env.votes(), 0);
}

#[test]
fn invalid_utf8_is_rejected_per_line() {
    let env = Env::new();
    let mut body = votes(1, 3).into_bytes();
    body.extend_from_slice(b"\n{\"Id\":\"9\xff\"}");
    env.write("f.jsonl", body);
    assert_eq!(env.ingest(&["f.jsonl"]).code, 0);
    let l = env.last_ledger();
    assert_eq!(l.status, "partial");
    assert!(
        l.error.contains("line 4: invalid UTF-8 at byte 8"),
        "{}",
        l.error
    );
}

#[test]
fn an_overlong_line_is_rejected_and_cut() {
    let env = Env::new();
    env.write(
        "small.toml",
        "[ingest]\nmax_record_bytes = 200\nreject_keep_bytes = 20\n",
    );
    let long = format!(r#"{{"Id":"2","Pad":"{}"}}"#, "x".repeat(5000));
    env.write(
        "f.jsonl",
        format!(
            "{}\n{long}\n{}",
            vote(1, "2022-01-03"),
            vote(3, "2022-01-03")
        ),
    );
    let run = env.run(&["ingest", "--config", "small.toml", "f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(env.votes(), 2);
    let r = env.rows("SELECT line_number::VARCHAR, reason, raw, raw_truncated::VARCHAR FROM blog_analysis.rejected_votes");
    assert_eq!(
        r,
        vec![vec![
            "2".to_string(),
            format!("record is {} bytes, over the 200-byte limit", long.len()),
            long[..20].to_string(),
            "true".to_string()
        ]]
    );
}

#[test]
fn a_gz_name_without_gzip_content_fails_with_its_reason() {
    let env = Env::new();
    env.write("fake.jsonl.gz", votes(1, 2));
    let run = env.ingest(&["fake.jsonl.gz"]);
    assert_eq!(run.code, 1);
    assert!(run.stdout.contains("fake.jsonl.gz: cannot read fake.jsonl.gz: name ends in .gz but the content is not gzip"), "{}", run.stdout);
    assert_eq!(env.last_ledger().status, "failed");
}

#[test]
fn a_truncated_gzip_fails_and_loads_nothing() {
    let env = Env::new();
    let gz = gzip(votes(1, 5000).as_bytes());
    env.write("cut.jsonl.gz", &gz[..gz.len() / 2]);
    let run = env.ingest(&["cut.jsonl.gz"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.status, "failed");
    assert!(
        l.error.starts_with("cannot read cut.jsonl.gz after"),
        "{}",
        l.error
    );
    assert_eq!(env.votes(), 0);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes"),
        0
    );
}

#[test]
fn a_missing_file_fails_and_the_next_file_still_loads() {
    let env = Env::new();
    env.write("ok.jsonl", votes(1, 2));
    let run = env.ingest(&["nope.jsonl", "ok.jsonl"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("nope.jsonl: cannot read nope.jsonl: No such file"),
        "{}",
        run.stdout
    );
    assert!(run.line_for("ok.jsonl").starts_with("loaded"));
    assert_eq!(env.votes(), 2);
}

#[test]
fn a_large_file_streams_through_many_chunks() {
    let env = Env::new();
    let mut out = std::io::BufWriter::new(std::fs::File::create(env.path("big.jsonl")).unwrap());
    let repeats = votewatch::testing::synth::write_votes(
        &mut out,
        votewatch::testing::synth::Spec {
            rows: 300_000,
            seed: 3,
            first_id: 0,
            repeat_share: 0.01,
        },
    )
    .unwrap();
    out.flush().unwrap();
    drop(out);
    assert_eq!(env.ingest(&["big.jsonl"]).code, 0);
    let l = env.last_ledger();
    assert_eq!(l.counts[0], 300_000);
    assert_eq!(l.counts[1], 300_000 - repeats as i64);
    assert_eq!(l.counts[2], repeats as i64);
    assert_eq!(env.votes(), 300_000 - repeats as i64);
    assert_eq!(
        env.count("SELECT count(DISTINCT id) FROM blog_analysis.votes"),
        env.votes()
    );
}

#[test]
fn a_fifo_or_folder_is_refused_without_blocking() {
    let env = Env::new();
    let status = std::process::Command::new("mkfifo")
        .arg(env.path("pipe.jsonl"))
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir(env.path("dir.jsonl")).unwrap();
    let run = env.ingest(&["pipe.jsonl", "dir.jsonl"]);
    assert_eq!(run.code, 1);
    assert!(
        run.stdout
            .contains("pipe.jsonl: cannot read pipe.jsonl: not a regular file (a FIFO)"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("dir.jsonl: cannot read dir.jsonl: not a regular file (a directory)"),
        "{}",
        run.stdout
    );
}
