//! The loader: the one thread that owns the warehouse. It receives jobs from the landing task
//! (start-up recovery, then batches of files already claimed into work/), loads each file in
//! its own transaction, archives it where its ledger row says, and posts the batch's report.
//! Every path it is given is one votewatch chose (a claim), never a supplier's name.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc::UnboundedSender;
use tracing::{error, info, warn};

use super::archive::{archive_claimed, archive_plan};
use super::claim;
use super::notify_systemd;
use super::recover::reconcile;
use crate::config::Config;
use crate::daemon::settle::Stamp;
use crate::interrupt::Interrupt;
use crate::model::FileOutcome;
use crate::model::Status;
use crate::ops::metrics::Metrics;
use crate::pipeline::load::{ingest_file, IngestError, IngestOptions};
use crate::report::sender::Postman;
use crate::report::BatchReport;
use crate::warehouse::Warehouse;

/// A file claimed into work/, with when its landing name was first seen (for the
/// drop-to-commit time; unknown for a claim an earlier run left).
#[derive(Debug)]
pub struct Claimed {
    pub path: PathBuf,
    pub seen_at: Option<Instant>,
}

/// What the landing task asks of the loader.
pub enum Job {
    /// Finish what an earlier run left (work/, landing/, unreported files), then say so.
    Start(Arc<Config>),
    /// Load these claimed files (after any claim left from an earlier run), then report.
    Batch(Arc<Config>, Vec<Claimed>),
}

/// Running totals, for systemd's STATUS= line, `/status` and the log.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    pub loaded: u64,
    pub not_loaded: u64,
    pub batches: u64,
}

/// What the loader answers, one reply per job.
pub enum Reply {
    /// Start-up recovery is done. `stuck`: landing files that could not be moved out (they are
    /// not taken again unless they change); `claims_left`: claims waiting to be loaded first.
    Started {
        stuck: Vec<(PathBuf, Option<Stamp>)>,
        claims_left: bool,
    },
    /// A batch is done (or was cut short by a stop).
    Done {
        totals: Totals,
        last_batch: serde_json::Value,
    },
    /// The warehouse failed in a way that is not one file's fault: the daemon stops and
    /// systemd restarts it. Nothing of the file in hand was committed.
    Fatal(anyhow::Error),
}

pub struct Loader {
    /// The current configuration (for the daily maintenance; each job brings its own).
    pub(super) config: tokio::sync::watch::Receiver<Arc<Config>>,
    /// The configured daily maintenance time, and when it is next due.
    pub(super) maintain_at: Option<chrono::NaiveTime>,
    pub(super) next_maintain: Option<chrono::DateTime<chrono::Utc>>,
    /// Whether the supplier sends what `[expect]` says; fed from the ledger at start and by
    /// every load, asked while idle.
    pub(super) freshness: crate::ops::freshness::Freshness,
    pub(super) interrupt: Interrupt,
    pub(super) metrics: Arc<Metrics>,
    /// What the console's API shows, refreshed after each batch.
    pub(super) console: Arc<crate::ops::console::Console>,
    pub(super) postman: Postman,
    /// Claims an earlier run (or a stop) left uncommitted: loaded before anything new.
    pub(super) claimed: Vec<PathBuf>,
    pub(super) totals: Totals,
    pub(super) last_batch: serde_json::Value,
    /// A report could not be stored in the outbox: the ledger still owes it, and the next
    /// batch queues it before anything else.
    pub(super) reports_owed: bool,
    /// When old rejects are next deleted (`ingest.reject_retention_days`): at the first idle
    /// moment, then daily.
    pub(super) next_reject_expiry: Option<chrono::DateTime<chrono::Utc>>,
    /// A lake stays open between batches (with the configuration it was opened with): opening
    /// one costs extensions, a catalog attach and schema checks, and no other process waits
    /// for it to close. A DuckDB file is closed after each batch, so analysts can take it.
    pub(super) kept: Option<(crate::config::WarehouseConfig, Warehouse)>,
}

impl Loader {
    pub fn new(
        config: tokio::sync::watch::Receiver<Arc<Config>>,
        interrupt: Interrupt,
        metrics: Arc<Metrics>,
        console: Arc<crate::ops::console::Console>,
        postman: Postman,
    ) -> Self {
        let expect = config.borrow().expect;
        Loader {
            config,
            freshness: crate::ops::freshness::Freshness::new(expect, chrono::Utc::now()),
            maintain_at: None,
            next_maintain: None,
            interrupt,
            metrics,
            console,
            postman,
            claimed: Vec::new(),
            totals: Totals::default(),
            last_batch: serde_json::Value::Null,
            reports_owed: false,
            next_reject_expiry: None,
            kept: None,
        }
    }

    /// Serves jobs until the landing task goes away or a job fails fatally. While idle it
    /// beats every `tick`, so that the watchdog can tell an idle loader from a stuck one.
    pub fn serve(mut self, jobs: Receiver<Job>, replies: UnboundedSender<Reply>, tick: Duration) {
        loop {
            self.interrupt.beat();
            let job = match jobs.recv_timeout(tick) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    self.maybe_maintain();
                    self.maybe_expire_rejects();
                    self.check_freshness();
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
            };
            let reply = match job {
                Job::Start(config) => self.start(&config),
                Job::Batch(config, files) => self.run_batch(&config, files).map(|()| Reply::Done {
                    totals: self.totals,
                    last_batch: self.last_batch.clone(),
                }),
            };
            let fatal = reply.is_err();
            if replies.send(reply.unwrap_or_else(Reply::Fatal)).is_err() || fatal {
                return;
            }
        }
    }

    /// Runs the lake's maintenance when its daily time has come (checked while idle, so it
    /// never delays a batch already waiting).
    fn maybe_maintain(&mut self) {
        let config = self.config.borrow().clone();
        let d = &config.warehouse.ducklake;
        let at = match config.warehouse.kind {
            crate::config::WarehouseKind::Ducklake => d.maintain_time(),
            crate::config::WarehouseKind::Duckdb => None,
        };
        let now = chrono::Utc::now();
        if at != self.maintain_at {
            self.maintain_at = at;
            self.next_maintain = at.map(|t| crate::config::next_daily(now, t));
        }
        match self.next_maintain {
            Some(due) if now >= due => {}
            _ => return,
        }
        self.next_maintain = at.map(|t| crate::config::next_daily(now, t));
        match self.open_warehouse(&config) {
            Ok(Some(wh)) => match wh.maintain(d.retention_days) {
                Ok((before, after)) => {
                    info!(
                        files_before = before,
                        files_after = after,
                        retention_days = d.retention_days,
                        "lake maintained"
                    );
                    self.put_back(&config, wh);
                }
                Err(e) => warn!(error = %e, "lake maintenance failed; it runs again tomorrow"),
            },
            Ok(None) => {}
            Err(e) => warn!(error = %e, "lake maintenance failed; it runs again tomorrow"),
        }
    }

    /// Deletes the rejects past `ingest.reject_retention_days` once a day, while idle. One try
    /// to open the warehouse: if another process holds it, the next try is in ten minutes.
    fn maybe_expire_rejects(&mut self) {
        let now = chrono::Utc::now();
        if self.next_reject_expiry.is_some_and(|due| now < due) {
            return;
        }
        let config = self.config.borrow().clone();
        let days = config.ingest.reject_retention_days;
        self.next_reject_expiry = Some(now + chrono::Duration::days(1));
        if days == 0 {
            return;
        }
        let expired = Warehouse::open_watched(&config.warehouse, &self.interrupt)
            .and_then(|wh| wh.expire_rejects(days, now));
        match expired {
            Ok(0) => {}
            Ok(n) => info!(
                rejects = n,
                retention_days = days,
                "rejects past their retention deleted"
            ),
            Err(e) if e.is_locked() || e.is_environment() => {
                self.next_reject_expiry = Some(now + chrono::Duration::minutes(10));
            }
            Err(e) => warn!(error = %e, "cannot delete old rejects; tried again tomorrow"),
        }
    }

    /// Alerts (through the outbox) when the supplier stops sending what `[expect]` says, at
    /// most once a period, and says once when deliveries are back.
    fn check_freshness(&mut self) {
        let config = self.config.borrow().clone();
        self.freshness.set_expect(config.expect);
        if let Some(notice) = self.freshness.check(chrono::Utc::now()) {
            match &notice {
                crate::ops::freshness::Notice::Late { problems } => {
                    warn!(problems = %problems.join("; "), "supplier late; alert queued")
                }
                crate::ops::freshness::Notice::BackToNormal { .. } => {
                    info!("deliveries back to normal; notice queued")
                }
            }
            self.postman.post_rendered(&config.report, &notice.render());
        }
        self.metrics.set_supplier_late(self.freshness.is_late());
    }

    fn start(&mut self, config: &Config) -> anyhow::Result<Reply> {
        let mut stuck = Vec::new();
        if !self.rebuild_if_missing(config)? {
            // Stopped during the rebuild: nothing is opened (an empty warehouse would stop the
            // next start from rebuilding).
            return Ok(Reply::Started {
                stuck,
                claims_left: false,
            });
        }
        if let Some(mut wh) = self.open_warehouse(config)? {
            // What the ledger says about recent loads, for the freshness check.
            let day_ago = chrono::Utc::now() - chrono::Duration::days(1);
            let recent = wh.loads_since(day_ago.timestamp_micros())?;
            let at = |us: i64| chrono::DateTime::from_timestamp_micros(us).unwrap_or(day_ago);
            if let Some(last) = recent.last_micros {
                self.freshness.loaded(at(last), 0);
            }
            for (t, rows) in recent.loads {
                self.freshness.loaded(at(t), rows);
            }
            self.recover_claims(config, &mut wh)?;
            reconcile(config, &mut wh, &mut stuck)?;
            self.report_unreported(config, &mut wh)?;
            self.refresh_console(&wh);
            self.put_back(config, wh);
        }
        Ok(Reply::Started {
            stuck,
            claims_left: !self.claimed.is_empty(),
        })
    }

    /// Opens the warehouse, waiting with backoff while another process holds it. Returns
    /// `None` when a stop was requested while waiting.
    fn open_warehouse(&mut self, config: &Config) -> anyhow::Result<Option<Warehouse>> {
        if let Some((opened_with, wh)) = self.kept.take() {
            if opened_with == config.warehouse {
                return Ok(Some(wh));
            }
        }
        let mut delays =
            crate::retry::doubling(Duration::from_millis(50), config.daemon.max_backoff());
        let mut waited = Duration::ZERO;
        // The wait is logged when it starts, then at most once a minute, then when it ends.
        let mut last_reminder = Duration::ZERO;
        let mut delay;
        loop {
            match Warehouse::open_watched(&config.warehouse, &self.interrupt) {
                Ok(wh) => {
                    self.interrupt.done_waiting();
                    if !waited.is_zero() {
                        info!(
                            waited_ms = waited.as_millis() as u64,
                            "warehouse free again"
                        );
                        self.metrics.waited_for_warehouse(waited.as_secs_f64());
                    }
                    return Ok(Some(wh));
                }
                Err(e) if e.is_stopped() => return Ok(None),
                Err(e) if e.is_locked() || e.is_environment() => {
                    delay = delays.next().unwrap_or(config.daemon.max_backoff());
                    let what = if e.is_locked() {
                        "warehouse busy (held by another process)"
                    } else if e.is_unavailable() {
                        "warehouse unavailable (the lake's catalog cannot be reached or locked)"
                    } else {
                        "warehouse unusable (it refuses to open or be written)"
                    };
                    self.waiting_on(&e, what);
                    if waited.is_zero() {
                        warn!(warehouse = %e.path.display(), error = %e.source, "{what}; waiting");
                    } else if waited - last_reminder >= Duration::from_secs(60) {
                        last_reminder = waited;
                        warn!(warehouse = %e.path.display(), waited_s = waited.as_secs(), error = %e.source, "{what}; still waiting");
                    }
                    // During start-up this keeps systemd from timing the start out while an
                    // analyst holds the file; afterwards systemd ignores it.
                    let extend = (delay * 3).as_micros().min(u128::from(u32::MAX)) as u32;
                    notify_systemd(&[
                        sd_notify::NotifyState::Status(what),
                        sd_notify::NotifyState::ExtendTimeoutUsec(extend),
                    ]);
                }
                Err(e) => return Err(e.into()),
            }
            if !self.pause(delay) {
                return Ok(None);
            }
            waited += delay;
        }
    }

    /// Keeps a lake open for the next batch; closes a DuckDB file.
    fn put_back(&mut self, config: &Config, wh: Warehouse) {
        if config.warehouse.kind == crate::config::WarehouseKind::Ducklake {
            self.kept = Some((config.warehouse.clone(), wh));
        }
    }

    /// Says on `/healthz` and `/status` what the loader waits for: a warehouse another process
    /// holds or whose write lock another host holds is a healthy wait; one that cannot be
    /// opened or written is not (503).
    fn waiting_on(&self, e: &crate::warehouse::WarehouseError, what: &str) {
        let healthy = e.is_locked() || e.is_lock_wait();
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default();
        self.interrupt.wait_for(
            &format!("{what}: {}", crate::text::truncate(first, 300)),
            healthy,
        );
    }

    /// Waits `delay`, beating (waiting is not being stuck), in small steps that see a stop.
    /// False when a stop was requested.
    fn pause(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            self.interrupt.beat();
            if self.interrupt.stop_requested() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20).min(delay));
        }
        true
    }

    /// Publishes what the console shows, read from the warehouse this thread holds open.
    fn refresh_console(&self, wh: &Warehouse) {
        use crate::ops::console::{Overview, DETAILS, REJECTS, ROWS};
        let now = chrono::Utc::now();
        let ago = |d: chrono::Duration| (now - d).timestamp_micros();
        let read = wh
            .console(ROWS, DETAILS, REJECTS)
            .and_then(|(rows, details)| {
                let counts = wh.status_windows(
                    ago(chrono::Duration::days(1)),
                    ago(chrono::Duration::days(7)),
                )?;
                Ok((rows, details, counts))
            });
        let (rows, details, counts) = match read {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "cannot read the ledger for the console; it shows what it read before");
                return;
            }
        };
        let chart = wh.weekly_chart(&[]).ok().filter(|c| !c.weeks.is_empty());
        let last_batch = self
            .last_batch
            .get("summary")
            .and_then(|s| s.as_str())
            .map(|s| {
                let at = self.last_batch["finished_at"].as_str().unwrap_or_default();
                format!("{s} ({at})")
            });
        let overview = Overview {
            counts,
            chart,
            freshness: self.freshness.summary(now),
            late: self.freshness.is_late(),
            last_batch,
        };
        self.console.publish(rows, details, overview);
    }

    /// Moves a claimed file whose outcome is committed where its ledger row says.
    /// `journaled`: the caller wrote its journal line already.
    fn archive(
        &self,
        wh: &mut Warehouse,
        config: &Config,
        path: &std::path::Path,
        outcome: &FileOutcome,
        sync: bool,
        journaled: bool,
    ) -> Option<PathBuf> {
        let journal = crate::journal::Journal::in_folder(&config.paths.processed);
        archive_claimed(
            wh,
            path,
            &journal_entry(outcome),
            Some(outcome),
            sync,
            &journal,
            journaled,
        )
    }

    /// Counts a file whose outcome is committed and archived, for the totals, the freshness
    /// check, the metrics and the batch's report.
    fn file_done(
        &mut self,
        outcome: FileOutcome,
        placed: Option<PathBuf>,
        seen_at: Option<Instant>,
        outcomes: &mut Vec<(FileOutcome, Option<PathBuf>)>,
    ) {
        match outcome.status.is_handled() {
            true => self.totals.loaded += 1,
            false => self.totals.not_loaded += 1,
        }
        if matches!(outcome.status, Status::Loaded | Status::Partial) {
            self.freshness
                .loaded(chrono::Utc::now(), outcome.counts.inserted);
        }
        // Timed first: a scrape that sees this file counted sees it timed too (the registry
        // is encoded in registration order, files first).
        if let Some(t) = seen_at {
            self.metrics.dropped_to_committed(t.elapsed().as_secs_f64());
        }
        self.metrics.file_done(&outcome);
        outcomes.push((outcome, placed));
    }

    /// Loads a group of small files in one transaction (group commit), then archives them
    /// (every move first, then one sync per folder). Returns the files the group left, to be
    /// loaded alone; `Err`: nothing of the group was recorded (a stop, or the warehouse
    /// failed), and every file of it is given back to be loaded alone (or at the next start).
    fn load_group(
        &mut self,
        wh: &mut Warehouse,
        group: Vec<Claimed>,
        opts: &IngestOptions,
        config: &Config,
        outcomes: &mut Vec<(FileOutcome, Option<PathBuf>)>,
    ) -> Result<Vec<Claimed>, Vec<Claimed>> {
        let paths: Vec<PathBuf> = group.iter().map(|c| c.path.clone()).collect();
        // A crash during the group counts one load attempt for each of its files at the next
        // start (recorded once for the group), and they are loaded alone then.
        if let Err(e) = claim::begin_group(&config.paths.work, &paths) {
            warn!(error = %e, "cannot record the group's load; its files are loaded alone");
            return Err(group);
        }
        let max_records = usize::try_from(config.daemon.group_max_records).unwrap_or(usize::MAX);
        let result = crate::pipeline::group::ingest_group(wh, &paths, opts, max_records);
        let mut seen: std::collections::HashMap<PathBuf, Option<Instant>> =
            group.into_iter().map(|c| (c.path, c.seen_at)).collect();
        let mut back = |p: &PathBuf| Claimed {
            path: p.clone(),
            seen_at: seen.remove(p).flatten(),
        };
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                claim::end_group(&config.paths.work);
                if !matches!(e, IngestError::Stopped) {
                    warn!(files = paths.len(), error = %e, "the group's load failed; its files are loaded one by one");
                }
                return Err(paths.iter().map(&mut back).collect());
            }
        };
        let left: Vec<Claimed> = done.alone.iter().map(&mut back).collect();
        // The group's journal lines, synced once, before any of its files moves.
        let journal = crate::journal::Journal::in_folder(&config.paths.processed);
        let lines: Vec<_> = done.outcomes.iter().map(journal_entry).collect();
        let journaled = match journal.append(&lines) {
            Ok(()) => true,
            Err(e) => {
                error!(journal = %crate::text::path(journal.path()), error = %e, "cannot write the archive journal; the group's files stay in work/ and the next start archives them");
                false
            }
        };
        let placed: Vec<Option<PathBuf>> = done
            .outcomes
            .iter()
            .map(|o| {
                journaled
                    .then(|| self.archive(wh, config, &o.path, o, false, true))
                    .flatten()
            })
            .collect();
        let moved: Vec<PathBuf> = placed.iter().flatten().cloned().collect();
        if let Some(first) = paths.first() {
            super::archive::sync_archived(&moved, first);
        }
        // Archived (or, where a move failed, left for the next start, which finds its ledger
        // row): a crash from here on is no load attempt.
        claim::end_group(&config.paths.work);
        for (outcome, placed) in done.outcomes.into_iter().zip(placed) {
            let seen_at = seen.remove(&outcome.path).flatten();
            self.file_done(outcome, placed, seen_at, outcomes);
        }
        Ok(left)
    }

    /// Loads the claims left from earlier, then `files`, each in its own transaction, then
    /// reports the batch. A stop leaves what was not reached in work/ for the next start.
    fn run_batch(&mut self, config: &Config, files: Vec<Claimed>) -> anyhow::Result<()> {
        let batch_clock = Instant::now();
        let Some(mut wh) = self.open_warehouse(config)? else {
            self.claimed.extend(files.into_iter().map(|c| c.path));
            return Ok(());
        };
        if self.reports_owed {
            if let Err(e) = self.report_unreported(config, &mut wh) {
                warn!(error = %e, "cannot read the reports the ledger owes; the next batch tries again");
            }
        }
        let mut opts = IngestOptions::new(config.ingest);
        opts.names = Some(std::sync::Arc::new(config.dataset_names()));
        opts.follow_symlinks = false;
        opts.interrupt = Some(self.interrupt.clone());
        opts.archive = Some(archive_plan(config));
        let mut outcomes: Vec<(FileOutcome, Option<PathBuf>)> = Vec::new();
        let mut queue: std::collections::VecDeque<Claimed> = std::mem::take(&mut self.claimed)
            .into_iter()
            .map(|path| Claimed {
                path,
                seen_at: None,
            })
            .chain(files)
            .collect();
        // Between two tries after a load failed in the warehouse: doubles up to max_backoff.
        let mut retries =
            crate::retry::doubling(Duration::from_millis(100), config.daemon.max_backoff());
        // Files that go alone: a group left them, or its load failed.
        let mut alone: std::collections::HashSet<PathBuf> = std::collections::HashSet::new();
        loop {
            if self.interrupt.stop_requested() {
                break;
            }
            let group = take_group(&mut queue, &alone, config);
            if group.len() > 1 {
                match self.load_group(&mut wh, group, &opts, config, &mut outcomes) {
                    Ok(left) => {
                        for c in left.into_iter().rev() {
                            alone.insert(c.path.clone());
                            queue.push_front(c);
                        }
                    }
                    Err(back) => {
                        let stopped = self.interrupt.stop_requested();
                        for c in back.into_iter().rev() {
                            alone.insert(c.path.clone());
                            queue.push_front(c);
                        }
                        if stopped {
                            break;
                        }
                    }
                }
                continue;
            }
            for c in group.into_iter().rev() {
                queue.push_front(c);
            }
            let Some(Claimed { path, seen_at }) = queue.pop_front() else {
                break;
            };
            // A file whose loads keep being cut short (it crashes the loader) is set aside.
            let attempts = claim::begin_attempt(&path).unwrap_or_else(|e| {
                warn!(file = %crate::text::path(&path), error = %e, "cannot count the load attempt");
                0
            });
            let result = if attempts >= config.daemon.max_load_attempts {
                let reason = match claim::last_error(&path) {
                    Some(error) => format!(
                        "set aside after {attempts} failed loads (daemon.max_load_attempts): \
                         {error}"
                    ),
                    None => format!(
                        "set aside: its load was cut short {attempts} times (the process \
                         crashed during it), so it is not tried again"
                    ),
                };
                crate::pipeline::load::record_failed(&mut wh, &path, &opts, reason)
            } else {
                ingest_file(&mut wh, &path, &opts)
            };
            match result {
                Ok(outcome) => {
                    let placed = self.archive(&mut wh, config, &path, &outcome, true, false);
                    self.file_done(outcome, placed, seen_at, &mut outcomes);
                }
                Err(IngestError::Stopped) => {
                    claim::end_attempt(&path);
                    info!(file = %crate::text::path(&path), "stopped before commit; the claimed file is loaded at the next start");
                    self.claimed.push(path);
                    break;
                }
                Err(IngestError::Changed(why)) => {
                    // Its writer still had it open and wrote during the read: nothing was
                    // recorded; it is read again, whole, after the others (an attempt, so that
                    // a file written without end is set aside in the end).
                    let retry = retries.next().unwrap_or(config.daemon.max_backoff());
                    let again = Claimed { path, seen_at };
                    try_after_others(
                        &mut queue,
                        again,
                        &why,
                        attempts,
                        config,
                        "the file changed while it was read",
                    );
                    if !self.pause(retry) {
                        break;
                    }
                }
                Err(IngestError::Warehouse(e)) => {
                    // Nothing of the file was committed. When the warehouse itself is at
                    // fault (its disk, its catalog, another host's overlapping commit) the
                    // attempt does not count and the file goes first again once it is usable;
                    // otherwise the file's attempt counts and the others go first, so that one
                    // file can never hold up the rest, and after max_load_attempts it is set
                    // aside with this error.
                    let warehouse_fault = e.is_environment() || e.is_conflict() || e.is_locked();
                    let retry = retries.next().unwrap_or(config.daemon.max_backoff());
                    if warehouse_fault {
                        claim::end_attempt(&path);
                        self.waiting_on(&e, "warehouse unusable (a load failed)");
                        warn!(file = %crate::text::path(&path), error = %e, retry_ms = retry.as_millis() as u64, "the warehouse failed during the load; waiting, then loading the file again");
                        queue.push_front(Claimed { path, seen_at });
                    } else {
                        let again = Claimed { path, seen_at };
                        let error = format!("{}: {}", e.what, e.source);
                        try_after_others(
                            &mut queue,
                            again,
                            &error,
                            attempts,
                            config,
                            "the load failed in the warehouse",
                        );
                    }
                    // A failed statement may leave the connection unusable: reopen (waiting
                    // while the warehouse cannot be opened).
                    if !self.pause(retry) {
                        break;
                    }
                    // Closed before it is opened again: one DuckDB file, one instance.
                    drop(wh);
                    match self.open_warehouse(config)? {
                        Some(w) => wh = w,
                        None => {
                            // Stopped: the rest stays claimed; the ledger owes the report of
                            // what was committed, and the next start sends it.
                            self.claimed.extend(queue.into_iter().map(|c| c.path));
                            self.reports_owed = true;
                            return Ok(());
                        }
                    }
                }
            }
        }
        // Whatever was not reached stays claimed, for the next batch or the next start.
        self.claimed.extend(queue.into_iter().map(|c| c.path));
        if let Err(e) = wh.refresh_view() {
            error!(error = %e, "cannot refresh outlier_weeks");
        }
        let outlier_weeks = wh.count_outlier_weeks().ok();
        self.totals.batches += 1;
        if !outcomes.is_empty() {
            let ids: Vec<i64> = outcomes.iter().map(|(o, _)| o.file_id).collect();
            let chart = wh
                .weekly_chart(&ids)
                .map_err(|e| warn!(error = %e, "the report goes without its chart"))
                .ok()
                .filter(|c| !c.weeks.is_empty());
            let report = BatchReport::new(outcomes, outlier_weeks).with_chart(chart);
            info!(summary = %report.subject(), "batch done");
            self.metrics.batch_done(batch_clock.elapsed().as_secs_f64());
            self.last_batch = serde_json::json!({
                "files": ids.len(),
                "summary": report.subject(),
                "finished_at": chrono::Utc::now().to_rfc3339(),
            });
            crate::testing::failpoint::hit("before_report");
            let stored = self.postman.post(&config.report, &report);
            crate::testing::failpoint::hit("after_report");
            if !stored {
                // Nothing is marked: the ledger keeps owing the report.
                self.reports_owed = true;
                warn!("the batch's report could not be stored in the outbox; the ledger owes it and the next batch queues it again");
            } else if let Err(e) = wh.mark_reported(&ids) {
                warn!(error = %e, "cannot record that the batch's report is queued; the next start queues it again");
            }
            self.refresh_console(&wh);
        }
        self.put_back(config, wh);
        Ok(())
    }
}

/// Files a group takes at most this large (stored bytes); larger ones are loaded alone.
const GROUP_FILE_BYTES: u64 = 1 << 20;

/// Takes the group of files the front of the queue starts with: fresh claims (no load of
/// theirs began before) of votes files up to [`GROUP_FILE_BYTES`] (group commit is the
/// votes load's; other datasets load alone), at most `daemon.group_max_files`, in queue
/// order, stopping at the first file that must go alone.
fn take_group(
    queue: &mut std::collections::VecDeque<Claimed>,
    alone: &std::collections::HashSet<PathBuf>,
    config: &Config,
) -> Vec<Claimed> {
    let max = usize::try_from(config.daemon.group_max_files).unwrap_or(usize::MAX);
    let names = config.dataset_names();
    let votes = |path: &Path| {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        matches!(
            names.of(&name),
            Ok(crate::datasets::Dataset::Votes) | Err(crate::datasets::names::Unrouted::NoPattern)
        )
    };
    let mut group = Vec::new();
    while group.len() < max {
        let Some(front) = queue.front() else { break };
        let small = std::fs::symlink_metadata(&front.path)
            .is_ok_and(|m| m.file_type().is_file() && m.len() <= GROUP_FILE_BYTES);
        if !small
            || !votes(&front.path)
            || alone.contains(&front.path)
            || claim::attempts(&front.path) > 0
        {
            break;
        }
        group.extend(queue.pop_front());
    }
    group
}

/// A load that failed because of the file (as far as can be told): the error is kept in the
/// claim for the reason it may be set aside with, the attempt stays counted, and the file goes
/// to the back of the queue so that the others go first.
fn try_after_others(
    queue: &mut std::collections::VecDeque<Claimed>,
    claimed: Claimed,
    error: &str,
    attempts: u32,
    config: &Config,
    what: &str,
) {
    claim::note_error(&claimed.path, error);
    warn!(
        file = %crate::text::path(&claimed.path),
        error,
        attempt = attempts + 1,
        max_load_attempts = config.daemon.max_load_attempts,
        "{what}; the file is tried again after the others"
    );
    queue.push_back(claimed);
}

/// The archive journal's line of a committed outcome (archived where its ledger row says).
fn journal_entry(o: &FileOutcome) -> crate::journal::JournalEntry {
    let dest = o.archived_to.clone().expect("the daemon plans an archive");
    crate::journal::JournalEntry {
        ledger_id: o.file_id,
        dataset: o.dataset,
        status: o.status,
        file_name: o.name.clone(),
        sha256: o.sha256.clone(),
        forced: o.forced,
        archived: super::recover::absolute(&dest),
    }
}
