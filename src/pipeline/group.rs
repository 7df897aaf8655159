//! Group commit: small files loaded together in one transaction, each still its own arrival
//! (ledger row, counts, rejects, archive destination, report row) with exactly the outcome
//! its own transaction would have had, in the order given.
//!
//! Every file is read, validated and judged before the shared transaction begins: one that
//! cannot be read or is refused is decided then (its ledger row is all it brings), one that
//! turns out larger than the group's room or changes while it is read leaves the group and is
//! loaded alone. Inside the transaction nothing can fail for one file's sake; if anything
//! fails, all of it rolls back and the caller loads each file alone.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::config::IngestConfig;
use crate::datasets::votes::arrow::{key_column, parsed_schema, staged_rows};
use crate::datasets::votes::Vote;
use crate::model::{FileOutcome, LedgerEntry, RejectRow};
use crate::pipeline::load::{
    duplicate, judged, log_outcome, new_entry, now_micros, outcome_of, plan_archive, read_into,
    unreadable, IngestError, IngestOptions,
};
use crate::pipeline::read::{Changed, Digest256, Source};
use crate::pipeline::route::{parse_guarded, read_limits, Tally};
use crate::warehouse::{Finish, GroupRow, Warehouse};

/// A file of a group, read whole before the shared transaction.
struct Member {
    path: PathBuf,
    entry: LedgerEntry,
    /// The file's bytes as read (`None`: it could not be read, and its row is decided).
    digest: Option<Digest256>,
    /// Its valid records, in file order.
    rows: Vec<Vote>,
    /// The rejects to store (the first `max_stored_rejects`), and the first few for the report.
    rejects: Vec<RejectRow>,
    samples: Vec<RejectRow>,
    /// Its rejects are stored with its ledger row (a file read to the end that is not a
    /// duplicate of earlier content).
    store_rejects: bool,
    /// The highest vote Id after it, for a file whose load ran to the end.
    max_vote_id: Option<i64>,
}

/// Why a file left the group: it is loaded alone.
enum Left {
    /// More records than the group has room for.
    TooLarge,
    /// It changed while it was read.
    Changed,
    /// A stop was requested while it was read.
    Stopped,
}

/// What a group load did: the outcome of every file it recorded, in the order given, and the
/// files it left to be loaded alone (in the order given).
pub struct GroupResult {
    pub outcomes: Vec<FileOutcome>,
    pub alone: Vec<PathBuf>,
}

/// Loads `paths` in one transaction. `max_rows`: the most records the group's files may hold
/// together (a file that would take more is loaded alone). `Err`: nothing of the group was
/// recorded (the warehouse failed, or a stop was requested); the caller may load each file
/// alone.
pub fn ingest_group(
    wh: &mut Warehouse,
    paths: &[PathBuf],
    opts: &IngestOptions,
    max_rows: usize,
) -> Result<GroupResult, IngestError> {
    let clock = Instant::now();
    let mut members = Vec::with_capacity(paths.len());
    let mut alone = Vec::new();
    let mut room = max_rows;
    for path in paths {
        match read_member(path, opts, room) {
            Ok(m) => {
                room = room.saturating_sub(m.entry.counts.lines as usize);
                members.push(m);
            }
            Err(Left::Stopped) => return Err(IngestError::Stopped),
            Err(Left::TooLarge | Left::Changed) => alone.push(path.clone()),
        }
    }
    if members.is_empty() {
        return Ok(GroupResult {
            outcomes: Vec::new(),
            alone,
        });
    }
    let read_in = clock.elapsed();
    let mut group = wh.begin_group()?;
    let begun_in = clock.elapsed();
    // The last look before the commit, as for a file alone: one written since it was read
    // is read again, alone.
    members.retain(|m| match &m.digest {
        Some(d) if d.still_matches(&m.path, opts.follow_symlinks).is_err() => {
            alone.push(m.path.clone());
            false
        }
        _ => true,
    });
    let ids = group.ledger_ids(members.len())?;
    let hashes: Vec<&str> = members
        .iter()
        .filter(|m| m.digest.is_some())
        .filter_map(|m| m.entry.sha256.as_deref())
        .collect();
    let loaded = match opts.force {
        true => HashMap::new(),
        false => group.loaded_contents(&hashes)?,
    };
    let mut lookups: Vec<i64> = members
        .iter()
        .filter(|m| m.digest.is_some())
        .flat_map(|m| m.rows.iter().map(|v| v.id))
        .filter(|&id| id <= group.max_id)
        .collect();
    lookups.sort_unstable();
    lookups.dedup();
    let present = group.present(&lookups)?;
    let Resolved { votes, max_after } = resolve(
        &mut members,
        &ids,
        group.max_id,
        &present,
        &loaded,
        &opts.limits,
        opts.force,
    );
    for m in &mut members {
        m.entry.finished_at = now_micros();
        plan_archive(&mut m.entry, opts);
    }
    if opts.stop_requested() {
        return Err(IngestError::Stopped);
    }
    let rows: Vec<GroupRow<'_>> = members
        .iter()
        .zip(&ids)
        .map(|(m, &file_id)| GroupRow {
            file_id,
            entry: &m.entry,
            max_vote_id: m.max_vote_id,
        })
        .collect();
    let rejects: Vec<(i64, &RejectRow)> = members
        .iter()
        .zip(&ids)
        .filter(|(m, _)| m.store_rejects)
        .flat_map(|(m, &id)| m.rejects.iter().map(move |r| (id, r)))
        .collect();
    let resolved_in = clock.elapsed();
    group.commit(&rows, &votes, &rejects, max_after)?;
    tracing::debug!(
        files = rows.len(),
        read_ms = read_in.as_millis() as u64,
        begin_ms = (begun_in - read_in).as_millis() as u64,
        resolve_ms = (resolved_in - begun_in).as_millis() as u64,
        commit_ms = (clock.elapsed() - resolved_in).as_millis() as u64,
        "group phases"
    );
    drop(rows);
    drop(rejects);
    let outcomes = members
        .into_iter()
        .zip(ids)
        .map(|(m, file_id)| {
            let o = outcome_of(m.entry, file_id, &m.path, m.samples, clock);
            log_outcome(&o);
            o
        })
        .collect();
    Ok(GroupResult { outcomes, alone })
}

/// Reads and validates one file whole, holding at most `room` records.
fn read_member(path: &Path, opts: &IngestOptions, room: usize) -> Result<Member, Left> {
    let mut member = Member {
        path: path.to_path_buf(),
        entry: new_entry(path, opts),
        digest: None,
        rows: Vec::new(),
        rejects: Vec::new(),
        samples: Vec::new(),
        store_rejects: false,
        max_vote_id: None,
    };
    let source = match Source::open(path, opts.follow_symlinks) {
        Ok(s) => s,
        Err(e) => {
            member.entry.error = Some(format!("cannot read {}: {e}", member.entry.file_name));
            return Ok(member);
        }
    };
    let compression = source.compression;
    let keep = AtomicBool::new(true);
    let schema = parsed_schema();
    let max_stored = opts.limits.max_stored_rejects;
    let mut tally = Tally::default();
    let mut failure = None;
    let mut too_large = false;
    let read = source.read_records(read_limits(opts), |chunk| {
        if opts.stop_requested() {
            return false;
        }
        let mut parsed = match parse_guarded(&chunk, &opts.limits, &schema, &keep) {
            Ok(p) => p,
            Err(why) => {
                failure = Some(why);
                return false;
            }
        };
        let store = tally.add(&mut parsed.records, max_stored, &keep);
        member.rejects.extend(parsed.records.rejects.drain(..store));
        if let Some(batch) = &parsed.votes {
            tally.widen(key_column(batch).values());
            member.rows.extend(staged_rows(batch).map(|(_, v)| v));
        }
        too_large = tally.counts.lines as usize > room;
        !too_large
    });
    match read {
        Ok((layout, digest)) => {
            read_into(&mut member.entry, &digest, layout, compression, &tally);
            member.digest = Some(digest);
            member.samples = tally.samples;
            Ok(member)
        }
        Err(_) if opts.stop_requested() => Err(Left::Stopped),
        Err(_) if too_large => Err(Left::TooLarge),
        Err(e) if Changed::is(&e) => Err(Left::Changed),
        Err(e) => {
            let e = failure.map(std::io::Error::other).unwrap_or(e);
            member.entry = unreadable(member.entry, path, &e, tally.counts);
            member.samples = tally.samples;
            member.rows = Vec::new();
            member.rejects = Vec::new();
            Ok(member)
        }
    }
}

/// What the group brings to the warehouse: its new votes with their files' ledger ids, and
/// the highest vote Id after it.
struct Resolved {
    votes: Vec<(Vote, i64)>,
    max_after: i64,
}

/// Decides each file's outcome in order, as its own transaction would have, given the
/// warehouse as it was when the group began (`max_before`, `present`: its rows for the Ids
/// at or below it, `loaded`: the first loaded arrival of each content). The files before
/// one count as the warehouse for it: their new rows, their contents.
fn resolve(
    members: &mut [Member],
    ids: &[i64],
    max_before: i64,
    present: &HashMap<i64, Vote>,
    loaded: &HashMap<String, i64>,
    limits: &IngestConfig,
    force: bool,
) -> Resolved {
    let mut inserted: HashMap<i64, Vote> = HashMap::new();
    let mut loaded_here: HashMap<String, i64> = HashMap::new();
    let mut votes = Vec::new();
    let mut max_id = max_before;
    for (m, &file_id) in members.iter_mut().zip(ids) {
        let (Some(digest), Some(sha)) = (&m.digest, m.entry.sha256.clone()) else {
            continue;
        };
        let earlier = loaded.get(&sha).or_else(|| loaded_here.get(&sha));
        if let (false, Some(&earlier)) = (force, earlier) {
            duplicate(&mut m.entry, &sha, earlier);
            continue;
        }
        m.store_rejects = true;
        if judged(&mut m.entry, digest.size, limits, &m.samples) == Finish::RecordOnly {
            m.max_vote_id = Some(max_id);
            continue;
        }
        let mut c = m.entry.counts;
        let mut first: HashMap<i64, Vote> = HashMap::with_capacity(m.rows.len());
        for v in &m.rows {
            match first.entry(v.id) {
                // A repeat within the file: the first copy won.
                Entry::Occupied(w) if w.get() == v => c.duplicates_in_file += 1,
                Entry::Occupied(_) => c.conflicting += 1,
                Entry::Vacant(slot) => {
                    slot.insert(*v);
                    match inserted.get(&v.id).or_else(|| present.get(&v.id)) {
                        Some(held) if held == v => c.already_in_warehouse += 1,
                        Some(_) => c.conflicting += 1,
                        None => {
                            c.inserted += 1;
                            inserted.insert(v.id, *v);
                            votes.push((*v, file_id));
                            max_id = max_id.max(v.id);
                        }
                    }
                }
            }
        }
        m.entry.counts = c;
        m.max_vote_id = Some(max_id);
        loaded_here.entry(sha).or_insert(file_id);
    }
    Resolved {
        votes,
        max_after: max_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::WarehouseConfig;
    use crate::model::Status;
    use crate::pipeline::load::ingest_file;

    use crate::testing::synth::Rng;

    /// A small file of one of the shapes a group meets: votes with Ids in a narrow range (so
    /// that files repeat and contradict each other and the warehouse), repeats inside a file,
    /// bad records (a partial file, or one rejected whole), a copy of an earlier file, an
    /// empty file, a file that cannot be decompressed.
    fn random_file(rng: &mut Rng, earlier: &[Vec<u8>]) -> (String, Vec<u8>) {
        let shape = rng.below(12);
        if shape == 0 && !earlier.is_empty() {
            let k = rng.below(earlier.len() as u64) as usize;
            return ("copy.jsonl".into(), earlier[k].clone());
        }
        if shape == 1 {
            return ("empty.jsonl".into(), Vec::new());
        }
        if shape == 2 {
            return (
                "broken.jsonl.gz".into(),
                b"\x1f\x8b\x08\x00not gzip".to_vec(),
            );
        }
        let n = 1 + rng.below(12);
        let base = 1 + rng.below(60);
        let bad_share = match shape {
            3 => 10,
            4 => 2,
            _ => 0,
        };
        let mut lines = Vec::new();
        for _ in 0..n {
            if bad_share > 0 && rng.below(bad_share) == 0 {
                lines.push(r#"{"Id":"x","PostId":"1"}"#.to_string());
                continue;
            }
            let id = base + rng.below(15);
            let day = 1 + rng.below(60);
            let date =
                chrono::NaiveDate::from_ymd_opt(2022, 1, 1).unwrap() + chrono::Days::new(day);
            let user = match rng.below(3) {
                0 => String::new(),
                _ => format!(r#","UserId":"{}""#, rng.below(3)),
            };
            lines.push(format!(
                r#"{{"Id":"{id}","PostId":"{}","VoteTypeId":"{}","CreationDate":"{date}T08:00:00"{user}}}"#,
                1 + rng.below(2),
                1 + rng.below(2)
            ));
        }
        ("votes.jsonl".into(), lines.join("\n").into_bytes())
    }

    /// Every table a load writes, as sorted text, with the times of the ledger left out.
    fn dump(db: &Path) -> Vec<String> {
        let conn = duckdb::Connection::open(db).unwrap();
        let queries = [
            "SELECT * FROM blog_analysis.votes ORDER BY ALL",
            "SELECT * FROM blog_analysis.rejected_votes ORDER BY ALL",
            "SELECT * FROM blog_analysis.file_id_ranges ORDER BY ALL",
            "SELECT * FROM blog_analysis.weekly_votes ORDER BY ALL",
            "SELECT * EXCLUDE (started_at, finished_at) FROM blog_analysis.ingested_files ORDER BY id",
        ];
        let mut out = Vec::new();
        for q in queries {
            let sql = format!("SELECT CAST(t AS VARCHAR) FROM ({q}) t");
            let mut stmt = conn.prepare(&sql).unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
            out.extend(rows.map(|r| r.unwrap()));
        }
        out
    }

    /// Property: loading random small files in groups of random sizes leaves every table
    /// exactly as loading them one by one in the same order does (the same rows, ledger rows
    /// with the same ids, statuses, counts, errors and maxima, the same rejects, Id ranges and
    /// weekly counts).
    #[test]
    fn a_group_has_the_outcome_of_its_files_loaded_one_by_one() {
        let mut statuses = std::collections::BTreeSet::new();
        for seed in 1..=12u64 {
            let dir = tempfile::tempdir().unwrap();
            let mut rng = Rng::new(seed);
            let mut files: Vec<PathBuf> = Vec::new();
            let mut bodies: Vec<Vec<u8>> = Vec::new();
            for k in 0..30 {
                let (name, body) = random_file(&mut rng, &bodies);
                let path = dir.path().join(format!("{k:02}-{name}"));
                std::fs::write(&path, &body).unwrap();
                files.push(path);
                bodies.push(body);
            }
            let (alone_db, grouped_db) = (dir.path().join("a.db"), dir.path().join("g.db"));
            let opts = IngestOptions::new(IngestConfig::default());
            {
                let mut wh =
                    Warehouse::open(&WarehouseConfig::default().with_path(&alone_db)).unwrap();
                for f in &files {
                    ingest_file(&mut wh, f, &opts).unwrap();
                }
            }
            {
                let mut wh =
                    Warehouse::open(&WarehouseConfig::default().with_path(&grouped_db)).unwrap();
                // The first file alone, so that the groups meet a warehouse with rows.
                ingest_file(&mut wh, &files[0], &opts).unwrap();
                let mut rest = &files[1..];
                while !rest.is_empty() {
                    let n = (1 + rng.below(7) as usize).min(rest.len());
                    let result = ingest_group(&mut wh, &rest[..n], &opts, 10_000).unwrap();
                    assert!(result.alone.is_empty(), "seed {seed}");
                    assert_eq!(result.outcomes.len(), n, "seed {seed}");
                    rest = &rest[n..];
                }
            }
            let (a, g) = (dump(&alone_db), dump(&grouped_db));
            assert!(a.len() > 30, "seed {seed}: {a:?}");
            for (x, y) in a.iter().zip(&g) {
                assert_eq!(x, y, "seed {seed}");
            }
            assert_eq!(a.len(), g.len(), "seed {seed}");
            for status in ["loaded", "partial", "rejected", "failed", "duplicate_file"] {
                if a.iter()
                    .any(|r| r.contains(&format!("'status': {status},")))
                {
                    statuses.insert(status);
                }
            }
        }
        // The sequences met every outcome a file can have.
        assert_eq!(statuses.len(), 5, "{statuses:?}");
    }

    /// A file with more records than the group has room for leaves it and is loaded alone;
    /// the others are loaded.
    #[test]
    fn a_file_too_large_for_the_group_is_left_to_load_alone() {
        let dir = tempfile::tempdir().unwrap();
        let line = |id: u32| {
            format!(
                r#"{{"Id":"{id}","PostId":"1","VoteTypeId":"2","CreationDate":"2022-01-03T00:00:00"}}"#
            )
        };
        let small = dir.path().join("small.jsonl");
        std::fs::write(&small, line(1)).unwrap();
        let big = dir.path().join("big.jsonl");
        let body: Vec<String> = (10..60).map(line).collect();
        std::fs::write(&big, body.join("\n")).unwrap();
        let db = dir.path().join("w.db");
        let mut wh = Warehouse::open(&WarehouseConfig::default().with_path(&db)).unwrap();
        let opts = IngestOptions::new(IngestConfig::default());
        let r = ingest_group(&mut wh, &[small.clone(), big.clone()], &opts, 20).unwrap();
        assert_eq!(r.alone, vec![big]);
        assert_eq!(r.outcomes.len(), 1);
        assert_eq!(r.outcomes[0].status, Status::Loaded);
        assert_eq!(r.outcomes[0].counts.inserted, 1);
    }
}
