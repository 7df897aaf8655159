//! `[report]`: the e-mailed reports and the webhook — what is sent, how, and where its
//! secrets come from.

use std::path::PathBuf;

use serde::Deserialize;

/// One e-mail per batch (default) or one per file.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ReportMode {
    #[default]
    PerBatch,
    PerFile,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// Write each message as an .eml file into `report.file.dir`.
    #[default]
    File,
    Smtp,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain connection, then STARTTLS (required).
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
    /// No encryption (a relay on this host).
    None,
}

/// The e-mailed status reports.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    pub mode: ReportMode,
    pub from: String,
    pub to: Vec<String>,
    /// Reports are written here first and deleted once delivered.
    pub outbox: PathBuf,
    pub transport: TransportKind,
    /// First wait after a failed delivery; it doubles up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// After this many failed attempts a report is logged as stuck (it stays and is retried).
    pub warn_after_attempts: u32,
    pub file: FileTransportConfig,
    pub smtp: SmtpConfig,
    pub webhook: WebhookConfig,
}

/// What a webhook receives: votewatch's JSON document, or Slack's `text`/`blocks`.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    #[default]
    Json,
    Slack,
}

/// `[report.webhook]`: a POST of a JSON document per report, beside the e-mail, through an
/// outbox of its own (`<report.outbox>/webhook`) with the same retries and once-only delivery.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    pub enabled: bool,
    /// The URL (its path is often the secret) comes from this environment variable...
    pub url_env: String,
    /// ...or from this file...
    pub url_file: Option<PathBuf>,
    /// ...or from this systemd credential. Never logged.
    pub url_credential: String,
    pub format: WebhookFormat,
    /// The console's address as people reach it (`https://votewatch.example/`): the
    /// documents link each file to its page there. Empty: no links.
    pub console_url: String,
    /// Also notify when every file of a batch was loaded whole (default: only files that were
    /// not, and freshness alerts and their recoveries).
    pub notify_on_success: bool,
    /// A CA certificate (PEM) to trust instead of the system's roots.
    pub ca_file: Option<PathBuf>,
    pub timeout_secs: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: false,
            url_env: "VOTEWATCH_WEBHOOK_URL".into(),
            url_file: None,
            url_credential: "webhook-url".into(),
            format: WebhookFormat::Json,
            console_url: String::new(),
            notify_on_success: false,
            ca_file: None,
            timeout_secs: 10,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileTransportConfig {
    pub dir: PathBuf,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// Log in with this user; no AUTH when empty.
    pub user: String,
    /// The password comes from this environment variable...
    pub password_env: String,
    /// ...or from this file...
    pub password_file: Option<PathBuf>,
    /// ...or from this systemd credential (`$CREDENTIALS_DIRECTORY/NAME`).
    pub password_credential: String,
    pub timeout_secs: u64,
    /// Extra CA certificate (PEM) to trust, for a server with a private CA.
    pub ca_file: Option<PathBuf>,
    /// Allow AUTH over an unencrypted connection to a host other than this one.
    pub allow_insecure_auth: bool,
}

impl Default for ReportConfig {
    fn default() -> Self {
        ReportConfig {
            mode: ReportMode::PerBatch,
            from: "votewatch <votewatch@localhost>".into(),
            to: vec!["data-team@localhost".into()],
            outbox: PathBuf::from("outbox"),
            transport: TransportKind::File,
            retry_initial_ms: 1000,
            retry_max_ms: 300_000,
            warn_after_attempts: 5,
            file: FileTransportConfig::default(),
            smtp: SmtpConfig::default(),
            webhook: WebhookConfig::default(),
        }
    }
}

impl Default for FileTransportConfig {
    fn default() -> Self {
        FileTransportConfig {
            dir: PathBuf::from("reports"),
        }
    }
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: "localhost".into(),
            port: 587,
            tls: SmtpTls::Starttls,
            user: String::new(),
            password_env: "VOTEWATCH_SMTP_PASSWORD".into(),
            password_file: None,
            password_credential: "smtp-password".into(),
            timeout_secs: 30,
            ca_file: None,
            allow_insecure_auth: false,
        }
    }
}
