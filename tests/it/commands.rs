//! The command line: help, exit statuses, history, and a warehouse that cannot be opened.

use crate::harness::{votes, Env};

#[test]
fn every_command_has_help() {
    let env = Env::new();
    for cmd in [
        vec!["--help"],
        vec!["ingest", "--help"],
        vec!["outliers", "--help"],
        vec!["history", "--help"],
    ] {
        let run = env.run(&cmd);
        assert_eq!(run.code, 0, "{cmd:?}");
        assert!(
            run.stdout.contains("Usage: votewatch"),
            "{cmd:?}: {}",
            run.stdout
        );
    }
    assert!(env.run(&["ingest", "--help"]).stdout.contains("--force"));
    assert!(env.run(&["history", "--help"]).stdout.contains("--limit"));
}

#[test]
fn history_lists_the_ledger_newest_first() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 3));
    env.write("b.jsonl", votes(1, 3));
    env.write("c.jsonl", "bad");
    env.ingest(&["a.jsonl", "b.jsonl", "c.jsonl"]);
    let run = env.run(&["history"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("id"), "{}", run.stdout);
    let firsts: Vec<(&str, &str)> = lines[2..]
        .iter()
        .map(|l| {
            let mut w = l.split_whitespace();
            let id = w.next().unwrap();
            let status = w.nth(2).unwrap();
            (id, status)
        })
        .collect();
    assert_eq!(
        firsts,
        vec![("3", "rejected"), ("2", "duplicate_file"), ("1", "loaded")]
    );
    let run = env.run(&["history", "--limit", "1"]);
    assert_eq!(run.stdout.lines().count(), 3);
}

#[test]
fn a_warehouse_held_by_another_process_is_a_clear_error() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 3));
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    let held = duckdb::Connection::open(env.warehouse()).unwrap();
    let run = env.ingest(&["a.jsonl"]);
    drop(held);
    assert_eq!(run.code, 2, "{}", run.stdout);
    assert!(
        run.stderr.contains("warehouse.db: cannot open"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("lock"), "{}", run.stderr);
}

#[test]
fn a_warehouse_path_that_is_a_folder_is_a_clear_error() {
    let env = Env::new();
    std::fs::create_dir(env.path("wh")).unwrap();
    env.write("a.jsonl", votes(1, 3));
    let run = env.run(&["ingest", "--warehouse", "wh", "a.jsonl"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .starts_with("votewatch: warehouse wh: cannot open"),
        "{}",
        run.stderr
    );
}

#[test]
fn the_warehouse_flag_and_the_config_choose_the_file() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 3));
    env.write(
        "conf/v.toml",
        "[warehouse]\npath = \"data/from-config.db\"\n",
    );
    assert_eq!(
        env.run(&["ingest", "--config", "conf/v.toml", "a.jsonl"])
            .code,
        0
    );
    assert!(env.path("data/from-config.db").exists());
    assert_eq!(
        env.run(&["ingest", "--warehouse", "other.db", "a.jsonl"])
            .code,
        0
    );
    assert!(env.path("other.db").exists());
    assert!(!env.warehouse().exists());
}

#[test]
fn an_invalid_config_is_named() {
    let env = Env::new();
    env.write("bad.toml", "[ingest]\nmax_reject_share = 7\n");
    let run = env.run(&["history", "--config", "bad.toml"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("invalid config bad.toml: ingest.max_reject_share"),
        "{}",
        run.stderr
    );
}

/// `check-config` names each problem with its key, one line each, and exits 1; a sound
/// configuration (folders still to be created) passes with exit 0 and creates nothing.
#[test]
fn check_config_names_each_finding() {
    let env = Env::new();
    let good = env.run(&["check-config"]);
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(
        good.stdout
            .contains("ok      paths.landing: landing: missing; will be created"),
        "{}",
        good.stdout
    );
    assert!(!env.path("landing").exists() && !env.warehouse().exists());

    env.write("notdb.db", "garbage");
    env.write("afile", "");
    // Another file system for work/, when the machine has one (tmpfs /dev/shm).
    use std::os::unix::fs::MetadataExt;
    let dev = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.dev()).ok();
    let other_fs =
        dev(std::path::Path::new("/dev/shm")).filter(|d| Some(*d) != dev(env.dir.path()));
    let work = match other_fs {
        Some(_) => format!("/dev/shm/votewatch-test-{}", std::process::id()),
        None => "work".to_string(),
    };
    env.write(
        "bad.toml",
        format!(
            r#"
[warehouse]
path = "notdb.db"
[paths]
processed = "afile"
work = "{work}"
[report]
transport = "smtp"
[report.smtp]
host = "mail.example.com"
user = "u"
tls = "none"
"#
        ),
    );
    let bad = env.run(&["check-config", "--config", "bad.toml"]);
    assert_eq!(bad.code, 1, "{}{}", bad.stdout, bad.stderr);
    let errors: Vec<&str> = bad
        .stdout
        .lines()
        .filter(|l| l.starts_with("error"))
        .collect();
    let has = |key: &str, words: &str| errors.iter().any(|l| l.contains(key) && l.contains(words));
    assert!(has("paths.processed", "not a folder"), "{}", bad.stdout);
    assert!(
        has("warehouse", "not a valid DuckDB database"),
        "{}",
        bad.stdout
    );
    assert!(has("report", "unencrypted"), "{}", bad.stdout);
    if other_fs.is_some() {
        assert!(
            has("paths.work", "not on the file system of paths.landing"),
            "{}",
            bad.stdout
        );
    }
}

/// `history` and `status` filter by status, file name and start time, and speak JSON.
#[test]
fn history_and_status_filter_and_speak_json() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 5));
    env.write("b.jsonl", "x\ny\n");
    env.write("c.jsonl", votes(1, 5));
    assert_eq!(env.ingest(&["a.jsonl", "b.jsonl", "c.jsonl"]).code, 1);

    let run = env.run(&["history", "--status", "rejected", "--format", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["file"], "b.jsonl");
    assert_eq!(rows[0]["rejected"], 2);

    let run = env.run(&["history", "--file", "c.jsonl", "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["status"], "duplicate_file");
    assert_eq!(rows[0]["duplicate_of"], 1);

    // Everything started in the last hour; nothing since tomorrow.
    let recent = env.run(&["history", "--since", "1h"]);
    assert_eq!(recent.stdout.lines().count(), 5, "{}", recent.stdout);
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%d")
        .to_string();
    let none = env.run(&["history", "--since", &tomorrow, "--format", "json"]);
    assert_eq!(none.stdout.trim(), "[]");
    let bad = env.run(&["history", "--since", "last tuesday"]);
    assert_ne!(bad.code, 0);
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);

    let run = env.run(&["status", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["files"]["loaded"], 1);
    assert_eq!(doc["files"]["rejected"], 1);
    assert_eq!(doc["files"]["duplicate_file"], 1);
    let run = env.run(&["status", "--status", "loaded"]);
    assert!(
        run.stdout.contains("files loaded: 1") && !run.stdout.contains("rejected"),
        "{}",
        run.stdout
    );
}

/// Writes two arrivals with rejects, the first recorded 100 days ago (as if it had been).
fn old_and_new_rejects(env: &Env) {
    env.write(
        "old.jsonl",
        format!("{}\nnot json\nnot json either", votes(1, 5)),
    );
    env.write("new.jsonl", format!("{}\nbroken", votes(10, 5)));
    env.ingest(&["old.jsonl"]);
    env.ingest(&["new.jsonl"]);
    env.with_db(|c| {
        c.execute_batch(
            "UPDATE blog_analysis.ingested_files SET finished_at = finished_at - INTERVAL 100 DAY \
             WHERE file_name = 'old.jsonl'",
        )
        .unwrap()
    });
}

/// Stored rejects per arrival, and the ledger's count of rejects, by file name.
fn rejects_kept(env: &Env) -> Vec<Vec<String>> {
    env.rows(
        "SELECT f.file_name, count(r.file_id)::VARCHAR, any_value(f.rejected)::VARCHAR \
         FROM blog_analysis.ingested_files f \
         LEFT JOIN blog_analysis.rejected_votes r ON r.file_id = f.id GROUP BY ALL ORDER BY 1",
    )
}

/// Issue 20, item 3: `maintain` deletes the stored rejects of arrivals older than
/// `ingest.reject_retention_days`; newer ones stay, and the ledger keeps every count.
#[test]
fn maintain_deletes_rejects_past_their_retention_and_keeps_the_counts() {
    let env = Env::new();
    old_and_new_rejects(&env);
    assert_eq!(
        rejects_kept(&env),
        [["new.jsonl", "1", "1"], ["old.jsonl", "2", "2"]]
    );
    env.write("votewatch.toml", "[ingest]\nreject_retention_days = 90\n");
    let run = env.run(&["maintain", "--config", "votewatch.toml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("rejects older than 90 days deleted: 2"),
        "{}",
        run.stdout
    );
    assert_eq!(
        rejects_kept(&env),
        [["new.jsonl", "1", "1"], ["old.jsonl", "0", "2"]]
    );
    // 0 keeps them forever.
    env.write("votewatch.toml", "[ingest]\nreject_retention_days = 0\n");
    let run = env.run(&["maintain", "--config", "votewatch.toml"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(!run.stdout.contains("rejects older"), "{}", run.stdout);
}

/// The daemon deletes rejects past their retention by itself, once a day, while idle.
#[test]
fn the_daemon_deletes_rejects_past_their_retention() {
    let env = Env::new();
    old_and_new_rejects(&env);
    env.write(
        "votewatch.toml",
        "[daemon]\nhttp_listen = \"\"\n[ingest]\nreject_retention_days = 30\n",
    );
    let d = crate::daemon::Daemon::start(&env);
    d.wait_log(
        "rejects past their retention deleted",
        std::time::Duration::from_secs(30),
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(
        rejects_kept(&env),
        [["new.jsonl", "1", "1"], ["old.jsonl", "0", "2"]]
    );
}

/// `history`, `status` and `outliers` read the warehouse and never make one: in an empty
/// folder they fail naming the path they looked at and the configuration, and create nothing.
#[test]
fn read_only_commands_never_create_a_warehouse() {
    let env = Env::new();
    for args in [
        vec!["history"],
        vec!["status"],
        vec!["outliers"],
        vec!["history", "--config", "mine.toml"],
    ] {
        if args.len() > 1 {
            env.write("mine.toml", "[warehouse]\npath = \"data/wh.db\"\n");
        }
        let r = env.run(&args);
        assert_ne!(r.code, 0, "{args:?}");
        let said = format!("{}{}", r.stdout, r.stderr);
        let path = if args.len() > 1 {
            "data/wh.db"
        } else {
            "warehouse.db"
        };
        assert!(said.contains(path), "{args:?}: {said}");
        assert!(said.contains("nothing was created"), "{args:?}: {said}");
        if args.len() > 1 {
            assert!(said.contains("mine.toml"), "{said}");
        } else {
            assert!(said.contains("built-in defaults"), "{said}");
        }
        assert!(
            !env.warehouse().exists() && !env.path("data").exists(),
            "{args:?}"
        );
    }
    // Once there is one, they read it, and change nothing in it.
    env.write("a.jsonl", crate::harness::votes(1, 3));
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    let before = std::fs::read(env.warehouse()).unwrap();
    for args in [["history"], ["status"], ["outliers"]] {
        let r = env.run(&args);
        assert_eq!(r.code, 0, "{args:?}: {}{}", r.stdout, r.stderr);
    }
    assert_eq!(std::fs::read(env.warehouse()).unwrap(), before);
    assert!(!env.path("warehouse.db.wal").exists());
}

/// A reader started while another process holds the warehouse (the daemon, while a batch
/// loads) says it waits, then reads once the holder lets go, instead of failing on DuckDB's
/// lock.
#[test]
fn history_waits_for_a_warehouse_another_process_holds() {
    use std::process::Stdio;
    let env = Env::new();
    env.write("a.jsonl", votes(1, 3));
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    let holder = duckdb::Connection::open(env.warehouse()).unwrap();
    let mut child = env
        .command()
        .arg("history")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = crate::harness::Lines::new(child.stderr.take().unwrap());
    stderr.wait_for(
        "waiting for the warehouse",
        std::time::Duration::from_secs(30),
    );
    drop(holder);
    let out = crate::harness::output_of(child, "history");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", stderr.seen());
    assert!(stdout.contains("a.jsonl"), "{stdout}");
}
