//! `votewatch run`: watch landing/, load every ready file exactly once, archive it, report
//! each batch, and keep going through restarts, bad files, busy warehouses and signals.
//!
//! The orchestration runs as tokio tasks on one small runtime; the warehouse has a thread
//! of its own:
//! - the **landing task** (`watch`) takes file-system events and rescans, decides when files
//!   are ready and form a batch, claims them into work/ and hands the batch to the loader;
//! - the **loader thread** (`loader`) owns DuckDB: start-up recovery, then one batch at a time;
//! - the **signal task**: SIGTERM/SIGINT stop, SIGHUP reads the configuration again and
//!   publishes it on a `watch` channel, which every task follows (a reload cannot be lost);
//! - the **watchdog task** (`lifecycle`), the **mail sender** (`report::sender`) and the
//!   **HTTP surface** (`ops::http`).
//!
//! Shutdown: a stop ends the landing task, the loader finishes or rolls back the file in hand
//! and is joined, then a cancellation token ends the other tasks (the sender finishes the
//! message in hand) and a task tracker waits for them.

pub mod archive;
pub mod claim;
mod lifecycle;
mod loader;
mod recover;
pub mod settle;
mod watch;

pub use lifecycle::EarlySignals;
use lifecycle::{lock_landing, notify_systemd, signal_task, LandingLock};

use std::path::{Path, PathBuf};
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info};

use crate::config::Config;
use crate::daemon::settle::Stamp;
use crate::interrupt::Interrupt;
use crate::ops::metrics::Metrics;

/// Where the configuration came from, so SIGHUP can read it again.
#[derive(Debug, Clone)]
pub struct ConfigSource {
    pub path: Option<PathBuf>,
}

impl ConfigSource {
    /// Reads and validates the configuration, creates its folders and makes their paths
    /// absolute.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = Config::load(self.path.as_deref())?;
        create_dirs(&mut config)?;
        Ok(config)
    }
}

/// Runs until SIGTERM or SIGINT. Errors are fatal: systemd restarts us.
pub fn run(source: ConfigSource, early: EarlySignals) -> anyhow::Result<()> {
    crate::testing::failpoint::stall("startup");
    if early.take_stop() {
        info!("stopped before starting (SIGTERM or SIGINT)");
        return Ok(());
    }
    let config = source.load()?;
    let landing_lock = lock_landing(&config.paths.landing)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("votewatch-tasks")
        .build()?;
    runtime.block_on(supervise(source, config, early, landing_lock))
}

async fn supervise(
    source: ConfigSource,
    config: Config,
    early: EarlySignals,
    landing_lock: LandingLock,
) -> anyhow::Result<()> {
    let interrupt = Interrupt::default();
    let metrics = Arc::new(Metrics::new());
    let console = Arc::new(crate::ops::console::Console::default());
    let http_listen = config.daemon.http_listen.clone();
    let access = crate::ops::http::Access::from_config(config.daemon.http_token_file.as_deref());
    if let crate::ops::http::Access::Broken(why) = &access {
        error!(error = %why, "the console's token cannot be read; its API answers 503");
    }
    let (config_tx, config_rx) = tokio::sync::watch::channel(Arc::new(config));
    // `stop`: take no more files. `shutdown`: the background tasks end (after the loader).
    let stop = CancellationToken::new();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();

    // Signals first, so that one sent as soon as we run is never the default action.
    let signals = signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    tracker.spawn(signal_task(
        signals,
        early,
        (source, landing_lock),
        config_tx,
        interrupt.clone(),
        stop.clone(),
        shutdown.clone(),
    ));
    if !http_listen.is_empty() {
        // The HTTP surface is for operators; loading never depends on it.
        match tokio::net::TcpListener::bind(&http_listen).await {
            Ok(listener) => {
                if let Ok(addr) = listener.local_addr() {
                    info!(%addr, "http listening (/metrics, /healthz, /status)");
                }
                tracker.spawn(crate::ops::http::serve(
                    listener,
                    metrics.clone(),
                    console.clone(),
                    access,
                    interrupt.clone(),
                    shutdown.clone(),
                ));
            }
            Err(e) => {
                error!(addr = %http_listen, error = %e, "cannot listen for HTTP; going on without it")
            }
        }
    }
    // The landing task and the mail sender do file-system work (listings, claims with their
    // fsyncs, the outbox) on a runtime of their own, on a thread of their own: however long
    // that takes, this runtime's signals, HTTP answers and watchdog pings go on.
    let work_runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let work = work_runtime.handle().clone();
    let work_done = CancellationToken::new();
    let work_thread = {
        let done = work_done.clone();
        std::thread::Builder::new()
            .name("votewatch-work".into())
            .spawn(move || work_runtime.block_on(done.cancelled()))?
    };
    let postman = crate::report::sender::start_sender(
        &tracker,
        &work,
        config_rx.clone(),
        metrics.clone(),
        shutdown.clone(),
    );

    let (job_tx, job_rx) = std::sync::mpsc::channel();
    let (reply_tx, reply_rx) = tokio::sync::mpsc::unbounded_channel();
    let (tid_tx, tid_rx) = tokio::sync::oneshot::channel();
    let loader = loader::Loader::new(
        config_rx.clone(),
        interrupt.clone(),
        metrics.clone(),
        console,
        postman,
    );
    let tick = lifecycle::loader_tick();
    let loader_thread = std::thread::Builder::new()
        .name("votewatch-loader".into())
        .spawn(move || {
            let _ = tid_tx.send(rustix::thread::gettid().as_raw_nonzero().get());
            loader.serve(job_rx, reply_tx, tick);
        })?;
    let landing_alive = Interrupt::default();
    landing_alive.beat();
    if let Ok(tid) = tid_rx.await {
        tracker.spawn(lifecycle::feed(
            interrupt.clone(),
            landing_alive.clone(),
            tid,
            shutdown.clone(),
        ));
    }

    let landing = work.spawn(watch::run(
        config_rx,
        metrics,
        job_tx,
        reply_rx,
        stop.clone(),
        landing_alive,
    ));
    let result = landing
        .await
        .unwrap_or_else(|e| Err(anyhow::anyhow!("the landing task failed: {e}")));
    // Whatever ended the landing task, the loader stops: the file in hand commits or rolls
    // back, and the thread ends when it sees no more jobs.
    interrupt.request_stop();
    notify_systemd(&[sd_notify::NotifyState::Stopping]);
    let _ = tokio::task::spawn_blocking(move || loader_thread.join()).await;
    info!("stopping: the other tasks finish what they hold (a message being sent)");
    shutdown.cancel();
    tracker.close();
    tracker.wait().await;
    work_done.cancel();
    let _ = tokio::task::spawn_blocking(move || work_thread.join()).await;
    if result.is_ok() {
        info!("stopped");
    }
    result
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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    /// A symlink, FIFO, socket or device: refused with a reason, never read.
    Special,
}

pub(crate) fn entry_kind(path: &Path) -> Option<EntryKind> {
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
pub(crate) fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::symlink_metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

/// Which names in landing/ are taken: not hidden, no temporary suffix, and matching one of
/// the configured patterns.
pub struct NameFilter {
    names: crate::datasets::names::DatasetNames,
    ignore_suffixes: Vec<String>,
}

impl NameFilter {
    pub fn new(config: &Config) -> Self {
        NameFilter {
            names: config.dataset_names(),
            ignore_suffixes: config.daemon.ignore_suffixes.clone(),
        }
    }

    /// The dataset of a file to take, or why it is left alone.
    pub fn check(&self, path: &Path) -> Result<crate::datasets::Dataset, String> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if name.starts_with('.') {
            return Err("hidden file".into());
        }
        if self
            .ignore_suffixes
            .iter()
            .any(|s| name.ends_with(s.as_str()))
        {
            return Err("temporary name".into());
        }
        self.names.of(&name).map_err(|e| e.to_string())
    }
}
