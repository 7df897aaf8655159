//! The operator console's data and its JSON API (`/api/loads`, `/api/loads/{id}`): a snapshot
//! of the ledger that the loader publishes after each batch (and at start), served from
//! memory, so that no request ever opens the warehouse or waits for a load.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::model::{HistoryRow, LoadDetail, StatusCount};
use crate::report::chart::WeeklyChart;

/// The newest ledger rows the console holds (the API filters within them; `votewatch
/// history` reads the whole ledger).
pub const ROWS: u64 = 1000;
/// The newest arrivals whose page the console can show.
pub const DETAILS: u64 = 500;
/// Rejects shown per arrival.
pub const REJECTS: u64 = 5;

/// What the console shows, as of one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Newest first.
    pub rows: Vec<HistoryRow>,
    pub details: HashMap<i64, LoadDetail>,
    pub overview: Overview,
    /// When the loader read it (`None`: not yet).
    pub taken: Option<chrono::DateTime<chrono::Utc>>,
}

/// What the overview page shows besides health and the outbox.
#[derive(Debug, Default, Clone)]
pub struct Overview {
    /// Per status, over the last day and week.
    pub counts: Vec<StatusCount>,
    /// The weekly votes (the last 52 weeks present), when there are any.
    pub chart: Option<WeeklyChart>,
    /// Deliveries against `[expect]`, and whether an alert stands.
    pub freshness: String,
    pub late: bool,
    /// The last batch: its summary and when it ended.
    pub last_batch: Option<String>,
}

/// The latest snapshot, shared by the loader (which replaces it) and the HTTP surface.
#[derive(Debug, Default)]
pub struct Console {
    current: RwLock<Arc<Snapshot>>,
}

impl Console {
    pub fn publish(&self, rows: Vec<HistoryRow>, details: Vec<LoadDetail>, overview: Overview) {
        let snapshot = Snapshot {
            rows,
            details: details.into_iter().map(|d| (d.id, d)).collect(),
            overview,
            taken: Some(chrono::Utc::now()),
        };
        if let Ok(mut c) = self.current.write() {
            *c = Arc::new(snapshot);
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.read().map(|c| c.clone()).unwrap_or_default()
    }
}

/// The statuses an arrival can have (`unloaded`: its votes were removed since).
pub const STATUSES: [&str; 6] = [
    "loaded",
    "partial",
    "duplicate_file",
    "rejected",
    "failed",
    "unloaded",
];

/// The filters of `/api/loads` (those of `votewatch history`), checked.
#[derive(Debug, Default, PartialEq)]
pub struct LoadsQuery {
    pub status: Option<String>,
    pub dataset: Option<crate::datasets::Dataset>,
    pub file: Option<String>,
    /// Arrivals started at or after this many microseconds since the epoch.
    pub since_micros: Option<i64>,
    /// As given, for the pages' links and form.
    pub since_text: Option<String>,
    pub limit: usize,
    /// 1 for the newest `limit` rows that pass, 2 for the next, ...
    pub page: usize,
}

/// `value` of parameter `key` as a whole number from 1 to [`ROWS`].
fn whole(key: &str, value: &str) -> Result<usize, String> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=ROWS as usize).contains(n))
        .ok_or_else(|| format!("{key} must be a whole number from 1 to {ROWS}"))
}

/// The most a query string may hold, and one value.
const MAX_QUERY: usize = 4096;
const MAX_VALUE: usize = 1024;

impl LoadsQuery {
    /// Parses the query parameters; the error says which one is wrong and why.
    pub fn parse(
        params: &[(String, String)],
        raw_len: usize,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<LoadsQuery, String> {
        if raw_len > MAX_QUERY {
            return Err(format!("the query string is over {MAX_QUERY} bytes"));
        }
        let mut q = LoadsQuery {
            limit: 100,
            page: 1,
            ..LoadsQuery::default()
        };
        let mut seen = std::collections::HashSet::new();
        for (key, value) in params {
            if !seen.insert(key.as_str()) {
                return Err(format!("{key} is given twice"));
            }
            if value.len() > MAX_VALUE {
                return Err(format!("{key} is over {MAX_VALUE} bytes"));
            }
            match key.as_str() {
                "status" if value.is_empty() => {}
                "status" if STATUSES.contains(&value.as_str()) => q.status = Some(value.clone()),
                "status" => {
                    return Err(format!("status must be one of {}", STATUSES.join(", ")));
                }
                "dataset" if value.is_empty() => {}
                "dataset" => {
                    q.dataset = Some(crate::datasets::Dataset::from_name(value).ok_or_else(
                        || {
                            let names: Vec<&str> = crate::datasets::Dataset::ALL
                                .iter()
                                .map(|d| d.name())
                                .collect();
                            format!("dataset must be one of {}", names.join(", "))
                        },
                    )?)
                }
                "file" if value.is_empty() => {}
                "file" => q.file = Some(value.clone()),
                "since" if value.is_empty() => {}
                "since" => {
                    q.since_micros = Some(crate::model::parse_since(value, now)?);
                    q.since_text = Some(value.clone());
                }
                "page" => q.page = whole(key, value)?,
                "limit" => q.limit = whole(key, value)?,
                other => {
                    return Err(format!(
                    "unknown parameter {:?}: the filters are status, dataset, file, since, limit and page",
                    crate::text::truncate(other, 64)
                ))
                }
            }
        }
        Ok(q)
    }

    /// The rows of `rows` (newest first) that pass: the `page`th `limit` of them.
    pub fn select<'r>(&self, rows: &'r [HistoryRow]) -> Vec<&'r HistoryRow> {
        self.passing(rows)
            .skip((self.page - 1) * self.limit)
            .take(self.limit)
            .collect()
    }

    /// Whether rows pass beyond this page.
    pub fn has_more(&self, rows: &[HistoryRow]) -> bool {
        self.passing(rows).nth(self.page * self.limit).is_some()
    }

    /// This query's parameters for another page, as a query string.
    pub fn for_page(&self, page: usize) -> String {
        let mut pairs: Vec<(&str, String)> = Vec::new();
        if let Some(s) = &self.status {
            pairs.push(("status", s.clone()));
        }
        if let Some(d) = &self.dataset {
            pairs.push(("dataset", d.name().to_string()));
        }
        if let Some(f) = &self.file {
            pairs.push(("file", f.clone()));
        }
        if let Some(s) = &self.since_text {
            pairs.push(("since", s.clone()));
        }
        pairs.push(("limit", self.limit.to_string()));
        pairs.push(("page", page.to_string()));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }

    fn passing<'s, 'r: 's>(
        &'s self,
        rows: &'r [HistoryRow],
    ) -> impl Iterator<Item = &'r HistoryRow> + 's {
        rows.iter()
            .filter(|r| self.status.as_ref().is_none_or(|s| &r.status == s))
            .filter(|r| self.dataset.is_none_or(|d| r.dataset == d))
            .filter(|r| self.file.as_ref().is_none_or(|f| &r.file_name == f))
            .filter(|r| {
                self.since_micros.is_none_or(|since| {
                    chrono::NaiveDateTime::parse_from_str(&r.started, "%Y-%m-%d %H:%M:%S")
                        .is_ok_and(|t| t.and_utc().timestamp_micros() >= since)
                })
            })
    }
}

/// The commands that act on arrival `id` (the console itself changes nothing).
pub fn commands(id: i64) -> Vec<String> {
    vec![
        format!("votewatch reingest {id}"),
        format!("votewatch unload {id} --dry-run"),
        format!("votewatch unload {id} --reason '...'"),
    ]
}

/// One arrival as `/api/loads/{id}` answers it: its history row's fields, then the rest of
/// what the ledger holds, its first rejects, any unload, and the commands that act on it.
pub fn detail_json(row: &HistoryRow, d: &LoadDetail) -> serde_json::Value {
    let mut doc = row.to_json();
    let extra = serde_json::json!({
        "sha256": d.sha256,
        "size_bytes": d.size,
        "format": d.format,
        "forced": d.forced,
        "finished_utc": d.finished,
        "arrived_utc": d.arrived,
        "claimed_utc": d.claimed,
        "archived_utc": d.archived,
        "archived_to": d.archived_to,
        "unknown_fields": d.unknown_fields,
        "report": match d.report_queued {
            Some(true) => "queued",
            Some(false) => "owed",
            None => "none due",
        },
        "host_id": d.host_id,
        "first_rejects": d.rejects.iter().map(|r| serde_json::json!({
            "line": r.line,
            "element": r.element,
            "reason": r.reason,
            "raw": r.raw,
            "raw_truncated": r.truncated,
        })).collect::<Vec<_>>(),
        "unload": d.unload.as_ref().map(|(at, reason, removed)| serde_json::json!({
            "unloaded_utc": at,
            "reason": reason,
            "votes_removed": removed,
        })),
        "commands": commands(row.id),
    });
    if let (Some(doc), serde_json::Value::Object(extra)) = (doc.as_object_mut(), extra) {
        doc.extend(extra);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(params: &[(&str, &str)]) -> Result<LoadsQuery, String> {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        LoadsQuery::parse(&params, 10, chrono::Utc::now())
    }

    #[test]
    fn the_filters_are_checked_and_a_bad_one_says_why() {
        assert_eq!(q(&[]).unwrap().limit, 100);
        let f = q(&[("status", "partial"), ("file", "a.jsonl"), ("limit", "7")]).unwrap();
        assert_eq!(
            (f.status.as_deref(), f.file.as_deref(), f.limit),
            (Some("partial"), Some("a.jsonl"), 7)
        );
        assert!(q(&[("since", "2026-11-01")])
            .unwrap()
            .since_micros
            .is_some());
        let posts = q(&[("dataset", "posts")]).unwrap();
        assert_eq!(posts.dataset, Some(crate::datasets::Dataset::Posts));
        assert!(posts.for_page(2).contains("dataset=posts"));
        for (params, why) in [
            (
                vec![("dataset", "comments")],
                "dataset must be one of votes, posts",
            ),
            (vec![("status", "done")], "status must be one of"),
            (
                vec![("limit", "0")],
                "limit must be a whole number from 1 to 1000",
            ),
            (vec![("limit", "1001")], "limit must be"),
            (vec![("limit", "x")], "limit must be"),
            (vec![("since", "yesterday-ish")], "--since"),
            (vec![("bogus", "1")], "unknown parameter \"bogus\""),
            (vec![("page", "0")], "page must be"),
            (vec![("file", "a"), ("file", "b")], "file is given twice"),
        ] {
            let e = q(&params).unwrap_err();
            assert!(e.contains(why), "{params:?}: {e}");
        }
        let long = "x".repeat(MAX_VALUE + 1);
        assert!(q(&[("file", &long)])
            .unwrap_err()
            .contains("over 1024 bytes"));
        assert!(LoadsQuery::parse(&[], MAX_QUERY + 1, chrono::Utc::now()).is_err());
    }
}
