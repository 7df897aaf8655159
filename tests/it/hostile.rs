//! Hostile input, as an attacker or a careless supplier would send it: every file gets a
//! clear status and reason, nothing is lost or doubled, and memory stays bounded whatever the
//! file's size, shape or compression ratio (peak RSS read from the log of the load).

use std::io::Write;

use crate::harness::{gzip, vote, votes, BoundedOutput, Env, Run};

/// The memory goal for any input.
const MAX_RSS_MB: u64 = 256;

/// `votewatch ingest` with the per-file log line, which carries the peak RSS.
fn ingest_logged(env: &Env, args: &[&str]) -> Run {
    let mut all = vec!["ingest"];
    all.extend_from_slice(args);
    Run::from(
        env.command()
            .env("VOTEWATCH_LOG", "info")
            .args(&all)
            .bounded_output()
            .unwrap(),
    )
}

fn peak_rss_mb(run: &Run) -> u64 {
    run.stderr
        .split("peak_rss_mb=")
        .nth(1)
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no peak_rss_mb in the log:\n{}", run.stderr))
}

#[test]
fn files_of_empty_records_are_rejected_in_bounded_memory() {
    let env = Env::new();
    env.write("lf.jsonl", b"\n".repeat(32 << 20));
    env.write("crlf.jsonl", b"\r\n".repeat(16 << 20));
    env.write(
        "commas.json",
        [&b"["[..], &b",".repeat(16 << 20), b"]"].concat(),
    );
    for (name, records, reason) in [
        ("lf.jsonl", 32u64 << 20, "no records"),
        ("crlf.jsonl", 16 << 20, "no records"),
        ("commas.json", (16 << 20) + 1, "records rejected"),
    ] {
        let run = ingest_logged(&env, &[name]);
        assert_eq!(run.code, 1, "{name}: {}{}", run.stdout, run.stderr);
        let l = env.last_ledger();
        assert_eq!(l.status, "rejected", "{name}");
        assert_eq!(l.counts[0] as u64, records, "{name}");
        assert!(l.error.contains(reason), "{name}: {}", l.error);
        let peak = peak_rss_mb(&run);
        assert!(peak <= MAX_RSS_MB, "{name}: peak RSS {peak} MB");
    }
}

#[test]
fn a_gzip_bomb_is_rejected_with_its_reason_and_a_ledger_row() {
    let env = Env::new();
    // 2,048 gzip members of 1 MiB of newlines: about 2 MB stored, 2 GiB decompressed.
    let member = gzip(&vec![b'\n'; 1 << 20]);
    env.write("bomb.jsonl.gz", member.repeat(2048));
    let run = ingest_logged(&env, &["bomb.jsonl.gz"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let l = env.last_ledger();
    assert_eq!(l.status, "rejected");
    assert!(l.error.contains("decompression bomb"), "{}", l.error);
    assert!(l.error.contains("max_expansion_ratio"), "{}", l.error);
    assert!(peak_rss_mb(&run) <= MAX_RSS_MB);

    // With the ratio guard off, the size guard stops it.
    env.write(
        "guard.toml",
        "[ingest]\nmax_expansion_ratio = 0\nmax_decompressed_bytes = 67108864\n",
    );
    let run = ingest_logged(&env, &["--config", "guard.toml", "bomb.jsonl.gz"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let l = env.last_ledger();
    assert_eq!(l.status, "rejected");
    assert!(
        l.error
            .contains("decompresses to more than 67108864 bytes (ingest.max_decompressed_bytes)"),
        "{}",
        l.error
    );
    assert!(peak_rss_mb(&run) <= MAX_RSS_MB);
}

#[test]
fn many_bad_lines_are_all_counted_but_only_the_first_stored() {
    let env = Env::new();
    env.write("bad.jsonl", b"x\n".repeat(2_000_000));
    let run = ingest_logged(&env, &["bad.jsonl"]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    let l = env.last_ledger();
    assert_eq!(l.status, "rejected");
    assert_eq!(l.counts[5], 2_000_000);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes"),
        10_000
    );
    assert_eq!(
        env.count("SELECT max(line_number) FROM blog_analysis.rejected_votes"),
        10_000
    );
    assert!(peak_rss_mb(&run) <= MAX_RSS_MB);

    env.write("few.toml", "[ingest]\nmax_stored_rejects = 3\n");
    env.write("some-bad.jsonl", format!("{}\nx\ny\nz\nw\n", votes(1, 10)));
    let run = env.run(&["ingest", "--config", "few.toml", "some-bad.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(env.last_ledger().counts[5], 4);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes WHERE file_id = 2"),
        3
    );
}

/// A compact array puts every element on line 1: repeats are still resolved by position, so
/// the first occurrence wins for every Id, the same way on every run.
#[test]
fn first_occurrence_wins_inside_a_one_line_json_array() {
    let env = Env::new();
    // A high Id first, so that every row of the array is staged and resolved in SQL.
    env.write("high.jsonl", vote(1_000_000_000, "2022-01-03"));
    assert_eq!(env.ingest(&["high.jsonl"]).code, 0);
    let n = 20_000;
    let with_post = |id: i64, post: i64| {
        format!(r#"{{"Id":"{id}","PostId":"{post}","VoteTypeId":"2","CreationDate":"2022-01-03"}}"#)
    };
    let firsts = (1..=n).map(|i| with_post(i, 1));
    let seconds = (1..=n).rev().map(|i| with_post(i, 2));
    let body = format!("[{}]", firsts.chain(seconds).collect::<Vec<_>>().join(","));
    env.write("compact.json", body);
    let run = env.ingest(&["compact.json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.counts[1], n);
    assert_eq!(l.counts[4], n, "the later values are conflicts");
    assert_eq!(
        env.count(
            "SELECT count(*) FROM blog_analysis.votes WHERE post_id <> 1 AND id < 1000000000"
        ),
        0,
        "a later occurrence won"
    );
}

#[test]
fn the_name_decides_json_lines_or_array() {
    let env = Env::new();
    // A .jsonl file whose first line is an array: JSON lines, that line one bad record.
    let array_line = format!("[{},{}]", vote(100, "2022-01-03"), vote(101, "2022-01-03"));
    env.write(
        "lines.jsonl",
        format!(
            "{array_line}\n{}\n{}\n",
            vote(1, "2022-01-03"),
            vote(2, "2022-01-03")
        ),
    );
    let run = env.ingest(&["lines.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!((l.status.as_str(), l.format.as_str()), ("partial", "jsonl"));
    assert!(
        l.error
            .contains("line 1: not a JSON object (found an array)"),
        "{}",
        l.error
    );
    // A .json array after 100,000 blank lines is still an array.
    env.write(
        "late.json",
        format!(
            "{}[{}]\n",
            "\n".repeat(100_000),
            votes(10, 3).replace('\n', ",")
        ),
    );
    let run = env.ingest(&["late.json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(
        (l.status.as_str(), l.format.as_str()),
        ("loaded", "json-array")
    );
    assert_eq!(env.votes(), 5);
}

#[test]
fn a_record_cannot_forge_its_reject_reason() {
    let env = Env::new();
    env.write(
        "forged.jsonl",
        format!("{}\n\u{0}votewatch-structure:all is well\n", votes(1, 3)),
    );
    let run = env.ingest(&["forged.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let reasons = env.rows("SELECT reason FROM blog_analysis.rejected_votes");
    assert_eq!(reasons, vec![vec!["binary data (NUL byte at byte 0)"]]);
}

#[test]
fn a_crlf_line_of_exactly_the_bound_is_loaded() {
    let env = Env::new();
    env.write(
        "small.toml",
        "[ingest]\nmax_record_bytes = 200\nreject_keep_bytes = 100\n",
    );
    let padded = |id: i64, len: usize| {
        let v = vote(id, "2022-01-03");
        format!("{}{}}}", &v[..v.len() - 1], " ".repeat(len - v.len()))
    };
    let (fits, over) = (padded(1, 200), padded(2, 201));
    assert_eq!((fits.len(), over.len()), (200, 201));
    env.write(
        "f.jsonl",
        format!("{fits}\r\n{over}\r\n{}\r\n", vote(3, "2022-01-03")),
    );
    let run = env.run(&["ingest", "--config", "small.toml", "f.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        env.rows("SELECT id::VARCHAR FROM blog_analysis.votes ORDER BY id"),
        vec![vec!["1"], vec!["3"]]
    );
    assert_eq!(
        env.rows("SELECT reason FROM blog_analysis.rejected_votes"),
        vec![vec!["record is 201 bytes, over the 200-byte limit"]]
    );
}

#[test]
fn a_trailing_comma_in_an_array_is_a_reject() {
    let env = Env::new();
    env.write(
        "t.json",
        format!("[{},{},]", vote(1, "2022-01-03"), vote(2, "2022-01-03")),
    );
    let run = env.ingest(&["t.json"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let l = env.last_ledger();
    assert_eq!(l.status, "partial");
    assert_eq!(l.counts[..2], [3, 2]);
    assert!(
        l.error
            .contains("element 2 (line 1): not JSON: empty array element"),
        "{}",
        l.error
    );
}

#[test]
fn compression_edge_cases() {
    let env = Env::new();
    // A zstd stream that starts with a skippable frame is valid zstd.
    let mut zst = vec![0x50, 0x2a, 0x4d, 0x18, 4, 0, 0, 0, 1, 2, 3, 4];
    zst.extend(zstd::encode_all(votes(1, 3).as_bytes(), 3).unwrap());
    env.write("skip.jsonl.zst", zst);
    let run = env.ingest(&["skip.jsonl.zst"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(env.votes(), 3);

    // A 0-byte compressed file is an empty file.
    for name in ["empty.json.gz", "empty.jsonl.gz", "empty.jsonl.zst"] {
        env.write(name, "");
        let run = env.ingest(&[name]);
        assert_eq!(run.code, 1);
        let l = env.last_ledger();
        assert_eq!(
            (l.status.as_str(), l.error.as_str()),
            ("rejected", "empty file (0 bytes)"),
            "{name}"
        );
    }

    // gzip data under a plain name says what to do.
    env.write("packed.jsonl", gzip(votes(10, 3).as_bytes()));
    let run = env.ingest(&["packed.jsonl"]);
    assert_eq!(run.code, 1);
    let l = env.last_ledger();
    assert_eq!(l.status, "failed");
    assert!(
        l.error.contains("looks like gzip data: name it .gz"),
        "{}",
        l.error
    );
}

#[test]
fn utf16_says_convert_to_utf8() {
    let env = Env::new();
    let text = votes(1, 3);
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    env.write("wide.jsonl", utf16);
    let run = env.ingest(&["wide.jsonl"]);
    assert_eq!(run.code, 1);
    let l = env.last_ledger();
    assert_eq!(l.status, "rejected");
    assert!(
        l.error
            .contains("UTF-16 little-endian (byte-order mark FF FE) text: convert it to UTF-8"),
        "{}",
        l.error
    );
}

/// A supplier's file name cannot add lines to what votewatch prints, nor colour it.
#[test]
fn control_characters_in_names_are_escaped_and_logs_have_no_colour() {
    let env = Env::new();
    let name = "evil\nloaded  fake.jsonl\u{1b}[31m.jsonl";
    env.write(name, "not json\nnot json\n");
    let run = env.ingest(&[name]);
    assert_eq!(run.code, 1);
    assert_eq!(run.stdout.lines().count(), 2, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("evil\\nloaded  fake.jsonl\\u{1b}[31m.jsonl"),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains('\u{1b}'));
    // stderr is a pipe here: the warnings for the rejects carry no escape codes.
    assert!(run.stderr.contains("record rejected"), "{}", run.stderr);
    assert!(!run.stderr.contains('\u{1b}'), "{:?}", run.stderr);
}

/// A load that needs more memory than DuckDB may use is that file's outcome (`failed`, with
/// what to do), not the end of the run: the next file still loads.
#[test]
fn a_load_over_the_memory_limit_fails_alone_with_what_to_do() {
    let env = Env::new();
    let mut out = std::io::BufWriter::new(std::fs::File::create(env.path("big.jsonl")).unwrap());
    votewatch::testing::synth::write_votes(
        &mut out,
        votewatch::testing::synth::Spec {
            rows: 300_000,
            seed: 5,
            first_id: 0,
            repeat_share: 0.0,
        },
    )
    .unwrap();
    out.flush().unwrap();
    drop(out);
    // Room for the warehouse's own tables and a ledger row, too little for this load.
    env.write("tight.toml", "[warehouse]\nmemory_limit = \"20MB\"\n");
    env.write("small.jsonl", votes(10_000_000, 5));
    let run = env.run(&["ingest", "--config", "tight.toml", "big.jsonl"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    // Every row again: all of them are staged and resolved against the warehouse.
    let run = env.run(&[
        "ingest",
        "--config",
        "tight.toml",
        "--force",
        "big.jsonl",
        "small.jsonl",
    ]);
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.line_for("big.jsonl").starts_with("failed"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("needs more memory than warehouse.memory_limit allows; raise it"),
        "{}",
        run.stdout
    );
    assert!(
        run.line_for("small.jsonl").starts_with("loaded"),
        "{}",
        run.stdout
    );
    assert_eq!(env.votes(), 300_005);
}

/// One row repeated millions of times: exact repeats fold into one staged row, so the load
/// takes little memory and counts every repeat.
#[test]
fn one_row_repeated_loads_once_in_bounded_memory() {
    let env = Env::new();
    let row = format!("{}\n", vote(1, "2022-01-03"));
    let n = (256 << 20) / row.len();
    // A new Id first, so the repeats are not "above the maximum so far".
    env.write(
        "rep.jsonl",
        format!("{}\n{}", vote(2, "2022-01-03"), row.repeat(n)),
    );
    let run = ingest_logged(&env, &["rep.jsonl"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let l = env.last_ledger();
    assert_eq!(l.counts[..3], [n as i64 + 1, 2, n as i64 - 1]);
    assert_eq!(env.votes(), 2);
    let peak = peak_rss_mb(&run);
    assert!(peak <= MAX_RSS_MB, "peak RSS {peak} MB");
}

/// Issue 19, item 6: a parser thread that fails (a defect of votewatch's, injected here as a
/// panic on the file's first chunk while the other parsers go on with the rest) answers for
/// its chunk: the file is recorded failed with that reason, the chunks after it are not
/// buffered without bound waiting for it, and the process ends normally.
#[test]
fn a_parser_that_fails_fails_the_file_not_the_process() {
    let env = Env::new();
    env.write("many.jsonl", votes(1, 200_000));
    let run = env
        .command()
        .env(votewatch::testing::failpoint::ENV, "parse_panic")
        .args(["ingest", "many.jsonl"])
        .bounded_output()
        .expect("run votewatch");
    let code = run.status.code();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        matches!(code, Some(1..=100)),
        "exit {code:?} (101 is a panic that got out): {said}"
    );
    assert!(
        said.contains("parser failed on the records from line 1"),
        "{said}"
    );
    assert_eq!(
        env.rows("SELECT status, error LIKE '%parser failed%' FROM blog_analysis.ingested_files"),
        vec![vec!["failed".to_string(), "Boolean(true)".to_string()]]
    );
    assert_eq!(env.votes(), 0);
}
