//! `votewatch check`: what a load would report, without the warehouse.

use crate::harness::{gzip, test_data, vote, votes, Env};

/// Inputs of every kind the suite loads: clean, with rejects, repeats and conflicts, unknown
/// fields, an array, compressed, CRLF with a BOM, blank-only, empty, rejected whole, UTF-16,
/// gzip under a plain name.
fn inputs(env: &Env) -> Vec<String> {
    let d = "2022-01-03T00:00:00.000";
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("clean.jsonl", votes(1, 50).into_bytes()),
        (
            "mixed.jsonl",
            format!(
                "{}\nnot json\n{}\n{}\n\n{}\n",
                votes(1, 5),
                vote(3, d),
                r#"{"Id":"4","PostId":"9","VoteTypeId":"2","CreationDate":"2022-02-01T00:00:00.000"}"#,
                r#"{"Id":"7","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03T00:00:00.000","Extra":true}"#
            )
            .into_bytes(),
        ),
        (
            "array.json",
            format!("[{},{}]", vote(1, d), vote(2, d)).into_bytes(),
        ),
        ("clean.jsonl.gz", gzip(votes(1, 20).as_bytes())),
        (
            "crlf-bom.jsonl",
            format!("\u{feff}{}\r\n{}\r\n", vote(1, d), vote(2, d)).into_bytes(),
        ),
        ("blank.jsonl", b"\n\n\n".to_vec()),
        ("empty.jsonl", Vec::new()),
        ("mostly-bad.jsonl", format!("{}\nx\ny\nz\n", vote(1, d)).into_bytes()),
        (
            "utf16.jsonl",
            vote(1, d)
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect(),
        ),
        ("gzip-plain-name.jsonl", gzip(votes(1, 3).as_bytes())),
    ];
    let mut names = Vec::new();
    for (name, bytes) in files {
        env.write(name, bytes);
        names.push(name.to_string());
    }
    let real = test_data("votes.jsonl.zst");
    std::fs::copy(real, env.path("votes.jsonl.zst")).unwrap();
    names.push("votes.jsonl.zst".into());
    names
}

/// For each input, `check` reports what `ingest` then records (status, every counter, the
/// reason), and never creates or opens the warehouse: it works while another process holds it.
#[test]
fn check_agrees_with_ingest_and_never_opens_the_warehouse() {
    let env = Env::new();
    let names = inputs(&env);
    let mut args = vec!["check", "--format", "json"];
    args.extend(names.iter().map(String::as_str));
    let run = env.run(&args);
    assert!(
        run.code == 0 || run.code == 1,
        "{}{}",
        run.stdout,
        run.stderr
    );
    assert!(!env.warehouse().exists(), "check created a warehouse");
    // With the warehouse held open for writing by another process, check gives the same.
    let held = duckdb::Connection::open(env.warehouse()).unwrap();
    let again = env.run(&args);
    drop(held);
    assert_eq!(again.stdout, run.stdout, "{}", again.stderr);
    assert_eq!(again.code, run.code);
    let reports: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(reports.len(), names.len());
    let mut would_reject = false;
    for (name, r) in names.iter().zip(&reports) {
        // Each file into a fresh warehouse of its own, as check does.
        let one = Env::new();
        std::fs::copy(env.path(name), one.path(name)).unwrap();
        one.ingest(&[name]);
        let row = &one.rows(
            "SELECT status, lines_read::VARCHAR, rows_inserted::VARCHAR, \
             duplicates_in_file::VARCHAR, conflicting::VARCHAR, rejected::VARCHAR, \
             blank_lines::VARCHAR, coalesce(error, '') FROM blog_analysis.ingested_files",
        )[0];
        let got = [
            r["status"].as_str().unwrap().to_string(),
            r["records"].to_string(),
            r["votes"].to_string(),
            r["duplicates_in_file"].to_string(),
            r["conflicting"].to_string(),
            r["rejected"].to_string(),
            r["blank"].to_string(),
            r["error"].as_str().unwrap_or("").to_string(),
        ];
        assert_eq!(&got[..], &row[..], "{name}");
        would_reject |= r["verdict"] == "would not load";
    }
    assert!(would_reject, "the inputs include files that would not load");
    assert_eq!(run.code, 1, "a file that would not load makes check exit 1");
}

/// The text form names each reject's line and the verdict; a clean file exits 0.
#[test]
fn check_prints_rejects_with_their_lines_and_exits_0_for_a_clean_file() {
    let env = Env::new();
    env.write(
        "a.jsonl",
        format!("{}\nnot json\n{}", votes(1, 3), votes(4, 3)),
    );
    let run = env.run(&["check", "a.jsonl"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("would load, with rejects"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("reject line 4: not JSON"),
        "{}",
        run.stdout
    );
    assert!(!env.warehouse().exists());
}
