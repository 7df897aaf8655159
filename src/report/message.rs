//! A rendered report as a mail message: text and HTML alternatives, the chart inline, and a
//! Message-ID that stays with the message (derived from the report's arrivals when it has them).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::Message;

use crate::config::ReportConfig;
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
                        Attachment::new_inline(crate::report::chart::CONTENT_ID.to_string()).body(
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

pub(crate) fn new_message_id(from: &Mailbox) -> String {
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
