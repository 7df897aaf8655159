//! A fresh temporary folder per test, the real `votewatch` executable run inside it, and
//! direct DuckDB queries of the warehouse it wrote.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

/// The longest one process started by a test may run: past it the process is killed and the
/// test fails saying so, so a hung votewatch (or client) never hangs the suite.
pub const PROCESS_LIMIT: Duration = Duration::from_secs(300);

/// Waits for `child` at most `limit`; past it, kills it and panics naming `what`.
pub fn wait_bounded(child: &mut Child, limit: Duration, what: &str) -> ExitStatus {
    match child.wait_timeout(limit).expect("wait for a child") {
        Some(status) => status,
        None => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not end within {limit:?}; killed");
        }
    }
}

/// Reads a pipe to its end on a thread of its own; `join` gives what it read.
struct Drain(std::thread::JoinHandle<Vec<u8>>);

impl Drain {
    fn new(mut pipe: impl Read + Send + 'static) -> Drain {
        Drain(std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = pipe.read_to_end(&mut v);
            v
        }))
    }

    fn join(self) -> Vec<u8> {
        self.0.join().unwrap_or_default()
    }
}

/// `wait_with_output` within `PROCESS_LIMIT` (stdout and stderr must be piped, or are empty).
pub fn output_of(mut child: Child, what: &str) -> Output {
    let out = child.stdout.take().map(Drain::new);
    let err = child.stderr.take().map(Drain::new);
    let status = wait_bounded(&mut child, PROCESS_LIMIT, what);
    Output {
        status,
        stdout: out.map(Drain::join).unwrap_or_default(),
        stderr: err.map(Drain::join).unwrap_or_default(),
    }
}

/// `Command::output`, within `PROCESS_LIMIT`.
pub trait BoundedOutput {
    fn bounded_output(&mut self) -> std::io::Result<Output>;
}

impl BoundedOutput for Command {
    fn bounded_output(&mut self) -> std::io::Result<Output> {
        let child = self
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let what = format!("{:?}", self.get_program());
        Ok(output_of(child, &what))
    }
}

/// The lines of a child's pipe, read on a thread, each waited for with a time limit.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    seen: String,
}

impl Lines {
    pub fn new(pipe: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: String::new(),
        }
    }

    /// The next line; panics when none comes within `limit` or the pipe closed.
    pub fn next_line(&mut self, limit: Duration) -> String {
        match self.rx.recv_timeout(limit) {
            Ok(line) => {
                self.seen.push_str(&line);
                self.seen.push('\n');
                line
            }
            Err(e) => panic!(
                "no next line within {limit:?} ({e}); so far:\n{}",
                self.seen
            ),
        }
    }

    /// Reads lines until one contains `needle`; panics when none does within `limit`.
    pub fn wait_for(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.next_line(left);
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// The lines left until the pipe closes (the child ended); panics when it stays open
    /// past `limit`.
    pub fn rest(&mut self, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        let mut rest = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    rest.push_str(&line);
                    rest.push('\n');
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(e) => panic!("the pipe stayed open for {limit:?} ({e}):\n{rest}"),
            }
        }
        self.seen.push_str(&rest);
        rest
    }

    /// Everything read so far.
    pub fn seen(&self) -> &str {
        &self.seen
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
}

/// What one run of the executable did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from(out: Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The ingest line of the file whose path ends with `name`.
    pub fn line_for(&self, name: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|p| p.ends_with(name))
            })
            .unwrap_or_else(|| panic!("no line for {name} in:\n{}", self.stdout))
    }
}

/// What some tests need from outside the repository, checked once each: a test that finds one
/// missing fails at once, naming the command that sets everything up (`scripts/test`, the
/// README's test command). No test installs or downloads anything itself.
pub mod needs {
    use std::path::Path;
    use std::process::Command;
    use std::sync::OnceLock;

    const SETUP: &str = "run the suite with scripts/test, which installs and sets up what it needs";

    fn fail(what: &str) -> ! {
        panic!("{what}: {SETUP}")
    }

    /// The Python with the analysts' client, `duckdb` 1.5.x (VOTEWATCH_PYTHON, else python3).
    pub fn python() -> &'static str {
        static PYTHON: OnceLock<String> = OnceLock::new();
        PYTHON.get_or_init(|| {
            let python = std::env::var("VOTEWATCH_PYTHON").unwrap_or_else(|_| "python3".into());
            let ok = Command::new(&python)
                .args([
                    "-c",
                    "import duckdb, sys; sys.exit(not duckdb.__version__.startswith('1.5.'))",
                ])
                .output()
                .is_ok_and(|o| o.status.success());
            if !ok {
                fail(&format!(
                    "{python} has no duckdb 1.5.x (VOTEWATCH_PYTHON names the interpreter)"
                ));
            }
            python
        })
    }

    /// `moto_server`, beside the Python of [`python`] (its venv).
    pub fn moto_server() -> std::path::PathBuf {
        let server = Path::new(python()).with_file_name("moto_server");
        if !server.exists() {
            fail(&format!("{} is missing (moto[server])", server.display()));
        }
        server
    }

    /// The offline DuckDB extension repository laid out by scripts/duckdb-extensions.sh,
    /// named by VOTEWATCH_EXTENSION_REPO.
    pub fn extension_repo() -> &'static str {
        static REPO: OnceLock<String> = OnceLock::new();
        REPO.get_or_init(|| {
            let Ok(repo) = std::env::var("VOTEWATCH_EXTENSION_REPO") else {
                fail("VOTEWATCH_EXTENSION_REPO is not set (the DuckDB extension repository)");
            };
            let ducklake = Path::new(&repo).join("v1.5.5/linux_amd64/ducklake.duckdb_extension");
            if !ducklake.exists() {
                fail(&format!("{} is missing", ducklake.display()));
            }
            repo
        })
    }

    /// Headless Chromium: VOTEWATCH_CHROMIUM, else Debian's `chromium`.
    pub fn chromium() -> String {
        let chromium = std::env::var("VOTEWATCH_CHROMIUM").unwrap_or_else(|_| "chromium".into());
        let found = Command::new(&chromium)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            fail(&format!(
                "{chromium} cannot be run (VOTEWATCH_CHROMIUM names another)"
            ));
        }
        chromium
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_votewatch")
}

/// `data` gzip-compressed (best compression, so that bombs stay small).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn test_data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

impl Env {
    pub fn new() -> Env {
        Env {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, name: &str, bytes: impl AsRef<[u8]>) -> PathBuf {
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, bytes).unwrap();
        p
    }

    pub fn command(&self) -> Command {
        let mut c = Command::new(bin());
        c.current_dir(self.dir.path())
            .env_remove("VOTEWATCH_CONFIG")
            .env_remove("VOTEWATCH_FAILPOINT")
            .env("VOTEWATCH_LOG", "warn");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(
            self.command()
                .args(args)
                .bounded_output()
                .expect("run votewatch"),
        )
    }

    /// `votewatch ingest FILES...` with the default warehouse (warehouse.db here).
    pub fn ingest(&self, files: &[&str]) -> Run {
        let mut args = vec!["ingest"];
        args.extend_from_slice(files);
        self.run(&args)
    }

    pub fn warehouse(&self) -> PathBuf {
        self.path("warehouse.db")
    }

    /// Opens the warehouse, runs `f`, and closes it again so the executable can open it.
    pub fn with_db<T>(&self, f: impl FnOnce(&duckdb::Connection) -> T) -> T {
        let conn = duckdb::Connection::open(self.warehouse()).expect("open warehouse");
        f(&conn)
    }

    pub fn count(&self, sql: &str) -> i64 {
        self.with_db(|c| c.query_row(sql, [], |r| r.get(0)).expect(sql))
    }

    /// Votes in the warehouse; 0 when a run was stopped before it created the schema.
    pub fn votes_if_any(&self) -> i64 {
        let tables = self.count(
            "SELECT count(*) FROM duckdb_tables() WHERE schema_name = 'blog_analysis' AND table_name = 'votes'",
        );
        if tables == 0 {
            0
        } else {
            self.votes()
        }
    }

    pub fn votes(&self) -> i64 {
        self.count("SELECT count(*) FROM blog_analysis.votes")
    }

    /// Every row of `sql` with its columns cast to text (NULL as "NULL").
    pub fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        self.with_db(|c| {
            let mut stmt = c.prepare(sql).expect(sql);
            let mut rows = stmt.query([]).expect(sql);
            let mut out = Vec::new();
            while let Some(r) = rows.next().unwrap() {
                let n = r.as_ref().column_count();
                out.push(
                    (0..n)
                        .map(|i| match r.get_ref(i).unwrap() {
                            duckdb::types::ValueRef::Null => "NULL".to_string(),
                            duckdb::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            other => format!("{:?}", other.to_owned()),
                        })
                        .collect(),
                );
            }
            out
        })
    }

    /// The latest ledger row as (status, lines, inserted, dups, already, conflicting,
    /// rejected, blank).
    pub fn last_ledger(&self) -> Ledger {
        self.ledger(None)
    }

    pub fn ledger(&self, id: Option<i64>) -> Ledger {
        let filter = id.map_or("TRUE".to_string(), |i| format!("id = {i}"));
        self.with_db(|c| {
            c.query_row(
                &format!(
                    "SELECT status, lines_read, rows_inserted, duplicates_in_file, \
                     already_in_warehouse, conflicting, rejected, blank_lines, \
                     coalesce(error, ''), duplicate_of, array_to_string(unknown_fields, ','), \
                     coalesce(format, '') \
                     FROM blog_analysis.ingested_files WHERE {filter} ORDER BY id DESC LIMIT 1"
                ),
                [],
                |r| {
                    Ok(Ledger {
                        status: r.get(0)?,
                        counts: [
                            r.get(1)?,
                            r.get(2)?,
                            r.get(3)?,
                            r.get(4)?,
                            r.get(5)?,
                            r.get(6)?,
                            r.get(7)?,
                        ],
                        error: r.get(8)?,
                        duplicate_of: r.get(9)?,
                        unknown_fields: r.get(10)?,
                        format: r.get(11)?,
                    })
                },
            )
            .expect("ledger row")
        })
    }
}

/// A ledger row. `counts` is [lines, inserted, duplicates, already, conflicting, rejected,
/// blank].
#[derive(Debug)]
pub struct Ledger {
    pub status: String,
    pub counts: [i64; 7],
    pub error: String,
    pub duplicate_of: Option<i64>,
    pub unknown_fields: String,
    pub format: String,
}

/// A valid vote line.
pub fn vote(id: i64, date: &str) -> String {
    format!(r#"{{"Id":"{id}","PostId":"1","VoteTypeId":"2","CreationDate":"{date}"}}"#)
}

/// `n` valid vote lines with Ids from `first`, joined by newlines.
pub fn votes(first: i64, n: i64) -> String {
    (first..first + n)
        .map(|i| vote(i, "2022-01-03T00:00:00.000"))
        .collect::<Vec<_>>()
        .join("\n")
}
