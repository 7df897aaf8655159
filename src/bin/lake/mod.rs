//! `votewatch-bench --lake`: votewatch on DuckLake (a private PostgreSQL cluster, Parquet in a
//! temporary folder) against votewatch on a DuckDB file and DuckDB's bare statement, a large
//! lake, and two loaders at once.

use super::pg_cluster::PgCluster;
use super::*;
use std::process::Command;
use votewatch::config::{DuckLakeConfig, WarehouseKind};

fn check(out: std::process::Output, what: &str) -> Result<()> {
    if !out.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

/// The configuration of a fresh lake: a new catalog database, data under `dir/name`.
fn lake_config(pg: &PgCluster, dir: &Path, name: &str, repo: &Path) -> Result<WarehouseConfig> {
    Ok(WarehouseConfig {
        kind: WarehouseKind::Ducklake,
        ducklake: DuckLakeConfig {
            catalog: pg.create_database(name).map_err(anyhow::Error::msg)?,
            data_path: format!("{}/", dir.join(name).display()),
            extension_repository: repo.display().to_string(),
            extension_directory: dir.join("extensions"),
            temp_directory: dir.join("lake.tmp"),
            host_id: "bench".into(),
            ..DuckLakeConfig::default()
        },
        ..WarehouseConfig::default()
    })
}

/// The lake's live Parquet files of `votes`.
fn vote_files(wh: &Warehouse) -> Result<i64> {
    Ok(wh.query_i64(
        "SELECT count(*) FROM __ducklake_metadata_lake.ducklake_data_file f \
         JOIN __ducklake_metadata_lake.ducklake_table t USING (table_id) \
         WHERE t.table_name = 'votes' AND f.end_snapshot IS NULL AND t.end_snapshot IS NULL",
    )?)
}

/// One load of `file` into `wh`: its time.
fn load(wh: &mut Warehouse, file: &Path) -> Result<Duration> {
    let clock = Instant::now();
    let outcome = ingest_file(wh, file, &IngestOptions::new(IngestConfig::default()))?;
    let t = clock.elapsed();
    if !outcome.status.is_handled() {
        bail!("{} not loaded: {:?}", file.display(), outcome.error);
    }
    Ok(t)
}

pub fn bench(args: &Args) -> Result<()> {
    let repo = args.extension_repo.clone().context(
        "--extension-repo or VOTEWATCH_EXTENSION_REPO (scripts/duckdb-extensions.sh REPO)",
    )?;
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let pg = PgCluster::start().map_err(anyhow::Error::msg)?;
    println!(
        "machine: {} cores; DuckLake on PostgreSQL (127.0.0.1) + Parquet on local disk",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let mut n = 0;
    for &rows in &args.lake_rows {
        let file = dir.join("bench.jsonl");
        generate(&file, rows, args.seed, 0, args.repeat_share)?;
        let (mut lake_t, mut file_t, mut bare_t, mut files) =
            (Vec::new(), Vec::new(), Vec::new(), 0);
        for run in 0..args.runs {
            n += 1;
            let mut wh = Warehouse::open(&lake_config(&pg, dir, &format!("lake{n}"), &repo)?)?;
            lake_t.push(load(&mut wh, &file)?);
            files = vote_files(&wh)?;
            drop(wh);
            file_t.push(votewatch(dir, &file, 1000 + run)?);
            let (m, _) =
                spawn_contender(Contender::Bare, &file, &dir.join(format!("bare-{run}.db")))?;
            bare_t.push(m.time);
        }
        let (l, f, b) = (
            median(&mut lake_t),
            median(&mut file_t),
            median(&mut bare_t),
        );
        let rps = |t: Duration| rows as f64 / t.as_secs_f64();
        println!(
            "{rows} rows: votewatch on DuckLake {:.3}s ({:.0} rows/s), on a DuckDB file {:.3}s, DuckDB bare statement (file) {:.3}s  (median of {})",
            l.as_secs_f64(), rps(l), f.as_secs_f64(), b.as_secs_f64(), args.runs
        );
        println!(
            "  ratio DuckLake / DuckDB file: {:.2} (rows/s; goal >= 0.8); Parquet files of votes after the load: {files} (goal 1)",
            rps(l) / rps(f)
        );
        std::fs::remove_file(&file).ok();
    }
    if args.big_rows > 0 {
        big_lake(args, &pg, dir, &repo)?;
    }
    two_loaders(args, &pg, dir, &repo)?;
    Ok(())
}

/// 100k-row files (new Ids, as daily deliveries) into an empty lake and into one of
/// `big_rows` rows.
fn big_lake(args: &Args, pg: &PgCluster, dir: &Path, repo: &Path) -> Result<()> {
    let mut smalls = Vec::new();
    for k in 0..5u64 {
        let path = dir.join(format!("small-{k}.jsonl"));
        let first_id = (args.big_rows as i64) * 2 + (k * args.small_rows * 3) as i64;
        generate(&path, args.small_rows, args.seed + 1 + k, first_id, 0.0)?;
        smalls.push(path);
    }
    let times = |wh: &mut Warehouse| -> Result<Duration> {
        let mut t = Vec::new();
        for s in &smalls {
            t.push(load(wh, s)?);
        }
        Ok(median(&mut t))
    };
    let mut empty = Warehouse::open(&lake_config(pg, dir, "empty", repo)?)?;
    let empty_t = times(&mut empty)?;
    drop(empty);
    let mut big = Warehouse::open(&lake_config(pg, dir, "big", repo)?)?;
    let fill = dir.join("fill.jsonl");
    generate(&fill, args.big_rows, args.seed, 0, 0.0)?;
    load(&mut big, &fill)?;
    std::fs::remove_file(&fill).ok();
    let big_t = times(&mut big)?;
    println!(
        "{}-row file into a lake of {} rows vs. an empty lake: {:.3}s vs. {:.3}s, ratio {:.2} (goal <= 1.1)",
        args.small_rows,
        args.big_rows,
        big_t.as_secs_f64(),
        empty_t.as_secs_f64(),
        big_t.as_secs_f64() / empty_t.as_secs_f64()
    );
    Ok(())
}

/// Eight 250k-row files loaded by two votewatch processes at once (four each, as two
/// hosts' deliveries), then by one process, each into a fresh lake: the combined
/// throughput. The one process loads them in the order the two committed them, so that
/// both runs do the same work (which rows are above the lake's maximum depends on that
/// order). Median of `--runs`.
fn two_loaders(args: &Args, pg: &PgCluster, dir: &Path, repo: &Path) -> Result<()> {
    let exe = std::env::current_exe()?.with_file_name("votewatch");
    let rows = 250_000u64;
    let files: Vec<PathBuf> = (0..8u64)
        .map(|k| {
            let p = dir.join(format!("part-{k}.jsonl"));
            generate(&p, rows, args.seed + 10 + k, (k * rows * 2) as i64, 0.0).map(|_| p)
        })
        .collect::<Result<_>>()?;
    let config = |name: &str| -> Result<(PathBuf, WarehouseConfig)> {
        let cfg = lake_config(pg, dir, name, repo)?;
        let d = &cfg.ducklake;
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(
            &path,
            format!(
                "[warehouse]\nkind = \"ducklake\"\n[warehouse.ducklake]\ncatalog = \"{}\"\ndata_path = \"{}\"\nextension_repository = \"{}\"\nextension_directory = \"{}\"\ntemp_directory = \"{}\"\nhost_id = \"{name}\"\n",
                d.catalog,
                d.data_path,
                d.extension_repository,
                d.extension_directory.display(),
                d.temp_directory.display()
            ),
        )?;
        // The catalog and schema first, so that only loads are timed.
        let status = Command::new(&exe)
            .arg("history")
            .arg("--config")
            .arg(&path)
            .output()?;
        check(status, "votewatch history")?;
        Ok((path, cfg))
    };
    let run = |cfg: &Path, group: &[PathBuf]| -> Result<std::process::Child> {
        Ok(Command::new(&exe)
            .arg("ingest")
            .arg("--config")
            .arg(cfg)
            .args(group)
            .stdout(std::process::Stdio::null())
            .spawn()?)
    };
    let (mut ones, mut twos) = (Vec::new(), Vec::new());
    for r in 0..args.runs {
        let (two, two_cfg) = config(&format!("two{r}"))?;
        let clock = Instant::now();
        let a = run(&two, &files[..4])?;
        let b = run(&two, &files[4..])?;
        let (sa, sb) = (a.wait_with_output()?, b.wait_with_output()?);
        twos.push(clock.elapsed());
        if !sa.status.success() || !sb.status.success() {
            bail!("a votewatch ingest failed");
        }
        let order = Warehouse::open(&two_cfg)?.query_string(
            "SELECT string_agg(file_name, ',' ORDER BY finished_at) \
                 FROM blog_analysis.ingested_files",
        )?;
        let ordered: Vec<PathBuf> = order.split(',').map(|n| dir.join(n)).collect();
        let (one, _) = config(&format!("one{r}"))?;
        let clock = Instant::now();
        let status = run(&one, &ordered)?.wait()?;
        ones.push(clock.elapsed());
        if !status.success() {
            bail!("a votewatch ingest failed");
        }
    }
    let (one_t, two_t) = (median(&mut ones), median(&mut twos));
    let total = (rows * 8) as f64;
    println!(
        "8 files of {rows} rows: one process {:.2}s ({:.0} rows/s), two processes at once {:.2}s ({:.0} rows/s): ratio {:.2} (goal >= 0.9; median of {}, each including its processes' start)",
        one_t.as_secs_f64(),
        total / one_t.as_secs_f64(),
        two_t.as_secs_f64(),
        total / two_t.as_secs_f64(),
        one_t.as_secs_f64() / two_t.as_secs_f64(),
        args.runs
    );
    Ok(())
}
