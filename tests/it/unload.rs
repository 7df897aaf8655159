//! `votewatch unload` and `reingest`: taking a delivery back, and loading one again.

use crate::harness::{vote, votes, Env};

/// The warehouse's votes without their lineage, sorted: what two warehouses must agree on.
fn vote_values(env: &Env) -> Vec<Vec<String>> {
    env.rows(
        "SELECT concat_ws(' ', id, post_id, vote_type_id, coalesce(user_id::VARCHAR, '-'), \
         coalesce(bounty_amount::VARCHAR, '-'), creation_date) FROM blog_analysis.votes ORDER BY id",
    )
}

#[test]
fn unload_then_the_same_file_again_loads_it_again_with_identical_rows() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 100));
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    let before = vote_values(&env);
    let dry = env.run(&["unload", "1", "--dry-run"]);
    assert!(
        dry.stdout.contains("would remove 100 votes"),
        "{}",
        dry.stdout
    );
    assert_eq!(env.votes(), 100, "a dry run changed the warehouse");
    let run = env.run(&["unload", "1", "--reason", "supplier asked"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("removed 100 votes"), "{}", run.stdout);
    assert_eq!(env.votes(), 0);
    assert_eq!(
        env.rows("SELECT reason, votes_removed::VARCHAR FROM blog_analysis.unloads"),
        [["supplier asked", "100"]]
    );
    let history = env.run(&["history", "--format", "json"]);
    assert!(
        history.stdout.contains("\"status\": \"unloaded\""),
        "{}",
        history.stdout
    );
    // The ledger row itself keeps what happened when the file arrived.
    assert_eq!(
        env.rows("SELECT status FROM blog_analysis.ingested_files"),
        [["loaded"]]
    );
    assert_eq!(
        env.run(&["unload", "1"]).code,
        2,
        "unloading twice is refused"
    );

    let again = env.ingest(&["a.jsonl"]);
    assert!(again.stdout.starts_with("loaded"), "{}", again.stdout);
    assert_eq!(vote_values(&env), before);
}

/// Three deliveries, the second carrying half of the first's Ids (some with other values) and
/// the third overlapping the second. Unloading the first: without --reload-later the freed Ids
/// are gone and the command says how many later votes were counted against them; with it the
/// warehouse equals a plain replay of the remaining files in order.
#[test]
fn unload_with_and_without_reload_later_against_a_plain_replay() {
    let d = "2022-01-03T00:00:00.000";
    let f2: String = (50..=150)
        .map(|i| {
            if (60..=70).contains(&i) {
                vote(i, "2022-03-01T00:00:00.000")
            } else {
                vote(i, d)
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let setup = |env: &Env| {
        env.write("f1.jsonl", votes(1, 100));
        env.write("f2.jsonl", &f2);
        env.write("f3.jsonl", votes(140, 61));
        assert_eq!(env.ingest(&["f1.jsonl", "f2.jsonl", "f3.jsonl"]).code, 0);
    };
    let replay = Env::new();
    replay.write("f2.jsonl", &f2);
    replay.write("f3.jsonl", votes(140, 61));
    assert_eq!(replay.ingest(&["f2.jsonl", "f3.jsonl"]).code, 0);

    let without = Env::new();
    setup(&without);
    let run = without.run(&["unload", "1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("later files had delivered 51 of those Ids again: 40 counted as already in the warehouse, 11 as conflicting"),
        "{}",
        run.stdout
    );
    assert_eq!(
        without.count("SELECT count(*) FROM blog_analysis.votes WHERE id BETWEEN 1 AND 100"),
        0
    );
    assert_eq!(
        without.rows("SELECT later_already::VARCHAR, later_conflicting::VARCHAR, reloaded::VARCHAR FROM blog_analysis.unloads"),
        [["40", "11", "0"]]
    );

    let with = Env::new();
    setup(&with);
    let run = with.run(&["unload", "1", "--reload-later"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("loaded 51 freed Ids again"),
        "{}",
        run.stdout
    );
    assert_eq!(vote_values(&with), vote_values(&replay));
    // The reloaded rows belong to the file that carried them.
    assert_eq!(
        with.count(
            "SELECT count(*) FROM blog_analysis.votes WHERE id BETWEEN 50 AND 100 AND file_id = 2"
        ),
        51
    );
}

#[test]
fn reingest_loads_a_fixed_failure_and_refuses_changed_bytes() {
    let env = Env::new();
    // Failed: a folder where a file was expected. Fixed: the file is there now.
    std::fs::create_dir(env.path("late.jsonl")).unwrap();
    let run = env.ingest(&["late.jsonl"]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert_eq!(
        env.rows("SELECT status FROM blog_analysis.ingested_files"),
        [["failed"]]
    );
    std::fs::remove_dir(env.path("late.jsonl")).unwrap();
    env.write("late.jsonl", votes(1, 10));
    let run = env.run(&["reingest", "1"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.starts_with("loaded"), "{}", run.stdout);
    assert_eq!(env.votes(), 10);
    // A reingest is reported like an arrival.
    assert_eq!(
        crate::daemon::eml_subjects(&env),
        ["votewatch: late.jsonl — loaded"]
    );

    // A loaded row is refused until it is unloaded; changed bytes are refused always.
    let refused = env.run(&["reingest", "2"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stdout.contains("unload 2 first"),
        "{}",
        refused.stdout
    );
    assert_eq!(env.run(&["unload", "2"]).code, 0);
    env.write("late.jsonl", votes(1, 11));
    let refused = env.run(&["reingest", "2"]);
    assert_eq!(refused.code, 2);
    assert!(
        refused.stdout.contains("SHA-256 changed"),
        "{}",
        refused.stdout
    );
    assert_eq!(env.votes(), 0);
    assert_eq!(env.run(&["reingest", "99"]).code, 2);
}

/// Only later votes in the Id range of the unloaded file matter: a file that brought no votes
/// (every Id was there already) needs no later file read, so a later file whose bytes are gone
/// is not counted as unreadable; one that brought votes reads the later files, and counts a
/// missing one.
#[test]
fn unload_reads_later_files_only_when_the_file_held_votes() {
    let env = Env::new();
    env.write("a.jsonl", votes(1, 100));
    // The same Ids in another order: loaded, nothing new.
    let lines: Vec<String> = (1..=100)
        .rev()
        .map(|i| vote(i, "2022-01-03T00:00:00.000"))
        .collect();
    env.write("b.jsonl", lines.join("\n"));
    // c meets a's Ids (95..=100); d does not (200..): an unload of a reads c again, never d
    // (issue 20, item 4: each arrival's Id range is recorded). Both are gone from disk.
    env.write("c.jsonl", votes(95, 10));
    env.write("d.jsonl", votes(200, 10));
    assert_eq!(
        env.ingest(&["a.jsonl", "b.jsonl", "c.jsonl", "d.jsonl"])
            .code,
        0
    );
    assert_eq!(
        env.rows("SELECT id::VARCHAR, rows_inserted::VARCHAR FROM blog_analysis.ingested_files ORDER BY id"),
        [["1", "100"], ["2", "0"], ["3", "4"], ["4", "10"]]
    );
    std::fs::remove_file(env.path("c.jsonl")).unwrap();
    std::fs::remove_file(env.path("d.jsonl")).unwrap();
    let none = env.run(&["unload", "2", "--dry-run"]);
    assert_eq!(none.code, 0, "{}{}", none.stdout, none.stderr);
    assert!(
        !none.stdout.contains("could not be read"),
        "{}",
        none.stdout
    );
    let some = env.run(&["unload", "1", "--dry-run"]);
    assert_eq!(some.code, 0, "{}{}", some.stdout, some.stderr);
    assert!(
        some.stdout
            .contains("1 later files could not be read again"),
        "{}",
        some.stdout
    );
}
