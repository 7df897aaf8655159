//! A fresh temporary folder per test, the real `votewatch` executable run inside it, and
//! direct DuckDB queries of the warehouse it wrote.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

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
        Run::from(self.command().args(args).output().expect("run votewatch"))
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
