//! `votewatch unload` and `votewatch reingest`: taking a delivery back, loading a stored one
//! again.

use super::*;
use crate::config::ReportConfig;
use crate::pipeline::load::{ingest_file, IngestError, IngestOptions};
use crate::report::outbox::Outbox;
use crate::report::sender::{self};
use crate::report::BatchReport;
use crate::warehouse::Warehouse;
use std::io::Write;

/// Whether the stored bytes of a ledger row are still the ones it recorded (a row that
/// recorded none, because its file could not be read, has nothing to compare). `Err` says why
/// not.
pub(super) fn stored_bytes(row: &crate::model::LedgerFile) -> Result<std::path::PathBuf, String> {
    let path = row.stored_at();
    let digest = crate::pipeline::read::hash_file(&path).map_err(|e| {
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
    // The arrival's own dataset, whatever its name says now.
    let mut opts = opts.clone();
    opts.dataset = Some(row.dataset);
    let outcome = ingest_file(wh, &path, &opts)?;
    let _ = writeln!(out, "{}", outcome_line(&outcome));
    let handled = outcome.status.is_handled();
    // A reingest is reported like any arrival.
    let weeks = wh.count_outlier_weeks().ok();
    let queued = sender::post(
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
    if row.dataset != crate::datasets::Dataset::Votes {
        let _ = writeln!(
            out,
            "unload refused: ledger row {id} is a {} file; unload takes back votes files (a later {} file with other values replaces versions, keeping the old ones in {}_history)",
            row.dataset, row.dataset, row.dataset
        );
        return Ok(EXIT_FATAL);
    }
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
        for l in wh.later_loaded(id, range)? {
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
    let queued = usize::from(sender::store(&cfg.report, &outbox, &rendered));
    send_queued(&cfg.report, queued, out);
    Ok(EXIT_OK)
}
