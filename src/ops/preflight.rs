//! `votewatch check-config`: the configuration and what it points at, one finding per line —
//! the folders (exist or can be created, writable by this user, work/ on landing/'s file
//! system), the warehouse (opens), the mail transport (its settings make sense). The unit
//! runs it before the daemon starts.

use std::path::{Path, PathBuf};

use crate::config::{Config, TransportKind};

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Ok,
    Warning,
    Error,
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub level: Level,
    /// The configuration key (or part) the finding is about.
    pub key: String,
    pub message: String,
}

fn finding(level: Level, key: &str, message: impl Into<String>) -> Finding {
    Finding {
        level,
        key: key.to_string(),
        message: message.into(),
    }
}

/// The nearest existing folder at or above `dir`.
fn existing_ancestor(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors().find(|a| a.is_dir()).map(Path::to_path_buf)
}

fn writable(dir: &Path) -> bool {
    rustix::fs::access(
        dir,
        rustix::fs::Access::WRITE_OK | rustix::fs::Access::EXEC_OK,
    )
    .is_ok()
}

/// A folder votewatch writes: there and writable, or creatable.
fn folder(key: &str, dir: &Path) -> Finding {
    let shown = dir.display();
    if dir.is_dir() {
        if writable(dir) {
            finding(Level::Ok, key, format!("{shown}: exists, writable"))
        } else {
            finding(
                Level::Error,
                key,
                format!("{shown}: not writable by this user"),
            )
        }
    } else if dir.exists() {
        finding(
            Level::Error,
            key,
            format!("{shown}: exists but is not a folder"),
        )
    } else {
        match existing_ancestor(dir) {
            Some(a) if writable(&a) => finding(
                Level::Ok,
                key,
                format!("{shown}: missing; will be created (in {})", a.display()),
            ),
            Some(a) => finding(
                Level::Error,
                key,
                format!(
                    "{shown}: missing, and {} is not writable by this user",
                    a.display()
                ),
            ),
            None => finding(Level::Error, key, format!("{shown}: missing")),
        }
    }
}

fn device(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    existing_ancestor(dir).and_then(|a| std::fs::metadata(a).ok().map(|m| m.dev()))
}

/// Every finding about the configuration at `path` (or the default one).
pub fn check(path: Option<&Path>) -> Vec<Finding> {
    let config = match Config::load(path) {
        Ok(c) => c,
        Err(e) => return vec![finding(Level::Error, "configuration", e.to_string())],
    };
    let mut out = vec![finding(
        Level::Ok,
        "configuration",
        match path {
            Some(p) => format!("{}: valid", p.display()),
            None => "valid (the default)".to_string(),
        },
    )];
    out.extend(check_loaded(&config));
    out
}

fn check_loaded(c: &Config) -> Vec<Finding> {
    let p = &c.paths;
    let mut out = vec![
        folder("paths.landing", &p.landing),
        folder("paths.work", &p.work),
        folder("paths.processed", &p.processed),
        folder("paths.failed", &p.failed),
        folder("report.outbox", &c.report.outbox),
    ];
    if c.report.transport == TransportKind::File {
        out.push(folder("report.file.dir", &c.report.file.dir));
    }
    // A claim is a rename from landing/ into work/.
    match (device(&p.landing), device(&p.work)) {
        (Some(a), Some(b)) if a != b => out.push(finding(
            Level::Error,
            "paths.work",
            format!(
                "{} is not on the file system of paths.landing ({}): claims are renames",
                p.work.display(),
                p.landing.display()
            ),
        )),
        _ => out.push(finding(
            Level::Ok,
            "paths.work",
            "on the same file system as paths.landing",
        )),
    }
    out.push(match crate::warehouse::Warehouse::probe(&c.warehouse) {
        Ok(what) => finding(Level::Ok, "warehouse", what),
        Err(e) if e.is_locked() || e.is_unavailable() => finding(
            Level::Warning,
            "warehouse",
            format!("{e} (busy or unreachable now; the daemon waits for it)"),
        ),
        Err(e) => finding(Level::Error, "warehouse", e.to_string()),
    });
    if c.warehouse.kind == crate::config::WarehouseKind::Duckdb {
        if let Some(parent) = c
            .warehouse
            .path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            out.push(folder("warehouse.path (its folder)", parent));
        }
    }
    out.push(
        match crate::report::transport::Mailer::from_config(&c.report) {
            Ok(_) => finding(
                Level::Ok,
                "report",
                format!("{:?} transport configured", c.report.transport).to_lowercase(),
            ),
            Err(e) => finding(Level::Error, "report", e.to_string()),
        },
    );
    if c.report.webhook.enabled {
        out.push(
            match crate::report::webhook::Webhook::from_config(&c.report.webhook) {
                Ok(_) => finding(
                    Level::Ok,
                    "report.webhook",
                    "webhook configured (its URL found, its trusted roots read)",
                ),
                Err(e) => finding(Level::Error, "report.webhook", e),
            },
        );
    }
    let probe = crate::report::Rendered {
        subject: "check".into(),
        text: "check".into(),
        html: "<p>check</p>".into(),
        ..Default::default()
    };
    if let Err(e) = crate::report::message::build_message(&c.report, &probe) {
        out.push(finding(
            Level::Error,
            "report.from / report.to",
            e.to_string(),
        ));
    }
    out
}
