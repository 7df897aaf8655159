//! The watchdog task: pings systemd's watchdog while the loader shows signs of life. The
//! loader beats while idle and while loading; a long commit or checkpoint makes no beats but
//! does I/O on the loader's thread, which counts too. A loader that is stuck does neither,
//! and systemd restarts the daemon. The task runs on the same runtime as the landing task,
//! so a blocked runtime feeds nothing either.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::notify_systemd;
use crate::ingest::Interrupt;

/// How often the idle loader beats: often enough for the watchdog period (a quarter of it),
/// and at most once a second when there is no watchdog.
pub fn loader_tick() -> Duration {
    sd_notify::watchdog_enabled().map_or(Duration::from_secs(1), |period| {
        (period / 4).clamp(Duration::from_millis(10), Duration::from_secs(1))
    })
}

/// Bytes the thread `tid` of this process has read and written so far (`rchar` + `wchar` of
/// `/proc/self/task/<tid>/io`), or `None` where the kernel does not say.
fn thread_io(tid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/io")).ok()?;
    let field = |name: &str| -> Option<u64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    Some(field("rchar:")? + field("wchar:")?)
}

/// Feeds the watchdog (when systemd asked for one) until `shutdown`. `loader_tid` is the
/// loader thread's id.
pub async fn feed(alive: Interrupt, loader_tid: i32, shutdown: CancellationToken) {
    let Some(period) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut ticks = tokio::time::interval(period / 3);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_io = thread_io(loader_tid);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let io = thread_io(loader_tid);
        let progressing = io.is_some() && io != last_io;
        last_io = io;
        if alive.alive_within(period) || progressing {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        }
    }
}
