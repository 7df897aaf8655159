//! A private PostgreSQL cluster on 127.0.0.1 for DuckLake's catalog in the benchmark and the
//! integration tests: Debian's server programs (the newest installed version), `initdb` into
//! a folder of its own (as the `postgres` user when run as root, which initdb refuses), trust
//! authentication, a free port; stopped and removed when dropped. Not part of the library:
//! the benchmark and the tests include this file by path.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub struct PgCluster {
    dir: PathBuf,
    bin: PathBuf,
    pub port: u16,
}

/// The newest `/usr/lib/postgresql/<version>/bin` that has `initdb`.
fn server_programs() -> Result<PathBuf, String> {
    let missing = "PostgreSQL's server programs are missing: install Debian's postgresql \
                   (`apt-get install postgresql`; scripts/test, the test command, does)";
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing.to_string())?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|b| b.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().ok_or_else(|| missing.to_string())
}

/// Runs a PostgreSQL program as the `postgres` user when we are root.
fn as_pg_user(program: &Path) -> Command {
    if rustix::process::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdout(Stdio::null())
        .output()
        .map_err(|e| format!("{what}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{what}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

impl PgCluster {
    /// A new cluster, started.
    pub fn start() -> Result<PgCluster, String> {
        let bin = server_programs()?;
        let port = free_port()?;
        // Under /tmp, not a test's own temp folder: the server's user must be able to reach it.
        let dir = PathBuf::from(format!("/tmp/votewatch-pg-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        if rustix::process::geteuid().is_root() {
            run(Command::new("chown").arg("postgres:").arg(&dir), "chown")?;
        }
        let pg = PgCluster { dir, bin, port };
        run(
            as_pg_user(&pg.bin.join("initdb"))
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(pg.dir.join("data")),
            "initdb",
        )?;
        pg.restart()?;
        Ok(pg)
    }

    /// Starts the server (again) on its port, keeping its data.
    pub fn restart(&self) -> Result<(), String> {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=100",
            self.port,
            self.dir.display()
        );
        run(
            as_pg_user(&self.bin.join("pg_ctl"))
                .args(["-w", "-D"])
                .arg(self.dir.join("data"))
                .arg("-l")
                .arg(self.dir.join("server.log"))
                .args(["-o", &opts, "start"]),
            "pg_ctl start",
        )
    }

    /// Stops the server (fast shutdown: sessions are ended), keeping its data.
    pub fn stop(&self) -> Result<(), String> {
        run(
            as_pg_user(&self.bin.join("pg_ctl"))
                .args(["-w", "-m", "fast", "-D"])
                .arg(self.dir.join("data"))
                .arg("stop"),
            "pg_ctl stop",
        )
    }

    /// The libpq connection string of database `dbname`.
    pub fn conninfo(&self, dbname: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname={dbname}",
            self.port
        )
    }

    /// psql on database `dbname` (unaligned, tuples only, stopping at the first error).
    fn psql_command(&self, dbname: &str) -> Command {
        let mut c = Command::new(self.bin.join("psql"));
        c.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-d", dbname, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1"]);
        c
    }

    /// A psql session on `dbname` that runs what is written to its stdin, and ends when its
    /// stdin is closed or it is killed (a client that holds a session-level lock).
    pub fn session(&self, dbname: &str) -> Result<std::process::Child, String> {
        self.psql_command(dbname)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("psql: {e}"))
    }

    /// Runs `sql` in database `dbname` with psql; its output (unaligned, tuples only).
    pub fn psql(&self, dbname: &str, sql: &str) -> Result<String, String> {
        let out = self
            .psql_command(dbname)
            .args(["-c", sql])
            .output()
            .map_err(|e| format!("psql: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!("psql: {}", String::from_utf8_lossy(&out.stderr)))
        }
    }

    /// A new, empty database; its connection string.
    pub fn create_database(&self, name: &str) -> Result<String, String> {
        self.psql("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.conninfo(name))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = as_pg_user(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.join("data"))
            .arg("stop")
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
