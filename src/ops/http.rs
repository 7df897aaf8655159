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
                let ok = alive.alive_within(ALIVE_WITHIN);
                async move {
                    if ok {
                        (StatusCode::OK, "ok\n").into_response()
                    } else {
                        (StatusCode::SERVICE_UNAVAILABLE, "the loop is stuck\n").into_response()
                    }
                }
            }),
        )
        .route(
            "/status",
            get(move || {
                let doc = s.status();
                async move { Json(doc) }
            }),
        )
}
