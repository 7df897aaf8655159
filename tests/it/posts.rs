//! The posts dataset beside votes: files routed by name, `blog_analysis.posts` with its
//! versions in `posts_history`, and `mean_votes_per_post_per_week` against a computation
//! straight from the two files.

use std::collections::{BTreeMap, HashSet};

use crate::daemon::{drop_file, names, wait_until, Daemon, WAIT};
use crate::harness::{test_data, Env};

fn unpacked(name: &str) -> String {
    let bytes = std::fs::read(test_data(name)).unwrap();
    String::from_utf8(zstd::decode_all(&bytes[..]).unwrap()).unwrap()
}

fn field<'a>(v: &'a serde_json::Value, name: &str) -> &'a str {
    v[name].as_str().unwrap_or_default()
}

/// The view's rows computed from the files alone: per week of the vote's CreationDate (year,
/// `%W`), the posts of the posts file that had votes, and their votes.
fn direct_means(posts: &str, votes: &str) -> Vec<Vec<String>> {
    let ids: HashSet<i64> = posts
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            field(&v, "Id").parse().unwrap()
        })
        .collect();
    let mut weeks: BTreeMap<(i32, u32), (HashSet<i64>, i64)> = BTreeMap::new();
    for l in votes.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let post: i64 = field(&v, "PostId").parse().unwrap();
        if !ids.contains(&post) {
            continue;
        }
        let date = &field(&v, "CreationDate")[..19];
        let t = chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%dT%H:%M:%S").unwrap();
        let week: u32 = t.format("%W").to_string().parse().unwrap();
        let e = weeks.entry((chrono::Datelike::year(&t), week)).or_default();
        e.0.insert(post);
        e.1 += 1;
    }
    weeks
        .into_iter()
        .map(|((y, w), (p, n))| {
            vec![
                y.to_string(),
                w.to_string(),
                p.len().to_string(),
                n.to_string(),
            ]
        })
        .collect()
}

const VIEW: &str = "SELECT \"Year\"::VARCHAR, \"WeekNumber\"::VARCHAR, \"PostCount\"::VARCHAR, \
     \"VoteCount\"::VARCHAR FROM blog_analysis.mean_votes_per_post_per_week";
/// Every table a load changes, as one hash per table (row order does not matter).
const TABLES: &str =
    "SELECT (SELECT count(*) || ':' || coalesce(sum(hash(v)), 0) FROM blog_analysis.votes v), \
     (SELECT count(*) || ':' || coalesce(sum(hash(p)), 0) FROM blog_analysis.posts p), \
     (SELECT count(*)::VARCHAR FROM blog_analysis.posts_history), \
     (SELECT count(*) || ':' || coalesce(sum(hash(w)), 0) FROM blog_analysis.weekly_post_votes w)";
/// The tables' values without the ledger ids, which depend on the order of the loads.
const VALUES: &str = "SELECT (SELECT count(*) || ':' || sum(hash(id, post_id, vote_type_id, user_id, bounty_amount, creation_date)) FROM blog_analysis.votes), \
     (SELECT count(*) || ':' || sum(hash(id, post_type_id, creation_date, parent_id, score, view_count, body, owner_user_id, last_activity_date, title, tags, valid_from)) FROM blog_analysis.posts), \
     (SELECT count(*) || ':' || sum(hash(w)) FROM blog_analysis.weekly_post_votes w)";

#[test]
fn posts_and_votes_in_either_order_fill_both_tables_and_the_weekly_means() {
    let (posts, votes) = (unpacked("posts.jsonl.zst"), unpacked("votes.jsonl.zst"));
    let want = direct_means(&posts, &votes);
    assert!(want.len() > 100, "{}", want.len());
    let mut seen = Vec::new();
    for order in [
        ["posts.jsonl", "votes.jsonl"],
        ["votes.jsonl", "posts.jsonl"],
    ] {
        let env = Env::new();
        env.write("posts.jsonl", &posts);
        env.write("votes.jsonl", &votes);
        let r = env.ingest(&order);
        assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
        assert_eq!(
            env.count("SELECT count(*) FROM blog_analysis.posts"),
            13_721
        );
        assert_eq!(env.votes(), 40_299);
        assert_eq!(env.rows(VIEW), want, "order {order:?}");
        // The mean is the quotient, as a DOUBLE.
        assert_eq!(
            env.count(
                "SELECT count(*) FROM blog_analysis.mean_votes_per_post_per_week \
                 WHERE abs(\"MeanVotesPerPost\" - \"VoteCount\" / \"PostCount\") > 1e-9 \
                 OR typeof(\"MeanVotesPerPost\") <> 'DOUBLE'"
            ),
            0
        );
        let datasets = env.rows(
            "SELECT file_name, dataset, rows_inserted::VARCHAR FROM blog_analysis.ingested_files ORDER BY file_name",
        );
        assert_eq!(
            datasets,
            [
                ["posts.jsonl", "posts", "13721"],
                ["votes.jsonl", "votes", "40299"]
            ]
        );
        // Re-sending either changes nothing.
        let before = env.rows(TABLES);
        for name in order {
            let r = env.ingest(&[name]);
            assert!(
                r.line_for(name).starts_with("duplicate_file"),
                "{}",
                r.stdout
            );
        }
        assert_eq!(env.rows(TABLES), before);
        seen.push(env.rows(VALUES));
    }
    assert_eq!(seen[0], seen[1], "the order of the files changes nothing");
}

/// The posts file's lines, with `change` applied to the record of each Id it returns
/// `Some` for.
fn edited(posts: &str, mut change: impl FnMut(i64, &mut serde_json::Value) -> bool) -> String {
    let mut out = Vec::new();
    for l in posts.lines() {
        let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id: i64 = field(&v, "Id").parse().unwrap();
        if change(id, &mut v) {
            out.push(serde_json::to_string(&v).unwrap());
        } else {
            out.push(l.to_string());
        }
    }
    out.join("\n")
}

#[test]
fn a_posts_file_with_changed_scores_updates_posts_and_keeps_each_replaced_version() {
    let env = Env::new();
    let posts = unpacked("posts.jsonl.zst");
    env.write("posts.jsonl", &posts);
    assert_eq!(env.ingest(&["posts.jsonl"]).code, 0);
    let score = |id: i64| {
        env.rows(&format!(
            "SELECT coalesce(score, 0)::VARCHAR FROM blog_analysis.posts WHERE id = {id}"
        ))[0][0]
            .parse::<i64>()
            .unwrap()
    };
    let old_score_of_1 = score(1);
    // Ids 1-40 (those present): a new score and a later LastActivityDate; 41-50: a new score
    // and an earlier one (an older version, not kept); 51-55: a new score, the same date (a
    // tie: the later arrival wins). Everything else as it was.
    let (mut later, mut older, mut tie) = (0, 0, 0);
    let changed = edited(&posts, |id, v| {
        let bump = |v: &mut serde_json::Value| {
            let s: i64 = field(v, "Score").parse().unwrap_or(0);
            v["Score"] = (s + 5).to_string().into();
        };
        match id {
            1..=40 => {
                bump(v);
                v["LastActivityDate"] = "2030-01-01T00:00:00.000".into();
                later += 1;
            }
            41..=50 => {
                bump(v);
                v["LastActivityDate"] = "1990-01-01T00:00:00.000".into();
                older += 1;
            }
            51..=55 => {
                bump(v);
                tie += 1;
            }
            _ => return false,
        }
        true
    });
    assert!(later > 20 && older > 3 && tie > 1, "{later} {older} {tie}");
    env.write("posts-2.jsonl", &changed);
    let r = env.ingest(&["posts-2.jsonl"]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let row = env.rows(
        "SELECT rows_inserted::VARCHAR, rows_updated::VARCHAR, already_in_warehouse::VARCHAR, conflicting::VARCHAR, dataset \
         FROM blog_analysis.ingested_files WHERE id = 2",
    );
    let unchanged = 13_721 - later - older - tie;
    assert_eq!(
        row[0],
        [
            "0".to_string(),
            (later + tie).to_string(),
            unchanged.to_string(),
            older.to_string(),
            "posts".into()
        ],
        "new, updated, the same, older"
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.posts"),
        13_721
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.posts_history"),
        (later + tie) as i64,
        "history grows by exactly the changed rows"
    );
    assert_eq!(score(1), old_score_of_1 + 5);
    // The replaced version: its old score, until the new version's LastActivityDate, replaced
    // by ledger row 2; and what post 1 looked like before then.
    let history = env.rows(
        "SELECT coalesce(score, 0)::VARCHAR, valid_to::VARCHAR, replaced_by_file_id::VARCHAR, file_id::VARCHAR \
         FROM blog_analysis.posts_history WHERE id = 1",
    );
    assert_eq!(
        history,
        [[
            old_score_of_1.to_string(),
            "2030-01-01 00:00:00".into(),
            "2".into(),
            "1".into()
        ]]
    );
    let as_of = |date: &str| {
        env.rows(&format!(
            "SELECT coalesce(score, 0)::VARCHAR FROM blog_analysis.post_versions WHERE id = 1 \
             AND valid_from <= TIMESTAMP '{date}' AND (valid_to IS NULL OR TIMESTAMP '{date}' < valid_to)"
        ))
    };
    assert_eq!(as_of("2029-06-01"), [[old_score_of_1.to_string()]]);
    assert_eq!(as_of("2031-01-01"), [[(old_score_of_1 + 5).to_string()]]);
    // The older versions were not applied.
    let s41: Vec<_> = posts
        .lines()
        .filter(|l| l.starts_with("{\"Id\":\"41\""))
        .collect();
    if let Some(l) = s41.first() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(score(41), field(&v, "Score").parse::<i64>().unwrap_or(0));
    }
    // The same versions again, in another order (new bytes): nothing changes.
    let before = env.rows(TABLES);
    let mut lines: Vec<&str> = changed.lines().collect();
    lines.reverse();
    env.write("posts-3.jsonl", lines.join("\n"));
    let r = env.ingest(&["posts-3.jsonl"]);
    assert!(
        r.line_for("posts-3.jsonl").starts_with("loaded"),
        "{}",
        r.stdout
    );
    assert_eq!(
        env.rows(TABLES),
        before,
        "an identical re-delivery changes nothing"
    );
}

#[test]
fn the_daemon_routes_posts_and_votes_files_by_name() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let (posts, votes) = (unpacked("posts.jsonl.zst"), unpacked("votes.jsonl.zst"));
    drop_file(&env, "votes-2024.jsonl", &votes);
    drop_file(&env, "posts.jsonl", &posts);
    assert!(
        wait_until(WAIT, || names(&env.path("processed")).len() == 2),
        "{}",
        d.log()
    );
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    assert_eq!(
        env.rows("SELECT file_name, dataset, status FROM blog_analysis.ingested_files ORDER BY file_name"),
        [
            ["posts.jsonl", "posts", "loaded"],
            ["votes-2024.jsonl", "votes", "loaded"]
        ]
    );
    assert_eq!(env.rows(VIEW), direct_means(&posts, &votes));
    // The report names each file's dataset.
    let report: String = names(&env.path("reports"))
        .iter()
        .map(|n| std::fs::read_to_string(env.path("reports").join(n)).unwrap_or_default())
        .collect();
    assert!(report.contains("; dataset posts"), "{report}");
    assert!(report.contains("; dataset votes"), "{report}");
}

#[test]
fn dataset_patterns_route_names_and_an_ambiguity_is_refused_at_config_check() {
    let env = Env::new();
    env.write(
        "ambiguous.toml",
        "[datasets.votes]\npatterns = [\"*.jsonl\"]\n[datasets.posts]\npatterns = [\"*.jsonl\"]\n",
    );
    let r = env.run(&["check-config", "--config", "ambiguous.toml"]);
    assert_ne!(r.code, 0);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("matches the patterns of datasets votes and posts equally"),
        "{all}"
    );
    env.write(
        "both.toml",
        "[daemon]\npatterns = [\"*.json\"]\n[datasets.votes]\npatterns = [\"*.jsonl\"]\n",
    );
    let r = env.run(&["check-config", "--config", "both.toml"]);
    assert_ne!(r.code, 0, "{}", r.stdout);
    // --dataset overrides the name: a posts file under a votes name.
    let posts = unpacked("posts.jsonl.zst");
    let first: Vec<&str> = posts.lines().take(30).collect();
    env.write("export.jsonl", first.join("\n"));
    let r = env.run(&["ingest", "--dataset", "posts", "export.jsonl"]);
    assert_eq!(r.code, 0, "{} {}", r.stdout, r.stderr);
    assert_eq!(env.count("SELECT count(*) FROM blog_analysis.posts"), 30);
    assert_eq!(env.votes_if_any(), 0);
    let r = env.run(&["history", "--dataset", "posts", "--format", "json"]);
    assert!(r.stdout.contains("\"dataset\": \"posts\""), "{}", r.stdout);
    let r = env.run(&["ingest", "--dataset", "comments", "export.jsonl"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("no dataset \"comments\""), "{}", r.stderr);
}

#[test]
fn hostile_posts_get_a_reason_per_record_and_good_ones_load_whole() {
    let env = Env::new();
    let body = "<p>".to_string() + &"x".repeat(1_000_000) + "</p>";
    let ok = |id: u32, extra: &str| {
        format!(r#"{{"Id":"{id}","PostTypeId":"1","CreationDate":"2020-01-01T00:00:00"{extra}}}"#)
    };
    let lines = [
        ok(1, &format!(r#","Body":"{body}""#)),
        ok(
            2,
            r#","Title":"<img src=x onerror=\"alert(1)\"><script>x</script>""#,
        ),
        ok(3, r#","Score":"-12""#),
        ok(4, r#","LastActivityDate":"2020-02-30T00:00:00""#),
        ok(5, r#","ViewCount":"-1""#),
        r#"{"Id":"6","CreationDate":"2020-01-01"}"#.to_string(),
        ok(7, r#","ClosedDate":"yesterday""#),
        ok(8, ""),
        ok(9, ""),
        ok(10, ""),
    ];
    env.write("posts-hostile.jsonl", lines.join("\n"));
    let r = env.run(&["check", "posts-hostile.jsonl"]);
    assert!(r.stdout.contains("records 10  posts 6"), "{}", r.stdout);
    for (line, why) in [
        (4, "bad date in LastActivityDate"),
        (5, "ViewCount out of range (-1"),
        (6, "missing PostTypeId"),
        (7, "bad date in ClosedDate"),
    ] {
        assert!(
            r.stdout.contains(&format!("reject line {line}: {why}")),
            "{why}: {}",
            r.stdout
        );
    }
    let r = env.ingest(&["posts-hostile.jsonl"]);
    assert!(
        r.line_for("posts-hostile.jsonl").starts_with("partial"),
        "{}",
        r.stdout
    );
    assert_eq!(
        env.rows("SELECT id::VARCHAR, length(coalesce(body, ''))::VARCHAR, coalesce(title, ''), coalesce(score, 0)::VARCHAR FROM blog_analysis.posts WHERE id <= 3 ORDER BY id"),
        [
            ["1", "1000007", "", "0"],
            ["2", "0", "<img src=x onerror=\"alert(1)\"><script>x</script>", "0"],
            ["3", "0", "", "-12"]
        ]
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_posts WHERE file_id = 1"),
        4
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.rejected_votes"),
        0
    );
}

#[test]
fn unload_refuses_a_posts_file_and_reingest_keeps_its_dataset() {
    let env = Env::new();
    let posts = unpacked("posts.jsonl.zst");
    let first: Vec<&str> = posts.lines().take(20).collect();
    env.write("export.jsonl", first.join("\n"));
    assert_eq!(
        env.run(&["ingest", "--dataset", "posts", "export.jsonl"])
            .code,
        0
    );
    let r = env.run(&["unload", "1"]);
    assert_ne!(r.code, 0);
    assert!(
        r.stdout
            .contains("unload refused: ledger row 1 is a posts file"),
        "{}",
        r.stdout
    );
    assert_eq!(env.count("SELECT count(*) FROM blog_analysis.posts"), 20);
    // Rejected under the default reject share, loaded by a reingest under a lenient one: as
    // posts, though its name is a votes name.
    let late: Vec<&str> = posts.lines().skip(100).take(1).collect();
    env.write("export-2.jsonl", format!("{}\nbad\nworse", late[0]));
    let r = env.run(&["ingest", "--dataset", "posts", "export-2.jsonl"]);
    assert!(
        r.line_for("export-2.jsonl").starts_with("rejected"),
        "{}",
        r.stdout
    );
    env.write("lenient.toml", "[ingest]\nmax_reject_share = 1.0\n");
    let r = env.run(&["reingest", "--config", "lenient.toml", "2"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(
        env.rows("SELECT status, dataset FROM blog_analysis.ingested_files WHERE id = 3"),
        [["partial", "posts"]]
    );
    assert_eq!(env.count("SELECT count(*) FROM blog_analysis.posts"), 21);
    assert_eq!(env.votes_if_any(), 0);
}
