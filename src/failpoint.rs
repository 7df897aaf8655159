//! Crash points for tests of crash safety: when `VOTEWATCH_FAILPOINT` names a point, the
//! process aborts there, as a `kill -9` would stop it, or stalls there until it is killed.

/// The environment variable that names the point at which to abort or stall.
pub const ENV: &str = "VOTEWATCH_FAILPOINT";

fn armed(point: &str) -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == point)
}

/// Aborts the process here when `point` is armed.
pub fn hit(point: &str) {
    if armed(point) {
        eprintln!("votewatch: failpoint {point} reached, aborting");
        std::process::abort();
    }
}

/// Says so on stderr and waits here forever when `point` is armed, so that a test can kill
/// the process at a known moment (in the middle of a load, say) instead of after a guessed
/// delay.
pub fn stall(point: &str) {
    if armed(point) {
        eprintln!("votewatch: failpoint {point} reached, stalling");
        loop {
            std::thread::park();
        }
    }
}
