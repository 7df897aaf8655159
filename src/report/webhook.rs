//! Webhook notifications: a JSON document per report, POSTed to a configured URL (votewatch's
//! own shape, or Slack's `text`/`blocks`), queued in an outbox of its own and delivered by the
//! sender task with the e-mail's retries and once-only rule. The URL (whose path is usually
//! the secret) never reaches a log or an error message.

use std::io;
use std::time::Duration;

use serde_json::{json, Value};

use super::outbox::Entry;
use super::{one_line, BatchReport, Rendered};
use crate::config::{WebhookConfig, WebhookFormat};
use crate::model::Status;

/// Where webhook documents wait, inside the report outbox.
pub fn outbox_dir(report_outbox: &std::path::Path) -> std::path::PathBuf {
    report_outbox.join("webhook")
}

/// Whether a batch is worth a notification: a file not loaded whole, or any batch when
/// `notify_on_success` is on.
pub fn wanted(report: &BatchReport, cfg: &WebhookConfig) -> bool {
    cfg.notify_on_success
        || report.preface.is_some()
        || report
            .files
            .iter()
            .any(|(o, _)| !matches!(o.status, Status::Loaded | Status::DuplicateFile))
}

/// The console page of ledger row `id`, when the console's address is configured.
fn link(cfg: &WebhookConfig, id: i64) -> Option<String> {
    let base = cfg.console_url.trim_end_matches('/');
    (!base.is_empty()).then(|| format!("{base}/loads/{id}"))
}

/// The document for a batch report.
pub fn document(report: &BatchReport, cfg: &WebhookConfig, id: &str) -> Value {
    let files: Vec<Value> = report
        .files
        .iter()
        .map(|(o, placed)| {
            let mut file = json!({
                "ledger_id": o.file_id,
                "file": o.name,
                "dataset": o.dataset.name(),
                "status": o.status.as_str(),
                "error": o.error,
                "moved_to": placed.as_ref().map(|p| p.display().to_string()),
                "link": link(cfg, o.file_id),
            });
            o.counts.add_to(&mut file);
            file
        })
        .collect();
    let subject = report.subject();
    match cfg.format {
        WebhookFormat::Json => json!({
            "id": id,
            "source": "votewatch",
            "kind": "batch",
            "subject": subject,
            "verdict": report.verdict(),
            "notes": report.preface.as_ref().map(|(_, p)| p.clone()).unwrap_or_default(),
            "outlier_weeks": report.outlier_weeks,
            "files": files,
            "console": console(cfg),
        }),
        WebhookFormat::Slack => {
            let mut lines = vec![format!("*{}*", slack(&report.verdict()))];
            if let Some((_, notes)) = &report.preface {
                lines.extend(notes.iter().map(|n| slack(n)));
            }
            for (o, _) in &report.files {
                let name = slack(&one_line(&o.name));
                let name = match link(cfg, o.file_id) {
                    Some(url) => format!("<{url}|{name}>"),
                    None => name,
                };
                let why = o
                    .error
                    .as_deref()
                    .map(|e| format!(" — {}", slack(&one_line(e))))
                    .unwrap_or_default();
                lines.push(format!(
                    "• {name} ({}): {}, {} read, {} inserted, {} rejected{why}",
                    o.dataset,
                    o.status.as_str().replace('_', " "),
                    o.counts.lines,
                    o.counts.inserted,
                    o.counts.rejected
                ));
            }
            slack_document(&subject, &lines)
        }
    }
}

/// The document for a message that is not a batch report (a freshness alert or its recovery).
pub fn notice_document(rendered: &Rendered, cfg: &WebhookConfig, id: &str) -> Value {
    match cfg.format {
        WebhookFormat::Json => json!({
            "id": id,
            "source": "votewatch",
            "kind": "notice",
            "subject": rendered.subject,
            "text": rendered.text,
            "console": console(cfg),
        }),
        WebhookFormat::Slack => {
            let lines: Vec<String> = rendered
                .text
                .lines()
                .filter(|l| !l.trim().is_empty())
                .take(20)
                .map(slack)
                .collect();
            slack_document(&rendered.subject, &lines)
        }
    }
}

fn console(cfg: &WebhookConfig) -> Option<String> {
    (!cfg.console_url.is_empty()).then(|| cfg.console_url.clone())
}

/// Slack's shape: `text` (the notification's line) and one section block of mrkdwn.
fn slack_document(subject: &str, lines: &[String]) -> Value {
    // A section's text holds at most 3000 characters.
    let mut body = lines.join("\n");
    if body.chars().count() > 2900 {
        body = body.chars().take(2900).collect::<String>() + "…";
    }
    json!({
        "text": slack(subject),
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": body}}
        ],
    })
}

/// Text made safe for Slack's mrkdwn: `&`, `<` and `>` escaped, so that a file name cannot
/// become a link or a mention.
fn slack(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The configured receiver, ready to POST.
pub struct Webhook {
    agent: ureq::Agent,
    url: String,
}

impl Webhook {
    /// Reads the URL (environment, file or credential) and the trusted roots. The error never
    /// holds the URL.
    pub fn from_config(cfg: &WebhookConfig) -> Result<Webhook, String> {
        let url = crate::config::read_secret(
            &cfg.url_env,
            cfg.url_file.as_deref(),
            &cfg.url_credential,
        )?
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .ok_or_else(|| {
            format!(
                "report.webhook is enabled but no URL was found (environment variable {}, url_file, or credential {})",
                cfg.url_env, cfg.url_credential
            )
        })?;
        check_url(&url)?;
        let roots = roots(cfg)?;
        let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .timeout_global(Some(Duration::from_secs(cfg.timeout_secs.max(1))))
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        Ok(Webhook { agent, url })
    }

    /// POSTs one stored document; a 2xx answer is delivered, anything else an error to retry.
    pub(crate) async fn send(&self, entry: &Entry) -> Result<(), String> {
        let agent = self.agent.clone();
        let url = self.url.clone();
        let body = entry.raw.clone();
        let key = entry.message_id.clone();
        let answer = tokio::task::spawn_blocking(move || {
            agent
                .post(&url)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", &key)
                .send(body.as_bytes())
                .map(|r| r.status().as_u16())
        })
        .await
        .map_err(|e| format!("the webhook's request did not finish: {e}"))?;
        match answer {
            Ok(code) if (200..300).contains(&code) => Ok(()),
            Ok(code) => Err(format!("the webhook answered HTTP {code}")),
            Err(e) => Err(describe(&e)),
        }
    }
}

/// Only HTTPS, or plain HTTP to this machine (a local relay, the tests).
fn check_url(url: &str) -> Result<(), String> {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") {
        return Ok(());
    }
    if let Some(rest) = lower.strip_prefix("http://") {
        let host_port = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if crate::config::is_loopback(host_port) {
            return Ok(());
        }
        return Err("the webhook URL must be https:// (plain http:// only to this machine)".into());
    }
    Err("the webhook URL must start with https://".into())
}

/// The roots a webhook's server certificate is checked against: the configured CA, else the
/// system's bundle, else the roots built in.
fn roots(cfg: &WebhookConfig) -> Result<ureq::tls::RootCerts, String> {
    const SYSTEM: &str = "/etc/ssl/certs/ca-certificates.crt";
    let (path, configured) = match &cfg.ca_file {
        Some(p) => (p.clone(), true),
        None => (std::path::PathBuf::from(SYSTEM), false),
    };
    let pem = match std::fs::read(&path) {
        Ok(pem) => pem,
        Err(e) if configured => return Err(format!("cannot read {}: {e}", path.display())),
        Err(_) => return Ok(ureq::tls::RootCerts::WebPki),
    };
    let certs: Vec<ureq::tls::Certificate<'static>> = ureq::tls::parse_pem(&pem)
        .filter_map(|item| match item {
            Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(ureq::tls::RootCerts::new_with_certs(&certs))
}

/// A failed request in words that never include the URL.
fn describe(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(_) => "the webhook did not answer in time".into(),
        ureq::Error::Io(io) if io.kind() == io::ErrorKind::ConnectionRefused => {
            "the webhook refused the connection".into()
        }
        ureq::Error::Io(io) => format!("cannot reach the webhook ({})", io.kind()),
        ureq::Error::HostNotFound => "the webhook's host name does not resolve".into(),
        ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::Pem(_) => {
            "TLS with the webhook failed (its certificate is not trusted, or the handshake broke)"
                .into()
        }
        _ => "the webhook request failed".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Counts, FileOutcome};

    fn outcome(name: &str, status: Status) -> FileOutcome {
        FileOutcome {
            file_id: 7,
            dataset: crate::datasets::Dataset::Votes,
            forced: false,
            path: name.into(),
            name: name.into(),
            status,
            counts: Counts {
                lines: 3,
                inserted: 2,
                rejected: 1,
                ..Counts::default()
            },
            unknown_fields: Vec::new(),
            error: Some("1 rejected".into()),
            duplicate_of: None,
            sha256: None,
            elapsed: Duration::ZERO,
            sample_rejects: Vec::new(),
            archived_to: None,
        }
    }

    #[test]
    fn only_files_not_loaded_whole_notify_unless_asked() {
        let mut cfg = WebhookConfig::default();
        let ok = BatchReport::new(vec![(outcome("a.jsonl", Status::Loaded), None)], None);
        let partial = BatchReport::new(vec![(outcome("b.jsonl", Status::Partial), None)], None);
        assert!(!wanted(&ok, &cfg));
        assert!(wanted(&partial, &cfg));
        cfg.notify_on_success = true;
        assert!(wanted(&ok, &cfg));
    }

    #[test]
    fn documents_carry_the_files_and_slack_escapes_names() {
        let mut cfg = WebhookConfig {
            console_url: "https://vw.example/".into(),
            ..WebhookConfig::default()
        };
        let name = "<!channel> <https://evil|x>.jsonl";
        let r = BatchReport::new(vec![(outcome(name, Status::Partial), None)], Some(2));
        let doc = document(&r, &cfg, "k1");
        assert_eq!(doc["id"], "k1");
        assert_eq!(doc["files"][0]["file"], name);
        assert_eq!(doc["files"][0]["status"], "partial");
        assert_eq!(doc["files"][0]["link"], "https://vw.example/loads/7");
        assert_eq!(doc["outlier_weeks"], 2);
        cfg.format = WebhookFormat::Slack;
        let doc = document(&r, &cfg, "k1");
        let text = doc["blocks"][0]["text"]["text"].as_str().unwrap();
        assert!(
            text.contains("&lt;!channel&gt; &lt;https://evil|x&gt;.jsonl"),
            "{text}"
        );
        assert!(!text.contains("<!channel>"), "{text}");
        assert!(text.contains("<https://vw.example/loads/7|"), "{text}");
        assert!(doc["text"].as_str().unwrap().contains("partial"), "{doc}");
    }

    #[test]
    fn plain_http_only_to_this_machine() {
        assert!(check_url("https://hooks.example.com/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://hooks.example.com/x").is_err());
        assert!(check_url("ftp://x").is_err());
    }
}
