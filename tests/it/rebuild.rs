//! A warehouse rebuilt from the archive journal: the daemon started on a deleted warehouse
//! brings it back equal (votes, posts and their versions, the views, the ledger's statuses and
//! counts), and says so in a report; `votewatch rebuild` names a file missing or changed since.

use crate::daemon::{drop_file, names, wait_until, Daemon, WAIT};
use crate::harness::{test_data, vote, Env};

fn unpacked(name: &str) -> String {
    let bytes = std::fs::read(test_data(name)).unwrap();
    String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
}

/// Everything a rebuild must give back, without the ledger ids (new ones are allowed).
const STATE: [&str; 8] = [
    "SELECT count(*) || ':' || sum(hash(id, post_id, vote_type_id, user_id, bounty_amount, creation_date)) FROM blog_analysis.votes",
    "SELECT count(*) || ':' || sum(hash(id, score, last_activity_date, body, title, valid_from)) FROM blog_analysis.posts",
    "SELECT count(*) || ':' || coalesce(sum(hash(id, score, valid_from, valid_to)), 0) FROM blog_analysis.posts_history",
    "SELECT count(*) || ':' || sum(hash(w)) FROM blog_analysis.weekly_votes w",
    "SELECT count(*) || ':' || sum(hash(w)) FROM blog_analysis.weekly_post_votes w",
    "SELECT count(*) || ':' || coalesce(sum(hash(o)), 0) FROM blog_analysis.outlier_weeks o",
    "SELECT count(*) || ':' || sum(hash(m)) FROM blog_analysis.mean_votes_per_post_per_week m",
    "SELECT string_agg(file_name || ' ' || dataset || ' ' || status || ' ' || lines_read || ' ' || rows_inserted \
     || ' ' || rows_updated || ' ' || duplicates_in_file || ' ' || already_in_warehouse || ' ' || conflicting \
     || ' ' || rejected || ' ' || coalesce(duplicate_of::VARCHAR, '-'), '; ' ORDER BY id) FROM blog_analysis.ingested_files",
];

fn state(env: &Env) -> Vec<Vec<Vec<String>>> {
    STATE.iter().map(|q| env.rows(q)).collect()
}

/// Drops the files of a realistic history one batch at a time, waiting for each: posts,
/// votes in two overlapping parts, a re-sent copy, a rejected file, a partial one, and posts
/// with changed scores.
fn load_history(env: &Env) {
    let d = Daemon::start(env);
    let votes = unpacked("votes.jsonl.zst");
    let posts = unpacked("posts.jsonl.zst");
    let lines: Vec<&str> = votes.lines().collect();
    let changed: String = posts
        .lines()
        .take(300)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let score: i64 = v["Score"].as_str().unwrap_or("0").parse().unwrap();
            v["Score"] = (score + 100).to_string().into();
            v["LastActivityDate"] = "2031-01-01T00:00:00.000".into();
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n");
    let batches: Vec<Vec<(&str, String)>> = vec![
        vec![("posts.jsonl", posts.clone())],
        vec![
            ("votes-a.jsonl", lines[..25_000].join("\n")),
            ("votes-b.jsonl", lines[20_000..].join("\n")),
        ],
        vec![
            ("votes-a-again.jsonl", lines[..25_000].join("\n")),
            ("junk.jsonl", "not json\nnor this\n".to_string()),
            (
                "partial.jsonl",
                format!("{}\nbroken", vote(90_000_001, "2023-03-01T00:00:00")),
            ),
        ],
        vec![("posts-2.jsonl", changed)],
    ];
    let mut expected = 0;
    for batch in batches {
        expected += batch.len();
        for (name, body) in &batch {
            drop_file(env, name, body);
        }
        assert!(
            wait_until(WAIT, || archived(env) >= expected),
            "{}",
            d.log()
        );
    }
    assert_eq!(d.stop().0, 0);
}

/// Files in the archive (not the journal, not the reason files).
fn archived(env: &Env) -> usize {
    ["processed", "failed"]
        .iter()
        .flat_map(|d| names(&env.path(d)))
        .filter(|n| !n.starts_with('.') && !n.ends_with(".reason.txt"))
        .count()
}

#[test]
fn a_deleted_warehouse_is_rebuilt_equal_when_the_daemon_starts() {
    let env = Env::new();
    load_history(&env);
    let before = state(&env);
    let ledger = &before[7][0][0];
    for want in [
        "posts.jsonl posts loaded 13721 13721 0",
        "votes-a-again.jsonl votes duplicate_file",
        "junk.jsonl votes rejected",
        "partial.jsonl votes partial",
        "posts-2.jsonl posts loaded 300 0 300",
    ] {
        assert!(ledger.contains(want), "{want}: {ledger}");
    }
    let journal = std::fs::read_to_string(env.path("processed/.votewatch-journal.jsonl")).unwrap();
    assert_eq!(journal.lines().count(), 7, "{journal}");

    std::fs::remove_file(env.warehouse()).unwrap();
    let _ = std::fs::remove_file(env.path("warehouse.db.wal"));
    let reports_before = names(&env.path("reports")).len();
    let d = Daemon::start(&env);
    assert!(
        wait_until(WAIT, || d
            .log()
            .contains("warehouse rebuilt from the archive journal")
            && names(&env.path("reports")).len() > reports_before),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(
        state(&env),
        before,
        "the rebuilt warehouse equals the lost one"
    );
    // Each row keeps its arrival's ledger id in the journal.
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files WHERE journal_id = id"),
        7
    );
    // Nothing was moved or loaded twice: the archive is as it was.
    assert_eq!(archived(&env), 7);
    assert_eq!(names(&env.path("work")), Vec::<String>::new());
    let report: String = names(&env.path("reports"))
        .iter()
        .map(|n| std::fs::read_to_string(env.path("reports").join(n)).unwrap())
        .find(|t| t.contains("warehouse rebuilt from the archive"))
        .unwrap_or_else(|| panic!("no rebuild report in {:?}", names(&env.path("reports"))));
    assert!(
        report.contains("7 files loaded again in arrival order"),
        "{report}"
    );
}

#[test]
fn rebuild_names_a_file_missing_or_changed_and_loads_the_rest() {
    let env = Env::new();
    load_history(&env);
    let r = env.run(&["rebuild"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("exists"), "{}", r.stderr);

    // Same bytes, same outcome: a rebuild beside the warehouse equals it.
    let r = env.run(&["rebuild", "--into", "beside.db"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    let before = state(&env);
    let beside = Env::new();
    std::fs::copy(env.path("beside.db"), beside.warehouse()).unwrap();
    assert_eq!(state(&beside), before);

    std::fs::remove_file(env.path("processed/partial.jsonl")).unwrap();
    let b = env.path("processed/votes-b.jsonl");
    let mut text = std::fs::read_to_string(&b).unwrap();
    text.push_str("\n{\"Id\":\"99999999\"}");
    std::fs::write(&b, text).unwrap();
    let r = env.run(&["rebuild", "--into", "again.db"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("Not loaded again: partial.jsonl") && r.stdout.contains("missing"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Not loaded again: votes-b.jsonl")
            && r.stdout.contains("changed since it was archived"),
        "{}",
        r.stdout
    );
    let again = Env::new();
    std::fs::copy(env.path("again.db"), again.warehouse()).unwrap();
    assert_eq!(
        again.count("SELECT count(*) FROM blog_analysis.ingested_files"),
        5
    );
    assert_eq!(
        again.count("SELECT count(*) FROM blog_analysis.posts"),
        13_721
    );
}
