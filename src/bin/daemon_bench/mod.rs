//! `votewatch-bench --daemon`: the real daemon's drop-to-commit latency for files dropped one
//! after another, and its throughput for a burst of small files dropped at once.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::Args;

/// Runs the real `votewatch run` (the executable beside this one) in a temporary folder with
/// the shipped daemon settings, drops files the safe way (temporary name, then rename) and
/// watches them arrive in processed/, which happens right after each file's commit.
pub fn bench(args: &Args) -> Result<()> {
    let exe = std::env::current_exe()?.with_file_name("votewatch");
    if !exe.exists() {
        bail!(
            "{} not found: build it with cargo build --release",
            exe.display()
        );
    }
    let tmp = tempfile::tempdir()?;
    let dir = tmp.path();
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/votewatch.toml");
    std::fs::copy(&shipped, dir.join("votewatch.toml"))?;
    let mut child = std::process::Command::new(&exe)
        .args(["run", "--config", "votewatch.toml"])
        .current_dir(dir)
        .env("VOTEWATCH_LOG", "warn")
        .spawn()?;
    let result = measure(args, dir);
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait()?;
    result
}

fn measure(args: &Args, dir: &Path) -> Result<()> {
    let landing = dir.join("landing");
    let processed = dir.join("processed");
    let wait_for = |n: usize, timeout: Duration| -> Result<()> {
        let deadline = Instant::now() + timeout;
        while std::fs::read_dir(&processed).map_or(0, |d| d.count()) < n {
            if Instant::now() > deadline {
                bail!("timed out waiting for {n} files in processed/");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    };
    // The daemon creates landing/ when it starts.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !landing.is_dir() || !processed.is_dir() {
        if Instant::now() > deadline {
            bail!("the daemon did not start");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(300));

    let mut latencies = Vec::new();
    let mut next_id = 1i64;
    for k in 0..args.drops {
        let name = format!("drop-{k:04}.jsonl");
        let tmp = landing.join(format!("{name}.tmp"));
        super::generate(&tmp, 1000, k as u64, next_id, 0.0)?;
        next_id += 3000;
        let clock = Instant::now();
        std::fs::rename(&tmp, landing.join(&name))?;
        wait_for(k + 1, Duration::from_secs(60))?;
        latencies.push(clock.elapsed());
    }
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    println!(
        "drop-to-commit, 1k rows: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms  ({} drops, settle 100 ms included; goal p50 <= 300 ms)",
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.95).as_secs_f64() * 1000.0,
        latencies.last().map_or(0.0, |d| d.as_secs_f64() * 1000.0),
        latencies.len()
    );

    // Written beforehand outside landing/, then renamed in as fast as possible.
    let staging = dir.join("staging");
    std::fs::create_dir_all(&staging)?;
    let mut names = Vec::new();
    for k in 0..args.burst {
        let name = format!("burst-{k:05}.jsonl");
        super::generate(&staging.join(&name), 10, 1000 + k as u64, next_id, 0.0)?;
        next_id += 30;
        names.push(name);
    }
    let before = args.drops;
    let clock = Instant::now();
    for name in &names {
        std::fs::rename(staging.join(name), landing.join(name))?;
    }
    wait_for(before + args.burst, Duration::from_secs(600))?;
    let t = clock.elapsed();
    println!(
        "burst of {} files (10 rows each): {:.2}s, {:.0} files/s  (goal >= 100 files/s)",
        args.burst,
        t.as_secs_f64(),
        args.burst as f64 / t.as_secs_f64()
    );
    Ok(())
}
