//! The ingest benchmark: votewatch against DuckDB's own one-statement load, same file, same
//! DuckDB, same run. Two baselines: the statement a data engineer would write for the same
//! result (every field read as text and cast with TRY_CAST, invalid rows dropped, the first
//! occurrence per Id within the file, anti-join against the warehouse), and a bare one (typed
//! columns, anti-join only). Each load runs in a child process of its own, so its peak RSS is
//! its own. Prints rows/s, ratios and peak RSS, then the real-file time and the cost of
//! loading into a large warehouse. `--hostile` instead measures peak RSS on hostile shapes.
//!
//! `cargo run --release --features testing --bin votewatch-bench -- --rows 10000000`

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use votewatch::config::{IngestConfig, WarehouseConfig};
use votewatch::model::Status;
use votewatch::pipeline::load::{ingest_file, IngestOptions};
use votewatch::testing::synth::{write_votes, Spec};
use votewatch::warehouse::Warehouse;

#[derive(Parser)]
#[command(about = "Benchmark votewatch ingest against a bare DuckDB INSERT ... SELECT")]
struct Args {
    /// Rows in the generated file
    #[arg(long, default_value_t = 1_000_000)]
    rows: u64,
    /// Share of lines that repeat a recent line exactly
    #[arg(long, default_value_t = 0.01)]
    repeat_share: f64,
    /// Runs of each contender; the median is reported
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seed of the generated data
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Working folder (default: a new temporary folder, removed afterwards)
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The real export, timed warm when present
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/votes.jsonl.zst"))]
    real_file: PathBuf,
    /// Rows already in the warehouse for the large-warehouse check (0 skips it)
    #[arg(long, default_value_t = 20_000_000)]
    big_rows: u64,
    /// Rows of the file loaded into the empty and the large warehouse
    #[arg(long, default_value_t = 100_000)]
    small_rows: u64,
    /// Only write the generated file here and exit (for profiling by hand)
    #[arg(long)]
    generate_to: Option<PathBuf>,
    /// The first Id of a generated file (`--generate-to`)
    #[arg(long, default_value_t = 0)]
    first_id: i64,
    /// Benchmark the daemon instead: drop-to-commit latency and small-file throughput
    #[arg(long)]
    daemon: bool,
    /// Daemon benchmark: how many 1k-row files to drop one after another for latency
    #[arg(long, default_value_t = 50)]
    drops: usize,
    /// Daemon benchmark: how many small files to drop at once for throughput
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// Peak RSS of votewatch on hostile shapes (blank lines, empty elements, one repeated
    /// row, one-byte bad lines, a gzip bomb), each about this many MiB decompressed
    #[arg(long)]
    hostile: Option<u64>,
    /// Benchmark the console instead: its pages and API while a 10M-row file loads into a
    /// warehouse of 2M rows (each route's p50 and p95)
    #[arg(long)]
    console: bool,
    /// Measure the limit only: read + hash + parse + route of the generated file without
    /// DuckDB, beside votewatch's load of it
    #[arg(long)]
    limit: bool,
    /// Internal: a contender's DuckDB threads and parser threads (0: one per core)
    #[arg(long, hide = true, default_value_t = 0)]
    threads: usize,
    /// Benchmark the warehouse's growth instead: warehouses of these sizes (rows, comma
    /// separated) filled through `votewatch ingest`, then the daemon on each
    #[arg(long, value_delimiter = ',', num_args = 0.., default_missing_value = "2000000,20000000,100000000")]
    scale: Option<Vec<u64>>,
    /// Scale benchmark: how many lone 10-row files to drop one after another
    #[arg(long, default_value_t = 20)]
    lone: usize,
    /// Benchmark DuckLake instead: votewatch on a lake (a private PostgreSQL cluster, Parquet
    /// in a temporary folder) against votewatch on a DuckDB file and DuckDB's bare statement
    /// (needs PostgreSQL's server programs and VOTEWATCH_EXTENSION_REPO or --extension-repo)
    #[arg(long)]
    lake: bool,
    /// Lake benchmark: the generated file sizes, in rows
    #[arg(long, value_delimiter = ',', default_values_t = [1_000_000u64, 10_000_000])]
    lake_rows: Vec<u64>,
    /// Lake benchmark: the offline extension repository (scripts/duckdb-extensions.sh)
    #[arg(long, env = "VOTEWATCH_EXTENSION_REPO")]
    extension_repo: Option<PathBuf>,
    /// Internal: run one load in this process (votewatch, same-job or bare) and print
    /// its time and peak RSS
    #[arg(long, hide = true)]
    contender: Option<Contender>,
    /// Internal: the file a contender loads
    #[arg(long, hide = true)]
    file: Option<PathBuf>,
    /// Internal: the warehouse a contender loads into
    #[arg(long, hide = true)]
    db: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Contender {
    Votewatch,
    SameJob,
    Bare,
    Limit,
}

/// What one contender's process reported.
#[derive(Clone, Copy)]
struct Measure {
    time: Duration,
    peak_rss_kb: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Ok(f) = tracing_subscriber::EnvFilter::try_from_env("VOTEWATCH_LOG") {
        tracing_subscriber::fmt()
            .with_env_filter(f)
            .with_writer(std::io::stderr)
            .init();
    }
    if let Some(path) = &args.generate_to {
        let repeats = generate(path, args.rows, args.seed, args.first_id, args.repeat_share)?;
        println!(
            "wrote {} rows ({repeats} repeats) to {}",
            args.rows,
            path.display()
        );
        return Ok(());
    }
    if let Some(c) = args.contender {
        return contender(c, &args);
    }
    if args.daemon {
        return daemon_bench::bench(&args);
    }
    if let Some(sizes) = &args.scale {
        let exe = std::env::current_exe()?.with_file_name("votewatch");
        scale::bench(&exe, sizes, args.lone, 2000)?;
        return match &args.extension_repo {
            Some(repo) => scale::lake_burst(&exe, repo, 2000),
            None => {
                println!("DuckLake small files: skipped (needs --extension-repo or VOTEWATCH_EXTENSION_REPO)");
                Ok(())
            }
        };
    }
    if args.lake {
        return lake::bench(&args);
    }
    if args.console {
        let exe = std::env::current_exe()?.with_file_name("votewatch");
        return scale::console(&exe, 2_000_000, 10_000_000);
    }
    if let Some(mib) = args.hostile {
        return hostile_bench(mib);
    }
    let tmp;
    let dir = match &args.dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().to_path_buf()
        }
    };
    println!(
        "machine: {} cores, DuckDB {}",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        duckdb_version(&dir)?
    );

    let file = dir.join("bench.jsonl");
    let clock = Instant::now();
    let repeats = generate(&file, args.rows, args.seed, 0, args.repeat_share)?;
    println!(
        "generated {} rows ({} exact repeats, {:.1} MB) in {:.1}s",
        args.rows,
        repeats,
        std::fs::metadata(&file)?.len() as f64 / 1e6,
        clock.elapsed().as_secs_f64()
    );

    if args.limit {
        limit_section(&args, &dir, &file, None)?;
        std::fs::remove_file(&file).ok();
        return Ok(());
    }
    let contenders = [Contender::Votewatch, Contender::SameJob, Contender::Bare];
    let mut results: Vec<Vec<Measure>> = vec![Vec::new(); contenders.len()];
    for run in 0..args.runs {
        // Rotate the order so no contender always gets the warmest cache.
        for k in 0..contenders.len() {
            let i = (k + run) % contenders.len();
            let db = dir.join(format!("c{i}-{run}.db"));
            let (measure, status) = spawn_contender(contenders[i], &file, &db)?;
            if contenders[i] == Contender::Votewatch && !status.starts_with("status loaded") {
                bail!("votewatch did not load {}: {status}", file.display());
            }
            results[i].push(measure);
        }
    }
    let summary: Vec<(Duration, u64)> = results
        .iter_mut()
        .map(|m| {
            let peak = m.iter().map(|x| x.peak_rss_kb).max().unwrap_or(0);
            let mut times: Vec<Duration> = m.iter().map(|x| x.time).collect();
            (median(&mut times), peak)
        })
        .collect();
    let rps = |t: Duration| args.rows as f64 / t.as_secs_f64();
    let labels = [
        "votewatch ingest       ",
        "DuckDB SQL, same job   ",
        "DuckDB SQL, bare       ",
    ];
    for (label, (t, peak)) in labels.iter().zip(&summary) {
        println!(
            "{label}: {:>8.3}s  {:>12.0} rows/s  peak RSS {:>5} MB  (median of {})",
            t.as_secs_f64(),
            rps(*t),
            peak / 1024,
            args.runs
        );
    }
    println!("  same job = read_json with every field as text, TRY_CAST, invalid rows dropped, first occurrence per Id, anti-join");
    println!("  bare     = read_json with typed columns, anti-join only (no validation, repeats within the file inserted twice)");
    println!(
        "ratio, same job        : {:.2}  (votewatch rows/s / same-job rows/s; goal >= 2.5 at 10M rows)",
        rps(summary[0].0) / rps(summary[1].0)
    );
    println!(
        "ratio, bare            : {:.2}  (votewatch rows/s / bare rows/s; goal >= 1.0)",
        rps(summary[0].0) / rps(summary[2].0)
    );
    resent(&dir, &file)?;
    limit_section(&args, &dir, &file, Some(summary[0].0))?;
    cores_section(&args, &dir, &file)?;
    threads_section(&args, &dir, &file)?;
    std::fs::remove_file(&file).ok();

    if args.real_file.exists() {
        let mut times = Vec::new();
        for run in 0..5 {
            times.push(votewatch(&dir, &args.real_file, 100 + run)?);
        }
        let t = median(&mut times);
        println!(
            "real file        : {:>8.3}s  ({}, warm, median of 5; goal <= 0.3s)",
            t.as_secs_f64(),
            args.real_file.display()
        );
    } else {
        println!(
            "real file        : skipped ({} not found)",
            args.real_file.display()
        );
    }

    if args.big_rows > 0 {
        big_warehouse_check(&dir, &args)?;
    }
    Ok(())
}

fn duckdb_version(dir: &Path) -> Result<String> {
    let path = dir.join("version.db");
    let wh = Warehouse::open(&WarehouseConfig::default().with_path(&path))?;
    let v = wh.query_string("SELECT version()")?;
    drop(wh);
    remove_db(&path);
    Ok(v)
}

fn generate(path: &Path, rows: u64, seed: u64, first_id: i64, repeat_share: f64) -> Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let repeats = write_votes(
        &mut out,
        Spec {
            rows,
            seed,
            first_id,
            repeat_share,
        },
    )?;
    std::io::Write::flush(&mut out)?;
    Ok(repeats)
}

fn remove_db(path: &Path) {
    std::fs::remove_file(path).ok();
    let mut wal = path.as_os_str().to_owned();
    wal.push(".wal");
    std::fs::remove_file(PathBuf::from(wal)).ok();
}

/// The limit: read + hash + parse + route of `file` with the load's own threads, rows thrown
/// away (median of the runs), beside votewatch's load of it (measured here when not given).
fn limit_section(args: &Args, dir: &Path, file: &Path, load: Option<Duration>) -> Result<()> {
    let mut limit = Vec::new();
    let mut loads = Vec::new();
    for run in 0..args.runs {
        limit.push(
            spawn_contender(Contender::Limit, file, &dir.join("limit.db"))?
                .0
                .time,
        );
        if load.is_none() {
            let db = dir.join(format!("limit-load-{run}.db"));
            loads.push(spawn_contender(Contender::Votewatch, file, &db)?.0.time);
        }
    }
    let limit = median(&mut limit);
    let load = load.unwrap_or_else(|| median(&mut loads));
    let rps = |t: Duration| args.rows as f64 / t.as_secs_f64();
    println!(
        "limit, no DuckDB       : {:>8.3}s  {:>12.0} rows/s  (read + hash + parse + route, rows thrown away; median of {})",
        limit.as_secs_f64(),
        rps(limit),
        args.runs
    );
    println!(
        "load / limit           : {:.2}  (votewatch ingest runs at this share of the limit; the rest, {:.3}s, is the cost of writing)",
        rps(load) / rps(limit),
        load.saturating_sub(limit).as_secs_f64()
    );
    Ok(())
}

/// votewatch and DuckDB's bare statement with DuckDB (and votewatch's parsers) limited to 1,
/// 2 and 4 threads: how each scales with cores.
fn threads_section(args: &Args, dir: &Path, file: &Path) -> Result<()> {
    let counts = [1usize, 2, 4];
    let settings: Vec<_> = counts.iter().map(|&t| (t, None)).collect();
    let rows = scaling(args, dir, file, "threads", &settings)?;
    print_scaling("threads", &counts, &rows);
    println!(
        "  threads = DuckDB's threads setting and votewatch's parser threads; speedup against 1 thread, on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}

/// votewatch and DuckDB's bare statement on 1 core and on every core (`taskset`; DuckDB's
/// threads and votewatch's parsers as many as the cores): the speedup cores give.
fn cores_section(args: &Args, dir: &Path, file: &Path) -> Result<()> {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    if all < 2 {
        println!("cores            : skipped (one core)");
        return Ok(());
    }
    let pinned = std::process::Command::new("taskset")
        .args(["-c", "0", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !pinned {
        println!("cores            : skipped (taskset, from util-linux, is not available)");
        return Ok(());
    }
    let counts = [1, all];
    let settings: Vec<_> = counts.iter().map(|&n| (n, Some(n))).collect();
    let rows = scaling(args, dir, file, "cores", &settings)?;
    print_scaling("cores", &counts, &rows);
    println!("  cores = the process pinned to that many cores (taskset), threads as many; goal: votewatch's speedup >= 1.7 on 2");
    Ok(())
}

/// The median times of votewatch and of the bare statement for each setting: (threads, the
/// cores to pin to, if any).
fn scaling(
    args: &Args,
    dir: &Path,
    file: &Path,
    name: &str,
    settings: &[(usize, Option<usize>)],
) -> Result<Vec<[Duration; 2]>> {
    let mut rows = Vec::new();
    for &(threads, cores) in settings {
        let mut times = [Vec::new(), Vec::new()];
        for run in 0..args.runs {
            for (k, c) in [Contender::Votewatch, Contender::Bare]
                .into_iter()
                .enumerate()
            {
                let db = dir.join(format!("{name}-{threads}-{k}-{run}.db"));
                times[k].push(spawn_contender_on(c, file, &db, threads, cores)?.0.time);
            }
        }
        rows.push([median(&mut times[0]), median(&mut times[1])]);
    }
    Ok(rows)
}

/// One line per setting: both times and their speedups against the first setting.
fn print_scaling(label: &str, values: &[usize], rows: &[[Duration; 2]]) {
    for (n, [v, b]) in values.iter().zip(rows) {
        println!(
            "{:<23}: votewatch {:>7.3}s (speedup {:.2}), DuckDB bare {:>7.3}s (speedup {:.2})",
            format!("{label} {n}"),
            v.as_secs_f64(),
            rows[0][0].as_secs_f64() / v.as_secs_f64(),
            b.as_secs_f64(),
            rows[0][1].as_secs_f64() / b.as_secs_f64()
        );
    }
}

/// A re-sent identical file: `file` loaded, then a copy of it under another name into the
/// same warehouse; prints how long the copy took to be recorded as a duplicate.
fn resent(dir: &Path, file: &Path) -> Result<()> {
    let db = dir.join("resent.db");
    remove_db(&db);
    let copy = dir.join("resent-copy.jsonl");
    std::fs::copy(file, &copy)?;
    let mut wh = Warehouse::open(&WarehouseConfig::default().with_path(&db))?;
    let opts = IngestOptions::new(IngestConfig::default());
    ingest_file(&mut wh, file, &opts)?;
    let clock = Instant::now();
    let outcome = ingest_file(&mut wh, &copy, &opts)?;
    let t = clock.elapsed();
    if outcome.status != Status::DuplicateFile {
        bail!("the copy was not recognised: {:?}", outcome.status);
    }
    println!(
        "re-sent identical file : {:>8.3}s to be recorded as a duplicate (goal <= 1s)",
        t.as_secs_f64()
    );
    drop(wh);
    remove_db(&db);
    std::fs::remove_file(&copy).ok();
    Ok(())
}

/// One votewatch load of `file` into a fresh warehouse.
fn votewatch(dir: &Path, file: &Path, run: usize) -> Result<Duration> {
    let db = dir.join(format!("votewatch-{run}.db"));
    remove_db(&db);
    let mut wh = Warehouse::open(&WarehouseConfig::default().with_path(&db))?;
    let clock = Instant::now();
    let outcome = ingest_file(&mut wh, file, &IngestOptions::new(IngestConfig::default()))?;
    let t = clock.elapsed();
    if outcome.status != Status::Loaded {
        bail!(
            "votewatch did not load {}: {:?}",
            file.display(),
            outcome.error
        );
    }
    drop(wh);
    remove_db(&db);
    Ok(t)
}

/// The statement a data engineer would write for votewatch's result: every field read as text
/// and cast with TRY_CAST, rows that fail a rule dropped, the first occurrence of each Id in
/// file order, then the anti-join against the warehouse.
fn same_job_sql(file: &Path) -> String {
    format!(
        "INSERT INTO blog_analysis.votes \
         WITH raw AS ( \
           SELECT row_number() OVER () AS pos, * \
           FROM read_json('{}', format = 'newline_delimited', columns = {{Id: 'VARCHAR', \
             PostId: 'VARCHAR', VoteTypeId: 'VARCHAR', UserId: 'VARCHAR', \
             BountyAmount: 'VARCHAR', CreationDate: 'VARCHAR'}})), \
         typed AS ( \
           SELECT pos, TRY_CAST(Id AS BIGINT) AS id, TRY_CAST(PostId AS BIGINT) AS post_id, \
             TRY_CAST(VoteTypeId AS SMALLINT) AS vote_type_id, \
             TRY_CAST(nullif(UserId, '') AS BIGINT) AS user_id, \
             TRY_CAST(nullif(BountyAmount, '') AS INTEGER) AS bounty_amount, \
             TRY_CAST(CreationDate AS TIMESTAMP) AS creation_date, \
             nullif(UserId, '') AS user_text, nullif(BountyAmount, '') AS bounty_text \
           FROM raw), \
         valid AS ( \
           SELECT * FROM typed \
           WHERE id > 0 AND post_id > 0 AND vote_type_id > 0 AND creation_date IS NOT NULL \
             AND (user_text IS NULL OR user_id IS NOT NULL) \
             AND (bounty_text IS NULL OR bounty_amount IS NOT NULL) \
           QUALIFY row_number() OVER (PARTITION BY id ORDER BY pos) = 1) \
         SELECT id, post_id, vote_type_id, user_id, bounty_amount, creation_date, 0 \
         FROM valid f \
         WHERE NOT EXISTS (SELECT 1 FROM blog_analysis.votes v WHERE v.id = f.id)",
        sql_path(file)
    )
}

/// The bare statement: typed columns straight from read_json and the anti-join, nothing else.
fn bare_sql(file: &Path) -> String {
    format!(
        "INSERT INTO blog_analysis.votes \
         SELECT j.Id, j.PostId, j.VoteTypeId, j.UserId, j.BountyAmount, j.CreationDate, 0 \
         FROM read_json('{}', format = 'newline_delimited', columns = {{Id: 'BIGINT', \
           PostId: 'BIGINT', VoteTypeId: 'SMALLINT', UserId: 'BIGINT', \
           BountyAmount: 'INTEGER', CreationDate: 'TIMESTAMP'}}) j \
         WHERE NOT EXISTS (SELECT 1 FROM blog_analysis.votes v WHERE v.id = j.Id)",
        sql_path(file)
    )
}

fn sql_path(file: &Path) -> String {
    file.display().to_string().replace('\'', "''")
}

/// Runs one contender in a child process (this executable) and reads what it reported: the
/// measure, and votewatch's status line.
fn spawn_contender(c: Contender, file: &Path, db: &Path) -> Result<(Measure, String)> {
    spawn_contender_on(c, file, db, 0, None)
}

/// [`spawn_contender`] with `threads` DuckDB threads (and, for votewatch, parser threads; 0:
/// the defaults), on the first `cores` cores only (`taskset`) when given.
fn spawn_contender_on(
    c: Contender,
    file: &Path,
    db: &Path,
    threads: usize,
    cores: Option<usize>,
) -> Result<(Measure, String)> {
    use clap::ValueEnum;
    let name = c.to_possible_value().expect("named").get_name().to_string();
    let exe = std::env::current_exe()?;
    let mut command = match cores {
        Some(n) => {
            let mut t = std::process::Command::new("taskset");
            t.args(["-c", &format!("0-{}", n - 1)]).arg(exe);
            t
        }
        None => std::process::Command::new(exe),
    };
    let out = command
        .args(["--contender", &name, "--file"])
        .arg(file)
        .arg("--db")
        .arg(db)
        .args(["--threads", &threads.to_string()])
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{name} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let fields: Vec<&str> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .context("no RESULT line")?
        .split_whitespace()
        .collect();
    let status = stdout
        .lines()
        .find(|l| l.starts_with("status "))
        .unwrap_or("")
        .to_string();
    Ok((
        Measure {
            time: Duration::from_secs_f64(fields[0].parse()?),
            peak_rss_kb: fields[1].parse()?,
        },
        status,
    ))
}

/// In the child: one load into a fresh warehouse, then `RESULT seconds peak_rss_kb`.
fn contender(c: Contender, args: &Args) -> Result<()> {
    let file = args.file.as_deref().context("--file")?;
    let db = args.db.as_deref().context("--db")?;
    remove_db(db);
    // votewatch with its shipped settings; the SQL baselines as a data engineer would run
    // them, with DuckDB's default memory limit.
    let mut settings = WarehouseConfig::default().with_path(db);
    if c != Contender::Votewatch {
        settings.memory_limit.clear();
    }
    let mut opts = IngestOptions::new(IngestConfig::default());
    opts.parsers = args.threads;
    if c == Contender::Limit {
        let clock = Instant::now();
        let (counts, rows) = votewatch::pipeline::route::read_only(file, &opts)?;
        let t = clock.elapsed();
        println!("status limit records {} rows {rows}", counts.lines);
        println!(
            "RESULT {} {}",
            t.as_secs_f64(),
            votewatch::pipeline::load::peak_rss_kb()
        );
        return Ok(());
    }
    let mut wh = Warehouse::open(&settings)?;
    if args.threads > 0 {
        wh.execute_batch(&format!("SET threads = {}", args.threads))?;
    }
    let clock = Instant::now();
    match c {
        Contender::Limit => unreachable!("measured above"),
        Contender::Votewatch => {
            let outcome = ingest_file(&mut wh, file, &opts)?;
            println!(
                "status {} inserted {} error {:?}",
                outcome.status, outcome.counts.inserted, outcome.error
            );
        }
        Contender::SameJob => wh.execute_batch(&same_job_sql(file))?,
        Contender::Bare => wh.execute_batch(&bare_sql(file))?,
    }
    let t = clock.elapsed();
    drop(wh);
    remove_db(db);
    println!(
        "RESULT {} {}",
        t.as_secs_f64(),
        votewatch::pipeline::load::peak_rss_kb()
    );
    Ok(())
}

/// Peak RSS of votewatch on the hostile shapes, each about `mib` MiB once decompressed.
fn hostile_bench(mib: u64) -> Result<()> {
    use std::io::Write;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let size = (mib as usize) << 20;
    let row = br#"{"Id":"1","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-01"}"#;
    let gzip_of = |unit: &[u8], count: usize| -> Result<Vec<u8>> {
        // Members of 1 MiB each, concatenated: the stream a bomb would be.
        let per = (1usize << 20) / unit.len();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        for _ in 0..per {
            e.write_all(unit)?;
        }
        let member = e.finish()?;
        Ok(member.repeat(count.div_ceil(per)))
    };
    let shapes: Vec<(&str, Vec<u8>)> = vec![
        ("blank-lines-lf.jsonl", b"\n".repeat(size)),
        ("blank-lines-crlf.jsonl", b"\r\n".repeat(size / 2)),
        (
            "empty-elements.json",
            [&b"["[..], &b",".repeat(size), b"]"].concat(),
        ),
        ("one-byte-bad-lines.jsonl", b"x\n".repeat(size / 2)),
        (
            "repeated-row.jsonl",
            [&row[..], b"\n"].concat().repeat(size / (row.len() + 1)),
        ),
        ("descending-ids.jsonl", {
            // Valid, distinct votes, newest Id first: the order that defeats "above the
            // maximum so far".
            let n = size / 75;
            let mut v = Vec::with_capacity(size + 4096);
            for i in 0..n {
                writeln!(
                    v,
                    r#"{{"Id":"{}","PostId":"7","VoteTypeId":"2","CreationDate":"2022-01-01"}}"#,
                    n - i
                )?;
            }
            v
        }),
        ("newline-bomb.jsonl.gz", gzip_of(b"\n", size)?),
        ("comma-bomb.json.gz", {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            e.write_all(b"[")?;
            [e.finish()?, gzip_of(b",", size)?].concat()
        }),
    ];
    println!("peak RSS of one votewatch load per shape (about {mib} MiB decompressed each):");
    for (name, bytes) in shapes {
        let path = dir.join(name);
        std::fs::write(&path, &bytes)?;
        let (m, status) = spawn_contender(Contender::Votewatch, &path, &dir.join("h.db"))?;
        println!(
            "  {name:<26} stored {:>7.1} MB  {:>7.2}s  peak RSS {:>5} MB  {status}",
            bytes.len() as f64 / 1e6,
            m.time.as_secs_f64(),
            m.peak_rss_kb / 1024,
        );
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

/// Loads small files into an empty warehouse and into one holding `big_rows` votes: five
/// files each, the median reported.
fn big_warehouse_check(dir: &Path, args: &Args) -> Result<()> {
    const FILES: usize = 5;
    // The small files' Ids come after the large warehouse's, as daily deliveries would.
    let mut smalls = Vec::new();
    for k in 0..FILES {
        let path = dir.join(format!("small-{k}.jsonl"));
        let first_id = (args.big_rows as i64) * 2 + (k as i64) * (args.small_rows as i64) * 3;
        generate(
            &path,
            args.small_rows,
            args.seed + 1 + k as u64,
            first_id,
            0.0,
        )?;
        smalls.push(path);
    }
    let opts = IngestOptions::new(IngestConfig::default());
    let load_all = |wh: &mut Warehouse| -> Result<Vec<Duration>> {
        let mut times = Vec::new();
        for small in &smalls {
            let clock = Instant::now();
            let outcome = ingest_file(wh, small, &opts)?;
            times.push(clock.elapsed());
            if outcome.counts.inserted != args.small_rows {
                bail!(
                    "{} inserted {} rows",
                    small.display(),
                    outcome.counts.inserted
                );
            }
        }
        Ok(times)
    };

    let empty_db = dir.join("empty.db");
    remove_db(&empty_db);
    let mut wh = Warehouse::open(&WarehouseConfig::default().with_path(&empty_db))?;
    let mut empty_times = load_all(&mut wh)?;
    drop(wh);
    remove_db(&empty_db);

    let big_db = dir.join("big.db");
    remove_db(&big_db);
    let mut wh = Warehouse::open(&WarehouseConfig::default().with_path(&big_db))?;
    // Filled by votewatch itself, as a warehouse that has been loading for a while is.
    let fill = dir.join("fill.jsonl");
    generate(&fill, args.big_rows, args.seed, 0, 0.0)?;
    let clock = Instant::now();
    ingest_file(&mut wh, &fill, &opts)?;
    std::fs::remove_file(&fill).ok();
    let fill_t = clock.elapsed();
    let mut big_times = load_all(&mut wh)?;
    drop(wh);
    remove_db(&big_db);
    for small in &smalls {
        std::fs::remove_file(small).ok();
    }
    let (empty_t, big_t) = (median(&mut empty_times), median(&mut big_times));
    println!(
        "{}k rows into empty    : {:>8.3}s  (median of {FILES} files)",
        args.small_rows / 1000,
        empty_t.as_secs_f64()
    );
    println!(
        "{}k rows into {}M rows : {:>8.3}s  (median of {FILES} files; warehouse filled in {:.1}s)",
        args.small_rows / 1000,
        args.big_rows / 1_000_000,
        big_t.as_secs_f64(),
        fill_t.as_secs_f64()
    );
    println!(
        "large / empty    : {:.2}  (goal <= 1.1)",
        big_t.as_secs_f64() / empty_t.as_secs_f64()
    );
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[path = "daemon_bench/mod.rs"]
mod daemon_bench;

#[path = "scale/mod.rs"]
mod scale;

// Shared by path with the integration tests; each uses part of it.
#[allow(dead_code)]
#[path = "common/pg_cluster.rs"]
mod pg_cluster;

/// The DuckLake benchmark (`--lake`).
#[path = "lake/mod.rs"]
mod lake;
