//! The stop flag and heartbeat shared by whoever runs a load and whoever watches it: the
//! daemon's signal task raises the flag and a load in progress sees it at its next chunk; the
//! loader and a load beat, the watchdog and `/healthz` read the beat. Used by the pipeline, the
//! daemon and the HTTP surface alike, so it belongs to none of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Shared between the daemon's threads: a stop request, the time of the last sign of
/// progress, and what the loader is waiting for when it waits.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    stop: Arc<AtomicBool>,
    /// Milliseconds since an arbitrary start, set on every chunk and loop turn.
    beat_ms: Arc<AtomicU64>,
    waiting: Arc<Mutex<Option<Waiting>>>,
}

/// What the loader waits for, since when, and whether that is a healthy state (another
/// host's write lock: yes; a warehouse that refuses every write: no).
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub what: String,
    pub since: chrono::DateTime<chrono::Utc>,
    pub healthy: bool,
}

impl Waiting {
    /// "waiting for the lake's write lock since 2026-12-05T10:00:00Z"
    pub fn describe(&self) -> String {
        format!(
            "{} since {}",
            self.what,
            self.since
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    }
}

impl Interrupt {
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn beat(&self) {
        self.beat_ms.store(clock_ms(), Ordering::Relaxed);
    }

    /// Says what the loader now waits for (kept while the same wait goes on, so `since` is
    /// when it began).
    pub fn wait_for(&self, what: &str, healthy: bool) {
        let mut w = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
        if w.as_ref()
            .is_some_and(|w| w.what == what && w.healthy == healthy)
        {
            return;
        }
        *w = Some(Waiting {
            what: what.to_string(),
            since: chrono::Utc::now(),
            healthy,
        });
    }

    /// The wait is over.
    pub fn done_waiting(&self) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// What the loader waits for now, if anything.
    pub fn waiting(&self) -> Option<Waiting> {
        self.waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// True when a beat came within `period`.
    pub fn alive_within(&self, period: Duration) -> bool {
        clock_ms().saturating_sub(self.beat_ms.load(Ordering::Relaxed)) <= period.as_millis() as u64
    }
}

fn clock_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wait keeps the time it began while it goes on; another wait, or its end, replaces it.
    #[test]
    fn a_wait_keeps_its_start_until_it_ends() {
        let i = Interrupt::default();
        assert_eq!(i.waiting(), None);
        i.wait_for("waiting for the lake's write lock", true);
        let first = i.waiting().unwrap();
        std::thread::sleep(Duration::from_millis(5));
        i.wait_for("waiting for the lake's write lock", true);
        assert_eq!(i.waiting().unwrap().since, first.since);
        assert!(first
            .describe()
            .starts_with("waiting for the lake's write lock since 20"));
        i.wait_for("the warehouse refuses writes", false);
        assert!(!i.waiting().unwrap().healthy);
        i.done_waiting();
        assert_eq!(i.waiting(), None);
    }
}
