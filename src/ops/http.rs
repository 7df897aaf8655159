//! The operational surface of the daemon on a local address (`daemon.http_listen`):
//! `GET /metrics` (Prometheus/OpenMetrics text), `GET /healthz` (200 while the loop is alive,
//! 503 when the loader has not beaten for 30 s), `GET /status` (JSON) and the console's API
//! (`GET /api/loads`, `GET /api/loads/{id}`, from the snapshot the loader publishes). A task
//! of the daemon's runtime; it only reads what the other tasks publish. Every answer carries
//! the security headers (a strict content policy, no sniffing, no framing).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::interrupt::Interrupt;
use crate::ops::console::{detail_json, Console, LoadsQuery};
use crate::ops::metrics::Metrics;

/// How long the loop may go without a beat before `/healthz` says it is stuck.
const ALIVE_WITHIN: Duration = Duration::from_secs(30);

/// Serves on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    console: Arc<Console>,
    access: Access,
    alive: Interrupt,
    shutdown: CancellationToken,
) {
    let app = router(metrics, console, Arc::new(access), alive);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "the HTTP surface stopped");
    }
}

/// The headers of every answer: nothing but the page itself and inline styles may load, no
/// content-type guessing, no framing.
async fn secure(mut response: axum::response::Response) -> axum::response::Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    response
}

/// Who may read the console's API: anyone who can connect (a loopback address without a
/// token), the holders of a bearer token, or nobody (the token file cannot be read).
#[derive(Debug, Clone)]
pub enum Access {
    Open,
    Token(String),
    Broken(String),
}

impl Access {
    /// From `daemon.http_token_file`.
    pub fn from_config(token_file: Option<&std::path::Path>) -> Access {
        let Some(file) = token_file else {
            return Access::Open;
        };
        match crate::config::read_secret("", Some(file), "") {
            Ok(Some(t)) if !t.trim().is_empty() => Access::Token(t.trim().to_string()),
            Ok(_) => Access::Broken(format!("{} is empty", file.display())),
            Err(e) => Access::Broken(e),
        }
    }
}

/// The console's API answers only a request with the token (compared in constant time).
async fn require_token(
    axum::extract::State(access): axum::extract::State<Arc<Access>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use subtle::ConstantTimeEq;
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let refusal = match (access.as_ref(), given) {
        (Access::Open, _) => None,
        (Access::Token(t), Some(g)) if bool::from(t.as_bytes().ct_eq(g.as_bytes())) => None,
        (Access::Token(_), _) => Some((
            StatusCode::UNAUTHORIZED,
            "this needs the token of daemon.http_token_file: Authorization: Bearer <token>"
                .to_string(),
        )),
        (Access::Broken(why), _) => Some((
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the console's token cannot be read: {why}"),
        )),
    };
    match refusal {
        None => next.run(request).await,
        Some((code, why)) => (code, Json(serde_json::json!({ "error": why }))).into_response(),
    }
}

/// A 400 with the reason, as JSON.
fn bad_request(why: String) -> axum::response::Response {
    (
        StatusCode::BAD_REQUEST,
        Json(serde_json::json!({ "error": why })),
    )
        .into_response()
}

/// `GET /api/loads`: the console's ledger rows that pass the filters, newest first.
async fn api_loads(
    axum::extract::State(console): axum::extract::State<Arc<Console>>,
    raw: axum::extract::RawQuery,
) -> axum::response::Response {
    let raw = raw.0.unwrap_or_default();
    let params: Vec<(String, String)> = match query_pairs(&raw) {
        Ok(p) => p,
        Err(why) => return bad_request(why),
    };
    let query = match LoadsQuery::parse(&params, raw.len(), chrono::Utc::now()) {
        Ok(q) => q,
        Err(why) => return bad_request(why),
    };
    let snapshot = console.snapshot();
    let rows: Vec<serde_json::Value> = query
        .select(&snapshot.rows)
        .into_iter()
        .map(crate::model::HistoryRow::to_json)
        .collect();
    Json(rows).into_response()
}

/// The pairs of a query string, percent-decoded.
pub(super) fn query_pairs(raw: &str) -> Result<Vec<(String, String)>, String> {
    serde_urlencoded::from_str(raw).map_err(|e| format!("the query string is not valid: {e}"))
}

/// `GET /api/loads/{id}`: one arrival of the console's window, in full.
async fn api_load(
    axum::extract::State(console): axum::extract::State<Arc<Console>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> axum::response::Response {
    let Ok(id) = id.parse::<i64>() else {
        return bad_request("the ledger id must be a whole number".into());
    };
    let snapshot = console.snapshot();
    let found = snapshot
        .rows
        .iter()
        .find(|r| r.id == id)
        .zip(snapshot.details.get(&id));
    match found {
        Some((row, detail)) => Json(detail_json(row, detail)).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({
                "error": format!(
                    "ledger id {id} is not among the newest {} arrivals the console holds; \
                     `votewatch history` reads the whole ledger",
                    crate::ops::console::DETAILS
                )
            })),
        )
            .into_response(),
    }
}

fn router(
    metrics: Arc<Metrics>,
    console: Arc<Console>,
    access: Arc<Access>,
    alive: Interrupt,
) -> Router {
    let pages = Router::new()
        .route("/", get(crate::ops::pages::overview))
        .route("/loads", get(crate::ops::pages::loads))
        .route("/loads/{id}", get(crate::ops::pages::load))
        .with_state(crate::ops::pages::Pages {
            console: console.clone(),
            metrics: metrics.clone(),
            alive: alive.clone(),
        });
    let api = Router::new()
        .route("/api/loads", get(api_loads))
        .route("/api/loads/{id}", get(api_load))
        .with_state(console)
        .merge(pages)
        .layer(axum::middleware::from_fn_with_state(access, require_token));
    let m = metrics.clone();
    let s = metrics;
    let waits = alive.clone();
    Router::new()
        .route(
            "/metrics",
            get(move || {
                let body = m.encode();
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        body,
                    )
                }
            }),
        )
        .route(
            "/healthz",
            get(move || {
                let (status, body) = health(&alive);
                async move { (status, body).into_response() }
            }),
        )
        .route(
            "/status",
            get(move || {
                let mut doc = s.status();
                doc["waiting"] = match waits.waiting() {
                    Some(w) => serde_json::json!({
                        "for": w.what,
                        "since": w.since.to_rfc3339(),
                        "healthy": w.healthy,
                    }),
                    None => serde_json::Value::Null,
                };
                async move { Json(doc) }
            }),
        )
        .merge(api)
        .layer(axum::middleware::map_response(secure))
}

/// `/healthz`: 503 when the loop has not beaten for [`ALIVE_WITHIN`] or waits on a warehouse
/// that cannot be used; 200 otherwise, saying what it waits for when it waits (another
/// process's or host's lock).
pub(super) fn health(alive: &Interrupt) -> (StatusCode, String) {
    if !alive.alive_within(ALIVE_WITHIN) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the loop is stuck\n".into(),
        );
    }
    match alive.waiting() {
        Some(w) if !w.healthy => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", w.describe()),
        ),
        Some(w) => (StatusCode::OK, format!("ok: {}\n", w.describe())),
        None => (StatusCode::OK, "ok\n".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_says_what_the_loader_waits_for() {
        let alive = Interrupt::default();
        alive.beat();
        assert_eq!(health(&alive), (StatusCode::OK, "ok\n".to_string()));
        alive.wait_for("waiting for the lake's write lock", true);
        let (code, body) = health(&alive);
        assert_eq!(code, StatusCode::OK);
        assert!(
            body.starts_with("ok: waiting for the lake's write lock since "),
            "{body}"
        );
        alive.wait_for("warehouse unusable: IO Error: disk full", false);
        let (code, body) = health(&alive);
        assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.starts_with("unhealthy: warehouse unusable: IO Error"),
            "{body}"
        );
    }
}
