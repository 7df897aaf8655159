//! Delivery: passes over the outbox in the order reports were queued, retries with backoff,
//! the sender task the daemon runs, and `Postman`, through which the loader posts.

use std::collections::HashMap;
use std::fs::{self};
use std::io::{self};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::message::*;
use super::outbox::*;
use super::transport::*;
use crate::config::ReportConfig;
use crate::report::Rendered;

/// Retry bookkeeping of the reports in the outbox (kept in memory: after a restart every
/// pending report is tried at once).
#[derive(Debug, Default)]
pub struct Retries {
    pub(crate) state: HashMap<PathBuf, (u32, Instant)>,
}

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub failed: usize,
    pub waiting: usize,
    /// The error of the last delivery that failed in this pass.
    pub last_error: Option<String>,
}

/// Tries the pending reports in the order they were queued (oldest first, also across a
/// restart: the outbox's names begin with the time they were queued). A report that failed
/// and is not due again yet holds back every later one, and after a failure the rest wait for
/// the next pass (the server is likely down for them too), so that reports arrive in the order
/// they were written. A cancelled `stop` ends the pass between two messages: the one in hand
/// is finished.
pub async fn deliver_pending<S: Sink>(
    outbox: &Outbox,
    mailer: &S,
    cfg: &ReportConfig,
    retries: &mut Retries,
    now: Instant,
    stop: &CancellationToken,
) -> Pass {
    let mut pass = Pass::default();
    release_orphans(outbox);
    let pending = outbox.pending();
    retries.state.retain(|p, _| pending.contains(p));
    let mut blocked = false;
    for path in pending {
        let due = retries.state.get(&path).is_none_or(|(_, at)| *at <= now);
        if blocked || !due || stop.is_cancelled() {
            // Nothing later goes before it.
            blocked = true;
            pass.waiting += 1;
            continue;
        }
        // Taken first, so that no other sender delivers it too; gone means taken.
        let Some(claim) = claim_entry(&path) else {
            continue;
        };
        let claimed = claim.path.clone();
        let entry = match read_entry(&claimed).and_then(|e| mailer.accept(&e).map(|()| e)) {
            Ok(v) => v,
            Err(e) => {
                // A damaged or foreign entry is kept for a person to look at, out of the queue.
                let aside = path.with_extension(if e.kind() == io::ErrorKind::PermissionDenied {
                    "refused"
                } else {
                    "damaged"
                });
                error!(report = %path.display(), error = %e, moved_to = %aside.display(), "outbox entry not sent");
                let _ = fs::rename(&claimed, &aside);
                continue;
            }
        };
        match mailer.deliver(&entry).await {
            Ok(()) => {
                if let Err(e) = fs::remove_file(&claimed) {
                    warn!(report = %path.display(), error = %e, "sent, but cannot remove it from the outbox (it may be sent again)");
                }
                retries.state.remove(&path);
                info!(subject = %entry.subject, message_id = %entry.message_id, transport = mailer.describe(), "report delivered");
                pass.sent += 1;
            }
            Err(e) => {
                // Back in the queue under its own name, for the retry.
                let _ = fs::rename(&claimed, &path);
                let attempts = retries.state.get(&path).map_or(0, |(n, _)| *n) + 1;
                let wait = crate::retry::wait_after(
                    Duration::from_millis(cfg.retry_initial_ms),
                    Duration::from_millis(cfg.retry_max_ms),
                    attempts,
                );
                retries.state.insert(path.clone(), (attempts, now + wait));
                if attempts == cfg.warn_after_attempts {
                    error!(subject = %entry.subject, attempts, outbox = %outbox.dir().display(), error = %e, "report still undelivered; it stays in the outbox and is retried");
                } else {
                    warn!(subject = %entry.subject, attempts, retry_ms = wait.as_millis() as u64, error = %e, "report delivery failed; will retry");
                }
                pass.failed += 1;
                pass.last_error = Some(e.to_string());
                blocked = true;
            }
        }
    }
    pass
}

/// A way out for the entries of one outbox: e-mail (SMTP or files) or a webhook.
pub trait Sink {
    fn describe(&self) -> &'static str;
    /// Checks an entry read from the outbox; an error sets it aside as damaged.
    fn accept(&self, entry: &Entry) -> io::Result<()>;
    /// Delivers it; an error leaves it queued for a retry.
    fn deliver(&self, entry: &Entry) -> impl std::future::Future<Output = Result<(), String>>;
}

impl Sink for Mailer {
    fn describe(&self) -> &'static str {
        Mailer::describe(self)
    }
    fn accept(&self, entry: &Entry) -> io::Result<()> {
        envelope_of(entry).map(|_| ())
    }
    async fn deliver(&self, entry: &Entry) -> Result<(), String> {
        let envelope = envelope_of(entry).map_err(|e| e.to_string())?;
        self.send_raw(&envelope, &entry.message_id, entry.raw.as_bytes())
            .await
    }
}

impl Sink for super::webhook::Webhook {
    fn describe(&self) -> &'static str {
        "webhook"
    }
    fn accept(&self, entry: &Entry) -> io::Result<()> {
        serde_json::from_str::<serde::de::IgnoredAny>(&entry.raw)
            .map(|_| ())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
    async fn deliver(&self, entry: &Entry) -> Result<(), String> {
        self.send(entry).await
    }
}

/// When the oldest pending report is due, if any: the others wait behind it.
pub(crate) fn next_due(retries: &Retries, outbox: &Outbox) -> Option<Instant> {
    let oldest = outbox.pending().into_iter().next()?;
    Some(
        retries
            .state
            .get(&oldest)
            .map_or_else(Instant::now, |(_, at)| *at),
    )
}

/// Runs `fut` to completion on a runtime of its own, for the commands that send outside the
/// daemon (`ingest --report`, `send-test-email`).
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for sending mail")
        .block_on(fut)
}

/// The loader's handle on the sender task: it stores a report in the outbox and wakes the
/// sender. Nothing in flight is lost if the process ends: a report leaves the outbox only
/// after delivery.
#[derive(Clone)]
pub struct Postman {
    pub(crate) wake: Arc<Notify>,
}

impl Postman {
    /// Renders, stores and hands on a report. Never fails the caller: a report that cannot
    /// even be stored is logged in full instead.
    /// Stores the batch's report in the outbox and wakes the sender. True when every message
    /// of it is on disk; false when one could not be stored (a full disk, an outbox that cannot
    /// be written), so that the caller keeps the report owed and tries again later.
    pub fn post(&self, cfg: &ReportConfig, report: &crate::report::BatchReport) -> bool {
        let stored = post(cfg, &Outbox::new(&cfg.outbox), report);
        self.wake.notify_one();
        stored == report.message_count(cfg.mode)
    }

    /// Stores and hands on one message that is not a batch report (a freshness alert).
    pub fn post_rendered(&self, cfg: &ReportConfig, rendered: &Rendered) {
        store(cfg, &Outbox::new(&cfg.outbox), rendered);
        if cfg.webhook.enabled {
            let id = rendered
                .key
                .clone()
                .unwrap_or_else(|| format!("notice.{}", chrono::Utc::now().timestamp_micros()));
            let doc = super::webhook::notice_document(rendered, &cfg.webhook, &id);
            store_document(cfg, &id, &rendered.subject, &doc);
        }
        self.wake.notify_one();
    }
}

/// Starts the sender task on `tracker`: it first tries every report already waiting, then
/// whatever is posted, follows the configuration in `config` (a SIGHUP), and ends when
/// `stop` is cancelled, after the message in hand.
pub fn start_sender(
    tracker: &TaskTracker,
    runtime: &tokio::runtime::Handle,
    config: watch::Receiver<Arc<crate::config::Config>>,
    metrics: Arc<crate::ops::metrics::Metrics>,
    stop: CancellationToken,
) -> Postman {
    let wake = Arc::new(Notify::new());
    tracker.spawn_on(sender_task(config, wake.clone(), metrics, stop), runtime);
    Postman { wake }
}

async fn sender_task(
    mut config: watch::Receiver<Arc<crate::config::Config>>,
    wake: Arc<Notify>,
    metrics: Arc<crate::ops::metrics::Metrics>,
    stop: CancellationToken,
) {
    let mut cfg = config.borrow_and_update().report.clone();
    let mut retries = Retries::default();
    let mut mailer = build_mailer(&cfg);
    let mut hook_retries = Retries::default();
    let mut hook = build_webhook(&cfg);
    loop {
        // Webhook documents go their own way: a receiver that is down holds back no e-mail.
        let hooks = Outbox::new(&super::webhook::outbox_dir(&cfg.outbox));
        if let Some(h) = &hook {
            let pass =
                deliver_pending(&hooks, h, &cfg, &mut hook_retries, Instant::now(), &stop).await;
            if let Some(e) = pass.last_error {
                metrics.delivery_failed(Some(e));
            }
        }
        let hook_wait = match (&hook, next_due(&hook_retries, &hooks)) {
            (Some(_), Some(at)) => at.saturating_duration_since(Instant::now()),
            (None, Some(_)) if cfg.webhook.enabled => Duration::from_millis(cfg.retry_max_ms),
            _ => Duration::from_secs(3600),
        };
        let outbox = Outbox::new(&cfg.outbox);
        if let Some(m) = &mailer {
            let pass = deliver_pending(&outbox, m, &cfg, &mut retries, Instant::now(), &stop).await;
            // The console shows the last failure until a delivery succeeds.
            match (pass.last_error, pass.sent) {
                (Some(e), _) => metrics.delivery_failed(Some(e)),
                (None, sent) if sent > 0 => metrics.delivery_failed(None),
                _ => {}
            }
        }
        let wait = match (&mailer, next_due(&retries, &outbox)) {
            (Some(_), Some(at)) => at.saturating_duration_since(Instant::now()),
            // No usable transport: look again now and then (the log says why).
            (None, Some(_)) => Duration::from_millis(cfg.retry_max_ms),
            (_, None) => Duration::from_secs(3600),
        }
        .min(hook_wait);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = wake.notified() => {}
            changed = config.changed() => {
                if changed.is_err() {
                    return;
                }
                cfg = config.borrow_and_update().report.clone();
                mailer = build_mailer(&cfg);
                retries = Retries::default();
                hook = build_webhook(&cfg);
                hook_retries = Retries::default();
            }
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
        if mailer.is_none() {
            mailer = build_mailer(&cfg);
        }
        if hook.is_none() {
            hook = build_webhook(&cfg);
        }
    }
}

/// Renders a report under the configured mode and stores each message in the outbox.
/// Returns how many were stored.
pub fn post(cfg: &ReportConfig, outbox: &Outbox, report: &crate::report::BatchReport) -> usize {
    if cfg.webhook.enabled && super::webhook::wanted(report, &cfg.webhook) {
        let id = report.key();
        let doc = super::webhook::document(report, &cfg.webhook, &id);
        store_document(cfg, &id, &report.subject(), &doc);
    }
    report
        .render(cfg.mode)
        .iter()
        .filter(|r| store(cfg, outbox, r))
        .count()
}

/// Stores a webhook document in the webhook outbox; one that cannot be stored is logged.
fn store_document(cfg: &ReportConfig, id: &str, subject: &str, doc: &serde_json::Value) {
    let outbox = Outbox::new(&super::webhook::outbox_dir(&cfg.outbox));
    match outbox.put_document(id, subject, &doc.to_string()) {
        Ok(path) => info!(subject, outbox = %path.display(), "webhook notification queued"),
        Err(e) => {
            error!(error = %e, subject, document = %doc, "cannot queue the webhook notification; its document is here instead")
        }
    }
}

/// Builds the message of `rendered` and stores it in the outbox; a message that cannot be
/// stored is logged in full instead. True when stored.
pub fn store(cfg: &ReportConfig, outbox: &Outbox, rendered: &Rendered) -> bool {
    match build_message(cfg, rendered).and_then(|m| outbox.put(&m, &rendered.subject)) {
        Ok(path) => {
            info!(subject = %rendered.subject, outbox = %path.display(), "report queued");
            true
        }
        Err(e) => {
            error!(error = %e, subject = %rendered.subject, report = %rendered.text, "cannot queue the report; its text is here instead");
            false
        }
    }
}

/// The webhook, when one is enabled and usable (else logged, and its documents wait).
pub(crate) fn build_webhook(cfg: &ReportConfig) -> Option<super::webhook::Webhook> {
    if !cfg.webhook.enabled {
        return None;
    }
    match super::webhook::Webhook::from_config(&cfg.webhook) {
        Ok(h) => Some(h),
        Err(e) => {
            error!(error = %e, "webhook unusable; its notifications stay in the outbox");
            None
        }
    }
}

pub(crate) fn build_mailer(cfg: &ReportConfig) -> Option<Mailer> {
    match Mailer::from_config(cfg) {
        Ok(m) => Some(m),
        Err(e) => {
            error!(error = %e, outbox = %cfg.outbox.display(), "mail transport unusable; reports stay in the outbox");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{SmtpConfig, SmtpTls};
    use std::path::Path;

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LOCALHOST",
            "127.0.0.1",
            "127.3.2.1",
            "::1",
            "[::1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "mail.example.com",
            "10.0.0.1",
            "192.0.2.7",
            "localhost.example.com",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }

    #[test]
    fn auth_in_clear_text_is_refused_except_to_this_machine() {
        let mut s = SmtpConfig {
            host: "mail.example.com".into(),
            tls: SmtpTls::None,
            user: "reports".into(),
            ..SmtpConfig::default()
        };
        let err = check_auth_policy(&s).unwrap_err().to_string();
        assert!(
            err.contains("refusing to send the SMTP password unencrypted to mail.example.com"),
            "{err}"
        );
        s.allow_insecure_auth = true;
        assert!(check_auth_policy(&s).is_ok());
        s.allow_insecure_auth = false;
        s.tls = SmtpTls::Starttls;
        assert!(check_auth_policy(&s).is_ok());
        s.tls = SmtpTls::None;
        s.host = "127.0.0.1".into();
        assert!(check_auth_policy(&s).is_ok());
        s.host = "mail.example.com".into();
        s.user.clear();
        assert!(check_auth_policy(&s).is_ok(), "no AUTH, nothing to protect");
    }

    #[test]
    fn outbox_entries_survive_as_whole_files_and_keep_their_message_id() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ReportConfig {
            outbox: dir.path().join("outbox"),
            ..ReportConfig::default()
        };
        let outbox = Outbox::new(&cfg.outbox);
        let r = Rendered {
            subject: "votewatch: a.jsonl — loaded".into(),
            text: "text".into(),
            html: "<p>html</p>".into(),
            ..Default::default()
        };
        let msg = build_message(&cfg, &r).unwrap();
        let id = msg.headers().get_raw("Message-ID").unwrap().to_string();
        let path = outbox.put(&msg, &r.subject).unwrap();
        assert_eq!(outbox.pending(), vec![path.clone()]);
        let entry = read_entry(&path).unwrap();
        let envelope = envelope_of(&entry).unwrap();
        assert_eq!(entry.message_id, id);
        assert!(entry.raw.contains(&format!("Message-ID: {id}")));
        assert_eq!(envelope.to().len(), 1);
        // Delivery through the file transport empties the outbox.
        let sent = dir.path().join("sent");
        fs::create_dir_all(&sent).unwrap();
        let mailer = Mailer::File(sent.clone());
        let pass = block_on(deliver_pending(
            &outbox,
            &mailer,
            &cfg,
            &mut Retries::default(),
            Instant::now(),
            &CancellationToken::new(),
        ));
        assert_eq!(
            pass,
            Pass {
                sent: 1,
                failed: 0,
                waiting: 0,
                last_error: None,
            }
        );
        assert!(outbox.is_empty());
        let eml = fs::read_dir(&sent).unwrap().next().unwrap().unwrap().path();
        assert!(fs::read_to_string(eml).unwrap().contains(&id));
    }

    fn file_config(dir: &Path) -> ReportConfig {
        ReportConfig {
            outbox: dir.join("outbox"),
            file: crate::config::FileTransportConfig {
                dir: dir.join("sent"),
            },
            ..ReportConfig::default()
        }
    }

    fn queue(cfg: &ReportConfig, n: usize) -> Outbox {
        let outbox = Outbox::new(&cfg.outbox);
        for k in 0..n {
            let r = Rendered {
                subject: format!("report {k}"),
                text: "text\n".into(),
                html: "<p>html</p>\n".into(),
                ..Default::default()
            };
            outbox
                .put(&build_message(cfg, &r).unwrap(), &r.subject)
                .unwrap();
        }
        outbox
    }

    /// One delivery pass through the configured (file) transport.
    fn deliver_once(cfg: &ReportConfig, outbox: &Outbox) -> Pass {
        let mailer = Mailer::from_config(cfg).unwrap();
        block_on(deliver_pending(
            outbox,
            &mailer,
            cfg,
            &mut Retries::default(),
            Instant::now(),
            &CancellationToken::new(),
        ))
    }

    /// Two senders on one outbox (the daemon and `ingest --report`, say) deliver each report
    /// exactly once: an entry is claimed by a rename before it is sent.
    #[test]
    fn two_senders_deliver_each_report_once() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = file_config(dir.path());
        let outbox = queue(&cfg, 40);
        let sent: usize = std::thread::scope(|s| {
            let senders: Vec<_> = (0..2)
                .map(|_| s.spawn(|| deliver_once(&cfg, &outbox).sent))
                .collect();
            senders.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(sent, 40);
        assert_eq!(fs::read_dir(dir.path().join("sent")).unwrap().count(), 40);
        assert!(outbox.is_empty());
    }

    /// An entry someone else could have written (group-writable here) is never sent: it is
    /// moved aside as `.refused`. Entries votewatch writes are owner-only.
    #[test]
    fn a_foreign_outbox_entry_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let cfg = file_config(dir.path());
        let outbox = queue(&cfg, 2);
        let entries = outbox.pending();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&entries[0]), 0o600);
        fs::set_permissions(&entries[1], fs::Permissions::from_mode(0o666)).unwrap();
        let pass = deliver_once(&cfg, &outbox);
        assert_eq!(pass.sent, 1);
        assert!(outbox.is_empty());
        assert!(entries[1].with_extension("refused").exists());
    }

    /// A sender that died holding an entry does not lose it: the next pass puts it back.
    #[test]
    fn an_entry_left_by_a_sender_that_ended_is_sent_whatever_its_pid() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = file_config(dir.path());
        let outbox = queue(&cfg, 1);
        let entry = outbox.pending().remove(0);
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        // A live pid (this process's, or PID 1, as after a restart in a container): the pid
        // says nothing; no one holds the entry's lock, so its sender is gone.
        for pid in [std::process::id(), 1] {
            fs::rename(
                outbox.pending().remove(0),
                entry.with_file_name(format!(".sending-{pid}-{name}")),
            )
            .unwrap();
            assert!(outbox.is_empty());
            release_orphans(&outbox);
            assert_eq!(outbox.pending(), std::slice::from_ref(&entry), "pid {pid}");
        }
        assert_eq!(deliver_once(&cfg, &outbox).sent, 1);
    }

    /// An entry a sender holds (its lock taken) is neither put back nor sent by another.
    #[test]
    fn an_entry_a_sender_holds_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = file_config(dir.path());
        let outbox = queue(&cfg, 1);
        let claim = claim_entry(&outbox.pending().remove(0)).expect("claimed");
        assert!(outbox.is_empty());
        assert_eq!(deliver_once(&cfg, &outbox).sent, 0);
        assert!(claim.path.exists());
        drop(claim);
        assert_eq!(deliver_once(&cfg, &outbox).sent, 1);
    }

    #[test]
    fn an_entry_held_by_a_dead_sender_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = file_config(dir.path());
        let outbox = queue(&cfg, 1);
        let entry = outbox.pending().remove(0);
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        // No process has pid 0x7fffffff: a sender that is gone.
        fs::rename(
            &entry,
            entry.with_file_name(format!(".sending-2147483647-{name}")),
        )
        .unwrap();
        assert!(outbox.is_empty());
        let pass = deliver_once(&cfg, &outbox);
        assert_eq!(pass.sent, 1);
    }
}
