//! `votewatch run`: the real daemon in a temporary folder, files dropped as suppliers do.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use crate::harness::{votes, BoundedOutput, Env};

/// How long a daemon may take to stop after SIGTERM before a test fails.
const STOP_LIMIT: Duration = Duration::from_secs(60);

pub(crate) const CONFIG: &str = r#"
[warehouse]
path = "warehouse.db"
[daemon]
settle_ms = 100
rescan_secs = 1
max_backoff_ms = 200
http_listen = "127.0.0.1:0"
"#;

/// A running daemon; killed when dropped.
pub struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    pub fn start(env: &Env) -> Daemon {
        Daemon::start_with(env, &[])
    }

    pub fn start_with(env: &Env, extra_env: &[(&str, &str)]) -> Daemon {
        let d = Daemon::launch(env, extra_env);
        d.wait_log("watching", Duration::from_secs(30));
        d
    }

    /// Starts `votewatch run` without waiting for it to watch landing/ (it may stop before,
    /// at a failpoint of its start-up recovery).
    pub fn launch(env: &Env, extra_env: &[(&str, &str)]) -> Daemon {
        if !env.path("votewatch.toml").exists() {
            env.write("votewatch.toml", CONFIG);
        }
        let mut cmd = env.command();
        cmd.args(["run", "--config", "votewatch.toml"]);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        Daemon::spawn_only(env, cmd)
    }

    /// Starts the daemon (without waiting for it to watch landing/) with the failpoint
    /// `point` armed: it stalls there until the returned file is written.
    pub fn launch_held(env: &Env, point: &str) -> (Daemon, PathBuf) {
        let resume = env.path(&format!("resume-{point}"));
        let d = Daemon::launch(
            env,
            &[
                (votewatch::testing::failpoint::ENV, point),
                (
                    votewatch::testing::failpoint::RESUME_ENV,
                    resume.to_str().unwrap(),
                ),
            ],
        );
        (d, resume)
    }

    /// As [`Daemon::launch_held`], once the daemon watches landing/.
    pub fn start_held(env: &Env, point: &str) -> (Daemon, PathBuf) {
        let (d, resume) = Daemon::launch_held(env, point);
        d.wait_log("watching", Duration::from_secs(30));
        (d, resume)
    }

    /// Runs `cmd` (a `votewatch run`, however started) with its log in a file, and waits
    /// until it watches landing/.
    pub fn spawn(env: &Env, cmd: std::process::Command) -> Daemon {
        let d = Daemon::spawn_only(env, cmd);
        d.wait_log("watching", Duration::from_secs(30));
        d
    }

    fn spawn_only(env: &Env, mut cmd: std::process::Command) -> Daemon {
        let log = env.path(&format!("daemon-{}.log", unique()));
        cmd.env("VOTEWATCH_LOG", "info")
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap());
        Daemon {
            child: Some(cmd.spawn().expect("start daemon")),
            log,
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn wait_log(&self, needle: &str, timeout: Duration) {
        let ok = wait_until(timeout, || self.log().contains(needle));
        assert!(ok, "daemon log never said {needle:?}:\n{}", self.log());
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn signal(&self, sig: &str) {
        let ok = std::process::Command::new("kill")
            .args([&format!("-{sig}"), &self.pid().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    }

    /// SIGTERM, then the exit status (-1 for death by a signal). A daemon that has not ended
    /// a minute later is killed and the test fails with its log.
    pub fn stop(mut self) -> (i32, Duration) {
        let t = Instant::now();
        self.signal("TERM");
        let mut child = self.child.take().unwrap();
        let Some(status) = child.wait_timeout(STOP_LIMIT).unwrap() else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the daemon did not stop within {STOP_LIMIT:?} of SIGTERM; killed. Its log:\n{}",
                self.log()
            );
        };
        (status.code().unwrap_or(-1), t.elapsed())
    }

    /// Waits for the process to end by itself (a failpoint abort).
    pub fn wait_exit(mut self, timeout: Duration) -> Option<i32> {
        let mut child = self.child.take().unwrap();
        match child.wait_timeout(timeout).unwrap() {
            Some(st) => Some(st.code().unwrap_or(-1)),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    pub fn kill9(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn unique() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// Writes under a temporary name, then renames into landing/: the safe way to drop a file.
pub fn drop_file(env: &Env, name: &str, body: impl AsRef<[u8]>) -> PathBuf {
    let tmp = env.write(&format!("landing/{name}.part"), body);
    let dest = env.path(&format!("landing/{name}"));
    fs::rename(&tmp, &dest).unwrap();
    dest
}

/// The names in `dir`, sorted (none when it does not exist), but the archive journal's.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != votewatch::journal::FILE_NAME)
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn processed(env: &Env) -> Vec<String> {
    names(&env.path("processed"))
}

fn landing(env: &Env) -> Vec<String> {
    names(&env.path("landing"))
}

pub(crate) const WAIT: Duration = Duration::from_secs(30);

#[test]
fn a_file_dropped_by_rename_is_loaded_and_archived() {
    let env = Env::new();
    let d = Daemon::start(&env);
    drop_file(&env, "a.jsonl", votes(1, 50));
    assert!(
        wait_until(WAIT, || processed(&env) == ["a.jsonl"]),
        "{}",
        d.log()
    );
    assert!(landing(&env).is_empty());
    let (code, _) = d.stop();
    assert_eq!(code, 0);
    assert_eq!(env.votes(), 50);
    let l = env.last_ledger();
    assert_eq!(l.status, "loaded");
    let archived = env.rows("SELECT archived_to FROM blog_analysis.ingested_files");
    assert!(
        archived[0][0].ends_with("processed/a.jsonl"),
        "{archived:?}"
    );
}

#[test]
fn a_slow_writer_is_loaded_once_and_complete() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let path = env.path("landing/slow.jsonl");
    let mut f = fs::File::create(&path).unwrap();
    for i in 0..20 {
        writeln!(f, "{}", votes(1 + i * 10, 10)).unwrap();
        f.flush().unwrap();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        processed(&env).is_empty(),
        "taken while still being written"
    );
    drop(f);
    assert!(
        wait_until(WAIT, || processed(&env) == ["slow.jsonl"]),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 200);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
        1
    );
}

#[test]
fn two_hundred_files_at_once_are_each_loaded_once() {
    let env = Env::new();
    let d = Daemon::start(&env);
    for i in 0..200 {
        drop_file(&env, &format!("f{i:03}.jsonl"), votes(1 + i * 5, 5));
    }
    assert!(
        wait_until(Duration::from_secs(120), || processed(&env).len() == 200),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 1000);
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
        200
    );
    assert_eq!(env.count("SELECT count(DISTINCT file_name) FROM blog_analysis.ingested_files WHERE status = 'loaded'"), 200);
}

#[test]
fn files_waiting_at_start_are_loaded_and_folders_are_created() {
    let env = Env::new();
    env.write("landing/early.jsonl", votes(1, 7));
    env.write("landing/notes.txt", "not a vote file");
    env.write("landing/.hidden.jsonl", votes(100, 1));
    env.write("landing/upload.jsonl.part", votes(200, 1));
    let d = Daemon::start(&env);
    assert!(
        wait_until(WAIT, || processed(&env) == ["early.jsonl"]),
        "{}",
        d.log()
    );
    assert!(env.path("failed").is_dir());
    assert_eq!(
        landing(&env),
        [".hidden.jsonl", "notes.txt", "upload.jsonl.part"]
    );
    let log = d.log();
    assert_eq!(log.matches("notes.txt").count(), 1, "logged once:\n{log}");
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 7);
}

#[test]
fn a_reused_name_with_new_content_is_loaded_and_archived_beside_the_first() {
    let env = Env::new();
    let d = Daemon::start(&env);
    drop_file(&env, "daily.jsonl", votes(1, 5));
    assert!(wait_until(WAIT, || processed(&env).len() == 1));
    drop_file(&env, "daily.jsonl", votes(6, 5));
    assert!(
        wait_until(WAIT, || processed(&env).len() == 2),
        "{}",
        d.log()
    );
    assert_eq!(processed(&env), ["daily.1.jsonl", "daily.jsonl"]);
    // The same content a third time is a duplicate file: recorded, archived, not loaded.
    drop_file(&env, "daily.jsonl", votes(6, 5));
    assert!(
        wait_until(WAIT, || processed(&env).len() == 3),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 10);
    assert_eq!(env.last_ledger().status, "duplicate_file");
}

#[test]
fn a_name_taken_in_processed_gets_a_suffix() {
    let env = Env::new();
    env.write("processed/x.jsonl", "an older file with this name");
    let d = Daemon::start(&env);
    drop_file(&env, "x.jsonl", votes(1, 3));
    assert!(
        wait_until(WAIT, || processed(&env).len() == 2),
        "{}",
        d.log()
    );
    assert_eq!(
        fs::read_to_string(env.path("processed/x.jsonl")).unwrap(),
        "an older file with this name"
    );
    assert_eq!(
        fs::read_to_string(env.path("processed/x.1.jsonl")).unwrap(),
        votes(1, 3)
    );
    assert_eq!(d.stop().0, 0);
}

#[test]
fn bad_entries_are_refused_with_a_reason_and_the_daemon_goes_on() {
    let env = Env::new();
    let outside = env.write("outside/secret.jsonl", votes(1, 3));
    let d = Daemon::start(&env);
    fs::create_dir_all(env.path("landing")).unwrap();
    std::os::unix::fs::symlink(&outside, env.path("landing/link.jsonl")).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(env.path("landing/pipe.jsonl"))
        .status()
        .unwrap()
        .success());
    fs::create_dir(env.path("landing/sub.jsonl")).unwrap();
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(votes(10, 2000).as_bytes()).unwrap();
        e.finish().unwrap()
    };
    drop_file(&env, "broken.jsonl.gz", &gz[..gz.len() / 2]);
    drop_file(&env, "bad.jsonl", "nonsense\nmore nonsense\n");
    drop_file(&env, "good.jsonl", votes(5000, 4));
    assert!(
        wait_until(WAIT, || processed(&env) == ["good.jsonl"]),
        "{}",
        d.log()
    );
    let failed = || names(&env.path("failed"));
    assert!(
        wait_until(WAIT, || failed().len() == 8),
        "failed/: {:?}\n{}",
        failed(),
        d.log()
    );
    assert_eq!(
        failed(),
        [
            "bad.jsonl",
            "bad.jsonl.reason.txt",
            "broken.jsonl.gz",
            "broken.jsonl.gz.reason.txt",
            "link.jsonl",
            "link.jsonl.reason.txt",
            "pipe.jsonl",
            "pipe.jsonl.reason.txt"
        ]
    );
    let reason = |n: &str| fs::read_to_string(env.path(&format!("failed/{n}.reason.txt"))).unwrap();
    assert!(
        reason("link.jsonl").contains("not a regular file (a symlink; never followed)"),
        "{}",
        reason("link.jsonl")
    );
    assert!(reason("pipe.jsonl").contains("not a regular file (a FIFO)"));
    assert!(reason("broken.jsonl.gz").contains("status: failed"));
    assert!(reason("bad.jsonl").contains("status: rejected"));
    assert!(
        reason("bad.jsonl").contains("line 1: not JSON"),
        "{}",
        reason("bad.jsonl")
    );
    // The symlink's target was neither read nor moved.
    assert_eq!(fs::read_to_string(&outside).unwrap(), votes(1, 3));
    assert_eq!(landing(&env), ["sub.jsonl"]);
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 4);
    // The ledger names the link itself, not its target.
    let sources = env.rows(
        "SELECT source_path FROM blog_analysis.ingested_files WHERE file_name = 'link.jsonl'",
    );
    assert_eq!(sources.len(), 1);
    // (It was read from its claim in work/, as the link it is.)
    assert!(
        sources[0][0].contains("/work/") && sources[0][0].ends_with("/link.jsonl"),
        "{:?}",
        sources
    );
}

/// Two daemons on one landing folder would take each other's files: the second refuses to
/// start, says why, and the first goes on.
/// Issue 8, defect 1: a supplier re-sends `daily.jsonl` (temporary name, then rename) while
/// the previous `daily.jsonl` is loading. Each is claimed into work/ before it is loaded, so
/// both are loaded and archived, with a ledger row each; before claims, the archive step moved
/// the new file by its path, unloaded.
#[test]
fn the_same_name_re_sent_while_its_predecessor_loads_is_loaded_too() {
    let env = Env::new();
    let (d, resume) = Daemon::start_held(&env, "mid_load");
    drop_file(&env, "daily.jsonl", votes(1, 2000));
    d.wait_log("failpoint mid_load reached", WAIT);
    drop_file(&env, "daily.jsonl", votes(5001, 3));
    fs::write(&resume, "").unwrap();
    assert!(
        wait_until(WAIT, || processed(&env) == ["daily.1.jsonl", "daily.jsonl"]),
        "{:?}\n{}",
        processed(&env),
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 2003);
    assert_eq!(
        env.rows(
            "SELECT status, rows_inserted::VARCHAR FROM blog_analysis.ingested_files ORDER BY id"
        ),
        vec![vec!["loaded", "2000"], vec!["loaded", "3"]]
    );
    assert_eq!(
        fs::read_to_string(env.path("processed/daily.1.jsonl")).unwrap(),
        votes(5001, 3)
    );
    assert!(claims(&env).is_empty());
}

/// Issue 8, defect 11: the destination is decided and recorded in the load's transaction, so a
/// kill between the commit and the move leaves a ledger row that knows where the file goes;
/// the restart finishes that move, and the same content sent again later is a new arrival
/// with a ledger row of its own.
#[test]
fn a_kill_between_commit_and_move_is_finished_where_the_ledger_says() {
    let env = Env::new();
    drop_file(&env, "a.jsonl", votes(1, 10));
    crash_at(&env, "before_archive");
    let recorded = env.rows("SELECT archived_to FROM blog_analysis.ingested_files");
    let want = env.path("processed/a.jsonl");
    assert!(
        recorded[0][0].ends_with("/processed/a.jsonl"),
        "{recorded:?}"
    );
    let d = Daemon::start(&env);
    assert!(
        wait_until(WAIT, || processed(&env) == ["a.jsonl"]),
        "{}",
        d.log()
    );
    drop_file(&env, "a.jsonl", votes(1, 10));
    assert!(
        wait_until(WAIT, || processed(&env) == ["a.1.jsonl", "a.jsonl"]),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 10);
    let rows = env.rows("SELECT status, archived_to FROM blog_analysis.ingested_files ORDER BY id");
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[0][0], "loaded");
    assert_eq!(
        fs::canonicalize(&rows[0][1]).unwrap(),
        fs::canonicalize(&want).unwrap()
    );
    assert_eq!(rows[1][0], "duplicate_file");
    assert!(rows[1][1].ends_with("/processed/a.1.jsonl"), "{rows:?}");
    assert!(claims(&env).is_empty());
    // The archive journal names both, where they went (the restart wrote the first's line
    // again before moving it).
    let journal = votewatch::journal::Journal::in_folder(&env.path("processed"))
        .read()
        .unwrap();
    let archived: Vec<(i64, String)> = journal
        .entries
        .iter()
        .map(|e| (e.ledger_id, e.archived.display().to_string()))
        .collect();
    assert_eq!(archived.len(), 2, "{archived:?}");
    assert!(
        archived[0].1.ends_with("/processed/a.jsonl"),
        "{archived:?}"
    );
    assert!(
        archived[1].1.ends_with("/processed/a.1.jsonl"),
        "{archived:?}"
    );
}

/// The files waiting in work/'s claim folders.
fn claims(env: &Env) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(env.path("work"))
        .map(|d| {
            d.flatten()
                .flat_map(|f| names(&f.path()))
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[test]
fn a_second_daemon_on_the_same_landing_folder_refuses_to_start() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let second = env
        .command()
        .args(["run", "--config", "votewatch.toml"])
        .bounded_output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("another votewatch daemon already watches"),
        "{err}"
    );
    drop_file(&env, "after.jsonl", votes(1, 3));
    assert!(
        wait_until(WAIT, || processed(&env) == ["after.jsonl"]),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    // Once the first has stopped, a daemon starts again on the same folder.
    let again = Daemon::start(&env);
    assert_eq!(again.stop().0, 0);
}

#[test]
fn a_busy_warehouse_is_waited_for_then_everything_loads() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let held = duckdb::Connection::open(env.warehouse()).unwrap();
    drop_file(&env, "a.jsonl", votes(1, 5));
    drop_file(&env, "b.jsonl", votes(6, 5));
    d.wait_log("warehouse busy", WAIT);
    std::thread::sleep(Duration::from_millis(700));
    assert!(processed(&env).is_empty());
    drop(held);
    assert!(
        wait_until(WAIT, || processed(&env).len() == 2),
        "{}",
        d.log()
    );
    // The wait is logged once when it starts (not on every retry) and once when it ends.
    let log = d.log();
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 10);
    assert_eq!(log.matches("warehouse busy").count(), 1, "{log}");
    assert_eq!(log.matches("warehouse free again").count(), 1, "{log}");
}

/// Issue 8, defect 7: a file that crashes the loader is not retried forever. After
/// `max_load_attempts` (3) loads cut short by a crash, the next start sets it aside in failed/
/// with that reason.
#[test]
fn a_file_that_keeps_crashing_the_loader_is_set_aside() {
    let env = Env::new();
    drop_file(&env, "poison.jsonl", votes(1, 10));
    for _ in 0..3 {
        let d = Daemon::launch(
            &env,
            &[(votewatch::testing::failpoint::ENV, "before_commit")],
        );
        assert!(d.wait_exit(WAIT).is_some(), "no crash");
    }
    assert_eq!(claims(&env), ["poison.jsonl"]);
    let d = Daemon::launch(
        &env,
        &[(votewatch::testing::failpoint::ENV, "before_commit")],
    );
    assert!(
        wait_until(WAIT, || names(&env.path("failed")).len() == 2),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    let reason = fs::read_to_string(env.path("failed/poison.jsonl.reason.txt")).unwrap();
    assert!(reason.contains("cut short 3 times"), "{reason}");
    assert_eq!(env.votes(), 0);
    assert_eq!(
        env.rows("SELECT status FROM blog_analysis.ingested_files"),
        vec![vec!["failed"]]
    );
    assert!(claims(&env).is_empty());
    assert!(names(&env.path("work")).is_empty());
}

/// Issue 19, item 2: a file whose load makes the warehouse fail (an error that is not the
/// warehouse's disk or catalog; injected here for `poison.jsonl` at every commit) no longer
/// stops the daemon: each failure counts as an attempt, the other files go first, and after
/// `max_load_attempts` (3) the file is set aside in failed/ with the error in its reason file,
/// the ledger and the report, while the daemon goes on loading.
#[test]
fn a_file_the_warehouse_fails_on_is_set_aside_and_the_others_load() {
    let env = Env::new();
    let d = Daemon::start_with(
        &env,
        &[
            (votewatch::testing::failpoint::ENV, "commit_error"),
            (votewatch::testing::failpoint::FOR_ENV, "poison.jsonl"),
        ],
    );
    drop_file(&env, "poison.jsonl", votes(1, 10));
    drop_file(&env, "good.jsonl", votes(100, 10));
    assert!(
        wait_until(WAIT, || names(&env.path("failed")).len() == 2),
        "{}",
        d.log()
    );
    assert_eq!(processed(&env), ["good.jsonl"]);
    // The daemon goes on.
    drop_file(&env, "later.jsonl", votes(200, 10));
    assert!(
        wait_until(WAIT, || processed(&env).len() == 2),
        "{}",
        d.log()
    );
    let log = d.log();
    assert_eq!(d.stop().0, 0, "{log}");
    assert_eq!(
        log.matches("the load failed in the warehouse; the file is tried again after the others")
            .count(),
        3,
        "{log}"
    );
    let reason = fs::read_to_string(env.path("failed/poison.jsonl.reason.txt")).unwrap();
    assert!(
        reason.contains("set aside after 3 failed loads"),
        "{reason}"
    );
    assert!(reason.contains("Constraint Error: injected"), "{reason}");
    assert_eq!(env.votes(), 20);
    assert_eq!(
        env.rows(
            "SELECT file_name, status, (coalesce(error, '') LIKE '%Constraint Error: injected%')::VARCHAR \
             FROM blog_analysis.ingested_files ORDER BY id"
        ),
        vec![
            vec!["good.jsonl", "loaded", "false"],
            vec!["poison.jsonl", "failed", "true"],
            vec!["later.jsonl", "loaded", "false"],
        ]
    );
    let texts = eml_texts(&env);
    assert!(
        texts
            .iter()
            .any(|t| t.contains("poison.jsonl") && t.contains("Constraint Error: injected")),
        "{texts:?}"
    );
    assert!(names(&env.path("work")).is_empty());
}

/// A tmpfs mounted on a folder of the test's (the test needs root, as `scripts/test` has in
/// CI), unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: PathBuf, size: &str) -> Tmpfs {
        fs::create_dir_all(&dir).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "this test mounts a tmpfs on {}: run it as root",
            dir.display()
        );
        Tmpfs(dir)
    }

    /// Fills the file system up with `name`: writes until the disk is full.
    fn fill(&self, name: &str) {
        use std::io::Write;
        let mut f = fs::File::create(self.0.join(name)).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Issue 19, item 2: a warehouse that cannot be written whatever the file (its disk is full)
/// is told apart from one file's problem: the daemon keeps the file claimed, says so in the
/// log and `/healthz` (503), waits with backoff, and once space is freed loads the file once;
/// nothing is set aside, nothing lost.
#[test]
fn a_full_warehouse_disk_is_waited_out_and_loses_nothing() {
    let env = Env::new();
    let disk = Tmpfs::mount(env.path("wh"), "24m");
    env.write(
        "votewatch.toml",
        CONFIG.replace("path = \"warehouse.db\"", "path = \"wh/warehouse.db\""),
    );
    let d = Daemon::start(&env);
    let addr = http_addr(&d);
    drop_file(&env, "a.jsonl", votes(1, 10));
    assert!(
        wait_until(WAIT, || processed(&env) == ["a.jsonl"]),
        "{}",
        d.log()
    );
    disk.fill("filler");
    drop_file(&env, "b.jsonl", votes(100, 2000));
    let mut health = (0, String::new());
    assert!(
        wait_until(WAIT, || {
            health = http_get(&addr, "/healthz");
            health.0 == 503
        }),
        "{health:?}\n{}",
        d.log()
    );
    assert!(health.1.contains("warehouse unusable"), "{health:?}");
    d.wait_log("warehouse unusable", WAIT);
    assert!(names(&env.path("failed")).is_empty());
    fs::remove_file(env.path("wh/filler")).unwrap();
    assert!(
        wait_until(WAIT, || processed(&env) == ["a.jsonl", "b.jsonl"]),
        "{}",
        d.log()
    );
    assert!(
        wait_until(WAIT, || http_get(&addr, "/healthz")
            == (200, "ok\n".to_string())),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    let db = duckdb::Connection::open(env.path("wh/warehouse.db")).unwrap();
    let ledger: String = db
        .query_row(
            "SELECT string_agg(file_name || ' ' || status, ', ' ORDER BY id) \
             FROM blog_analysis.ingested_files",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(ledger, "a.jsonl loaded, b.jsonl loaded");
    let votes: i64 = db
        .query_row("SELECT count(*) FROM blog_analysis.votes", [], |r| r.get(0))
        .unwrap();
    assert_eq!(votes, 2010);
    drop(db);
    assert!(names(&env.path("failed")).is_empty());
    drop(disk);
}

/// Issue 19, item 5: a backlog of 20,000 files that arrived while an analyst held the
/// warehouse. Listing and claiming them (an fsync per claim) runs off the runtime that answers
/// HTTP and feeds the watchdog, and a batch takes at most `max_batch_files` (default 500):
/// throughout — the files arriving, the wait, the backlog loading — the watchdog is pinged
/// without a gap as long as its period and `/healthz` answers at once (each answer's time is
/// recorded; the figures are printed). Every file is loaded once.
#[test]
fn a_backlog_of_twenty_thousand_files_never_starves_the_watchdog_or_healthz() {
    const FILES: i64 = 20_000;
    const PERIOD: Duration = Duration::from_secs(2);
    let env = Env::new();
    let pings = PingCounter::listen(&env.path("notify.sock"));
    let d = Daemon::start_with(
        &env,
        &[
            ("NOTIFY_SOCKET", env.path("notify.sock").to_str().unwrap()),
            ("WATCHDOG_USEC", &PERIOD.as_micros().to_string()),
        ],
    );
    let addr = http_addr(&d);
    // The analyst's session holds the warehouse file.
    let held = duckdb::Connection::open(env.warehouse()).unwrap();
    let staging = env.path("staging");
    fs::create_dir_all(&staging).unwrap();
    for k in 0..FILES {
        fs::write(staging.join(format!("f{k:05}.jsonl")), votes(k + 1, 1)).unwrap();
    }
    let from = Instant::now();
    let mut answers: Vec<Duration> = Vec::new();
    let mut ask = || {
        let t = Instant::now();
        let (code, body) = http_get(&addr, "/healthz");
        answers.push(t.elapsed());
        assert_eq!(code, 200, "{body}");
    };
    for k in 0..FILES {
        let name = format!("f{k:05}.jsonl");
        fs::rename(staging.join(&name), env.path(&format!("landing/{name}"))).unwrap();
        if k % 500 == 0 {
            ask();
        }
    }
    // The daemon claims its first batch and waits for the warehouse.
    assert!(
        wait_until(WAIT, || {
            ask();
            d.log().contains("warehouse busy")
        }),
        "{}",
        d.log()
    );
    for _ in 0..20 {
        ask();
    }
    drop(held);
    assert!(
        wait_until(Duration::from_secs(900), || {
            ask();
            names(&env.path("processed")).len() == FILES as usize
        }),
        "{} files processed",
        names(&env.path("processed")).len()
    );
    let gap = pings.longest_gap_since(from);
    let slowest = answers.iter().max().copied().unwrap_or_default();
    let mut sorted = answers.clone();
    sorted.sort();
    eprintln!(
        "backlog of {FILES}: {} /healthz answers, median {:?}, slowest {slowest:?}; \
         longest watchdog gap {gap:?} (period {PERIOD:?}); {:?} in all",
        answers.len(),
        sorted[sorted.len() / 2],
        from.elapsed()
    );
    assert!(gap < PERIOD, "the watchdog went {gap:?} without a ping");
    // The issue's bound is 100 ms for every answer; a loaded test machine may delay one
    // answer by its scheduler, so 95% must be within it and none past a second.
    let p95 = sorted[sorted.len() * 95 / 100];
    assert!(p95 <= Duration::from_millis(100), "/healthz p95 {p95:?}");
    assert!(
        slowest < Duration::from_secs(1),
        "/healthz took {slowest:?} to answer"
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(
        env.rows(
            "SELECT count(*)::VARCHAR, count(DISTINCT file_name)::VARCHAR, \
             count(*) FILTER (WHERE status = 'loaded')::VARCHAR FROM blog_analysis.ingested_files"
        ),
        vec![vec!["20000", "20000", "20000"]]
    );
    assert_eq!(env.votes(), FILES);
}

/// Issue 19, item 6: a supplier's writer keeps the file open past `quiet_secs` (so it is
/// taken) and writes more after the read began. The read sees the change (`fstat` before and
/// after): nothing is recorded, and the file is read again, whole — the ledger's SHA-256 and
/// counts are those of everything written, never of a part with the hash of another.
#[test]
fn a_file_written_to_during_its_read_is_read_again_whole() {
    use sha2::Digest;
    use std::io::Write;
    let env = Env::new();
    env.write("votewatch.toml", format!("{CONFIG}quiet_secs = 1\n"));
    let (d, resume) = Daemon::start_held(&env, "mid_load");
    let first = format!("{}\n", votes(1, 10));
    let more = format!("{}\n", votes(11, 5));
    let mut writer = fs::File::create(env.path("landing/open.jsonl")).unwrap();
    writer.write_all(first.as_bytes()).unwrap();
    writer.flush().unwrap();
    d.wait_log("failpoint mid_load reached", WAIT);
    writer.write_all(more.as_bytes()).unwrap();
    writer.flush().unwrap();
    fs::write(&resume, "").unwrap();
    assert!(
        wait_until(WAIT, || processed(&env) == ["open.jsonl"]),
        "{}",
        d.log()
    );
    drop(writer);
    let log = d.log();
    assert_eq!(d.stop().0, 0);
    assert!(log.contains("the file changed while it was read"), "{log}");
    let whole = format!("{first}{more}");
    let sha = format!("{:x}", sha2::Sha256::digest(whole.as_bytes()));
    assert_eq!(
        env.rows(
            "SELECT status, sha256, size_bytes::VARCHAR, rows_inserted::VARCHAR \
             FROM blog_analysis.ingested_files"
        ),
        vec![vec![
            "loaded".to_string(),
            sha,
            whole.len().to_string(),
            "15".to_string()
        ]]
    );
    assert_eq!(env.votes(), 15);
}

/// Issue 8, defect 10: a file published without a close-after-write (a hard link, as `ln`
/// makes, or some FTP servers) is taken once it had no event and no change for `quiet_secs`.
#[test]
fn a_file_published_by_a_hard_link_is_taken_after_the_quiet_time() {
    let env = Env::new();
    env.write("votewatch.toml", format!("{CONFIG}quiet_secs = 1\n"));
    let outside = env.write("outside/linked.jsonl", votes(1, 6));
    let d = Daemon::start(&env);
    fs::hard_link(&outside, env.path("landing/linked.jsonl")).unwrap();
    assert!(
        wait_until(WAIT, || processed(&env) == ["linked.jsonl"]),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 6);
}

/// The subjects of the reports the file transport wrote (reports/*.eml).
/// The subjects of the .eml reports the file transport wrote, sorted.
pub fn eml_subjects(env: &Env) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(env.path("reports"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| fs::read(e.path()).ok())
                .filter_map(|raw| {
                    mail_parser::MessageParser::default()
                        .parse(&raw)
                        .and_then(|m| m.subject().map(String::from))
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Issue 8, defect 4: the ledger says which committed arrivals still need their report, so a
/// crash between the commit and the report loses nothing: the restart reports them, once.
#[test]
fn a_crash_between_commit_and_report_is_reported_at_the_restart() {
    let env = Env::new();
    drop_file(&env, "late.jsonl", votes(1, 4));
    crash_at(&env, "before_report");
    assert_eq!(processed(&env), ["late.jsonl"]);
    assert!(eml_subjects(&env).is_empty());
    restart_reports_once(&env, "votewatch: late.jsonl — loaded");
}

/// Starts the daemon with failpoint `point` armed and waits for the crash there.
fn crash_at(env: &Env, point: &str) {
    let d = Daemon::start_with(env, &[(votewatch::testing::failpoint::ENV, point)]);
    assert!(d.wait_exit(WAIT).is_some(), "no crash at {point}");
}

/// Restarts the daemon after a crash that left a report owed: the restart queues it, it is
/// delivered (the one `.eml`, with `subject`) and the ledger records it; another restart owes
/// nothing (nothing sent, nothing waiting).
fn restart_reports_once(env: &Env, subject: &str) {
    let d = Daemon::start(env);
    d.wait_log("reporting files committed before a restart", WAIT);
    assert!(
        wait_until(WAIT, || names(&env.path("outbox")).is_empty()
            && !eml_subjects(env).is_empty()),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(eml_subjects(env), [subject]);
    assert_eq!(
        env.rows("SELECT report_queued::VARCHAR FROM blog_analysis.ingested_files"),
        vec![vec!["true"]]
    );
    let d = Daemon::start(env);
    assert_eq!(d.stop().0, 0);
    assert_eq!(eml_subjects(env), [subject]);
    assert!(names(&env.path("outbox")).is_empty());
}

/// True once the process `pid` catches SIGTERM (bit 15 of `SigCgt` in /proc/PID/status).
fn catches_sigterm(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|st| {
            st.lines()
                .find_map(|l| l.strip_prefix("SigCgt:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << (15 - 1)) != 0)
}

/// Issue 17: SIGTERM in the first moments after start ends the daemon cleanly (exit 0), not
/// by the signal (143): sent while it has not yet read its configuration (held there by a
/// failpoint), and sent as soon as the process catches it at all.
#[test]
fn sigterm_in_the_first_moments_after_start_exits_cleanly() {
    let env = Env::new();
    let (d, resume) = Daemon::launch_held(&env, "startup");
    d.wait_log("failpoint startup reached", WAIT);
    d.signal("TERM");
    fs::write(&resume, "").unwrap();
    assert_eq!(d.wait_exit(WAIT), Some(0));
    for _ in 0..5 {
        let d = Daemon::launch(&env, &[]);
        assert!(wait_until(WAIT, || catches_sigterm(d.pid())));
        d.signal("TERM");
        assert_eq!(d.wait_exit(WAIT), Some(0));
    }
    assert!(landing(&env).is_empty());
}

/// Issue 17: a crash after the report was queued (perhaps delivered) but before the ledger
/// recorded it queues the same report again at the restart: the same Message-ID, so the
/// outbox keeps one entry and the file transport one message.
#[test]
fn a_crash_after_the_report_was_queued_still_delivers_it_once() {
    let env = Env::new();
    drop_file(&env, "late.jsonl", votes(1, 4));
    crash_at(&env, "after_report");
    assert_eq!(processed(&env), ["late.jsonl"]);
    restart_reports_once(&env, "votewatch: late.jsonl — loaded");
}

/// Issue 8, defect 2: in a burst, with a rescan every second, a file waiting in a batch may
/// be seen again by a rescan; its second claim finds nothing, so no file is loaded twice and
/// none ends in failed/.
#[test]
fn a_burst_of_500_files_with_fast_rescans_loads_each_once() {
    let env = Env::new();
    let staging = env.path("staging");
    fs::create_dir_all(&staging).unwrap();
    for k in 0..500 {
        fs::write(
            staging.join(format!("f{k:03}.jsonl")),
            votes(1 + k * 10, 10),
        )
        .unwrap();
    }
    let d = Daemon::start(&env);
    for k in 0..500 {
        let name = format!("f{k:03}.jsonl");
        fs::rename(staging.join(&name), env.path("landing").join(&name)).unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(120), || processed(&env).len() == 500),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 5000);
    assert_eq!(
        env.rows(
            "SELECT status, count(*)::VARCHAR FROM blog_analysis.ingested_files GROUP BY status"
        ),
        vec![vec!["loaded", "500"]]
    );
    assert!(names(&env.path("failed")).is_empty());
    assert!(claims(&env).is_empty());
}

/// Issue 8, defect 3: a SIGHUP while the daemon waits for a busy warehouse is applied once the
/// wait and its batch are over, not dropped.
#[test]
fn sighup_while_waiting_for_a_busy_warehouse_takes_effect() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let held = duckdb::Connection::open(env.warehouse()).unwrap();
    drop_file(&env, "a.jsonl", votes(1, 5));
    d.wait_log("warehouse busy", WAIT);
    env.write(
        "votewatch.toml",
        format!("{CONFIG}processed_by_day = true\n"),
    );
    d.signal("HUP");
    drop(held);
    d.wait_log("configuration reloaded", WAIT);
    drop_file(&env, "b.jsonl", votes(6, 5));
    // b.jsonl goes to processed/YYYY-MM-DD/ (whatever the day is when it is archived).
    let in_day_folders = || -> Vec<String> {
        fs::read_dir(env.path("processed"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().is_dir())
                    .flat_map(|e| names(&e.path()))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(
        wait_until(WAIT, || in_day_folders() == ["b.jsonl"]),
        "{:?}\n{}",
        processed(&env),
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 10);
}

fn big_file(env: &Env, name: &str, rows: u64) -> PathBuf {
    let path = env.path(&format!("landing/{name}.part"));
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut out = std::io::BufWriter::new(fs::File::create(&path).unwrap());
    votewatch::testing::synth::write_votes(
        &mut out,
        votewatch::testing::synth::Spec {
            rows,
            seed: 5,
            first_id: 0,
            repeat_share: 0.0,
        },
    )
    .unwrap();
    out.flush().unwrap();
    path
}

#[test]
fn sigterm_mid_load_exits_cleanly_and_a_restart_completes() {
    let env = Env::new();
    let rows = 2_000_000;
    let part = big_file(&env, "big.jsonl", rows);
    let d = Daemon::start(&env);
    fs::rename(&part, env.path("landing/big.jsonl")).unwrap();
    std::thread::sleep(Duration::from_millis(400));
    let (code, took) = d.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(10), "stop took {took:?}");
    let votes_after_stop = env.votes_if_any();
    assert!(
        votes_after_stop == 0 || votes_after_stop == rows as i64,
        "partial file: {votes_after_stop}"
    );
    let d = Daemon::start(&env);
    assert!(
        wait_until(Duration::from_secs(120), || processed(&env)
            == ["big.jsonl"]),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), rows as i64);
}

#[test]
fn a_crash_before_commit_or_before_the_move_is_recovered_exactly_once() {
    for point in ["before_commit", "before_archive"] {
        let env = Env::new();
        drop_file(&env, "a.jsonl", votes(1, 100));
        let d = Daemon::start_with(&env, &[(votewatch::testing::failpoint::ENV, point)]);
        assert!(d.wait_exit(WAIT).is_some(), "{point}: no crash");
        // Claimed, not archived: it waits in a claim folder of work/.
        assert!(landing(&env).is_empty(), "{point}");
        assert!(processed(&env).is_empty(), "{point}");
        assert_eq!(claims(&env), ["a.jsonl"], "{point}");
        let d = Daemon::start(&env);
        assert!(
            wait_until(WAIT, || processed(&env) == ["a.jsonl"]),
            "{point}: {}",
            d.log()
        );
        assert_eq!(d.stop().0, 0);
        assert_eq!(env.votes(), 100, "{point}");
        assert_eq!(
            env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
            1,
            "{point}"
        );
        assert_eq!(
            env.count(
                "SELECT count(*) FROM blog_analysis.ingested_files WHERE archived_to IS NOT NULL"
            ),
            1,
            "{point}"
        );
    }
}

/// Issue 20, item 2: a crash in a batch of small files loaded as one group (group commit).
/// Before the shared commit nothing of any file is recorded and every claim waits in work/;
/// after it, every file has its ledger row with its destination. Either way the restart
/// finishes each file exactly once: one ledger row, its votes once, one report line, the
/// rejected file in failed/ and its duplicate named as such.
#[test]
fn a_crash_in_a_grouped_batch_leaves_each_file_all_or_nothing() {
    for (point, recorded) in [("before_commit", 0), ("before_archive", 12)] {
        let env = Env::new();
        for k in 0..10 {
            drop_file(&env, &format!("f{k:02}.jsonl"), votes(1 + k * 100, 5));
        }
        drop_file(&env, "bad.jsonl", "{\"Id\":\"x\"}\n{\"Id\":\"y\"}");
        drop_file(&env, "copy.jsonl", votes(1, 5));
        let d = Daemon::start_with(&env, &[(votewatch::testing::failpoint::ENV, point)]);
        assert!(d.wait_exit(WAIT).is_some(), "{point}: no crash");
        assert_eq!(claims(&env).len(), 12, "{point}");
        // All or nothing, for every file of the group at once.
        assert_eq!(
            env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
            recorded,
            "{point}"
        );
        assert_eq!(env.votes(), if recorded == 0 { 0 } else { 50 }, "{point}");
        let d = Daemon::start(&env);
        assert!(
            wait_until(WAIT, || processed(&env).len() == 11
                && names(&env.path("failed")).len() == 2),
            "{point}: {}",
            d.log()
        );
        assert_eq!(d.stop().0, 0);
        assert!(claims(&env).is_empty(), "{point}");
        assert_eq!(env.votes(), 50, "{point}");
        assert_eq!(
            env.count("SELECT count(DISTINCT id) FROM blog_analysis.votes"),
            50,
            "{point}"
        );
        let mut statuses = env.rows(
            "SELECT file_name, status FROM blog_analysis.ingested_files \
             WHERE archived_to IS NOT NULL ORDER BY file_name",
        );
        statuses.dedup();
        assert_eq!(statuses.len(), 12, "{point}: {statuses:?}");
        assert_eq!(statuses[0], vec!["bad.jsonl", "rejected"], "{point}");
        assert_eq!(statuses[1], vec!["copy.jsonl", "duplicate_file"], "{point}");
        assert!(
            statuses[2..].iter().all(|r| r[1] == "loaded"),
            "{point}: {statuses:?}"
        );
        assert_eq!(
            env.count("SELECT count(*) FROM blog_analysis.ingested_files"),
            12,
            "{point}"
        );
        // Each file is in exactly one report.
        let texts = eml_texts(&env).join("\n").replace("\r\n", "\n");
        for k in 0..10 {
            let name = format!("f{k:02}.jsonl");
            assert_eq!(
                texts.matches(&format!("{name}\n  status loaded")).count(),
                1,
                "{point}: {name} in {texts}"
            );
        }
    }
}

#[test]
fn kill_9_during_a_large_load_then_restart() {
    let env = Env::new();
    let rows = 1_000_000;
    let part = big_file(&env, "big.jsonl", rows);
    drop_file(&env, "small.jsonl", votes(50_000_000, 10));
    let d = Daemon::start(&env);
    fs::rename(&part, env.path("landing/big.jsonl")).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    d.kill9();
    let d = Daemon::start(&env);
    assert!(
        wait_until(Duration::from_secs(120), || processed(&env).len() == 2),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), rows as i64 + 10);
    assert_eq!(
        env.count("SELECT count(DISTINCT id) FROM blog_analysis.votes"),
        rows as i64 + 10
    );
    assert_eq!(
        env.count("SELECT count(*) FROM blog_analysis.ingested_files WHERE archived_to IS NULL"),
        0
    );
    assert!(landing(&env).is_empty());
}

/// Issue 19, item 6: a SIGHUP that moves `paths.landing` moves the daemon's `flock` with it:
/// a second daemon is refused the new folder (two daemons never share one), and the old one
/// is free for another daemon.
#[test]
fn the_landing_lock_follows_a_sighup_that_moves_landing() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let moved = format!("{CONFIG}[paths]\nlanding = \"landing2\"\n");
    env.write("votewatch.toml", &moved);
    d.signal("HUP");
    d.wait_log("configuration reloaded", WAIT);
    drop_file(&env, "../landing2/a.jsonl", votes(1, 2));
    assert!(
        wait_until(WAIT, || processed(&env) == ["a.jsonl"]),
        "{}",
        d.log()
    );
    env.write(
        "second.toml",
        moved.replace("warehouse.db", "second.db") + "work = \"work2\"\n",
    );
    let refused = env.run(&["run", "--config", "second.toml"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("another votewatch daemon already watches"),
        "{}",
        refused.stderr
    );
    env.write(
        "third.toml",
        CONFIG.replace("warehouse.db", "third.db")
            + "[paths]\nwork = \"work3\"\nprocessed = \"processed3\"\n",
    );
    let mut cmd = env.command();
    cmd.args(["run", "--config", "third.toml"]);
    let third = Daemon::spawn(&env, cmd);
    assert_eq!(third.stop().0, 0);
    assert_eq!(d.stop().0, 0);
}

#[test]
fn sighup_with_a_broken_config_keeps_the_old_one() {
    let env = Env::new();
    let d = Daemon::start(&env);
    env.write("votewatch.toml", "[daemon]\nsettle_ms = \"soon\"\n");
    d.signal("HUP");
    d.wait_log("configuration not reloaded", WAIT);
    drop_file(&env, "a.jsonl", votes(1, 2));
    assert!(
        wait_until(WAIT, || processed(&env).len() == 1),
        "{}",
        d.log()
    );
    env.write("votewatch.toml", CONFIG);
    d.signal("HUP");
    d.wait_log("configuration reloaded", WAIT);
    assert_eq!(d.stop().0, 0);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let env = Env::new();
    env.write("votewatch.toml", CONFIG);
    let mut cmd = env.command();
    cmd.args(["run", "--config", "votewatch.toml", "--log-format", "json"]);
    let d = Daemon::spawn(&env, cmd);
    drop_file(&env, "a.jsonl", votes(1, 2));
    assert!(wait_until(WAIT, || processed(&env).len() == 1));
    let log = d.log.clone();
    assert_eq!(d.stop().0, 0);
    let text = fs::read_to_string(&log).unwrap();
    let mut saw_file = false;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        if v["message"] == "file done" {
            assert_eq!(v["file"], "a.jsonl");
            assert_eq!(v["inserted"], 2);
            saw_file = true;
        }
    }
    assert!(saw_file, "{text}");
}

#[test]
fn files_dropped_together_form_one_batch() {
    let env = Env::new();
    let d = Daemon::start(&env);
    for i in 0..3 {
        drop_file(&env, &format!("t{i}.jsonl"), votes(1 + i * 10, 10));
        std::thread::sleep(Duration::from_millis(30));
    }
    assert!(
        wait_until(WAIT, || processed(&env).len() == 3),
        "{}",
        d.log()
    );
    d.wait_log("batch done", WAIT);
    let log = d.log();
    assert_eq!(log.matches("batch done").count(), 1, "{log}");
    assert!(log.contains("votewatch: 3 files — 3 loaded"), "{log}");
    assert_eq!(d.stop().0, 0);
}

#[test]
fn systemd_hears_ready_status_and_watchdog() {
    use std::os::unix::net::UnixDatagram;
    let env = Env::new();
    let socket_path = env.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let d = Daemon::start_with(
        &env,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "300000"),
        ],
    );
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + WAIT;
    while !(seen.contains("READY=1") && seen.contains("STATUS=") && seen.contains("WATCHDOG=1"))
        && Instant::now() < deadline
    {
        let n = socket.recv(&mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("READY=1"), "{seen}");
    assert!(seen.contains("STATUS=files handled 0"), "{seen}");
    assert!(seen.contains("WATCHDOG=1"), "{seen}");
    assert_eq!(d.stop().0, 0);
}

/// The daemon as an unprivileged user (tests run as root, who can read anything): a file it
/// may not read is refused with the reason, and a supplier's file it may read but not write
/// (which Linux will not let it hard-link) is still loaded and archived.
#[test]
fn as_an_ordinary_user_an_unreadable_file_is_refused_and_others_are_archived() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    for dir in ["", "landing", "processed", "failed"] {
        let p = env.path(dir);
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o777)).unwrap();
    }
    env.write("votewatch.toml", CONFIG);
    let secret = env.write("landing/secret.jsonl", votes(1, 3));
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).unwrap();
    let readable = env.write("landing/supplier.jsonl", votes(10, 3));
    fs::set_permissions(&readable, fs::Permissions::from_mode(0o644)).unwrap();
    let mut cmd = std::process::Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        crate::harness::bin(),
    ])
    .args(["run", "--config", "votewatch.toml"])
    .current_dir(env.dir.path());
    let d = Daemon::spawn(&env, cmd);
    let failed = || names(&env.path("failed"));
    let ok = wait_until(WAIT, || {
        processed(&env) == ["supplier.jsonl"] && failed().len() == 2
    });
    assert!(
        ok,
        "processed {:?}, failed {:?}\n{}",
        processed(&env),
        failed(),
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(failed(), ["secret.jsonl", "secret.jsonl.reason.txt"]);
    let reason = fs::read_to_string(env.path("failed/secret.jsonl.reason.txt")).unwrap();
    assert!(
        reason.contains("cannot read secret.jsonl: Permission denied"),
        "{reason}"
    );
    assert_eq!(env.votes(), 3);
}

/// Issue 8, defect 6: the install layout of docs/operating.md ("Running as a service") with the service
/// user, an analysts' group and a suppliers' group (`votewatch-drop`). A supplier can drop a
/// file into landing/ and nothing else: not the outbox (no mail through our SMTP login), not
/// the warehouse, not the archive, and landing/ itself cannot be replaced.
#[test]
fn a_supplier_can_write_landing_and_nothing_else() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    const SERVICE: u32 = 64_010; // user votewatch, group votewatch (the analysts)
    const SUPPLIER: u32 = 64_011; // a supplier, in group votewatch-drop
    const DROP: u32 = 64_012;
    let env = Env::new();
    let root = env.dir.path();
    env.write("votewatch.toml", CONFIG);
    fs::set_permissions(
        env.path("votewatch.toml"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // The state directory: the service's, traversable by all (StateDirectoryMode=0711).
    std::os::unix::fs::chown(root, Some(SERVICE), Some(SERVICE)).unwrap();
    fs::set_permissions(root, fs::Permissions::from_mode(0o711)).unwrap();
    // landing/: the service's, group votewatch-drop, setgid and sticky (mode 3770).
    fs::create_dir(env.path("landing")).unwrap();
    std::os::unix::fs::chown(env.path("landing"), Some(SERVICE), Some(DROP)).unwrap();
    fs::set_permissions(env.path("landing"), fs::Permissions::from_mode(0o3770)).unwrap();
    let as_user = |uid: u32, gid: u32, script: &str| {
        std::process::Command::new("setpriv")
            .args([
                &format!("--reuid={uid}"),
                &format!("--regid={gid}"),
                "--clear-groups",
                "sh",
                "-c",
                script,
            ])
            .current_dir(root)
            .bounded_output()
            .unwrap()
    };
    // The unit's UMask=0027, then the service's user and group.
    let mut cmd = std::process::Command::new("sh");
    cmd.args([
        "-c",
        &format!(
            "umask 027; exec setpriv --reuid={SERVICE} --regid={SERVICE} --clear-groups \
             '{}' run --config votewatch.toml",
            crate::harness::bin()
        ),
    ])
    .current_dir(root);
    let d = Daemon::spawn(&env, cmd);
    let drop = as_user(
        SUPPLIER,
        DROP,
        &format!(
            "printf '%s' '{}' > landing/.x.jsonl && mv landing/.x.jsonl landing/x.jsonl",
            votes(1, 3)
        ),
    );
    assert!(drop.status.success(), "{drop:?}");
    assert!(
        wait_until(WAIT, || processed(&env) == ["x.jsonl"]
            && !names(&env.path("reports")).is_empty()),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), 3);
    for attempt in [
        "echo '{}' > outbox/evil.json",
        "echo x > warehouse.db",
        "echo x > processed/x.jsonl",
        "echo x > work/x",
        "mv landing landing.old",
        "rm -rf landing",
        "ln -s /tmp landing2",
    ] {
        let out = as_user(SUPPLIER, DROP, attempt);
        assert!(!out.status.success(), "a supplier could: {attempt}");
    }
    // What the service made is not writable by its group (the analysts read it).
    for made in [
        "warehouse.db",
        "processed",
        "processed/x.jsonl",
        "work",
        "outbox",
    ] {
        let mode = fs::metadata(env.path(made)).unwrap().mode();
        assert_eq!(
            mode & 0o022,
            0,
            "{made} is group- or world-writable: {mode:o}"
        );
    }
    assert!(names(&env.path("outbox")).is_empty());
}

/// kill -9 at many moments while files flow, then one clean run: every Id once, every file
/// archived with exactly one ledger row that says where it is, every committed file's report
/// queued, nothing left in landing/ or work/.
#[test]
fn kill_9_at_many_moments_while_files_flow_loses_and_doubles_nothing() {
    let env = Env::new();
    let staging = env.path("staging");
    fs::create_dir_all(&staging).unwrap();
    let (files, rows) = (30i64, 2000i64);
    for k in 0..files {
        fs::write(
            staging.join(format!("f{k:02}.jsonl")),
            votes(1 + k * rows, rows),
        )
        .unwrap();
    }
    // Delays from a fixed sequence: the kills land at different moments of the flow; the
    // assertions hold whatever moment each one hit.
    let delays = [30u64, 170, 90, 260, 10, 400, 120, 60];
    for (round, delay) in delays.iter().enumerate() {
        let d = Daemon::launch(&env, &[]);
        for k in (round as i64 * 4)..((round as i64 + 1) * 4).min(files) {
            let name = format!("f{k:02}.jsonl");
            fs::create_dir_all(env.path("landing")).unwrap();
            fs::rename(staging.join(&name), env.path("landing").join(&name)).unwrap();
        }
        std::thread::sleep(Duration::from_millis(*delay));
        d.kill9();
    }
    let d = Daemon::start(&env);
    // Archived, and the last batch's report delivered (it is sent after the move).
    let all_reported = || {
        let texts = eml_texts(&env);
        (0..files).all(|k| texts.iter().any(|t| t.contains(&format!("f{k:02}.jsonl"))))
    };
    assert!(
        // A report queued again after a kill (its arrivals not yet marked) is delivered too
        // before the stop: the outbox drains.
        wait_until(Duration::from_secs(120), || processed(&env).len()
            == files as usize
            && all_reported()
            && names(&env.path("outbox")).is_empty()),
        "{:?}\n{}",
        processed(&env),
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(env.votes(), files * rows);
    assert_eq!(
        env.count("SELECT count(DISTINCT id) FROM blog_analysis.votes"),
        files * rows
    );
    let ledger = env.rows(
        "SELECT file_name, status, archived_to, report_queued::VARCHAR \
         FROM blog_analysis.ingested_files ORDER BY file_name",
    );
    assert_eq!(ledger.len(), files as usize, "{ledger:?}");
    for row in &ledger {
        assert_eq!(row[1], "loaded", "{row:?}");
        assert!(
            Path::new(&row[2]).exists(),
            "archived_to is not where it is: {row:?}"
        );
        assert_eq!(row[3], "true", "report never queued: {row:?}");
    }
    assert!(landing(&env).is_empty());
    assert!(claims(&env).is_empty());
    assert!(names(&env.path("outbox")).is_empty());
    // Reported once: every file is in exactly one delivered report.
    let texts = eml_texts(&env);
    for k in 0..files {
        let name = format!("f{k:02}.jsonl");
        let n = texts.iter().filter(|t| t.contains(&name)).count();
        assert_eq!(n, 1, "{name} is in {n} reports");
    }
}

/// The plain-text parts of the .eml reports the file transport wrote.
fn eml_texts(env: &Env) -> Vec<String> {
    fs::read_dir(env.path("reports"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| fs::read(e.path()).ok())
                .filter_map(|raw| {
                    mail_parser::MessageParser::default()
                        .parse(&raw)
                        .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One HTTP/1.1 GET to the daemon: (status code, body).
/// The address the daemon's HTTP surface listens on, from its log.
pub(crate) fn http_addr(d: &Daemon) -> String {
    d.log()
        .split("addr=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the daemon logs its HTTP address")
        .to_string()
}

pub(crate) fn http_get(addr: &str, path: &str) -> (u16, String) {
    use std::io::Read;
    let mut conn = match std::net::TcpStream::connect(addr) {
        Ok(c) => c,
        Err(e) => return (0, format!("cannot connect: {e}")),
    };
    conn.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    if let Err(e) = conn.read_to_string(&mut raw) {
        return (0, format!("no answer: {e}"));
    }
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let code = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (code, body.to_string())
}

/// `/metrics` parses as Prometheus (OpenMetrics) text and its counters match the ledger;
/// `/healthz` says the loop is alive; `/status` is JSON with the loop's state.
#[test]
fn metrics_healthz_and_status_agree_with_the_ledger() {
    let env = Env::new();
    let d = Daemon::start(&env);
    let addr = http_addr(&d);
    drop_file(&env, "a.jsonl", votes(1, 5));
    drop_file(&env, "b.jsonl", format!("{}\nnot json", votes(10, 3)));
    drop_file(&env, "bad.jsonl", "nonsense\nmore nonsense\n");
    assert!(
        wait_until(WAIT, || processed(&env).len() == 2
            && names(&env.path("failed")).len() == 2),
        "{}",
        d.log()
    );
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0)
    };
    // The batch may still be reporting; the counters are final once the three are counted.
    let mut body = String::new();
    assert!(
        wait_until(WAIT, || {
            body = http_get(&addr, "/metrics").1;
            metric(
                &body,
                "votewatch_files_total{status=\"loaded\",dataset=\"votes\"}",
            ) + metric(
                &body,
                "votewatch_files_total{status=\"partial\",dataset=\"votes\"}",
            ) + metric(
                &body,
                "votewatch_files_total{status=\"rejected\",dataset=\"votes\"}",
            ) == 3.0
        }),
        "{body}"
    );
    // Every line is a comment or `name{labels} value`, and the exposition ends with # EOF.
    for line in body.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(name.starts_with("votewatch_"), "{line}");
    }
    assert_eq!(body.lines().last(), Some("# EOF"));
    let (code, health) = http_get(&addr, "/healthz");
    assert_eq!((code, health.trim()), (200, "ok"));
    // /status follows once the loop has finished the batch.
    let mut status = serde_json::Value::Null;
    assert!(
        wait_until(WAIT, || {
            let (code, text) = http_get(&addr, "/status");
            status = serde_json::from_str(&text).unwrap();
            code == 200 && status["files_handled"] == 2 && status["files_not_loaded"] == 1
        }),
        "{status}"
    );
    assert_eq!(status["in_work"], 0);
    assert_eq!(d.stop().0, 0);
    // The counters against the ledger.
    let by_status = |st: &str| {
        env.count(&format!(
            "SELECT count(*) FROM blog_analysis.ingested_files WHERE status = '{st}'"
        )) as f64
    };
    for st in ["loaded", "partial", "rejected"] {
        assert_eq!(
            metric(
                &body,
                &format!("votewatch_files_total{{status=\"{st}\",dataset=\"votes\"}}")
            ),
            by_status(st),
            "{st}\n{body}"
        );
    }
    assert_eq!(
        metric(&body, "votewatch_rows_inserted_total{dataset=\"votes\"}"),
        env.count("SELECT sum(rows_inserted) FROM blog_analysis.ingested_files") as f64
    );
    assert_eq!(
        metric(&body, "votewatch_rejected_records_total{dataset=\"votes\"}"),
        env.count("SELECT sum(rejected) FROM blog_analysis.ingested_files") as f64
    );
    assert!(metric(&body, "votewatch_last_successful_load_timestamp_seconds") > 1.7e9);
    // Every file of the batch was timed from its drop to its commit.
    assert_eq!(
        metric(&body, "votewatch_drop_to_commit_seconds_count"),
        3.0,
        "{body}"
    );
}

/// Counts the watchdog pings a daemon sends to a notify socket, reading it all the time (a
/// socket nobody reads fills up, and then the daemon's notifications block).
pub struct PingCounter {
    pings: std::sync::Arc<std::sync::Mutex<Vec<Instant>>>,
}

impl PingCounter {
    pub fn listen(path: &Path) -> PingCounter {
        let socket = std::os::unix::net::UnixDatagram::bind(path).unwrap();
        let pings = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = pings.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let at = Instant::now();
                let k = String::from_utf8_lossy(&buf[..n])
                    .matches("WATCHDOG=1")
                    .count();
                seen.lock().unwrap().extend(std::iter::repeat_n(at, k));
            }
        });
        PingCounter { pings }
    }

    pub fn count(&self) -> usize {
        self.pings.lock().unwrap().len()
    }

    /// The longest time without a ping from `from` until now.
    pub fn longest_gap_since(&self, from: Instant) -> Duration {
        let pings = self.pings.lock().unwrap();
        let mut last = from;
        let mut gap = Duration::ZERO;
        for &t in pings
            .iter()
            .filter(|&&t| t >= from)
            .chain(std::iter::once(&Instant::now()))
        {
            gap = gap.max(t - last);
            last = t;
        }
        gap
    }
}

/// Watchdog pings in the next datagram on a notify socket (waiting at most 50 ms for one).
fn recv_pings(socket: &std::os::unix::net::UnixDatagram) -> usize {
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut buf = [0u8; 4096];
    match socket.recv(&mut buf) {
        Ok(n) => String::from_utf8_lossy(&buf[..n])
            .matches("WATCHDOG=1")
            .count(),
        Err(_) => 0,
    }
}

/// Watchdog pings seen on a notify socket while `during` holds.
fn pings_while(
    socket: &std::os::unix::net::UnixDatagram,
    mut during: impl FnMut() -> bool,
) -> usize {
    let mut pings = 0;
    let deadline = Instant::now() + WAIT;
    while during() && Instant::now() < deadline {
        pings += recv_pings(socket);
    }
    pings
}

/// Issue 8, defect 7: the watchdog is fed while a long commit makes progress (its thread does
/// I/O, though the loop makes no beats), and not while the loop is stuck without I/O, so
/// systemd restarts a hung daemon but never kills a slow commit. The slow commit lasts far
/// longer than the pings the test waits for, so a busy machine changes nothing but how long
/// the test waits.
#[test]
fn the_watchdog_is_fed_by_a_slow_commit_but_not_by_a_stuck_loop() {
    use std::os::unix::net::UnixDatagram;
    for (point, expect_fed) in [("slow_commit", true), ("mid_load", false)] {
        let env = Env::new();
        let socket_path = env.path("notify.sock");
        let socket = UnixDatagram::bind(&socket_path).unwrap();
        let d = Daemon::start_with(
            &env,
            &[
                ("NOTIFY_SOCKET", socket_path.to_str().unwrap()),
                ("WATCHDOG_USEC", "300000"),
                (votewatch::testing::failpoint::ENV, point),
                ("VOTEWATCH_FAILPOINT_SECS", "20"),
            ],
        );
        drop_file(&env, "a.jsonl", votes(1, 10));
        let reached = format!("failpoint {point} reached");
        let done = format!("failpoint {point} done");
        pings_while(&socket, || !d.log().contains(&reached));
        // Past the first watchdog period (pings already sent are drained), only the I/O can
        // feed it.
        let start = Instant::now();
        pings_while(&socket, || start.elapsed() < Duration::from_millis(500));
        if expect_fed {
            // Four pings while the commit is still busy.
            let mut pings = 0;
            let fed = wait_until(WAIT, || {
                pings += recv_pings(&socket);
                pings >= 4 || d.log().contains(&done)
            });
            assert!(
                fed && pings >= 4 && !d.log().contains(&done),
                "{point}: only {pings} pings during the slow commit"
            );
        } else {
            // The loop is stuck for good (the failpoint never returns): nothing feeds it.
            let window = Instant::now();
            let pings = pings_while(&socket, || window.elapsed() < Duration::from_millis(1200));
            assert_eq!(pings, 0, "{point}: a stuck loop was still fed");
        }
        drop(d);
    }
}

/// `[expect]`: a supplier that sends nothing for longer than the period gets an alert e-mail
/// (and the metric says so); a file arriving clears it with one "back to normal". A period of
/// 1.8 s stands in for hours here (so the supplier is soon late again); the state machine —
/// once, a reminder a period, cleared once — is tested with a clock in `freshness.rs`.
#[test]
fn a_quiet_supplier_is_alerted_once_and_cleared_once() {
    let env = Env::new();
    env.write(
        "votewatch.toml",
        format!("{CONFIG}[expect]\nfile_every_hours = 0.0005\n"),
    );
    let d = Daemon::start(&env);
    let addr = http_addr(&d);
    let late_metric = || {
        http_get(&addr, "/metrics")
            .1
            .contains("votewatch_supplier_late 1")
    };
    let late = "votewatch: the supplier is late — action needed";
    let back = "votewatch: deliveries are back to normal";
    assert!(
        wait_until(WAIT, || eml_subjects(&env).contains(&late.to_string())),
        "{}",
        d.log()
    );
    assert!(wait_until(WAIT, late_metric), "{}", d.log());
    drop_file(&env, "a.jsonl", votes(1, 5));
    assert!(
        wait_until(WAIT, || eml_subjects(&env).contains(&back.to_string())),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    let subjects = eml_subjects(&env);
    assert_eq!(
        subjects.iter().filter(|s| *s == back).count(),
        1,
        "{subjects:?}"
    );
    assert!(
        subjects.iter().any(|s| s.starts_with("votewatch: a.jsonl")),
        "{subjects:?}"
    );
}

/// Issue 19, item 3: a report that cannot be stored in the outbox (here the outbox's path is
/// taken by a file; a full disk refuses it the same way) is not marked reported: the ledger
/// keeps owing it, and once the outbox can be written the next batch queues it first. No
/// report is lost and none is sent twice.
#[test]
fn a_report_the_outbox_refused_is_queued_by_the_next_batch() {
    let env = Env::new();
    env.write("outbox", "not a folder");
    let d = Daemon::start(&env);
    drop_file(&env, "a.jsonl", votes(1, 5));
    d.wait_log("the batch's report could not be stored in the outbox", WAIT);
    assert!(eml_texts(&env).is_empty());
    fs::remove_file(env.path("outbox")).unwrap();
    drop_file(&env, "b.jsonl", votes(10, 5));
    assert!(
        wait_until(WAIT, || eml_texts(&env).len() == 2),
        "{}",
        d.log()
    );
    assert_eq!(d.stop().0, 0);
    let texts = eml_texts(&env);
    for name in ["a.jsonl", "b.jsonl"] {
        let n = texts.iter().filter(|t| t.contains(name)).count();
        assert_eq!(n, 1, "{name} is in {n} reports: {texts:?}");
    }
    assert_eq!(
        env.rows("SELECT report_queued::VARCHAR FROM blog_analysis.ingested_files ORDER BY id"),
        vec![vec!["true"], vec!["true"]]
    );
}

/// Issue 19, item 4: `processed/` and `failed/` on another file system than `work/` (a tmpfs,
/// `/dev/shm`): a claimed file cannot be renamed there, so it is copied, synced and only then
/// removed from `work/`; both outcomes reach their folder and the ledger says where.
#[test]
fn archives_on_another_file_system_are_copied_and_the_claim_removed() {
    use std::os::unix::fs::MetadataExt;
    let env = Env::new();
    let other = tempfile::tempdir_in("/dev/shm").expect("a folder in /dev/shm");
    let dev = |p: &Path| fs::metadata(p).unwrap().dev();
    assert_ne!(
        dev(other.path()),
        dev(env.dir.path()),
        "this test needs /dev/shm on a file system of its own (a tmpfs)"
    );
    let (processed, failed) = (other.path().join("processed"), other.path().join("failed"));
    env.write(
        "votewatch.toml",
        format!(
            "{CONFIG}[paths]\nprocessed = \"{}\"\nfailed = \"{}\"\n",
            processed.display(),
            failed.display()
        ),
    );
    let d = Daemon::start(&env);
    drop_file(&env, "good.jsonl", votes(1, 5));
    drop_file(&env, "bad.jsonl", "nonsense\nmore nonsense\n");
    assert!(
        wait_until(WAIT, || names(&processed) == ["good.jsonl"]
            && names(&failed).contains(&"bad.jsonl".to_string())),
        "{}",
        d.log()
    );
    assert!(
        wait_until(WAIT, || claims(&env).is_empty()),
        "{:?}",
        claims(&env)
    );
    assert_eq!(d.stop().0, 0);
    assert_eq!(
        fs::read_to_string(processed.join("good.jsonl")).unwrap(),
        votes(1, 5)
    );
    let recorded = env
        .rows("SELECT file_name, archived_to FROM blog_analysis.ingested_files ORDER BY file_name");
    assert_eq!(
        recorded,
        vec![
            vec![
                "bad.jsonl".to_string(),
                failed.join("bad.jsonl").display().to_string()
            ],
            vec![
                "good.jsonl".to_string(),
                processed.join("good.jsonl").display().to_string()
            ],
        ]
    );
}
