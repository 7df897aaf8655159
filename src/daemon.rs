//! `votewatch run`: watch landing/, load every ready file exactly once, archive it, report
//! each batch, and keep going through restarts, bad files, busy warehouses and signals.
//!
//! One thread runs the loop below and owns the warehouse while a batch runs; the notify
//! watcher and the signal handler only send messages to it.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{select, Receiver};
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RenameMode};
use notify::{EventKind, RecursiveMode, Watcher};
use tracing::{error, info, warn};

use crate::archive;
use crate::config::Config;
use crate::ingest::{ingest_file, FileOutcome, IngestError, IngestOptions, Interrupt};
use crate::mail::Postman;
use crate::metrics::Metrics;
use crate::report::BatchReport;
use crate::settle::{Readiness, Stamp};
use crate::warehouse::{Status, Warehouse};

/// What the outside world asks of the daemon (signals, or a test).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// SIGTERM / SIGINT: stop taking files, finish or roll back the one in hand, exit.
    Stop,
    /// SIGHUP: read the configuration again.
    Reload,
}

/// Where the configuration came from, so SIGHUP can read it again.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
}

impl ConfigSource {
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load(self.path.as_deref())?)
    }
}

/// Running totals, for systemd's STATUS= line and the log.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    loaded: u64,
    not_loaded: u64,
    batches: u64,
}

/// Runs until `controls` says Stop (or is closed). Errors are fatal: systemd restarts us.
pub fn run(source: ConfigSource, controls: Receiver<Control>) -> anyhow::Result<()> {
    let mut config = source.load()?;
    create_dirs(&mut config)?;
    let _lock = lock_landing(&config.paths.landing)?;
    let interrupt = Interrupt::default();
    let controls = forward_controls(controls, interrupt.clone());

    let (event_tx, event_rx) = crossbeam_channel::bounded(8192);
    let overflow = Arc::new(AtomicBool::new(false));
    let overflow_flag = overflow.clone();
    let mut watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        // Never block the watcher; a lost event is found again by the next rescan.
        if event_tx.try_send(res).is_err() {
            overflow_flag.store(true, Ordering::Relaxed);
        }
    })?;
    watcher.watch(&config.paths.landing, RecursiveMode::NonRecursive)?;

    let mut state = State::new(&config);
    if !config.daemon.http_listen.is_empty() {
        // The HTTP surface is for operators; loading never depends on it.
        match crate::http::start(
            &config.daemon.http_listen,
            state.metrics.clone(),
            interrupt.clone(),
        ) {
            Ok(addr) => info!(%addr, "http listening (/metrics, /healthz, /status)"),
            Err(e) => {
                error!(addr = %config.daemon.http_listen, error = %e, "cannot listen for HTTP; going on without it")
            }
        }
    }
    let mut postman = Postman::start(config.report.clone());
    let watchdog = Watchdog::start(interrupt.clone());

    // Reconcile what a crash may have left, then load what is waiting.
    let mut wh_guard = state.open_warehouse(&config, &controls, &interrupt)?;
    if let Some(wh) = wh_guard.as_mut() {
        state.recover_claims(&config, wh)?;
        state.reconcile(&config, wh)?;
        state.report_unreported(wh, &postman)?;
    }
    drop(wh_guard);
    if interrupt.stop_requested() {
        return Ok(());
    }
    state.scan(&config, Instant::now());
    notify_systemd(&[sd_notify::NotifyState::Ready]);
    state.status_line(&config);
    info!(landing = %config.paths.landing.display(), "watching");
    // Claims an earlier run left uncommitted are loaded before anything new.
    if !state.claimed.is_empty() {
        state.run_batch(&config, Vec::new(), &controls, &interrupt, &postman)?;
    }

    let mut next_rescan = Instant::now() + config.daemon.rescan_interval();
    let mut batch: Vec<PathBuf> = Vec::new();
    let mut batch_deadline = Instant::now();
    loop {
        interrupt.beat();
        let now = Instant::now();
        let mut wake = next_rescan.min(now + Duration::from_secs(1));
        if !batch.is_empty() {
            wake = wake.min(batch_deadline);
        }
        if let Some(t) = state.readiness.next_check() {
            wake = wake.min(t.max(now + Duration::from_millis(5)));
        }
        select! {
            recv(event_rx) -> ev => if let Ok(ev) = ev { state.on_event(&config, ev, Instant::now()) },
            recv(controls) -> c => match c {
                Ok(Control::Stop) | Err(_) => interrupt.request_stop(),
                Ok(Control::Reload) => {
                    reload(&source, &mut config, &mut state, &mut watcher);
                    postman.reconfigure(config.report.clone());
                }
            },
            default(wake.saturating_duration_since(now)) => {}
        }
        while let Ok(ev) = event_rx.try_recv() {
            state.on_event(&config, ev, Instant::now());
        }
        if interrupt.stop_requested() {
            break;
        }
        if overflow.swap(false, Ordering::Relaxed)
            || state.rescan_needed
            || Instant::now() >= next_rescan
        {
            state.rescan_needed = false;
            state.scan(&config, Instant::now());
            next_rescan = Instant::now() + config.daemon.rescan_interval();
        }
        // Files that become ready close together form one batch: once one is ready, wait up
        // to the batch window for others already on their way (closed or moved in), but not
        // for a file that is still being written.
        let now = Instant::now();
        let ready = state.take_ready(now);
        if !ready.is_empty() && batch.is_empty() {
            batch_deadline = now + config.daemon.batch_window();
        }
        batch.extend(ready);
        let others_due = state
            .readiness
            .next_check()
            .is_some_and(|t| t <= batch_deadline);
        if !batch.is_empty() && (now >= batch_deadline || !others_due) {
            state.run_batch(
                &config,
                std::mem::take(&mut batch),
                &controls,
                &interrupt,
                &postman,
            )?;
            state.status_line(&config);
        }
        if std::mem::take(&mut state.reload_pending) {
            reload(&source, &mut config, &mut state, &mut watcher);
            postman.reconfigure(config.report.clone());
        }
        if interrupt.stop_requested() {
            break;
        }
    }
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    info!("stopped");
    drop(watchdog);
    Ok(())
}

/// A stop must reach a load in progress at once, not when the loop next reads its channel:
/// this thread raises the stop flag as the request arrives, then passes the message on.
fn forward_controls(controls: Receiver<Control>, interrupt: Interrupt) -> Receiver<Control> {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::spawn(move || {
        for c in controls.iter() {
            if c == Control::Stop {
                interrupt.request_stop();
            }
            if tx.send(c).is_err() {
                return;
            }
        }
        // The sender is gone (the process is ending): treat it as a stop.
        interrupt.request_stop();
        let _ = tx.send(Control::Stop);
    });
    rx
}

/// A committed arrival as the report shows it, rebuilt from its ledger row (its first rejects
/// are in `rejected_votes`, not repeated here).
fn outcome_from_ledger(row: crate::warehouse::LedgerRow) -> (FileOutcome, Option<PathBuf>) {
    let archived = row.archived_to.map(PathBuf::from);
    let outcome = FileOutcome {
        file_id: row.id,
        path: archived
            .clone()
            .unwrap_or_else(|| PathBuf::from(&row.file_name)),
        name: row.file_name,
        status: Status::parse(&row.status).unwrap_or(Status::Failed),
        counts: row.counts,
        unknown_fields: serde_json::from_str(&row.unknown_fields).unwrap_or_default(),
        error: row.error,
        duplicate_of: row.duplicate_of,
        sha256: row.sha256,
        elapsed: Duration::from_millis(row.millis.max(0) as u64),
        sample_rejects: Vec::new(),
        archived_to: archived.clone(),
    };
    (outcome, archived)
}

/// Where this configuration archives files.
fn archive_plan(config: &Config) -> archive::ArchivePlan {
    archive::ArchivePlan {
        processed: config.paths.processed.clone(),
        failed: config.paths.failed.clone(),
        by_day: config.daemon.processed_by_day,
    }
}

/// Takes landing/ for this process alone (an exclusive `flock` on the folder, held until the
/// process ends, released by the kernel however it ends), so that two daemons never share one
/// landing folder and take each other's files.
fn lock_landing(landing: &Path) -> anyhow::Result<std::fs::File> {
    let dir = std::fs::File::open(landing)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", landing.display()))?;
    match dir.try_lock() {
        Ok(()) => Ok(dir),
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

/// Creates the folders and makes their paths absolute, so that the paths of events and of
/// directory listings are spelled the same way.
fn create_dirs(config: &mut Config) -> anyhow::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let p = &mut config.paths;
    for dir in [&mut p.landing, &mut p.work, &mut p.processed, &mut p.failed] {
        std::fs::create_dir_all(&*dir)
            .and_then(|()| std::fs::canonicalize(&*dir))
            .map(|abs| *dir = abs)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    }
    // A claim is a rename, which cannot cross file systems.
    let dev = |d: &Path| std::fs::metadata(d).map(|m| m.dev()).ok();
    if dev(&p.landing) != dev(&p.work) {
        anyhow::bail!(
            "paths.work ({}) must be on the same file system as paths.landing ({})",
            p.work.display(),
            p.landing.display()
        );
    }
    Ok(())
}

fn reload(
    source: &ConfigSource,
    config: &mut Config,
    state: &mut State,
    watcher: &mut notify::RecommendedWatcher,
) {
    match source
        .load()
        .and_then(|mut new| create_dirs(&mut new).map(|()| new))
    {
        Ok(new) => {
            if new.paths.landing != config.paths.landing {
                let _ = watcher.unwatch(&config.paths.landing);
                if let Err(e) = watcher.watch(&new.paths.landing, RecursiveMode::NonRecursive) {
                    error!(error = %e, "new configuration not applied: cannot watch its landing folder");
                    let _ = watcher.watch(&config.paths.landing, RecursiveMode::NonRecursive);
                    return;
                }
            }
            state.readiness.set_settle(new.daemon.settle());
            state.readiness.set_quiet(new.daemon.quiet());
            state.filter = NameFilter::new(&new);
            state.rescan_needed = true;
            *config = new;
            info!("configuration reloaded");
        }
        Err(e) => {
            error!(error = %format!("{e:#}"), "configuration not reloaded; keeping the old one")
        }
    }
}

/// The daemon's view of landing/.
struct State {
    readiness: Readiness,
    filter: NameFilter,
    /// Names already logged as ignored, so each is logged once while it stays.
    logged: HashSet<PathBuf>,
    /// Files that were handled but could not be moved out of landing/, with their stamp
    /// then: they are not loaded again unless they change.
    stuck: HashMap<PathBuf, Option<Stamp>>,
    totals: Totals,
    rescan_needed: bool,
    /// Files claimed into work/ by an earlier run whose load never committed: loaded first.
    claimed: Vec<PathBuf>,
    /// A SIGHUP that came while a batch ran or waited for the warehouse: the configuration is
    /// read again as soon as the batch is done.
    reload_pending: bool,
    /// What the HTTP surface publishes; the loop updates it.
    metrics: Arc<Metrics>,
    /// The last batch, for `/status`.
    last_batch: serde_json::Value,
    /// When each taken landing file was first seen, for the drop-to-commit time.
    seen_at: HashMap<PathBuf, Instant>,
}

impl State {
    fn new(config: &Config) -> Self {
        State {
            readiness: {
                let mut r = Readiness::new(config.daemon.settle());
                r.set_quiet(config.daemon.quiet());
                r
            },
            filter: NameFilter::new(config),
            logged: HashSet::new(),
            stuck: HashMap::new(),
            totals: Totals::default(),
            rescan_needed: false,
            claimed: Vec::new(),
            reload_pending: false,
            metrics: Arc::new(Metrics::new()),
            last_batch: serde_json::Value::Null,
            seen_at: HashMap::new(),
        }
    }

    fn log_once(&mut self, path: &Path, why: &str) {
        if self.logged.insert(path.to_path_buf()) {
            info!(file = %crate::text::path(path), reason = why, "left alone");
        }
    }

    /// Decides whether a landing entry is a candidate at all.
    fn candidate(&mut self, path: &Path) -> bool {
        match self.filter.check(path) {
            Ok(()) => true,
            Err(why) => {
                self.log_once(path, why);
                false
            }
        }
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
                self.readiness.forget(&ev.paths[0]);
                let to = &ev.paths[1];
                if in_landing(to) && self.candidate(to) {
                    self.readiness.completed(to, now);
                }
            }
            kind => {
                for p in ev.paths.iter().filter(|p| in_landing(p)) {
                    match kind {
                        EventKind::Remove(_)
                        | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => {
                            self.readiness.forget(p)
                        }
                        EventKind::Create(CreateKind::Folder) => self.log_once(p, "a directory"),
                        EventKind::Create(_)
                        | EventKind::Modify(ModifyKind::Data(_))
                        | EventKind::Modify(ModifyKind::Any)
                            if self.candidate(p) =>
                        {
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
        for entry in entries.flatten() {
            let path = entry.path();
            present.insert(path.clone());
            if self.readiness.is_known(&path) || !self.candidate(&path) {
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
        self.seen_at.retain(|p, _| present.contains(p));
    }

    fn take_ready(&mut self, now: Instant) -> Vec<PathBuf> {
        let ready = self.readiness.take_ready(now, stamp);
        ready
            .into_iter()
            .map(|(path, seen_at)| {
                self.seen_at.insert(path.clone(), seen_at);
                path
            })
            .collect()
    }

    /// Opens the warehouse, waiting with backoff while another process holds it. Returns
    /// `None` when a stop was requested while waiting.
    fn open_warehouse(
        &mut self,
        config: &Config,
        controls: &Receiver<Control>,
        interrupt: &Interrupt,
    ) -> anyhow::Result<Option<Warehouse>> {
        let mut delay = Duration::from_millis(50);
        let mut waited = Duration::ZERO;
        // The wait is logged when it starts, then at most once a minute, then when it ends.
        let mut last_reminder = Duration::ZERO;
        loop {
            match Warehouse::open(&config.warehouse) {
                Ok(wh) => {
                    if !waited.is_zero() {
                        info!(
                            waited_ms = waited.as_millis() as u64,
                            "warehouse free again"
                        );
                        self.metrics.waited_for_warehouse(waited.as_secs_f64());
                    }
                    return Ok(Some(wh));
                }
                Err(e) if e.is_locked() => {
                    if waited.is_zero() {
                        warn!(warehouse = %config.warehouse.path.display(), "warehouse busy (held by another process); waiting");
                    } else if waited - last_reminder >= Duration::from_secs(60) {
                        last_reminder = waited;
                        warn!(warehouse = %config.warehouse.path.display(), waited_s = waited.as_secs(), "warehouse still busy; waiting");
                    }
                    // During start-up this keeps systemd from timing the start out while an
                    // analyst holds the file; afterwards systemd ignores it.
                    let extend = (delay * 3).as_micros().min(u128::from(u32::MAX)) as u32;
                    notify_systemd(&[
                        sd_notify::NotifyState::Status(
                            "waiting for the warehouse (held by another process)",
                        ),
                        sd_notify::NotifyState::ExtendTimeoutUsec(extend),
                    ]);
                }
                Err(e) => return Err(e.into()),
            }
            interrupt.beat();
            match controls.recv_timeout(delay) {
                Ok(Control::Stop) | Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                    interrupt.request_stop();
                    return Ok(None);
                }
                // Applied once the batch is done; never lost.
                Ok(Control::Reload) => self.reload_pending = true,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            }
            waited += delay;
            delay = (delay * 2).min(config.daemon.max_backoff());
        }
    }

    /// Finishes what a stop or a crash left in work/: a claimed file whose load committed is
    /// moved to the destination its ledger row recorded; one whose load never committed is
    /// queued to be loaded first; an empty claim folder is removed.
    fn recover_claims(&mut self, config: &Config, wh: &mut Warehouse) -> anyhow::Result<()> {
        let Ok(folders) = std::fs::read_dir(&config.paths.work) else {
            return Ok(());
        };
        let mut folders: Vec<PathBuf> = folders.flatten().map(|e| e.path()).collect();
        folders.sort();
        for folder in folders.into_iter().filter(|f| f.is_dir()) {
            // The claimed file; hidden names are votewatch's own (the attempt count).
            let file = std::fs::read_dir(&folder).ok().and_then(|d| {
                d.flatten().map(|e| e.path()).find(|p| {
                    !p.file_name()
                        .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
                })
            });
            let Some(file) = file else {
                let _ = std::fs::remove_dir_all(&folder);
                continue;
            };
            match wh.find_claim(&crate::ingest::recorded_path(&file))? {
                Some((id, status, recorded)) => {
                    info!(file = %crate::text::path(&file), ledger_id = id, status = %status, "committed before a restart; archiving without loading again");
                    let dest = recorded.map(PathBuf::from).unwrap_or_else(|| {
                        let name = file.file_name().unwrap_or_default().to_string_lossy();
                        archive_plan(config).destination(status.is_handled(), &name)
                    });
                    archive_claimed(wh, &file, id, status, &dest, None);
                }
                None => self.claimed.push(file),
            }
        }
        Ok(())
    }

    /// Files that an older version left in landing/ after their transaction committed (before
    /// files were claimed into work/). Only files the ledger names are hashed, so a backlog
    /// waiting in landing/ is not read an extra time at start-up.
    fn reconcile(&mut self, config: &Config, wh: &mut Warehouse) -> anyhow::Result<()> {
        let landing = config.paths.landing.display().to_string();
        let named = wh.unarchived_sources(&landing)?;
        if named.is_empty() {
            return Ok(());
        }
        let Ok(entries) = std::fs::read_dir(&config.paths.landing) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry_kind(&path) != Some(EntryKind::File)
                || !named.contains(&crate::ingest::recorded_path(&path))
            {
                continue;
            }
            let Ok(digest) = crate::input::hash_file(&path) else {
                continue;
            };
            if let Some((id, status)) =
                wh.find_unarchived(&crate::ingest::recorded_path(&path), &digest.sha256)?
            {
                info!(file = %crate::text::path(&path), ledger_id = id, status = %status, "committed before a restart; archiving without loading again");
                self.archive(config, wh, &path, id, status, None);
            }
        }
        Ok(())
    }

    /// Loads `files` (oldest first), each in its own transaction, then reports the batch.
    fn run_batch(
        &mut self,
        config: &Config,
        files: Vec<PathBuf>,
        controls: &Receiver<Control>,
        interrupt: &Interrupt,
        postman: &Postman,
    ) -> anyhow::Result<()> {
        let batch_clock = Instant::now();
        let Some(mut wh) = self.open_warehouse(config, controls, interrupt)? else {
            return Ok(());
        };
        let mut opts = IngestOptions::new(config.ingest);
        opts.follow_symlinks = false;
        opts.interrupt = Some(interrupt.clone());
        opts.archive = Some(archive_plan(config));
        let mut outcomes: Vec<(FileOutcome, Option<PathBuf>)> = Vec::new();
        // Files claimed by an earlier run first, then landing/'s, oldest first; `true` marks a
        // file that is claimed already.
        let mut queue = std::mem::take(&mut self.claimed)
            .into_iter()
            .map(|p| (p, true))
            .chain(files.into_iter().map(|p| (p, false)));
        for (path, already_claimed) in queue.by_ref() {
            let control = controls.try_recv();
            if control == Ok(Control::Reload) {
                self.reload_pending = true;
            }
            if interrupt.stop_requested() || control == Ok(Control::Stop) {
                interrupt.request_stop();
                if already_claimed {
                    self.claimed.push(path);
                } else {
                    self.readiness.found(&path, Instant::now());
                }
                break;
            }
            // Claim first: from here on the file's path is one votewatch chose, so a supplier
            // re-sending the same name, or a second look at landing/, cannot touch it.
            let seen_at = self.seen_at.remove(&path);
            let path = if already_claimed {
                path
            } else {
                match archive::claim(&path, &config.paths.work) {
                    Ok(claimed) => claimed,
                    // Gone already (taken by an earlier batch, or removed by the supplier).
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        error!(file = %crate::text::path(&path), error = %e, "cannot claim the file into work/; it stays in landing");
                        self.stuck.insert(path.clone(), stamp(&path));
                        continue;
                    }
                }
            };
            // A file whose loads keep being cut short (it crashes the loader) is set aside.
            let attempts = archive::begin_attempt(&path).unwrap_or_else(|e| {
                warn!(file = %crate::text::path(&path), error = %e, "cannot count the load attempt");
                0
            });
            let result = if attempts >= config.daemon.max_load_attempts {
                crate::ingest::record_failed(
                    &mut wh,
                    &path,
                    &opts,
                    format!(
                        "set aside: its load was cut short {attempts} times (the process \
                         crashed during it), so it is not tried again"
                    ),
                )
            } else {
                ingest_file(&mut wh, &path, &opts)
            };
            match result {
                Ok(outcome) => {
                    let dest = outcome
                        .archived_to
                        .clone()
                        .expect("the daemon plans an archive");
                    let placed = archive_claimed(
                        &mut wh,
                        &path,
                        outcome.file_id,
                        outcome.status,
                        &dest,
                        Some(&outcome),
                    );
                    match outcome.status.is_handled() {
                        true => self.totals.loaded += 1,
                        false => self.totals.not_loaded += 1,
                    }
                    // Timed first: a scrape that sees this file counted sees it timed too
                    // (the registry is encoded in registration order, files first).
                    if let Some(t) = seen_at {
                        self.metrics.dropped_to_committed(t.elapsed().as_secs_f64());
                    }
                    self.metrics.file_done(&outcome);
                    outcomes.push((outcome, placed));
                }
                Err(IngestError::Stopped) => {
                    archive::end_attempt(&path);
                    info!(file = %crate::text::path(&path), "stopped before commit; the claimed file is loaded at the next start");
                    break;
                }
                Err(IngestError::Warehouse(e)) => {
                    // Not this file's fault, and not something to retry in a loop: stop, and
                    // let systemd restart us. Nothing of the file was committed, and the
                    // attempt does not count against the file.
                    archive::end_attempt(&path);
                    error!(file = %crate::text::path(&path), error = %e, "warehouse error; stopping");
                    return Err(e.into());
                }
            }
        }
        // Whatever was not reached waits for the next batch.
        for (path, already_claimed) in queue {
            if already_claimed {
                self.claimed.push(path);
            } else {
                self.readiness.found(&path, Instant::now());
            }
        }
        if let Err(e) = wh.refresh_view() {
            error!(error = %e, "cannot refresh outlier_weeks");
        }
        let outlier_weeks = wh.count_outlier_weeks().ok();
        self.totals.batches += 1;
        if !outcomes.is_empty() {
            let ids: Vec<i64> = outcomes.iter().map(|(o, _)| o.file_id).collect();
            let report = BatchReport::new(outcomes, outlier_weeks);
            info!(summary = %report.subject(), "batch done");
            self.metrics.batch_done(batch_clock.elapsed().as_secs_f64());
            self.last_batch = serde_json::json!({
                "files": ids.len(),
                "summary": report.subject(),
                "finished_at": chrono::Utc::now().to_rfc3339(),
            });
            crate::failpoint::hit("before_report");
            postman.post(&report);
            if let Err(e) = wh.mark_reported(&ids) {
                warn!(error = %e, "cannot record that the batch's report is queued; the next start queues it again");
            }
        }
        Ok(())
    }

    /// Queues one report for the arrivals the ledger says were committed but never reported
    /// (a crash or a warehouse error between the commit and the report).
    fn report_unreported(&mut self, wh: &mut Warehouse, postman: &Postman) -> anyhow::Result<()> {
        let rows = wh.unreported()?;
        if rows.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let outcomes: Vec<(FileOutcome, Option<PathBuf>)> =
            rows.into_iter().map(outcome_from_ledger).collect();
        let report = BatchReport::new(outcomes, wh.count_outlier_weeks().ok());
        info!(summary = %report.subject(), files = ids.len(), "reporting files committed before a restart");
        postman.post(&report);
        wh.mark_reported(&ids)?;
        Ok(())
    }

    /// Moves a file whose outcome is committed: processed/ when handled, failed/ (with a
    /// reason file) otherwise. Returns where it went.
    fn archive(
        &mut self,
        config: &Config,
        wh: &mut Warehouse,
        path: &Path,
        file_id: i64,
        status: Status,
        outcome: Option<&FileOutcome>,
    ) -> Option<PathBuf> {
        crate::failpoint::hit("before_archive");
        let dest = if status.is_handled() {
            let mut d = config.paths.processed.clone();
            if config.daemon.processed_by_day {
                d.push(chrono::Utc::now().format("%Y-%m-%d").to_string());
            }
            d
        } else {
            config.paths.failed.clone()
        };
        match archive::move_into(path, &dest) {
            Ok(placed) => {
                write_reason_if_not_loaded(&placed, file_id, status, outcome);
                if let Err(e) = wh.set_archived(file_id, &placed.display().to_string()) {
                    warn!(ledger_id = file_id, error = %e, "cannot record where the file went");
                }
                Some(placed)
            }
            Err(e) => {
                error!(file = %crate::text::path(path), error = %e, "cannot move the file out of landing; it will not be loaded again until it changes");
                self.stuck.insert(path.to_path_buf(), stamp(path));
                None
            }
        }
    }

    fn status_line(&self, config: &Config) {
        let t = self.totals;
        let line = format!(
            "files handled {}, not loaded {}, batches {}, waiting {}",
            t.loaded,
            t.not_loaded,
            t.batches,
            self.readiness.len()
        );
        notify_systemd(&[sd_notify::NotifyState::Status(&line)]);
        let outbox = crate::mail::Outbox::new(&config.report.outbox).len();
        let in_work = std::fs::read_dir(&config.paths.work).map_or(0, |d| d.count());
        self.metrics.set_state(
            self.readiness.len(),
            outbox,
            serde_json::json!({
                "waiting": self.readiness.len(),
                "in_work": in_work,
                "outbox": outbox,
                "files_handled": t.loaded,
                "files_not_loaded": t.not_loaded,
                "batches": t.batches,
                "last_batch": self.last_batch,
            }),
        );
    }
}

/// Moves a claimed file whose outcome is committed to the destination its ledger row
/// recorded (a reason file beside it in failed/). If that fails, the file stays in work/
/// and the next start finishes the move. Returns where it went.
fn archive_claimed(
    wh: &mut Warehouse,
    claimed: &Path,
    file_id: i64,
    status: Status,
    dest: &Path,
    outcome: Option<&FileOutcome>,
) -> Option<PathBuf> {
    crate::failpoint::hit("before_archive");
    match archive::finish_claim(claimed, dest) {
        Ok(placed) => {
            if placed != dest {
                if let Err(e) = wh.set_archived(file_id, &placed.display().to_string()) {
                    warn!(ledger_id = file_id, error = %e, "cannot record where the file went");
                }
            }
            write_reason_if_not_loaded(&placed, file_id, status, outcome);
            Some(placed)
        }
        Err(e) => {
            error!(file = %crate::text::path(claimed), to = %crate::text::path(dest), error = %e, "cannot archive the claimed file; it stays in work/ and the next start moves it");
            None
        }
    }
}

/// Beside a file archived in failed/, the reason file (a handled file gets none).
fn write_reason_if_not_loaded(
    placed: &Path,
    file_id: i64,
    status: Status,
    outcome: Option<&FileOutcome>,
) {
    if status.is_handled() {
        return;
    }
    let text = reason_text(file_id, status, outcome);
    if let Err(e) = archive::write_reason(placed, &text) {
        warn!(file = %crate::text::path(placed), error = %e, "cannot write the reason file");
    }
}

/// The reason file's text: status and ledger id, then the file's part of the report (the
/// reason, the first rejects and the query for the rest).
fn reason_text(file_id: i64, status: Status, outcome: Option<&FileOutcome>) -> String {
    let mut text = format!("status: {status}\nledger id: {file_id}\n");
    match outcome {
        Some(o) => text.push_str(&BatchReport::new(vec![(o.clone(), None)], None).to_text()),
        None => text.push_str("recorded in the ledger before a restart\n"),
    }
    text
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EntryKind {
    File,
    Dir,
    /// A symlink, FIFO, socket or device: refused with a reason, never read.
    Special,
}

fn entry_kind(path: &Path) -> Option<EntryKind> {
    let ft = std::fs::symlink_metadata(path).ok()?.file_type();
    Some(if ft.is_file() {
        EntryKind::File
    } else if ft.is_dir() {
        EntryKind::Dir
    } else {
        EntryKind::Special
    })
}

/// Size and modification time, without following a symlink.
fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Which names in landing/ are taken: not hidden, no temporary suffix, and matching one of
/// the configured patterns.
pub struct NameFilter {
    patterns: globset::GlobSet,
    ignore_suffixes: Vec<String>,
}

impl NameFilter {
    pub fn new(config: &Config) -> Self {
        let mut b = globset::GlobSetBuilder::new();
        for p in &config.daemon.patterns {
            // Patterns were validated when the configuration was loaded.
            if let Ok(g) = globset::GlobBuilder::new(p).case_insensitive(true).build() {
                b.add(g);
            }
        }
        NameFilter {
            patterns: b.build().unwrap_or_else(|_| globset::GlobSet::empty()),
            ignore_suffixes: config.daemon.ignore_suffixes.clone(),
        }
    }

    pub fn check(&self, path: &Path) -> Result<(), &'static str> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            return Err("hidden file");
        }
        if self
            .ignore_suffixes
            .iter()
            .any(|s| name.ends_with(s.as_str()))
        {
            return Err("temporary name");
        }
        if !self.patterns.is_match(&name) {
            return Err("name matches no configured pattern");
        }
        Ok(())
    }
}

fn notify_systemd(states: &[sd_notify::NotifyState<'_>]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        let _ = sd_notify::notify(states);
    }
}

/// Pings systemd's watchdog while the main loop (or a load in progress) shows signs of life.
struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
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

impl Watchdog {
    /// Pings systemd's watchdog while the loop beats, and also while the loop's thread (the
    /// one that owns the warehouse) keeps reading or writing: a long commit or checkpoint
    /// makes no beats but does I/O. A thread that is stuck does neither, and is restarted.
    fn start(interrupt: Interrupt) -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let loop_tid = rustix::thread::gettid().as_raw_nonzero().get();
        let thread = sd_notify::watchdog_enabled().map(|period| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let tick = period / 3;
                let mut last_io = thread_io(loop_tid);
                while !stop.load(Ordering::Relaxed) {
                    let io = thread_io(loop_tid);
                    let progressing = io.is_some() && io != last_io;
                    last_io = io;
                    if interrupt.alive_within(period) || progressing {
                        notify_systemd(&[sd_notify::NotifyState::Watchdog]);
                    }
                    std::thread::sleep(tick);
                }
            })
        });
        Watchdog { stop, thread }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
