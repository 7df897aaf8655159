//! votewatch on DuckLake: a real PostgreSQL catalog (a private cluster on 127.0.0.1 per test,
//! Debian's `postgresql`), Parquet in a temporary folder, the extensions from an offline
//! repository (`scripts/duckdb-extensions.sh`; `.ci/run` sets VOTEWATCH_EXTENSION_REPO), and
//! several votewatch processes at once.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::harness::{
    output_of, test_data, vote, votes, wait_bounded, BoundedOutput, Env, Lines, PROCESS_LIMIT,
};

// Shared by path with the benchmark; each uses part of it.
#[allow(dead_code)]
#[path = "../../src/bin/common/pg_cluster.rs"]
mod pg_cluster;

/// A PostgreSQL cluster of its own on 127.0.0.1 (`pg_cluster`), stopped when dropped; a
/// failure to start or stop it fails the test.
pub struct Postgres(pg_cluster::PgCluster);

impl Postgres {
    pub fn start() -> Postgres {
        Postgres(pg_cluster::PgCluster::start().unwrap_or_else(|e| panic!("{e}")))
    }

    /// Stops the server (fast shutdown: sessions are ended), keeping its data.
    pub fn stop(&self) {
        self.0.stop().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server again on the same port.
    pub fn restart(&self) {
        self.0.restart().unwrap_or_else(|e| panic!("{e}"));
    }

    /// The catalog's connection string.
    pub fn conninfo(&self) -> String {
        self.0.conninfo("postgres")
    }

    /// Runs SQL on the catalog's server, as its administrator would.
    pub fn psql(&self, sql: &str) -> String {
        self.0
            .psql("postgres", sql)
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// The offline extension repository the suite's set-up laid out.
pub fn extension_repo() -> &'static str {
    crate::harness::needs::extension_repo()
}

/// A test folder with a lake of its own (a new PostgreSQL cluster, data under `lake/`) and its
/// configuration in `votewatch.toml`; `extra` adds to `[warehouse.ducklake]`.
pub fn one_lake(extra: &str) -> (Env, Postgres, PathBuf) {
    let env = Env::new();
    let pg = Postgres::start();
    let data = env.path("lake");
    env.write("votewatch.toml", lake_config(&pg, &data, extra));
    (env, pg, data)
}

/// A votewatch configuration for the lake of `pg`, data under `data`.
pub fn lake_config(pg: &Postgres, data: &Path, extra: &str) -> String {
    lake_config_at(pg, &format!("{}/", data.display()), extra)
}

/// The same with any data path (an `s3://` one).
pub fn lake_config_at(pg: &Postgres, data_path: &str, extra: &str) -> String {
    // A lake needs this host's name; tests that run several hosts name them.
    let host = if extra.contains("host_id") {
        ""
    } else {
        "host_id = \"test-host\"\n"
    };
    format!(
        r#"
[warehouse]
kind = "ducklake"
[warehouse.ducklake]
catalog = "{}"
data_path = "{data_path}"
extension_repository = "{}"
{host}{extra}
[daemon]
settle_ms = 100
rescan_secs = 1
http_listen = ""
"#,
        pg.conninfo(),
        extension_repo()
    )
}

/// Runs SQL against the lake with the Python duckdb client, as an analyst would (read-only),
/// and returns what it printed.
fn analyst(env: &Env, pg: &Postgres, data: &Path, sql: &str) -> String {
    analyst_at(env, pg, &format!("{}/", data.display()), "", sql)
}

/// The same for any data path; `setup` runs first (an S3 secret).
fn analyst_at(env: &Env, pg: &Postgres, data_path: &str, setup: &str, sql: &str) -> String {
    lake_client(env, pg, data_path, setup, sql, ", READ_ONLY")
}

/// Runs SQL against the lake with the Python duckdb client, attached with `attach_options`
/// (`", READ_ONLY"` for an analyst, `""` for a writer that knows nothing of votewatch's lock).
fn lake_client(
    env: &Env,
    pg: &Postgres,
    data_path: &str,
    setup: &str,
    sql: &str,
    attach_options: &str,
) -> String {
    let python = crate::harness::needs::python();
    let script = r#"
import sys, duckdb
repo, ext, conninfo, data, setup, sql, options = sys.argv[1:]
con = duckdb.connect(config={"custom_extension_repository": repo, "extension_directory": ext})
for e in ("ducklake", "postgres", "httpfs"):
    con.install_extension(e)
if setup:
    con.sql(setup)
con.sql(f"ATTACH 'ducklake:postgres:{conninfo}' AS lake (DATA_PATH '{data}'{options})")
con.sql("USE lake")
result = con.sql(sql)
for row in result.fetchall() if result is not None else []:
    print(*row)
"#;
    let out = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(extension_repo())
        .arg(env.path("analyst-extensions"))
        .arg(pg.conninfo())
        .arg(data_path)
        .arg(setup)
        .arg(sql)
        .arg(attach_options)
        .bounded_output()
        .unwrap_or_else(|e| panic!("cannot run {python} (set VOTEWATCH_PYTHON): {e}"));
    assert!(
        out.status.success(),
        "the analyst's query failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The worked example on DuckLake: loaded once (the second arrival is a duplicate), and an
/// analyst attaching the lake read-only from Python sees the same outlier weeks as on a DuckDB
/// file, and the ledger names this host.
#[test]
fn the_worked_example_loads_into_ducklake_and_an_analyst_reads_it() {
    let (env, pg, data) = one_lake("host_id = \"landing-1\"");
    let sample = test_data("sample-votes.jsonl");
    let sample = sample.to_str().unwrap();
    let run = env.run(&["ingest", "--config", "votewatch.toml", sample]);
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("loaded"), "{}", run.stdout);
    let again = env.run(&["ingest", "--config", "votewatch.toml", sample]);
    assert!(
        again.stdout.contains("duplicate"),
        "{}{}",
        again.stdout,
        again.stderr
    );
    let out = analyst(
        &env,
        &pg,
        &data,
        r#"SELECT "Year", "WeekNumber", "VoteCount" FROM blog_analysis.outlier_weeks"#,
    );
    assert_eq!(
        out,
        "2022 0 1\n2022 1 3\n2022 2 3\n2022 5 1\n2022 6 1\n2022 8 1\n"
    );
    let ledger = analyst(
        &env,
        &pg,
        &data,
        "SELECT id, status, rows_inserted, host_id FROM blog_analysis.ingested_files ORDER BY id",
    );
    assert_eq!(
        ledger,
        "1 loaded 16 landing-1\n2 duplicate_file 0 landing-1\n"
    );
    // The data is Parquet in the lake's folder, not a DuckDB file.
    let parquet = walk(&data)
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .count();
    assert!(parquet >= 1, "no Parquet file under {}", data.display());
    assert!(!env.path("warehouse.db").exists());
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Several processes load into one lake at once, with files whose Ids overlap and one file
/// sent to two of them: every Id is in the lake once (first committed wins), the same content
/// is loaded once, and each process's counts add up to what the lake holds.
#[test]
fn concurrent_loads_of_overlapping_files_keep_every_id_once() {
    let (env, pg, data) = one_lake("");
    // Four files of 20,000 votes; neighbours share half their Ids. The last is sent twice.
    let files: Vec<String> = (0..4)
        .map(|k| {
            let name = format!("f{k}.jsonl");
            env.write(&name, votes(1 + k * 10_000, 20_000));
            name
        })
        .collect();
    std::fs::copy(env.path("f3.jsonl"), env.path("f3-again.jsonl")).unwrap();
    // Schema first, so that the processes race on loads rather than on creating tables.
    let init = env.run(&["history", "--config", "votewatch.toml"]);
    assert_eq!(init.code, 0, "{}", init.stderr);
    let groups: [&[&str]; 3] = [
        &[&files[0], &files[2]],
        &[&files[1], &files[3]],
        &["f3-again.jsonl"],
    ];
    let children: Vec<_> = groups
        .iter()
        .map(|g| {
            env.command()
                .args(["ingest", "--config", "votewatch.toml"])
                .args(g.iter())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = output_of(c, "votewatch ingest");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let totals = analyst(
        &env,
        &pg,
        &data,
        "SELECT count(*), count(DISTINCT id), min(id), max(id) FROM blog_analysis.votes",
    );
    assert_eq!(totals, "50000 50000 1 50000\n");
    let ledger = analyst(
        &env,
        &pg,
        &data,
        "SELECT count(*), count(DISTINCT id), sum(rows_inserted), \
         count(*) FILTER (WHERE status = 'duplicate_file'), \
         sum(already_in_warehouse) FROM blog_analysis.ingested_files",
    );
    // 5 arrivals; 50,000 inserted; one duplicate file; the overlaps (3 × 10,000) were already
    // there for whichever file came second.
    assert_eq!(ledger, "5 5 50000 1 30000\n");
}

/// Two landing hosts (two folders with host ids of their own) on one lake.
struct TwoHosts {
    pg: Postgres,
    a: Env,
    b: Env,
    data: PathBuf,
}

impl TwoHosts {
    /// `ids`: the hosts' `host_id`s; `extra`: more of `[warehouse.ducklake]` for both.
    fn new(ids: [&str; 2], extra: &str) -> TwoHosts {
        let pg = Postgres::start();
        let (a, b) = (Env::new(), Env::new());
        let data = a.path("lake");
        for (env, id) in [(&a, ids[0]), (&b, ids[1])] {
            let host = format!("host_id = \"{id}\"\n{extra}");
            env.write("votewatch.toml", lake_config(&pg, &data, &host));
        }
        TwoHosts { pg, a, b, data }
    }

    /// An analyst's query of the lake.
    fn query(&self, sql: &str) -> String {
        analyst(&self.a, &self.pg, &self.data, sql)
    }
}

/// Waits until `env`'s processed/ holds `n` files (the daemon's log if it never does).
fn wait_processed(env: &Env, d: &crate::daemon::Daemon, n: usize, wait: std::time::Duration) {
    assert!(
        crate::daemon::wait_until(wait, || crate::daemon::names(&env.path("processed")).len()
            == n),
        "{}",
        d.log()
    );
}

/// Two daemons on two landing hosts (two folders, two host ids) load one lake. One is killed
/// between a commit and the archive move and finishes the move at its restart from the lake's
/// ledger, with the other host's rows beside its own. Every Id is in the lake once, every file
/// archived, each ledger row names its host, and the same content sent to both hosts is
/// loaded once.
#[test]
fn two_daemons_on_two_hosts_load_one_lake_and_recover_their_own_files() {
    use crate::daemon::{drop_file, Daemon};
    const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
    let h = TwoHosts::new(["host-a", "host-b"], "");
    drop_file(&h.a, "a.jsonl", votes(1, 1000));
    let crashed = Daemon::start_with(
        &h.a,
        &[(votewatch::testing::failpoint::ENV, "before_archive")],
    );
    assert!(
        crashed.wait_exit(WAIT).is_some(),
        "no crash at the failpoint"
    );
    assert!(crate::daemon::names(&h.a.path("processed")).is_empty());

    let da = Daemon::start(&h.a);
    let db = Daemon::start(&h.b);
    drop_file(&h.b, "b1.jsonl", votes(501, 1000));
    drop_file(&h.a, "a2.jsonl", votes(1001, 1000));
    drop_file(&h.b, "a.jsonl", votes(1, 1000));
    wait_processed(&h.a, &da, 2, WAIT);
    wait_processed(&h.b, &db, 2, WAIT);
    assert_eq!(
        crate::daemon::names(&h.a.path("processed")),
        ["a.jsonl", "a2.jsonl"]
    );
    assert_eq!(
        crate::daemon::names(&h.b.path("processed")),
        ["a.jsonl", "b1.jsonl"]
    );
    assert_eq!(da.stop().0, 0);
    assert_eq!(db.stop().0, 0);
    assert_eq!(
        h.query("SELECT count(*), count(DISTINCT id), max(id) FROM blog_analysis.votes"),
        "2000 2000 2000\n"
    );
    assert_eq!(
        h.query(
            "SELECT host_id, file_name, status, archived_to IS NOT NULL \
             FROM blog_analysis.ingested_files ORDER BY host_id, file_name"
        ),
        "host-a a.jsonl loaded True\nhost-a a2.jsonl loaded True\n\
         host-b a.jsonl duplicate_file True\nhost-b b1.jsonl loaded True\n"
    );
}

/// `votewatch maintain` merges the small Parquet files that one load each leaves, expires the
/// old snapshots and deletes the files no snapshot needs: fewer files in the catalog and on
/// disk, the same votes for the analysts.
#[test]
fn maintain_merges_small_files_and_keeps_every_vote() {
    let (env, pg, data) = one_lake("");
    for k in 0..6 {
        let name = format!("f{k}.jsonl");
        env.write(&name, votes(1 + k * 100, 100));
        ingest_ok(&env, &name);
    }
    let parquet = || {
        walk(&data)
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
            .count()
    };
    let on_disk_before = parquet();
    assert!(
        on_disk_before >= 6,
        "{on_disk_before} Parquet files after 6 loads"
    );
    let maintain = || {
        let run = env.run(&[
            "maintain",
            "--config",
            "votewatch.toml",
            "--retention-days",
            "0",
        ]);
        assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
        run.stdout
    };
    let stdout = maintain();
    let numbers: Vec<i64> = stdout
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(numbers[1] < numbers[0], "{stdout}");
    // Files replaced by the merge are only scheduled for deletion (a reader may still scan
    // them); the next run past the retention deletes them.
    maintain();
    assert!(
        parquet() < on_disk_before,
        "{} → {}",
        on_disk_before,
        parquet()
    );
    let totals = analyst(
        &env,
        &pg,
        &data,
        "SELECT count(*), count(DISTINCT id) FROM blog_analysis.votes",
    );
    assert_eq!(totals, "600 600\n");
}

/// The real export on DuckLake and on a DuckDB file: the same votes and the same 162 outlier
/// weeks, the lake's read by the Python client from another process.
#[test]
fn the_real_file_gives_the_same_votes_and_outlier_weeks_in_both_modes() {
    let (env, pg, data) = one_lake("");
    let real = test_data("votes.jsonl.zst");
    let real = real.to_str().unwrap();
    let lake = env.run(&["ingest", "--config", "votewatch.toml", real]);
    assert_eq!(lake.code, 0, "{}{}", lake.stdout, lake.stderr);
    let file = env.ingest(&[real]);
    assert_eq!(file.code, 0, "{}{}", file.stdout, file.stderr);
    // One text column, so that both clients print the same.
    let weeks = r#"SELECT concat_ws(' ', "Year", "WeekNumber", "VoteCount")
                   FROM blog_analysis.outlier_weeks ORDER BY "Year", "WeekNumber""#;
    let summary = "SELECT concat_ws(' ', count(*), count(DISTINCT id), sum(id), sum(post_id), \
                   sum(vote_type_id), count(user_id), sum(bounty_amount), \
                   sum(epoch(creation_date))::BIGINT) FROM blog_analysis.votes";
    let as_text = |rows: Vec<Vec<String>>| -> String {
        rows.iter().map(|r| format!("{}\n", r.join(" "))).collect()
    };
    let lake_weeks = analyst(&env, &pg, &data, weeks);
    assert_eq!(lake_weeks.lines().count(), 162);
    assert_eq!(lake_weeks, as_text(env.rows(weeks)));
    assert_eq!(
        analyst(&env, &pg, &data, summary),
        as_text(env.rows(summary))
    );
}

/// PostgreSQL down when the daemon starts, and again while files arrive: the daemon waits with
/// backoff, then loads everything once the catalog is back; the catalog password is in no log
/// line.
#[test]
fn the_daemon_waits_for_the_catalog_and_never_logs_its_password() {
    use crate::daemon::{drop_file, wait_until, Daemon};
    use std::time::Duration;
    const WAIT: Duration = Duration::from_secs(60);
    const SECRET: &str = "pw-7f3a9c-never-logged";
    let (env, pg, data) = one_lake("password_env = \"VW_TEST_CATALOG_PASSWORD\"");
    pg.stop();
    let d = Daemon::launch(&env, &[("VW_TEST_CATALOG_PASSWORD", SECRET)]);
    d.wait_log("warehouse unavailable", WAIT);
    pg.restart();
    d.wait_log("watching", WAIT);
    drop_file(&env, "a.jsonl", votes(1, 100));
    assert!(
        wait_until(WAIT, || crate::daemon::names(&env.path("processed"))
            == ["a.jsonl"]),
        "{}",
        d.log()
    );
    pg.stop();
    drop_file(&env, "b.jsonl", votes(101, 100));
    assert!(
        wait_until(WAIT, || d.log().matches("warehouse unavailable").count()
            >= 2
            || d.log().contains("the lake failed during the load")),
        "{}",
        d.log()
    );
    pg.restart();
    assert!(
        wait_until(WAIT, || crate::daemon::names(&env.path("processed"))
            == ["a.jsonl", "b.jsonl"]),
        "{}",
        d.log()
    );
    let log = d.log();
    assert_eq!(d.stop().0, 0);
    assert!(!log.contains(SECRET), "the password is in the log:\n{log}");
    let totals = analyst(
        &env,
        &pg,
        &data,
        "SELECT count(*), count(DISTINCT id), (SELECT count(*) FROM blog_analysis.ingested_files) \
         FROM blog_analysis.votes",
    );
    assert_eq!(totals, "200 200 2\n");
}

/// Two daemons started at the same moment on an empty lake both come up: the catalog's and the
/// schema's creation race, and the loser waits and tries again.
#[test]
fn two_daemons_started_together_on_an_empty_lake_both_come_up() {
    use crate::daemon::{drop_file, Daemon};
    const WAIT: std::time::Duration = std::time::Duration::from_secs(60);
    let h = TwoHosts::new(["a", "b"], "");
    let da = Daemon::launch(&h.a, &[]);
    let db = Daemon::launch(&h.b, &[]);
    da.wait_log("watching", WAIT);
    db.wait_log("watching", WAIT);
    drop_file(&h.a, "a.jsonl", votes(1, 10));
    drop_file(&h.b, "b.jsonl", votes(11, 10));
    wait_processed(&h.a, &da, 1, WAIT);
    wait_processed(&h.b, &db, 1, WAIT);
    assert_eq!(da.stop().0, 0);
    assert_eq!(db.stop().0, 0);
    assert_eq!(
        h.query("SELECT count(*), count(DISTINCT id) FROM blog_analysis.votes"),
        "20 20\n"
    );
}

/// With `maintain_daily_at`, the daemon maintains the lake itself when the time comes (here a
/// few seconds after it starts), while idle.
#[test]
fn the_daemon_maintains_the_lake_at_its_daily_time() {
    use crate::daemon::{drop_file, wait_until, Daemon};
    use std::time::Duration;
    const WAIT: Duration = Duration::from_secs(60);
    let env = Env::new();
    let pg = Postgres::start();
    let data = env.path("lake");
    env.write("votewatch.toml", lake_config(&pg, &data, ""));
    let d = Daemon::start(&env);
    for k in 0..3 {
        let name = format!("f{k}.jsonl");
        // 200 rows: DuckLake keeps small inserts in the catalog itself, not as Parquet.
        drop_file(&env, &name, votes(1 + k * 200, 200));
        assert!(wait_until(WAIT, || crate::daemon::names(
            &env.path("processed")
        )
        .len()
            == k as usize + 1));
    }
    // The daily time a few seconds ahead, through a reload. A time that has passed before the
    // daemon sees it means tomorrow, so on a busy machine the next try sets it further ahead.
    let mut margin = 3;
    loop {
        let at = (chrono::Utc::now() + chrono::Duration::seconds(margin)).format("%H:%M:%S");
        env.write(
            "votewatch.toml",
            lake_config(
                &pg,
                &data,
                &format!("maintain_daily_at = \"{at}\"\nretention_days = 0"),
            ),
        );
        d.signal("HUP");
        let wait = Duration::from_secs(margin as u64 * 3);
        if wait_until(wait, || d.log().contains("lake maintained")) {
            break;
        }
        assert!(margin < 24, "never maintained:\n{}", d.log());
        margin *= 2;
    }
    let log = d.log();
    assert_eq!(d.stop().0, 0);
    let line = log.lines().find(|l| l.contains("lake maintained")).unwrap();
    assert!(line.contains("files_before=3 files_after=1"), "{log}");
    let totals = analyst(&env, &pg, &data, "SELECT count(*) FROM blog_analysis.votes");
    assert_eq!(totals, "600\n");
}

/// `moto_server` (from the venv of VOTEWATCH_PYTHON) serving the S3 API on 127.0.0.1, with
/// one bucket; stopped when dropped.
struct FakeS3 {
    child: std::process::Child,
    port: u16,
}

impl FakeS3 {
    fn start(bucket: &str) -> FakeS3 {
        let server = crate::harness::needs::moto_server();
        let port = crate::smtp::free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start {} (moto[server]; scripts/test installs it): {e}",
                    server.display()
                )
            });
        let s3 = FakeS3 { child, port };
        let up = crate::daemon::wait_until(std::time::Duration::from_secs(30), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "moto_server did not start");
        s3.boto(&format!("s3.create_bucket(Bucket='{bucket}')"));
        s3
    }

    /// Runs a statement with a boto3 client `s3` of this server and returns what it printed.
    fn boto(&self, code: &str) -> String {
        let python = crate::harness::needs::python();
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url='http://127.0.0.1:{}', \
             aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')\n{code}\n",
            self.port
        );
        let out = Command::new(python)
            .arg("-c")
            .arg(script)
            .bounded_output()
            .unwrap();
        assert!(
            out.status.success(),
            "boto3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn objects(&self, bucket: &str) -> usize {
        self.boto(&format!(
            "print(sum(1 for p in s3.get_paginator('list_objects_v2').paginate(Bucket='{bucket}') for _ in p.get('Contents', [])))"
        ))
        .trim()
        .parse()
        .unwrap()
    }
}

impl Drop for FakeS3 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The lake's data on S3 (moto_server on 127.0.0.1): files load, maintenance merges and
/// deletes objects, and an analyst reads the votes through the same store.
#[test]
fn a_lake_on_s3_loads_maintains_and_reads() {
    let env = Env::new();
    let pg = Postgres::start();
    let s3 = FakeS3::start("votewatch");
    let extra = format!(
        "[warehouse.ducklake.s3]\nendpoint = \"127.0.0.1:{}\"\nurl_style = \"path\"\nuse_ssl = false",
        s3.port
    );
    env.write(
        "votewatch.toml",
        lake_config_at(&pg, "s3://votewatch/lake/", &extra),
    );
    let run = |args: &[&str]| {
        let out = env
            .command()
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .args(args)
            .bounded_output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(0), "{text}");
        text
    };
    for k in 0..4 {
        let name = format!("f{k}.jsonl");
        env.write(&name, votes(1 + k * 200, 200));
        run(&["ingest", "--config", "votewatch.toml", &name]);
    }
    // Large enough to be streamed to its Parquet file in the bucket while it is read.
    env.write("big.jsonl", votes(1001, 20_000));
    run(&["ingest", "--config", "votewatch.toml", "big.jsonl"]);
    let before = s3.objects("votewatch");
    assert!(before >= 5, "{before} objects after 5 loads");
    let streamed = s3.boto(
        "print(sum(1 for p in s3.get_paginator('list_objects_v2').paginate(Bucket='votewatch', \
         Prefix='lake/blog_analysis/votes/votewatch-') for _ in p.get('Contents', [])))",
    );
    assert_eq!(
        streamed.trim(),
        "1",
        "the large load's own Parquet file in the bucket"
    );
    run(&[
        "maintain",
        "--config",
        "votewatch.toml",
        "--retention-days",
        "0",
    ]);
    run(&[
        "maintain",
        "--config",
        "votewatch.toml",
        "--retention-days",
        "0",
    ]);
    let after = s3.objects("votewatch");
    assert!(after < before, "{before} → {after} objects");
    let secret = format!(
        "CREATE SECRET (TYPE s3, KEY_ID 'test', SECRET 'test', REGION 'us-east-1', \
         ENDPOINT '127.0.0.1:{}', URL_STYLE 'path', USE_SSL false)",
        s3.port
    );
    let totals = analyst_at(
        &env,
        &pg,
        "s3://votewatch/lake/",
        &secret,
        "SELECT count(*), count(DISTINCT id), max(id) FROM blog_analysis.votes",
    );
    assert_eq!(totals, "20800 20800 21000\n");
}

/// The files of `staging` named in `names`, moved into `env`'s landing/ as a supplier would.
fn publish(env: &Env, staging: &Path, names: &[String]) {
    std::fs::create_dir_all(env.path("landing")).unwrap();
    for n in names {
        std::fs::rename(staging.join(n), env.path("landing").join(n)).unwrap();
    }
}

/// One host's daemon killed with SIGKILL at many moments while files flow into both hosts (its
/// kills land while it loads, commits or holds the lake's write lock); the other host keeps
/// loading throughout, never blocked by a dead holder's lock. At the end every file of both
/// hosts is archived with one ledger row naming its host, every Id is in the lake once, and
/// every arrival was reported.
#[test]
fn kill_9_of_one_host_while_both_load_loses_and_doubles_nothing() {
    use crate::daemon::Daemon;
    use std::time::Duration;
    const WAIT: Duration = Duration::from_secs(120);
    let h = TwoHosts::new(["a", "b"], "lock_timeout_secs = 20");
    let (a, b) = (&h.a, &h.b);
    // Large enough that each load streams its new rows to a Parquet file of its own.
    let rows = 20_000i64;
    let stage = |env: &Env, prefix: &str, first: i64, n: i64| -> Vec<String> {
        let dir = env.path("staging");
        std::fs::create_dir_all(&dir).unwrap();
        (0..n)
            .map(|k| {
                let name = format!("{prefix}{k:02}.jsonl");
                // Host b's files overlap a's by half.
                std::fs::write(dir.join(&name), votes(first + k * rows, rows)).unwrap();
                name
            })
            .collect()
    };
    let a_files = stage(a, "a", 1, 24);
    let b_files = stage(b, "b", 1 + rows / 2, 24);
    let db = Daemon::start(b);
    let delays = [40u64, 220, 90, 310, 15, 150];
    for (round, delay) in delays.iter().enumerate() {
        let d = Daemon::launch(a, &[]);
        publish(a, &a.path("staging"), &a_files[round * 4..round * 4 + 4]);
        publish(b, &b.path("staging"), &b_files[round * 4..round * 4 + 4]);
        // Killed while its loads run: some time after its first commit of the round.
        d.wait_log("file done", WAIT);
        std::thread::sleep(Duration::from_millis(*delay));
        d.kill9();
    }
    let da = Daemon::start(a);
    wait_processed(a, &da, 24, WAIT);
    wait_processed(b, &db, 24, WAIT);
    assert_eq!(da.stop().0, 0);
    assert_eq!(db.stop().0, 0);
    let totals =
        h.query("SELECT count(*), count(DISTINCT id), min(id), max(id) FROM blog_analysis.votes");
    let last = 1 + rows / 2 + 24 * rows - 1;
    assert_eq!(totals, format!("{last} {last} 1 {last}\n"));
    let ledger = h.query(
        "SELECT host_id, count(*), count(DISTINCT file_name), \
         count(*) FILTER (WHERE status = 'loaded' AND archived_to IS NOT NULL AND report_queued) \
         FROM blog_analysis.ingested_files GROUP BY host_id ORDER BY host_id",
    );
    assert_eq!(
        ledger,
        "a 24 24 24\nb 24 24 24\n",
        "{}",
        h.query(
            "SELECT host_id, file_name, status, archived_to IS NOT NULL, report_queued, error \
             FROM blog_analysis.ingested_files WHERE status <> 'loaded' OR NOT report_queued"
        )
    );
    // The Parquet files of killed loads are orphans: `maintain` deletes them, and every file
    // of votewatch's left on disk is one the lake uses.
    maintain_all(a);
    let used = h.query(
        "SELECT path FROM __ducklake_metadata_lake.ducklake_data_file WHERE end_snapshot IS NULL",
    );
    let left: Vec<String> = votewatch_files(&h.data)
        .into_iter()
        .filter(|n| !used.lines().any(|u| u.ends_with(n.as_str())))
        .collect();
    assert!(left.is_empty(), "orphaned Parquet files left: {left:?}");
}

/// An analyst's transaction holding a snapshot while a load commits: the load is not blocked
/// (it finishes while the snapshot is held), the open transaction keeps seeing the old
/// snapshot, and the next one sees the new rows.
#[test]
fn a_reader_holding_a_snapshot_neither_blocks_a_load_nor_sees_it_half() {
    use std::io::Write;
    let (env, pg, data) = one_lake("");
    env.write("first.jsonl", votes(1, 1000));
    env.write("second.jsonl", votes(1001, 500));
    ingest_ok(&env, "first.jsonl");
    let python = crate::harness::needs::python();
    let script = r#"
import sys, duckdb
repo, ext, conninfo, data = sys.argv[1:]
con = duckdb.connect(config={"custom_extension_repository": repo, "extension_directory": ext})
for e in ("ducklake", "postgres"):
    con.install_extension(e)
con.sql(f"ATTACH 'ducklake:postgres:{conninfo}' AS lake (DATA_PATH '{data}/', READ_ONLY)")
con.sql("USE lake")
count = lambda: con.sql("SELECT count(*) FROM blog_analysis.votes").fetchone()[0]
con.sql("BEGIN TRANSACTION")
print("held", count(), flush=True)
sys.stdin.readline()
print("same", count(), flush=True)
con.sql("COMMIT")
print("next", count(), flush=True)
"#;
    let mut reader = Command::new(python)
        .arg("-c")
        .arg(script)
        .arg(extension_repo())
        .arg(env.path("analyst-extensions"))
        .arg(pg.conninfo())
        .arg(&data)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = Lines::new(reader.stdout.take().unwrap());
    assert_eq!(lines.next_line(PROCESS_LIMIT), "held 1000");
    // The load runs and commits while the reader's transaction is open.
    ingest_ok(&env, "second.jsonl");
    writeln!(reader.stdin.take().unwrap(), "go").unwrap();
    assert_eq!(lines.next_line(PROCESS_LIMIT), "same 1000");
    assert_eq!(lines.next_line(PROCESS_LIMIT), "next 1500");
    assert!(wait_bounded(&mut reader, PROCESS_LIMIT, "the analyst's reader").success());
}

/// Two daemons on two landing folders, one lake, 100 files each: Ids overlapping across the
/// hosts, and ten files of one host byte-identical to files of the other. Every Id once, every
/// content loaded once, every file archived with one ledger row naming its host.
#[test]
fn two_hosts_a_hundred_files_each_overlapping_and_identical() {
    use crate::daemon::Daemon;
    const WAIT: std::time::Duration = std::time::Duration::from_secs(300);
    let h = TwoHosts::new(["a", "b"], "");
    let (a, b) = (&h.a, &h.b);
    let rows = 300i64;
    let (sa, sb) = (a.path("staging"), b.path("staging"));
    std::fs::create_dir_all(&sa).unwrap();
    std::fs::create_dir_all(&sb).unwrap();
    let mut a_files = Vec::new();
    let mut b_files = Vec::new();
    for k in 0..100i64 {
        let name = format!("a{k:03}.jsonl");
        std::fs::write(sa.join(&name), votes(1 + k * rows, rows)).unwrap();
        a_files.push(name);
        let name = format!("b{k:03}.jsonl");
        if k < 90 {
            // Half of a's file k and half of its file k + 1.
            std::fs::write(sb.join(&name), votes(1 + rows / 2 + k * rows, rows)).unwrap();
        } else {
            // The same bytes as a's file k - 90.
            std::fs::copy(sa.join(&a_files[(k - 90) as usize]), sb.join(&name)).unwrap();
        }
        b_files.push(name);
    }
    let da = Daemon::start(a);
    let db = Daemon::start(b);
    publish(a, &sa, &a_files);
    publish(b, &sb, &b_files);
    wait_processed(a, &da, 100, WAIT);
    wait_processed(b, &db, 100, WAIT);
    assert_eq!(da.stop().0, 0);
    assert_eq!(db.stop().0, 0);
    let totals = h.query("SELECT count(*), count(DISTINCT id), max(id) FROM blog_analysis.votes");
    assert_eq!(totals, "30000 30000 30000\n");
    let ledger = h.query(
        "SELECT count(*), count(DISTINCT id), sum(rows_inserted), \
         count(*) FILTER (WHERE status = 'duplicate_file'), \
         count(DISTINCT sha256) FILTER (WHERE status IN ('loaded', 'partial')), \
         count(*) FILTER (WHERE archived_to IS NOT NULL), \
         count(*) FILTER (WHERE host_id = 'a'), count(*) FILTER (WHERE host_id = 'b') \
         FROM blog_analysis.ingested_files",
    );
    assert_eq!(ledger, "200 200 30000 10 190 200 100 100\n");
}

/// The same files on DuckLake and on a DuckDB file give the same ledger counts and the same
/// votes: Ids the warehouse held, exact repeats and a conflicting version of rows that went
/// straight in earlier in the file, and a file rejected whole after thousands of valid rows.
/// `k` scales every count: at 10 the lake loads write their new rows to Parquet files of their
/// own while they read (the one rejected whole is not added, and deleted).
fn lake_matches_file_mode(k: i64) -> (Env, PathBuf) {
    let (env, pg, data) = one_lake("");
    env.write("base.jsonl", votes(1, 3000 * k));
    // 1,000k Ids the warehouse holds, then 4,000k new ones, then exact repeats and a
    // conflicting version of rows that went straight in long before.
    let big = format!(
        "{}\n{}\n{}\n{}\n",
        votes(2000 * k + 1, 5000 * k),
        vote(3500 * k, "2022-01-03T00:00:00.000"),
        vote(7000 * k - 1, "2022-01-03T00:00:00.000"),
        vote(4000 * k, "2023-05-05T00:00:00.000"),
    );
    env.write("big.jsonl", big);
    // 2,500k new rows, then more bad lines than good: rejected whole.
    env.write(
        "rejected.jsonl",
        format!(
            "{}\n{}",
            votes(10_000 * k + 1, 2500 * k),
            "not json\n".repeat(3000 * k as usize)
        ),
    );
    let files = ["base.jsonl", "big.jsonl", "rejected.jsonl"];
    let lake = env.run(&[&["ingest", "--config", "votewatch.toml"][..], &files].concat());
    let file = env.ingest(&files);
    assert_eq!(lake.code, file.code, "{}{}", lake.stdout, lake.stderr);
    let ledger = "SELECT concat_ws(' ', file_name, status, lines_read, rows_inserted, \
                  duplicates_in_file, already_in_warehouse, conflicting, rejected) \
                  FROM blog_analysis.ingested_files ORDER BY id";
    let votes_summary = "SELECT concat_ws(' ', count(*), count(DISTINCT id), sum(id), \
                         sum(epoch(creation_date))::BIGINT) FROM blog_analysis.votes";
    let as_text = |rows: Vec<Vec<String>>| -> String {
        rows.iter().map(|r| format!("{}\n", r.join(" "))).collect()
    };
    let lake_ledger = analyst(&env, &pg, &data, ledger);
    assert_eq!(lake_ledger, as_text(env.rows(ledger)));
    let expected = format!(
        "big.jsonl loaded {} {} 2 {} 1 0",
        5000 * k + 3,
        4000 * k,
        1000 * k
    );
    assert!(lake_ledger.contains(&expected), "{lake_ledger}");
    assert!(
        lake_ledger.contains("rejected.jsonl rejected"),
        "{lake_ledger}"
    );
    assert_eq!(
        analyst(&env, &pg, &data, votes_summary),
        as_text(env.rows(votes_summary))
    );
    (env, data)
}

#[test]
fn the_lake_counts_and_keeps_what_the_file_mode_does() {
    lake_matches_file_mode(1);
}

#[test]
fn streamed_lake_loads_count_and_keep_what_the_file_mode_does() {
    let (_env, data) = lake_matches_file_mode(10);
    // base.jsonl and big.jsonl wrote their own files; rejected.jsonl's was deleted.
    assert_eq!(
        votewatch_files(&data).len(),
        2,
        "{:?}",
        votewatch_files(&data)
    );
}

/// `unload` (with `--reload-later`) and `reingest` on a lake, as on a DuckDB file.
#[test]
fn unload_and_reingest_work_on_the_lake() {
    let (env, pg, data) = one_lake("");
    env.write("f1.jsonl", votes(1, 100));
    env.write("f2.jsonl", votes(50, 101));
    let cfg = ["--config", "votewatch.toml"];
    let run = env.run(&[&["ingest"][..], &cfg, &["f1.jsonl", "f2.jsonl"]].concat());
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = env.run(&[&["unload", "1", "--reload-later"][..], &cfg].concat());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("removed 100 votes"), "{}", run.stdout);
    assert!(
        run.stdout.contains("loaded 51 freed Ids again"),
        "{}",
        run.stdout
    );
    let q = "SELECT count(*), min(id), max(id), count(*) FILTER (WHERE file_id = 2) FROM blog_analysis.votes";
    assert_eq!(analyst(&env, &pg, &data, q), "101 50 150 101\n");
    let run = env.run(&[&["reingest", "1"][..], &cfg].concat());
    assert_eq!(run.code, 0, "{}{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("inserted 49"), "{}", run.stdout);
    assert_eq!(analyst(&env, &pg, &data, q), "150 1 150 101\n");
    assert_eq!(
        analyst(
            &env,
            &pg,
            &data,
            "SELECT file_id, votes_removed, reloaded FROM blog_analysis.unloads"
        ),
        "1 100 51\n"
    ); // The other operators' commands on the lake: history with filters, status, check-config.
    let run = env.run(
        &[
            &["history", "--status", "unloaded", "--format", "json"][..],
            &cfg,
        ]
        .concat(),
    );
    let rows: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(rows.len(), 1, "{}", run.stdout);
    assert_eq!(rows[0]["file"], "f1.jsonl");
    let run = env.run(&[&["status", "--format", "json"][..], &cfg].concat());
    let doc: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(doc["files"]["loaded"], 2, "{}", run.stdout);
    let run = env.run(&[&["check-config"][..], &cfg].concat());
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert!(
        run.stdout
            .contains("ok      warehouse: the lake opens; 3 ledger rows"),
        "{}",
        run.stdout
    );
}

/// A host reads and stages its file without the write lock, so another host loads meanwhile:
/// host B stalls after staging Ids n+1..3n (all above the lake's maximum when it began), host
/// A commits Ids 2n+1..4n in that time (the first half of the overlap with B's values, the
/// second with others), then B commits. A is not held up by B, and B checks its rows against
/// what A committed: every Id once, A's values kept, and B's ledger row counts the overlap as
/// already there or conflicting, without a retry. Small files stage their new rows in a temp
/// table; large ones stream them to a Parquet file, which B must then not add to the lake.
fn late_overlap(n: i64) -> TwoHosts {
    let hosts = TwoHosts::new(["host-a", "host-b"], "");
    let (a, b) = (&hosts.a, &hosts.b);
    a.write("base.jsonl", votes(1, n));
    ingest_ok(a, "base.jsonl");

    b.write("b.jsonl", votes(n + 1, 2 * n));
    let a_file: Vec<String> = (2 * n + 1..=4 * n)
        .map(|id| {
            let date = if id <= 5 * n / 2 {
                "2022-01-03T00:00:00.000"
            } else {
                "2023-05-05T00:00:00.000"
            };
            vote(id, date)
        })
        .collect();
    a.write("a.jsonl", a_file.join("\n"));

    let staging = HeldIngest::start(b, "mid_load", "b.jsonl");
    // B has staged rows and waits; A loads and commits in the meantime.
    ingest_ok(a, "a.jsonl");
    let (status, rest) = staging.resume();
    assert!(status.success(), "{rest}");
    assert!(!rest.contains("conflicted"), "{rest}");

    assert_eq!(
        hosts.query(&format!(
            "SELECT count(*), count(DISTINCT id), min(id), max(id), \
             count(*) FILTER (WHERE id > {} AND year(creation_date) = 2023) \
             FROM blog_analysis.votes",
            5 * n / 2
        )),
        format!("{} {} 1 {} {}\n", 4 * n, 4 * n, 4 * n, 3 * n / 2)
    );
    // In commit order (ledger ids follow the order loads began: B drew its id before A).
    assert_eq!(
        hosts.query(
            "SELECT host_id, rows_inserted, already_in_warehouse, conflicting, max_vote_id \
             FROM blog_analysis.ingested_files ORDER BY finished_at"
        ),
        format!(
            "host-a {n} 0 0 {n}\nhost-a {} 0 0 {}\nhost-b {n} {} {} {}\n",
            2 * n,
            4 * n,
            n / 2,
            n / 2,
            4 * n
        )
    );
    // B's rows carry B's ledger id; A's rows A's.
    assert_eq!(
        hosts.query(
            "SELECT l.host_id, l.file_name, count(*), min(v.id), max(v.id) \
             FROM blog_analysis.votes v JOIN blog_analysis.ingested_files l ON l.id = v.file_id \
             GROUP BY ALL ORDER BY 4"
        ),
        format!(
            "host-a base.jsonl {n} 1 {n}\nhost-b b.jsonl {n} {} {}\nhost-a a.jsonl {} {} {}\n",
            n + 1,
            2 * n,
            2 * n,
            2 * n + 1,
            4 * n
        )
    );
    hosts
}

#[test]
fn a_load_staged_without_the_lock_rechecks_ids_another_host_committed() {
    late_overlap(100);
}

/// The same with files large enough to stream their new rows to Parquet while they are read:
/// A's file is added to the lake as written; B's, which holds Ids A loaded first, is not (its
/// other rows go in by INSERT) and is deleted.
#[test]
fn a_streamed_load_rechecks_ids_another_host_committed_and_drops_its_file() {
    let hosts = late_overlap(20_000);
    let ledger_id = |name: &str| -> String {
        hosts
            .query(&format!(
                "SELECT id FROM blog_analysis.ingested_files WHERE file_name = '{name}'"
            ))
            .trim()
            .to_string()
    };
    let folder = hosts.data.join("blog_analysis/votes");
    let a_file = folder.join(format!("votewatch-{}.parquet", ledger_id("a.jsonl")));
    let b_file = folder.join(format!("votewatch-{}.parquet", ledger_id("b.jsonl")));
    assert!(a_file.exists(), "{} missing", a_file.display());
    assert!(!b_file.exists(), "{} left behind", b_file.display());
    assert_eq!(
        hosts.query(
            "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_data_file \
             WHERE path LIKE 'votewatch-%' AND end_snapshot IS NULL"
        ),
        "2\n"
    );
}

/// A process that dies after writing a load's Parquet file, before its commit, leaves that
/// file behind unknown to the lake: nothing of it is visible, the file loads again in full,
/// and `maintain` deletes the orphan.
#[test]
fn a_crash_after_the_parquet_file_is_written_leaves_an_orphan_that_maintain_deletes() {
    let (env, pg, data) = one_lake("");
    env.write("big.jsonl", votes(1, 30_000));
    let crashed = env
        .command()
        .env(votewatch::testing::failpoint::ENV, "before_commit")
        .args(["ingest", "--config", "votewatch.toml", "big.jsonl"])
        .bounded_output()
        .unwrap();
    assert_ne!(crashed.status.code(), Some(0));
    let orphans = votewatch_files(&data);
    assert_eq!(orphans.len(), 1, "{orphans:?}");
    assert_eq!(
        analyst(&env, &pg, &data, "SELECT count(*) FROM blog_analysis.votes"),
        "0\n"
    );
    ingest_ok(&env, "big.jsonl");
    maintain_all(&env);
    assert!(
        !votewatch_files(&data).contains(&orphans[0]),
        "{} still there",
        orphans[0]
    );
    assert_eq!(
        analyst(
            &env,
            &pg,
            &data,
            "SELECT count(*), count(DISTINCT id) FROM blog_analysis.votes"
        ),
        "30000 30000\n"
    );
}

/// The names of the Parquet files votewatch wrote under a lake's data folder.
fn votewatch_files(data: &Path) -> Vec<String> {
    walk(data)
        .iter()
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("votewatch-"))
        .collect()
}

/// `votewatch maintain` with retention 0, twice: the second run deletes what the first one's
/// merge replaced.
fn maintain_all(env: &Env) {
    for _ in 0..2 {
        let run = env.run(&[
            "maintain",
            "--config",
            "votewatch.toml",
            "--retention-days",
            "0",
        ]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
}

/// Ledger ids on a lake come from the catalog's sequence, which every open creates when
/// missing and moves past the ledger's highest id (a lake whose ledger began without it): ids
/// stay unique and increasing.
#[test]
fn ledger_ids_continue_past_the_ledger_when_the_sequence_is_new() {
    let (env, pg, data) = one_lake("");
    for k in 0..2 {
        let name = format!("f{k}.jsonl");
        env.write(&name, votes(1 + k * 10, 10));
        ingest_ok(&env, &name);
    }
    assert_eq!(pg.psql("SELECT last_value FROM votewatch_ledger_id"), "2\n");
    // As a lake made before the sequence existed.
    pg.psql("DROP SEQUENCE votewatch_ledger_id");
    env.write("f2.jsonl", votes(21, 10));
    ingest_ok(&env, "f2.jsonl");
    assert_eq!(
        analyst(
            &env,
            &pg,
            &data,
            "SELECT string_agg(id::VARCHAR, ' ' ORDER BY id) FROM blog_analysis.ingested_files"
        ),
        "1 2 3\n"
    );
}

/// `votewatch ingest` of one file into the lake of `env`'s configuration, which must succeed.
fn ingest_ok(env: &Env, file: &str) {
    let run = env.run(&["ingest", "--config", "votewatch.toml", file]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// Issue 17: the fence. A writer that ignores the write lock (here an analyst's client with
/// write access) commits a change of the fence row while a votewatch load holds the lock and
/// has updated the fence too but not committed: DuckLake refuses the load's commit as a
/// conflict, nothing of that attempt stays, and votewatch loads the file again — every vote
/// once, one ledger row, and the fence counts both writers' commits.
#[test]
fn the_fence_refuses_a_load_that_overlapped_another_write() {
    let (env, pg, data) = one_lake("");
    env.write("a.jsonl", votes(1, 50));
    let load = HeldIngest::start(&env, "fenced", "a.jsonl");
    let data_path = format!("{}/", data.display());
    let fence = "SELECT n FROM blog_analysis.load_fence";
    let before = lake_client(&env, &pg, &data_path, "", fence, ", READ_ONLY");
    lake_client(
        &env,
        &pg,
        &data_path,
        "",
        "UPDATE blog_analysis.load_fence SET n = n + 1",
        "",
    );
    let (status, rest) = load.resume();
    assert!(status.success(), "{rest}");
    assert!(
        rest.contains("the load conflicted with another host's; loading the file again"),
        "{rest}"
    );
    let before: i64 = before.trim().parse().unwrap();
    assert_eq!(
        analyst(&env, &pg, &data, fence).trim(),
        (before + 2).to_string()
    );
    assert_eq!(
        analyst(
            &env,
            &pg,
            &data,
            "SELECT count(*), count(DISTINCT id) FROM blog_analysis.votes"
        ),
        "50 50\n"
    );
    assert_eq!(
        analyst(
            &env,
            &pg,
            &data,
            "SELECT count(*), min(status) FROM blog_analysis.ingested_files"
        ),
        "1 loaded\n"
    );
}

/// Issue 17: the write lock's timeout. While another session holds the lake's advisory lock
/// (a host in a long load or maintenance), `ingest` waits `lock_timeout_secs`, then fails with
/// a message that says so and leaves the lake as it was; once the lock is free it loads.
#[test]
fn a_held_write_lock_times_out_with_a_clear_error_and_loads_nothing() {
    let (env, pg, data) = one_lake("lock_timeout_secs = 1");
    // The schema exists before the lock is taken away.
    env.write("first.jsonl", votes(1, 5));
    ingest_ok(&env, "first.jsonl");
    let mut holder = hold_write_lock(&pg);
    env.write("second.jsonl", votes(100, 5));
    let started = std::time::Instant::now();
    let run = env.run(&["ingest", "--config", "votewatch.toml", "second.jsonl"]);
    let waited = started.elapsed();
    assert_ne!(run.code, 0, "{}{}", run.stdout, run.stderr);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("write lock"), "{said}");
    assert!(waited >= std::time::Duration::from_secs(1), "{waited:?}");
    assert_eq!(
        analyst(&env, &pg, &data, "SELECT count(*) FROM blog_analysis.votes"),
        "5\n"
    );
    // The other session ends; its lock goes with it.
    let _ = holder.kill();
    let _ = holder.wait();
    ingest_ok(&env, "second.jsonl");
    assert_eq!(
        analyst(&env, &pg, &data, "SELECT count(*) FROM blog_analysis.votes"),
        "10\n"
    );
}

/// A PostgreSQL session holding the lake's write lock (as another host's long load or
/// maintenance would) until it is killed.
fn hold_write_lock(pg: &Postgres) -> std::process::Child {
    let mut holder = pg.0.session("postgres").unwrap();
    {
        use std::io::Write;
        let stdin = holder.stdin.as_mut().unwrap();
        writeln!(
            stdin,
            "SELECT pg_advisory_lock({});",
            votewatch::warehouse::LAKE_LOCK_KEY
        )
        .unwrap();
        stdin.flush().unwrap();
    }
    assert!(crate::daemon::wait_until(
        std::time::Duration::from_secs(30),
        || pg.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")
            == "1\n"
    ));
    holder
}

/// Issue 19, item 1: while another host holds the lake's write lock the daemon's wait keeps
/// systemd's watchdog fed (pings counted on a test notify socket), `/healthz` (200) and
/// `/status` say what it waits for and since when, and SIGTERM ends the wait and the daemon
/// (the lock timeout is the default 600 s, so a wait that ignored the stop would outlast the
/// test's bound). The file stays claimed, not counted against: once the lock is free a new
/// daemon loads it once.
#[test]
fn waiting_for_the_write_lock_feeds_the_watchdog_says_so_and_answers_sigterm() {
    use crate::daemon::{drop_file, http_addr, http_get, Daemon};
    use std::time::{Duration, Instant};
    let (env, pg, data) = one_lake("");
    let config = std::fs::read_to_string(env.path("votewatch.toml")).unwrap();
    env.write(
        "votewatch.toml",
        config.replace("http_listen = \"\"", "http_listen = \"127.0.0.1:0\""),
    );
    env.write("first.jsonl", votes(1, 5));
    ingest_ok(&env, "first.jsonl");
    let socket_path = env.path("notify.sock");
    let pings = crate::daemon::PingCounter::listen(&socket_path);
    let d = Daemon::start_with(
        &env,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "300000"),
        ],
    );
    let addr = http_addr(&d);
    let mut holder = hold_write_lock(&pg);
    drop_file(&env, "a.jsonl", votes(100, 5));
    let mut health = (0, String::new());
    assert!(
        crate::daemon::wait_until(Duration::from_secs(60), || {
            health = http_get(&addr, "/healthz");
            health.1.contains("waiting for the lake's write lock since")
        }),
        "{health:?}\n{}",
        d.log()
    );
    assert_eq!(health.0, 200, "{health:?}");
    let status: serde_json::Value = serde_json::from_str(&http_get(&addr, "/status").1).unwrap();
    assert_eq!(
        status["waiting"]["for"], "waiting for the lake's write lock",
        "{status}"
    );
    // Well past the watchdog period (0.3 s), the wait keeps feeding it.
    let before = pings.count();
    let window = Instant::now();
    assert!(crate::daemon::wait_until(
        Duration::from_secs(60),
        || window.elapsed() >= Duration::from_millis(1500) && pings.count() >= before + 5
    ));
    let fed = pings.count() - before;
    assert!(
        fed * 300 >= window.elapsed().as_millis() as usize,
        "only {fed} watchdog pings in {:?} of waiting for the lock",
        window.elapsed()
    );
    assert!(
        health_still_waiting(&addr),
        "the wait ended while the lock was held"
    );
    // SIGTERM ends the wait: the daemon exits cleanly, the file stays claimed.
    d.signal("TERM");
    assert_eq!(d.wait_exit(Duration::from_secs(30)), Some(0));
    assert!(crate::daemon::names(&env.path("processed")).is_empty());
    // The lock is released; a new daemon loads the file, once, not set aside.
    let _ = holder.kill();
    let _ = holder.wait();
    let d = Daemon::start(&env);
    wait_processed(&env, &d, 1, Duration::from_secs(60));
    assert_eq!(d.stop().0, 0);
    assert_eq!(
        analyst(
            &env,
            &pg,
            &data,
            "SELECT file_name, status, error IS NULL FROM blog_analysis.ingested_files ORDER BY id"
        ),
        "first.jsonl loaded True\na.jsonl loaded True\n"
    );
}

/// Whether `/healthz` still says the daemon waits for the write lock.
fn health_still_waiting(addr: &str) -> bool {
    crate::daemon::http_get(addr, "/healthz")
        .1
        .contains("waiting for the lake's write lock")
}

/// `votewatch ingest FILE` (the lake of `env`'s configuration) held at a failpoint, where it
/// stalls until resumed.
struct HeldIngest {
    child: std::process::Child,
    stderr: Lines,
    resume: PathBuf,
}

impl HeldIngest {
    /// Starts the ingest and waits until it reached `point`.
    fn start(env: &Env, point: &str, file: &str) -> HeldIngest {
        let resume = env.path(&format!("resume-{point}"));
        let mut child = env
            .command()
            .env(votewatch::testing::failpoint::ENV, point)
            .env(votewatch::testing::failpoint::RESUME_ENV, &resume)
            .args(["ingest", "--config", "votewatch.toml", file])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = Lines::new(child.stderr.take().unwrap());
        stderr.wait_for(&format!("failpoint {point} reached"), PROCESS_LIMIT);
        HeldIngest {
            child,
            stderr,
            resume,
        }
    }

    /// Lets it go on; its exit status and all it logged.
    fn resume(mut self) -> (std::process::ExitStatus, String) {
        std::fs::write(&self.resume, "").unwrap();
        self.stderr.rest(PROCESS_LIMIT);
        let status = wait_bounded(&mut self.child, PROCESS_LIMIT, "the held ingest");
        (status, self.stderr.seen().to_string())
    }
}

/// Posts on a lake: the same posts, versions and weekly means as in a DuckDB file, for the real
/// votes and posts and a re-delivery with changed scores.
#[test]
fn posts_on_a_lake_give_what_a_duckdb_file_gives() {
    let (env, pg, data) = one_lake("");
    let posts = test_data("posts.jsonl.zst");
    let votes = test_data("votes.jsonl.zst");
    let raw = zstd::decode_all(&std::fs::read(&posts).unwrap()[..]).unwrap();
    let changed: Vec<String> = String::from_utf8(raw)
        .unwrap()
        .lines()
        .take(200)
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["Score"] = "77".into();
            v["LastActivityDate"] = "2031-01-01T00:00:00".into();
            v.to_string()
        })
        .collect();
    env.write("posts-2.jsonl", changed.join("\n"));
    let files = [
        posts.to_str().unwrap(),
        votes.to_str().unwrap(),
        "posts-2.jsonl",
    ];
    for f in files {
        let lake = env.run(&["ingest", "--config", "votewatch.toml", f]);
        assert_eq!(lake.code, 0, "{}{}", lake.stdout, lake.stderr);
        let file = env.ingest(&[f]);
        assert_eq!(file.code, 0, "{}{}", file.stdout, file.stderr);
    }
    let as_text = |rows: Vec<Vec<String>>| -> String {
        rows.iter().map(|r| format!("{}\n", r.join(" "))).collect()
    };
    for q in [
        r#"SELECT concat_ws(' ', "Year", "WeekNumber", "PostCount", "VoteCount")
           FROM blog_analysis.mean_votes_per_post_per_week"#,
        "SELECT concat_ws(' ', count(*), sum(id), sum(score), sum(epoch_us(valid_from))) \
         FROM blog_analysis.posts",
        "SELECT concat_ws(' ', count(*), sum(id), sum(score), sum(epoch_us(valid_to))) \
         FROM blog_analysis.posts_history",
        "SELECT concat_ws(' ', dataset, status, rows_inserted, rows_updated, already_in_warehouse) \
         FROM blog_analysis.ingested_files ORDER BY id",
    ] {
        let lake = analyst(&env, &pg, &data, q);
        assert!(!lake.is_empty(), "{q}");
        assert_eq!(lake, as_text(env.rows(q)), "{q}");
    }
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.posts_history"),
        200
    );
}

/// The values of `key=` lines in a systemd unit file's text.
fn unit_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .collect()
}

/// Whether this machine lets a test make a mount namespace (root, `unshare` and `mount`
/// from util-linux, namespaces allowed): a bind mount made read-only inside one.
fn mount_namespaces() -> bool {
    Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c"])
        .arg("mount -o remount,bind,ro /")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The lake's daemon under the restrictions the unit and the DuckLake drop-in set, as far as
/// a test can set them without systemd: the file system read-only (`ProtectSystem=strict`)
/// but for the state directory (`StateDirectory=`, here the test's folder) and the lake's data
/// folder (the drop-in's `ReadWritePaths=`, here a folder outside the state directory), and
/// the catalog password as a credential (`LoadCredential=catalog-password`). The catalog is
/// on 127.0.0.1, which the unit's `IPAddressAllow=localhost` lets through; address filters
/// need systemd and are checked by `systemd-analyze verify` in CI only. Files dropped are
/// loaded into the lake, and a write anywhere else fails in the daemon's namespace.
#[test]
fn the_lake_daemon_loads_under_the_units_restrictions() {
    use crate::daemon::{drop_file, wait_until, Daemon};
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join("systemd/votewatch.service")).unwrap();
    let dropin =
        std::fs::read_to_string(root.join("systemd/votewatch.service.d/ducklake.conf")).unwrap();
    assert_eq!(unit_values(&unit, "ProtectSystem"), ["strict"]);
    assert_eq!(unit_values(&unit, "StateDirectory"), ["votewatch"]);
    assert_eq!(unit_values(&dropin, "ReadWritePaths").len(), 1);
    let credential = unit_values(&dropin, "LoadCredential");
    assert!(
        credential.len() == 1 && credential[0].starts_with("catalog-password:"),
        "{credential:?}"
    );
    if !mount_namespaces() {
        eprintln!("skipped: this machine does not allow a test to make a mount namespace");
        return;
    }
    let env = Env::new();
    let pg = Postgres::start();
    // The data folder the drop-in opens, apart from the state directory.
    let data = tempfile::tempdir().unwrap();
    let credentials = tempfile::tempdir().unwrap();
    std::fs::write(
        credentials.path().join("catalog-password"),
        "unused-by-trust",
    )
    .unwrap();
    env.write(
        "votewatch.toml",
        lake_config(
            &pg,
            data.path(),
            "password_credential = \"catalog-password\"",
        ),
    );
    let outside = tempfile::tempdir().unwrap();
    let state = env.path("");
    let script = format!(
        "set -e
        mount --bind '{state}' '{state}'
        mount --bind '{data}' '{data}'
        mount -o remount,bind,ro /
        if touch '{outside}/probe' 2>/dev/null; then echo 'the sandbox is writable' >&2; exit 97; fi
        # Into the state directory again: the working directory was taken before its mount.
        cd '{state}'
        exec '{bin}' run --config votewatch.toml",
        state = state.display(),
        data = data.path().display(),
        outside = outside.path().display(),
        bin = crate::harness::bin(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .current_dir(&state)
        .env("CREDENTIALS_DIRECTORY", credentials.path());
    let d = Daemon::spawn(&env, cmd);
    // The daemon's own view: its root is mounted read-only.
    let mounts = std::fs::read_to_string(format!("/proc/{}/mountinfo", d.pid())).unwrap();
    let root_mount = mounts
        .lines()
        .find(|l| l.split_whitespace().nth(4) == Some("/"))
        .unwrap_or_default()
        .to_string();
    assert!(
        root_mount
            .split_whitespace()
            .nth(5)
            .unwrap_or("")
            .split(',')
            .any(|o| o == "ro"),
        "{root_mount}"
    );
    drop_file(&env, "a.jsonl", votes(1, 100));
    drop_file(&env, "b.jsonl", votes(101, 20_000));
    assert!(
        wait_until(std::time::Duration::from_secs(60), || {
            crate::daemon::names(&env.path("processed")) == ["a.jsonl", "b.jsonl"]
        }),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert!(!outside.path().join("probe").exists());
    // The 20k-row file went to a Parquet file of its own in the data folder.
    assert!(
        walk(data.path())
            .iter()
            .any(|p| p.extension().is_some_and(|e| e == "parquet")),
        "no Parquet file under the data folder"
    );
    let totals = analyst(
        &env,
        &pg,
        data.path(),
        "SELECT count(*), count(DISTINCT id) FROM blog_analysis.votes",
    );
    assert_eq!(totals, "20100 20100\n");
}
