//! `votewatch-bench --scale`: what a batch costs as the warehouse grows. For each size, a
//! warehouse is filled through `votewatch ingest` (generated files of 20M rows at most, so the
//! disk holds one at a time), then the real daemon runs on it with the shipped configuration
//! and the benchmark measures: drop → report of lone 10-row files (the report's `.eml`
//! appearing), drop → archive of one 100k-row file, the disk per million rows, the daemon's
//! peak RSS, and 2,000 files of 5 rows dropped at once. Each figure is printed with its ratio
//! to the smallest warehouse, measured in the same run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The most rows generated into one file while filling a warehouse.
const FILL_STEP: u64 = 20_000_000;
/// Ids of the files dropped on the daemon start here, above every filled Id.
const DROP_IDS: i64 = 1_000_000_000_000;

/// One warehouse's figures.
struct Figures {
    rows: u64,
    fill: Duration,
    mb_per_million: f64,
    lone_p50: Duration,
    lone_max: Duration,
    big_file: Duration,
    burst_files_per_s: f64,
    peak_rss_mb: f64,
}

pub fn bench(exe: &Path, sizes: &[u64], lone: usize, burst: usize) -> Result<()> {
    let mut all = Vec::new();
    for &rows in sizes {
        let dir = tempfile::tempdir()?;
        let f = one(exe, dir.path(), rows, lone, burst)
            .with_context(|| format!("the warehouse of {rows} rows"))?;
        println!(
            "{:>5}M rows: fill {:.0}s; drop -> report of a lone 10-row file p50 {:.0} ms (max {:.0}); \
             drop -> archive of a 100k-row file {:.0} ms; {:.1} MB per million rows; \
             {burst} files of 5 rows {:.0} files/s; daemon peak RSS {:.0} MB",
            f.rows / 1_000_000,
            f.fill.as_secs_f64(),
            ms(f.lone_p50),
            ms(f.lone_max),
            ms(f.big_file),
            f.mb_per_million,
            f.burst_files_per_s,
            f.peak_rss_mb
        );
        all.push(f);
    }
    if let Some(base) = all.first() {
        for f in &all[1..] {
            println!(
                "{}M / {}M: lone file drop -> report {:.2}x (goal <= 1.25 at 20M), 100k-row file {:.2}x, burst {:.2}x",
                f.rows / 1_000_000,
                base.rows / 1_000_000,
                ms(f.lone_p50) / ms(base.lone_p50),
                ms(f.big_file) / ms(base.big_file),
                f.burst_files_per_s / base.burst_files_per_s
            );
        }
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn one(exe: &Path, dir: &Path, rows: u64, lone: usize, burst: usize) -> Result<Figures> {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/votewatch.toml");
    std::fs::copy(&shipped, dir.join("votewatch.toml"))?;
    let (fill, _) = fill_warehouse(exe, dir, rows)?;
    let db_bytes = std::fs::metadata(dir.join("warehouse.db"))?.len();

    let (measured, peak_rss_mb) = with_daemon(exe, dir, || measure(dir, lone, burst))?;
    let (lone_p50, lone_max, big_file, burst_files_per_s) = measured;
    Ok(Figures {
        rows,
        fill,
        mb_per_million: db_bytes as f64 / 1e6 / (rows as f64 / 1e6),
        lone_p50,
        lone_max,
        big_file,
        burst_files_per_s,
        peak_rss_mb,
    })
}

/// Fills the warehouse of `dir` (its configuration in `votewatch.toml`) with `rows` votes
/// through `votewatch ingest`: Ids from 1, in files of at most `FILL_STEP` rows. Returns how
/// long that took and the first Id above them.
fn fill_warehouse(exe: &Path, dir: &Path, rows: u64) -> Result<(Duration, i64)> {
    let clock = Instant::now();
    let mut first = 1i64;
    let mut left = rows;
    let mut seed = 1;
    while left > 0 {
        let n = left.min(FILL_STEP);
        let file = dir.join("fill.jsonl");
        super::generate(&file, n, seed, first, 0.0)?;
        let out = std::process::Command::new(exe)
            .args(["ingest", "--config", "votewatch.toml", "fill.jsonl"])
            .current_dir(dir)
            .env("VOTEWATCH_LOG", "warn")
            .output()?;
        if !out.status.success() {
            bail!("ingest: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::fs::remove_file(&file)?;
        // The generator's Ids rise by 1 to 3 per row.
        first += 3 * n as i64;
        left -= n;
        seed += 1;
    }
    Ok((clock.elapsed(), first))
}

/// Runs `measure` while the daemon runs in `dir` (its configuration in `votewatch.toml`),
/// then stops the daemon; returns what was measured and the daemon's peak RSS in MB.
fn with_daemon<T>(exe: &Path, dir: &Path, measure: impl FnOnce() -> Result<T>) -> Result<(T, f64)> {
    // The daemon logs warnings (VOTEWATCH_BENCH_LOG sets another level, to see its phases).
    let level = std::env::var("VOTEWATCH_BENCH_LOG").unwrap_or_else(|_| "warn".into());
    let mut child = std::process::Command::new(exe)
        .args(["run", "--config", "votewatch.toml"])
        .current_dir(dir)
        .env("VOTEWATCH_LOG", level)
        .spawn()?;
    let pid = child.id();
    let measured = measure();
    let peak = peak_rss_mb(pid).unwrap_or(0.0);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    child.wait()?;
    Ok((measured?, peak))
}

/// The daemon's peak resident set (VmHWM), in MB.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !done() {
        if Instant::now() > deadline {
            bail!("timed out");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

/// Drops into landing/ the safe way: written under a temporary name, then renamed.
fn drop_file(dir: &Path, name: &str, rows: u64, seed: u64, first: i64) -> Result<PathBuf> {
    let tmp = dir.join("landing").join(format!("{name}.tmp"));
    super::generate(&tmp, rows, seed, first, 0.0)?;
    let dest = dir.join("landing").join(name);
    std::fs::rename(&tmp, &dest)?;
    Ok(dest)
}

fn measure(dir: &Path, lone: usize, burst: usize) -> Result<(Duration, Duration, Duration, f64)> {
    let (landing, processed, reports) = (
        dir.join("landing"),
        dir.join("processed"),
        dir.join("reports"),
    );
    wait_until(Duration::from_secs(120), || {
        landing.is_dir() && processed.is_dir()
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let mut next = DROP_IDS;
    let mut lones = Vec::new();
    for k in 0..lone {
        let before = count(&reports);
        let clock = Instant::now();
        drop_file(dir, &format!("lone-{k:03}.jsonl"), 10, 100 + k as u64, next)?;
        next += 100;
        wait_until(Duration::from_secs(120), || count(&reports) > before)?;
        lones.push(clock.elapsed());
    }
    lones.sort();
    let done = count(&processed);
    let clock = Instant::now();
    drop_file(dir, "big.jsonl", 100_000, 7, next)?;
    next += 400_000;
    wait_until(Duration::from_secs(600), || count(&processed) > done)?;
    let big_file = clock.elapsed();

    let burst_files_per_s = drop_burst(dir, burst, next)?;
    Ok((
        lones[lones.len() / 2],
        *lones.last().unwrap_or(&Duration::ZERO),
        big_file,
        burst_files_per_s,
    ))
}

/// Drops `burst` files of 5 rows (Ids from `first`) into the running daemon's landing/ at
/// once (written aside, then renamed in) and returns how many it archived per second.
fn drop_burst(dir: &Path, burst: usize, first: i64) -> Result<f64> {
    let (landing, processed) = (dir.join("landing"), dir.join("processed"));
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging)?;
    let mut names = Vec::new();
    let mut next = first;
    for k in 0..burst {
        let name = format!("burst-{k:05}.jsonl");
        super::generate(&staging.join(&name), 5, 1000 + k as u64, next, 0.0)?;
        next += 20;
        names.push(name);
    }
    let before = count(&processed);
    let clock = Instant::now();
    for name in &names {
        std::fs::rename(staging.join(name), landing.join(name))?;
    }
    wait_until(Duration::from_secs(3600), || {
        count(&processed) >= before + burst
    })?;
    Ok(burst as f64 / clock.elapsed().as_secs_f64())
}

/// The small-files throughput on DuckLake, beside the same on a DuckDB file, in one run: a
/// daemon on a fresh lake (a private PostgreSQL cluster, Parquet in a temporary folder) and
/// one on a fresh DuckDB file, each given `burst` files of 5 rows at once.
pub fn lake_burst(exe: &Path, repo: &Path, burst: usize) -> Result<()> {
    let pg = super::pg_cluster::PgCluster::start().map_err(anyhow::Error::msg)?;
    let mut rates = Vec::new();
    for lake in [false, true] {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path();
        // The shipped configuration, on a lake for the second daemon.
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/votewatch.toml");
        let mut config: toml::Table = std::fs::read_to_string(shipped)?.parse()?;
        if lake {
            let mut ducklake = toml::Table::new();
            let catalog = pg.create_database("burst").map_err(anyhow::Error::msg)?;
            for (key, value) in [
                ("catalog", catalog),
                ("data_path", format!("{}/", dir.join("lake").display())),
                ("extension_repository", repo.display().to_string()),
                ("host_id", "bench".to_string()),
            ] {
                ducklake.insert(key.into(), value.into());
            }
            let warehouse = config
                .entry("warehouse")
                .or_insert_with(|| toml::Table::new().into());
            if let Some(w) = warehouse.as_table_mut() {
                w.insert("kind".into(), "ducklake".into());
                w.insert("ducklake".into(), ducklake.into());
            }
        }
        std::fs::write(dir.join("votewatch.toml"), toml::to_string(&config)?)?;
        let (rate, peak) = with_daemon(exe, dir, || {
            wait_until(Duration::from_secs(120), || {
                dir.join("landing").is_dir() && dir.join("processed").is_dir()
            })?;
            drop_burst(dir, burst, DROP_IDS)
        })?;
        println!(
            "{burst} files of 5 rows on {}: {rate:.0} files/s (goal >= {}); daemon peak RSS {peak:.0} MB",
            if lake { "DuckLake" } else { "a DuckDB file" },
            if lake { 300 } else { 1000 }
        );
        rates.push(rate);
    }
    println!(
        "DuckLake / DuckDB file, small files: {:.2}x",
        rates[1] / rates[0]
    );
    Ok(())
}

/// The console while a large load runs: a warehouse of `rows` votes, the daemon on it (the
/// shipped configuration, HTTP on a free port), a file of `big` rows dropped, and while it
/// loads each page and API route asked in turn, a round every 50 ms; prints each one's p50
/// and p95.
pub fn console(exe: &Path, rows: u64, big: u64) -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/votewatch.toml");
    let mut config: toml::Table = std::fs::read_to_string(shipped)?.parse()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    if let Some(d) = config.get_mut("daemon").and_then(|d| d.as_table_mut()) {
        d.insert("http_listen".into(), addr.clone().into());
    }
    std::fs::write(dir.join("votewatch.toml"), toml::to_string(&config)?)?;
    let (fill, next) = fill_warehouse(exe, dir, rows)?;
    println!(
        "warehouse of {rows} rows filled in {:.0}s",
        fill.as_secs_f64()
    );
    // The large file's Ids are above every other (new rows, as a daily delivery brings).
    let tmp_file = dir.join("big.jsonl.tmp");
    super::generate(&tmp_file, big, 7, next + 1000, 0.0)?;
    let ((), _) = with_daemon(exe, dir, || {
        wait_until(Duration::from_secs(120), || {
            get(&addr, "/api/loads").0 == 200
        })?;
        // One small load first, so that the pages have an arrival to show.
        drop_file(dir, "first.jsonl", 10, 3, next)?;
        wait_until(Duration::from_secs(120), || {
            get(&addr, "/api/loads").1.contains("first.jsonl")
        })?;
        let id = get(&addr, "/api/loads?limit=1").1;
        let id: serde_json::Value = serde_json::from_str(&id)?;
        let id = id[0]["id"].as_i64().context("an arrival")?;
        let processed = count(&dir.join("processed"));
        std::fs::rename(&tmp_file, dir.join("landing/big.jsonl"))?;
        let paths = [
            "/".to_string(),
            "/loads".into(),
            format!("/loads/{id}"),
            "/api/loads".into(),
            format!("/api/loads/{id}"),
        ];
        let mut times: Vec<Vec<Duration>> = vec![Vec::new(); paths.len()];
        let clock = Instant::now();
        while count(&dir.join("processed")) == processed {
            if clock.elapsed() > Duration::from_secs(600) {
                bail!("the large file did not load");
            }
            for (k, p) in paths.iter().enumerate() {
                let asked = Instant::now();
                let (code, _) = get(&addr, p);
                if code != 200 {
                    bail!("{p}: {code}");
                }
                times[k].push(asked.elapsed());
            }
            // An operator's pace, not a flood: a round of every route each 50 ms.
            std::thread::sleep(Duration::from_millis(50));
        }
        println!(
            "a {big}-row file loaded in {:.1}s; the console meanwhile (goal p95 <= 100 ms):",
            clock.elapsed().as_secs_f64()
        );
        for (p, t) in paths.iter().zip(times.iter_mut()) {
            t.sort();
            let at = |q: f64| t[((t.len() as f64 * q) as usize).min(t.len() - 1)];
            println!(
                "  {p:<16} {:>4} requests, p50 {:.1} ms, p95 {:.1} ms, max {:.1} ms",
                t.len(),
                ms(at(0.5)),
                ms(at(0.95)),
                ms(*t.last().unwrap_or(&Duration::ZERO))
            );
        }
        Ok(())
    })?;
    Ok(())
}

/// One HTTP GET: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut raw = String::new();
    let _ = conn.read_to_string(&mut raw);
    match raw.split_once("\r\n\r\n") {
        Some((head, body)) => (
            head.split_whitespace()
                .nth(1)
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            body.to_string(),
        ),
        None => (0, raw),
    }
}
