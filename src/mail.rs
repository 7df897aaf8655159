//! E-mail delivery that loses nothing: a report becomes a message with a fixed Message-ID,
//! is written durably to the outbox, and a sender task (lettre's async transports on tokio)
//! delivers the outbox through the configured transport (SMTP, or .eml files), retrying with
//! backoff. Mail never blocks or fails ingestion.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lettre::address::Envelope;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::config::{ReportConfig, SmtpConfig, SmtpTls, TransportKind};
use crate::report::Rendered;

/// Why mail cannot be sent at all with this configuration (as opposed to a failed attempt).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("invalid address {0:?}: {1}")]
    Address(String, String),
    #[error("cannot build the message: {0}")]
    Build(String),
    #[error("SMTP password: {0}")]
    Password(String),
    #[error("refusing to send the SMTP password unencrypted to {0} (set report.smtp.allow_insecure_auth = true to allow it)")]
    InsecureAuth(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("outbox {0}: {1}")]
    Outbox(PathBuf, io::Error),
}

/// Builds the message of a rendered report: plain text and HTML as alternatives, and a
/// Message-ID that stays with the message through every retry: derived from the report's key
/// when it has one (the same report queued twice is one message), fresh otherwise.
pub fn build_message(cfg: &ReportConfig, r: &Rendered) -> Result<Message, MailError> {
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| MailError::Address(a.to_string(), e.to_string()))
    };
    let from = parse(&cfg.from)?;
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(r.subject.clone())
        .message_id(Some(match &r.key {
            Some(key) => format!("<votewatch.report.{key}@{}>", from.email.domain()),
            None => new_message_id(&from),
        }))
        .date_now();
    for to in &cfg.to {
        builder = builder.to(parse(to)?);
    }
    let body = match &r.chart_png {
        None => MultiPart::alternative_plain_html(r.text.clone(), r.html.clone()),
        // The chart travels inside the HTML alternative, referenced by its Content-ID.
        Some(png) => MultiPart::alternative()
            .singlepart(SinglePart::plain(r.text.clone()))
            .multipart(
                MultiPart::related()
                    .singlepart(SinglePart::html(r.html.clone()))
                    .singlepart(
                        Attachment::new_inline(crate::chart::CONTENT_ID.to_string()).body(
                            png.clone(),
                            ContentType::parse("image/png").expect("a valid content type"),
                        ),
                    ),
            ),
    };
    builder
        .multipart(body)
        .map_err(|e| MailError::Build(e.to_string()))
}

fn new_message_id(from: &Mailbox) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "<votewatch.{nanos}.{}.{}@{}>",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        from.email.domain()
    )
}

/// One stored report: the exact bytes to send and their envelope.
#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    version: u32,
    message_id: String,
    subject: String,
    envelope_from: String,
    envelope_to: Vec<String>,
    created_at: String,
    raw: String,
}

/// The folder of reports not yet delivered. Each is one JSON file, written to a temporary
/// name, synced, then renamed, so a crash leaves a whole report or none.
#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: &Path) -> Outbox {
        Outbox {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores a message; returns its path in the outbox.
    pub fn put(&self, msg: &Message, subject: &str) -> Result<PathBuf, MailError> {
        let err = |e| MailError::Outbox(self.dir.clone(), e);
        fs::create_dir_all(&self.dir).map_err(err)?;
        let envelope = msg.envelope();
        let message_id = msg
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_string();
        let entry = Entry {
            version: 1,
            message_id: message_id.clone(),
            subject: subject.to_string(),
            envelope_from: envelope.from().map(|a| a.to_string()).unwrap_or_default(),
            envelope_to: envelope.to().iter().map(|a| a.to_string()).collect(),
            created_at: chrono::Utc::now().to_rfc3339(),
            raw: String::from_utf8_lossy(&msg.formatted()).into_owned(),
        };
        let json = serde_json::to_vec_pretty(&entry).expect("an outbox entry serialises");
        let stamp = queue_stamp().format("%Y%m%dT%H%M%S%.6fZ");
        let tag: String = message_id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .take(60)
            .collect();
        if let Some(queued) = self.find(&tag) {
            info!(report = %queued.display(), "this report is queued already");
            return Ok(queued);
        }
        let name = format!("{stamp}-{tag}.json");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(&name);
        let write = || -> io::Result<()> {
            // Owner-only: the sender refuses entries anyone else could have written.
            let mut f = {
                use std::os::unix::fs::OpenOptionsExt;
                fs::OpenOptions::new()
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .mode(0o600)
                    .open(&tmp)?
            };
            f.write_all(&json)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)?;
            File::open(&self.dir)?.sync_all()
        };
        write().map_err(err)?;
        Ok(path)
    }

    /// The entry (waiting, or being sent) of the message whose tag is `tag`, if any.
    fn find(&self, tag: &str) -> Option<PathBuf> {
        let suffix = format!("-{tag}.json");
        fs::read_dir(&self.dir)
            .ok()?
            .flatten()
            .map(|e| e.path())
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(&suffix))
            })
    }

    /// Reports waiting, oldest first.
    pub fn pending(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = fs::read_dir(&self.dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| {
                        p.extension().is_some_and(|x| x == "json")
                            && !p
                                .file_name()
                                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
                    })
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    pub fn len(&self) -> usize {
        self.pending().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The time an entry is queued, to the microsecond, strictly later than the last one this
/// process queued (even when the clock steps back), so that the outbox's name order is the
/// order reports were queued.
fn queue_stamp() -> chrono::DateTime<chrono::Utc> {
    use std::sync::atomic::{AtomicI64, Ordering};
    static LAST: AtomicI64 = AtomicI64::new(i64::MIN);
    let now = chrono::Utc::now().timestamp_micros();
    let prev = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    let stamp = now.max(prev.saturating_add(1));
    chrono::DateTime::from_timestamp_micros(stamp).unwrap_or_else(chrono::Utc::now)
}

/// The configured way out.
pub enum Mailer {
    Smtp(Box<AsyncSmtpTransport<Tokio1Executor>>),
    /// A folder of `.eml` files (created when missing), one per Message-ID: a report
    /// delivered again replaces its own file instead of adding a second.
    File(PathBuf),
}

/// True for a host that is this machine: `localhost`, 127.0.0.0/8, `::1`.
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// AUTH over an unencrypted connection is allowed only to this machine, unless configured.
pub fn check_auth_policy(s: &SmtpConfig) -> Result<(), MailError> {
    if !s.user.is_empty()
        && s.tls == SmtpTls::None
        && !is_loopback(&s.host)
        && !s.allow_insecure_auth
    {
        return Err(MailError::InsecureAuth(s.host.clone()));
    }
    Ok(())
}

/// The SMTP password: from the environment variable, else the file, else the systemd
/// credential. Never logged.
fn smtp_password(s: &SmtpConfig) -> Result<String, MailError> {
    crate::config::read_secret(&s.password_env, s.password_file.as_deref(), &s.password_credential)
        .map_err(MailError::Password)?
        .ok_or_else(|| {
            MailError::Password(format!(
                "report.smtp.user is set but no password was found (environment variable {}, password_file, or credential {})",
                s.password_env, s.password_credential
            ))
        })
}

impl Mailer {
    pub fn from_config(cfg: &ReportConfig) -> Result<Mailer, MailError> {
        match cfg.transport {
            TransportKind::File => Ok(Mailer::File(cfg.file.dir.clone())),
            TransportKind::Smtp => {
                let s = &cfg.smtp;
                check_auth_policy(s)?;
                let tls = if s.tls == SmtpTls::None {
                    Tls::None
                } else {
                    let mut b = TlsParameters::builder(s.host.clone());
                    if let Some(ca) = &s.ca_file {
                        let pem = fs::read(ca).map_err(|e| {
                            MailError::Tls(format!("cannot read {}: {e}", ca.display()))
                        })?;
                        let cert = Certificate::from_pem(&pem)
                            .map_err(|e| MailError::Tls(format!("{}: {e}", ca.display())))?;
                        b = b.add_root_certificate(cert);
                    }
                    let params = b
                        .build_rustls()
                        .map_err(|e| MailError::Tls(e.to_string()))?;
                    match s.tls {
                        SmtpTls::Tls => Tls::Wrapper(params),
                        _ => Tls::Required(params),
                    }
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.clone())
                    .port(s.port)
                    .tls(tls)
                    .timeout(Some(Duration::from_secs(s.timeout_secs.max(1))));
                if !s.user.is_empty() {
                    b = b.credentials(Credentials::new(s.user.clone(), smtp_password(s)?));
                }
                Ok(Mailer::Smtp(Box::new(b.build())))
            }
        }
    }

    async fn send_raw(
        &self,
        envelope: &Envelope,
        message_id: &str,
        raw: &[u8],
    ) -> Result<(), String> {
        match self {
            Mailer::Smtp(t) => t
                .send_raw(envelope, raw)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Mailer::File(dir) => write_eml(dir, message_id, raw)
                .map_err(|e| format!("cannot write a report into {}: {e}", dir.display())),
        }
    }

    /// Sends a message now, without the outbox (`votewatch send-test-email`).
    pub fn send_now(&self, msg: &Message) -> Result<(), String> {
        let id = msg
            .headers()
            .get_raw("Message-ID")
            .unwrap_or_default()
            .to_string();
        block_on(self.send_raw(msg.envelope(), &id, &msg.formatted()))
    }

    fn describe(&self) -> &'static str {
        match self {
            Mailer::Smtp(_) => "smtp",
            Mailer::File(_) => "file",
        }
    }
}

/// Writes `raw` as `<dir>/<Message-ID>.eml` (the ID's letters, digits, dots and dashes), whole
/// or not at all: to a temporary name, synced, then renamed over any earlier copy.
fn write_eml(dir: &Path, message_id: &str, raw: &[u8]) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    let mut stem: String = message_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .take(120)
        .collect();
    if stem.is_empty() {
        stem = format!("votewatch.{}", chrono::Utc::now().timestamp_micros());
    }
    let path = dir.join(format!("{stem}.eml"));
    let tmp = dir.join(format!(".{stem}.eml.tmp"));
    let mut f = File::create(&tmp)?;
    f.write_all(raw)?;
    f.sync_all()?;
    fs::rename(&tmp, &path)?;
    File::open(dir)?.sync_all()
}

/// Refuses an outbox entry that votewatch did not write: another owner, or writable by
/// anyone but its owner (whoever can write the outbox must not mail through our transport).
fn check_own_entry(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let m = fs::symlink_metadata(path)?;
    let me = rustix::process::geteuid().as_raw();
    if !m.file_type().is_file() || m.uid() != me || m.mode() & 0o022 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "not written by votewatch (owner uid {}, mode {:o}; expected uid {me}, not \
                 writable by group or others)",
                m.uid(),
                m.mode() & 0o7777
            ),
        ));
    }
    Ok(())
}

/// Claims an outbox entry for sending: renames it to a hidden name of this process, so that
/// another sender (a second process) cannot deliver it too. `None` when someone else took it.
fn claim_entry(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let claimed = path.with_file_name(format!(".sending-{}-{name}", std::process::id()));
    crate::archive::rename_noreplace(path, &claimed)
        .ok()
        .map(|()| claimed)
}

/// Puts back entries whose sender died while holding them (`.sending-<pid>-NAME` of a process
/// that no longer runs), so that they are sent.
fn release_orphans(outbox: &Outbox) {
    let Ok(dir) = fs::read_dir(outbox.dir()) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(".sending-") else {
            continue;
        };
        let Some((pid, original)) = rest.split_once('-') else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| p == std::process::id() || Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = crate::archive::rename_noreplace(&e.path(), &outbox.dir().join(original));
        }
    }
}

fn load_entry(path: &Path) -> io::Result<(Entry, Envelope)> {
    check_own_entry(path)?;
    let entry: Entry = serde_json::from_slice(&fs::read(path)?)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let parse = |a: &str| {
        a.parse::<lettre::Address>()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    };
    let from = Some(parse(&entry.envelope_from)?);
    let to = entry
        .envelope_to
        .iter()
        .map(|a| parse(a))
        .collect::<io::Result<Vec<_>>>()?;
    let envelope =
        Envelope::new(from, to).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    Ok((entry, envelope))
}

/// Retry bookkeeping of the reports in the outbox (kept in memory: after a restart every
/// pending report is tried at once).
#[derive(Debug, Default)]
pub struct Retries {
    state: HashMap<PathBuf, (u32, Instant)>,
}

/// What one pass over the outbox did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub failed: usize,
    pub waiting: usize,
}

/// Tries the pending reports in the order they were queued (oldest first, also across a
/// restart: the outbox's names begin with the time they were queued). A report that failed
/// and is not due again yet holds back every later one, and after a failure the rest wait for
/// the next pass (the server is likely down for them too), so that reports arrive in the order
/// they were written. A cancelled `stop` ends the pass between two messages: the one in hand
/// is finished.
pub async fn deliver_pending(
    outbox: &Outbox,
    mailer: &Mailer,
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
        let Some(claimed) = claim_entry(&path) else {
            continue;
        };
        let (entry, envelope) = match load_entry(&claimed) {
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
        match mailer
            .send_raw(&envelope, &entry.message_id, entry.raw.as_bytes())
            .await
        {
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
                let shift = (attempts - 1).min(20);
                let wait = Duration::from_millis(
                    cfg.retry_initial_ms
                        .saturating_mul(1 << shift)
                        .min(cfg.retry_max_ms),
                );
                retries.state.insert(path.clone(), (attempts, now + wait));
                if attempts == cfg.warn_after_attempts {
                    error!(subject = %entry.subject, attempts, outbox = %outbox.dir().display(), error = %e, "report still undelivered; it stays in the outbox and is retried");
                } else {
                    warn!(subject = %entry.subject, attempts, retry_ms = wait.as_millis() as u64, error = %e, "report delivery failed; will retry");
                }
                pass.failed += 1;
                blocked = true;
            }
        }
    }
    pass
}

/// When the oldest pending report is due, if any: the others wait behind it.
fn next_due(retries: &Retries, outbox: &Outbox) -> Option<Instant> {
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
    wake: Arc<Notify>,
}

impl Postman {
    /// Renders, stores and hands on a report. Never fails the caller: a report that cannot
    /// even be stored is logged in full instead.
    pub fn post(&self, cfg: &ReportConfig, report: &crate::report::BatchReport) {
        post(cfg, &Outbox::new(&cfg.outbox), report);
        self.wake.notify_one();
    }

    /// Stores and hands on one message that is not a batch report (a freshness alert).
    pub fn post_rendered(&self, cfg: &ReportConfig, rendered: &Rendered) {
        store(cfg, &Outbox::new(&cfg.outbox), rendered);
        self.wake.notify_one();
    }
}

/// Starts the sender task on `tracker`: it first tries every report already waiting, then
/// whatever is posted, follows the configuration in `config` (a SIGHUP), and ends when
/// `stop` is cancelled, after the message in hand.
pub fn start_sender(
    tracker: &TaskTracker,
    config: watch::Receiver<Arc<crate::config::Config>>,
    stop: CancellationToken,
) -> Postman {
    let wake = Arc::new(Notify::new());
    tracker.spawn(sender_task(config, wake.clone(), stop));
    Postman { wake }
}

async fn sender_task(
    mut config: watch::Receiver<Arc<crate::config::Config>>,
    wake: Arc<Notify>,
    stop: CancellationToken,
) {
    let mut cfg = config.borrow_and_update().report.clone();
    let mut retries = Retries::default();
    let mut mailer = build_mailer(&cfg);
    loop {
        let outbox = Outbox::new(&cfg.outbox);
        if let Some(m) = &mailer {
            deliver_pending(&outbox, m, &cfg, &mut retries, Instant::now(), &stop).await;
        }
        let wait = match (&mailer, next_due(&retries, &outbox)) {
            (Some(_), Some(at)) => at.saturating_duration_since(Instant::now()),
            // No usable transport: look again now and then (the log says why).
            (None, Some(_)) => Duration::from_millis(cfg.retry_max_ms),
            (_, None) => Duration::from_secs(3600),
        };
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
            }
            _ = tokio::time::sleep(wait.max(Duration::from_millis(10))) => {}
        }
        if mailer.is_none() {
            mailer = build_mailer(&cfg);
        }
    }
}

/// Renders a report under the configured mode and stores each message in the outbox.
/// Returns how many were stored.
pub fn post(cfg: &ReportConfig, outbox: &Outbox, report: &crate::report::BatchReport) -> usize {
    report
        .render(cfg.mode)
        .iter()
        .filter(|r| store(cfg, outbox, r))
        .count()
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

fn build_mailer(cfg: &ReportConfig) -> Option<Mailer> {
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
        let (entry, envelope) = load_entry(&path).unwrap();
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
                waiting: 0
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
