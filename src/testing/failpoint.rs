//! Crash points for tests of crash safety: when `VOTEWATCH_FAILPOINT` names a point, the
//! process aborts there, as a `kill -9` would stop it, or stalls there until it is killed.

/// The environment variable that names the point at which to abort or stall.
pub const ENV: &str = "VOTEWATCH_FAILPOINT";

/// Whether `point` is armed: only in a build with the `testing` feature (the test suite's),
/// never in a release build, whatever the environment says.
fn armed(point: &str) -> bool {
    cfg!(feature = "testing") && std::env::var_os(ENV).is_some_and(|v| v == point)
}

/// Aborts the process here when `point` is armed.
pub fn hit(point: &str) {
    if armed(point) {
        eprintln!("votewatch: failpoint {point} reached, aborting");
        std::process::abort();
    }
}

/// Panics here when `point` is armed (a defect of votewatch's own, for the tests that it is
/// contained).
pub fn panic_at(point: &str) {
    if armed(point) {
        panic!("failpoint {point} reached");
    }
}

/// The environment variable naming a file whose appearance ends a stall.
pub const RESUME_ENV: &str = "VOTEWATCH_FAILPOINT_RESUME";

/// Says so on stderr and waits here when `point` is armed, so that a test can act at a known
/// moment (kill the process in the middle of a load, or send another file meanwhile) instead
/// of after a guessed delay. Waits forever, or, with `VOTEWATCH_FAILPOINT_RESUME` set, until
/// that file exists; a resumed point does not stall again in this process.
pub fn stall(point: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static RESUMED: AtomicBool = AtomicBool::new(false);
    if !armed(point) || RESUMED.load(Ordering::Relaxed) {
        return;
    }
    eprintln!("votewatch: failpoint {point} reached, stalling");
    let resume = std::env::var_os(RESUME_ENV).map(std::path::PathBuf::from);
    loop {
        match &resume {
            Some(path) if path.exists() => {
                RESUMED.store(true, Ordering::Relaxed);
                return;
            }
            Some(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            None => std::thread::park(),
        }
    }
}

/// When `point` is armed, works for `VOTEWATCH_FAILPOINT_SECS` seconds (default 2) without any
/// sign of life but I/O: writes a scratch file in small steps, as a long commit or checkpoint
/// would. For the watchdog test.
pub fn busy_io(point: &str) {
    if !armed(point) {
        return;
    }
    use std::io::Write;
    let secs: f64 = std::env::var("VOTEWATCH_FAILPOINT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2.0);
    eprintln!("votewatch: failpoint {point} reached, busy with I/O for {secs} s");
    let until = std::time::Instant::now() + std::time::Duration::from_secs_f64(secs);
    let path = std::env::temp_dir().join(format!("votewatch-busy-{}", std::process::id()));
    if let Ok(mut f) = std::fs::File::create(&path) {
        while std::time::Instant::now() < until {
            let _ = f.write_all(&[0u8; 4096]);
            let _ = f.sync_data();
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
    let _ = std::fs::remove_file(&path);
    eprintln!("votewatch: failpoint {point} done");
}

/// True when `point` is armed: the caller then fails as DuckDB would there (for the tests
/// that such a failure ends cleanly).
pub fn fails(point: &str) -> bool {
    armed(point)
}

/// The environment variable naming what an error failpoint applies to (a file name).
pub const FOR_ENV: &str = "VOTEWATCH_FAILPOINT_FOR";

/// True when `point` is armed for `name` (`VOTEWATCH_FAILPOINT_FOR` equal to it): the caller
/// then fails as the warehouse would on that file, every time, for the tests of a file that
/// makes the warehouse fail.
pub fn fails_for(point: &str, name: &str) -> bool {
    armed(point) && std::env::var_os(FOR_ENV).is_some_and(|v| v == name)
}
