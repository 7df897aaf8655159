//! `blog_analysis.weekly_votes`: kept by every load, unload and reingest, equal to a
//! recomputation from `votes` whatever the sequence; built once for a warehouse of an earlier
//! version; checked and repaired by `maintain --verify`.

use crate::harness::{vote, votes, Env};

/// The weekly counts recomputed from votes, as the view computed them before the table.
const RECOMPUTED: &str =
    "SELECT year(creation_date)::VARCHAR, strftime(creation_date, '%W')::INTEGER::VARCHAR, \
     count(*)::VARCHAR FROM blog_analysis.votes GROUP BY ALL ORDER BY ALL";
const KEPT: &str = "SELECT year::VARCHAR, week::VARCHAR, vote_count::VARCHAR \
     FROM blog_analysis.weekly_votes ORDER BY ALL";
/// outlier_weeks as it was defined over votes before the table existed.
const OUTLIERS_RECOMPUTED: &str = "WITH weekly AS (SELECT year(creation_date) AS y, \
     CAST(strftime(creation_date, '%W') AS INTEGER) AS w, count(*) AS n FROM blog_analysis.votes \
     GROUP BY ALL), mean AS (SELECT avg(n) AS m FROM weekly) \
     SELECT y::VARCHAR, w::VARCHAR, n::VARCHAR FROM weekly, mean WHERE abs(1 - n / m) > 0.2 ORDER BY y, w";
const OUTLIERS: &str = "SELECT \"Year\"::VARCHAR, \"WeekNumber\"::VARCHAR, \"VoteCount\"::VARCHAR \
     FROM blog_analysis.outlier_weeks";

use votewatch::testing::synth::Rng;

/// A file of up to 40 votes with Ids in 1..300 (so files overlap), dates over about 20 weeks
/// and vote types 1..3 (so a repeated Id may conflict), sometimes with a repeat inside.
fn random_file(rng: &mut Rng) -> String {
    let n = 1 + rng.below(40);
    let base = 1 + rng.below(260);
    let mut lines = Vec::new();
    for k in 0..n {
        let id = base + rng.below(40).min(k * 3);
        let day = 1 + rng.below(140);
        let date = chrono::NaiveDate::from_ymd_opt(2022, 1, 1).unwrap() + chrono::Days::new(day);
        lines.push(format!(
            r#"{{"Id":"{id}","PostId":"7","VoteTypeId":"{}","CreationDate":"{date}T08:00:00"}}"#,
            1 + rng.below(3)
        ));
    }
    lines.join("\n")
}

/// Runs a random sequence of `steps` loads, re-sent files, unloads (with and without
/// `--reload-later`) and reingests through the CLI with `config` args, calling `check` after
/// each step.
fn random_sequence(
    env: &Env,
    config: &[&str],
    seed: u64,
    steps: usize,
    mut check: impl FnMut(&str),
) {
    let mut rng = Rng::new(seed);
    let mut files: Vec<String> = Vec::new();
    let mut ledger_rows = 0i64;
    let run = |args: &[&str]| {
        let mut all: Vec<&str> = vec![args[0]];
        all.extend_from_slice(config);
        all.extend_from_slice(&args[1..]);
        let r = env.run(&all);
        // A refusal (an unload of a row without votes, a reingest of one that has them) is
        // part of the sequence too: it must change nothing.
        assert!(
            r.code <= 1 || format!("{}{}", r.stdout, r.stderr).contains("refused"),
            "{args:?}: {}{}",
            r.stdout,
            r.stderr
        );
        r
    };
    for step in 0..steps {
        let what = match rng.below(10) {
            0..=4 => {
                let name = format!("f{step}.jsonl");
                env.write(&name, random_file(&mut rng));
                run(&["ingest", &name]);
                files.push(name.clone());
                ledger_rows += 1;
                format!("load {name}")
            }
            5 if !files.is_empty() => {
                let earlier = &files[rng.below(files.len() as u64) as usize];
                let name = format!("again{step}.jsonl");
                std::fs::copy(env.path(earlier), env.path(&name)).unwrap();
                run(&["ingest", &name]);
                ledger_rows += 1;
                format!("re-send {earlier} as {name}")
            }
            6..=7 if ledger_rows > 0 => {
                let id = (1 + rng.below(ledger_rows as u64)).to_string();
                let reload = rng.below(2) == 0;
                let mut args = vec!["unload", id.as_str()];
                if reload {
                    args.push("--reload-later");
                }
                run(&args);
                format!("unload {id} (reload later: {reload})")
            }
            8..=9 if ledger_rows > 0 => {
                let id = (1 + rng.below(ledger_rows as u64)).to_string();
                if run(&["reingest", &id]).code <= 1 {
                    ledger_rows += 1;
                }
                format!("reingest {id}")
            }
            _ => continue,
        };
        check(&format!("seed {seed}, step {step}: {what}"));
    }
}

/// Property: after every step of random sequences of loads, repeats, conflicts, unloads and
/// reingests, `weekly_votes` equals a recomputation from `votes`, and `outlier_weeks` what the
/// view over `votes` gave.
#[test]
fn weekly_votes_equals_a_recomputation_after_any_sequence() {
    for seed in [1u64, 7, 42] {
        let env = Env::new();
        random_sequence(&env, &[], seed, 40, |step| {
            assert_eq!(env.rows(KEPT), env.rows(RECOMPUTED), "{step}");
            assert_eq!(env.rows(OUTLIERS), env.rows(OUTLIERS_RECOMPUTED), "{step}");
        });
        assert!(env.votes() > 0, "seed {seed} loaded nothing");
    }
}

/// The same on a lake, checked by `maintain --verify` (which says when it had to repair).
#[test]
fn weekly_votes_on_a_lake_stays_equal_to_a_recomputation() {
    let (env, _pg, _data) = crate::lake::one_lake("");
    let config = ["--config", "votewatch.toml"];
    random_sequence(&env, &config, 3, 14, |step| {
        let r = env.run(&["maintain", "--config", "votewatch.toml", "--verify"]);
        assert_eq!(r.code, 0, "{step}: {}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains("weekly_votes verified"),
            "{step}: {}",
            r.stdout
        );
    });
}

/// A warehouse of an earlier version (no `weekly_votes`) gets the table built once, from
/// `votes`, when first opened for writing; `maintain --verify` finds a tampered count, says which week,
/// repairs it (exit status 1), and then finds nothing.
#[test]
fn an_older_warehouse_gets_the_table_and_verify_repairs_a_difference() {
    let env = Env::new();
    env.write(
        "a.jsonl",
        format!(
            "{}\n{}\n{}",
            votes(1, 30),
            vote(100, "2022-03-01T00:00:00"),
            vote(101, "2022-03-02T00:00:00")
        ),
    );
    assert_eq!(env.ingest(&["a.jsonl"]).code, 0);
    env.with_db(|c| {
        c.execute_batch("DROP TABLE blog_analysis.weekly_votes")
            .unwrap()
    });
    // Any command that writes brings the schema up to date (the readers never change it).
    let run = env.run(&["maintain"]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert_eq!(env.rows(KEPT), env.rows(RECOMPUTED));
    assert_eq!(env.rows(KEPT).len(), 2);
    env.with_db(|c| {
        c.execute_batch("UPDATE blog_analysis.weekly_votes SET vote_count = 5 WHERE week = 9")
            .unwrap()
    });
    let verify = env.run(&["maintain", "--verify"]);
    assert_eq!(verify.code, 1, "{}{}", verify.stdout, verify.stderr);
    assert!(
        verify.stdout.contains("differed from votes in 1 weeks"),
        "{}",
        verify.stdout
    );
    assert!(verify.stdout.contains("2022"), "{}", verify.stdout);
    assert_eq!(env.rows(KEPT), env.rows(RECOMPUTED));
    let again = env.run(&["maintain", "--verify"]);
    assert_eq!(again.code, 0, "{}", again.stdout);
    assert!(
        again.stdout.contains("weekly_votes verified"),
        "{}",
        again.stdout
    );
}
