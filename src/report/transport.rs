//! The ways out: SMTP (lettre, STARTTLS or TLS, a password from the environment, a file or
//! a systemd credential) or a folder of `.eml` files, one per Message-ID.

use std::fs::{self, File};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::message::*;
use super::sender::*;
use crate::config::{ReportConfig, SmtpConfig, SmtpTls, TransportKind};

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
pub(crate) fn smtp_password(s: &SmtpConfig) -> Result<String, MailError> {
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

    pub(crate) async fn send_raw(
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

    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Mailer::Smtp(_) => "smtp",
            Mailer::File(_) => "file",
        }
    }
}

/// Writes `raw` as `<dir>/<Message-ID>.eml` (the ID's letters, digits, dots and dashes), whole
/// or not at all: to a temporary name, synced, then renamed over any earlier copy.
pub(crate) fn write_eml(dir: &Path, message_id: &str, raw: &[u8]) -> io::Result<()> {
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
