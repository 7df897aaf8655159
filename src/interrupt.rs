//! The stop flag and heartbeat shared by whoever runs a load and whoever watches it: the
//! daemon's signal task raises the flag and a load in progress sees it at its next chunk; the
//! loader and a load beat, the watchdog and `/healthz` read the beat. Used by the pipeline, the
//! daemon and the HTTP surface alike, so it belongs to none of them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Shared between the daemon's threads: a stop request, and the time of the last sign of
/// progress.
#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    stop: Arc<AtomicBool>,
    /// Milliseconds since an arbitrary start, set on every chunk and loop turn.
    beat_ms: Arc<AtomicU64>,
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

    /// True when a beat came within `period`.
    pub fn alive_within(&self, period: Duration) -> bool {
        clock_ms().saturating_sub(self.beat_ms.load(Ordering::Relaxed)) <= period.as_millis() as u64
    }
}

fn clock_ms() -> u64 {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed().as_millis() as u64
}
