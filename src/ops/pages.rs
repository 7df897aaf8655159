//! The operator console's pages: `/` (overview), `/loads` (the ledger, filtered and paged) and
//! `/loads/{id}` (one arrival), server-rendered from the console's snapshot with askama's
//! templates (`templates/`), which escape every value they print. No script; the chart is an
//! inline SVG drawn from numbers. The pages change nothing: they show the commands that would.

use std::sync::Arc;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::interrupt::Interrupt;
use crate::model::{HistoryRow, LoadDetail, StatusCount};
use crate::ops::console::{Console, LoadsQuery, DETAILS, ROWS, STATUSES};
use crate::ops::metrics::Metrics;

/// What the pages read.
#[derive(Clone)]
pub struct Pages {
    pub console: Arc<Console>,
    pub metrics: Arc<Metrics>,
    pub alive: Interrupt,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage<'a> {
    health: String,
    healthy: bool,
    freshness: &'a str,
    late: bool,
    last_batch: &'a str,
    outbox: String,
    counts: &'a [StatusCount],
    chart: Option<String>,
    taken: String,
}

#[derive(Template)]
#[template(path = "loads.html")]
struct LoadsPage<'a> {
    /// Each status, and whether it is the one filtered on.
    statuses: Vec<(&'static str, bool)>,
    /// Each dataset, and whether it is the one filtered on.
    datasets: Vec<(&'static str, bool)>,
    file: &'a str,
    since: &'a str,
    limit: usize,
    rows: Vec<&'a HistoryRow>,
    newer: Option<String>,
    older: Option<String>,
    window: u64,
}

#[derive(Template)]
#[template(path = "load.html")]
struct LoadPage<'a> {
    row: &'a HistoryRow,
    detail: &'a LoadDetail,
    sha256: &'a str,
    size: String,
    format: &'a str,
    archived_to: &'a str,
    arrived: &'a str,
    claimed: &'a str,
    archived: &'a str,
    unknown: String,
    report: &'static str,
    unload: Option<String>,
    commands: Vec<String>,
}

/// A rendered page, or a 500 that says the template failed (it cannot, for these types).
fn html(page: Result<String, askama::Error>) -> Response {
    match page {
        Ok(body) => ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page could not be rendered: {e}\n"),
        )
            .into_response(),
    }
}

fn bad(why: String) -> Response {
    (StatusCode::BAD_REQUEST, format!("{why}\n")).into_response()
}

/// `GET /`.
pub async fn overview(axum::extract::State(p): axum::extract::State<Pages>) -> Response {
    let snapshot = p.console.snapshot();
    let o = &snapshot.overview;
    let (code, health) = super::http::health(&p.alive);
    let status = p.metrics.status();
    let waiting = status["outbox"].as_u64().unwrap_or(0);
    let mut outbox = crate::text::count(waiting, "report", "reports");
    if let Some(oldest) = status["outbox_oldest"].as_str() {
        outbox.push_str(&format!(", the oldest queued {oldest}"));
    }
    if let (Some(e), Some(at)) = (
        status["last_delivery_error"]["error"].as_str(),
        status["last_delivery_error"]["at"].as_str(),
    ) {
        outbox.push_str(&format!("; last delivery failed at {at}: {e}"));
    }
    let page = OverviewPage {
        health: health.trim().to_string(),
        healthy: code == StatusCode::OK,
        freshness: &o.freshness,
        late: o.late,
        last_batch: o
            .last_batch
            .as_deref()
            .unwrap_or("none since the daemon started"),
        outbox,
        counts: &o.counts,
        chart: o.chart.as_ref().map(|c| c.svg()),
        taken: snapshot
            .taken
            .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
            .unwrap_or_else(|| "not read yet".into()),
    };
    html(page.render())
}

/// `GET /loads`.
pub async fn loads(
    axum::extract::State(p): axum::extract::State<Pages>,
    raw: axum::extract::RawQuery,
) -> Response {
    let raw = raw.0.unwrap_or_default();
    let query = match super::http::query_pairs(&raw)
        .and_then(|params| LoadsQuery::parse(&params, raw.len(), chrono::Utc::now()))
    {
        Ok(q) => q,
        Err(why) => return bad(why),
    };
    let snapshot = p.console.snapshot();
    let page = LoadsPage {
        statuses: STATUSES
            .iter()
            .map(|s| (*s, query.status.as_deref() == Some(*s)))
            .collect(),
        datasets: crate::datasets::Dataset::ALL
            .iter()
            .map(|d| (d.name(), query.dataset == Some(*d)))
            .collect(),
        file: query.file.as_deref().unwrap_or_default(),
        since: query.since_text.as_deref().unwrap_or_default(),
        limit: query.limit,
        rows: query.select(&snapshot.rows),
        newer: (query.page > 1).then(|| query.for_page(query.page - 1)),
        older: query
            .has_more(&snapshot.rows)
            .then(|| query.for_page(query.page + 1)),
        window: ROWS,
    };
    html(page.render())
}

/// `GET /loads/{id}`.
pub async fn load(
    axum::extract::State(p): axum::extract::State<Pages>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let Ok(id) = id.parse::<i64>() else {
        return bad("the ledger id must be a whole number".into());
    };
    let snapshot = p.console.snapshot();
    let Some((row, detail)) = snapshot
        .rows
        .iter()
        .find(|r| r.id == id)
        .zip(snapshot.details.get(&id))
    else {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "ledger id {id} is not among the newest {DETAILS} arrivals the console holds; \
                 `votewatch history` reads the whole ledger\n"
            ),
        )
            .into_response();
    };
    let page = LoadPage {
        row,
        detail,
        sha256: detail.sha256.as_deref().unwrap_or("—"),
        size: detail
            .size
            .map(|s| crate::text::count(s as u64, "byte", "bytes"))
            .unwrap_or_else(|| "—".into()),
        format: detail.format.as_deref().unwrap_or("—"),
        archived_to: detail
            .archived_to
            .as_deref()
            .unwrap_or("— (not moved by the daemon)"),
        arrived: detail.arrived.as_deref().unwrap_or("—"),
        claimed: detail
            .claimed
            .as_deref()
            .unwrap_or("— (not claimed by the daemon)"),
        archived: detail.archived.as_deref().unwrap_or("—"),
        unknown: match detail.unknown_fields.is_empty() {
            true => "none".into(),
            false => detail.unknown_fields.join(", "),
        },
        report: match detail.report_queued {
            Some(true) => "queued in the outbox",
            Some(false) => "owed (the next batch queues it)",
            None => "none due (loaded by a command)",
        },
        unload: detail.unload.as_ref().map(|(at, reason, removed)| {
            format!(
                "{at} UTC: {} removed{}",
                crate::text::count(*removed as u64, "vote", "votes"),
                reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default()
            )
        }),
        commands: super::console::commands(id),
    };
    html(page.render())
}
