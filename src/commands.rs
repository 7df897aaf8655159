//! The on-demand commands: they call the same code as the daemon and print for people.

use std::io::Write;
use std::path::PathBuf;

use crate::config::ReportConfig;
use crate::ingest::{ingest_file, FileOutcome, IngestError, IngestOptions};
use crate::mail::{self, Mailer, Outbox, Retries};
use crate::report::BatchReport;
use crate::warehouse::{Warehouse, WarehouseError};

/// Exit status when every file was handled.
pub const EXIT_OK: u8 = 0;
/// Exit status when a file was rejected whole or could not be read.
pub const EXIT_FILE_NOT_LOADED: u8 = 1;
/// Exit status when the configuration or the warehouse is unusable.
pub const EXIT_FATAL: u8 = 2;

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
        let queued = mail::post(cfg, &outbox, &report);
        send_queued(cfg, queued, out);
    }
    Ok(status)
}

/// Tries to deliver the outbox now (after `queued` reports were put in it) and says how it went.
fn send_queued(cfg: &ReportConfig, queued: usize, out: &mut impl Write) {
    let outbox = Outbox::new(&cfg.outbox);
    let line = match Mailer::from_config(cfg) {
        Ok(mailer) => {
            let pass = mail::block_on(mail::deliver_pending(
                &outbox,
                &mailer,
                cfg,
                &mut Retries::default(),
                std::time::Instant::now(),
                &tokio_util::sync::CancellationToken::new(),
            ));
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
}

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
    let result = mail::build_message(cfg, &rendered)
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

/// The ledger by status, and the reports waiting in the outbox.
pub fn status(
    warehouse: &crate::config::WarehouseConfig,
    cfg: &ReportConfig,
    filter: &crate::warehouse::LedgerFilter,
    json: bool,
    out: &mut impl Write,
) -> u8 {
    let outbox = Outbox::new(&cfg.outbox);
    let waiting = outbox.len();
    if !json {
        let _ = writeln!(
            out,
            "reports waiting in the outbox ({}): {waiting}",
            outbox.dir().display()
        );
    }
    match Warehouse::open(warehouse) {
        Ok(wh) => match wh.status_counts(filter) {
            Ok(rows) if json => {
                let files: serde_json::Map<String, serde_json::Value> =
                    rows.into_iter().map(|(s, n)| (s, n.into())).collect();
                let doc = serde_json::json!({
                    "outbox": outbox.dir().display().to_string(),
                    "reports_waiting": waiting,
                    "files": files,
                });
                let _ = writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&doc).unwrap_or_default()
                );
                EXIT_OK
            }
            Ok(rows) => {
                for (status, n) in rows {
                    let _ = writeln!(out, "files {status}: {n}");
                }
                EXIT_OK
            }
            Err(e) => {
                let _ = writeln!(out, "{e}");
                EXIT_FATAL
            }
        },
        Err(e) => {
            let _ = writeln!(out, "{e}");
            EXIT_FATAL
        }
    }
}

/// `STATUS  NAME  read N  inserted N  duplicates N  already N  conflicting N  rejected N
/// blank N  0.12s`, then the reason when there is one.
pub fn outcome_line(o: &FileOutcome) -> String {
    let c = &o.counts;
    let mut line = format!(
        "{:<14} {}  read {}  inserted {}  duplicates {}  already {}  conflicting {}  rejected {}  blank {}  {:.2}s  (ledger {})",
        o.status.as_str(),
        crate::text::path(&o.path),
        c.lines,
        c.inserted,
        c.duplicates_in_file,
        c.already_in_warehouse,
        c.conflicting,
        c.rejected,
        c.blank,
        o.elapsed.as_secs_f64(),
        o.file_id,
    );
    if let Some(error) = &o.error {
        line.push_str(&format!(
            "\n    {}: {}",
            crate::text::path(&o.path),
            crate::text::escape(error)
        ));
    }
    if !o.unknown_fields.is_empty() {
        line.push_str(&format!(
            "\n    unknown fields: {}",
            crate::text::escape(&o.unknown_fields.join(", "))
        ));
    }
    line
}

/// Recreates the view and prints it.
pub fn outliers(wh: &Warehouse, out: &mut impl Write) -> Result<u8, WarehouseError> {
    wh.refresh_view()?;
    let rows: Vec<Vec<String>> = wh
        .outlier_weeks()?
        .iter()
        .map(|w| vec![w.year.to_string(), w.week.to_string(), w.votes.to_string()])
        .collect();
    let _ = write!(
        out,
        "{}",
        table(&["Year", "WeekNumber", "VoteCount"], &rows)
    );
    let _ = writeln!(out, "({} rows)", rows.len());
    Ok(EXIT_OK)
}

/// `votewatch maintain`: tidies the warehouse and says what changed.
pub fn maintain(
    wh: &Warehouse,
    retention_days: u32,
    out: &mut impl Write,
) -> Result<u8, WarehouseError> {
    let (before, after) = wh.maintain(retention_days)?;
    let line = if wh.is_lake() {
        format!(
            "lake maintained: {before} data files before, {after} after; snapshots and unreferenced files older than {retention_days} days removed"
        )
    } else {
        "warehouse checkpointed (a DuckDB file needs nothing else)".to_string()
    };
    let _ = writeln!(out, "{line}");
    Ok(EXIT_OK)
}

/// `votewatch check`: what loading each file would report — records, rejects with line
/// numbers and reasons, unknown fields, verdict — from the same code as a load, run against a
/// throwaway warehouse in memory (one per file), so the real warehouse is never opened and no
/// lock is taken. Exit status: `EXIT_FILE_NOT_LOADED` when a file would not be loaded.
pub fn check(
    cfg: &crate::config::Config,
    files: &[PathBuf],
    json: bool,
    out: &mut impl Write,
) -> Result<u8, IngestError> {
    let mut status = EXIT_OK;
    let opts = IngestOptions::new(cfg.ingest);
    let mut reports = Vec::new();
    for path in files {
        let mut scratch = Warehouse::open_scratch(&cfg.warehouse)?;
        let o = ingest_file(&mut scratch, path, &opts)?;
        let verdict = match o.status {
            crate::warehouse::Status::Loaded => "would load",
            crate::warehouse::Status::Partial => "would load, with rejects",
            _ => "would not load",
        };
        if !o.status.is_handled() {
            status = EXIT_FILE_NOT_LOADED;
        }
        if json {
            let c = &o.counts;
            reports.push(serde_json::json!({
                "file": path.display().to_string(),
                "verdict": verdict,
                "status": o.status.as_str(),
                "records": c.lines,
                "votes": c.inserted,
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
        } else {
            let c = &o.counts;
            let _ = writeln!(
                out,
                "{verdict:<24} {}  records {}  votes {}  duplicates {}  conflicting {}  rejected {}  blank {}",
                crate::text::path(path),
                c.lines,
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

/// Whether the stored bytes of a ledger row are still the ones it recorded (a row that
/// recorded none, because its file could not be read, has nothing to compare). `Err` says why
/// not.
fn stored_bytes(row: &crate::warehouse::LedgerFile) -> Result<std::path::PathBuf, String> {
    let path = row.stored_at();
    let digest = crate::input::hash_file(&path).map_err(|e| {
        format!(
            "the file of ledger row {} ({}) cannot be read: {e}",
            row.id,
            crate::text::path(&path)
        )
    })?;
    match &row.sha256 {
        Some(recorded) if *recorded == digest.sha256 => Ok(path),
        Some(_) => Err(format!(
            "the file of ledger row {} ({}) no longer has the content it was recorded with (its SHA-256 changed)",
            row.id,
            crate::text::path(&path)
        )),
        // Nothing to compare with: the file could not be read when it arrived.
        None => Ok(path),
    }
}

/// `votewatch reingest ID`: loads the stored file of a ledger row again as a new arrival, once
/// its bytes are checked against the recorded SHA-256. Refused for a row whose votes are in
/// the warehouse (unload it first).
pub fn reingest(
    wh: &mut Warehouse,
    id: i64,
    opts: &IngestOptions,
    report: &ReportConfig,
    out: &mut impl Write,
) -> Result<u8, IngestError> {
    let refuse = |out: &mut dyn Write, why: String| {
        let _ = writeln!(out, "reingest refused: {}", crate::text::escape(&why));
        EXIT_FATAL
    };
    let Some(row) = wh.ledger_file(id)? else {
        return Ok(refuse(out, format!("there is no ledger row {id}")));
    };
    if matches!(row.status.as_str(), "loaded" | "partial") && !row.unloaded {
        return Ok(refuse(
            out,
            format!("ledger row {id} is {}: its votes are in the warehouse (votewatch unload {id} first)", row.status),
        ));
    }
    let path = match stored_bytes(&row) {
        Ok(p) => p,
        Err(why) => return Ok(refuse(out, why)),
    };
    let outcome = ingest_file(wh, &path, opts)?;
    let _ = writeln!(out, "{}", outcome_line(&outcome));
    let handled = outcome.status.is_handled();
    // A reingest is reported like any arrival.
    let weeks = wh.count_outlier_weeks().ok();
    let queued = mail::post(
        report,
        &Outbox::new(&report.outbox),
        &BatchReport::new(vec![(outcome, None)], weeks),
    );
    send_queued(report, queued, out);
    Ok(if handled {
        EXIT_OK
    } else {
        EXIT_FILE_NOT_LOADED
    })
}

/// `votewatch unload ID`: removes the votes a ledger row brought, in one transaction, and
/// says what that means for later deliveries of the same Ids, read again from their stored
/// files (each through a throwaway warehouse, as `check` does).
pub fn unload(
    wh: &mut Warehouse,
    cfg: &crate::config::Config,
    id: i64,
    reason: Option<&str>,
    reload_later: bool,
    dry_run: bool,
    out: &mut impl Write,
) -> Result<u8, IngestError> {
    let Some(row) = wh.ledger_file(id)? else {
        let _ = writeln!(out, "unload refused: there is no ledger row {id}");
        return Ok(EXIT_FATAL);
    };
    if row.unloaded || !matches!(row.status.as_str(), "loaded" | "partial") {
        let state = if row.unloaded {
            "unloaded already"
        } else {
            row.status.as_str()
        };
        let _ = writeln!(
            out,
            "unload refused: ledger row {id} is {state}: it has no votes to remove"
        );
        return Ok(EXIT_FATAL);
    }
    let opts = IngestOptions::new(cfg.ingest);
    let mut later = Vec::new();
    let mut unreadable = 0u64;
    // Only later votes with Ids in the range the file held can meet its Ids; a file that holds
    // none needs no later file read.
    if let Some(range) = wh.vote_id_range(id)? {
        for l in wh.later_loaded(id)? {
            match stored_bytes(&l) {
                Ok(path) => {
                    let mut scratch = Warehouse::open_scratch(&cfg.warehouse)?;
                    ingest_file(&mut scratch, &path, &opts)?;
                    later.extend(scratch.votes_as(l.id, range)?);
                }
                Err(why) => {
                    unreadable += 1;
                    let _ = writeln!(out, "note: {}", crate::text::escape(&why));
                }
            }
        }
    }
    let c = wh.unload(id, reason, later, unreadable, reload_later, dry_run)?;
    let verb = if dry_run { "would remove" } else { "removed" };
    let _ = writeln!(
        out,
        "ledger row {id} ({}): {verb} {} votes",
        crate::text::escape(&row.file_name),
        c.votes_removed
    );
    let _ = writeln!(
        out,
        "later files had delivered {} of those Ids again: {} counted as already in the warehouse, {} as conflicting{}",
        c.later_already + c.later_conflicting,
        c.later_already,
        c.later_conflicting,
        if c.later_unreadable > 0 {
            format!(" ({} later files could not be read again)", c.later_unreadable)
        } else {
            String::new()
        }
    );
    if reload_later {
        let verb = if dry_run { "would load" } else { "loaded" };
        let _ = writeln!(
            out,
            "{verb} {} freed Ids again from later files (first wins)",
            c.reloaded
        );
    } else if c.later_already + c.later_conflicting > 0 {
        let _ = writeln!(out, "those Ids are no longer in the warehouse; --reload-later loads them from the later files");
    }
    if dry_run {
        let _ = writeln!(out, "dry run: nothing changed");
        return Ok(EXIT_OK);
    }
    // An unload is reported: what was removed and what it meant for later deliveries.
    let subject = format!(
        "votewatch: {} unloaded — {} votes removed",
        crate::report::one_line(&row.file_name),
        c.votes_removed
    );
    let text = format!(
        "Ledger row {id} ({}) was unloaded{}.\n{} votes removed; later files had delivered {} of those Ids again ({} counted as already in the warehouse, {} as conflicting); {} loaded again from them; {} later files could not be read again.\n",
        crate::report::one_line(&row.file_name),
        reason.map(|r| format!(": {}", crate::report::one_line(r))).unwrap_or_default(),
        c.votes_removed,
        c.later_already + c.later_conflicting,
        c.later_already,
        c.later_conflicting,
        c.reloaded,
        c.later_unreadable,
    );
    let rendered = crate::report::Rendered {
        html: format!("<p>{}</p>\n", html_escape::encode_text(&text)),
        subject,
        text,
        ..Default::default()
    };
    let outbox = Outbox::new(&cfg.report.outbox);
    let queued = usize::from(mail::store(&cfg.report, &outbox, &rendered));
    send_queued(&cfg.report, queued, out);
    Ok(EXIT_OK)
}

/// `votewatch check-config`: one line per finding; `EXIT_FILE_NOT_LOADED` (1) when any is an
/// error.
pub fn check_config(path: Option<&std::path::Path>, out: &mut impl Write) -> u8 {
    use crate::preflight::Level;
    let findings = crate::preflight::check(path);
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

/// Parses `--since`: a UTC date (`2026-11-01`), date and time (`2026-11-01T10:00:00`, `Z` or
/// an offset allowed), or an age (`36h`, `7d`, `90m`). Returns microseconds since the epoch.
pub fn parse_since(text: &str, now: chrono::DateTime<chrono::Utc>) -> Result<i64, String> {
    let t = text.trim();
    let age = |n: &str, unit: i64| -> Option<i64> {
        n.parse::<i64>()
            .ok()
            .map(|n| now.timestamp_micros() - n * unit * 1_000_000)
    };
    let parsed = if let Some(n) = t.strip_suffix('d') {
        age(n, 86_400)
    } else if let Some(n) = t.strip_suffix('h') {
        age(n, 3_600)
    } else if let Some(n) = t.strip_suffix('m') {
        age(n, 60)
    } else if let Ok(d) = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .map(|d| d.and_utc().timestamp_micros())
    } else if let Ok(d) = chrono::DateTime::parse_from_rfc3339(t) {
        Some(d.timestamp_micros())
    } else {
        chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S")
            .ok()
            .map(|d| d.and_utc().timestamp_micros())
    };
    parsed.ok_or_else(|| {
        format!("--since {text:?}: expected a date (2026-11-01), a UTC date and time (2026-11-01T10:00:00) or an age (36h, 7d, 90m)")
    })
}

/// Prints the ledger, newest first (as a table, or one JSON array).
pub fn history(
    wh: &Warehouse,
    limit: u64,
    filter: &crate::warehouse::LedgerFilter,
    json: bool,
    out: &mut impl Write,
) -> Result<u8, WarehouseError> {
    let history = wh.history(limit, filter)?;
    if json {
        let doc: Vec<serde_json::Value> = history
            .iter()
            .map(|h| {
                let c = &h.counts;
                serde_json::json!({
                    "id": h.id,
                    "started_utc": h.started,
                    "status": h.status,
                    "file": h.file_name,
                    "read": c.lines,
                    "inserted": c.inserted,
                    "duplicates_in_file": c.duplicates_in_file,
                    "already_in_warehouse": c.already_in_warehouse,
                    "conflicting": c.conflicting,
                    "rejected": c.rejected,
                    "blank": c.blank,
                    "millis": h.millis,
                    "error": (!h.error.is_empty()).then_some(&h.error),
                    "duplicate_of": h.duplicate_of,
                })
            })
            .collect();
        let _ = writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        );
        return Ok(EXIT_OK);
    }
    let rows: Vec<Vec<String>> = history
        .into_iter()
        .map(|h| {
            let c = h.counts;
            let note = match h.duplicate_of {
                Some(d) if h.error.is_empty() => format!("same content as {d}"),
                _ => crate::text::escape(&h.error).into_owned(),
            };
            vec![
                h.id.to_string(),
                h.started,
                h.status,
                crate::text::escape(&h.file_name).into_owned(),
                c.lines.to_string(),
                c.inserted.to_string(),
                c.duplicates_in_file.to_string(),
                c.already_in_warehouse.to_string(),
                c.conflicting.to_string(),
                c.rejected.to_string(),
                format!("{:.2}s", h.millis as f64 / 1000.0),
                note,
            ]
        })
        .collect();
    let _ = write!(
        out,
        "{}",
        table(
            &[
                "id",
                "started (UTC)",
                "status",
                "file",
                "read",
                "inserted",
                "dups",
                "already",
                "conflicting",
                "rejected",
                "time",
                "note"
            ],
            &rows
        )
    );
    Ok(EXIT_OK)
}

/// Left-aligned text columns, numbers right-aligned.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    // A number, or a duration such as "0.12s".
    let is_number = |cell: &str| {
        cell.strip_suffix('s')
            .unwrap_or(cell)
            .parse::<f64>()
            .is_ok()
    };
    let numeric: Vec<bool> = (0..header.len())
        .map(|i| !rows.is_empty() && rows.iter().all(|r| is_number(&r[i])))
        .collect();
    let render = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .zip(&numeric)
            .map(|((cell, w), num)| {
                if *num {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut s = render(header.to_vec());
    s += &render(
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .iter()
            .map(String::as_str)
            .collect(),
    );
    for row in rows {
        s += &render(row.iter().map(String::as_str).collect());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::table;

    #[test]
    fn table_aligns_numbers_right() {
        let t = table(
            &["Year", "Name"],
            &[
                vec!["2017".into(), "a".into()],
                vec!["9".into(), "bcd".into()],
            ],
        );
        assert_eq!(t, "Year  Name\n----  ----\n2017  a\n   9  bcd\n");
    }
}
