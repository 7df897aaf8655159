//! The landing task: follows landing/ (file-system events as hints, listings as the truth),
//! decides when files are ready and form a batch, claims each file of a batch into work/ with
//! a rename that cannot overwrite, and hands the claims to the loader, one batch at a time.
//! While the loader is busy, ready files keep joining the next batch. From the claim on, no
//! step uses a name a supplier controls.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::loader::{Claimed, Job, Reply, Totals};
use super::{entry_kind, notify_systemd, stamp, EntryKind, NameFilter};
use crate::config::Config;
use crate::daemon::settle::{Batcher, Readiness, Stamp};
use crate::interrupt::Interrupt;
use crate::ops::metrics::Metrics;

/// The clock of the landing task: tokio's (which a test can pause), as a std `Instant` for
/// the pure readiness and batch logic.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs until `stop`, or until the loader fails (an error: systemd restarts us).
pub async fn run(
    mut config_rx: watch::Receiver<Arc<Config>>,
    metrics: Arc<Metrics>,
    jobs: Sender<Job>,
    mut replies: UnboundedReceiver<Reply>,
    stop: CancellationToken,
    alive: Interrupt,
) -> anyhow::Result<()> {
    let mut config = config_rx.borrow_and_update().clone();
    let (event_tx, mut events) = tokio::sync::mpsc::channel(8192);
    let overflow = Arc::new(AtomicBool::new(false));
    let overflow_flag = overflow.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Never block the watcher; a lost event is found again by the next rescan.
        if event_tx.try_send(res).is_err() {
            overflow_flag.store(true, Ordering::Relaxed);
        }
    })?;
    watcher.watch(&config.paths.landing, RecursiveMode::NonRecursive)?;
    let mut land = Landing::new(&config, metrics, alive);
    let tick = super::lifecycle::loader_tick();
    let loader_gone = || anyhow::anyhow!("the loader thread ended unexpectedly");

    // Start-up: the loader finishes what a crash may have left, then we look at landing/.
    jobs.send(Job::Start(config.clone()))
        .map_err(|_| loader_gone())?;
    let claims_left = loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ev = events.recv() => if let Some(ev) = ev { land.on_event(&config, ev, now()) },
            reply = replies.recv() => match reply {
                Some(Reply::Started { stuck, claims_left }) => {
                    land.stuck.extend(stuck);
                    break claims_left;
                }
                Some(Reply::Fatal(e)) => return Err(e),
                Some(Reply::Done { .. }) => {}
                None => return Err(loader_gone()),
            },
        }
    };
    land.scan(&config, now());
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    land.status_line(&config);
    info!(landing = %config.paths.landing.display(), "watching");
    // Claims an earlier run left uncommitted are loaded before anything new.
    let mut busy = claims_left;
    if busy {
        jobs.send(Job::Batch(config.clone(), Vec::new()))
            .map_err(|_| loader_gone())?;
    }

    let mut next_rescan = now() + config.daemon.rescan_interval();
    loop {
        land.alive.beat();
        let t = now();
        // Woken at least every tick, to beat for the watchdog while idle.
        let mut wake = next_rescan.min(t + tick);
        if !busy {
            if let Some(d) = land.batcher.deadline() {
                wake = wake.min(d);
            }
        }
        if let Some(c) = land.readiness.next_check() {
            wake = wake.min(c.max(t + Duration::from_millis(5)));
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ev = events.recv() => if let Some(ev) = ev { land.on_event(&config, ev, now()) },
            changed = config_rx.changed() => if changed.is_ok() {
                let new = config_rx.borrow_and_update().clone();
                land.reconfigure(&config, &new, &mut watcher);
                config = new;
            },
            reply = replies.recv(), if busy => match reply {
                Some(Reply::Done { totals, last_batch }) => {
                    busy = false;
                    land.totals = totals;
                    land.last_batch = last_batch;
                    land.status_line(&config);
                }
                Some(Reply::Fatal(e)) => return Err(e),
                Some(Reply::Started { .. }) => {}
                None => return Err(loader_gone()),
            },
            _ = tokio::time::sleep_until(tokio::time::Instant::from_std(wake)) => {}
        }
        while let Ok(ev) = events.try_recv() {
            land.on_event(&config, ev, now());
        }
        if overflow.swap(false, Ordering::Relaxed) || land.rescan_needed || now() >= next_rescan {
            land.rescan_needed = false;
            land.scan(&config, now());
            next_rescan = now() + config.daemon.rescan_interval();
        }
        let t = now();
        land.take_ready(t);
        if !busy && land.batcher.due(t, land.readiness.next_check()) {
            let files = land.claim_batch(&config);
            if !files.is_empty() {
                jobs.send(Job::Batch(config.clone(), files))
                    .map_err(|_| loader_gone())?;
                busy = true;
            }
        }
    }
}

/// The landing task's view of landing/.
struct Landing {
    /// Beaten on every turn of the loop and every claim: the watchdog is fed only while both
    /// this task and the loader show life.
    alive: Interrupt,
    readiness: Readiness,
    batcher: Batcher,
    filter: NameFilter,
    /// Names already logged as ignored, so each is logged once while it stays.
    logged: HashSet<PathBuf>,
    /// Files that could not be moved out of landing/, with their stamp then: they are not
    /// taken again unless they change.
    stuck: HashMap<PathBuf, Option<Stamp>>,
    rescan_needed: bool,
    /// What the HTTP surface publishes.
    metrics: Arc<Metrics>,
    /// The loader's totals and last batch, as of its last reply.
    totals: Totals,
    last_batch: serde_json::Value,
}

impl Landing {
    fn new(config: &Config, metrics: Arc<Metrics>, alive: Interrupt) -> Self {
        Landing {
            alive,
            readiness: {
                let mut r = Readiness::new(config.daemon.settle());
                r.set_quiet(config.daemon.quiet());
                r
            },
            batcher: Batcher::new(config.daemon.batch_window()),
            filter: NameFilter::new(config),
            logged: HashSet::new(),
            stuck: HashMap::new(),
            rescan_needed: false,
            metrics,
            totals: Totals::default(),
            last_batch: serde_json::Value::Null,
        }
    }

    /// Follows a new configuration (a SIGHUP the signal task accepted).
    fn reconfigure(
        &mut self,
        old: &Config,
        new: &Config,
        watcher: &mut notify::RecommendedWatcher,
    ) {
        if new.paths.landing != old.paths.landing {
            let _ = watcher.unwatch(&old.paths.landing);
            if let Err(e) = watcher.watch(&new.paths.landing, RecursiveMode::NonRecursive) {
                error!(landing = %new.paths.landing.display(), error = %e, "cannot watch the new landing folder; it is found by rescans only");
            }
            self.readiness = Readiness::new(new.daemon.settle());
            self.batcher = Batcher::new(new.daemon.batch_window());
            self.logged.clear();
            self.stuck.clear();
        }
        self.readiness.set_settle(new.daemon.settle());
        self.readiness.set_quiet(new.daemon.quiet());
        self.batcher.set_window(new.daemon.batch_window());
        self.filter = NameFilter::new(new);
        self.rescan_needed = true;
    }

    fn log_once(&mut self, path: &Path, why: &str) {
        if self.logged.insert(path.to_path_buf()) {
            info!(file = %crate::text::path(path), reason = why, "left alone");
        }
    }

    /// Decides whether a landing entry is a candidate at all.
    fn candidate(&mut self, path: &Path) -> bool {
        match self.filter.check(path) {
            Ok(_) => true,
            Err(why) => {
                self.log_once(path, &why);
                false
            }
        }
    }

    /// A file that is gone, or changing again, leaves the readiness watch and the batch.
    fn forget(&mut self, path: &Path) {
        self.readiness.forget(path);
        self.batcher.remove(path);
    }

    fn on_event(&mut self, config: &Config, ev: notify::Result<notify::Event>, now: Instant) {
        let ev = match ev {
            Ok(ev) => ev,
            Err(e) => {
                warn!(error = %e, "watch error; rescanning");
                self.rescan_needed = true;
                return;
            }
        };
        tracing::debug!(?ev, "file-system event");
        if ev.need_rescan() {
            self.rescan_needed = true;
        }
        let landing = &config.paths.landing;
        let in_landing = |p: &Path| p.parent() == Some(landing.as_path());
        match ev.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::Both)) if ev.paths.len() == 2 => {
                self.forget(&ev.paths[0]);
                let to = &ev.paths[1];
                self.batcher.remove(to);
                if in_landing(to) && self.candidate(to) {
                    self.readiness.completed(to, now);
                }
            }
            kind => {
                for p in ev.paths.iter().filter(|p| in_landing(p)) {
                    match kind {
                        EventKind::Remove(_)
                        | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => self.forget(p),
                        EventKind::Create(CreateKind::Folder) => self.log_once(p, "a directory"),
                        EventKind::Create(_)
                        | EventKind::Modify(ModifyKind::Data(_))
                        | EventKind::Modify(ModifyKind::Any)
                            if self.candidate(p) =>
                        {
                            self.batcher.remove(p);
                            match entry_kind(p) {
                                // Links, FIFOs and sockets never get a close event.
                                Some(EntryKind::Special) => self.readiness.completed(p, now),
                                Some(EntryKind::File) => self.readiness.written(p, now),
                                Some(EntryKind::Dir) => self.log_once(p, "a directory"),
                                None => {}
                            }
                        }
                        EventKind::Access(AccessKind::Close(AccessMode::Write))
                        | EventKind::Modify(ModifyKind::Name(_))
                            if self.candidate(p) =>
                        {
                            self.batcher.remove(p);
                            self.readiness.completed(p, now);
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    /// Lists landing/: the directory is the truth, events are hints.
    fn scan(&mut self, config: &Config, now: Instant) {
        let entries = match std::fs::read_dir(&config.paths.landing) {
            Ok(e) => e,
            Err(e) => {
                error!(landing = %config.paths.landing.display(), error = %e, "cannot list landing");
                return;
            }
        };
        let mut present = HashSet::new();
        for (n, entry) in entries.flatten().enumerate() {
            if n % 1024 == 0 {
                self.alive.beat();
            }
            let path = entry.path();
            present.insert(path.clone());
            if self.readiness.is_known(&path)
                || self.batcher.contains(&path)
                || !self.candidate(&path)
            {
                continue;
            }
            match entry_kind(&path) {
                Some(EntryKind::Dir) => self.log_once(&path, "a directory"),
                Some(_) => {
                    if self.stuck.get(&path).is_some_and(|s| *s == stamp(&path)) {
                        continue;
                    }
                    self.stuck.remove(&path);
                    self.readiness.found(&path, now);
                }
                None => {}
            }
        }
        // The listing is the truth: what is gone is forgotten (a name that comes back is
        // logged again), so this state never outgrows landing/.
        self.readiness.retain(&present);
        self.logged.retain(|p| present.contains(p));
        self.stuck.retain(|p, _| present.contains(p));
        self.batcher.retain(&present);
    }

    /// Moves the files that became ready into the waiting batch.
    fn take_ready(&mut self, now: Instant) {
        let ready = self.readiness.take_ready(now, stamp);
        self.batcher.add(ready, now);
    }

    /// Claims the waiting batch (at most `daemon.max_batch_files` of it) into work/. A file gone meanwhile is dropped; one
    /// that cannot be claimed stays in landing/ and is not taken again until it changes.
    fn claim_batch(&mut self, config: &Config) -> Vec<Claimed> {
        let mut claimed = Vec::new();
        let max = usize::try_from(config.daemon.max_batch_files).unwrap_or(usize::MAX);
        for (path, seen_at) in self.batcher.take(max) {
            self.alive.beat();
            match crate::daemon::claim::claim(&path, &config.paths.work) {
                Ok(c) => claimed.push(Claimed {
                    path: c,
                    seen_at: Some(seen_at),
                }),
                // Gone already (removed or renamed by the supplier).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    error!(file = %crate::text::path(&path), error = %e, "cannot claim the file into work/; it stays in landing");
                    self.stuck.insert(path.clone(), stamp(&path));
                }
            }
        }
        if !claimed.is_empty() {
            let paths: Vec<_> = claimed.iter().map(|c: &Claimed| c.path.clone()).collect();
            crate::daemon::claim::sync_claims(&paths, &config.paths.work, &config.paths.landing);
        }
        claimed
    }

    /// systemd's STATUS= line, and the gauges and `/status` document of the HTTP surface.
    fn status_line(&self, config: &Config) {
        let t = self.totals;
        let waiting = self.readiness.len() + self.batcher.len();
        let line = format!(
            "files handled {}, not loaded {}, batches {}, waiting {waiting}",
            t.loaded, t.not_loaded, t.batches,
        );
        notify_systemd(&[sd_notify::NotifyState::Status(&line)]);
        let pending = crate::report::outbox::Outbox::new(&config.report.outbox).pending();
        let outbox = pending.len();
        let oldest = pending
            .first()
            .and_then(|p| crate::report::outbox::queued_at(p));
        let in_work = std::fs::read_dir(&config.paths.work).map_or(0, |d| d.count());
        self.metrics.set_state(
            waiting,
            outbox,
            serde_json::json!({
                "waiting": waiting,
                "in_work": in_work,
                "outbox": outbox,
                "outbox_oldest": oldest.map(|t| t.to_rfc3339()),
                "files_handled": t.loaded,
                "files_not_loaded": t.not_loaded,
                "batches": t.batches,
                "last_batch": self.last_batch,
            }),
        );
    }
}
