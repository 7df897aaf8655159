//! The operational surface of the daemon on a local address (`daemon.http_listen`):
//! `GET /metrics` (Prometheus/OpenMetrics text), `GET /healthz` (200 while the loop is alive,
//! 503 when the loader has not beaten for 30 s) and `GET /status` (JSON). A task of the
//! daemon's runtime; it only reads what the other tasks publish.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use tokio_util::sync::CancellationToken;

use crate::interrupt::Interrupt;
use crate::ops::metrics::Metrics;

/// How long the loop may go without a beat before `/healthz` says it is stuck.
const ALIVE_WITHIN: Duration = Duration::from_secs(30);

/// Serves on `listener` until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    alive: Interrupt,
    shutdown: CancellationToken,
) {
    let app = router(metrics, alive);
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
    {
        tracing::error!(error = %e, "the HTTP surface stopped");
    }
}

fn router(metrics: Arc<Metrics>, alive: Interrupt) -> Router {
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
}

/// `/healthz`: 503 when the loop has not beaten for [`ALIVE_WITHIN`] or waits on a warehouse
/// that cannot be used; 200 otherwise, saying what it waits for when it waits (another
/// process's or host's lock).
fn health(alive: &Interrupt) -> (StatusCode, String) {
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
