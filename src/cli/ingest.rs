//! `votewatch ingest` (the same load as the daemon, a line per file, `--report`) and
//! `votewatch check` (the same load into a throwaway warehouse, for suppliers).

use super::*;
use crate::config::ReportConfig;
use crate::pipeline::load::{ingest_file, IngestError, IngestOptions};
use crate::report::outbox::Outbox;
use crate::report::sender::{self, Retries};
use crate::report::transport::Mailer;
use crate::report::BatchReport;
use crate::warehouse::Warehouse;
use std::io::Write;
use std::path::PathBuf;

/// Loads `files` in order, printing one line per file, then (with `report`) queues and tries
/// to deliver the status report. Returns the exit status.
pub fn ingest(
    wh: &mut Warehouse,
    files: &[PathBuf],
    opts: &IngestOptions,
    report: Option<&ReportConfig>,
    out: &mut impl Write,
) -> Result<u8, IngestError> {
    let mut status = EXIT_OK;
    let mut outcomes = Vec::new();
    for path in files {
        let outcome = ingest_file(wh, path, opts)?;
        let _ = writeln!(out, "{}", outcome_line(&outcome));
        if !outcome.status.is_handled() {
            status = EXIT_FILE_NOT_LOADED;
        }
        outcomes.push((outcome, None));
    }
    if let Some(cfg) = report {
        let weeks = wh.count_outlier_weeks().ok();
        let ids: Vec<i64> = outcomes.iter().map(|(o, _)| o.file_id).collect();
        let chart = wh.weekly_chart(&ids).ok().filter(|c| !c.weeks.is_empty());
        let outbox = Outbox::new(&cfg.outbox);
        let report = BatchReport::new(outcomes, weeks).with_chart(chart);
        let queued = sender::post(cfg, &outbox, &report);
        send_queued(cfg, queued, out);
    }
    Ok(status)
}

/// Tries to deliver the outbox now (after `queued` reports were put in it), and the webhook's
/// when one is enabled, and says how it went.
pub(super) fn send_queued(cfg: &ReportConfig, queued: usize, out: &mut impl Write) {
    let outbox = Outbox::new(&cfg.outbox);
    let line = match Mailer::from_config(cfg) {
        Ok(mailer) => {
            let pass = deliver_now(&outbox, &mailer, cfg);
            format!(
                "report: {queued} queued, {} delivered, {} waiting in {}",
                pass.sent,
                outbox.len(),
                outbox.dir().display()
            )
        }
        Err(e) => format!(
            "report: {queued} queued in {}, not sent: {e}",
            outbox.dir().display()
        ),
    };
    let _ = writeln!(out, "{line}");
    if cfg.webhook.enabled {
        let hooks = Outbox::new(&crate::report::webhook::outbox_dir(&cfg.outbox));
        let line = match crate::report::webhook::Webhook::from_config(&cfg.webhook) {
            Ok(hook) => {
                let pass = deliver_now(&hooks, &hook, cfg);
                let why = pass
                    .last_error
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default();
                format!(
                    "webhook: {} delivered, {} waiting in {}{why}",
                    pass.sent,
                    hooks.len(),
                    hooks.dir().display()
                )
            }
            Err(e) => format!("webhook: not sent: {e}"),
        };
        let _ = writeln!(out, "{line}");
    }
}

/// One delivery pass over `outbox` through `sink`, now, outside the daemon.
fn deliver_now<S: sender::Sink>(outbox: &Outbox, sink: &S, cfg: &ReportConfig) -> sender::Pass {
    sender::block_on(sender::deliver_pending(
        outbox,
        sink,
        cfg,
        &mut Retries::default(),
        std::time::Instant::now(),
        &tokio_util::sync::CancellationToken::new(),
    ))
}

/// `votewatch check`: what loading each file would report — records, rejects with line
/// numbers and reasons, unknown fields, verdict — from the same code as a load, run against a
/// throwaway warehouse in memory (one per file), so the real warehouse is never opened and no
/// lock is taken. Exit status: `EXIT_FILE_NOT_LOADED` when a file would not be loaded.
pub fn check(
    cfg: &crate::config::Config,
    files: &[PathBuf],
    dataset: Option<crate::datasets::Dataset>,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, IngestError> {
    let mut status = EXIT_OK;
    let mut opts = IngestOptions::new(cfg.ingest);
    opts.dataset = dataset;
    opts.names = Some(std::sync::Arc::new(cfg.dataset_names()));
    let mut reports = Vec::new();
    for path in files {
        let mut scratch = Warehouse::open_scratch(&cfg.warehouse)?;
        let o = ingest_file(&mut scratch, path, &opts)?;
        let verdict = match o.status {
            crate::model::Status::Loaded => "would load",
            crate::model::Status::Partial => "would load, with rejects",
            _ => "would not load",
        };
        if !o.status.is_handled() {
            status = EXIT_FILE_NOT_LOADED;
        }
        if json {
            let c = &o.counts;
            reports.push(serde_json::json!({
                "file": path.display().to_string(),
                "dataset": o.dataset.name(),
                "verdict": verdict,
                "status": o.status.as_str(),
                "records": c.lines,
                "duplicates_in_file": c.duplicates_in_file,
                "conflicting": c.conflicting,
                "rejected": c.rejected,
                "blank": c.blank,
                "unknown_fields": o.unknown_fields,
                "error": o.error,
                "sha256": o.sha256,
                "first_rejects": o.sample_rejects.iter().map(|r| serde_json::json!({
                    "line": r.line,
                    "element": r.element,
                    "reason": r.reason,
                })).collect::<Vec<_>>(),
            }));
            if let Some(obj) = reports.last_mut().and_then(|r| r.as_object_mut()) {
                // What the file would add: "votes" or "posts".
                obj.insert(o.dataset.name().into(), c.inserted.into());
            }
        } else {
            let c = &o.counts;
            let _ = writeln!(
                out,
                "{verdict:<24} {}  records {}  {} {}  duplicates {}  conflicting {}  rejected {}  blank {}",
                crate::text::path(path),
                c.lines,
                o.dataset,
                c.inserted,
                c.duplicates_in_file,
                c.conflicting,
                c.rejected,
                c.blank,
            );
            if let Some(error) = &o.error {
                let _ = writeln!(out, "    {}", crate::text::escape(error));
            }
            for r in &o.sample_rejects {
                let at = match r.element {
                    Some(e) => format!("line {} element {e}", r.line),
                    None => format!("line {}", r.line),
                };
                let _ = writeln!(out, "    reject {at}: {}", crate::text::escape(&r.reason));
            }
            if !o.unknown_fields.is_empty() {
                let _ = writeln!(
                    out,
                    "    unknown fields: {}",
                    crate::text::escape(&o.unknown_fields.join(", "))
                );
            }
        }
    }
    if json {
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&reports).unwrap_or_default()
        );
    }
    Ok(status)
}

/// `votewatch rebuild`: the archive journal's files loaded again into a new warehouse at
/// `target`, one line per file, then what could not be loaded again. Exit status:
/// `EXIT_FILE_NOT_LOADED` when a file was missing or changed.
pub fn rebuild(
    config: &crate::config::Config,
    warehouse: &crate::config::WarehouseConfig,
    target: &std::path::Path,
    out: &mut impl Write,
) -> anyhow::Result<u8> {
    let journal = crate::journal::Journal::in_folder(&config.paths.processed);
    if !journal.has_entries() {
        anyhow::bail!(
            "the archive journal {} names no file: nothing to rebuild from",
            journal.path().display()
        );
    }
    let mut opts = IngestOptions::new(config.ingest);
    opts.follow_symlinks = false;
    let rebuilt = crate::pipeline::rebuild::rebuild_into(warehouse, target, &journal, &opts)?;
    for (o, _) in &rebuilt.loaded {
        let _ = writeln!(out, "{}", outcome_line(o));
    }
    for line in rebuilt.summary(&journal) {
        let _ = writeln!(out, "{}", crate::text::escape(&line));
    }
    let _ = writeln!(out, "rebuilt {}", target.display());
    Ok(
        if rebuilt.not_loaded.is_empty() && rebuilt.unreadable_lines.is_empty() {
            EXIT_OK
        } else {
            EXIT_FILE_NOT_LOADED
        },
    )
}
