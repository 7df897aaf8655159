//! Crash points for tests of crash safety: when `VOTEWATCH_FAILPOINT` names a point, the
//! process aborts there, as a `kill -9` would stop it.

/// The environment variable that names the point at which to abort.
pub const ENV: &str = "VOTEWATCH_FAILPOINT";

pub fn hit(point: &str) {
    if std::env::var_os(ENV).is_some_and(|v| v == point) {
        eprintln!("votewatch: failpoint {point} reached, aborting");
        std::process::abort();
    }
}
