//! The operator's checks: `votewatch send-test-email` and `votewatch check-config`.

use super::*;
use crate::config::ReportConfig;
use crate::report::message;
use crate::report::transport::Mailer;
use std::io::Write;

/// Sends one message straight through the transport, bypassing the outbox.
pub fn send_test_email(cfg: &ReportConfig, out: &mut impl Write) -> u8 {
    let rendered = crate::report::Rendered {
        subject: "votewatch: test message".into(),
        text: "This is a test message from votewatch. Reports will arrive like this.\n".into(),
        html:
            "<p>This is a test message from <b>votewatch</b>. Reports will arrive like this.</p>\n"
                .into(),
        ..Default::default()
    };
    let result = message::build_message(cfg, &rendered)
        .map_err(|e| e.to_string())
        .and_then(|msg| {
            let mailer = Mailer::from_config(cfg).map_err(|e| e.to_string())?;
            mailer.send_now(&msg)
        });
    let target = match cfg.transport {
        crate::config::TransportKind::File => {
            format!("file transport, folder {}", cfg.file.dir.display())
        }
        crate::config::TransportKind::Smtp => format!(
            "smtp {}:{} ({:?})",
            cfg.smtp.host, cfg.smtp.port, cfg.smtp.tls
        ),
    };
    match result {
        Ok(()) => {
            let _ = writeln!(
                out,
                "sent a test message to {} through {target}",
                cfg.to.join(", ")
            );
            EXIT_OK
        }
        Err(e) => {
            let _ = writeln!(out, "could not send through {target}: {e}");
            EXIT_FILE_NOT_LOADED
        }
    }
}

/// `votewatch check-config`: one line per finding; `EXIT_FILE_NOT_LOADED` (1) when any is an
/// error.
pub fn check_config(path: Option<&std::path::Path>, out: &mut impl Write) -> u8 {
    use crate::ops::preflight::Level;
    let findings = crate::ops::preflight::check(path);
    for f in &findings {
        let level = match f.level {
            Level::Ok => "ok     ",
            Level::Warning => "warning",
            Level::Error => "error  ",
        };
        let _ = writeln!(out, "{level} {}: {}", f.key, f.message);
    }
    if findings.iter().any(|f| f.level == Level::Error) {
        EXIT_FILE_NOT_LOADED
    } else {
        EXIT_OK
    }
}
