//! The daemon's life with the system: signals caught from the first line of `main`
//! (`EarlySignals`) and the signal task, the `flock` on landing/, systemd's notifications, and
//! the watchdog task.
//!
//! The watchdog task: pings systemd's watchdog while the loader shows signs of life. The
//! loader beats while idle and while loading; a long commit or checkpoint makes no beats but
//! does I/O on the loader's thread, which counts too. A loader that is stuck does neither,
//! and systemd restarts the daemon. The task runs on the same runtime as the landing task,
//! so a blocked runtime feeds nothing either.

use std::path::Path;
use std::sync::Arc;

use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tracing::{error, info};

use super::ConfigSource;
use crate::config::Config;

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::interrupt::Interrupt;

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

/// Feeds the watchdog (when systemd asked for one) until `shutdown`, while the loader
/// (`alive`, or I/O on the thread `loader_tid`) and the landing task (`landing`) both show
/// life.
pub async fn feed(
    alive: Interrupt,
    landing: Interrupt,
    loader_tid: i32,
    shutdown: CancellationToken,
) {
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
        if (alive.alive_within(period) || progressing) && landing.alive_within(period) {
            notify_systemd(&[sd_notify::NotifyState::Watchdog]);
        }
    }
}

/// Signals that came before the signal task listened: from the first line of `main` on,
/// SIGTERM, SIGINT and SIGHUP only raise these flags, so a signal sent as the daemon starts is
/// never the default action (death by the signal); the signal task acts on them once it runs.
#[derive(Debug, Clone, Default)]
pub struct EarlySignals {
    stop: Arc<std::sync::atomic::AtomicBool>,
    reload: Arc<std::sync::atomic::AtomicBool>,
}

impl EarlySignals {
    /// Installs the flag handlers. Call it first thing in the process.
    pub fn catch() -> std::io::Result<EarlySignals> {
        let early = EarlySignals::default();
        for sig in [SIGTERM, SIGINT] {
            signal_hook::flag::register(sig, early.stop.clone())?;
        }
        signal_hook::flag::register(SIGHUP, early.reload.clone())?;
        Ok(early)
    }

    pub(super) fn take_stop(&self) -> bool {
        self.stop.swap(false, std::sync::atomic::Ordering::SeqCst)
    }

    pub(super) fn take_reload(&self) -> bool {
        self.reload.swap(false, std::sync::atomic::Ordering::SeqCst)
    }
}

/// SIGTERM and SIGINT stop the daemon; SIGHUP reads the configuration again and, when it is
/// valid, publishes it to every task (a broken one is refused and the old one kept).
pub(super) async fn signal_task(
    mut signals: signal_hook_tokio::Signals,
    early: EarlySignals,
    (source, mut landing_lock): (ConfigSource, LandingLock),
    config: tokio::sync::watch::Sender<Arc<Config>>,
    interrupt: Interrupt,
    stop: CancellationToken,
    shutdown: CancellationToken,
) {
    // What came while the daemon started, in the order that loses nothing: a reload, then a
    // stop (a stop that came first is acted on anyway).
    let mut pending: Vec<i32> = Vec::new();
    if early.take_reload() {
        pending.push(SIGHUP);
    }
    if early.take_stop() {
        pending.push(SIGTERM);
    }
    let mut pending = pending.into_iter();
    loop {
        let signal = match pending.next() {
            Some(s) => Some(s),
            None => tokio::select! {
                _ = shutdown.cancelled() => break,
                s = signals.next() => s,
            },
        };
        match signal {
            None => break,
            Some(SIGHUP) => match source.load().and_then(|new| {
                // A new landing folder is taken (its flock) before the configuration is
                // published, and the old one let go: one daemon per landing folder still.
                if new.paths.landing != landing_lock.path {
                    landing_lock = lock_landing(&new.paths.landing)?;
                }
                Ok(new)
            }) {
                Ok(new) => {
                    config.send_replace(Arc::new(new));
                    info!("configuration reloaded");
                }
                Err(e) => {
                    error!(error = %format!("{e:#}"), "configuration not reloaded; keeping the old one")
                }
            },
            Some(_) => {
                // The stop flag first: a load in progress sees it at its next chunk.
                interrupt.request_stop();
                stop.cancel();
            }
        }
    }
    signals.handle().close();
}

/// The `flock` on the landing folder this daemon watches; released when dropped.
pub(super) struct LandingLock {
    path: std::path::PathBuf,
    _dir: std::fs::File,
}

/// Takes landing/ for this process alone (an exclusive `flock` on the folder, held until the
/// process ends, released by the kernel however it ends), so that two daemons never share one
/// landing folder and take each other's files.
pub(super) fn lock_landing(landing: &Path) -> anyhow::Result<LandingLock> {
    let dir = std::fs::File::open(landing)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", landing.display()))?;
    match dir.try_lock() {
        Ok(()) => Ok(LandingLock {
            path: landing.to_path_buf(),
            _dir: dir,
        }),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow::anyhow!(
            "another votewatch daemon already watches {}; stop it first (one daemon per landing folder)",
            landing.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(anyhow::anyhow!(
            "cannot lock {}: {e}",
            landing.display()
        )),
    }
}

pub(crate) fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(states);
    }
}
